//! A minimal, blocking QMP (QEMU Machine Protocol) client.
//!
//! QMP is JSON lines over a socket: QEMU greets with `{"QMP": …}`, the client
//! sends `{"execute": "qmp_capabilities"}` to leave negotiation mode, then
//! each `{"execute": …, "arguments": …, "id": …}` is answered by one
//! `{"return": …}` or `{"error": …}` line, with asynchronous `{"event": …}`
//! lines possibly in between (docs/interop/qmp-spec.rst in QEMU).
//!
//! Hand-written on purpose: that is about a hundred lines over `serde_json`,
//! which the workspace already uses. The crate that exists, `qapi` (with
//! `qapi-qmp`), does have a blocking mode, but its typed commands come from
//! `qapi-qmp`'s build script generating the whole QEMU schema through
//! `qapi-codegen`, a lot of build for the two commands we send (`send-key`,
//! `quit`).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one command may take before the client gives up; QEMU answers
/// `send-key` and `quit` in milliseconds even under TCG.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What failed while talking QMP.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be connected to before the deadline.
    #[error("cannot connect to the qmp socket {}", path.display())]
    Connect {
        /// The socket path.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading from or writing to the socket failed (or timed out).
    #[error("qmp i/o failed during {command}")]
    Io {
        /// The command being sent, or `greeting`.
        command: String,
        #[source]
        source: io::Error,
    },
    /// QEMU closed the connection.
    #[error("qemu closed the qmp connection during {command}")]
    Closed {
        /// The command being sent, or `greeting`.
        command: String,
    },
    /// A line from QEMU was not JSON.
    #[error("qemu sent a line that is not json during {command}: {line:?}")]
    BadJson {
        /// The command being sent, or `greeting`.
        command: String,
        /// The line received.
        line: String,
        #[source]
        source: serde_json::Error,
    },
    /// The first line was not a QMP greeting.
    #[error("qemu did not greet with {{\"QMP\": …}} but sent {line}")]
    NoGreeting {
        /// The line received.
        line: String,
    },
    /// A reply carried an id other than the one sent.
    #[error("qmp reply to {command} has id {got}, expected {expected}")]
    WrongId {
        /// The command sent.
        command: String,
        /// The id sent.
        expected: u64,
        /// The id received.
        got: Value,
    },
    /// QEMU answered with an error.
    #[error("qemu refused {command}: {class}: {desc}")]
    CommandFailed {
        /// The command sent.
        command: String,
        /// The error class, e.g. `GenericError`.
        class: String,
        /// QEMU's description.
        desc: String,
    },
}

/// A connected QMP session, past capabilities negotiation.
#[derive(Debug)]
pub struct QmpClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    events: Vec<Value>,
}

impl QmpClient {
    /// Connect to QEMU's QMP socket, retrying until `timeout` while QEMU is
    /// still creating it, then negotiate capabilities.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(source) if Instant::now() >= deadline => {
                    return Err(QmpError::Connect {
                        path: path.to_path_buf(),
                        source,
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        Self::handshake(stream)
    }

    /// Negotiate over an already connected stream: read the greeting, send
    /// `qmp_capabilities`.
    pub fn handshake(stream: UnixStream) -> Result<Self, QmpError> {
        let io_error = |source| QmpError::Io {
            command: "greeting".to_owned(),
            source,
        };
        stream
            .set_read_timeout(Some(DEFAULT_REPLY_TIMEOUT))
            .map_err(io_error)?;
        let writer = stream.try_clone().map_err(io_error)?;
        let mut client = Self {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
            events: Vec::new(),
        };
        let greeting = client.read_message("greeting")?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::NoGreeting {
                line: greeting.to_string(),
            });
        }
        client.execute("qmp_capabilities", None)?;
        Ok(client)
    }

    /// Run one command and return its `return` value. Events that arrive
    /// before the reply are kept (see [`QmpClient::events`]).
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .and_then(|()| self.writer.flush())
            .map_err(|source| QmpError::Io {
                command: command.to_owned(),
                source,
            })?;

        loop {
            let mut message = self.read_message(command)?;
            if message.get("event").is_some() {
                self.events.push(message);
                continue;
            }
            match message.get("id") {
                Some(got) if *got == json!(id) => {}
                Some(got) => {
                    return Err(QmpError::WrongId {
                        command: command.to_owned(),
                        expected: id,
                        got: got.clone(),
                    });
                }
                // Errors for unparseable requests carry no id; take them as
                // the reply, since we send one command at a time.
                None => {}
            }
            if let Some(value) = message.get_mut("return") {
                return Ok(value.take());
            }
            if let Some(error) = message.get("error") {
                let field = |name| {
                    error
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                return Err(QmpError::CommandFailed {
                    command: command.to_owned(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            // Neither a reply nor an event: keep it with the events rather
            // than fail on a future protocol addition.
            self.events.push(message);
        }
    }

    /// Press and release keys together, named by QEMU's QKeyCode
    /// (`ctrl`, `alt`, `delete`, …).
    pub fn send_key(&mut self, qcodes: &[&str]) -> Result<(), QmpError> {
        let keys: Vec<Value> = qcodes
            .iter()
            .map(|qcode| json!({ "type": "qcode", "data": qcode }))
            .collect();
        self.execute("send-key", Some(json!({ "keys": keys })))
            .map(drop)
    }

    /// Press ctrl-alt-delete on the guest's PS/2 keyboard.
    pub fn send_ctrl_alt_del(&mut self) -> Result<(), QmpError> {
        self.send_key(&["ctrl", "alt", "delete"])
    }

    /// Asynchronous events (`SHUTDOWN`, `RESET`, …) received so far.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    fn read_message(&mut self, command: &str) -> Result<Value, QmpError> {
        let mut line = String::new();
        let read = self
            .reader
            .read_line(&mut line)
            .map_err(|source| QmpError::Io {
                command: command.to_owned(),
                source,
            })?;
        if read == 0 {
            return Err(QmpError::Closed {
                command: command.to_owned(),
            });
        }
        serde_json::from_str(&line).map_err(|source| QmpError::BadJson {
            command: command.to_owned(),
            line: line.trim_end().to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::thread::JoinHandle;

    use super::*;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}"#;

    /// A fake QEMU: greets, then answers each request line from `replies`
    /// (with `{id}` replaced by the request's id) and returns what it read.
    fn fake_qemu(socket: &Path, replies: Vec<Vec<String>>) -> JoinHandle<Vec<Value>> {
        let listener = UnixListener::bind(socket).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            writeln!(writer, "{GREETING}").unwrap();
            let mut requests = Vec::new();
            for lines in replies {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let request: Value = serde_json::from_str(&line).unwrap();
                let id = request["id"].to_string();
                requests.push(request);
                for reply in lines {
                    writeln!(writer, "{}", reply.replace("{id}", &id)).unwrap();
                }
            }
            requests
        })
    }

    fn ok() -> Vec<String> {
        vec![r#"{"return": {}, "id": {id}}"#.to_owned()]
    }

    #[test]
    fn send_ctrl_alt_del_sends_the_three_qcodes() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        let server = fake_qemu(&socket, vec![ok(), ok()]);
        let mut client = QmpClient::connect(&socket, Duration::from_secs(5)).unwrap();
        client.send_ctrl_alt_del().unwrap();
        drop(client);
        let requests = server.join().unwrap();
        assert_eq!(
            requests,
            vec![
                json!({"execute": "qmp_capabilities", "id": 1}),
                json!({
                    "execute": "send-key",
                    "id": 2,
                    "arguments": {"keys": [
                        {"type": "qcode", "data": "ctrl"},
                        {"type": "qcode", "data": "alt"},
                        {"type": "qcode", "data": "delete"},
                    ]},
                }),
            ]
        );
    }

    #[test]
    fn events_before_the_reply_are_skipped_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        let status = vec![
            r#"{"event": "RESET", "data": {"guest": true}, "timestamp": {"seconds": 1, "microseconds": 2}}"#.to_owned(),
            r#"{"return": {"status": "running", "running": true}, "id": {id}}"#.to_owned(),
        ];
        let server = fake_qemu(&socket, vec![ok(), status]);
        let mut client = QmpClient::connect(&socket, Duration::from_secs(5)).unwrap();
        let reply = client.execute("query-status", None).unwrap();
        assert_eq!(reply, json!({"status": "running", "running": true}));
        assert_eq!(client.events().len(), 1);
        assert_eq!(client.events()[0]["event"], "RESET");
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn errors_carry_class_and_description() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        let refused = vec![
            r#"{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}, "id": {id}}"#
                .to_owned(),
        ];
        let server = fake_qemu(&socket, vec![ok(), refused]);
        let mut client = QmpClient::connect(&socket, Duration::from_secs(5)).unwrap();
        let err = client.execute("nope", None).unwrap_err();
        assert!(
            matches!(&err, QmpError::CommandFailed { command, class, .. } if command == "nope" && class == "CommandNotFound"),
            "{err:?}"
        );
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn closed_connection_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        // The fake answers capabilities, then hangs up.
        let server = fake_qemu(&socket, vec![ok()]);
        let mut client = QmpClient::connect(&socket, Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        let err = client.send_ctrl_alt_del().unwrap_err();
        assert!(
            matches!(&err, QmpError::Closed { .. } | QmpError::Io { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn connect_gives_up_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("absent.sock");
        let err = QmpClient::connect(&socket, Duration::from_millis(50)).unwrap_err();
        assert!(
            matches!(&err, QmpError::Connect { path, .. } if *path == socket),
            "{err:?}"
        );
    }
}
