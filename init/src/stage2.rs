//! Stage 2's services: the unit supervisor ([`units::supervisor`]) driven
//! by PID 1's event loop.
//!
//! The supervisor decides; this module carries its actions out and turns
//! what happens on the machine back into its inputs:
//!
//! * `Spawn` → a notify socket for `notify` units (one per unit, so a
//!   message counts for the unit that owns the socket, whatever process
//!   sends it), the unit's cgroup, then [`units::spawn::spawn`]; output
//!   pipes for `kmsg` streams are read here and forwarded line by line;
//! * `Kill` → kill(2) or the unit's cgroup;
//! * the reaper's exit statuses, notify datagrams and the timer →
//!   `Exited`, `Notify`, `Tick`;
//! * `BootComplete` → the boot record, `/run/liftoff/boot.json`;
//! * `Critical` and `AllStopped` go back to PID 1 as [`Outcome`]s.
//!
//! Every file descriptor here is registered in PID 1's epoll under a token
//! from [`FIRST_TOKEN`] up; PID 1 hands events on those tokens to
//! [`Services::on_ready`].

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, error, info, warn};
use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::wait::WaitStatus;
use serde::Serialize;
use units::cgroup::Cgroups;
use units::notify::Notify;
use units::spawn::{SpawnContext, Spawned};
use units::supervisor::{Action, ExitStatus, Input, Supervisor, UnitStatus};
use units::{Kind, UnitName};

use crate::read_ahead::Restored;
use crate::stage1::{HandoffRecord, StampRecord};
use crate::stamps::{Stamp, Stamps, boottime};

/// Where unit files are read from, in order of precedence: the verified
/// root's, then those generated at runtime.
pub const UNIT_DIRS: [&str; 2] = ["/etc/liftoff/units", "/run/liftoff/units"];
/// The per-unit notify sockets.
pub const NOTIFY_DIR: &str = "/run/liftoff/notify";
/// The boot record.
pub const BOOT_RECORD: &str = "/run/liftoff/boot.json";
/// The user database the units' `user`/`group` names are looked up in.
pub const ETC: &str = "/etc";
/// Epoll tokens at and above this one belong to [`Services`].
pub const FIRST_TOKEN: u64 = 1 << 16;
/// A notify datagram is at most this long (systemd: 4 KiB after its own
/// limit was raised from 512 bytes; more is truncated).
const NOTIFY_MAX: usize = 4096;
/// The longest line forwarded from a unit's output; a longer one is cut.
const LINE_MAX: usize = 4096;

/// What PID 1 must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A critical unit failed for good: run the failure action.
    Critical {
        /// The unit.
        unit: UnitName,
        /// Why.
        reason: String,
    },
    /// After [`Services::shutdown`], every unit is stopped.
    AllStopped,
}

/// One file descriptor PID 1 polls for the services.
#[derive(Debug)]
enum Source {
    /// A unit's notify socket.
    Notify {
        unit: UnitName,
        socket: UnixDatagram,
        path: PathBuf,
    },
    /// The read end of a unit's output pipe.
    Output {
        /// `NAME[PID]`, the tag its lines get in the kernel log.
        tag: String,
        pipe: fs::File,
        lines: LineBuffer,
    },
}

/// The boot record written when boot completes, and again each time a
/// unit that boot did not wait for (`boot = "start"`, a host container)
/// becomes ready for the first time, so that its ready time is in it too.
#[derive(Debug, Serialize)]
pub struct BootRecord<'a> {
    /// Stage 1's stamps (empty without an initramfs).
    pub stage1: &'a [StampRecord],
    /// Stage 2's stamps.
    pub stage2: &'a [Stamp],
    /// CLOCK_BOOTTIME when boot completed, in microseconds.
    pub boot_complete_us: u64,
    /// The units boot waited for that failed.
    pub failed: &'a [UnitName],
    /// Every unit's start and ready times.
    pub units: &'a [UnitTimes],
    /// Stage 1's kernel module loads (empty without an initramfs).
    pub modules: &'a [crate::stage1::ModuleTime],
}

/// One unit in the boot record.
#[derive(Debug, Clone, Serialize)]
pub struct UnitTimes {
    /// The unit.
    pub name: UnitName,
    /// Its state when boot completed (or, for a unit ready later, when it
    /// became ready).
    pub state: units::supervisor::State,
    /// When its start began (µs since kernel start).
    pub started_us: Option<u64>,
    /// When it became ready.
    pub ready_us: Option<u64>,
    /// The units it starts after (`requires`, `wants`, `after`, and the
    /// units that name it in `before`), by name: what `liftoff analyze
    /// critical-chain` follows.
    pub after: Vec<UnitName>,
}

/// The unit supervisor and everything PID 1 polls for it.
#[derive(Debug)]
pub struct Services {
    supervisor: Supervisor,
    cgroups: Cgroups,
    /// Slot `i` is token `FIRST_TOKEN + i`.
    sources: Vec<Option<Source>>,
    free: Vec<usize>,
    /// The notify socket's slot of each unit that has one.
    notify: HashMap<UnitName, usize>,
    pending: VecDeque<Input>,
    outcomes: Vec<Outcome>,
    /// CLOCK_BOOTTIME when boot completed.
    boot_complete: Option<Duration>,
    /// What the boot record holds, kept to write it again.
    record: Option<Record>,
    /// Stage 1's stamps, for the boot record.
    stage1: Vec<StampRecord>,
    /// Stage 1's module loads, for the boot record.
    modules: Vec<crate::stage1::ModuleTime>,
    /// Each unit's ordering prerequisites, for the boot record.
    prerequisites: HashMap<UnitName, Vec<UnitName>>,
    /// PID 1's own stamps, for the boot record.
    stamps: Vec<Stamp>,
    /// The root's read-ahead stage 1 raised, put back at boot complete.
    read_ahead: Option<crate::read_ahead::ReadAhead>,
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Services {
    /// Reads the unit files from `dirs`, checks the dependency graph and
    /// logs every problem (a bad file or a broken dependency costs only the
    /// units concerned). Never fails: a host with no units is a host with
    /// nothing to supervise.
    pub fn load(dirs: &[PathBuf], cgroups: Cgroups) -> Services {
        let loaded = units::file::load(dirs);
        for e in &loaded.errors {
            error!("{}", crate::failure::chain(e));
        }
        let unloadable = loaded.unloadable();
        let mut units = loaded.units;
        for warning in units::graph::warnings(&units) {
            warn!("{warning}");
        }
        let broken = units::graph::check(&units, &unloadable);
        for (unit, reason) in &broken {
            error!("unit {unit}: cannot start: {reason}");
        }
        units.sort_by(|a, b| a.name.cmp(&b.name));
        let prerequisites = prerequisites(&units);
        info!(
            "{} unit{} loaded from {}",
            units.len(),
            if units.len() == 1 { "" } else { "s" },
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Services {
            supervisor: Supervisor::new(units, broken),
            cgroups,
            prerequisites,
            ..Services::empty()
        }
    }

    /// Services with no units, for a PID 1 that has nothing to boot.
    pub fn empty() -> Services {
        Services {
            supervisor: Supervisor::new(Vec::new(), Vec::new()),
            cgroups: Cgroups::default(),
            sources: Vec::new(),
            free: Vec::new(),
            notify: HashMap::new(),
            pending: VecDeque::new(),
            outcomes: Vec::new(),
            boot_complete: None,
            record: None,
            stage1: Vec::new(),
            modules: Vec::new(),
            prerequisites: HashMap::new(),
            stamps: Vec::new(),
            read_ahead: None,
        }
    }

    /// Starts the boot: every `boot = "wait"` or `"start"` unit.
    pub fn boot(&mut self, stamps: &Stamps, stage1: Option<&HandoffRecord>) {
        // Each unit may cost PID 1 a notify socket and output pipes: the
        // kernel's default soft limit (1024) would cap a host at a few
        // hundred units. Units get 1024 back unless they ask for more.
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
            && soft < hard
            && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
        {
            warn!("cannot raise PID 1's descriptor limit to {hard}: {e}");
        }
        if let Err(e) = self.cgroups.prepare() {
            warn!("cgroups: {e}");
        }
        if let Err(e) = fs::create_dir_all(NOTIFY_DIR) {
            warn!("cannot create {NOTIFY_DIR}: {e}");
        }
        self.stamps = stamps.stamps.clone();
        self.stage1 = stage1.map(|r| r.stamps.clone()).unwrap_or_default();
        self.modules = stage1.map(|r| r.modules.clone()).unwrap_or_default();
        self.read_ahead = stage1.and_then(|r| r.read_ahead.clone());
        self.pending.push_back(Input::Boot);
    }

    /// The supervisor, for status queries.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// When boot completed, if it has.
    pub fn boot_complete(&self) -> Option<Duration> {
        self.boot_complete
    }

    /// Queues a request from the control socket (the caller checked that
    /// the unit exists).
    pub fn request(&mut self, input: Input) {
        self.pending.push_back(input);
    }

    /// Starts stopping every unit, for shutdown.
    pub fn shutdown(&mut self) {
        self.pending.push_back(Input::Shutdown);
    }

    /// Hands the reaper's exit statuses to the supervisor.
    pub fn exited(&mut self, statuses: &[WaitStatus]) {
        for status in statuses {
            let (pid, exit) = match *status {
                WaitStatus::Exited(pid, code) => (pid, ExitStatus::Exited(code)),
                WaitStatus::Signaled(pid, signal, core) => {
                    (pid, ExitStatus::Signaled(signal as i32, core))
                }
                _ => continue,
            };
            self.pending.push_back(Input::Exited {
                pid: pid.as_raw(),
                status: exit,
            });
        }
    }

    /// The earliest supervisor timer, for PID 1's timerfd.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.supervisor.next_deadline()
    }

    /// The timerfd fired.
    pub fn tick(&mut self) {
        self.pending.push_back(Input::Tick);
    }

    /// An event on one of the services' tokens.
    pub fn on_ready(&mut self, token: u64, epoll: &Epoll) {
        let Some(slot) = token
            .checked_sub(FIRST_TOKEN)
            .and_then(|s| usize::try_from(s).ok())
        else {
            return;
        };
        let mut close = false;
        match self.sources.get_mut(slot).and_then(Option::as_mut) {
            Some(Source::Notify { unit, socket, .. }) => {
                let mut buf = [0u8; NOTIFY_MAX];
                loop {
                    match socket.recv(&mut buf) {
                        Ok(n) => {
                            let message = Notify::parse(&buf[..n]);
                            debug!("unit {unit}: notify {message:?}");
                            self.pending.push_back(Input::Notify {
                                unit: unit.clone(),
                                message,
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => {
                            warn!("unit {unit}: notify socket: {e}");
                            break;
                        }
                    }
                }
            }
            Some(Source::Output { tag, pipe, lines }) => {
                close = forward_output(tag, pipe, lines);
            }
            None => {}
        }
        if close {
            self.release(slot, epoll);
        }
    }

    /// Feeds every queued input to the supervisor and carries out its
    /// actions (which may queue more inputs), until nothing is left.
    /// Returns what PID 1 must act on.
    pub fn run(&mut self, epoll: &Epoll) -> Vec<Outcome> {
        loop {
            while let Some(input) = self.pending.pop_front() {
                let now = boottime();
                for action in self.supervisor.handle(now, input) {
                    self.act(action, epoll);
                }
            }
            // A deadline already due (a restart without delay) is served
            // now rather than after a round through the timerfd.
            match self.supervisor.next_deadline() {
                Some(at) if at <= boottime() => self.pending.push_back(Input::Tick),
                _ => break,
            }
        }
        self.late_ready();
        std::mem::take(&mut self.outcomes)
    }

    /// Puts the first ready time of units that were not ready when boot
    /// completed into the boot record, and writes it again. Runs after
    /// every batch of inputs, so it looks at the ready time alone and
    /// builds a unit's status only once it is ready (a host container that
    /// never starts stays on the list for the machine's life).
    fn late_ready(&mut self) {
        let Some(record) = &mut self.record else {
            return;
        };
        if record.waiting.is_empty() {
            return;
        }
        let mut changed = false;
        let supervisor = &self.supervisor;
        record.waiting.retain(|&i| {
            let Some(times) = record.units.get_mut(i) else {
                return false;
            };
            if !supervisor.knows(&times.name) {
                return false;
            }
            if supervisor.ready_at(&times.name).is_none() {
                return true;
            }
            match supervisor.status(&times.name) {
                Some(status) => {
                    *times = unit_times(&status, &self.prerequisites);
                    changed = true;
                    false
                }
                None => false,
            }
        });
        if changed {
            record.write(&self.stage1, &self.stamps, &self.modules);
        }
    }

    fn act(&mut self, action: Action, epoll: &Epoll) {
        match action {
            Action::Spawn(unit) => {
                let input = match self.spawn(&unit, epoll) {
                    Ok(pid) => Input::Spawned { unit, pid },
                    Err(error) => Input::SpawnFailed { unit, error },
                };
                self.pending.push_back(input);
            }
            Action::Kill {
                unit,
                pid,
                signal,
                mode,
            } => {
                if let Err(e) = units::spawn::kill_unit(&self.cgroups, &unit, pid, signal, mode) {
                    warn!("unit {unit}: cannot send signal {signal}: {e}");
                }
            }
            Action::Cleanup(unit) => {
                // A unit about to restart keeps its socket and cgroup: the
                // restart reuses them, and making a cgroup anew costs the
                // kernel more than anything else in a restart.
                if self.supervisor.state(&unit) == Some(units::supervisor::State::Restarting) {
                    return;
                }
                if let Some(slot) = self.notify.remove(&unit) {
                    self.release(slot, epoll);
                }
                // A cgroup with a survivor (kill mode `process`) stays; the
                // next start reuses it.
                if let Err(e) = self.cgroups.remove(&unit) {
                    debug!("unit {unit}: cgroup kept: {e}");
                }
            }
            Action::BootComplete { failed } => self.boot_completed(&failed),
            Action::Critical { unit, reason } => {
                self.outcomes.push(Outcome::Critical { unit, reason });
            }
            Action::AllStopped => self.outcomes.push(Outcome::AllStopped),
        }
    }

    /// Starts one unit's main process; the error is the reason shown in
    /// its status.
    fn spawn(&mut self, name: &str, epoll: &Epoll) -> Result<i32, String> {
        let unit = self
            .supervisor
            .unit(name)
            .cloned()
            .ok_or_else(|| format!("unit {name} is not loaded"))?;
        let notify_socket = if unit.kind == Kind::Notify {
            Some(self.notify_socket(&unit, epoll)?)
        } else {
            None
        };
        let ctx = SpawnContext {
            cgroups: &self.cgroups,
            etc: PathBuf::from(ETC),
            notify_socket,
            watchdog_usec: unit.watchdog.map(us),
        };
        let spawned: Spawned =
            units::spawn::spawn(&unit, &ctx).map_err(|e| crate::failure::chain(&e))?;
        let tag = format!("{name}[{}]", spawned.pid);
        for pipe in [spawned.stdout, spawned.stderr].into_iter().flatten() {
            self.watch_output(tag.clone(), pipe, epoll);
        }
        Ok(spawned.pid)
    }

    /// The unit's notify socket, made if it does not exist yet.
    fn notify_socket(&mut self, unit: &units::Unit, epoll: &Epoll) -> Result<PathBuf, String> {
        let name = unit.name.as_str();
        if let Some(Some(Source::Notify { path, .. })) =
            self.notify.get(name).and_then(|&s| self.sources.get(s))
        {
            return Ok(path.clone());
        }
        let path = Path::new(NOTIFY_DIR).join(name);
        let _ = fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("cannot make the notify socket {}: {e}", path.display()))?;
        // Only the unit's own user may send: a message on this socket
        // counts for the unit, so nobody else must be able to mark it
        // ready. Root's units keep root's 0600 socket.
        if let Err(e) = fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
            warn!("cannot chmod {}: {e}", path.display());
        }
        if let Some(user) = &unit.process.user {
            match units::spawn::resolve_identity(unit, Path::new(ETC)) {
                Ok(id) => {
                    if let Err(e) = nix::unistd::chown(&path, Some(id.uid), Some(id.gid)) {
                        warn!("cannot chown {} to {user}: {e}", path.display());
                    }
                }
                // The spawn that follows fails with the same reason.
                Err(e) => debug!("unit {name}: user {user}: {e}"),
            }
        }
        let slot = self.register(
            Source::Notify {
                unit: name.to_owned(),
                socket,
                path: path.clone(),
            },
            epoll,
        )?;
        self.notify.insert(name.to_owned(), slot);
        Ok(path)
    }

    fn watch_output(&mut self, tag: String, pipe: OwnedFd, epoll: &Epoll) {
        let source = Source::Output {
            tag,
            pipe: fs::File::from(pipe),
            lines: LineBuffer::default(),
        };
        if let Err(e) = self.register(source, epoll) {
            warn!("{e}");
        }
    }

    fn register(&mut self, source: Source, epoll: &Epoll) -> Result<usize, String> {
        let slot = self.free.pop().unwrap_or(self.sources.len());
        let token = FIRST_TOKEN + slot as u64;
        let added = match &source {
            Source::Notify { socket, .. } => {
                epoll.add(socket.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
            }
            Source::Output { pipe, .. } => {
                epoll.add(pipe.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
            }
        };
        if let Err(e) = added {
            self.free.push(slot);
            return Err(format!("cannot poll a unit's file descriptor: {e}"));
        }
        if slot == self.sources.len() {
            self.sources.push(Some(source));
        } else {
            self.sources[slot] = Some(source);
        }
        Ok(slot)
    }

    fn release(&mut self, slot: usize, epoll: &Epoll) {
        let Some(source) = self.sources.get_mut(slot).and_then(Option::take) else {
            return;
        };
        match &source {
            Source::Notify { socket, path, .. } => {
                let _ = epoll.delete(socket.as_fd());
                let _ = fs::remove_file(path);
            }
            Source::Output { pipe, .. } => {
                let _ = epoll.delete(pipe.as_fd());
            }
        }
        self.free.push(slot);
    }

    fn boot_completed(&mut self, failed: &[UnitName]) {
        let now = boottime();
        self.boot_complete = Some(now);
        let statuses = self.supervisor.list();
        let ready = statuses.iter().filter(|s| s.ready_at.is_some()).count();
        if failed.is_empty() {
            info!(
                "boot complete at {:.3}s since kernel start ({ready} unit{} ready)",
                now.as_secs_f64(),
                if ready == 1 { "" } else { "s" }
            );
        } else {
            warn!(
                "boot complete at {:.3}s since kernel start, degraded: {} failed",
                now.as_secs_f64(),
                failed.join(", ")
            );
        }
        let units: Vec<UnitTimes> = statuses
            .iter()
            .map(|s| unit_times(s, &self.prerequisites))
            .collect();
        // Units started at boot but not ready yet: their ready time is
        // added when it comes.
        let waiting = units
            .iter()
            .enumerate()
            .filter(|(_, t)| t.started_us.is_some() && t.ready_us.is_none())
            .map(|(i, _)| i)
            .collect();
        let record = Record {
            boot_complete_us: us(now),
            failed: failed.to_vec(),
            units,
            waiting,
        };
        record.write(&self.stage1, &self.stamps, &self.modules);
        self.record = Some(record);
        self.restore_read_ahead();
    }

    /// Puts the root's read-ahead back to the kernel's value once boot has
    /// completed (crate::read_ahead).
    fn restore_read_ahead(&mut self) {
        let Some(read_ahead) = self.read_ahead.take() else {
            return;
        };
        match crate::read_ahead::restore(&read_ahead) {
            Ok(Restored::Restored) => info!(
                "read-ahead of the root back to {} KiB",
                read_ahead.kernel_kb
            ),
            Ok(Restored::Same) => {}
            Ok(Restored::ChangedMeanwhile) => info!(
                "read-ahead of the root left as it is: {} changed since boot began",
                read_ahead.path.display()
            ),
            Err(e) => warn!(
                "read-ahead of the root not restored: {}",
                crate::failure::chain(&e)
            ),
        }
    }
}

/// The parts of the boot record that [`Services`] keeps.
#[derive(Debug)]
struct Record {
    boot_complete_us: u64,
    failed: Vec<UnitName>,
    units: Vec<UnitTimes>,
    /// Indexes into `units` of those not ready yet.
    waiting: Vec<usize>,
}

impl Record {
    /// Writes [`BOOT_RECORD`] (to a temporary file renamed into place, so
    /// a reader never sees half of it).
    fn write(
        &self,
        stage1: &[StampRecord],
        stamps: &[Stamp],
        modules: &[crate::stage1::ModuleTime],
    ) {
        let record = BootRecord {
            stage1,
            stage2: stamps,
            boot_complete_us: self.boot_complete_us,
            failed: &self.failed,
            units: &self.units,
            modules,
        };
        let json = match serde_json::to_vec_pretty(&record) {
            Ok(json) => json,
            Err(e) => {
                warn!("cannot encode the boot record: {e}");
                return;
            }
        };
        let temporary = format!("{BOOT_RECORD}.tmp");
        if let Err(e) =
            fs::write(&temporary, json).and_then(|()| fs::rename(&temporary, BOOT_RECORD))
        {
            warn!("cannot write {BOOT_RECORD}: {e}");
        }
    }
}

/// Writes a unit for every enabled host container into
/// `/run/liftoff/units` (`host_ctr::generate`: settings from the image's
/// `/etc/liftoff/host-containers`, the operator's `/local/host-containers`),
/// before the units are read. A bad settings file costs its own host
/// container and is logged with its file, line and key; nothing here stops
/// the boot. Without either folder there is nothing to do.
pub fn generate_host_container_units() {
    let image = Path::new(host_ctr::settings::IMAGE_DIR);
    let local = Path::new(host_ctr::settings::LOCAL_DIR);
    if !image.exists() && !local.exists() {
        return;
    }
    match host_ctr::generate(image, local, Path::new(units::file::RUN_UNITS)) {
        Ok(generated) => {
            for error in &generated.errors {
                error!("host containers: {}", crate::failure::chain(error));
            }
            if !generated.units.is_empty() || !generated.disabled.is_empty() {
                let names: Vec<&str> = generated.units.iter().map(|u| u.name.as_str()).collect();
                info!(
                    "host containers: unit{} for {}{}",
                    if names.len() == 1 { "" } else { "s" },
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    },
                    if generated.disabled.is_empty() {
                        String::new()
                    } else {
                        format!(" (not enabled: {})", generated.disabled.join(", "))
                    }
                );
            }
        }
        Err(error) => error!("host containers: {}", crate::failure::chain(&error)),
    }
}

/// Each unit's ordering prerequisites by name, sorted: its `requires`,
/// `wants` and `after`, and every unit that lists it in `before`.
fn prerequisites(units: &[units::Unit]) -> HashMap<UnitName, Vec<UnitName>> {
    let mut map: HashMap<UnitName, Vec<UnitName>> = units
        .iter()
        .map(|u| {
            let names = u.requires.iter().chain(&u.wants).chain(&u.after).cloned();
            (u.name.clone(), names.collect())
        })
        .collect();
    for unit in units {
        for later in &unit.before {
            if let Some(list) = map.get_mut(later) {
                list.push(unit.name.clone());
            }
        }
    }
    for list in map.values_mut() {
        list.sort();
        list.dedup();
    }
    map
}

fn unit_times(status: &UnitStatus, prerequisites: &HashMap<UnitName, Vec<UnitName>>) -> UnitTimes {
    UnitTimes {
        name: status.name.clone(),
        state: status.state,
        started_us: status.started_at.map(us),
        ready_us: status.ready_at.map(us),
        after: prerequisites.get(&status.name).cloned().unwrap_or_default(),
    }
}

/// Reads what the pipe holds and logs every complete line; returns whether
/// the pipe is finished (EOF or an error). At most [`READS_PER_EVENT`]
/// reads: a unit that writes without pause must not hold the loop (epoll
/// reports the pipe again).
fn forward_output(tag: &str, pipe: &mut fs::File, lines: &mut LineBuffer) -> bool {
    let mut buf = [0u8; 4096];
    let log = |out: Vec<String>| {
        for line in out {
            crate::logger::unit_output(tag, &line);
        }
    };
    for _ in 0..READS_PER_EVENT {
        match pipe.read(&mut buf) {
            Ok(0) => {
                log(lines.finish());
                return true;
            }
            Ok(n) => log(lines.push(&buf[..n], boottime())),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                log(lines.finish());
                return true;
            }
        }
    }
    false
}

/// Reads per readiness event of an output pipe.
const READS_PER_EVENT: usize = 16;
/// Lines of one output stream forwarded per [`LINE_WINDOW`]; the rest of
/// the window's lines are dropped and counted. The kernel's own kmsg rate
/// limit is lifted for PID 1, so this is what keeps a chatty unit from
/// flooding the log and the console.
const LINES_PER_WINDOW: u32 = 200;
/// The window of [`LINES_PER_WINDOW`].
const LINE_WINDOW: Duration = Duration::from_secs(1);

/// Splits a unit's output into lines and rate-limits them.
#[derive(Debug, Default)]
struct LineBuffer {
    partial: Vec<u8>,
    window_start: Duration,
    in_window: u32,
    dropped: u32,
}

impl LineBuffer {
    /// Takes `bytes` read at `now`; returns the lines to log.
    fn push(&mut self, bytes: &[u8], now: Duration) -> Vec<String> {
        let mut out = Vec::new();
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.admit(&line[..end], now, &mut out);
        }
        if self.partial.len() > LINE_MAX {
            let line = std::mem::take(&mut self.partial);
            self.admit(&line, now, &mut out);
        }
        out
    }

    /// The stream ended: what is left, and the count of dropped lines.
    fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.partial.is_empty() {
            out.push(String::from_utf8_lossy(&self.partial).into_owned());
            self.partial.clear();
        }
        self.report_dropped(&mut out);
        out
    }

    fn admit(&mut self, line: &[u8], now: Duration, out: &mut Vec<String>) {
        if now.saturating_sub(self.window_start) >= LINE_WINDOW {
            self.report_dropped(out);
            self.window_start = now;
            self.in_window = 0;
        }
        if self.in_window < LINES_PER_WINDOW {
            self.in_window += 1;
            out.push(String::from_utf8_lossy(line).into_owned());
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    fn report_dropped(&mut self, out: &mut Vec<String>) {
        if self.dropped > 0 {
            out.push(format!(
                "({} lines dropped: more than {LINES_PER_WINDOW} in {}s)",
                self.dropped,
                LINE_WINDOW.as_secs()
            ));
            self.dropped = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, text: &str) -> units::Unit {
        let path = PathBuf::from(format!("/etc/liftoff/units/{name}.toml"));
        units::file::parse(&path, &format!("exec = [\"/bin/true\"]\n{text}")).unwrap()
    }

    #[test]
    fn prerequisites_gather_every_ordering_edge() {
        let units = [
            unit(
                "web",
                "requires = [\"db\"]\nwants = [\"cache\"]\nafter = [\"net\", \"db\"]\n",
            ),
            unit("db", ""),
            unit("cache", ""),
            unit("net", ""),
            unit("setup", "before = [\"web\", \"db\", \"gone\"]\n"),
        ];
        let map = prerequisites(&units);
        assert_eq!(map["web"], ["cache", "db", "net", "setup"]);
        assert_eq!(map["db"], ["setup"]);
        assert!(map["setup"].is_empty());
        assert!(!map.contains_key("gone"));
    }

    #[test]
    fn lines_are_split_and_partial_ones_kept() {
        let mut b = LineBuffer::default();
        assert_eq!(b.push(b"one\ntw", Duration::ZERO), ["one"]);
        assert_eq!(b.push(b"o\nthree", Duration::ZERO), ["two"]);
        assert_eq!(b.finish(), ["three"]);
        assert!(b.finish().is_empty());
    }

    #[test]
    fn an_endless_line_is_cut() {
        let mut b = LineBuffer::default();
        let long = vec![b'x'; LINE_MAX + 1];
        let out = b.push(&long, Duration::ZERO);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), LINE_MAX + 1);
    }

    #[test]
    fn a_flood_is_cut_to_the_window_and_counted() {
        let mut b = LineBuffer::default();
        let flood = "x\n".repeat(500);
        let out = b.push(flood.as_bytes(), Duration::from_millis(10));
        assert_eq!(out.len(), LINES_PER_WINDOW as usize);
        // The next window reports the drop, then lets lines through again.
        let out = b.push(b"after\n", Duration::from_millis(1500));
        assert_eq!(out, ["(300 lines dropped: more than 200 in 1s)", "after"]);
        assert!(b.finish().is_empty());
    }
}
