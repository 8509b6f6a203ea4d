//! Stage 1 end to end: liftoff in an initramfs built by `liftoff
//! initramfs` finds a verity-protected erofs root by `roothash=` alone,
//! mounts it through dm-verity, switches root and executes `init=`.
//!
//! The root holds a static busybox and `/sbin/probe`, which prints the
//! mount of `/` and liftoff's boot record, then powers off:
//!
//! * (a) the probe runs, `/` is the dm-verity device, read-only, erofs,
//!   and the record has every stamp from `start` to `exec`; the verity
//!   device reads ahead 2048 KiB (`liftoff.boot_read_ahead_kb=`'s
//!   default; the disk keeps the kernel's 128) and the record says what
//!   to restore;
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
//!   `liftoff.boot_read_ahead_kb=off` leaves the kernel's read-ahead;
//! * (f) bytes flipped in every block of busybox on the root partition:
//!   dm-verity catches the first read, the kernel restarts
//!   (restart_on_corruption) and the probe never runs;
//! * (g) no hash partition: liftoff's device timeout names the missing
//!   root-x86-64-verity partition and its PARTUUID, and reboots;
//! * (h) Bottlerocket's `dm-mod.create=` line (`root=/dev/dm-0`, the hash
//!   device `PARTUUID=<data>/PARTNROFF=1`) boots through liftoff's own
//!   dm-verity device, with `liftoff.boot_read_ahead_kb=512`;
//! * (i) the same line with a wrong digest: liftoff refuses the root hash
//!   mismatch before creating the dm device, and reboots;
//! * (j) `init=/sbin/init`: liftoff on the verified root continues as
//!   stage 2 without running stage 1 again (no unit files: boot completes
//!   at once), and ctrl-alt-delete reboots in order. units.rs covers
//!   stage 2 with units.

use std::fs;
use std::time::Duration;

use qemu_tests::BuiltImage;
use qemu_tests::guest_root::{Guest, GuestRoot, after, expect, expect_exit, refute};
use qemu_tests::image::{ImageBuilder, RootFs, VerityTool};

/// Kernel start to the probe's output or liftoff's failure action: a few
/// seconds of guest time, with a wide margin for TCG on a loaded machine.
const BOOT: Duration = Duration::from_secs(120);
/// From the failure action or the probe's poweroff to QEMU's exit.
const SHUTDOWN: Duration = Duration::from_secs(60);
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
for dev in /sys/block/dm-*; do
    echo "PROBE read_ahead=$(/bin/busybox cat $dev/queue/read_ahead_kb) vda=$(/bin/busybox cat /sys/block/vda/queue/read_ahead_kb)"
done
echo "PROBE done"
/bin/busybox poweroff -f
"#;

/// The root: busybox, the probe as `init=`, liftoff as `/sbin/init`.
fn setup() -> Guest {
    setup_with(|b| b, &[])
}

/// [`setup`] with the image builder adjusted and more modules in the
/// initramfs.
fn setup_with(
    image: impl FnOnce(ImageBuilder) -> ImageBuilder + 'static,
    modules: &[&str],
) -> Guest {
    GuestRoot::new()
        .script(PROBE, PROBE_SCRIPT)
        .init(PROBE)
        .modules(modules)
        .image(image)
        .build()
        .expect("build the guest")
}

/// Boots with `cmdline` naming the root.
fn boot(setup: &Guest, cmdline: &str) -> qemu_tests::Vm {
    setup.boot_cmdline(cmdline, "boot").expect("start QEMU")
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
fn expect_stage1_failure(setup: &Guest, cmdline: &str, needles: &[&str]) -> String {
    let mut vm = boot(setup, cmdline);
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
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    assert!(!console.contains("PROBE"), "the probe ran:\n{console}");
    console
}

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn roothash_boots_the_verity_root_and_runs_init() {
    let setup = setup();
    let mut vm = boot(&setup, &setup.image.cmdline);
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

    let root =
        after(&console, "PROBE root=").unwrap_or_else(|| panic!("no PROBE root line:\n{console}"));
    let mut words = root.split(' ');
    let (source, fstype, options) = (words.next(), words.next(), words.next());
    assert!(
        matches!(source, Some("/dev/dm-0" | "/dev/mapper/root")),
        "/ is not the verity device: {root}"
    );
    assert_eq!(fstype, Some("erofs"), "{root}");
    let options = options.unwrap_or_default();
    assert!(options.split(',').any(|o| o == "ro"), "/ not ro: {root}");

    let stamps = after(&console, "PROBE stamps=")
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
    // The boot read-ahead: the verity device's, not the disk's, and the
    // kernel's value kept for stage 2 to restore.
    assert_eq!(
        after(&console, "PROBE read_ahead="),
        Some("2048 vda=128"),
        "{console}"
    );
    assert!(
        stamps.contains("\"kernel_kb\": 128") && stamps.contains("\"boot_kb\": 2048"),
        "{stamps}"
    );
    assert!(
        console.contains("is 2048 KiB until boot completes (the kernel's: 128 KiB)"),
        "{console}"
    );

    expect(&vm, "reboot: Power down", SHUTDOWN);
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    refute(&console, &["Kernel panic", "fatal:", "failure action"]);
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
fn expect_probe(setup: &Guest, cmdline: &str, fstype: &str) -> String {
    let mut vm = boot(setup, cmdline);
    expect(&vm, "PROBE done", BOOT);
    let console = vm.console();
    let root =
        after(&console, "PROBE root=").unwrap_or_else(|| panic!("no PROBE root line:\n{console}"));
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
    let stamps = after(&console, "PROBE stamps=")
        .unwrap_or_else(|| panic!("no PROBE stamps line:\n{console}"));
    assert!(
        stamps.contains(&format!("\"fstype\": \"{fstype}\"")),
        "{stamps}"
    );
    expect(&vm, "reboot: Power down", SHUTDOWN);
    expect_exit(&mut vm, SHUTDOWN);
    let console = vm.console();
    refute(&console, &["Kernel panic", "fatal:", "failure action"]);
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
        "{} systemd.verity_root_data=PARTUUID={} systemd.verity_root_hash=PARTUUID={} liftoff.boot_read_ahead_kb=off",
        setup.image.cmdline, setup.image.data_partuuid, setup.image.verity_partuuid
    );
    // No rootfstype=: stage 1 probes ext4 through dm-verity.
    assert!(!cmdline.contains("rootfstype"));
    let console = expect_probe(&setup, &cmdline, "ext4");
    // off: the kernel's read-ahead, and nothing for stage 2 to restore.
    assert_eq!(
        after(&console, "PROBE read_ahead="),
        Some("128 vda=128"),
        "{console}"
    );
    let stamps = after(&console, "PROBE stamps=").unwrap_or_default();
    assert!(stamps.contains("\"read_ahead\": null"), "{stamps}");
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
    let mut vm = boot(&setup, &setup.image.cmdline);
    expect(&vm, "is corrupted", BOOT);
    expect(&vm, "reboot: Restarting system", SHUTDOWN);
    expect_exit(&mut vm, SHUTDOWN);
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
    let cmdline = format!(
        "{} liftoff.boot_read_ahead_kb=512",
        dm_mod_create_line(&setup.image)
    );
    let console = expect_probe(&setup, &cmdline, "erofs");
    assert_eq!(
        after(&console, "PROBE read_ahead="),
        Some("512 vda=128"),
        "{console}"
    );
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
    let mut vm = boot(&setup, &format!("{} init=/sbin/init", setup.image.cmdline));
    // A root without unit files: stage 2 has nothing to wait for.
    expect(&vm, "boot complete at", BOOT);
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
    expect_exit(&mut vm, SHUTDOWN);
    assert!(!vm.console().contains("Kernel panic"), "{}", vm.console());
}
