use std::path::Path;

use kernel_cmdline::{CorruptionAction, VerityOptions};
use verity::format::{FormatOptions, format};
use verity::hash::HashType;
use verity::superblock::Superblock;
use verity::table::CorruptionMode;

use super::*;

#[test]
fn module_list_puts_config_first_and_drops_duplicates_by_kernel_name() {
    let config = InitramfsConfig {
        kernel: Some("6.1.0".into()),
        modules: vec!["virtio_blk".into(), "dm-verity".into()],
    };
    let cmdline = vec!["dm_verity".into(), "erofs".into(), "virtio-blk".into()];
    assert_eq!(
        module_list(&config, &cmdline),
        vec!["virtio_blk", "dm-verity", "erofs"]
    );
    assert!(module_list(&InitramfsConfig::default(), &[]).is_empty());
}

#[test]
fn corruption_actions_map_to_table_flags() {
    for (action, mode) in [
        (CorruptionAction::Restart, Some(CorruptionMode::Restart)),
        (CorruptionAction::Panic, Some(CorruptionMode::Panic)),
        (CorruptionAction::Eio, None),
        (CorruptionAction::Ignore, Some(CorruptionMode::Ignore)),
    ] {
        assert_eq!(corruption_mode(action), mode, "{action:?}");
    }
}

#[test]
fn table_options_take_the_per_device_corruption_word_first() {
    let mut options = VerityOptions {
        check_at_most_once: true,
        ..VerityOptions::default()
    };
    let table = table_options(&options, CorruptionAction::Eio).unwrap();
    assert_eq!(table.corruption, None);
    assert!(table.check_at_most_once);
    options.on_corruption = Some(CorruptionAction::Panic);
    let table = table_options(&options, CorruptionAction::Eio).unwrap();
    assert_eq!(table.corruption, Some(CorruptionMode::Panic));
}

#[test]
fn table_options_refuse_what_stage1_would_drop() {
    for (name, options) in [
        (
            "superblock",
            VerityOptions {
                superblock: Some(false),
                ..VerityOptions::default()
            },
        ),
        (
            "hash-offset",
            VerityOptions {
                hash_offset: Some(4096),
                ..VerityOptions::default()
            },
        ),
        (
            "root-hash-signature",
            VerityOptions {
                root_hash_signature: Some("/sig".into()),
                ..VerityOptions::default()
            },
        ),
    ] {
        match table_options(&options, CorruptionAction::Restart) {
            Err(Stage1Error::UnsupportedOption { option }) => assert_eq!(option, name),
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// A real veritysetup-layout hash file for 64 blocks of data, its
/// superblock and the head stage 1 reads.
fn formatted(hash_type: HashType) -> (Vec<u8>, Superblock, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hash = dir.path().join("hash");
    let bytes: Vec<u8> = (0..64 * 4096).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&data, bytes).unwrap();
    let report = format(
        &data,
        &hash,
        &FormatOptions {
            hash_type,
            threads: Some(1),
            ..FormatOptions::default()
        },
    )
    .unwrap();
    let head = std::fs::read(&hash).unwrap();
    let superblock = Superblock::parse(&head).unwrap();
    (report.root_hash, superblock, head)
}

#[test]
fn top_block_digest_is_the_root_hash_for_both_hash_types() {
    for hash_type in [HashType::Normal, HashType::ChromeOs] {
        let (root_hash, superblock, head) = formatted(hash_type);
        assert_eq!(
            top_block_digest(&superblock, &head),
            Some(root_hash),
            "{hash_type:?}"
        );
    }
}

#[test]
fn top_block_digest_changes_with_one_flipped_byte() {
    let (root_hash, superblock, mut head) = formatted(HashType::Normal);
    head[4096 + 5] ^= 1;
    assert_ne!(top_block_digest(&superblock, &head), Some(root_hash));
    // Too short to hold the top block: nothing to compare, and the
    // caller's read error (not a match) is what stops the boot.
    assert_eq!(top_block_digest(&superblock, &head[..4096]), None);
}

#[test]
fn verity_table_takes_geometry_from_the_superblock() {
    let (root_hash, superblock, _) = formatted(HashType::Normal);
    let table = verity_table(
        &superblock,
        Path::new("/dev/vda1"),
        Path::new("/dev/vda2"),
        root_hash.clone(),
        table_options(&VerityOptions::default(), CorruptionAction::Restart).unwrap(),
    );
    assert_eq!(table.data_device, "/dev/vda1");
    assert_eq!(table.hash_device, "/dev/vda2");
    assert_eq!(table.data_blocks, 64);
    assert_eq!(table.hash_start_block, 1);
    assert_eq!(table.salt, superblock.salt);
    assert_eq!(table.root_digest, root_hash);
    assert_eq!(table.options.corruption, Some(CorruptionMode::Restart));
    table.validate().unwrap();
}

#[test]
fn decode_hex_round_trips() {
    assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
    assert_eq!(decode_hex("0g"), None);
}

#[test]
fn fstypes_prefer_rootfstype_and_probe_only_erofs_or_ext4() {
    assert_eq!(
        fstypes(&["ext4".into(), "erofs".into()], &[]),
        vec!["ext4", "erofs"]
    );
    let mut erofs = vec![0u8; PROBE_BYTES];
    // EROFS_SUPER_MAGIC_V1 at 1024, little-endian.
    erofs[1024..1028].copy_from_slice(&0xE0F5_E1E2u32.to_le_bytes());
    assert_eq!(fstypes(&[], &erofs), vec!["erofs"]);
    assert!(fstypes(&[], &vec![0u8; PROBE_BYTES]).is_empty());
}

#[test]
fn device_specs_are_discoverable_unless_named_explicitly() {
    let plan = kernel_cmdline::parse(&format!("roothash={}", "ab".repeat(32))).unwrap();
    let Some(kernel_cmdline::VeritySource::RootHash(verity)) = plan.verity else {
        panic!("no roothash verity: {plan:?}");
    };
    let (root, hash) = mounts::devices::native_root_types().unwrap();
    let discoverable = DeviceSpec::discoverable_root(&verity.discoverable, root, hash).unwrap();
    assert_eq!(device_specs(&verity, discoverable.clone()), discoverable);

    let named = "PARTUUID=01234567-89ab-cdef-0123-456789abcdef";
    let plan = kernel_cmdline::parse(&format!(
        "roothash={} systemd.verity_root_hash={named}",
        "ab".repeat(32)
    ))
    .unwrap();
    let Some(kernel_cmdline::VeritySource::RootHash(verity)) = plan.verity else {
        panic!("no roothash verity: {plan:?}");
    };
    let specs = device_specs(&verity, discoverable.clone());
    assert_eq!(specs[0], discoverable[0]);
    assert_eq!(specs[1], DeviceSpec::Named(verity.hash.clone()));
    assert_eq!(specs[1].to_string(), named);
}

#[test]
fn a_record_without_read_ahead_reads_as_none() {
    // What a liftoff before liftoff.boot_read_ahead_kb= wrote, or one that
    // could not set it.
    let json =
        r#"{"stamps": [], "root_device": "/dev/dm-0", "fstype": "erofs", "init": "/sbin/init"}"#;
    let read: HandoffRecord = serde_json::from_str(json).unwrap();
    assert_eq!(read.read_ahead, None);
}

#[test]
fn stage_2_reads_back_the_record_stage_1_writes() {
    use crate::stamps::Stamp;
    let stamps = [
        Stamp {
            phase: "start".into(),
            boottime_us: 2_874_822,
        },
        Stamp {
            phase: "switch-root".into(),
            boottime_us: 3_450_409,
        },
    ];
    let modules = vec![ModuleTime {
        name: "dm_verity".into(),
        start_us: 2_100_000,
        end_us: 2_112_500,
    }];
    let written = Handoff {
        stamps: &stamps,
        modules: modules.clone(),
        root_device: "/dev/dm-0".into(),
        fstype: "erofs".into(),
        init: "/sbin/init".into(),
        read_ahead: Some(crate::read_ahead::ReadAhead {
            path: "/sys/dev/block/253:0/queue/read_ahead_kb".into(),
            kernel_kb: 128,
            boot_kb: 2048,
        }),
    };
    let json = serde_json::to_vec(&written).unwrap();
    let read: HandoffRecord = serde_json::from_slice(&json).unwrap();
    assert_eq!(read.root_device, "/dev/dm-0");
    assert_eq!(read.fstype, "erofs");
    assert_eq!(read.stamps.len(), 2);
    assert_eq!(read.modules, modules);
    assert_eq!(read.read_ahead, written.read_ahead);
    assert_eq!(
        read.summary(),
        "start 2.875s, switch-root 3.450s (+575.6ms)"
    );
}
