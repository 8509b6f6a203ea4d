//! Stage 1's volumes: carry out the plan `mounts::volumes` makes from
//! `/etc/liftoff/mounts.toml` on the verified root (docs/volumes.md).
//!
//! Runs after the root is mounted on `/sysroot` and before switch_root:
//!
//! 1. read `<root>/etc/liftoff/mounts.toml` (absent: no volumes);
//! 2. parse and plan it (pure, in `mounts`): parents before children,
//!    persistent volumes before the binds from them;
//! 3. carry out each step: create directories, mount; for a persistent
//!    volume wait (bounded) for its partition, format it with the root's
//!    own `mkfs.ext4` only when it holds no filesystem at all, then mount
//!    it; a bind is made shared after it is mounted;
//! 4. on the first failure, unmount what this step mounted, in reverse,
//!    and return the error: stage 1 fails closed and nothing is left
//!    half-mounted. A format cannot be undone; directories created on
//!    `/run` or a persistent volume stay.
//!
//! The syscalls go through [`VolumeSys`], so the order of steps and the
//! rollback are tested on the host with a fake; QEMU tests the real thing
//! (qemu-tests/tests/volumes.rs).

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use log::{info, warn};
use mounts::MountSpec;
use mounts::devices::probe::{self, FsType, PROBE_BYTES};
use mounts::devices::{DeviceError, DeviceSpec, wait};
use mounts::volumes::{self, CONFIG_PATH, DeviceLabel, Step, VolumesError};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use thiserror::Error;

/// Where the root's `mkfs.ext4` may be, relative to the root, in order.
pub const MKFS_CANDIDATES: [&str; 2] = ["sbin/mkfs.ext4", "usr/sbin/mkfs.ext4"];

/// Library directories handed to the root's dynamic loader, relative to
/// the root (Debian multiarch first, then the usual others).
#[cfg(target_arch = "aarch64")]
const LIBRARY_DIRS: &[&str] = &[
    "lib/aarch64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "lib64",
    "usr/lib64",
    "lib",
    "usr/lib",
];
#[cfg(not(target_arch = "aarch64"))]
const LIBRARY_DIRS: &[&str] = &[
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib64",
    "usr/lib64",
    "lib",
    "usr/lib",
];

/// Why the volumes could not be mounted. The mounts made before the
/// failure have been undone.
#[derive(Debug, Error)]
pub enum VolumeMountError {
    /// The volumes file exists but could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The volumes file is invalid (its error names file, line and key).
    #[error("invalid volumes file")]
    Config(#[source] VolumesError),
    /// A directory could not be created (a missing target on the
    /// read-only root, say: the image must ship its mount points).
    #[error("cannot create directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// mount(2) failed.
    #[error("cannot mount {source_name} ({fstype}) on {}", target.display())]
    Mount {
        /// What was mounted.
        source_name: String,
        /// Its type (`bind` for a bind mount).
        fstype: String,
        /// Where.
        target: PathBuf,
        #[source]
        source: Errno,
    },
    /// `mount --make-shared` failed.
    #[error("cannot make {} shared", target.display())]
    MakeShared {
        /// The mount point.
        target: PathBuf,
        #[source]
        source: Errno,
    },
    /// The partition did not appear in time, or appeared twice.
    #[error("cannot find the partition {spec}")]
    Device {
        /// What was waited for.
        spec: DeviceSpec,
        #[source]
        source: DeviceError,
    },
    /// The partition's first bytes could not be read.
    #[error("cannot read {} to probe its filesystem", device.display())]
    ReadDevice {
        /// The partition.
        device: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The partition holds a filesystem other than ext4: it is never
    /// formatted over, and not mounted as something else.
    #[error("{} holds {found}, not ext4: refusing to format or mount it", device.display())]
    NotExt4 {
        /// The partition.
        device: PathBuf,
        /// What the probe found.
        found: FsType,
    },
    /// The root has no `mkfs.ext4` to format a blank partition with.
    #[error("{} is blank and the root has no mkfs.ext4 (looked for {})", device.display(), MKFS_CANDIDATES.join(", "))]
    NoMkfs {
        /// The partition.
        device: PathBuf,
    },
    /// The root's `mkfs.ext4` could not be read.
    #[error("cannot read {}", path.display())]
    ReadMkfs {
        /// The program.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The root's `mkfs.ext4` is not an ELF file goblin can read.
    #[error("{} is not a readable elf file", path.display())]
    MkfsElf {
        /// The program.
        path: PathBuf,
        #[source]
        source: goblin::error::Error,
    },
    /// `mkfs.ext4` could not be started.
    #[error("cannot run {}", program.display())]
    SpawnMkfs {
        /// What was executed (the loader, or a static mkfs).
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `mkfs.ext4` ran and failed.
    #[error("mkfs.ext4 on {} failed ({status}): {stderr}", device.display())]
    Mkfs {
        /// The partition.
        device: PathBuf,
        /// How it exited.
        status: ExitStatus,
        /// Its stderr, trimmed.
        stderr: String,
    },
}

/// The command that formats a blank partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkfsCommand {
    /// The program executed: the root's loader, or a static `mkfs.ext4`.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// How to run the root's `mkfs` (at `mkfs`, already under `root`) on
/// `device` with `label`. A dynamic `mkfs` (ELF `interpreter`) is run
/// through the root's own loader with the root's library directories,
/// because the initramfs holds no C library and nothing may be executed
/// from anywhere but the verified root; a static one is run directly.
#[must_use]
pub fn mkfs_command(
    root: &Path,
    mkfs: &Path,
    interpreter: Option<&str>,
    device: &Path,
    label: &str,
) -> MkfsCommand {
    // -q: no progress output on the console; -L: the label, so `label =`
    // finds it from now on; -F is *not* given: mke2fs then still refuses
    // a device that is mounted.
    let mkfs_args = [
        OsString::from("-q"),
        OsString::from("-L"),
        OsString::from(label),
        device.as_os_str().to_owned(),
    ];
    match interpreter {
        Some(interp) => {
            let path = LIBRARY_DIRS
                .iter()
                .map(|d| volumes::under(root, Path::new(d)).display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            let mut args = vec![
                OsString::from("--library-path"),
                OsString::from(path),
                mkfs.as_os_str().to_owned(),
            ];
            args.extend(mkfs_args);
            MkfsCommand {
                program: volumes::under(root, Path::new(interp)),
                args,
            }
        }
        None => MkfsCommand {
            program: mkfs.to_owned(),
            args: mkfs_args.to_vec(),
        },
    }
}

/// The few system calls the volumes step makes.
pub trait VolumeSys {
    /// `mkdir -p` with `mode` for the directories it creates.
    fn create_dir_all(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// Whether `path` is a directory.
    fn is_dir(&mut self, path: &Path) -> bool;
    /// mount(2) of `spec` with `source` as the source.
    fn mount(&mut self, spec: &MountSpec, source: &str) -> Result<(), Errno>;
    /// `mount --make-shared <target>`.
    fn make_shared(&mut self, target: &Path) -> Result<(), Errno>;
    /// umount(2).
    fn unmount(&mut self, target: &Path) -> Result<(), Errno>;
    /// Waits (bounded) for the device `spec` names.
    fn find_device(&mut self, spec: &DeviceSpec, timeout: Duration)
    -> Result<PathBuf, DeviceError>;
    /// The first [`PROBE_BYTES`] of a device.
    fn read_head(&mut self, device: &Path) -> io::Result<Vec<u8>>;
    /// Formats `device` as ext4 with the root's mkfs.
    fn format(&mut self, root: &Path, device: &Path, label: &str) -> Result<(), VolumeMountError>;
}

/// [`VolumeSys`] on the running system.
#[derive(Debug, Default)]
pub struct NixVolumeSys;

impl VolumeSys for NixVolumeSys {
    fn create_dir_all(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(mode).create(path)
    }

    fn is_dir(&mut self, path: &Path) -> bool {
        path.is_dir()
    }

    fn mount(&mut self, spec: &MountSpec, source: &str) -> Result<(), Errno> {
        let fstype = (!spec.fstype.is_empty()).then_some(spec.fstype.as_str());
        mount(
            Some(source),
            &spec.target,
            fstype,
            spec.flags,
            spec.data.as_deref(),
        )
    }

    fn make_shared(&mut self, target: &Path) -> Result<(), Errno> {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
    }

    fn unmount(&mut self, target: &Path) -> Result<(), Errno> {
        umount2(target, MntFlags::empty())
    }

    fn find_device(
        &mut self,
        spec: &DeviceSpec,
        timeout: Duration,
    ) -> Result<PathBuf, DeviceError> {
        let found = wait::wait_for_devices(std::slice::from_ref(spec), timeout)?;
        // wait_for_devices answers every spec or fails.
        Ok(found.into_iter().next().map(|r| r.node).unwrap_or_default())
    }

    fn read_head(&mut self, device: &Path) -> io::Result<Vec<u8>> {
        let mut head = Vec::new();
        File::open(device)?
            .take(PROBE_BYTES as u64)
            .read_to_end(&mut head)?;
        Ok(head)
    }

    fn format(&mut self, root: &Path, device: &Path, label: &str) -> Result<(), VolumeMountError> {
        let mkfs = MKFS_CANDIDATES
            .iter()
            .map(|c| volumes::under(root, Path::new(c)))
            .find(|p| p.is_file())
            .ok_or_else(|| VolumeMountError::NoMkfs {
                device: device.to_owned(),
            })?;
        let bytes = fs::read(&mkfs).map_err(|source| VolumeMountError::ReadMkfs {
            path: mkfs.clone(),
            source,
        })?;
        let elf = goblin::elf::Elf::parse(&bytes).map_err(|source| VolumeMountError::MkfsElf {
            path: mkfs.clone(),
            source,
        })?;
        let command = mkfs_command(root, &mkfs, elf.interpreter, device, label);
        // Spawned and waited for at once: fork is followed by exec, and
        // stage 1 starts no other child that the wait could miss.
        let output = Command::new(&command.program)
            .args(&command.args)
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .map_err(|source| VolumeMountError::SpawnMkfs {
                program: command.program.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(VolumeMountError::Mkfs {
                device: device.to_owned(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }
}

/// Mounts the volumes of the root at `root`; see the module doc. Returns
/// the mount points, in the order they were mounted.
///
/// # Errors
/// The first failure, after unmounting what was mounted, in reverse.
pub fn mount_volumes<S: VolumeSys>(
    sys: &mut S,
    root: &Path,
    overlay_dir: &Path,
    timeout: Duration,
) -> Result<Vec<PathBuf>, VolumeMountError> {
    // 1. The file; absent means no volumes.
    let path = volumes::under(root, Path::new(CONFIG_PATH));
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            info!("no {}: no volumes", path.display());
            return Ok(Vec::new());
        }
        Err(source) => return Err(VolumeMountError::Read { path, source }),
    };

    // 2. Parse and plan.
    let parsed = volumes::parse(&path, &text).map_err(VolumeMountError::Config)?;
    let steps =
        volumes::plan(&path, &parsed, root, overlay_dir).map_err(VolumeMountError::Config)?;

    // 3. Carry out, 4. undo on failure.
    let mut mounted = Vec::new();
    for step in &steps {
        if let Err(e) = run_step(sys, root, timeout, step, &mut mounted) {
            unwind(sys, &mounted);
            return Err(e);
        }
    }
    Ok(mounted)
}

fn run_step<S: VolumeSys>(
    sys: &mut S,
    root: &Path,
    timeout: Duration,
    step: &Step,
    mounted: &mut Vec<PathBuf>,
) -> Result<(), VolumeMountError> {
    match step {
        Step::CreateDir { path, mode } => {
            sys.create_dir_all(path, *mode)
                .map_err(|source| VolumeMountError::CreateDir {
                    path: path.clone(),
                    source,
                })
        }
        Step::Mount(spec) => {
            mount_one(sys, spec, &spec.source, mounted)?;
            info!(
                "volume {}: mounted {} ({})",
                spec.target.display(),
                spec.source,
                fstype_name(spec)
            );
            Ok(())
        }
        Step::MakeShared(target) => {
            sys.make_shared(target)
                .map_err(|source| VolumeMountError::MakeShared {
                    target: target.clone(),
                    source,
                })
        }
        Step::Persistent { device, mount } => {
            persistent(sys, root, timeout, device, mount, mounted)
        }
    }
}

fn fstype_name(spec: &MountSpec) -> &str {
    if spec.flags.contains(MsFlags::MS_BIND) {
        "bind"
    } else {
        &spec.fstype
    }
}

fn mount_one<S: VolumeSys>(
    sys: &mut S,
    spec: &MountSpec,
    source: &str,
    mounted: &mut Vec<PathBuf>,
) -> Result<(), VolumeMountError> {
    // a. The mount point: on the read-only root it must exist already;
    // under a tmpfs or persistent volume it is created.
    if !sys.is_dir(&spec.target) {
        sys.create_dir_all(&spec.target, spec.dir_mode)
            .map_err(|e| VolumeMountError::CreateDir {
                path: spec.target.clone(),
                source: e,
            })?;
    }
    // b. mount(2); recorded for the rollback only once it succeeded.
    sys.mount(spec, source)
        .map_err(|e| VolumeMountError::Mount {
            source_name: source.to_owned(),
            fstype: fstype_name(spec).to_owned(),
            target: spec.target.clone(),
            source: e,
        })?;
    mounted.push(spec.target.clone());
    Ok(())
}

fn persistent<S: VolumeSys>(
    sys: &mut S,
    root: &Path,
    timeout: Duration,
    device: &DeviceLabel,
    spec: &MountSpec,
    mounted: &mut Vec<PathBuf>,
) -> Result<(), VolumeMountError> {
    // a. The partition, bounded by liftoff.device_timeout=.
    let wanted = device.spec();
    let node = sys
        .find_device(&wanted, timeout)
        .map_err(|source| VolumeMountError::Device {
            spec: wanted.clone(),
            source,
        })?;
    // b. Blank means no superblock the probe knows. Anything else is
    // never formatted over: a filesystem liftoff does not recognise as
    // ext4 is an error, not an invitation.
    let head = sys
        .read_head(&node)
        .map_err(|source| VolumeMountError::ReadDevice {
            device: node.clone(),
            source,
        })?;
    let target = spec.target.display();
    match probe::probe(&head).map(|p| p.fstype) {
        None => {
            info!(
                "volume {target}: {} ({wanted}) holds no filesystem: formatting it as ext4",
                node.display()
            );
            sys.format(root, &node, device.name())?;
            mount_one(sys, spec, &node.display().to_string(), mounted)?;
            info!(
                "volume {target}: mounted {} (ext4) freshly formatted",
                node.display()
            );
        }
        Some(FsType::Ext4) => {
            mount_one(sys, spec, &node.display().to_string(), mounted)?;
            info!("volume {target}: mounted {} (ext4) as-is", node.display());
        }
        Some(found) => {
            return Err(VolumeMountError::NotExt4 {
                device: node,
                found,
            });
        }
    }
    Ok(())
}

/// Unmounts `mounted` in reverse. Best effort: a failure is logged and
/// the rest are still tried, since the error being returned is the one
/// that matters.
fn unwind<S: VolumeSys>(sys: &mut S, mounted: &[PathBuf]) {
    let mut failed = 0;
    for target in mounted.iter().rev() {
        if let Err(e) = sys.unmount(target) {
            warn!(
                "volumes: cannot unmount {} while undoing: {e}",
                target.display()
            );
            failed += 1;
        }
    }
    if failed > 0 {
        warn!("volumes: {failed} mount(s) could not be undone");
    }
}

/// The extended attribute that holds a file's SELinux label.
pub const SELINUX_XATTR: &str = "security.selinux";

/// A volume's SELinux label could not be set.
#[derive(Debug, Error)]
pub enum LabelError {
    /// `mounts.toml` could not be read or parsed.
    #[error("cannot read the volumes' labels")]
    Config(#[source] VolumeMountError),
    /// setxattr(2) failed (the policy refused the context, or the
    /// filesystem cannot hold it).
    #[error("cannot label {path} {context:?}")]
    Set {
        /// The volume's top folder.
        path: PathBuf,
        /// The context from `mounts.toml`.
        context: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Labels each volume that declares a `context` in `<root>/etc/liftoff/
/// mounts.toml` (`mounts::volumes::labels`): the context becomes the
/// `security.selinux` label of the volume's top folder, so what is created
/// in it inherits the type. Runs in stage 2 right after the policy load
/// (the kernel refuses SELinux mount options before it). Only volumes
/// that are mounted (`is_mounted`) are labelled: on a root the kernel
/// mounted, stage 1 made none. Returns how many were labelled.
pub fn apply_labels(
    root: &Path,
    is_mounted: impl Fn(&Path) -> bool,
    set: impl Fn(&Path, &[u8]) -> io::Result<()>,
) -> Result<usize, LabelError> {
    let path = volumes::under(root, Path::new(CONFIG_PATH));
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(LabelError::Config(VolumeMountError::Read { path, source }));
        }
    };
    let parsed = volumes::parse(&path, &text)
        .map_err(|e| LabelError::Config(VolumeMountError::Config(e)))?;
    let mut labelled = 0;
    for (target, context) in volumes::labels(&parsed) {
        let target = volumes::under(root, &target);
        if !is_mounted(&target) {
            warn!(
                "{} is not mounted: its label {context:?} is not applied",
                target.display()
            );
            continue;
        }
        set(&target, context.as_bytes()).map_err(|source| LabelError::Set {
            path: target.clone(),
            context: context.clone(),
            source,
        })?;
        info!("labelled {} {context}", target.display());
        labelled += 1;
    }
    Ok(labelled)
}

/// Sets `path`'s SELinux label.
pub fn set_label(path: &Path, context: &[u8]) -> io::Result<()> {
    xattr::set(path, SELINUX_XATTR, context)
}

#[cfg(test)]
mod tests;
