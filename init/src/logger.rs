//! PID 1's log: `/dev/kmsg` with a syslog priority, and the console.
//!
//! Every record goes to the kernel log. The kernel itself echoes a record to
//! the console when its level is below `console_loglevel` (the first field
//! of /proc/sys/kernel/printk; `quiet` lowers it to 4), so liftoff writes a
//! record to the console directly only when the kernel will not: each line
//! appears there exactly once, whatever `quiet` or `loglevel=` say.
//!
//! Until `/dev` is mounted and the command line read there is nowhere to
//! write and no level to filter by, so records wait in a small buffer and
//! are flushed when [`attach`] opens the sinks.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::abi;
use crate::stamps::boottime;

/// Records kept while no sink is open; the oldest are dropped beyond this.
const PENDING_MAX: usize = 256;

/// The kernel's default `console_loglevel` (CONSOLE_LOGLEVEL_DEFAULT),
/// assumed until /proc/sys/kernel/printk can be read.
const DEFAULT_CONSOLE_LOGLEVEL: u8 = 7;

/// The syslog severity for a `log` level (RFC 5424 numbering, as printk).
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Maps the command line's level to the `log` facade's filter.
pub fn filter(level: kernel_cmdline::LogLevel) -> LevelFilter {
    use kernel_cmdline::LogLevel as L;
    match level {
        L::Error => LevelFilter::Error,
        L::Warn => LevelFilter::Warn,
        L::Info => LevelFilter::Info,
        L::Debug => LevelFilter::Debug,
        L::Trace => LevelFilter::Trace,
    }
}

/// One kmsg record per line of `message`: `<PRI>liftoff: line\n`.
pub fn kmsg_records(level: Level, message: &str) -> Vec<Vec<u8>> {
    tagged_records(level, "liftoff", message)
}

/// [`kmsg_records`] under another tag: a unit's output goes to the kernel
/// log as `<PRI>NAME[PID]: line`, the way syslog tags a daemon's lines.
pub fn tagged_records(level: Level, tag: &str, message: &str) -> Vec<Vec<u8>> {
    let pri = abi::LOG_DAEMON | severity(level);
    message
        .lines()
        .map(|line| format!("<{pri}>{tag}: {line}\n").into_bytes())
        .collect()
}

/// Whether the kernel leaves `level` off the console, so liftoff must write
/// it there itself (printk: a record is printed when its level is below
/// `console_loglevel`).
pub fn console_needs_copy(level: Level, console_loglevel: u8) -> bool {
    severity(level) >= console_loglevel
}

/// A console line that looks like the kernel's own: `[    1.234567] liftoff: …`.
pub fn console_line(uptime: std::time::Duration, message: &str) -> String {
    tagged_console_line(uptime, "liftoff", message)
}

/// [`console_line`] under another tag.
pub fn tagged_console_line(uptime: std::time::Duration, tag: &str, message: &str) -> String {
    let mut out = String::new();
    for line in message.lines() {
        out.push_str(&format!(
            "[{:5}.{:06}] {tag}: {line}\n",
            uptime.as_secs(),
            uptime.subsec_micros()
        ));
    }
    out
}

/// Reads `console_loglevel` from the text of /proc/sys/kernel/printk.
pub fn parse_console_loglevel(printk: &str) -> Option<u8> {
    printk.split_ascii_whitespace().next()?.parse().ok()
}

struct Sinks {
    kmsg: Option<File>,
    console: Option<File>,
    console_loglevel: u8,
    attached: bool,
    /// Whether the command line's level has been applied.
    level_set: bool,
    pending: Vec<(Level, String)>,
}

/// The logger behind the `log` facade while liftoff runs as PID 1.
#[derive(Debug)]
pub struct Logger {
    sinks: Mutex<Sinks>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("kmsg", &self.kmsg.is_some())
            .field("console", &self.console.is_some())
            .field("console_loglevel", &self.console_loglevel)
            .field("pending", &self.pending.len())
            .finish()
    }
}

static LOGGER: Logger = Logger {
    sinks: Mutex::new(Sinks {
        kmsg: None,
        console: None,
        console_loglevel: DEFAULT_CONSOLE_LOGLEVEL,
        attached: false,
        level_set: false,
        pending: Vec::new(),
    }),
};

impl Sinks {
    fn write(&mut self, level: Level, message: &str) {
        self.write_tagged(level, "liftoff", message);
    }

    fn write_tagged(&mut self, level: Level, tag: &str, message: &str) {
        if let Some(kmsg) = self.kmsg.as_mut() {
            for record in tagged_records(level, tag, message) {
                // Best effort: a full or rate-limited kmsg must not stop PID 1.
                let _ = kmsg.write_all(&record);
            }
        }
        let kernel_echoes =
            self.kmsg.is_some() && !console_needs_copy(level, self.console_loglevel);
        if let (false, Some(console)) = (kernel_echoes, self.console.as_mut()) {
            let _ = console.write_all(tagged_console_line(boottime(), tag, message).as_bytes());
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // A panic while the lock was held poisons it; the log must still work
        // for the failure action that follows.
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        let message = record.args().to_string();
        if sinks.attached {
            sinks.write(record.level(), &message);
        } else {
            if sinks.pending.len() == PENDING_MAX {
                sinks.pending.remove(0);
            }
            sinks.pending.push((record.level(), message));
        }
    }

    fn flush(&self) {}
}

/// Logs a line a unit wrote to its kmsg output, tagged `NAME[PID]`, at
/// info level. Dropped before [`attach`] (units only run after it).
pub fn unit_output(tag: &str, line: &str) {
    if log::max_level() < LevelFilter::Info {
        return;
    }
    let mut sinks = LOGGER.sinks.lock().unwrap_or_else(|e| e.into_inner());
    if sinks.attached {
        sinks.write_tagged(Level::Info, tag, line);
    }
}

/// Makes this logger the `log` facade's. Until [`set_level`] is called
/// every record is kept, so that `liftoff.log=debug` also shows what
/// happened before the command line could be read. Called once, first
/// thing in PID 1.
pub fn install() {
    // Fails only if a logger is already set, which then keeps working.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Trace);
}

/// Sets the level from the command line; records already waiting for the
/// sinks that are above it are dropped.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
    let mut sinks = LOGGER.sinks.lock().unwrap_or_else(|e| e.into_inner());
    sinks.level_set = true;
    sinks.pending.retain(|(l, _)| *l <= level);
}

/// Opens the kmsg and console sinks, reads `console_loglevel`, and flushes
/// what was logged before (at no more than the level set so far: `Info`
/// if the command line was never read). Missing sinks are skipped: logging
/// is never a reason to stop booting. Does nothing once attached.
pub fn attach() {
    attach_at(
        Path::new(abi::KMSG),
        Path::new(abi::CONSOLE),
        Path::new(abi::PROC_PRINTK),
    );
}

/// [`attach`] with the paths as parameters.
pub fn attach_at(dev_kmsg: &Path, dev_console: &Path, printk: &Path) {
    if !LOGGER
        .sinks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .level_set
    {
        // The command line was never read (an early fatal error): the
        // default level applies.
        set_level(LevelFilter::Info);
    }
    let open = |p: &Path| {
        OpenOptions::new()
            .write(true)
            .custom_flags_noctty()
            .open(p)
            .ok()
    };
    let mut sinks = LOGGER.sinks.lock().unwrap_or_else(|e| e.into_inner());
    if sinks.attached {
        return;
    }
    sinks.kmsg = open(dev_kmsg);
    sinks.console = open(dev_console);
    sinks.console_loglevel = std::fs::read_to_string(printk)
        .ok()
        .and_then(|t| parse_console_loglevel(&t))
        .unwrap_or(DEFAULT_CONSOLE_LOGLEVEL);
    sinks.attached = true;
    let pending = std::mem::take(&mut sinks.pending);
    for (level, message) in pending {
        sinks.write(level, &message);
    }
}

/// `O_NOCTTY` for the console: PID 1 must never acquire a controlling
/// terminal, or a hangup on it would signal init.
trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn kmsg_records_carry_daemon_facility_and_split_lines() {
        assert_eq!(
            kmsg_records(Level::Error, "bad"),
            vec![b"<27>liftoff: bad\n".to_vec()]
        );
        assert_eq!(
            kmsg_records(Level::Info, "ok"),
            vec![b"<30>liftoff: ok\n".to_vec()]
        );
        let two = kmsg_records(Level::Debug, "a\nb");
        assert_eq!(
            two,
            vec![b"<31>liftoff: a\n".to_vec(), b"<31>liftoff: b\n".to_vec()]
        );
    }

    #[test]
    fn console_copy_only_where_the_kernel_is_silent() {
        let cases = [
            ("quiet hides info", Level::Info, 4, true),
            ("quiet still shows errors", Level::Error, 4, false),
            ("quiet hides warnings", Level::Warn, 4, true),
            ("default shows info", Level::Info, 7, false),
            ("default hides debug", Level::Debug, 7, true),
            ("loglevel=8 shows debug", Level::Debug, 8, false),
        ];
        for (name, level, console_loglevel, want) in cases {
            assert_eq!(console_needs_copy(level, console_loglevel), want, "{name}");
        }
    }

    #[test]
    fn console_line_looks_like_printk() {
        let line = console_line(Duration::from_micros(1_234_567), "hello\nworld");
        assert_eq!(
            line,
            "[    1.234567] liftoff: hello\n[    1.234567] liftoff: world\n"
        );
    }

    #[test]
    fn printk_first_field_is_console_loglevel() {
        assert_eq!(parse_console_loglevel("4\t4\t1\t7\n"), Some(4));
        assert_eq!(parse_console_loglevel(""), None);
        assert_eq!(parse_console_loglevel("x 4"), None);
    }
}
