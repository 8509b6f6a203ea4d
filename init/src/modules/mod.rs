//! Kernel module loading for stage 1, without modprobe, depmod or udev.
//!
//! Plan, then execute (STYLE.md, "Sans-IO core, thin syscall shell"):
//!
//! 1. [`modinfo`] (pure) reads a module's `.modinfo` ELF section:
//!    `depends=`, `softdep=`, `alias=`, `vermagic=`; and the kernel's
//!    `modules.builtin`, `modules.builtin.modinfo` and `/proc/modules`.
//! 2. [`index`] maps module names to files: either the precomputed
//!    `modules.liftoff` the initramfs builder writes (no ELF parsing at
//!    boot), or a walk of the tree that takes names from file names and
//!    reads `.modinfo` only for the modules a plan needs.
//! 3. [`plan`] (pure) turns the requested names into a dependency closure
//!    and a schedule of *waves*: every module of a wave has all its
//!    dependencies loaded (or built in) by the waves before it.
//! 4. [`load`] carries the waves out through the [`load::ModuleSys`] seam,
//!    loading a wave's modules in parallel on worker threads, and records
//!    how long each took.
//!
//! [`compress`] decompresses `.ko.xz` and `.ko.zst` in user space: the
//! kernel only learned to do it itself (`MODULE_INIT_COMPRESSED_FILE`) in
//! Linux 6.4, after Debian 12's 6.1.
//!
//! Left out: modprobe.d configuration (options, blacklists, install
//! commands), wildcard alias matching (device modaliases are udev's job),
//! and unloading.

pub mod compress;
pub mod index;
pub mod load;
pub mod modinfo;
pub mod plan;

use std::fmt;

use serde::Serialize;

/// The precomputed index the initramfs builder writes next to the
/// modules, `lib/modules/<version>/modules.liftoff` (see [`index`]).
pub const INDEX_FILE: &str = "modules.liftoff";
/// Built-in modules as paths, one a line (kbuild's `modules.builtin`).
pub const BUILTIN_FILE: &str = "modules.builtin";
/// `.modinfo` of the built-in modules, `name.key=value\0` records.
pub const BUILTIN_MODINFO_FILE: &str = "modules.builtin.modinfo";
/// The kernel's list of loaded modules (proc(5)).
pub const PROC_MODULES: &str = "/proc/modules";
/// Where module trees live: `/lib/modules/<uname -r>`.
pub const MODULES_ROOT: &str = "/lib/modules";

/// A module name as the kernel compares it: `-` folded to `_`.
///
/// kbuild builds `KBUILD_MODNAME` from the file name with `-` replaced by
/// `_`, so `dm-verity.ko` registers as `dm_verity`; kmod's
/// `modname_normalize()` does the same to every name it is given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ModName(String);

impl ModName {
    /// `name` with every `-` folded to `_`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self(normalize(name))
    }

    /// The normalised name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ModName {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

/// `-` folded to `_`, for module names and aliases alike (kmod's
/// `alias_normalize()` does the same outside `[...]` classes, which exact
/// aliases never contain).
#[must_use]
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_dashes() {
        for (input, want) in [
            ("dm-verity", "dm_verity"),
            ("dm_verity", "dm_verity"),
            ("crc32c-intel", "crc32c_intel"),
            ("ext4", "ext4"),
            ("", ""),
        ] {
            assert_eq!(ModName::new(input).as_str(), want, "{input}");
        }
        assert_eq!(ModName::new("dm-mod"), ModName::new("dm_mod"));
    }
}
