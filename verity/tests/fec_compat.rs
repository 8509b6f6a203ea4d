//! FEC parity compared byte for byte with `veritysetup format --fec-device`.
//!
//! Each case builds the data (and the hash tree) with veritysetup itself,
//! then checks that:
//! * `areas_for` names the same input areas veritysetup logs with `--debug`
//!   ("FEC input <dev>, offset <o> [bytes], length <l> [bytes]");
//! * `write_parity` over those areas writes exactly veritysetup's parity,
//!   both into a fresh file and in place on veritysetup's own FEC device;
//! * the layout matches what veritysetup prints ("FEC blocks" = parity
//!   blocks) and the kernel table fields cryptsetup would load:
//!   `fec_blocks` = data blocks + covered hash blocks (`VERITY_FEC_blocks`
//!   in cryptsetup's lib/verity/verity_fec.c), `fec_start` =
//!   `fec_offset / block_size` (`dm_verity_target_set` in
//!   lib/libdevmapper.c). veritysetup cannot print the table without
//!   device-mapper, so those two are asserted from the formulas;
//! * `check_parity` accepts the parity and names the first corrupted byte.

// Helpers may unwrap like the tests themselves (clippy.toml allows it in
// tests, and this file is only ever built as one).
#![cfg(test)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use verity::fec::{
    self, CoveredDevices, FecArea, FecError, FecParams, areas_for, check_parity, write_parity,
};

const SALT: &str = "5a1f00d5a1f00d5a1f00d5a1f00d5a1f";
const UUID: &str = "0b5e55ed-fec0-4ab5-9d1e-c0ffee123456";
/// Data sizes above this get the byte comparison and one check only.
const LARGE: u64 = 4 << 20;

/// Where the three areas live.
#[derive(Debug, Clone, Copy)]
enum Placement {
    /// data, hash, fec: three files.
    Separate,
    /// data; hash tree then FEC parity in one file.
    FecAfterHash,
    /// data, hash tree and FEC parity all in one file.
    OneFile,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    block_size: u32,
    data_blocks: u64,
    roots: u8,
    placement: Placement,
    /// Extra FEC offset: for `Separate`, the offset itself; otherwise the
    /// gap in blocks between the end of the hash tree and the parity.
    fec_gap: u64,
    /// Bytes of filler after the hash tree that the hash device holds
    /// before formatting (foreign metadata veritysetup also covers).
    hash_filler: u64,
}

impl Case {
    const fn new(name: &'static str, block_size: u32, data_blocks: u64, roots: u8) -> Case {
        Case {
            name,
            block_size,
            data_blocks,
            roots,
            placement: Placement::Separate,
            fec_gap: 0,
            hash_filler: 0,
        }
    }
    const fn placed(mut self, placement: Placement, fec_gap: u64) -> Case {
        self.placement = placement;
        self.fec_gap = fec_gap;
        self
    }
    const fn filler(mut self, bytes: u64) -> Case {
        self.hash_filler = bytes;
        self
    }
}

/// Blocks of a sha256 hash tree (format 1) over `data_blocks`, as
/// veritysetup counts levels.
fn tree_blocks(data_blocks: u64, block_size: u32) -> u64 {
    let per_block = u64::from(block_size) / 32;
    // A single data block has no tree: its digest is the root hash.
    let (mut n, mut total) = (data_blocks, 0);
    while n > 1 {
        n = n.div_ceil(per_block);
        total += n;
    }
    total
}

/// Deterministic non-zero-ish bytes (xorshift64*).
fn pseudo_random(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// The "FEC input" lines of veritysetup's debug log: (device, offset, len).
fn logged_inputs(log: &str) -> Vec<(String, u64, u64)> {
    log.lines()
        .filter_map(|l| l.strip_prefix("# FEC input "))
        .map(|rest| {
            let (dev, rest) = rest.split_once(", offset ").unwrap();
            let (offset, rest) = rest.split_once(" [bytes], length ").unwrap();
            let len = rest.trim_end_matches(" [bytes]");
            (
                dev.to_owned(),
                offset.parse().unwrap(),
                len.parse().unwrap(),
            )
        })
        .collect()
}

/// A value veritysetup prints as "<label>:\t<value>".
fn printed(out: &str, label: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.strip_prefix(label)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

struct Paths {
    data: PathBuf,
    hash: PathBuf,
    fec: PathBuf,
}

fn run_case(case: &Case) {
    let name = case.name;
    let dir = tempfile::tempdir().unwrap();
    let bs = u64::from(case.block_size);
    let data_bytes = case.data_blocks * bs;
    let tree = tree_blocks(case.data_blocks, case.block_size);
    let p = Paths {
        data: dir.path().join("data"),
        hash: dir.path().join("hash"),
        fec: dir.path().join("fec"),
    };

    // 1. Lay out the files and the offsets.
    let (hash_offset, fec_offset, paths) = match case.placement {
        Placement::Separate => (
            0,
            case.fec_gap,
            (p.data.clone(), p.hash.clone(), p.fec.clone()),
        ),
        Placement::FecAfterHash => {
            let fec_offset = (1 + tree + case.fec_gap) * bs;
            (
                0,
                fec_offset,
                (p.data.clone(), p.hash.clone(), p.hash.clone()),
            )
        }
        Placement::OneFile => {
            let fec_offset = data_bytes + (1 + tree + case.fec_gap) * bs;
            (
                data_bytes,
                fec_offset,
                (p.data.clone(), p.data.clone(), p.data.clone()),
            )
        }
    };
    let (data, hash, fec_dev) = (&paths.0, &paths.1, &paths.2);
    fs::write(
        data,
        pseudo_random(data_bytes, case.data_blocks * 31 + u64::from(case.roots)),
    )
    .unwrap();
    if case.hash_filler > 0 {
        let filler_at = hash_offset + (1 + tree) * bs;
        let mut bytes = fs::read(hash).unwrap_or_default();
        bytes.resize(usize::try_from(filler_at).unwrap(), 0);
        bytes.extend(pseudo_random(case.hash_filler, 99));
        fs::write(hash, bytes).unwrap();
    }

    // 2. veritysetup builds the tree and the parity.
    let mut cmd = Command::new("veritysetup");
    cmd.arg("format")
        .arg(data)
        .arg(hash)
        .arg("--fec-device")
        .arg(fec_dev)
        .args(["--fec-roots", &case.roots.to_string()])
        .args(["--salt", SALT, "--uuid", UUID, "--debug"])
        .args([
            "--data-block-size",
            &bs.to_string(),
            "--hash-block-size",
            &bs.to_string(),
        ])
        .args(["--data-blocks", &case.data_blocks.to_string()]);
    if fec_offset > 0 {
        cmd.args(["--fec-offset", &fec_offset.to_string()]);
    }
    if hash_offset > 0 {
        cmd.args(["--hash-offset", &hash_offset.to_string()]);
    }
    let out = cmd.output().expect("veritysetup runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: veritysetup failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        printed(&stdout, "Hash blocks"),
        Some(tree),
        "{name}: hash tree size"
    );

    // 3. The covered areas match veritysetup's log.
    let hash_start_block = (hash_offset + 512).div_ceil(bs);
    let dev = CoveredDevices {
        data,
        data_blocks: case.data_blocks,
        hash,
        hash_start_block,
        hash_blocks: tree,
        block_size: case.block_size,
    };
    let areas = areas_for(&dev, fec_dev, fec_offset).unwrap();
    let logged = logged_inputs(&stdout);
    // veritysetup leaves an empty hash area out of its list.
    let ours: Vec<(String, u64, u64)> = areas
        .iter()
        .filter(|a| a.len > 0)
        .map(|a| (a.path.display().to_string(), a.offset, a.len))
        .collect();
    assert_eq!(ours, logged, "{name}: covered areas");

    // 4. Our parity, in a fresh file at the same offset, is veritysetup's.
    let params = FecParams {
        roots: case.roots,
        block_size: case.block_size,
    };
    let fresh = dir.path().join("ours");
    let layout = write_parity(&areas, &params, &fresh, fec_offset).unwrap();
    let theirs = fs::read(fec_dev).unwrap();
    let start = usize::try_from(fec_offset).unwrap();
    let end = usize::try_from(fec_offset + layout.parity_bytes).unwrap();
    assert!(
        theirs.len() >= end,
        "{name}: veritysetup's fec device is {} bytes, expected {end}",
        theirs.len()
    );
    let ours_bytes = fs::read(&fresh).unwrap();
    assert_eq!(ours_bytes.len(), end, "{name}: our fec file length");
    if let Some(at) = (start..end).find(|&i| ours_bytes[i] != theirs[i]) {
        panic!(
            "{name}: parity differs at byte {at} (parity offset {})",
            at - start
        );
    }
    if matches!(case.placement, Placement::Separate) {
        assert_eq!(theirs.len(), end, "{name}: veritysetup's fec file length");
    }

    // 5. Layout and table fields.
    let covered_hash = areas[1].len / bs;
    assert_eq!(
        layout.blocks,
        case.data_blocks + covered_hash,
        "{name}: fec_blocks"
    );
    assert!(
        layout.blocks >= case.data_blocks + tree,
        "{name}: the kernel needs fec_blocks to cover the tree"
    );
    let rsn = 255 - u64::from(case.roots);
    assert_eq!(
        layout.parity_bytes,
        layout.blocks.div_ceil(rsn) * bs * u64::from(case.roots),
        "{name}"
    );
    assert_eq!(
        printed(&stdout, "FEC blocks"),
        Some(layout.parity_bytes / bs),
        "{name}: parity blocks"
    );
    // veritysetup 2.6.1 prints the FEC device size only without an offset.
    if matches!(case.placement, Placement::Separate) && fec_offset == 0 {
        assert_eq!(
            printed(&stdout, "FEC device size"),
            Some(layout.parity_bytes),
            "{name}"
        );
    }
    assert_eq!(
        fec::fec_start(fec_offset, case.block_size).unwrap(),
        fec_offset / bs,
        "{name}: fec_start"
    );

    // 6. check_parity accepts veritysetup's parity.
    check_parity(&areas, &params, fec_dev, fec_offset).unwrap();
    if data_bytes > LARGE {
        // The small cases cover the rest; each pass costs seconds unoptimised.
        return;
    }

    // 7. In place on veritysetup's own device: rewriting gives the same file.
    let mut zeroed = theirs.clone();
    zeroed[start..end].fill(0);
    fs::write(fec_dev, &zeroed).unwrap();
    assert_eq!(
        write_parity(&areas, &params, fec_dev, fec_offset).unwrap(),
        layout,
        "{name}"
    );
    assert!(
        fs::read(fec_dev).unwrap() == theirs,
        "{name}: in-place parity differs"
    );

    // 8. check_parity names a corrupted parity byte.
    let corrupt_at = fec_offset + layout.parity_bytes / 2 + 1;
    let mut corrupt = theirs;
    corrupt[usize::try_from(corrupt_at).unwrap()] ^= 0x40;
    fs::write(fec_dev, &corrupt).unwrap();
    match check_parity(&areas, &params, fec_dev, fec_offset) {
        Err(FecError::Mismatch { offset, .. }) => assert_eq!(offset, corrupt_at, "{name}"),
        other => panic!("{name}: expected a mismatch, got {other:?}"),
    }
}

fn run_all(cases: &[Case]) {
    for case in cases {
        run_case(case);
    }
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn separate_files_4096() {
    run_all(&[
        Case::new("4096, 1 block, 2 roots", 4096, 1, 2),
        Case::new("4096, 128 blocks, 2 roots", 4096, 128, 2),
        Case::new("4096, 129 blocks, 2 roots", 4096, 129, 2),
        Case::new("4096, 1 block, 13 roots", 4096, 1, 13),
        Case::new("4096, 129 blocks, 13 roots", 4096, 129, 13),
        Case::new("4096, 1 block, 24 roots", 4096, 1, 24),
        Case::new("4096, 128 blocks, 24 roots", 4096, 128, 24),
        Case::new("4096, 129 blocks, 24 roots", 4096, 129, 24),
        Case::new("4096, 16385 blocks, 2 roots", 4096, 16385, 2),
    ]);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn separate_files_512() {
    run_all(&[
        Case::new("512, 1 block, 2 roots", 512, 1, 2),
        Case::new("512, 128 blocks, 2 roots", 512, 128, 2),
        Case::new("512, 129 blocks, 13 roots", 512, 129, 13),
        Case::new("512, 129 blocks, 24 roots", 512, 129, 24),
        Case::new("512, 16385 blocks, 2 roots", 512, 16385, 2),
        Case::new("512, 16385 blocks, 13 roots", 512, 16385, 13),
        Case::new("512, 16385 blocks, 24 roots", 512, 16385, 24),
    ]);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn separate_files_with_fec_offset() {
    use Placement::Separate;
    run_all(&[
        Case::new("4096, 129 blocks, 2 roots, offset 1 MiB", 4096, 129, 2)
            .placed(Separate, 1 << 20),
        Case::new("4096, 129 blocks, 24 roots, offset 8 KiB", 4096, 129, 24).placed(Separate, 8192),
        Case::new("512, 129 blocks, 13 roots, offset 512", 512, 129, 13).placed(Separate, 512),
        Case::new("512, 16385 blocks, 24 roots, offset 1 MiB", 512, 16385, 24)
            .placed(Separate, 1 << 20),
    ]);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn hash_device_larger_than_tree() {
    // Without a FEC offset on the hash device, veritysetup covers the whole
    // rest of the hash device after the tree, foreign bytes included.
    run_all(&[
        Case::new("4096, 129 blocks, 2 roots, filler", 4096, 129, 2).filler(5 * 4096 + 100),
        Case::new("512, 128 blocks, 24 roots, filler", 512, 128, 24).filler(3000),
    ]);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn fec_after_hash_tree_on_the_hash_device() {
    use Placement::FecAfterHash;
    run_all(&[
        Case::new("4096, 1 block, 2 roots, same file", 4096, 1, 2).placed(FecAfterHash, 0),
        Case::new("4096, 129 blocks, 13 roots, same file", 4096, 129, 13).placed(FecAfterHash, 0),
        Case::new("4096, 129 blocks, 24 roots, same file", 4096, 129, 24).placed(FecAfterHash, 0),
        Case::new("512, 129 blocks, 2 roots, same file", 512, 129, 2).placed(FecAfterHash, 0),
        Case::new("512, 16385 blocks, 24 roots, same file", 512, 16385, 24).placed(FecAfterHash, 0),
        // A gap of foreign bytes between the tree and the parity is covered.
        Case::new("4096, 129 blocks, 2 roots, same file, gap", 4096, 129, 2)
            .placed(FecAfterHash, 3)
            .filler(3 * 4096),
    ]);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn data_hash_and_fec_in_one_file() {
    use Placement::OneFile;
    run_all(&[
        Case::new("4096, 129 blocks, 2 roots, one file", 4096, 129, 2).placed(OneFile, 0),
        Case::new("512, 128 blocks, 24 roots, one file", 512, 128, 24).placed(OneFile, 0),
        Case::new("4096, 1 block, 13 roots, one file", 4096, 1, 13).placed(OneFile, 0),
    ]);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn roots_range_matches_veritysetup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::write(&data, pseudo_random(8 * 4096, 7)).unwrap();
    let area = [FecArea {
        path: &data,
        offset: 0,
        len: 8 * 4096,
    }];
    for roots in [0u8, 1, 2, 24, 25, 255] {
        let hash = dir.path().join(format!("hash{roots}"));
        let fec_dev = dir.path().join(format!("fec{roots}"));
        let theirs = Command::new("veritysetup")
            .arg("format")
            .arg(&data)
            .arg(&hash)
            .arg("--fec-device")
            .arg(&fec_dev)
            .args([
                "--fec-roots",
                &roots.to_string(),
                "--salt",
                SALT,
                "--uuid",
                UUID,
            ])
            .output()
            .expect("veritysetup runs")
            .status
            .success();
        let ours = write_parity(
            &area,
            &FecParams {
                roots,
                block_size: 4096,
            },
            &dir.path().join("ours"),
            0,
        );
        assert_eq!(ours.is_ok(), theirs, "roots {roots}: ours {ours:?}");
        if let Err(e) = ours {
            assert!(
                matches!(e, FecError::Roots { roots: r } if r == roots),
                "roots {roots}: {e}"
            );
        }
    }
}

/// The hex salt as bytes.
fn salt_bytes() -> Vec<u8> {
    (0..SALT.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&SALT[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn through_format_matches_veritysetup() {
    use verity::format::{FecOptions, FormatOptions, format};

    // (name, roots, fec on the hash device after the tree)
    let cases = [
        ("separate fec file", 24u8, false),
        ("fec after the hash tree", 2, true),
    ];
    for (name, roots, same_file) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::write(&data, pseudo_random(300 * 4096, 5)).unwrap();
        let (ours_hash, theirs_hash) =
            (dir.path().join("ours-hash"), dir.path().join("theirs-hash"));
        let fec_offset = if same_file {
            (1 + tree_blocks(300, 4096)) * 4096
        } else {
            0
        };
        let fec_for = |hash: &PathBuf, tag: &str| {
            if same_file {
                hash.clone()
            } else {
                dir.path().join(format!("{tag}-fec"))
            }
        };
        let (ours_fec, theirs_fec) = (fec_for(&ours_hash, "ours"), fec_for(&theirs_hash, "theirs"));

        let opts = FormatOptions {
            salt: Some(salt_bytes()),
            uuid: Some(UUID.parse().unwrap()),
            fec: Some(FecOptions {
                device: ours_fec.clone(),
                offset: fec_offset,
                roots,
            }),
            ..FormatOptions::default()
        };
        let report = format(&data, &ours_hash, &opts).unwrap();

        let mut cmd = Command::new("veritysetup");
        cmd.arg("format")
            .arg(&data)
            .arg(&theirs_hash)
            .arg("--fec-device")
            .arg(&theirs_fec)
            .args([
                "--fec-roots",
                &roots.to_string(),
                "--salt",
                SALT,
                "--uuid",
                UUID,
            ]);
        if fec_offset > 0 {
            cmd.args(["--fec-offset", &fec_offset.to_string()]);
        }
        let out = cmd.output().expect("veritysetup runs");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);

        let layout = report.fec.expect("format reports the fec layout");
        assert_eq!(
            printed(&stdout, "FEC blocks"),
            Some(layout.parity_bytes / 4096),
            "{name}"
        );
        assert_eq!(
            layout.blocks,
            300 + tree_blocks(300, 4096),
            "{name}: fec_blocks"
        );
        assert!(
            fs::read(&ours_fec).unwrap() == fs::read(&theirs_fec).unwrap(),
            "{name}: fec differs"
        );
        assert!(
            fs::read(&ours_hash).unwrap() == fs::read(&theirs_hash).unwrap(),
            "{name}: hash differs"
        );
    }
}
