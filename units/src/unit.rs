//! The unit model: what a unit file means once it has been read and
//! checked ([`crate::file`] builds it). Everything here is plain data; the
//! supervisor ([`crate::supervisor`]) decides from it, the spawner
//! ([`crate::spawn`]) carries out [`Process`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// A unit's name: its file name without `.toml` (`containerd` for
/// `containerd.toml`). Letters, digits, `-`, `_`, `.` and `@`; it names a
/// cgroup and a socket, so never `/`, never empty, never starting with `.`.
pub type UnitName = String;

/// One unit, as its file declares it, with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    /// The unit's name (see [`UnitName`]).
    pub name: UnitName,
    /// The file it came from.
    pub source: PathBuf,
    /// One line for people (`liftoff ctl status`).
    pub description: Option<String>,
    /// How the unit tells that it is ready.
    pub kind: Kind,
    /// Whether and how boot starts it.
    pub boot: Boot,

    /// Units started with this one, which must be ready before it starts;
    /// if one fails for good, this unit fails too.
    pub requires: Vec<UnitName>,
    /// Units started with this one, waited for (ready or failed) before
    /// it starts; their failure does not stop it.
    pub wants: Vec<UnitName>,
    /// Order only: if these units are being started, this one starts
    /// after they are ready (or failed).
    pub after: Vec<UnitName>,
    /// Order only: the reverse of `after`, declared on the other side.
    pub before: Vec<UnitName>,

    /// What to do when the main process exits.
    pub restart: Restart,
    /// The first restart's delay; doubled each consecutive failure.
    pub restart_delay: Duration,
    /// The cap on the doubled delay.
    pub restart_delay_max: Duration,
    /// At most this many starts within [`Unit::start_limit_interval`];
    /// one more and the unit is failed for good.
    pub start_limit_burst: u32,
    /// The window of [`Unit::start_limit_burst`].
    pub start_limit_interval: Duration,
    /// A permanent failure of this unit runs the machine's failure action.
    pub critical: bool,
    /// How long a `notify` unit may take to send `READY=1`, or a
    /// `oneshot` to exit; `None` waits forever.
    pub ready_timeout: Option<Duration>,
    /// With `WATCHDOG=1` pings expected at least this often; a missed
    /// ping is a failure (the process gets SIGABRT).
    pub watchdog: Option<Duration>,

    /// The first signal `stop` sends.
    pub stop_signal: i32,
    /// How long after `stop_signal` before SIGKILL.
    pub stop_timeout: Duration,
    /// Who the stop signals reach.
    pub kill_mode: KillMode,

    /// How to start the main process.
    pub process: Process,
}

/// How a unit signals readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Ready as soon as its process has been executed.
    Simple,
    /// Ready when its process exits with status 0; it then stays
    /// "done" (systemd's active (exited)).
    Oneshot,
    /// Ready when it sends `READY=1` on `NOTIFY_SOCKET` (sd_notify).
    Notify,
}

/// Whether boot starts a unit, and whether boot complete waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Boot {
    /// Started at boot; boot is complete only once it is ready (or failed
    /// for good). The default.
    Wait,
    /// Started at boot; boot complete does not wait for it.
    Start,
    /// Not started at boot: only by `liftoff ctl start` or as another
    /// unit's `requires`/`wants`.
    Manual,
}

/// The restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Never restarted.
    Never,
    /// Restarted after an exit other than status 0 (a signal, a non-zero
    /// status, a missed watchdog or ready timeout).
    OnFailure,
    /// Restarted after any exit that was not asked for by a stop.
    Always,
}

/// Who a stop's signals reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KillMode {
    /// Every process in the unit's cgroup.
    Group,
    /// The main process only (containerd: its shims must survive).
    Process,
}

/// Where a standard output stream goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Line by line to the kernel log, prefixed with the unit's name (PID 1
    /// reads a pipe and forwards).
    Kmsg,
    /// Straight to /dev/console.
    Console,
    /// Appended to this file (created 0640 if missing).
    File(PathBuf),
    /// /dev/null.
    Null,
}

/// A resource limit: soft and hard. `None` is RLIM_INFINITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// The soft limit.
    pub soft: Option<u64>,
    /// The hard limit.
    pub hard: Option<u64>,
}

/// The unit's cgroup settings. Every unit gets a cgroup; these fill in its
/// controller files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cgroup {
    /// `memory.max` in bytes; `None` leaves "max".
    pub memory_max: Option<u64>,
    /// `pids.max`; `None` leaves "max".
    pub pids_max: Option<u64>,
    /// Hand the cgroup to the unit's user (chown of the directory and its
    /// `cgroup.procs`, `cgroup.subtree_control`, `cgroup.threads`), so it
    /// can make sub-cgroups (containerd, runc).
    pub delegate: bool,
}

/// How the main process is set up before exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    /// argv; `argv[0]` is an absolute path.
    pub argv: Vec<String>,
    /// Added to a minimal environment (`PATH`, and `NOTIFY_SOCKET`,
    /// `WATCHDOG_USEC` as the unit needs).
    pub environment: BTreeMap<String, String>,
    /// The working directory; `/` if unset.
    pub working_directory: Option<PathBuf>,
    /// User name or numeric uid; root if unset.
    pub user: Option<String>,
    /// Group name or numeric gid; the user's primary group if unset.
    pub group: Option<String>,
    /// Supplementary groups, names or numeric.
    pub supplementary_groups: Vec<String>,
    /// The bounding set, as capability names (`CAP_NET_ADMIN`); `None`
    /// keeps every capability. The permitted, effective and inheritable
    /// sets are cut to it too.
    pub capabilities: Option<Vec<String>>,
    /// Ambient capabilities (kept across exec for a non-root user); each
    /// must be in the bounding set.
    pub ambient_capabilities: Vec<String>,
    /// prctl(PR_SET_NO_NEW_PRIVS).
    pub no_new_privileges: bool,
    /// setrlimit(2), by resource name as in `ulimit`: `nofile`, `nproc`,
    /// `core`, `memlock`, `stack`, `as`, `cpu`, `fsize`, `data`, `rss`,
    /// `locks`, `sigpending`, `msgqueue`, `nice`, `rtprio`, `rttime`.
    pub limits: BTreeMap<String, Limit>,
    /// /proc/PID/oom_score_adj, -1000..=1000.
    pub oom_score_adj: Option<i32>,
    /// The unit's cgroup.
    pub cgroup: Cgroup,
    /// Where stdout goes.
    pub stdout: Output,
    /// Where stderr goes.
    pub stderr: Output,
    /// The SELinux context the program runs in (set for its exec); `None`
    /// keeps the policy's default transition from PID 1's domain.
    pub selinux: Option<SelinuxLabel>,
}

/// The SELinux domain a unit declares (`selinux_context` or
/// `selinux_type`; see [`crate::selinux`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SelinuxLabel {
    /// A full context: `user:role:type` or `user:role:type:level`.
    Context(String),
    /// A type only; user, role and level are PID 1's own.
    Type(String),
}

#[cfg(test)]
impl Unit {
    /// A `simple` unit running `argv`, with every other field at a plain
    /// value (restart never, 100 ms to 30 s backoff, 5 starts in 10 s,
    /// SIGTERM then 10 s, kill mode group, output to kmsg); tests change
    /// what they exercise.
    pub(crate) fn for_test(name: &str, argv: Vec<String>) -> Unit {
        Unit {
            name: name.into(),
            source: PathBuf::from(format!("/etc/liftoff/units/{name}.toml")),
            description: None,
            kind: Kind::Simple,
            boot: Boot::Wait,
            requires: Vec::new(),
            wants: Vec::new(),
            after: Vec::new(),
            before: Vec::new(),
            restart: Restart::Never,
            restart_delay: Duration::from_millis(100),
            restart_delay_max: Duration::from_secs(30),
            start_limit_burst: 5,
            start_limit_interval: Duration::from_secs(10),
            critical: false,
            ready_timeout: None,
            watchdog: None,
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            kill_mode: KillMode::Group,
            process: Process {
                argv,
                environment: BTreeMap::new(),
                working_directory: None,
                user: None,
                group: None,
                supplementary_groups: Vec::new(),
                capabilities: None,
                ambient_capabilities: Vec::new(),
                no_new_privileges: false,
                limits: BTreeMap::new(),
                oom_score_adj: None,
                cgroup: Cgroup::default(),
                stdout: Output::Kmsg,
                stderr: Output::Kmsg,
                selinux: None,
            },
        }
    }
}
