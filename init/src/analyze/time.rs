//! `liftoff analyze time`: how long the kernel, the initramfs (stage 1)
//! and userspace (stage 2) took, and each of their phases.

use serde::Serialize;

use super::record::{Record, Stamp, Unit};
use super::text::{self, Row};

/// The name of the last phase of stage 2: from its last stamp (`units`,
/// the units loaded) until boot completed (every unit boot waits for
/// ready).
pub const BOOT_COMPLETE_PHASE: &str = "boot-complete";

/// Where the boot's time went (docs/analyze.md, "time").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeReport {
    /// From kernel start to liftoff's first instruction.
    pub kernel_us: u64,
    /// Stage 1, from its `start` stamp to its last (`exec`); `None`
    /// without an initramfs.
    pub initramfs_us: Option<u64>,
    /// From the end of stage 1 (or, without it, liftoff's first
    /// instruction) until boot completed; the exec into the root's
    /// liftoff is stage 2's `start` phase.
    pub userspace_us: u64,
    /// When boot completed, since kernel start: the three above together.
    pub boot_complete_us: u64,
    /// The units boot waited for that failed (boot completed degraded).
    pub failed: Vec<String>,
    /// Every phase in order: `kernel`, stage 1's, stage 2's, and
    /// [`BOOT_COMPLETE_PHASE`].
    pub phases: Vec<Phase>,
    /// Stage 1's module loads, in the record's (load) order.
    pub modules: Vec<ModuleTime>,
    /// Every unit: those ready by ready time, then the others in the
    /// record's order.
    pub units: Vec<UnitTime>,
}

/// The part of the boot a phase belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Before liftoff: the kernel (and whatever ran before it).
    Kernel,
    /// Stage 1, in the initramfs.
    Initramfs,
    /// Stage 2, on the root.
    Userspace,
}

/// One phase: the time up to the stamp that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    /// Which part of the boot it belongs to.
    pub stage: Stage,
    /// The stamp that ends it (`kernel` for the kernel's phase,
    /// [`BOOT_COMPLETE_PHASE`] for the last).
    pub name: String,
    /// When it began (the previous stamp), since kernel start.
    pub start_us: u64,
    /// When it ended (its stamp).
    pub end_us: u64,
    /// `end_us - start_us`; zero if the stamps run backwards.
    pub duration_us: u64,
}

/// One module load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleTime {
    /// The module.
    pub name: String,
    /// When reading it began.
    pub start_us: u64,
    /// When the kernel had it.
    pub end_us: u64,
    /// `end_us - start_us`.
    pub duration_us: u64,
}

/// One unit's times, as `time`, `blame` and `critical-chain` report them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitTime {
    /// The unit.
    pub name: String,
    /// Its state when the record was written.
    pub state: String,
    /// When its start began, if it was started.
    pub started_us: Option<u64>,
    /// When it became ready, if it did.
    pub ready_us: Option<u64>,
    /// `ready_us - started_us`, if both are known.
    pub time_to_ready_us: Option<u64>,
    /// Whether it failed (listed in the record's `failed`, or in state
    /// `failed`).
    pub failed: bool,
}

impl UnitTime {
    /// `unit`'s times from `record`.
    pub fn new(record: &Record, unit: &Unit) -> UnitTime {
        UnitTime {
            name: unit.name.clone(),
            state: unit.state.clone(),
            started_us: unit.started_us,
            ready_us: unit.ready_us,
            time_to_ready_us: unit
                .ready_us
                .zip(unit.started_us)
                .map(|(ready, started)| ready.saturating_sub(started)),
            failed: record.has_failed(unit),
        }
    }

    /// The row `time` and `blame` print: time to ready, name, and why
    /// there is no time to ready when there is none.
    pub(super) fn row(&self, at: bool) -> Row {
        match (self.time_to_ready_us, self.ready_us) {
            (Some(took), Some(ready)) => (
                text::span(took),
                self.name.clone(),
                if at {
                    format!("@{}", text::seconds(ready))
                } else {
                    String::new()
                },
            ),
            (_, Some(ready)) => (
                "-".to_owned(),
                self.name.clone(),
                format!("@{} (start time unknown)", text::seconds(ready)),
            ),
            (_, None) => (
                "-".to_owned(),
                self.name.clone(),
                format!("not ready{}", self.state_note()),
            ),
        }
    }

    /// ` (STATE)`, or nothing for a record without states.
    pub(super) fn state_note(&self) -> String {
        if self.state.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.state)
        }
    }
}

/// The time report of `record`.
pub fn time(record: &Record) -> TimeReport {
    let complete = record.boot_complete_us;
    let liftoff = record.liftoff_start_us().unwrap_or(0);
    let mut phases = vec![phase(Stage::Kernel, "kernel", 0, liftoff)];
    phases.extend(
        record
            .stage1
            .windows(2)
            .filter_map(|w| match w {
                [previous, stamp] => Some((previous, stamp)),
                _ => None,
            })
            .map(|(previous, stamp)| {
                phase(
                    Stage::Initramfs,
                    &stamp.phase,
                    previous.boottime_us,
                    stamp.boottime_us,
                )
            }),
    );
    let initramfs_us = match (record.stage1.first(), record.stage1.last()) {
        (Some(first), Some(last)) => Some(last.boottime_us.saturating_sub(first.boottime_us)),
        _ => None,
    };
    // Stage 2's first stamp ends the kernel's phase without stage 1, and
    // the exec from stage 1's `exec` with it.
    let mut previous: Option<&Stamp> = record.stage1.last();
    for stamp in &record.stage2 {
        if let Some(p) = previous {
            phases.push(phase(
                Stage::Userspace,
                &stamp.phase,
                p.boottime_us,
                stamp.boottime_us,
            ));
        }
        previous = Some(stamp);
    }
    let userspace_from = record.stage1.last().map_or(liftoff, |s| s.boottime_us);
    let mut units: Vec<UnitTime> = record
        .units
        .iter()
        .map(|u| UnitTime::new(record, u))
        .collect();
    // A stable sort: ties, and the units never ready, in the record's order.
    units.sort_by_key(|u| (u.ready_us.is_none(), u.ready_us));
    let last = previous.map_or(liftoff, |s| s.boottime_us);
    phases.push(phase(Stage::Userspace, BOOT_COMPLETE_PHASE, last, complete));
    TimeReport {
        kernel_us: liftoff,
        initramfs_us,
        userspace_us: complete.saturating_sub(userspace_from),
        boot_complete_us: complete,
        failed: record.failed.clone(),
        phases,
        modules: record
            .modules
            .iter()
            .map(|m| ModuleTime {
                name: m.name.clone(),
                start_us: m.start_us,
                end_us: m.end_us,
                duration_us: m.end_us.saturating_sub(m.start_us),
            })
            .collect(),
        units,
    }
}

fn phase(stage: Stage, name: &str, start_us: u64, end_us: u64) -> Phase {
    Phase {
        stage,
        name: name.to_owned(),
        start_us,
        end_us,
        duration_us: end_us.saturating_sub(start_us),
    }
}

impl TimeReport {
    /// `Startup finished in 2.651s (kernel) + 5.337s (initramfs) +
    /// 4.634s (userspace) = 12.622s`.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} (kernel)", text::span(self.kernel_us))];
        if let Some(initramfs) = self.initramfs_us {
            parts.push(format!("{} (initramfs)", text::span(initramfs)));
        }
        parts.push(format!("{} (userspace)", text::span(self.userspace_us)));
        format!(
            "Startup finished in {} = {}",
            parts.join(" + "),
            text::span(self.boot_complete_us)
        )
    }

    /// The report as people read it (docs/analyze.md has an example).
    pub fn render(&self) -> String {
        let mut out = self.summary();
        out.push('\n');
        out.push_str(&format!(
            "boot complete at {} since kernel start",
            text::seconds(self.boot_complete_us)
        ));
        if !self.failed.is_empty() {
            out.push_str(&format!(
                ", degraded: {} failed: {}",
                self.failed.len(),
                self.failed.join(", ")
            ));
        }
        out.push('\n');

        let phase_row = |p: &Phase| -> Row {
            (
                text::span(p.duration_us),
                p.name.clone(),
                format!("@{}", text::seconds(p.end_us)),
            )
        };
        let mut sections: Vec<(String, Vec<Row>)> = Vec::new();
        for (stage, title) in [
            (Stage::Kernel, "kernel:"),
            (Stage::Initramfs, "initramfs (stage 1):"),
            (Stage::Userspace, "userspace (stage 2):"),
        ] {
            let rows: Vec<Row> = self
                .phases
                .iter()
                .filter(|p| p.stage == stage)
                .map(phase_row)
                .collect();
            if !rows.is_empty() {
                sections.push((title.to_owned(), rows));
            }
        }
        if !self.modules.is_empty() {
            let rows = self
                .modules
                .iter()
                .map(|m| {
                    (
                        text::span(m.duration_us),
                        m.name.clone(),
                        format!("@{}", text::seconds(m.end_us)),
                    )
                })
                .collect();
            sections.push(("modules (stage 1, loaded in parallel):".to_owned(), rows));
        }
        if !self.units.is_empty() {
            let rows = self.units.iter().map(|u| u.row(true)).collect();
            sections.push(("units (time to ready, ready at):".to_owned(), rows));
        }
        let widths = text::widths(sections.iter().flat_map(|(_, rows)| rows));
        for (title, rows) in &sections {
            out.push('\n');
            out.push_str(title);
            out.push('\n');
            for row in rows {
                out.push_str(&text::line("  ", widths, row));
            }
        }
        out
    }
}
