//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use crate::cmd::{cargo, run as sh};
use crate::{XtaskError, build, deps, kernel};

/// Runs every check.
pub fn run() -> Result<(), XtaskError> {
    deps::ensure(deps::QEMU)?;
    let root = qemu_tests::workspace_root();

    // 1. Static checks.
    sh(cargo()
        .current_dir(&root)
        .args(["fmt", "--all", "--", "--check"]))?;
    sh(cargo().current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    sh(cargo()
        .current_dir(&root)
        .env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--workspace", "--no-deps", "--locked", "--quiet"]))?;

    // 2. Host tests (the QEMU scenarios are #[ignore]d here).
    sh(cargo()
        .current_dir(&root)
        .args(["test", "--workspace", "--locked"]))?;

    // 3. QEMU scenarios, against the static binary and Debian's kernel.
    let liftoff = build::static_liftoff()?;
    eprintln!(
        "xtask: static liftoff is {} bytes (stripped)",
        build::size_of(&liftoff)
    );
    let kernel = kernel()?;
    eprintln!("xtask: guest kernel {}", kernel.version);
    sh(cargo()
        .current_dir(&root)
        .env("LIFTOFF_BIN", &liftoff)
        .args([
            "test",
            "--locked",
            "--package",
            "qemu-tests",
            "--test",
            "*",
            "--",
            "--ignored",
        ]))
}
