//! Stop, restart and shutdown requests.

use super::*;

/// a; b requires a; c wants a: all running.
fn three_running() -> Supervisor {
    let mut sv = Supervisor::new(
        vec![
            plain("a"),
            unit("b", |u| u.requires = names(&["a"])),
            unit("c", |u| u.wants = names(&["a"])),
        ],
        Vec::new(),
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("a")]);
    assert_eq!(
        sv.handle(ms(0), spawned("a", 1)),
        vec![spawn("b"), spawn("c")]
    );
    sv.handle(ms(0), spawned("b", 2));
    assert_eq!(sv.handle(ms(0), spawned("c", 3)), vec![boot_complete(&[])]);
    sv
}

#[test]
fn stop_stops_requiring_units_first() {
    let mut sv = three_running();
    assert_eq!(
        sv.handle(secs(1), Input::Stop("a".into())),
        vec![kill("b", 2, SIGTERM, KillMode::Group)]
    );
    assert_eq!(state(&sv, "a"), State::Running);
    assert_eq!(state(&sv, "b"), State::Stopping);
    assert_eq!(
        sv.handle(secs(2), exited(2, 0)),
        vec![cleanup("b"), kill("a", 1, SIGTERM, KillMode::Group)]
    );
    assert_eq!(sv.handle(secs(3), signaled(1, SIGTERM)), vec![cleanup("a")]);
    for (name, want) in [
        ("a", State::Inactive),
        ("b", State::Inactive),
        ("c", State::Running),
    ] {
        assert_eq!(state(&sv, name), want, "{name}");
        assert_eq!(reason(&sv, name), None, "{name}");
    }
    assert_eq!(sv.status("a").expect("a").since, secs(3));
    // Stopping it again is a no-op.
    assert_eq!(sv.handle(secs(4), Input::Stop("a".into())), vec![]);
}

#[test]
fn stop_timeout_sends_sigkill_with_the_kill_mode() {
    for mode in [KillMode::Group, KillMode::Process] {
        let mut sv = Supervisor::new(
            vec![unit("a", |u| {
                u.kill_mode = mode;
                u.stop_signal = libc::SIGINT;
            })],
            Vec::new(),
        );
        sv.handle(ms(0), Input::Boot);
        sv.handle(ms(0), spawned("a", 9));
        assert_eq!(
            sv.handle(secs(1), Input::Stop("a".into())),
            vec![kill("a", 9, libc::SIGINT, mode)]
        );
        assert_eq!(sv.next_deadline(), Some(secs(11)));
        assert_eq!(
            sv.handle(secs(11), Input::Tick),
            vec![kill("a", 9, SIGKILL, mode)]
        );
        assert_eq!(
            sv.handle(secs(12), signaled(9, SIGKILL)),
            vec![cleanup("a")]
        );
        assert_eq!(state(&sv, "a"), State::Inactive);
    }
}

#[test]
fn stopping_waiting_and_restarting_units_is_immediate() {
    let mut sv = Supervisor::new(
        vec![
            unit("a", |u| {
                u.kind = Kind::Notify;
                u.restart = Restart::Always;
            }),
            unit("b", |u| u.after = names(&["a"])),
        ],
        Vec::new(),
    );
    assert_eq!(sv.handle(ms(0), Input::Boot), vec![spawn("a")]);
    assert_eq!(sv.handle(ms(1), Input::Stop("b".into())), vec![]);
    assert_eq!(state(&sv, "b"), State::Inactive);
    sv.handle(ms(1), spawned("a", 3));
    assert_eq!(sv.handle(ms(2), exited(3, 1)), vec![cleanup("a")]);
    assert_eq!(state(&sv, "a"), State::Restarting);
    assert_eq!(
        sv.handle(ms(3), Input::Stop("a".into())),
        vec![boot_complete(&[])]
    );
    assert_eq!(state(&sv, "a"), State::Inactive);
    assert_eq!(sv.next_deadline(), None);
}

#[test]
fn restart_stops_then_starts_with_dependents() {
    let mut sv = three_running();
    assert_eq!(
        sv.handle(secs(1), Input::Restart("a".into())),
        vec![kill("b", 2, SIGTERM, KillMode::Group)]
    );
    assert_eq!(
        sv.handle(secs(1), exited(2, 0)),
        vec![cleanup("b"), kill("a", 1, SIGTERM, KillMode::Group)]
    );
    assert_eq!(state(&sv, "b"), State::Waiting);
    assert_eq!(
        sv.handle(secs(2), exited(1, 0)),
        vec![cleanup("a"), spawn("a")]
    );
    assert_eq!(sv.handle(secs(2), spawned("a", 11)), vec![spawn("b")]);
    sv.handle(secs(2), spawned("b", 12));
    for name in ["a", "b", "c"] {
        assert_eq!(state(&sv, name), State::Running, "{name}");
    }
    let a = sv.status("a").expect("a");
    assert_eq!(a.started_at, Some(secs(2)));
    assert_eq!(a.restarts, 0, "a requested restart is not automatic");
}

#[test]
fn start_resets_a_failed_unit() {
    let mut sv = Supervisor::new(
        vec![unit("a", |u| {
            u.restart = Restart::OnFailure;
            u.start_limit_burst = 2;
        })],
        Vec::new(),
    );
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("a", 1));
    let due = crash(&mut sv, "a", 1, ms(0));
    sv.handle(due, Input::Tick);
    sv.handle(due, spawned("a", 2));
    sv.handle(due, exited(2, 1));
    assert_eq!(state(&sv, "a"), State::Failed);
    assert_eq!(
        sv.handle(secs(1), Input::Start("a".into())),
        vec![spawn("a")]
    );
    let a = sv.status("a").expect("a");
    assert_eq!(a.reason, None);
    assert_eq!(a.restarts, 0);
    sv.handle(secs(1), spawned("a", 3));
    // Backoff and start limit start over: first delay, room for a restart.
    assert_eq!(crash(&mut sv, "a", 3, secs(1)), secs(1) + ms(100));
    // Starting an active unit is a no-op.
    assert_eq!(sv.handle(secs(1), Input::Start("a".into())), vec![]);
}

#[test]
fn shutdown_stops_in_reverse_order() {
    let mut sv = Supervisor::new(
        vec![
            unit("a", |u| u.stop_timeout = secs(5)),
            unit("b", |u| u.requires = names(&["a"])),
            unit("c", |u| u.after = names(&["b"])),
            unit("once", |u| u.kind = Kind::Oneshot),
            unit("flappy", |u| {
                u.boot = Boot::Start;
                u.restart = Restart::Always;
            }),
        ],
        Vec::new(),
    );
    assert_eq!(
        sv.handle(ms(0), Input::Boot),
        vec![spawn("a"), spawn("once"), spawn("flappy")]
    );
    assert_eq!(sv.handle(ms(0), spawned("a", 1)), vec![spawn("b")]);
    assert_eq!(sv.handle(ms(0), spawned("b", 2)), vec![spawn("c")]);
    sv.handle(ms(0), spawned("c", 3));
    sv.handle(ms(0), spawned("once", 4));
    sv.handle(ms(0), spawned("flappy", 5));
    sv.handle(ms(1), exited(4, 0));
    sv.handle(ms(1), exited(5, 1));
    assert_eq!(state(&sv, "flappy"), State::Restarting);
    assert_eq!(
        sv.handle(secs(1), Input::Shutdown),
        vec![kill("c", 3, SIGTERM, KillMode::Group)]
    );
    assert_eq!(state(&sv, "flappy"), State::Inactive);
    assert_eq!(state(&sv, "once"), State::Done);
    assert_eq!(sv.handle(secs(2), Input::Tick), vec![]);
    assert_eq!(
        sv.handle(secs(2), exited(3, 0)),
        vec![cleanup("c"), kill("b", 2, SIGTERM, KillMode::Group)]
    );
    // Refused while shutting down.
    assert_eq!(sv.handle(secs(2), Input::Start("flappy".into())), vec![]);
    assert_eq!(sv.handle(secs(2), Input::Restart("c".into())), vec![]);
    assert_eq!(
        sv.handle(secs(3), signaled(2, SIGTERM)),
        vec![cleanup("b"), kill("a", 1, SIGTERM, KillMode::Group)]
    );
    assert_eq!(
        sv.handle(secs(8), Input::Tick),
        vec![kill("a", 1, SIGKILL, KillMode::Group)]
    );
    assert_eq!(
        sv.handle(secs(8), signaled(1, SIGKILL)),
        vec![cleanup("a"), Action::AllStopped]
    );
    assert_eq!(sv.handle(secs(9), Input::Tick), vec![]);
    assert_eq!(sv.handle(secs(9), Input::Shutdown), vec![]);
}

#[test]
fn shutdown_with_nothing_running_is_all_stopped_at_once() {
    let mut sv = Supervisor::new(vec![plain("a")], Vec::new());
    assert_eq!(sv.handle(ms(0), Input::Shutdown), vec![Action::AllStopped]);
    assert_eq!(sv.handle(ms(1), Input::Boot), vec![]);
}

#[test]
fn shutdown_during_a_spawn_waits_for_it() {
    let mut sv = Supervisor::new(vec![plain("a"), plain("b")], Vec::new());
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("a", 1));
    assert_eq!(
        sv.handle(ms(1), Input::Shutdown),
        vec![kill("a", 1, SIGTERM, KillMode::Group)]
    );
    assert_eq!(sv.handle(ms(2), exited(1, 0)), vec![cleanup("a")]);
    assert_eq!(
        sv.handle(ms(3), spawned("b", 2)),
        vec![kill("b", 2, SIGTERM, KillMode::Group)]
    );
    assert_eq!(
        sv.handle(ms(4), exited(2, 0)),
        vec![cleanup("b"), Action::AllStopped]
    );
}

#[test]
fn start_while_stopping_starts_again_once_down() {
    let mut sv = Supervisor::new(vec![plain("a")], Vec::new());
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("a", 1));
    assert_eq!(
        sv.handle(ms(1), Input::Stop("a".into())),
        vec![kill("a", 1, SIGTERM, KillMode::Group)]
    );
    assert_eq!(sv.handle(ms(2), Input::Start("a".into())), vec![]);
    assert_eq!(
        sv.handle(ms(3), exited(1, 0)),
        vec![cleanup("a"), spawn("a")]
    );
}

#[test]
fn restart_reruns_a_done_oneshot() {
    let mut sv = Supervisor::new(vec![unit("o", |u| u.kind = Kind::Oneshot)], Vec::new());
    sv.handle(ms(0), Input::Boot);
    sv.handle(ms(0), spawned("o", 1));
    sv.handle(ms(1), exited(1, 0));
    assert_eq!(state(&sv, "o"), State::Done);
    assert_eq!(
        sv.handle(ms(2), Input::Restart("o".into())),
        vec![spawn("o")]
    );
    assert_eq!(state(&sv, "o"), State::Starting);
}

#[test]
fn stop_during_a_spawn_signals_once_spawned() {
    let mut sv = Supervisor::new(vec![plain("a")], Vec::new());
    sv.handle(ms(0), Input::Boot);
    assert_eq!(sv.handle(ms(1), Input::Stop("a".into())), vec![]);
    assert_eq!(
        sv.handle(ms(2), spawned("a", 4)),
        vec![kill("a", 4, SIGTERM, KillMode::Group)]
    );
    assert_eq!(
        sv.handle(ms(3), exited(4, 0)),
        vec![cleanup("a"), boot_complete(&[])]
    );
    assert_eq!(state(&sv, "a"), State::Inactive);
}
