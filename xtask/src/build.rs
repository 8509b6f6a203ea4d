//! Builds the static `liftoff` binary that goes into initramfs images.

use std::path::PathBuf;

use qemu_tests::paths::workspace_root;

use crate::XtaskError;
use crate::cmd::{cargo, run};

/// The target triple liftoff is built for.
///
/// The gnu target with `+crt-static` gives a fully static binary with the
/// toolchain the machines have (the musl target cannot be installed there).
/// `--target` is what keeps the flag off build scripts and proc macros,
/// which cannot be linked statically.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds `liftoff` in release mode, statically linked; returns its path.
pub fn static_liftoff() -> Result<PathBuf, XtaskError> {
    run(cargo()
        .current_dir(workspace_root())
        .env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "-C target-feature=+crt-static",
        )
        .args([
            "build",
            "--quiet",
            "--release",
            "--locked",
            "--package",
            "liftoff",
            "--bin",
            "liftoff",
            "--target",
            TARGET,
        ]))?;
    // Where cargo put it: CARGO_TARGET_DIR (relative to the workspace, as
    // cargo reads it) when set, `target/` otherwise.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target_dir.join(TARGET).join("release").join("liftoff");
    qemu_tests::ensure_static(&path).map_err(XtaskError::NotStatic)?;
    Ok(path)
}

/// Size of a file in bytes, for reports.
pub fn size_of(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
