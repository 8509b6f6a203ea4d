//! Host tests for the table line: named cases and round-trip oracles.

use proptest::prelude::*;

use super::*;

const DIGEST: &str = "4b1a5f1e8e4ac6e2b1ff7a4a1b0ed4cb62b6bc5ee40f6ae9a3a8c3e7ba9b2c4d";
const SALT: &str = "a2b1e2c5bdac0fd27a0ef3c8a1d4f7e6b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5";

fn hex(text: &str) -> Vec<u8> {
    parse_hex("test", text).unwrap()
}

/// Bottlerocket's `dm-mod.create=` verity arguments.
fn bottlerocket() -> String {
    format!(
        "1 PARTUUID=b5f3a1e2-0c4d-4f6e-8a9b-1c2d3e4f5a6b/PARTNROFF=1 \
         PARTUUID=b5f3a1e2-0c4d-4f6e-8a9b-1c2d3e4f5a6b/PARTNROFF=2 \
         4096 4096 262144 1 sha256 {DIGEST} {SALT} 2 restart_on_corruption ignore_zero_blocks"
    )
}

fn simple() -> VerityTable {
    VerityTable {
        hash_type: HashType::Normal,
        data_device: "/dev/vda".into(),
        hash_device: "/dev/vdb".into(),
        data_block_size: 4096,
        hash_block_size: 4096,
        data_blocks: 1024,
        hash_start_block: 1,
        algorithm: Algorithm::Sha256,
        root_digest: hex(DIGEST),
        salt: hex(SALT),
        options: TableOptions::default(),
    }
}

#[test]
fn bottlerocket_line_parses() {
    let table = VerityTable::parse(&bottlerocket()).unwrap();
    assert_eq!(table.hash_type, HashType::Normal);
    assert_eq!(
        table.data_device,
        "PARTUUID=b5f3a1e2-0c4d-4f6e-8a9b-1c2d3e4f5a6b/PARTNROFF=1"
    );
    assert!(table.hash_device.ends_with("/PARTNROFF=2"));
    assert_eq!(table.data_blocks, 262_144);
    assert_eq!(table.length_sectors(), 262_144 * 8);
    assert_eq!(table.root_digest, hex(DIGEST));
    assert_eq!(
        table.options,
        TableOptions {
            corruption: Some(CorruptionMode::Restart),
            ignore_zero_blocks: true,
            ..TableOptions::default()
        }
    );
    // Already canonical: printing gives the same text back.
    assert_eq!(table.to_string(), bottlerocket());
}

#[test]
fn display_is_the_kernel_order_with_the_right_count() {
    let mut table = simple();
    assert_eq!(
        table.to_string(),
        format!("1 /dev/vda /dev/vdb 4096 4096 1024 1 sha256 {DIGEST} {SALT}")
    );
    table.salt.clear();
    table.options = TableOptions {
        corruption: Some(CorruptionMode::Panic),
        ignore_zero_blocks: true,
        check_at_most_once: true,
        try_verify_in_tasklet: true,
        fec: Some(TableFec {
            device: "/dev/vdc".into(),
            roots: 2,
            blocks: 1033,
            start: 0,
        }),
        root_hash_sig_key_desc: Some("liftoff:root".into()),
    };
    assert_eq!(
        table.to_string(),
        format!(
            "1 /dev/vda /dev/vdb 4096 4096 1024 1 sha256 {DIGEST} - 14 panic_on_corruption \
             ignore_zero_blocks check_at_most_once try_verify_in_tasklet \
             use_fec_from_device /dev/vdc fec_blocks 1033 fec_start 0 fec_roots 2 \
             root_hash_sig_key_desc liftoff:root"
        )
    );
    assert_eq!(VerityTable::parse(&table.to_string()), Ok(table));
}

#[test]
fn accepted_spellings() {
    let base = format!(
        "0 /dev/vda /dev/vdb 512 4096 8 0 sha1 {} -",
        "ab".repeat(20)
    );
    type Check = fn(&VerityTable) -> bool;
    let cases: &[(&str, String, Check)] = &[
        ("chrome os version", base.clone(), |t| {
            t.hash_type == HashType::ChromeOs && t.salt.is_empty()
        }),
        ("zero option count", format!("{base} 0"), |t| {
            t.options == TableOptions::default()
        }),
        (
            "option names ignore case",
            format!("{base} 1 IGNORE_Corruption"),
            |t| t.options.corruption == Some(CorruptionMode::Ignore),
        ),
        ("upper-case hex", base.replace("abab", "ABAB"), |t| {
            t.root_digest == vec![0xab; 20]
        }),
        (
            "extra white space",
            format!("  {}\t\n", base.replace(' ', " \t ")),
            |t| t.data_device == "/dev/vda",
        ),
        (
            "escaped space in a device",
            base.replace("/dev/vda", r"/dev/my\ disk"),
            |t| t.data_device == "/dev/my disk",
        ),
        (
            "fec_start defaults to 0",
            format!(
                "1 a b 4096 4096 8 1 sha256 {DIGEST} - 6 use_fec_from_device c fec_roots 24 fec_blocks 10"
            ),
            |t| {
                t.options.fec
                    == Some(TableFec {
                        device: "c".into(),
                        roots: 24,
                        blocks: 10,
                        start: 0,
                    })
            },
        ),
        ("leading zeros", base.replace(" 512 ", " 0512 "), |t| {
            t.data_block_size == 512
        }),
    ];
    for (name, line, check) in cases {
        let table = VerityTable::parse(line).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(check(&table), "{name}: {table:?}");
        assert_eq!(
            VerityTable::parse(&table.to_string()).as_ref(),
            Ok(&table),
            "{name}"
        );
    }
}

#[test]
fn rejections_name_the_field() {
    let ok = |rest: &str| format!("1 /dev/vda /dev/vdb 4096 4096 1024 1 sha256 {DIGEST} - {rest}");
    let fec = |opts: &str| format!("1 a b 4096 4096 8 1 sha256 {DIGEST} - {opts}");
    let cases: Vec<(&str, String, TableError)> = vec![
        (
            "too few",
            "1 a b 4096".into(),
            TableError::TooFewArguments { found: 4 },
        ),
        (
            "non-ascii",
            "1 é".into(),
            TableError::InvalidCharacter {
                offset: 2,
                character: 'é',
            },
        ),
        (
            "version 2",
            ok("").replacen('1', "2", 1),
            TableError::Version { text: "2".into() },
        ),
        (
            "signed number",
            ok("").replace(" 1024 ", " +1024 "),
            TableError::NotANumber {
                field: "num_data_blocks",
                text: "+1024".into(),
                max: u64::MAX,
            },
        ),
        (
            "block size not a power of two",
            ok("").replacen("4096", "4000", 1),
            TableError::BlockSize {
                field: "data_block_size",
                value: 4000,
                max: PAGE_SIZE,
            },
        ),
        (
            "data block size above a page",
            ok("").replacen("4096 4096", "8192 4096", 1),
            TableError::BlockSize {
                field: "data_block_size",
                value: 8192,
                max: PAGE_SIZE,
            },
        ),
        (
            "hash block size below a sector",
            ok("").replacen("4096 4096", "4096 256", 1),
            TableError::BlockSize {
                field: "hash_block_size",
                value: 256,
                max: MAX_HASH_BLOCK_SIZE,
            },
        ),
        (
            "data blocks overflow sectors",
            ok("").replace(" 1024 ", &format!(" {} ", u64::MAX >> 2)),
            TableError::BlockCountOverflow {
                field: "num_data_blocks",
                value: u64::MAX >> 2,
                block_size: 4096,
            },
        ),
        (
            "md5",
            ok("").replace("sha256", "md5"),
            TableError::Algorithm { text: "md5".into() },
        ),
        (
            "algorithm case",
            ok("").replace("sha256", "SHA256"),
            TableError::Algorithm {
                text: "SHA256".into(),
            },
        ),
        (
            "short digest",
            ok("").replace(DIGEST, &DIGEST[..40]),
            TableError::DigestLength {
                algorithm: Algorithm::Sha256,
                expected: 32,
                found: 20,
            },
        ),
        (
            "odd salt",
            ok("").replace(" -", " abc"),
            TableError::NotHex {
                field: "salt",
                text: "abc".into(),
            },
        ),
        (
            "digest not hex",
            ok("").replace(&DIGEST[..2], "zz"),
            TableError::NotHex {
                field: "root_digest",
                text: format!("zz{}", &DIGEST[2..]),
            },
        ),
        (
            "count too small",
            ok("1 ignore_zero_blocks check_at_most_once"),
            TableError::OptionCount {
                declared: 1,
                found: 2,
            },
        ),
        (
            "count too large",
            ok("3 ignore_zero_blocks"),
            TableError::OptionCount {
                declared: 3,
                found: 1,
            },
        ),
        (
            "count over the max",
            ok("15"),
            TableError::TooManyOptions { count: 15 },
        ),
        (
            "unknown option",
            ok("1 verify_everything"),
            TableError::UnknownOption {
                text: "verify_everything".into(),
            },
        ),
        (
            "duplicate",
            ok("2 ignore_zero_blocks ignore_zero_blocks"),
            TableError::Duplicate {
                option: "ignore_zero_blocks",
            },
        ),
        (
            "two modes",
            ok("2 restart_on_corruption panic_on_corruption"),
            TableError::ConflictingCorruptionModes {
                first: "restart_on_corruption",
                second: "panic_on_corruption",
            },
        ),
        (
            "value missing",
            ok("1 root_hash_sig_key_desc"),
            TableError::MissingValue {
                option: "root_hash_sig_key_desc",
            },
        ),
        (
            "fec without device",
            fec("4 fec_roots 2 fec_blocks 9"),
            TableError::FecIncomplete {
                missing: "use_fec_from_device",
            },
        ),
        (
            "fec without roots",
            fec("4 use_fec_from_device c fec_blocks 9"),
            TableError::FecIncomplete {
                missing: "fec_roots",
            },
        ),
        (
            "fec without blocks",
            fec("4 use_fec_from_device c fec_roots 2"),
            TableError::FecIncomplete {
                missing: "fec_blocks",
            },
        ),
        (
            "fec_start alone",
            fec("2 fec_start 3"),
            TableError::FecIncomplete {
                missing: "use_fec_from_device",
            },
        ),
        (
            "fec roots 25",
            fec("6 use_fec_from_device c fec_roots 25 fec_blocks 9"),
            TableError::FecRoots { roots: 25 },
        ),
        (
            "fec roots 1",
            fec("6 use_fec_from_device c fec_roots 1 fec_blocks 9"),
            TableError::FecRoots { roots: 1 },
        ),
        (
            "fec roots 256",
            fec("6 use_fec_from_device c fec_roots 256 fec_blocks 9"),
            TableError::NotANumber {
                field: "fec_roots",
                text: "256".into(),
                max: 255,
            },
        ),
        (
            "fec with unequal block sizes",
            fec("6 use_fec_from_device c fec_roots 2 fec_blocks 9").replacen(
                "4096 4096",
                "4096 512",
                1,
            ),
            TableError::FecBlockSizes {
                data: 4096,
                hash: 512,
            },
        ),
        (
            "check_at_most_once on a huge device",
            ok("1 check_at_most_once").replace(" 1024 ", " 2147483648 "),
            TableError::AtMostOnceTooLarge {
                data_blocks: 1 << 31,
            },
        ),
    ];
    for (name, line, expected) in cases {
        assert_eq!(VerityTable::parse(&line), Err(expected), "{name}: {line}");
    }
}

#[test]
fn errors_quote_the_text() {
    let err = VerityTable::parse(&format!("1 a b 4096 4096 12x 1 sha256 {DIGEST} -")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "num_data_blocks \"12x\" is not a decimal number (at most 18446744073709551615)"
    );
}

#[test]
fn validate_catches_what_display_cannot_write() {
    let mut table = simple();
    table.data_device.clear();
    assert_eq!(
        table.validate(),
        Err(TableError::Empty {
            field: "data_device"
        })
    );
    let mut table = simple();
    table.hash_device = "/dev/\0".into();
    assert!(matches!(
        table.validate(),
        Err(TableError::FieldCharacter {
            field: "hash_device",
            ..
        })
    ));
}

#[test]
fn split_args_matches_dm_split_args() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("  a  b ", &["a", "b"]),
        (r"a\ b c", &["a b", "c"]),
        (r"a\\ b", &[r"a\", "b"]),
        (r"trailing\", &[r"trailing\"]),
        ("tab\tand\x0bvt", &["tab", "and", "vt"]),
    ];
    for (line, words) in cases {
        assert_eq!(split_args(line), *words, "{line:?}");
    }
}

fn device() -> impl Strategy<Value = String> {
    "[!-~ \t\\\\]{1,24}"
}

fn table_strategy() -> impl Strategy<Value = VerityTable> {
    let sizes = (9u32..=12, 9u32..=16);
    let algorithm = prop::sample::select(Algorithm::ALL.to_vec());
    let options = (
        prop::option::of(prop::sample::select(CorruptionMode::ALL.to_vec())),
        any::<[bool; 3]>(),
        prop::option::of((device(), 2u8..=24, any::<u64>(), any::<u64>())),
        prop::option::of("[!-~]{1,16}"),
    );
    (
        any::<bool>(),
        device(),
        device(),
        sizes,
        any::<u64>(),
        any::<u64>(),
        algorithm,
        any::<[u8; 64]>(),
        prop::collection::vec(any::<u8>(), 0..40),
        options,
    )
        .prop_map(
            |(chrome, data, hash, (dbits, hbits), blocks, start, algorithm, digest, salt, opts)| {
                let (corruption, [zero, once, tasklet], fec, key) = opts;
                // With FEC both block sizes are the data block size.
                let hbits = if fec.is_some() { dbits } else { hbits };
                let fit = |n: u64, bits: u32| n >> (bits - 9);
                let data_blocks = if once {
                    blocks % (MAX_AT_MOST_ONCE_BLOCKS + 1)
                } else {
                    fit(blocks, dbits)
                };
                VerityTable {
                    hash_type: if chrome {
                        HashType::ChromeOs
                    } else {
                        HashType::Normal
                    },
                    data_device: data,
                    hash_device: hash,
                    data_block_size: 1 << dbits,
                    hash_block_size: 1 << hbits,
                    data_blocks,
                    hash_start_block: fit(start, hbits),
                    algorithm,
                    root_digest: digest[..algorithm.digest_size()].to_vec(),
                    salt,
                    options: TableOptions {
                        corruption,
                        ignore_zero_blocks: zero,
                        check_at_most_once: once,
                        try_verify_in_tasklet: tasklet,
                        fec: fec.map(|(device, roots, blocks, start)| TableFec {
                            device,
                            roots,
                            blocks: fit(blocks, dbits),
                            start: fit(start, dbits),
                        }),
                        root_hash_sig_key_desc: key,
                    },
                }
            },
        )
}

proptest! {
    /// Oracle: any valid table prints to text that parses back to it,
    /// with the count it declares.
    #[test]
    fn display_then_parse_round_trips(table in table_strategy()) {
        prop_assert_eq!(table.validate(), Ok(()));
        let text = table.to_string();
        prop_assert_eq!(VerityTable::parse(&text), Ok(table.clone()));
        prop_assert_eq!(table.length_sectors(), table.data_blocks * u64::from(table.data_block_size / 512));
    }

    /// Oracle: dropping any one word of a line with options makes it
    /// invalid or a different table, never a panic.
    #[test]
    fn dropping_a_word_never_round_trips_silently(table in table_strategy(), pick in any::<prop::sample::Index>()) {
        let text = table.to_string();
        let words = split_args(&text);
        let drop_at = pick.index(words.len());
        let mut shorter: Vec<String> = words.clone();
        shorter.remove(drop_at);
        let line = shorter.iter().map(|w| w.replace('\\', r"\\").replace(' ', r"\ ").replace('\t', "\\\t")).collect::<Vec<_>>().join(" ");
        if let Ok(parsed) = VerityTable::parse(&line) {
            prop_assert_ne!(parsed, table);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(line in "\\PC{0,200}") {
        if let Ok(table) = VerityTable::parse(&line) {
            prop_assert_eq!(VerityTable::parse(&table.to_string()), Ok(table));
        }
    }
}
