//! Typed mount specifications and the plans PID 1 carries out.
//!
//! This crate decides *what* to mount and in which order; it never makes a
//! syscall. `liftoff` (the `init` crate) executes the plans, so every plan is
//! tested here on the host and the execution is tested in QEMU.
//!
//! What is here now:
//! * [`mountinfo`]: a parser for `/proc/self/mountinfo`, so a plan can skip
//!   what the kernel (or an earlier stage) already mounted;
//! * [`api`]: the table of API filesystems (`/proc`, `/sys`, `/dev`, …) every
//!   stage of liftoff needs, and [`api::plan`] which drops the mounted ones.
//!
//! Left out (later work): device lookup and waiting, the verity root,
//! volumes, `switch_root` and the shutdown unmount loop.

pub mod api;
pub mod mountinfo;

use std::path::PathBuf;

use nix::mount::MsFlags;

/// One mount to perform: the arguments of mount(2) plus the mode of the
/// directory to create for it when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The `source` argument (a device path, or a name such as `proc`).
    pub source: String,
    /// Where to mount it.
    pub target: PathBuf,
    /// The filesystem type (`proc`, `tmpfs`, …).
    pub fstype: String,
    /// mount(2) flags.
    pub flags: MsFlags,
    /// Filesystem-specific options (the `data` argument), if any.
    pub data: Option<String>,
    /// Mode for `target` if it has to be created first.
    pub dir_mode: u32,
}
