//! `liftoff analyze blame`: the units by how long they took to become
//! ready, longest first.

use serde::Serialize;

use super::record::Record;
use super::text;
use super::time::UnitTime;

/// The units, slowest first (docs/analyze.md, "blame").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blame {
    /// The units with a time to ready, longest first (ties by name), then
    /// those without one (not ready, or never started) in the record's
    /// order.
    pub units: Vec<UnitTime>,
}

/// The blame report of `record`.
pub fn blame(record: &Record) -> Blame {
    let (mut timed, untimed): (Vec<UnitTime>, Vec<UnitTime>) = record
        .units
        .iter()
        .map(|u| UnitTime::new(record, u))
        .partition(|u| u.time_to_ready_us.is_some());
    timed.sort_by(|a, b| {
        b.time_to_ready_us
            .cmp(&a.time_to_ready_us)
            .then_with(|| a.name.cmp(&b.name))
    });
    timed.extend(untimed);
    Blame { units: timed }
}

impl Blame {
    /// The report as people read it: `   7.123s control`, one unit a line.
    pub fn render(&self) -> String {
        let rows: Vec<text::Row> = self.units.iter().map(|u| u.row(false)).collect();
        text::table(&rows, "")
    }
}
