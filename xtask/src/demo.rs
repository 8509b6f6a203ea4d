//! `cargo xtask demo`: boot a liftoff host in QEMU and show what it does.
//!
//! 1. install what is missing ([`deps::BUILD`], [`deps::QEMU`] and
//!    [`GUEST_TOOLS`]), build the static liftoff and fetch Debian's kernel;
//! 2. build a guest with the tests' builder ([`GuestRoot`]): a verified
//!    erofs root (static busybox, liftoff as `/sbin/init`, the units in
//!    [`UNITS`] and their scripts, a `mounts.toml` with a persistent
//!    `/local` on the disk's blank DATA partition, and the host's
//!    `mkfs.ext4` to format it), the dm-verity disk image and an initramfs
//!    made by `liftoff initramfs`;
//! 3. boot it under TCG with the console on this terminal: stage 1 loads
//!    the modules, maps and mounts the verity root, formats and mounts
//!    `/local`, and switches to it; stage 2 starts the units in dependency
//!    order (`setup`, then `containerd`, ready once it notifies, then
//!    `web`) and logs `boot complete`; `show` then prints
//!    `liftoff ctl status` and the boot record's completion time;
//! 4. press ctrl-alt-delete through QMP and watch the orderly reboot: units
//!    stopped in reverse order, processes killed, filesystems unmounted,
//!    `reboot: Restarting system` (QEMU runs with `-no-reboot`, so it
//!    exits);
//! 5. print a report: kernel, sizes, stage 1 and stage 2 boot stamps, when
//!    boot completed (guest and wall time), whether the reboot was orderly,
//!    and where the console log is kept.

use std::path::Path;
use std::time::{Duration, Instant};

use qemu_tests::guest_root::{Guest, GuestRoot, after};

use crate::{XtaskError, build, deps, kernel};

/// What the guest's build needs besides [`deps::BUILD`] and [`deps::QEMU`]:
/// the static busybox the root is made of, `mkfs.erofs` for the root
/// filesystem, and `mkfs.ext4`, which is copied onto the root for stage 1
/// to format `/local` with. The hash tree, the GPT and the initramfs are
/// written by liftoff's own code, so neither veritysetup nor a partitioning
/// tool is needed.
pub const GUEST_TOOLS: &[deps::Need] = &[
    deps::Need {
        program: "busybox",
        package: "busybox-static",
    },
    deps::Need {
        program: "mkfs.erofs",
        package: "erofs-utils",
    },
    deps::Need {
        program: "mkfs.ext4",
        package: "e2fsprogs",
    },
];

/// Modules the initramfs carries besides the guest builder's base set
/// (virtio, dm-verity, erofs): ext4 for `/local`.
const MODULES: &[&str] = &["ext4"];

/// The guest's volumes: a persistent `/local`, formatted on first boot.
const MOUNTS_TOML: &str = r#"# cargo xtask demo: state that survives reboots lives on DATA
[[volume]]
kind = "persistent"
target = "/local"
partlabel = "DATA"
"#;

/// The unit files, `/etc/liftoff/units/NAME.toml`, in start order. Each
/// runs `/etc/demo/NAME.sh` (see [`SCRIPTS`]) with its output on the
/// console.
const UNITS: &[(&str, &str)] = &[
    (
        "setup",
        r#"description = "prepares /local and /run for the services"
type = "oneshot"
exec = ["/bin/busybox", "sh", "/etc/demo/setup.sh"]
stdout = "console"
stderr = "console"
"#,
    ),
    (
        "containerd",
        r#"description = "container runtime (stand-in): notify, ready after 1s"
type = "notify"
requires = ["setup"]
exec = ["/bin/busybox", "sh", "/etc/demo/containerd.sh"]
ready_timeout = "30s"
restart = "always"
restart_delay = "1s"
stop_timeout = "5s"
stdout = "console"
stderr = "console"
"#,
    ),
    (
        "web",
        r#"description = "web service (stand-in), needs the runtime"
requires = ["containerd"]
exec = ["/bin/busybox", "sh", "/etc/demo/web.sh"]
restart = "on-failure"
stop_timeout = "5s"
stdout = "console"
stderr = "console"
"#,
    ),
    (
        "show",
        r#"description = "prints the system view once boot is complete"
boot = "start"
after = ["setup", "containerd", "web"]
exec = ["/bin/busybox", "sh", "/etc/demo/show.sh"]
restart = "never"
stop_timeout = "2s"
stdout = "console"
stderr = "console"
"#,
    ),
];

/// The units' scripts, `/etc/demo/NAME.sh`. The guest has busybox without
/// applet links, so every tool is `$B tool`.
const SCRIPTS: &[(&str, &str)] = &[
    (
        "setup",
        r#"B=/bin/busybox
n=$(( $($B cat /local/boot-count 2>/dev/null || echo 0) + 1 ))
echo "$n" > /local/boot-count
$B mkdir -p /local/containerd /run/containerd
dev=$($B awk '$2 == "/local" { print $1 " (" $3 ")" }' /proc/self/mounts)
echo "setup: /local is $dev, boot number $n on this disk"
"#,
    ),
    (
        "containerd",
        r#"B=/bin/busybox
trap 'echo "containerd: SIGTERM, shutting down"; exit 0' TERM
echo "containerd: loading state from /local/containerd (ready in 1s)"
/sbin/init notify --status "loading"
$B sleep 1
/sbin/init notify --ready --status "serving /run/containerd/containerd.sock"
echo "containerd: ready, told liftoff with READY=1"
$B sleep 3600 &
wait $!
"#,
    ),
    (
        "web",
        r#"B=/bin/busybox
trap 'echo "web: SIGTERM, closing connections"; exit 0' TERM
echo "web: started once containerd was ready"
$B sleep 3600 &
wait $!
"#,
    ),
    (
        "show",
        r#"B=/bin/busybox
i=0
until $B grep -q boot_complete_us /run/liftoff/boot.json 2>/dev/null; do
    [ $i -ge 600 ] && { echo "show: no boot record after 60s"; exit 1; }
    $B sleep 0.1
    i=$((i + 1))
done
us=$($B sed -n 's/.*"boot_complete_us": *\([0-9]*\).*/\1/p' /run/liftoff/boot.json)
at=$($B awk -v us="$us" 'BEGIN { printf "%.3f", us / 1000000 }')
echo "show: /run/liftoff/boot.json: boot complete at ${at}s since kernel start"
echo "show: liftoff ctl status"
/sbin/init ctl status 2>&1 | while IFS= read -r line; do echo "show: | $line"; done
echo "show: done; ctrl-alt-delete reboots through the orderly shutdown"
exec $B sleep 3600
"#,
    ),
];

/// The log level: `debug` also shows every mount and the kernel's mount
/// table, which buries the units; `info` shows each step of both stages.
const LOG_LEVEL: &str = "liftoff.log=info";

/// QEMU start to liftoff's `boot complete`: about 20 s of wall time under
/// TCG on an idle machine; the margin is for a loaded one.
const BOOT: Duration = Duration::from_secs(240);
/// Boot complete to `show` having printed the system view.
const SHOW: Duration = Duration::from_secs(60);
/// Ctrl-alt-delete to QEMU's exit (the units' stop timeouts included).
const SHUTDOWN: Duration = Duration::from_secs(120);
/// The limit on the whole run.
const RUN: Duration = Duration::from_secs(480);

/// What the kernel prints last on a reboot.
const RESTARTING: &str = "reboot: Restarting system";

/// The guest's root: busybox, liftoff, the units, their scripts, the
/// volumes file and mkfs.ext4.
fn guest_root(liftoff: &Path) -> GuestRoot {
    let mut root = GuestRoot::new()
        .liftoff(liftoff)
        .mounts_toml(MOUNTS_TOML)
        .with_mkfs_ext4()
        .modules(MODULES)
        .run_timeout(RUN);
    for (name, toml) in UNITS {
        root = root.unit(name, toml);
    }
    for (name, text) in SCRIPTS {
        root = root.script(format!("/etc/demo/{name}.sh"), text);
    }
    root
}

/// Builds the guest (root, disk image, initramfs).
fn build_guest(liftoff: &Path) -> Result<Guest, XtaskError> {
    guest_root(liftoff).build().map_err(XtaskError::Guest)
}

/// Runs the demo.
pub fn run() -> Result<(), XtaskError> {
    deps::ensure(&[deps::BUILD, deps::QEMU, GUEST_TOOLS])?;
    let liftoff = build::static_liftoff()?;
    let kernel = kernel()?;
    // The console log outlives the guest's temporary folder.
    let out = qemu_tests::workspace_root()
        .join("target")
        .join("liftoff-demo");
    std::fs::create_dir_all(&out).map_err(|source| XtaskError::Io {
        path: out.clone(),
        source,
    })?;

    eprintln!(
        "xtask: building the guest: a verified erofs root with {} units, its dm-verity disk image and an initramfs",
        UNITS.len()
    );
    let guest = build_guest(&liftoff)?;
    eprintln!(
        "xtask: booting Debian {} with liftoff as /init, {} (TCG, serial console below)\n",
        kernel.version, guest.image.cmdline
    );
    let mut config = guest.config(&format!("{} {LOG_LEVEL}", guest.image.cmdline), "boot");
    config.echo_console = true;
    config.run_dir = Some(out.clone());

    let started = Instant::now();
    let mut vm = qemu_tests::Vm::start(&config).map_err(XtaskError::Qemu)?;
    vm.wait_for("boot complete at", BOOT)
        .map_err(XtaskError::Qemu)?;
    let to_complete = started.elapsed();
    vm.wait_for("show: done", SHOW).map_err(XtaskError::Qemu)?;
    // Let the last console lines drain before the key press.
    std::thread::sleep(Duration::from_millis(500));
    eprintln!("\nxtask: pressing ctrl-alt-delete through QMP\n");
    vm.send_ctrl_alt_del().map_err(XtaskError::Qemu)?;
    vm.wait_exit(SHUTDOWN).map_err(XtaskError::Qemu)?;
    let total = started.elapsed();

    let console = vm.console();
    let report = Report {
        kernel: &kernel.version,
        liftoff: &liftoff,
        guest: &guest,
        console: &console,
        to_complete,
        total,
        console_log: &vm.console_log(),
    };
    eprintln!("\n{}", report.render());
    Ok(())
}

/// What the report is made of.
struct Report<'a> {
    kernel: &'a str,
    liftoff: &'a Path,
    guest: &'a Guest,
    console: &'a str,
    to_complete: Duration,
    total: Duration,
    console_log: &'a Path,
}

impl Report<'_> {
    fn render(&self) -> String {
        let missing = || "(not found on the console)".to_owned();
        // Stage 1 logs its stamps before the exec, and stage 2 repeats them
        // from stage 1's record on its first line, then logs its own.
        let (stage1_log, stage2_log) = self
            .console
            .split_once("liftoff: stage 2 on ")
            .unwrap_or((self.console, ""));
        let stage1 = after(stage1_log, "liftoff: boot stamps: ")
            .map(str::to_owned)
            .unwrap_or_else(missing);
        let stage2 = after(stage2_log, "liftoff: boot stamps: ")
            .map(str::to_owned)
            .unwrap_or_else(missing);
        let complete = after(self.console, "liftoff: boot complete at ")
            .map(str::to_owned)
            .unwrap_or_else(missing);
        let image = &self.guest.image;
        let partitions: Vec<String> = image
            .partitions
            .iter()
            .map(|p| format!("{} {}", p.name, mib(p.len())))
            .collect();
        let rows = [
            ("kernel", format!("Debian {}", self.kernel)),
            (
                "liftoff binary",
                format!(
                    "{} bytes, static ({})",
                    build::size_of(self.liftoff),
                    self.liftoff.display()
                ),
            ),
            (
                "initramfs",
                format!(
                    "{} bytes (gzip cpio: liftoff as /init + modules)",
                    build::size_of(&self.guest.initrd)
                ),
            ),
            (
                "disk image",
                format!(
                    "{} bytes, {} on disk (sparse): {}",
                    image.size,
                    mib(allocated(&image.path)),
                    partitions.join(", ")
                ),
            ),
            ("stage 1 stamps", stage1),
            ("volumes", self.format_time()),
            ("stage 2 stamps", stage2),
            ("boot complete", complete),
            (
                "wall time",
                format!(
                    "{:.1}s QEMU start to boot complete, {:.1}s in total (TCG)",
                    self.to_complete.as_secs_f64(),
                    self.total.as_secs_f64()
                ),
            ),
            ("orderly reboot", self.reboot()),
            ("console log", self.console_log.display().to_string()),
        ];
        let mut text = String::from("== liftoff demo report ==");
        for (key, value) in rows {
            text.push_str(&format!("\n{key:<16} {value}"));
        }
        text
    }

    /// How long stage 1 took to format the blank DATA partition for
    /// `/local` (part of its `switch-root` stamp), from the kernel's
    /// timestamps on liftoff's two lines.
    fn format_time(&self) -> String {
        let at = |marker: &str| {
            self.console
                .lines()
                .find(|l| l.contains(marker))
                .and_then(kernel_time)
        };
        match (
            at("holds no filesystem: formatting it"),
            at("freshly formatted"),
        ) {
            (Some(start), Some(end)) => format!(
                "/local on DATA formatted as ext4 in {:.2}s guest time (first boot only; in the switch-root stamp)",
                end - start
            ),
            _ => "/local on DATA (not formatted in this boot)".to_owned(),
        }
    }

    /// Whether the reboot went the orderly way: the units' stop order,
    /// the unmount summary, the kernel's last line.
    fn reboot(&self) -> String {
        if !self.console.contains(RESTARTING) {
            return "NOT SEEN (no 'reboot: Restarting system')".to_owned();
        }
        let stopped: Vec<&str> = self
            .console
            .lines()
            .filter_map(|l| after(l, "liftoff: unit "))
            .filter_map(|rest| rest.strip_suffix(": stopped"))
            .collect();
        let unmounted = after(self.console, "liftoff: unmounted ")
            .map(|rest| format!("unmounted {rest}; "))
            .unwrap_or_default();
        if stopped.is_empty() {
            format!("yes, but no unit stopped; {unmounted}'{RESTARTING}'")
        } else {
            format!(
                "yes: stopped {}; {unmounted}'{RESTARTING}'",
                stopped.join(" → ")
            )
        }
    }
}

/// The kernel's timestamp of a console line, `[    2.996271] …`, in
/// seconds.
fn kernel_time(line: &str) -> Option<f64> {
    let (stamp, _) = line.trim_start().strip_prefix('[')?.split_once(']')?;
    stamp.trim().parse().ok()
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // a display value
    let value = bytes as f64 / f64::from(1 << 20);
    format!("{value:.1} MiB")
}

/// The bytes a (sparse) file takes on disk.
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_has_its_script() {
        for (name, toml) in UNITS {
            assert!(
                toml.contains(&format!("/etc/demo/{name}.sh")),
                "{name} does not run its script"
            );
            assert!(
                SCRIPTS.iter().any(|(s, _)| s == name),
                "no script for {name}"
            );
        }
    }

    #[test]
    fn kernel_time_reads_the_line_prefix() {
        assert_eq!(
            kernel_time("[    2.996271] liftoff: volume /sysroot/local"),
            Some(2.996_271)
        );
        assert_eq!(kernel_time("setup: /local is /dev/vda3"), None);
    }

    #[test]
    fn mib_has_one_decimal() {
        assert_eq!(mib(16 << 20), "16.0 MiB");
        assert_eq!(mib(3 << 19), "1.5 MiB");
    }
}
