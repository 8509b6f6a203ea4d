//! `liftoff ctl`: the client half. Sends one request, prints the answer.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{Envelope, Payload, Request, Response};
use super::{CONTROL_SOCKET, CtlError, output};
use crate::cli::{PathJson, PathJsonCommand};

/// The usage text of `liftoff ctl`.
pub const USAGE: &str = "\
usage: liftoff ctl [--socket PATH] [--json] <command> [UNIT]

Ask the running liftoff (PID 1) about its units, or tell it what to do.
Root only.

  list            every unit: name, state, main pid, restarts, description
  status [UNIT]   one unit in detail; without UNIT, the boot and every unit
  start UNIT      start a unit (and what it requires)
  stop UNIT       stop a unit
  restart UNIT    stop, then start a unit
  reboot          orderly shutdown, then reboot
  poweroff        orderly shutdown, then power off
  halt            orderly shutdown, then halt

  --socket PATH   the control socket (default /run/liftoff/control)
  --json          print the answer's payload as JSON

Exit status: 0 done, 1 refused or liftoff unreachable, 2 usage error.
";

/// How long to wait for liftoff's answer. PID 1 answers from its event
/// loop at once; this only keeps a wedged PID 1 from hanging scripts.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// `liftoff ctl`'s options.
const CTL: PathJsonCommand = PathJsonCommand {
    name: "liftoff ctl",
    usage: USAGE,
    path_option: "socket",
    default_path: CONTROL_SOCKET,
};

/// Sends `request` to the control socket at `path` and returns the answer.
pub fn request(path: &Path, request: &Request, timeout: Duration) -> Result<Response, CtlError> {
    let mut stream = UnixStream::connect(path).map_err(|source| CtlError::Connect {
        path: path.to_owned(),
        source,
    })?;
    let timeouts = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)));
    timeouts.map_err(|source| CtlError::Send {
        path: path.to_owned(),
        source,
    })?;
    let bytes = serde_json::to_vec(&Envelope::new(request.clone())).map_err(CtlError::Encode)?;
    // The request, then end-of-file: the server answers once it sees EOF.
    // A server that refused us at once (not root, busy) may have closed
    // already: its answer is still there to read.
    let sent = stream
        .write_all(&bytes)
        .and_then(|()| stream.shutdown(Shutdown::Write));
    match sent {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) => {}
        Err(source) => {
            return Err(CtlError::Send {
                path: path.to_owned(),
                source,
            });
        }
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A server that closes with our request unread resets the
            // connection after its answer (unix_release_sock).
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !answer.is_empty() => break,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(CtlError::Timeout {
                    path: path.to_owned(),
                    after: timeout,
                });
            }
            Err(source) => {
                return Err(CtlError::Receive {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    serde_json::from_slice(&answer).map_err(|source| CtlError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Runs `liftoff ctl` with the arguments after `ctl`; returns the exit
/// status.
pub fn run(mut parser: lexopt::Parser, out: &mut impl Write, err: &mut impl Write) -> i32 {
    let PathJson {
        path: socket,
        json,
        command: request,
    } = match CTL.parse(&mut parser, out, err, parse_words) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    match self::request(&socket, &request, TIMEOUT) {
        Ok(Response::Ok(payload)) => {
            let text = if json {
                match serde_json::to_string_pretty(&payload) {
                    Ok(text) => text + "\n",
                    Err(e) => {
                        let _ = writeln!(err, "liftoff ctl: cannot encode the answer: {e}");
                        return 1;
                    }
                }
            } else {
                render(&payload)
            };
            let _ = out.write_all(text.as_bytes());
            0
        }
        Ok(Response::Error(message)) => {
            let _ = writeln!(err, "liftoff ctl: {message}");
            1
        }
        Err(e) => {
            let _ = writeln!(err, "liftoff ctl: {}", describe(&e));
            1
        }
    }
}

/// The request the command words name.
pub fn parse_words(words: &[String]) -> Result<Request, String> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let unit = |unit: &str| unit.to_owned();
    match words.as_slice() {
        ["list"] => Ok(Request::List),
        ["status"] => Ok(Request::Status { unit: None }),
        ["status", u] => Ok(Request::Status {
            unit: Some(unit(u)),
        }),
        ["start", u] => Ok(Request::Start { unit: unit(u) }),
        ["stop", u] => Ok(Request::Stop { unit: unit(u) }),
        ["restart", u] => Ok(Request::Restart { unit: unit(u) }),
        ["reboot"] => Ok(Request::Reboot),
        ["poweroff"] => Ok(Request::Poweroff),
        ["halt"] => Ok(Request::Halt),
        [] => Err("missing command".to_owned()),
        ["start" | "stop" | "restart", ..] => Err(format!("{}: takes exactly one UNIT", words[0])),
        ["list" | "status" | "reboot" | "poweroff" | "halt", ..] => {
            Err(format!("{}: too many arguments", words[0]))
        }
        [other, ..] => Err(format!("unknown command {other:?}")),
    }
}

/// The answer as people read it (docs/ctl.md, "Output").
pub fn render(payload: &Payload) -> String {
    match payload {
        Payload::Message(message) => format!("{message}\n"),
        Payload::Units(units) => output::list(units),
        Payload::Unit(unit) => output::unit(unit),
        Payload::System(system) => output::system(system),
    }
}

/// An error with its causes, and a hint where one helps.
fn describe(e: &CtlError) -> String {
    let mut text = crate::failure::chain(e);
    if matches!(e, CtlError::Connect { .. }) {
        text.push_str(" (is liftoff running as PID 1?)");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::time::Instant;

    use units::supervisor::{State, UnitStatus};

    use super::super::protocol::SystemStatus;
    use super::super::server::ControlServer;
    use super::*;

    fn call(args: &[&str]) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let parser = lexopt::Parser::from_args(args.iter().map(OsString::from));
        let code = run(parser, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn command_words() {
        let unit = |u: &str| u.to_owned();
        let good = [
            ("list", Request::List),
            ("status", Request::Status { unit: None }),
            (
                "status web",
                Request::Status {
                    unit: Some(unit("web")),
                },
            ),
            ("start web", Request::Start { unit: unit("web") }),
            ("stop web", Request::Stop { unit: unit("web") }),
            ("restart web", Request::Restart { unit: unit("web") }),
            ("reboot", Request::Reboot),
            ("poweroff", Request::Poweroff),
            ("halt", Request::Halt),
        ];
        for (text, request) in good {
            assert_eq!(parse_words(&words(text)), Ok(request), "{text}");
        }
        let bad = [
            ("", "missing command"),
            ("start", "start: takes exactly one UNIT"),
            ("stop a b", "stop: takes exactly one UNIT"),
            ("list web", "list: too many arguments"),
            ("status a b", "status: too many arguments"),
            ("reboot now", "reboot: too many arguments"),
            ("frobnicate", "unknown command \"frobnicate\""),
        ];
        for (text, message) in bad {
            assert_eq!(
                parse_words(&words(text)),
                Err(message.to_owned()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            &[][..],
            &["frobnicate"],
            &["start"],
            &["list", "--bogus"],
            &["--socket"],
        ] {
            let (code, out, err) = call(args);
            assert_eq!(code, 2, "{args:?}");
            assert!(out.is_empty());
            assert!(err.starts_with("liftoff ctl: "), "{err}");
            assert!(err.contains("usage: liftoff ctl"), "{err}");
        }
        let (code, out, _) = call(&["--help"]);
        assert_eq!(code, 0);
        assert!(out.starts_with("usage: liftoff ctl"));
    }

    #[test]
    fn a_missing_socket_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        let (code, out, err) = call(&["--socket", path.to_str().unwrap(), "list"]);
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert_eq!(
            err,
            format!(
                "liftoff ctl: cannot connect to {}: No such file or directory (os error 2) \
                 (is liftoff running as PID 1?)\n",
                path.display()
            )
        );
    }

    fn unit(name: &str) -> UnitStatus {
        UnitStatus {
            name: name.into(),
            description: None,
            state: State::Done,
            since: Duration::from_millis(1500),
            main_pid: None,
            restarts: 0,
            last_exit: None,
            status_line: None,
            reason: None,
            started_at: None,
            ready_at: None,
            restart_latency: None,
        }
    }

    /// Runs `liftoff ctl ARGS` against a real server while the test plays
    /// the PID 1 loop, answering the one request with `answer`.
    fn exchange(
        args: &[&str],
        answer: impl FnOnce(&Request) -> Response,
    ) -> (Request, i32, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        let mut server = ControlServer::bind(&path).unwrap();
        let mut full = vec!["--socket".to_owned(), path.to_str().unwrap().to_owned()];
        full.extend(args.iter().map(|a| (*a).to_owned()));
        let client = std::thread::spawn(move || {
            let args: Vec<&str> = full.iter().map(String::as_str).collect();
            call(&args)
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut pending = Vec::new();
        let (id, request) = 'serve: loop {
            assert!(Instant::now() < deadline, "no request");
            pending.extend(server.accept());
            for id in &pending {
                if let Some(request) = server.on_readable(*id) {
                    break 'serve (*id, request);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        server.respond(id, &answer(&request));
        while server.is_open(id) {
            assert!(Instant::now() < deadline, "answer not taken");
            std::thread::sleep(Duration::from_millis(2));
            server.on_writable(id);
        }
        let (code, out, err) = client.join().unwrap();
        (request, code, out, err)
    }

    #[test]
    fn list_over_the_socket() {
        let (request, code, out, err) = exchange(&["list"], |_| {
            Response::Ok(Payload::Units(vec![unit("a"), unit("bb")]))
        });
        assert_eq!(request, Request::List);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            "\
NAME  STATE  PID  RESTARTS  DESCRIPTION
a     done   -    0         -
bb    done   -    0         -
"
        );
    }

    #[test]
    fn status_over_the_socket() {
        let (request, code, out, _) = exchange(&["status"], |_| {
            Response::Ok(Payload::System(SystemStatus {
                boot_complete_at: None,
                units: vec![unit("a")],
            }))
        });
        assert_eq!(request, Request::Status { unit: None });
        assert_eq!(code, 0);
        assert!(out.starts_with("boot: in progress\nNAME"), "{out}");
        let (_, code, out, _) = exchange(&["status", "a"], |_| {
            Response::Ok(Payload::Unit(Box::new(unit("a"))))
        });
        assert_eq!(code, 0);
        assert!(
            out.starts_with("a\n  state:     done since 1.500s\n"),
            "{out}"
        );
    }

    #[test]
    fn an_error_answer_exits_1() {
        let (request, code, out, err) = exchange(&["stop", "nope"], |r| match r {
            Request::Stop { unit } => Response::unknown_unit(unit),
            _ => Response::error("wrong request"),
        });
        assert_eq!(
            request,
            Request::Stop {
                unit: "nope".into()
            }
        );
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert_eq!(err, "liftoff ctl: unknown unit \"nope\"\n");
    }

    #[test]
    fn messages_and_json() {
        let (request, code, out, _) = exchange(&["reboot"], |_| Response::message("rebooting"));
        assert_eq!(request, Request::Reboot);
        assert_eq!((code, out.as_str()), (0, "rebooting\n"));
        let (_, code, out, _) = exchange(&["--json", "list"], |_| {
            Response::Ok(Payload::Units(vec![unit("a")]))
        });
        assert_eq!(code, 0);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json[0]["name"], "a");
        assert_eq!(json[0]["state"], "done");
    }
}
