//! The repository's SELinux policy (`selinux/`), compiled for guests.
//!
//! [`compile_policy`] runs `secilc` over every `*.cil` file of a policy
//! folder (sorted by name) and writes a binary policy; the guests built
//! with [`crate::GuestRoot::selinux`] carry it at [`GUEST_POLICY`], with
//! [`GUEST_CONFIG`] naming it and the root labelled from
//! [`file_contexts`]. Nothing here needs root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::workspace_root;

/// The CIL compiler (Debian package secilc).
pub const SECILC: &str = "secilc";
/// The binary policy format version the guests carry: Linux 6.1 reads up
/// to 33 (`/sys/fs/selinux/policyvers`).
pub const POLICY_VERSION: u32 = 33;
/// The policy type `selinux/config` names.
pub const POLICY_TYPE: &str = "liftoff";
/// Where a guest's policy goes on its root.
pub const GUEST_POLICY: &str = "/etc/selinux/liftoff/policy/policy.33";
/// Where a guest's `selinux/config` goes on its root.
pub const GUEST_CONFIG: &str = "/etc/selinux/config";
/// The image's SELinux switches on its root (`allow_permissive`).
pub const GUEST_SETTINGS: &str = "/etc/liftoff/selinux.toml";
/// Guest kernel flag: Debian's kernel builds SELinux in but enables
/// AppArmor by default; this picks SELinux as the major LSM.
pub const KERNEL_FLAG_SELINUX: &str = "security=selinux";

/// What failed while compiling a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy folder could not be listed.
    #[error("cannot list {}", dir.display())]
    List {
        /// The folder.
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The folder holds no `*.cil` file.
    #[error("{} holds no .cil file", dir.display())]
    Empty {
        /// The folder.
        dir: PathBuf,
    },
    /// secilc could not be started.
    #[error("cannot run {SECILC} (apt-get install secilc; cargo xtask test installs it)")]
    Spawn(#[source] std::io::Error),
    /// secilc refused the policy; its messages name the statement.
    #[error("{SECILC} refused the policy in {}: {stderr}", dir.display())]
    Refused {
        /// The folder.
        dir: PathBuf,
        /// secilc's messages.
        stderr: String,
    },
}

/// `<workspace>/selinux/policy`: the policy's CIL files.
#[must_use]
pub fn policy_dir() -> PathBuf {
    workspace_root().join("selinux").join("policy")
}

/// `<workspace>/selinux/file_contexts`: the root's labels.
#[must_use]
pub fn file_contexts() -> PathBuf {
    workspace_root().join("selinux").join("file_contexts")
}

/// `<workspace>/selinux/config`: `/etc/selinux/config` of an image.
#[must_use]
pub fn config() -> PathBuf {
    workspace_root().join("selinux").join("config")
}

/// The `*.cil` files of `dir`, sorted by name.
///
/// # Errors
/// [`PolicyError::List`] or [`PolicyError::Empty`].
pub fn cil_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let list = |source| PolicyError::List {
        dir: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(list)? {
        let path = entry.map_err(list)?.path();
        if path.extension().is_some_and(|e| e == "cil") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(PolicyError::Empty {
            dir: dir.to_owned(),
        });
    }
    Ok(files)
}

/// `secilc -c 33 -o <out> -f /dev/null <dir>/*.cil`: compiles the policy
/// in `dir` to the binary policy `out`. secilc checks every `neverallow`
/// while it compiles, so a policy that breaches one is refused here.
///
/// # Errors
/// No CIL files, secilc missing, or secilc refusing the policy.
pub fn compile_policy(dir: &Path, out: &Path) -> Result<(), PolicyError> {
    let files = cil_files(dir)?;
    let output = Command::new(SECILC)
        .arg(format!("--policyvers={POLICY_VERSION}"))
        .arg("-o")
        .arg(out)
        // File contexts come from selinux/file_contexts, not from the CIL.
        .args(["-f", "/dev/null"])
        .args(&files)
        .output()
        .map_err(PolicyError::Spawn)?;
    if !output.status.success() {
        let mut stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        stderr.push_str(&String::from_utf8_lossy(&output.stdout));
        return Err(PolicyError::Refused {
            dir: dir.to_owned(),
            stderr: stderr.trim().to_owned(),
        });
    }
    Ok(())
}

/// The types `file_contexts` text uses (the third field of each context),
/// for checking them against the policy.
#[must_use]
pub fn file_context_types(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|context| context.split(':').nth(2))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_context_types_skip_comments_and_file_kinds() {
        let text =
            "# c\n/.* system_u:object_r:os_t\n/sbin/init -- system_u:object_r:init_exec_t\n\n";
        assert_eq!(file_context_types(text), ["os_t", "init_exec_t"]);
    }
}
