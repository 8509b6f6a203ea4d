//! Running units: notify messages, timers, exits, restarts and failures.

use std::collections::VecDeque;
use std::time::Duration;

use log::{debug, info, warn};

use super::{Action, Ctx, ExitStatus, Pid, State, Supervisor, Timer, fmt_duration};
use crate::notify::Notify;
use crate::unit::{KillMode, Kind, Restart, Unit};

impl Supervisor {
    pub(super) fn on_notify(&mut self, cx: &mut Ctx, i: usize, message: Notify) {
        if self.slots[i].main_pid.is_none() {
            debug!(
                "unit {}: notify without a main process, ignored",
                self.name(i)
            );
            return;
        }
        if let Some(status) = message.status {
            self.slots[i].status_line = Some(status);
        }
        if let Some(pid) = message.main_pid {
            self.change_main_pid(i, pid);
        }
        let state = self.slots[i].state;
        if message.ready && state == State::Starting && self.units[i].kind == Kind::Notify {
            self.become_ready(cx, i);
        }
        if message.watchdog
            && self.slots[i].state == State::Running
            && let Some(period) = self.units[i].watchdog
        {
            self.set_timer(i, cx.now.saturating_add(period), Timer::Watchdog);
        }
        if message.watchdog_trigger
            && matches!(self.slots[i].state, State::Starting | State::Running)
        {
            let reason = "watchdog triggered".to_owned();
            warn!("unit {}: {reason}", self.name(i));
            self.failure_kill(cx, i, reason, libc::SIGABRT, KillMode::Process);
            return;
        }
        if message.stopping && matches!(self.slots[i].state, State::Starting | State::Running) {
            info!("unit {}: stopping", self.name(i));
            // The unit stops on its own: no timer of ours applies any more.
            self.clear_timer(i);
            self.set_state(cx, i, State::Stopping);
        }
    }

    pub(super) fn change_main_pid(&mut self, i: usize, pid: Pid) {
        let old = self.slots[i].main_pid;
        if old == Some(pid) {
            return;
        }
        if let Some(&other) = self.pids.get(&pid) {
            // debug: the sender controls how often this happens.
            debug!(
                "unit {}: MAINPID={pid} is the main process of unit {}, ignored",
                self.name(i),
                self.name(other)
            );
            return;
        }
        if let Some(old) = old {
            self.pids.remove(&old);
        }
        self.pids.insert(pid, i);
        self.slots[i].main_pid = Some(pid);
        info!("unit {}: main pid is now {pid}", self.name(i));
    }

    /// The supervisor gives up on the current process: `signal` now,
    /// SIGKILL after `stop_timeout`, and its exit is the failure `reason`.
    pub(super) fn failure_kill(
        &mut self,
        cx: &mut Ctx,
        i: usize,
        reason: String,
        signal: i32,
        mode: KillMode,
    ) {
        let Some(pid) = self.slots[i].main_pid else {
            return;
        };
        let slot = &mut self.slots[i];
        slot.kill_reason = Some(reason);
        slot.signalled = true;
        cx.out.push(Action::Kill {
            unit: self.units[i].name.clone(),
            pid,
            signal,
            mode,
        });
        self.set_state(cx, i, State::Stopping);
        let at = cx.now.saturating_add(self.units[i].stop_timeout);
        self.set_timer(i, at, Timer::Kill);
    }

    pub(super) fn on_tick(&mut self, cx: &mut Ctx) {
        while let Some(&(at, i)) = self.timers.first() {
            if at > cx.now {
                break;
            }
            self.timers.remove(&(at, i));
            let Some((_, timer)) = self.slots[i].timer.take() else {
                continue;
            };
            self.fire(cx, i, timer);
        }
    }

    pub(super) fn fire(&mut self, cx: &mut Ctx, i: usize, timer: Timer) {
        let unit = &self.units[i];
        let state = self.slots[i].state;
        match timer {
            Timer::Restart if state == State::Restarting && !self.shutting_down => {
                self.slots[i].restarts = self.slots[i].restarts.saturating_add(1);
                self.spawn(cx, i);
            }
            Timer::Ready if state == State::Starting => {
                let reason = format!(
                    "ready timeout ({})",
                    fmt_duration(unit.ready_timeout.unwrap_or_default())
                );
                warn!("unit {}: {reason}, stopping", unit.name);
                let (signal, mode) = (unit.stop_signal, unit.kill_mode);
                self.failure_kill(cx, i, reason, signal, mode);
            }
            Timer::Watchdog if state == State::Running => {
                let reason = format!(
                    "watchdog timeout ({})",
                    fmt_duration(unit.watchdog.unwrap_or_default())
                );
                warn!("unit {}: {reason}, sending SIGABRT", unit.name);
                self.failure_kill(cx, i, reason, libc::SIGABRT, KillMode::Process);
            }
            Timer::Kill => {
                if let Some(pid) = self.slots[i].main_pid {
                    warn!(
                        "unit {}: still running {} after the stop signal, sending SIGKILL",
                        unit.name,
                        fmt_duration(unit.stop_timeout)
                    );
                    cx.out.push(Action::Kill {
                        unit: unit.name.clone(),
                        pid,
                        signal: libc::SIGKILL,
                        mode: unit.kill_mode,
                    });
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_exited(&mut self, cx: &mut Ctx, pid: Pid, status: ExitStatus) {
        let Some(i) = self.pids.remove(&pid) else {
            debug!("reaped orphan PID {pid} ({})", describe(status));
            return;
        };
        self.clear_timer(i);
        let slot = &mut self.slots[i];
        slot.main_pid = None;
        slot.last_exit = Some(status);
        slot.signalled = false;
        let kill_reason = slot.kill_reason.take();
        cx.out.push(Action::Cleanup(self.units[i].name.clone()));
        if self.slots[i].stop_requested {
            self.stopped(cx, i);
            return;
        }
        let clean = status == ExitStatus::Exited(0) && kill_reason.is_none();
        if clean && self.units[i].kind == Kind::Oneshot {
            info!("unit {}: done", self.name(i));
            self.slots[i].ready_at = Some(cx.now);
            self.slots[i].failures = 0;
            self.slots[i].reason = None;
            self.set_state(cx, i, State::Done);
            return;
        }
        let exit = describe(status);
        let reason = kill_reason.unwrap_or_else(|| exit.clone());
        self.after_run(cx, i, clean, exit, reason);
    }

    /// A run ended without a stop request: restart, or settle as inactive
    /// or failed. `exit` is for the log, `reason` for status.
    pub(super) fn after_run(
        &mut self,
        cx: &mut Ctx,
        i: usize,
        clean: bool,
        exit: String,
        reason: String,
    ) {
        let unit = &self.units[i];
        let slot = &mut self.slots[i];
        let now = cx.now;
        let ran = now.saturating_sub(slot.started_at.unwrap_or(now));
        let ready_long = slot
            .ready_at
            .is_some_and(|ready| now.saturating_sub(ready) >= unit.start_limit_interval);
        if clean || ran > unit.restart_delay_max || ready_long {
            slot.failures = 0;
        }
        if !clean {
            slot.failures = slot.failures.saturating_add(1);
        }
        let restart = !self.shutting_down
            && match unit.restart {
                Restart::Never => false,
                Restart::OnFailure => !clean,
                Restart::Always => true,
            };
        if !restart {
            if clean {
                info!("unit {}: {exit}", unit.name);
                slot.reason = None;
                self.set_state(cx, i, State::Inactive);
            } else {
                warn!("unit {}: {exit}", unit.name);
                self.fail(cx, i, reason);
            }
            return;
        }
        let delay = backoff(unit.restart_delay, unit.restart_delay_max, slot.failures);
        let at = now.saturating_add(delay);
        if let Some(limit) = start_limit(unit, &mut slot.spawns, at) {
            warn!("unit {}: {exit}", unit.name);
            self.fail(cx, i, limit);
            return;
        }
        let (name, delay_text) = (&unit.name, fmt_duration(delay));
        if clean {
            info!("unit {name}: {exit}; restarting in {delay_text}");
            slot.reason = None;
        } else {
            warn!("unit {name}: {exit}; restarting in {delay_text}");
            slot.reason = Some(reason);
        }
        self.slots[i].restart_from = Some((now, delay));
        self.set_state(cx, i, State::Restarting);
        self.set_timer(i, at, Timer::Restart);
    }

    /// Failed for good.
    pub(super) fn fail(&mut self, cx: &mut Ctx, i: usize, reason: String) {
        warn!("unit {}: failed: {reason}", self.name(i));
        self.clear_timer(i);
        let slot = &mut self.slots[i];
        slot.reason = Some(reason.clone());
        slot.stop_pending = false;
        slot.stop_requested = false;
        slot.start_after_stop = false;
        self.set_state(cx, i, State::Failed);
        self.report_critical(cx, i, reason);
    }

    pub(super) fn report_critical(&mut self, cx: &mut Ctx, i: usize, reason: String) {
        if !self.units[i].critical || self.shutting_down || self.slots[i].critical_sent {
            return;
        }
        self.slots[i].critical_sent = true;
        cx.out.push(Action::Critical {
            unit: self.units[i].name.clone(),
            reason,
        });
    }
}

/// `restart_delay × 2^(failures−1)`, capped at `max`; `restart_delay`
/// after a clean exit (`failures` 0).
fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    base.checked_mul(1u32 << doublings)
        .unwrap_or(Duration::MAX)
        .min(max)
}

/// Whether one more spawn at `at` breaks the unit's start limit; drops
/// spawn times that left the window.
fn start_limit(unit: &Unit, spawns: &mut VecDeque<Duration>, at: Duration) -> Option<String> {
    let (burst, interval) = (unit.start_limit_burst, unit.start_limit_interval);
    if burst == 0 || interval.is_zero() {
        return None;
    }
    while spawns
        .front()
        .is_some_and(|&t| t.saturating_add(interval) <= at)
    {
        spawns.pop_front();
    }
    (spawns.len() >= burst as usize).then(|| {
        format!(
            "start limit hit ({burst} starts within {})",
            fmt_duration(interval)
        )
    })
}

/// `exited with status N` or `killed by signal N`.
fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("exited with status {code}"),
        ExitStatus::Signaled(signal, _) => format!("killed by signal {signal}"),
    }
}
