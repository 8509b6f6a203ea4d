//! liftoff as PID 1 on Debian's stock kernel: API filesystems, the orderly
//! reboot on ctrl-alt-delete, and the failure action.

mod common;

use std::time::Duration;

use common::boot;

/// Kernel boot to liftoff's idle line: about 2 s of guest time, but TCG on a
/// loaded 2-core machine can be ten times slower.
const BOOT: Duration = Duration::from_secs(120);
/// From a shutdown request to QEMU's exit.
const SHUTDOWN: Duration = Duration::from_secs(60);

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn api_filesystems_mounted_then_ctrl_alt_del_reboots_in_order() {
    let mut guest = boot("liftoff.log=debug");
    guest.expect("nothing to boot", BOOT);

    // The kernel's own mount table, as liftoff logged it at debug level:
    // `mount: <target> <fstype> <source> <options>`.
    let console = guest.vm.console();
    for (target, fstype, options) in [
        ("/proc", "proc", "nosuid,nodev,noexec"),
        ("/sys", "sysfs", "nosuid,nodev,noexec"),
        ("/dev", "devtmpfs", "nosuid"),
        ("/dev/shm", "tmpfs", "nosuid,nodev"),
        ("/dev/pts", "devpts", "nosuid,noexec"),
        ("/run", "tmpfs", "nosuid,nodev"),
        ("/sys/fs/cgroup", "cgroup2", "nosuid,nodev,noexec"),
    ] {
        let line = console
            .lines()
            .find(|l| l.contains(&format!("liftoff: mount: {target} {fstype} ")))
            .unwrap_or_else(|| panic!("{target} ({fstype}) is not in the mount table:\n{console}"));
        for flag in options.split(',') {
            assert!(line.contains(flag), "{target} lacks {flag}: {line}");
        }
    }
    assert!(
        console.contains("liftoff: boot stamps: start "),
        "no boot stamps:\n{console}"
    );

    guest.vm.send_ctrl_alt_del().expect("QMP send-key");
    // The kernel turns ctrl-alt-delete into SIGINT for PID 1 (it was told
    // to by reboot(RB_DISABLE_CAD)); liftoff then shuts down in order.
    // No units here, so the units' step ends at once; the unmount loop
    // leaves the API filesystems alone (PID 1 still writes to /dev/kmsg),
    // has nothing else to take down in an initramfs, and remounts the
    // writable root (the initramfs) read-only.
    guest.expect("liftoff: signal 2 from pid 0: reboot", SHUTDOWN);
    guest.expect("liftoff: all units stopped", SHUTDOWN);
    guest.expect("liftoff: sending SIGTERM to all processes", SHUTDOWN);
    guest.expect(
        "liftoff: unmounted 0 filesystems, remounted 1 read-only",
        SHUTDOWN,
    );
    guest.expect("reboot: Restarting system", SHUTDOWN);
    guest.expect_exit(SHUTDOWN);
    guest.refute("Kernel panic");
    guest.refute("Attempted to kill init");
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn malformed_liftoff_key_is_reported_and_the_failure_action_runs() {
    let mut guest = boot("liftoff.device_timeout=soon liftoff.failure_delay=1s");
    // The default action is reboot; the (valid) delay is honoured.
    guest.expect("failure action: reboot in 1s", BOOT);
    // Before it, liftoff's error names the key and quotes the value (the
    // kernel's own echo of the command line has the key but not the quotes).
    let console = guest.vm.console();
    assert!(
        console.lines().any(|l| l.contains("liftoff: ")
            && l.contains("liftoff.device_timeout")
            && l.contains("\"soon\"")),
        "no error naming the key and quoting the value:\n{console}"
    );
    guest.expect("reboot: Restarting system", SHUTDOWN);
    guest.expect_exit(SHUTDOWN);
    guest.refute("nothing to boot");
    guest.refute("Kernel panic");
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn on_failure_poweroff_is_honoured_even_beside_a_malformed_key() {
    let mut guest = boot("liftoff.log=loud liftoff.on_failure=poweroff liftoff.failure_delay=0");
    guest.expect("failure action: poweroff in 0s", BOOT);
    let console = guest.vm.console();
    assert!(
        console.lines().any(|l| l.contains("liftoff: ")
            && l.contains("liftoff.log")
            && l.contains("\"loud\"")),
        "no error naming liftoff.log and quoting the value:\n{console}"
    );
    guest.expect("reboot: Power down", SHUTDOWN);
    guest.expect_exit(SHUTDOWN);
    guest.refute("Restarting system");
    guest.refute("Kernel panic");
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn on_failure_halt_stops_the_machine_without_a_reset() {
    let guest = boot("liftoff.log=loud liftoff.on_failure=halt liftoff.failure_delay=0");
    guest.expect("failure action: halt in 0s", BOOT);
    // A halted machine stays on: QEMU keeps running (dropping the Vm kills it).
    guest.expect("reboot: System halted", SHUTDOWN);
    guest.refute("Restarting system");
    guest.refute("Power down");
}
