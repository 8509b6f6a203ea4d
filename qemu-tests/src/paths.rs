//! Where the workspace and the harness's download cache live.
//!
//! Both are derived from this crate's manifest directory at compile time, so
//! they do not depend on the current directory a test runs in.

use std::path::PathBuf;

/// The workspace root: the parent of this crate's folder.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match manifest_dir.parent() {
        Some(parent) => parent.to_path_buf(),
        // A manifest directory is always some folder's child; fall back to it
        // rather than panic should that ever change.
        None => manifest_dir,
    }
}

/// The cache for downloaded and unpacked artefacts (the kernel package):
/// `<workspace>/target/liftoff-cache`. It sits under `target/` so that
/// `cargo clean` removes it and git ignores it.
pub fn cache_dir() -> PathBuf {
    workspace_root().join("target").join("liftoff-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file(), "{}", root.display());
        assert!(root.join("qemu-tests").is_dir());
    }

    #[test]
    fn cache_dir_is_under_target() {
        assert_eq!(cache_dir(), workspace_root().join("target/liftoff-cache"));
    }
}
