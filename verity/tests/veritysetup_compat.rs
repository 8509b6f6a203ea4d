//! liftoff's format and verify against cryptsetup's `veritysetup` 2.6:
//! the same options must give the same root hash and the same hash device,
//! byte for byte, and each tool must accept the other's output.
//!
//! These tests run the real `veritysetup` (Debian's cryptsetup-bin); `cargo
//! xtask test` runs them with `--include-ignored`.

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use verity::format::{FormatOptions, format};
use verity::superblock::Uuid;
use verity::verify::{Corruption, ExplicitParams, VerifyError, VerifyOptions, hex, verify};
use verity::{Algorithm, HashType};

const UUID: &str = "12345678-1234-1234-1234-123456789abc";

/// Deterministic, incompressible-looking bytes.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn base(salt: &[u8]) -> FormatOptions {
    FormatOptions {
        salt: Some(salt.to_vec()),
        uuid: Some(UUID.parse::<Uuid>().unwrap()),
        ..FormatOptions::default()
    }
}

/// The veritysetup options equivalent to ours (shared by format and
/// verify; veritysetup ignores the ones a superblock overrides).
fn veritysetup_args(o: &FormatOptions) -> Vec<String> {
    let salt = o.salt.as_deref().unwrap_or_default();
    let mut args = vec![
        format!("--format={}", o.hash_type.number()),
        format!("--hash={}", o.algorithm),
        format!("--data-block-size={}", o.data_block_size),
        format!("--hash-block-size={}", o.hash_block_size),
        format!("--hash-offset={}", o.hash_offset),
        format!(
            "--salt={}",
            if salt.is_empty() {
                "-".into()
            } else {
                hex(salt)
            }
        ),
        format!("--uuid={UUID}"),
    ];
    if let Some(n) = o.data_blocks {
        args.push(format!("--data-blocks={n}"));
    }
    if !o.superblock {
        args.push("--no-superblock".into());
    }
    args
}

fn veritysetup(action: &str, paths: &[&Path], extra: &[String], args: &[String]) -> (bool, String) {
    let out = Command::new("veritysetup")
        .arg(action)
        .args(paths)
        .args(extra)
        .args(args)
        .output()
        .expect("veritysetup runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn verify_options(o: &FormatOptions) -> VerifyOptions {
    VerifyOptions {
        hash_offset: o.hash_offset,
        no_superblock: (!o.superblock).then(|| ExplicitParams {
            hash_type: o.hash_type,
            algorithm: o.algorithm,
            data_block_size: o.data_block_size,
            hash_block_size: o.hash_block_size,
            data_blocks: o.data_blocks,
            salt: o.salt.clone().unwrap_or_default(),
        }),
        ..VerifyOptions::default()
    }
}

struct Case {
    name: &'static str,
    data_len: usize,
    opts: FormatOptions,
}

/// Formats with both tools; asserts equal roots and hash files; verifies
/// each tool's output with the other tool.
fn check(dir: &Path, case: &Case) {
    let name = case.name;
    let data = dir.join(format!("{name}.data"));
    let theirs = dir.join(format!("{name}.vs-hash"));
    let ours = dir.join(format!("{name}.our-hash"));
    fs::write(&data, pseudo_random(case.data_len, case.data_len as u64)).unwrap();
    let args = veritysetup_args(&case.opts);
    let (ok, text) = veritysetup("format", &[&data, &theirs], &[], &args);
    assert!(ok, "{name}: veritysetup format failed: {text}");
    let their_root = text
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .map(|r| r.trim().to_owned())
        .unwrap_or_else(|| panic!("{name}: no root hash in {text}"));
    let report = format(&data, &ours, &case.opts).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(hex(&report.root_hash), their_root, "{name}: root hash");
    let (a, b) = (fs::read(&theirs).unwrap(), fs::read(&ours).unwrap());
    assert_eq!(a.len(), b.len(), "{name}: hash file sizes");
    if let Some(at) = a.iter().zip(&b).position(|(x, y)| x != y) {
        panic!("{name}: hash files differ first at byte {at}");
    }
    // Ours verified by veritysetup, theirs by ours.
    let (ok, text) = veritysetup(
        "verify",
        &[&data, &ours],
        std::slice::from_ref(&their_root),
        &args,
    );
    assert!(ok, "{name}: veritysetup verify of our hash: {text}");
    verify(
        &data,
        &theirs,
        &report.root_hash,
        &verify_options(&case.opts),
    )
    .unwrap_or_else(|e| panic!("{name}: our verify of theirs: {e:?}"));
}

fn run_cases(cases: &[Case]) {
    let dir = tempfile::tempdir().unwrap();
    for case in cases {
        check(dir.path(), case);
    }
}

const BLOCK: usize = 4096;

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn salts() {
    let cases = [
        ("salt_empty", vec![]),
        ("salt_1_byte", vec![0xa5]),
        ("salt_32_bytes", pseudo_random(32, 1)),
        ("salt_256_bytes", pseudo_random(256, 2)),
    ];
    let cases: Vec<Case> = cases
        .into_iter()
        .map(|(name, salt)| Case {
            name,
            data_len: 129 * BLOCK,
            opts: base(&salt),
        })
        .collect();
    run_cases(&cases);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn salt_over_256_bytes_is_refused_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::write(&data, pseudo_random(8 * BLOCK, 3)).unwrap();
    let opts = base(&pseudo_random(257, 4));
    let (ok, _) = veritysetup(
        "format",
        &[&data, &dir.path().join("theirs")],
        &[],
        &veritysetup_args(&opts),
    );
    assert!(!ok, "veritysetup accepted a 257-byte salt");
    let e = format(&data, &dir.path().join("ours"), &opts).unwrap_err();
    assert!(e.to_string().contains("257"), "{e}");
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn hash_types_and_algorithms() {
    let mut cases = Vec::new();
    for (ty, tname) in [(HashType::ChromeOs, "type0"), (HashType::Normal, "type1")] {
        for alg in Algorithm::ALL {
            let name: &'static str = Box::leak(format!("{tname}_{alg}").into_boxed_str());
            cases.push(Case {
                name,
                // 1024-byte hash blocks: several levels from little data.
                data_len: 300 * 1024,
                opts: FormatOptions {
                    hash_type: ty,
                    algorithm: alg,
                    data_block_size: 1024,
                    hash_block_size: 1024,
                    ..base(&pseudo_random(32, 5))
                },
            });
        }
    }
    run_cases(&cases);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn block_sizes() {
    let sizes: [(&str, u32, u32); 9] = [
        ("d512_h512", 512, 512),
        ("d1024_h4096", 1024, 4096),
        ("d4096_h512", 4096, 512),
        ("d2048_h8192", 2048, 8192),
        ("d16384_h16384", 16384, 16384),
        ("d32768_h1024", 32768, 1024),
        ("d65536_h65536", 65536, 65536),
        ("d512_h65536", 512, 65536),
        ("d131072_h4096", 131072, 4096),
    ];
    let cases: Vec<Case> = sizes
        .into_iter()
        .map(|(name, d, h)| Case {
            name,
            data_len: 40 * d as usize,
            opts: FormatOptions {
                data_block_size: d,
                hash_block_size: h,
                // sha512 in small hash blocks: 8 digests per block.
                algorithm: if h == 512 {
                    Algorithm::Sha512
                } else {
                    Algorithm::Sha256
                },
                ..base(&pseudo_random(32, 6))
            },
        })
        .collect();
    run_cases(&cases);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn offsets_superblock_and_data_sizes() {
    let salt = pseudo_random(32, 7);
    let cases = [
        Case {
            name: "hash_offset_aligned",
            data_len: 129 * BLOCK,
            opts: FormatOptions {
                hash_offset: 3 * 4096,
                ..base(&salt)
            },
        },
        Case {
            name: "no_superblock",
            data_len: 129 * BLOCK,
            opts: FormatOptions {
                superblock: false,
                ..base(&salt)
            },
        },
        Case {
            name: "no_superblock_with_offset",
            data_len: 129 * BLOCK,
            opts: FormatOptions {
                superblock: false,
                hash_offset: 8192,
                ..base(&salt)
            },
        },
        Case {
            name: "data_blocks_below_device_size",
            data_len: 200 * BLOCK,
            opts: FormatOptions {
                data_blocks: Some(130),
                ..base(&salt)
            },
        },
        Case {
            name: "partial_trailing_block",
            data_len: 129 * BLOCK + 1000,
            opts: base(&salt),
        },
        Case {
            name: "one_block",
            data_len: BLOCK,
            opts: base(&salt),
        },
        Case {
            name: "one_block_offset",
            data_len: BLOCK,
            opts: FormatOptions {
                hash_offset: 8192,
                ..base(&salt)
            },
        },
        Case {
            name: "one_block_no_superblock",
            data_len: BLOCK,
            opts: FormatOptions {
                superblock: false,
                ..base(&salt)
            },
        },
        Case {
            name: "blocks_128",
            data_len: 128 * BLOCK,
            opts: base(&salt),
        },
        Case {
            name: "blocks_129",
            data_len: 129 * BLOCK,
            opts: base(&salt),
        },
        Case {
            // 16385 small blocks: three levels of 128 digests.
            name: "blocks_16385",
            data_len: 16385 * 512,
            opts: FormatOptions {
                data_block_size: 512,
                ..base(&salt)
            },
        },
    ];
    run_cases(&cases);
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn refusals_shared_with_veritysetup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::write(&data, pseudo_random(16 * BLOCK, 8)).unwrap();
    let salt = pseudo_random(32, 9);
    let cases = [
        (
            "data_blocks_beyond_device",
            FormatOptions {
                data_blocks: Some(17),
                ..base(&salt)
            },
        ),
        (
            "block_size_not_power_of_two",
            FormatOptions {
                data_block_size: 3000,
                ..base(&salt)
            },
        ),
        (
            "block_size_too_large",
            FormatOptions {
                hash_block_size: 1 << 20,
                ..base(&salt)
            },
        ),
    ];
    for (name, opts) in cases {
        let theirs = dir.path().join(format!("{name}.theirs"));
        let (ok, text) = veritysetup("format", &[&data, &theirs], &[], &veritysetup_args(&opts));
        assert!(!ok, "{name}: veritysetup accepted it: {text}");
        let ours = dir.path().join(format!("{name}.ours"));
        assert!(
            format(&data, &ours, &opts).is_err(),
            "{name}: we accepted it"
        );
    }
    // Hash area inside the data on the same device: both refuse.
    let opts = FormatOptions {
        hash_offset: 8 * 4096,
        ..base(&salt)
    };
    let (ok, _) = veritysetup("format", &[&data, &data], &[], &veritysetup_args(&opts));
    assert!(!ok);
    let e = format(&data, &data, &opts).unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
    // An unaligned hash offset: veritysetup moves the tree, we refuse.
    let opts = FormatOptions {
        hash_offset: 1024,
        ..base(&salt)
    };
    let e = format(&data, &dir.path().join("unaligned"), &opts).unwrap_err();
    let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(
        chain.contains("1024") && chain.contains("multiple"),
        "{chain}"
    );
}

fn flip(path: &PathBuf, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn corruptions(e: VerifyError) -> Vec<Corruption> {
    match e {
        VerifyError::Corrupt { corruptions, .. } => corruptions,
        other => panic!("not a corruption verdict: {other:?}"),
    }
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn tampering_names_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hash = dir.path().join("hash");
    // 16385 blocks of 512 bytes: levels of 129, 2 and 1 hash blocks, stored
    // top first at hash blocks 1, 2..=3, 4..=132.
    fs::write(&data, pseudo_random(16385 * 512, 10)).unwrap();
    let opts = FormatOptions {
        data_block_size: 512,
        ..base(&pseudo_random(32, 11))
    };
    let args = veritysetup_args(&opts);
    let (ok, text) = veritysetup("format", &[&data, &hash], &[], &args);
    assert!(ok, "{text}");
    let root_hex = text
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap()
        .trim()
        .to_owned();
    let root: Vec<u8> = (0..root_hex.len() / 2)
        .map(|i| u8::from_str_radix(&root_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let vo = verify_options(&opts);
    verify(&data, &hash, &root, &vo).unwrap();

    struct Tamper {
        name: &'static str,
        data_offset: Option<u64>,
        hash_offset: Option<u64>,
        want: Corruption,
    }
    let cases = [
        Tamper {
            name: "data byte in block 5000",
            data_offset: Some(5000 * 512 + 17),
            hash_offset: None,
            want: Corruption::DataBlock {
                index: 5000,
                offset: 5000 * 512,
            },
        },
        Tamper {
            name: "last data block",
            data_offset: Some(16384 * 512),
            hash_offset: None,
            want: Corruption::DataBlock {
                index: 16384,
                offset: 16384 * 512,
            },
        },
        Tamper {
            name: "level 0 digest",
            data_offset: None,
            hash_offset: Some(10 * 4096 + 64),
            want: Corruption::HashBlock {
                level: 0,
                index: 6,
                offset: 10 * 4096,
            },
        },
        Tamper {
            name: "level 0 zero padding",
            // Level 0's last block holds one digest: byte 100 is padding.
            data_offset: None,
            hash_offset: Some(132 * 4096 + 100),
            want: Corruption::HashBlock {
                level: 0,
                index: 128,
                offset: 132 * 4096,
            },
        },
        Tamper {
            name: "level 1",
            data_offset: None,
            hash_offset: Some(3 * 4096 + 5),
            want: Corruption::HashBlock {
                level: 1,
                index: 1,
                offset: 3 * 4096,
            },
        },
        Tamper {
            name: "top level",
            data_offset: None,
            hash_offset: Some(4096 + 40),
            want: Corruption::HashBlock {
                level: 2,
                index: 0,
                offset: 4096,
            },
        },
    ];
    for case in cases {
        let (d, h) = (dir.path().join("d"), dir.path().join("h"));
        fs::copy(&data, &d).unwrap();
        fs::copy(&hash, &h).unwrap();
        if let Some(at) = case.data_offset {
            flip(&d, at);
        }
        if let Some(at) = case.hash_offset {
            flip(&h, at);
        }
        let found = corruptions(verify(&d, &h, &root, &vo).unwrap_err());
        assert_eq!(found, [case.want], "{}", case.name);
        // veritysetup agrees that something is wrong.
        let (ok, _) = veritysetup("verify", &[&d, &h], std::slice::from_ref(&root_hex), &args);
        assert!(!ok, "{}: veritysetup verified it", case.name);
    }
    // A wrong root hash over an intact image.
    let mut wrong = root.clone();
    wrong[0] ^= 1;
    let found = corruptions(verify(&data, &hash, &wrong, &vo).unwrap_err());
    assert_eq!(
        found,
        [Corruption::RootHash {
            expected: wrong,
            computed: root
        }]
    );
}

#[test]
#[ignore = "needs veritysetup (cryptsetup-bin): run by cargo xtask test"]
fn fec_through_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::write(&data, pseudo_random(300 * BLOCK, 12)).unwrap();
    for (name, roots, offset) in [
        ("fec_roots_2", 2u8, 0u64),
        ("fec_roots_24_offset", 24, 8192),
    ] {
        let opts = FormatOptions {
            fec: Some(verity::format::FecOptions {
                device: dir.path().join(format!("{name}.our-fec")),
                offset,
                roots,
            }),
            ..base(&pseudo_random(32, 13))
        };
        let (theirs, their_fec) = (
            dir.path().join(format!("{name}.vs-hash")),
            dir.path().join(format!("{name}.vs-fec")),
        );
        let mut args = veritysetup_args(&opts);
        args.extend([
            format!("--fec-device={}", their_fec.display()),
            format!("--fec-roots={roots}"),
            format!("--fec-offset={offset}"),
        ]);
        let (ok, text) = veritysetup("format", &[&data, &theirs], &[], &args);
        assert!(ok, "{name}: {text}");
        let ours = dir.path().join(format!("{name}.our-hash"));
        let report = format(&data, &ours, &opts).unwrap();
        assert!(text.contains(&hex(&report.root_hash)), "{name}: root hash");
        assert_eq!(
            fs::read(&theirs).unwrap(),
            fs::read(&ours).unwrap(),
            "{name}: hash"
        );
        let our_fec = &opts.fec.as_ref().unwrap().device;
        assert_eq!(
            fs::read(&their_fec).unwrap(),
            fs::read(our_fec).unwrap(),
            "{name}: fec"
        );
        let layout = report.fec.unwrap();
        assert!(
            text.contains(&format!(
                "FEC blocks:     \t{}\n",
                layout.parity_bytes / 4096
            )),
            "{name}: {text}"
        );
    }
}
