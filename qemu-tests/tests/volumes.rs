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

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qemu_tests::qemu::{KERNEL_FLAG_CONSOLE, KERNEL_FLAG_DEVKMSG, KERNEL_FLAG_PANIC};
use qemu_tests::{BuiltImage, DiskImage, Vm, VmConfig};
use tempfile::TempDir;

/// Kernel start to the probe's last line: a few seconds of guest time
/// (formatting DATA included), with a wide margin for TCG.
const BOOT: Duration = Duration::from_secs(150);
/// From the probe's poweroff to QEMU's exit.
const SHUTDOWN: Duration = Duration::from_secs(60);
/// stage1.rs's modules, plus ext4 (the persistent volume) and overlay.
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "dm-verity",
    "erofs",
    "ext4",
    "overlay",
];
/// Guest kernel flag: no 5 s wait before a failure action.
const FLAG_NO_DELAY: &str = "liftoff.failure_delay=0";
/// The stage 2 the root holds.
const PROBE: &str = "/sbin/probe";
/// The host's mkfs.ext4 (e2fsprogs), copied onto the root with its
/// libraries.
const HOST_MKFS: &str = "/sbin/mkfs.ext4";

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

/// The static liftoff under test (`cargo xtask test` builds it).
fn liftoff_bin() -> PathBuf {
    qemu_tests::scenario::liftoff_bin().expect(qemu_tests::scenario::MISSING_LIFTOFF_BIN)
}

fn write_executable(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("has a parent")).expect("staging dirs");
    fs::write(path, bytes).expect("write staging file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Copies the host's mkfs.ext4 to `sbin/mkfs.ext4` and every library
/// `ldd` names (and the loader) to the same path under `staging`.
fn stage_mkfs(staging: &Path) {
    write_executable(
        &staging.join("sbin/mkfs.ext4"),
        &fs::read(HOST_MKFS).expect("mkfs.ext4 (e2fsprogs) on the host"),
    );
    let output = Command::new("ldd")
        .arg(HOST_MKFS)
        .output()
        .expect("run ldd");
    assert!(output.status.success(), "ldd {HOST_MKFS} failed");
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x…)"; the vdso has no file.
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let dest = staging.join(path.trim_start_matches('/'));
        write_executable(&dest, &fs::read(path).expect("read a library"));
    }
}

struct Setup {
    dir: TempDir,
    image: BuiltImage,
    initrd: PathBuf,
    vmlinuz: PathBuf,
}

fn setup() -> Setup {
    let kernel = qemu_tests::fetch_kernel(&qemu_tests::cache_dir())
        .expect("kernel (cargo xtask test fetches it)");
    let dir = tempfile::Builder::new()
        .prefix("liftoff-qemu-")
        .tempdir()
        .expect("tempdir");

    // The root: busybox, the probe, mkfs, the config, and every mount
    // point (an erofs root cannot grow them at boot).
    let staging = dir.path().join("staging");
    for sub in [
        "bin",
        "sbin",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "local",
        "var",
        "etc/liftoff",
    ] {
        fs::create_dir_all(staging.join(sub)).expect("staging dirs");
    }
    let busybox = fs::read(qemu_tests::guest::DEFAULT_BUSYBOX)
        .expect("busybox (Debian's busybox-static) at /bin/busybox");
    write_executable(&staging.join("bin/busybox"), &busybox);
    write_executable(
        &staging.join(PROBE.trim_start_matches('/')),
        PROBE_SCRIPT.as_bytes(),
    );
    fs::write(staging.join("etc/liftoff/mounts.toml"), MOUNTS_TOML).expect("mounts.toml");
    stage_mkfs(&staging);
    let image = DiskImage::builder(&staging)
        .build(&dir.path().join("disk.img"))
        .expect("build the disk image");

    let initrd = dir.path().join("initrd.img");
    qemu_tests::scenario::build_initramfs(&liftoff_bin(), &kernel.modules_dir, MODULES, &initrd)
        .expect("liftoff initramfs");
    Setup {
        dir,
        image,
        initrd,
        vmlinuz: kernel.vmlinuz,
    }
}

impl Setup {
    /// Boots the image until the probe is done and QEMU has exited;
    /// returns the console.
    fn boot_once(&self, run: &str) -> String {
        let mut config = VmConfig::new(&self.vmlinuz, &self.initrd);
        config.append = format!(
            "{KERNEL_FLAG_CONSOLE} {KERNEL_FLAG_PANIC} {KERNEL_FLAG_DEVKMSG} init={PROBE} {} {FLAG_NO_DELAY}",
            self.image.cmdline
        );
        config.disks = vec![self.image.path.clone()];
        let run_dir = self.dir.path().join(run);
        fs::create_dir_all(&run_dir).expect("run dir");
        config.run_dir = Some(run_dir);
        config.timeout = Duration::from_secs(240);
        let mut vm = Vm::start(&config).expect("start QEMU");
        if let Err(e) = vm.wait_for("PROBE done", BOOT) {
            panic!("{run}: {e}\n--- console ---\n{}", vm.console());
        }
        if let Err(e) = vm.wait_for("reboot: Power down", SHUTDOWN) {
            panic!("{run}: {e}\n--- console ---\n{}", vm.console());
        }
        if let Err(e) = vm.wait_exit(SHUTDOWN) {
            panic!("{run}: {e}\n--- console ---\n{}", vm.console());
        }
        let console = vm.console();
        for refused in ["Kernel panic", "fatal:", "failure action"] {
            assert!(!console.contains(refused), "{run}: {refused}:\n{console}");
        }
        console
    }
}

/// The `PROBE mount <target> …` line's words after the target.
fn mount_line<'a>(console: &'a str, target: &str) -> &'a str {
    let prefix = format!("PROBE mount {target} ");
    console
        .lines()
        .find_map(|l| l.split_once(prefix.as_str()).map(|(_, r)| r.trim()))
        .unwrap_or_else(|| panic!("no mount line for {target}:\n{console}"))
}

fn has(console: &str, line: &str) -> bool {
    console.lines().any(|l| l.trim_end().ends_with(line))
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn volumes_mount_persist_and_stay_ephemeral_across_two_boots() {
    let setup = setup();

    // Boot 1: DATA is blank and gets formatted.
    let first = setup.boot_once("boot1");
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
    assert!(has(&first, "PROBE tmp-mode 1777"), "{first}");
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
        assert!(has(&first, line), "boot 1: no {line:?}:\n{first}");
    }

    // Boot 2, the same disk image file: /local kept, /etc forgotten.
    let second = setup.boot_once("boot2");
    assert!(second.contains("(ext4) as-is"), "{second}");
    assert!(!second.contains("formatting"), "{second}");
    for line in ["PROBE marker present", "PROBE etc-file absent"] {
        assert!(has(&second, line), "boot 2: no {line:?}:\n{second}");
    }
}
