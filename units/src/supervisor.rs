//! The supervisor: a pure state machine over every unit. The PID 1 event
//! loop feeds it [`Input`]s with the current CLOCK_BOOTTIME and carries out
//! the [`Action`]s it returns; it never makes a syscall itself and never
//! reads a clock.
//!
//! INTERFACE CONTRACT (shared with init/src/stage2.rs): keep these public
//! types and method signatures; add, don't rename.
//!
//! # Dependencies
//!
//! 1. A unit's *prerequisites* are its `requires`, `wants` and `after`, and
//!    every unit whose `before` names it. A unit listed twice counts with
//!    its strongest link (requires, then wants, then order).
//! 2. Starting a unit ([`Input::Boot`], [`Input::Start`], or being pulled
//!    in) starts what it requires or wants too, recursively. Each of them
//!    goes to [`State::Waiting`].
//! 3. A waiting unit is spawned once every prerequisite is settled:
//!    `requires` must be [`State::Running`] or [`State::Done`]; `wants`,
//!    `after` and `before` also accept [`State::Failed`] and
//!    [`State::Inactive`] (a unit that is not being started does not hold
//!    anyone up). A prerequisite that is being stopped holds its dependents
//!    until it is down.
//! 4. A `requires` prerequisite that is failed (or inactive) fails the
//!    waiting unit: `requires "b", which failed`. A name in `requires` that
//!    is no unit counts as failed (`requires "b", which does not exist`);
//!    unknown names in `wants`, `after` and `before` are ignored.
//! 5. Every unit that can start is spawned in the same [`Supervisor::handle`]
//!    call, in the order the units were given to [`Supervisor::new`].
//! 6. Units in `broken` are [`State::Failed`] from the start and never
//!    start; starting one logs the failure again (and reports
//!    [`Action::Critical`] once if it is critical).
//! 7. Once running, a unit is not affected by a prerequisite failing later
//!    (no `BindsTo=`); it is affected by a prerequisite being stopped (see
//!    Stop).
//!
//! # Readiness
//!
//! - `simple`: ready at [`Input::Spawned`].
//! - `notify`: ready at `READY=1`. `STATUS=` is stored, `MAINPID=` changes
//!   the main pid that is watched (the old pid becomes an orphan),
//!   `STOPPING=1` shows [`State::Stopping`] (an exit with status 0 that
//!   follows is not a failure), `WATCHDOG=1` pushes the watchdog deadline
//!   out, and `WATCHDOG=trigger` fails the unit as a missed watchdog does.
//! - `oneshot`: ready when its process exits with status 0 ([`State::Done`],
//!   whatever its restart policy); any other exit is a failure.
//! - `ready_timeout` (notify and oneshot): not ready in time → the stop
//!   signal (the unit's kill mode), SIGKILL after `stop_timeout`, and the
//!   exit is a failure `ready timeout (90s)`.
//! - `watchdog`, armed when the unit becomes ready: a missed ping → SIGABRT
//!   to the main process, SIGKILL after `stop_timeout`, and the exit is a
//!   failure `watchdog timeout (10s)`.
//!
//! # Exits and restarts
//!
//! 1. An exit of a pid that is no unit's main pid is ignored (an orphan the
//!    reaper collected).
//! 2. Every main-process exit emits [`Action::Cleanup`]; the driver makes
//!    the unit's resources (notify socket, pipes) again at the next
//!    [`Action::Spawn`]. [`Input::SpawnFailed`] emits it too.
//! 3. After a requested stop the unit is [`State::Inactive`].
//! 4. Otherwise the restart policy decides: `never` → [`State::Failed`] after
//!    a failure, [`State::Inactive`] after status 0; `on-failure` restarts
//!    after a failure; `always` after any exit. A failure is a non-zero
//!    status, a signal, a ready or watchdog timeout, or a failed spawn.
//! 5. The restart delay is `restart_delay × 2^(k−1)`, capped at
//!    `restart_delay_max`, where k counts consecutive failed runs (a clean
//!    exit under `always` waits `restart_delay`). A run that lasted longer
//!    than `restart_delay_max`, or that was ready for at least
//!    `start_limit_interval`, resets k.
//! 6. Start limit: every spawn is counted; a restart that would make more
//!    than `start_limit_burst` spawns within the sliding
//!    `start_limit_interval` fails the unit for good instead:
//!    `start limit hit (5 starts within 10s)`. A burst or interval of zero
//!    turns the limit off.
//! 7. A `critical` unit that becomes failed for good emits
//!    [`Action::Critical`], once per failure (never after shutdown began).
//!
//! # Requests
//!
//! - [`Input::Start`]: a failed or inactive unit gets its backoff, start
//!   limit window and restart count reset and is started with its
//!   prerequisites; an active unit is left alone, except that a unit being
//!   stopped is started again once it is down.
//! - [`Input::Stop`]: the active units that require it (recursively) are
//!   stopped first (they end up inactive, not failed). Each gets its
//!   `stop_signal` (its `kill_mode`), shows [`State::Stopping`], and gets
//!   SIGKILL (same mode) after `stop_timeout`; its exit makes it inactive.
//!   A waiting, restarting or done unit becomes inactive at once.
//! - [`Input::Restart`]: a stop, then a start of the unit and of every unit
//!   that was stopped with it (systemd's Requires= semantics); on an
//!   inactive or failed unit it is a start.
//! - Requests for unknown names are ignored with a warning: the driver
//!   checks names first with [`Supervisor::knows`] to answer the client.
//!
//! # Boot and shutdown
//!
//! - [`Input::Boot`] starts every `wait` and `start` unit.
//!   [`Action::BootComplete`] is emitted once, when every `wait` unit is
//!   ready, done, failed for good, or inactive (stopped, or exited 0), at the
//!   end of that call's actions — right after the spawns if there is no
//!   `wait` unit. It is not emitted once shutdown began.
//! - [`Input::Shutdown`] refuses every later start and restart (automatic
//!   ones too). Waiting and restarting units become inactive at once, done
//!   units stay done, and the others are stopped in reverse dependency
//!   order: a unit gets its stop signal once every unit that has it as a
//!   prerequisite is down. Each unit's `stop_timeout` → SIGKILL applies.
//!   [`Action::AllStopped`] is emitted once no unit has a main process (or a
//!   spawn under way).
//!
//! # Log
//!
//! Events are logged with the `log` crate in a fixed wording, which the
//! QEMU tests grep: `unit NAME: started (pid N)`, `unit NAME: ready`,
//! `unit NAME: done` (a oneshot), `unit NAME: exited with status N` or
//! `unit NAME: killed by signal N` (with `; restarting in 200ms` when a
//! restart is scheduled), `unit NAME: failed: REASON` (failed for good),
//! `unit NAME: stopping`, `unit NAME: stopped`. Reasons read `exited with
//! status 1`, `start limit hit (5 starts within 10s)`, `requires "b", which
//! failed`, `ready timeout (90s)`, `watchdog timeout (10s)`, `cannot start:
//! ERROR`. [`UnitStatus::restarts`] counts automatic restarts since the last
//! start.
//!
//! Left out: `ExecStop`-style commands, reload, conditions, socket
//! activation, and checking that a `MAINPID=` process is still alive.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use log::{info, warn};
use serde::{Deserialize, Serialize};

use crate::notify::Notify;
use crate::unit::{KillMode, Unit, UnitName};

mod run;
mod start;
mod stop;
#[cfg(test)]
mod tests;

/// A process id.
pub type Pid = i32;

/// How a process ended, as waitpid(2) told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitStatus {
    /// It called exit with this status.
    Exited(i32),
    /// A signal killed it (number, whether it dumped core).
    Signaled(i32, bool),
}

/// Something happened that the supervisor must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start every unit whose `boot` is `wait` or `start`, and what they
    /// require or want.
    Boot,
    /// `liftoff ctl start UNIT`.
    Start(UnitName),
    /// `liftoff ctl stop UNIT`.
    Stop(UnitName),
    /// `liftoff ctl restart UNIT`.
    Restart(UnitName),
    /// The driver carried out [`Action::Spawn`]: the main process runs.
    Spawned {
        /// The unit.
        unit: UnitName,
        /// Its main process.
        pid: Pid,
    },
    /// The driver could not carry out [`Action::Spawn`] (exec failed, no
    /// such user, cgroup refused, …): a failed start.
    SpawnFailed {
        /// The unit.
        unit: UnitName,
        /// Why, for status and the log.
        error: String,
    },
    /// The reaper collected a child: any child, the supervisor's or an
    /// orphan's (those it ignores).
    Exited {
        /// The process.
        pid: Pid,
        /// How it ended.
        status: ExitStatus,
    },
    /// A datagram arrived on a unit's notify socket.
    Notify {
        /// The unit whose socket it came in on.
        unit: UnitName,
        /// What it said.
        message: Notify,
    },
    /// Time passed: the deadline from [`Supervisor::next_deadline`] (or
    /// any wake-up); due timers fire.
    Tick,
    /// Stop every unit, dependents before their dependencies, for
    /// shutdown. Starts and restarts are refused from now on.
    Shutdown,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the unit's main process, then report [`Input::Spawned`] or
    /// [`Input::SpawnFailed`].
    Spawn(UnitName),
    /// Send a signal: to `pid` with [`KillMode::Process`], to every
    /// process in the unit's cgroup with [`KillMode::Group`].
    Kill {
        /// The unit.
        unit: UnitName,
        /// Its main process.
        pid: Pid,
        /// The signal number.
        signal: i32,
        /// Who gets it.
        mode: KillMode,
    },
    /// The unit's main process is gone and will not be restarted right
    /// away: the driver may close its notify socket and output pipes.
    Cleanup(UnitName),
    /// Every `boot = "wait"` unit is ready or failed for good (sent once).
    BootComplete {
        /// The waited-for units that failed, if any.
        failed: Vec<UnitName>,
    },
    /// A `critical` unit failed for good: run the failure action.
    Critical {
        /// The unit.
        unit: UnitName,
        /// Why it failed.
        reason: String,
    },
    /// After [`Input::Shutdown`]: every unit is stopped (sent once).
    AllStopped,
}

/// A unit's state, as `liftoff ctl status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Not started (yet), or stopped by request.
    Inactive,
    /// To be started once its dependencies are ready.
    Waiting,
    /// Spawned; not ready yet (notify before READY=1, oneshot running).
    Starting,
    /// Running and ready.
    Running,
    /// A oneshot that exited with status 0.
    Done,
    /// Waiting out the restart delay.
    Restarting,
    /// Stop signal sent; waiting for the main process to exit.
    Stopping,
    /// Failed for good (start limit, restart never, a required unit
    /// failed, a dependency cycle, …): see `reason`.
    Failed,
}

/// One unit's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitStatus {
    /// The unit.
    pub name: UnitName,
    /// Its description.
    pub description: Option<String>,
    /// Its state.
    pub state: State,
    /// Since when (CLOCK_BOOTTIME) it is in this state.
    pub since: Duration,
    /// The main process, while there is one.
    pub main_pid: Option<Pid>,
    /// How many times it was restarted automatically.
    pub restarts: u32,
    /// How the last main process ended.
    pub last_exit: Option<ExitStatus>,
    /// The last `STATUS=` line it sent.
    pub status_line: Option<String>,
    /// Why it is failed (or why the last start failed).
    pub reason: Option<String>,
    /// When its current (or last) start began.
    pub started_at: Option<Duration>,
    /// When that start became ready.
    pub ready_at: Option<Duration>,
    /// How fast automatic restarts came back, if there were any.
    #[serde(default)]
    pub restart_latency: Option<RestartLatency>,
}

/// The time from a main process's exit (as the reaper reported it) to its
/// automatic restart's exec (the spawn reported done), the restart delay
/// left out: what liftoff itself costs a crashing service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartLatency {
    /// How many restarts were measured.
    pub count: u32,
    /// The last one.
    pub last: Duration,
    /// The fastest.
    pub min: Duration,
    /// The slowest.
    pub max: Duration,
    /// All of them added up (the mean is `total / count`).
    pub total: Duration,
}

impl RestartLatency {
    fn record(&mut self, latency: Duration) {
        self.min = if self.count == 0 {
            latency
        } else {
            self.min.min(latency)
        };
        self.max = self.max.max(latency);
        self.last = latency;
        self.total = self.total.saturating_add(latency);
        self.count = self.count.saturating_add(1);
    }

    /// The mean latency.
    pub fn mean(&self) -> Duration {
        self.total
            .checked_div(self.count.max(1))
            .unwrap_or_default()
    }
}

/// How a unit depends on one of its prerequisites; the order is strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Link {
    /// `after`, or the other unit's `before`.
    Order,
    /// `wants`.
    Wants,
    /// `requires`.
    Requires,
}

/// What a unit's one timer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The end of the restart delay: spawn again.
    Restart,
    /// `ready_timeout` since the spawn.
    Ready,
    /// The watchdog deadline.
    Watchdog,
    /// `stop_timeout` after a stop signal: SIGKILL.
    Kill,
}

/// The run-time side of one unit.
#[derive(Debug)]
struct Slot {
    state: State,
    since: Duration,
    main_pid: Option<Pid>,
    restarts: u32,
    last_exit: Option<ExitStatus>,
    status_line: Option<String>,
    reason: Option<String>,
    started_at: Option<Duration>,
    ready_at: Option<Duration>,
    /// Refused by the graph check, with the reason.
    broken: Option<String>,
    /// [`Action::Spawn`] sent, no [`Input::Spawned`] or
    /// [`Input::SpawnFailed`] yet.
    spawning: bool,
    timer: Option<(Duration, Timer)>,
    /// A stop was asked for: the exit that follows makes it inactive.
    stop_requested: bool,
    /// The stop signal is still to be sent (dependents go first, or the
    /// spawn is under way).
    stop_pending: bool,
    /// A stop signal or a failure kill went to the current process.
    signalled: bool,
    /// Why the supervisor killed the current process (ready or watchdog
    /// timeout): its exit is that failure.
    kill_reason: Option<String>,
    /// Start again once down (restart, or a start during a stop).
    start_after_stop: bool,
    /// k: consecutive failed runs.
    failures: u32,
    /// Spawn times within the start limit window.
    spawns: VecDeque<Duration>,
    /// [`Action::Critical`] went out for the current failure.
    critical_sent: bool,
    /// A `boot = "wait"` unit that boot complete still waits for.
    boot_pending: bool,
    /// An automatic restart is under way: when its exit was seen and the
    /// delay it waits, for [`RestartLatency`].
    restart_from: Option<(Duration, Duration)>,
    restart_latency: Option<RestartLatency>,
}

impl Slot {
    fn new(broken: Option<String>) -> Self {
        Slot {
            state: if broken.is_some() {
                State::Failed
            } else {
                State::Inactive
            },
            since: Duration::ZERO,
            main_pid: None,
            restarts: 0,
            last_exit: None,
            status_line: None,
            reason: broken.clone(),
            started_at: None,
            ready_at: None,
            broken,
            spawning: false,
            timer: None,
            stop_requested: false,
            stop_pending: false,
            signalled: false,
            kill_reason: None,
            start_after_stop: false,
            failures: 0,
            spawns: VecDeque::new(),
            critical_sent: false,
            boot_pending: false,
            restart_from: None,
            restart_latency: None,
        }
    }

    /// Has a main process or is about to.
    fn live(&self) -> bool {
        self.main_pid.is_some() || self.spawning
    }
}

/// Not started, stopped, failed, or a finished oneshot: nothing to stop.
fn is_down(state: State) -> bool {
    matches!(state, State::Inactive | State::Failed | State::Done)
}

/// What one [`Supervisor::handle`] call accumulates.
#[derive(Debug)]
struct Ctx {
    now: Duration,
    out: Vec<Action>,
    /// Units whose state changed: their neighbours must look again.
    changed: VecDeque<usize>,
}

/// Every unit's state machine, and the dependency bookkeeping between them.
#[derive(Debug)]
pub struct Supervisor {
    units: Vec<Unit>,
    slots: Vec<Slot>,
    index: HashMap<UnitName, usize>,
    /// Per unit: its prerequisites, by index order.
    prereqs: Vec<Vec<(usize, Link)>>,
    /// Per unit: the units that have it as a prerequisite, by index order.
    dependents: Vec<Vec<(usize, Link)>>,
    /// Per unit: names in `requires` that are no unit.
    missing: Vec<Vec<UnitName>>,
    /// Unit indexes sorted by name, for [`Supervisor::list`].
    by_name: Vec<usize>,
    /// Main pid → unit.
    pids: HashMap<Pid, usize>,
    /// Armed timers: (deadline, unit); mirrors each [`Slot::timer`].
    timers: BTreeSet<(Duration, usize)>,
    booted: bool,
    boot_waiting: usize,
    boot_failed: Vec<UnitName>,
    boot_complete_sent: bool,
    shutting_down: bool,
    all_stopped_sent: bool,
}

impl Supervisor {
    /// A supervisor over `units`. `broken` are units the graph check
    /// refused (a cycle, a missing required unit), with the reason: they
    /// show as failed and never start. Names in `broken` that are not in
    /// `units` are ignored; of two units with one name, the last counts.
    pub fn new(units: Vec<Unit>, broken: Vec<(UnitName, String)>) -> Self {
        let index: HashMap<UnitName, usize> = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.clone(), i))
            .collect();
        let mut broken_by: HashMap<UnitName, String> = broken.into_iter().collect();
        let slots = units
            .iter()
            .map(|u| Slot::new(broken_by.remove(&u.name)))
            .collect();

        let n = units.len();
        let mut prereqs: Vec<Vec<(usize, Link)>> = vec![Vec::new(); n];
        let mut missing = vec![Vec::new(); n];
        let add = |list: &mut Vec<(usize, Link)>, j: usize, link: Link| match list
            .iter_mut()
            .find(|(k, _)| *k == j)
        {
            Some(entry) => entry.1 = entry.1.max(link),
            None => list.push((j, link)),
        };
        for (i, unit) in units.iter().enumerate() {
            for name in &unit.requires {
                match index.get(name) {
                    Some(&j) if j != i => add(&mut prereqs[i], j, Link::Requires),
                    Some(_) => {}
                    None => missing[i].push(name.clone()),
                }
            }
            let soft = unit
                .wants
                .iter()
                .map(|name| (name, Link::Wants))
                .chain(unit.after.iter().map(|name| (name, Link::Order)));
            for (name, link) in soft {
                if let Some(&j) = index.get(name)
                    && j != i
                {
                    add(&mut prereqs[i], j, link);
                }
            }
            // `before = ["b"]` on this unit makes it a prerequisite of b.
            for name in &unit.before {
                if let Some(&j) = index.get(name)
                    && j != i
                {
                    add(&mut prereqs[j], i, Link::Order);
                }
            }
        }
        let mut dependents: Vec<Vec<(usize, Link)>> = vec![Vec::new(); n];
        for (i, list) in prereqs.iter_mut().enumerate() {
            list.sort_unstable();
            for &(j, link) in list.iter() {
                dependents[j].push((i, link));
            }
        }
        let mut by_name: Vec<usize> = (0..n).collect();
        by_name.sort_by(|&a, &b| units[a].name.cmp(&units[b].name));

        Supervisor {
            units,
            slots,
            index,
            prereqs,
            dependents,
            missing,
            by_name,
            pids: HashMap::new(),
            timers: BTreeSet::new(),
            booted: false,
            boot_waiting: 0,
            boot_failed: Vec::new(),
            boot_complete_sent: false,
            shutting_down: false,
            all_stopped_sent: false,
        }
    }

    /// Feeds one input at CLOCK_BOOTTIME `now`; returns what to do, in
    /// order.
    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut cx = Ctx {
            now,
            out: Vec::new(),
            changed: VecDeque::new(),
        };
        match input {
            Input::Boot => self.on_boot(&mut cx),
            Input::Start(name) => {
                if let Some(i) = self.lookup(&name, "start") {
                    self.on_start(&mut cx, i);
                }
            }
            Input::Stop(name) => {
                if let Some(i) = self.lookup(&name, "stop") {
                    self.request_stop(&mut cx, i, false);
                }
            }
            Input::Restart(name) => {
                if let Some(i) = self.lookup(&name, "restart") {
                    self.on_restart(&mut cx, i);
                }
            }
            Input::Spawned { unit, pid } => {
                if let Some(i) = self.lookup(&unit, "spawned") {
                    self.on_spawned(&mut cx, i, pid);
                }
            }
            Input::SpawnFailed { unit, error } => {
                if let Some(i) = self.lookup(&unit, "spawn failed") {
                    self.on_spawn_failed(&mut cx, i, error);
                }
            }
            Input::Exited { pid, status } => self.on_exited(&mut cx, pid, status),
            Input::Notify { unit, message } => {
                if let Some(i) = self.lookup(&unit, "notify") {
                    self.on_notify(&mut cx, i, message);
                }
            }
            Input::Tick => self.on_tick(&mut cx),
            Input::Shutdown => self.on_shutdown(&mut cx),
        }
        self.settle(&mut cx);
        cx.out
    }

    /// The earliest time a timer (restart delay, stop timeout, ready
    /// timeout, watchdog) is due, if any.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// The unit's declaration.
    pub fn unit(&self, name: &str) -> Option<&Unit> {
        self.index.get(name).map(|&i| &self.units[i])
    }

    /// Whether `name` is a unit; requests for other names are ignored, so
    /// the driver checks first to answer its client.
    pub fn knows(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The unit's main process, while there is one.
    pub fn main_pid_of(&self, name: &str) -> Option<Pid> {
        self.index.get(name).and_then(|&i| self.slots[i].main_pid)
    }

    /// The unit whose main process `pid` is.
    pub fn unit_of_pid(&self, pid: Pid) -> Option<&str> {
        self.pids.get(&pid).map(|&i| self.units[i].name.as_str())
    }

    /// Whether [`Input::Shutdown`] arrived.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// One unit's status.
    pub fn status(&self, name: &str) -> Option<UnitStatus> {
        self.index.get(name).map(|&i| self.status_of(i))
    }

    /// When a unit last became ready, without building its whole status.
    pub fn ready_at(&self, name: &str) -> Option<Duration> {
        self.index.get(name).and_then(|&i| self.slots[i].ready_at)
    }

    /// One unit's state, without building its whole status.
    pub fn state(&self, name: &str) -> Option<State> {
        self.index.get(name).map(|&i| self.slots[i].state)
    }

    /// Every unit's status, by name.
    pub fn list(&self) -> Vec<UnitStatus> {
        self.by_name.iter().map(|&i| self.status_of(i)).collect()
    }

    fn status_of(&self, i: usize) -> UnitStatus {
        let (unit, slot) = (&self.units[i], &self.slots[i]);
        UnitStatus {
            name: unit.name.clone(),
            description: unit.description.clone(),
            state: slot.state,
            since: slot.since,
            main_pid: slot.main_pid,
            restarts: slot.restarts,
            last_exit: slot.last_exit,
            status_line: slot.status_line.clone(),
            reason: slot.reason.clone(),
            started_at: slot.started_at,
            ready_at: slot.ready_at,
            restart_latency: slot.restart_latency,
        }
    }

    fn lookup(&self, name: &str, what: &str) -> Option<usize> {
        let found = self.index.get(name).copied();
        if found.is_none() {
            warn!("{what}: no unit {name:?}, ignored");
        }
        found
    }

    fn name(&self, i: usize) -> &str {
        &self.units[i].name
    }

    // ---- state and timers -------------------------------------------

    fn set_state(&mut self, cx: &mut Ctx, i: usize, state: State) {
        let slot = &mut self.slots[i];
        if slot.state == state {
            return;
        }
        slot.state = state;
        slot.since = cx.now;
        cx.changed.push_back(i);
        if slot.boot_pending {
            let failed = state == State::Failed;
            if failed || matches!(state, State::Running | State::Done | State::Inactive) {
                slot.boot_pending = false;
                self.boot_waiting = self.boot_waiting.saturating_sub(1);
                if failed {
                    self.boot_failed.push(self.units[i].name.clone());
                }
            }
        }
    }

    fn set_timer(&mut self, i: usize, at: Duration, timer: Timer) {
        self.clear_timer(i);
        self.slots[i].timer = Some((at, timer));
        self.timers.insert((at, i));
    }

    fn clear_timer(&mut self, i: usize) {
        if let Some((at, _)) = self.slots[i].timer.take() {
            self.timers.remove(&(at, i));
        }
    }

    /// Runs the consequences of every state change, then the once-only
    /// actions.
    fn settle(&mut self, cx: &mut Ctx) {
        while let Some(i) = cx.changed.pop_front() {
            let state = self.slots[i].state;
            if is_down(state) {
                if state == State::Inactive && self.slots[i].start_after_stop {
                    self.slots[i].start_after_stop = false;
                    self.activate(cx, &[i]);
                }
                for k in 0..self.prereqs[i].len() {
                    let p = self.prereqs[i][k].0;
                    self.try_stop(cx, p);
                }
            }
            for k in 0..self.dependents[i].len() {
                let d = self.dependents[i][k].0;
                self.try_spawn(cx, d);
            }
        }
        if self.booted && !self.boot_complete_sent && !self.shutting_down && self.boot_waiting == 0
        {
            self.boot_complete_sent = true;
            let mut failed = std::mem::take(&mut self.boot_failed);
            failed.sort();
            if failed.is_empty() {
                info!("boot complete");
            } else {
                warn!("boot complete; failed: {}", failed.join(", "));
            }
            cx.out.push(Action::BootComplete { failed });
        }
        if self.shutting_down && !self.all_stopped_sent && !self.slots.iter().any(Slot::live) {
            self.all_stopped_sent = true;
            info!("every unit is stopped");
            cx.out.push(Action::AllStopped);
        }
    }
}

/// A duration as unit files write it: `90s`, `200ms`, `1500us`.
pub fn fmt_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{}s", d.as_secs())
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", d.as_micros())
    } else {
        format!("{}ns", d.as_nanos())
    }
}
