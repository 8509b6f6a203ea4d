//! Kernel uevents: the pure message parser, and the `NETLINK_KOBJECT_UEVENT`
//! socket the device wait blocks on.
//!
//! A uevent is only a wake-up: what the wait resolves against is always
//! re-read from sysfs and the device itself, so a forged or lost message can
//! delay a lookup (bounded by the timeout) but never change its answer.
//! Group 1 carries the kernel's own messages; group 2 is udev's re-broadcast
//! (prefixed `libudev\0`), and there is no udev in the initramfs.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, setsockopt,
    socket, sockopt,
};
use thiserror::Error;

/// The kernel's multicast group for uevents (lib/kobject_uevent.c sends to
/// group 1; udev uses 2 for its own).
const KERNEL_GROUP: u32 = 1;
/// One uevent is at most `UEVENT_BUFFER_SIZE` (2048) bytes of variables
/// plus the header line; 8 KiB leaves room.
const RECV_BUFFER: usize = 8192;
/// Receive buffer asked for, so a burst of partitions at boot is not
/// dropped (the kernel then reports ENOBUFS and the wait rescans anyway).
const SOCKET_BUFFER: usize = 1 << 20;

/// What the kernel says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `add`.
    Add,
    /// `remove`.
    Remove,
    /// `change` (e.g. a re-read partition table, a resized disk).
    Change,
    /// `move`, `online`, `offline`, `bind`, `unbind`, or newer ones.
    Other(String),
}

/// One parsed uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// The action.
    pub action: Action,
    /// The sysfs path below `/sys`, e.g. `/devices/…/block/vda/vda1`.
    pub devpath: String,
    /// Every `KEY=VALUE` (ACTION, DEVPATH, SUBSYSTEM, DEVNAME, MAJOR, …).
    pub vars: BTreeMap<String, String>,
}

impl Uevent {
    /// The `SUBSYSTEM=` value.
    #[must_use]
    pub fn subsystem(&self) -> Option<&str> {
        self.vars.get("SUBSYSTEM").map(String::as_str)
    }

    /// The block device's name in `/sys/class/block`: the last component
    /// of DEVPATH (DEVNAME may hold a subdirectory of `/dev`).
    #[must_use]
    pub fn block_name(&self) -> Option<&str> {
        if self.subsystem() != Some("block") {
            return None;
        }
        self.devpath.rsplit('/').next().filter(|n| !n.is_empty())
    }
}

/// Why a datagram is not a kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UeventParseError {
    /// udev's re-broadcast format, not the kernel's.
    #[error("message is from libudev, not the kernel")]
    Libudev,
    /// No `ACTION@DEVPATH` header.
    #[error("no action@devpath header")]
    Header,
    /// Not UTF-8 (the kernel only ever sends ASCII).
    #[error("message is not utf-8")]
    Utf8,
}

/// Parse `ACTION@DEVPATH\0KEY=VALUE\0…` (lib/kobject_uevent.c). Words
/// without `=` are skipped; a trailing NUL is optional.
///
/// # Errors
/// A udev-format message, a missing header, or bytes that are not UTF-8.
pub fn parse(msg: &[u8]) -> Result<Uevent, UeventParseError> {
    if msg.starts_with(b"libudev\0") {
        return Err(UeventParseError::Libudev);
    }
    let text = std::str::from_utf8(msg).map_err(|_| UeventParseError::Utf8)?;
    let mut words = text.split('\0');
    let header = words.next().unwrap_or_default();
    let (action, devpath) = header.split_once('@').ok_or(UeventParseError::Header)?;
    if action.is_empty() || !devpath.starts_with('/') {
        return Err(UeventParseError::Header);
    }
    let vars = words
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let action = match action {
        "add" => Action::Add,
        "remove" => Action::Remove,
        "change" => Action::Change,
        other => Action::Other(other.to_owned()),
    };
    Ok(Uevent {
        action,
        devpath: devpath.to_owned(),
        vars,
    })
}

/// What a wait on a [`UeventSource`] brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// These uevents arrived (malformed messages are dropped).
    Events(Vec<Uevent>),
    /// Messages were lost (the socket buffer overflowed): rescan everything.
    Overflow,
    /// Nothing arrived in time.
    TimedOut,
}

/// A failed uevent socket step.
#[derive(Debug, Error)]
pub enum UeventError {
    /// socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT).
    #[error("cannot open the netlink uevent socket")]
    Socket(#[source] Errno),
    /// bind() to the kernel's multicast group.
    #[error("cannot bind the uevent socket to group {group}")]
    Bind {
        /// The group.
        group: u32,
        /// The error.
        #[source]
        source: Errno,
    },
    /// poll() on the socket.
    #[error("poll on the uevent socket failed")]
    Poll(#[source] Errno),
    /// recv() from the socket.
    #[error("receiving from the uevent socket failed")]
    Recv(#[source] Errno),
}

/// The seam the wait blocks on: a source of uevents with a timeout.
pub trait UeventSource {
    /// Block until uevents arrive or `timeout` passes; return every message
    /// already queued.
    ///
    /// # Errors
    /// The source failed; the wait gives up with this error.
    fn wait(&mut self, timeout: Duration) -> Result<Wake, UeventError>;
}

/// A datagram socket carrying uevents: the kernel's netlink socket, or in
/// tests one end of a `socketpair` (same poll and recv path).
#[derive(Debug)]
pub struct UeventSocket {
    fd: OwnedFd,
}

impl UeventSocket {
    /// Open the kernel's uevent socket. Open it before scanning sysfs, so a
    /// device that appears during the scan still wakes the wait.
    ///
    /// # Errors
    /// socket() or bind() failed (no netlink in the kernel, no privilege).
    pub fn open() -> Result<Self, UeventError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .map_err(UeventError::Socket)?;
        // Best effort: PID 1 may exceed rmem_max (RcvBufForce needs
        // CAP_NET_ADMIN, which it has); if neither works the default buffer
        // still holds a few hundred events, and an overflow only means a
        // full rescan.
        if setsockopt(&fd, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &SOCKET_BUFFER);
        }
        // pid 0: let the kernel assign the port id.
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP)).map_err(|source| {
            UeventError::Bind {
                group: KERNEL_GROUP,
                source,
            }
        })?;
        Ok(Self { fd })
    }

    /// Wrap any datagram socket whose messages are in uevent format.
    #[must_use]
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// Take every queued datagram without blocking.
    fn drain(&self) -> Result<Wake, UeventError> {
        let mut events = Vec::new();
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => break,
                Ok(n) => {
                    if let Ok(ev) = parse(buf.get(..n).unwrap_or_default()) {
                        events.push(ev);
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                // The kernel dropped messages for us: a full rescan covers them.
                Err(Errno::ENOBUFS) => return Ok(Wake::Overflow),
                Err(e) => return Err(UeventError::Recv(e)),
            }
        }
        Ok(Wake::Events(events))
    }
}

impl UeventSource for UeventSocket {
    fn wait(&mut self, timeout: Duration) -> Result<Wake, UeventError> {
        // Round up: a sub-millisecond remainder must not become a busy loop.
        let millis = timeout.as_micros().div_ceil(1000);
        let poll_timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout) {
            Ok(0) => Ok(Wake::TimedOut),
            Ok(_) => self.drain(),
            // A signal: report no events; the caller re-checks its clock.
            Err(Errno::EINTR) => Ok(Wake::Events(Vec::new())),
            Err(e) => Err(UeventError::Poll(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let partition = b"add@/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1\0SUBSYSTEM=block\0MAJOR=254\0MINOR=1\0DEVNAME=vda1\0DEVTYPE=partition\0DISKSEQ=1\0PARTN=1\0PARTNAME=root-a\0SEQNUM=1234\0";
        let ev = parse(partition).unwrap();
        assert_eq!(ev.action, Action::Add);
        assert_eq!(ev.block_name(), Some("vda1"));
        assert_eq!(ev.vars["PARTNAME"], "root-a");
        assert_eq!(ev.vars["MAJOR"], "254");

        type Expected<'a> = Result<(Action, Option<&'a str>), UeventParseError>;
        let cases: Vec<(&str, &[u8], Expected)> = vec![
            (
                "change of a disk, no trailing nul",
                b"change@/devices/virtual/block/loop0\0SUBSYSTEM=block\0DEVNAME=loop0",
                Ok((Action::Change, Some("loop0"))),
            ),
            (
                "remove",
                b"remove@/devices/virtual/block/dm-0\0SUBSYSTEM=block",
                Ok((Action::Remove, Some("dm-0"))),
            ),
            (
                "not a block device",
                b"add@/devices/virtual/net/lo\0SUBSYSTEM=net\0INTERFACE=lo",
                Ok((Action::Add, None)),
            ),
            (
                "bind",
                b"bind@/devices/pci0000:00/0000:00:04.0\0SUBSYSTEM=pci",
                Ok((Action::Other("bind".into()), None)),
            ),
            (
                "udev",
                b"libudev\0\xfe\xed\xca\xfe",
                Err(UeventParseError::Libudev),
            ),
            (
                "no header",
                b"SUBSYSTEM=block\0",
                Err(UeventParseError::Header),
            ),
            (
                "relative devpath",
                b"add@devices\0",
                Err(UeventParseError::Header),
            ),
            (
                "empty action",
                b"@/devices\0",
                Err(UeventParseError::Header),
            ),
            ("empty", b"", Err(UeventParseError::Header)),
            ("binary", b"add@/\xff\0", Err(UeventParseError::Utf8)),
        ];
        for (name, msg, expected) in cases {
            let got = parse(msg).map(|ev| (ev.action.clone(), ev.block_name().map(str::to_owned)));
            let expected = expected.map(|(a, n)| (a, n.map(str::to_owned)));
            assert_eq!(got, expected, "case {name}");
        }
    }

    /// The socket path: poll wakes on a datagram, drains all queued ones,
    /// drops malformed ones, and times out when nothing comes.
    #[test]
    fn socketpair_source() {
        use nix::sys::socket::{send, socketpair};
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Datagram,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let mut source = UeventSocket::from_fd(ours);
        assert_eq!(
            source.wait(Duration::from_millis(10)).unwrap(),
            Wake::TimedOut
        );
        for msg in [
            &b"add@/devices/virtual/block/vdb\0SUBSYSTEM=block\0"[..],
            b"garbage",
            b"add@/devices/virtual/block/vdc\0SUBSYSTEM=block\0",
        ] {
            send(theirs.as_raw_fd(), msg, MsgFlags::empty()).unwrap();
        }
        let Wake::Events(events) = source.wait(Duration::from_secs(5)).unwrap() else {
            panic!("expected events");
        };
        let names: Vec<_> = events.iter().filter_map(Uevent::block_name).collect();
        assert_eq!(names, ["vdb", "vdc"]);
    }
}
