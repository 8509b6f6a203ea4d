//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use crate::cmd::{cargo, run as sh};
use crate::{XtaskError, build, deps, kernel};

/// Runs every check.
pub fn run() -> Result<(), XtaskError> {
    deps::ensure(&[deps::BUILD, deps::QEMU, deps::TESTS])?;
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

    // 2. Everything the tests need: the static binaries the QEMU scenarios
    // boot (liftoff) and put on the guests' roots (host-ctr), and Debian's
    // kernel.
    let liftoff = build::static_liftoff()?;
    eprintln!(
        "xtask: static liftoff is {} bytes (stripped)",
        build::size_of(&liftoff)
    );
    let host_ctr = build::static_host_ctr()?;
    eprintln!(
        "xtask: static host-ctr is {} bytes (stripped)",
        build::size_of(&host_ctr)
    );
    let kernel = kernel()?;
    eprintln!("xtask: guest kernel {}", kernel.version);

    // 3. Every test in one run: host unit tests, the comparisons with
    // veritysetup and the QEMU scenarios (the last two are #[ignore]d in a
    // plain `cargo test` because they need what steps 1-2 installed).
    sh(cargo()
        .current_dir(&root)
        .env(qemu_tests::scenario::LIFTOFF_BIN_ENV, &liftoff)
        .env(qemu_tests::scenario::HOST_CTR_BIN_ENV, &host_ctr)
        .args(["test", "--workspace", "--locked", "--", "--include-ignored"]))
}
