//! Unit tests of the image layout and helpers.

use super::*;

const MIB: u64 = 1 << 20;

#[test]
fn layout_aligns_every_partition() {
    struct Case {
        name: &'static str,
        /// Root, hash and data bytes asked for.
        sizes: [u64; 3],
        /// Each partition's (start, end) in MiB.
        expected: [(u64, u64); 3],
        /// The disk's size in MiB.
        total: u64,
    }
    let cases = [
        Case {
            name: "one mib each",
            sizes: [MIB, MIB, MIB],
            expected: [(1, 2), (2, 3), (3, 4)],
            total: 5,
        },
        Case {
            name: "rounds up",
            sizes: [MIB + 1, 4096, 1],
            expected: [(1, 3), (3, 4), (4, 5)],
            total: 6,
        },
        Case {
            name: "empty data gets a unit",
            sizes: [3 * MIB, MIB, 0],
            expected: [(1, 4), (4, 5), (5, 6)],
            total: 7,
        },
    ];
    let ss = u64::from(SECTOR_SIZE);
    for Case {
        name,
        sizes: [root, hash, data],
        expected,
        total,
    } in cases
    {
        let layout = plan_layout(
            [
                (ROOT_LABEL, ROOT_X86_64, Guid([1; 16]), root),
                (VERITY_LABEL, ROOT_X86_64_VERITY, Guid([2; 16]), hash),
                (DATA_LABEL, LINUX_GENERIC, Guid([3; 16]), data),
            ],
            Guid([4; 16]),
        )
        .unwrap();
        assert_eq!(layout.total_sectors * ss, total * MIB, "{name}: total");
        for (p, (first, end)) in layout.partitions.iter().zip(expected) {
            assert_eq!(p.first_lba * ss, first * MIB, "{name}: {} first", p.name);
            assert_eq!((p.last_lba + 1) * ss, end * MIB, "{name}: {} end", p.name);
        }
        // The mounts writer accepts it and its reader reads it back.
        let image = gpt::write(&layout).unwrap();
        let parsed = gpt::parse(&image.head, SECTOR_SIZE).unwrap();
        assert_eq!(parsed.partitions, layout.partitions, "{name}");
    }
}

#[test]
fn overflowing_data_size_is_an_error() {
    let err = plan_layout(
        [
            (ROOT_LABEL, ROOT_X86_64, Guid([1; 16]), MIB),
            (VERITY_LABEL, ROOT_X86_64_VERITY, Guid([2; 16]), MIB),
            (DATA_LABEL, LINUX_GENERIC, Guid([3; 16]), u64::MAX),
        ],
        Guid([4; 16]),
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::Overflow { .. }), "{err}");
}

#[test]
fn root_hash_line_is_parsed() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "veritysetup 2.6",
            "VERITY header information for h\nSalt:            \t00ff\nRoot hash:      \t259240B7ae\nHash device size: \t4096 [bytes]\n",
            Some("259240b7ae"),
        ),
        ("missing", "UUID: x\n", None),
        ("not hex", "Root hash: zz\n", None),
        ("empty", "Root hash:\t\n", None),
    ];
    for &(name, stdout, expected) in cases {
        assert_eq!(parse_root_hash(stdout).as_deref(), expected, "{name}");
    }
}

#[test]
fn derived_guids_are_v4_and_stable() {
    let a = derive_guid(b"p", b"x");
    assert_eq!(a, derive_guid(b"p", b"x"));
    assert_ne!(a, derive_guid(b"q", b"x"));
    assert_eq!(a.0[6] >> 4, 4, "version nibble");
    assert_eq!(a.0[8] >> 6, 0b10, "variant bits");
}
