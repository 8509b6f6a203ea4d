//! Volumes end to end: stage 1 mounts what the verified root's
//! `/etc/liftoff/mounts.toml` asks for before switch_root
//! (docs/volumes.md).
//!
//! The erofs root holds a static busybox, `/sbin/probe`, the host's
//! `mkfs.ext4` with its libraries and loader (run by liftoff through the
//! root's own loader), and a mounts.toml with a tmpfs `/tmp` (1777,
//! nosuid, nodev), an overlay on `/etc`, a persistent `/local` on the
//! blank DATA partition and a bind of `/local/var` on `/var`. The same
//! disk image file boots twice:
//!
//! * boot 1: DATA is blank, liftoff formats it; the probe sees the four
//!   mounts, `/var` shared, writes `/local/marker` and `/etc/probe-wrote`,
//!   syncs and powers off;
//! * boot 2: liftoff mounts DATA as-is; the probe finds `/local/marker`
//!   (persistent) and not `/etc/probe-wrote` (the overlay was ephemeral).

use std::time::Duration;

use qemu_tests::guest_root::{Guest, GuestRoot, expect, expect_exit, has_line, refute};

/// Kernel start to the probe's last line: a few seconds of guest time
/// (formatting DATA included), with a wide margin for TCG.
const BOOT: Duration = Duration::from_secs(150);
/// From the probe's poweroff to QEMU's exit.
const SHUTDOWN: Duration = Duration::from_secs(60);
/// Modules besides the base ones: ext4 (the persistent volume) and
/// overlay.
const MODULES: &[&str] = &["ext4", "overlay"];
/// The stage 2 the root holds.
const PROBE: &str = "/sbin/probe";

const MOUNTS_TOML: &str = r#"# qemu-tests/tests/volumes.rs
[[volume]]
kind = "bind"
source = "/local/var"
target = "/var"

[[volume]]
kind = "tmpfs"
target = "/tmp"
mode = "1777"
options = ["nosuid", "nodev"]

[[volume]]
kind = "overlay"
target = "/etc"

[[volume]]
kind = "persistent"
target = "/local"
partlabel = "DATA"
"#;

/// Prints the volumes' mount lines, `/var`'s propagation and what the
/// previous boot left, writes the marker and the /etc file, syncs and
/// powers off.
const PROBE_SCRIPT: &str = r#"#!/bin/busybox sh
B=/bin/busybox
while read -r source target fstype options rest; do
    case "$target" in
    /tmp|/etc|/local|/var) echo "PROBE mount $target $source $fstype $options" ;;
    esac
done < /proc/self/mounts
$B awk '$5 == "/var" { print "PROBE propagation /var " $7 }' /proc/self/mountinfo
echo "PROBE tmp-mode $($B stat -c %a /tmp)"
if [ -e /local/marker ]; then echo "PROBE marker present"; else echo "PROBE marker absent"; fi
if [ -e /etc/probe-wrote ]; then echo "PROBE etc-file present"; else echo "PROBE etc-file absent"; fi
echo persistent > /local/marker && echo "PROBE wrote marker"
echo ephemeral > /etc/probe-wrote && echo "PROBE wrote etc-file"
echo via-bind > /var/probe && [ -e /local/var/probe ] && echo "PROBE var-on-local"
$B sync
echo "PROBE done"
$B poweroff -f
"#;

/// The root: busybox, the probe as `init=`, mkfs.ext4 and the volumes
/// file (which makes the mount points).
fn setup() -> Guest {
    GuestRoot::new()
        .script(PROBE, PROBE_SCRIPT)
        .init(PROBE)
        .mounts_toml(MOUNTS_TOML)
        .with_mkfs_ext4()
        .modules(MODULES)
        .run_timeout(Duration::from_secs(240))
        .build()
        .expect("build the guest")
}

/// Boots the image until the probe is done and QEMU has exited; returns
/// the console.
fn boot_once(setup: &Guest, run: &str) -> String {
    let mut vm = setup.boot("", run).expect("start QEMU");
    expect(&vm, "PROBE done", BOOT);
    expect(&vm, "reboot: Power down", SHUTDOWN);
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    refute(&console, &["Kernel panic", "fatal:", "failure action"]);
    console
}

/// The `PROBE mount <target> …` line's words after the target.
fn mount_line<'a>(console: &'a str, target: &str) -> &'a str {
    let prefix = format!("PROBE mount {target} ");
    console
        .lines()
        .find_map(|l| l.split_once(prefix.as_str()).map(|(_, r)| r.trim()))
        .unwrap_or_else(|| panic!("no mount line for {target}:\n{console}"))
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn volumes_mount_persist_and_stay_ephemeral_across_two_boots() {
    let setup = setup();

    // Boot 1: DATA is blank and gets formatted.
    let first = boot_once(&setup, "boot1");
    let tmp = mount_line(&first, "/tmp");
    assert!(tmp.starts_with("tmpfs tmpfs "), "{tmp}");
    // tmpfs leaves its default mode (1777) out of the options: the
    // probe's stat line checks it.
    for option in ["rw", "nosuid", "nodev"] {
        assert!(
            tmp.split([' ', ',']).any(|o| o == option),
            "/tmp {option}: {tmp}"
        );
    }
    assert!(has_line(&first, "PROBE tmp-mode 1777"), "{first}");
    let etc = mount_line(&first, "/etc");
    assert!(etc.starts_with("overlay overlay rw"), "{etc}");
    assert!(
        etc.contains("upperdir=/run/liftoff/overlay/etc/upper"),
        "{etc}"
    );
    let local = mount_line(&first, "/local");
    assert!(local.contains(" ext4 rw"), "{local}");
    let var = mount_line(&first, "/var");
    assert!(var.contains(" ext4 rw"), "{var}");
    assert_eq!(
        local.split(' ').next(),
        var.split(' ').next(),
        "/var is not from /local's device"
    );
    assert!(
        first
            .lines()
            .any(|l| l.contains("PROBE propagation /var shared:")),
        "/var is not shared:\n{first}"
    );
    assert!(
        first.contains("holds no filesystem: formatting it as ext4"),
        "{first}"
    );
    for line in [
        "PROBE marker absent",
        "PROBE etc-file absent",
        "PROBE wrote marker",
        "PROBE wrote etc-file",
        "PROBE var-on-local",
    ] {
        assert!(has_line(&first, line), "boot 1: no {line:?}:\n{first}");
    }

    // Boot 2, the same disk image file: /local kept, /etc forgotten.
    let second = boot_once(&setup, "boot2");
    assert!(second.contains("(ext4) as-is"), "{second}");
    assert!(!second.contains("formatting"), "{second}");
    for line in ["PROBE marker present", "PROBE etc-file absent"] {
        assert!(has_line(&second, line), "boot 2: no {line:?}:\n{second}");
    }
}
