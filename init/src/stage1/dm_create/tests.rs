#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use kernel_cmdline::DmTarget;

const UUID: &str = "0b2c6a1e-3b7e-4f43-9a57-1d2f3c4b5a69";
const DIGEST: &str = "a1f3b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4";

fn args() -> String {
    format!(
        "1 PARTUUID={UUID} PARTUUID={UUID}/PARTNROFF=1 4096 4096 256 1 sha256 {DIGEST} 00ff 1 restart_on_corruption"
    )
}

fn device(target_type: &str, sectors: u64, read_only: bool) -> DmDevice {
    DmDevice {
        name: "root".into(),
        uuid: None,
        minor: None,
        read_only,
        targets: vec![DmTarget {
            start_sector: 0,
            num_sectors: sectors,
            target_type: target_type.into(),
            args: args(),
        }],
    }
}

fn path(p: &str) -> RootDevice {
    RootDevice::Path { path: p.into() }
}

#[test]
fn bottlerocket_line_plans_with_dm_0_or_mapper_root() {
    let devices = [device("verity", 2048, true)];
    let (planned, choice) = plan(&devices, Some(&path("/dev/dm-0"))).unwrap();
    assert_eq!(choice, RootChoice::Node("/dev/dm-0".into()));
    assert_eq!(
        planned[0].data,
        RootDevice::PartUuid {
            uuid: UUID.into(),
            partnroff: None
        }
    );
    assert_eq!(
        planned[0].hash,
        RootDevice::PartUuid {
            uuid: UUID.into(),
            partnroff: Some(1)
        }
    );
    let (_, choice) = plan(&devices, Some(&path("/dev/mapper/root"))).unwrap();
    assert_eq!(choice, RootChoice::Name("root".into()));
}

#[test]
fn root_other_than_the_verity_device_is_refused() {
    let devices = [device("verity", 2048, true)];
    for root in [
        path("/dev/vda1"),
        path("/dev/mapper/other"),
        path("/dev/dm-"),
        RootDevice::PartUuid {
            uuid: UUID.into(),
            partnroff: None,
        },
    ] {
        assert!(
            matches!(
                plan(&devices, Some(&root)),
                Err(DmCreateError::RootNotVerity { .. })
            ),
            "{root}"
        );
    }
    assert!(matches!(plan(&devices, None), Err(DmCreateError::NoRoot)));
}

#[test]
fn non_verity_rw_and_wrong_length_are_refused() {
    let root = path("/dev/dm-0");
    assert!(matches!(
        plan(&[device("linear", 2048, true)], Some(&root)),
        Err(DmCreateError::TargetType { .. })
    ));
    assert!(matches!(
        plan(&[device("verity", 2048, false)], Some(&root)),
        Err(DmCreateError::ReadWrite { .. })
    ));
    assert!(matches!(
        plan(&[device("verity", 4096, true)], Some(&root)),
        Err(DmCreateError::Geometry { expected: 2048, .. })
    ));
    let mut two = device("verity", 2048, true);
    two.targets.push(two.targets[0].clone());
    assert!(matches!(
        plan(&[two], Some(&root)),
        Err(DmCreateError::TargetCount { count: 2, .. })
    ));
}

#[test]
fn device_words_must_be_lookup_forms() {
    let mut d = device("verity", 2048, true);
    d.targets[0].args = d.targets[0]
        .args
        .replace(&format!("PARTUUID={UUID}/PARTNROFF=1"), "LABEL=hash");
    assert!(matches!(
        plan(&[d], Some(&path("/dev/dm-0"))),
        Err(DmCreateError::DeviceSpec { role: "hash", .. })
    ));
}
