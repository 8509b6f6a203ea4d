//! `cargo xtask bench boot`: the same disk image booted by liftoff and by
//! what operators would pick instead, alternating, under QEMU/TCG, to the
//! moment containerd answers on its socket.
//!
//! 1. One guest ([`GuestRoot`]): the verified erofs root with busybox,
//!    liftoff as `/sbin/init`, Debian's containerd and runc, and
//!    `boot-probe` (the `boot-probe` crate: it polls containerd's socket
//!    and logs `BENCH containerd-ready boottime_us=… pid1_rss_kib=…`).
//!    containerd keeps its `root` on the `/run` tmpfs here, so no system
//!    needs a writable volume and every boot starts from the same state.
//!    The root holds each system's way of starting containerd and the
//!    probe: liftoff's unit files, busybox init's `/etc/inittab`,
//!    systemd's units and the parts of systemd itself it needs.
//! 2. The systems, each with its own initramfs and the same kernel command
//!    line (`roothash=…`; systemd also gets `root=` and `init=`):
//!    * **liftoff**: `liftoff initramfs` (liftoff as `/init`, the
//!      modules), stage 1, then liftoff on the root with the `containerd`
//!      and `boot-probe` units;
//!    * **shell**: a busybox initramfs doing the same steps by hand:
//!      `modprobe`, `veritysetup open` (cryptsetup's, with its libraries),
//!      `mount`, `switch_root` into busybox `init`, whose `inittab` starts
//!      containerd and the probe;
//!    * **systemd**: Debian's systemd in a dracut initramfs
//!      (`systemd-veritysetup` opens the root by `roothash=`) and on the
//!      root, with Debian's `containerd.service` and a `boot-probe.service`
//!      ([`crate::bench_systemd`]).
//! 3. N runs, alternating the systems (and which goes first). Per boot:
//!    when the root was mounted (the kernel's `erofs: … mounted` line),
//!    when containerd answered, and PID 1's resident memory then.
//! 4. Medians, each peer's ratio to liftoff, and the initramfs sizes; the
//!    issue's targets are checked against the same run.
//!
//! Left out: init systems beyond issue 8's three (liftoff, a shell,
//! systemd).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_tests::containerd::{CONTAINERD, GUEST_CONFIG};
use qemu_tests::guest::BusyboxGuest;
use qemu_tests::guest_root::{Guest, GuestRoot, kernel_time, program_libraries};
use qemu_tests::qemu::Vm;

use crate::{XtaskError, build, deps};

/// Options of `cargo xtask bench boot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Boots per system.
    pub runs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { runs: 5 }
    }
}

/// Where the probe is on the root.
const GUEST_PROBE: &str = "/usr/bin/boot-probe";
/// The line the probe writes when containerd answers.
const READY_MARK: &str = "BENCH containerd-ready";
/// The line the probe writes when it gives up.
const TIMEOUT_MARK: &str = "BENCH containerd-timeout";
/// The kernel's line when the erofs root is mounted (6.1:
/// `erofs: (device dm-0): mounted with root inode @ nid 36.`).
const ROOT_MOUNTED: &str = "mounted with root inode";
/// Kernel start to containerd ready, with room for a loaded machine.
const BOOT_LIMIT: Duration = Duration::from_secs(300);

/// containerd for the bench: the reference configuration with `root` on
/// the `/run` tmpfs instead of `/local`, so that no system has to format
/// or mount a volume and each boot starts alike.
fn containerd_config() -> String {
    CONTAINERD
        .config_toml()
        .replace(
            "root = \"/local/containerd\"",
            "root = \"/run/containerd/root\"",
        )
        .replace("/local/containerd/opt", "/run/containerd/root/opt")
}

/// liftoff's unit for the probe: started with containerd, not after it
/// (`after` would wait for containerd's READY=1), so it sees the moment
/// containerd answers rather than liftoff's view of its readiness.
const PROBE_UNIT: &str = r#"# xtask/src/bench_boot.rs: the probe
description = "boot-probe: polls containerd's socket"
exec = ["/usr/bin/boot-probe"]
type = "oneshot"
boot = "start"
ready_timeout = "10min"
stdout = "console"
stderr = "console"
"#;

/// The probe's unit name under liftoff (see [`guest`]).
const PROBE_UNIT_NAME: &str = "zz-boot-probe";

/// busybox init's table on the root: the API filesystems, then containerd
/// and the probe, as the shell system's only services.
const INITTAB: &str = "\
::sysinit:/bin/busybox sh /etc/bench/rcS
::once:/usr/bin/containerd --config /etc/containerd/config.toml
::once:/usr/bin/boot-probe
";

/// What busybox init runs first: what liftoff's stage 2 mounts before its
/// units (`/run`, cgroup2) and nothing more.
const RCS: &str = "\
/bin/busybox mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
/bin/busybox mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
";

/// The modules the shell initramfs loads: [`MODULES`] with their
/// dependencies. busybox's `modprobe` follows `depends=` but not
/// `softdep=`, so the CRC32C provider that libcrc32c needs (liftoff reads
/// the softdep) is named first.
fn shell_modules() -> Vec<&'static str> {
    std::iter::once("crc32c_generic")
        .chain(MODULES.iter().copied())
        .collect()
}

/// The modules every system loads from its initramfs, what liftoff's
/// initramfs holds for this image: the virtio disk, dm-verity, erofs, and
/// overlay (containerd's snapshotter) and ext4 (the reference image's
/// `/local`).
pub const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "dm-verity",
    "erofs",
    "overlay",
    "ext4",
];

/// The shell system's `/init`: liftoff's stage 1 by hand.
const SHELL_INIT: &str = r#"#!/bin/busybox sh
# xtask/src/bench_boot.rs: a busybox initramfs doing stage 1 by hand.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modprobe -a MODULES || echo "BENCH shell: modprobe failed"
roothash=$(sed -n 's/.*roothash=\([0-9a-f]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/vda2 ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i + 1)); done
mkdir -p /run/cryptsetup /sysroot
export DM_DISABLE_UDEV=1
if ! veritysetup open /dev/vda1 root /dev/vda2 "$roothash"; then
    echo "BENCH shell: veritysetup failed; modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ') block: $(ls /sys/class/block | tr '\n' ' ')"
    poweroff -f
fi
mount -t erofs -o ro /dev/mapper/root /sysroot || { echo "BENCH shell: mount failed"; poweroff -f; }
mount --move /dev /sysroot/dev
mount --move /proc /sysroot/proc
mount --move /sys /sysroot/sys
exec switch_root /sysroot /bin/busybox init
"#;

/// One system under test.
#[derive(Debug)]
pub struct System {
    /// Its name in the table.
    pub name: &'static str,
    /// Its initramfs.
    pub initrd: PathBuf,
    /// Kernel flags it needs beyond the image's `roothash=` command line
    /// (after them, so they win).
    pub extra: String,
}

/// One boot's figures, in seconds since the kernel started.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Boot {
    root_mounted: f64,
    containerd_ready: f64,
    pid1_rss_kib: Option<u64>,
}

/// Runs the benchmark and prints its table.
///
/// # Errors
/// A missing tool, a build, a boot that does not reach containerd.
pub fn run(options: Options) -> Result<(), XtaskError> {
    deps::ensure(&[
        deps::BUILD,
        deps::QEMU,
        deps::TESTS,
        deps::BENCH,
        deps::BENCH_BOOT,
    ])?;
    let liftoff = build::static_liftoff()?;
    let probe = build::static_boot_probe()?;
    let kernel = crate::kernel()?;
    let guest = guest(&liftoff, &probe)?;
    let shell = shell_initramfs(&kernel, &guest)?;
    let systems = [
        System {
            name: "liftoff",
            initrd: uncompressed(&guest.initrd, &guest.dir().join("liftoff-initrd.cpio"))?,
            extra: String::new(),
        },
        System {
            name: "liftoff-gz",
            initrd: guest.initrd.clone(),
            extra: String::new(),
        },
        System {
            name: "shell",
            initrd: shell,
            extra: String::new(),
        },
        crate::bench_systemd::system(&kernel, &guest)?,
    ];
    eprintln!(
        "bench boot: {} run(s) per system, alternating; kernel {}",
        options.runs, kernel.version
    );
    let mut boots: Vec<Vec<Boot>> = vec![Vec::new(); systems.len()];
    for run in 0..options.runs {
        let mut order: Vec<usize> = (0..systems.len()).collect();
        order.rotate_left(run % systems.len());
        for i in order {
            let figures = boot(&guest, &systems[i], run)?;
            eprintln!(
                "  run {}: {:<8} root mounted {:.3}s, containerd ready {:.3}s, PID 1 {} KiB",
                run + 1,
                systems[i].name,
                figures.root_mounted,
                figures.containerd_ready,
                figures
                    .pid1_rss_kib
                    .map_or_else(|| "?".to_owned(), |k| k.to_string())
            );
            boots[i].push(figures);
        }
    }
    let sizes: Vec<u64> = systems.iter().map(|s| build::size_of(&s.initrd)).collect();
    let names: Vec<&str> = systems.iter().map(|s| s.name).collect();
    print!("{}", table(&names, &boots, &sizes));
    let verdicts = targets(&names, &boots, &sizes);
    print!("{}", verdicts.text);
    if verdicts.missed {
        return Err(XtaskError::Bench("a target was missed (see above)".into()));
    }
    Ok(())
}

/// The issue's targets, checked on the same run: liftoff reaches
/// containerd-ready in at most half of systemd's time and no later than
/// the shell, and its initramfs (as booted) is the smallest.
struct Verdicts {
    text: String,
    missed: bool,
}

fn targets(names: &[&str], boots: &[Vec<Boot>], sizes: &[u64]) -> Verdicts {
    let ready = |name: &str| {
        let i = names.iter().position(|n| *n == name)?;
        Some(median(
            boots[i].iter().map(|b| b.containerd_ready).collect(),
        ))
    };
    let size = |name: &str| names.iter().position(|n| *n == name).map(|i| sizes[i]);
    let mut text = String::from("\ntargets:\n");
    let mut missed = false;
    let mut check = |ok: Option<bool>, what: String| {
        let mark = match ok {
            Some(true) => "met",
            Some(false) => {
                missed = true;
                "MISSED"
            }
            None => "not measured",
        };
        let _ = writeln!(text, "  {mark:<12} {what}");
    };
    let (liftoff, shell, systemd) = (ready("liftoff"), ready("shell"), ready("systemd"));
    check(
        liftoff.zip(systemd).map(|(l, s)| l <= s / 2.0),
        format!(
            "liftoff containerd-ready ≤ ½ systemd's ({} vs {})",
            seconds(liftoff),
            seconds(systemd)
        ),
    );
    check(
        liftoff.zip(shell).map(|(l, s)| l <= s),
        format!(
            "liftoff containerd-ready ≤ shell's ({} vs {})",
            seconds(liftoff),
            seconds(shell)
        ),
    );
    let smallest = size("liftoff").map(|l| {
        names
            .iter()
            .zip(sizes)
            .filter(|(n, _)| !n.starts_with("liftoff"))
            .all(|(_, s)| l < *s)
    });
    check(
        smallest,
        "liftoff's initramfs is the smallest (as booted: uncompressed)".to_owned(),
    );
    Verdicts { text, missed }
}

/// A median in seconds for the verdict lines.
fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "?".to_owned(), |v| format!("{v:.3}s"))
}

/// Writes the uncompressed cpio of the gzip initramfs `initrd` to `out`
/// (what `liftoff initramfs --compress none` writes): under TCG the
/// kernel's gunzip of the archive costs more than the bytes it saves.
fn uncompressed(initrd: &Path, out: &Path) -> Result<PathBuf, XtaskError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| XtaskError::Io { path, source }
    };
    let file = std::fs::File::open(initrd).map_err(io(initrd))?;
    let mut reader = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
    let mut writer = std::fs::File::create(out).map_err(io(out))?;
    std::io::copy(&mut reader, &mut writer).map_err(io(initrd))?;
    Ok(out.to_owned())
}

/// The guest every system boots.
fn guest(liftoff: &Path, probe: &Path) -> Result<Guest, XtaskError> {
    let probe_bytes = std::fs::read(probe).map_err(|source| XtaskError::Io {
        path: probe.to_owned(),
        source,
    })?;
    let root = GuestRoot::new()
        .liftoff(liftoff)
        .run_timeout(BOOT_LIMIT)
        .with_containerd()
        // No volume: containerd's root is on /run.
        .mounts_toml("# xtask/src/bench_boot.rs: no volumes\n")
        .file(GUEST_CONFIG, containerd_config(), 0o644)
        .unit("containerd", &CONTAINERD.unit(false))
        // liftoff spawns the units it can start at once in name order, and
        // each spawn makes the unit's cgroup first: the probe's name sorts
        // after containerd's so that the instrument does not delay what it
        // measures, as the shell's inittab lists it after containerd.
        .unit(PROBE_UNIT_NAME, PROBE_UNIT)
        .file(GUEST_PROBE, probe_bytes, 0o755)
        .file("/etc/inittab", INITTAB, 0o644)
        .script("/etc/bench/rcS", RCS);
    crate::bench_systemd::stage(root)?
        .build()
        .map_err(XtaskError::Guest)
}

/// The busybox initramfs of the shell system: busybox, cryptsetup's
/// `veritysetup` with the libraries `ldd` names, the modules and
/// [`SHELL_INIT`].
fn shell_initramfs(kernel: &qemu_tests::Kernel, guest: &Guest) -> Result<PathBuf, XtaskError> {
    let work = guest.dir().join("shell-initramfs");
    let veritysetup = which("veritysetup")?;
    let mut busybox = BusyboxGuest::new(kernel).modules(shell_modules());
    for (guest_path, host) in with_libraries(&veritysetup, "/sbin/veritysetup")? {
        let bytes = std::fs::read(&host).map_err(|source| XtaskError::Io {
            path: host.clone(),
            source,
        })?;
        busybox = busybox.file(guest_path, 0o755, bytes);
    }
    // The prologue's /init is replaced: switch_root must run as PID 1,
    // not in the subshell the prologue runs scripts in. A later entry of
    // the same name wins when the kernel unpacks the archive.
    let init = SHELL_INIT.replace("MODULES", &shell_modules().join(" "));
    busybox = busybox.file("/init", 0o755, init.into_bytes());
    let out = guest.dir().join("shell-initrd.img");
    std::fs::create_dir_all(&work).map_err(|source| XtaskError::Io {
        path: work.clone(),
        source,
    })?;
    busybox
        .write_to(&work, &out)
        .map_err(XtaskError::BusyboxGuest)?;
    Ok(out)
}

/// `program` at `guest_path` and every library `ldd` lists for it (and the
/// loader) at their own paths, as (guest path, host file) pairs: the
/// harness's own reading of `ldd` ([`program_libraries`]).
pub(crate) fn with_libraries(
    program: &Path,
    guest_path: &str,
) -> Result<Vec<(String, PathBuf)>, XtaskError> {
    let mut files = vec![(guest_path.to_owned(), program.to_owned())];
    for library in program_libraries(program).map_err(XtaskError::Guest)? {
        files.push((library.clone(), PathBuf::from(library)));
    }
    Ok(files)
}

/// Where `program` is on PATH.
fn which(program: &str) -> Result<PathBuf, XtaskError> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/sbin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.exists())
        .ok_or_else(|| XtaskError::Usage(format!("{program} is not installed")))
}

/// Boots `system` once and reads its figures from the console.
fn boot(guest: &Guest, system: &System, run: usize) -> Result<Boot, XtaskError> {
    let cmdline = format!("{} {}", guest.image.cmdline, system.extra);
    let mut config = guest.config(&cmdline, &format!("{}-{run}", system.name));
    config.initrd.clone_from(&system.initrd);
    let vm = Vm::start(&config).map_err(XtaskError::Qemu)?;
    // The probe writes one of its two lines; both start with "BENCH
    // containerd-".
    let seen = vm.wait_for("BENCH containerd-", BOOT_LIMIT);
    let console = whole_line(&vm, "BENCH containerd-");
    drop(vm);
    // Kept for a look at where the time went (`liftoff analyze` reads
    // liftoff's own record; the console has every system's kernel lines).
    let kept = qemu_tests::workspace_root()
        .join("target")
        .join("bench")
        .join("boot");
    let _ = std::fs::create_dir_all(&kept);
    let _ = std::fs::write(
        kept.join(format!("{}-{}.log", system.name, run + 1)),
        &console,
    );
    let failed = |why: &str| {
        XtaskError::Bench(format!(
            "{} (run {}): {why}; console tail:\n{}",
            system.name,
            run + 1,
            tail(&console)
        ))
    };
    if seen.is_err() || console.contains(TIMEOUT_MARK) {
        return Err(failed("containerd never answered"));
    }
    parse_boot(&console).ok_or_else(|| failed("the console lacks the root or probe line"))
}

/// The console once the line holding `marker` is complete (the console
/// is read as it arrives, so the line may still be on its way), or as it
/// is after a second.
fn whole_line(vm: &Vm, marker: &str) -> String {
    for _ in 0..100 {
        let console = vm.console();
        let done = console
            .find(marker)
            .is_some_and(|at| console[at..].contains('\n'));
        if done {
            return console;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    vm.console()
}

/// The figures in a console log.
fn parse_boot(console: &str) -> Option<Boot> {
    let root_mounted = kernel_time(console.lines().find(|l| l.contains(ROOT_MOUNTED))?)?;
    let ready = console.lines().find(|l| l.contains(READY_MARK))?;
    let field = |key: &str| {
        ready
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    };
    let ready_us: u64 = field("boottime_us")?.parse().ok()?;
    Some(Boot {
        root_mounted,
        containerd_ready: ready_us as f64 / 1e6,
        pid1_rss_kib: field("pid1_rss_kib").and_then(|k| k.parse().ok()),
    })
}

/// The last lines of a console log.
fn tail(console: &str) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The report: medians per system, ratios to the first (liftoff), sizes.
fn table(names: &[&str], boots: &[Vec<Boot>], initramfs: &[u64]) -> String {
    let root: Vec<f64> = boots
        .iter()
        .map(|b| median(b.iter().map(|x| x.root_mounted).collect()))
        .collect();
    let ready: Vec<f64> = boots
        .iter()
        .map(|b| median(b.iter().map(|x| x.containerd_ready).collect()))
        .collect();
    let rss: Vec<f64> = boots
        .iter()
        .map(|b| {
            median(
                b.iter()
                    .filter_map(|x| x.pid1_rss_kib)
                    .map(|k| k as f64)
                    .collect(),
            )
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<10} {:>14} {:>8} {:>18} {:>8} {:>14} {:>12}",
        "system", "root mounted", "ratio", "containerd ready", "ratio", "initramfs", "PID 1 RSS"
    );
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<10} {:>13.3}s {:>7.2}× {:>17.3}s {:>7.2}× {:>8} KiB {:>8.0} KiB",
            name,
            root[i],
            root[i] / root[0],
            ready[i],
            ready[i] / ready[0],
            initramfs[i] / 1024,
            rss[i],
        );
    }
    let _ = writeln!(
        out,
        "\nmedians of {} run(s), guest time since the kernel started (QEMU/TCG); ratio = system / liftoff",
        boots.first().map_or(0, Vec::len)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_gives_root_ready_and_memory() {
        let console = "[    3.500000] erofs: (device dm-0): mounted with root inode @ nid 36.\n\
                       [    9.100000] BENCH containerd-ready boottime_us=9012345 pid1_rss_kib=2800 polls=3\n";
        let boot = parse_boot(console).unwrap();
        assert_eq!(boot.root_mounted, 3.5);
        assert_eq!(boot.containerd_ready, 9.012345);
        assert_eq!(boot.pid1_rss_kib, Some(2800));
        assert_eq!(parse_boot("[ 1.0] nothing\n"), None);
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let boot = |r, c| Boot {
            root_mounted: r,
            containerd_ready: c,
            pid1_rss_kib: Some(1000),
        };
        let text = table(
            &["liftoff", "shell"],
            &[vec![boot(2.0, 8.0)], vec![boot(3.0, 12.0)]],
            &[2048, 4096],
        );
        assert!(text.contains("liftoff"), "{text}");
        assert!(text.contains("1.50×"), "{text}");
        assert!(text.contains("12.000s"), "{text}");
    }

    #[test]
    fn targets_compare_liftoff_with_each_peer() {
        let boot = |c| Boot {
            root_mounted: 1.0,
            containerd_ready: c,
            pid1_rss_kib: None,
        };
        let names = ["liftoff", "liftoff-gz", "shell", "systemd"];
        let met = targets(
            &names,
            &[
                vec![boot(5.0)],
                vec![boot(5.2)],
                vec![boot(5.1)],
                vec![boot(10.0)],
            ],
            &[7000, 2500, 16000, 15000],
        );
        assert!(!met.missed, "{}", met.text);
        assert_eq!(met.text.matches("met ").count(), 3, "{}", met.text);
        // Slower than the shell, more than half of systemd's time, and a
        // bigger initramfs than a peer: three misses.
        let missed = targets(
            &names,
            &[
                vec![boot(5.2)],
                vec![boot(5.2)],
                vec![boot(5.1)],
                vec![boot(10.0)],
            ],
            &[17000, 2500, 16000, 15000],
        );
        assert!(missed.missed);
        assert_eq!(missed.text.matches("MISSED").count(), 3, "{}", missed.text);
    }

    #[test]
    fn the_probe_is_spawned_after_containerd() {
        // liftoff spawns units that can start together in name order.
        assert!(PROBE_UNIT_NAME > "containerd");
    }

    #[test]
    fn the_bench_containerd_keeps_its_root_on_run() {
        let config = containerd_config();
        assert!(
            config.contains("root = \"/run/containerd/root\""),
            "{config}"
        );
        assert!(!config.contains("/local"), "{config}");
    }
}
