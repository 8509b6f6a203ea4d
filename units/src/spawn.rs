//! Starting a unit's main process: [`spawn`], and signalling it:
//! [`signal`], [`kill_unit`].
//!
//! [`spawn`] resolves everything in the parent (users and groups from
//! `<etc>/passwd` and `<etc>/group`, limits, capabilities, descriptors, the
//! SELinux context from PID 1's own), creates the unit's cgroup, then forks
//! and execs with `std::process::Command`. Between fork and exec the child
//! runs a fixed recipe (`spawn/child.rs`): join the cgroup, setsid, reset
//! signals, SELinux exec context, oom_score_adj, rlimits,
//! groups/uid/capabilities, chdir, no_new_privs, close-on-exec for stray
//! descriptors. A failing step is named in the error ([`ChildStep`]); a
//! failing exec names the program.
//!
//! SELinux fails closed: a unit that declares a context is never started
//! without it, so on a machine without SELinux (or before the policy is
//! loaded) it fails with [`SpawnError::SelinuxNotEnabled`] or
//! [`SpawnError::SelinuxNoPolicy`] instead of running unconfined.
//!
//! What it leaves out: waiting. PID 1 reaps every child itself
//! (`waitpid(-1)`), so nothing here waits for a process it started; only
//! std reaps a child whose setup or exec failed, before `spawn` returns.
//! Namespaces and seccomp are not set either.
//!
//! All `unsafe` is in `spawn/sys.rs`.

mod child;
pub(crate) mod sys;
pub mod users;

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::resource::Resource;

pub use self::child::ChildStep;
use self::child::{CapsPlan, ChildPlan, IdentityPlan};
use self::users::{Identity, UsersError};
use crate::cgroup::{CgroupError, Cgroups};
use crate::selinux;
use crate::unit::{KillMode, Limit, Output, SelinuxLabel, Unit};

/// The `PATH` every unit starts with (its environment may override it).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where `Output::Console` goes.
const DEV_CONSOLE: &str = "/dev/console";
/// The file of the unit's cgroup a process writes its pid to.
const CGROUP_PROCS: &str = "cgroup.procs";
/// Where PID 1's own process directory is; its SELinux context is
/// [`ATTR_CURRENT`] in it.
const PROC_SELF: &str = "/proc/self";
/// PID 1's current security context, relative to [`PROC_SELF`] (proc(5)).
const ATTR_CURRENT: &str = "attr/current";
/// Where selinuxfs is mounted (the policy load mounts it).
const SELINUXFS: &str = "/sys/fs/selinux";
/// A file every selinuxfs has, relative to [`SELINUXFS`]: it exists once
/// selinuxfs is mounted.
const SELINUX_ENFORCE: &str = "enforce";
/// `oom_score_adj` bounds (proc(5)).
const OOM_SCORE_ADJ_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;

/// What [`spawn`] needs besides the unit.
#[derive(Debug, Clone)]
pub struct SpawnContext<'a> {
    /// The cgroup tree units are placed in.
    pub cgroups: &'a Cgroups,
    /// The directory `passwd` and `group` are read from (`/etc`).
    pub etc: PathBuf,
    /// Passed as `NOTIFY_SOCKET`, for `notify` units.
    pub notify_socket: Option<PathBuf>,
    /// Passed as `WATCHDOG_USEC`, for units with a watchdog.
    pub watchdog_usec: Option<u64>,
}

/// A started main process.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid. PID 1 reaps it.
    pub pid: i32,
    /// For `Output::Kmsg` on stdout: the read end of its pipe
    /// (non-blocking, close-on-exec). PID 1 forwards its lines to the
    /// kernel log. When stderr is `Kmsg` too, both share this pipe.
    pub stdout: Option<OwnedFd>,
    /// For `Output::Kmsg` on stderr when stdout is not `Kmsg`.
    pub stderr: Option<OwnedFd>,
}

/// Why a unit's process could not be started or signalled.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `argv` is empty.
    #[error("unit {unit} has no command")]
    EmptyArgv {
        /// The unit.
        unit: String,
    },
    /// `passwd` or `group` could not be read.
    #[error("unit {unit}: cannot read {path}")]
    ReadUsers {
        /// The unit.
        unit: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The user or a group is not known.
    #[error("unit {unit}: cannot resolve its user or groups in {etc}")]
    Users {
        /// The unit.
        unit: String,
        /// The directory the files were read from.
        etc: PathBuf,
        /// Which name failed.
        #[source]
        source: UsersError,
    },
    /// A `limits` key that names no resource.
    #[error("unit {unit}: unknown resource limit {name:?}")]
    UnknownLimit {
        /// The unit.
        unit: String,
        /// The key.
        name: String,
    },
    /// A soft limit above its hard limit (setrlimit(2) would say EINVAL).
    #[error("unit {unit}: limit {name} has soft {soft} above hard {hard}")]
    LimitOrder {
        /// The unit.
        unit: String,
        /// The resource.
        name: String,
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
    /// A capability name that is not known.
    #[error("unit {unit}: unknown capability {name:?}")]
    UnknownCapability {
        /// The unit.
        unit: String,
        /// The name.
        name: String,
    },
    /// An ambient capability outside the unit's `capabilities`.
    #[error("unit {unit}: ambient capability {name} is not in its capabilities")]
    AmbientOutsideBounding {
        /// The unit.
        unit: String,
        /// The capability.
        name: String,
    },
    /// PID 1's own permitted set could not be read.
    #[error("unit {unit}: cannot read the permitted capabilities")]
    ReadCapabilities {
        /// The unit.
        unit: String,
        /// The cause.
        #[source]
        source: caps::errors::CapsError,
    },
    /// `oom_score_adj` outside -1000..=1000.
    #[error("unit {unit}: oom_score_adj {value} is outside -1000..=1000")]
    OomScoreAdj {
        /// The unit.
        unit: String,
        /// The value.
        value: i32,
    },
    /// An environment variable that cannot be passed to execve(2).
    #[error("unit {unit}: environment variable {name:?} has '=' in its name or a NUL byte")]
    Environment {
        /// The unit.
        unit: String,
        /// The variable.
        name: String,
    },
    /// A path with a NUL byte.
    #[error("unit {unit}: path {path:?} contains a NUL byte")]
    NulInPath {
        /// The unit.
        unit: String,
        /// The path.
        path: PathBuf,
    },
    /// The unit's cgroup could not be created, or signalled.
    #[error("unit {unit}: cgroup")]
    Cgroup {
        /// The unit.
        unit: String,
        /// What failed.
        #[source]
        source: CgroupError,
    },
    /// A file for the child (`cgroup.procs`, an output) could not be opened.
    #[error("unit {unit}: cannot open {path}")]
    Open {
        /// The unit.
        unit: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// pipe2(2) or fcntl(2) on a pipe failed.
    #[error("unit {unit}: cannot create a pipe")]
    Pipe {
        /// The unit.
        unit: String,
        /// The cause.
        #[source]
        source: Errno,
    },
    /// fork(2) failed, or exec(2) of the program did (ENOENT, EACCES,
    /// ENOEXEC...).
    #[error("unit {unit}: cannot execute {program}")]
    Exec {
        /// The unit.
        unit: String,
        /// `argv[0]`.
        program: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A step between fork and exec failed; the child has exited.
    #[error("unit {unit}: cannot {step}{} before exec", Quoted(.target.as_deref()))]
    Setup {
        /// The unit.
        unit: String,
        /// The step.
        step: ChildStep,
        /// What the step acted on, when the step alone does not say: the
        /// SELinux context for [`ChildStep::SelinuxExecContext`].
        target: Option<String>,
        /// Its errno.
        #[source]
        source: io::Error,
    },
    /// The unit declares an SELinux context, but selinuxfs is not mounted:
    /// SELinux is disabled or not built in. Fail closed: the unit never
    /// runs in a broader domain than it declares.
    #[error("unit {unit} declares {key}, but SELinux is not enabled ({} does not exist)", path.display())]
    SelinuxNotEnabled {
        /// The unit.
        unit: String,
        /// `selinux_context` or `selinux_type`.
        key: &'static str,
        /// selinuxfs's `enforce` file.
        path: PathBuf,
    },
    /// The unit declares an SELinux context, but PID 1's own context is
    /// not one of a loaded policy (`kernel` before the policy load, or
    /// another security module's label). Fail closed, as above: before
    /// the load the kernel would take any context as its own unconfined
    /// one.
    #[error("unit {unit} declares {key}, but no SELinux policy is loaded ({} reads {found:?})", path.display())]
    SelinuxNoPolicy {
        /// The unit.
        unit: String,
        /// `selinux_context` or `selinux_type`.
        key: &'static str,
        /// PID 1's `attr/current`.
        path: PathBuf,
        /// What it holds (lossy UTF-8, without its trailing NUL).
        found: String,
    },
    /// selinuxfs or PID 1's own context could not be read.
    #[error("unit {unit}: cannot read {path}")]
    ReadSelinux {
        /// The unit.
        unit: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A `selinux_context` or `selinux_type` that is not one (the unit
    /// file parser refuses these; a unit built in code may not have been
    /// checked).
    #[error("unit {unit}: {label:?} is not a valid {key}")]
    BadSelinuxLabel {
        /// The unit.
        unit: String,
        /// `selinux_context` or `selinux_type`.
        key: &'static str,
        /// The value.
        label: String,
    },
    /// kill(2) failed (other than ESRCH).
    #[error("cannot send signal {signal} to pid {pid}")]
    Signal {
        /// The process.
        pid: i32,
        /// The signal.
        signal: i32,
        /// The cause.
        #[source]
        source: Errno,
    },
}

/// ` "target"` after a step's name, or nothing.
struct Quoted<'a>(Option<&'a str>);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(target) => write!(f, " {target:?}"),
            None => Ok(()),
        }
    }
}

/// Where [`spawn`] reads the machine's own state: parameters, so tests
/// can stand a tempdir in for them.
#[derive(Debug, Clone)]
struct HostPaths {
    /// `/proc/self`, PID 1's own (the parent's) process directory.
    proc_self: PathBuf,
    /// `/sys/fs/selinux`.
    selinuxfs: PathBuf,
}

impl HostPaths {
    /// The real ones.
    fn host() -> HostPaths {
        HostPaths {
            proc_self: PathBuf::from(PROC_SELF),
            selinuxfs: PathBuf::from(SELINUXFS),
        }
    }
}

/// Starts `unit`'s main process in its cgroup. Does not wait for it.
pub fn spawn(unit: &Unit, ctx: &SpawnContext<'_>) -> Result<Spawned, SpawnError> {
    spawn_on(unit, ctx, &HostPaths::host())
}

/// [`spawn`], reading the machine's state under `host`.
fn spawn_on(unit: &Unit, ctx: &SpawnContext<'_>, host: &HostPaths) -> Result<Spawned, SpawnError> {
    let name = unit.name.as_str();
    let process = &unit.process;
    let Some((program, args)) = process.argv.split_first() else {
        return Err(SpawnError::EmptyArgv { unit: name.into() });
    };

    // Resolve everything before fork.
    let switches_identity = process.user.is_some()
        || process.group.is_some()
        || !process.supplementary_groups.is_empty();
    let identity = if switches_identity {
        Some(resolve_identity(unit, &ctx.etc)?)
    } else {
        None
    };
    let capabilities = caps_plan(unit)?;
    let selinux_exec_context = selinux_exec_context(unit, host)?;
    // For the error if the kernel refuses it (validated: UTF-8).
    let selinux_target = selinux_exec_context
        .as_ref()
        .map(|context| context.to_string_lossy().into_owned());
    let plan = ChildPlan {
        selinux_exec_context,
        oom_score_adj: oom_score_adj(unit)?,
        rlimits: rlimits(name, &process.limits)?,
        // Only a switch away from root loses the permitted set.
        keep_caps: capabilities.is_some() && identity.as_ref().is_some_and(|id| !id.uid.is_root()),
        identity: identity.as_ref().map(|id| IdentityPlan {
            uid: id.uid,
            gid: id.gid,
            groups: id.groups.clone(),
        }),
        capabilities,
        working_directory: c_path(name, process.working_directory.as_deref())?,
        no_new_privileges: process.no_new_privileges,
    };
    let environment = environment(unit, ctx, identity.as_ref())?;

    // The cgroup, and the descriptors the child uses.
    let owner = identity
        .as_ref()
        .map(|id| (id.uid.as_raw(), id.gid.as_raw()));
    let cgroup = ctx
        .cgroups
        .create(name, &process.cgroup, owner)
        .map_err(|source| SpawnError::Cgroup {
            unit: name.into(),
            source,
        })?;
    let procs_path = cgroup.join(CGROUP_PROCS);
    // std opens every file O_CLOEXEC.
    let cgroup_procs = OpenOptions::new()
        .write(true)
        .open(&procs_path)
        .map_err(|source| SpawnError::Open {
            unit: name.into(),
            path: procs_path,
            source,
        })?;
    let (report_read, report_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .map_err(|source| SpawnError::Pipe {
            unit: name.into(),
            source,
        })?;
    let stdio = ChildStdio::open(unit)?;

    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(environment)
        .stdin(Stdio::null())
        .stdout(stdio.stdout)
        .stderr(stdio.stderr);
    sys::run_plan_in_child(
        &mut command,
        plan,
        sys::Kernel {
            cgroup_procs: cgroup_procs.into(),
            report: report_write,
        },
    );

    match command.spawn() {
        // Dropping the Child neither waits nor kills; PID 1 reaps. Dropping
        // `command` closes the parent's copies of the pipes' write ends, so
        // the readers see EOF when the unit's processes exit.
        Ok(child) => Ok(Spawned {
            // Pids fit pid_t; std hands them out as u32.
            pid: child.id() as i32,
            stdout: stdio.stdout_read,
            stderr: stdio.stderr_read,
        }),
        // The child has been reaped by std. If a step failed, it wrote the
        // step's byte before std's error pipe carried the errno, so the
        // byte is there now; no byte means exec (or fork) itself failed.
        Err(source) => {
            let mut byte = [0u8; 1];
            match nix::unistd::read(&report_read, &mut byte) {
                Ok(1) => match ChildStep::from_byte(byte[0]) {
                    Some(step) => Err(SpawnError::Setup {
                        unit: name.into(),
                        step,
                        target: if step == ChildStep::SelinuxExecContext {
                            selinux_target
                        } else {
                            None
                        },
                        source,
                    }),
                    None => Err(exec_error(name, program, source)),
                },
                _ => Err(exec_error(name, program, source)),
            }
        }
    }
}

fn exec_error(unit: &str, program: &str, source: io::Error) -> SpawnError {
    SpawnError::Exec {
        unit: unit.into(),
        program: program.into(),
        source,
    }
}

/// Sends `signal` to `pid`. A process that is already gone (ESRCH) is not
/// an error. Pids of 0 or less are refused: they name process groups, or
/// every process.
pub fn signal(pid: i32, signal: i32) -> Result<(), SpawnError> {
    match sys::kill(pid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(SpawnError::Signal {
            pid,
            signal,
            source,
        }),
    }
}

/// Sends a stop signal the way the unit's [`KillMode`] says: to its main
/// process `pid` only, or to every process in its cgroup (then to `pid`
/// alone if the cgroup is already gone).
pub fn kill_unit(
    cgroups: &Cgroups,
    unit: &str,
    pid: i32,
    signal: i32,
    mode: KillMode,
) -> Result<(), SpawnError> {
    match mode {
        KillMode::Process => self::signal(pid, signal),
        KillMode::Group => match cgroups.kill(unit, signal) {
            Ok(()) => Ok(()),
            Err(e) if e.is_gone() => self::signal(pid, signal),
            Err(source) => Err(SpawnError::Cgroup {
                unit: unit.into(),
                source,
            }),
        },
    }
}

/// `<etc>/passwd` and `<etc>/group`, then the unit's identity. A missing
/// file reads as empty: numeric ids still work, names fail by name. PID 1
/// also uses it to hand a unit's notify socket to the unit's user.
pub fn resolve_identity(unit: &Unit, etc: &Path) -> Result<Identity, SpawnError> {
    let read = |file: &str| {
        let path = etc.join(file);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(SpawnError::ReadUsers {
                unit: unit.name.clone(),
                path,
                source,
            }),
        }
    };
    let process = &unit.process;
    users::resolve(
        &read("passwd")?,
        &read("group")?,
        process.user.as_deref(),
        process.group.as_deref(),
        &process.supplementary_groups,
    )
    .map_err(|source| SpawnError::Users {
        unit: unit.name.clone(),
        etc: etc.to_owned(),
        source,
    })
}

/// A `ulimit`-style resource name.
fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "as" => Resource::RLIMIT_AS,
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "locks" => Resource::RLIMIT_LOCKS,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rss" => Resource::RLIMIT_RSS,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

/// The unit's limits as (resource, soft, hard), `None` as RLIM_INFINITY.
fn rlimits(
    unit: &str,
    limits: &BTreeMap<String, Limit>,
) -> Result<Vec<(Resource, u64, u64)>, SpawnError> {
    let mut plan = declared_rlimits(unit, limits)?;
    // PID 1 raises its own descriptor limit to serve many units; a unit
    // that does not ask for more gets the usual soft limit back (select(2)
    // breaks above 1024), with PID 1's hard limit to raise it to.
    if !limits.contains_key("nofile")
        && let Ok((_, hard)) = nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE)
    {
        plan.push((Resource::RLIMIT_NOFILE, DEFAULT_NOFILE.min(hard), hard));
    }
    Ok(plan)
}

/// The soft descriptor limit a unit gets unless it sets `nofile`.
pub const DEFAULT_NOFILE: u64 = 1024;

fn declared_rlimits(
    unit: &str,
    limits: &BTreeMap<String, Limit>,
) -> Result<Vec<(Resource, u64, u64)>, SpawnError> {
    limits
        .iter()
        .map(|(name, limit)| {
            let resource = resource(name).ok_or_else(|| SpawnError::UnknownLimit {
                unit: unit.into(),
                name: name.clone(),
            })?;
            let soft = limit.soft.unwrap_or(libc::RLIM_INFINITY);
            let hard = limit.hard.unwrap_or(libc::RLIM_INFINITY);
            if soft > hard {
                return Err(SpawnError::LimitOrder {
                    unit: unit.into(),
                    name: name.clone(),
                    soft,
                    hard,
                });
            }
            Ok((resource, soft, hard))
        })
        .collect()
}

/// `CAP_NET_ADMIN`, also `net_admin` (caps' canonical form).
fn capability(unit: &str, name: &str) -> Result<Capability, SpawnError> {
    caps::to_canonical(name)
        .parse()
        .map_err(|_| SpawnError::UnknownCapability {
            unit: unit.into(),
            name: name.into(),
        })
}

/// The capability changes, or `None` when the unit sets neither
/// `capabilities` nor `ambient_capabilities` (everything is kept for
/// root; setuid to another user clears it all).
fn caps_plan(unit: &Unit) -> Result<Option<CapsPlan>, SpawnError> {
    let process = &unit.process;
    let name = unit.name.as_str();
    if process.capabilities.is_none() && process.ambient_capabilities.is_empty() {
        return Ok(None);
    }
    let ambient = process
        .ambient_capabilities
        .iter()
        .map(|cap| capability(name, cap))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = match &process.capabilities {
        Some(list) => {
            let listed = list
                .iter()
                .map(|cap| capability(name, cap))
                .collect::<Result<CapsHashSet, _>>()?;
            if let Some(outside) = ambient.iter().find(|cap| !listed.contains(cap)) {
                return Err(SpawnError::AmbientOutsideBounding {
                    unit: name.into(),
                    name: outside.to_string(),
                });
            }
            // Every capability this kernel knows (probed with
            // PR_CAPBSET_READ, no /proc needed) that is not listed.
            let mut drop_bounding: Vec<Capability> = caps::runtime::thread_all_supported()
                .difference(&listed)
                .copied()
                .collect();
            drop_bounding.sort_by_key(|cap| cap.index());
            CapsPlan {
                drop_bounding,
                permitted: listed.clone(),
                inheritable: listed,
                ambient,
            }
        }
        // Ambient capabilities alone: keep what PID 1 has permitted (the
        // child starts with the same), and make the ambient ones
        // inheritable, as PR_CAP_AMBIENT_RAISE requires.
        None => CapsPlan {
            drop_bounding: Vec::new(),
            permitted: caps::read(None, CapSet::Permitted).map_err(|source| {
                SpawnError::ReadCapabilities {
                    unit: name.into(),
                    source,
                }
            })?,
            inheritable: ambient.iter().copied().collect(),
            ambient,
        },
    };
    Ok(Some(plan))
}

/// The unit's SELinux context for exec, as the child writes it; `None`
/// when it declares none (the policy's transition from PID 1's domain
/// applies).
///
/// Fails closed: a declared context needs selinuxfs mounted and a policy
/// loaded (PID 1's own context one of that policy), or the unit does not
/// start. A `Type` takes user, role and level from PID 1's context.
fn selinux_exec_context(unit: &Unit, host: &HostPaths) -> Result<Option<CString>, SpawnError> {
    let Some(label) = &unit.process.selinux else {
        return Ok(None);
    };
    let name = unit.name.as_str();
    let (key, value, valid) = match label {
        SelinuxLabel::Context(context) => (
            "selinux_context",
            context,
            selinux::is_valid_context(context),
        ),
        SelinuxLabel::Type(kind) => ("selinux_type", kind, selinux::is_valid_type(kind)),
    };
    let bad_label = || SpawnError::BadSelinuxLabel {
        unit: name.into(),
        key,
        label: value.clone(),
    };
    if !valid {
        return Err(bad_label());
    }

    let enforce = host.selinuxfs.join(SELINUX_ENFORCE);
    match fs::metadata(&enforce) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SpawnError::SelinuxNotEnabled {
                unit: name.into(),
                key,
                path: enforce,
            });
        }
        Err(source) => {
            return Err(SpawnError::ReadSelinux {
                unit: name.into(),
                path: enforce,
                source,
            });
        }
    }
    let current_path = host.proc_self.join(ATTR_CURRENT);
    let attr = fs::read(&current_path).map_err(|source| SpawnError::ReadSelinux {
        unit: name.into(),
        path: current_path.clone(),
        source,
    })?;
    let no_policy = || SpawnError::SelinuxNoPolicy {
        unit: name.into(),
        key,
        path: current_path.clone(),
        found: String::from_utf8_lossy(&attr)
            .trim_end_matches(['\0', '\n'])
            .to_owned(),
    };
    let current = selinux::current_context(&attr).ok_or_else(no_policy)?;
    let context = selinux::exec_context(label, current).ok_or_else(no_policy)?;
    // Both parts were checked: no NUL.
    CString::new(context).map(Some).map_err(|_| bad_label())
}

/// `oom_score_adj` as the text written to /proc.
fn oom_score_adj(unit: &Unit) -> Result<Option<Vec<u8>>, SpawnError> {
    match unit.process.oom_score_adj {
        None => Ok(None),
        Some(value) if OOM_SCORE_ADJ_RANGE.contains(&value) => {
            Ok(Some(value.to_string().into_bytes()))
        }
        Some(value) => Err(SpawnError::OomScoreAdj {
            unit: unit.name.clone(),
            value,
        }),
    }
}

/// The working directory as a C string; `/` if unset.
fn c_path(unit: &str, dir: Option<&Path>) -> Result<CString, SpawnError> {
    let dir = dir.unwrap_or(Path::new("/"));
    CString::new(dir.as_os_str().as_bytes()).map_err(|_| SpawnError::NulInPath {
        unit: unit.into(),
        path: dir.to_owned(),
    })
}

/// The environment, later entries winning: `PATH`; `HOME`, `USER`,
/// `LOGNAME` for a unit with a user; the unit's own; `NOTIFY_SOCKET` and
/// `WATCHDOG_USEC`, which the unit cannot override.
fn environment(
    unit: &Unit,
    ctx: &SpawnContext<'_>,
    identity: Option<&Identity>,
) -> Result<BTreeMap<String, OsString>, SpawnError> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_owned(), DEFAULT_PATH.into());
    if let Some(identity) = identity.filter(|_| unit.process.user.is_some()) {
        if let Some(home) = &identity.home {
            env.insert("HOME".to_owned(), home.into());
        }
        if let Some(user) = &identity.name {
            env.insert("USER".to_owned(), user.into());
            env.insert("LOGNAME".to_owned(), user.into());
        }
    }
    for (name, value) in &unit.process.environment {
        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
            return Err(SpawnError::Environment {
                unit: unit.name.clone(),
                name: name.clone(),
            });
        }
        env.insert(name.clone(), value.into());
    }
    if let Some(socket) = &ctx.notify_socket {
        if socket.as_os_str().as_bytes().contains(&0) {
            return Err(SpawnError::NulInPath {
                unit: unit.name.clone(),
                path: socket.clone(),
            });
        }
        env.insert("NOTIFY_SOCKET".to_owned(), socket.into());
    }
    if let Some(usec) = ctx.watchdog_usec {
        env.insert("WATCHDOG_USEC".to_owned(), usec.to_string().into());
    }
    Ok(env)
}

/// The child's stdout and stderr, and the parent's read ends of the kmsg
/// pipes.
struct ChildStdio {
    stdout: Stdio,
    stderr: Stdio,
    stdout_read: Option<OwnedFd>,
    stderr_read: Option<OwnedFd>,
}

impl ChildStdio {
    fn open(unit: &Unit) -> Result<ChildStdio, SpawnError> {
        let name = unit.name.as_str();
        let (stdout, stdout_read) = open_output(name, &unit.process.stdout, None)?;
        let shared = stdout_read.as_ref().and(stdout.as_ref());
        let (stderr, stderr_read) = open_output(name, &unit.process.stderr, shared)?;
        Ok(ChildStdio {
            stdout: stdout.map_or_else(Stdio::null, Stdio::from),
            stderr: stderr.map_or_else(Stdio::null, Stdio::from),
            stdout_read,
            stderr_read,
        })
    }
}

/// Opens one output: the child's end (`None` for /dev/null, which std
/// opens) and, for `Kmsg`, the parent's read end. `kmsg` is an existing
/// kmsg pipe's write end to share instead of making a second pipe.
fn open_output(
    unit: &str,
    output: &Output,
    kmsg: Option<&OwnedFd>,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>), SpawnError> {
    let open = |path: &Path, options: &mut OpenOptions| {
        options
            .open(path)
            .map(OwnedFd::from)
            .map_err(|source| SpawnError::Open {
                unit: unit.into(),
                path: path.to_owned(),
                source,
            })
    };
    let pipe_error = |source| SpawnError::Pipe {
        unit: unit.into(),
        source,
    };
    match output {
        Output::Null => Ok((None, None)),
        // O_NOCTTY: PID 1 must not acquire the console as its
        // controlling terminal by opening it (open(2)).
        Output::Console => Ok((
            Some(open(
                Path::new(DEV_CONSOLE),
                OpenOptions::new().write(true).custom_flags(libc::O_NOCTTY),
            )?),
            None,
        )),
        Output::File(path) => Ok((
            Some(open(
                path,
                OpenOptions::new().append(true).create(true).mode(0o640),
            )?),
            None,
        )),
        Output::Kmsg => match kmsg {
            // try_clone dups with F_DUPFD_CLOEXEC.
            Some(write) => Ok((
                Some(write.try_clone().map_err(|source| SpawnError::Open {
                    unit: unit.into(),
                    path: PathBuf::from("kmsg pipe"),
                    source,
                })?),
                None,
            )),
            None => {
                // Both ends close-on-exec (the child's is dup2'ed onto
                // 1 or 2, which clears the flag); only the read end is
                // non-blocking, as the unit's writes must block.
                let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(pipe_error)?;
                fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(pipe_error)?;
                Ok((Some(write), Some(read)))
            }
        },
    }
}

#[cfg(test)]
mod tests;
