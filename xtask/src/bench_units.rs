//! `cargo xtask bench units`: the stage-2 service manager's three figures,
//! each measured in the guest (QEMU/TCG, Debian's kernel, the verity root
//! liftoff boots in the scenarios), N runs each, medians reported:
//!
//! 1. **memory**: PID 1's resident set (`VmRSS`, and its peak `VmHWM`)
//!    after boot completes with ten units (six `simple` sleepers, two
//!    `notify` units, two `oneshot`s) and the probe that reads it;
//! 2. **restart latency**: a unit whose process exits at once, with
//!    `restart = "always"` and `restart_delay = "0s"`, restarts for a few
//!    seconds; liftoff's own measure, from the reaper seeing the exit to
//!    the restart's exec (`liftoff ctl status`'s `restart latency` line),
//!    the delay left out. Measured twice: with liftoff's default log level
//!    (each restart logs three lines to the serial console, which TCG makes
//!    slow) and with `liftoff.log=warn`;
//! 3. **1000 units**: 1000 `simple` units running `/bin/busybox true`
//!    (ready at exec), from stage 2's `units` stamp to boot complete, both
//!    from `/run/liftoff/boot.json`; with `liftoff.log=warn`, since 2000
//!    info lines on a serial console would measure the console.
//!
//! Each guest's probe unit prints `BENCH key=value` lines on the console
//! and powers the guest off with `liftoff ctl poweroff`.

use std::path::Path;
use std::time::Duration;

use qemu_tests::guest_root::{Guest, GuestRoot};

use crate::bench::median;
use crate::{XtaskError, build, deps};

/// How long one boot may take, QEMU start to exit.
const BOOT: Duration = Duration::from_secs(300);

/// Options of `cargo xtask bench units`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Boots per figure.
    pub runs: usize,
}

/// A probe that waits for boot complete, runs `body`, prints `BENCH done`
/// and powers the guest off.
fn probe(body: &str) -> String {
    format!(
        r#"#!/bin/busybox sh
B=/bin/busybox
while [ ! -e /run/liftoff/boot.json ]; do $B sleep 0.05; done
{body}
echo "BENCH done"
/sbin/init ctl poweroff
"#
    )
}

/// The probe's unit: started at boot, not waited for, output on the console.
const PROBE_UNIT: &str = r#"exec = ["/bin/busybox", "sh", "/etc/bench/probe.sh"]
boot = "start"
stdout = "console"
stderr = "console"
"#;

fn memory_guest(liftoff: &Path) -> Result<Guest, XtaskError> {
    let mut root = GuestRoot::new()
        .liftoff(liftoff)
        .script(
            "/etc/bench/notify.sh",
            "#!/bin/busybox sh\n/sbin/init notify --ready\nexec /bin/busybox sleep 100000\n",
        )
        .script(
            "/etc/bench/probe.sh",
            &probe(
                r#"$B grep -E '^(VmRSS|VmHWM):' /proc/1/status | while read -r key value unit; do
    echo "BENCH ${key%:}=$value"
done"#,
            ),
        )
        .unit("probe", PROBE_UNIT);
    for i in 1..=6 {
        root = root.unit(
            &format!("sleeper{i}"),
            "exec = [\"/bin/busybox\", \"sleep\", \"100000\"]\n",
        );
    }
    for i in 1..=2 {
        root = root.unit(
            &format!("notifier{i}"),
            "type = \"notify\"\nexec = [\"/bin/busybox\", \"sh\", \"/etc/bench/notify.sh\"]\n",
        );
        root = root.unit(
            &format!("setup{i}"),
            "type = \"oneshot\"\nexec = [\"/bin/busybox\", \"true\"]\n",
        );
    }
    build_guest(root)
}

fn restart_guest(liftoff: &Path) -> Result<Guest, XtaskError> {
    let root = GuestRoot::new()
        .liftoff(liftoff)
        .unit(
            "crashy",
            r#"exec = ["/bin/busybox", "true"]
restart = "always"
restart_delay = "0s"
start_limit_interval = "0s"
"#,
        )
        .script(
            "/etc/bench/probe.sh",
            &probe(
                r#"$B sleep 4
/sbin/init ctl stop crashy > /dev/null
/sbin/init ctl status crashy | while read -r line; do echo "BENCH $line"; done
# The floor: a shell's own fork, exec and wait of the same program.
read -r t0 rest < /proc/uptime
i=0; while [ $i -lt 200 ]; do $B true; i=$((i + 1)); done
read -r t1 rest < /proc/uptime
echo "BENCH shell_spawn_ms=$(echo "$t0 $t1" | $B awk '{ printf "%.3f", ($2 - $1) * 1000 / 200 }')""#,
            ),
        )
        .unit("probe", PROBE_UNIT);
    build_guest(root)
}

fn thousand_guest(liftoff: &Path) -> Result<Guest, XtaskError> {
    let mut root = GuestRoot::new()
        .liftoff(liftoff)
        .script(
            "/etc/bench/probe.sh",
            &probe(
                r#"R=/run/liftoff/boot.json
echo "BENCH units_us=$($B grep -A1 '"phase": "units"' $R | $B tr -dc 0-9)"
echo "BENCH complete_us=$($B grep '"boot_complete_us"' $R | $B tr -dc 0-9)"
echo "BENCH ready=$($B grep -c '"ready_us": [0-9]' $R)"
# A reference: what making (and removing) one unit's cgroup costs the
# kernel here, with the memory and pids controllers enabled as for units.
read -r t0 rest < /proc/uptime
i=0; while [ $i -lt 100 ]; do $B mkdir /sys/fs/cgroup/liftoff/bench-$i; i=$((i + 1)); done
read -r t1 rest < /proc/uptime
i=0; while [ $i -lt 100 ]; do $B rmdir /sys/fs/cgroup/liftoff/bench-$i; i=$((i + 1)); done
echo "BENCH cgroup_mkdir_ms=$(echo "$t0 $t1" | $B awk '{ printf "%.3f", ($2 - $1) * 1000 / 100 }')""#,
            ),
        )
        .unit("probe", PROBE_UNIT);
    for i in 0..1000 {
        root = root.unit(&format!("t{i:04}"), "exec = [\"/bin/busybox\", \"true\"]\n");
    }
    build_guest(root)
}

fn build_guest(root: GuestRoot) -> Result<Guest, XtaskError> {
    root.run_timeout(BOOT).build().map_err(XtaskError::Guest)
}

/// Boots `guest` once and returns its `BENCH key=value` pairs.
fn boot(guest: &Guest, extra: &str, run: &str) -> Result<Vec<(String, String)>, XtaskError> {
    let mut vm = guest.boot(extra, run).map_err(XtaskError::Qemu)?;
    let done = vm.wait_for("BENCH done", BOOT);
    let exited = vm.wait_exit(Duration::from_secs(60));
    let console = vm.console();
    if let Err(e) = done.and(exited.map(drop)) {
        return Err(XtaskError::Bench(format!(
            "{run}: {e}; the console ends:\n{}",
            tail(&console)
        )));
    }
    if !console.contains("reboot: Power down") {
        return Err(XtaskError::Bench(format!(
            "{run}: the guest did not power off cleanly; the console ends:\n{}",
            tail(&console)
        )));
    }
    let pairs = bench_lines(&console);
    if pairs.is_empty() {
        return Err(XtaskError::Bench(format!(
            "{run}: the probe printed nothing; the console ends:\n{}",
            tail(&console)
        )));
    }
    Ok(pairs)
}

/// The `BENCH key=value` lines of a console, in order.
fn bench_lines(console: &str) -> Vec<(String, String)> {
    console
        .lines()
        .filter_map(|l| l.split_once("BENCH ").map(|(_, rest)| rest.trim()))
        .filter_map(|rest| rest.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The last lines of a console, for an error message (the guest's folder
/// is gone once the error is reported).
fn tail(console: &str) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn value<'a>(pairs: &'a [(String, String)], key: &str, run: &str) -> Result<&'a str, XtaskError> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| XtaskError::Bench(format!("{run}: the probe printed no {key}")))
}

fn number(text: &str, what: &str) -> Result<f64, XtaskError> {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| XtaskError::Bench(format!("{what}: {text:?} is not a number")))
}

/// `restart latency: last 1.204ms, mean 1.310ms, max 2.001ms (7 restarts)`
/// (as `BENCH restart latency: last 1.204ms, …` after the `=`-split, the
/// line has no `=`: it is found by prefix instead) → (mean ms, max ms,
/// restarts).
fn restart_figures(console_pairs: &str) -> Option<(f64, f64, u64)> {
    let line = console_pairs
        .lines()
        .find_map(|l| l.split_once("BENCH restart latency: ").map(|(_, r)| r))?;
    let ms = |label: &str| -> Option<f64> {
        let (_, rest) = line.split_once(label)?;
        rest.split("ms").next()?.trim().parse().ok()
    };
    let count = line
        .split_once('(')?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((ms("mean ")?, ms("max ")?, count))
}

/// Runs the three benchmarks and prints the figures.
pub fn run(options: Options) -> Result<(), XtaskError> {
    deps::ensure(&[deps::BUILD, deps::QEMU, deps::TESTS])?;
    let liftoff = build::static_liftoff()?;
    crate::kernel()?;
    let runs = options.runs;

    eprintln!("xtask: bench units: building the guests");
    let memory = memory_guest(&liftoff)?;
    let restart = restart_guest(&liftoff)?;
    let thousand = thousand_guest(&liftoff)?;

    let (mut rss, mut hwm) = (Vec::new(), Vec::new());
    let (mut lat_info, mut lat_warn) = (Vec::new(), Vec::new());
    let (mut max_warn, mut restarts_warn) = (Vec::new(), Vec::new());
    let mut thousand_ms = Vec::new();
    let mut shell = Vec::new();
    let mut cgroup_ms = Vec::new();
    for i in 1..=runs {
        let run = format!("memory-{i}");
        let pairs = boot(&memory, "", &run)?;
        let r = number(value(&pairs, "VmRSS", &run)?, "VmRSS")?;
        let h = number(value(&pairs, "VmHWM", &run)?, "VmHWM")?;
        eprintln!("xtask: {run}: PID 1 VmRSS {r} KiB, VmHWM {h} KiB");
        rss.push(r);
        hwm.push(h);

        for (level, extra) in [("info", ""), ("warn", "liftoff.log=warn")] {
            let run = format!("restart-{level}-{i}");
            let mut vm = restart.boot(extra, &run).map_err(XtaskError::Qemu)?;
            let waited = vm.wait_for("BENCH done", BOOT);
            let _ = vm.wait_exit(Duration::from_secs(60));
            let console = vm.console();
            waited.map_err(|e| {
                XtaskError::Bench(format!("{run}: {e}; the console ends:\n{}", tail(&console)))
            })?;
            let (mean, max, count) = restart_figures(&console).ok_or_else(|| {
                XtaskError::Bench(format!(
                    "{run}: no restart latency line; the console ends:\n{}",
                    tail(&console)
                ))
            })?;
            eprintln!(
                "xtask: {run}: restart latency mean {mean:.3} ms, max {max:.3} ms over {count} restarts"
            );
            let floor = bench_lines(&console)
                .iter()
                .find(|(k, _)| k == "shell_spawn_ms")
                .and_then(|(_, v)| v.parse::<f64>().ok());
            if let Some(floor) = floor {
                eprintln!(
                    "xtask: {run}: a shell's fork + exec + wait of the same program: {floor:.3} ms"
                );
                shell.push(floor);
            }
            if level == "info" {
                lat_info.push(mean);
            } else {
                lat_warn.push(mean);
                max_warn.push(max);
                restarts_warn.push(count as f64);
            }
        }

        let run = format!("thousand-{i}");
        let pairs = boot(&thousand, "liftoff.log=warn", &run)?;
        let units_us = number(value(&pairs, "units_us", &run)?, "units_us")?;
        let complete_us = number(value(&pairs, "complete_us", &run)?, "complete_us")?;
        let ready = number(value(&pairs, "ready", &run)?, "ready")?;
        if ready < 1000.0 {
            return Err(XtaskError::Bench(format!(
                "{run}: only {ready} units became ready"
            )));
        }
        let ms = (complete_us - units_us) / 1000.0;
        eprintln!("xtask: {run}: 1000 units to ready in {ms:.1} ms (guest time)");
        thousand_ms.push(ms);
        let mkdir = number(value(&pairs, "cgroup_mkdir_ms", &run)?, "cgroup_mkdir_ms")?;
        eprintln!(
            "xtask: {run}: a cgroup mkdir (with a shell's fork + exec of mkdir): {mkdir:.3} ms"
        );
        cgroup_ms.push(mkdir);
    }

    println!(
        "\n== liftoff bench units ({runs} run{} each, medians, QEMU/TCG guest time) ==\n\
         PID 1 memory after boot, 10 units + probe   VmRSS {:.0} KiB   (peak VmHWM {:.0} KiB)\n\
         restart latency, exit to exec (delay 0)    {:.3} ms mean, liftoff.log=warn (max {:.3} ms, {:.0} restarts in 4 s)\n\
         restart latency with default logging        {:.3} ms mean (three console lines per restart)\n\
         reference: busybox sh fork + exec + wait    {:.3} ms (the same program, in the same guest)\n\
         1000 trivial units, start to all ready      {:.1} ms   (liftoff.log=warn)\n\
         reference: busybox mkdir of a unit cgroup   {:.3} ms (fork + exec of mkdir included)",
        if runs == 1 { "" } else { "s" },
        median(rss),
        median(hwm),
        median(lat_warn),
        median(max_warn),
        median(restarts_warn),
        median(lat_info),
        median(shell),
        median(thousand_ms),
        median(cgroup_ms),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_and_restart_figures_parse_the_console() {
        let console = "\
[    3.1] liftoff: unit probe: started (pid 9)
BENCH VmRSS=2148 kB
BENCH VmHWM=2400 kB
BENCH crashy
BENCH restart latency: last 1.204ms, mean 1.310ms, max 2.001ms (7 restarts)
BENCH done
";
        let pairs = bench_lines(console);
        assert_eq!(value(&pairs, "VmRSS", "t").unwrap(), "2148 kB");
        assert_eq!(
            number(value(&pairs, "VmHWM", "t").unwrap(), "x").unwrap(),
            2400.0
        );
        assert!(value(&pairs, "nope", "t").is_err());
        assert_eq!(restart_figures(console), Some((1.310, 2.001, 7)));
        assert_eq!(restart_figures("BENCH done"), None);
    }
}
