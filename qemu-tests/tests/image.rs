//! The image builder (qemu-tests/src/image.rs) against outside oracles:
//! `sfdisk --json` reads the partition table, `blkid -p` the root
//! filesystem and `veritysetup verify` the hash tree; liftoff's own GPT
//! reader and verity verifier must agree with them.

// The helpers below run only inside tests: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use kernel_cmdline::RootHash;
use mounts::devices::gpt::{self, LINUX_GENERIC, ROOT_X86_64, ROOT_X86_64_VERITY};
use qemu_tests::image::{BuiltImage, DATA_LABEL, DiskImage, ImageError, RootFs, VerityTool};
use tempfile::TempDir;
use verity::verify::{VerifyOptions, verify};

/// Deterministic pseudo-random bytes (xorshift64).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

/// A small root: a few files (one of 300 KiB, so the tree has leaves), a
/// symlink, a nested and an empty directory.
fn staging() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("usr/lib/deep/nested")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("var")).unwrap();
    fs::write(root.join("etc/os-release"), "ID=liftoff-test\n").unwrap();
    let hello = root.join("usr/bin/hello");
    fs::write(&hello, pseudo_random(300 << 10)).unwrap();
    fs::set_permissions(&hello, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("usr/lib/deep/nested/file"), "nested\n").unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    dir
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn veritysetup_verify(p1: &Path, p2: &Path, hash: &str) -> (bool, String) {
    run(Command::new("veritysetup")
        .arg("verify")
        .arg(p1)
        .arg(p2)
        .arg(hash))
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Every check on one built image.
fn check(name: &str, image: &BuiltImage, fs_type: &str, work: &Path) {
    let size = fs::metadata(&image.path).unwrap();
    eprintln!(
        "{name}: {} bytes, {} allocated, root {} / verity {} / data {} bytes",
        size.len(),
        size.blocks() * 512,
        image.partitions[0].len(),
        image.partitions[1].len(),
        image.partitions[2].len(),
    );
    assert_eq!(size.len(), image.size, "{name}: size");
    assert!(
        size.blocks() * 512 < size.len(),
        "{name}: the image is sparse"
    );
    assert_eq!(
        image.cmdline,
        format!("roothash={}", image.root_hash),
        "{name}"
    );

    // 1. sfdisk reads the table: types, derived UUIDs, names.
    let derived = RootHash::parse(&image.root_hash).unwrap();
    let (ok, json) = run(Command::new("sfdisk").arg("--json").arg(&image.path));
    assert!(ok, "{name}: sfdisk: {json}");
    let table: serde_json::Value = serde_json::from_str(&json).unwrap();
    let table = &table["partitiontable"];
    assert_eq!(table["label"], "gpt", "{name}");
    assert_eq!(table["sectorsize"], 512, "{name}");
    let parts = table["partitions"].as_array().unwrap();
    let expected = [
        (
            ROOT_X86_64.guid.to_string(),
            Some(derived.data_partuuid()),
            "root",
        ),
        (
            ROOT_X86_64_VERITY.guid.to_string(),
            Some(derived.verity_partuuid()),
            "root-verity",
        ),
        (LINUX_GENERIC.guid.to_string(), None, DATA_LABEL),
    ];
    assert_eq!(parts.len(), expected.len(), "{name}: {json}");
    for ((part, (kind, uuid, label)), built) in parts.iter().zip(expected).zip(&image.partitions) {
        let lower = |v: &serde_json::Value| v.as_str().unwrap().to_ascii_lowercase();
        assert_eq!(lower(&part["type"]), kind, "{name}: {label} type");
        if let Some(uuid) = uuid {
            assert_eq!(lower(&part["uuid"]), uuid, "{name}: {label} uuid");
        }
        assert_eq!(
            lower(&part["uuid"]),
            built.uuid.to_string(),
            "{name}: {label}"
        );
        assert_eq!(part["name"], label, "{name}: {label} name");
        assert_eq!(part["start"], built.first_lba, "{name}: {label} start");
        assert_eq!(
            part["size"],
            built.last_lba + 1 - built.first_lba,
            "{name}: {label}"
        );
        assert_eq!(
            built.first_lba % 2048,
            0,
            "{name}: {label} is 1 MiB aligned"
        );
    }
    assert_eq!(
        image.data_partuuid.to_string(),
        derived.data_partuuid(),
        "{name}"
    );
    assert_eq!(
        image.verity_partuuid.to_string(),
        derived.verity_partuuid(),
        "{name}"
    );

    // 2. liftoff's GPT reader reads the same table.
    let bytes = fs::read(&image.path).unwrap();
    let parsed = gpt::parse(&bytes, 512).unwrap();
    let ours: Vec<_> = parsed
        .partitions
        .iter()
        .map(|p| {
            (
                p.number,
                p.name.clone(),
                p.type_guid,
                p.uuid,
                p.first_lba,
                p.last_lba,
            )
        })
        .collect();
    let built: Vec<_> = image
        .partitions
        .iter()
        .map(|p| {
            (
                p.number,
                p.name.clone(),
                p.type_guid,
                p.uuid,
                p.first_lba,
                p.last_lba,
            )
        })
        .collect();
    assert_eq!(ours, built, "{name}: gpt::parse");

    // 3. The root and its tree, extracted, verify with both tools.
    let p1 = work.join(format!("{name}.p1"));
    let p2 = work.join(format!("{name}.p2"));
    image.extract_partition(1, &p1).unwrap();
    image.extract_partition(2, &p2).unwrap();
    let (ok, out) = veritysetup_verify(&p1, &p2, &image.root_hash);
    assert!(ok, "{name}: veritysetup verify: {out}");
    let root_hash = hex_decode(&image.root_hash);
    verify(&p1, &p2, &root_hash, &VerifyOptions::default()).unwrap();

    // 4. blkid names the root filesystem; the DATA partition is blank.
    let (ok, out) = run(Command::new("blkid")
        .args(["-p", "-o", "value", "-s", "TYPE"])
        .arg(&p1));
    assert!(ok, "{name}: blkid: {out}");
    assert_eq!(out.trim(), fs_type, "{name}: blkid");
    let data = image.partitions[2].offset() as usize;
    assert!(
        bytes[data..data + image.partitions[2].len() as usize]
            .iter()
            .all(|&b| b == 0),
        "{name}: DATA is blank"
    );

    // 5. One flipped byte in the filesystem's superblock block fails both.
    let mut corrupt = fs::read(&p1).unwrap();
    corrupt[1024 + 7] ^= 0x40;
    fs::write(&p1, corrupt).unwrap();
    let (ok, out) = veritysetup_verify(&p1, &p2, &image.root_hash);
    assert!(
        !ok,
        "{name}: veritysetup verify accepted a flipped byte: {out}"
    );
    assert!(
        verify(&p1, &p2, &root_hash, &VerifyOptions::default()).is_err(),
        "{name}: verity::verify accepted a flipped byte"
    );
}

#[test]
#[ignore = "needs erofs-utils, e2fsprogs, cryptsetup-bin, fdisk: run by cargo xtask test"]
fn images_match_sfdisk_blkid_and_veritysetup() {
    // (name, root filesystem, tree writer, blkid's TYPE)
    let cases = [
        ("erofs-liftoff", RootFs::Erofs, VerityTool::Liftoff, "erofs"),
        ("ext4-liftoff", RootFs::Ext4, VerityTool::Liftoff, "ext4"),
        (
            "erofs-veritysetup",
            RootFs::Erofs,
            VerityTool::Veritysetup,
            "erofs",
        ),
        (
            "ext4-veritysetup",
            RootFs::Ext4,
            VerityTool::Veritysetup,
            "ext4",
        ),
    ];
    let staging = staging();
    let work = tempfile::tempdir().unwrap();
    for (name, root_fs, tool, fs_type) in cases {
        let out = work.path().join(format!("{name}.img"));
        let image = DiskImage::builder(staging.path())
            .root_fs(root_fs)
            .verity_tool(tool)
            .data_size(2 << 20)
            .build(&out)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        check(name, &image, fs_type, work.path());
    }
}

#[test]
#[ignore = "needs erofs-utils, e2fsprogs, cryptsetup-bin, fdisk: run by cargo xtask test"]
fn seeded_erofs_images_are_reproducible() {
    let staging = staging();
    let work = tempfile::tempdir().unwrap();
    // (name, seed, tree writer): the same seed gives the same bytes
    // whichever tool writes the tree.
    let cases = [
        ("a", "seed-1", VerityTool::Liftoff),
        ("b", "seed-1", VerityTool::Liftoff),
        ("c", "seed-1", VerityTool::Veritysetup),
        ("d", "seed-2", VerityTool::Liftoff),
    ];
    let built: Vec<(BuiltImage, Vec<u8>)> = cases
        .iter()
        .map(|&(name, seed, tool)| {
            let out = work.path().join(format!("{name}.img"));
            let image = DiskImage::builder(staging.path())
                .seed(seed)
                .verity_tool(tool)
                .data_size(1 << 20)
                .build(&out)
                .unwrap();
            let bytes = fs::read(&out).unwrap();
            (image, bytes)
        })
        .collect();
    assert_eq!(built[0].0.root_hash, built[1].0.root_hash);
    assert!(built[0].1 == built[1].1, "same seed, same bytes");
    assert_eq!(
        built[0].0.root_hash, built[2].0.root_hash,
        "veritysetup agrees"
    );
    assert!(built[0].1 == built[2].1, "veritysetup's tree, same bytes");
    assert_ne!(built[0].0.root_hash, built[3].0.root_hash, "another seed");
}

#[test]
fn missing_staging_dir_names_the_path() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("no-such-staging");
    // ext4 sizes the tree before running any tool, so this needs none.
    let err = DiskImage::builder(&missing)
        .root_fs(RootFs::Ext4)
        .build(&work.path().join("out.img"))
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::Io { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(!work.path().join("out.img").exists(), "nothing written");
}
