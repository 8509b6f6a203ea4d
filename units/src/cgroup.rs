//! Units' cgroups on the unified hierarchy (cgroup v2).
//!
//! Every unit runs in `<root>/liftoff/<unit>`: its processes can be listed,
//! signalled and killed as one, even after they double-fork, and the
//! `memory` and `pids` controllers cap them ([`crate::unit::Cgroup`]).
//!
//! `pids` is always on: it costs only at fork. `memory` is enabled the
//! first time a unit with `memory_max` is started, not at boot: once it is
//! on, every page a unit's processes touch is charged to a cgroup, and
//! that is not free (under QEMU/TCG it made containerd's start about
//! 0.2 s slower, docs/benchmarks.md). A controller is enabled for all the
//! children of a cgroup at once, so from then on every unit is accounted,
//! as systemd notes of its own `MemoryAccounting=` on a slice.
//!
//! The root is a parameter ([`Cgroups::new`]); tests build a fake tree of
//! plain files in a tempdir, as youki's `libcgroups/src/test.rs` and
//! firecracker's jailer `MockCgroupFs` do. Interface files are opened
//! without `O_CREAT`, so a missing file means what it means in cgroupfs:
//! the controller is not enabled (or the kernel is too old).
//!
//! What it leaves out: cgroup v1, the cpu and io controllers, freezing, and
//! waiting: [`Cgroups::remove`] reports a still-populated cgroup as
//! [`CgroupError::Busy`] and the caller retries when `cgroup.events` says
//! it emptied.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use crate::spawn::sys;
use crate::unit::Cgroup;

/// Where the unified hierarchy is mounted.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";
/// The sub-tree liftoff's units live in, under the root.
pub const LIFTOFF_DIR: &str = "liftoff";
/// The controllers [`Cgroups::prepare`] enables at boot; `memory` is
/// enabled on demand by [`Cgroups::create`].
const AT_BOOT: [&str; 1] = ["pids"];
/// The controller `memory_max` needs.
const MEMORY: &str = "memory";

/// Controllers the kernel offers in a cgroup (cgroup-v2.rst, "Core Interface Files").
const CONTROLLERS_FILE: &str = "cgroup.controllers";
/// Controllers enabled for a cgroup's children.
const SUBTREE_CONTROL: &str = "cgroup.subtree_control";
/// The processes in a cgroup; writing a pid (0: the writer) moves it in.
const PROCS: &str = "cgroup.procs";
/// The threads in a cgroup; chowned on delegation like `cgroup.procs`.
const THREADS: &str = "cgroup.threads";
/// `populated 0|1`, `frozen 0|1`.
const EVENTS: &str = "cgroup.events";
/// Writing "1" SIGKILLs the whole sub-tree at once (Linux 5.14,
/// commit 661ee6280931 "cgroup: introduce cgroup.kill").
const KILL: &str = "cgroup.kill";
/// The memory controller's hard limit.
const MEMORY_MAX: &str = "memory.max";
/// The pids controller's limit.
const PIDS_MAX: &str = "pids.max";

/// Files a delegated unit's user must own to manage its own sub-tree
/// (cgroup-v2.rst, "Delegation Containment"; systemd `Delegate=yes`).
const DELEGATED_FILES: [&str; 3] = [PROCS, SUBTREE_CONTROL, THREADS];

/// What went wrong in a cgroup operation; every variant names its path.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The unit name cannot name a cgroup directory.
    #[error("unit name {name:?} cannot name a cgroup")]
    BadName {
        /// The rejected name.
        name: String,
    },
    /// mkdir failed.
    #[error("cannot create cgroup {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An interface file could not be read, or a directory listed.
    #[error("cannot read {path}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An interface file could not be written.
    #[error("cannot write {value:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A limit is set but its controller's file does not exist: the
    /// controller is not available or not enabled for liftoff's sub-tree.
    #[error("{path} does not exist: the {controller} controller is not enabled")]
    ControllerMissing {
        /// The limit's file.
        path: PathBuf,
        /// The controller it belongs to.
        controller: &'static str,
    },
    /// A unit asks for a limit of a controller the kernel does not offer.
    #[error("the kernel offers no {controller} controller ({path} does not list it)")]
    NotOffered {
        /// The root's `cgroup.controllers`.
        path: PathBuf,
        /// The controller.
        controller: &'static str,
    },
    /// An interface file holds something unexpected.
    #[error("cannot parse {path}: {line:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The offending line (or the whole file).
        line: String,
    },
    /// Delegation: chown failed.
    #[error("cannot chown {path} to {uid}:{gid}")]
    Chown {
        /// The file or directory.
        path: PathBuf,
        /// The new owner.
        uid: u32,
        /// The new group.
        gid: u32,
        /// The cause.
        #[source]
        source: Errno,
    },
    /// kill(2) on a process of the cgroup failed (other than ESRCH).
    #[error("cannot send signal {signal} to pid {pid} of {path}")]
    Signal {
        /// The cgroup.
        path: PathBuf,
        /// The process.
        pid: i32,
        /// The signal.
        signal: i32,
        /// The cause.
        #[source]
        source: Errno,
    },
    /// rmdir failed with EBUSY: processes are still in the cgroup (or in
    /// one below it). Retry once `cgroup.events` says `populated 0`.
    #[error("cgroup {path} still has processes")]
    Busy {
        /// The directory that could not be removed.
        path: PathBuf,
    },
    /// rmdir failed for another reason.
    #[error("cannot remove cgroup {path}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl CgroupError {
    /// Whether the error means the cgroup (or the file read) no longer
    /// exists, as after the unit's cgroup was removed.
    pub fn is_gone(&self) -> bool {
        match self {
            CgroupError::Read { source, .. } | CgroupError::Write { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
            }
            _ => false,
        }
    }
}

/// The cgroup tree liftoff manages, rooted at a cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroups {
    root: PathBuf,
}

impl Default for Cgroups {
    /// The tree under [`DEFAULT_ROOT`].
    fn default() -> Self {
        Cgroups::new(DEFAULT_ROOT)
    }
}

impl Cgroups {
    /// A tree rooted at `root` (a cgroup2 mount, or a fake in tests).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Cgroups { root: root.into() }
    }

    /// The mount point this tree is rooted at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates `<root>/liftoff` and enables the controllers units get from
    /// boot on (`pids`) if the kernel offers them, for liftoff/ and for the
    /// units below it. A controller the kernel lacks is logged as a
    /// warning, not an error: units without limits still run; a unit with
    /// a limit fails in [`Cgroups::create`]. `memory` waits for a unit
    /// that needs it (see the module's comment).
    ///
    /// Returns the controllers that were enabled.
    pub fn prepare(&self) -> Result<Vec<&'static str>, CgroupError> {
        make_dir(&self.root.join(LIFTOFF_DIR))?;
        let offered = self.offered()?;
        let mut enabled = Vec::new();
        for controller in AT_BOOT {
            if !offered.iter().any(|c| c == controller) {
                log::warn!(
                    "cgroup controller {controller} is not available in {}: unit limits using it will fail",
                    self.root.join(CONTROLLERS_FILE).display()
                );
                continue;
            }
            self.enable(controller)?;
            enabled.push(controller);
        }
        Ok(enabled)
    }

    /// The controllers the kernel offers at the root.
    fn offered(&self) -> Result<Vec<String>, CgroupError> {
        let path = self.root.join(CONTROLLERS_FILE);
        let text = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(text.split_whitespace().map(str::to_owned).collect())
    }

    /// Enables `controller` in the root's and liftoff/'s subtree_control:
    /// the root's makes it available in liftoff/, liftoff's in each unit's
    /// cgroup. One controller per write: a failure names it.
    fn enable(&self, controller: &str) -> Result<(), CgroupError> {
        let value = format!("+{controller}");
        write_existing(&self.root.join(SUBTREE_CONTROL), &value)?;
        write_existing(&self.root.join(LIFTOFF_DIR).join(SUBTREE_CONTROL), &value)
    }

    /// Enables `controller` for the units unless liftoff/'s subtree_control
    /// lists it already; a controller the kernel does not offer is
    /// [`CgroupError::NotOffered`].
    fn enable_on_demand(&self, controller: &'static str) -> Result<(), CgroupError> {
        let path = self.root.join(LIFTOFF_DIR).join(SUBTREE_CONTROL);
        let enabled = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        if enabled.split_whitespace().any(|c| c == controller) {
            return Ok(());
        }
        if !self.offered()?.iter().any(|c| c == controller) {
            return Err(CgroupError::NotOffered {
                path: self.root.join(CONTROLLERS_FILE),
                controller,
            });
        }
        log::info!("cgroup controller {controller} enabled for units (a unit sets a limit)");
        self.enable(controller)
    }

    /// The directory of unit `name`'s cgroup (whether or not it exists).
    pub fn unit_dir(&self, name: &str) -> PathBuf {
        self.root.join(LIFTOFF_DIR).join(name)
    }

    /// Creates unit `name`'s cgroup (an existing one is reused) and writes
    /// its limits, enabling the `memory` controller first if the unit is
    /// the first to set `memory_max`. A limit left `None` is reset to
    /// "max" if the controller is there, so a cgroup kept across restarts
    /// does not keep an old limit. With `cgroup.delegate` and an `owner`, the directory and the
    /// files a delegate writes are chowned to `owner` (uid, gid).
    ///
    /// Returns the cgroup's directory.
    pub fn create(
        &self,
        name: &str,
        cgroup: &Cgroup,
        owner: Option<(u32, u32)>,
    ) -> Result<PathBuf, CgroupError> {
        let dir = self.checked_unit_dir(name)?;
        // Before the directory: the kernel then gives it memory.max.
        if cgroup.memory_max.is_some() {
            self.enable_on_demand(MEMORY)?;
        }
        make_dir(&dir)?;

        set_limit(&dir, MEMORY_MAX, MEMORY, cgroup.memory_max)?;
        set_limit(&dir, PIDS_MAX, "pids", cgroup.pids_max)?;

        if let (true, Some((uid, gid))) = (cgroup.delegate, owner) {
            let chown = |path: PathBuf| {
                nix::unistd::chown(&path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                    .map_err(|source| CgroupError::Chown {
                        path,
                        uid,
                        gid,
                        source,
                    })
            };
            chown(dir.clone())?;
            for file in DELEGATED_FILES {
                chown(dir.join(file))?;
            }
        }
        Ok(dir)
    }

    /// Every process in unit `name`'s cgroup and the cgroups below it
    /// (a delegated unit makes its own), in no particular order.
    pub fn procs(&self, name: &str) -> Result<Vec<i32>, CgroupError> {
        let dir = self.checked_unit_dir(name)?;
        let mut pids = Vec::new();
        for cgroup in subtree(&dir)? {
            let path = cgroup.join(PROCS);
            let text = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
                path: path.clone(),
                source,
            })?;
            pids.extend(parse_procs(&text).map_err(|line| CgroupError::Parse {
                path: path.clone(),
                line,
            })?);
        }
        Ok(pids)
    }

    /// Sends `signal` to every process of unit `name`'s cgroup, sub-cgroups
    /// included. SIGKILL goes through `cgroup.kill` when the kernel has it
    /// (5.14+): one write, and no fork can escape it. Otherwise each pid
    /// listed is signalled; a process that exited meanwhile (ESRCH) is not
    /// an error.
    pub fn kill(&self, name: &str, signal: i32) -> Result<(), CgroupError> {
        let dir = self.checked_unit_dir(name)?;
        if signal == libc::SIGKILL {
            match write_existing(&dir.join(KILL), "1") {
                Ok(()) => return Ok(()),
                // No cgroup.kill file: an older kernel; fall back. The unit
                // directory itself missing fails again in procs() below,
                // reported as gone.
                Err(e) if e.is_gone() => {}
                Err(e) => return Err(e),
            }
        }
        for pid in self.procs(name)? {
            match sys::kill(pid, signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(source) => {
                    return Err(CgroupError::Signal {
                        path: dir,
                        pid,
                        signal,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes unit `name`'s cgroup: the sub-cgroups a delegate made,
    /// deepest first, then the unit's own. A cgroup that is already gone is
    /// not an error; one still holding processes is [`CgroupError::Busy`].
    pub fn remove(&self, name: &str) -> Result<(), CgroupError> {
        let dir = self.checked_unit_dir(name)?;
        let mut cgroups = match subtree(&dir) {
            Ok(cgroups) => cgroups,
            Err(e) if e.is_gone() => return Ok(()),
            Err(e) => return Err(e),
        };
        // subtree() lists parents before children: reversed, every child
        // goes before its parent.
        cgroups.reverse();
        for cgroup in cgroups {
            match fs::remove_dir(&cgroup) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(CgroupError::Busy { path: cgroup });
                }
                Err(source) => {
                    return Err(CgroupError::Remove {
                        path: cgroup,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether unit `name`'s cgroup holds no process, itself or below
    /// (`populated 0` in `cgroup.events`). A cgroup that does not exist is
    /// empty.
    pub fn is_empty(&self, name: &str) -> Result<bool, CgroupError> {
        let path = self.checked_unit_dir(name)?.join(EVENTS);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(source) => return Err(CgroupError::Read { path, source }),
        };
        match parse_populated(&text) {
            Some(populated) => Ok(!populated),
            None => Err(CgroupError::Parse { path, line: text }),
        }
    }

    /// [`Cgroups::unit_dir`], refusing names that would leave
    /// `<root>/liftoff` (the unit file parser already rejects them; this is
    /// the last line before rmdir and kill).
    fn checked_unit_dir(&self, name: &str) -> Result<PathBuf, CgroupError> {
        if name.is_empty() || name.starts_with('.') || name.contains('/') || name.contains('\0') {
            return Err(CgroupError::BadName {
                name: name.to_owned(),
            });
        }
        Ok(self.unit_dir(name))
    }
}

/// mkdir, where an existing directory is fine.
fn make_dir(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError::CreateDir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `value` to an interface file in one write(2), without creating
/// it: cgroupfs files exist or do not, and a missing one is reported as
/// NotFound (see [`CgroupError::is_gone`]).
fn write_existing(path: &Path, value: &str) -> Result<(), CgroupError> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_owned(),
            value: value.to_owned(),
            source,
        })
}

/// Writes a limit file: the value, or "max" for `None`. A missing file is
/// an error only when a limit is asked for.
fn set_limit(
    dir: &Path,
    file: &str,
    controller: &'static str,
    limit: Option<u64>,
) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let value = limit.map_or_else(|| "max".to_owned(), |limit| limit.to_string());
    match write_existing(&path, &value) {
        Ok(()) => Ok(()),
        Err(e) if e.is_gone() => match limit {
            Some(_) => Err(CgroupError::ControllerMissing { path, controller }),
            None => Ok(()),
        },
        Err(e) => Err(e),
    }
}

/// `dir` and every directory below it, each parent before its children.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut all = vec![dir.to_owned()];
    let mut next = 0;
    while let Some(current) = all.get(next).cloned() {
        next += 1;
        let read_error = |source| CgroupError::Read {
            path: current.clone(),
            source,
        };
        for entry in fs::read_dir(&current).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            if entry.file_type().map_err(read_error)?.is_dir() {
                all.push(entry.path());
            }
        }
    }
    Ok(all)
}

/// The pids of a `cgroup.procs` file, one per line; the bad line on error.
fn parse_procs(text: &str) -> Result<Vec<i32>, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| line.parse().map_err(|_| line.to_owned()))
        .collect()
}

/// The `populated` key of `cgroup.events`.
fn parse_populated(text: &str) -> Option<bool> {
    text.lines()
        .find_map(|line| line.strip_prefix("populated "))
        .and_then(|value| match value.trim() {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    use super::*;

    /// A fake cgroup2 root: plain files, with `controllers` offered.
    fn fake_root(controllers: &str) -> (tempfile::TempDir, Cgroups) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CONTROLLERS_FILE), controllers).unwrap();
        fs::write(dir.path().join(SUBTREE_CONTROL), "").unwrap();
        let cgroups = Cgroups::new(dir.path());
        (dir, cgroups)
    }

    /// What cgroupfs puts into a new unit directory, as plain files;
    /// `limits` are the controller files present.
    fn fake_unit(cgroups: &Cgroups, name: &str, limits: &[&str]) -> PathBuf {
        let dir = cgroups.unit_dir(name);
        fs::create_dir_all(&dir).unwrap();
        for file in [PROCS, SUBTREE_CONTROL, THREADS].iter().chain(limits) {
            fs::write(dir.join(file), "").unwrap();
        }
        dir
    }

    #[test]
    fn prepare_enables_offered_controllers_and_warns_about_the_rest() {
        struct Case {
            name: &'static str,
            offered: &'static str,
            enabled: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "all, memory waits for a unit that needs it",
                offered: "cpuset cpu io memory hugetlb pids rdma misc\n",
                enabled: &["pids"],
            },
            Case {
                name: "pids only",
                offered: "cpu pids\n",
                enabled: &["pids"],
            },
            Case {
                name: "none",
                offered: "\n",
                enabled: &[],
            },
        ];
        for case in cases {
            let (dir, cgroups) = fake_root(case.offered);
            // liftoff/ exists already after a previous boot stage: fine.
            fs::create_dir(dir.path().join(LIFTOFF_DIR)).unwrap();
            fs::write(dir.path().join(LIFTOFF_DIR).join(SUBTREE_CONTROL), "").unwrap();
            assert_eq!(cgroups.prepare().unwrap(), case.enabled, "{}", case.name);
            // The fake keeps only the last write.
            let last = case
                .enabled
                .last()
                .map(|c| format!("+{c}"))
                .unwrap_or_default();
            for file in [
                dir.path().join(SUBTREE_CONTROL),
                dir.path().join(LIFTOFF_DIR).join(SUBTREE_CONTROL),
            ] {
                assert_eq!(fs::read_to_string(file).unwrap(), last, "{}", case.name);
            }
        }
    }

    #[test]
    fn prepare_without_cgroup2_names_the_controllers_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = Cgroups::new(dir.path()).prepare().unwrap_err();
        assert!(
            matches!(&err, CgroupError::Read { path, .. } if path.ends_with(CONTROLLERS_FILE)),
            "{err:?}"
        );
    }

    /// liftoff/ as `prepare` leaves it, with `enabled` in its
    /// subtree_control as the kernel lists them ("memory pids").
    fn fake_liftoff(cgroups: &Cgroups, enabled: &str) {
        let liftoff = cgroups.root().join(LIFTOFF_DIR);
        fs::create_dir_all(&liftoff).unwrap();
        fs::write(liftoff.join(SUBTREE_CONTROL), enabled).unwrap();
    }

    #[test]
    fn memory_is_enabled_by_the_first_unit_that_sets_memory_max() {
        let (dir, cgroups) = fake_root("memory pids");
        fake_liftoff(&cgroups, "pids");
        let root_control = dir.path().join(SUBTREE_CONTROL);
        let liftoff_control = dir.path().join(LIFTOFF_DIR).join(SUBTREE_CONTROL);
        fs::write(&root_control, "pids").unwrap();

        // No memory_max: nothing is enabled.
        fake_unit(&cgroups, "plain", &[PIDS_MAX]);
        cgroups.create("plain", &Cgroup::default(), None).unwrap();
        assert_eq!(fs::read_to_string(&root_control).unwrap(), "pids");
        assert_eq!(fs::read_to_string(&liftoff_control).unwrap(), "pids");

        // memory_max: memory is enabled at the root and in liftoff/ before
        // the unit's directory is made (the fake keeps the last write).
        let limited = Cgroup {
            memory_max: Some(64 << 20),
            ..Cgroup::default()
        };
        fake_unit(&cgroups, "web", &[MEMORY_MAX, PIDS_MAX]);
        cgroups.create("web", &limited, None).unwrap();
        assert_eq!(fs::read_to_string(&root_control).unwrap(), "+memory");
        assert_eq!(fs::read_to_string(&liftoff_control).unwrap(), "+memory");

        // Already enabled (the kernel lists it): no write at all.
        fs::write(&root_control, "memory pids").unwrap();
        fs::write(&liftoff_control, "memory pids").unwrap();
        fake_unit(&cgroups, "db", &[MEMORY_MAX, PIDS_MAX]);
        cgroups.create("db", &limited, None).unwrap();
        assert_eq!(fs::read_to_string(&root_control).unwrap(), "memory pids");
        assert_eq!(fs::read_to_string(&liftoff_control).unwrap(), "memory pids");
    }

    #[test]
    fn memory_max_without_the_controller_in_the_kernel_names_it() {
        let (dir, cgroups) = fake_root("cpu pids");
        fake_liftoff(&cgroups, "pids");
        let limited = Cgroup {
            memory_max: Some(1 << 30),
            ..Cgroup::default()
        };
        let err = cgroups.create("web", &limited, None).unwrap_err();
        match &err {
            CgroupError::NotOffered { path, controller } => {
                assert_eq!(path, &dir.path().join(CONTROLLERS_FILE));
                assert_eq!(*controller, "memory");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("no memory controller"), "{err}");
        // Nothing was made for the unit.
        assert!(!cgroups.unit_dir("web").exists());
    }

    #[test]
    fn create_writes_limits_and_resets_unset_ones() {
        let (_dir, cgroups) = fake_root("memory pids");
        fake_liftoff(&cgroups, "memory pids");
        let unit = fake_unit(&cgroups, "web", &[MEMORY_MAX, PIDS_MAX]);
        let limits = Cgroup {
            memory_max: Some(64 << 20),
            pids_max: None,
            delegate: false,
        };
        assert_eq!(cgroups.create("web", &limits, None).unwrap(), unit);
        assert_eq!(
            fs::read_to_string(unit.join(MEMORY_MAX)).unwrap(),
            "67108864"
        );
        assert_eq!(fs::read_to_string(unit.join(PIDS_MAX)).unwrap(), "max");
    }

    #[test]
    fn create_makes_the_directory_and_needs_no_controller_without_limits() {
        let (dir, cgroups) = fake_root("");
        fs::create_dir(dir.path().join(LIFTOFF_DIR)).unwrap();
        let unit = cgroups.create("plain", &Cgroup::default(), None).unwrap();
        assert!(unit.is_dir());
        // Again: an existing cgroup is reused.
        cgroups.create("plain", &Cgroup::default(), None).unwrap();
    }

    #[test]
    fn create_with_a_limit_but_no_controller_names_the_file() {
        let (dir, cgroups) = fake_root("");
        fs::create_dir(dir.path().join(LIFTOFF_DIR)).unwrap();
        let limits = Cgroup {
            pids_max: Some(100),
            ..Cgroup::default()
        };
        let err = cgroups.create("db", &limits, None).unwrap_err();
        match &err {
            CgroupError::ControllerMissing { path, controller } => {
                assert!(path.ends_with("liftoff/db/pids.max"), "{path:?}");
                assert_eq!(*controller, "pids");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("pids.max"), "{err}");
    }

    #[test]
    fn create_delegates_to_the_owner_only_when_asked() {
        let (_dir, cgroups) = fake_root("");
        let unit = fake_unit(&cgroups, "containerd", &[]);
        // Chowning to ourselves works unprivileged and shows the calls
        // were made on every file.
        let me = (Uid::current().as_raw(), Gid::current().as_raw());
        let delegate = Cgroup {
            delegate: true,
            ..Cgroup::default()
        };
        cgroups.create("containerd", &delegate, Some(me)).unwrap();
        for path in [unit.clone(), unit.join(PROCS), unit.join(THREADS)] {
            let meta = fs::metadata(&path).unwrap();
            assert_eq!((meta.uid(), meta.gid()), me, "{path:?}");
        }

        // delegate set but files missing: the chown names the file.
        fs::remove_file(unit.join(THREADS)).unwrap();
        let err = cgroups
            .create("containerd", &delegate, Some(me))
            .unwrap_err();
        assert!(
            matches!(&err, CgroupError::Chown { path, .. } if path.ends_with(THREADS)),
            "{err:?}"
        );
        // Without delegate, nothing is chowned (the missing file is not touched).
        cgroups
            .create("containerd", &Cgroup::default(), Some(me))
            .unwrap();
    }

    #[test]
    fn procs_reads_sub_cgroups_too() {
        let (_dir, cgroups) = fake_root("");
        let unit = fake_unit(&cgroups, "containerd", &[]);
        fs::write(unit.join(PROCS), "10\n11\n").unwrap();
        fs::create_dir_all(unit.join("shim/task")).unwrap();
        fs::write(unit.join("shim").join(PROCS), "").unwrap();
        fs::write(unit.join("shim/task").join(PROCS), "20\n").unwrap();
        let mut pids = cgroups.procs("containerd").unwrap();
        pids.sort_unstable();
        assert_eq!(pids, [10, 11, 20]);

        fs::write(unit.join(PROCS), "10\nzebra\n").unwrap();
        let err = cgroups.procs("containerd").unwrap_err();
        assert!(
            matches!(&err, CgroupError::Parse { line, .. } if line == "zebra"),
            "{err:?}"
        );

        let err = cgroups.procs("missing").unwrap_err();
        assert!(err.is_gone(), "{err:?}");
    }

    #[test]
    fn kill_uses_cgroup_kill_for_sigkill_when_present() {
        let (_dir, cgroups) = fake_root("");
        let unit = fake_unit(&cgroups, "web", &[]);
        fs::write(unit.join(KILL), "").unwrap();
        // A listed process that must not be signalled: cgroup.kill does it.
        let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        fs::write(unit.join(PROCS), format!("{}\n", sleeper.id())).unwrap();
        cgroups.kill("web", libc::SIGKILL).unwrap();
        assert_eq!(fs::read_to_string(unit.join(KILL)).unwrap(), "1");
        assert!(sleeper.try_wait().unwrap().is_none());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[test]
    fn kill_signals_each_pid_without_cgroup_kill() {
        let (_dir, cgroups) = fake_root("");
        let unit = fake_unit(&cgroups, "sleepers", &[]);
        let mut a = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let mut b = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        fs::write(unit.join(PROCS), format!("{}\n", a.id())).unwrap();
        fs::create_dir(unit.join("sub")).unwrap();
        // Plus a pid that has already gone: ESRCH is fine.
        let mut gone = Command::new("/bin/true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        fs::write(
            unit.join("sub").join(PROCS),
            format!("{}\n{gone_pid}\n", b.id()),
        )
        .unwrap();

        cgroups.kill("sleepers", libc::SIGKILL).unwrap();
        for child in [&mut a, &mut b] {
            let status = child.wait().unwrap();
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(libc::SIGKILL)
            );
        }
    }

    #[test]
    fn remove_goes_depth_first_and_tolerates_gone() {
        let (_dir, cgroups) = fake_root("");
        let unit = cgroups.unit_dir("containerd");
        // A fake with directories only: plain files would make rmdir fail
        // with ENOTEMPTY, which cgroupfs never does.
        fs::create_dir_all(unit.join("a/b/c")).unwrap();
        fs::create_dir_all(unit.join("d")).unwrap();
        cgroups.remove("containerd").unwrap();
        assert!(!unit.exists());
        cgroups.remove("containerd").unwrap();
    }

    #[test]
    fn remove_reports_other_failures_with_the_path() {
        let (_dir, cgroups) = fake_root("");
        let unit = fake_unit(&cgroups, "web", &[]);
        let err = cgroups.remove("web").unwrap_err();
        assert!(
            matches!(&err, CgroupError::Remove { path, .. } if *path == unit),
            "{err:?}"
        );
    }

    #[test]
    fn is_empty_reads_populated() {
        let (_dir, cgroups) = fake_root("");
        let unit = fake_unit(&cgroups, "web", &[]);
        let cases = [
            ("populated 0\nfrozen 0\n", Ok(true)),
            ("populated 1\nfrozen 0\n", Ok(false)),
            ("frozen 0\n", Err(())),
            ("populated x\n", Err(())),
        ];
        for (text, expected) in cases {
            fs::write(unit.join(EVENTS), text).unwrap();
            assert_eq!(cgroups.is_empty("web").map_err(drop), expected, "{text:?}");
        }
        assert!(cgroups.is_empty("never-created").unwrap());
    }

    #[test]
    fn names_that_leave_the_tree_are_refused() {
        let (_dir, cgroups) = fake_root("");
        for name in ["", ".", "..", "../x", "a/b", ".hidden"] {
            let err = cgroups.remove(name).unwrap_err();
            assert!(matches!(err, CgroupError::BadName { .. }), "{name:?}");
        }
    }
}
