//! Host containers end to end (issue 7): Debian's containerd and runc as
//! the `host-containerd` unit, `host-ctr` importing busybox OCI archives
//! built by the harness and running them through containerd's gRPC API,
//! and liftoff generating a unit per enabled host container at boot.
//!
//! Each container's command prints `INSIDE NAME key=value` lines about
//! what it sees (its PID 1, its SELinux domain, seccomp, its storage, the
//! host root, the processes) to its stdout, which `host-ctr` copies to the
//! kernel log under the unit's tag; a probe unit on the host writes
//! `PROBE …` lines. The tests read both from the console.
//!
//! | test | guest | asserts |
//! |------|-------|---------|
//! | [`host_containers_run_confined_and_stop_cleanly`] | SELinux enforcing; `control` (ordinary), `admin` (superpowered), `missing` (no archive), `corrupt` (a layer with a flipped byte); the probe checks containerd and the tasks, then `liftoff ctl poweroff` | host-containerd answers a version call; `control` runs as PID 1 of its own PID namespace in `container_t` with seccomp, sees its storage (and the host sees what it wrote there) but not the host root; `admin` runs in `super_container_t` without seccomp, sees the host's PIDs and the host root read-only; `missing` and `corrupt` fail with errors naming the archive (and the blob), boot completes anyway; at poweroff both host containers stop before host-containerd, no AVC denial, no failure |
//! | [`host_containers_survive_containerd_and_restart_on_exit`] | `control` and `crashy` (exits 3 after a second) | SIGKILL to host-containerd: liftoff restarts it, `control`'s task is still there with the same pid, `host-ctr` reconnected (no restart); `crashy`'s exit becomes `host-ctr`'s status 3 and liftoff restarts it after its backoff |

use std::time::Duration;

use qemu_tests::containerd::GUEST_CTR;
use qemu_tests::guest_root::{
    Guest, GuestRoot, after, expect, expect_exit, expect_line, field, kernel_times, position,
    probe_lines, refute,
};
use qemu_tests::host_containers::{
    HOST_CONTAINERD_SOCKET, HOST_CONTAINERD_UNIT_NAME, archive_path, settings_toml,
};
use qemu_tests::oci::{ArchiveOptions, BlobKind, DEFAULT_APPLETS, busybox_archive, corrupt_blob};

/// Kernel start to the probe's first line: stage 1 (modules, the first
/// boot's mkfs.ext4), then containerd paging in through dm-verity under
/// TCG on a loaded two-core machine.
const READY: Duration = Duration::from_secs(300);
/// From the probe's start to its end: imports, container starts, in the
/// second scenario a containerd restart and backoffs.
const STEP: Duration = Duration::from_secs(300);
/// A poweroff: host containers, containerd, the unmount loop.
const SHUTDOWN: Duration = Duration::from_secs(120);
/// The limit on one boot.
const RUN: Duration = Duration::from_secs(900);

/// A container's command: report what it sees, leave a file in its
/// storage, then live until SIGTERM. `NAME` is replaced.
const LOOK_AROUND: &str = r#"say() { echo "INSIDE NAME $*"; }
say "comm=$(cat /proc/1/comm) self=$$"
say "context=$(cat /proc/self/attr/current)"
say "$(grep Seccomp: /proc/self/status | tr -d '\t')"
S=/.liftoff/host-containers/current
echo written-inside > $S/from-inside && say "storage=$(ls $S | tr '\n' ,)"
if [ -e /.liftoff/rootfs/sbin/init ]; then say hostroot=yes; else say hostroot=no; fi
if touch /.liftoff/rootfs/etc/written 2>/dev/null; then say hostroot-write=yes; else say hostroot-write=no; fi
say "pids=$(ls /proc | grep -c '^[0-9]')"
trap 'say got SIGTERM; exit 0' TERM
touch $S/done
say ready
while true; do sleep 1; done
"#;

/// A container that counts its runs in its storage, runs a second and
/// exits 3.
const CRASHY: &str = r#"echo run >> /.liftoff/host-containers/current/runs
echo "INSIDE crashy run"; sleep 1; echo "INSIDE crashy exits"; exit 3"#;

/// The probe's helpers: `$B` busybox, `probe` (one kernel log record),
/// `status` (`liftoff ctl status UNIT`, a line at a time), `ctr` for the
/// host containers' containerd and `wait_for` (a shell condition, checked
/// every 0.2 s for up to 120 s).
const PRELUDE: &str = r#"B=/bin/busybox
probe() { echo "PROBE $*" > /dev/kmsg; }
status() {
    /sbin/init ctl status "$1" 2>&1 | while read -r line; do probe "ctl $1: $line"; done
}
ctr() { CTR --address SOCKET "$@"; }
log_cmd() {
    tag=$1; shift
    out=$("$@" 2>&1); rc=$?
    echo "$out" | while read -r line; do probe "$tag: $line"; done
    probe "$tag exit=$rc"
}
wait_for() {
    i=0
    while [ $i -lt 600 ]; do
        if eval "$1"; then return 0; fi
        $B sleep 0.2
        i=$((i + 1))
    done
    probe "timed out waiting for: $1"
    return 1
}
running() { /sbin/init ctl status "$1" 2>/dev/null | $B grep -q 'state: *running'; }
main_pid() {
    /sbin/init ctl status "$1" 2>/dev/null | $B sed -n 's/^ *main pid: *\([0-9]*\).*/\1/p'
}
task_pid() { ctr task ls 2>/dev/null | $B awk -v n="$1" '$1 == n && $3 == "RUNNING" { print $2 }'; }
"#;

/// Scenario 1 (with SELinux): containerd answers, the two host
/// containers run and report, the host sees the storage, the broken ones
/// failed, then a poweroff.
const LIFECYCLE_SH: &str = r#"read -r up rest < /proc/uptime
probe "probe started at=$up"
log_cmd version ctr version
wait_for 'running control && [ -e /local/host-containers/control/done ]'
wait_for 'running admin && [ -e /local/host-containers/admin/done ]'
log_cmd tasks ctr task ls
probe "host sees: $($B cat /local/host-containers/control/from-inside)"
status control
status admin
status missing
status corrupt
probe "host-containerd context=$($B cat /proc/$(main_pid host-containerd)/attr/current)"
probe "boot record: $($B tr -d ' \n' < /run/liftoff/boot.json | $B grep -o '{"name":"control"[^}]*}')"
/sbin/init analyze time 2>&1 | while read -r line; do probe "analyze: $line"; done
/sbin/init analyze critical-chain control 2>&1 | while read -r line; do probe "chain: $line"; done
probe "plot units=$(/sbin/init analyze plot | $B grep -c 'data-kind="unit"')"
probe "probe done"
/sbin/init ctl poweroff
"#;

/// Scenario 2: SIGKILL to host-containerd while `control` runs; wait for
/// its second start; `control`'s task must still be there. Then wait for
/// `crashy`'s third run.
const RESILIENCE_SH: &str = r#"wait_for 'running control && [ -e /local/host-containers/control/done ]'
before=$(task_pid control)
hostctr=$(main_pid control)
old=$(main_pid host-containerd)
read -r up rest < /proc/uptime
probe "killing host-containerd pid=$old task=$before host-ctr=$hostctr at=$up"
kill -9 "$old"
wait_for 'new=$(main_pid host-containerd); [ -n "$new" ] && [ "$new" != "$old" ] && running host-containerd'
wait_for '[ -n "$(task_pid control)" ]'
read -r up rest < /proc/uptime
probe "host-containerd now pid=$(main_pid host-containerd) task=$(task_pid control) host-ctr=$(main_pid control) at=$up"
log_cmd tasks ctr task ls
status control
wait_for '[ "$($B cat /local/host-containers/crashy/runs 2>/dev/null | $B wc -l)" -ge 3 ]'
status crashy
probe "probe done"
"#;

/// The probe unit: once host-containerd is ready, with time to spare.
fn probe_unit() -> String {
    format!(
        "exec = [\"/bin/busybox\", \"sh\", \"/etc/probe/probe.sh\"]\n\
         type = \"oneshot\"\nrequires = [\"{HOST_CONTAINERD_UNIT_NAME}\"]\nboot = \"start\"\n\
         ready_timeout = \"15min\"\nstdout = \"console\"\nstderr = \"console\"\n"
    )
}

/// A busybox image whose command is `script`, with the applets the
/// scripts use.
fn image(name: &str, script: &str) -> ArchiveOptions {
    let mut applets: Vec<String> = DEFAULT_APPLETS.iter().map(|&a| a.to_owned()).collect();
    for extra in ["grep", "tr", "touch"] {
        applets.push(extra.to_owned());
    }
    ArchiveOptions {
        reference: format!("localhost/{name}:latest"),
        script: script.replace("NAME", name),
        applets,
    }
}

/// The host's static busybox (the guests are made of it too).
fn host_busybox() -> std::path::PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox on the host (cargo xtask test installs busybox-static)")
}

/// A root with host-containerd, the probe running `script` and the host
/// containers added by `add`.
fn guest(script: &str, add: impl FnOnce(GuestRoot) -> GuestRoot) -> Guest {
    let prelude = PRELUDE
        .replace("CTR", GUEST_CTR)
        .replace("SOCKET", HOST_CONTAINERD_SOCKET);
    let root = GuestRoot::new()
        .run_timeout(RUN)
        .with_host_containers()
        .unit("probe", &probe_unit())
        .script("/etc/probe/probe.sh", &format!("{prelude}{script}"));
    add(root).build().expect("build the guest")
}

/// What container `name` reported as `key=…`.
fn inside<'a>(console: &'a str, name: &str, key: &str) -> &'a str {
    after(console, &format!("INSIDE {name} {key}="))
        .unwrap_or_else(|| panic!("{name} did not report {key}:\n{console}"))
}

/// A delay as liftoff logs it (`500ms`, `4s`).
fn seconds(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?
        .parse()
        .ok()
        .map(Duration::from_secs)
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn host_containers_run_confined_and_stop_cleanly() {
    // The corrupt archive: a good one with one byte of its layer flipped.
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let corrupt_tar = scratch.path().join("corrupt.tar");
    let archive = busybox_archive(
        &host_busybox(),
        &corrupt_tar,
        &image("corrupt", LOOK_AROUND),
    )
    .expect("build the archive");
    corrupt_blob(&archive, BlobKind::Layer).expect("corrupt the layer");
    let corrupt_bytes = std::fs::read(&corrupt_tar).expect("read the archive");
    let layer = archive.layer.digest.clone();

    let guest = guest(LIFECYCLE_SH, |root| {
        root.selinux()
            .host_container(
                "control",
                &settings_toml(&archive_path("control"), false, true),
                Some(&image("control", LOOK_AROUND)),
            )
            .host_container(
                "admin",
                &settings_toml(&archive_path("admin"), true, true),
                Some(&image("admin", LOOK_AROUND)),
            )
            .host_container(
                "missing",
                &settings_toml(&archive_path("missing"), false, true),
                None,
            )
            .host_container(
                "corrupt",
                &settings_toml(&archive_path("corrupt"), false, true),
                None,
            )
            .file(archive_path("corrupt"), corrupt_bytes, 0o644)
    });
    let mut vm = guest.boot("", "lifecycle").expect("start QEMU");
    expect(&vm, "PROBE probe started", READY);
    expect(&vm, "PROBE probe done", STEP);
    let status = expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    eprintln!("guest exited: {status:?}");

    // PID 1 generated the units, host-containerd became ready and answers.
    assert!(
        console.contains("host containers: units for admin, control, corrupt, missing"),
        "no generated units:\n{console}"
    );
    let ready = kernel_times(&console, "unit host-containerd: ready");
    assert_eq!(ready.len(), 1, "host-containerd not ready once:\n{console}");
    let version = probe_lines(&console, "version");
    assert!(
        version.iter().any(|l| l.starts_with("Version: 1.")),
        "no server version from host-containerd: {version:#?}\n{console}"
    );
    assert_eq!(after(&console, "PROBE version exit="), Some("0"));
    let tasks = probe_lines(&console, "tasks");
    for name in ["control", "admin"] {
        assert!(
            tasks
                .iter()
                .any(|l| l.starts_with(&format!("{name} ")) && l.ends_with("RUNNING")),
            "{name} is not a running task: {tasks:#?}\n{console}"
        );
        expect_line(
            &probe_lines(&console, &format!("ctl {name}")),
            "state: running",
            &console,
        );
    }

    // The ordinary container: its own PID namespace (its command is PID
    // 1), the container domain, seccomp filtering, its storage, no host.
    assert_eq!(inside(&console, "control", "comm"), "sh self=1");
    assert_eq!(
        inside(&console, "control", "context"),
        "system_u:system_r:container_t"
    );
    assert!(
        console.contains("INSIDE control Seccomp:2"),
        "control has no seccomp filter:\n{console}"
    );
    assert_eq!(inside(&console, "control", "storage"), "from-inside,");
    assert_eq!(inside(&console, "control", "hostroot"), "no");
    let pids: u32 = inside(&console, "control", "pids")
        .parse()
        .expect("a count");
    assert!(pids <= 4, "control sees {pids} processes:\n{console}");
    assert_eq!(
        after(&console, "PROBE host sees: "),
        Some("written-inside"),
        "the host does not see the container's file:\n{console}"
    );

    // The superpowered container: host PIDs (PID 1 is liftoff), the
    // privileged domain, no seccomp, the host root read-only.
    let admin = inside(&console, "admin", "comm");
    assert!(admin.starts_with("init self="), "admin: {admin}\n{console}");
    assert_ne!(field(admin, "self"), Some("1"));
    assert_eq!(
        inside(&console, "admin", "context"),
        "system_u:system_r:super_container_t"
    );
    assert!(
        console.contains("INSIDE admin Seccomp:0"),
        "admin has a seccomp filter:\n{console}"
    );
    assert_eq!(inside(&console, "admin", "hostroot"), "yes");
    assert_eq!(inside(&console, "admin", "hostroot-write"), "no");
    let pids: u32 = inside(&console, "admin", "pids").parse().expect("a count");
    assert!(pids > 10, "admin sees only {pids} processes:\n{console}");

    // The broken ones: a clear error each, retried; the rest booted.
    let missing = archive_path("missing");
    assert!(
        console.contains(&format!("host-ctr: missing: {missing}: not found")),
        "no error for the missing archive:\n{console}"
    );
    assert!(
        console.contains(&format!(
            "host-ctr: corrupt: {}: blob {layer}",
            archive_path("corrupt")
        )),
        "no error naming the corrupt layer:\n{console}"
    );
    assert!(console.contains("boot complete at"), "{console}");

    // host-containerd runs in containerd's domain.
    assert_eq!(
        after(&console, "PROBE host-containerd context="),
        Some("system_u:system_r:containerd_t"),
        "{console}"
    );

    // The boot record was written again once control was ready (after
    // boot complete: host containers are `boot = "start"`), with the time
    // its task started.
    let record = after(&console, "PROBE boot record: ").unwrap_or_default();
    let ready_us: u64 = record
        .split_once("\"ready_us\":")
        .and_then(|(_, rest)| rest.split(['}', ',']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!("control has no ready time in the boot record: {record:?}\n{console}")
        });
    let started = kernel_times(&console, "host container control started");
    assert!(
        started
            .first()
            .is_some_and(|&t| (ready_us as f64 / 1e6 - t).abs() < 1.0),
        "boot record ready_us {ready_us} is not when control started ({started:?}):\n{console}"
    );

    // `liftoff analyze` on the live system: the three parts of the boot,
    // the kernel modules, control's chain through host-containerd, and a
    // bar per unit (probe, host-containerd and the four host containers).
    let analyze = probe_lines(&console, "analyze");
    let summary = analyze
        .iter()
        .find(|l| l.starts_with("Startup finished in"))
        .unwrap_or_else(|| panic!("no analyze time summary: {analyze:#?}\n{console}"));
    for part in ["(kernel)", "(initramfs)", "(userspace)"] {
        assert!(summary.contains(part), "{summary}");
    }
    assert!(
        analyze.iter().any(|l| l.contains("dm_verity")),
        "no module times in analyze time: {analyze:#?}"
    );
    let chain = probe_lines(&console, "chain");
    let top = chain
        .iter()
        .position(|l| l.starts_with("control @"))
        .unwrap_or_else(|| panic!("no chain from control: {chain:#?}"));
    assert!(
        chain
            .get(top + 1)
            .is_some_and(|l| l.starts_with("└─host-containerd @")),
        "{chain:#?}"
    );
    assert_eq!(after(&console, "PROBE plot units="), Some("6"), "{console}");

    // Poweroff: the host containers stop (SIGTERM reaches their command),
    // then host-containerd; nothing fails, no AVC denial.
    for name in ["control", "admin"] {
        let stopped = position(&console, &format!("host container {name} stopped"));
        assert!(
            position(&console, &format!("INSIDE {name} got SIGTERM")) < stopped,
            "{name}'s command did not get SIGTERM:\n{console}"
        );
        assert!(
            stopped < position(&console, "unit host-containerd: stopped"),
            "host-containerd stopped before {name}:\n{console}"
        );
    }
    // Everything unmounted, nothing left busy.
    assert!(
        console.contains("remounted 0 read-only"),
        "a filesystem was still busy at poweroff:\n{console}"
    );
    refute(
        &console,
        &[
            "avc:  denied",
            "failure action",
            "Kernel panic",
            "unit host-containerd: failed",
            "unit control: failed",
            "unit admin: failed",
        ],
    );
    eprintln!(
        "host-containerd ready at {ready:?} s; control started at {started:?} s; admin at {:?} s (guest time)",
        kernel_times(&console, "host container admin started"),
    );
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn host_containers_survive_containerd_and_restart_on_exit() {
    let guest = guest(RESILIENCE_SH, |root| {
        root.host_container(
            "control",
            &settings_toml(&archive_path("control"), false, true),
            Some(&image("control", LOOK_AROUND)),
        )
        .host_container(
            "crashy",
            &settings_toml(&archive_path("crashy"), false, true),
            Some(&image("crashy", CRASHY)),
        )
    });
    let vm = guest.boot("", "resilience").expect("start QEMU");
    expect(&vm, "PROBE killing host-containerd", READY);
    expect(&vm, "PROBE probe done", STEP);
    let console = vm.console();

    // containerd was killed and came back; the task and host-ctr did not
    // notice anything but a lost connection.
    let killed = after(&console, "PROBE killing host-containerd").expect("the kill line");
    let now = after(&console, "PROBE host-containerd now").expect("the restart line");
    assert_ne!(field(killed, "pid"), field(now, "pid"), "{console}");
    assert!(field(now, "pid").is_some_and(|p| !p.is_empty()));
    assert_eq!(
        field(killed, "task"),
        field(now, "task"),
        "the task did not survive:\n{console}"
    );
    assert!(field(killed, "task").is_some_and(|p| !p.is_empty()));
    assert_eq!(field(killed, "host-ctr"), field(now, "host-ctr"));
    assert!(
        console.contains("unit host-containerd: killed by signal 9"),
        "{console}"
    );
    assert!(
        console.contains("lost containerd")
            && console.contains("containerd is back; task of control still there"),
        "host-ctr did not reconnect:\n{console}"
    );
    let ctl = probe_lines(&console, "ctl control");
    expect_line(&ctl, "state: running", &console);
    expect_line(&ctl, "restarts: 0", &console);
    assert_eq!(
        kernel_times(&console, "unit host-containerd: ready").len(),
        2,
        "{console}"
    );

    // crashy: its status became host-ctr's, and liftoff restarted it
    // after the backoff it announced (the delay doubles from 1 s with
    // each consecutive failure).
    assert!(
        console.contains("host container crashy exited with status 3"),
        "{console}"
    );
    let exit_line = "unit crashy: exited with status 3; restarting in ";
    let delay = after(&console, exit_line)
        .and_then(seconds)
        .unwrap_or_else(|| panic!("liftoff did not restart crashy after its exit 3:\n{console}"));
    assert!(delay >= Duration::from_secs(1), "{delay:?}");
    let runs = kernel_times(&console, "INSIDE crashy run");
    let exits = kernel_times(&console, exit_line);
    let next = runs
        .iter()
        .find(|&&run| run > exits[0])
        .unwrap_or_else(|| panic!("crashy did not run again after {exits:?}:\n{console}"));
    assert!(
        next - exits[0] >= delay.as_secs_f64(),
        "ran again {:.3}s after the exit, before the {delay:?} backoff:\n{console}",
        next - exits[0]
    );
    let restarts = probe_lines(&console, "ctl crashy")
        .iter()
        .find_map(|l| l.strip_prefix("restarts: ")?.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(
        restarts >= 2,
        "crashy restarted {restarts} time(s):\n{console}"
    );
    eprintln!(
        "host-containerd killed at {:?} s, ready again at {:?} s; crashy ran at {runs:?} s, exited at {exits:?} s (guest time)",
        field(killed, "at"),
        kernel_times(&console, "unit host-containerd: ready").get(1),
    );
    refute(&console, &["failure action", "Kernel panic"]);
}
