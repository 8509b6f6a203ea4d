//! The one reaper: every child's exit status comes through here, whether
//! PID 1 started it or it was re-parented to PID 1 as an orphan.

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// What one pass of the reaper found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// The children that exited, with how.
    pub exited: Vec<WaitStatus>,
    /// No children are left at all (waitpid said ECHILD).
    pub none_left: bool,
}

/// Reaps every child that has exited, without blocking: loops on
/// `waitpid(-1, WNOHANG)` until nothing is ready (s6-svscan's "reaper").
/// One SIGCHLD may stand for many exits, so one call must drain them all.
pub fn reap_all() -> Reaped {
    let mut reaped = Reaped::default();
    loop {
        match waitpid(
            Pid::from_raw(-1),
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Ok(WaitStatus::StillAlive) => return reaped,
            Ok(status) => reaped.exited.push(status),
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {
                reaped.none_left = true;
                return reaped;
            }
            // waitpid(-1, WNOHANG) fails only with ECHILD, EINTR or EINVAL
            // (bad flags, a bug): treat as nothing to reap.
            Err(_) => return reaped,
        }
    }
}
