//! Boot stamps: CLOCK_BOOTTIME at the start of each phase.
//!
//! CLOCK_BOOTTIME starts when the kernel does, so a stamp is "time since
//! kernel start", comparable across stages and with the kernel's own log.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};
use serde::Serialize;

/// One phase boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// Name of the phase that starts here.
    pub phase: Cow<'static, str>,
    /// CLOCK_BOOTTIME in microseconds.
    pub boottime_us: u64,
}

/// The stamps of this boot, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stamps {
    /// Stamps in the order they were taken.
    pub stamps: Vec<Stamp>,
}

/// CLOCK_BOOTTIME now. It cannot fail for a valid clock id; should it ever,
/// zero marks the stamp as unknown rather than stopping PID 1.
pub fn boottime() -> Duration {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(Duration::from)
        .unwrap_or_default()
}

impl Stamps {
    /// Records that `phase` starts now.
    pub fn mark(&mut self, phase: impl Into<Cow<'static, str>>) {
        self.mark_at(phase, boottime());
    }

    /// Records that `phase` started at `at`.
    pub fn mark_at(&mut self, phase: impl Into<Cow<'static, str>>, at: Duration) {
        let boottime_us = u64::try_from(at.as_micros()).unwrap_or(u64::MAX);
        self.stamps.push(Stamp {
            phase: phase.into(),
            boottime_us,
        });
    }

    /// One line for the log: `start 0.912s, api-filesystems 0.915s (+3.1ms), …`.
    pub fn summary(&self) -> String {
        summarize(self.stamps.iter().map(|s| (&*s.phase, s.boottime_us)))
    }
}

/// Formats `(phase, CLOCK_BOOTTIME µs)` pairs as [`Stamps::summary`] does;
/// also used for the stamps stage 1 hands to stage 2.
pub fn summarize<'a>(stamps: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let mut out = String::new();
    let mut previous: Option<u64> = None;
    for (phase, us) in stamps {
        if !out.is_empty() {
            out.push_str(", ");
        }
        let _ = write!(out, "{phase} {:.3}s", us as f64 / 1e6);
        if let Some(p) = previous {
            let _ = write!(out, " (+{:.1}ms)", us.saturating_sub(p) as f64 / 1e3);
        }
        previous = Some(us);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_shows_absolute_and_delta() {
        let mut s = Stamps::default();
        s.mark_at("start", Duration::from_micros(912_000));
        s.mark_at("api-filesystems", Duration::from_micros(915_100));
        assert_eq!(s.summary(), "start 0.912s, api-filesystems 0.915s (+3.1ms)");
    }

    #[test]
    fn boottime_moves_forward() {
        let mut s = Stamps::default();
        s.mark("a");
        s.mark("b");
        assert!(s.stamps[0].boottime_us > 0);
        assert!(s.stamps[1].boottime_us >= s.stamps[0].boottime_us);
    }
}
