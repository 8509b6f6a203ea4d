//! Stopping units: stop and restart requests (dependents first) and
//! shutdown (reverse dependency order).

use std::collections::HashSet;

use log::{debug, info};

use super::{Action, Ctx, Link, State, Supervisor, Timer, is_down};

impl Supervisor {
    /// Stops `root` and, first, every active unit that requires it
    /// (recursively); with `restart`, starts them all again once down.
    pub(super) fn request_stop(&mut self, cx: &mut Ctx, root: usize, restart: bool) {
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        let mut members = Vec::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) || matches!(self.slots[i].state, State::Inactive | State::Failed) {
                continue;
            }
            members.push(i);
            for &(d, link) in &self.dependents[i] {
                if link == Link::Requires {
                    stack.push(d);
                }
            }
        }
        if members.is_empty() {
            debug!("unit {}: not active, nothing to stop", self.name(root));
        }
        members.sort_unstable();
        for &i in &members {
            let slot = &mut self.slots[i];
            slot.stop_requested = true;
            slot.start_after_stop = restart;
            match slot.state {
                State::Waiting | State::Restarting | State::Done => self.stopped(cx, i),
                _ => slot.stop_pending = true,
            }
        }
        for &i in &members {
            self.try_stop(cx, i);
        }
    }

    /// Sends the stop signal to a unit waiting for it, once no unit that
    /// has it as a prerequisite is still being stopped.
    pub(super) fn try_stop(&mut self, cx: &mut Ctx, i: usize) {
        if !self.slots[i].stop_pending {
            return;
        }
        let blocked = self.dependents[i].iter().any(|&(d, _)| {
            let slot = &self.slots[d];
            slot.stop_requested && !is_down(slot.state)
        });
        if blocked {
            return;
        }
        let slot = &mut self.slots[i];
        let Some(pid) = slot.main_pid else {
            if !slot.spawning {
                // Gone meanwhile; nothing to signal.
                slot.stop_pending = false;
            }
            return;
        };
        slot.stop_pending = false;
        if slot.signalled {
            return;
        }
        slot.signalled = true;
        let unit = &self.units[i];
        info!("unit {}: stopping", unit.name);
        cx.out.push(Action::Kill {
            unit: unit.name.clone(),
            pid,
            signal: unit.stop_signal,
            mode: unit.kill_mode,
        });
        let at = cx.now.saturating_add(unit.stop_timeout);
        self.set_state(cx, i, State::Stopping);
        self.set_timer(i, at, Timer::Kill);
    }

    /// Down after a stop request.
    pub(super) fn stopped(&mut self, cx: &mut Ctx, i: usize) {
        self.clear_timer(i);
        let slot = &mut self.slots[i];
        slot.stop_requested = false;
        slot.stop_pending = false;
        slot.reason = None;
        info!("unit {}: stopped", self.units[i].name);
        self.set_state(cx, i, State::Inactive);
    }

    pub(super) fn on_shutdown(&mut self, cx: &mut Ctx) {
        if self.shutting_down {
            return;
        }
        info!("shutdown: stopping every unit");
        self.shutting_down = true;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            slot.start_after_stop = false;
            match slot.state {
                State::Waiting | State::Restarting => {
                    slot.stop_requested = true;
                    self.stopped(cx, i);
                }
                State::Starting | State::Running | State::Stopping => {
                    slot.stop_requested = true;
                    slot.stop_pending = true;
                }
                State::Inactive | State::Failed | State::Done => {}
            }
        }
        for i in 0..self.slots.len() {
            self.try_stop(cx, i);
        }
    }
}
