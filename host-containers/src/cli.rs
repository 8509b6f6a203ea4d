//! The `host-ctr` command line.
//!
//! ```text
//! host-ctr settings [--image DIR] [--local DIR]
//! host-ctr units [--image DIR] [--local DIR] [--out DIR]
//! host-ctr run --name NAME --source ARCHIVE [--superpowered]
//!              [--socket PATH] [--storage DIR] [--stop-timeout DURATION]
//! ```
//!
//! `settings` prints every host container's merged settings as JSON;
//! `units` writes a unit file for every enabled one. Both report each bad
//! settings file on stderr and still handle the others. Exit status: 0
//! when every file was good, 1 when any was not (or a unit could not be
//! written), 2 for a usage error.
//!
//! `run` runs one host container through containerd ([`crate::run`]) until
//! it exits (its exit status becomes `host-ctr`'s) or SIGTERM stops it (0);
//! 1 when it cannot be run (the error on stderr), 2 for a usage error. It
//! exists only with the crate's `run` feature (the binary has it).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use crate::generate::generate;
use crate::settings::{self, IMAGE_DIR, LOCAL_DIR};

/// Exit status: everything went well.
pub const EXIT_OK: u8 = 0;
/// Exit status: some host container's settings or unit failed; the others
/// were handled.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;

const USAGE: &str = "\
Usage: host-ctr settings [--image DIR] [--local DIR]
       host-ctr units [--image DIR] [--local DIR] [--out DIR]
       host-ctr run --name NAME --source ARCHIVE [--superpowered]
                    [--socket PATH] [--storage DIR] [--stop-timeout DURATION]

Commands:
  settings  print every host container's merged settings as JSON
  units     write a unit file for every enabled host container
  run       run one host container through containerd until it exits
            or SIGTERM stops it

Options:
  --image DIR  the image's settings (default /etc/liftoff/host-containers)
  --local DIR  the operator's overrides (default /local/host-containers)
  --out DIR    where `units` writes (default /run/liftoff/units)
  --name NAME, --source ARCHIVE, --superpowered
               the host container, its OCI archive, privileged mode
  --socket PATH   containerd's socket (default /run/host-containerd/containerd.sock)
  --storage DIR   where storage folders are made (default /local/host-containers)
  --stop-timeout DURATION
               SIGTERM to SIGKILL for the task (default 20s)
  --help       print this help

Exit status: settings, units: 0 if every settings file is good, 1 if any
is not (the others are still handled). run: the container's exit status,
0 when stopped by SIGTERM, 1 if it cannot run. 2 for a usage error.
";

/// The command and its options.
#[derive(Debug)]
enum Command {
    Settings {
        image: PathBuf,
        local: PathBuf,
    },
    Units {
        image: PathBuf,
        local: PathBuf,
        out: PathBuf,
    },
    #[cfg(feature = "run")]
    Run(crate::run::RunOptions),
    Help,
}

/// Reads the command line (without the program name).
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut command = None;
    let mut image = PathBuf::from(IMAGE_DIR);
    let mut local = PathBuf::from(LOCAL_DIR);
    let mut out = None;
    let mut run = RunArgs::default();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("help") | Short('h') => return Ok(Command::Help),
            Long("image") => image = parser.value().map_err(|e| e.to_string())?.into(),
            Long("local") => local = parser.value().map_err(|e| e.to_string())?.into(),
            Long("out") => out = Some(parser.value().map_err(|e| e.to_string())?.into()),
            Long("name") => run.name = Some(string(parser.value(), "--name")?),
            Long("source") => run.source = Some(parser.value().map_err(|e| e.to_string())?.into()),
            Long("superpowered") => run.superpowered = true,
            Long("socket") => run.socket = Some(parser.value().map_err(|e| e.to_string())?.into()),
            Long("storage") => {
                run.storage = Some(parser.value().map_err(|e| e.to_string())?.into());
            }
            Long("stop-timeout") => {
                let text = string(parser.value(), "--stop-timeout")?;
                let timeout = humantime::parse_duration(&text)
                    .map_err(|e| format!("--stop-timeout {text:?}: {e}"))?;
                run.stop_timeout = Some(timeout);
            }
            // The command is checked as soon as it is read, so that
            // `host-ctr run --name x` says "unknown command", not
            // "invalid option".
            Value(value) if command.is_none() => match value.to_str() {
                Some(known @ ("settings" | "units" | "run")) => command = Some(known.to_owned()),
                _ => return Err(format!("unknown command {value:?}")),
            },
            other => return Err(other.unexpected().to_string()),
        }
    }
    if command.as_deref() != Some("run") && run.given() {
        return Err("--name, --source, --superpowered, --socket, --storage and --stop-timeout are only for the run command".into());
    }
    match command.as_deref() {
        Some("run") => run.options(),
        Some("settings") if out.is_some() => Err("--out is only for the units command".into()),
        Some("settings") => Ok(Command::Settings { image, local }),
        Some("units") => Ok(Command::Units {
            image,
            local,
            out: out.unwrap_or_else(|| PathBuf::from(units::file::RUN_UNITS)),
        }),
        _ => Err("a command is required".into()),
    }
}

/// The options of `host-ctr run`, as given.
#[derive(Debug, Default)]
struct RunArgs {
    name: Option<String>,
    source: Option<PathBuf>,
    superpowered: bool,
    socket: Option<PathBuf>,
    storage: Option<PathBuf>,
    stop_timeout: Option<std::time::Duration>,
}

impl RunArgs {
    /// Whether any run option was given.
    fn given(&self) -> bool {
        self.name.is_some()
            || self.source.is_some()
            || self.superpowered
            || self.socket.is_some()
            || self.storage.is_some()
            || self.stop_timeout.is_some()
    }

    /// The options, checked: a name and an absolute archive path are
    /// required.
    #[cfg(feature = "run")]
    fn options(self) -> Result<Command, String> {
        let name = self.name.ok_or("run needs --name")?;
        // The container ID and the unit's name: the unit name rules.
        if !units::file::is_valid_name(&name) {
            return Err(format!(
                "--name {name:?}: 1 to 64 characters from A-Z a-z 0-9 - _ . @, not starting with ."
            ));
        }
        let source = self.source.ok_or("run needs --source")?;
        if !source.is_absolute() {
            return Err(format!(
                "--source {}: not an absolute path",
                source.display()
            ));
        }
        let mut options = crate::run::RunOptions::new(name, source);
        options.superpowered = self.superpowered;
        if let Some(socket) = self.socket {
            options.socket = socket;
        }
        if let Some(storage) = self.storage {
            options.storage_root = storage;
        }
        if let Some(timeout) = self.stop_timeout {
            options.stop_timeout = timeout;
        }
        Ok(Command::Run(options))
    }

    /// Without the `run` feature there is no run command.
    #[cfg(not(feature = "run"))]
    fn options(self) -> Result<Command, String> {
        Err("this host-ctr is built without the run command".into())
    }
}

/// An option's value as UTF-8 text.
fn string(value: Result<OsString, lexopt::Error>, option: &str) -> Result<String, String> {
    value
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|v| format!("{option} {v:?}: not UTF-8"))
}

/// Runs `host-ctr` with `args` (without the program name), writing to
/// `out` and `err`; returns the exit status.
pub fn run(
    args: impl IntoIterator<Item = OsString>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> u8 {
    // Writes to stdout and stderr are best effort: there is nowhere else
    // to report that they failed, and the exit status still tells.
    let command = match parse(args) {
        Ok(command) => command,
        Err(message) => {
            let _ = writeln!(err, "host-ctr: {message}\n\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    match command {
        Command::Help => {
            let _ = out.write_all(USAGE.as_bytes());
            EXIT_OK
        }
        Command::Settings { image, local } => {
            let loaded = settings::load(&image, &local);
            for error in &loaded.errors {
                let _ = writeln!(err, "host-ctr: {error}");
            }
            match serde_json::to_string_pretty(&loaded.settings) {
                Ok(json) => {
                    let _ = writeln!(out, "{json}");
                }
                Err(e) => {
                    let _ = writeln!(err, "host-ctr: cannot print the settings as JSON: {e}");
                    return EXIT_FAILURE;
                }
            }
            if loaded.errors.is_empty() {
                EXIT_OK
            } else {
                EXIT_FAILURE
            }
        }
        #[cfg(feature = "run")]
        Command::Run(options) => match crate::run::run(&options) {
            Ok(ended) => ended.exit_code(),
            Err(error) => {
                let _ = writeln!(err, "host-ctr: {}: {}", options.name, chain(&error));
                EXIT_FAILURE
            }
        },
        Command::Units {
            image,
            local,
            out: dir,
        } => match generate(&image, &local, &dir) {
            Ok(generated) => {
                for unit in &generated.units {
                    let _ = writeln!(out, "wrote {}", unit.path.display());
                }
                for name in &generated.disabled {
                    let _ = writeln!(out, "{name}: not enabled, no unit");
                }
                for error in &generated.errors {
                    let _ = writeln!(err, "host-ctr: {}", chain(error));
                }
                if generated.errors.is_empty() {
                    EXIT_OK
                } else {
                    EXIT_FAILURE
                }
            }
            Err(error) => {
                let _ = writeln!(err, "host-ctr: {}", chain(&error));
                EXIT_FAILURE
            }
        },
    }
}

/// `error` and its sources, joined with `: `.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;

    /// Runs the command line; returns (status, stdout, stderr).
    fn host_ctr(args: &[&str]) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(args.iter().map(OsString::from), &mut out, &mut err);
        (
            status,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn dirs() -> (tempfile::TempDir, String, String) {
        let root = tempfile::tempdir().unwrap();
        let image = root.path().join("image");
        let local = root.path().join("local");
        fs::create_dir_all(&image).unwrap();
        fs::create_dir_all(&local).unwrap();
        fs::write(
            image.join("admin.toml"),
            "source = \"/usr/share/host-containers/admin.tar\"\nsuperpowered = true\n",
        )
        .unwrap();
        fs::write(
            local.join("admin.toml"),
            "enabled = true\nrestart_delay = \"2s\"\n",
        )
        .unwrap();
        let text = |p: &Path| p.to_str().unwrap().to_owned();
        (root, text(&image), text(&local))
    }

    #[test]
    fn settings_prints_json() {
        let (_root, image, local) = dirs();
        let (status, out, err) = host_ctr(&["settings", "--image", &image, "--local", &local]);
        assert_eq!((status, err.as_str()), (EXIT_OK, ""));
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let admin = &json[0];
        assert_eq!(admin["name"], "admin");
        assert_eq!(admin["enabled"], true);
        assert_eq!(admin["superpowered"], true);
        assert_eq!(admin["source"], "/usr/share/host-containers/admin.tar");
        assert_eq!(admin["restart_delay"], "2s");
        assert_eq!(admin["restart_delay_max"], "30s");
    }

    #[test]
    fn units_writes_and_reports_errors() {
        let (root, image, local) = dirs();
        fs::write(Path::new(&local).join("bad.toml"), "enabled = \"yes\"\n").unwrap();
        let out_dir = root.path().join("units");
        let (status, out, err) = host_ctr(&[
            "units",
            "--image",
            &image,
            "--local",
            &local,
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(status, EXIT_FAILURE);
        assert_eq!(
            out,
            format!("wrote {}\n", out_dir.join("admin.toml").display())
        );
        assert_eq!(
            err,
            format!(
                "host-ctr: {}/bad.toml:1: key \"enabled\": invalid type: string \"yes\", expected a boolean\n",
                local
            )
        );
        assert!(out_dir.join("admin.toml").is_file());
    }

    #[test]
    fn usage_errors() {
        for (args, message) in [
            (&[][..], "a command is required"),
            (&["start"][..], "unknown command \"start\""),
            (&["run", "--name", "x"][..], "run needs --source"),
            (
                &["run", "--name", "../x", "--source", "/a.tar"][..],
                "--name \"../x\": 1 to 64 characters",
            ),
            (
                &["run", "--name", "x", "--source", "a.tar"][..],
                "--source a.tar: not an absolute path",
            ),
            (
                &[
                    "run",
                    "--name",
                    "x",
                    "--source",
                    "/a.tar",
                    "--stop-timeout",
                    "5",
                ][..],
                "--stop-timeout \"5\"",
            ),
            (
                &["units", "--superpowered"][..],
                "--name, --source, --superpowered",
            ),
            (
                &["settings", "--out", "/x"][..],
                "--out is only for the units command",
            ),
            (&["units", "--frob"][..], "invalid option '--frob'"),
            (&["units", "extra", "x"][..], "unexpected argument"),
        ] {
            let (status, out, err) = host_ctr(args);
            assert_eq!(status, EXIT_USAGE, "{args:?}");
            assert!(out.is_empty());
            assert!(
                err.starts_with(&format!("host-ctr: {message}")),
                "{args:?}: {err}"
            );
        }
        let (status, out, _) = host_ctr(&["--help"]);
        assert_eq!(status, EXIT_OK);
        assert!(out.starts_with("Usage: host-ctr"));
    }
}
