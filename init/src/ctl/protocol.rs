//! The control protocol's messages: one JSON [`Envelope`] in, one JSON
//! [`Response`] out (docs/ctl.md, "Protocol"). Pure: encoding and decoding
//! only, no I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use units::supervisor::UnitStatus;

use crate::shutdown::Power;

/// The protocol version this liftoff speaks. A request without a version
/// is taken as version 1; a newer one is refused, so that a future client
/// never has a request half understood.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest request the server reads, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// Every unit's status.
    List,
    /// One unit's status, or, without a unit, the system's.
    Status {
        /// The unit; `None` for every unit plus the boot state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// Start a unit (and what it requires).
    Start {
        /// The unit.
        unit: String,
    },
    /// Stop a unit.
    Stop {
        /// The unit.
        unit: String,
    },
    /// Stop, then start a unit.
    Restart {
        /// The unit.
        unit: String,
    },
    /// Orderly shutdown, then restart the machine.
    Reboot,
    /// Orderly shutdown, then switch the machine off.
    Poweroff,
    /// Orderly shutdown, then stop the CPUs.
    Halt,
}

impl Request {
    /// The power action of `reboot`, `poweroff` and `halt`; `None` for the
    /// unit commands. The driver feeds it to the same orderly shutdown as
    /// a signal or ctrl-alt-delete (`shutdown::Request { power, immediate:
    /// false }`).
    pub fn power(&self) -> Option<Power> {
        match self {
            Request::Reboot => Some(Power::Reboot),
            Request::Poweroff => Some(Power::Poweroff),
            Request::Halt => Some(Power::Halt),
            _ => None,
        }
    }
}

/// A [`Request`] as sent on the wire: the command plus the protocol
/// version (`{"version":1,"command":"status","unit":"web"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The client's protocol version; 1 when absent.
    #[serde(default = "default_version")]
    pub version: u32,
    /// The request.
    #[serde(flatten)]
    pub request: Request,
}

fn default_version() -> u32 {
    PROTOCOL_VERSION
}

impl Envelope {
    /// `request` at this liftoff's [`PROTOCOL_VERSION`].
    pub fn new(request: Request) -> Self {
        Envelope {
            version: PROTOCOL_VERSION,
            request,
        }
    }
}

/// The boot and every unit: the answer to `status` without a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// When (CLOCK_BOOTTIME) every `boot = "wait"` unit was ready or
    /// failed for good; `None` while the boot is in progress.
    pub boot_complete_at: Option<Duration>,
    /// Every unit, by name.
    pub units: Vec<UnitStatus>,
}

/// What a successful request returns. On the wire it is untagged: a
/// string, an array of unit statuses, an object with `units`, or one unit
/// status object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    /// A sentence for people, such as "stopping web".
    Message(String),
    /// `list`: every unit.
    Units(Vec<UnitStatus>),
    /// `status` without a unit.
    System(SystemStatus),
    /// `status UNIT`.
    Unit(Box<UnitStatus>),
}

/// The server's answer: `{"ok": PAYLOAD}` or `{"error": "MESSAGE"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    /// The request was carried out (or, for start/stop/restart/reboot,
    /// accepted: the work goes on after the answer).
    Ok(Payload),
    /// The request was refused; the message says why, lower-case, as
    /// `unknown unit "nope"`.
    Error(String),
}

impl Response {
    /// An error response.
    pub fn error(message: impl Into<String>) -> Self {
        Response::Error(message.into())
    }

    /// A success carrying a sentence.
    pub fn message(message: impl Into<String>) -> Self {
        Response::Ok(Payload::Message(message.into()))
    }

    /// The error for a unit name the supervisor does not know.
    pub fn unknown_unit(unit: &str) -> Self {
        Response::Error(format!("unknown unit {unit:?}"))
    }
}

/// Why a request was refused before it reached the driver.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON, or not a request.
    #[error("malformed request")]
    Malformed(#[source] serde_json::Error),
    /// A request from a newer client.
    #[error("unsupported protocol version {0} (this liftoff speaks {PROTOCOL_VERSION})")]
    Version(u32),
    /// More than [`MAX_REQUEST`] bytes.
    #[error("request larger than {MAX_REQUEST} bytes")]
    TooLarge,
}

impl ProtocolError {
    /// The error response a client gets: the message with its cause, as
    /// the client has no other way to see it.
    pub fn to_response(&self) -> Response {
        match self {
            ProtocolError::Malformed(e) => Response::Error(format!("{self}: {e}")),
            _ => Response::Error(self.to_string()),
        }
    }
}

/// Decodes one request (the whole of what the client sent).
pub fn decode_request(bytes: &[u8]) -> Result<Request, ProtocolError> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(ProtocolError::Malformed)?;
    if envelope.version > PROTOCOL_VERSION {
        return Err(ProtocolError::Version(envelope.version));
    }
    Ok(envelope.request)
}

/// Encodes a response, with a trailing newline for people reading the
/// socket with `socat`.
pub fn encode_response(response: &Response) -> Vec<u8> {
    match serde_json::to_vec(response) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            bytes
        }
        // Unreachable for these types (string keys, no maps with
        // non-string keys, no failing Serialize impls); still an answer.
        Err(_) => b"{\"error\":\"cannot encode the response\"}\n".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use units::supervisor::{ExitStatus, State};

    use super::*;

    pub(crate) fn unit(name: &str) -> UnitStatus {
        UnitStatus {
            name: name.to_owned(),
            description: Some(format!("the {name} unit")),
            state: State::Running,
            since: Duration::from_millis(3210),
            main_pid: Some(123),
            restarts: 2,
            last_exit: Some(ExitStatus::Signaled(9, false)),
            status_line: Some("serving".to_owned()),
            reason: None,
            started_at: Some(Duration::from_millis(3100)),
            ready_at: Some(Duration::from_millis(3210)),
            restart_latency: None,
        }
    }

    #[test]
    fn requests_round_trip() {
        let cases = [
            (Request::List, r#"{"version":1,"command":"list"}"#),
            (
                Request::Status { unit: None },
                r#"{"version":1,"command":"status"}"#,
            ),
            (
                Request::Status {
                    unit: Some("web".into()),
                },
                r#"{"version":1,"command":"status","unit":"web"}"#,
            ),
            (
                Request::Start { unit: "a".into() },
                r#"{"version":1,"command":"start","unit":"a"}"#,
            ),
            (
                Request::Stop { unit: "a".into() },
                r#"{"version":1,"command":"stop","unit":"a"}"#,
            ),
            (
                Request::Restart { unit: "a".into() },
                r#"{"version":1,"command":"restart","unit":"a"}"#,
            ),
            (Request::Reboot, r#"{"version":1,"command":"reboot"}"#),
            (Request::Poweroff, r#"{"version":1,"command":"poweroff"}"#),
            (Request::Halt, r#"{"version":1,"command":"halt"}"#),
        ];
        for (request, wire) in cases {
            let json = serde_json::to_string(&Envelope::new(request.clone())).unwrap();
            assert_eq!(json, wire);
            assert_eq!(decode_request(wire.as_bytes()).unwrap(), request, "{wire}");
        }
    }

    #[test]
    fn version_is_optional_and_newer_is_refused() {
        assert_eq!(
            decode_request(br#"{"command":"status","unit":"x"}"#).unwrap(),
            Request::Status {
                unit: Some("x".into())
            }
        );
        let e = decode_request(br#"{"version":2,"command":"list"}"#).unwrap_err();
        assert!(matches!(e, ProtocolError::Version(2)), "{e}");
    }

    #[test]
    fn malformed_requests_are_refused() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"command":"explode"}"#,
            br#"{"command":"start"}"#,
            br#"{"command":"start","unit":7}"#,
            b"\xff\xfe",
        ] {
            let e = decode_request(bad).unwrap_err();
            assert!(matches!(e, ProtocolError::Malformed(_)), "{bad:?}: {e}");
            let Response::Error(message) = e.to_response() else {
                panic!("not an error response")
            };
            assert!(message.starts_with("malformed request: "), "{message}");
        }
    }

    #[test]
    fn power_requests_map_to_power_actions() {
        assert_eq!(Request::Reboot.power(), Some(Power::Reboot));
        assert_eq!(Request::Poweroff.power(), Some(Power::Poweroff));
        assert_eq!(Request::Halt.power(), Some(Power::Halt));
        assert_eq!(Request::List.power(), None);
    }

    #[test]
    fn responses_round_trip() {
        let cases = [
            Response::message("stopping web"),
            Response::unknown_unit("nope"),
            Response::Ok(Payload::Units(vec![unit("a"), unit("b")])),
            Response::Ok(Payload::Units(Vec::new())),
            Response::Ok(Payload::Unit(Box::new(unit("web")))),
            Response::Ok(Payload::System(SystemStatus {
                boot_complete_at: Some(Duration::from_millis(4512)),
                units: vec![unit("a")],
            })),
            Response::Ok(Payload::System(SystemStatus {
                boot_complete_at: None,
                units: Vec::new(),
            })),
        ];
        for response in cases {
            let bytes = encode_response(&response);
            assert_eq!(bytes.last(), Some(&b'\n'));
            let back: Response = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back, response);
        }
    }

    #[test]
    fn response_wire_shapes() {
        assert_eq!(
            serde_json::to_string(&Response::message("stopping web")).unwrap(),
            r#"{"ok":"stopping web"}"#
        );
        assert_eq!(
            serde_json::to_string(&Response::unknown_unit("nope")).unwrap(),
            r#"{"error":"unknown unit \"nope\""}"#
        );
        let list = serde_json::to_value(Response::Ok(Payload::Units(vec![unit("a")]))).unwrap();
        assert_eq!(list["ok"][0]["name"], "a");
        assert_eq!(list["ok"][0]["state"], "running");
    }
}
