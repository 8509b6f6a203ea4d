//! Shared set-up for the tests that read the Debian kernel `cargo xtask
//! test` caches (`qemu-tests` fetches it into `target/liftoff-cache`). The
//! path is computed here rather than borrowed from `qemu-tests`, which itself
//! depends on this crate.

use std::fs;
use std::path::PathBuf;

/// Why these tests are ignored by a plain `cargo test`.
const NEEDS_KERNEL: &str = "needs the cached Debian kernel: run by cargo xtask test";

/// `<workspace>/target/liftoff-cache`, as `qemu_tests::cache_dir()` says.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("liftoff-cache")
}

/// `(version, lib/modules/<version>)` of the newest cached kernel.
pub fn cached_tree() -> (String, PathBuf) {
    let kernels = cache_dir().join("kernel");
    let mut found: Vec<(String, PathBuf)> = fs::read_dir(&kernels)
        .unwrap_or_else(|e| panic!("{}: {e}; {NEEDS_KERNEL}", kernels.display()))
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.to_owned();
            let tree = entry.path().join("lib/modules").join(&version);
            tree.join("modules.order")
                .is_file()
                .then_some((version, tree))
        })
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no kernel in {}; {NEEDS_KERNEL}", kernels.display()))
}
