//! The control socket's server half, for PID 1's single-threaded epoll
//! loop: every call does what the socket allows now and returns, never
//! waiting (docs/ctl.md, "For the PID 1 loop").
//!
//! The byte shuffling is in two small types tested without sockets:
//! [`Incoming`] gathers one request up to end-of-file and
//! [`MAX_REQUEST`]; [`Outgoing`] holds a response and how much of it the
//! socket took.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, Permissions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::epoll::EpollFlags;
use nix::sys::socket::{self, MsgFlags, sockopt};

use super::CtlError;
use super::protocol::{self, MAX_REQUEST, ProtocolError, Request, Response};

/// How many connections are served at once; more are answered with an
/// error and closed. Only root can connect, so this bounds mistakes (a
/// script in a loop), not attackers.
pub const MAX_CONNECTIONS: usize = 16;

/// How long a client has to send its request (and take its answer) before
/// [`ControlServer::expire_older_than`] drops it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The epoll events to register a connection with: edge-triggered, both
/// directions, once. Every call drains the socket until EAGAIN, so no
/// edge is lost, and the driver never has to change the registration
/// (with level-triggered EPOLLIN, a client's half-close would wake the
/// loop forever while the driver works out the answer).
pub const CONNECTION_EVENTS: EpollFlags = EpollFlags::EPOLLIN
    .union(EpollFlags::EPOLLOUT)
    .union(EpollFlags::EPOLLRDHUP)
    .union(EpollFlags::EPOLLET);

/// The answer to a client that is not root.
pub const PERMISSION_DENIED: &str = "permission denied: the control socket answers root only";

/// Whether a peer with uid `peer` may use a control socket whose file
/// `owner` owns: root, and the owner, exactly whom the file's mode 0600
/// lets connect. For PID 1 the owner is root, so: root only.
///
/// The mode already keeps others out; this is the second lock, for a
/// socket whose mode someone loosened or a connection made through a
/// descriptor passed on. (The owner rule also lets the host tests, run
/// as any user, talk to their own server.)
pub fn authorised(peer: u32, owner: u32) -> bool {
    peer == 0 || peer == owner
}

/// A connection's id: unique for the server's lifetime (never reused, so
/// a stale epoll event for a closed connection cannot reach a new one).
/// Ids start at 1 and stay below 2^48; the driver may fold one into its
/// epoll token, e.g. `TOKEN_BASE + id.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// How far reading a request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadProgress {
    /// Nothing more to read now; the request is not complete.
    Pending,
    /// The client shut down its side: the request is complete.
    Eof,
    /// The client sent more than [`MAX_REQUEST`] bytes.
    TooLarge,
}

/// One request being read: bytes up to end-of-file, at most
/// [`MAX_REQUEST`].
#[derive(Debug, Default)]
pub struct Incoming {
    bytes: Vec<u8>,
}

impl Incoming {
    /// Reads with `read` (a non-blocking `read(2)`) until it would block,
    /// returns end-of-file, or the request grows too large.
    pub fn read_from(
        &mut self,
        mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<ReadProgress> {
        let mut chunk = [0u8; 4096];
        loop {
            match read(&mut chunk) {
                Ok(0) => return Ok(ReadProgress::Eof),
                Ok(n) => {
                    if self.bytes.len() + n > MAX_REQUEST {
                        return Ok(ReadProgress::TooLarge);
                    }
                    self.bytes.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadProgress::Pending);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// What was read so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// One response being written.
#[derive(Debug)]
pub struct Outgoing {
    bytes: Vec<u8>,
    written: usize,
}

impl Outgoing {
    /// A response to write, already encoded.
    pub fn new(bytes: Vec<u8>) -> Self {
        Outgoing { bytes, written: 0 }
    }

    /// Writes with `write` (a non-blocking `send(2)`) until it would block
    /// or everything is out; `Ok(true)` when everything is out.
    pub fn write_to(
        &mut self,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<bool> {
        while let Some(rest) = self.bytes.get(self.written..).filter(|r| !r.is_empty()) {
            match write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Bytes not written yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.written)
    }
}

/// Where a connection is in its one exchange.
#[derive(Debug)]
enum Phase {
    /// Gathering the request.
    Reading(Incoming),
    /// The request went to the driver; waiting for its `respond`.
    Dispatched,
    /// Writing the response; closed once it is out.
    Writing(Outgoing),
}

#[derive(Debug)]
struct Connection {
    stream: UnixStream,
    accepted: Instant,
    phase: Phase,
}

/// The control socket's listener and its open connections.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's owner (see [`authorised`]).
    owner: u32,
    connections: BTreeMap<ConnId, Connection>,
    next_id: u64,
}

impl ControlServer {
    /// Creates the socket at `path` (normally [`super::CONTROL_SOCKET`]):
    /// the listener is non-blocking and close-on-exec, so no unit inherits
    /// it.
    pub fn bind(path: &Path) -> Result<Self, CtlError> {
        // 1. A socket file left by an earlier PID 1 (stage 1 before
        //    switch_root, or a crash) makes bind(2) fail with EADDRINUSE.
        //    Only a socket is removed: anything else at that path is a
        //    mistake to report, not to delete.
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                fs::remove_file(path).map_err(|source| CtlError::RemoveStale {
                    path: path.to_owned(),
                    source,
                })?;
            }
            Ok(_) => return Err(CtlError::NotASocket(path.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CtlError::InspectStale {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        // 2. /run/liftoff: readable by all (0755), like /run itself; the
        //    socket inside carries the access control.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|source| CtlError::CreateDir {
                    path: parent.to_owned(),
                    source,
                })?;
        }
        // 3. socket(2) with SOCK_CLOEXEC, bind(2), listen(2): std does all
        //    three. Until step 4 the file's mode follows the umask; a
        //    connection in that window still meets the SO_PEERCRED check.
        let listener = UnixListener::bind(path).map_err(|source| CtlError::Bind {
            path: path.to_owned(),
            source,
        })?;
        // 4. Root only: connect(2) on a unix socket needs write permission
        //    on its file (unix(7)).
        fs::set_permissions(path, Permissions::from_mode(0o600)).map_err(|source| {
            CtlError::Chmod {
                path: path.to_owned(),
                source,
            }
        })?;
        // 5. Whom the mode admits besides root: the file's owner, the
        //    uid that bound it.
        let owner = fs::symlink_metadata(path)
            .map_err(|source| CtlError::InspectSocket {
                path: path.to_owned(),
                source,
            })?
            .uid();
        // 6. Never block PID 1 in accept(2).
        listener
            .set_nonblocking(true)
            .map_err(|source| CtlError::NonBlocking {
                path: path.to_owned(),
                source,
            })?;
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
            owner,
            connections: BTreeMap::new(),
            next_id: 1,
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listening socket, to register in epoll for `EPOLLIN` (level or
    /// edge triggered: [`accept`](Self::accept) drains it).
    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts every pending connection. Peers that are not root, and
    /// connections beyond [`MAX_CONNECTIONS`], get an error response and
    /// are closed at once. Returns the connections the driver must
    /// register ([`fd`](Self::fd), [`CONNECTION_EVENTS`]).
    pub fn accept(&mut self) -> Vec<ConnId> {
        let mut accepted = Vec::new();
        loop {
            // accept4(2) with SOCK_CLOEXEC (std's accept on Linux).
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The client gave up between connect and accept, or a
                // signal: try the next one.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    // EMFILE, ENOMEM, …: PID 1 keeps running; the next
                    // readiness of the listener tries again.
                    log::warn!("control socket: accept failed: {e}");
                    break;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            // Who is calling: the credentials the kernel recorded at
            // connect(2) (SO_PEERCRED, unix(7)), not anything the client
            // says.
            let uid = match socket::getsockopt(&stream, sockopt::PeerCredentials) {
                Ok(cred) => cred.uid(),
                Err(_) => continue,
            };
            if !authorised(uid, self.owner) {
                refuse(&stream, PERMISSION_DENIED);
                continue;
            }
            if self.connections.len() >= MAX_CONNECTIONS {
                refuse(
                    &stream,
                    &format!("busy: {MAX_CONNECTIONS} control connections are open"),
                );
                continue;
            }
            let id = ConnId(self.next_id);
            self.next_id += 1;
            self.connections.insert(
                id,
                Connection {
                    stream,
                    accepted: Instant::now(),
                    phase: Phase::Reading(Incoming::default()),
                },
            );
            accepted.push(id);
        }
        accepted
    }

    /// The connection's socket, to register in epoll with
    /// [`CONNECTION_EVENTS`]; `None` once it is closed. Closing removes it
    /// from epoll by itself (the server holds the only descriptor).
    pub fn fd(&self, id: ConnId) -> Option<BorrowedFd<'_>> {
        self.connections.get(&id).map(|c| c.stream.as_fd())
    }

    /// The connection is readable (or hung up, or in error): reads what is
    /// there. Returns the request once the client has shut down its side;
    /// the driver must then [`respond`](Self::respond). A malformed or
    /// oversized request is answered here and never returned; a read error
    /// closes the connection.
    pub fn on_readable(&mut self, id: ConnId) -> Option<Request> {
        let conn = self.connections.get_mut(&id)?;
        let Phase::Reading(incoming) = &mut conn.phase else {
            return None;
        };
        let stream = &mut conn.stream;
        match incoming.read_from(|buf| stream.read(buf)) {
            Ok(ReadProgress::Pending) => None,
            Ok(ReadProgress::Eof) => match protocol::decode_request(incoming.bytes()) {
                Ok(request) => {
                    conn.phase = Phase::Dispatched;
                    Some(request)
                }
                Err(e) => {
                    self.respond(id, &e.to_response());
                    None
                }
            },
            Ok(ReadProgress::TooLarge) => {
                self.respond(id, &ProtocolError::TooLarge.to_response());
                None
            }
            Err(_) => {
                self.close(id);
                None
            }
        }
    }

    /// Answers the connection's request: writes what the socket takes now
    /// and closes the connection once all is out; the rest waits for
    /// [`on_writable`](Self::on_writable). A client that went away is
    /// simply closed. Does nothing for a closed connection.
    pub fn respond(&mut self, id: ConnId, response: &Response) {
        let Some(conn) = self.connections.get_mut(&id) else {
            return;
        };
        conn.phase = Phase::Writing(Outgoing::new(protocol::encode_response(response)));
        self.flush(id);
    }

    /// The connection is writable: writes more of a pending response.
    pub fn on_writable(&mut self, id: ConnId) {
        self.flush(id);
    }

    /// Whether part of a response waits for the socket to drain (for a
    /// driver that registers level-triggered and switches to
    /// `EPOLLOUT`).
    pub fn wants_write(&self, id: ConnId) -> bool {
        matches!(
            self.connections.get(&id).map(|c| &c.phase),
            Some(Phase::Writing(_))
        )
    }

    /// Whether the connection is still reading its request (for a
    /// level-triggered driver: `EPOLLIN` only while this holds).
    pub fn wants_read(&self, id: ConnId) -> bool {
        matches!(
            self.connections.get(&id).map(|c| &c.phase),
            Some(Phase::Reading(_))
        )
    }

    /// Whether the connection is open.
    pub fn is_open(&self, id: ConnId) -> bool {
        self.connections.contains_key(&id)
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.connections.len()
    }

    /// Closes a connection without an answer.
    pub fn close(&mut self, id: ConnId) {
        self.connections.remove(&id);
    }

    /// Drops connections accepted at least `max_age` before `now` (use
    /// [`IDLE_TIMEOUT`]) that are still reading their request or writing
    /// their answer; those the driver has yet to answer stay. A silent
    /// client is told why. Returns how many were dropped.
    pub fn expire_older_than(&mut self, now: Instant, max_age: Duration) -> usize {
        let expired: Vec<ConnId> = self
            .connections
            .iter()
            .filter(|(_, c)| {
                !matches!(c.phase, Phase::Dispatched)
                    && now.saturating_duration_since(c.accepted) >= max_age
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            if let Some(conn) = self.connections.remove(id)
                && matches!(conn.phase, Phase::Reading(_))
            {
                refuse(
                    &conn.stream,
                    &format!("timeout: no request within {}s", max_age.as_secs()),
                );
            }
        }
        expired.len()
    }

    /// When the next connection reaches `max_age`, for the epoll timeout.
    pub fn next_expiry(&self, max_age: Duration) -> Option<Instant> {
        self.connections
            .values()
            .filter(|c| !matches!(c.phase, Phase::Dispatched))
            .map(|c| c.accepted + max_age)
            .min()
    }

    fn flush(&mut self, id: ConnId) {
        let Some(conn) = self.connections.get_mut(&id) else {
            return;
        };
        let Phase::Writing(outgoing) = &mut conn.phase else {
            return;
        };
        match outgoing.write_to(|buf| send(&conn.stream, buf)) {
            Ok(false) => {}
            // Done, or the client is gone: either way, close.
            Ok(true) | Err(_) => self.close(id),
        }
    }
}

/// send(2) with MSG_NOSIGNAL: a client that hung up must cost PID 1 an
/// EPIPE, never a SIGPIPE (std's `write` on a `UnixStream` is a plain
/// write(2)).
fn send(stream: &UnixStream, buf: &[u8]) -> io::Result<usize> {
    socket::send(stream.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
}

/// Best effort: one non-blocking write of an error response to a
/// connection about to be closed. A fresh socket's buffer always holds a
/// line this short.
fn refuse(stream: &UnixStream, message: &str) {
    let _ = send(
        stream,
        &protocol::encode_response(&Response::error(message)),
    );
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::Shutdown;

    use super::super::protocol::Payload;
    use super::*;

    fn would_block() -> io::Error {
        io::ErrorKind::WouldBlock.into()
    }

    /// A reader that hands out `chunks`, then blocks or reports EOF.
    fn reader(chunks: Vec<Vec<u8>>, eof: bool) -> impl FnMut(&mut [u8]) -> io::Result<usize> {
        let mut chunks = chunks.into_iter();
        move |buf| match chunks.next() {
            Some(chunk) => {
                buf[..chunk.len()].copy_from_slice(&chunk);
                Ok(chunk.len())
            }
            None if eof => Ok(0),
            None => Err(would_block()),
        }
    }

    #[test]
    fn incoming_gathers_until_eof() {
        let cases = [
            (
                "pending",
                vec![b"{\"com".to_vec()],
                false,
                ReadProgress::Pending,
            ),
            (
                "complete",
                vec![b"{\"com".to_vec(), b"mand\":\"list\"}".to_vec()],
                true,
                ReadProgress::Eof,
            ),
            ("empty", vec![], true, ReadProgress::Eof),
        ];
        for (name, chunks, eof, expected) in cases {
            let mut incoming = Incoming::default();
            let expected_bytes = chunks.concat();
            assert_eq!(
                incoming.read_from(reader(chunks, eof)).unwrap(),
                expected,
                "{name}"
            );
            assert_eq!(incoming.bytes(), expected_bytes, "{name}");
        }
    }

    #[test]
    fn incoming_refuses_more_than_the_limit() {
        let exactly = vec![vec![b' '; 4096]; MAX_REQUEST / 4096];
        let mut incoming = Incoming::default();
        assert_eq!(
            incoming.read_from(reader(exactly.clone(), true)).unwrap(),
            ReadProgress::Eof
        );
        let mut one_more = exactly;
        one_more.push(vec![b' ']);
        let mut incoming = Incoming::default();
        assert_eq!(
            incoming.read_from(reader(one_more, true)).unwrap(),
            ReadProgress::TooLarge
        );
    }

    #[test]
    fn incoming_retries_eintr_and_reports_errors() {
        let mut calls = 0;
        let mut incoming = Incoming::default();
        let progress = incoming.read_from(|_| {
            calls += 1;
            match calls {
                1 => Err(io::ErrorKind::Interrupted.into()),
                _ => Err(io::ErrorKind::ConnectionReset.into()),
            }
        });
        assert_eq!(progress.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(calls, 2);
    }

    #[test]
    fn outgoing_resumes_after_would_block() {
        let mut outgoing = Outgoing::new(b"0123456789".to_vec());
        let mut sink = Vec::new();
        // The socket takes 4 bytes, then is full.
        let mut budget = 4;
        let done = outgoing
            .write_to(|buf| {
                if budget == 0 {
                    return Err(would_block());
                }
                let n = buf.len().min(3).min(budget);
                budget -= n;
                sink.extend_from_slice(&buf[..n]);
                Ok(n)
            })
            .unwrap();
        assert!(!done);
        assert_eq!(outgoing.remaining(), 6);
        let done = outgoing
            .write_to(|buf| {
                sink.extend_from_slice(buf);
                Ok(buf.len())
            })
            .unwrap();
        assert!(done);
        assert_eq!(sink, b"0123456789");
        assert_eq!(outgoing.remaining(), 0);
    }

    #[test]
    fn outgoing_reports_a_zero_write_and_errors() {
        let mut outgoing = Outgoing::new(b"x".to_vec());
        assert_eq!(
            outgoing.write_to(|_| Ok(0)).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
        assert_eq!(
            outgoing
                .write_to(|_| Err(io::ErrorKind::BrokenPipe.into()))
                .unwrap_err()
                .kind(),
            io::ErrorKind::BrokenPipe
        );
        assert!(Outgoing::new(Vec::new()).write_to(|_| Ok(0)).unwrap());
    }

    #[test]
    fn root_and_the_owner_are_authorised() {
        let cases = [
            ("pid 1: root", 0, 0, true),
            ("pid 1: a user", 1000, 0, false),
            ("pid 1: nobody", 65534, 0, false),
            ("pid 1: uid -1", u32::MAX, 0, false),
            ("user server: itself", 1000, 1000, true),
            ("user server: root", 0, 1000, true),
            ("user server: another user", 1001, 1000, false),
        ];
        for (name, peer, owner, expected) in cases {
            assert_eq!(authorised(peer, owner), expected, "{name}");
        }
    }

    /// Connects a blocking client, sends `bytes`, half-closes.
    fn client(path: &Path, bytes: &[u8]) -> UnixStream {
        let mut stream = UnixStream::connect(path).unwrap();
        stream.write_all(bytes).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        stream
    }

    fn read_response(stream: &mut UnixStream) -> Response {
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Accepts until the server has `n` new connections (connect(2)
    /// returns once the kernel queued the connection, so one accept pass
    /// sees it).
    fn accept_one(server: &mut ControlServer) -> ConnId {
        let ids = server.accept();
        assert_eq!(ids.len(), 1, "{ids:?}");
        ids[0]
    }

    fn bound() -> (tempfile::TempDir, ControlServer) {
        let dir = tempfile::tempdir().unwrap();
        let server = ControlServer::bind(&dir.path().join("run/liftoff/control")).unwrap();
        (dir, server)
    }

    #[test]
    fn bind_creates_a_private_socket_and_replaces_a_stale_one() {
        let (dir, server) = bound();
        let path = server.path().to_owned();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let parent = fs::metadata(path.parent().unwrap()).unwrap();
        assert!(parent.is_dir());
        // The listener must not block the loop.
        let mut server = server;
        assert!(server.accept().is_empty());
        // A second bind (after a crash, the file is still there).
        drop(server);
        assert!(path.exists());
        let server = ControlServer::bind(&path).unwrap();
        drop(server);
        // Anything but a socket is left alone.
        let file = dir.path().join("not-a-socket");
        fs::write(&file, "keep me").unwrap();
        let e = ControlServer::bind(&file).unwrap_err();
        assert!(matches!(e, CtlError::NotASocket(_)), "{e}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[test]
    fn a_request_is_read_answered_and_closed() {
        let (_dir, mut server) = bound();
        let mut stream = client(server.path(), br#"{"command":"status","unit":"web"}"#);
        let id = accept_one(&mut server);
        assert!(server.fd(id).is_some());
        assert!(server.wants_read(id));
        let request = server.on_readable(id);
        assert_eq!(
            request,
            Some(Request::Status {
                unit: Some("web".into())
            })
        );
        // The driver owns it now: no expiry, no more reading.
        assert!(!server.wants_read(id));
        assert_eq!(
            server.expire_older_than(Instant::now() + Duration::from_secs(60), IDLE_TIMEOUT),
            0
        );
        assert_eq!(server.on_readable(id), None);
        server.respond(id, &Response::unknown_unit("web"));
        assert!(!server.is_open(id));
        assert!(server.fd(id).is_none());
        assert_eq!(read_response(&mut stream), Response::unknown_unit("web"));
    }

    #[test]
    fn a_request_in_pieces_waits_for_eof() {
        let (_dir, mut server) = bound();
        let mut stream = UnixStream::connect(server.path()).unwrap();
        let id = accept_one(&mut server);
        assert_eq!(server.on_readable(id), None, "nothing sent yet");
        stream.write_all(br#"{"command":"#).unwrap();
        assert_eq!(server.on_readable(id), None, "no EOF yet");
        stream.write_all(br#""list"}"#).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(server.on_readable(id), Some(Request::List));
        server.respond(id, &Response::message("ok"));
        assert_eq!(read_response(&mut stream), Response::message("ok"));
    }

    #[test]
    fn malformed_json_is_answered_at_once() {
        let (_dir, mut server) = bound();
        let mut stream = client(server.path(), b"{not json");
        let id = accept_one(&mut server);
        assert_eq!(server.on_readable(id), None);
        assert!(!server.is_open(id));
        let Response::Error(message) = read_response(&mut stream) else {
            panic!("not an error")
        };
        assert!(message.starts_with("malformed request: "), "{message}");
    }

    #[test]
    fn an_oversized_request_is_refused() {
        let (_dir, mut server) = bound();
        let mut stream = UnixStream::connect(server.path()).unwrap();
        let id = accept_one(&mut server);
        // More than the limit, in one go: the socket buffer holds it
        // (the default unix stream buffer is 200 KiB and more).
        let big = vec![b' '; MAX_REQUEST + 1];
        stream.write_all(&big).unwrap();
        assert_eq!(server.on_readable(id), None);
        assert!(!server.is_open(id));
        // The server closed with unread bytes: after the answer the
        // client may see ECONNRESET instead of EOF (unix_release_sock).
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{e}"),
            }
        }
        let response: Response = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            response,
            Response::error(format!("request larger than {MAX_REQUEST} bytes"))
        );
    }

    #[test]
    fn a_big_response_is_finished_by_on_writable() {
        let (_dir, mut server) = bound();
        let mut stream = client(server.path(), br#"{"command":"list"}"#);
        let id = accept_one(&mut server);
        assert_eq!(server.on_readable(id), Some(Request::List));
        // Far more than a unix socket buffer holds.
        let text = "x".repeat(4 << 20);
        let response = Response::Ok(Payload::Message(text));
        server.respond(id, &response);
        assert!(server.is_open(id));
        assert!(server.wants_write(id));
        // The client reads on another thread; the test plays the loop,
        // calling on_writable until the server is done.
        let reader = std::thread::spawn(move || read_response(&mut stream));
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.is_open(id) {
            assert!(Instant::now() < deadline, "response never finished");
            std::thread::sleep(Duration::from_millis(1));
            server.on_writable(id);
        }
        assert_eq!(reader.join().unwrap(), response);
    }

    #[test]
    fn a_client_that_hung_up_is_closed_without_sigpipe() {
        let (_dir, mut server) = bound();
        let stream = client(server.path(), br#"{"command":"list"}"#);
        let id = accept_one(&mut server);
        assert_eq!(server.on_readable(id), Some(Request::List));
        drop(stream);
        server.respond(id, &Response::Ok(Payload::Message("x".repeat(1 << 20))));
        assert!(!server.is_open(id));
    }

    #[test]
    fn silent_clients_expire() {
        let (_dir, mut server) = bound();
        let mut stream = UnixStream::connect(server.path()).unwrap();
        let id = accept_one(&mut server);
        let now = Instant::now();
        assert!(server.next_expiry(IDLE_TIMEOUT).unwrap() <= now + IDLE_TIMEOUT);
        assert_eq!(server.expire_older_than(now, IDLE_TIMEOUT), 0);
        assert!(server.is_open(id));
        assert_eq!(
            server.expire_older_than(now + IDLE_TIMEOUT, IDLE_TIMEOUT),
            1
        );
        assert!(!server.is_open(id));
        assert_eq!(server.next_expiry(IDLE_TIMEOUT), None);
        assert_eq!(
            read_response(&mut stream),
            Response::error("timeout: no request within 5s")
        );
    }

    #[test]
    fn connections_beyond_the_limit_are_refused() {
        let (_dir, mut server) = bound();
        let mut streams: Vec<UnixStream> = (0..MAX_CONNECTIONS + 1)
            .map(|_| UnixStream::connect(server.path()).unwrap())
            .collect();
        let ids = server.accept();
        assert_eq!(ids.len(), MAX_CONNECTIONS);
        assert_eq!(server.open_connections(), MAX_CONNECTIONS);
        let mut last = streams.pop().unwrap();
        assert_eq!(
            read_response(&mut last),
            Response::error("busy: 16 control connections are open")
        );
        // Ids are unique.
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[test]
    fn peer_credentials_name_the_caller() {
        let (_dir, server) = bound();
        let _stream = UnixStream::connect(server.path()).unwrap();
        // What the kernel reports is checked directly: whoever runs the
        // tests, the peer is this process.
        let (accepted, _) = server.listener.accept().unwrap();
        let cred = socket::getsockopt(&accepted, sockopt::PeerCredentials).unwrap();
        assert_eq!(cred.uid(), nix::unistd::getuid().as_raw());
        assert_eq!(cred.pid(), nix::unistd::getpid().as_raw());
    }

    #[test]
    fn stale_ids_are_ignored() {
        let (_dir, mut server) = bound();
        let ghost = ConnId(999);
        assert_eq!(server.on_readable(ghost), None);
        server.on_writable(ghost);
        server.respond(ghost, &Response::message("nobody"));
        assert!(!server.wants_write(ghost));
        assert!(!server.wants_read(ghost));
        server.close(ghost);
    }
}
