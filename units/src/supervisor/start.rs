//! Starting units: boot, start and restart requests, pulling in
//! prerequisites, and the spawn handshake.

use std::collections::HashSet;

use log::{debug, info, warn};

use super::{Action, Ctx, Link, Pid, RestartLatency, State, Supervisor, Timer};
use crate::unit::{Boot, Kind};

impl Supervisor {
    pub(super) fn on_boot(&mut self, cx: &mut Ctx) {
        if self.booted {
            warn!("boot: already booted, ignored");
            return;
        }
        let roots: Vec<usize> = (0..self.units.len())
            .filter(|&i| matches!(self.units[i].boot, Boot::Wait | Boot::Start))
            .collect();
        self.activate(cx, &roots);
        for &i in &roots {
            if self.units[i].boot != Boot::Wait {
                continue;
            }
            match self.slots[i].state {
                State::Running | State::Done | State::Inactive => {}
                State::Failed => self.boot_failed.push(self.units[i].name.clone()),
                _ => {
                    self.slots[i].boot_pending = true;
                    self.boot_waiting += 1;
                }
            }
        }
        self.booted = true;
    }

    pub(super) fn on_start(&mut self, cx: &mut Ctx, i: usize) {
        match self.slots[i].state {
            State::Inactive | State::Failed => self.activate(cx, &[i]),
            _ if self.slots[i].stop_requested => {
                if self.refuse_when_shutting_down(i) {
                    return;
                }
                self.slots[i].start_after_stop = true;
            }
            _ => debug!("unit {}: already active", self.name(i)),
        }
    }

    pub(super) fn on_restart(&mut self, cx: &mut Ctx, i: usize) {
        if self.refuse_when_shutting_down(i) {
            return;
        }
        match self.slots[i].state {
            State::Inactive | State::Failed => self.activate(cx, &[i]),
            _ => self.request_stop(cx, i, true),
        }
    }

    pub(super) fn refuse_when_shutting_down(&self, i: usize) -> bool {
        if self.shutting_down {
            warn!("unit {}: not started: shutting down", self.name(i));
        }
        self.shutting_down
    }

    /// Starts `roots` and what they require or want: every inactive or
    /// failed one goes to Waiting (with its counters reset), then each
    /// is spawned if it can be.
    pub(super) fn activate(&mut self, cx: &mut Ctx, roots: &[usize]) {
        if let Some(&first) = roots.first()
            && self.refuse_when_shutting_down(first)
        {
            return;
        }
        let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
        let mut waiting = Vec::new();
        let mut broken_seen = HashSet::new();
        while let Some(i) = stack.pop() {
            if let Some(reason) = self.slots[i].broken.clone() {
                if broken_seen.insert(i) {
                    warn!("unit {}: failed: {reason}", self.name(i));
                    self.report_critical(cx, i, reason);
                }
                continue;
            }
            if self.slots[i].stop_requested {
                // Being stopped: start again once down.
                self.slots[i].start_after_stop = true;
                continue;
            }
            if !matches!(self.slots[i].state, State::Inactive | State::Failed) {
                continue;
            }
            let slot = &mut self.slots[i];
            slot.failures = 0;
            slot.spawns.clear();
            slot.restart_from = None;
            slot.restarts = 0;
            slot.reason = None;
            slot.status_line = None;
            slot.critical_sent = false;
            self.set_state(cx, i, State::Waiting);
            waiting.push(i);
            for &(p, link) in self.prereqs[i].iter().rev() {
                if link != Link::Order {
                    stack.push(p);
                }
            }
        }
        waiting.sort_unstable();
        for i in waiting {
            self.try_spawn(cx, i);
        }
    }

    /// Spawns a waiting unit whose prerequisites are settled, or fails it
    /// if a required one failed.
    pub(super) fn try_spawn(&mut self, cx: &mut Ctx, i: usize) {
        if self.slots[i].state != State::Waiting {
            return;
        }
        if let Some(name) = self.missing[i].first() {
            let reason = format!("requires {name:?}, which does not exist");
            self.fail(cx, i, reason);
            return;
        }
        let mut blocked = false;
        for &(p, link) in &self.prereqs[i] {
            let slot = &self.slots[p];
            if slot.stop_requested {
                blocked = true;
                continue;
            }
            match (slot.state, link) {
                (State::Running | State::Done, _) => {}
                (State::Failed | State::Inactive, Link::Wants | Link::Order) => {}
                (State::Failed, Link::Requires) => {
                    let reason = format!("requires {:?}, which failed", self.units[p].name);
                    self.fail(cx, i, reason);
                    return;
                }
                (State::Inactive, Link::Requires) => {
                    let reason = format!("requires {:?}, which is inactive", self.units[p].name);
                    self.fail(cx, i, reason);
                    return;
                }
                _ => blocked = true,
            }
        }
        if !blocked {
            self.spawn(cx, i);
        }
    }

    pub(super) fn spawn(&mut self, cx: &mut Ctx, i: usize) {
        self.clear_timer(i);
        let slot = &mut self.slots[i];
        slot.spawning = true;
        slot.started_at = Some(cx.now);
        slot.ready_at = None;
        slot.spawns.push_back(cx.now);
        self.set_state(cx, i, State::Starting);
        cx.out.push(Action::Spawn(self.units[i].name.clone()));
    }

    pub(super) fn on_spawned(&mut self, cx: &mut Ctx, i: usize, pid: Pid) {
        if !self.slots[i].spawning {
            warn!(
                "unit {}: spawned (pid {pid}) without a spawn, ignored",
                self.name(i)
            );
            return;
        }
        info!("unit {}: started (pid {pid})", self.name(i));
        let slot = &mut self.slots[i];
        if let Some((exited, delay)) = slot.restart_from.take() {
            let latency = cx.now.saturating_sub(exited).saturating_sub(delay);
            slot.restart_latency
                .get_or_insert_with(RestartLatency::default)
                .record(latency);
        }
        slot.spawning = false;
        slot.main_pid = Some(pid);
        slot.signalled = false;
        slot.kill_reason = None;
        self.pids.insert(pid, i);
        if self.slots[i].stop_requested {
            // Stopped while the spawn was under way: never ready.
            self.try_stop(cx, i);
            return;
        }
        let unit = &self.units[i];
        match (unit.kind, unit.ready_timeout) {
            (Kind::Simple, _) => self.become_ready(cx, i),
            (Kind::Notify | Kind::Oneshot, Some(timeout)) => {
                let from = self.slots[i].started_at.unwrap_or(cx.now);
                self.set_timer(i, from.saturating_add(timeout), Timer::Ready);
            }
            (Kind::Notify | Kind::Oneshot, None) => {}
        }
    }

    pub(super) fn become_ready(&mut self, cx: &mut Ctx, i: usize) {
        info!("unit {}: ready", self.name(i));
        self.slots[i].ready_at = Some(cx.now);
        self.set_state(cx, i, State::Running);
        match self.units[i].watchdog {
            Some(period) => self.set_timer(i, cx.now.saturating_add(period), Timer::Watchdog),
            None => self.clear_timer(i),
        }
    }

    pub(super) fn on_spawn_failed(&mut self, cx: &mut Ctx, i: usize, error: String) {
        if !self.slots[i].spawning {
            warn!(
                "unit {}: spawn failure without a spawn, ignored",
                self.name(i)
            );
            return;
        }
        self.slots[i].spawning = false;
        self.slots[i].restart_from = None;
        cx.out.push(Action::Cleanup(self.units[i].name.clone()));
        if self.slots[i].stop_requested {
            self.stopped(cx, i);
            return;
        }
        let reason = format!("cannot start: {error}");
        self.after_run(cx, i, false, reason.clone(), reason);
    }
}
