//! The `liftoff` command when it is not PID 1: subcommands for people and
//! image builds.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use crate::abi;

const USAGE: &str = "\
usage: liftoff <command> [options]

As PID 1 (the initramfs's /init or the root's /sbin/init) liftoff boots the
machine; run by hand, it offers these commands:

  analyze [--file PATH] [--json] [time | blame | critical-chain [UNIT] | plot]
        Where the boot's time went, from the boot record
        /run/liftoff/boot.json, as systemd-analyze shows it;
        `liftoff analyze --help` for details.

  cmdline [--proc | --file PATH | STRING]
        Parse a kernel command line exactly as liftoff does at boot and print
        the resulting boot plan as JSON. Exit 1, with every error, when a key
        is malformed. Default: --proc (this machine's /proc/cmdline).

  initramfs --output FILE [--liftoff PATH] [--modules-dir DIR]
            [--module NAME]... [--compress gzip|none] [--file HOST:GUEST[:MODE]]...
        Build a gzip newc initramfs holding liftoff as /init, the named
        kernel modules with their dependencies and index, and its config;
        `liftoff initramfs --help` for details.

  ctl [--socket PATH] [--json] <command> [UNIT]
        Ask the running liftoff about its units or tell it what to do:
        list, status [UNIT], start|stop|restart UNIT, reboot, poweroff,
        halt. Root only; `liftoff ctl --help` for details.

  notify [--ready] [--status TEXT] [--stopping] [--watchdog] [KEY=VALUE]...
        Send an sd_notify message to $NOTIFY_SOCKET from a unit's script,
        as systemd-notify does.

  verity <format|verify|open|close|dump> ...
        veritysetup's commands, options, output and exit codes, with the
        hash tree built on every core; `liftoff verity --help` for details.

  --help      this text
  --version   liftoff's version
";

/// A subcommand that takes one option naming a file, `--json`, `--help`,
/// and words: `liftoff ctl` and `liftoff analyze`.
pub(crate) struct PathJsonCommand {
    /// How its messages begin (`liftoff ctl`).
    pub name: &'static str,
    /// Its usage text.
    pub usage: &'static str,
    /// The file option, without `--`.
    pub path_option: &'static str,
    /// The file when the option is not given.
    pub default_path: &'static str,
}

/// What a [`PathJsonCommand`] was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PathJson<T> {
    /// The file option's value, or the default.
    pub path: PathBuf,
    /// Whether `--json` was given.
    pub json: bool,
    /// The words, as `parse_words` read them.
    pub command: T,
}

impl PathJsonCommand {
    /// Reads the options, then the words with `parse_words`. `--help`
    /// prints the usage to `out`, a usage error prints it to `err` after
    /// the message; either way the error is the exit status.
    pub(crate) fn parse<T>(
        &self,
        parser: &mut lexopt::Parser,
        out: &mut impl Write,
        err: &mut impl Write,
        parse_words: impl FnOnce(&[String]) -> Result<T, String>,
    ) -> Result<PathJson<T>, i32> {
        let usage_error =
            |err: &mut _, message: &str| Err(usage_error_of(err, self.name, self.usage, message));
        let words = match self.options(parser) {
            Ok(Some(words)) => words,
            Ok(None) => {
                let _ = out.write_all(self.usage.as_bytes());
                return Err(0);
            }
            Err(message) => return usage_error(err, &message),
        };
        match parse_words(&words.command) {
            Ok(command) => Ok(PathJson {
                path: words.path,
                json: words.json,
                command,
            }),
            Err(message) => usage_error(err, &message),
        }
    }

    /// The file (the option's, or the default), `--json` and the words;
    /// `None` for `--help`.
    fn options(
        &self,
        parser: &mut lexopt::Parser,
    ) -> Result<Option<PathJson<Vec<String>>>, String> {
        use lexopt::prelude::*;
        let (mut path, mut json, mut words) = (None, false, Vec::new());
        while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
            match arg {
                Long(name) if name == self.path_option => {
                    path = Some(parser.value().map_err(|e| e.to_string())?.into());
                }
                Long("json") => json = true,
                Long("help") | Short('h') => return Ok(None),
                Value(word) => words.push(
                    word.into_string()
                        .map_err(|word| format!("{word:?} is not UTF-8"))?,
                ),
                other => return Err(other.unexpected().to_string()),
            }
        }
        Ok(Some(PathJson {
            path: path.unwrap_or_else(|| PathBuf::from(self.default_path)),
            json,
            command: words,
        }))
    }
}

/// Exit status for a malformed invocation (as sysexits' EX_USAGE, but 2 like
/// most Unix tools).
const EXIT_USAGE: i32 = 2;

/// Writes `NAME: MESSAGE`, a blank line and `usage` to `err`; returns
/// [`EXIT_USAGE`].
fn usage_error_of(err: &mut impl Write, name: &str, usage: &str, message: &str) -> i32 {
    let _ = writeln!(err, "{name}: {message}\n\n{usage}");
    EXIT_USAGE
}

/// Runs a subcommand; returns the process exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    run(args, &mut out, &mut err)
}

/// [`main`] with the output streams as parameters, for tests.
pub fn run(
    args: impl IntoIterator<Item = OsString>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> i32 {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let command = match parser.next() {
        Ok(Some(Value(cmd))) => cmd,
        Ok(Some(Long("help") | Short('h'))) => {
            let _ = out.write_all(USAGE.as_bytes());
            return 0;
        }
        Ok(Some(Long("version"))) => {
            let _ = writeln!(out, "liftoff {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Ok(Some(other)) => return usage_error(err, &other.unexpected().to_string()),
        Ok(None) => return usage_error(err, "missing command"),
        Err(e) => return usage_error(err, &e.to_string()),
    };
    match command.to_str() {
        Some("analyze") => crate::analyze::cli::run(parser, out, err),
        Some("cmdline") => cmdline(parser, out, err),
        Some("ctl") => crate::ctl::client::run(parser, out, err),
        Some("notify") => crate::notify_cli::run(parser, out, err),
        Some("initramfs") => crate::initramfs_cli::run(parser, out, err),
        Some("verity") => crate::verity_cli::run(parser, out, err),
        _ => usage_error(err, &format!("unknown command {:?}", command)),
    }
}

fn usage_error(err: &mut impl Write, message: &str) -> i32 {
    usage_error_of(err, "liftoff", USAGE, message)
}

/// Where `liftoff cmdline` reads the command line from.
enum Source {
    File(PathBuf),
    Text(String),
}

fn cmdline(mut parser: lexopt::Parser, out: &mut impl Write, err: &mut impl Write) -> i32 {
    use lexopt::prelude::*;
    let mut source = None;
    loop {
        let next = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return usage_error(err, &e.to_string()),
        };
        let this = match next {
            Long("proc") => Source::File(abi::PROC_CMDLINE.into()),
            Long("file") => match parser.value() {
                Ok(path) => Source::File(path.into()),
                Err(e) => return usage_error(err, &e.to_string()),
            },
            Long("help") | Short('h') => {
                let _ = out.write_all(USAGE.as_bytes());
                return 0;
            }
            Value(text) => match text.into_string() {
                Ok(text) => Source::Text(text),
                Err(text) => {
                    return usage_error(err, &format!("command line {text:?} is not UTF-8"));
                }
            },
            other => return usage_error(err, &other.unexpected().to_string()),
        };
        if source.replace(this).is_some() {
            return usage_error(err, "give one of --proc, --file PATH or STRING");
        }
    }
    let bytes = match source.unwrap_or(Source::File(abi::PROC_CMDLINE.into())) {
        Source::Text(text) => text.into_bytes(),
        // Bytes, as PID 1 reads them: the kernel does not require UTF-8.
        Source::File(path) => match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = writeln!(err, "liftoff cmdline: cannot read {}: {e}", path.display());
                return 1;
            }
        },
    };
    // /proc/cmdline ends in a newline that is not part of any value.
    match kernel_cmdline::parse_bytes(bytes.strip_suffix(b"\n").unwrap_or(&bytes)) {
        Ok(plan) => match serde_json::to_string_pretty(&plan) {
            Ok(json) => {
                let _ = writeln!(out, "{json}");
                0
            }
            Err(e) => {
                let _ = writeln!(err, "liftoff cmdline: cannot encode the plan: {e}");
                1
            }
        },
        Err(rejected) => {
            for e in &rejected.errors {
                let _ = writeln!(err, "liftoff cmdline: {e}");
            }
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(args: &[&str]) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(args.iter().map(OsString::from), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn prints_the_plan_as_json() {
        let (code, out, err) = call(&[
            "cmdline",
            "root=PARTUUID=00000000-0000-0000-0000-000000000001 ro liftoff.log=debug",
        ]);
        assert_eq!(code, 0, "{err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["log"], "debug");
        assert!(
            out.contains("00000000-0000-0000-0000-000000000001"),
            "{out}"
        );
    }

    #[test]
    fn malformed_key_exits_1_naming_key_and_text() {
        let (code, out, err) = call(&["cmdline", "liftoff.on_failure=explode"]);
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(
            err.contains("liftoff.on_failure") && err.contains("explode"),
            "{err}"
        );
    }

    #[test]
    fn reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cmdline");
        std::fs::write(&path, "quiet liftoff.log=warn\n").unwrap();
        let (code, out, _) = call(&["cmdline", "--file", path.to_str().unwrap()]);
        assert_eq!(code, 0);
        assert!(out.contains("\"warn\""), "{out}");
        std::fs::write(&path, b"quiet vendor.blob=\xff\xfe liftoff.log=debug\n").unwrap();
        let (code, out, err) = call(&["cmdline", "--file", path.to_str().unwrap()]);
        assert_eq!(
            code, 0,
            "a non-UTF-8 unknown key is kept, not an error: {err}"
        );
        assert!(out.contains("\"debug\""), "{out}");
        let (code, _, err) = call(&["cmdline", "--file", "/nonexistent/cmdline"]);
        assert_eq!(code, 1);
        assert!(err.contains("/nonexistent/cmdline"), "{err}");
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(call(&[]).0, 2);
        assert_eq!(call(&["frobnicate"]).0, 2);
        assert_eq!(call(&["cmdline", "--proc", "x=1"]).0, 2);
        assert_eq!(call(&["cmdline", "--bogus"]).0, 2);
        assert_eq!(call(&["--help"]).0, 0);
    }

    #[test]
    fn ctl_is_dispatched() {
        let (code, out, _) = call(&["ctl", "--help"]);
        assert_eq!(code, 0);
        assert!(out.starts_with("usage: liftoff ctl"), "{out}");
        let (code, _, err) = call(&["ctl", "frobnicate"]);
        assert_eq!(code, 2);
        assert!(err.starts_with("liftoff ctl: unknown command"), "{err}");
        let (_, out, _) = call(&["--help"]);
        assert!(out.contains("ctl [--socket PATH]"), "{out}");
    }
}
