//! Finding the block devices the command line names, and waiting for them.
//!
//! Stage 1 has no udev: `/dev` is devtmpfs, so nodes such as `/dev/vda1`
//! appear by themselves, but there are no `/dev/disk/by-*` links. liftoff
//! therefore answers `PARTUUID=`, `PARTLABEL=`, `LABEL=`, `UUID=`, device
//! numbers and Discoverable Partitions itself:
//!
//! 1. [`sysfs::scan`] lists `/sys/class/block`, reads each disk's partition
//!    table ([`gpt`]) and each device's superblock ([`probe`]) through
//!    `/dev`, and builds a [`DeviceTable`] (plain data);
//! 2. [`resolve`] answers one [`DeviceSpec`] from a table, purely;
//! 3. [`wait::wait_for`] repeats 2 after every block uevent until every
//!    spec resolves or the time is up, and then says what it saw.
//!
//! A spec that matches two devices is an error, never "the first one": a
//! partition someone added with a copied PARTUUID or label must not be
//! able to win the race for the root.

pub mod gpt;
pub mod probe;
pub mod sysfs;
pub mod uevent;
pub mod wait;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kernel_cmdline::{DiscoverableUuids, RootDevice};
use thiserror::Error;

use self::gpt::{Guid, GuidParseError, PartitionType};
use self::probe::Probe;
use self::sysfs::SysfsError;
use self::uevent::UeventError;

/// A device to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// As a command-line key names it (`root=`, `systemd.verity_root_*=`,
    /// `dm-mod.waitfor=`).
    Named(RootDevice),
    /// A Discoverable Partitions partition: the GPT partition UUID *and*
    /// the partition type must both match.
    Discoverable {
        /// The partition type it must have.
        kind: PartitionType,
        /// Its GPT unique partition GUID.
        uuid: Guid,
    },
}

impl DeviceSpec {
    /// The data and hash partitions of a verity root found the
    /// Discoverable Partitions way, for this machine's architecture.
    ///
    /// # Errors
    /// A UUID in `uuids` is not a GUID (the command-line parser only makes
    /// valid ones).
    pub fn discoverable_root(
        uuids: &DiscoverableUuids,
        root: PartitionType,
        verity: PartitionType,
    ) -> Result<[Self; 2], GuidParseError> {
        Ok([
            Self::Discoverable {
                kind: root,
                uuid: uuids.data.parse()?,
            },
            Self::Discoverable {
                kind: verity,
                uuid: uuids.verity.parse()?,
            },
        ])
    }
}

/// The root and root-verity partition types of the architecture liftoff
/// was built for, if the specification names them.
#[must_use]
pub fn native_root_types() -> Option<(PartitionType, PartitionType)> {
    if cfg!(target_arch = "x86_64") {
        Some((gpt::ROOT_X86_64, gpt::ROOT_X86_64_VERITY))
    } else if cfg!(target_arch = "aarch64") {
        Some((gpt::ROOT_ARM64, gpt::ROOT_ARM64_VERITY))
    } else {
        None
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(dev) => dev.fmt(f),
            Self::Discoverable { kind, uuid } => {
                write!(f, "{} partition PARTUUID={uuid}", kind.name)
            }
        }
    }
}

/// What the partition table says about a partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionInfo {
    /// The partition number (sysfs `partition`).
    pub number: u32,
    /// PARTUUID: the GPT unique GUID, or the MBR `SSSSSSSS-PP` id;
    /// lower-case.
    pub uuid: Option<String>,
    /// PARTLABEL: the GPT name, when not empty.
    pub label: Option<String>,
    /// The GPT partition type.
    pub type_guid: Option<Guid>,
}

/// A disk's partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionTable {
    /// A valid primary GPT.
    Gpt {
        /// The disk GUID.
        disk_guid: Guid,
    },
    /// An MBR (DOS) table.
    Mbr {
        /// The disk signature the MBR PARTUUIDs are made from.
        signature: u32,
    },
}

/// Something that kept a device from being read fully; the device is still
/// listed, and the timeout message shows the problem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanIssue {
    /// Opening or reading the device node failed (e.g. a drive with no
    /// medium).
    #[error("cannot read {path}: {kind}")]
    Read {
        /// The node.
        path: PathBuf,
        /// What went wrong.
        kind: std::io::ErrorKind,
    },
    /// A protective MBR, but the GPT behind it is not valid.
    #[error("invalid gpt")]
    Gpt(#[source] gpt::GptError),
}

/// One block device as sysfs and its first sectors describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// The name in `/sys/class/block` (`vda1`, `dm-0`).
    pub name: String,
    /// The node below `/dev` (uevent `DEVNAME`), usually the same.
    pub devname: String,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Size in bytes.
    pub size: u64,
    /// For a partition, the disk it is on.
    pub disk: Option<String>,
    /// For a partition, what the table says.
    pub partition: Option<PartitionInfo>,
    /// For a disk, its partition table.
    pub table: Option<PartitionTable>,
    /// For a device-mapper device, its name (`/dev/mapper/<name>`).
    pub dm_name: Option<String>,
    /// What the superblock says.
    pub probe: Option<Probe>,
    /// Why something could not be read.
    pub issue: Option<ScanIssue>,
}

/// Every block device found, ordered by device number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceTable {
    /// Where the nodes are (`/dev`).
    pub dev_root: PathBuf,
    /// The devices.
    pub devices: Vec<BlockDevice>,
}

impl DeviceTable {
    /// The device called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&BlockDevice> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// Replace a disk and its partitions with a fresh reading (`family`
    /// empty: the disk went away).
    pub fn replace_disk(&mut self, disk: &str, family: Vec<BlockDevice>) {
        self.devices
            .retain(|d| d.name != disk && d.disk.as_deref() != Some(disk));
        self.devices.extend(family);
        self.devices.sort_by_key(|d| (d.major, d.minor));
    }

    /// The node of a device.
    #[must_use]
    pub fn node(&self, dev: &BlockDevice) -> PathBuf {
        self.dev_root.join(&dev.devname)
    }
}

/// Why a spec did not resolve (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No device matches.
    NotFound,
    /// The PARTUUID exists but on a partition of another type.
    WrongType {
        /// The partition found.
        name: String,
        /// Its type.
        found: Option<Guid>,
        /// The type wanted.
        wanted: PartitionType,
    },
    /// `PARTNROFF=` points at a partition number the disk does not have.
    NoOffsetPartition {
        /// The partition with the PARTUUID.
        base: String,
        /// The partition number wanted.
        number: i64,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::WrongType {
                name,
                found,
                wanted,
            } => {
                let found = found.map_or_else(|| "no gpt type".to_owned(), type_text);
                write!(f, "{name} has it but is {found}, not {}", wanted.name)
            }
            Self::NoOffsetPartition { base, number } => {
                write!(f, "found {base}, but its disk has no partition {number}")
            }
        }
    }
}

/// The answer for one spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Exactly one device.
    Found {
        /// Its name in sysfs.
        name: String,
        /// Its node.
        node: PathBuf,
    },
    /// Not (yet) there.
    Missing(Missing),
    /// More than one device matches: an error, whatever else appears.
    Ambiguous(Vec<String>),
}

fn one(table: &DeviceTable, matches: Vec<&BlockDevice>) -> Match {
    match matches.as_slice() {
        [] => Match::Missing(Missing::NotFound),
        [dev] => Match::Found {
            name: dev.name.clone(),
            node: table.node(dev),
        },
        many => Match::Ambiguous(many.iter().map(|d| d.name.clone()).collect()),
    }
}

fn partitions_with_uuid<'t>(table: &'t DeviceTable, uuid: &str) -> Vec<&'t BlockDevice> {
    table
        .devices
        .iter()
        .filter(|d| {
            d.partition
                .as_ref()
                .and_then(|p| p.uuid.as_deref())
                .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
        })
        .collect()
}

/// Answer `spec` from `table`.
///
/// Comparisons follow the kernel and blkid: PARTUUID and UUID ignore case,
/// labels are exact. `/PARTNROFF=` counts partition numbers on the disk of
/// the partition with the PARTUUID (`devt_from_partuuid()`).
#[must_use]
pub fn resolve(spec: &DeviceSpec, table: &DeviceTable) -> Match {
    let all = table.devices.iter();
    match spec {
        DeviceSpec::Named(RootDevice::Path { path }) => {
            let rel = path.strip_prefix("/dev/").unwrap_or(path);
            let mapper = rel.strip_prefix("mapper/");
            one(
                table,
                all.filter(|d| {
                    d.devname == rel || (mapper.is_some() && d.dm_name.as_deref() == mapper)
                })
                .collect(),
            )
        }
        DeviceSpec::Named(RootDevice::DevNum { major, minor }) => one(
            table,
            all.filter(|d| d.major == *major && d.minor == *minor)
                .collect(),
        ),
        DeviceSpec::Named(RootDevice::PartLabel { label }) => one(
            table,
            all.filter(|d| {
                d.partition.as_ref().and_then(|p| p.label.as_deref()) == Some(label.as_str())
            })
            .collect(),
        ),
        DeviceSpec::Named(RootDevice::Label { label }) => one(
            table,
            all.filter(|d| {
                d.probe.as_ref().and_then(|p| p.label.as_deref()) == Some(label.as_str())
            })
            .collect(),
        ),
        DeviceSpec::Named(RootDevice::Uuid { uuid }) => one(
            table,
            all.filter(|d| {
                d.probe
                    .as_ref()
                    .and_then(|p| p.uuid.as_deref())
                    .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
            })
            .collect(),
        ),
        DeviceSpec::Named(RootDevice::PartUuid { uuid, partnroff }) => {
            let found = one(table, partitions_with_uuid(table, uuid));
            match (found, partnroff) {
                (Match::Found { name, .. }, Some(off)) => offset_partition(table, &name, *off),
                (other, _) => other,
            }
        }
        DeviceSpec::Discoverable { kind, uuid } => {
            let found = one(table, partitions_with_uuid(table, &uuid.to_string()));
            if let Match::Found { name, .. } = &found {
                let type_guid = table
                    .get(name)
                    .and_then(|d| d.partition.as_ref())
                    .and_then(|p| p.type_guid);
                if type_guid != Some(kind.guid) {
                    return Match::Missing(Missing::WrongType {
                        name: name.clone(),
                        found: type_guid,
                        wanted: *kind,
                    });
                }
            }
            found
        }
    }
}

fn offset_partition(table: &DeviceTable, base: &str, off: i32) -> Match {
    let Some((disk, number)) = table.get(base).and_then(|d| {
        let number = d.partition.as_ref()?.number;
        Some((d.disk.clone()?, i64::from(number) + i64::from(off)))
    }) else {
        return Match::Missing(Missing::NotFound);
    };
    match one(
        table,
        table
            .devices
            .iter()
            .filter(|d| {
                d.disk.as_deref() == Some(disk.as_str())
                    && d.partition
                        .as_ref()
                        .is_some_and(|p| i64::from(p.number) == number)
            })
            .collect(),
    ) {
        Match::Missing(_) => Match::Missing(Missing::NoOffsetPartition {
            base: base.to_owned(),
            number,
        }),
        other => other,
    }
}

/// A failed device lookup.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// Not every device appeared in time.
    #[error(
        "timed out after {} waiting for {}; block devices seen: {}",
        format_duration(*timeout),
        format_missing(missing),
        summarize(seen)
    )]
    Timeout {
        /// The timeout (`liftoff.device_timeout=`).
        timeout: Duration,
        /// Each spec still missing, and why.
        missing: Vec<(DeviceSpec, Missing)>,
        /// Every block device there was at the end.
        seen: Vec<BlockDevice>,
    },
    /// A spec matches more than one device.
    #[error(
        "{spec} matches {} devices ({}): refusing to pick one, as a duplicate may be a partition an attacker added",
        devices.len(),
        devices.join(", ")
    )]
    Ambiguous {
        /// The spec.
        spec: DeviceSpec,
        /// The devices it matches.
        devices: Vec<String>,
    },
    /// Listing or reading sysfs failed.
    #[error("cannot scan block devices")]
    Scan(#[from] SysfsError),
    /// The uevent socket failed.
    #[error("cannot wait for uevents")]
    Uevent(#[from] UeventError),
}

/// `30s`, `1.5s`, `200ms`.
fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

fn format_missing(missing: &[(DeviceSpec, Missing)]) -> String {
    missing
        .iter()
        .map(|(spec, why)| format!("{spec}: {why}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `8 GiB`, `1.5 MiB`, `512 B`.
fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut scaled = bytes;
    while scaled >= 1024 && unit + 1 < UNITS.len() {
        scaled /= 1024;
        unit += 1;
    }
    let divisor = 1u64 << (10 * unit);
    if bytes.is_multiple_of(divisor) {
        format!("{} {}", bytes / divisor, UNITS[unit])
    } else {
        // Lossy on purpose: one decimal for a human.
        let value = bytes as f64 / divisor as f64;
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn type_text(guid: Guid) -> String {
    gpt::type_name(guid).map_or_else(|| format!("type {guid}"), str::to_owned)
}

fn describe_contents(dev: &BlockDevice, words: &mut Vec<String>) {
    if let Some(probe) = &dev.probe {
        words.push(probe.fstype.to_string());
        if let Some(label) = &probe.label {
            words.push(format!("LABEL={label}"));
        }
        if let Some(uuid) = &probe.uuid {
            words.push(format!("UUID={uuid}"));
        }
    }
    if let Some(issue) = &dev.issue {
        words.push(match issue {
            ScanIssue::Gpt(e) => format!("invalid gpt: {e}"),
            other => other.to_string(),
        });
    }
}

fn describe_partition(part: &BlockDevice) -> String {
    let mut words = vec![part.name.clone()];
    if let Some(info) = &part.partition {
        if let Some(t) = info.type_guid {
            words.push(type_text(t));
        }
        if let Some(uuid) = &info.uuid {
            words.push(format!("PARTUUID={uuid}"));
        }
        if let Some(label) = &info.label {
            words.push(format!("PARTLABEL={label}"));
        }
    }
    describe_contents(part, &mut words);
    words.join(" ")
}

/// One line per disk with its partitions, for the timeout message:
/// `vda (8 GiB, gpt: vda1 root-x86-64 PARTUUID=…, vda2 …), vdb (…)`.
#[must_use]
pub fn summarize(devices: &[BlockDevice]) -> String {
    // Empty loop devices, card readers and drives without a medium only
    // add noise: name them together at the end.
    let empty: Vec<&str> = devices
        .iter()
        .filter(|d| d.disk.is_none() && d.size == 0 && d.issue.is_none())
        .map(|d| d.name.as_str())
        .collect();
    let mut disks: Vec<String> = devices
        .iter()
        .filter(|d| d.disk.is_none() && !empty.contains(&d.name.as_str()))
        .map(|disk| {
            let mut contents = Vec::new();
            describe_contents(disk, &mut contents);
            let parts: Vec<String> = devices
                .iter()
                .filter(|p| p.disk.as_deref() == Some(disk.name.as_str()))
                .map(describe_partition)
                .collect();
            let mut text = format_size(disk.size);
            if !contents.is_empty() {
                text.push_str(", ");
                text.push_str(&contents.join(" "));
            }
            match disk.table {
                Some(PartitionTable::Gpt { .. }) => text.push_str(", gpt: "),
                Some(PartitionTable::Mbr { .. }) => text.push_str(", mbr: "),
                None if !parts.is_empty() => text.push_str(", partitions: "),
                None => {}
            }
            text.push_str(&parts.join(", "));
            format!("{} ({text})", disk.name)
        })
        .collect();
    if !empty.is_empty() {
        disks.push(format!("empty: {}", empty.join(" ")));
    }
    if disks.is_empty() {
        "none".to_owned()
    } else {
        disks.join(", ")
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
