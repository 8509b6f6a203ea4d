//! Stage 1 for a `dm-mod.create=` verity root (Bottlerocket's and Chrome
//! OS's line), done in user space for kernels without `CONFIG_DM_INIT`.
//!
//! 1. [`plan`]: every `dm-mod.create=` device must be one `verity` target,
//!    `ro`, starting at sector 0 and exactly as long as its table maps; its
//!    data and hash devices must be `PARTUUID=…[/PARTNROFF=N]`, `/dev/…`
//!    or `major:minor`; `root=` must be one of these devices
//!    (`/dev/mapper/<name>` or `/dev/dm-N`). Anything else is refused
//!    before a device is touched.
//! 2. [`open`]: wait, bounded by `liftoff.device_timeout=`, for
//!    `dm-mod.waitfor=` and every data and hash device; then per device:
//!    both underlying devices read-only (`BLKROSET`), the top hash block
//!    checked against the table's root digest, the dm device created under
//!    its own name with the resolved `/dev/…` nodes substituted.
//! 3. The dm node `root=` names is returned; the caller mounts only it.
//!
//! The table's own options (e.g. `restart_on_corruption`) are used as
//! given: the line is the contract, `liftoff.verity.on_corruption=` does
//! not rewrite it. The uuid and minor fields are not applied (liftoff's dm
//! devices carry liftoff's uuid); `root=/dev/dm-N` is checked against the
//! minor the kernel actually gave.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use kernel_cmdline::dm::parse_dm_waitfor;
use kernel_cmdline::{BootPlan, DmDevice, RootDevice};
use log::info;
use mounts::devices::{DeviceError, DeviceSpec, wait};
use thiserror::Error;
use verity::dm::DmError;
use verity::table::{TableError, VerityTable};
use verity::tree::digest_block;

use crate::stamps::Stamps;
use crate::sys;

/// The only target type stage 1 creates from `dm-mod.create=`.
pub const VERITY: &str = "verity";

/// Why a `dm-mod.create=` root could not be set up.
#[derive(Debug, Error)]
pub enum DmCreateError {
    /// A device with a target other than `verity` (linear, crypt, …).
    #[error(
        "dm-mod.create= device {name}: target type {target_type} is not supported by stage 1 (only verity)"
    )]
    TargetType {
        /// The dm device.
        name: String,
        /// The refused target type.
        target_type: String,
    },
    /// A verity device is exactly one target.
    #[error(
        "dm-mod.create= device {name} has {count} targets; stage 1 creates single-target verity devices only"
    )]
    TargetCount {
        /// The dm device.
        name: String,
        /// How many targets it has.
        count: usize,
    },
    /// `rw`: dm-verity refuses it, and so does stage 1, before anything.
    #[error("dm-mod.create= device {name} is rw; a verity device must be ro")]
    ReadWrite {
        /// The dm device.
        name: String,
    },
    /// The verity arguments did not parse.
    #[error("dm-mod.create= device {name}: invalid verity table")]
    Table {
        /// The dm device.
        name: String,
        #[source]
        source: TableError,
    },
    /// The target's sectors are not the ones its table maps.
    #[error(
        "dm-mod.create= device {name}: the target is {start}+{sectors} sectors, its verity table maps 0+{expected}"
    )]
    Geometry {
        /// The dm device.
        name: String,
        /// The target's start sector.
        start: u64,
        /// The target's length.
        sectors: u64,
        /// What the table's data blocks cover.
        expected: u64,
    },
    /// A data or hash device in the table is not a form stage 1 finds.
    #[error(
        "dm-mod.create= device {name}: {role} device {text:?} is not PARTUUID=, /dev/… or major:minor"
    )]
    DeviceSpec {
        /// The dm device.
        name: String,
        /// `data` or `hash`.
        role: &'static str,
        /// The word in the table.
        text: String,
    },
    /// `root=` is missing.
    #[error("dm-mod.create= is given without root=; root= must name its verity device")]
    NoRoot,
    /// `root=` names something that is not a `dm-mod.create=` device.
    #[error(
        "root={root} is not a dm-mod.create= verity device ({expected}); stage 1 mounts nothing else"
    )]
    RootNotVerity {
        /// `root=` as given.
        root: String,
        /// What it may be.
        expected: String,
    },
    /// The devices did not appear (or one appeared twice).
    #[error("cannot find the dm-mod.create= devices")]
    Devices(#[source] DeviceError),
    /// The wait answered with other than the devices asked for.
    #[error("expected {expected} device(s), the device wait returned {found}")]
    DeviceCount {
        /// How many were asked for.
        expected: usize,
        /// How many came back.
        found: usize,
    },
    /// BLKROSET failed.
    #[error("cannot set {} read-only", device.display())]
    SetReadOnly {
        /// The device.
        device: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The top hash block could not be read.
    #[error("cannot read the top hash block of dm device {name} at byte {offset} of {}", device.display())]
    ReadHashBlock {
        /// The dm device.
        name: String,
        /// The hash device.
        device: PathBuf,
        /// Where the block starts.
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// The top hash block does not hash to the table's root digest.
    #[error("root hash mismatch for dm device {name} on {}: the table says {expected}, the hash tree says {found}", device.display())]
    RootHashMismatch {
        /// The dm device.
        name: String,
        /// The hash device.
        device: PathBuf,
        /// The table's digest.
        expected: String,
        /// The stored top block's digest.
        found: String,
    },
    /// Creating the dm device failed.
    #[error("cannot create dm device {name}")]
    Create {
        /// The dm device.
        name: String,
        #[source]
        source: DmError,
    },
    /// `root=/dev/dm-N` is none of the devices created.
    #[error("root={root} is none of the verity devices created ({created})")]
    RootNotCreated {
        /// `root=`.
        root: String,
        /// The nodes created, comma-separated.
        created: String,
    },
}

/// One verity device to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Its name (`/dev/mapper/<name>`).
    pub name: String,
    /// The table as given (device words unresolved).
    pub table: VerityTable,
    /// Its data device.
    pub data: RootDevice,
    /// Its hash device.
    pub hash: RootDevice,
}

/// Which created device `root=` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootChoice {
    /// `/dev/mapper/<name>`: the device with this name.
    Name(String),
    /// `/dev/dm-N`: whichever created device has this node.
    Node(PathBuf),
}

fn device_word(name: &str, role: &'static str, text: &str) -> Result<RootDevice, DmCreateError> {
    let error = || DmCreateError::DeviceSpec {
        name: name.to_owned(),
        role,
        text: text.to_owned(),
    };
    // dm-mod.waitfor='s forms are early_lookup_bdev()'s, what dm-init
    // itself resolves table devices with.
    let mut parsed = parse_dm_waitfor(text).map_err(|_| error())?;
    match (parsed.pop(), parsed.is_empty()) {
        (Some(device), true) => Ok(device),
        _ => Err(error()),
    }
}

/// Checks every `dm-mod.create=` device and `root=`; nothing is touched.
///
/// # Errors
/// A target other than one `verity` target, `rw`, a bad table or device
/// word, sectors other than the table's, or `root=` not naming one of
/// the devices.
pub fn plan(
    devices: &[DmDevice],
    root: Option<&RootDevice>,
) -> Result<(Vec<Planned>, RootChoice), DmCreateError> {
    let mut planned = Vec::with_capacity(devices.len());
    for device in devices {
        let name = device.name.clone();
        if let Some(other) = device.targets.iter().find(|t| t.target_type != VERITY) {
            return Err(DmCreateError::TargetType {
                name,
                target_type: other.target_type.clone(),
            });
        }
        let [target] = device.targets.as_slice() else {
            return Err(DmCreateError::TargetCount {
                name,
                count: device.targets.len(),
            });
        };
        if !device.read_only {
            return Err(DmCreateError::ReadWrite { name });
        }
        let table = VerityTable::parse(&target.args).map_err(|source| DmCreateError::Table {
            name: name.clone(),
            source,
        })?;
        let expected = table.length_sectors();
        if target.start_sector != 0 || target.num_sectors != expected {
            return Err(DmCreateError::Geometry {
                name,
                start: target.start_sector,
                sectors: target.num_sectors,
                expected,
            });
        }
        let data = device_word(&name, "data", &table.data_device)?;
        let hash = device_word(&name, "hash", &table.hash_device)?;
        planned.push(Planned {
            name,
            table,
            data,
            hash,
        });
    }
    let choice = root_choice(&planned, root)?;
    Ok((planned, choice))
}

fn root_choice(
    planned: &[Planned],
    root: Option<&RootDevice>,
) -> Result<RootChoice, DmCreateError> {
    let root = root.ok_or(DmCreateError::NoRoot)?;
    let expected = || {
        planned
            .iter()
            .map(|p| format!("/dev/mapper/{}", p.name))
            .chain(std::iter::once("/dev/dm-N".to_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let refuse = || DmCreateError::RootNotVerity {
        root: root.to_string(),
        expected: expected(),
    };
    let RootDevice::Path { path } = root else {
        return Err(refuse());
    };
    if let Some(name) = path.strip_prefix("/dev/mapper/") {
        return if planned.iter().any(|p| p.name == name) {
            Ok(RootChoice::Name(name.to_owned()))
        } else {
            Err(refuse())
        };
    }
    match path.strip_prefix("/dev/dm-") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(RootChoice::Node(PathBuf::from(path)))
        }
        _ => Err(refuse()),
    }
}

/// Creates every `dm-mod.create=` verity device and returns the node of
/// the one `root=` names. Marks `devices` and `verity` in `stamps`.
///
/// # Errors
/// Everything [`plan`] refuses, a device timeout, BLKROSET, a root digest
/// that does not match the top hash block, or the dm ioctls.
pub fn open(plan_: &BootPlan, stamps: &mut Stamps) -> Result<PathBuf, DmCreateError> {
    let (planned, choice) = plan(&plan_.dm_create, plan_.root.as_ref())?;

    // Wait for dm-mod.waitfor= first in the list, then data and hash of
    // each device: one bounded wait for all.
    let specs: Vec<DeviceSpec> = plan_
        .dm_waitfor
        .iter()
        .cloned()
        .chain(
            planned
                .iter()
                .flat_map(|p| [p.data.clone(), p.hash.clone()]),
        )
        .map(DeviceSpec::Named)
        .collect();
    let found =
        wait::wait_for_devices(&specs, plan_.device_timeout).map_err(DmCreateError::Devices)?;
    if found.len() != specs.len() {
        return Err(DmCreateError::DeviceCount {
            expected: specs.len(),
            found: found.len(),
        });
    }
    let nodes: Vec<PathBuf> = found
        .into_iter()
        .skip(plan_.dm_waitfor.len())
        .map(|r| r.node)
        .collect();
    stamps.mark("devices");

    let mut created = Vec::with_capacity(planned.len());
    for (device, pair) in planned.iter().zip(nodes.chunks(2)) {
        let [data, hash] = pair else {
            return Err(DmCreateError::DeviceCount {
                expected: specs.len(),
                found: nodes.len(),
            });
        };
        info!(
            "dm-mod.create= {}: data {} hash {}",
            device.name,
            data.display(),
            hash.display()
        );
        let node = create(device, data, hash)?;
        created.push((device.name.clone(), node));
    }
    stamps.mark("verity");

    let root = created.iter().find(|(name, node)| match &choice {
        RootChoice::Name(wanted) => name == wanted,
        RootChoice::Node(wanted) => node == wanted,
    });
    match root {
        Some((_, node)) => Ok(node.clone()),
        None => Err(DmCreateError::RootNotCreated {
            root: plan_
                .root
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            created: created
                .iter()
                .map(|(_, n)| n.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The digest of the top hash block, `None` without a tree (one data
/// block: its digest is the root digest, the kernel checks it on read).
#[must_use]
pub fn top_digest(table: &VerityTable, top: &[u8]) -> Option<Vec<u8>> {
    (table.data_blocks > 1)
        .then(|| digest_block(table.algorithm, table.hash_type, &table.salt, top))
}

fn create(device: &Planned, data: &Path, hash: &Path) -> Result<PathBuf, DmCreateError> {
    let name = &device.name;

    // a. Read-only in the kernel first, as on the roothash= path.
    for dev in [data, hash] {
        File::open(dev)
            .and_then(|f| sys::set_block_read_only(&f).map_err(io::Error::from))
            .map_err(|source| DmCreateError::SetReadOnly {
                device: dev.to_owned(),
                source,
            })?;
    }

    // b. The top hash block against the root digest, before mapping: a
    // wrong digest fails here with a message, not as a restart on read.
    let block = u64::from(device.table.hash_block_size);
    let offset = device.table.hash_start_block.saturating_mul(block);
    let mut top = vec![0u8; usize::try_from(block).unwrap_or(0)];
    File::open(hash)
        .and_then(|f| f.read_exact_at(&mut top, offset))
        .map_err(|source| DmCreateError::ReadHashBlock {
            name: name.clone(),
            device: hash.to_owned(),
            offset,
            source,
        })?;
    if let Some(found) = top_digest(&device.table, &top).filter(|d| *d != device.table.root_digest)
    {
        return Err(DmCreateError::RootHashMismatch {
            name: name.clone(),
            device: hash.to_owned(),
            expected: verity::verify::hex(&device.table.root_digest),
            found: verity::verify::hex(&found),
        });
    }

    // c. The table with the nodes found, loaded read-only.
    let mut table = device.table.clone();
    table.data_device = data.display().to_string();
    table.hash_device = hash.display().to_string();
    let node = verity::dm::open(name, &table).map_err(|source| DmCreateError::Create {
        name: name.clone(),
        source,
    })?;
    info!("dm-mod.create= {name} is {}", node.display());
    Ok(node)
}

#[cfg(test)]
mod tests;
