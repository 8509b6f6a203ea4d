//! The orderly shutdown, as a state machine: events in, actions out.
//!
//! 1. stop the units: the supervisor stops them in reverse dependency
//!    order, each within its own stop timeout; [`UNITS_BOUND`] caps the
//!    whole step;
//! 2. SIGTERM to every process left (kill(-1)), then wait up to
//!    [`TERM_GRACE`] for all of PID 1's children to be gone;
//! 3. SIGKILL to whatever is left, then wait up to [`KILL_GRACE`] (a process
//!    stuck in uninterruptible sleep cannot be waited for forever);
//! 4. finish: sync, the unmount loop, remove dm devices, sync, reboot(2).
//!
//! An immediate request (systemd's SIGRTMIN+13..15) starts at step 3. A
//! second request while step 1 or 2 runs escalates to step 3 at once, as a
//! second ctrl-alt-delete does; the power action of the first request
//! stands.

use std::time::Duration;

use nix::sys::reboot::RebootMode;

/// The most the units' stop may take in all; each unit's own
/// `stop_timeout` (then SIGKILL) normally ends it much sooner.
pub const UNITS_BOUND: Duration = Duration::from_secs(120);
/// How long processes get to exit after SIGTERM.
pub const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long to wait for processes to die after SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// The final reboot(2) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// Restart the machine.
    Reboot,
    /// Switch it off.
    Poweroff,
    /// Stop the CPUs and leave the machine on.
    Halt,
}

impl Power {
    /// The reboot(2) command for this action.
    pub fn mode(self) -> RebootMode {
        match self {
            Power::Reboot => RebootMode::RB_AUTOBOOT,
            Power::Poweroff => RebootMode::RB_POWER_OFF,
            Power::Halt => RebootMode::RB_HALT_SYSTEM,
        }
    }

    /// The action's name, as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Power::Reboot => "reboot",
            Power::Poweroff => "poweroff",
            Power::Halt => "halt",
        }
    }
}

impl From<kernel_cmdline::FailureAction> for Power {
    fn from(action: kernel_cmdline::FailureAction) -> Self {
        use kernel_cmdline::FailureAction as F;
        match action {
            F::Reboot => Power::Reboot,
            F::Poweroff => Power::Poweroff,
            F::Halt => Power::Halt,
        }
    }
}

/// A request to bring the machine down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// What to do at the end.
    pub power: Power,
    /// Skip the SIGTERM grace period.
    pub immediate: bool,
}

/// Something the shutdown is waiting for happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A shutdown was requested (the first one, or another during one).
    Requested(Request),
    /// PID 1 has no children left.
    NoChildren,
    /// The armed timer expired.
    TimerExpired,
    /// Every unit is stopped (the supervisor's `AllStopped`).
    UnitsStopped,
}

/// What PID 1 must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Tell the supervisor to stop every unit; [`Event::UnitsStopped`]
    /// follows.
    StopUnits,
    /// Send this signal to every process but PID 1 (kill(-1, sig)).
    SignalAll(nix::sys::signal::Signal),
    /// Arm the timer; [`Event::TimerExpired`] follows unless disarmed.
    ArmTimer(Duration),
    /// Check for children now: report [`Event::NoChildren`] if there are none.
    CheckChildren,
    /// Sync, unmount, reboot(2) with this action. Nothing follows.
    Finish(Power),
}

/// Where the shutdown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Running normally.
    Running,
    /// The units are being stopped.
    StoppingUnits(Power),
    /// SIGTERM sent, waiting.
    Terminating(Power),
    /// SIGKILL sent, waiting.
    Killing(Power),
    /// Finished: reboot(2) is being called.
    Done(Power),
}

/// The shutdown state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    phase: Phase,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            phase: Phase::Running,
        }
    }
}

impl Shutdown {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Feeds one event; returns the actions to carry out in order.
    pub fn on(&mut self, event: Event) -> Vec<Action> {
        match (self.phase, event) {
            (Phase::Running, Event::Requested(r)) if r.immediate => self.kill(r.power),
            (Phase::Running, Event::Requested(r)) => {
                self.phase = Phase::StoppingUnits(r.power);
                vec![Action::StopUnits, Action::ArmTimer(UNITS_BOUND)]
            }
            (Phase::StoppingUnits(power), Event::UnitsStopped | Event::TimerExpired) => {
                self.phase = Phase::Terminating(power);
                vec![
                    Action::SignalAll(nix::sys::signal::Signal::SIGTERM),
                    Action::ArmTimer(TERM_GRACE),
                    Action::CheckChildren,
                ]
            }
            (Phase::StoppingUnits(power) | Phase::Terminating(power), Event::Requested(_))
            | (Phase::Terminating(power), Event::TimerExpired) => self.kill(power),
            (Phase::Terminating(power) | Phase::Killing(power), Event::NoChildren)
            | (Phase::Killing(power), Event::TimerExpired) => {
                self.phase = Phase::Done(power);
                vec![Action::Finish(power)]
            }
            // Children come and go while running; requests during the final
            // kill or after the end change nothing.
            (Phase::Running, Event::NoChildren | Event::TimerExpired | Event::UnitsStopped)
            | (Phase::StoppingUnits(_), Event::NoChildren)
            | (Phase::Terminating(_) | Phase::Killing(_), Event::UnitsStopped)
            | (Phase::Killing(_), Event::Requested(_))
            | (Phase::Done(_), _) => Vec::new(),
        }
    }

    fn kill(&mut self, power: Power) -> Vec<Action> {
        self.phase = Phase::Killing(power);
        vec![
            Action::SignalAll(nix::sys::signal::Signal::SIGKILL),
            Action::ArmTimer(KILL_GRACE),
            Action::CheckChildren,
        ]
    }
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::Signal::{SIGKILL, SIGTERM};

    use super::*;

    const REBOOT: Request = Request {
        power: Power::Reboot,
        immediate: false,
    };
    const POWEROFF_NOW: Request = Request {
        power: Power::Poweroff,
        immediate: true,
    };

    fn run(events: &[Event]) -> (Vec<Vec<Action>>, Phase) {
        let mut s = Shutdown::default();
        let actions = events.iter().map(|e| s.on(*e)).collect();
        (actions, s.phase())
    }

    #[test]
    fn orderly_when_everything_exits_on_sigterm() {
        let (actions, phase) = run(&[
            Event::Requested(REBOOT),
            Event::NoChildren,
            Event::UnitsStopped,
            Event::NoChildren,
        ]);
        assert_eq!(
            actions,
            vec![
                vec![Action::StopUnits, Action::ArmTimer(UNITS_BOUND)],
                // Children may be gone before the units say they are
                // stopped: the units' step still runs to its end.
                vec![],
                vec![
                    Action::SignalAll(SIGTERM),
                    Action::ArmTimer(TERM_GRACE),
                    Action::CheckChildren
                ],
                vec![Action::Finish(Power::Reboot)],
            ]
        );
        assert_eq!(phase, Phase::Done(Power::Reboot));
    }

    #[test]
    fn units_that_overrun_the_bound_are_left_to_sigterm() {
        let (actions, phase) = run(&[Event::Requested(REBOOT), Event::TimerExpired]);
        assert_eq!(actions[1][0], Action::SignalAll(SIGTERM));
        assert_eq!(phase, Phase::Terminating(Power::Reboot));
    }

    #[test]
    fn sigkill_after_the_grace_period() {
        let (actions, phase) = run(&[
            Event::Requested(REBOOT),
            Event::UnitsStopped,
            Event::TimerExpired,
            Event::NoChildren,
        ]);
        assert_eq!(
            actions[2],
            vec![
                Action::SignalAll(SIGKILL),
                Action::ArmTimer(KILL_GRACE),
                Action::CheckChildren
            ]
        );
        assert_eq!(actions[3], vec![Action::Finish(Power::Reboot)]);
        assert_eq!(phase, Phase::Done(Power::Reboot));
    }

    #[test]
    fn unkillable_processes_do_not_block_the_end() {
        let (actions, _) = run(&[
            Event::Requested(REBOOT),
            Event::TimerExpired,
            Event::TimerExpired,
            Event::TimerExpired,
        ]);
        assert_eq!(actions[3], vec![Action::Finish(Power::Reboot)]);
    }

    #[test]
    fn immediate_request_skips_sigterm() {
        let (actions, phase) = run(&[Event::Requested(POWEROFF_NOW)]);
        assert_eq!(actions[0][0], Action::SignalAll(SIGKILL));
        assert_eq!(phase, Phase::Killing(Power::Poweroff));
    }

    #[test]
    fn second_request_escalates_but_keeps_the_first_action() {
        let poweroff = Request {
            power: Power::Poweroff,
            immediate: false,
        };
        let (actions, phase) = run(&[Event::Requested(REBOOT), Event::Requested(poweroff)]);
        assert_eq!(actions[1][0], Action::SignalAll(SIGKILL));
        assert_eq!(phase, Phase::Killing(Power::Reboot));
        let (actions, phase) = run(&[
            Event::Requested(REBOOT),
            Event::UnitsStopped,
            Event::Requested(poweroff),
        ]);
        assert_eq!(actions[2][0], Action::SignalAll(SIGKILL));
        assert_eq!(phase, Phase::Killing(Power::Reboot));
    }

    #[test]
    fn nothing_happens_while_running_or_after_the_end() {
        let (actions, phase) = run(&[Event::NoChildren, Event::TimerExpired, Event::UnitsStopped]);
        assert!(actions.iter().all(Vec::is_empty));
        assert_eq!(phase, Phase::Running);
        let (actions, _) = run(&[
            Event::Requested(POWEROFF_NOW),
            Event::NoChildren,
            Event::Requested(REBOOT),
        ]);
        assert!(actions[2].is_empty());
    }

    #[test]
    fn power_modes() {
        assert_eq!(Power::Reboot.mode(), RebootMode::RB_AUTOBOOT);
        assert_eq!(Power::Poweroff.mode(), RebootMode::RB_POWER_OFF);
        assert_eq!(Power::Halt.mode(), RebootMode::RB_HALT_SYSTEM);
    }
}
