//! Stage 1 for a verity root, `roothash=` or `dm-mod.create=`
//! ([`dm_create`]): from the initramfs to `init=` on the verified root
//! (docs/boot.md).
//!
//! 1. load the kernel modules the initramfs config and `liftoff.modules=`
//!    name (a failed module is fatal);
//! 2. wait, bounded by `liftoff.device_timeout=`, for the data and hash
//!    partitions by Discoverable Partitions type and UUID (or as
//!    `systemd.verity_root_data=` / `_hash=` name them);
//! 3. read the verity superblock, check the top hash block against the
//!    root hash, set both partitions read-only (`BLKROSET`) and create
//!    `/dev/mapper/root`;
//! 4. mount the verity device read-only on `/sysroot`;
//! 5. switch_root ([`switch_root`]) and exec `init=`.
//!
//! Fail closed: every error ends here as a [`Stage1Error`], which PID 1
//! turns into the failure action. Nothing ever mounts the data partition
//! itself; only the dm-verity device is mounted.
//!
//! The pure parts (the module list, the verity table, the filesystem types
//! to try, the switch_root steps) are plain functions, tested on the host;
//! the recipe in [`boot`] is tested in QEMU (qemu-tests/tests/stage1.rs).

pub mod dm_create;
pub mod switch_root;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use kernel_cmdline::{
    BootPlan, CorruptionAction, RootDevice, RootHashVerity, VerityOptions, VeritySource,
};
use log::{debug, info, warn};
use mounts::devices::gpt::GuidParseError;
use mounts::devices::probe::{self, FsType, PROBE_BYTES};
use mounts::devices::{DeviceError, DeviceSpec, native_root_types, wait};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;
use serde::Serialize;
use thiserror::Error;
use verity::dm::DmError;
use verity::superblock::{Superblock, SuperblockError};
use verity::table::{CorruptionMode, TableOptions, VerityTable};
use verity::tree::digest_block;

use crate::initramfs::config::{CONFIG_PATH, ConfigError, InitramfsConfig};
use crate::modules::load::{LoadError, ModuleFailure, NixModuleSys, load_modules};
use crate::modules::{MODULES_ROOT, ModName};
use crate::stamps::Stamps;
use crate::{abi, sys};

/// The dm device stage 1 creates (`/dev/mapper/root`), as
/// systemd-veritysetup-generator names it.
pub const DM_NAME: &str = "root";
/// Where the verified root is mounted before switch_root.
pub const SYSROOT: &str = "/sysroot";
/// `init=` when the command line names none.
pub const DEFAULT_INIT: &str = "/sbin/init";
/// The boot record stage 2 finds on the new root's `/run`.
pub const HANDOFF_DIR: &str = "/run/liftoff";
/// The boot record's file name in [`HANDOFF_DIR`].
pub const HANDOFF_FILE: &str = "stage1.json";
/// Most module loads run at once; more threads only contend for the
/// module mutex in the kernel.
const MAX_MODULE_WORKERS: usize = 4;

/// Why stage 1 could not hand over to the verified root.
#[derive(Debug, Error)]
pub enum Stage1Error {
    /// A volume from the root's mounts.toml failed; its mounts were undone.
    #[error("cannot mount the volumes")]
    Volumes(#[source] crate::volumes::VolumeMountError),
    /// The initramfs config exists but could not be read.
    #[error("cannot read {}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The initramfs config did not parse.
    #[error("invalid initramfs config")]
    Config(#[source] ConfigError),
    /// The kernel release could not be read to find the module tree.
    #[error("cannot read {}", abi::PROC_OSRELEASE)]
    OsRelease(#[source] io::Error),
    /// The modules could not be planned.
    #[error("cannot load the kernel modules from {}", root.display())]
    PlanModules {
        /// The module tree.
        root: PathBuf,
        #[source]
        source: LoadError,
    },
    /// A module failed to load; the first failure is the source.
    #[error("{failed} kernel module(s) failed to load, {skipped} skipped")]
    LoadModule {
        /// How many failed.
        failed: usize,
        /// How many were not tried because a dependency failed.
        skipped: usize,
        #[source]
        source: ModuleFailure,
    },
    /// This architecture has no Discoverable Partitions root types.
    #[error("no discoverable root partition types for this architecture")]
    NoRootTypes,
    /// A UUID derived from the root hash is not a GUID.
    #[error("root hash does not derive partition uuids")]
    PartUuid(#[source] GuidParseError),
    /// The data or hash partition did not appear, or appeared twice.
    #[error("cannot find the root's partitions")]
    Devices(#[source] DeviceError),
    /// The wait answered with other than the two devices asked for.
    #[error("expected the data and hash partitions, the device wait returned {found} device(s)")]
    DeviceCount {
        /// How many it returned.
        found: usize,
    },
    /// The hash partition could not be read.
    #[error("cannot read the verity superblock from {}", device.display())]
    ReadSuperblock {
        /// The hash partition.
        device: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The hash partition holds no valid veritysetup superblock.
    #[error("invalid verity superblock on {}", device.display())]
    Superblock {
        /// The hash partition.
        device: PathBuf,
        #[source]
        source: SuperblockError,
    },
    /// `systemd.verity_root_options=` asks for something stage 1 does not
    /// do; booting without it would silently drop a setting.
    #[error("systemd.verity_root_options= option {option} is not supported by stage 1")]
    UnsupportedOption {
        /// The option's name.
        option: &'static str,
    },
    /// The top hash block does not hash to `roothash=`.
    #[error("root hash mismatch on {}: roothash= says {expected}, the hash tree says {found}", device.display())]
    RootHashMismatch {
        /// The hash partition.
        device: PathBuf,
        /// `roothash=`.
        expected: String,
        /// The digest of the stored top hash block.
        found: String,
    },
    /// BLKROSET failed.
    #[error("cannot set {} read-only", device.display())]
    SetReadOnly {
        /// The partition.
        device: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The dm-verity device could not be created.
    #[error("cannot create the verity device")]
    Verity(#[source] DmError),
    /// The verity device could not be read to find its filesystem.
    #[error("cannot read {} to probe its filesystem", device.display())]
    ProbeRoot {
        /// The dm device.
        device: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Neither `rootfstype=` nor a probe names a filesystem stage 1 mounts.
    #[error("no root filesystem type: rootfstype= is not given and {} holds neither erofs nor ext4", device.display())]
    UnknownFsType {
        /// The dm device.
        device: PathBuf,
    },
    /// `/sysroot` could not be created.
    #[error("cannot create {}", path.display())]
    MountPoint {
        /// The directory.
        path: PathBuf,
        #[source]
        source: Errno,
    },
    /// Every filesystem type failed to mount; the last error is the source.
    #[error("cannot mount {} ({tried}) read-only on {SYSROOT}", device.display())]
    MountRoot {
        /// The dm device.
        device: PathBuf,
        /// The types tried, comma-separated.
        tried: String,
        #[source]
        source: Errno,
    },
    /// switch_root failed.
    #[error("switch_root to {SYSROOT} failed")]
    SwitchRoot(#[source] switch_root::SwitchRootError),
    /// The `dm-mod.create=` verity root could not be set up.
    #[error("dm-mod.create= root")]
    DmCreate(#[source] dm_create::DmCreateError),
}

/// The boot record written to `/run/liftoff/stage1.json` for stage 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handoff<'a> {
    /// The stamps of stage 1, `start` first, `exec` last.
    pub stamps: &'a [crate::stamps::Stamp],
    /// When each kernel module was loaded, in load order.
    pub modules: Vec<ModuleTime>,
    /// The dm-verity device mounted as `/`.
    pub root_device: String,
    /// Its filesystem type.
    pub fstype: String,
    /// The program executed.
    pub init: String,
    /// The root's read-ahead for boot, restored by stage 2.
    pub read_ahead: Option<crate::read_ahead::ReadAhead>,
}

/// One kernel module's load in the boot record: CLOCK_BOOTTIME in
/// microseconds when reading it began and when the kernel had it
/// (decompression and `init_module` included). Modules load in parallel
/// waves, so the spans overlap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct ModuleTime {
    /// The module's name.
    pub name: String,
    /// When its load began.
    pub start_us: u64,
    /// When it was loaded.
    pub end_us: u64,
}

/// The boot record as stage 2 reads it back from `/run/liftoff/stage1.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct HandoffRecord {
    /// Stage 1's stamps, in order.
    pub stamps: Vec<StampRecord>,
    /// Its module loads (absent from a record of an older liftoff).
    #[serde(default)]
    pub modules: Vec<ModuleTime>,
    /// The dm-verity device mounted as `/`.
    pub root_device: String,
    /// Its filesystem type.
    pub fstype: String,
    /// The program stage 1 executed.
    pub init: String,
    /// The read-ahead stage 1 raised for boot (absent when it did not, or
    /// from an older liftoff).
    #[serde(default)]
    pub read_ahead: Option<crate::read_ahead::ReadAhead>,
}

/// One stamp of [`HandoffRecord`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct StampRecord {
    /// The phase that started.
    pub phase: String,
    /// CLOCK_BOOTTIME in microseconds.
    pub boottime_us: u64,
}

impl HandoffRecord {
    /// Reads the record stage 1 left, if any: it is a diagnostic, so a
    /// missing or unreadable one is `None`, never an error.
    pub fn read() -> Option<HandoffRecord> {
        let text = std::fs::read(Path::new(HANDOFF_DIR).join(HANDOFF_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Stage 1's stamps as one log line.
    pub fn summary(&self) -> String {
        crate::stamps::summarize(
            self.stamps
                .iter()
                .map(|s| (s.phase.as_str(), s.boottime_us)),
        )
    }
}

/// Runs stage 1 for a `roothash=` or `dm-mod.create=` verity root.
/// Returns only on error.
pub fn boot(
    plan: &BootPlan,
    source: &VeritySource,
    stamps: &mut Stamps,
) -> Result<Infallible, Stage1Error> {
    // 1. Modules: virtio, dm-verity, the filesystem. Fatal on failure: a
    // missing driver would only turn into a device timeout later, with a
    // less useful message.
    let modules = load_initramfs_modules(plan)?;
    stamps.mark("modules");

    // 2–3. The partitions and the verity device: `roothash=` finds them
    // and builds the table; `dm-mod.create=` (dm_create) names both.
    let dm_node = match source {
        VeritySource::RootHash(verity) => open_roothash(plan, verity, stamps)?,
        VeritySource::DmCreate { .. } => {
            dm_create::open(plan, stamps).map_err(Stage1Error::DmCreate)?
        }
    };

    // 3b. The read-ahead boot runs with (crate::read_ahead), before the
    // root is mounted: a file's window is fixed when it is opened.
    let read_ahead =
        plan.boot_read_ahead_kb
            .and_then(|kb| match crate::read_ahead::raise(&dm_node, kb) {
                Ok(raised) => {
                    info!(
                        "read-ahead of {} is {} KiB until boot completes (the kernel's: {} KiB)",
                        dm_node.display(),
                        raised.boot_kb,
                        raised.kernel_kb
                    );
                    Some(raised)
                }
                Err(e) => {
                    warn!("boot read-ahead not set: {}", crate::failure::chain(&e));
                    None
                }
            });

    // 4. Mount the verity device, never `data`, read-only.
    let fstype = mount_root(plan, &dm_node)?;
    info!(
        "mounted {} ({fstype}) read-only on {SYSROOT}",
        dm_node.display()
    );
    stamps.mark("root-mounted");

    // 4b. Volumes from the root's /etc/liftoff/mounts.toml (docs/volumes.md);
    // a failure is fatal, after undoing its mounts.
    crate::volumes::mount_volumes(
        &mut crate::volumes::NixVolumeSys,
        Path::new(SYSROOT),
        Path::new(mounts::volumes::OVERLAY_DIR),
        plan.device_timeout,
    )
    .map_err(Stage1Error::Volumes)?;

    // 5. switch_root and exec.
    let init = plan.init.clone().unwrap_or_else(|| DEFAULT_INIT.to_owned());
    let steps = switch_root::plan(Path::new(SYSROOT), &init, &plan.init_args);
    let never = switch_root::execute(&steps, stamps, |stamps| Handoff {
        stamps,
        modules: modules.clone(),
        root_device: dm_node.display().to_string(),
        fstype: fstype.clone(),
        init: init.clone(),
        read_ahead: read_ahead.clone(),
    })
    .map_err(Stage1Error::SwitchRoot)?;
    match never {}
}

/// Steps 2–3 for `roothash=`: the partitions, by type *and* UUID,
/// bounded by device_timeout, then `/dev/mapper/root`.
fn open_roothash(
    plan: &BootPlan,
    verity: &RootHashVerity,
    stamps: &mut Stamps,
) -> Result<PathBuf, Stage1Error> {
    let (root_type, verity_type) = native_root_types().ok_or(Stage1Error::NoRootTypes)?;
    let discoverable = DeviceSpec::discoverable_root(&verity.discoverable, root_type, verity_type)
        .map_err(Stage1Error::PartUuid)?;
    let specs = device_specs(verity, discoverable);
    let found =
        wait::wait_for_devices(&specs, plan.device_timeout).map_err(Stage1Error::Devices)?;
    let (data, hash) = match found.as_slice() {
        [data, hash] => (data.node.clone(), hash.node.clone()),
        // wait_for_devices answers every spec, in order, or fails.
        other => return Err(Stage1Error::DeviceCount { found: other.len() }),
    };
    info!(
        "root data {} and hash {} found",
        data.display(),
        hash.display()
    );
    stamps.mark("devices");

    // 3. Verity.
    let dm_node = open_verity(plan, verity, &data, &hash)?;
    stamps.mark("verity");
    Ok(dm_node)
}

/// The specs to wait for: the Discoverable Partitions ones (type and
/// UUID), unless `systemd.verity_root_data=` / `_hash=` named a device
/// other than the derived `PARTUUID=`.
#[must_use]
pub fn device_specs(verity: &RootHashVerity, discoverable: [DeviceSpec; 2]) -> [DeviceSpec; 2] {
    let derived = |uuid: &str| RootDevice::PartUuid {
        uuid: uuid.to_owned(),
        partnroff: None,
    };
    let [data, hash] = discoverable;
    [
        if verity.data == derived(&verity.discoverable.data) {
            data
        } else {
            DeviceSpec::Named(verity.data.clone())
        },
        if verity.hash == derived(&verity.discoverable.verity) {
            hash
        } else {
            DeviceSpec::Named(verity.hash.clone())
        },
    ]
}

/// The modules to load: the initramfs config's, then `liftoff.modules=`,
/// without duplicates (as the kernel names them).
#[must_use]
pub fn module_list(config: &InitramfsConfig, cmdline: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    config
        .modules
        .iter()
        .chain(cmdline)
        .filter(|m| seen.insert(ModName::new(m)))
        .cloned()
        .collect()
}

fn load_initramfs_modules(plan: &BootPlan) -> Result<Vec<ModuleTime>, Stage1Error> {
    let config = match std::fs::read_to_string(CONFIG_PATH) {
        Ok(text) => {
            InitramfsConfig::parse(Path::new(CONFIG_PATH), &text).map_err(Stage1Error::Config)?
        }
        // An initramfs without modules (all built in): only the command
        // line can ask for some.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            debug!("no {CONFIG_PATH}");
            InitramfsConfig::default()
        }
        Err(source) => {
            return Err(Stage1Error::ReadConfig {
                path: CONFIG_PATH.into(),
                source,
            });
        }
    };
    let requested = module_list(&config, &plan.modules);
    if requested.is_empty() {
        info!("no kernel modules to load");
        return Ok(Vec::new());
    }
    let release = match config.kernel {
        Some(release) => release,
        None => std::fs::read_to_string(abi::PROC_OSRELEASE)
            .map_err(Stage1Error::OsRelease)?
            .trim()
            .to_owned(),
    };
    let root = Path::new(MODULES_ROOT).join(release);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_MODULE_WORKERS);
    let (_plan, report) = load_modules(
        &NixModuleSys::default(),
        &root,
        &requested,
        &BTreeMap::new(),
        workers,
    )
    .map_err(|source| Stage1Error::PlanModules {
        root: root.clone(),
        source,
    })?;
    for t in &report.timings {
        debug!(
            "module {} (wave {}): {:?} in {}us",
            t.name, t.wave, t.outcome, t.micros
        );
    }
    // A soft dependency that does not fit this machine (crc32c_intel on a
    // CPU without SSE4.2, where crc32c_generic serves) is reported; only a
    // required module failing is fatal.
    for failure in &report.optional_failures {
        let cause = std::error::Error::source(failure)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        warn!("optional module not loaded (only a soft dependency): {failure}{cause}");
    }
    let (failed, skipped) = (report.failures.len(), report.skipped.len());
    if let Some(source) = report.failures.into_iter().next() {
        return Err(Stage1Error::LoadModule {
            failed,
            skipped,
            source,
        });
    }
    info!("loaded {} kernel module(s)", report.timings.len());
    Ok(report
        .timings
        .iter()
        .map(|t| ModuleTime {
            name: t.name.to_string(),
            start_us: t.started_us,
            end_us: t.started_us.saturating_add(t.micros),
        })
        .collect())
}

/// dm-verity's corruption flag for `liftoff.verity.on_corruption=`.
#[must_use]
pub fn corruption_mode(action: CorruptionAction) -> Option<CorruptionMode> {
    match action {
        CorruptionAction::Restart => Some(CorruptionMode::Restart),
        CorruptionAction::Panic => Some(CorruptionMode::Panic),
        CorruptionAction::Eio => None,
        CorruptionAction::Ignore => Some(CorruptionMode::Ignore),
    }
}

/// Table options from `systemd.verity_root_options=` (whose corruption
/// word wins) and `liftoff.verity.on_corruption=`.
///
/// # Errors
/// An option stage 1 would otherwise drop: the geometry comes from the
/// superblock only, and FEC and signatures are not wired up yet.
pub fn table_options(
    options: &VerityOptions,
    default_corruption: CorruptionAction,
) -> Result<TableOptions, Stage1Error> {
    let unsupported = [
        ("superblock", options.superblock == Some(false)),
        ("format", options.format.is_some()),
        ("data-block-size", options.data_block_size.is_some()),
        ("hash-block-size", options.hash_block_size.is_some()),
        ("data-blocks", options.data_blocks.is_some()),
        ("hash-offset", options.hash_offset.is_some()),
        ("salt", options.salt.is_some()),
        ("uuid", options.uuid.is_some()),
        ("hash", options.hash.is_some()),
        ("fec-device", options.fec_device.is_some()),
        ("fec-offset", options.fec_offset.is_some()),
        ("fec-roots", options.fec_roots.is_some()),
        ("root-hash-signature", options.root_hash_signature.is_some()),
    ];
    if let Some((option, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(Stage1Error::UnsupportedOption { option });
    }
    Ok(TableOptions {
        corruption: corruption_mode(options.on_corruption.unwrap_or(default_corruption)),
        ignore_zero_blocks: options.ignore_zero_blocks,
        check_at_most_once: options.check_at_most_once,
        ..TableOptions::default()
    })
}

/// The table for a veritysetup-formatted hash device: geometry, algorithm
/// and salt from its superblock, the tree one hash block after it, the
/// root digest from the command line.
#[must_use]
pub fn verity_table(
    superblock: &Superblock,
    data: &Path,
    hash: &Path,
    root_digest: Vec<u8>,
    options: TableOptions,
) -> VerityTable {
    VerityTable {
        hash_type: superblock.hash_type,
        data_device: data.display().to_string(),
        hash_device: hash.display().to_string(),
        data_block_size: superblock.data_block_size,
        hash_block_size: superblock.hash_block_size,
        data_blocks: superblock.data_blocks,
        // The superblock fills the first hash block (veritysetup's layout).
        hash_start_block: 1,
        algorithm: superblock.algorithm,
        root_digest,
        salt: superblock.salt.clone(),
        options,
    }
}

/// Decodes `roothash=` (validated lower-case hex by the parser).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether the top hash block (the one after the superblock) hashes to
/// the root digest; `head` holds the hash device's first two hash blocks.
/// `None` when there is no tree to check (a single data block, whose
/// digest is the root hash itself: the kernel checks it on first read).
#[must_use]
pub fn top_block_digest(superblock: &Superblock, head: &[u8]) -> Option<Vec<u8>> {
    if superblock.data_blocks <= 1 {
        return None;
    }
    let size = usize::try_from(superblock.hash_block_size).ok()?;
    let top = head.get(size..size.checked_mul(2)?)?;
    Some(digest_block(
        superblock.algorithm,
        superblock.hash_type,
        &superblock.salt,
        top,
    ))
}

fn open_verity(
    plan: &BootPlan,
    verity: &RootHashVerity,
    data: &Path,
    hash: &Path,
) -> Result<PathBuf, Stage1Error> {
    let options = table_options(&verity.options, plan.verity_on_corruption)?;

    // a. The superblock and the top hash block: at most 2 × 64 KiB. The
    // geometry is only trusted because the root digest vouches for the
    // top block below, and the kernel for everything under it.
    let read_error = |source| Stage1Error::ReadSuperblock {
        device: hash.to_owned(),
        source,
    };
    let mut head = Vec::new();
    File::open(hash)
        .map_err(read_error)?
        .take(2 * 64 * 1024)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    let superblock = Superblock::parse(&head).map_err(|source| Stage1Error::Superblock {
        device: hash.to_owned(),
        source,
    })?;
    let expected = verity.root_hash.as_hex();
    let root_digest = decode_hex(expected).ok_or_else(|| Stage1Error::RootHashMismatch {
        device: hash.to_owned(),
        expected: expected.to_owned(),
        found: "(roothash= is not hex)".to_owned(),
    })?;

    // b. Check the root hash against the top block before mapping
    // anything: a wrong roothash= then fails here with liftoff's message,
    // rather than on the first read, where restart_on_corruption would
    // reboot the machine without saying why.
    let top = top_block_digest(&superblock, &head);
    if let Some(found) = top.filter(|d| *d != root_digest) {
        return Err(Stage1Error::RootHashMismatch {
            device: hash.to_owned(),
            expected: expected.to_owned(),
            found: verity::verify::hex(&found),
        });
    }

    // c. Both partitions read-only in the kernel: nothing in this boot
    // writes them, and the block layer refuses if anything tries.
    for device in [data, hash] {
        File::open(device)
            .and_then(|f| sys::set_block_read_only(&f).map_err(io::Error::from))
            .map_err(|source| Stage1Error::SetReadOnly {
                device: device.to_owned(),
                source,
            })?;
    }

    // d. /dev/mapper/root, loaded read-only; removed again on failure.
    let table = verity_table(&superblock, data, hash, root_digest, options);
    verity::dm::open(DM_NAME, &table).map_err(Stage1Error::Verity)
}

/// The filesystem types to try: `rootfstype=` in order, else what the
/// first bytes of the device say, if stage 1 mounts it.
#[must_use]
pub fn fstypes(root_fstype: &[String], head: &[u8]) -> Vec<String> {
    if !root_fstype.is_empty() {
        return root_fstype.to_vec();
    }
    match probe::probe(head).map(|p| p.fstype) {
        Some(t @ (FsType::Erofs | FsType::Ext4)) => vec![t.as_str().to_owned()],
        _ => Vec::new(),
    }
}

fn mount_root(plan: &BootPlan, device: &Path) -> Result<String, Stage1Error> {
    // a. The types to try; probing reads through dm-verity, so the bytes
    // are verified ones.
    let types = if plan.root_fstype.is_empty() {
        let mut head = Vec::new();
        File::open(device)
            .and_then(|f| f.take(PROBE_BYTES as u64).read_to_end(&mut head))
            .map_err(|source| Stage1Error::ProbeRoot {
                device: device.to_owned(),
                source,
            })?;
        fstypes(&[], &head)
    } else {
        plan.root_fstype.clone()
    };
    if types.is_empty() {
        return Err(Stage1Error::UnknownFsType {
            device: device.to_owned(),
        });
    }

    // b. The mount point; an initramfs need not ship it.
    if !Path::new(SYSROOT).is_dir() {
        nix::unistd::mkdir(SYSROOT, Mode::from_bits_truncate(0o755)).map_err(|source| {
            Stage1Error::MountPoint {
                path: SYSROOT.into(),
                source,
            }
        })?;
    }

    // c. Read-only whatever `rw` says: dm-verity devices are read-only, and
    // nodev/nosuid stay off because this is the whole system.
    let mut last = Errno::EINVAL;
    for fstype in &types {
        match mount(
            Some(device),
            SYSROOT,
            Some(fstype.as_str()),
            MsFlags::MS_RDONLY,
            plan.root_flags.as_deref(),
        ) {
            Ok(()) => return Ok(fstype.clone()),
            Err(e) => {
                warn!("mounting {} as {fstype} failed: {e}", device.display());
                last = e;
            }
        }
    }
    Err(Stage1Error::MountRoot {
        device: device.to_owned(),
        tried: types.join(","),
        source: last,
    })
}

#[cfg(test)]
mod tests;
