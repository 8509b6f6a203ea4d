//! Reading block devices from sysfs and their first sectors from `/dev`.
//!
//! Both roots are parameters, so host tests run this on a tempdir tree
//! shaped like sysfs (`class/block/<name>` links into `devices/…`) with
//! image files standing in for device nodes.
//!
//! Failures of sysfs itself are errors; failures reading a device node
//! (a drive with no medium, an I/O error) are recorded on that device as a
//! [`ScanIssue`] and the scan goes on: one bad disk must not stop the boot
//! from finding the good one.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::gpt::{self, GptError};
use super::probe::{self, PROBE_BYTES};
use super::{BlockDevice, DeviceTable, PartitionInfo, PartitionTable, ScanIssue};

/// Where block devices are listed, below the sysfs root.
const CLASS_BLOCK: &str = "class/block";
/// sysfs `size` is in 512-byte units whatever the device's sector size.
const SYSFS_SECTOR: u64 = 512;
/// First read of a disk: covers the protective MBR, the header and a
/// 128-entry array with 512- or 4096-byte sectors.
const DISK_HEAD: usize = 64 * 1024;
/// Largest re-read a GPT may ask for (an entry array far out or huge).
const MAX_DISK_HEAD: usize = 8 << 20;

/// A failed sysfs read.
#[derive(Debug, Error)]
pub enum SysfsError {
    /// The block class directory cannot be listed.
    #[error("cannot list block devices in {path}")]
    List {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An attribute cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The attribute file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An attribute does not hold what the kernel writes there.
    #[error("{path}: {value:?} is not {expected}")]
    Malformed {
        /// The attribute file.
        path: PathBuf,
        /// Its content.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// Read an attribute; `Ok(None)` when it does not exist (the device went
/// away, or the attribute is optional).
fn attr(dir: &Path, name: &str) -> Result<Option<String>, SysfsError> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim_end().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SysfsError::Read { path, source }),
    }
}

fn number<T: std::str::FromStr>(
    dir: &Path,
    name: &str,
    text: &str,
    expected: &'static str,
) -> Result<T, SysfsError> {
    text.parse().map_err(|_| SysfsError::Malformed {
        path: dir.join(name),
        value: text.to_owned(),
        expected,
    })
}

/// Read up to `len` bytes from the start of a node (less if it is smaller).
fn read_head(path: &Path, len: usize) -> Result<Vec<u8>, ScanIssue> {
    let issue = |e: io::Error| ScanIssue::Read {
        path: path.to_owned(),
        kind: e.kind(),
    };
    let file = File::open(path).map_err(issue)?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf).map_err(issue)?;
    Ok(buf)
}

/// The sysfs attributes of one device.
#[derive(Debug)]
struct Attrs {
    dir: PathBuf,
    dev: BlockDevice,
    logical_block_size: u32,
}

/// Read one device's attributes; `None` when it is gone.
fn read_attrs(sys_root: &Path, name: &str) -> Result<Option<Attrs>, SysfsError> {
    let link = sys_root.join(CLASS_BLOCK).join(name);
    // The real directory, so that a partition's parent is its disk.
    let dir = match fs::canonicalize(&link) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SysfsError::Read { path: link, source }),
    };
    let Some(devno) = attr(&dir, "dev")? else {
        return Ok(None);
    };
    let (major, minor) = devno
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| SysfsError::Malformed {
            path: dir.join("dev"),
            value: devno.clone(),
            expected: "major:minor",
        })?;
    let sectors: u64 = match attr(&dir, "size")? {
        Some(text) => number(&dir, "size", &text, "a number of sectors")?,
        None => 0,
    };
    let partition = match attr(&dir, "partition")? {
        Some(text) => Some(PartitionInfo {
            number: number(&dir, "partition", &text, "a partition number")?,
            ..PartitionInfo::default()
        }),
        None => None,
    };
    let disk = if partition.is_some() {
        dir.parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
    } else {
        None
    };
    let uevent = attr(&dir, "uevent")?.unwrap_or_default();
    let devname = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .unwrap_or(name)
        .to_owned();
    let logical_block_size = match attr(&dir, "queue/logical_block_size")? {
        Some(text) => number(&dir, "queue/logical_block_size", &text, "a sector size")?,
        None => 512,
    };
    Ok(Some(Attrs {
        dev: BlockDevice {
            name: name.to_owned(),
            devname,
            major,
            minor,
            size: sectors.saturating_mul(SYSFS_SECTOR),
            disk,
            partition,
            table: None,
            dm_name: attr(&dir, "dm/name")?,
            probe: None,
            issue: None,
        },
        dir,
        logical_block_size,
    }))
}

/// The names of the partitions under a disk's sysfs directory.
fn partition_names(disk_dir: &Path) -> Result<Vec<String>, SysfsError> {
    let entries = fs::read_dir(disk_dir).map_err(|source| SysfsError::Read {
        path: disk_dir.to_owned(),
        source,
    })?;
    let mut names = Vec::new();
    for entry in entries.flatten() {
        if entry.path().join("partition").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The disk's partition table and, for a GPT, its entries by number.
fn read_table(
    disk: &mut BlockDevice,
    node: &Path,
    sector_size: u32,
    has_partitions: bool,
) -> Option<gpt::Gpt> {
    let mut head = match read_head(node, DISK_HEAD) {
        Ok(head) => head,
        Err(issue) => {
            disk.issue = Some(issue);
            return None;
        }
    };
    let lba0 = head.get(..512).unwrap_or_default();
    if gpt::has_protective_mbr(lba0) {
        let mut parsed = gpt::parse(&head, sector_size);
        if let Err(GptError::Truncated { needed, .. }) = parsed
            && needed <= MAX_DISK_HEAD
        {
            match read_head(node, needed) {
                Ok(longer) => head = longer,
                Err(issue) => {
                    disk.issue = Some(issue);
                    return None;
                }
            }
            parsed = gpt::parse(&head, sector_size);
        }
        match parsed {
            Ok(table) => {
                disk.table = Some(PartitionTable::Gpt {
                    disk_guid: table.disk_guid,
                });
                return Some(table);
            }
            Err(e) => {
                disk.issue = Some(ScanIssue::Gpt(e));
                return None;
            }
        }
    }
    if has_partitions && let Some(signature) = gpt::mbr_signature(lba0) {
        disk.table = Some(PartitionTable::Mbr { signature });
        return None;
    }
    if !has_partitions {
        disk.probe = probe::probe(head.get(..PROBE_BYTES).unwrap_or(&head));
    }
    None
}

/// Read a disk (or any device that is not a partition) and its partitions.
/// Empty when it is gone.
///
/// # Errors
/// A sysfs attribute cannot be read or is malformed.
pub fn read_disk(
    sys_root: &Path,
    dev_root: &Path,
    disk_name: &str,
) -> Result<Vec<BlockDevice>, SysfsError> {
    let Some(Attrs {
        dir,
        dev: mut disk,
        logical_block_size,
    }) = read_attrs(sys_root, disk_name)?
    else {
        return Ok(Vec::new());
    };
    let mut parts = Vec::new();
    for name in partition_names(&dir)? {
        if let Some(attrs) = read_attrs(sys_root, &name)? {
            parts.push(attrs.dev);
        }
    }
    // Empty loop devices and drives without a medium have size 0: nothing
    // to read.
    let table = if disk.size > 0 {
        let node = dev_root.join(&disk.devname);
        read_table(&mut disk, &node, logical_block_size, !parts.is_empty())
    } else {
        None
    };
    for part in &mut parts {
        let info = part.partition.get_or_insert_with(PartitionInfo::default);
        match (&table, disk.table) {
            (Some(gpt), _) => {
                if let Some(entry) = gpt.partitions.iter().find(|e| e.number == info.number) {
                    info.uuid = Some(entry.uuid.to_string());
                    info.label = (!entry.name.is_empty()).then(|| entry.name.clone());
                    info.type_guid = Some(entry.type_guid);
                }
            }
            (None, Some(PartitionTable::Mbr { signature })) => {
                info.uuid = Some(format!("{signature:08x}-{:02x}", info.number));
            }
            _ => {}
        }
        if part.size > 0 {
            match read_head(&dev_root.join(&part.devname), PROBE_BYTES) {
                Ok(head) => part.probe = probe::probe(&head),
                Err(issue) => part.issue = Some(issue),
            }
        }
    }
    let mut family = vec![disk];
    family.extend(parts);
    Ok(family)
}

/// The disk a device belongs to: itself, or a partition's parent. `None`
/// when the device is gone.
///
/// # Errors
/// A sysfs attribute cannot be read.
pub fn disk_of(sys_root: &Path, name: &str) -> Result<Option<String>, SysfsError> {
    Ok(read_attrs(sys_root, name)?.map(|a| a.dev.disk.unwrap_or(a.dev.name)))
}

/// Every block device under `sys_root` (normally `/sys`), read through
/// nodes under `dev_root` (normally `/dev`).
///
/// # Errors
/// `class/block` cannot be listed, or an attribute cannot be read.
pub fn scan(sys_root: &Path, dev_root: &Path) -> Result<DeviceTable, SysfsError> {
    let class = sys_root.join(CLASS_BLOCK);
    let entries = fs::read_dir(&class).map_err(|source| SysfsError::List {
        path: class.clone(),
        source,
    })?;
    let mut table = DeviceTable {
        dev_root: dev_root.to_owned(),
        devices: Vec::new(),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        // Partitions are read with their disk.
        if let Some(attrs) = read_attrs(sys_root, &name)?
            && attrs.dev.partition.is_none()
        {
            let family = read_disk(sys_root, dev_root, &name)?;
            table.replace_disk(&name, family);
        }
    }
    Ok(table)
}

/// Re-read the disk `name` belongs to after a uevent for it; a device that
/// is gone is dropped (with its partitions, if it was a disk).
///
/// # Errors
/// A sysfs attribute cannot be read.
pub fn rescan(
    table: &mut DeviceTable,
    sys_root: &Path,
    dev_root: &Path,
    name: &str,
) -> Result<(), SysfsError> {
    match disk_of(sys_root, name)? {
        Some(disk) => {
            let family = read_disk(sys_root, dev_root, &disk)?;
            table.replace_disk(&disk, family);
        }
        None => {
            // Gone: drop it, and its partitions if it was a disk.
            table.replace_disk(name, Vec::new());
        }
    }
    Ok(())
}
