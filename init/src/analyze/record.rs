//! The boot record as `liftoff analyze` reads it.
//!
//! These types are the reader's own, not stage 2's `BootRecord` (which is
//! only serialized): every field but `boot_complete_us` may be missing or
//! `null`, so a record from an older or newer liftoff still reads, and
//! fields this reader does not know are ignored.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use super::AnalyzeError;

/// The boot record, `/run/liftoff/boot.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Record {
    /// Stage 1's stamps in the order they were taken, `start` first and
    /// `exec` last; empty when the machine booted without an initramfs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stage1: Vec<Stamp>,
    /// Stage 2's stamps, `start` first, `units` last.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stage2: Vec<Stamp>,
    /// CLOCK_BOOTTIME when boot completed, in microseconds.
    pub boot_complete_us: u64,
    /// The units boot waited for that failed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub failed: Vec<String>,
    /// Every unit, in the record's order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub units: Vec<Unit>,
    /// Stage 1's kernel module loads (absent from older records).
    #[serde(default, deserialize_with = "null_as_default")]
    pub modules: Vec<Module>,
}

/// One boot stamp: the end of the phase it names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Stamp {
    /// The phase that ended here (`start`: liftoff's first instruction).
    pub phase: String,
    /// CLOCK_BOOTTIME in microseconds.
    pub boottime_us: u64,
}

/// One unit's times.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Unit {
    /// The unit's name.
    pub name: String,
    /// Its state when the record was written, lower case (`running`,
    /// `done`, `failed`, `starting`, `inactive`, …); kept as text so a
    /// state this reader does not know still reads.
    #[serde(default, deserialize_with = "null_as_default")]
    pub state: String,
    /// When its start began (spawn), if it was started.
    #[serde(default)]
    pub started_us: Option<u64>,
    /// When it became ready, if it did.
    #[serde(default)]
    pub ready_us: Option<u64>,
    /// Its prerequisites by name (requires, wants and after); absent from
    /// older records.
    #[serde(default, deserialize_with = "null_as_default")]
    pub after: Vec<String>,
}

/// One kernel module load in stage 1; loads run in parallel waves, so
/// the spans overlap.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Module {
    /// The module's name.
    pub name: String,
    /// When reading it began.
    pub start_us: u64,
    /// When the kernel had it.
    pub end_us: u64,
}

/// Parses the text of a boot record; `path` only names it in the error.
pub fn parse(path: &Path, text: &[u8]) -> Result<Record, AnalyzeError> {
    serde_json::from_slice(text).map_err(|source| AnalyzeError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Reads and parses the boot record at `path`.
pub fn read(path: &Path) -> Result<Record, AnalyzeError> {
    let text = std::fs::read(path).map_err(|source| AnalyzeError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// `null` reads as the default, as a missing field does.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Record {
    /// The unit called `name`; the first, should the record name one
    /// twice.
    pub fn unit(&self, name: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.name == name)
    }

    /// CLOCK_BOOTTIME at liftoff's first instruction: stage 1's first
    /// stamp, or stage 2's without stage 1; `None` in a record with no
    /// stamps at all.
    pub fn liftoff_start_us(&self) -> Option<u64> {
        self.stage1
            .first()
            .or(self.stage2.first())
            .map(|s| s.boottime_us)
    }

    /// Whether `unit` failed: in `failed`, or in state `failed`.
    pub fn has_failed(&self, unit: &Unit) -> bool {
        unit.state == "failed" || self.failed.contains(&unit.name)
    }
}
