//! `liftoff notify`: send an sd_notify message from a shell script, as
//! `systemd-notify` does.
//!
//! ```text
//! liftoff notify [--ready] [--status TEXT] [--stopping] [--watchdog] [KEY=VALUE]...
//! ```
//!
//! The message goes to the datagram socket named by `$NOTIFY_SOCKET`, which
//! liftoff sets for `notify` units (a per-unit socket, so the message
//! counts for the unit whatever process sends it). A leading `@` names an
//! abstract socket, as in systemd.

use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use lexopt::Parser;

const USAGE: &str = "\
usage: liftoff notify [--ready] [--status TEXT] [--stopping] [--watchdog] [KEY=VALUE]...

Sends one sd_notify message to $NOTIFY_SOCKET: READY=1, STATUS=TEXT,
STOPPING=1, WATCHDOG=1 and any KEY=VALUE given. Exit 1 if the message cannot
be sent, 2 on a usage error.
";

/// The message the options ask for, one assignment per line.
pub fn message(
    ready: bool,
    status: Option<&str>,
    stopping: bool,
    watchdog: bool,
    assignments: &[String],
) -> String {
    let mut lines: Vec<String> = Vec::new();
    if ready {
        lines.push("READY=1".into());
    }
    if let Some(status) = status {
        lines.push(format!("STATUS={status}"));
    }
    if stopping {
        lines.push("STOPPING=1".into());
    }
    if watchdog {
        lines.push("WATCHDOG=1".into());
    }
    lines.extend(assignments.iter().cloned());
    lines.join("\n")
}

/// Runs `liftoff notify`; returns the exit status.
pub fn run(mut parser: Parser, out: &mut impl Write, err: &mut impl Write) -> i32 {
    use lexopt::prelude::*;
    let (mut ready, mut stopping, mut watchdog) = (false, false, false);
    let mut status: Option<String> = None;
    let mut assignments = Vec::new();
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return usage(err, &e.to_string()),
        };
        match arg {
            Long("ready") => ready = true,
            Long("stopping") => stopping = true,
            Long("watchdog") => watchdog = true,
            Long("status") => match parser.value().map(|v| v.string()) {
                Ok(Ok(text)) => status = Some(text),
                _ => return usage(err, "--status needs a UTF-8 value"),
            },
            Long("help") | Short('h') => {
                let _ = out.write_all(USAGE.as_bytes());
                return 0;
            }
            Value(value) => match value.into_string() {
                Ok(a) if a.contains('=') && !a.starts_with('=') && !a.contains('\n') => {
                    assignments.push(a)
                }
                Ok(a) => return usage(err, &format!("{a:?} is not KEY=VALUE")),
                Err(a) => return usage(err, &format!("{a:?} is not UTF-8")),
            },
            other => return usage(err, &other.unexpected().to_string()),
        }
    }
    let text = message(ready, status.as_deref(), stopping, watchdog, &assignments);
    if text.is_empty() {
        return usage(err, "nothing to send");
    }
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        let _ = writeln!(
            err,
            "liftoff notify: NOTIFY_SOCKET is not set (only type = \"notify\" units get one)"
        );
        return 1;
    };
    let socket = socket.to_string_lossy().into_owned();
    match send(&socket, text.as_bytes()) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "liftoff notify: cannot send to {socket}: {e}");
            1
        }
    }
}

/// Sends one datagram to `socket` (a path, or `@name` for an abstract
/// socket).
pub fn send(socket: &str, datagram: &[u8]) -> std::io::Result<()> {
    let sender = UnixDatagram::unbound()?;
    let address = match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(socket)?,
    };
    sender.send_to_addr(datagram, &address).map(drop)
}

fn usage(err: &mut impl Write, message: &str) -> i32 {
    let _ = writeln!(err, "liftoff notify: {message}\n\n{USAGE}");
    2
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn options_make_one_assignment_per_line() {
        let cases = [
            ("ready", (true, None, false, false, vec![]), "READY=1"),
            (
                "status and custom",
                (
                    false,
                    Some("loading"),
                    false,
                    false,
                    vec!["X=1".to_string()],
                ),
                "STATUS=loading\nX=1",
            ),
            (
                "everything",
                (true, Some("up"), true, true, vec![]),
                "READY=1\nSTATUS=up\nSTOPPING=1\nWATCHDOG=1",
            ),
        ];
        for (name, (r, s, st, w, a), want) in cases {
            assert_eq!(message(r, s, st, w, &a), want, "{name}");
        }
    }

    #[test]
    fn sends_to_the_socket_in_the_environment_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), b"READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for args in [vec![], vec!["READY"], vec!["--bogus"], vec!["=1"]] {
            let parser = Parser::from_args(args.iter().map(OsString::from));
            let (mut out, mut err) = (Vec::new(), Vec::new());
            assert_eq!(run(parser, &mut out, &mut err), 2, "{args:?}");
        }
    }
}
