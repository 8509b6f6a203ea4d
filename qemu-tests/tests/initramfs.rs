//! `liftoff initramfs` end to end: the static liftoff builds a gzip
//! initramfs with a module from Debian's tree, and Debian's kernel unpacks
//! it and runs liftoff from it as PID 1.

use std::process::Command;
use std::time::Duration;

use qemu_tests::qemu::{KERNEL_FLAG_CONSOLE, KERNEL_FLAG_PANIC};
use qemu_tests::{Vm, VmConfig};

/// Kernel boot to liftoff's idle line (see pid1.rs): gunzipping the archive
/// adds a little under TCG.
const BOOT: Duration = Duration::from_secs(120);

#[test]
#[ignore = "boots QEMU: run by cargo xtask test"]
fn gzip_initramfs_built_by_liftoff_boots_to_idle() {
    let liftoff =
        qemu_tests::scenario::liftoff_bin().expect(qemu_tests::scenario::MISSING_LIFTOFF_BIN);
    let kernel = qemu_tests::fetch_kernel(&qemu_tests::cache_dir())
        .expect("kernel (cargo xtask test fetches it)");
    let dir = tempfile::Builder::new()
        .prefix("liftoff-qemu-")
        .tempdir()
        .expect("tempdir");
    let initrd = dir.path().join("initrd.img");

    // The default /init is the running binary (/proc/self/exe): the static
    // liftoff packs itself.
    let output = Command::new(&liftoff)
        .arg("initramfs")
        .arg("--output")
        .arg(&initrd)
        .arg("--modules-dir")
        .arg(&kernel.modules_dir)
        .args(["--module", "virtio_blk"])
        .output()
        .expect("run liftoff initramfs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "liftoff initramfs failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{stdout}");
    assert!(stdout.contains("(gzip)"), "{stdout}");
    assert!(stdout.contains("virtio_blk"), "{stdout}");
    let magic = std::fs::read(&initrd).expect("read the initramfs");
    assert_eq!(&magic[..2], &[0x1f, 0x8b], "gzip magic");

    let mut config = VmConfig::new(&kernel.vmlinuz, &initrd);
    config.append = format!("{KERNEL_FLAG_CONSOLE} {KERNEL_FLAG_PANIC}");
    config.run_dir = Some(dir.path().to_owned());
    config.timeout = Duration::from_secs(180);
    let vm = Vm::start(&config).expect("start QEMU");
    if let Err(e) = vm.wait_for("nothing to boot", BOOT) {
        panic!("{e}\n--- console ---\n{}", vm.console());
    }
    let console = vm.console();
    for refused in [
        "Initramfs unpacking failed",
        "Kernel panic",
        "Failed to execute /init",
    ] {
        assert!(!console.contains(refused), "{refused}:\n{console}");
    }
}
