//! `cargo xtask demo`: boot the reference image in QEMU and show what
//! liftoff does with it.
//!
//! 1. install what is missing ([`deps::BUILD`], [`deps::QEMU`] and
//!    [`GUEST_TOOLS`]), build the static `liftoff` and `host-ctr`, fetch
//!    Debian's kernel and its `containerd` and `runc` packages (into the
//!    tests' cache; `apt-get update` first when the package lists are
//!    missing and xtask is root);
//! 2. build the reference image with the tests' builder ([`GuestRoot`]):
//!    a verified erofs root labelled for SELinux, holding static busybox,
//!    liftoff as `/sbin/init`, the repository's SELinux policy, Debian's
//!    containerd, runc, shim and `ctr` with their libraries, `host-ctr`,
//!    `mkfs.ext4`, a `mounts.toml` with a persistent `/local` on the
//!    disk's blank DATA partition, the units in [`UNITS`] (two of them
//!    the harness's: `containerd`, the workload's runtime, and
//!    `host-containerd`, the host containers' own, both in
//!    `containerd_t`), and one host container, `control` ([`CONTROL`]:
//!    a busybox OCI archive built here); then the dm-verity disk image
//!    and an initramfs made by `liftoff initramfs`;
//! 3. boot it under TCG (headless: the serial console is echoed on this
//!    terminal): stage 1 loads the modules, maps and mounts the verity
//!    root, formats and mounts `/local`, and switches to it; stage 2 loads
//!    the SELinux policy and enforces it, generates a unit for `control`,
//!    and starts the units in dependency order (`setup`; `containerd` and
//!    `host-containerd`, each ready once it notifies; `web` once
//!    `containerd` is ready) and logs `boot complete`; `control` starts
//!    after `host-containerd` without holding boot up, and reports from
//!    inside; `show` waits for it to run, then prints `liftoff ctl
//!    status` of the three and the host containers' tasks (`ctr task ls`);
//! 4. press ctrl-alt-delete through QMP and watch the orderly reboot: units
//!    stopped in reverse order (`control` before `host-containerd`),
//!    processes killed, filesystems unmounted, `reboot: Restarting system`
//!    (QEMU runs with `-no-reboot`, so it exits);
//! 5. print a report: kernel, containerd and runc, sizes, SELinux, stage 1
//!    and stage 2 boot stamps, when boot completed and when `containerd`,
//!    `host-containerd` and `control` became ready (guest and wall time),
//!    what `control` said, whether the reboot was orderly, and where the
//!    console log is kept.

use std::path::Path;
use std::time::{Duration, Instant};

use qemu_tests::containerd::{CONTAINERD, ContainerdPackages, GUEST_CTR};
use qemu_tests::guest_root::{Guest, GuestRoot, after, kernel_time};
use qemu_tests::host_containers::{
    HOST_CONTAINERD, HOST_CONTAINERD_SOCKET, archive_path, settings_toml,
};
use qemu_tests::oci::{ArchiveOptions, DEFAULT_APPLETS};

use crate::{XtaskError, build, deps, kernel};

/// What the guest's build needs besides [`deps::BUILD`] and [`deps::QEMU`]:
/// the static busybox the root (and `control`'s image) is made of,
/// `mkfs.erofs` for the root filesystem, `mkfs.ext4`, which is copied onto
/// the root for stage 1 to format `/local` with, and `secilc`, which
/// compiles the SELinux policy. The hash tree, the GPT, the OCI archive
/// and the initramfs are written by liftoff's and the harness's own code,
/// so neither veritysetup nor a partitioning tool is needed.
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
    deps::Need {
        program: "secilc",
        package: "secilc",
    },
];

/// The demo's own units, `/etc/liftoff/units/NAME.toml`, besides the
/// harness's `containerd` and `host-containerd` and the `control` unit
/// liftoff generates at boot. Each runs `/etc/demo/NAME.sh` (see
/// [`SCRIPTS`]); none has an SELinux domain of its own, so they run in
/// PID 1's `init_t`.
const UNITS: &[(&str, &str)] = &[
    (
        "setup",
        r#"description = "counts the boots on the persistent /local"
type = "oneshot"
exec = ["/bin/busybox", "sh", "/etc/demo/setup.sh"]
stdout = "console"
stderr = "console"
"#,
    ),
    (
        "web",
        r#"description = "web service (stand-in), needs the workload's containerd"
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
        r#"description = "prints the system view once control runs"
boot = "start"
after = ["setup", "containerd", "host-containerd", "web"]
exec = ["/bin/busybox", "sh", "/etc/demo/show.sh"]
restart = "never"
stop_timeout = "2s"
stdout = "console"
stderr = "console"
"#,
    ),
];

/// The units' scripts, `/etc/demo/NAME.sh`. The guest has busybox without
/// applet links, so every tool is `$B tool`; `CTR`, `SOCKET` and
/// `HOST_SOCKET` are replaced with `ctr`'s path and the two containerd
/// sockets.
const SCRIPTS: &[(&str, &str)] = &[
    (
        "setup",
        r#"B=/bin/busybox
n=$(( $($B cat /local/boot-count 2>/dev/null || echo 0) + 1 ))
echo "$n" > /local/boot-count
dev=$($B awk '$2 == "/local" { print $1 " (" $3 ")" }' /proc/self/mounts)
echo "setup: /local is $dev, boot number $n on this disk"
"#,
    ),
    (
        "web",
        r#"B=/bin/busybox
trap 'echo "web: SIGTERM, closing connections"; exit 0' TERM
v=$(CTR --address SOCKET version 2>&1 | $B awk '/^Server:/ { s = 1 } s && $1 == "Version:" { print $2; exit }')
echo "web: started once containerd was ready; SOCKET answers: containerd ${v:-(no answer)}"
$B sleep 3600 &
wait $!
"#,
    ),
    (
        "show",
        r#"B=/bin/busybox
say() { echo "show: $*"; }
i=0
until $B grep -q boot_complete_us /run/liftoff/boot.json 2>/dev/null; do
    [ $i -ge 600 ] && { say "no boot record after 60s"; exit 1; }
    $B sleep 0.1
    i=$((i + 1))
done
us=$($B sed -n 's/.*"boot_complete_us": *\([0-9]*\).*/\1/p' /run/liftoff/boot.json)
at=$($B awk -v us="$us" 'BEGIN { printf "%.3f", us / 1000000 }')
say "/run/liftoff/boot.json: boot complete at ${at}s since kernel start"
# control is boot = "start": boot complete does not wait for it, so wait
# here, bounded (its first start imports and unpacks its image).
say "waiting for host container control to run"
i=0
until /sbin/init ctl status control 2>/dev/null | $B grep -q 'state: *running'; do
    [ $i -ge 1200 ] && { say "control is not running after 1200 tries"; break; }
    $B sleep 0.2
    i=$((i + 1))
done
for unit in containerd host-containerd control; do
    say "liftoff ctl status $unit"
    /sbin/init ctl status "$unit" 2>&1 | while IFS= read -r line; do say "| $line"; done
done
say "ctr --address HOST_SOCKET task ls"
CTR --address HOST_SOCKET task ls 2>&1 | while IFS= read -r line; do say "| $line"; done
say "done; ctrl-alt-delete reboots through the orderly shutdown"
exec $B sleep 3600
"#,
    ),
];

/// The host container: ordinary (not superpowered), enabled, its image
/// built by the harness from the host's busybox.
const CONTROL: &str = "control";

/// What `control`'s image runs (`/bin/sh -c`): say who and where it is,
/// count its starts in its persistent storage, then sleep until SIGTERM.
/// As its namespace's PID 1 the shell only gets signals it traps, and runs
/// a trap only between commands, so it waits on a background sleep, which
/// it kills before it exits. Each line starts with [`INSIDE`], so that the
/// report tells them from `host-ctr`'s under the same `control[PID]: `
/// tag.
const CONTROL_SCRIPT: &str = r#"S=/.liftoff/host-containers/current
echo "inside: hello from host container control: I am PID $$ of my own PID namespace"
echo "inside: my SELinux context is $(cat /proc/self/attr/current)"
n=$(( $(cat $S/starts 2>/dev/null || echo 0) + 1 ))
echo "$n" > $S/starts
echo "inside: my storage is $S (the host's /local/host-containers/control): start number $n"
trap 'echo "inside: SIGTERM, leaving"; kill $! 2>/dev/null; exit 0' TERM INT
sleep 2147483647 &
wait
"#;

/// How `control`'s own lines start (after the unit's kmsg tag).
const INSIDE: &str = "inside: ";

/// The log level: `debug` also shows every mount and the kernel's mount
/// table, which buries the units; `info` shows each step of both stages.
const LOG_LEVEL: &str = "liftoff.log=info";

/// QEMU start to liftoff's `boot complete`, which waits for both
/// containerd instances: about a minute of wall time under TCG on an idle
/// two-core machine (containerd pages in through dm-verity, the first boot
/// formats `/local`); the margin is for a loaded one, as the tests' READY.
const BOOT: Duration = Duration::from_secs(300);
/// Boot complete to `show` having printed the system view: `control`'s
/// image imported and unpacked, its task started (the tests' STEP).
const SHOW: Duration = Duration::from_secs(300);
/// Ctrl-alt-delete to QEMU's exit: `control`, both containerd instances
/// (30 s stop timeouts each, normally a second), the unmount loop.
const SHUTDOWN: Duration = Duration::from_secs(180);
/// The limit on the whole run.
const RUN: Duration = Duration::from_secs(900);

/// What the kernel prints last on a reboot.
const RESTARTING: &str = "reboot: Restarting system";

/// `control`'s image: [`CONTROL_SCRIPT`] on busybox with the default
/// applets (`cat`, `sh` and `sleep` among them).
fn control_image() -> ArchiveOptions {
    ArchiveOptions {
        reference: format!("localhost/{CONTROL}:latest"),
        script: CONTROL_SCRIPT.to_owned(),
        applets: DEFAULT_APPLETS.iter().map(|&a| a.to_owned()).collect(),
    }
}

/// The guest's root, the reference image: busybox, liftoff, the SELinux
/// policy, containerd, runc and `host-ctr` with the harness's
/// configurations and units (`/local` with them), `control`, the demo's
/// units and their scripts.
fn guest_root(liftoff: &Path, host_ctr: &Path) -> GuestRoot {
    let mut root = GuestRoot::new()
        .liftoff(liftoff)
        .host_ctr(host_ctr)
        // Also everything of `with_containerd`: containerd, runc, the
        // shim, ctr, their libraries, overlay and ext4, mkfs.ext4, and
        // `/local` (labelled `local_t`, as no mounts.toml is given).
        .with_host_containers()
        .selinux()
        .unit(CONTAINERD.unit_name, &CONTAINERD.unit(true))
        .host_container(
            CONTROL,
            &settings_toml(&archive_path(CONTROL), false, true),
            Some(&control_image()),
        )
        .run_timeout(RUN);
    for (name, toml) in UNITS {
        root = root.unit(name, toml);
    }
    for (name, text) in SCRIPTS {
        let text = text
            .replace("HOST_SOCKET", HOST_CONTAINERD_SOCKET)
            .replace("SOCKET", CONTAINERD.socket)
            .replace("CTR", GUEST_CTR);
        root = root.script(format!("/etc/demo/{name}.sh"), &text);
    }
    root
}

/// Fetches (or finds in the cache) Debian's containerd and runc, running
/// `apt-get update` first when the package lists are missing and xtask
/// may (root), as [`kernel`] does. The guest's build would fetch them
/// too, but could not update the lists.
fn containerd() -> Result<ContainerdPackages, XtaskError> {
    let cache = qemu_tests::cache_dir();
    let fetch = || qemu_tests::containerd::fetch_containerd(&cache);
    match fetch() {
        Err(e) if e.is_package_lists_missing() && deps::is_root() => {
            deps::apt_get_update()?;
            fetch()
        }
        other => other,
    }
    .map_err(|e| XtaskError::Guest(qemu_tests::GuestRootError::Containerd(e)))
}

/// Runs the demo.
pub fn run() -> Result<(), XtaskError> {
    deps::ensure(&[deps::BUILD, deps::QEMU, GUEST_TOOLS])?;
    let liftoff = build::static_liftoff()?;
    let host_ctr = build::static_host_ctr()?;
    let kernel = kernel()?;
    let packages = containerd()?;
    // The console log outlives the guest's temporary folder.
    let out = qemu_tests::workspace_root()
        .join("target")
        .join("liftoff-demo");
    std::fs::create_dir_all(&out).map_err(|source| XtaskError::Io {
        path: out.clone(),
        source,
    })?;

    eprintln!(
        "xtask: building the reference image: a verified erofs root (SELinux policy, containerd, runc, host-ctr, {} units and host container {CONTROL}), its dm-verity disk image and an initramfs",
        UNITS.len() + 2
    );
    let guest = guest_root(&liftoff, &host_ctr)
        .build()
        .map_err(XtaskError::Guest)?;
    let cmdline = format!("{} {LOG_LEVEL}", guest.image.cmdline);
    let mut config = guest.config(&cmdline, "boot");
    config.echo_console = true;
    config.run_dir = Some(out.clone());
    eprintln!(
        "xtask: booting Debian {} with liftoff as /init: {} (TCG, serial console below)\n",
        kernel.version, config.append
    );

    let started = Instant::now();
    let mut vm = qemu_tests::Vm::start(&config).map_err(XtaskError::Qemu)?;
    vm.wait_for("boot complete at", BOOT)
        .map_err(XtaskError::Qemu)?;
    let to_complete = started.elapsed();
    vm.wait_for("show: done", SHOW).map_err(XtaskError::Qemu)?;
    let to_show = started.elapsed();
    // Let the last console lines drain before the key press.
    std::thread::sleep(Duration::from_millis(500));
    eprintln!("\nxtask: pressing ctrl-alt-delete through QMP\n");
    vm.send_ctrl_alt_del().map_err(XtaskError::Qemu)?;
    vm.wait_exit(SHUTDOWN).map_err(XtaskError::Qemu)?;
    let total = started.elapsed();

    let console = vm.console();
    let report = Report {
        kernel: &kernel.version,
        packages: &packages,
        liftoff: &liftoff,
        host_ctr: &host_ctr,
        guest: &guest,
        console: &console,
        to_complete,
        to_show,
        total,
        console_log: &vm.console_log(),
    };
    eprintln!("\n{}", report.render());
    Ok(())
}

/// What the report is made of.
struct Report<'a> {
    kernel: &'a str,
    packages: &'a ContainerdPackages,
    liftoff: &'a Path,
    host_ctr: &'a Path,
    guest: &'a Guest,
    console: &'a str,
    to_complete: Duration,
    to_show: Duration,
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
        let said = inside_lines(self.console, CONTROL);
        let rows = [
            ("kernel", format!("Debian {}", self.kernel)),
            ("containerd", packages(self.packages)),
            (
                "liftoff binary",
                format!(
                    "{} bytes, static ({})",
                    build::size_of(self.liftoff),
                    self.liftoff.display()
                ),
            ),
            (
                "host-ctr binary",
                format!(
                    "{} bytes, static ({})",
                    build::size_of(self.host_ctr),
                    self.host_ctr.display()
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
            ("SELinux", self.selinux()),
            ("stage 1 stamps", stage1),
            ("volumes", self.format_time()),
            ("stage 2 stamps", stage2),
            ("boot complete", complete),
            ("ready", self.ready()),
            (
                "control said",
                if said.is_empty() {
                    "(nothing found on the console)".to_owned()
                } else {
                    said.join(" | ")
                },
            ),
            (
                "wall time",
                format!(
                    "{:.1}s QEMU start to boot complete, {:.1}s to control running and shown, {:.1}s in total (TCG)",
                    self.to_complete.as_secs_f64(),
                    self.to_show.as_secs_f64(),
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

    /// Whether SELinux enforced, since when, and how many AVC denials the
    /// kernel logged.
    fn selinux(&self) -> String {
        let denials = self
            .console
            .lines()
            .filter(|l| l.contains("avc:  denied"))
            .count();
        match self
            .console
            .lines()
            .find(|l| l.contains("liftoff: SELinux enforcing"))
            .and_then(kernel_time)
        {
            Some(at) => format!(
                "enforcing from {at:.3}s (containerd and host-containerd in containerd_t, control in container_t); {denials} AVC denial(s)"
            ),
            None => {
                format!("NOT ENFORCING ('SELinux enforcing' not seen); {denials} AVC denial(s)")
            }
        }
    }

    /// When `containerd`, `host-containerd` and `control` became ready,
    /// from the kernel's timestamps on liftoff's `unit NAME: ready` lines.
    fn ready(&self) -> String {
        let units = [CONTAINERD.unit_name, HOST_CONTAINERD.unit_name, CONTROL];
        let times: Vec<String> = units
            .iter()
            .map(|name| match ready_at(self.console, name) {
                Some(at) => format!("{name} {at:.3}s"),
                None => format!("{name} (never)"),
            })
            .collect();
        format!("{} since kernel start", times.join(", "))
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

/// The Debian versions of the fetched packages, from the folders they are
/// unpacked in (`containerd_1.6.20~ds1-1+deb12u3_amd64`).
fn packages(packages: &ContainerdPackages) -> String {
    let versions: Vec<String> = packages
        .roots
        .iter()
        .map(|(package, root)| {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let version = name
                .strip_prefix(&format!("{package}_"))
                .and_then(|rest| rest.rsplit_once('_'))
                .map_or("(unknown version)", |(version, _arch)| version);
            format!("{package} {version}")
        })
        .collect();
    format!(
        "Debian {} (dynamic; staged with their libraries)",
        versions.join(", ")
    )
}

/// The kernel timestamp of liftoff's `unit NAME: ready` line, in seconds.
fn ready_at(console: &str, name: &str) -> Option<f64> {
    let marker = format!("liftoff: unit {name}: ready");
    console
        .lines()
        .find(|l| l.trim_end().ends_with(&marker))
        .and_then(kernel_time)
}

/// What host container `name` printed itself: the lines under its unit's
/// kmsg tag (`NAME[PID]: `) that start with [`INSIDE`], without it.
fn inside_lines<'a>(console: &'a str, name: &str) -> Vec<&'a str> {
    let tag = format!("{name}[");
    console
        .lines()
        .filter_map(|l| l.split_once(&tag).map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once("]: ").map(|(_, text)| text))
        .filter_map(|text| text.strip_prefix(INSIDE))
        .map(str::trim_end)
        .collect()
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
    use std::path::PathBuf;

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
    fn both_containerd_instances_run_in_containerd_t() {
        assert!(
            CONTAINERD
                .unit(true)
                .contains("selinux_type = \"containerd_t\"\n")
        );
        assert!(
            HOST_CONTAINERD
                .unit(true)
                .contains("selinux_type = \"containerd_t\"\n")
        );
    }

    #[test]
    fn control_speaks_with_the_inside_prefix() {
        // Every echo is one of its lines, but the start count's, which
        // goes into a file (`echo "$n" > $S/starts`).
        let spoken: Vec<&str> = CONTROL_SCRIPT
            .split("echo \"")
            .skip(1)
            .filter(|rest| !rest.starts_with("$n\""))
            .collect();
        assert_eq!(spoken.len(), 4, "{spoken:?}");
        for rest in spoken {
            assert!(rest.starts_with(INSIDE), "{rest}");
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
    fn ready_times_and_inside_lines_come_from_the_console() {
        let console = "[   12.500000] liftoff: unit containerd: ready\r\n\
            [   12.600000] liftoff: unit containerd-x: ready\r\n\
            [   25.000000] control[301]: host container control started: pid 340\r\n\
            [   25.100000] control[301]: inside: I am PID 1\r\n\
            [   25.200000] liftoff: unit control: ready\r\n";
        assert_eq!(ready_at(console, "containerd"), Some(12.5));
        assert_eq!(ready_at(console, "control"), Some(25.2));
        assert_eq!(ready_at(console, "host-containerd"), None);
        assert_eq!(inside_lines(console, "control"), ["I am PID 1"]);
    }

    #[test]
    fn package_versions_come_from_the_folder_names() {
        let packages = ContainerdPackages {
            roots: vec![
                (
                    "containerd",
                    PathBuf::from("/c/containerd_1.6.20~ds1-1+deb12u3_amd64"),
                ),
                ("runc", PathBuf::from("/c/odd")),
            ],
        };
        assert_eq!(
            super::packages(&packages),
            "Debian containerd 1.6.20~ds1-1+deb12u3, runc (unknown version) (dynamic; staged with their libraries)"
        );
    }

    #[test]
    fn mib_has_one_decimal() {
        assert_eq!(mib(16 << 20), "16.0 MiB");
        assert_eq!(mib(3 << 19), "1.5 MiB");
    }
}
