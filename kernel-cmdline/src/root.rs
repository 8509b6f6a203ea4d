//! Block device specs (`root=`, `systemd.verity_root_data=`,
//! `dm-mod.waitfor=`) and `rootwait`.
//!
//! The kernel forms come from `early_lookup_bdev()` (block/early-lookup.c);
//! `LABEL=` and `UUID=` are the initramfs/udev forms the kernel itself does
//! not understand but every initramfs does.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::error::DeviceError;
use crate::liftoff::serialize_duration;

/// A block device as a command-line key names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RootDevice {
    /// `/dev/<name>`, e.g. `/dev/vda2`, `/dev/dm-0`, `/dev/mapper/root`.
    Path {
        /// The full path, starting with `/dev/`.
        path: String,
    },
    /// `PARTUUID=<uuid>[/PARTNROFF=<n>]`: a partition by its GPT unique
    /// GUID or MBR `SSSSSSSS-PP` id (stored lower-case; the kernel compares
    /// case-insensitively), optionally the partition `n` entries after it.
    PartUuid {
        /// Lower-case GPT UUID or MBR id.
        uuid: String,
        /// `/PARTNROFF=` offset, when given.
        partnroff: Option<i32>,
    },
    /// `PARTLABEL=<name>`: a GPT partition by name.
    PartLabel {
        /// The GPT partition name.
        label: String,
    },
    /// `LABEL=<label>`: a filesystem by its label (not a kernel form).
    Label {
        /// The filesystem label.
        label: String,
    },
    /// `UUID=<uuid>`: a filesystem by its UUID (not a kernel form); kept as
    /// written because vfat/NTFS serials are not UUIDs.
    Uuid {
        /// The filesystem UUID or serial as written.
        uuid: String,
    },
    /// `<major>:<minor>` or the kernel's hex `<major><minor>` (e.g. `fe01`).
    DevNum {
        /// Major number (< 4096).
        major: u32,
        /// Minor number (< 2^20).
        minor: u32,
    },
}

impl fmt::Display for RootDevice {
    /// The spec in command-line syntax (hex device numbers print as
    /// `major:minor`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path { path } => f.write_str(path),
            Self::PartUuid {
                uuid,
                partnroff: None,
            } => write!(f, "PARTUUID={uuid}"),
            Self::PartUuid {
                uuid,
                partnroff: Some(off),
            } => write!(f, "PARTUUID={uuid}/PARTNROFF={off}"),
            Self::PartLabel { label } => write!(f, "PARTLABEL={label}"),
            Self::Label { label } => write!(f, "LABEL={label}"),
            Self::Uuid { uuid } => write!(f, "UUID={uuid}"),
            Self::DevNum { major, minor } => write!(f, "{major}:{minor}"),
        }
    }
}

/// Which spellings a key accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeviceForms {
    /// `LABEL=` and `UUID=` (resolved through filesystem probing).
    label_uuid: bool,
    /// `major:minor` and hex device numbers.
    devnum: bool,
    /// `/PARTNROFF=` after `PARTUUID=`.
    partnroff: bool,
    /// For the error message.
    describe: &'static str,
}

impl DeviceForms {
    /// `root=`: everything the kernel takes plus `LABEL=`/`UUID=`.
    pub(crate) const ROOT: Self = Self {
        label_uuid: true,
        devnum: true,
        partnroff: true,
        describe: "/dev/<name>, PARTUUID=<uuid>[/PARTNROFF=<n>], PARTLABEL=<name>, LABEL=<label>, UUID=<uuid>, <major>:<minor> or a hex device number",
    };
    /// `systemd.verity_root_*=` and `fec-device=`: what systemd's
    /// `fstab_node_to_udev_node()` turns into a `/dev/disk/by-*` link.
    pub(crate) const SYSTEMD: Self = Self {
        label_uuid: true,
        devnum: false,
        partnroff: false,
        describe: "/dev/<name>, PARTUUID=<uuid>, PARTLABEL=<name>, LABEL=<label> or UUID=<uuid>",
    };
    /// `dm-mod.waitfor=`: exactly the kernel's `early_lookup_bdev()` forms.
    pub(crate) const KERNEL: Self = Self {
        label_uuid: false,
        devnum: true,
        partnroff: true,
        describe: "/dev/<name>, PARTUUID=<uuid>[/PARTNROFF=<n>], PARTLABEL=<name>, <major>:<minor> or a hex device number",
    };
}

/// GPT partition names are 36 UTF-16 code units.
const MAX_PARTLABEL: usize = 36;
/// Longest filesystem label in common use (btrfs: 255 bytes).
const MAX_LABEL: usize = 255;

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `8-4-4-4-12` hex digits.
pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && is_hex(group))
}

/// The kernel's MBR partition id: `%08x-%02x` of disk signature and
/// 1-based partition number (block/partitions/msdos.c); numbers past 255
/// print three digits.
fn is_mbr_id(s: &str) -> bool {
    match s.split_once('-') {
        Some((sig, part)) => {
            sig.len() == 8 && is_hex(sig) && (2..=3).contains(&part.len()) && is_hex(part)
        }
        None => false,
    }
}

/// `sscanf("PARTNROFF=%d%c") == 1`: a decimal int with optional sign and
/// nothing after it.
fn parse_partnroff(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// MKDEV() limits: 12 bits of major, 20 of minor.
fn checked_devnum(major: u32, minor: u32) -> Result<RootDevice, DeviceError> {
    if major < (1 << 12) && minor < (1 << 20) {
        Ok(RootDevice::DevNum { major, minor })
    } else {
        Err(DeviceError::DevNumRange)
    }
}

fn parse_devnum(s: &str) -> Option<Result<RootDevice, DeviceError>> {
    let decimal = |t: &str| {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse::<u32>().ok())
    };
    if let Some((major, minor)) = s.split_once(':') {
        return match (decimal(major), decimal(minor)) {
            (Some(Some(major)), Some(Some(minor))) => Some(checked_devnum(major, minor)),
            (Some(_), Some(_)) => Some(Err(DeviceError::DevNumRange)),
            _ => None,
        };
    }
    // `simple_strtoul(name, &p, 16)` with nothing left over: hex, an
    // optional 0x, decoded with new_decode_dev().
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if !is_hex(hex) {
        return None;
    }
    let Ok(dev) = u32::from_str_radix(hex, 16) else {
        return Some(Err(DeviceError::DevNumRange));
    };
    let major = (dev & 0xfff00) >> 8;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    Some(checked_devnum(major, minor))
}

/// Parse a device spec in one of the `forms`.
pub(crate) fn parse_device(text: &str, forms: DeviceForms) -> Result<RootDevice, DeviceError> {
    let unknown = DeviceError::UnknownForm {
        forms: forms.describe,
    };
    if let Some(rest) = text.strip_prefix("PARTUUID=") {
        let (uuid, partnroff) = match rest.split_once('/') {
            Some((uuid, tail)) => {
                if !forms.partnroff {
                    return Err(DeviceError::PartNrOffNotHere);
                }
                let off = tail
                    .strip_prefix("PARTNROFF=")
                    .and_then(parse_partnroff)
                    .ok_or(DeviceError::PartNrOff)?;
                (uuid, Some(off))
            }
            None => (rest, None),
        };
        if !is_uuid(uuid) && !is_mbr_id(uuid) {
            return Err(DeviceError::PartUuid);
        }
        return Ok(RootDevice::PartUuid {
            uuid: uuid.to_ascii_lowercase(),
            partnroff,
        });
    }
    if let Some(label) = text.strip_prefix("PARTLABEL=") {
        if label.is_empty() || label.chars().map(char::len_utf16).sum::<usize>() > MAX_PARTLABEL {
            return Err(DeviceError::Label { max: MAX_PARTLABEL });
        }
        return Ok(RootDevice::PartLabel {
            label: label.to_owned(),
        });
    }
    if forms.label_uuid {
        if let Some(label) = text.strip_prefix("LABEL=") {
            if label.is_empty() || label.len() > MAX_LABEL {
                return Err(DeviceError::Label { max: MAX_LABEL });
            }
            return Ok(RootDevice::Label {
                label: label.to_owned(),
            });
        }
        if let Some(uuid) = text.strip_prefix("UUID=") {
            if uuid.is_empty() || !uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Err(DeviceError::FsUuid);
            }
            return Ok(RootDevice::Uuid {
                uuid: uuid.to_owned(),
            });
        }
    }
    if let Some(name) = text.strip_prefix("/dev/") {
        // A quote or space in a node name is a quoting mistake (the
        // kernel's quote handling is easy to get wrong), never a device.
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b == 0 || b == b'"' || crate::tokenize::is_kernel_space(b))
        {
            return Err(DeviceError::Path);
        }
        return Ok(RootDevice::Path {
            path: text.to_owned(),
        });
    }
    if forms.devnum
        && let Some(result) = parse_devnum(text)
    {
        return result;
    }
    Err(unknown)
}

/// `rootwait` / `rootwait=<secs>`: wait for the root device to appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootWait {
    /// Bare `rootwait`: wait as long as it takes.
    Forever,
    /// `rootwait=<secs>` (newer 6.x kernels): give up after this long
    /// (`rootwait=0` means do not wait).
    Timeout(#[serde(serialize_with = "serialize_duration")] Duration),
}

/// `rootwait=<secs>`: the kernel reads it with `kstrtoint(str, 0, ...)`
/// and falls back to waiting forever on a bad value; liftoff takes plain
/// decimal seconds and calls anything else an error.
pub(crate) fn parse_rootwait_secs(text: &str) -> Option<Duration> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The kernel multiplies by MSEC_PER_SEC into an int.
    let secs: u32 = text.parse().ok()?;
    (secs <= i32::MAX as u32 / 1000).then(|| Duration::from_secs(u64::from(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Result<RootDevice, DeviceError> {
        parse_device(text, DeviceForms::ROOT)
    }

    #[test]
    fn root_forms_table() {
        let uuid = "6E0E3D54-5F0A-4C3A-9F8B-2B1D4F6A7C8E";
        let lower = uuid.to_ascii_lowercase();
        let cases: Vec<(&str, String, Result<RootDevice, DeviceError>)> = vec![
            (
                "path",
                "/dev/vda2".into(),
                Ok(RootDevice::Path {
                    path: "/dev/vda2".into(),
                }),
            ),
            (
                "mapper path",
                "/dev/mapper/root".into(),
                Ok(RootDevice::Path {
                    path: "/dev/mapper/root".into(),
                }),
            ),
            ("bare /dev/", "/dev/".into(), Err(DeviceError::Path)),
            (
                "partuuid",
                format!("PARTUUID={uuid}"),
                Ok(RootDevice::PartUuid {
                    uuid: lower.clone(),
                    partnroff: None,
                }),
            ),
            (
                "partnroff",
                format!("PARTUUID={uuid}/PARTNROFF=1"),
                Ok(RootDevice::PartUuid {
                    uuid: lower.clone(),
                    partnroff: Some(1),
                }),
            ),
            (
                "negative partnroff",
                format!("PARTUUID={uuid}/PARTNROFF=-2"),
                Ok(RootDevice::PartUuid {
                    uuid: lower.clone(),
                    partnroff: Some(-2),
                }),
            ),
            (
                "bad partnroff",
                format!("PARTUUID={uuid}/PARTNROFF=x"),
                Err(DeviceError::PartNrOff),
            ),
            (
                "partnroff trailing",
                format!("PARTUUID={uuid}/PARTNROFF=1x"),
                Err(DeviceError::PartNrOff),
            ),
            (
                "wrong suffix",
                format!("PARTUUID={uuid}/FOO=1"),
                Err(DeviceError::PartNrOff),
            ),
            (
                "mbr id",
                "PARTUUID=0002dd75-01".into(),
                Ok(RootDevice::PartUuid {
                    uuid: "0002dd75-01".into(),
                    partnroff: None,
                }),
            ),
            (
                "uuid prefix (kernel would prefix-match)",
                "PARTUUID=6e0e3d54".into(),
                Err(DeviceError::PartUuid),
            ),
            (
                "empty partuuid",
                "PARTUUID=".into(),
                Err(DeviceError::PartUuid),
            ),
            (
                "partlabel",
                "PARTLABEL=root-a".into(),
                Ok(RootDevice::PartLabel {
                    label: "root-a".into(),
                }),
            ),
            (
                "empty partlabel",
                "PARTLABEL=".into(),
                Err(DeviceError::Label { max: 36 }),
            ),
            (
                "label",
                "LABEL=rootfs".into(),
                Ok(RootDevice::Label {
                    label: "rootfs".into(),
                }),
            ),
            (
                "fs uuid",
                "UUID=0b2c3d4e-1111-2222-3333-444455556666".into(),
                Ok(RootDevice::Uuid {
                    uuid: "0b2c3d4e-1111-2222-3333-444455556666".into(),
                }),
            ),
            (
                "vfat serial",
                "UUID=ABCD-1234".into(),
                Ok(RootDevice::Uuid {
                    uuid: "ABCD-1234".into(),
                }),
            ),
            ("bad fs uuid", "UUID=xyz".into(), Err(DeviceError::FsUuid)),
            (
                "major:minor",
                "8:1".into(),
                Ok(RootDevice::DevNum { major: 8, minor: 1 }),
            ),
            (
                "major too big",
                "4096:0".into(),
                Err(DeviceError::DevNumRange),
            ),
            (
                "hex devno",
                "fe01".into(),
                Ok(RootDevice::DevNum {
                    major: 0xfe,
                    minor: 1,
                }),
            ),
            (
                "hex devno 0x",
                "0x801".into(),
                Ok(RootDevice::DevNum { major: 8, minor: 1 }),
            ),
            (
                "hex devno high minor",
                "1234567".into(),
                Ok(RootDevice::DevNum {
                    major: 0x345,
                    minor: 0x67 | 0x01200,
                }),
            ),
            (
                "word",
                "sda1".into(),
                Err(DeviceError::UnknownForm {
                    forms: DeviceForms::ROOT.describe,
                }),
            ),
            (
                "empty",
                "".into(),
                Err(DeviceError::UnknownForm {
                    forms: DeviceForms::ROOT.describe,
                }),
            ),
        ];
        for (name, text, expected) in cases {
            assert_eq!(root(&text), expected, "case {name}: {text}");
        }
    }

    #[test]
    fn forms_restrict_per_key() {
        assert_eq!(
            parse_device("LABEL=x", DeviceForms::KERNEL),
            Err(DeviceError::UnknownForm {
                forms: DeviceForms::KERNEL.describe
            })
        );
        assert_eq!(
            parse_device("8:1", DeviceForms::SYSTEMD),
            Err(DeviceError::UnknownForm {
                forms: DeviceForms::SYSTEMD.describe
            })
        );
        assert_eq!(
            parse_device(
                "PARTUUID=6e0e3d54-5f0a-4c3a-9f8b-2b1d4f6a7c8e/PARTNROFF=1",
                DeviceForms::SYSTEMD
            ),
            Err(DeviceError::PartNrOffNotHere)
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "/dev/vda2",
            "PARTUUID=6e0e3d54-5f0a-4c3a-9f8b-2b1d4f6a7c8e/PARTNROFF=-1",
            "PARTLABEL=root",
            "LABEL=x",
            "UUID=ABCD-1234",
            "8:1",
        ] {
            assert_eq!(root(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn rootwait_seconds() {
        assert_eq!(parse_rootwait_secs("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_rootwait_secs("0"), Some(Duration::ZERO));
        assert_eq!(parse_rootwait_secs("-1"), None);
        assert_eq!(parse_rootwait_secs("2147484"), None);
        assert_eq!(parse_rootwait_secs("1s"), None);
    }
}
