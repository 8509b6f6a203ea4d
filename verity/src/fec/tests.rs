//! Host tests for FEC: layouts, validation, interleaving against a
//! codeword-at-a-time reference, and checking.

use std::fs;

use super::*;
use crate::rs;

const BS: u32 = 512;

fn params(roots: u8) -> FecParams {
    FecParams {
        roots,
        block_size: BS,
    }
}

#[test]
fn layout_follows_veritysetup_formulas() {
    let p = Path::new("d");
    let h = Path::new("h");
    // (name, roots, data blocks, hash blocks, fec_blocks, parity bytes)
    let cases: [(&str, u8, u64, u64, u64, u64); 5] = [
        ("one block", 2, 1, 0, 1, 512 * 2),
        ("exactly one round", 2, 250, 3, 253, 512 * 2),
        ("one past a round", 2, 250, 4, 254, 2 * 512 * 2),
        ("24 roots", 24, 231, 0, 231, 512 * 24),
        ("24 roots, two rounds", 24, 231, 1, 232, 2 * 512 * 24),
    ];
    for (name, roots, data, hash, blocks, parity_bytes) in cases {
        let areas = [
            FecArea {
                path: p,
                offset: 0,
                len: data * 512,
            },
            FecArea {
                path: h,
                offset: 512,
                len: hash * 512,
            },
        ];
        let got = layout(&areas, &params(roots)).unwrap();
        assert_eq!(
            got,
            FecLayout {
                blocks,
                parity_bytes
            },
            "{name}"
        );
    }
}

#[test]
fn validation_names_the_bad_value() {
    let p = Path::new("d");
    let ok = [FecArea {
        path: p,
        offset: 0,
        len: 4096,
    }];
    let cases: [(&str, &[FecArea<'_>], FecParams, &str); 8] = [
        (
            "roots 1",
            &ok,
            FecParams {
                roots: 1,
                block_size: 4096,
            },
            "fec roots 1 out of range",
        ),
        (
            "roots 25",
            &ok,
            FecParams {
                roots: 25,
                block_size: 4096,
            },
            "fec roots 25 out of range",
        ),
        (
            "block 1000",
            &ok,
            FecParams {
                roots: 2,
                block_size: 1000,
            },
            "fec block size 1000",
        ),
        (
            "block 256",
            &ok,
            FecParams {
                roots: 2,
                block_size: 256,
            },
            "fec block size 256",
        ),
        (
            "block 1 MiB",
            &ok,
            FecParams {
                roots: 2,
                block_size: 1 << 20,
            },
            "fec block size 1048576",
        ),
        (
            "no areas",
            &[],
            FecParams {
                roots: 2,
                block_size: 4096,
            },
            "at least one input area",
        ),
        (
            "empty data",
            &[FecArea {
                path: p,
                offset: 0,
                len: 0,
            }],
            FecParams {
                roots: 2,
                block_size: 4096,
            },
            "fec data area d is empty",
        ),
        (
            "misaligned",
            &[FecArea {
                path: p,
                offset: 512,
                len: 4096,
            }],
            FecParams {
                roots: 2,
                block_size: 4096,
            },
            "fec area d at offset 512, length 4096 is not aligned to the block size 4096",
        ),
    ];
    for (name, areas, params, want) in cases {
        let err = layout(areas, &params).unwrap_err().to_string();
        assert!(err.contains(want), "{name}: {err}");
    }
    assert_eq!(fec_start(8192, 4096).unwrap(), 2);
    assert!(matches!(
        fec_start(512, 4096),
        Err(FecError::MisalignedOffset {
            fec_offset: 512,
            block_size: 4096
        })
    ));
}

#[test]
fn covered_areas_stop_at_the_hash_end() {
    let dev = CoveredDevices {
        data: Path::new("d"),
        data_blocks: 10,
        hash: Path::new("h"),
        hash_start_block: 1,
        hash_blocks: 2,
        block_size: 4096,
    };
    // (name, hash end, covered hash bytes)
    let cases = [
        ("tree only", 3 * 4096, 2 * 4096),
        ("partial block dropped", 3 * 4096 + 100, 2 * 4096),
        ("foreign blocks after the tree", 7 * 4096, 6 * 4096),
        ("end before the tree start", 0, 0),
    ];
    for (name, end, len) in cases {
        let [data, hash] = covered_areas(&dev, end);
        assert_eq!(
            data,
            FecArea {
                path: Path::new("d"),
                offset: 0,
                len: 40960
            },
            "{name}"
        );
        assert_eq!(
            hash,
            FecArea {
                path: Path::new("h"),
                offset: 4096,
                len
            },
            "{name}"
        );
    }
}

/// The parity as veritysetup's loops compute it, one codeword at a time
/// through the interleave formula, over the concatenated input.
fn naive_parity(input: &[u8], roots: u8, bs: usize) -> Vec<u8> {
    let rsn = 255 - usize::from(roots);
    let blocks = input.len().div_ceil(bs);
    let rounds = blocks.div_ceil(rsn);
    let enc = rs::Encoder::new(usize::from(roots));
    let mut out = Vec::new();
    for n in 0..rounds {
        for b in 0..bs {
            let codeword: Vec<u8> = (0..rsn)
                .map(|i| {
                    // cryptsetup's FEC_interleave: RS offset
                    // n·rsn·bs + i is the start of the block read for
                    // symbol i; codeword b takes byte b of it.
                    let rs_offset = n * rsn * bs + i;
                    let block_start = rs_offset / rsn + (rs_offset % rsn) * rounds * bs;
                    input.get(block_start + b).copied().unwrap_or(0)
                })
                .collect();
            let mut parity = vec![0u8; usize::from(roots)];
            enc.encode(&codeword, &mut parity);
            out.extend(parity);
        }
    }
    out
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_single_byte_lands_in_the_codeword_the_interleave_names() {
    let dir = tempfile::tempdir().unwrap();
    // 300 blocks of 512 with 2 roots: rsn 253, so 2 rounds. Block 7 is
    // round 7 % 2 = 1, symbol 7 / 2 = 3; its byte 5 is codeword
    // (round 1, position 5), whose parity sits at (1·512 + 5)·2.
    let mut input = vec![0u8; 300 * 512];
    input[7 * 512 + 5] = 1;
    let data = write_file(dir.path(), "data", &input);
    let areas = [FecArea {
        path: &data,
        offset: 0,
        len: input.len() as u64,
    }];
    let fec = dir.path().join("fec");
    let got = write_parity(&areas, &params(2), &fec, 0).unwrap();
    assert_eq!(
        got,
        FecLayout {
            blocks: 300,
            parity_bytes: 2 * 512 * 2
        }
    );

    let parity = fs::read(&fec).unwrap();
    let enc = rs::Encoder::new(2);
    let mut unit = vec![0u8; 253];
    unit[3] = 1;
    let mut want = [0u8; 2];
    enc.encode(&unit, &mut want);
    let at = (512 + 5) * 2;
    assert_eq!(&parity[at..at + 2], &want);
    assert!(
        parity
            .iter()
            .enumerate()
            .all(|(i, &p)| p == 0 || (at..at + 2).contains(&i))
    );
}

#[test]
fn parity_matches_the_codeword_at_a_time_reference() {
    let dir = tempfile::tempdir().unwrap();
    // (name, roots, data blocks, hash offset blocks, hash blocks)
    let cases: [(&str, u8, usize, u64, usize); 5] = [
        ("one block", 2, 1, 1, 0),
        ("two rounds, 2 roots", 2, 300, 1, 20),
        ("9 roots (two register words)", 9, 260, 2, 3),
        ("17 roots (three words)", 17, 500, 1, 7),
        ("24 roots, several rounds", 24, 700, 3, 9),
    ];
    for (name, roots, data_blocks, hash_at, hash_blocks) in cases {
        let bs = BS as usize;
        let data: Vec<u8> = (0..data_blocks * bs)
            .map(|i| (i * 131 + i / 509) as u8)
            .collect();
        let hash_start = usize::try_from(hash_at).unwrap() * bs;
        let mut hash = vec![0xa5u8; hash_start];
        hash.extend((0..hash_blocks * bs).map(|i| (i * 17 + 3) as u8));
        let data_path = write_file(dir.path(), "data", &data);
        let hash_path = write_file(dir.path(), "hash", &hash);
        let areas = [
            FecArea {
                path: &data_path,
                offset: 0,
                len: data.len() as u64,
            },
            FecArea {
                path: &hash_path,
                offset: hash_start as u64,
                len: (hash_blocks * bs) as u64,
            },
        ];
        let fec = dir.path().join(format!("fec-{roots}"));
        write_parity(&areas, &params(roots), &fec, 1024).unwrap();

        let mut concatenated = data.clone();
        concatenated.extend_from_slice(&hash[hash_start..]);
        let want = naive_parity(&concatenated, roots, bs);
        let got = fs::read(&fec).unwrap();
        assert_eq!(got.len(), 1024 + want.len(), "{name}");
        assert!(got[1024..] == want[..], "{name}");
        check_parity(&areas, &params(roots), &fec, 1024).unwrap();
    }
}

#[test]
fn check_parity_names_the_first_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_file(dir.path(), "data", &vec![7u8; 600 * 512]);
    let areas = [FecArea {
        path: &data,
        offset: 0,
        len: 600 * 512,
    }];
    let fec = dir.path().join("fec");
    let layout = write_parity(&areas, &params(4), &fec, 512).unwrap();
    let mut bytes = fs::read(&fec).unwrap();
    bytes[512 + 3000] ^= 1;
    bytes[512 + 100] ^= 1;
    fs::write(&fec, &bytes).unwrap();
    let err = check_parity(&areas, &params(4), &fec, 512).unwrap_err();
    assert!(
        matches!(err, FecError::Mismatch { offset: 612, .. }),
        "{err}"
    );

    // A short FEC file is a read error at the missing parity's offset.
    bytes.truncate(usize::try_from(512 + layout.parity_bytes - 1).unwrap());
    fs::write(&fec, &bytes).unwrap();
    let err = check_parity(&areas, &params(4), &fec, 512).unwrap_err();
    assert!(matches!(err, FecError::Read { .. }), "{err}");
}

#[test]
fn refuses_parity_over_covered_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let img = write_file(dir.path(), "img", &vec![1u8; 64 * 512]);
    let areas = [
        FecArea {
            path: &img,
            offset: 0,
            len: 32 * 512,
        },
        FecArea {
            path: &img,
            offset: 33 * 512,
            len: 8 * 512,
        },
    ];
    // (name, fec offset, refused)
    let cases = [
        ("inside the data", 0, true),
        ("inside the hash", 40 * 512, true),
        ("in the gap but running into the hash", 32 * 512, true),
        ("after both", 41 * 512, false),
    ];
    for (name, offset, refused) in cases {
        let got = write_parity(&areas, &params(2), &img, offset);
        assert_eq!(
            matches!(got, Err(FecError::Overlap { .. })),
            refused,
            "{name}: {got:?}"
        );
    }
    let err = write_parity(&areas, &params(2), &img, 100).unwrap_err();
    assert!(
        matches!(
            err,
            FecError::MisalignedOffset {
                fec_offset: 100,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn areas_for_places_the_hash_end_like_veritysetup() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_file(dir.path(), "data", &vec![0u8; 10 * 512]);
    // Superblock block, 3 tree blocks, 2 foreign blocks and a tail.
    let hash = write_file(dir.path(), "hash", &vec![0u8; 6 * 512 + 100]);
    let dev = CoveredDevices {
        data: &data,
        data_blocks: 10,
        hash: &hash,
        hash_start_block: 1,
        hash_blocks: 3,
        block_size: BS,
    };
    let other = dir.path().join("fec-new");
    let [_, h] = areas_for(&dev, &other, 0).unwrap();
    assert_eq!(
        (h.offset, h.len),
        (512, 5 * 512),
        "separate device: to its end"
    );
    let [_, h] = areas_for(&dev, &hash, 4 * 512).unwrap();
    assert_eq!(
        (h.offset, h.len),
        (512, 3 * 512),
        "same device: to the fec offset"
    );
    let [_, h] = areas_for(&dev, &hash, 6 * 512).unwrap();
    assert_eq!(
        (h.offset, h.len),
        (512, 5 * 512),
        "same device, gap covered"
    );

    let err = areas_for(&dev, &hash, 3 * 512).unwrap_err();
    assert!(
        matches!(err, FecError::HashOverlap { hash_end: 2048, .. }),
        "{err}"
    );
    let err = areas_for(&dev, &data, 4 * 512).unwrap_err();
    assert!(
        matches!(err, FecError::DataOverlap { data_end: 5120, .. }),
        "{err}"
    );
    let small = CoveredDevices {
        hash_blocks: 9,
        ..dev
    };
    let err = areas_for(&small, &other, 0).unwrap_err();
    assert!(
        matches!(
            err,
            FecError::AreaPastEnd {
                end: 5120,
                size: 3172,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn areas_past_the_end_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_file(dir.path(), "data", &vec![0u8; 4 * 512]);
    let areas = [FecArea {
        path: &data,
        offset: 0,
        len: 5 * 512,
    }];
    let fec = dir.path().join("fec");
    let err = write_parity(&areas, &params(2), &fec, 0).unwrap_err();
    assert!(
        matches!(
            err,
            FecError::AreaPastEnd {
                end: 2560,
                size: 2048,
                ..
            }
        ),
        "{err}"
    );
    assert!(!fec.exists());
}
