//! `liftoff analyze critical-chain`: the units that decided when boot
//! completed (or when one unit became ready).
//!
//! From the unit that became ready last at or before boot complete (or
//! the unit asked for), repeatedly to the prerequisite in its `after`
//! list that became ready latest, but no later than the unit was started
//! (one ready after that cannot have held it back), down to a unit with
//! none. Names not in the record are skipped; a unit already in the chain
//! is never taken again, so a cycle in `after` ends the chain.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::AnalyzeError;
use super::record::{Record, Unit};
use super::text;
use super::time::UnitTime;

/// The critical chain (docs/analyze.md, "critical-chain").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    /// When boot completed, since kernel start.
    pub boot_complete_us: u64,
    /// The units boot waited for that failed: never ready, so in no chain.
    pub failed: Vec<String>,
    /// The chain, the unit that became ready last first, each followed by
    /// the prerequisite that held it back; empty when no unit was ready
    /// by boot complete.
    pub chain: Vec<UnitTime>,
}

/// The critical chain of `record`: to `unit` if given, else to the unit
/// that became ready last at or before boot complete.
pub fn critical_chain(record: &Record, unit: Option<&str>) -> Result<Chain, AnalyzeError> {
    let top = match unit {
        Some(name) => Some(record.unit(name).ok_or_else(|| AnalyzeError::UnknownUnit {
            unit: name.to_owned(),
        })?),
        None => record
            .units
            .iter()
            .filter(|u| u.ready_us.is_some_and(|r| r <= record.boot_complete_us))
            .max_by(|a, b| {
                a.ready_us
                    .cmp(&b.ready_us)
                    .then_with(|| b.name.cmp(&a.name))
            }),
    };
    // By name, the first of a name the record has twice, as
    // [`Record::unit`] finds it.
    let mut by_name: HashMap<&str, &Unit> = HashMap::new();
    for u in &record.units {
        by_name.entry(u.name.as_str()).or_insert(u);
    }
    let mut chain: Vec<&Unit> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut next = top;
    while let Some(unit) = next {
        chain.push(unit);
        seen.insert(unit.name.as_str());
        // Ready no later than this unit started; without a start time, no
        // later than it became ready.
        let limit = unit.started_us.or(unit.ready_us);
        next = unit
            .after
            .iter()
            .filter_map(|name| by_name.get(name.as_str()).copied())
            .filter(|p| !seen.contains(p.name.as_str()))
            .filter(|p| match (p.ready_us, limit) {
                (Some(ready), Some(limit)) => ready <= limit,
                (Some(_), None) => true,
                (None, _) => false,
            })
            .max_by(|a, b| {
                a.ready_us
                    .cmp(&b.ready_us)
                    .then_with(|| b.name.cmp(&a.name))
            });
    }
    Ok(Chain {
        boot_complete_us: record.boot_complete_us,
        failed: record.failed.clone(),
        chain: chain.iter().map(|u| UnitTime::new(record, u)).collect(),
    })
}

impl Chain {
    /// The report as people read it, as systemd-analyze writes it:
    ///
    /// ```text
    /// host-containerd @12.571s +3.9s
    /// └─network @8.667s +186ms
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::from(
            "The time when the unit became ready is printed after the \"@\" character.\n\
             The time the unit took to become ready is printed after the \"+\" character.\n\n",
        );
        if self.chain.is_empty() {
            out.push_str(&format!(
                "no unit was ready by boot complete @{}\n",
                text::seconds(self.boot_complete_us)
            ));
        }
        for (depth, unit) in self.chain.iter().enumerate() {
            if depth > 0 {
                out.push_str(&"  ".repeat(depth - 1));
                out.push_str("└─");
            }
            out.push_str(&unit.name);
            match unit.ready_us {
                Some(ready) => out.push_str(&format!(" @{}", text::seconds(ready))),
                None => out.push_str(&format!(" not ready{}", unit.state_note())),
            }
            if let Some(took) = unit.time_to_ready_us {
                out.push_str(&format!(" +{}", text::coarse_span(took)));
            }
            out.push('\n');
        }
        if !self.failed.is_empty() {
            out.push_str(&format!(
                "\nboot complete @{} was degraded: {} failed, never ready: {}\n",
                text::seconds(self.boot_complete_us),
                self.failed.len(),
                self.failed.join(", ")
            ));
        }
        out
    }
}
