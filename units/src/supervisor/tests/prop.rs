//! Property test: a random driver (spawn answers, exits, READY=1, time,
//! requests, shutdown) never sees a spawn after shutdown, a spawn while the
//! unit still has a process, or a kill aimed at anything but the unit's
//! live main process.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// What the harness does next.
#[derive(Debug, Clone)]
enum Op {
    /// Answer the oldest outstanding spawn (ok or failed).
    Answer(bool),
    /// The main process of unit k exits with this status.
    Exit(usize, i32),
    /// Unit k says READY=1.
    Ready(usize),
    /// Time passes, then Tick.
    Wait(u64),
    Start(usize),
    Stop(usize),
    Restart(usize),
    Shutdown,
}

const N: usize = 4;

/// A unit: kind, restart, boot (indexes), and links to lower-numbered
/// units (index, link kind).
type UnitCfg = (u8, u8, u8, Vec<(usize, u8)>);

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(Op::Answer),
        3 => (0..N, 0..3i32).prop_map(|(k, c)| Op::Exit(k, c)),
        2 => (0..N).prop_map(Op::Ready),
        3 => (0..3000u64).prop_map(Op::Wait),
        1 => (0..N).prop_map(Op::Start),
        1 => (0..N).prop_map(Op::Stop),
        1 => (0..N).prop_map(Op::Restart),
        1 => Just(Op::Shutdown),
    ]
}

fn config() -> impl Strategy<Value = Vec<UnitCfg>> {
    // kind, restart, boot, deps on lower-numbered units (link kind).
    proptest::collection::vec(
        (
            0..3u8,
            0..3u8,
            0..3u8,
            proptest::collection::vec((0..N, 0..4u8), 0..3),
        ),
        N,
    )
}

fn build(cfg: &[UnitCfg]) -> Vec<Unit> {
    cfg.iter()
        .enumerate()
        .map(|(k, (kind, restart, boot, deps))| {
            unit(&format!("u{k}"), |u| {
                u.kind = [Kind::Simple, Kind::Notify, Kind::Oneshot][*kind as usize];
                u.restart =
                    [Restart::Never, Restart::OnFailure, Restart::Always][*restart as usize];
                u.boot = [Boot::Wait, Boot::Start, Boot::Manual][*boot as usize];
                u.ready_timeout = Some(secs(2));
                u.watchdog = (k == 1).then(|| secs(1));
                u.stop_timeout = secs(1);
                for &(d, link) in deps {
                    if d >= k {
                        continue;
                    }
                    let name = format!("u{d}");
                    match link {
                        0 => u.requires.push(name),
                        1 => u.wants.push(name),
                        2 => u.after.push(name),
                        _ => u.before.push(name),
                    }
                }
            })
        })
        .collect()
}

proptest! {
    #[test]
    fn never_spawns_after_shutdown_nor_twice(cfg in config(), ops in proptest::collection::vec(op(), 1..80)) {
        let mut sv = Supervisor::new(build(&cfg), Vec::new());
        let mut now = Duration::ZERO;
        let mut next_pid: Pid = 100;
        // Harness model: live process per unit, outstanding spawns.
        let mut live: HashMap<usize, Pid> = HashMap::new();
        let mut pending: Vec<usize> = Vec::new();
        let mut shut = false;
        let mut boot_completes = 0;
        let mut all_stopped = 0;
        let mut inputs = vec![Input::Boot];
        for op in ops {
            match op {
                Op::Answer(ok) => {
                    if !pending.is_empty() {
                        let k = pending.remove(0);
                        if ok {
                            next_pid += 1;
                            live.insert(k, next_pid);
                            inputs.push(spawned(&format!("u{k}"), next_pid));
                        } else {
                            inputs.push(Input::SpawnFailed { unit: format!("u{k}"), error: "no".into() });
                        }
                    }
                }
                Op::Exit(k, code) => {
                    if let Some(pid) = live.remove(&k) {
                        inputs.push(exited(pid, code));
                    }
                }
                Op::Ready(k) => inputs.push(notify(&format!("u{k}"), "READY=1\nWATCHDOG=1")),
                Op::Wait(d) => {
                    now += ms(d);
                    inputs.push(Input::Tick);
                }
                Op::Start(k) => inputs.push(Input::Start(format!("u{k}"))),
                Op::Stop(k) => inputs.push(Input::Stop(format!("u{k}"))),
                Op::Restart(k) => inputs.push(Input::Restart(format!("u{k}"))),
                Op::Shutdown => inputs.push(Input::Shutdown),
            }
            for input in inputs.drain(..) {
                if input == Input::Shutdown {
                    shut = true;
                }
                for action in sv.handle(now, input) {
                    match action {
                        Action::Spawn(name) => {
                            prop_assert!(!shut, "spawn of {} after shutdown", name);
                            let k: usize = name[1..].parse().unwrap();
                            prop_assert!(!live.contains_key(&k), "{} spawned while its process lives", name);
                            prop_assert!(!pending.contains(&k), "{} spawned twice", name);
                            pending.push(k);
                        }
                        Action::Kill { unit, pid, .. } => {
                            let k: usize = unit[1..].parse().unwrap();
                            prop_assert_eq!(live.get(&k), Some(&pid));
                        }
                        Action::BootComplete { .. } => boot_completes += 1,
                        Action::AllStopped => all_stopped += 1,
                        Action::Cleanup(_) | Action::Critical { .. } => {}
                    }
                }
                for k in 0..N {
                    let pid = sv.main_pid_of(&format!("u{k}"));
                    prop_assert_eq!(pid, live.get(&k).copied(), "main pid of u{}", k);
                }
            }
        }
        prop_assert!(boot_completes <= 1);
        prop_assert!(all_stopped <= 1);
        // After a shutdown, once every process exited, AllStopped was sent.
        if shut && live.is_empty() && pending.is_empty() {
            prop_assert_eq!(all_stopped, 1);
        }
    }
}
