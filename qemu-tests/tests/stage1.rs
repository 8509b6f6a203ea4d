//! Stage 1 end to end: liftoff in an initramfs built by `liftoff
//! initramfs` finds a verity-protected erofs root by `roothash=` alone,
//! mounts it through dm-verity, switches root and executes `init=`.
//!
//! The root holds a static busybox and `/sbin/probe`, which prints the
//! mount of `/` and liftoff's boot record, then powers off:
//!
//! * (a) the probe runs, `/` is the dm-verity device, read-only, erofs,
//!   and the record has every stamp from `start` to `exec`;
//! * (b) a wrong `roothash=` (one hex digit flipped) names a hash
//!   partition that does not exist: liftoff reports the device timeout and
//!   reboots; the probe never runs;
//! * (c) the same wrong hash with the real hash partition named through
//!   `systemd.verity_root_hash=`: liftoff refuses the root hash mismatch
//!   before creating the dm device, and reboots;
//! * (d) an image made entirely with `veritysetup format` boots by its
//!   `roothash=`;
//! * (e) an ext4 root, its partitions named by `systemd.verity_root_data=`
//!   and `systemd.verity_root_hash=`, boots with the type probed as ext4;
//! * (f) bytes flipped in every block of busybox on the root partition:
//!   dm-verity catches the first read, the kernel restarts
//!   (restart_on_corruption) and the probe never runs;
//! * (g) no hash partition: liftoff's device timeout names the missing
//!   root-x86-64-verity partition and its PARTUUID, and reboots;
//! * (h) Bottlerocket's `dm-mod.create=` line (`root=/dev/dm-0`, the hash
//!   device `PARTUUID=<data>/PARTNROFF=1`) boots through liftoff's own
//!   dm-verity device;
//! * (i) the same line with a wrong digest: liftoff refuses the root hash
//!   mismatch before creating the dm device, and reboots.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_tests::image::{ImageBuilder, RootFs, VerityTool};
use qemu_tests::qemu::{KERNEL_FLAG_CONSOLE, KERNEL_FLAG_DEVKMSG, KERNEL_FLAG_PANIC};
use qemu_tests::{BuiltImage, DiskImage, Vm, VmConfig};
use tempfile::TempDir;

/// Kernel start to the probe's output or liftoff's failure action: a few
/// seconds of guest time, with a wide margin for TCG on a loaded machine.
const BOOT: Duration = Duration::from_secs(120);
/// From the failure action or the probe's poweroff to QEMU's exit.
const SHUTDOWN: Duration = Duration::from_secs(60);
/// The modules the initramfs carries (dependencies come along): virtio
/// over PCI for the disk, dm-verity (with dm-mod, dm-bufio), erofs.
const MODULES: &[&str] = &["virtio_pci", "virtio_blk", "dm-verity", "erofs"];
/// Guest kernel flag: do not wait the default 5 s before the failure
/// action; the scenarios read the console, not a person.
const FLAG_NO_DELAY: &str = "liftoff.failure_delay=0";
/// The stage 2 the root holds.
const PROBE: &str = "/sbin/probe";

/// Prints `/`'s mount and the boot record, one line each, then powers off.
/// Only busybox exists on the root, so every applet is called through it.
const PROBE_SCRIPT: &str = r#"#!/bin/busybox sh
while read -r source target fstype options rest; do
    if [ "$target" = / ]; then
        echo "PROBE root=$source $fstype $options"
    fi
done < /proc/self/mounts
echo "PROBE stamps=$(/bin/busybox tr -d '\n' < /run/liftoff/stage1.json)"
echo "PROBE done"
/bin/busybox poweroff -f
"#;

/// The static liftoff under test (`cargo xtask test` builds it).
fn liftoff_bin() -> PathBuf {
    qemu_tests::scenario::liftoff_bin().expect(qemu_tests::scenario::MISSING_LIFTOFF_BIN)
}

/// A guest's files: the disk image, the initramfs and the kernel.
struct Setup {
    dir: TempDir,
    image: BuiltImage,
    initrd: PathBuf,
    vmlinuz: PathBuf,
}

fn write_executable(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).expect("write staging file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn setup() -> Setup {
    setup_with(|b| b, &[])
}

/// [`setup`] with the image builder adjusted and more modules in the
/// initramfs.
fn setup_with(image: impl FnOnce(ImageBuilder) -> ImageBuilder, modules: &[&str]) -> Setup {
    let kernel = qemu_tests::fetch_kernel(&qemu_tests::cache_dir())
        .expect("kernel (cargo xtask test fetches it)");
    let dir = tempfile::Builder::new()
        .prefix("liftoff-qemu-")
        .tempdir()
        .expect("tempdir");

    // The root: busybox, the probe, and the mount points switch_root moves
    // the API filesystems to (an erofs root cannot grow them at boot).
    let staging = dir.path().join("staging");
    for sub in ["bin", "sbin", "dev", "proc", "sys", "run"] {
        fs::create_dir_all(staging.join(sub)).expect("staging dirs");
    }
    let busybox = fs::read(qemu_tests::guest::DEFAULT_BUSYBOX)
        .expect("busybox (Debian's busybox-static) at /bin/busybox");
    write_executable(&staging.join("bin/busybox"), &busybox);
    write_executable(
        &staging.join(PROBE.trim_start_matches('/')),
        PROBE_SCRIPT.as_bytes(),
    );
    // liftoff itself as the root's /sbin/init, as on a real image: booted
    // with `init=/sbin/init` it continues as stage 2.
    let liftoff = fs::read(liftoff_bin()).expect("read LIFTOFF_BIN");
    write_executable(&staging.join("sbin/init"), &liftoff);
    let image = image(DiskImage::builder(&staging))
        .build(&dir.path().join("disk.img"))
        .expect("build the disk image");

    let initrd = dir.path().join("initrd.img");
    let modules: Vec<&str> = MODULES.iter().chain(modules).copied().collect();
    qemu_tests::scenario::build_initramfs(&liftoff_bin(), &kernel.modules_dir, &modules, &initrd)
        .expect("liftoff initramfs");
    Setup {
        dir,
        image,
        initrd,
        vmlinuz: kernel.vmlinuz,
    }
}

impl Setup {
    fn boot(&self, cmdline: &str) -> Vm {
        let mut config = VmConfig::new(&self.vmlinuz, &self.initrd);
        config.append = format!(
            "{KERNEL_FLAG_CONSOLE} {KERNEL_FLAG_PANIC} {KERNEL_FLAG_DEVKMSG} init={PROBE} {cmdline} {FLAG_NO_DELAY}"
        );
        config.disks = vec![self.image.path.clone()];
        // TCG's default qemu64 CPU: no SSE4.2, so crc32c_intel (one of the
        // providers erofs's `softdep=pre: crc32c` plans) refuses with
        // ENODEV. It is optional, so the boot goes on with crc32c_generic.
        config.run_dir = Some(self.dir.path().to_owned());
        config.timeout = Duration::from_secs(180);
        Vm::start(&config).expect("start QEMU")
    }
}

fn expect(vm: &Vm, pattern: &str, within: Duration) {
    if let Err(e) = vm.wait_for(pattern, within) {
        panic!("{e}\n--- console ---\n{}", vm.console());
    }
}

fn expect_exit(vm: &mut Vm) {
    if let Err(e) = vm.wait_exit(SHUTDOWN) {
        panic!("{e}\n--- console ---\n{}", vm.console());
    }
}

/// `"phase": "<phase>"` … `"boottime_us": <n>` in the record's JSON.
fn stamp_us(json: &str, phase: &str) -> Option<u64> {
    let at = json.find(&format!("\"phase\": \"{phase}\""))?;
    let rest = &json[at..];
    let rest = &rest[rest.find("\"boottime_us\":")? + "\"boottime_us\":".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `roothash=` with its last hex digit changed.
fn flipped(cmdline: &str) -> String {
    let mut out = cmdline.trim_end().to_owned();
    let last = out.pop().expect("non-empty cmdline");
    out.push(if last == '0' { '1' } else { '0' });
    out
}

/// Boots `cmdline`, which stage 1 must refuse: liftoff's fatal line holds
/// every one of `needles`, the failure action reboots, and the probe never
/// runs. Returns the console.
fn expect_stage1_failure(setup: &Setup, cmdline: &str, needles: &[&str]) -> String {
    let mut vm = setup.boot(cmdline);
    expect(&vm, "failure action: reboot in 0s", BOOT);
    let console = vm.console();
    assert!(
        console
            .lines()
            .any(|l| l.contains("liftoff: fatal: stage 1 failed")
                && needles.iter().all(|n| l.contains(n))),
        "no stage 1 failure with {needles:?} from liftoff:\n{console}"
    );
    expect(&vm, "reboot: Restarting system", SHUTDOWN);
    expect_exit(&mut vm);
    let console = vm.console();
    assert!(!console.contains("PROBE"), "the probe ran:\n{console}");
    console
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn roothash_boots_the_verity_root_and_runs_init() {
    let setup = setup();
    let mut vm = setup.boot(&setup.image.cmdline);
    expect(&vm, "PROBE done", BOOT);
    let console = vm.console();

    // QEMU's default CPU has no SSE4.2: crc32c_intel, planned only as a
    // soft dependency of erofs, refuses and the boot goes on without it.
    assert!(
        console.contains(
            "optional module not loaded (only a soft dependency): finit_module of crc32c_intel"
        ),
        "no warning about the optional crc32c_intel:\n{console}"
    );

    let root = console
        .lines()
        .find_map(|l| l.split_once("PROBE root=").map(|(_, r)| r.trim()))
        .unwrap_or_else(|| panic!("no PROBE root line:\n{console}"));
    let mut words = root.split(' ');
    let (source, fstype, options) = (words.next(), words.next(), words.next());
    assert!(
        matches!(source, Some("/dev/dm-0" | "/dev/mapper/root")),
        "/ is not the verity device: {root}"
    );
    assert_eq!(fstype, Some("erofs"), "{root}");
    let options = options.unwrap_or_default();
    assert!(options.split(',').any(|o| o == "ro"), "/ not ro: {root}");

    let stamps = console
        .lines()
        .find_map(|l| l.split_once("PROBE stamps=").map(|(_, r)| r.trim()))
        .unwrap_or_else(|| panic!("no PROBE stamps line:\n{console}"));
    let mut previous = 0;
    for phase in [
        "start",
        "modules",
        "devices",
        "verity",
        "root-mounted",
        "switch-root",
        "exec",
    ] {
        let us = stamp_us(stamps, phase)
            .unwrap_or_else(|| panic!("no {phase} stamp in the record: {stamps}"));
        assert!(us >= previous, "{phase} stamp goes backwards: {stamps}");
        previous = us;
    }
    let start = stamp_us(stamps, "start").unwrap_or_default();
    eprintln!(
        "stage 1: liftoff start to exec of {PROBE}: {:.1} ms guest time ({stamps})",
        (previous - start) as f64 / 1e3
    );
    assert!(stamps.contains("\"fstype\": \"erofs\""), "{stamps}");

    expect(&vm, "reboot: Power down", SHUTDOWN);
    expect_exit(&mut vm);
    let console = vm.console();
    for refused in ["Kernel panic", "fatal:", "failure action"] {
        assert!(!console.contains(refused), "{refused}:\n{console}");
    }
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn wrong_roothash_finds_no_partition_and_reboots() {
    let setup = setup();
    let cmdline = flipped(&setup.image.cmdline);
    let console = expect_stage1_failure(
        &setup,
        &format!("{cmdline} liftoff.device_timeout=2s"),
        &["timed out"],
    );
    assert!(!console.contains("Kernel panic"), "{console}");
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn wrong_roothash_on_the_real_hash_partition_is_refused_before_mapping() {
    let setup = setup();
    let cmdline = format!(
        "{} systemd.verity_root_hash=PARTUUID={}",
        flipped(&setup.image.cmdline),
        setup.image.verity_partuuid
    );
    let console = expect_stage1_failure(&setup, &cmdline, &["root hash mismatch"]);
    assert!(!console.contains("device-mapper: verity"), "{console}");
}

/// Boots `cmdline` and checks that the probe ran with `/` on the dm
/// device, read-only, as `fstype`, and that the guest powered off cleanly.
fn expect_probe(setup: &Setup, cmdline: &str, fstype: &str) -> String {
    let mut vm = setup.boot(cmdline);
    expect(&vm, "PROBE done", BOOT);
    let console = vm.console();
    let root = console
        .lines()
        .find_map(|l| {
            l.split_once("PROBE root=")
                .map(|(_, r)| r.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no PROBE root line:\n{console}"));
    let words: Vec<&str> = root.split(' ').collect();
    assert!(
        matches!(words.first(), Some(&("/dev/dm-0" | "/dev/mapper/root"))),
        "/ is not the verity device: {root}"
    );
    assert_eq!(words.get(1), Some(&fstype), "{root}");
    assert!(
        words
            .get(2)
            .is_some_and(|o| o.split(',').any(|o| o == "ro")),
        "/ not ro: {root}"
    );
    let stamps = console
        .lines()
        .find_map(|l| {
            l.split_once("PROBE stamps=")
                .map(|(_, r)| r.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no PROBE stamps line:\n{console}"));
    assert!(
        stamps.contains(&format!("\"fstype\": \"{fstype}\"")),
        "{stamps}"
    );
    expect(&vm, "reboot: Power down", SHUTDOWN);
    expect_exit(&mut vm);
    let console = vm.console();
    for refused in ["Kernel panic", "fatal:", "failure action"] {
        assert!(!console.contains(refused), "{refused}:\n{console}");
    }
    console
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn veritysetup_image_boots_by_roothash() {
    let setup = setup_with(|b| b.verity_tool(VerityTool::Veritysetup), &[]);
    expect_probe(&setup, &setup.image.cmdline, "erofs");
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn ext4_root_named_by_systemd_verity_root_keys_boots() {
    let setup = setup_with(|b| b.root_fs(RootFs::Ext4), &["ext4"]);
    assert_eq!(setup.image.root_fs, RootFs::Ext4);
    let cmdline = format!(
        "{} systemd.verity_root_data=PARTUUID={} systemd.verity_root_hash=PARTUUID={}",
        setup.image.cmdline, setup.image.data_partuuid, setup.image.verity_partuuid
    );
    // No rootfstype=: stage 1 probes ext4 through dm-verity.
    assert!(!cmdline.contains("rootfstype"));
    expect_probe(&setup, &cmdline, "ext4");
}

/// Flips one byte in every 4 KiB block busybox occupies on the root
/// partition (found by its first block, erofs storing files uncompressed
/// and block-aligned); returns how many blocks were corrupted.
fn corrupt_busybox(image: &BuiltImage) -> usize {
    use std::os::unix::fs::FileExt;
    const BLOCK: usize = 4096;
    let busybox = fs::read(qemu_tests::guest::DEFAULT_BUSYBOX).expect("busybox");
    let part = image.partition(1).expect("root partition");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image.path)
        .expect("open the image");
    let mut bytes = vec![0u8; usize::try_from(part.len()).expect("size")];
    file.read_exact_at(&mut bytes, part.offset())
        .expect("read the root partition");
    let first = &busybox[..BLOCK];
    let start = (0..bytes.len() / BLOCK)
        .map(|b| b * BLOCK)
        .find(|&at| &bytes[at..at + BLOCK] == first)
        .expect("busybox's first block on the root partition");
    let mut flipped = 0;
    for (k, block) in busybox.chunks_exact(BLOCK).enumerate() {
        let at = start + k * BLOCK;
        if bytes.get(at..at + BLOCK) != Some(block) {
            break;
        }
        let off = part.offset() + (at + 64) as u64;
        file.write_all_at(&[bytes[at + 64] ^ 0xff], off)
            .expect("flip a byte");
        flipped += 1;
    }
    file.sync_all().expect("sync the image");
    flipped
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn corrupted_root_block_restarts_before_init_runs() {
    let setup = setup();
    let flipped = corrupt_busybox(&setup.image);
    assert!(flipped > 100, "only {flipped} busybox blocks found");
    let mut vm = setup.boot(&setup.image.cmdline);
    expect(&vm, "is corrupted", BOOT);
    expect(&vm, "reboot: Restarting system", SHUTDOWN);
    expect_exit(&mut vm);
    let console = vm.console();
    assert!(
        console
            .lines()
            .any(|l| l.contains("device-mapper: verity") && l.contains("data block")),
        "no dm-verity corruption report:\n{console}"
    );
    assert!(!console.contains("PROBE"), "the probe ran:\n{console}");
    assert!(!console.contains("Kernel panic"), "{console}");
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn missing_hash_partition_times_out_naming_it() {
    let setup = setup_with(|b| b.omit_verity_partition(true), &[]);
    assert!(setup.image.partition(2).is_err(), "partition 2 was written");
    let wanted = format!(
        "root-x86-64-verity partition PARTUUID={}",
        setup.image.verity_partuuid
    );
    let console = expect_stage1_failure(
        &setup,
        &format!("{} liftoff.device_timeout=2s", setup.image.cmdline),
        &["timed out", &wanted],
    );
    assert!(!console.contains("device-mapper: verity"), "{console}");
}

/// Bottlerocket's line for the built image: the root and its hash
/// partition relative to it (`/PARTNROFF=1`), the table from the hash
/// partition's superblock, `root=/dev/dm-0`.
fn dm_mod_create_line(image: &BuiltImage) -> String {
    use std::os::unix::fs::FileExt;
    use verity::superblock::Superblock;
    use verity::table::{CorruptionMode, TableOptions, VerityTable};
    let part = image.partition(2).expect("hash partition");
    let mut head = vec![0u8; 4096];
    fs::File::open(&image.path)
        .and_then(|f| f.read_exact_at(&mut head, part.offset()))
        .expect("read the verity superblock");
    let sb = Superblock::parse(&head).expect("verity superblock");
    let root_digest = (0..image.root_hash.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&image.root_hash[i..i + 2], 16).expect("hex"))
        .collect();
    let table = VerityTable {
        hash_type: sb.hash_type,
        data_device: format!("PARTUUID={}", image.data_partuuid),
        hash_device: format!("PARTUUID={}/PARTNROFF=1", image.data_partuuid),
        data_block_size: sb.data_block_size,
        hash_block_size: sb.hash_block_size,
        data_blocks: sb.data_blocks,
        hash_start_block: 1,
        algorithm: sb.algorithm,
        root_digest,
        salt: sb.salt.clone(),
        options: TableOptions {
            corruption: Some(CorruptionMode::Restart),
            ..TableOptions::default()
        },
    };
    format!(
        "root=/dev/dm-0 ro dm-mod.create=\"root,,,ro,0 {} verity {table}\" dm-mod.waitfor=PARTUUID={}",
        table.length_sectors(),
        image.data_partuuid
    )
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn dm_mod_create_bottlerocket_line_boots() {
    let setup = setup();
    let cmdline = dm_mod_create_line(&setup.image);
    let console = expect_probe(&setup, &cmdline, "erofs");
    assert!(
        console.contains("dm-mod.create= root is /dev/dm-0"),
        "liftoff did not create the device:\n{console}"
    );
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn dm_mod_create_with_wrong_digest_is_refused_before_mapping() {
    let setup = setup();
    let line = dm_mod_create_line(&setup.image);
    let hash = &setup.image.root_hash;
    expect_stage1_failure(
        &setup,
        &line.replace(hash.as_str(), &flipped(hash)),
        &["root hash mismatch for dm device root"],
    );
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn liftoff_on_the_verified_root_continues_as_stage_2() {
    let setup = setup();
    // The later init= wins over the probe the harness names.
    let mut vm = setup.boot(&format!("{} init=/sbin/init", setup.image.cmdline));
    expect(&vm, "stage 2: no units to start yet; idling", BOOT);
    let console = vm.console();
    // The second liftoff found itself on the verified root, read stage 1's
    // record, and did not run stage 1 again.
    assert!(
        console.contains("liftoff: stage 2 on /dev/dm-0 (erofs); stage 1: start "),
        "no stage 2 line with stage 1's record:\n{console}"
    );
    assert_eq!(
        console.matches("freed the initramfs").count(),
        1,
        "stage 1 ran more than once:\n{console}"
    );
    // Stage 2 is a working PID 1: ctrl-alt-delete reboots in order.
    vm.send_ctrl_alt_del().expect("QMP send-key");
    expect(&vm, "liftoff: sending SIGTERM to all processes", SHUTDOWN);
    expect(&vm, "reboot: Restarting system", SHUTDOWN);
    expect_exit(&mut vm);
    assert!(!vm.console().contains("Kernel panic"), "{}", vm.console());
}
