//! What PID 1 does with a request: a pure decision the driver carries out
//! (STYLE.md, "Plan, then execute"). Queries are answered from the
//! supervisor's state; commands become a supervisor [`Input`] or a
//! shutdown, each with the sentence the client prints.

use std::time::Duration;

use units::supervisor::{Input, Supervisor, UnitStatus};

use super::protocol::{Payload, Request, Response, SystemStatus};
use crate::shutdown::Power;

/// The unit state a request can look at; [`Supervisor`] in PID 1.
pub trait UnitQuery {
    /// One unit's status; `None` for an unknown unit.
    fn status(&self, name: &str) -> Option<UnitStatus>;
    /// Every unit's status, by name.
    fn list(&self) -> Vec<UnitStatus>;
}

impl UnitQuery for Supervisor {
    fn status(&self, name: &str) -> Option<UnitStatus> {
        Supervisor::status(self, name)
    }

    fn list(&self) -> Vec<UnitStatus> {
        Supervisor::list(self)
    }
}

/// What the driver must do for a request, and the answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// Only answer.
    Answer(Response),
    /// Feed the input to the supervisor, and answer.
    Supervise(Input, Response),
    /// Answer, then begin the orderly shutdown with this power action (as
    /// for a signal: `shutdown::Request { power, immediate: false }`).
    /// Answering first lets the answer leave before SIGTERM reaches the
    /// client.
    Shutdown(Power, Response),
}

/// Decides what `request` means, given the units and when the boot
/// completed.
pub fn dispatch(
    request: Request,
    units: &impl UnitQuery,
    boot_complete_at: Option<Duration>,
) -> Dispatch {
    let known = |unit: &str| units.status(unit).is_some();
    match request {
        Request::List => Dispatch::Answer(Response::Ok(Payload::Units(units.list()))),
        Request::Status { unit: None } => {
            Dispatch::Answer(Response::Ok(Payload::System(SystemStatus {
                boot_complete_at,
                units: units.list(),
            })))
        }
        Request::Status { unit: Some(unit) } => Dispatch::Answer(match units.status(&unit) {
            Some(status) => Response::Ok(Payload::Unit(Box::new(status))),
            None => Response::unknown_unit(&unit),
        }),
        Request::Start { unit } if known(&unit) => Dispatch::Supervise(
            Input::Start(unit.clone()),
            Response::message(format!("starting {unit}")),
        ),
        Request::Stop { unit } if known(&unit) => Dispatch::Supervise(
            Input::Stop(unit.clone()),
            Response::message(format!("stopping {unit}")),
        ),
        Request::Restart { unit } if known(&unit) => Dispatch::Supervise(
            Input::Restart(unit.clone()),
            Response::message(format!("restarting {unit}")),
        ),
        Request::Start { unit } | Request::Stop { unit } | Request::Restart { unit } => {
            Dispatch::Answer(Response::unknown_unit(&unit))
        }
        Request::Reboot => Dispatch::Shutdown(Power::Reboot, Response::message("rebooting")),
        Request::Poweroff => Dispatch::Shutdown(Power::Poweroff, Response::message("powering off")),
        Request::Halt => Dispatch::Shutdown(Power::Halt, Response::message("halting")),
    }
}

#[cfg(test)]
mod tests {
    use units::supervisor::State;

    use super::*;

    struct Units(Vec<UnitStatus>);

    impl UnitQuery for Units {
        fn status(&self, name: &str) -> Option<UnitStatus> {
            self.0.iter().find(|u| u.name == name).cloned()
        }
        fn list(&self) -> Vec<UnitStatus> {
            self.0.clone()
        }
    }

    fn web() -> UnitStatus {
        UnitStatus {
            name: "web".into(),
            description: None,
            state: State::Running,
            since: Duration::from_secs(3),
            main_pid: Some(7),
            restarts: 0,
            last_exit: None,
            status_line: None,
            reason: None,
            started_at: None,
            ready_at: None,
            restart_latency: None,
        }
    }

    #[test]
    fn requests_map_to_actions() {
        let units = Units(vec![web()]);
        let boot = Some(Duration::from_millis(4512));
        let web = |s: &str| s.to_owned();
        let cases = [
            (
                "list",
                Request::List,
                Dispatch::Answer(Response::Ok(Payload::Units(vec![self::web()]))),
            ),
            (
                "system status",
                Request::Status { unit: None },
                Dispatch::Answer(Response::Ok(Payload::System(SystemStatus {
                    boot_complete_at: boot,
                    units: vec![self::web()],
                }))),
            ),
            (
                "unit status",
                Request::Status {
                    unit: Some(web("web")),
                },
                Dispatch::Answer(Response::Ok(Payload::Unit(Box::new(self::web())))),
            ),
            (
                "unknown status",
                Request::Status {
                    unit: Some(web("nope")),
                },
                Dispatch::Answer(Response::error("unknown unit \"nope\"")),
            ),
            (
                "start",
                Request::Start { unit: web("web") },
                Dispatch::Supervise(Input::Start(web("web")), Response::message("starting web")),
            ),
            (
                "stop",
                Request::Stop { unit: web("web") },
                Dispatch::Supervise(Input::Stop(web("web")), Response::message("stopping web")),
            ),
            (
                "restart",
                Request::Restart { unit: web("web") },
                Dispatch::Supervise(
                    Input::Restart(web("web")),
                    Response::message("restarting web"),
                ),
            ),
            (
                "stop unknown",
                Request::Stop { unit: web("nope") },
                Dispatch::Answer(Response::error("unknown unit \"nope\"")),
            ),
            (
                "reboot",
                Request::Reboot,
                Dispatch::Shutdown(Power::Reboot, Response::message("rebooting")),
            ),
            (
                "poweroff",
                Request::Poweroff,
                Dispatch::Shutdown(Power::Poweroff, Response::message("powering off")),
            ),
            (
                "halt",
                Request::Halt,
                Dispatch::Shutdown(Power::Halt, Response::message("halting")),
            ),
        ];
        for (name, request, expected) in cases {
            assert_eq!(dispatch(request, &units, boot), expected, "{name}");
        }
    }
}
