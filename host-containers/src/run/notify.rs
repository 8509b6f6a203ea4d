//! Telling liftoff that the host container runs: `READY=1` on the unit's
//! notify socket (`NOTIFY_SOCKET`, the sd_notify protocol liftoff speaks;
//! docs/units.md), so that the unit is ready, and the boot record shows
//! it, when the task has started rather than when `host-ctr` did.
//!
//! Written by hand: one datagram to a path socket is all it takes, and
//! the sd_notify crates add abstract-socket and fd-passing support that
//! liftoff does not use.

use std::os::unix::net::UnixDatagram;

/// Sends `READY=1` and the task's pid as the status. Outside liftoff (no
/// `NOTIFY_SOCKET`) it does nothing; a failed send is ignored, as
/// sd_notify's are: liftoff then times the unit out.
pub fn ready(pid: u32) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message = format!("READY=1\nSTATUS=task running, pid {pid}\n");
    if let Ok(socket) = UnixDatagram::unbound() {
        let _ = socket.send_to(message.as_bytes(), path);
    }
}
