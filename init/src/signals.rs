//! What each signal means to PID 1, with systemd's meanings (systemd(1),
//! "Signals") so that `systemctl`-style tooling and the kernel's
//! ctrl-alt-delete behave the same on a liftoff host.

use crate::abi::rt;
use crate::shutdown::{Power, Request};
use crate::sys::rt_signal;

/// What PID 1 does about a signal it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// A child changed state: reap.
    Child,
    /// Bring the machine down.
    Shutdown(Request),
}

/// Every signal PID 1 listens for; all of them are blocked and read from a
/// signalfd, so none can interrupt PID 1 between two steps.
pub fn handled() -> Vec<i32> {
    let mut signals = vec![libc::SIGCHLD, libc::SIGINT, libc::SIGTERM, libc::SIGPWR];
    signals.extend(
        [
            rt::HALT,
            rt::POWEROFF,
            rt::REBOOT,
            rt::HALT_NOW,
            rt::POWEROFF_NOW,
            rt::REBOOT_NOW,
        ]
        .map(rt_signal),
    );
    signals
}

/// The meaning of `signo`, or `None` for a signal PID 1 does not handle.
pub fn meaning(signo: i32) -> Option<Meaning> {
    let orderly = |power| {
        Some(Meaning::Shutdown(Request {
            power,
            immediate: false,
        }))
    };
    let immediate = |power| {
        Some(Meaning::Shutdown(Request {
            power,
            immediate: true,
        }))
    };
    match signo {
        libc::SIGCHLD => Some(Meaning::Child),
        // The kernel sends SIGINT to PID 1 on ctrl-alt-delete once
        // reboot(RB_DISABLE_CAD) has been called.
        libc::SIGINT => orderly(Power::Reboot),
        // Not systemd's re-exec: on a liftoff host SIGTERM to PID 1 is an
        // orderly reboot, as with sysvinit and busybox init.
        libc::SIGTERM => orderly(Power::Reboot),
        // A UPS or the hypervisor reports a power failure.
        libc::SIGPWR => orderly(Power::Poweroff),
        s if s == rt_signal(rt::HALT) => orderly(Power::Halt),
        s if s == rt_signal(rt::POWEROFF) => orderly(Power::Poweroff),
        s if s == rt_signal(rt::REBOOT) => orderly(Power::Reboot),
        s if s == rt_signal(rt::HALT_NOW) => immediate(Power::Halt),
        s if s == rt_signal(rt::POWEROFF_NOW) => immediate(Power::Poweroff),
        s if s == rt_signal(rt::REBOOT_NOW) => immediate(Power::Reboot),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_meanings() {
        let cases = [
            ("ctrl-alt-del", libc::SIGINT, Power::Reboot, false),
            ("sigterm", libc::SIGTERM, Power::Reboot, false),
            ("sigpwr", libc::SIGPWR, Power::Poweroff, false),
            ("rtmin+3", 37, Power::Halt, false),
            ("rtmin+4", 38, Power::Poweroff, false),
            ("rtmin+5", 39, Power::Reboot, false),
            ("rtmin+13", 47, Power::Halt, true),
            ("rtmin+14", 48, Power::Poweroff, true),
            ("rtmin+15", 49, Power::Reboot, true),
        ];
        for (name, signo, power, immediate) in cases {
            assert_eq!(
                meaning(signo),
                Some(Meaning::Shutdown(Request { power, immediate })),
                "{name}"
            );
            assert!(handled().contains(&signo), "{name} is not blocked and read");
        }
        assert_eq!(meaning(libc::SIGCHLD), Some(Meaning::Child));
        assert_eq!(meaning(libc::SIGHUP), None);
        assert_eq!(meaning(libc::SIGUSR1), None);
    }
}
