//! The sd_notify protocol: parsing what a unit sends on `NOTIFY_SOCKET`.
//!
//! A datagram is newline-separated `KEY=VALUE` assignments (sd_notify(3)).
//! Only the keys the supervisor acts on are kept; every other line —
//! unknown keys, a missing `=`, invalid UTF-8, a value that does not parse —
//! is skipped on its own, so one bad line never hides the good ones (a
//! sender may add keys freely, and the datagram is untrusted input).
//! File descriptor passing (`FDSTORE=1`) is left out.
//!
//! INTERFACE CONTRACT (shared with the supervisor and init): keep the
//! public names; add, don't rename.

use crate::supervisor::Pid;

/// One notify datagram: newline-separated `KEY=VALUE` assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// `READY=1`.
    pub ready: bool,
    /// `STOPPING=1`.
    pub stopping: bool,
    /// `WATCHDOG=1`.
    pub watchdog: bool,
    /// `STATUS=…`.
    pub status: Option<String>,
    /// `MAINPID=…`: a positive decimal pid; anything else is skipped.
    pub main_pid: Option<Pid>,
    /// `WATCHDOG=trigger`: the service found an internal error and asks to
    /// be handled as if its watchdog had expired (sd_notify(3)).
    pub watchdog_trigger: bool,
}

impl Notify {
    /// Parses one datagram; unknown and malformed assignments are skipped
    /// (sd_notify senders add keys freely). When a key repeats, the last
    /// valid assignment wins.
    pub fn parse(datagram: &[u8]) -> Notify {
        let mut notify = Notify::default();
        for line in datagram.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match (key, value) {
                ("READY", "1") => notify.ready = true,
                ("STOPPING", "1") => notify.stopping = true,
                ("WATCHDOG", "1") => notify.watchdog = true,
                ("WATCHDOG", "trigger") => notify.watchdog_trigger = true,
                ("STATUS", text) => notify.status = Some(text.to_owned()),
                ("MAINPID", pid) => {
                    if let Some(pid) = parse_pid(pid) {
                        notify.main_pid = Some(pid);
                    }
                }
                _ => {}
            }
        }
        notify
    }
}

/// A positive decimal pid: digits only (no sign, no spaces), at least 1,
/// within `Pid`.
fn parse_pid(text: &str) -> Option<Pid> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<Pid>().ok().filter(|&pid| pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Notify)) -> Notify {
        let mut n = Notify::default();
        f(&mut n);
        n
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, &[u8], Notify)> = vec![
            ("empty", b"", Notify::default()),
            ("ready", b"READY=1", with(|n| n.ready = true)),
            ("ready with newline", b"READY=1\n", with(|n| n.ready = true)),
            ("ready not 1", b"READY=0", Notify::default()),
            ("stopping", b"STOPPING=1", with(|n| n.stopping = true)),
            ("watchdog", b"WATCHDOG=1", with(|n| n.watchdog = true)),
            (
                "watchdog trigger",
                b"WATCHDOG=trigger",
                with(|n| n.watchdog_trigger = true),
            ),
            (
                "status",
                b"STATUS=Serving 3 clients",
                with(|n| n.status = Some("Serving 3 clients".into())),
            ),
            (
                "status with equals",
                b"STATUS=a=b",
                with(|n| n.status = Some("a=b".into())),
            ),
            (
                "empty status",
                b"STATUS=",
                with(|n| n.status = Some(String::new())),
            ),
            (
                "mainpid",
                b"MAINPID=4242",
                with(|n| n.main_pid = Some(4242)),
            ),
            ("mainpid zero", b"MAINPID=0", Notify::default()),
            ("mainpid negative", b"MAINPID=-5", Notify::default()),
            ("mainpid plus", b"MAINPID=+5", Notify::default()),
            ("mainpid garbage", b"MAINPID=12abc", Notify::default()),
            ("mainpid space", b"MAINPID= 12", Notify::default()),
            (
                "mainpid overflow",
                b"MAINPID=99999999999",
                Notify::default(),
            ),
            ("mainpid empty", b"MAINPID=", Notify::default()),
            (
                "several",
                b"READY=1\nSTATUS=up\nMAINPID=7\nWATCHDOG=1",
                with(|n| {
                    n.ready = true;
                    n.status = Some("up".into());
                    n.main_pid = Some(7);
                    n.watchdog = true;
                }),
            ),
            (
                "unknown keys skipped",
                b"FDSTORE=1\nX_CUSTOM=2\nREADY=1",
                with(|n| n.ready = true),
            ),
            (
                "no equals",
                b"READY\nSTOPPING=1",
                with(|n| n.stopping = true),
            ),
            ("lower-case key", b"ready=1", Notify::default()),
            (
                "invalid utf-8 line skipped",
                b"STATUS=\xff\xfe\nREADY=1",
                with(|n| n.ready = true),
            ),
            (
                "last status wins",
                b"STATUS=a\nSTATUS=b",
                with(|n| n.status = Some("b".into())),
            ),
            (
                "bad mainpid keeps earlier good one",
                b"MAINPID=3\nMAINPID=x",
                with(|n| n.main_pid = Some(3)),
            ),
            ("crlf not stripped", b"READY=1\r\n", Notify::default()),
        ];
        for (name, input, want) in cases {
            assert_eq!(Notify::parse(input), want, "case {name}");
        }
    }
}
