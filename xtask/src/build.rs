//! Builds the static binaries the QEMU guests carry: `liftoff` (the
//! initramfs's `/init` and the root's `/sbin/init`) and `host-ctr` (the
//! host containers' client, `/usr/bin/host-ctr`).

use std::path::PathBuf;

use qemu_tests::paths::workspace_root;

use crate::XtaskError;
use crate::cmd::{cargo, run};

/// The target triple the static binaries are built for.
///
/// The gnu target with `+crt-static` gives a fully static binary with the
/// toolchain the machines have (the musl target cannot be installed there).
/// `--target` is what keeps the flag off build scripts and proc macros,
/// which cannot be linked statically.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds `liftoff` in release mode, statically linked; returns its path.
pub fn static_liftoff() -> Result<PathBuf, XtaskError> {
    static_binary("liftoff", "liftoff")
}

/// Builds `host-ctr` (package `host-ctr`, default features: its containerd
/// client) in release mode, statically linked; returns its path. The guest
/// root has no libraries of its own for it to load.
pub fn static_host_ctr() -> Result<PathBuf, XtaskError> {
    static_binary("host-ctr", "host-ctr")
}

/// Builds `boot-probe` (the measuring point of `cargo xtask bench boot`)
/// the same way; returns its path.
pub fn static_boot_probe() -> Result<PathBuf, XtaskError> {
    static_binary("boot-probe", "boot-probe")
}

/// Builds binary `bin` of `package` in release mode for [`TARGET`] with
/// `+crt-static`, checks that the result is static, and returns its path.
fn static_binary(package: &str, bin: &str) -> Result<PathBuf, XtaskError> {
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
            package,
            "--bin",
            bin,
            "--target",
            TARGET,
        ]))?;
    // Where cargo put it: CARGO_TARGET_DIR (relative to the workspace, as
    // cargo reads it) when set, `target/` otherwise.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target_dir.join(TARGET).join("release").join(bin);
    qemu_tests::ensure_static(&path).map_err(|source| XtaskError::NotStatic {
        binary: bin.to_owned(),
        source,
    })?;
    Ok(path)
}

/// Size of a file in bytes, for reports.
pub fn size_of(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
