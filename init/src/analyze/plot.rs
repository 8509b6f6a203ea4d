//! `liftoff analyze plot`: the boot as a standalone SVG, one bar a row on
//! a time axis, as `systemd-analyze plot` draws it.
//!
//! [`plot_data`] decides the bars (that is `plot --json`); [`plot`] draws
//! them. Every bar is a `<rect>` with `data-kind` (`phase`, `module` or
//! `unit`) and `data-name`, followed by its label; the boot-complete line
//! is a `<line class="boot-complete">`.

use std::fmt::Write as _;

use serde::Serialize;

use super::record::Record;
use super::text;
use super::time::{Stage, time};

/// What [`plot`] draws (docs/analyze.md, "plot").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlotData {
    /// `Startup finished in …`, the plot's title.
    pub title: String,
    /// When boot completed, since kernel start.
    pub boot_complete_us: u64,
    /// Where the time axis ends: the latest time of any bar, and at least
    /// boot complete.
    pub end_us: u64,
    /// The bars, top to bottom: the phases, the module loads, the units.
    pub bars: Vec<Bar>,
}

/// What a bar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BarKind {
    /// A boot phase (`time`'s phases).
    Phase,
    /// A kernel module load in stage 1.
    Module,
    /// A unit, from its start to ready.
    Unit,
}

/// One bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    /// What it stands for.
    pub kind: BarKind,
    /// The phase's, module's or unit's name.
    pub name: String,
    /// A phase's part of the boot; `None` for the others.
    pub stage: Option<Stage>,
    /// A unit's state; `None` for the others.
    pub state: Option<String>,
    /// Where the bar starts, since kernel start.
    pub start_us: u64,
    /// Where it ends: a unit not ready is drawn to boot complete (or its
    /// start, if that was later); a unit never started is a mark at boot
    /// complete.
    pub end_us: u64,
    /// Whether it ended: false for a unit not ready (drawn dashed).
    pub ready: bool,
    /// Whether it is a unit that failed (drawn red).
    pub failed: bool,
    /// Its label: the name and how long it took, or the unit's state.
    pub label: String,
}

/// The bars of `record`'s plot.
pub fn plot_data(record: &Record) -> PlotData {
    let report = time(record);
    let complete = record.boot_complete_us;
    let mut bars: Vec<Bar> = report
        .phases
        .iter()
        .map(|p| Bar {
            kind: BarKind::Phase,
            name: p.name.clone(),
            stage: Some(p.stage),
            state: None,
            start_us: p.start_us,
            end_us: p.end_us.max(p.start_us),
            ready: true,
            failed: false,
            label: format!("{} {}", p.name, text::span(p.duration_us)),
        })
        .collect();
    bars.extend(report.modules.iter().map(|m| Bar {
        kind: BarKind::Module,
        name: m.name.clone(),
        stage: None,
        state: None,
        start_us: m.start_us,
        end_us: m.end_us.max(m.start_us),
        ready: true,
        failed: false,
        label: format!("{} {}", m.name, text::span(m.duration_us)),
    }));
    let mut units: Vec<(bool, Bar)> = report
        .units
        .iter()
        .map(|u| {
            let (start_us, end_us) = match (u.started_us, u.ready_us) {
                (Some(started), Some(ready)) => (started, ready.max(started)),
                (None, Some(ready)) => (ready, ready),
                (Some(started), None) => (started, complete.max(started)),
                (None, None) => (complete, complete),
            };
            let label = match (u.time_to_ready_us, u.ready_us, u.started_us) {
                (Some(took), _, _) => format!("{} {}", u.name, text::span(took)),
                (None, Some(_), _) => format!("{} (start time unknown)", u.name),
                (None, None, Some(_)) => format!("{} not ready{}", u.name, u.state_note()),
                (None, None, None) => format!("{} not started{}", u.name, u.state_note()),
            };
            let bar = Bar {
                kind: BarKind::Unit,
                name: u.name.clone(),
                stage: None,
                state: Some(u.state.clone()),
                start_us,
                end_us,
                ready: u.ready_us.is_some(),
                failed: u.failed,
                label,
            };
            (u.started_us.is_none() && u.ready_us.is_none(), bar)
        })
        .collect();
    // As systemd draws them: by start (a stable sort: ties in the
    // record's order); the never started last.
    units.sort_by_key(|(never_started, b)| (*never_started, b.start_us));
    bars.extend(units.into_iter().map(|(_, bar)| bar));
    let end_us = bars.iter().map(|b| b.end_us).fold(complete, u64::max);
    PlotData {
        title: report.summary(),
        boot_complete_us: complete,
        end_us,
        bars,
    }
}

/// Pixels of the time axis per second, unless the boot is too short or
/// too long for that (see [`axis_width`]).
const PX_PER_SECOND: f64 = 100.0;
/// The time axis is at least this wide…
const MIN_AXIS_PX: f64 = 600.0;
/// …and at most this wide.
const MAX_AXIS_PX: f64 = 12_000.0;
/// Left of the axis's zero.
const LEFT_PX: f64 = 20.0;
/// Right of the axis's end, for the labels of the bars that end there.
const RIGHT_PX: f64 = 320.0;
/// Above the first bar: the title and the tick labels.
const TOP_PX: f64 = 60.0;
/// One bar's row.
const ROW_PX: f64 = 20.0;
/// A bar's height.
const BAR_PX: f64 = 14.0;
/// Below the last bar.
const BOTTOM_PX: f64 = 30.0;
/// Ticks are at least this far apart.
const MIN_TICK_PX: f64 = 80.0;

const STYLE: &str = "
  .background { fill: #ffffff; }
  text { font-family: sans-serif; font-size: 11px; fill: #222222; }
  text.title { font-size: 14px; font-weight: bold; }
  text.tick { fill: #666666; text-anchor: middle; }
  text.label-left { text-anchor: end; }
  line.tick { stroke: #dddddd; stroke-width: 1; }
  line.boot-complete { stroke: #d03030; stroke-width: 1.5; }
  text.boot-complete { fill: #d03030; }
  rect.kernel { fill: #b0b0b0; }
  rect.initramfs { fill: #8fb8de; }
  rect.userspace { fill: #4f8fcf; }
  rect.module { fill: #c9a0dc; }
  rect.unit.ready { fill: #e0a040; }
  rect.unit.not-ready { fill: #f8e4c0; stroke: #e0a040; stroke-dasharray: 3 2; }
  rect.unit.failed { fill: #f4c0c0; stroke: #d03030; stroke-dasharray: 3 2; }
";

/// The plot of `record` as a standalone SVG document.
pub fn plot(record: &Record) -> String {
    render(&plot_data(record))
}

/// The width of the time axis for a boot of `end_us`.
fn axis_width(end_us: u64) -> f64 {
    (end_us as f64 / 1e6 * PX_PER_SECOND).clamp(MIN_AXIS_PX, MAX_AXIS_PX)
}

/// The tick interval: the first of 0.1 s, 0.2 s, 0.5 s, 1 s, 2 s, 5 s,
/// 10 s, … at least [`MIN_TICK_PX`] apart.
fn tick_step_us(px_per_us: f64) -> u64 {
    let mut step: u64 = 100_000;
    let mut i = 0;
    while (step as f64) * px_per_us < MIN_TICK_PX && step < u64::MAX / 10 {
        // 0.1 → 0.2 → 0.5 → 1 → 2 → 5 → 10 …
        step = if i % 3 == 1 { step / 2 * 5 } else { step * 2 };
        i += 1;
    }
    step
}

/// `data` drawn as SVG.
pub fn render(data: &PlotData) -> String {
    let end_us = data.end_us.max(1);
    let axis = axis_width(end_us);
    let px_per_us = axis / end_us as f64;
    let x = |us: u64| LEFT_PX + us as f64 * px_per_us;
    let rows = data.bars.len() as f64;
    let width = LEFT_PX + axis + RIGHT_PX;
    let height = TOP_PX + rows * ROW_PX + BOTTOM_PX;
    let bottom = TOP_PX + rows * ROW_PX;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\">\n\
         <style>{STYLE}</style>\n\
         <rect class=\"background\" width=\"100%\" height=\"100%\"/>\n\
         <text class=\"title\" x=\"{LEFT_PX}\" y=\"20\">{}</text>\n",
        escape(&data.title)
    );

    // The time axis: a tick and its label every step.
    let step = tick_step_us(px_per_us);
    let mut tick: u64 = 0;
    while tick <= end_us {
        let label = if step < 1_000_000 {
            format!("{}.{}s", tick / 1_000_000, (tick / 100_000) % 10)
        } else {
            format!("{}s", tick / 1_000_000)
        };
        let _ = writeln!(
            svg,
            "<line class=\"tick\" x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{bottom:.1}\"/>\
             <text class=\"tick\" x=\"{0:.1}\" y=\"{2:.1}\">{label}</text>",
            x(tick),
            TOP_PX - 12.0,
            TOP_PX - 16.0,
        );
        match tick.checked_add(step) {
            Some(next) => tick = next,
            None => break,
        }
    }

    for (i, bar) in data.bars.iter().enumerate() {
        let y = TOP_PX + i as f64 * ROW_PX + (ROW_PX - BAR_PX) / 2.0;
        let (x0, x1) = (x(bar.start_us), x(bar.end_us));
        let class = match (bar.kind, bar.stage) {
            (BarKind::Phase, Some(Stage::Kernel)) => "phase kernel",
            (BarKind::Phase, Some(Stage::Initramfs)) => "phase initramfs",
            (BarKind::Phase, _) => "phase userspace",
            (BarKind::Module, _) => "module",
            (BarKind::Unit, _) if bar.failed => "unit failed",
            (BarKind::Unit, _) if bar.ready => "unit ready",
            (BarKind::Unit, _) => "unit not-ready",
        };
        let kind = match bar.kind {
            BarKind::Phase => "phase",
            BarKind::Module => "module",
            BarKind::Unit => "unit",
        };
        let tooltip = format!(
            "{}: {} to {}",
            bar.label,
            text::seconds(bar.start_us),
            text::seconds(bar.end_us)
        );
        let _ = writeln!(
            svg,
            "<rect class=\"{class}\" data-kind=\"{kind}\" data-name=\"{}\" x=\"{x0:.1}\" \
             y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR_PX:.1}\"><title>{}</title></rect>",
            escape(&bar.name),
            (x1 - x0).max(1.0),
            escape(&tooltip),
        );
        // The label right of the bar, or left of it for a bar that ends
        // in the last quarter of the axis.
        let text_y = y + BAR_PX - 3.0;
        let (label_x, label_class) = if x1 - LEFT_PX > axis * 0.75 && x0 - LEFT_PX > axis * 0.25 {
            (x0 - 4.0, "label label-left")
        } else {
            (x1.max(x0 + 1.0) + 4.0, "label")
        };
        let _ = writeln!(
            svg,
            "<text class=\"{label_class}\" x=\"{label_x:.1}\" y=\"{text_y:.1}\">{}</text>",
            escape(&bar.label)
        );
    }

    let complete = x(data.boot_complete_us);
    let _ = write!(
        svg,
        "<line class=\"boot-complete\" x1=\"{complete:.1}\" y1=\"{:.1}\" x2=\"{complete:.1}\" \
         y2=\"{bottom:.1}\"/>\n\
         <text class=\"boot-complete\" x=\"{:.1}\" y=\"{:.1}\">boot complete {}</text>\n\
         </svg>\n",
        TOP_PX - 10.0,
        complete + 4.0,
        bottom + 16.0,
        text::seconds(data.boot_complete_us),
    );
    svg
}

/// `text` safe in XML character data and attribute values: the markup
/// characters as entities, and characters XML 1.0 does not allow (most
/// controls) as U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
