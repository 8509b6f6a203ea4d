use super::gpt::{LINUX_GENERIC, ROOT_X86_64, ROOT_X86_64_VERITY};
use super::probe::FsType;
use super::*;

const ROOT_UUID: &str = "01234567-89ab-cdef-0f1e-2d3c4b5a6978";
const HASH_UUID: &str = "88776655-4433-2211-fedc-ba9876543210";

fn disk(name: &str, minor: u32, size: u64) -> BlockDevice {
    BlockDevice {
        name: name.into(),
        devname: name.into(),
        major: 254,
        minor,
        size,
        disk: None,
        partition: None,
        table: Some(PartitionTable::Gpt {
            disk_guid: Guid::NIL,
        }),
        dm_name: None,
        probe: None,
        issue: None,
    }
}

fn partition(
    disk: &str,
    number: u32,
    minor: u32,
    kind: PartitionType,
    uuid: &str,
    label: &str,
) -> BlockDevice {
    BlockDevice {
        name: format!("{disk}{number}"),
        devname: format!("{disk}{number}"),
        major: 254,
        minor,
        size: 1 << 20,
        disk: Some(disk.into()),
        partition: Some(PartitionInfo {
            number,
            uuid: Some(uuid.into()),
            label: Some(label.into()),
            type_guid: Some(kind.guid),
        }),
        table: None,
        dm_name: None,
        probe: None,
        issue: None,
    }
}

fn with_fs(mut dev: BlockDevice, fstype: FsType, uuid: &str, label: &str) -> BlockDevice {
    dev.probe = Some(Probe {
        fstype,
        uuid: Some(uuid.into()),
        label: (!label.is_empty()).then(|| label.into()),
    });
    dev
}

fn table() -> DeviceTable {
    let mut data = disk("vdb", 16, 64 << 20);
    data.table = None;
    data.probe = Some(Probe {
        fstype: FsType::Ext4,
        uuid: Some("0b2c3d4e-1111-2222-3333-444455556666".into()),
        label: Some("data".into()),
    });
    let mut dm = disk("dm-0", 0, 1 << 30);
    dm.major = 253;
    dm.table = None;
    dm.dm_name = Some("root".into());
    DeviceTable {
        dev_root: PathBuf::from("/dev"),
        devices: vec![
            disk("vda", 0, 8 << 30),
            with_fs(
                partition("vda", 1, 1, ROOT_X86_64, ROOT_UUID, "root-a"),
                FsType::Erofs,
                "aaaaaaaa-0000-0000-0000-000000000001",
                "rootfs",
            ),
            with_fs(
                partition("vda", 2, 2, ROOT_X86_64_VERITY, HASH_UUID, "root-a-verity"),
                FsType::VerityHash,
                "bbbbbbbb-0000-0000-0000-000000000002",
                "",
            ),
            partition(
                "vda",
                4,
                4,
                LINUX_GENERIC,
                "cccccccc-0000-0000-0000-000000000004",
                "state",
            ),
            data,
            dm,
        ],
    }
}

fn named(text: &str) -> DeviceSpec {
    let plan = kernel_cmdline::parse(&format!("root={text}")).unwrap();
    DeviceSpec::Named(plan.root.unwrap())
}

fn found(name: &str) -> Match {
    Match::Found {
        name: name.into(),
        node: PathBuf::from("/dev").join(name),
    }
}

#[test]
fn resolve_table() {
    let t = table();
    let cases: Vec<(&str, DeviceSpec, Match)> = vec![
        ("path", named("/dev/vda2"), found("vda2")),
        ("mapper path", named("/dev/mapper/root"), found("dm-0")),
        (
            "missing path",
            named("/dev/vdz"),
            Match::Missing(Missing::NotFound),
        ),
        ("devnum", named("254:16"), found("vdb")),
        ("hex devnum", named("fe01"), found("vda1")),
        (
            "partuuid upper-case",
            named(&format!("PARTUUID={}", ROOT_UUID.to_uppercase())),
            found("vda1"),
        ),
        (
            "partnroff +1",
            named(&format!("PARTUUID={ROOT_UUID}/PARTNROFF=1")),
            found("vda2"),
        ),
        (
            "partnroff -1",
            named(&format!("PARTUUID={HASH_UUID}/PARTNROFF=-1")),
            found("vda1"),
        ),
        (
            "partnroff to a hole",
            named(&format!("PARTUUID={ROOT_UUID}/PARTNROFF=2")),
            Match::Missing(Missing::NoOffsetPartition {
                base: "vda1".into(),
                number: 3,
            }),
        ),
        (
            "partuuid missing",
            named("PARTUUID=deadbeef-0000-0000-0000-000000000000"),
            Match::Missing(Missing::NotFound),
        ),
        ("partlabel", named("PARTLABEL=state"), found("vda4")),
        ("label of a whole disk", named("LABEL=data"), found("vdb")),
        ("label of a partition", named("LABEL=rootfs"), found("vda1")),
        (
            "fs uuid ignores case",
            named("UUID=0B2C3D4E-1111-2222-3333-444455556666"),
            found("vdb"),
        ),
        (
            "verity superblock uuid",
            named("UUID=bbbbbbbb-0000-0000-0000-000000000002"),
            found("vda2"),
        ),
        (
            "discoverable root",
            DeviceSpec::Discoverable {
                kind: ROOT_X86_64,
                uuid: ROOT_UUID.parse().unwrap(),
            },
            found("vda1"),
        ),
        (
            "discoverable with the wrong type",
            DeviceSpec::Discoverable {
                kind: ROOT_X86_64_VERITY,
                uuid: ROOT_UUID.parse().unwrap(),
            },
            Match::Missing(Missing::WrongType {
                name: "vda1".into(),
                found: Some(ROOT_X86_64.guid),
                wanted: ROOT_X86_64_VERITY,
            }),
        ),
    ];
    for (name, spec, expected) in cases {
        assert_eq!(resolve(&spec, &t), expected, "case {name}: {spec}");
    }
}

/// Two partitions with one PARTUUID (or one label) are an error for every
/// spec form that matches them, never the first of the two.
#[test]
fn duplicates_are_ambiguous() {
    let mut t = table();
    t.devices.push(disk("vdc", 32, 1 << 30));
    t.devices.push(with_fs(
        partition("vdc", 1, 33, ROOT_X86_64, ROOT_UUID, "root-a"),
        FsType::Erofs,
        "aaaaaaaa-0000-0000-0000-000000000001",
        "rootfs",
    ));
    let both = Match::Ambiguous(vec!["vda1".into(), "vdc1".into()]);
    for spec in [
        named(&format!("PARTUUID={ROOT_UUID}")),
        named(&format!("PARTUUID={ROOT_UUID}/PARTNROFF=1")),
        named("PARTLABEL=root-a"),
        named("LABEL=rootfs"),
        named("UUID=aaaaaaaa-0000-0000-0000-000000000001"),
        DeviceSpec::Discoverable {
            kind: ROOT_X86_64,
            uuid: ROOT_UUID.parse().unwrap(),
        },
    ] {
        assert_eq!(resolve(&spec, &t), both, "{spec}");
    }
    let err = DeviceError::Ambiguous {
        spec: named(&format!("PARTUUID={ROOT_UUID}")),
        devices: vec!["vda1".into(), "vdc1".into()],
    };
    assert_eq!(
        err.to_string(),
        format!(
            "PARTUUID={ROOT_UUID} matches 2 devices (vda1, vdc1): refusing to pick one, as a duplicate may be a partition an attacker added"
        )
    );
}

#[test]
fn discoverable_specs_from_root_hash() {
    let plan = kernel_cmdline::parse(
        "roothash=0123456789abcdef0f1e2d3c4b5a69788877665544332211fedcba9876543210",
    )
    .unwrap();
    let Some(kernel_cmdline::VeritySource::RootHash(v)) = plan.verity else {
        panic!("no roothash verity");
    };
    let [data, hash] =
        DeviceSpec::discoverable_root(&v.discoverable, ROOT_X86_64, ROOT_X86_64_VERITY).unwrap();
    let t = table();
    assert_eq!(resolve(&data, &t), found("vda1"));
    assert_eq!(resolve(&hash, &t), found("vda2"));
    assert_eq!(
        data.to_string(),
        format!("root-x86-64 partition PARTUUID={ROOT_UUID}")
    );
}

#[test]
fn timeout_message() {
    let err = DeviceError::Timeout {
        timeout: Duration::from_secs(30),
        missing: vec![(
            named("PARTUUID=deadbeef-0000-0000-0000-000000000000"),
            Missing::NotFound,
        )],
        seen: table().devices,
    };
    assert_eq!(
        err.to_string(),
        "timed out after 30s waiting for PARTUUID=deadbeef-0000-0000-0000-000000000000: not found; \
         block devices seen: \
         vda (8 GiB, gpt: \
         vda1 root-x86-64 PARTUUID=01234567-89ab-cdef-0f1e-2d3c4b5a6978 PARTLABEL=root-a erofs LABEL=rootfs UUID=aaaaaaaa-0000-0000-0000-000000000001, \
         vda2 root-x86-64-verity PARTUUID=88776655-4433-2211-fedc-ba9876543210 PARTLABEL=root-a-verity DM_verity_hash UUID=bbbbbbbb-0000-0000-0000-000000000002, \
         vda4 linux-generic PARTUUID=cccccccc-0000-0000-0000-000000000004 PARTLABEL=state), \
         vdb (64 MiB, ext4 LABEL=data UUID=0b2c3d4e-1111-2222-3333-444455556666), \
         dm-0 (1 GiB)"
    );
}

#[test]
fn sizes_and_durations() {
    for (bytes, text) in [
        (0, "0 B"),
        (512, "512 B"),
        (1536, "1.5 KiB"),
        (8 << 30, "8 GiB"),
        ((1 << 20) + 1, "1.0 MiB"),
    ] {
        assert_eq!(format_size(bytes), text);
    }
    for (d, text) in [
        (Duration::from_secs(30), "30s"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_millis(300), "300ms"),
    ] {
        assert_eq!(format_duration(d), text);
    }
}
