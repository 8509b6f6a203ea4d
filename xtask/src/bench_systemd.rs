//! `cargo xtask bench boot`'s third system: Debian 12's systemd (252) as
//! PID 1, in a dracut initramfs and on the root, starting containerd and
//! the probe as a Debian host would (issue 8).
//!
//! 1. [`stage`] adds to the shared root what systemd needs to boot it:
//!    the host's `/lib/systemd/systemd` and `systemd-journald` with every
//!    library `ldd` names (`libsystemd-shared-252.so`,
//!    `libsystemd-core-252.so`, …), Debian's unit files for the targets
//!    a `multi-user.target` boot walks through and for journald (the
//!    texts of the `systemd` package, comments left out), Debian's
//!    `containerd.service`, a `boot-probe.service`, a fixed
//!    `/etc/machine-id` (the root is read-only) and the few `/etc` files
//!    systemd reads.
//! 2. [`system`] builds the initramfs with the host's dracut (059):
//!    `--no-hostonly`, dracut's `systemd-veritysetup` module (with the
//!    `systemd`, `systemd-initrd`, `dracut-systemd`, `dm`, `udev-rules`
//!    and `kernel-modules` modules it needs), the same kernel modules as
//!    the other systems, and returns the kernel flags: the root on
//!    `/dev/mapper/root`, systemd as `init=`, `multi-user.target`.
//!    `roothash=` (the image's command line) is all
//!    `systemd-veritysetup-generator` needs: it finds the data and hash
//!    partitions by PARTUUID, the two halves of the root hash, which is
//!    how the image names them.
//!
//! What the boot does: the kernel runs dracut's systemd; udev loads the
//! virtio modules; `systemd-veritysetup@root.service` opens the verity
//! device; `sysroot.mount` mounts the erofs root; systemd switches root
//! and re-executes the root's systemd, which starts journald (its three
//! sockets), walks `sysinit.target` to `multi-user.target`, and starts
//! containerd and the probe side by side.
//!
//! Left out, on purpose: the rest of Debian's `sysinit.target.wants`
//! (udevd, tmpfiles, sysctl, random-seed, modules-load, …): the initramfs
//! did the device and module work, the read-only root has no
//! configuration for the others, and liftoff runs none of them either.
//! The units are regular files (the root builder stages no symlinks, and
//! systemd ignores regular files in `.wants/`), so what `systemctl
//! enable` and Debian's static `.wants/` symlinks would do is written as
//! `Wants=` drop-ins, and `default.target` is named on the command line
//! (`systemd.unit=multi-user.target`) instead of being a symlink.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use qemu_tests::Kernel;
use qemu_tests::containerd::GUEST_CONFIG;
use qemu_tests::guest_root::{Guest, GuestRoot};

use crate::XtaskError;
use crate::bench_boot::System;
use crate::cmd::run;

/// systemd's binary, on the host and on the root (Debian's path, which
/// `init=` names).
const SYSTEMD: &str = "/lib/systemd/systemd";

/// journald's binary, on the host and on the root.
const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// Where Debian's packages put their units.
const VENDOR_UNITS: &str = "/lib/systemd/system";

/// Where the administrator's units and drop-ins go.
const ADMIN_UNITS: &str = "/etc/systemd/system";

/// A fixed machine ID: the root is read-only, so systemd cannot write
/// one at first boot (and an empty file would make it mount a transient
/// one over it on every boot).
const MACHINE_ID: &str = "6c6966746f66662d62656e6368000008\n";

/// The kernel modules the initramfs carries: the same list as the other
/// systems, with the dependencies dracut adds.
const MODULES: &[&str] = crate::bench_boot::MODULES;

/// The modules nothing would load on demand (the root has no modules
/// and no `modprobe`), which dracut loads early with `rd.driver.pre=`:
/// overlay for containerd's snapshotter, and ext4 as liftoff and the
/// shell load it. udev loads the virtio modules, device-mapper
/// `dm-verity`, and the mount `erofs`.
const FORCED_MODULES: &[&str] = &["overlay", "ext4"];

/// dracut's modules: `systemd-veritysetup` (the generator and
/// `systemd-veritysetup`; it pulls `systemd` and `dm`),
/// `systemd-initrd` (`initrd.target`, the switch root),
/// `dracut-systemd` (dracut's own hooks, as every dracut systemd initrd
/// has them), `kernel-modules` (`--drivers`, `rd.driver.pre=`) and
/// `rootfs-block` (`root=` on a block device). dracut adds what these
/// depend on (`udev-rules`, `base`, `fs-lib`).
const DRACUT_MODULES: &[&str] = &[
    "systemd-veritysetup",
    "systemd-initrd",
    "dracut-systemd",
    "kernel-modules",
    "rootfs-block",
];

/// The kernel flags systemd needs beyond the image's `roothash=`:
///
/// * `root=/dev/mapper/root rootfstype=erofs ro`: the device
///   `systemd-veritysetup@root.service` creates, for `sysroot.mount`;
/// * `init=/lib/systemd/systemd`: what the initramfs switches into (the
///   harness's `init=/sbin/init`, liftoff, comes earlier and loses);
/// * `systemd.unit=multi-user.target`: the boot target, in place of a
///   `default.target` symlink (the initramfs reads `rd.systemd.unit=`
///   only, so it keeps its `initrd.target`);
/// * `systemd.show_status=false`: no status line per unit on the serial
///   console, which under TCG costs time the other systems do not pay
///   (the kernel log still gets systemd's messages, as it gets liftoff's).
const KERNEL_FLAGS: &[&str] = &[
    "root=/dev/mapper/root",
    "rootfstype=erofs",
    "ro",
    "init=/lib/systemd/systemd",
    "systemd.unit=multi-user.target",
    "systemd.show_status=false",
];

/// Debian's `containerd.service` (containerd 1.6.20, Debian 12) with the
/// bench's configuration on `ExecStart=`. Its `ExecStartPre=-/sbin/modprobe
/// overlay` is left out: the root has no `modprobe`, and the initramfs
/// loads overlay as it does for the other systems. `LimitNOFILE=infinity`
/// is the kernel's `nr_open`, 1048576, liftoff's `nofile`.
const CONTAINERD_SERVICE: &str = "\
# xtask/src/bench_systemd.rs: Debian's containerd.service
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStart=/usr/bin/containerd --config CONFIG
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
LimitNOFILE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
";

/// The probe's unit: started with containerd, not after it, so that it
/// sees the moment containerd answers rather than systemd's view of its
/// readiness (as liftoff's probe unit).
const PROBE_SERVICE: &str = "\
# xtask/src/bench_systemd.rs: the probe
[Unit]
Description=boot-probe: polls containerd's socket

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/boot-probe
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
";

/// What `systemctl enable containerd boot-probe` would link into
/// `multi-user.target.wants/`.
const MULTI_USER_WANTS: &str = "\
# xtask/src/bench_systemd.rs: systemctl enable containerd boot-probe
[Unit]
Wants=containerd.service boot-probe.service
";

/// Debian's static `sysinit.target.wants/systemd-journald.service`.
const SYSINIT_WANTS: &str = "\
# xtask/src/bench_systemd.rs: Debian's sysinit.target.wants (journald)
[Unit]
Wants=systemd-journald.service
";

/// Debian's static `sockets.target.wants/` links for journald's sockets.
const SOCKETS_WANTS: &str = "\
# xtask/src/bench_systemd.rs: Debian's sockets.target.wants (journald)
[Unit]
Wants=systemd-journald.socket systemd-journald-dev-log.socket systemd-journald-audit.socket
";

/// Debian's vendor units (systemd 252.39, comments left out), by name.
const VENDOR: &[(&str, &str)] = &[
    (
        "sysinit.target",
        "\
[Unit]
Description=System Initialization
Documentation=man:systemd.special(7)
Wants=local-fs.target swap.target
After=local-fs.target swap.target
Conflicts=emergency.service emergency.target
Before=emergency.service emergency.target
",
    ),
    (
        "basic.target",
        "\
[Unit]
Description=Basic System
Documentation=man:systemd.special(7)
Requires=sysinit.target
Wants=sockets.target timers.target paths.target slices.target
After=sysinit.target sockets.target paths.target slices.target tmp.mount
RequiresMountsFor=/var /var/tmp
Wants=tmp.mount
",
    ),
    (
        "sockets.target",
        "\
[Unit]
Description=Socket Units
Documentation=man:systemd.special(7)
",
    ),
    (
        "paths.target",
        "\
[Unit]
Description=Path Units
Documentation=man:systemd.special(7)
",
    ),
    (
        "timers.target",
        "\
[Unit]
Description=Timer Units
Documentation=man:systemd.special(7)
DefaultDependencies=no
Conflicts=shutdown.target
",
    ),
    (
        "slices.target",
        "\
[Unit]
Description=Slice Units
Documentation=man:systemd.special(7)
Wants=-.slice system.slice
After=-.slice system.slice
",
    ),
    (
        "local-fs-pre.target",
        "\
[Unit]
Description=Preparation for Local File Systems
Documentation=man:systemd.special(7)
RefuseManualStart=yes
",
    ),
    (
        "local-fs.target",
        "\
[Unit]
Description=Local File Systems
Documentation=man:systemd.special(7)
DefaultDependencies=no
Conflicts=shutdown.target
After=local-fs-pre.target
OnFailure=emergency.target
OnFailureJobMode=replace-irreversibly
",
    ),
    (
        "swap.target",
        "\
[Unit]
Description=Swaps
Documentation=man:systemd.special(7)
",
    ),
    (
        "multi-user.target",
        "\
[Unit]
Description=Multi-User System
Documentation=man:systemd.special(7)
Requires=basic.target
Conflicts=rescue.service rescue.target
After=basic.target rescue.service rescue.target
AllowIsolate=yes
",
    ),
    (
        "systemd-journald.socket",
        "\
[Unit]
Description=Journal Socket
Documentation=man:systemd-journald.service(8) man:journald.conf(5)
DefaultDependencies=no
Before=sockets.target
IgnoreOnIsolate=yes

[Socket]
ListenDatagram=/run/systemd/journal/socket
ListenStream=/run/systemd/journal/stdout
PassCredentials=yes
PassSecurity=yes
ReceiveBuffer=8M
Service=systemd-journald.service
SocketMode=0666
Timestamping=us
",
    ),
    (
        "systemd-journald-dev-log.socket",
        "\
[Unit]
Description=Journal Socket (/dev/log)
Documentation=man:systemd-journald.service(8) man:journald.conf(5)
DefaultDependencies=no
Before=sockets.target
IgnoreOnIsolate=yes

[Socket]
ListenDatagram=/run/systemd/journal/dev-log
PassCredentials=yes
PassSecurity=yes
Service=systemd-journald.service
SocketMode=0666
Symlinks=/dev/log
Timestamping=us
ReceiveBuffer=8M
SendBuffer=8M
",
    ),
    (
        "systemd-journald-audit.socket",
        "\
[Unit]
Description=Journal Audit Socket
Documentation=man:systemd-journald.service(8) man:journald.conf(5)
DefaultDependencies=no
Before=sockets.target
ConditionSecurity=audit
ConditionCapability=CAP_AUDIT_READ

[Socket]
Service=systemd-journald.service
ReceiveBuffer=128M
ListenNetlink=audit 1
PassCredentials=yes
",
    ),
    (
        "systemd-journald.service",
        "\
[Unit]
Description=Journal Service
Documentation=man:systemd-journald.service(8) man:journald.conf(5)
DefaultDependencies=no
Requires=systemd-journald.socket
After=systemd-journald.socket systemd-journald-dev-log.socket systemd-journald-audit.socket syslog.socket
Before=sysinit.target
IgnoreOnIsolate=yes

[Service]
DeviceAllow=char-* rw
ExecStart=/lib/systemd/systemd-journald
FileDescriptorStoreMax=4224
IPAddressDeny=any
LockPersonality=yes
MemoryDenyWriteExecute=yes
NoNewPrivileges=yes
OOMScoreAdjust=-250
ProtectClock=yes
Restart=always
RestartSec=0
RestrictAddressFamilies=AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RuntimeDirectory=systemd/journal
RuntimeDirectoryPreserve=yes
Sockets=systemd-journald.socket systemd-journald-dev-log.socket systemd-journald-audit.socket
StandardOutput=null
SystemCallArchitectures=native
SystemCallErrorNumber=EPERM
SystemCallFilter=@system-service
Type=notify
WatchdogSec=3min
CapabilityBoundingSet=CAP_SYS_ADMIN CAP_DAC_OVERRIDE CAP_SYS_PTRACE CAP_SYSLOG CAP_AUDIT_CONTROL CAP_AUDIT_READ CAP_CHOWN CAP_DAC_READ_SEARCH CAP_FOWNER CAP_SETUID CAP_SETGID CAP_MAC_OVERRIDE
LimitNOFILE=524288
",
    ),
];

/// `/etc/os-release`: systemd logs it at boot and warns when it is
/// missing.
const OS_RELEASE: &str = "\
PRETTY_NAME=\"liftoff bench (Debian 12 systemd)\"
NAME=\"liftoff bench\"
ID=debian
VERSION_ID=\"12\"
";

/// `/etc/passwd`: root and nobody, as on every Debian root.
const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";

/// `/etc/group`: root's, nobody's, and `systemd-journal`, the group
/// journald gives its files.
const GROUP: &str = "\
root:x:0:
systemd-journal:x:101:
nogroup:x:65534:
";

/// Every file [`stage`] adds besides the binaries: guest path, text,
/// mode.
fn files() -> Vec<(String, String, u32)> {
    let mut files: Vec<(String, String, u32)> = VENDOR
        .iter()
        .map(|(name, text)| {
            (
                format!("{VENDOR_UNITS}/{name}"),
                format!("# xtask/src/bench_systemd.rs: Debian's {name}\n{text}"),
                0o644,
            )
        })
        .collect();
    let mut add = |path: String, text: &str| files.push((path, text.to_owned(), 0o644));
    add(
        format!("{VENDOR_UNITS}/sysinit.target.d/journald.conf"),
        SYSINIT_WANTS,
    );
    add(
        format!("{VENDOR_UNITS}/sockets.target.d/journald.conf"),
        SOCKETS_WANTS,
    );
    add(
        format!("{ADMIN_UNITS}/containerd.service"),
        &CONTAINERD_SERVICE.replace("CONFIG", GUEST_CONFIG),
    );
    add(format!("{ADMIN_UNITS}/boot-probe.service"), PROBE_SERVICE);
    add(
        format!("{ADMIN_UNITS}/multi-user.target.d/enable.conf"),
        MULTI_USER_WANTS,
    );
    add("/etc/machine-id".to_owned(), MACHINE_ID);
    add("/etc/os-release".to_owned(), OS_RELEASE);
    add("/etc/passwd".to_owned(), PASSWD);
    add("/etc/group".to_owned(), GROUP);
    files
}

/// Adds systemd to the shared root: its binaries and libraries, the units
/// and `/etc` files of the module docs, and the empty folders every
/// Debian root has (`/var`, which `basic.target` names, `/tmp`, and root's
/// home); nothing writes to them. The other systems never read any of it.
///
/// # Errors
/// The host's systemd or one of its libraries cannot be read.
pub fn stage(root: GuestRoot) -> Result<GuestRoot, XtaskError> {
    let mut root = root;
    for program in [SYSTEMD, JOURNALD] {
        for (guest_path, host) in crate::bench_boot::with_libraries(Path::new(program), program)? {
            let bytes = std::fs::read(&host).map_err(|source| XtaskError::Io {
                path: host.clone(),
                source,
            })?;
            root = root.file(guest_path, bytes, 0o755);
        }
    }
    for (path, text, mode) in files() {
        root = root.file(path, text, mode);
    }
    Ok(root.dir("/var").dir("/tmp").dir("/root"))
}

/// The systemd system: builds its dracut initramfs next to the guest's
/// image and returns it with [`KERNEL_FLAGS`].
///
/// dracut reads modules through `modules.dep`, which the cached kernel
/// lacks (`dpkg-deb -x` does not run depmod), so the module tree is
/// first hard-linked into the guest's folder (copied if it cannot be)
/// and depmod runs there; the cache is left as it is.
///
/// # Errors
/// The module tree cannot be copied, depmod or dracut fails.
pub fn system(kernel: &Kernel, guest: &Guest) -> Result<System, XtaskError> {
    let base = guest.dir().join("systemd-kmod");
    let modules = base.join("lib").join("modules");
    std::fs::create_dir_all(&modules).map_err(|source| XtaskError::Io {
        path: modules.clone(),
        source,
    })?;
    let kmoddir = modules.join(&kernel.version);
    if !kmoddir.exists() {
        let linked = run(Command::new("cp")
            .arg("-al")
            .arg(&kernel.modules_dir)
            .arg(&modules));
        if linked.is_err() {
            // Another file system than the cache's: copy instead.
            let _ = std::fs::remove_dir_all(&kmoddir);
            run(Command::new("cp")
                .arg("-a")
                .arg(&kernel.modules_dir)
                .arg(&modules))?;
        }
    }
    run(Command::new("depmod")
        .arg("-b")
        .arg(&base)
        .arg(&kernel.version))?;
    let initrd = guest.dir().join("systemd-initrd.img");
    run(Command::new("dracut").args(dracut_args(&kernel.version, &kmoddir, &initrd)))?;
    Ok(System {
        name: "systemd",
        initrd,
        extra: KERNEL_FLAGS.join(" "),
    })
}

/// dracut's arguments for an initramfs at `out` for kernel `kver` with
/// modules from `kmoddir`.
fn dracut_args(kver: &str, kmoddir: &Path, out: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--quiet",
        "--force",
        "--no-hostonly",
        // CPU microcode is for hardware; QEMU's TCG CPU has none to load.
        "--no-early-microcode",
        "--kver",
        kver,
        "--kmoddir",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(kmoddir.as_os_str().to_owned());
    args.extend(
        [
            "--modules".to_owned(),
            DRACUT_MODULES.join(" "),
            "--drivers".to_owned(),
            MODULES.join(" "),
            "--force-drivers".to_owned(),
            FORCED_MODULES.join(" "),
        ]
        .into_iter()
        .map(OsString::from),
    );
    args.push(out.as_os_str().to_owned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ini-like text as (section, key, value) triples, or the first
    /// line that is none of a comment, a blank, a `[section]` or a
    /// `key=value`.
    fn parse_ini(text: &str) -> Result<Vec<(String, String, String)>, String> {
        let mut section = None;
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = Some(name.to_owned());
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(line.to_owned());
            };
            let Some(section) = &section else {
                return Err(line.to_owned());
            };
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(line.to_owned());
            }
            entries.push((section.clone(), key.to_owned(), value.trim().to_owned()));
        }
        Ok(entries)
    }

    /// The value of `section`'s `key` in `text` (the last one).
    fn value(text: &str, section: &str, key: &str) -> Option<String> {
        parse_ini(text)
            .unwrap()
            .into_iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v)
            .next_back()
    }

    #[test]
    fn every_unit_and_drop_in_parses_as_key_value() {
        for (path, text, _) in files() {
            if !path.starts_with("/lib/systemd") && !path.starts_with("/etc/systemd") {
                continue;
            }
            let entries = parse_ini(&text).unwrap_or_else(|line| panic!("{path}: {line:?}"));
            assert!(!entries.is_empty(), "{path}");
            assert!(
                entries.iter().all(|(s, _, _)| s == "Unit"
                    || s == "Service"
                    || s == "Socket"
                    || s == "Install")
            );
            if !path.contains(".d/") {
                assert!(value(&text, "Unit", "Description").is_some(), "{path}");
            }
        }
    }

    #[test]
    fn containerd_service_has_debians_values() {
        let unit = CONTAINERD_SERVICE.replace("CONFIG", GUEST_CONFIG);
        let cases = [
            ("Type", "notify"),
            (
                "ExecStart",
                "/usr/bin/containerd --config /etc/containerd/config.toml",
            ),
            ("Delegate", "yes"),
            ("KillMode", "process"),
            ("OOMScoreAdjust", "-999"),
            ("LimitNOFILE", "infinity"),
            ("LimitNPROC", "infinity"),
            ("Restart", "always"),
        ];
        for (key, expected) in cases {
            assert_eq!(
                value(&unit, "Service", key).as_deref(),
                Some(expected),
                "{key}"
            );
        }
    }

    #[test]
    fn the_probe_starts_with_containerd_not_after_it() {
        assert_eq!(
            value(PROBE_SERVICE, "Service", "ExecStart").as_deref(),
            Some("/usr/bin/boot-probe")
        );
        assert!(value(PROBE_SERVICE, "Unit", "After").is_none());
        assert!(
            value(PROBE_SERVICE, "Service", "StandardOutput")
                .is_some_and(|v| v.contains("console"))
        );
        let wants = value(MULTI_USER_WANTS, "Unit", "Wants").unwrap();
        assert!(wants.contains("containerd.service"), "{wants}");
        assert!(wants.contains("boot-probe.service"), "{wants}");
    }

    #[test]
    fn the_root_gets_a_machine_id_and_journald() {
        let files = files();
        let find = |path: &str| files.iter().find(|(p, _, _)| p == path);
        let (_, id, _) = find("/etc/machine-id").unwrap();
        assert_eq!(id.trim().len(), 32);
        assert!(id.trim().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(find("/lib/systemd/system/systemd-journald.service").is_some());
        // Every unit the drop-ins want is staged (journald's audit socket
        // included), so none is "not found".
        for (path, text, _) in &files {
            if path.contains(".d/") {
                for unit in value(text, "Unit", "Wants").unwrap().split_whitespace() {
                    assert!(
                        files
                            .iter()
                            .any(|(p, _, _)| p.ends_with(&format!("/{unit}"))),
                        "{path} wants {unit}"
                    );
                }
            }
        }
    }

    #[test]
    fn kernel_flags_name_the_verity_root_and_systemd() {
        let flags = KERNEL_FLAGS.join(" ");
        let cases = [
            ("root on the verity device", "root=/dev/mapper/root"),
            ("erofs", "rootfstype=erofs"),
            ("read-only", " ro "),
            ("systemd as init", "init=/lib/systemd/systemd"),
            ("multi-user boot", "systemd.unit=multi-user.target"),
        ];
        for (name, flag) in cases {
            assert!(format!(" {flags} ").contains(flag), "{name}: {flags}");
        }
        // roothash= comes from the image's command line, not from here.
        assert!(!flags.contains("roothash="), "{flags}");
    }

    #[test]
    fn dracut_gets_the_kernel_the_modules_and_the_verity_module() {
        let args = dracut_args(
            "6.1.0-28-amd64",
            Path::new("/k/lib/modules/6.1.0-28-amd64"),
            Path::new("/out/initrd.img"),
        );
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let after = |flag: &str| {
            let at = args.iter().position(|a| a == flag).unwrap();
            args[at + 1].clone()
        };
        assert!(args.contains(&"--no-hostonly".to_owned()));
        assert_eq!(after("--kver"), "6.1.0-28-amd64");
        assert_eq!(after("--kmoddir"), "/k/lib/modules/6.1.0-28-amd64");
        assert!(after("--modules").contains("systemd-veritysetup"));
        assert!(after("--drivers").contains("dm-verity"));
        assert!(after("--force-drivers").contains("overlay"));
        assert_eq!(args.last().map(String::as_str), Some("/out/initrd.img"));
    }
}
