//! `liftoff analyze`: where the boot's time went, in the style of
//! systemd-analyze, from the boot record `/run/liftoff/boot.json`
//! (docs/analyze.md).
//!
//! A pure core over the record's text: [`parse`] turns it into a
//! [`Record`]; [`time()`], [`blame()`], [`critical_chain`] and [`plot()`] turn
//! a record into a report, each with a text form for people and a JSON
//! form ([`serde::Serialize`]) for scripts. [`cli`] is the thin shell:
//! it reads the file, picks the report and writes it.
//!
//! Times in the record are CLOCK_BOOTTIME in microseconds, i.e. since the
//! kernel started. A stamp marks the *end* of the phase it names:
//! `modules` at 3.467 s after `cmdline` at 2.696 s means loading the
//! modules took 771 ms. The record is input from a file a person may have
//! copied or edited: nothing here panics on it, times that run backwards
//! count as zero, and a unit's `after` list may name units that are not
//! in the record or form a cycle.
//!
//! Not here: the kernel's own breakdown (firmware, loader), which liftoff
//! cannot see, and `dot` graphs of the unit dependencies.

use std::io;
use std::path::PathBuf;

pub mod blame;
pub mod chain;
pub mod cli;
pub mod plot;
pub mod record;
mod text;
pub mod time;

#[cfg(test)]
mod tests;

pub use blame::{Blame, blame};
pub use chain::{Chain, critical_chain};
pub use plot::{Bar, BarKind, PlotData, plot, plot_data};
pub use record::{Module, Record, Stamp, Unit, parse, read};
pub use time::{Phase, Stage, TimeReport, UnitTime, time};

/// The boot record's default place: where PID 1 writes it when boot
/// completes (`stage2::BOOT_RECORD`).
pub const DEFAULT_RECORD: &str = crate::stage2::BOOT_RECORD;

/// Why an analysis could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The record could not be read.
    #[error("{}: cannot read", path.display())]
    Read {
        /// The record's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The record is not JSON, or not a boot record; the source names the
    /// line and column.
    #[error("{}: malformed boot record", path.display())]
    Parse {
        /// The record's path.
        path: PathBuf,
        /// What serde_json found, with its line and column.
        #[source]
        source: serde_json::Error,
    },
    /// `critical-chain UNIT` named a unit the record does not have.
    #[error("unit {unit:?} is not in the boot record")]
    UnknownUnit {
        /// The unit asked for.
        unit: String,
    },
    /// A report could not be encoded as JSON.
    #[error("cannot encode the report as JSON")]
    Encode(#[source] serde_json::Error),
}
