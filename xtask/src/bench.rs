//! `cargo xtask bench verity`: liftoff's hash-tree build against
//! `veritysetup format`, in the same run, on the same data.
//!
//! 1. 1 GiB (by default) of random data in `target/bench/`, read once so
//!    both tools start from a warm page cache;
//! 2. the machine's single-core SHA-256 rate: a loop over the `sha2` crate
//!    hashing salt + 4 KiB blocks, as dm-verity does;
//! 3. N runs alternating the two tools (the first tool of a run alternates
//!    too), each under GNU time for its peak RSS, with a fixed salt and UUID
//!    so the root hashes must agree;
//! 4. medians, the throughput ratio, and the share of the hashing limit
//!    (cores × single-core rate) liftoff reaches; the targets are checked
//!    and a missed target fails the task.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::{XtaskError, build, deps};

/// Targets from the issue: at least 3× veritysetup's throughput, and at
/// least 90% of (cores × single-core SHA-256 rate).
const TARGET_RATIO: f64 = 3.0;
const TARGET_LIMIT_SHARE: f64 = 0.90;

const SALT: &str = "5f1a8c3e9b2d4f6071829a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f";
const UUID: &str = "7d8e0c4a-3b1f-4e2a-9c5d-6f7a8b9c0d1e";

/// Options of `cargo xtask bench verity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Runs per tool.
    pub runs: usize,
    /// Data size in MiB.
    pub mib: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { runs: 5, mib: 1024 }
    }
}

/// Which benchmarks `cargo xtask bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// `verity`: the hash-tree build against veritysetup.
    pub verity: Option<Options>,
    /// `units`: the service manager's memory, restart latency, 1000 units.
    pub units: Option<crate::bench_units::Options>,
    /// `boot`: liftoff against its peers, to containerd ready.
    pub boot: Option<crate::bench_boot::Options>,
}

/// Parses `[verity | units] [--runs N] [--mib N]`: no name runs both;
/// `--runs` defaults to 5 for verity and 3 for units.
pub fn parse(args: &[String]) -> Result<Selection, XtaskError> {
    let (mut verity, mut units, mut boot) = (false, false, false);
    let mut rest = Vec::new();
    for arg in args {
        match arg.as_str() {
            "verity" => verity = true,
            "units" => units = true,
            "boot" => boot = true,
            _ => rest.push(arg.clone()),
        }
    }
    if !verity && !units && !boot {
        (verity, units, boot) = (true, true, true);
    }
    let options = parse_options(&rest)?;
    let runs_given = rest.iter().any(|a| a == "--runs");
    Ok(Selection {
        verity: verity.then_some(options),
        units: units.then_some(crate::bench_units::Options {
            runs: if runs_given { options.runs } else { 3 },
        }),
        boot: boot.then_some(crate::bench_boot::Options {
            runs: if runs_given {
                options.runs
            } else {
                crate::bench_boot::Options::default().runs
            },
        }),
    })
}

/// Runs what `selection` names: units first (a few minutes of QEMU), then
/// verity.
pub fn run_selected(selection: Selection) -> Result<(), XtaskError> {
    if let Some(options) = selection.boot {
        crate::bench_boot::run(options)?;
    }
    if let Some(options) = selection.units {
        crate::bench_units::run(options)?;
    }
    if let Some(options) = selection.verity {
        run(options)?;
    }
    Ok(())
}

/// Parses `[--runs N] [--mib N]`.
fn parse_options(args: &[String]) -> Result<Options, XtaskError> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, XtaskError> {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| XtaskError::Usage(format!("{name} takes a positive whole number")))
        };
        match arg.as_str() {
            "--runs" => options.runs = usize::try_from(number("--runs")?).unwrap_or(usize::MAX),
            "--mib" => options.mib = number("--mib")?,
            other => {
                return Err(XtaskError::Usage(format!(
                    "unknown bench argument {other:?}"
                )));
            }
        }
    }
    Ok(options)
}

/// One timed run of one tool.
#[derive(Debug, Clone)]
struct Sample {
    seconds: f64,
    max_rss_kib: u64,
    root_hash: String,
}

/// Runs the benchmark.
pub fn run(options: Options) -> Result<(), XtaskError> {
    deps::ensure(&[deps::BUILD, deps::TESTS, deps::BENCH])?;
    let liftoff = build::static_liftoff()?;
    let dir = qemu_tests::workspace_root()
        .join("target")
        .join("bench")
        .join("verity");
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let bytes = options.mib * 1024 * 1024;
    let data = dir.join(format!("data-{}m.img", options.mib));
    random_file(&data, bytes)?;
    warm(&data)?;

    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let sha_rate = single_core_sha256_rate(&data)?;
    eprintln!(
        "xtask: single-core SHA-256 (sha2 crate, salt + 4 KiB blocks): {:.0} MB/s",
        sha_rate / 1e6
    );

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..options.runs {
        let liftoff_cmd = || {
            let mut c = Command::new(&liftoff);
            c.arg("verity");
            c
        };
        let veritysetup_cmd = || Command::new("veritysetup");
        let order: [(&str, bool); 2] = if run % 2 == 0 {
            [("liftoff", true), ("veritysetup", false)]
        } else {
            [("veritysetup", false), ("liftoff", true)]
        };
        for (name, is_ours) in order {
            let hash = dir.join(format!("hash-{name}.img"));
            let sample = if is_ours {
                time_format(liftoff_cmd(), &data, &hash)?
            } else {
                time_format(veritysetup_cmd(), &data, &hash)?
            };
            eprintln!(
                "xtask: run {} {name:<11} {:.3}s  {} KiB peak RSS",
                run + 1,
                sample.seconds,
                sample.max_rss_kib
            );
            if is_ours {
                ours.push(sample)
            } else {
                theirs.push(sample)
            }
        }
    }
    let agree = ours
        .iter()
        .chain(&theirs)
        .all(|s| s.root_hash == ours[0].root_hash);
    if !agree {
        return Err(XtaskError::Bench(
            "liftoff and veritysetup disagree on the root hash".into(),
        ));
    }

    let ours_s = median(ours.iter().map(|s| s.seconds).collect());
    let theirs_s = median(theirs.iter().map(|s| s.seconds).collect());
    let ours_rate = bytes as f64 / ours_s;
    let theirs_rate = bytes as f64 / theirs_s;
    let ratio = ours_rate / theirs_rate;
    let limit = cores as f64 * sha_rate;
    let share = ours_rate / limit;
    let rss = |v: &[Sample]| v.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "\n== cargo xtask bench verity ==\n\
         data                 {} MiB random, page cache warm, {} runs each, alternating\n\
         root hash            {} (both tools agree)\n\
         veritysetup format   median {:.3}s  {:>6.0} MB/s  peak RSS {} KiB\n\
         liftoff verity format median {:.3}s  {:>6.0} MB/s  peak RSS {} KiB\n\
         ratio                {:.2}x veritysetup (target >= {:.1}x: {})\n\
         hashing limit        {} cores x {:.0} MB/s = {:.0} MB/s; liftoff reaches {:.0}% (target >= {:.0}%: {})",
        options.mib,
        options.runs,
        ours[0].root_hash,
        theirs_s,
        theirs_rate / 1e6,
        rss(&theirs),
        ours_s,
        ours_rate / 1e6,
        rss(&ours),
        ratio,
        TARGET_RATIO,
        verdict(ratio >= TARGET_RATIO),
        cores,
        sha_rate / 1e6,
        limit / 1e6,
        share * 100.0,
        TARGET_LIMIT_SHARE * 100.0,
        verdict(share >= TARGET_LIMIT_SHARE),
    );
    if ratio >= TARGET_RATIO && share >= TARGET_LIMIT_SHARE {
        Ok(())
    } else {
        Err(XtaskError::Bench(
            "a verity throughput target was missed (see the table)".into(),
        ))
    }
}

/// Runs `<tool> format <data> <hash> --salt … --uuid …` under GNU time.
fn time_format(tool: Command, data: &Path, hash: &Path) -> Result<Sample, XtaskError> {
    let _ = std::fs::remove_file(hash);
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "liftoff-bench-rss %M"])
        .arg(tool.get_program())
        .args(tool.get_args());
    command
        .arg("format")
        .arg(format!("--salt={SALT}"))
        .arg(format!("--uuid={UUID}"))
        .arg(data)
        .arg(hash);
    let shown = format!("{command:?}");
    let started = Instant::now();
    let output = command.output().map_err(|source| XtaskError::Spawn {
        command: shown.clone(),
        source,
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(XtaskError::Bench(format!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let root_hash = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:").map(|h| h.trim().to_owned()))
        .ok_or_else(|| XtaskError::Bench(format!("{shown} printed no root hash")))?;
    let max_rss_kib = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("liftoff-bench-rss ")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0);
    Ok(Sample {
        seconds,
        max_rss_kib,
        root_hash,
    })
}

/// SHA-256 over (salt, 4 KiB block) pairs on one core, in bytes of data per
/// second, measured over at least a second on the first 64 MiB of `data`.
fn single_core_sha256_rate(data: &Path) -> Result<f64, XtaskError> {
    let mut buffer = vec![0u8; 64 << 20];
    let mut file = std::fs::File::open(data).map_err(|e| io_error(data, e))?;
    let n = read_up_to(&mut file, &mut buffer).map_err(|e| io_error(data, e))?;
    buffer.truncate(n - n % 4096);
    let salt = [0x5fu8; 32];
    let started = Instant::now();
    let mut hashed = 0u64;
    let mut sink = 0u8;
    while started.elapsed() < Duration::from_secs(1) {
        for block in buffer.chunks_exact(4096) {
            let digest = Sha256::new()
                .chain_update(salt)
                .chain_update(block)
                .finalize();
            sink ^= digest[0];
        }
        hashed += buffer.len() as u64;
    }
    std::hint::black_box(sink);
    Ok(hashed as f64 / started.elapsed().as_secs_f64())
}

fn read_up_to(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buffer.len() {
        match file.read(&mut buffer[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Makes `path` hold `bytes` random bytes, reusing it when it already does.
fn random_file(path: &Path, bytes: u64) -> Result<(), XtaskError> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes) {
        return Ok(());
    }
    eprintln!(
        "xtask: writing {} MiB of random data to {}",
        bytes >> 20,
        path.display()
    );
    let partial = path.with_extension("partial");
    let mut out = std::fs::File::create(&partial).map_err(|e| io_error(&partial, e))?;
    let random =
        std::fs::File::open("/dev/urandom").map_err(|e| io_error(Path::new("/dev/urandom"), e))?;
    std::io::copy(&mut random.take(bytes), &mut out).map_err(|e| io_error(&partial, e))?;
    std::fs::rename(&partial, path).map_err(|e| io_error(path, e))
}

/// Reads the whole file once so every run starts from the page cache.
fn warm(path: &Path) -> Result<(), XtaskError> {
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    std::io::copy(&mut file, &mut std::io::sink()).map_err(|e| io_error(path, e))?;
    Ok(())
}

/// The median (NaN for no values).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn io_error(path: &Path, source: std::io::Error) -> XtaskError {
    XtaskError::Io {
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn options() {
        let o = parse(&[
            "verity".into(),
            "--runs".into(),
            "3".into(),
            "--mib".into(),
            "64".into(),
        ])
        .unwrap();
        let verity = o.verity.unwrap();
        assert_eq!((verity.runs, verity.mib), (3, 64));
        assert!(o.units.is_none());
        assert!(parse(&["--runs".into(), "0".into()]).is_err());
        assert!(parse(&["--frobnicate".into()]).is_err());
        let units = parse(&["units".into()]).unwrap();
        assert_eq!(units.units.map(|u| u.runs), Some(3));
        assert!(units.verity.is_none());
        let both = parse(&[]).unwrap();
        assert!(both.units.is_some() && both.verity.is_some());
    }
}
