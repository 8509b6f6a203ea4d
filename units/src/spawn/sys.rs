//! The only `unsafe` in the units crate, and the real [`ChildSys`]: the
//! syscalls a unit's child makes between fork and exec, plus kill(2).
//!
//! nix wraps most of them safely. The raw calls are for what it lacks:
//! `close_range(2)` (no wrapper in nix 0.31); `rt_sigaction(2)`, because
//! glibc's `sigaction` refuses its reserved signals; `kill(2)` with
//! real-time signals, which nix's `Signal` enum cannot name; and
//! registering `pre_exec` itself.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::child::{self, ChildPlan, ChildStep, ChildSys};

/// Opened in the child: `/proc/self` in the parent would name PID 1's own
/// file, and writing it there would change PID 1's score.
const PROC_SELF_OOM_SCORE_ADJ: &std::ffi::CStr = c"/proc/self/oom_score_adj";

/// Opened in the child, for the same reason. `thread-self`, not `self`:
/// the exec context is a per-thread attribute (proc(5); libselinux's
/// `setexeccon` writes this path). The forked child has one thread, so
/// both would name it, but this one says what is meant.
const PROC_THREAD_SELF_ATTR_EXEC: &CStr = c"/proc/thread-self/attr/exec";

/// The kernel's `_NSIG` (include/uapi/asm-generic/signal.h, x86): signals
/// are 1..=64.
const KERNEL_NSIG: libc::c_int = 64;
/// `sizeof(sigset_t)` as the kernel counts it: 64 bits.
const KERNEL_SIGSET_SIZE: libc::size_t = 8;

/// Without close_range(2), descriptors are marked one by one up to the
/// hard RLIMIT_NOFILE, but never past this many.
const MAX_FALLBACK_FD: u64 = 1 << 16;

/// The real syscalls, with the descriptors the parent opened for the child.
#[derive(Debug)]
pub(crate) struct Kernel {
    /// The unit's `cgroup.procs`, opened for writing (O_CLOEXEC).
    pub cgroup_procs: OwnedFd,
    /// The write end of the step pipe (O_CLOEXEC): a failing step writes
    /// its byte there before std reports the errno.
    pub report: OwnedFd,
}

impl Kernel {
    /// Tells the parent which step failed; best effort, as the errno still
    /// reaches it through std's own pipe.
    fn report(&self, step: ChildStep) {
        let _ = nix::unistd::write(&self.report, &[step as u8]);
    }
}

/// The errno a `caps` call left: the crate turns it into a string, but
/// reads it (`io::Error::last_os_error`) before anything else runs, and
/// the allocation that follows does not reset it on success.
fn caps_errno<T>(result: Result<T, caps::errors::CapsError>) -> Result<T, Errno> {
    result.map_err(|_| match Errno::last() {
        Errno::UnknownErrno => Errno::EINVAL,
        errno => errno,
    })
}

impl ChildSys for Kernel {
    fn join_cgroup(&mut self) -> Result<(), Errno> {
        nix::unistd::write(&self.cgroup_procs, b"0").map(drop)
    }

    fn setsid(&mut self) -> Result<(), Errno> {
        nix::unistd::setsid().map(drop)
    }

    fn reset_signals(&mut self) -> Result<(), Errno> {
        // Dispositions first, then the mask: a signal unblocked while an
        // inherited handler were still installed would run PID 1's code.
        let default = [0u64; 4];
        for signo in 1..=KERNEL_NSIG {
            if signo == libc::SIGKILL || signo == libc::SIGSTOP {
                continue;
            }
            // SAFETY: rt_sigaction(2) reads a `struct sigaction` from the
            // first pointer: `default` is a live, aligned, all-zero buffer
            // at least as large as the kernel's struct on every
            // architecture (32 bytes on x86_64 and arm64: handler, flags,
            // restorer, mask), and all zero means SIG_DFL, no flags, an
            // empty mask. Nothing is written back (the old-action pointer
            // is null); 8 is the kernel's sigset_t size. The raw syscall,
            // not libc::sigaction: glibc refuses (EINVAL) to touch the two
            // real-time signals it reserves (32, 33), yet an ignored
            // disposition of them survives exec like any other, and glibc's
            // posix_spawn in a threaded parent sets exactly that (seen as
            // SigIgn 0x180000000 in a child of cargo test).
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signo,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    KERNEL_SIGSET_SIZE,
                )
            };
            Errno::result(rc)?;
        }
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
    }

    fn set_exec_context(&mut self, context: &CStr) -> Result<(), Errno> {
        let file = nix::fcntl::open(
            PROC_THREAD_SELF_ATTR_EXEC,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // The bytes of the context exactly, no NUL or newline: SELinux
        // takes the write's length as the context's (selinux_setprocattr).
        // It takes all of it or fails, so a short write is not expected;
        // it would be a truncated context, and is refused.
        let bytes = context.to_bytes();
        match nix::unistd::write(&file, bytes)? {
            n if n == bytes.len() => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    fn set_oom_score_adj(&mut self, value: &[u8]) -> Result<(), Errno> {
        let file = nix::fcntl::open(
            PROC_SELF_OOM_SCORE_ADJ,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        nix::unistd::write(&file, value).map(drop)
    }

    fn setrlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> Result<(), Errno> {
        setrlimit(resource, soft, hard)
    }

    fn set_keepcaps(&mut self) -> Result<(), Errno> {
        nix::sys::prctl::set_keepcaps(true)
    }

    fn drop_bounding(&mut self, cap: Capability) -> Result<(), Errno> {
        caps_errno(caps::drop(None, CapSet::Bounding, cap))
    }

    fn setgroups(&mut self, groups: &[Gid]) -> Result<(), Errno> {
        nix::unistd::setgroups(groups)
    }

    fn setgid(&mut self, gid: Gid) -> Result<(), Errno> {
        nix::unistd::setgid(gid)
    }

    fn setuid(&mut self, uid: Uid) -> Result<(), Errno> {
        nix::unistd::setuid(uid)
    }

    fn set_capabilities(
        &mut self,
        permitted: &CapsHashSet,
        inheritable: &CapsHashSet,
    ) -> Result<(), Errno> {
        // Each call is one capget + capset that replaces one set, and
        // capset(2) checks every intermediate state, so the order matters:
        // effective first (a subset of what is still permitted), then
        // inheritable (must lie within the old permitted and the bounding
        // set), and permitted last, when nothing effective lies outside it.
        caps_errno(caps::set(None, CapSet::Effective, permitted))?;
        caps_errno(caps::set(None, CapSet::Inheritable, inheritable))?;
        caps_errno(caps::set(None, CapSet::Permitted, permitted))
    }

    fn raise_ambient(&mut self, cap: Capability) -> Result<(), Errno> {
        caps_errno(caps::raise(None, CapSet::Ambient, cap))
    }

    fn chdir(&mut self, dir: &CString) -> Result<(), Errno> {
        nix::unistd::chdir(dir.as_c_str())
    }

    fn set_no_new_privs(&mut self) -> Result<(), Errno> {
        nix::sys::prctl::set_no_new_privs()
    }

    fn cloexec_from(&mut self, first: u32) -> Result<(), Errno> {
        // SAFETY: close_range(2) takes three integers and touches no
        // memory of ours. With CLOSE_RANGE_CLOEXEC it closes nothing: it
        // only sets FD_CLOEXEC, so no OwnedFd anywhere is invalidated
        // before exec. nix 0.31 has no wrapper; the flag needs Linux 5.11.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        match Errno::result(rc) {
            Ok(_) => Ok(()),
            // Older kernels: ENOSYS (before 5.9) or EINVAL (the flag,
            // before 5.11). Mark them one by one instead.
            Err(Errno::ENOSYS | Errno::EINVAL) => {
                let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
                let last = hard.min(MAX_FALLBACK_FD);
                for fd in u64::from(first)..last {
                    let Ok(fd) = libc::c_int::try_from(fd) else {
                        break;
                    };
                    // SAFETY: fcntl(F_SETFD) takes integers only; on a
                    // number that is not open it fails with EBADF, which
                    // is ignored. It only sets FD_CLOEXEC (the one fd
                    // flag), so it closes nothing.
                    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                }
                Ok(())
            }
            Err(errno) => Err(errno),
        }
    }
}

/// Has `command` run the plan in its child, after fork and before exec.
/// A failing step writes its byte to `kernel.report` and fails the spawn
/// with its errno.
pub(crate) fn run_plan_in_child(command: &mut Command, plan: ChildPlan, mut kernel: Kernel) {
    let in_child = move || match child::setup(&plan, &mut kernel) {
        Ok(()) => Ok(()),
        Err((step, errno)) => {
            kernel.report(step);
            Err(io::Error::from_raw_os_error(errno as i32))
        }
    };
    // SAFETY: pre_exec's contract is that the closure runs in a forked
    // copy of a possibly multi-threaded process, where only
    // async-signal-safe work is sound. It holds here because:
    // * PID 1 is single-threaded (STYLE.md), so no lock (malloc's, stdio's)
    //   can be held by a thread that does not exist in the child; and the
    //   host tests' threads are harmless too, since glibc's fork() resets
    //   malloc's locks in the child. Even so the closure allocates nothing
    //   on success: everything is resolved in the parent (ChildPlan), and
    //   the `caps` calls build no set, they only take ours. Only a
    //   failure path formats an error string (inside `caps`).
    // * Every call is a plain syscall wrapper (write, setsid, sigaction,
    //   sigprocmask, open, setrlimit, prctl, setgroups, setgid, setuid,
    //   capget/capset, chdir, close_range, fcntl).
    // * Descriptors it uses are owned by the closure and stay valid until
    //   the Command (holding the closure) is dropped in the parent.
    unsafe {
        command.pre_exec(in_child);
    }
}

/// kill(2) with any signal number, real-time ones included. A pid of 0
/// or less is refused with EINVAL: kill(0) would signal PID 1's own
/// process group and kill(-1) every process on the machine.
pub(crate) fn kill(pid: i32, signal: i32) -> Result<(), Errno> {
    if pid <= 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: kill(2) takes two integers and touches no memory. The safe
    // nix::sys::signal::kill takes a `Signal`, which cannot name the
    // real-time signals a unit's `stop_signal` may be.
    let rc = unsafe { libc::kill(pid, signal) };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_refuses_process_groups_and_everyone() {
        for pid in [0, -1, -42] {
            assert_eq!(kill(pid, 0), Err(Errno::EINVAL), "{pid}");
        }
    }

    #[test]
    fn kill_reports_a_missing_process() {
        // Pids are at most 2^22 (PID_MAX_LIMIT), so this one is free.
        assert_eq!(kill(i32::MAX, 0), Err(Errno::ESRCH));
    }
}
