//! The control socket: `liftoff ctl` asks, PID 1 answers
//! (docs/ctl.md).
//!
//! - [`protocol`]: the JSON messages, pure.
//! - [`server`]: [`ControlServer`], non-blocking, for PID 1's epoll loop;
//!   it reads requests and writes answers but decides nothing: the driver
//!   (`stage2`) turns each [`Request`] into supervisor inputs or a
//!   shutdown and hands back a [`Response`].
//! - [`dispatch`](mod@dispatch): what a request means for PID 1, pure: an answer, a
//!   supervisor input, or a shutdown.
//! - [`client`]: the `liftoff ctl` command.
//! - [`output`]: the command's text output, pure.
//!
//! Not here: authentication beyond "root only", several requests per
//! connection, and notifications (no `ctl wait` or `ctl follow`).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub mod client;
pub mod dispatch;
pub mod output;
pub mod protocol;
pub mod server;

pub use dispatch::{Dispatch, UnitQuery, dispatch};
pub use protocol::{Payload, Request, Response, SystemStatus};
pub use server::{CONNECTION_EVENTS, ConnId, ControlServer, IDLE_TIMEOUT};

/// Where PID 1 listens.
pub const CONTROL_SOCKET: &str = "/run/liftoff/control";

/// A control socket step that failed, server or client side.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// lstat(2) on the socket path failed.
    #[error("cannot inspect {path}")]
    InspectStale {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Something other than a socket is at the socket path.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// The old socket could not be removed.
    #[error("cannot remove the stale socket {path}")]
    RemoveStale {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The socket's directory could not be created.
    #[error("cannot create {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// socket(2), bind(2) or listen(2) failed.
    #[error("cannot listen on {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// chmod(2) to 0600 failed.
    #[error("cannot make {path} mode 0600")]
    Chmod {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// lstat(2) on the new socket failed.
    #[error("cannot find the owner of {path}")]
    InspectSocket {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// O_NONBLOCK could not be set on the listener.
    #[error("cannot make {path} non-blocking")]
    NonBlocking {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The client could not connect.
    #[error("cannot connect to {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The request could not be encoded.
    #[error("cannot encode the request")]
    Encode(#[source] serde_json::Error),
    /// The request could not be sent.
    #[error("cannot send the request to {path}")]
    Send {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The answer could not be read.
    #[error("cannot read the answer from {path}")]
    Receive {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No answer in time.
    #[error("no answer from {path} within {}s", after.as_secs())]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// How long the client waited.
        after: Duration,
    },
    /// The answer was not a response.
    #[error("malformed answer from {path}")]
    Decode {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}
