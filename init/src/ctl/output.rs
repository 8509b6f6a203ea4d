//! `liftoff ctl`'s output: pure functions from the response payloads to
//! text (docs/ctl.md shows every shape; tests in QEMU grep it, so changes
//! here are interface changes).

use std::fmt::Write as _;
use std::time::Duration;

use nix::sys::signal::Signal;
use units::supervisor::{ExitStatus, State, UnitStatus};

use super::protocol::SystemStatus;

/// What a missing value prints as.
const NONE: &str = "-";

/// A CLOCK_BOOTTIME instant as seconds since the kernel started, with
/// millisecond precision: `3.210s`.
pub fn seconds(at: Duration) -> String {
    format!("{}.{:03}s", at.as_secs(), at.subsec_millis())
}

/// The state's name, as on the wire (`running`, `restarting`, …).
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Inactive => "inactive",
        State::Waiting => "waiting",
        State::Starting => "starting",
        State::Running => "running",
        State::Done => "done",
        State::Restarting => "restarting",
        State::Stopping => "stopping",
        State::Failed => "failed",
    }
}

/// How a process ended: `status 1`, `signal 9 (SIGKILL)`,
/// `signal 11 (SIGSEGV, core dumped)`, `signal 40` for a signal without a
/// name.
pub fn exit(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("status {code}"),
        ExitStatus::Signaled(number, core) => {
            let name = Signal::try_from(number).ok().map(Signal::as_str);
            match (name, core) {
                (Some(name), false) => format!("signal {number} ({name})"),
                (Some(name), true) => format!("signal {number} ({name}, core dumped)"),
                (None, true) => format!("signal {number} (core dumped)"),
                (None, false) => format!("signal {number}"),
            }
        }
    }
}

/// Text a unit sent (`STATUS=`) or a reason quoting it, made safe for a
/// terminal: control characters (escape sequences, newlines) are shown
/// escaped instead of acted on.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `liftoff ctl list`: a header and one line per unit, columns aligned,
/// two spaces apart:
///
/// ```text
/// NAME  STATE    PID  RESTARTS  DESCRIPTION
/// web   running  123  0         a web server
/// ```
pub fn list(units: &[UnitStatus]) -> String {
    let header = ["NAME", "STATE", "PID", "RESTARTS", "DESCRIPTION"].map(str::to_owned);
    let rows: Vec<[String; 5]> = std::iter::once(header)
        .chain(units.iter().map(|u| {
            [
                printable(&u.name),
                state_name(u.state).to_owned(),
                u.main_pid
                    .map_or_else(|| NONE.to_owned(), |p| p.to_string()),
                u.restarts.to_string(),
                u.description
                    .as_deref()
                    .map_or_else(|| NONE.to_owned(), printable),
            ]
        }))
        .collect();
    let mut widths = [0usize; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `liftoff ctl status UNIT`:
///
/// ```text
/// web - a web server
///   state:     running since 3.210s
///   main pid:  123
///   restarts:  0
///   last exit: -
///   status:    -
///   reason:    -
///   started:   3.100s  ready: 3.210s
/// ```
///
/// After automatic restarts one more line tells how fast they came back
/// (exit to exec, the restart delay left out):
///
/// ```text
///   restart latency: last 1.204ms, mean 1.310ms, max 2.001ms (7 restarts)
/// ```
pub fn unit(u: &UnitStatus) -> String {
    let text = |value: Option<&String>| value.map_or_else(|| NONE.to_owned(), |t| printable(t));
    let time = |at: Option<Duration>| at.map_or_else(|| NONE.to_owned(), seconds);
    let mut out = printable(&u.name);
    if let Some(description) = &u.description {
        let _ = write!(out, " - {}", printable(description));
    }
    out.push('\n');
    let lines = [
        (
            "state",
            format!("{} since {}", state_name(u.state), seconds(u.since)),
        ),
        (
            "main pid",
            u.main_pid
                .map_or_else(|| NONE.to_owned(), |p| p.to_string()),
        ),
        ("restarts", u.restarts.to_string()),
        (
            "last exit",
            u.last_exit.map_or_else(|| NONE.to_owned(), exit),
        ),
        ("status", text(u.status_line.as_ref())),
        ("reason", text(u.reason.as_ref())),
        (
            "started",
            format!("{}  ready: {}", time(u.started_at), time(u.ready_at)),
        ),
    ];
    for (label, value) in lines {
        let _ = writeln!(out, "  {:<11}{value}", format!("{label}:"));
    }
    if let Some(l) = u.restart_latency.filter(|l| l.count > 0) {
        let _ = writeln!(
            out,
            "  restart latency: last {}, mean {}, max {} ({} restart{})",
            millis(l.last),
            millis(l.mean()),
            millis(l.max),
            l.count,
            if l.count == 1 { "" } else { "s" }
        );
    }
    out
}

/// A short duration in milliseconds with microsecond precision: `1.204ms`.
pub fn millis(d: Duration) -> String {
    format!("{}.{:03}ms", d.as_millis(), d.subsec_micros() % 1000)
}

/// `liftoff ctl status`: the boot's state, then [`list`]:
///
/// ```text
/// boot: complete at 4.512s
/// NAME  STATE    PID  RESTARTS  DESCRIPTION
/// …
/// ```
pub fn system(status: &SystemStatus) -> String {
    let boot = match status.boot_complete_at {
        Some(at) => format!("boot: complete at {}\n", seconds(at)),
        None => "boot: in progress\n".to_owned(),
    };
    boot + &list(&status.units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> UnitStatus {
        UnitStatus {
            name: "web".into(),
            description: Some("a web server".into()),
            state: State::Running,
            since: Duration::from_millis(3210),
            main_pid: Some(123),
            restarts: 0,
            last_exit: None,
            status_line: None,
            reason: None,
            started_at: Some(Duration::from_millis(3100)),
            ready_at: Some(Duration::from_millis(3210)),
            restart_latency: None,
        }
    }

    fn migrate() -> UnitStatus {
        UnitStatus {
            name: "db-migrate".into(),
            description: None,
            state: State::Failed,
            since: Duration::from_micros(12_345_678),
            main_pid: None,
            restarts: 12,
            last_exit: Some(ExitStatus::Exited(1)),
            status_line: Some("applying 0042\x1b[2J".into()),
            reason: Some("start limit: 5 starts in 10s".into()),
            started_at: Some(Duration::from_secs(12)),
            ready_at: None,
            restart_latency: None,
        }
    }

    #[test]
    fn seconds_have_three_decimals() {
        for (at, text) in [
            (Duration::ZERO, "0.000s"),
            (Duration::from_millis(3210), "3.210s"),
            (Duration::from_micros(4_512_999), "4.512s"),
            (Duration::from_secs(86_400), "86400.000s"),
        ] {
            assert_eq!(seconds(at), text);
        }
    }

    #[test]
    fn exits() {
        for (status, text) in [
            (ExitStatus::Exited(0), "status 0"),
            (ExitStatus::Exited(1), "status 1"),
            (ExitStatus::Signaled(9, false), "signal 9 (SIGKILL)"),
            (
                ExitStatus::Signaled(11, true),
                "signal 11 (SIGSEGV, core dumped)",
            ),
            (ExitStatus::Signaled(40, false), "signal 40"),
            (ExitStatus::Signaled(40, true), "signal 40 (core dumped)"),
        ] {
            assert_eq!(exit(status), text);
        }
    }

    #[test]
    fn state_names_are_the_wire_names() {
        for state in [
            State::Inactive,
            State::Waiting,
            State::Starting,
            State::Running,
            State::Done,
            State::Restarting,
            State::Stopping,
            State::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::from(state_name(state))
            );
        }
    }

    #[test]
    fn status_of_a_running_unit() {
        assert_eq!(
            unit(&web()),
            "\
web - a web server
  state:     running since 3.210s
  main pid:  123
  restarts:  0
  last exit: -
  status:    -
  reason:    -
  started:   3.100s  ready: 3.210s
"
        );
    }

    #[test]
    fn status_of_a_failed_unit() {
        assert_eq!(
            unit(&migrate()),
            "\
db-migrate
  state:     failed since 12.345s
  main pid:  -
  restarts:  12
  last exit: status 1
  status:    applying 0042\\u{1b}[2J
  reason:    start limit: 5 starts in 10s
  started:   12.000s  ready: -
"
        );
    }

    #[test]
    fn status_after_restarts_shows_their_latency() {
        let mut u = web();
        u.restart_latency = Some(units::supervisor::RestartLatency {
            count: 2,
            last: Duration::from_micros(1_204),
            min: Duration::from_micros(796),
            max: Duration::from_micros(1_204),
            total: Duration::from_micros(2_000),
        });
        assert!(
            unit(&u).ends_with(
                "  restart latency: last 1.204ms, mean 1.000ms, max 1.204ms (2 restarts)\n"
            ),
            "{}",
            unit(&u)
        );
    }

    #[test]
    fn list_aligns_columns() {
        assert_eq!(
            list(&[migrate(), web()]),
            "\
NAME        STATE    PID  RESTARTS  DESCRIPTION
db-migrate  failed   -    12        -
web         running  123  0         a web server
"
        );
        assert_eq!(list(&[]), "NAME  STATE  PID  RESTARTS  DESCRIPTION\n");
    }

    #[test]
    fn system_status() {
        let done = SystemStatus {
            boot_complete_at: Some(Duration::from_millis(4512)),
            units: vec![web()],
        };
        assert_eq!(
            system(&done),
            "\
boot: complete at 4.512s
NAME  STATE    PID  RESTARTS  DESCRIPTION
web   running  123  0         a web server
"
        );
        let booting = SystemStatus {
            boot_complete_at: None,
            units: Vec::new(),
        };
        assert!(system(&booting).starts_with("boot: in progress\nNAME"));
    }
}
