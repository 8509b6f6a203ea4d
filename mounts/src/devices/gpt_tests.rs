use proptest::prelude::*;

use super::*;

fn guid(text: &str) -> Guid {
    text.parse().unwrap()
}

fn part(number: u32, kind: PartitionType, first: u64, last: u64, name: &str) -> GptPartition {
    GptPartition {
        number,
        type_guid: kind.guid,
        uuid: guid(&format!("6e0e3d54-5f0a-4c3a-9f8b-2b1d4f6a7c{number:02x}")),
        first_lba: first,
        last_lba: last,
        attributes: 0,
        name: name.to_owned(),
    }
}

fn layout(sector_size: u32, total_sectors: u64, partitions: Vec<GptPartition>) -> GptLayout {
    GptLayout {
        sector_size,
        total_sectors,
        disk_guid: guid("11223344-5566-7788-99aa-bbccddeeff00"),
        partitions,
    }
}

#[test]
fn guid_is_mixed_endian_on_disk() {
    // The ESP type as it sits in an entry (UEFI spec, and `xxd` of any ESP).
    let disk = [
        0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9,
        0x3b,
    ];
    assert_eq!(
        Guid::from_disk(disk).to_string(),
        "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
    );
    assert_eq!(ESP.guid.to_disk(), disk);
    assert_eq!(guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), ESP.guid);
    for bad in [
        "",
        "c12a7328",
        "c12a7328-f81f-11d2-ba4b-00a0c93ec93",
        "g12a7328-f81f-11d2-ba4b-00a0c93ec93b",
    ] {
        assert!(bad.parse::<Guid>().is_err(), "{bad:?}");
    }
    assert_eq!(
        type_name(ROOT_X86_64_VERITY.guid),
        Some("root-x86-64-verity")
    );
    assert_eq!(type_name(Guid::NIL), None);
}

#[test]
fn write_then_parse_table() {
    let cases: Vec<(&str, GptLayout)> = vec![
        ("empty 512", layout(512, 2048, vec![])),
        (
            "verity root pair 512",
            layout(
                512,
                16384,
                vec![
                    part(1, ROOT_X86_64, 2048, 8191, "root-a"),
                    part(2, ROOT_X86_64_VERITY, 8192, 10239, "root-a-verity"),
                ],
            ),
        ),
        (
            "gap in numbers, 4096",
            layout(
                4096,
                1024,
                vec![
                    part(1, ESP, 256, 511, "EFI System"),
                    part(3, LINUX_GENERIC, 512, 767, "dätä ☃"),
                ],
            ),
        ),
        (
            "36-unit name",
            layout(512, 4096, vec![part(128, SWAP, 34, 4062, &"x".repeat(36))]),
        ),
    ];
    for (name, layout) in cases {
        let image = write(&layout).unwrap();
        let gpt = parse(&image.head, layout.sector_size).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(gpt.partitions, layout.partitions, "case {name}");
        assert_eq!(gpt.disk_guid, layout.disk_guid, "case {name}");
        assert_eq!(gpt.backup_lba, layout.total_sectors - 1, "case {name}");
        assert_eq!(
            image.tail_offset + image.tail.len() as u64,
            layout.total_sectors * u64::from(layout.sector_size),
            "case {name}: the tail ends the disk"
        );
    }
}

#[test]
fn parse_errors_table() {
    let good = write(&layout(
        512,
        4096,
        vec![part(1, ROOT_X86_64, 34, 4000, "r")],
    ))
    .unwrap()
    .head;
    let patched = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    type Check = fn(&GptError) -> bool;
    let cases: Vec<(&str, Vec<u8>, u32, Check)> = vec![
        ("no boot signature", patched(510, &[0, 0]), 512, |e| {
            *e == GptError::NoProtectiveMbr
        }),
        ("no 0xee partition", patched(446 + 4, &[0x83]), 512, |e| {
            *e == GptError::NoProtectiveMbr
        }),
        ("signature", patched(512, b"EFI PARX"), 512, |e| {
            *e == GptError::Signature
        }),
        ("header crc", patched(512 + 40, &[35]), 512, |e| {
            matches!(e, GptError::HeaderCrc { .. })
        }),
        ("array crc", patched(1024 + 100, b"z"), 512, |e| {
            matches!(e, GptError::ArrayCrc { .. })
        }),
        ("header size", patched(512 + 12, &[8, 0, 0, 0]), 512, |e| {
            *e == GptError::HeaderSize { size: 8 }
        }),
        ("truncated", good[..2048].to_vec(), 512, |e| {
            *e == GptError::Truncated {
                needed: 1024 + 128 * 128,
                have: 2048,
            }
        }),
        ("one sector", good[..512].to_vec(), 512, |e| {
            matches!(e, GptError::Truncated { needed: 1024, .. })
        }),
        ("wrong sector size", good.clone(), 4096, |e| {
            matches!(e, GptError::Truncated { .. } | GptError::Signature)
        }),
        ("odd sector size", good.clone(), 1024, |e| {
            *e == GptError::SectorSize { size: 1024 }
        }),
    ];
    for (name, bytes, ss, check) in cases {
        let err = parse(&bytes, ss).expect_err(name);
        assert!(check(&err), "case {name}: {err:?}");
    }
}

#[test]
fn writer_rejects_bad_layouts() {
    let cases: Vec<(&str, GptLayout)> = vec![
        ("too small", layout(512, 40, vec![])),
        (
            "before first usable",
            layout(512, 4096, vec![part(1, ESP, 33, 100, "")]),
        ),
        (
            "past last usable",
            layout(512, 4096, vec![part(1, ESP, 34, 4063, "")]),
        ),
        (
            "overlap",
            layout(
                512,
                4096,
                vec![part(1, ESP, 34, 100, ""), part(2, ESP, 100, 200, "")],
            ),
        ),
        (
            "same number",
            layout(
                512,
                4096,
                vec![part(1, ESP, 34, 99, ""), part(1, ESP, 100, 200, "")],
            ),
        ),
        (
            "number 0",
            layout(512, 4096, vec![part(0, ESP, 34, 99, "")]),
        ),
        (
            "number 129",
            layout(512, 4096, vec![part(129, ESP, 34, 99, "")]),
        ),
        (
            "long name",
            layout(512, 4096, vec![part(1, ESP, 34, 99, &"y".repeat(37))]),
        ),
        ("sector size", layout(520, 4096, vec![])),
    ];
    for (name, layout) in cases {
        assert!(write(&layout).is_err(), "case {name}");
    }
}

#[test]
fn mbr_signature_only_for_plain_mbr() {
    let mut lba0 = vec![0u8; 512];
    assert_eq!(mbr_signature(&lba0), None);
    lba0[440..444].copy_from_slice(&0x0002_dd75u32.to_le_bytes());
    lba0[510] = 0x55;
    lba0[511] = 0xaa;
    assert_eq!(mbr_signature(&lba0), Some(0x0002_dd75));
    lba0[446 + 4] = 0xee;
    assert_eq!(mbr_signature(&lba0), None);
}

/// Non-overlapping partitions in 1..=128 slots on a 512-byte disk.
fn arb_layout() -> impl Strategy<Value = GptLayout> {
    let entry = (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        1u64..64,
        0u64..8,
        any::<u64>(),
        proptest::collection::vec(any::<char>(), 0..12),
    );
    (
        prop_oneof![Just(512u32), Just(4096u32)],
        proptest::collection::vec(entry, 0..12),
        proptest::sample::subsequence((1..=128u32).collect::<Vec<_>>(), 12),
    )
        .prop_map(|(ss, entries, numbers)| {
            let first_usable = 2 + (128 * 128u64).div_ceil(u64::from(ss));
            let mut next = first_usable;
            let partitions: Vec<GptPartition> = entries
                .into_iter()
                .zip(numbers)
                .map(|((t, u, len, gap, attributes, name), number)| {
                    let mut type_bytes = t;
                    type_bytes[0] |= 1; // never the nil type
                    let first = next + gap;
                    next = first + len;
                    let name: String = name
                        .into_iter()
                        .filter(|&c| c != '\0')
                        .take(NAME_UNITS / 2)
                        .collect();
                    GptPartition {
                        number,
                        type_guid: Guid(type_bytes),
                        uuid: Guid(u),
                        first_lba: first,
                        last_lba: first + len - 1,
                        attributes,
                        name,
                    }
                })
                .collect();
            layout(ss, next + 64, partitions)
        })
}

proptest! {
    /// The oracle: whatever the writer lays out, the reader reads back,
    /// in slot order; and the backup header at the end is a valid header.
    #[test]
    fn gpt_round_trip(layout in arb_layout()) {
        let image = write(&layout).unwrap();
        let gpt = parse(&image.head, layout.sector_size).unwrap();
        let mut expected = layout.partitions.clone();
        expected.sort_by_key(|p| p.number);
        prop_assert_eq!(gpt.partitions, expected);
        let ss = layout.sector_size as usize;
        let backup = &image.tail[image.tail.len() - ss..];
        prop_assert_eq!(&backup[..8], SIGNATURE);
        let mut h = backup[..92].to_vec();
        h[16..20].fill(0);
        prop_assert_eq!(crc32fast::hash(&h), le_u32(backup, 16));
        prop_assert_eq!(le_u64(backup, 24), layout.total_sectors - 1);
        prop_assert_eq!(le_u32(backup, 88), le_u32(&image.head[ss..], 88));
    }

    /// Any changed byte in the header or the array is caught by a CRC (or
    /// an earlier check), never read as a different table.
    #[test]
    fn gpt_corruption_is_rejected(layout in arb_layout(), pick in any::<prop::sample::Index>(), flip in 1u8..) {
        let image = write(&layout).unwrap();
        let ss = layout.sector_size as usize;
        let covered: Vec<usize> = (ss..ss + 92).chain(2 * ss..2 * ss + 128 * 128).collect();
        let at = covered[pick.index(covered.len())];
        let mut head = image.head.clone();
        head[at] ^= flip;
        prop_assert!(parse(&head, layout.sector_size).is_err());
    }
}
