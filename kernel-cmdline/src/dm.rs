//! `dm-mod.create=` and `dm-mod.waitfor=`, parsed like dm-init.
//!
//! The grammar and limits are those of drivers/md/dm-init.c and
//! Documentation/admin-guide/device-mapper/dm-init.rst:
//!
//! ```text
//! dm-mod.create=<name>,<uuid>,<minor>,<flags>,<table>[,<table>+][;<device>...]
//! <table> = <start_sector> <num_sectors> <target_type> <target_args>
//! ```
//!
//! liftoff honours these in user space when the kernel lacks
//! `CONFIG_DM_INIT` (Debian's stock kernel), so a line must mean the same
//! thing to both: the field splitting below mirrors `str_field_delimit()`
//! (including that the first four fields are found by `strchr(',')` across
//! `;`), numbers are read like `kstrtoull(s, 0)`, and what dm-init would
//! refuse is an error here. Target arguments stay a string; the `verity`
//! crate parses verity tables.

use serde::Serialize;

use crate::error::{DeviceError, DmError};
use crate::root::{DeviceForms, RootDevice, parse_device};
use crate::tokenize::is_kernel_space;

/// `DM_MAX_DEVICES`.
pub const MAX_DEVICES: usize = 256;
/// `DM_MAX_TARGETS`.
pub const MAX_TARGETS: usize = 256;
/// `DM_MAX_WAITFOR`.
pub const MAX_WAITFOR: usize = 256;
/// `param_set_charp()` refuses longer strings (kernel/params.c).
pub const MAX_PARAM_LEN: usize = 1024;
/// `DM_NAME_LEN - 1`.
const MAX_NAME: usize = 127;
/// `DM_UUID_LEN - 1`.
const MAX_UUID: usize = 128;
/// `dm_allowed_targets[]` in dm-init.c.
pub const ALLOWED_TARGETS: [&str; 6] = [
    "crypt",
    "delay",
    "linear",
    "snapshot-origin",
    "striped",
    "verity",
];
const ALLOWED_TARGETS_TEXT: &str = "crypt, delay, linear, snapshot-origin, striped, verity";

/// One mapped device from `dm-mod.create=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DmDevice {
    /// Device name (`/dev/mapper/<name>`).
    pub name: String,
    /// Device-mapper uuid, `None` when the field is empty.
    pub uuid: Option<String>,
    /// Requested minor (`/dev/dm-<minor>`), `None` when empty.
    pub minor: Option<u32>,
    /// `ro` (true) or `rw` (false).
    pub read_only: bool,
    /// The table, in order.
    pub targets: Vec<DmTarget>,
}

/// One table line of a [`DmDevice`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DmTarget {
    /// First sector this target maps.
    pub start_sector: u64,
    /// Number of 512-byte sectors.
    pub num_sectors: u64,
    /// Target type, one of [`ALLOWED_TARGETS`].
    pub target_type: String,
    /// The target's arguments, verbatim (trimmed).
    pub args: String,
}

impl DmDevice {
    /// Whether any target of this device is `verity`.
    #[must_use]
    pub fn is_verity(&self) -> bool {
        self.targets.iter().any(|t| t.target_type == "verity")
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_kernel_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_kernel_space(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// `str_field_delimit()`: the trimmed field before `separator`, and what
/// follows the separator (`None` when there is none).
fn delimit(bytes: &[u8], separator: u8) -> (&[u8], Option<&[u8]>) {
    // skip_spaces() first, so a leading space is not the separator.
    let start = bytes
        .iter()
        .position(|&b| !is_kernel_space(b))
        .unwrap_or(bytes.len());
    let bytes = bytes.get(start..).unwrap_or_default();
    match bytes.iter().position(|&b| b == separator) {
        Some(pos) => (
            trim(bytes.get(..pos).unwrap_or_default()),
            Some(bytes.get(pos + 1..).unwrap_or_default()),
        ),
        None => (trim(bytes), None),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The kernel's `kstrtoull(s, 0, &v)`: optional `+`, then `0x` hex, `0`
/// octal or decimal, one optional trailing newline, nothing else.
#[must_use]
pub fn kstrtoull(bytes: &[u8]) -> Option<u64> {
    let s = bytes.strip_prefix(b"+").unwrap_or(bytes);
    let (radix, digits) = match s {
        [b'0', x, next, ..] if x.eq_ignore_ascii_case(&b'x') && next.is_ascii_hexdigit() => {
            (16, s.get(2..).unwrap_or_default())
        }
        [b'0', ..] => (8, s),
        _ => (10, s),
    };
    let digits = digits.strip_suffix(b"\n").unwrap_or(digits);
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        let digit = char::from(b).to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))?;
    }
    Some(value)
}

fn check_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.contains(&b'/')
        && name != b"."
        && name != b".."
        && name != b"control"
}

fn parse_target(
    bytes: &[u8],
    device: usize,
    target: usize,
) -> Result<(DmTarget, Option<&[u8]>), DmError> {
    let missing = DmError::TableFields { device, target };
    let (start, rest) = delimit(bytes, b' ');
    let (length, rest) = delimit(rest.ok_or(missing.clone())?, b' ');
    let (target_type, rest) = delimit(rest.ok_or(missing.clone())?, b' ');
    let (args, next) = delimit(rest.ok_or(missing)?, b',');

    let number = |field: &'static str, raw: &[u8]| {
        kstrtoull(raw).ok_or_else(|| DmError::Sector {
            device,
            target,
            field,
            text: text(raw),
        })
    };
    let start_sector = number("start_sector", start)?;
    let num_sectors = number("num_sectors", length)?;
    if !ALLOWED_TARGETS.iter().any(|t| t.as_bytes() == target_type) {
        return Err(DmError::TargetType {
            device,
            target,
            target_type: text(target_type),
            allowed: ALLOWED_TARGETS_TEXT,
        });
    }
    let parsed = DmTarget {
        start_sector,
        num_sectors,
        target_type: text(target_type),
        args: text(args),
    };
    Ok((parsed, next))
}

fn parse_device_entry(bytes: &[u8], device: usize) -> Result<(DmDevice, Option<&[u8]>), DmError> {
    let missing = DmError::MissingFields { device };
    let (name, rest) = delimit(bytes, b',');
    let (uuid, rest) = delimit(rest.ok_or(missing.clone())?, b',');
    let (minor, rest) = delimit(rest.ok_or(missing.clone())?, b',');
    let (flags, rest) = delimit(rest.ok_or(missing.clone())?, b',');
    let (table, next) = delimit(rest.ok_or(missing)?, b';');

    if !check_name(name) {
        return Err(DmError::Name {
            device,
            name: text(name),
        });
    }
    if uuid.len() > MAX_UUID {
        return Err(DmError::Uuid { device });
    }
    let minor = if minor.is_empty() {
        None
    } else {
        // dm_early_create() takes MINOR(huge_decode_dev(dev)): identity
        // only below 256.
        let value = kstrtoull(minor)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v <= 255)
            .ok_or_else(|| DmError::Minor {
                device,
                minor: text(minor),
            })?;
        Some(value)
    };
    let read_only = match flags {
        b"ro" => true,
        b"rw" => false,
        _ => {
            return Err(DmError::Flags {
                device,
                flags: text(flags),
            });
        }
    };

    let mut targets = Vec::new();
    let mut entry = Some(table);
    while let Some(current) = entry {
        if targets.len() == MAX_TARGETS {
            return Err(DmError::TooManyTargets {
                device,
                max: MAX_TARGETS,
            });
        }
        let (target, next_entry) = parse_target(current, device, targets.len() + 1)?;
        targets.push(target);
        entry = next_entry;
    }

    let parsed = DmDevice {
        name: text(name),
        uuid: (!uuid.is_empty()).then(|| text(uuid)),
        minor,
        read_only,
        targets,
    };
    Ok((parsed, next))
}

/// Parse a `dm-mod.create=` value.
///
/// # Errors
/// The first thing dm-init would refuse (it stops at the first error too).
pub fn parse_dm_create(value: &str) -> Result<Vec<DmDevice>, DmError> {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_PARAM_LEN {
        return Err(DmError::TooLong {
            len: bytes.len(),
            max: MAX_PARAM_LEN,
        });
    }
    let mut devices = Vec::new();
    let mut entry = Some(bytes);
    while let Some(current) = entry {
        if devices.len() == MAX_DEVICES {
            return Err(DmError::TooManyDevices { max: MAX_DEVICES });
        }
        let (device, next) = parse_device_entry(current, devices.len() + 1)?;
        devices.push(device);
        entry = next;
    }
    Ok(devices)
}

/// Parse a `dm-mod.waitfor=` value: a comma list (the kernel's
/// `module_param_array` of `charp`) of `early_lookup_bdev()` device specs.
///
/// # Errors
/// An empty item, too many items, or an item the kernel cannot look up.
pub fn parse_dm_waitfor(value: &str) -> Result<Vec<RootDevice>, DeviceError> {
    let mut devices = Vec::new();
    for item in value.split(',') {
        if devices.len() == MAX_WAITFOR {
            return Err(DeviceError::TooMany { max: MAX_WAITFOR });
        }
        if item.is_empty() {
            return Err(DeviceError::Empty);
        }
        devices.push(parse_device(item, DeviceForms::KERNEL)?);
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(start: u64, len: u64, kind: &str, args: &str) -> DmTarget {
        DmTarget {
            start_sector: start,
            num_sectors: len,
            target_type: kind.into(),
            args: args.into(),
        }
    }

    #[test]
    fn kstrtoull_like_the_kernel() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"4096", Some(4096)),
            (b"+7", Some(7)),
            (b"0x10", Some(16)),
            (b"0X1f", Some(31)),
            (b"010", Some(8)),
            (b"08", None),
            (b"0x", None),
            (b"12\n", Some(12)),
            (b"12\n\n", None),
            (b"-1", None),
            (b"", None),
            (b" 1", None),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                kstrtoull(input),
                *expected,
                "case {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn documented_examples_parse() {
        let linear =
            parse_dm_create("lroot,,,rw, 0 4096 linear 98:16 0, 4096 4096 linear 98:32 0").unwrap();
        assert_eq!(
            linear,
            vec![DmDevice {
                name: "lroot".into(),
                uuid: None,
                minor: None,
                read_only: false,
                targets: vec![
                    target(0, 4096, "linear", "98:16 0"),
                    target(4096, 4096, "linear", "98:32 0"),
                ],
            }]
        );
        let two = parse_dm_create(
            "dm-linear,,1,rw,0 32768 linear 8:1 0,32768 1024000 linear 8:2 0;\
             dm-verity,,3,ro,0 1638400 verity 1 /dev/sdc1 /dev/sdc2 4096 4096 204800 1 sha256 \
             ac87db56303c9c1da433d7209b5a6ef3e4779df141200cbd7c157dcb8dd89c42 \
             5ebfe87f7df3235b80a117ebc4078e44f55045487ad4a96581d1adb564615b51",
        )
        .unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].minor, Some(1));
        assert_eq!(two[1].name, "dm-verity");
        assert!(two[1].read_only);
        assert!(two[1].is_verity());
        assert!(!two[0].is_verity());
        assert!(
            two[1].targets[0]
                .args
                .starts_with("1 /dev/sdc1 /dev/sdc2 4096")
        );
    }

    #[test]
    fn rejects_what_dm_init_rejects() {
        let long = format!("a,,,ro,0 1 linear {}", "x".repeat(1020));
        let cases: Vec<(&str, String, DmError)> = vec![
            (
                "too few fields",
                "root,,,ro".into(),
                DmError::MissingFields { device: 1 },
            ),
            (
                "bad flags",
                "root,,,rx,0 1 linear 8:1 0".into(),
                DmError::Flags {
                    device: 1,
                    flags: "rx".into(),
                },
            ),
            (
                "slash in name",
                "a/b,,,ro,0 1 linear 8:1 0".into(),
                DmError::Name {
                    device: 1,
                    name: "a/b".into(),
                },
            ),
            (
                "empty name",
                ",,,ro,0 1 linear 8:1 0".into(),
                DmError::Name {
                    device: 1,
                    name: String::new(),
                },
            ),
            (
                "minor not a number",
                "a,,x,ro,0 1 linear 8:1 0".into(),
                DmError::Minor {
                    device: 1,
                    minor: "x".into(),
                },
            ),
            (
                "minor above 255",
                "a,,256,ro,0 1 linear 8:1 0".into(),
                DmError::Minor {
                    device: 1,
                    minor: "256".into(),
                },
            ),
            (
                "bad start",
                "a,,,ro,x 1 linear 8:1 0".into(),
                DmError::Sector {
                    device: 1,
                    target: 1,
                    field: "start_sector",
                    text: "x".into(),
                },
            ),
            (
                "bad length",
                "a,,,ro,0 0y linear 8:1 0".into(),
                DmError::Sector {
                    device: 1,
                    target: 1,
                    field: "num_sectors",
                    text: "0y".into(),
                },
            ),
            (
                "no args field",
                "a,,,ro,0 1 linear".into(),
                DmError::TableFields {
                    device: 1,
                    target: 1,
                },
            ),
            (
                "trailing space is trimmed before the table is split",
                "a,,,ro,0 1 linear ".into(),
                DmError::TableFields {
                    device: 1,
                    target: 1,
                },
            ),
            (
                "constrained target",
                "a,,,ro,0 1 zero x".into(),
                DmError::TargetType {
                    device: 1,
                    target: 1,
                    target_type: "zero".into(),
                    allowed: ALLOWED_TARGETS_TEXT,
                },
            ),
            (
                "trailing comma is an empty table",
                "a,,,ro,0 1 linear 8:1 0,".into(),
                DmError::TableFields {
                    device: 1,
                    target: 2,
                },
            ),
            (
                "trailing semicolon is an empty device",
                "a,,,ro,0 1 linear 8:1 0;".into(),
                DmError::MissingFields { device: 2 },
            ),
            (
                "second device bad",
                "a,,,ro,0 1 linear 8:1 0;b,,,ro,0 1 bogus x".into(),
                DmError::TargetType {
                    device: 2,
                    target: 1,
                    target_type: "bogus".into(),
                    allowed: ALLOWED_TARGETS_TEXT,
                },
            ),
            (
                "too long",
                long.clone(),
                DmError::TooLong {
                    len: long.len(),
                    max: MAX_PARAM_LEN,
                },
            ),
        ];
        for (name, value, expected) in cases {
            assert_eq!(parse_dm_create(&value), Err(expected), "case {name}");
        }
    }

    #[test]
    fn fields_are_found_across_semicolons_like_strchr() {
        // dm-init finds the first four commas before looking for ';', so a
        // short device swallows the next one's fields: the uuid here is
        // "x;b" and the flags field is "ro" from the second device.
        let parsed = parse_dm_create("a,x;b,,ro,0 1 linear 8:1 0").unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].uuid.as_deref(), Some("x;b"));
        assert!(parsed[0].read_only);
    }

    #[test]
    fn target_limit() {
        // With the 1024-byte limit no real line reaches 256 targets (or
        // devices); the check mirrors dm-init anyway, tested one level down.
        let table = |n: usize| vec!["0 1 linear 8:1 0"; n].join(",");
        let over = format!("d,,,ro,{}", table(MAX_TARGETS + 1));
        assert_eq!(
            parse_device_entry(over.as_bytes(), 1).err(),
            Some(DmError::TooManyTargets {
                device: 1,
                max: MAX_TARGETS
            })
        );
        let full = format!("d,,,ro,{}", table(MAX_TARGETS));
        assert_eq!(
            parse_device_entry(full.as_bytes(), 1)
                .unwrap()
                .0
                .targets
                .len(),
            MAX_TARGETS
        );
    }

    #[test]
    fn waitfor_table() {
        assert_eq!(
            parse_dm_waitfor("/dev/vda1,8:2"),
            Ok(vec![
                RootDevice::Path {
                    path: "/dev/vda1".into()
                },
                RootDevice::DevNum { major: 8, minor: 2 },
            ])
        );
        assert_eq!(parse_dm_waitfor("/dev/vda1,"), Err(DeviceError::Empty));
        assert!(matches!(
            parse_dm_waitfor("LABEL=x"),
            Err(DeviceError::UnknownForm { .. })
        ));
        let many = vec!["/dev/vda"; MAX_WAITFOR + 1].join(",");
        assert_eq!(
            parse_dm_waitfor(&many),
            Err(DeviceError::TooMany { max: MAX_WAITFOR })
        );
    }
}
