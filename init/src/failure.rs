//! The failure action: PID 1 never exits and never lets the kernel panic.
//!
//! A fatal error, or a panic caught by the hook installed here, is logged,
//! the disks are synced, and after the configured delay the machine reboots,
//! powers off or halts on purpose (kata agent `main.rs`, sync + reboot).

use std::sync::Mutex;
use std::time::Duration;

use kernel_cmdline::FailurePolicy;
use log::{error, warn};
use nix::sys::reboot::reboot;
use nix::unistd::sync;

use crate::shutdown::Power;

/// The policy the panic hook uses: the default until the command line has
/// been read, the operator's after.
static POLICY: Mutex<Option<FailurePolicy>> = Mutex::new(None);

/// Records the policy from the command line for the panic hook.
pub fn set_policy(policy: FailurePolicy) {
    *POLICY.lock().unwrap_or_else(|e| e.into_inner()) = Some(policy);
}

fn policy() -> FailurePolicy {
    POLICY
        .lock()
        .map(|p| *p)
        .unwrap_or_else(|e| *e.into_inner())
        .unwrap_or_default()
}

/// Routes any panic into the failure action instead of an abort, which would
/// kill PID 1 and panic the kernel.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        crate::logger::attach();
        error!("internal error: {info}");
        run(&policy());
    }));
}

/// Runs the failure action after a fatal `error`. Never returns.
pub fn fail(policy: &FailurePolicy, fatal: &dyn std::error::Error) -> ! {
    // Open the log sinks if the error came before PID 1 did: the
    // initramfs's own /dev/console and /dev/kmsg nodes serve without devtmpfs.
    crate::logger::attach();
    error!("fatal: {}", chain(fatal));
    run(policy)
}

/// An error with its causes, on one line: `a: b: c`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn run(policy: &FailurePolicy) -> ! {
    let power = Power::from(policy.action);
    warn!(
        "failure action: {} in {}",
        power.name(),
        describe(policy.delay)
    );
    sync();
    // The delay lets a person read the console before the screen clears.
    std::thread::sleep(policy.delay);
    sync();
    power_off(power)
}

/// The last step of every path that ends liftoff: reboot(2). If even that
/// fails (it can only with EPERM, outside a real boot), PID 1 stays, idle.
pub fn power_off(power: Power) -> ! {
    let Err(e) = reboot(power.mode());
    error!("reboot(2) for {} failed: {e}; idling", power.name());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn describe(delay: Duration) -> String {
    if delay.subsec_millis() == 0 {
        format!("{}s", delay.as_secs())
    } else {
        format!("{}ms", delay.as_millis())
    }
}
