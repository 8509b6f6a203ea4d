//! Shared set-up for the QEMU scenarios: the static liftoff that
//! `cargo xtask test` built (its path in `LIFTOFF_BIN`), Debian's kernel from
//! the cache, and an initramfs per scenario.

use std::path::PathBuf;
use std::time::Duration;

use qemu_tests::qemu::{KERNEL_FLAG_CONSOLE, KERNEL_FLAG_PANIC};
use qemu_tests::{Vm, VmConfig};
use tempfile::TempDir;

/// A booted guest and the folder its files live in (kept alive with it).
pub struct Guest {
    pub vm: Vm,
    _dir: TempDir,
}

/// The static liftoff under test.
pub fn liftoff_bin() -> PathBuf {
    qemu_tests::scenario::liftoff_bin().expect(qemu_tests::scenario::MISSING_LIFTOFF_BIN)
}

/// Boots liftoff as `/init` with `extra` appended to the harness's kernel
/// flags (`console=ttyS0 panic=-1`, see qemu-tests/src/qemu.rs).
pub fn boot(extra: &str) -> Guest {
    let kernel = qemu_tests::fetch_kernel(&qemu_tests::cache_dir())
        .expect("kernel (cargo xtask test fetches it)");
    let dir = tempfile::Builder::new()
        .prefix("liftoff-qemu-")
        .tempdir()
        .expect("tempdir");
    let initrd = dir.path().join("initramfs.cpio");
    qemu_tests::liftoff_initramfs(&liftoff_bin(), &initrd).expect("initramfs");
    let mut config = VmConfig::new(&kernel.vmlinuz, &initrd);
    config.append = format!("{KERNEL_FLAG_CONSOLE} {KERNEL_FLAG_PANIC} {extra}");
    config.run_dir = Some(dir.path().to_owned());
    config.timeout = Duration::from_secs(180);
    let vm = Vm::start(&config).expect("start QEMU");
    Guest { vm, _dir: dir }
}

impl Guest {
    /// Waits for `pattern` on the console, failing with the console tail.
    pub fn expect(&self, pattern: &str, within: Duration) {
        if let Err(e) = self.vm.wait_for(pattern, within) {
            panic!("{e}\n--- console ---\n{}", self.vm.console());
        }
    }

    /// Waits for QEMU to exit (the guest rebooted or powered off).
    pub fn expect_exit(&mut self, within: Duration) {
        if let Err(e) = self.vm.wait_exit(within) {
            panic!("{e}\n--- console ---\n{}", self.vm.console());
        }
    }

    /// Asserts that the console never showed `pattern`.
    pub fn refute(&self, pattern: &str) {
        let console = self.vm.console();
        assert!(
            !console.contains(pattern),
            "unexpected {pattern:?} on the console:\n{console}"
        );
    }
}
