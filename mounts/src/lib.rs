//! Typed mount specifications, the plans PID 1 carries out, and finding the
//! block devices they name.
//!
//! Plans decide *what* to mount and in which order without a syscall;
//! `liftoff` (the `init` crate) executes them, so every plan is tested here
//! on the host and the execution is tested in QEMU. Device lookup is split
//! the same way: GPT, superblock and uevent parsing and the matching of a
//! command-line spec against the devices seen are pure; a thin layer reads
//! sysfs and `/dev` (roots as parameters) and waits on the kernel's uevent
//! socket.
//!
//! What is here now:
//! * [`mountinfo`]: a parser for `/proc/self/mountinfo`, so a plan can skip
//!   what the kernel (or an earlier stage) already mounted;
//! * [`api`]: the table of API filesystems (`/proc`, `/sys`, `/dev`, …) every
//!   stage of liftoff needs, and [`api::plan`] which drops the mounted ones;
//! * [`devices`]: GPT, filesystem probes, the sysfs scan, uevents, and the
//!   bounded wait for the devices a boot needs;
//! * [`volumes`]: `/etc/liftoff/mounts.toml` on the verified root, parsed
//!   and planned (tmpfs, overlay, persistent, bind);
//! * [`unmount`]: the shutdown unmount loop's passes and when it has
//!   settled.
//!
//! Left out: the verity root (the `verity` crate) and `switch_root`
//! (`liftoff`'s stage 1 carries it out).

pub mod api;
pub mod devices;
pub mod mountinfo;
pub mod unmount;
pub mod volumes;

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
