//! containerd as a liftoff unit, end to end: Debian's `containerd` and
//! `runc` (from the harness's package cache, [`qemu_tests::containerd`])
//! on the verified root, supervised by liftoff's stage 2 with the
//! reference unit file
//! ([`Instance::unit`](qemu_tests::containerd::Instance::unit) of
//! [`CONTAINERD`]).
//!
//! Each guest's root holds busybox, liftoff as `/sbin/init`, containerd,
//! its runc shim, `ctr` and runc with their libraries, containerd's
//! configuration (root on the persistent `/local`, formatted at first
//! boot; state and socket under `/run`), the `containerd` unit and a
//! busybox probe unit that `requires` it. The probe talks to containerd
//! with `ctr version` and reads `liftoff ctl status containerd`, writing
//! `PROBE …` lines to `/dev/kmsg`, which the tests read from the console.
//!
//! | test | units | asserts |
//! |------|-------|---------|
//! | [`containerd_becomes_ready_and_answers_on_its_socket`] | `containerd` (notify, restart always, kill_mode process, delegate, oom -999, raised limits); `probe` requires it | liftoff logs `unit containerd: ready` before the probe starts; `ctr version` exits 0 and prints the server's version; `ctl status containerd`: running, restarts 0; containerd runs with the unit's oom_score_adj and limits in its own cgroup; the overlayfs snapshotter loaded |
//! | [`killed_containerd_is_restarted_and_ready_again`] | the same; the probe `kill -9`s containerd's main pid | liftoff logs the kill and a restart; containerd is ready a second time with a new pid; a second `ctr version` gets the server's version; `ctl status containerd`: running, that pid, restarts 1 |
//!
//! Each test prints the guest time (kernel timestamp) at which containerd
//! became ready.

use std::time::Duration;

use qemu_tests::containerd::{CONTAINERD, GUEST_CTR, SOCKET, UNIT_NAME};
use qemu_tests::guest_root::{
    Guest, GuestRoot, expect, expect_line, field, kernel_times, line_after, position, probe_lines,
    refute,
};
use qemu_tests::image::ROOT_NUMBER;

/// Kernel start to the probe's first line: stage 1 (module loading, the
/// first boot's mkfs.ext4), then containerd's start under TCG, which pages
/// in a 48 MB binary through dm-verity; the margin is for a loaded
/// two-core machine.
const READY: Duration = Duration::from_secs(300);
/// From the probe's first line to its last: `ctr` calls, and in the
/// restart scenario the backoff and a second start of containerd.
const STEP: Duration = Duration::from_secs(240);
/// The limit on one boot.
const RUN: Duration = Duration::from_secs(600);

/// What the probe script starts with: `$B` for busybox; `probe`, which
/// writes `PROBE <words>` to the kernel log as one record; `status`,
/// which logs `liftoff ctl status UNIT` a line at a time; and `version`,
/// which runs `ctr version` and logs its output and exit status, each
/// line prefixed with its first argument.
const PRELUDE: &str = r#"B=/bin/busybox
probe() { echo "PROBE $*" > /dev/kmsg; }
status() {
    /sbin/init ctl status "$1" 2>&1 | while read -r line; do probe "ctl $1: $line"; done
}
version() {
    out=$(CTR --address SOCKET version 2>&1)
    rc=$?
    echo "$out" | while read -r line; do probe "$1: $line"; done
    probe "$1 exit=$rc"
}
main_pid() {
    /sbin/init ctl status containerd 2>/dev/null | $B sed -n 's/^ *main pid: *\([0-9]*\).*/\1/p'
}
"#;

/// Scenario 1: one `ctr version`, then what containerd's process looks
/// like from outside.
const READY_SH: &str = r#"read -r up rest < /proc/uptime
probe "probe started at=$up"
version ctr1
status containerd
pid=$(main_pid)
probe "oom_score_adj=$($B cat /proc/$pid/oom_score_adj)"
probe "nofile=$($B sed -n 's/^Max open files *\([0-9a-z]*\) *\([0-9a-z]*\).*/\1:\2/p' /proc/$pid/limits)"
probe "nproc=$($B sed -n 's/^Max processes *\([0-9a-z]*\) *\([0-9a-z]*\).*/\1:\2/p' /proc/$pid/limits)"
probe "cgroup=$($B cat /proc/$pid/cgroup)"
probe "probe done"
"#;

/// Scenario 2: `ctr version`, SIGKILL containerd's main pid, wait until
/// `ctl status` shows it running (ready) with another pid, `ctr version`
/// again.
const RESTART_SH: &str = r#"version ctr1
old=$(main_pid)
read -r up rest < /proc/uptime
probe "killing containerd pid=$old at=$up"
kill -9 "$old"
i=0
while [ $i -lt 600 ]; do
    new=$(main_pid)
    if [ -n "$new" ] && [ "$new" != "$old" ] && /sbin/init ctl status containerd 2>/dev/null | $B grep -q 'state: *running'; then
        break
    fi
    $B sleep 0.2
    i=$((i + 1))
done
read -r up rest < /proc/uptime
probe "containerd now pid=$new at=$up"
version ctr2
status containerd
probe "probe done"
"#;

/// The probe unit: `/etc/probe/probe.sh` once containerd is ready, with
/// time for a restart of containerd (a oneshot gets 90 s by default).
fn probe_unit() -> String {
    format!(
        "exec = [\"/bin/busybox\", \"sh\", \"/etc/probe/probe.sh\"]\n\
         type = \"oneshot\"\nrequires = [\"{UNIT_NAME}\"]\nboot = \"start\"\n\
         ready_timeout = \"10min\"\nstdout = \"console\"\nstderr = \"console\"\n"
    )
}

/// A root with containerd, its unit and the probe running `script`.
fn guest(script: &str) -> Guest {
    let prelude = PRELUDE.replace("CTR", GUEST_CTR).replace("SOCKET", SOCKET);
    let guest = GuestRoot::new()
        .run_timeout(RUN)
        .with_containerd()
        .unit(UNIT_NAME, &CONTAINERD.unit(false))
        .unit("probe", &probe_unit())
        .script("/etc/probe/probe.sh", &format!("{prelude}{script}"))
        .build()
        .expect("build the guest");
    let root = guest
        .image
        .partition(ROOT_NUMBER)
        .expect("a root partition")
        .len();
    eprintln!("root partition: {} MiB", root >> 20);
    guest
}

/// Checks that the `ctr version` logged as `prefix` succeeded and
/// reported the server's version, and returns that version.
fn server_version(console: &str, prefix: &str) -> String {
    assert_eq!(
        line_after(console, &format!("PROBE {prefix} exit=")),
        "0",
        "`ctr version` failed:\n{console}"
    );
    let out = probe_lines(console, prefix);
    let server = out
        .iter()
        .position(|l| l == "Server:")
        .unwrap_or_else(|| panic!("no Server: section in {out:#?}\n{console}"));
    out[server..]
        .iter()
        .find_map(|l| l.strip_prefix("Version: "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no server version in {out:#?}\n{console}"))
}

/// What liftoff logs when containerd sends `READY=1`.
const READY_LOG: &str = "unit containerd: ready";

/// What containerd 1.6 logs when a plugin returns an error
/// (`level=warn`) or skips itself (`level=info`, the overlayfs
/// snapshotter on a kernel without overlay).
const PLUGIN_FAILURES: [&str; 2] = ["failed to load plugin", "skip loading plugin"];

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn containerd_becomes_ready_and_answers_on_its_socket() {
    let guest = guest(READY_SH);
    let vm = guest.boot("", "boot").expect("start QEMU");
    expect(&vm, "PROBE probe started", READY);
    expect(&vm, "PROBE probe done", STEP);
    let console = vm.console();

    // Ready (READY=1 over sd_notify) before the probe that requires it.
    assert!(
        position(&console, READY_LOG) < position(&console, "PROBE probe started"),
        "the probe started before containerd was ready:\n{console}"
    );
    let ready = kernel_times(&console, READY_LOG);
    eprintln!("containerd ready at {ready:?} s guest time");

    // Its socket answers, with the server's version.
    let version = server_version(&console, "ctr1");
    assert!(version.starts_with("1."), "server version {version:?}");

    // liftoff's view.
    let ctl = probe_lines(&console, "ctl containerd");
    expect_line(&ctl, "state: running", &console);
    expect_line(&ctl, "restarts: 0", &console);

    // The unit's settings reached the process.
    assert_eq!(line_after(&console, "PROBE oom_score_adj="), "-999");
    assert_eq!(
        line_after(&console, "PROBE nofile="),
        "1048576:1048576",
        "{console}"
    );
    assert_eq!(
        line_after(&console, "PROBE nproc="),
        "unlimited:unlimited",
        "{console}"
    );
    assert_eq!(
        line_after(&console, "PROBE cgroup="),
        "0::/liftoff/containerd",
        "{console}"
    );
    // Every plugin left enabled loaded: overlayfs found its module and a
    // writable root on /local, `opt` its folder there.
    assert!(
        console.contains(r#"loading plugin \"io.containerd.snapshotter.v1.overlayfs\""#),
        "containerd did not try the overlayfs snapshotter:\n{console}"
    );
    refute(&console, &PLUGIN_FAILURES);
    refute(
        &console,
        &["failure action", "Kernel panic", "unit containerd: failed"],
    );
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn killed_containerd_is_restarted_and_ready_again() {
    let guest = guest(RESTART_SH);
    let vm = guest.boot("", "boot").expect("start QEMU");
    expect(&vm, "PROBE killing containerd", READY);
    expect(&vm, "PROBE probe done", STEP);
    let console = vm.console();

    let first = server_version(&console, "ctr1");
    let old = field(line_after(&console, "PROBE killing containerd"), "pid")
        .unwrap_or_else(|| panic!("no pid killed:\n{console}"))
        .to_owned();
    let new = field(line_after(&console, "PROBE containerd now"), "pid")
        .unwrap_or_default()
        .to_owned();
    assert!(
        !new.is_empty() && new != old,
        "containerd did not come back with a new pid (old {old}, new {new:?}):\n{console}"
    );

    // liftoff saw the kill (signal 9), restarted it, and it notified
    // READY=1 a second time.
    assert!(
        console.contains("unit containerd: killed by signal 9"),
        "no kill in liftoff's log:\n{console}"
    );
    let ready = kernel_times(&console, READY_LOG);
    assert_eq!(ready.len(), 2, "not ready exactly twice:\n{console}");
    eprintln!("containerd ready at {ready:?} s guest time");

    // The new containerd answers, as the same version.
    assert_eq!(server_version(&console, "ctr2"), first);
    let ctl = probe_lines(&console, "ctl containerd");
    expect_line(&ctl, "state: running", &console);
    expect_line(&ctl, &format!("main pid: {new}"), &console);
    expect_line(&ctl, "restarts: 1", &console);
    refute(
        &console,
        &["failure action", "Kernel panic", "unit containerd: failed"],
    );
}
