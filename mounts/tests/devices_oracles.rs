//! The GPT reader/writer and the superblock probe checked against the real
//! tools: sfdisk writes a GPT we read, sgdisk and sfdisk read the GPT we
//! write, and mkfs.* make the filesystems we probe.

// Helpers outside #[test] fns unwrap too: clippy.toml's allow-unwrap-in-tests
// only covers the test functions themselves, and a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use mounts::devices::gpt::{self, GptLayout, GptPartition, Guid};
use mounts::devices::probe::{FsType, PROBE_BYTES, probe};
use tempfile::TempDir;

const NEEDS: &str = "needs sfdisk (fdisk), sgdisk (gdisk), e2fsprogs, erofs-utils, dosfstools, util-linux, cryptsetup-bin: run by cargo xtask test";

/// Run a tool; a missing tool fails with the package to install.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} ({NEEDS})"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn head_of(path: &Path, len: usize) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.truncate(len);
    bytes
}

#[test]
#[ignore = "needs sfdisk: run by cargo xtask test"]
fn sfdisk_gpt_is_read_exactly() {
    // 512 only: sfdisk 2.38 ignores `sector-size:` for an image file (it
    // recalculates for the file's 512-byte sectors); 4096 is covered by the
    // writer round trip.
    let sector_size = 512u32;
    {
        let dir = TempDir::new().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let script = format!(
            "label: gpt\nlabel-id: 11223344-5566-7788-99AA-BBCCDDEEFF00\nsector-size: {sector_size}\n\
             start=2048, size=4096, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=01234567-89AB-CDEF-0F1E-2D3C4B5A6978, name=\"root-a\"\n\
             start=6144, size=1024, type=2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5, uuid=88776655-4433-2211-FEDC-BA9876543210, name=\"root-a-verity\"\n\
             start=7168, size=1024, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=CCCCCCCC-0000-4000-8000-000000000004, name=\"dätä\"\n"
        );
        run("sfdisk", &["--quiet", img.to_str().unwrap()], Some(&script));
        let table = gpt::parse(&head_of(&img, 65536), sector_size).unwrap();
        assert_eq!(
            table.disk_guid.to_string(),
            "11223344-5566-7788-99aa-bbccddeeff00"
        );
        let got: Vec<(u32, String, String, String, u64)> = table
            .partitions
            .iter()
            .map(|p| {
                (
                    p.number,
                    gpt::type_name(p.type_guid).unwrap_or("?").to_owned(),
                    p.uuid.to_string(),
                    p.name.clone(),
                    p.first_lba,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    "root-x86-64".into(),
                    "01234567-89ab-cdef-0f1e-2d3c4b5a6978".into(),
                    "root-a".into(),
                    2048
                ),
                (
                    2,
                    "root-x86-64-verity".into(),
                    "88776655-4433-2211-fedc-ba9876543210".into(),
                    "root-a-verity".into(),
                    6144
                ),
                (
                    3,
                    "linux-generic".into(),
                    "cccccccc-0000-4000-8000-000000000004".into(),
                    "dätä".into(),
                    7168
                ),
            ],
            "sector size {sector_size}"
        );
    }
}

#[test]
#[ignore = "needs sfdisk and sgdisk: run by cargo xtask test"]
fn written_gpt_is_valid_for_sgdisk_and_sfdisk() {
    let dir = TempDir::new().unwrap();
    let img = dir.path().join("disk.img");
    let layout = GptLayout {
        sector_size: 512,
        total_sectors: 64 << 11,
        disk_guid: "11223344-5566-7788-99aa-bbccddeeff00".parse().unwrap(),
        partitions: vec![
            GptPartition {
                number: 1,
                type_guid: gpt::ROOT_X86_64.guid,
                uuid: "01234567-89ab-cdef-0f1e-2d3c4b5a6978".parse().unwrap(),
                first_lba: 2048,
                last_lba: 6143,
                attributes: 0,
                name: "root-a".into(),
            },
            GptPartition {
                number: 2,
                type_guid: gpt::ROOT_X86_64_VERITY.guid,
                uuid: "88776655-4433-2211-fedc-ba9876543210".parse().unwrap(),
                first_lba: 6144,
                last_lba: 7167,
                attributes: 0,
                name: "root-a-verity".into(),
            },
        ],
    };
    let image = gpt::write(&layout).unwrap();
    let mut file = std::fs::File::create(&img).unwrap();
    file.set_len(layout.total_sectors * 512).unwrap();
    file.write_all(&image.head).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &image.tail, image.tail_offset).unwrap();
    drop(file);

    let verify = run("sgdisk", &["--verify", img.to_str().unwrap()], None);
    assert!(verify.contains("No problems found"), "{verify}");
    let dump = run("sfdisk", &["--dump", img.to_str().unwrap()], None);
    for want in [
        "label-id: 11223344-5566-7788-99AA-BBCCDDEEFF00",
        "start=        2048, size=        4096, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=01234567-89AB-CDEF-0F1E-2D3C4B5A6978, name=\"root-a\"",
        "start=        6144, size=        1024, type=2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5, uuid=88776655-4433-2211-FEDC-BA9876543210, name=\"root-a-verity\"",
    ] {
        assert!(dump.contains(want), "missing {want:?} in\n{dump}");
    }
}

#[test]
#[ignore = "needs mkfs.ext4, mkfs.erofs, mkfs.vfat, mkswap, veritysetup: run by cargo xtask test"]
fn real_superblocks_are_probed() {
    let dir = TempDir::new().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let uuid = "0b2c3d4e-1111-2222-3333-444455556666";
    std::fs::create_dir(d("tree")).unwrap();
    std::fs::write(dir.path().join("tree/hello"), "hi").unwrap();
    for name in ["ext4.img", "vfat.img", "swap.img", "data.img"] {
        std::fs::File::create(d(name))
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
    }
    run(
        "mkfs.ext4",
        &["-q", "-F", "-L", "lbl", "-U", uuid, &d("ext4.img")],
        None,
    );
    // erofs-utils 1.5 has no -L; the label is covered by the unit table.
    run(
        "mkfs.erofs",
        &["--quiet", "-U", uuid, &d("erofs.img"), &d("tree")],
        None,
    );
    run(
        "mkfs.vfat",
        &["-n", "EFI", "-i", "1234ABCD", &d("vfat.img")],
        None,
    );
    run("mkswap", &["-L", "swp", "-U", uuid, &d("swap.img")], None);
    run(
        "veritysetup",
        &["format", "--uuid", uuid, &d("data.img"), &d("hash.img")],
        None,
    );
    let cases: Vec<(&str, FsType, Option<&str>, Option<&str>)> = vec![
        ("ext4.img", FsType::Ext4, Some(uuid), Some("lbl")),
        ("erofs.img", FsType::Erofs, Some(uuid), None),
        ("vfat.img", FsType::Vfat, Some("1234-ABCD"), Some("EFI")),
        ("swap.img", FsType::Swap, Some(uuid), Some("swp")),
        ("hash.img", FsType::VerityHash, Some(uuid), None),
    ];
    for (file, fstype, uuid, label) in cases {
        let got = probe(&head_of(&dir.path().join(file), PROBE_BYTES))
            .unwrap_or_else(|| panic!("{file}: nothing found"));
        assert_eq!(got.fstype, fstype, "{file}");
        assert_eq!(got.uuid.as_deref(), uuid, "{file}");
        assert_eq!(got.label.as_deref(), label, "{file}");
        // blkid agrees on the type it reports.
        let blkid = run("blkid", &["-p", "-o", "export", &d(file)], None);
        assert!(blkid.contains(&format!("TYPE={fstype}")), "{file}: {blkid}");
    }
    assert!(probe(&head_of(&dir.path().join("data.img"), PROBE_BYTES)).is_none());
    let _ = Guid::NIL;
}
