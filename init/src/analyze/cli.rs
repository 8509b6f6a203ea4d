//! The `liftoff analyze` command: reads the record, writes a report.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::record::Record;
use super::{AnalyzeError, DEFAULT_RECORD, blame, critical_chain, plot, plot_data, time};
use crate::cli::{PathJson, PathJsonCommand};

/// The usage text of `liftoff analyze`.
pub const USAGE: &str = "\
usage: liftoff analyze [--file PATH] [--json] [time | blame | critical-chain [UNIT] | plot]

Where the boot's time went, as systemd-analyze shows it, from the boot
record liftoff writes when boot completes (docs/analyze.md).

  time                   the kernel, initramfs and userspace times, each
                         phase, the module loads and the units' ready
                         times (the default)
  blame                  the units by time to ready, longest first
  critical-chain [UNIT]  the units that decided when boot completed (or
                         when UNIT became ready)
  plot                   the boot as an SVG image:
                         liftoff analyze plot > boot.svg

  --file PATH   the boot record (default /run/liftoff/boot.json)
  --json        the same information as JSON

Exit status: 0 done, 1 no or bad record, 2 usage error.
";

/// `liftoff analyze`'s options.
const ANALYZE: PathJsonCommand = PathJsonCommand {
    name: "liftoff analyze",
    usage: USAGE,
    path_option: "file",
    default_path: DEFAULT_RECORD,
};

/// A report `liftoff analyze` can write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `time`.
    Time,
    /// `blame`.
    Blame,
    /// `critical-chain [UNIT]`.
    CriticalChain(Option<String>),
    /// `plot`.
    Plot,
}

/// The command the words after the options name; `time` when there are
/// none, as systemd-analyze.
pub fn parse_words(words: &[String]) -> Result<Command, String> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] | ["time"] => Ok(Command::Time),
        ["blame"] => Ok(Command::Blame),
        ["critical-chain"] => Ok(Command::CriticalChain(None)),
        ["critical-chain", unit] => Ok(Command::CriticalChain(Some((*unit).to_owned()))),
        ["plot"] => Ok(Command::Plot),
        ["critical-chain", ..] => Err("critical-chain: takes at most one UNIT".to_owned()),
        [command @ ("time" | "blame" | "plot"), ..] => {
            Err(format!("{command}: too many arguments"))
        }
        [other, ..] => Err(format!("unknown command {other:?}")),
    }
}

/// The report `command` makes of `record`: text, or JSON with `json`.
pub fn report(record: &Record, command: &Command, json: bool) -> Result<String, AnalyzeError> {
    fn encode(value: &impl Serialize) -> Result<String, AnalyzeError> {
        serde_json::to_string_pretty(value)
            .map(|text| text + "\n")
            .map_err(AnalyzeError::Encode)
    }
    Ok(match (command, json) {
        (Command::Time, false) => time(record).render(),
        (Command::Time, true) => encode(&time(record))?,
        (Command::Blame, false) => blame(record).render(),
        (Command::Blame, true) => encode(&blame(record))?,
        (Command::CriticalChain(unit), false) => critical_chain(record, unit.as_deref())?.render(),
        (Command::CriticalChain(unit), true) => encode(&critical_chain(record, unit.as_deref())?)?,
        (Command::Plot, false) => plot(record),
        (Command::Plot, true) => encode(&plot_data(record))?,
    })
}

/// Runs `liftoff analyze` with the arguments after `analyze`; returns the
/// exit status.
pub fn run(mut parser: lexopt::Parser, out: &mut impl Write, err: &mut impl Write) -> i32 {
    let PathJson {
        path: file,
        json,
        command,
    } = match ANALYZE.parse(&mut parser, out, err, parse_words) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    let text = match super::read(&file).and_then(|record| report(&record, &command, json)) {
        Ok(text) => text,
        Err(e) => {
            let _ = writeln!(err, "liftoff analyze: {}", crate::failure::chain(&e));
            if let Some(hint) = hint(&file, &e) {
                let _ = writeln!(err, "liftoff analyze: {hint}");
            }
            return 1;
        }
    };
    // A failed write matters here: `plot > boot.svg` on a full disk.
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(err, "liftoff analyze: cannot write the report: {e}");
            1
        }
    }
}

/// What to tell a person whose record is missing from the default place.
fn hint(file: &Path, e: &AnalyzeError) -> Option<String> {
    match e {
        AnalyzeError::Read { source, .. }
            if source.kind() == io::ErrorKind::NotFound && file == Path::new(DEFAULT_RECORD) =>
        {
            Some(format!(
                "boot has not completed yet: liftoff writes {DEFAULT_RECORD} when it does \
                 (--file PATH reads a copied record)"
            ))
        }
        _ => None,
    }
}
