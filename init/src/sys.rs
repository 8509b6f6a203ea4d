//! The only `unsafe` in liftoff: the few calls nix does not wrap safely.

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::signal::SigSet;

use crate::abi;

/// The signal number `SIGRTMIN + offset` as this C library numbers it.
///
/// glibc reserves the first two real-time signals for its threads, so
/// `SIGRTMIN` is 34 and systemd's `SIGRTMIN+4` (poweroff) is 38: the numbers
/// `systemctl` and `kill -s RTMIN+4` send on a glibc system.
pub fn rt_signal(offset: i32) -> i32 {
    libc::SIGRTMIN() + offset
}

/// A signal set holding exactly `signals`, which may include real-time
/// signals (nix's `Signal` enum cannot name them).
pub fn sigset(signals: &[i32]) -> SigSet {
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set it is given; the pointer
    // is to a live, properly aligned MaybeUninit<sigset_t>. It cannot fail
    // for a valid pointer.
    unsafe { libc::sigemptyset(raw.as_mut_ptr()) };
    for &signo in signals {
        // SAFETY: the set was initialised above; sigaddset only fails with
        // EINVAL for a number outside 1..=SIGRTMAX, which leaves the set
        // unchanged (callers pass constants and rt_signal offsets below 16).
        unsafe { libc::sigaddset(raw.as_mut_ptr(), signo) };
    }
    // SAFETY: initialised by sigemptyset above, as from_sigset_t_unchecked
    // requires.
    unsafe { SigSet::from_sigset_t_unchecked(raw.assume_init()) }
}

/// Marks the block device open as `device` read-only in the kernel
/// (`blockdev --setro`): later opens for writing fail with EACCES/EROFS.
/// nix has no wrapper for this ioctl.
pub fn set_block_read_only(device: &File) -> Result<(), Errno> {
    let read_only: libc::c_int = 1;
    // SAFETY: BLKROSET reads one `int` through its argument
    // (block/ioctl.c, blkdev_roset: `get_user(n, (int __user *)arg)`);
    // `read_only` is a live, aligned c_int for the whole call, and the fd
    // is valid because `device` is borrowed for it. The kernel writes
    // nothing back.
    let rc = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            abi::BLKROSET as _,
            &read_only as *const libc::c_int,
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rt_signals_are_glibc_numbered() {
        assert_eq!(rt_signal(0), 34);
        assert_eq!(rt_signal(4), 38);
    }

    #[test]
    fn sigset_holds_exactly_the_given_signals() {
        let set = sigset(&[libc::SIGCHLD, rt_signal(4)]);
        let raw: &libc::sigset_t = set.as_ref();
        for signo in 1..=libc::SIGRTMAX() {
            // SAFETY: `raw` is an initialised set and signo is in range.
            let member = unsafe { libc::sigismember(raw, signo) } == 1;
            assert_eq!(
                member,
                signo == libc::SIGCHLD || signo == 38,
                "signal {signo}"
            );
        }
    }
}
