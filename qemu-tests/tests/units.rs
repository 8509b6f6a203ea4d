//! Stage 2 end to end: liftoff continues on the verified root as the
//! service manager (`init=/sbin/init`), starts the units under
//! `/etc/liftoff/units/`, supervises them and shuts the machine down.
//!
//! Each guest's root holds a static busybox, liftoff as `/sbin/init` (and,
//! run by a unit, as `liftoff ctl` and `liftoff notify`), unit files, and
//! small busybox scripts as services. The scripts write `PROBE …` lines
//! to `/dev/kmsg`, one kernel log record each, which the console prints
//! whole and the tests read; their stdout and stderr go to the console
//! too (`stdout = "console"`). Times are the guest's `/proc/uptime`.
//!
//! | test | units | asserts |
//! |------|-------|---------|
//! | [`notify_unit_holds_its_dependents_until_ready`] | `a` oneshot; `b` notify, requires `a`, sends `READY=1` 2 s late; `c` wants and is after `b` | `b` starts after `a` finished; `c` starts after `b` wrote its marker and notified, at least 2 s after `b` started; `liftoff notify` exits 0; boot completes; the root reads ahead 2048 KiB during boot and 128 KiB after |
//! | [`crashing_unit_restarts_and_flapping_unit_hits_the_start_limit`] | `crashy` restart always, 200 ms delay; `flappy` exits 1, on-failure, burst 3 in 30 s; a probe | after `kill -9`, `crashy` comes back once, with a new pid, at least the delay later; `ctl status crashy`: running, that pid, 1 restart; `flappy` ran 3 times, `ctl status flappy`: failed, start limit |
//! | [`critical_unit_failure_runs_the_failure_action`] | `doomed` critical oneshot that exits 1, restart never | the failure action runs after it exits, the kernel restarts, QEMU exits |
//! | [`double_forking_daemon_leaves_no_zombies`] | `daemon` forks orphans and exits; a probe | the orphans were re-parented to PID 1, are gone once they exit, and no process is a zombie |
//! | [`capabilities_and_no_new_privileges_confine_a_unit`] | `confined` (`CAP_DAC_OVERRIDE` only, no_new_privileges) and `control` (neither) run `date -s` | confined: `NoNewPrivs: 1`, bounding set exactly `CAP_DAC_OVERRIDE` (no `CAP_SYS_TIME`), effective within it, `date -s` fails; control: all of it allowed, `date -s` succeeds |
//! | [`ctl_poweroff_stops_a_writer_and_leaves_ext4_clean`] | `writer` appends 4 KiB records to `/local/data`, stop_timeout 10 s, finishes on SIGTERM; `stopper` runs `liftoff ctl poweroff` | the writer got SIGTERM and wrote `END`; the guest powers off without a failure action; on the host DATA is clean (no `needs_recovery`) and holds whole, numbered records then `END`; a second boot sees the same file and no journal recovery or orphan cleanup |
//! | [`malformed_unit_file_is_reported_and_the_others_still_run`] | `bad.toml` with `restat` on line 3; `good` | the error names the file, line 3 and `restat`; `good` ran; `ctl status bad` exits 1 with unknown unit |
//! | [`cgroups_output_and_kill_modes_then_ctrl_alt_delete_stops_in_reverse_order`] | `limited` (memory_max, pids_max, stdout kmsg); `delegated` (user nobody, delegate); `group` and `proc` (kill_mode process) each leave a child; `filed` (stdout to a file); `b` requires `a`; `checks` | the unit's own cgroup with the kernel showing its limits, pids.max enforced, nothing blocked or ignored and no stray descriptor in a child; the kmsg line tagged `limited[PID]`; nobody owns its delegated cgroup and makes a sub-cgroup; the file output; the boot record; stopping `group` kills its child, stopping `proc` leaves it; ctrl-alt-delete stops `b` before `a` and reboots |

use std::process::Command;
use std::time::Duration;

use qemu_tests::guest_root::{
    Guest, GuestRoot, after, expect, expect_exit, expect_line, field, line_after, position,
    probe_lines, refute,
};
use qemu_tests::{BuiltImage, Vm};

/// Kernel start to the first line of a unit: stage 1 and liftoff's start
/// of stage 2 take a few seconds of guest time; the margin is for TCG on a
/// loaded machine.
const BOOT: Duration = Duration::from_secs(180);
/// From one unit's line to a later one: a few guest seconds of sleeps and
/// restarts.
const STEP: Duration = Duration::from_secs(90);
/// From a poweroff or failure action to QEMU's exit (stop timeouts
/// included).
const SHUTDOWN: Duration = Duration::from_secs(90);
/// The limit on one boot.
const RUN: Duration = Duration::from_secs(400);
/// Every unit's stdout and stderr go straight to the console, so that what
/// a script says besides its `PROBE` lines (a busybox error) shows up in
/// a failing test's message.
const CONSOLE_OUTPUT: &str = "stdout = \"console\"\nstderr = \"console\"\n";

/// A unit file running `/etc/probe/SCRIPT.sh` (with `args`) whose output
/// goes to the console, with `settings` after.
fn script_unit(script: &str, args: &[&str], settings: &str) -> String {
    let mut exec = format!("\"/bin/busybox\", \"sh\", \"/etc/probe/{script}.sh\"");
    for arg in args {
        exec.push_str(&format!(", \"{arg}\""));
    }
    format!("exec = [{exec}]\n{CONSOLE_OUTPUT}{settings}")
}

/// What every probe script starts with: `$B` for busybox, and `probe`,
/// which writes `PROBE <words>` to the kernel log as one record. The
/// console prints a record whole, whereas a unit's own console writes can
/// be split by a kernel line printed in the middle of them.
const PRELUDE: &str = r#"B=/bin/busybox
probe() { echo "PROBE $*" > /dev/kmsg; }
"#;

/// A root with the scripts at `/etc/probe/NAME.sh` (after [`PRELUDE`])
/// and the units.
fn guest(scripts: &[(&str, &str)], units: &[(&str, String)]) -> GuestRoot {
    let mut root = GuestRoot::new().run_timeout(RUN);
    for (name, text) in scripts {
        root = root.script(format!("/etc/probe/{name}.sh"), &format!("{PRELUDE}{text}"));
    }
    for (name, toml) in units {
        root = root.unit(name, toml);
    }
    root
}

/// Boots `guest` (stage 1, then liftoff as stage 2) with `extra` flags.
fn boot(guest: &Guest, extra: &str, run: &str) -> Vm {
    guest.boot(extra, run).expect("start QEMU")
}

/// `key=` of the line after `marker`, as the guest's uptime in seconds.
fn time_after(console: &str, marker: &str, key: &str) -> f64 {
    let line = line_after(console, marker);
    field(line, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= time in {line:?}:\n{console}"))
}

/// The lines the probe prefixed with `PROBE ctl NAME:` (the output of
/// `liftoff ctl status NAME`), with runs of spaces squeezed to one.
fn ctl_lines(console: &str, unit: &str) -> Vec<String> {
    probe_lines(console, &format!("ctl {unit}"))
}

// ---------------------------------------------------------------------
// 1. Ordering and readiness.

const A_SH: &str = r#"read -r up rest < /proc/uptime
$B touch /run/a-done
probe "A done at=$up"
"#;

/// Notifies 2 s after it starts, having written its marker just before;
/// reads the root's read-ahead while boot runs and once it has completed
/// (liftoff puts the kernel's value back then).
const B_SH: &str = r#"ra=/sys/block/dm-0/queue/read_ahead_kb
read -r up rest < /proc/uptime
if [ -e /run/a-done ]; then a=yes; else a=no; fi
probe "B started at=$up a-done=$a read-ahead=$($B cat $ra)"
$B sleep 2
$B touch /run/b-ready
read -r up rest < /proc/uptime
probe "B notifying at=$up"
/sbin/init notify READY=1
probe "B notify exit=$?"
i=0
while [ "$($B cat $ra)" = 2048 ] && [ $i -lt 300 ]; do $B sleep 0.1; i=$((i + 1)); done
probe "B after boot boot-json=$([ -e /run/liftoff/boot.json ] && echo yes) read-ahead=$($B cat $ra)"
exec $B sleep 3600
"#;

const C_SH: &str = r#"read -r up rest < /proc/uptime
if [ -e /run/b-ready ]; then b=yes; else b=no; fi
if [ -e /run/a-done ]; then a=yes; else a=no; fi
probe "C started after B ready=$b a-done=$a at=$up"
"#;

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn notify_unit_holds_its_dependents_until_ready() {
    let guest = guest(
        &[("a", A_SH), ("b", B_SH), ("c", C_SH)],
        &[
            ("a", script_unit("a", &[], "type = \"oneshot\"\n")),
            (
                "b",
                script_unit("b", &[], "type = \"notify\"\nrequires = [\"a\"]\n"),
            ),
            (
                "c",
                script_unit(
                    "c",
                    &[],
                    "type = \"oneshot\"\nwants = [\"b\"]\nafter = [\"b\"]\n",
                ),
            ),
        ],
    )
    .build()
    .expect("build the guest");
    let vm = boot(&guest, "", "boot");
    expect(&vm, "PROBE C started", BOOT);
    expect(&vm, "PROBE B notify exit=", STEP);
    expect(&vm, "boot complete", STEP);
    expect(&vm, "PROBE B after boot", STEP);
    let console = vm.console();

    // The root reads ahead 2048 KiB while booting, the kernel's 128 once
    // boot has completed (and only then: the record is written first).
    let b = line_after(&console, "PROBE B started");
    assert_eq!(field(b, "read-ahead"), Some("2048"), "{console}");
    let b = line_after(&console, "PROBE B after boot");
    assert_eq!(field(b, "boot-json"), Some("yes"), "{console}");
    assert_eq!(field(b, "read-ahead"), Some("128"), "{console}");
    assert!(
        position(&console, "boot complete at")
            < position(&console, "read-ahead of the root back to 128 KiB"),
        "{console}"
    );

    // Console order: A finished, B started, B notified, C started.
    let order = [
        "PROBE A done",
        "PROBE B started",
        "PROBE B notifying",
        "PROBE C started",
    ];
    for pair in order.windows(2) {
        assert!(
            position(&console, pair[0]) < position(&console, pair[1]),
            "{:?} is not before {:?}:\n{console}",
            pair[0],
            pair[1]
        );
    }
    // B saw A's marker (requires waited for the oneshot to finish).
    let b = line_after(&console, "PROBE B started");
    assert_eq!(field(b, "a-done"), Some("yes"), "{console}");
    // C saw B's marker, written just before READY=1, and A's.
    let c = line_after(&console, "PROBE C started after B");
    assert_eq!(field(c, "ready"), Some("yes"), "{console}");
    assert_eq!(field(c, "a-done"), Some("yes"), "{console}");
    let a_done = time_after(&console, "PROBE A done", "at");
    let b_started = time_after(&console, "PROBE B started", "at");
    let b_notifying = time_after(&console, "PROBE B notifying", "at");
    let c_started = time_after(&console, "PROBE C started", "at");
    assert!(
        a_done <= b_started,
        "B started before A was done:\n{console}"
    );
    assert!(
        c_started >= b_notifying && c_started >= b_started + 2.0,
        "C started at {c_started}s, B started at {b_started}s and notified at {b_notifying}s:\n{console}"
    );
    assert_eq!(
        line_after(&console, "PROBE B notify exit="),
        "0",
        "liftoff notify failed:\n{console}"
    );
    refute(&vm.console(), &["failure action", "Kernel panic"]);
}

// ---------------------------------------------------------------------
// 2. Restarts, the start limit, a critical unit.

/// Records its pid (exec keeps it for sleep) and its start time.
const CRASHY_SH: &str = r#"read -r up rest < /proc/uptime
probe "crashy started pid=$$ at=$up"
echo $$ > /run/crashy.pid
exec $B sleep 3600
"#;

/// Kills crashy once, waits for its new pid, then waits for flappy to
/// fail for good; prints `liftoff ctl status` of both.
const RESTARTS_SH: &str = r#"status() {
    /sbin/init ctl status "$1" 2>&1 | while read -r line; do probe "ctl $1: $line"; done
}
i=0
while [ ! -s /run/crashy.pid ] && [ $i -lt 150 ]; do $B sleep 0.2; i=$((i + 1)); done
old=$($B cat /run/crashy.pid)
read -r up rest < /proc/uptime
probe "killing crashy pid=$old at=$up"
kill -9 "$old"
i=0
while [ "$($B cat /run/crashy.pid)" = "$old" ] && [ $i -lt 150 ]; do $B sleep 0.2; i=$((i + 1)); done
probe "crashy now pid=$($B cat /run/crashy.pid)"
status crashy
i=0
while ! /sbin/init ctl status flappy 2>&1 | $B grep -q failed && [ $i -lt 150 ]; do
    $B sleep 0.2
    i=$((i + 1))
done
status flappy
probe "restarts done"
"#;

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn crashing_unit_restarts_and_flapping_unit_hits_the_start_limit() {
    let flappy = format!(
        "exec = [\"/bin/busybox\", \"sh\", \"-c\", \"echo PROBE flappy run > /dev/kmsg; exit 1\"]\n{CONSOLE_OUTPUT}\
         restart = \"on-failure\"\nrestart_delay = \"100ms\"\n\
         start_limit_burst = 3\nstart_limit_interval = \"30s\"\nboot = \"start\"\n"
    );
    let guest = guest(
        &[("crashy", CRASHY_SH), ("restarts", RESTARTS_SH)],
        &[
            (
                "crashy",
                script_unit(
                    "crashy",
                    &[],
                    "restart = \"always\"\nrestart_delay = \"200ms\"\n",
                ),
            ),
            ("flappy", flappy),
            (
                "restarts",
                script_unit(
                    "restarts",
                    &[],
                    "type = \"oneshot\"\nafter = [\"crashy\"]\nboot = \"start\"\n",
                ),
            ),
        ],
    )
    .build()
    .expect("build the guest");
    let vm = boot(&guest, "", "boot");
    expect(&vm, "PROBE restarts done", BOOT + STEP);
    let console = vm.console();

    // crashy: exactly one restart, a new pid, no sooner than the delay.
    let starts: Vec<(String, f64)> = console
        .lines()
        .filter_map(|l| after(l, "PROBE crashy started"))
        .map(|l| {
            let pid = field(l, "pid").unwrap_or_default().to_owned();
            let at = field(l, "at").and_then(|v| v.parse().ok()).unwrap_or(-1.0);
            (pid, at)
        })
        .collect();
    assert_eq!(
        starts.len(),
        2,
        "crashy did not start exactly twice:\n{console}"
    );
    let (old, new) = (&starts[0].0, &starts[1].0);
    assert_ne!(old, new, "the same pid after a restart:\n{console}");
    let killing = line_after(&console, "PROBE killing crashy");
    assert_eq!(field(killing, "pid"), Some(old.as_str()), "{console}");
    assert_eq!(
        field(line_after(&console, "PROBE crashy now"), "pid"),
        Some(new.as_str()),
        "{console}"
    );
    let killed_at = time_after(&console, "PROBE killing crashy", "at");
    // /proc/uptime has 10 ms steps: the restart comes 200 ms after the
    // kill at the earliest, which the guest can see as 190 ms.
    assert!(
        starts[1].1 - killed_at >= 0.19,
        "crashy restarted {:.2}s after the kill, under restart_delay = 200ms:\n{console}",
        starts[1].1 - killed_at
    );
    let crashy = ctl_lines(&console, "crashy");
    expect_line(&crashy, "state: running", &console);
    expect_line(&crashy, &format!("main pid: {new}"), &console);
    expect_line(&crashy, "restarts: 1", &console);

    // flappy: three starts within the burst, then failed for good.
    assert_eq!(
        console.matches("PROBE flappy run").count(),
        3,
        "flappy did not run exactly start_limit_burst = 3 times:\n{console}"
    );
    let flappy = ctl_lines(&console, "flappy");
    expect_line(&flappy, "state: failed", &console);
    assert!(
        flappy.iter().any(|l| l.contains("start limit")),
        "no start limit in `liftoff ctl status flappy`: {flappy:#?}\n{console}"
    );
    refute(&vm.console(), &["failure action", "Kernel panic"]);
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn critical_unit_failure_runs_the_failure_action() {
    let doomed = format!(
        "exec = [\"/bin/busybox\", \"sh\", \"-c\", \"echo PROBE doomed exiting > /dev/kmsg; exit 1\"]\n{CONSOLE_OUTPUT}\
         type = \"oneshot\"\ncritical = true\nrestart = \"never\"\n"
    );
    let guest = guest(&[], &[("doomed", doomed)])
        .build()
        .expect("build the guest");
    // The harness's flags include liftoff.failure_delay=0; the default
    // action is reboot, which -no-reboot turns into QEMU's exit.
    let mut vm = boot(&guest, "", "boot");
    expect(&vm, "PROBE doomed exiting", BOOT);
    expect(&vm, "failure action", STEP);
    expect(&vm, "reboot: Restarting system", SHUTDOWN);
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    assert!(
        position(&console, "PROBE doomed exiting") < position(&console, "failure action"),
        "the failure action came before the unit failed:\n{console}"
    );
    assert!(!console.contains("Kernel panic"), "{console}");
}

// ---------------------------------------------------------------------
// 3. Orphans.

/// Forks orphans the classic way, `( cmd & )`: the subshell exits at
/// once, so each child is re-parented to PID 1.
const DAEMON_SH: &str = r#"for t in 1 2 5; do
    ( $B sleep $t & echo $! > /run/orphan.$t )
done
( $B true & )
probe "daemon forked"
exit 0
"#;

/// Reads the 5 s orphan's parent, waits until every orphan has exited,
/// then counts processes in state Z.
const ZOMBIES_SH: &str = r#"pid=$($B cat /run/orphan.5)
ppid=$($B sed -n 's/^.*) . \([0-9]*\) .*/\1/p' /proc/$pid/stat)
probe "orphan pid=$pid ppid=$ppid"
$B sleep 8
n=0
for f in /proc/[0-9]*/stat; do
    s=$($B sed -n 's/^.*) \(.\) .*/\1/p' "$f" 2>/dev/null)
    if [ "$s" = Z ]; then
        n=$((n + 1))
        probe "zombie $($B cat "$f")"
    fi
done
if [ -e /proc/$pid ]; then probe "orphan still there"; else probe "orphan gone"; fi
probe "zombies=$n"
"#;

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn double_forking_daemon_leaves_no_zombies() {
    let guest = guest(
        &[("daemon", DAEMON_SH), ("zombies", ZOMBIES_SH)],
        &[
            ("daemon", script_unit("daemon", &[], "type = \"oneshot\"\n")),
            (
                "zombies",
                script_unit(
                    "zombies",
                    &[],
                    "type = \"oneshot\"\nrequires = [\"daemon\"]\n",
                ),
            ),
        ],
    )
    .build()
    .expect("build the guest");
    let vm = boot(&guest, "", "boot");
    expect(&vm, "PROBE zombies=", BOOT + STEP);
    let console = vm.console();
    assert!(console.contains("PROBE daemon forked"), "{console}");
    let orphan = line_after(&console, "PROBE orphan pid=");
    assert_eq!(
        field(orphan, "ppid"),
        Some("1"),
        "the orphan was not re-parented to PID 1:\n{console}"
    );
    assert!(
        console.contains("PROBE orphan gone"),
        "the orphan outlived its sleep (not reaped):\n{console}"
    );
    assert_eq!(
        line_after(&console, "PROBE zombies="),
        "0",
        "zombies left behind:\n{console}"
    );
    refute(&vm.console(), &["failure action", "Kernel panic"]);
}

// ---------------------------------------------------------------------
// 4. Capabilities.

/// Prints the unit's capability lines and NoNewPrivs, then tries to set
/// the clock (to the time it already shows, so the clock stays right).
const CAPS_SH: &str = r#"while read -r key value; do
    case "$key" in
    NoNewPrivs:|CapBnd:|CapEff:|CapPrm:) probe "$1 $key $value" ;;
    esac
done < /proc/$$/status
# busybox date reports a refused settimeofday(2) on stderr but still
# exits 0: an error message counts as a failure too.
now=$($B date '+%Y-%m-%d %H:%M:%S')
error=$($B date -s "$now" 2>&1 > /dev/null)
status=$?
if [ "$status" = 0 ] && [ -z "$error" ]; then
    probe "$1 date-succeeded"
else
    probe "$1 date-failed status=$status $error"
fi
"#;

/// `CAP_SYS_TIME`, which settimeofday(2) needs (capabilities(7)).
const CAP_SYS_TIME: u32 = 25;
/// `CAP_DAC_OVERRIDE`.
const CAP_DAC_OVERRIDE: u32 = 1;

/// The hex mask printed as `PROBE <unit> <key>: <hex>`.
fn cap_mask(console: &str, unit: &str, key: &str) -> u64 {
    let text = line_after(console, &format!("PROBE {unit} {key}:"));
    u64::from_str_radix(text, 16).unwrap_or_else(|_| panic!("{key} {text:?}:\n{console}"))
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn capabilities_and_no_new_privileges_confine_a_unit() {
    let guest = guest(
        &[("caps", CAPS_SH)],
        &[
            (
                "confined",
                script_unit(
                    "caps",
                    &["confined"],
                    "type = \"oneshot\"\ncapabilities = [\"CAP_DAC_OVERRIDE\"]\nno_new_privileges = true\n",
                ),
            ),
            (
                "control",
                script_unit(
                    "caps",
                    &["control"],
                    "type = \"oneshot\"\nafter = [\"confined\"]\n",
                ),
            ),
        ],
    )
    .build()
    .expect("build the guest");
    let vm = boot(&guest, "", "boot");
    expect(&vm, "PROBE confined date-", BOOT);
    expect(&vm, "PROBE control date-", STEP);
    let console = vm.console();

    // Confined: NoNewPrivs, the bounding set is exactly the one listed
    // capability, the effective set within it, and the clock refused.
    assert_eq!(
        line_after(&console, "PROBE confined NoNewPrivs:"),
        "1",
        "{console}"
    );
    let bounding = cap_mask(&console, "confined", "CapBnd");
    assert_eq!(
        bounding,
        1 << CAP_DAC_OVERRIDE,
        "bounding set {bounding:#x}:\n{console}"
    );
    assert_eq!(bounding & (1 << CAP_SYS_TIME), 0, "{console}");
    let effective = cap_mask(&console, "confined", "CapEff");
    assert_eq!(
        effective & !bounding,
        0,
        "effective {effective:#x} outside the bounding set:\n{console}"
    );
    assert!(
        console.contains("PROBE confined date-failed"),
        "date -s succeeded without CAP_SYS_TIME:\n{console}"
    );

    // Control: the same script, unconfined, may set the clock.
    assert_eq!(
        line_after(&console, "PROBE control NoNewPrivs:"),
        "0",
        "{console}"
    );
    assert_ne!(
        cap_mask(&console, "control", "CapBnd") & (1 << CAP_SYS_TIME),
        0,
        "{console}"
    );
    assert!(
        console.contains("PROBE control date-succeeded"),
        "date -s failed for a unit with every capability:\n{console}"
    );
    refute(&vm.console(), &["failure action", "Kernel panic"]);
}

// ---------------------------------------------------------------------
// 5. Poweroff during a write.

/// A persistent ext4 `/local` on the blank DATA partition.
const LOCAL_MOUNTS: &str = r#"# qemu-tests/tests/units.rs
[[volume]]
kind = "persistent"
target = "/local"
partlabel = "DATA"
"#;

/// The size of one record: `REC <8 digits> <pad>\n`.
const RECORD: usize = 4096;

/// Appends numbered 4 KiB records; on SIGTERM finishes the record (a trap
/// runs between commands), takes 2 s more (inside stop_timeout), writes
/// `END` and exits 0. Exits at once on the verifying boot.
const WRITER_SH: &str = r#"if $B grep -q probe.verify /proc/cmdline; then exit 0; fi
stop=0
trap 'stop=1' TERM
pad=$(printf '%4082s' '' | $B tr ' ' x)
i=0
probe "writer started"
while [ "$stop" = 0 ]; do
    i=$((i + 1))
    printf 'REC %08d %s\n' "$i" "$pad" >> /local/data
    $B sleep 0.05
done
probe "writer got SIGTERM records=$i"
$B sleep 2
echo END >> /local/data
probe "writer wrote END"
exit 0
"#;

/// Boot 1: once the writer has written a few records, `liftoff ctl
/// poweroff`. Boot 2 (`probe.verify`): prints the file's size and tail
/// and the kernel's ext4 lines, then powers off the same way.
const STOPPER_SH: &str = r#"if $B grep -q probe.verify /proc/cmdline; then
    probe "verify size=$($B stat -c %s /local/data) tail=$($B tail -c 4 /local/data)"
    $B dmesg | $B grep -i -e ext4 -e orphan -e recover | while read -r line; do
        probe "kmsg $line"
    done
    probe "verify done"
    /sbin/init ctl poweroff
    exit 0
fi
i=0
while [ "$($B stat -c %s /local/data 2>/dev/null || echo 0)" -lt 20480 ] && [ $i -lt 150 ]; do
    $B sleep 0.2
    i=$((i + 1))
done
$B sleep 1
probe "requesting poweroff"
/sbin/init ctl poweroff
probe "ctl poweroff exit=$?"
"#;

/// Runs `program args` on the host; returns its stdout.
fn host(program: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (e2fsprogs): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The DATA partition's number.
fn data_partition(image: &BuiltImage) -> u32 {
    image
        .partitions
        .iter()
        .find(|p| p.name == image.data_label)
        .map(|p| p.number)
        .expect("a DATA partition")
}

/// Checks that `data` is records 1..=N, whole, then `END\n`; returns N.
fn check_records(data: &[u8]) -> usize {
    let body = data
        .strip_suffix(b"END\n")
        .unwrap_or_else(|| panic!("/data does not end with END: …{:?}", tail_of(data)));
    assert_eq!(
        body.len() % RECORD,
        0,
        "/data holds a partial record ({} bytes before END)",
        body.len()
    );
    let pad = "x".repeat(RECORD - 14);
    for (k, record) in body.chunks(RECORD).enumerate() {
        let want = format!("REC {:08} {pad}\n", k + 1);
        assert!(
            record == want.as_bytes(),
            "record {} is not whole or out of order: {:?}…",
            k + 1,
            String::from_utf8_lossy(&record[..40.min(record.len())])
        );
    }
    body.len() / RECORD
}

fn tail_of(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[data.len().saturating_sub(40)..]).into_owned()
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn ctl_poweroff_stops_a_writer_and_leaves_ext4_clean() {
    let guest = guest(
        &[("writer", WRITER_SH), ("stopper", STOPPER_SH)],
        &[
            (
                "writer",
                script_unit(
                    "writer",
                    &[],
                    "stop_timeout = \"10s\"\nrestart = \"never\"\n",
                ),
            ),
            (
                "stopper",
                script_unit("stopper", &[], "after = [\"writer\"]\nboot = \"start\"\n"),
            ),
        ],
    )
    .mounts_toml(LOCAL_MOUNTS)
    .with_mkfs_ext4()
    .modules(&["ext4"])
    .build()
    .expect("build the guest");

    // Boot 1: write, then power off in the middle of it.
    let mut vm = boot(&guest, "", "boot1");
    expect(&vm, "PROBE writer started", BOOT);
    expect(&vm, "PROBE requesting poweroff", STEP);
    expect(&vm, "PROBE writer wrote END", SHUTDOWN);
    expect(&vm, "reboot: Power down", SHUTDOWN);
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    assert!(
        position(&console, "PROBE requesting poweroff")
            < position(&console, "PROBE writer got SIGTERM"),
        "the writer was stopped before the poweroff:\n{console}"
    );
    let records: usize = field(line_after(&console, "PROBE writer got SIGTERM"), "records")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record count:\n{console}"));
    // The stopper waited for 5 records: the poweroff came mid-stream.
    assert!(records >= 5, "only {records} records:\n{console}");
    refute(&vm.console(), &["failure action", "Kernel panic", "fatal:"]);

    // On the host: the filesystem was unmounted cleanly and the file is
    // whole.
    let data = guest.dir().join("data.ext4");
    guest
        .image
        .extract_partition(data_partition(&guest.image), &data)
        .expect("extract DATA");
    let data = data.to_str().expect("a UTF-8 temporary path");
    let header = String::from_utf8_lossy(&host("dumpe2fs", &["-h", data])).into_owned();
    let state = after(&header, "Filesystem state:").unwrap_or_default();
    assert_eq!(state, "clean", "DATA was not unmounted cleanly:\n{header}");
    let features = after(&header, "Filesystem features:").unwrap_or_default();
    assert!(
        !features.contains("needs_recovery"),
        "DATA's journal needs recovery:\n{header}"
    );
    let file = host("debugfs", &["-R", "cat /data", data]);
    assert_eq!(
        check_records(&file),
        records,
        "the file does not hold the {records} records the writer reported"
    );

    // Boot 2: the guest sees the same file, and mounting needed no
    // journal recovery and no orphan cleanup.
    let mut vm = boot(&guest, "probe.verify=1", "boot2");
    expect(&vm, "PROBE verify done", BOOT);
    expect(&vm, "reboot: Power down", SHUTDOWN);
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    let verify = line_after(&console, "PROBE verify size=");
    assert!(
        verify.starts_with(&format!("{} tail=END", file.len())),
        "boot 2 sees another /local/data: {verify}\n{console}"
    );
    let kmsg: Vec<&str> = console
        .lines()
        .filter_map(|l| after(l, "PROBE kmsg"))
        .collect();
    assert!(
        kmsg.iter().any(|l| l.contains("mounted filesystem")),
        "no ext4 mount in the kernel log: {kmsg:#?}\n{console}"
    );
    for line in &kmsg {
        let lower = line.to_lowercase();
        assert!(
            !lower.contains("recover") && !lower.contains("orphan"),
            "boot 2's ext4 mount cleaned up after boot 1: {line}\n{console}"
        );
    }
    refute(&vm.console(), &["failure action", "Kernel panic", "fatal:"]);
}

// ---------------------------------------------------------------------
// 6. A malformed unit file.

/// `restart` misspelled, on line 3.
const BAD_TOML: &str = r#"# qemu-tests/tests/units.rs: a typo on line 3
exec = ["/bin/busybox", "true"]
restat = "always"
"#;

const GOOD_SH: &str = r#"probe "good ran"
out=$(/sbin/init ctl status bad 2>&1)
probe "ctl-bad exit=$? $out"
"#;

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn malformed_unit_file_is_reported_and_the_others_still_run() {
    let guest = guest(
        &[("good", GOOD_SH)],
        &[
            ("bad", BAD_TOML.to_owned()),
            ("good", script_unit("good", &[], "type = \"oneshot\"\n")),
        ],
    )
    .build()
    .expect("build the guest");
    let vm = boot(&guest, "", "boot");
    expect(&vm, "PROBE ctl-bad", BOOT);
    let console = vm.console();
    assert!(
        console
            .lines()
            .any(|l| l.contains("/etc/liftoff/units/bad.toml")
                && (l.contains("bad.toml:3") || l.contains("line 3"))
                && l.contains("restat")),
        "no error naming bad.toml, line 3 and `restat`:\n{console}"
    );
    assert!(console.contains("PROBE good ran"), "{console}");
    let ctl = line_after(&console, "PROBE ctl-bad");
    assert_eq!(
        field(ctl, "exit"),
        Some("1"),
        "`liftoff ctl status bad`:\n{console}"
    );
    assert!(
        ctl.contains("unknown unit \"bad\""),
        "`liftoff ctl status bad` does not say unknown unit: {ctl}\n{console}"
    );
    refute(&vm.console(), &["failure action", "Kernel panic"]);
}

// ---------------------------------------------------------------------
// 8. Cgroups, output, kill modes, and ctrl-alt-delete.

/// In its own cgroup with limits: reports the cgroup, the limits, its
/// signal mask and descriptors, one line on stdout (the kmsg pipe), then
/// forks until pids.max stops it. After the limit is hit nothing here
/// forks again: `read` and `echo` are shell builtins.
const LIMITED_SH: &str = r#"cg=/sys/fs/cgroup/liftoff/limited
probe "limited cgroup=$($B cat /proc/self/cgroup) memory.max=$($B cat $cg/memory.max) pids.max=$($B cat $cg/pids.max)"
# A child's view (ash itself ignores SIGQUIT, as bash does; its children
# get the disposition ash inherited from liftoff).
$B grep -E '^Sig(Blk|Ign):' /proc/self/status | while read -r key value; do
    probe "limited $key $value"
done
probe "limited fds=$($B ls /proc/self/fd | $B tr '\n' ' ')"
echo "hello through the kmsg pipe"
( i=0; while [ $i -lt 30 ]; do $B sleep 1000 & i=$((i + 1)); done ) 2> /dev/null
read -r current < $cg/pids.current
while read -r key value; do
    [ "$key" = max ] && events=$value
done < $cg/pids.events
probe "limited pids.current=$current max-events=$events"
exec $B sleep 1000
"#;

/// Runs as `nobody` in a delegated cgroup: may it make a sub-cgroup? Its
/// lines go through the kmsg pipe (nobody cannot write /dev/kmsg itself).
const DELEGATED_SH: &str = r#"cg=/sys/fs/cgroup/liftoff/delegated
echo "PROBE delegated uid=$($B id -u) owner=$($B stat -c %u $cg/cgroup.procs)"
if $B mkdir $cg/sub 2> /dev/null; then
    echo "PROBE delegated mkdir=ok"
else
    echo "PROBE delegated mkdir=refused"
fi
exec $B sleep 1000
"#;

/// Leaves a child behind and becomes a long sleep: `$1` names the unit.
const FORKER_SH: &str = r#"$B sleep 1000 &
echo $! > /run/$1-child
probe "$1 child=$!"
exec $B sleep 1000
"#;

/// After boot: the file output, the boot record, then the two kill modes.
const CHECKS_SH: &str = r#"while [ ! -e /run/liftoff/boot.json ]; do $B sleep 0.1; done
probe "filed log=$($B cat /run/filed.log)"
probe "record ready=$($B grep -c '"ready_us": [0-9]' /run/liftoff/boot.json)"
g=$($B cat /run/group-child)
p=$($B cat /run/proc-child)
/sbin/init ctl stop group > /dev/null
/sbin/init ctl stop proc > /dev/null
$B sleep 2
if $B kill -0 "$g" 2> /dev/null; then probe "group child alive"; else probe "group child gone"; fi
if $B kill -0 "$p" 2> /dev/null; then probe "proc child alive"; else probe "proc child gone"; fi
probe "checks done"
"#;

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn cgroups_output_and_kill_modes_then_ctrl_alt_delete_stops_in_reverse_order() {
    let sleeper = "exec = [\"/bin/busybox\", \"sleep\", \"1000\"]\n";
    let guest = guest(
        &[
            ("limited", LIMITED_SH),
            ("delegated", DELEGATED_SH),
            ("forker", FORKER_SH),
            ("checks", CHECKS_SH),
            ("filed", "echo \"to a file\"\n"),
        ],
        &[
            (
                "limited",
                "exec = [\"/bin/busybox\", \"sh\", \"/etc/probe/limited.sh\"]\n\
                 stdout = \"kmsg\"\nstderr = \"kmsg\"\n\
                 [cgroup]\nmemory_max = \"64M\"\npids_max = 8\n"
                    .to_owned(),
            ),
            (
                "delegated",
                "exec = [\"/bin/busybox\", \"sh\", \"/etc/probe/delegated.sh\"]\n\
                 user = \"nobody\"\nstdout = \"kmsg\"\nstderr = \"kmsg\"\n\
                 [cgroup]\ndelegate = true\n"
                    .to_owned(),
            ),
            ("group", script_unit("forker", &["group"], "")),
            (
                "proc",
                script_unit("forker", &["proc"], "kill_mode = \"process\"\n"),
            ),
            (
                "filed",
                "type = \"oneshot\"\nexec = [\"/bin/busybox\", \"sh\", \"/etc/probe/filed.sh\"]\n\
                 stdout = { file = \"/run/filed.log\" }\n"
                    .to_owned(),
            ),
            ("a", sleeper.to_owned()),
            ("b", format!("{sleeper}requires = [\"a\"]\n")),
            (
                "checks",
                script_unit(
                    "checks",
                    &[],
                    "type = \"oneshot\"\nboot = \"start\"\n\
                     after = [\"limited\", \"delegated\", \"group\", \"proc\", \"filed\", \"b\"]\n",
                ),
            ),
        ],
    )
    .file("/etc/passwd", PASSWD, 0o644)
    .file("/etc/group", GROUP, 0o644)
    .build()
    .expect("build the guest");
    let mut vm = boot(&guest, "", "boot");
    expect(&vm, "PROBE checks done", BOOT + STEP);
    let console = vm.console();

    // The cgroup and its limits, as the kernel shows them.
    let limited = line_after(&console, "PROBE limited cgroup=");
    assert!(
        limited.starts_with("0::/liftoff/limited "),
        "not in its own cgroup: {limited}\n{console}"
    );
    assert_eq!(field(limited, "memory.max"), Some("67108864"), "{console}");
    assert_eq!(field(limited, "pids.max"), Some("8"), "{console}");
    let pids = line_after(&console, "PROBE limited pids.current=");
    let current: u32 = pids
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("pids.current {pids:?}\n{console}"));
    assert!(current <= 8, "pids.max not enforced: {pids}\n{console}");
    let events: u32 = field(pids, "max-events")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        events > 0,
        "the fork loop never hit pids.max: {pids}\n{console}"
    );
    // A clean start: nothing blocked or ignored, stdio only.
    assert_eq!(
        line_after(&console, "PROBE limited SigBlk:"),
        "0000000000000000"
    );
    assert_eq!(
        line_after(&console, "PROBE limited SigIgn:"),
        "0000000000000000"
    );
    // What `ls /proc/self/fd` inherited: stdio, plus its own handle on
    // the directory it lists (3). A descriptor PID 1 leaked would show.
    assert_eq!(
        line_after(&console, "PROBE limited fds="),
        "0 1 2 3",
        "stray descriptors:\n{console}"
    );
    // stdout = "kmsg": PID 1 forwards the line tagged with the unit.
    assert!(
        console
            .lines()
            .any(|l| l.contains("limited[")
                && l.trim_end().ends_with("]: hello through the kmsg pipe")),
        "no tagged kmsg line from `limited`:\n{console}"
    );

    // Delegation: nobody owns its cgroup and can make a sub-cgroup.
    let delegated = line_after(&console, "PROBE delegated uid=");
    assert_eq!(delegated, "65534 owner=65534", "{console}");
    assert_eq!(
        line_after(&console, "PROBE delegated mkdir="),
        "ok",
        "{console}"
    );

    // stdout = { file = … }, and the boot record.
    assert_eq!(line_after(&console, "PROBE filed log="), "to a file");
    let ready: u32 = line_after(&console, "PROBE record ready=")
        .parse()
        .unwrap_or(0);
    assert!(ready >= 7, "boot.json has {ready} ready units:\n{console}");

    // kill_mode group takes the whole cgroup; process leaves the child.
    assert!(console.contains("PROBE group child gone"), "{console}");
    assert!(console.contains("PROBE proc child alive"), "{console}");

    // Ctrl-alt-delete: the orderly shutdown stops `b` before `a`, which it
    // requires, then reboots.
    vm.send_ctrl_alt_del().expect("ctrl-alt-delete");
    expect(&vm, "reboot: Restarting system", SHUTDOWN);
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    let b_stopped = position(&console, "unit b: stopped");
    let a_stopping = position(&console, "unit a: stopping");
    assert!(
        b_stopped < a_stopping,
        "`a` was stopped before `b`, which requires it:\n{console}"
    );
    refute(&console, &["failure action", "Kernel panic", "fatal:"]);
}
