//! Host tests of the supervisor state machine: explicit times in, exact
//! action lists out.

use std::time::Duration;

use super::*;
use crate::unit::{Boot, Kind, Restart};

const SIGTERM: i32 = libc::SIGTERM;
const SIGKILL: i32 = libc::SIGKILL;
const SIGABRT: i32 = libc::SIGABRT;

/// A unit with every field at its file default, changed by `f`.
fn unit(name: &str, f: impl FnOnce(&mut Unit)) -> Unit {
    let mut u = Unit::for_test(name, vec![format!("/usr/bin/{name}")]);
    f(&mut u);
    u
}

fn plain(name: &str) -> Unit {
    unit(name, |_| {})
}

fn names(list: &[&str]) -> Vec<UnitName> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn spawn(name: &str) -> Action {
    Action::Spawn(name.into())
}

fn cleanup(name: &str) -> Action {
    Action::Cleanup(name.into())
}

fn kill(name: &str, pid: Pid, signal: i32, mode: KillMode) -> Action {
    Action::Kill {
        unit: name.into(),
        pid,
        signal,
        mode,
    }
}

fn boot_complete(failed: &[&str]) -> Action {
    Action::BootComplete {
        failed: names(failed),
    }
}

fn spawned(name: &str, pid: Pid) -> Input {
    Input::Spawned {
        unit: name.into(),
        pid,
    }
}

fn exited(pid: Pid, code: i32) -> Input {
    Input::Exited {
        pid,
        status: ExitStatus::Exited(code),
    }
}

fn signaled(pid: Pid, signal: i32) -> Input {
    Input::Exited {
        pid,
        status: ExitStatus::Signaled(signal, false),
    }
}

fn notify(name: &str, datagram: &str) -> Input {
    Input::Notify {
        unit: name.into(),
        message: Notify::parse(datagram.as_bytes()),
    }
}

fn state(sv: &Supervisor, name: &str) -> State {
    let state = sv.state(name).expect("known unit");
    assert_eq!(Some(state), sv.status(name).map(|s| s.state));
    state
}

fn reason(sv: &Supervisor, name: &str) -> Option<String> {
    sv.status(name).expect("known unit").reason
}

#[test]
fn chain_waits_for_notify_ready() {
    let mut sv = Supervisor::new(
        vec![
            unit("c", |u| u.requires = names(&["b"])),
            unit("b", |u| {
                u.kind = Kind::Notify;
                u.requires = names(&["a"]);
            }),
            plain("a"),
        ],
        Vec::new(),
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("a")]);
    assert_eq!(state(&sv, "b"), State::Waiting);
    assert_eq!(state(&sv, "c"), State::Waiting);
    assert_eq!(sv.handle(ms(1), spawned("a", 10)), vec![spawn("b")]);
    assert_eq!(sv.handle(ms(2), spawned("b", 11)), vec![]);
    assert_eq!(state(&sv, "b"), State::Starting);
    assert_eq!(sv.ready_at("b"), None);
    assert_eq!(sv.handle(ms(3), notify("b", "STATUS=warming up")), vec![]);
    assert_eq!(sv.handle(ms(5), notify("b", "READY=1")), vec![spawn("c")]);
    assert_eq!(sv.handle(ms(6), spawned("c", 12)), vec![boot_complete(&[])]);
    let b = sv.status("b").expect("b");
    assert_eq!(b.state, State::Running);
    assert_eq!(b.main_pid, Some(11));
    assert_eq!(b.started_at, Some(ms(1)));
    assert_eq!(b.ready_at, Some(ms(5)));
    assert_eq!(sv.ready_at("b"), Some(ms(5)));
    assert_eq!(sv.ready_at("nope"), None);
    assert_eq!(b.since, ms(5));
    assert_eq!(b.status_line.as_deref(), Some("warming up"));
    assert_eq!(sv.main_pid_of("c"), Some(12));
    assert_eq!(sv.unit_of_pid(11), Some("b"));
    assert_eq!(sv.unit_of_pid(99), None);
}

#[test]
fn independents_spawn_in_parallel() {
    let mut sv = Supervisor::new(
        vec![
            plain("a"),
            plain("b"),
            unit("m", |u| u.boot = Boot::Manual),
            unit("c", |u| u.boot = Boot::Start),
        ],
        Vec::new(),
    );
    assert_eq!(
        sv.handle(ms(0), Input::Boot),
        vec![spawn("a"), spawn("b"), spawn("c")]
    );
    assert_eq!(state(&sv, "m"), State::Inactive);
}

#[test]
fn manual_unit_pulled_in_by_wants_and_before() {
    // m is manual but wanted by a; x (manual, not pulled in) orders itself
    // before a and does not hold it up; y (boot) orders itself before a.
    let mut sv = Supervisor::new(
        vec![
            unit("a", |u| u.wants = names(&["m", "nonexistent"])),
            unit("m", |u| u.boot = Boot::Manual),
            unit("x", |u| {
                u.boot = Boot::Manual;
                u.before = names(&["a"]);
            }),
            unit("y", |u| {
                u.kind = Kind::Notify;
                u.before = names(&["a"]);
            }),
        ],
        Vec::new(),
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("m"), spawn("y")]);
    assert_eq!(sv.handle(ms(1), spawned("m", 1)), vec![]);
    assert_eq!(sv.handle(ms(1), spawned("y", 2)), vec![]);
    assert_eq!(sv.handle(ms(2), notify("y", "READY=1")), vec![spawn("a")]);
    assert_eq!(state(&sv, "x"), State::Inactive);
}

#[test]
fn wants_a_failing_unit_still_starts() {
    let mut sv = Supervisor::new(
        vec![
            unit("a", |u| u.wants = names(&["b"])),
            unit("b", |u| {
                u.kind = Kind::Notify;
                u.boot = Boot::Manual;
            }),
        ],
        Vec::new(),
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("b")]);
    assert_eq!(sv.handle(ms(1), spawned("b", 5)), vec![]);
    assert_eq!(
        sv.handle(ms(2), exited(5, 3)),
        vec![cleanup("b"), spawn("a")]
    );
    assert_eq!(state(&sv, "b"), State::Failed);
    assert_eq!(reason(&sv, "b").as_deref(), Some("exited with status 3"));
    assert_eq!(sv.handle(ms(3), spawned("a", 6)), vec![boot_complete(&[])]);
}

#[test]
fn requires_a_failing_unit_fails() {
    let mut sv = Supervisor::new(
        vec![
            unit("a", |u| u.requires = names(&["b"])),
            unit("b", |u| u.kind = Kind::Notify),
            unit("c", |u| {
                u.boot = Boot::Start;
                u.requires = names(&["a"]);
            }),
        ],
        Vec::new(),
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("b")]);
    assert_eq!(sv.handle(ms(1), spawned("b", 5)), vec![]);
    assert_eq!(
        sv.handle(ms(2), signaled(5, libc::SIGSEGV)),
        vec![cleanup("b"), boot_complete(&["a", "b"])]
    );
    assert_eq!(reason(&sv, "b").as_deref(), Some("killed by signal 11"));
    assert_eq!(
        reason(&sv, "a").as_deref(),
        Some("requires \"b\", which failed")
    );
    assert_eq!(
        reason(&sv, "c").as_deref(),
        Some("requires \"a\", which failed")
    );
    assert_eq!(state(&sv, "c"), State::Failed);
}

#[test]
fn broken_units_fail_from_the_start() {
    let mut sv = Supervisor::new(
        vec![
            unit("a", |u| u.requires = names(&["b"])),
            unit("b", |u| u.critical = true),
            plain("c"),
            unit("d", |u| u.requires = names(&["ghost"])),
        ],
        vec![("b".into(), "dependency cycle: b -> b".into())],
    );
    assert_eq!(state(&sv, "b"), State::Failed);
    assert_eq!(
        reason(&sv, "b").as_deref(),
        Some("dependency cycle: b -> b")
    );
    assert_eq!(
        sv.handle(ms(0), Input::Boot),
        vec![
            Action::Critical {
                unit: "b".into(),
                reason: "dependency cycle: b -> b".into(),
            },
            spawn("c"),
        ]
    );
    assert_eq!(
        reason(&sv, "a").as_deref(),
        Some("requires \"b\", which failed")
    );
    assert_eq!(
        reason(&sv, "d").as_deref(),
        Some("requires \"ghost\", which does not exist")
    );
    assert_eq!(
        sv.handle(ms(1), spawned("c", 3)),
        vec![boot_complete(&["a", "b", "d"])]
    );
    // Starting a broken unit again: still failed, no second Critical.
    assert_eq!(sv.handle(ms(2), Input::Start("b".into())), vec![]);
    assert_eq!(state(&sv, "b"), State::Failed);
}

#[test]
fn oneshot_done_then_dependents() {
    let mut sv = Supervisor::new(
        vec![
            unit("setup", |u| u.kind = Kind::Oneshot),
            unit("app", |u| u.requires = names(&["setup"])),
        ],
        Vec::new(),
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("setup")]);
    assert_eq!(sv.handle(ms(1), spawned("setup", 7)), vec![]);
    assert_eq!(state(&sv, "setup"), State::Starting);
    assert_eq!(
        sv.handle(ms(50), exited(7, 0)),
        vec![cleanup("setup"), spawn("app")]
    );
    let setup = sv.status("setup").expect("setup");
    assert_eq!(setup.state, State::Done);
    assert_eq!(setup.ready_at, Some(ms(50)));
    assert_eq!(setup.main_pid, None);
    assert_eq!(setup.last_exit, Some(ExitStatus::Exited(0)));
}

#[test]
fn oneshot_nonzero_exit_fails() {
    let mut sv = Supervisor::new(vec![unit("setup", |u| u.kind = Kind::Oneshot)], Vec::new());
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(1), spawned("setup", 7));
    assert_eq!(
        sv.handle(ms(2), exited(7, 2)),
        vec![cleanup("setup"), boot_complete(&["setup"])]
    );
}

/// Crashes the running unit `name` (pid `pid`) at `at` and returns the
/// restart deadline.
fn crash(sv: &mut Supervisor, name: &str, pid: Pid, at: Duration) -> Duration {
    assert_eq!(sv.handle(at, exited(pid, 1)), vec![cleanup(name)]);
    assert_eq!(state(sv, name), State::Restarting);
    sv.next_deadline().expect("restart scheduled")
}

#[test]
fn restart_backoff_doubles_and_caps() {
    let mut sv = Supervisor::new(
        vec![unit("a", |u| {
            u.boot = Boot::Start;
            u.restart = Restart::OnFailure;
            u.restart_delay_max = secs(1);
            u.start_limit_burst = 0;
        })],
        Vec::new(),
    );
    assert_eq!(
        sv.handle(ms(0), Input::Boot),
        vec![spawn("a"), boot_complete(&[])]
    );
    let mut now = ms(0);
    let mut delays = Vec::new();
    for pid in 1..=7 {
        sv.handle(now, spawned("a", pid));
        let due = crash(&mut sv, "a", pid, now);
        delays.push(due - now);
        assert_eq!(sv.handle(due - ms(1), Input::Tick), vec![]);
        assert_eq!(sv.handle(due, Input::Tick), vec![spawn("a")]);
        now = due;
    }
    assert_eq!(
        delays,
        vec![
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            secs(1),
            secs(1),
            secs(1)
        ]
    );
    let a = sv.status("a").expect("a");
    assert_eq!(a.restarts, 7);
    assert_eq!(a.reason.as_deref(), Some("exited with status 1"));
}

#[test]
fn restart_latency_leaves_out_the_delay() {
    let mut sv = Supervisor::new(
        vec![unit("a", |u| {
            u.restart = Restart::Always;
            u.start_limit_burst = 0;
        })],
        Vec::new(),
    );
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(1), spawned("a", 1));
    assert_eq!(sv.status("a").expect("a").restart_latency, None);
    // Exit at 10 ms, 100 ms delay, exec'd at 113 ms: 3 ms of liftoff.
    let due = crash(&mut sv, "a", 1, ms(10));
    assert_eq!(due, ms(110));
    sv.handle(due, Input::Tick);
    sv.handle(ms(113), spawned("a", 2));
    // Second restart: exit at 500 ms, 200 ms delay, exec'd at 701 ms.
    let due = crash(&mut sv, "a", 2, ms(500));
    sv.handle(due, Input::Tick);
    sv.handle(ms(701), spawned("a", 3));
    let latency = sv
        .status("a")
        .expect("a")
        .restart_latency
        .expect("measured");
    assert_eq!(latency.count, 2);
    assert_eq!(
        (latency.min, latency.max, latency.last),
        (ms(1), ms(3), ms(1))
    );
    assert_eq!(latency.mean(), ms(2));
    // A start by request is not a restart: nothing new is measured.
    sv.handle(ms(800), Input::Stop("a".into()));
    sv.handle(ms(801), exited(3, 0));
    sv.handle(ms(900), Input::Start("a".into()));
    sv.handle(ms(950), spawned("a", 4));
    assert_eq!(
        sv.status("a").expect("a").restart_latency.map(|l| l.count),
        Some(2)
    );
}

#[test]
fn backoff_resets_after_a_long_run() {
    let mut sv = Supervisor::new(
        vec![unit("a", |u| {
            u.restart = Restart::Always;
            u.restart_delay_max = secs(1);
            u.start_limit_burst = 0;
        })],
        Vec::new(),
    );
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("a", 1));
    let due = crash(&mut sv, "a", 1, ms(0));
    assert_eq!(due, ms(100));
    sv.handle(due, Input::Tick);
    sv.handle(due, spawned("a", 2));
    let due = crash(&mut sv, "a", 2, ms(100));
    assert_eq!(due, ms(300));
    sv.handle(due, Input::Tick);
    sv.handle(due, spawned("a", 3));
    // Up for 2s, longer than restart_delay_max: back to the first delay.
    let due = crash(&mut sv, "a", 3, ms(2300));
    assert_eq!(due, ms(2400));
    sv.handle(due, Input::Tick);
    sv.handle(due, spawned("a", 4));
    // A clean exit under `always` restarts after restart_delay too.
    assert_eq!(sv.handle(ms(2500), exited(4, 0)), vec![cleanup("a")]);
    assert_eq!(sv.next_deadline(), Some(ms(2600)));
    assert_eq!(reason(&sv, "a"), None);
}

#[test]
fn start_limit_fails_and_reports_critical() {
    let mut sv = Supervisor::new(
        vec![unit("a", |u| {
            u.restart = Restart::OnFailure;
            u.boot = Boot::Start;
            u.start_limit_burst = 3;
            u.critical = true;
        })],
        Vec::new(),
    );
    assert_eq!(
        sv.handle(ms(0), Input::Boot),
        vec![spawn("a"), boot_complete(&[])]
    );
    sv.handle(ms(0), spawned("a", 1));
    let due = crash(&mut sv, "a", 1, ms(0));
    sv.handle(due, Input::Tick);
    sv.handle(due, spawned("a", 2));
    let due = crash(&mut sv, "a", 2, due);
    assert_eq!(sv.handle(due, Input::Tick), vec![spawn("a")]);
    sv.handle(due, spawned("a", 3));
    let limit = "start limit hit (3 starts within 10s)";
    assert_eq!(
        sv.handle(due, exited(3, 1)),
        vec![
            cleanup("a"),
            Action::Critical {
                unit: "a".into(),
                reason: limit.into(),
            },
        ]
    );
    assert_eq!(state(&sv, "a"), State::Failed);
    assert_eq!(reason(&sv, "a").as_deref(), Some(limit));
    assert_eq!(sv.next_deadline(), None);
}

#[test]
fn start_limit_window_slides() {
    // Three starts within 1s are allowed; spaced further apart, any number.
    let mut sv = Supervisor::new(
        vec![unit("a", |u| {
            u.restart = Restart::Always;
            u.start_limit_burst = 3;
            u.start_limit_interval = secs(1);
            u.restart_delay = ms(600);
            u.restart_delay_max = ms(600);
        })],
        Vec::new(),
    );
    sv.handle(ms(0), Input::Boot);
    let mut now = ms(0);
    for pid in 1..=10 {
        sv.handle(now, spawned("a", pid));
        now = crash(&mut sv, "a", pid, now);
        assert_eq!(sv.handle(now, Input::Tick), vec![spawn("a")]);
    }
}

#[test]
fn restart_never_failure_is_final() {
    let mut sv = Supervisor::new(vec![plain("a"), plain("b")], Vec::new());
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(1), spawned("a", 1));
    assert_eq!(sv.handle(ms(1), spawned("b", 2)), vec![boot_complete(&[])]);
    assert_eq!(sv.handle(ms(5), exited(1, 1)), vec![cleanup("a")]);
    assert_eq!(state(&sv, "a"), State::Failed);
    assert_eq!(sv.status("a").expect("a").since, ms(5));
    // A clean exit is inactive, not failed.
    assert_eq!(sv.handle(ms(6), exited(2, 0)), vec![cleanup("b")]);
    assert_eq!(state(&sv, "b"), State::Inactive);
    assert_eq!(reason(&sv, "b"), None);
    assert_eq!(sv.next_deadline(), None);
}

#[test]
fn spawn_failure_counts_as_a_failed_run() {
    let mut sv = Supervisor::new(
        vec![unit("a", |u| u.restart = Restart::OnFailure), plain("b")],
        Vec::new(),
    );
    sv.handle(ms(0), Input::Boot);
    let failed = |unit: &str| Input::SpawnFailed {
        unit: unit.into(),
        error: "exec /usr/bin/x: no such file".into(),
    };
    assert_eq!(sv.handle(ms(1), failed("a")), vec![cleanup("a")]);
    assert_eq!(state(&sv, "a"), State::Restarting);
    assert_eq!(
        reason(&sv, "a").as_deref(),
        Some("cannot start: exec /usr/bin/x: no such file")
    );
    assert_eq!(sv.next_deadline(), Some(ms(101)));
    assert_eq!(sv.handle(ms(1), failed("b")), vec![cleanup("b")]);
    assert_eq!(state(&sv, "b"), State::Failed);
}

#[test]
fn ready_timeout_kills_then_sigkills() {
    let mut sv = Supervisor::new(
        vec![unit("b", |u| {
            u.kind = Kind::Notify;
            u.ready_timeout = Some(secs(5));
            u.stop_timeout = secs(2);
        })],
        Vec::new(),
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("b")]);
    assert_eq!(sv.handle(ms(0), spawned("b", 10)), vec![]);
    assert_eq!(sv.next_deadline(), Some(secs(5)));
    assert_eq!(sv.handle(ms(4999), Input::Tick), vec![]);
    assert_eq!(
        sv.handle(secs(5), Input::Tick),
        vec![kill("b", 10, SIGTERM, KillMode::Group)]
    );
    assert_eq!(state(&sv, "b"), State::Stopping);
    // A late READY=1 does not make it ready any more.
    assert_eq!(sv.handle(secs(6), notify("b", "READY=1")), vec![]);
    assert_eq!(sv.next_deadline(), Some(secs(7)));
    assert_eq!(
        sv.handle(secs(7), Input::Tick),
        vec![kill("b", 10, SIGKILL, KillMode::Group)]
    );
    assert_eq!(sv.next_deadline(), None);
    assert_eq!(
        sv.handle(secs(8), signaled(10, SIGKILL)),
        vec![cleanup("b"), boot_complete(&["b"])]
    );
    assert_eq!(reason(&sv, "b").as_deref(), Some("ready timeout (5s)"));
}

#[test]
fn watchdog_miss_aborts_and_restarts() {
    let mut sv = Supervisor::new(
        vec![unit("w", |u| {
            u.kind = Kind::Notify;
            u.watchdog = Some(secs(10));
            u.restart = Restart::OnFailure;
        })],
        Vec::new(),
    );
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("w", 4));
    assert_eq!(sv.next_deadline(), None);
    assert_eq!(
        sv.handle(secs(1), notify("w", "READY=1")),
        vec![boot_complete(&[])]
    );
    assert_eq!(sv.next_deadline(), Some(secs(11)));
    assert_eq!(sv.handle(secs(5), notify("w", "WATCHDOG=1")), vec![]);
    assert_eq!(sv.next_deadline(), Some(secs(15)));
    assert_eq!(sv.handle(secs(11), Input::Tick), vec![]);
    assert_eq!(
        sv.handle(secs(15), Input::Tick),
        vec![kill("w", 4, SIGABRT, KillMode::Process)]
    );
    assert_eq!(
        sv.handle(
            secs(15),
            Input::Exited {
                pid: 4,
                status: ExitStatus::Signaled(SIGABRT, true),
            }
        ),
        vec![cleanup("w")]
    );
    let w = sv.status("w").expect("w");
    assert_eq!(w.state, State::Restarting);
    assert_eq!(w.reason.as_deref(), Some("watchdog timeout (10s)"));
    assert_eq!(w.last_exit, Some(ExitStatus::Signaled(SIGABRT, true)));
    assert_eq!(sv.next_deadline(), Some(secs(15) + ms(100)));
}

#[test]
fn watchdog_trigger_fails_at_once() {
    let mut sv = Supervisor::new(vec![unit("w", |u| u.kind = Kind::Notify)], Vec::new());
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("w", 4));
    sv.handle(ms(1), notify("w", "READY=1"));
    assert_eq!(
        sv.handle(ms(2), notify("w", "WATCHDOG=trigger")),
        vec![kill("w", 4, SIGABRT, KillMode::Process)]
    );
    sv.handle(ms(3), signaled(4, SIGABRT));
    assert_eq!(reason(&sv, "w").as_deref(), Some("watchdog triggered"));
    assert_eq!(state(&sv, "w"), State::Failed);
}

#[test]
fn mainpid_changes_the_watched_process() {
    let mut sv = Supervisor::new(
        vec![unit("d", |u| u.kind = Kind::Notify), plain("other")],
        Vec::new(),
    );
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("d", 100));
    sv.handle(ms(0), spawned("other", 200));
    // The forking daemon names its child, then its first process exits.
    assert_eq!(
        sv.handle(ms(1), notify("d", "MAINPID=101\nREADY=1")),
        vec![boot_complete(&[])]
    );
    assert_eq!(sv.main_pid_of("d"), Some(101));
    assert_eq!(sv.unit_of_pid(100), None);
    assert_eq!(sv.handle(ms(2), exited(100, 0)), vec![]);
    assert_eq!(state(&sv, "d"), State::Running);
    // Another unit's main pid is refused.
    assert_eq!(sv.handle(ms(3), notify("d", "MAINPID=200")), vec![]);
    assert_eq!(sv.main_pid_of("d"), Some(101));
    assert_eq!(
        sv.handle(ms(4), Input::Stop("d".into())),
        vec![kill("d", 101, SIGTERM, KillMode::Group)]
    );
    assert_eq!(sv.handle(ms(5), exited(101, 0)), vec![cleanup("d")]);
    assert_eq!(state(&sv, "d"), State::Inactive);
}

#[test]
fn stopping_notification_then_clean_exit_is_not_a_failure() {
    let mut sv = Supervisor::new(vec![unit("d", |u| u.kind = Kind::Notify)], Vec::new());
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("d", 5));
    sv.handle(ms(1), notify("d", "READY=1"));
    assert_eq!(sv.handle(ms(2), notify("d", "STOPPING=1")), vec![]);
    assert_eq!(state(&sv, "d"), State::Stopping);
    assert_eq!(sv.handle(ms(3), exited(5, 0)), vec![cleanup("d")]);
    assert_eq!(state(&sv, "d"), State::Inactive);
}

#[test]
fn orphan_exit_is_ignored() {
    let mut sv = Supervisor::new(vec![plain("a")], Vec::new());
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("a", 5));
    assert_eq!(sv.handle(ms(1), exited(777, 1)), vec![]);
    assert_eq!(state(&sv, "a"), State::Running);
    // Notify for a unit without a process, and unknown names: ignored.
    assert_eq!(sv.handle(ms(1), notify("ghost", "READY=1")), vec![]);
    assert_eq!(sv.handle(ms(1), Input::Stop("ghost".into())), vec![]);
    assert!(!sv.knows("ghost"));
    assert!(sv.knows("a"));
}

#[test]
fn boot_complete_is_sent_exactly_once() {
    let mut sv = Supervisor::new(
        vec![
            unit("ok", |u| u.kind = Kind::Notify),
            unit("bad", |u| u.kind = Kind::Notify),
            unit("bg", |u| {
                u.kind = Kind::Notify;
                u.boot = Boot::Start;
            }),
        ],
        Vec::new(),
    );
    let mut all = sv.handle(ms(0), Input::Boot);
    assert_eq!(all, vec![spawn("ok"), spawn("bad"), spawn("bg")]);
    let steps = [
        spawned("ok", 1),
        spawned("bad", 2),
        spawned("bg", 3),
        exited(2, 1),
        notify("ok", "READY=1"),
        notify("bg", "READY=1"),
        exited(1, 0),
        Input::Start("bad".into()),
    ];
    let mut completes = Vec::new();
    for (k, step) in steps.into_iter().enumerate() {
        let actions = sv.handle(ms(k as u64 + 1), step);
        if actions
            .iter()
            .any(|a| matches!(a, Action::BootComplete { .. }))
        {
            completes.push(k);
        }
        all.extend(actions);
    }
    assert_eq!(completes, vec![4], "sent at READY=1 of ok");
    let sent: Vec<&Action> = all
        .iter()
        .filter(|a| matches!(a, Action::BootComplete { .. }))
        .collect();
    assert_eq!(sent, vec![&boot_complete(&["bad"])]);
}

#[test]
fn boot_without_wait_units_completes_at_once() {
    let mut sv = Supervisor::new(vec![unit("a", |u| u.boot = Boot::Start)], Vec::new());
    assert_eq!(
        sv.handle(ms(0), Input::Boot),
        vec![spawn("a"), boot_complete(&[])]
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![]);
}

#[test]
fn boot_with_1000_units() {
    let n = 1000;
    let units: Vec<Unit> = (0..n).map(|k| plain(&format!("u{k:04}"))).collect();
    let mut sv = Supervisor::new(units, Vec::new());
    let started = std::time::Instant::now();
    let actions = sv.handle(ms(0), Input::Boot);
    assert_eq!(actions.len(), n);
    assert!(actions.iter().all(|a| matches!(a, Action::Spawn(_))));
    let mut last = Vec::new();
    for k in 0..n {
        last = sv.handle(ms(1), spawned(&format!("u{k:04}"), k as Pid + 100));
    }
    assert_eq!(last, vec![boot_complete(&[])]);
    let kills = sv.handle(ms(2), Input::Shutdown);
    assert_eq!(kills.len(), n);
    for k in 0..n {
        last = sv.handle(ms(3), exited(k as Pid + 100, 0));
    }
    assert_eq!(last.last(), Some(&Action::AllStopped));
    assert_eq!(sv.list().len(), n);
    // Generous: it takes milliseconds; quadratic work would take seconds.
    assert!(started.elapsed() < secs(5), "{:?}", started.elapsed());
}

#[test]
fn chain_of_1000_units() {
    let n = 1000;
    let units: Vec<Unit> = (0..n)
        .map(|k| {
            unit(&format!("u{k:04}"), |u| {
                if k > 0 {
                    u.requires = vec![format!("u{:04}", k - 1)];
                }
            })
        })
        .collect();
    let mut sv = Supervisor::new(units, Vec::new());
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("u0000")]);
    for k in 0..n - 1 {
        assert_eq!(
            sv.handle(ms(1), spawned(&format!("u{k:04}"), k as Pid + 100)),
            vec![spawn(&format!("u{:04}", k + 1))]
        );
    }
}

#[test]
fn list_is_sorted_and_complete() {
    let mut sv = Supervisor::new(
        vec![
            unit("zeta", |u| u.description = Some("last".into())),
            plain("alpha"),
        ],
        Vec::new(),
    );
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(3), spawned("zeta", 8));
    let list = sv.list();
    assert_eq!(
        list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["alpha", "zeta"]
    );
    assert_eq!(
        list[1],
        UnitStatus {
            name: "zeta".into(),
            description: Some("last".into()),
            state: State::Running,
            since: ms(3),
            main_pid: Some(8),
            restarts: 0,
            last_exit: None,
            status_line: None,
            reason: None,
            started_at: Some(ms(0)),
            ready_at: Some(ms(3)),
            restart_latency: None,
        }
    );
    assert_eq!(sv.unit("alpha").map(|u| u.name.as_str()), Some("alpha"));
    assert!(sv.status("nope").is_none());
    assert!(sv.state("nope").is_none());
}

#[test]
fn durations_print_like_unit_files() {
    for (d, want) in [
        (secs(90), "90s"),
        (ms(200), "200ms"),
        (ms(1500), "1500ms"),
        (Duration::from_micros(15), "15us"),
        (Duration::ZERO, "0s"),
    ] {
        assert_eq!(fmt_duration(d), want);
    }
}

mod prop;
mod stop;
