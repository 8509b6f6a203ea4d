//! `boot-probe`: the one measuring point `cargo xtask bench boot` uses for
//! every init system it compares (liftoff, systemd, a busybox shell
//! initramfs), so that none is timed by its own clock.
//!
//! Started by each system's PID 1 as early as it can start anything on
//! the root, it tries to connect to containerd's socket every
//! [`POLL`] until a connection is accepted (containerd listens only once
//! its API serves), then writes one line to the kernel log and to its
//! stdout:
//!
//! ```text
//! BENCH containerd-ready boottime_us=12345678 pid1_rss_kib=2800 polls=412
//! ```
//!
//! `boottime_us` is CLOCK_BOOTTIME (time since the kernel started, the
//! kernel log's clock) at the accepted connection; `pid1_rss_kib` is PID
//! 1's resident memory at that moment ([`pid1_rss_kib`]). It
//! gives up after [`LIMIT`] with `BENCH containerd-timeout`. No
//! dependencies beyond std and nix's clock: it must be small and start
//! fast on every system.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

/// containerd's socket; the first argument replaces it.
const SOCKET: &str = "/run/containerd/containerd.sock";
/// Time between connection attempts: fine against boots of seconds under
/// TCG, cheap enough not to slow them.
const POLL: Duration = Duration::from_millis(5);
/// When to give up.
const LIMIT: Duration = Duration::from_secs(600);

fn main() {
    let socket = std::env::args().nth(1).unwrap_or_else(|| SOCKET.to_owned());
    let start = Instant::now();
    let mut polls = 0u64;
    let line = loop {
        polls += 1;
        if UnixStream::connect(&socket).is_ok() {
            break format!(
                "BENCH containerd-ready boottime_us={} pid1_rss_kib={} polls={polls}",
                boottime_us(),
                pid1_rss_kib().map_or_else(|| "?".to_owned(), |k| k.to_string()),
            );
        }
        if start.elapsed() > LIMIT {
            break format!("BENCH containerd-timeout socket={socket} polls={polls}");
        }
        std::thread::sleep(POLL);
    };
    report(&line);
}

/// CLOCK_BOOTTIME in microseconds (0 if the clock cannot be read).
fn boottime_us() -> u64 {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|t| Duration::from(t).as_micros())
        .ok()
        .and_then(|us| u64::try_from(us).ok())
        .unwrap_or(0)
}

/// PID 1's resident memory in KiB: `Rss` of `/proc/1/smaps_rollup`,
/// which the kernel counts from the page tables. `VmRSS` in
/// `/proc/1/status` comes from counters that, before Linux 6.2, each task
/// folds in only every 64 page faults: for a PID 1 that has faulted a
/// handful of pages since (busybox init) it reads a few KiB. `VmRSS` is
/// the fallback where smaps_rollup is missing.
fn pid1_rss_kib() -> Option<u64> {
    let field = |file: &str, key: &str| -> Option<u64> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    field("/proc/1/smaps_rollup", "Rss:").or_else(|| field("/proc/1/status", "VmRSS:"))
}

/// Writes `line` to the kernel log (one record) and to stdout; either may
/// be missing on some system, the other still reports.
fn report(line: &str) {
    if let Ok(mut kmsg) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = kmsg.write_all(line.as_bytes());
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
