//! What the QEMU scenarios in `tests/` share: the static liftoff under
//! test (and the static host-ctr the host-container guests carry), and an
//! initramfs built by liftoff the way an image build would.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable `cargo xtask test` sets to the static liftoff.
pub const LIFTOFF_BIN_ENV: &str = "LIFTOFF_BIN";

/// What a scenario says when it runs without `cargo xtask test`.
pub const MISSING_LIFTOFF_BIN: &str = "LIFTOFF_BIN is not set: the QEMU scenarios run through `cargo xtask test`, which builds the static binary";

/// The static liftoff under test, if `cargo xtask test` named one.
pub fn liftoff_bin() -> Option<PathBuf> {
    std::env::var_os(LIFTOFF_BIN_ENV).map(PathBuf::from)
}

/// The environment variable `cargo xtask test` sets to the static
/// `host-ctr`, which [`crate::GuestRoot::with_host_containers`] stages.
pub const HOST_CTR_BIN_ENV: &str = "HOST_CTR_BIN";

/// What a host-container scenario says when it runs without `cargo xtask
/// test`.
pub const MISSING_HOST_CTR_BIN: &str = "HOST_CTR_BIN is not set: the host-container QEMU scenarios run through `cargo xtask test`, which builds the static host-ctr";

/// The static host-ctr for the guests, if `cargo xtask test` named one.
pub fn host_ctr_bin() -> Option<PathBuf> {
    std::env::var_os(HOST_CTR_BIN_ENV).map(PathBuf::from)
}

/// `liftoff initramfs` failed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// It could not be started.
    #[error("cannot run {liftoff}")]
    Spawn {
        /// The binary.
        liftoff: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited unsuccessfully.
    #[error("`{liftoff} initramfs` failed ({status}): {output}")]
    Failed {
        /// The binary.
        liftoff: PathBuf,
        /// How it ended.
        status: std::process::ExitStatus,
        /// Its stderr and stdout.
        output: String,
    },
}

/// Runs `liftoff initramfs --output out --modules-dir modules_dir
/// --module …` (gzip, liftoff itself as `/init`); returns its summary.
pub fn build_initramfs(
    liftoff: &Path,
    modules_dir: &Path,
    modules: &[&str],
    out: &Path,
) -> Result<String, ScenarioError> {
    let mut command = Command::new(liftoff);
    command
        .arg("initramfs")
        .arg("--output")
        .arg(out)
        .arg("--modules-dir")
        .arg(modules_dir);
    for module in modules {
        command.args(["--module", module]);
    }
    let output = command.output().map_err(|source| ScenarioError::Spawn {
        liftoff: liftoff.to_owned(),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(ScenarioError::Failed {
            liftoff: liftoff.to_owned(),
            status: output.status,
            output: format!("{}{stdout}", String::from_utf8_lossy(&output.stderr)),
        })
    }
}
