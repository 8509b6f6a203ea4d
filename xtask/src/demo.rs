//! `cargo xtask demo`: boot liftoff in QEMU and show what it does.
//!
//! 1. build the static liftoff and an initramfs holding it as `/init`;
//! 2. boot Debian's kernel with it under TCG, the console on this terminal;
//! 3. once liftoff idles, press ctrl-alt-delete through QMP and watch the
//!    orderly reboot end the run;
//! 4. print a timing report from the boot stamps liftoff logged.

use std::time::{Duration, Instant};

use qemu_tests::qemu::{KERNEL_FLAG_CONSOLE, KERNEL_FLAG_PANIC};
use qemu_tests::{Vm, VmConfig};

use crate::{XtaskError, build, deps, kernel};

/// The demo's guest command line: debug logging shows every mount and the
/// kernel's mount table.
fn append() -> String {
    format!("{KERNEL_FLAG_CONSOLE} {KERNEL_FLAG_PANIC} liftoff.log=debug")
}

/// Runs the demo.
pub fn run() -> Result<(), XtaskError> {
    deps::ensure(&[deps::BUILD, deps::QEMU])?;
    let liftoff = build::static_liftoff()?;
    let kernel = kernel()?;
    let out = qemu_tests::workspace_root()
        .join("target")
        .join("liftoff-demo");
    std::fs::create_dir_all(&out).map_err(|source| XtaskError::Spawn {
        command: format!("mkdir {}", out.display()),
        source,
    })?;
    let initrd = out.join("initramfs.cpio");
    qemu_tests::liftoff_initramfs(&liftoff, &initrd).map_err(XtaskError::Initramfs)?;

    eprintln!(
        "xtask: booting Debian {} with liftoff as /init (TCG, serial console below)\n",
        kernel.version
    );
    let mut config = VmConfig::new(&kernel.vmlinuz, &initrd);
    config.append = append();
    config.echo_console = true;
    config.run_dir = Some(out.clone());
    let started = Instant::now();
    let mut vm = Vm::start(&config).map_err(XtaskError::Qemu)?;
    vm.wait_for("nothing to boot", Duration::from_secs(90))
        .map_err(XtaskError::Qemu)?;
    let to_idle = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    eprintln!("\nxtask: pressing ctrl-alt-delete through QMP\n");
    vm.send_ctrl_alt_del().map_err(XtaskError::Qemu)?;
    vm.wait_exit(Duration::from_secs(60))
        .map_err(XtaskError::Qemu)?;
    let total = started.elapsed();

    let console = vm.console();
    let stamps = console
        .lines()
        .find_map(|l| {
            l.split_once("liftoff: boot stamps: ")
                .map(|(_, s)| s.trim().to_owned())
        })
        .unwrap_or_else(|| "(not found on the console)".into());
    let rebooted = console.contains("reboot: Restarting system");
    eprintln!(
        "\n== liftoff demo report ==\n\
         kernel              {}\n\
         liftoff binary      {} bytes, static\n\
         initramfs           {} bytes (uncompressed cpio)\n\
         boot stamps         {stamps}\n\
         wall time to idle   {:.1}s (QEMU start to 'nothing to boot', TCG)\n\
         wall time in total  {:.1}s\n\
         orderly reboot      {}\n\
         console log         {}",
        kernel.version,
        build::size_of(&liftoff),
        build::size_of(&initrd),
        to_idle.as_secs_f64(),
        total.as_secs_f64(),
        if rebooted {
            "yes (kernel: 'reboot: Restarting system')"
        } else {
            "NOT SEEN"
        },
        vm.console_log().display(),
    );
    Ok(())
}
