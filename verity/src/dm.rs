//! Activation: turn a [`VerityTable`] into a read-only dm-verity block
//! device, and remove it again.
//!
//! [`open`] is the recipe `veritysetup open` follows, through the
//! `devicemapper` crate's ioctls on `/dev/mapper/control`:
//!
//! 1. check the name and the table (nothing is created for a bad one);
//! 2. `DM_DEV_CREATE` the device, named `<name>` with the dm UUID
//!    `LIFTOFF-VERITY-<name>` (a prefix names the owner, as cryptsetup's
//!    `CRYPT-VERITY-` does, so tools can tell our devices apart);
//! 3. `DM_TABLE_LOAD` one `verity` target over the whole device with
//!    `DM_READONLY` (`verity_ctr` refuses a writable table);
//! 4. `DM_DEV_SUSPEND` without the suspend flag: resume, which makes the
//!    loaded table live;
//! 5. link `/dev/mapper/<name>` to `../dm-<minor>`.
//!
//! If step 3, 4 or 5 fails the device is removed again: nothing half-made
//! is left behind (if even that fails, [`DmError::HalfMade`] says so).
//!
//! It returns `/dev/dm-<minor>`, the node devtmpfs creates as soon as the
//! device exists: our guests and liftoff's stage 1 run without udev, so
//! nothing waits for udev cookies (the crate only uses them when
//! `/run/udev/control` exists) and nothing relies on udev's
//! `/dev/mapper/<name>` symlink. Step 5 makes that symlink itself, for
//! people who expect cryptsetup's path; an existing symlink there is
//! replaced (udev may have made the same one), anything else is an error.
//! [`close`] removes the device, then the symlink.
//!
//! The ioctls go through the narrow [`DeviceMapper`] seam, so the order of
//! calls and the clean-up are tested on the host with a fake; the real
//! thing runs in QEMU (qemu-tests/tests/verity.rs).

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use devicemapper::{DM, DevId, DmFlags, DmName, DmOptions, DmUuid};
use thiserror::Error;

use crate::table::{TableError, VerityTable};

/// Where device nodes live.
pub const DEV: &str = "/dev";
/// The dm target type.
pub const TARGET_TYPE: &str = "verity";
/// The prefix of the dm UUID of every device liftoff creates.
pub const UUID_PREFIX: &str = "LIFTOFF-VERITY-";
/// The longest name: a dm UUID holds at most 128 bytes (`DM_UUID_LEN` with
/// its NUL is 129), and ours is the prefix plus the name.
pub const MAX_NAME_LEN: usize = 128 - UUID_PREFIX.len();

/// A block device's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceNumber {
    /// Major number (device-mapper's is dynamic).
    pub major: u32,
    /// Minor number, the `N` of `/dev/dm-N`.
    pub minor: u32,
}

/// One line of a dm table: `<start> <length> <type> <params>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// First sector the target covers.
    pub start: u64,
    /// Sectors it covers.
    pub length: u64,
    /// Target type, e.g. `verity`.
    pub target_type: String,
    /// The target's parameters.
    pub params: String,
}

impl Target {
    /// The single target of a dm-verity device.
    pub fn verity(table: &VerityTable) -> Self {
        Self {
            start: 0,
            length: table.length_sectors(),
            target_type: TARGET_TYPE.to_owned(),
            params: table.to_string(),
        }
    }
}

/// The device-mapper calls activation makes: the syscall seam.
pub trait DeviceMapper {
    /// Create an empty device (`DM_DEV_CREATE`).
    fn create(&mut self, name: &str, uuid: &str) -> io::Result<DeviceNumber>;
    /// Load a table into the inactive slot (`DM_TABLE_LOAD`), read-only
    /// (`DM_READONLY`) if asked.
    fn load(&mut self, name: &str, target: &Target, read_only: bool) -> io::Result<()>;
    /// Make the loaded table live (`DM_DEV_SUSPEND` without `DM_SUSPEND`).
    fn resume(&mut self, name: &str) -> io::Result<()>;
    /// Remove the device (`DM_DEV_REMOVE`).
    fn remove(&mut self, name: &str) -> io::Result<()>;
}

/// A step of [`open`] or [`close`], for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `DM_DEV_CREATE`.
    Create,
    /// `DM_TABLE_LOAD`.
    Load,
    /// Resume.
    Resume,
    /// `DM_DEV_REMOVE`.
    Remove,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "create",
            Self::Load => "load the table of",
            Self::Resume => "resume",
            Self::Remove => "remove",
        })
    }
}

/// What failed while opening or closing a dm-verity device.
#[derive(Debug, Error)]
pub enum DmError {
    /// The name cannot be a dm device name.
    #[error("{name:?} cannot name a dm device: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why not.
        reason: &'static str,
    },
    /// The table is not one the kernel accepts.
    #[error("invalid verity table for dm device {name}")]
    Table {
        /// The device name.
        name: String,
        #[source]
        source: TableError,
    },
    /// `/dev/mapper/control` cannot be opened (no dm-mod, or not root).
    #[error("cannot open the device-mapper control device (is dm-mod loaded, are we root?)")]
    Control {
        #[source]
        source: io::Error,
    },
    /// `DM_LIST_DEVICES` failed.
    #[error("cannot list the dm devices")]
    List {
        #[source]
        source: io::Error,
    },
    /// An ioctl failed. For a failed load the kernel logs its reason
    /// (`device-mapper: table: …: verity: …`) to the kernel log.
    #[error("cannot {step} dm device {name}")]
    Ioctl {
        /// The device name.
        name: String,
        /// The step.
        step: Step,
        #[source]
        source: io::Error,
    },
    /// The `/dev/mapper/<name>` symlink cannot be made or removed.
    #[error("cannot {action} the symlink {}", path.display())]
    Link {
        /// "create" or "remove".
        action: &'static str,
        /// The symlink.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A step failed, and removing the half-made device failed too: it is
    /// left behind.
    #[error("dm device {name} is left half-made: {cause}, and removing it failed")]
    HalfMade {
        /// The device name.
        name: String,
        /// The step's error.
        cause: Box<DmError>,
        #[source]
        source: io::Error,
    },
}

/// The kernel's device-mapper, through the `devicemapper` crate.
pub struct KernelDm {
    dm: DM,
}

impl fmt::Debug for KernelDm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `DM` holds only the control file and does not implement Debug.
        f.debug_struct("KernelDm").finish_non_exhaustive()
    }
}

impl KernelDm {
    /// Open `/dev/mapper/control`.
    pub fn new() -> Result<Self, DmError> {
        let dm = DM::new().map_err(|err| DmError::Control {
            source: crate_error(err),
        })?;
        Ok(Self { dm })
    }
}

impl DeviceMapper for KernelDm {
    fn create(&mut self, name: &str, uuid: &str) -> io::Result<DeviceNumber> {
        let name = dm_name(name)?;
        let uuid = DmUuid::new(uuid).map_err(crate_error)?;
        let info = self
            .dm
            .device_create(name, Some(uuid), DmOptions::default())
            .map_err(crate_error)?;
        let device = info.device();
        Ok(DeviceNumber {
            major: device.major,
            minor: device.minor,
        })
    }

    fn load(&mut self, name: &str, target: &Target, read_only: bool) -> io::Result<()> {
        let id = DevId::Name(dm_name(name)?);
        let flags = if read_only {
            DmFlags::DM_READONLY
        } else {
            DmFlags::empty()
        };
        let targets = [(
            target.start,
            target.length,
            target.target_type.clone(),
            target.params.clone(),
        )];
        self.dm
            .table_load(&id, &targets, DmOptions::default().set_flags(flags))
            .map(drop)
            .map_err(crate_error)
    }

    fn resume(&mut self, name: &str) -> io::Result<()> {
        let id = DevId::Name(dm_name(name)?);
        self.dm
            .device_suspend(&id, DmOptions::default())
            .map(drop)
            .map_err(crate_error)
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let id = DevId::Name(dm_name(name)?);
        self.dm
            .device_remove(&id, DmOptions::default())
            .map(drop)
            .map_err(crate_error)
    }
}

fn dm_name(name: &str) -> io::Result<&DmName> {
    DmName::new(name).map_err(crate_error)
}

/// The crate's error as an `io::Error`: the errno of a failed ioctl (what
/// the kernel said), the crate's own error otherwise.
fn crate_error(err: devicemapper::DmError) -> io::Error {
    use devicemapper::errors::Error as Core;
    match err {
        devicemapper::DmError::Core(Core::Ioctl(_, _, _, errno)) => {
            io::Error::from_raw_os_error(*errno as i32)
        }
        other => io::Error::other(other),
    }
}

/// Create, load read-only and resume the dm-verity device `name`; return
/// its `/dev/dm-N` node. See the module documentation for the steps.
pub fn open(name: &str, table: &VerityTable) -> Result<PathBuf, DmError> {
    open_with(&mut KernelDm::new()?, Path::new(DEV), name, table)
}

/// Remove the device `name` and its `/dev/mapper/<name>` symlink.
pub fn close(name: &str) -> Result<(), DmError> {
    close_with(&mut KernelDm::new()?, Path::new(DEV), name)
}

/// The names of every device-mapper device (any owner's), for the
/// shutdown's clean-up: it removes what it can, and a device still in use
/// (the root's) stays.
pub fn list() -> Result<Vec<String>, DmError> {
    let kernel = KernelDm::new()?;
    let devices = kernel.dm.list_devices().map_err(|err| DmError::List {
        source: crate_error(err),
    })?;
    Ok(devices
        .into_iter()
        .map(|(name, _, _)| name.to_string())
        .collect())
}

/// [`open`] through any [`DeviceMapper`], with device nodes under
/// `dev_root`.
pub fn open_with(
    dm: &mut impl DeviceMapper,
    dev_root: &Path,
    name: &str,
    table: &VerityTable,
) -> Result<PathBuf, DmError> {
    // 1. Refuse what the kernel would refuse before creating anything.
    check_name(name)?;
    table.validate().map_err(|source| DmError::Table {
        name: name.to_owned(),
        source,
    })?;
    let ioctl = |step| {
        move |source| DmError::Ioctl {
            name: name.to_owned(),
            step,
            source,
        }
    };

    // 2. An empty, suspended device.
    let uuid = format!("{UUID_PREFIX}{name}");
    let device = dm.create(name, &uuid).map_err(ioctl(Step::Create))?;

    // 3–5. From here on, a failure removes the device again.
    let node = dev_root.join(format!("dm-{}", device.minor));
    let made = (|| {
        // 3. Read-only: verity_ctr fails "Device must be readonly" otherwise.
        dm.load(name, &Target::verity(table), true)
            .map_err(ioctl(Step::Load))?;
        // 4. The table goes live; devtmpfs already has the node.
        dm.resume(name).map_err(ioctl(Step::Resume))?;
        // 5. cryptsetup's path, for people; liftoff uses the node.
        link_mapper(dev_root, name, device.minor)
    })();
    match made {
        Ok(()) => Ok(node),
        Err(cause) => match dm.remove(name) {
            Ok(()) => Err(cause),
            Err(source) => Err(DmError::HalfMade {
                name: name.to_owned(),
                cause: Box::new(cause),
                source,
            }),
        },
    }
}

/// [`close`] through any [`DeviceMapper`], with device nodes under
/// `dev_root`.
pub fn close_with(dm: &mut impl DeviceMapper, dev_root: &Path, name: &str) -> Result<(), DmError> {
    check_name(name)?;
    // 1. The device (the crate retries while it is briefly busy).
    dm.remove(name).map_err(|source| DmError::Ioctl {
        name: name.to_owned(),
        step: Step::Remove,
        source,
    })?;
    // 2. Our symlink, if it is there; it may never have been made (a device
    //    opened by someone else) or udev may have removed it.
    let path = mapper_path(dev_root, name);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::remove_file(&path).map_err(|source| DmError::Link {
                action: "remove",
                path,
                source,
            })
        }
        _ => Ok(()),
    }
}

/// `<dev_root>/mapper/<name>`.
pub fn mapper_path(dev_root: &Path, name: &str) -> PathBuf {
    dev_root.join("mapper").join(name)
}

fn link_mapper(dev_root: &Path, name: &str, minor: u32) -> Result<(), DmError> {
    let path = mapper_path(dev_root, name);
    let error = |action| {
        let path = path.clone();
        move |source| DmError::Link {
            action,
            path,
            source,
        }
    };
    // devtmpfs makes /dev/mapper for the control node; make it anyway for a
    // `dev_root` without one.
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(error("create"))?;
    }
    if fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        fs::remove_file(&path).map_err(error("remove"))?;
    }
    symlink(format!("../dm-{minor}"), &path).map_err(error("create"))
}

/// What `DM_DEV_CREATE` and our UUID accept, and what makes a sane path
/// component for `/dev/mapper/<name>`.
fn check_name(name: &str) -> Result<(), DmError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 113 bytes")
    } else if !name.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        Some("only printable ascii without spaces or '/' is allowed")
    } else if name == "." || name == ".." || name == "control" {
        Some("it is reserved")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(DmError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Algorithm, HashType};
    use crate::table::TableOptions;

    /// A call the code under test made.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        Create {
            name: String,
            uuid: String,
        },
        Load {
            name: String,
            target: Target,
            read_only: bool,
        },
        Resume {
            name: String,
        },
        Remove {
            name: String,
        },
    }

    /// Records calls; fails the step named in `fail`.
    #[derive(Debug, Default)]
    struct FakeDm {
        calls: Vec<Call>,
        fail: Vec<&'static str>,
    }

    impl FakeDm {
        fn failing(steps: &[&'static str]) -> Self {
            Self {
                calls: Vec::new(),
                fail: steps.to_vec(),
            }
        }

        fn result(&self, step: &str) -> io::Result<()> {
            if self.fail.contains(&step) {
                Err(io::Error::from(io::ErrorKind::InvalidInput))
            } else {
                Ok(())
            }
        }
    }

    impl DeviceMapper for FakeDm {
        fn create(&mut self, name: &str, uuid: &str) -> io::Result<DeviceNumber> {
            self.calls.push(Call::Create {
                name: name.into(),
                uuid: uuid.into(),
            });
            self.result("create").map(|()| DeviceNumber {
                major: 253,
                minor: 3,
            })
        }

        fn load(&mut self, name: &str, target: &Target, read_only: bool) -> io::Result<()> {
            self.calls.push(Call::Load {
                name: name.into(),
                target: target.clone(),
                read_only,
            });
            self.result("load")
        }

        fn resume(&mut self, name: &str) -> io::Result<()> {
            self.calls.push(Call::Resume { name: name.into() });
            self.result("resume")
        }

        fn remove(&mut self, name: &str) -> io::Result<()> {
            self.calls.push(Call::Remove { name: name.into() });
            self.result("remove")
        }
    }

    fn table() -> VerityTable {
        VerityTable {
            hash_type: HashType::Normal,
            data_device: "/dev/vda".into(),
            hash_device: "/dev/vdb".into(),
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 256,
            hash_start_block: 1,
            algorithm: Algorithm::Sha256,
            root_digest: vec![0x5a; 32],
            salt: vec![1, 2, 3],
            options: TableOptions::default(),
        }
    }

    fn create() -> Call {
        Call::Create {
            name: "root".into(),
            uuid: "LIFTOFF-VERITY-root".into(),
        }
    }

    fn load() -> Call {
        Call::Load {
            name: "root".into(),
            target: Target {
                start: 0,
                length: 256 * 8,
                target_type: "verity".into(),
                params: table().to_string(),
            },
            read_only: true,
        }
    }

    fn resume() -> Call {
        Call::Resume {
            name: "root".into(),
        }
    }

    fn remove() -> Call {
        Call::Remove {
            name: "root".into(),
        }
    }

    #[test]
    fn open_creates_loads_read_only_resumes_and_links() {
        let dev = tempfile::tempdir().unwrap();
        let mut dm = FakeDm::default();
        let node = open_with(&mut dm, dev.path(), "root", &table()).unwrap();
        assert_eq!(node, dev.path().join("dm-3"));
        assert_eq!(dm.calls, vec![create(), load(), resume()]);
        let link = dev.path().join("mapper/root");
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("../dm-3"));

        // Opening again after a crash left the link: it is replaced.
        let mut dm = FakeDm::default();
        open_with(&mut dm, dev.path(), "root", &table()).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("../dm-3"));

        close_with(&mut dm, dev.path(), "root").unwrap();
        assert_eq!(dm.calls.last(), Some(&remove()));
        assert!(fs::symlink_metadata(&link).is_err(), "symlink left behind");
    }

    #[test]
    fn a_failed_step_removes_the_half_made_device() {
        // (name, failing steps, calls, the step in the error, half-made)
        type Case = (&'static str, &'static [&'static str], Vec<Call>, Step, bool);
        let cases: &[Case] = &[
            ("create", &["create"], vec![create()], Step::Create, false),
            (
                "load",
                &["load"],
                vec![create(), load(), remove()],
                Step::Load,
                false,
            ),
            (
                "resume",
                &["resume"],
                vec![create(), load(), resume(), remove()],
                Step::Resume,
                false,
            ),
            (
                "load, then remove",
                &["load", "remove"],
                vec![create(), load(), remove()],
                Step::Load,
                true,
            ),
        ];
        for (name, fail, calls, step, half_made) in cases {
            let dev = tempfile::tempdir().unwrap();
            let mut dm = FakeDm::failing(fail);
            let err = open_with(&mut dm, dev.path(), "root", &table()).unwrap_err();
            assert_eq!(&dm.calls, calls, "{name}");
            let cause = match (&err, half_made) {
                (DmError::HalfMade { cause, .. }, true) => cause.as_ref(),
                (other, false) => other,
                (other, _) => panic!("{name}: {other:?}"),
            };
            assert!(
                matches!(cause, DmError::Ioctl { step: s, name, .. } if s == step && name == "root"),
                "{name}: {err:?}"
            );
            assert!(!dev.path().join("mapper/root").exists(), "{name}");
        }
    }

    #[test]
    fn a_failed_link_removes_the_device() {
        let dev = tempfile::tempdir().unwrap();
        // A folder where the symlink goes: not ours to replace.
        fs::create_dir_all(dev.path().join("mapper/root")).unwrap();
        let mut dm = FakeDm::default();
        let err = open_with(&mut dm, dev.path(), "root", &table()).unwrap_err();
        assert!(
            matches!(
                err,
                DmError::Link {
                    action: "create",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(dm.calls, vec![create(), load(), resume(), remove()]);
    }

    #[test]
    fn bad_names_and_tables_create_nothing() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for name in ["", "a/b", "has space", "..", "control", "é", long.as_str()] {
            let mut dm = FakeDm::default();
            let err = open_with(&mut dm, Path::new("/nonexistent"), name, &table()).unwrap_err();
            assert!(
                matches!(err, DmError::InvalidName { .. }),
                "{name:?}: {err:?}"
            );
            assert!(dm.calls.is_empty(), "{name:?}");
        }
        let mut dm = FakeDm::default();
        let mut bad = table();
        bad.root_digest.pop();
        let err = open_with(&mut dm, Path::new("/nonexistent"), "root", &bad).unwrap_err();
        assert!(matches!(err, DmError::Table { .. }), "{err:?}");
        assert!(dm.calls.is_empty());
        let longest = "x".repeat(MAX_NAME_LEN);
        assert_eq!(check_name(&longest).ok(), Some(()));
    }

    #[test]
    fn close_without_a_link_is_fine_and_a_failed_remove_keeps_it() {
        let dev = tempfile::tempdir().unwrap();
        let mut dm = FakeDm::default();
        close_with(&mut dm, dev.path(), "root").unwrap();
        assert_eq!(dm.calls, vec![remove()]);

        fs::create_dir_all(dev.path().join("mapper")).unwrap();
        symlink("../dm-3", dev.path().join("mapper/root")).unwrap();
        let mut dm = FakeDm::failing(&["remove"]);
        let err = close_with(&mut dm, dev.path(), "root").unwrap_err();
        assert!(
            matches!(
                err,
                DmError::Ioctl {
                    step: Step::Remove,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(fs::symlink_metadata(dev.path().join("mapper/root")).is_ok());
        assert_eq!(err.to_string(), "cannot remove dm device root");
    }

    #[test]
    fn kernel_errno_survives_the_crate_error() {
        use devicemapper::errors::Error as Core;
        let err = devicemapper::DmError::Core(Core::Ioctl(
            3,
            None,
            None,
            Box::new(nix::errno::Errno::EBUSY),
        ));
        assert_eq!(crate_error(err).raw_os_error(), Some(16));
    }
}
