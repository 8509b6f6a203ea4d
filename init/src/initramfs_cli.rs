//! `liftoff initramfs`: options in, [`crate::initramfs`] out, a summary on
//! stdout (docs/initramfs.md).

use std::io::Write;
use std::path::PathBuf;

use crate::initramfs::{Compression, ExtraFile, ImageSpec, build};

/// The binary that runs `liftoff initramfs`, the default `/init`.
const SELF_EXE: &str = "/proc/self/exe";

const USAGE: &str = "\
usage: liftoff initramfs --output FILE [--liftoff PATH] [--modules-dir DIR]
                         [--module NAME]... [--compress gzip|none]
                         [--file HOST:GUEST[:MODE]]...

Build a newc initramfs holding liftoff as /init, the named kernel modules
with their dependencies, their modules.liftoff index, and
/etc/liftoff/initramfs.toml.

  --output FILE         the archive to write (replaced atomically)
  --liftoff PATH        the static liftoff for /init (default: this binary)
  --modules-dir DIR     a kernel's lib/modules/<release> folder
  --module NAME         a module (or exact alias) to include; repeatable
  --compress KIND       gzip (default) or none
  --file HOST:GUEST[:MODE]
                        copy a host file in; MODE is octal (default: the
                        host file's permission bits); repeatable
";

/// Exit status for a malformed invocation.
const EXIT_USAGE: i32 = 2;

/// Runs `liftoff initramfs` with the arguments after the command name.
pub fn run(mut parser: lexopt::Parser, out: &mut impl Write, err: &mut impl Write) -> i32 {
    use lexopt::prelude::*;
    let mut output: Option<PathBuf> = None;
    let mut compression = Compression::default();
    let mut spec = ImageSpec {
        liftoff: PathBuf::from(SELF_EXE),
        ..ImageSpec::default()
    };
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return usage_error(err, &e.to_string()),
        };
        let result: Result<(), String> = match arg {
            Long("output") => value(&mut parser).map(|v| output = Some(v.into())),
            Long("liftoff") => value(&mut parser).map(|v| spec.liftoff = v.into()),
            Long("modules-dir") => value(&mut parser).map(|v| spec.modules_dir = Some(v.into())),
            Long("module") => text(&mut parser, "--module").map(|v| spec.modules.push(v)),
            Long("compress") => text(&mut parser, "--compress").and_then(|v| {
                compression = Compression::from_name(&v)
                    .ok_or_else(|| format!("--compress {v:?}: expected gzip or none"))?;
                Ok(())
            }),
            Long("file") => text(&mut parser, "--file").and_then(|v| {
                spec.files
                    .push(ExtraFile::parse(&v).map_err(|e| e.to_string())?);
                Ok(())
            }),
            Long("help") | Short('h') => {
                let _ = out.write_all(USAGE.as_bytes());
                return 0;
            }
            other => Err(other.unexpected().to_string()),
        };
        if let Err(message) = result {
            return usage_error(err, &message);
        }
    }
    let Some(output) = output else {
        return usage_error(err, "missing --output FILE");
    };
    if !spec.modules.is_empty() && spec.modules_dir.is_none() {
        return usage_error(err, "--module needs --modules-dir");
    }

    let written = build(&spec).and_then(|image| Ok((image.write(&output, compression)?, image)));
    let (written, image) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = writeln!(err, "liftoff initramfs: {}", crate::failure::chain(&e));
            return 1;
        }
    };
    let percent = if written.archive == 0 {
        0.0
    } else {
        written.stored as f64 * 100.0 / written.archive as f64
    };
    let names: Vec<&str> = image.modules.iter().map(|m| m.as_str()).collect();
    let mut summary = format!(
        "{}: {} bytes ({compression}), {} bytes uncompressed ({percent:.1}%)\n",
        output.display(),
        written.stored,
        written.archive,
    );
    summary.push_str(&format!("  /init: {}\n", spec.liftoff.display()));
    if let Some(release) = &image.release {
        summary.push_str(&format!(
            "  modules ({release}): {} included: {}\n",
            names.len(),
            if names.is_empty() {
                "-".to_owned()
            } else {
                names.join(" ")
            }
        ));
    }
    if !image.builtin.is_empty() {
        let builtin: Vec<&str> = image.builtin.iter().map(|m| m.as_str()).collect();
        summary.push_str(&format!("  built in, skipped: {}\n", builtin.join(" ")));
    }
    for skipped in &image.skipped_softdeps {
        summary.push_str(&format!(
            "  soft dependency {} of {} not found, skipped\n",
            skipped.softdep, skipped.module
        ));
    }
    if !spec.files.is_empty() {
        summary.push_str(&format!("  extra files: {}\n", spec.files.len()));
    }
    let _ = out.write_all(summary.as_bytes());
    0
}

fn value(parser: &mut lexopt::Parser) -> Result<std::ffi::OsString, String> {
    parser.value().map_err(|e| e.to_string())
}

fn text(parser: &mut lexopt::Parser, option: &str) -> Result<String, String> {
    value(parser)?
        .into_string()
        .map_err(|v| format!("{option} {v:?} is not UTF-8"))
}

fn usage_error(err: &mut impl Write, message: &str) -> i32 {
    let _ = writeln!(err, "liftoff initramfs: {message}\n\n{USAGE}");
    EXIT_USAGE
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::fs;

    use super::*;
    use crate::initramfs::archive::tests::parse;
    use crate::initramfs::elf::tests::tiny_elf;
    use crate::initramfs::read_archive;

    fn call(args: &[&str]) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let code = run(lexopt::Parser::from_args(args), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn usage_errors_exit_2() {
        for (name, args) in [
            ("no output", &[][..]),
            (
                "bad compression",
                &["--output", "x", "--compress", "xz"][..],
            ),
            (
                "module without tree",
                &["--output", "x", "--module", "ext4"][..],
            ),
            ("bad file spec", &["--output", "x", "--file", "a"][..]),
            ("unknown option", &["--output", "x", "--bogus"][..]),
            ("stray value", &["--output", "x", "extra"][..]),
        ] {
            let (code, out, err) = call(args);
            assert_eq!(code, 2, "{name}: {err}");
            assert!(out.is_empty(), "{name}");
            assert!(err.contains("usage: liftoff initramfs"), "{name}: {err}");
        }
        assert_eq!(call(&["--help"]).0, 0);
    }

    #[test]
    fn builds_and_summarises() {
        let dir = tempfile::tempdir().unwrap();
        let liftoff = dir.path().join("liftoff");
        fs::write(&liftoff, tiny_elf(None)).unwrap();
        let output = dir.path().join("initrd.img");
        let (code, out, err) = call(&[
            "--output",
            output.to_str().unwrap(),
            "--liftoff",
            liftoff.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("(gzip)") && out.contains("uncompressed"),
            "{out}"
        );
        let members = parse(&read_archive(&output).unwrap());
        assert!(members.iter().any(|m| m.name == "init"));
        assert!(
            members
                .iter()
                .any(|m| m.name == "etc/liftoff/initramfs.toml")
        );
    }

    #[test]
    fn failures_exit_1_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("initrd.img");
        let (code, _, err) = call(&[
            "--output",
            output.to_str().unwrap(),
            "--liftoff",
            "/bin/true",
            "--compress",
            "none",
        ]);
        assert_eq!(code, 1);
        assert!(
            err.contains("/bin/true") && err.contains("dynamically linked"),
            "{err}"
        );
        assert!(!output.exists());
    }
}
