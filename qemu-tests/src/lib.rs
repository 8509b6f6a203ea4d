//! The VM harness for liftoff's QEMU tests.
//!
//! It does these things, one module each:
//!
//! * [`kernel`] fetches Debian's stock kernel package with `apt-get download`
//!   and unpacks it into a cache under `target/` (no root needed once the
//!   package lists exist).
//! * [`initramfs`] writes a deterministic newc cpio archive from a typed list
//!   of entries, with liftoff as `/init`; [`elf`] checks that it is static.
//!   Both are liftoff's own (`liftoff_init::initramfs`), re-exported.
//! * [`qemu`] boots a guest under TCG with a serial console captured into a
//!   buffer and a log file, and [`qmp`] talks to QEMU's control socket (to
//!   press ctrl-alt-delete, for example).
//! * [`paths`] says where the workspace and the download cache are.
//! * [`guest`] builds a busybox guest: a shell script as `/init`, kernel
//!   modules with their dependencies, and the binaries under test, for
//!   scenarios that run liftoff subcommands inside a VM.
//!
//! * [`image`] builds GPT disk images from a staging directory: an erofs or
//!   ext4 root, its dm-verity hash tree and a blank DATA partition, with
//!   Discoverable Partitions types and UUIDs derived from the root hash.
//! * [`guest_root`] stages a verified root (busybox, liftoff as
//!   `/sbin/init`, scripts, unit files, mounts.toml, mkfs.ext4), builds its
//!   disk image and initramfs, and boots it: the guest of the stage 1 and
//!   stage 2 scenarios.
//! * [`containerd`] fetches Debian's `containerd` and `runc` packages into
//!   the same cache (never installing them on the host) and holds what the
//!   guest needs to run containerd: its configuration and its unit file.
//! * [`host_containers`] is the guest's side of host containers: where
//!   `host-ctr`, the host containers' own containerd (`host-containerd`,
//!   its configuration and unit), their settings files and archives go,
//!   for [`GuestRoot::with_host_containers`] and
//!   [`GuestRoot::host_container`].
//! * [`selinux`] compiles the repository's SELinux policy with `secilc`
//!   for the guests [`GuestRoot::selinux`] builds.
//! * [`oci`] writes a tiny OCI image archive (the host's static busybox in
//!   one gzip layer, with its config, manifest and `index.json`),
//!   deterministically, for the host-container scenarios to import with no
//!   network, and corrupts a blob on purpose; host-ctr's own reader
//!   (`host_ctr::archive`) is what checks them.
//!
//! What it leaves out: the scenarios themselves live in `tests/`. Nothing here is
//! needed at run time on a real host, and nothing here needs root.

pub mod containerd;
pub mod elf;
pub mod guest;
pub mod guest_root;
pub mod host_containers;
pub mod image;
pub mod initramfs;
pub mod kernel;
pub mod oci;
pub mod paths;
pub mod qemu;
pub mod qmp;
pub mod scenario;
pub mod selinux;

pub use elf::{ElfError, ensure_static};
pub use guest::{BusyboxGuest, GuestError};
pub use guest_root::{Guest, GuestRoot, GuestRootError};
pub use image::{BuiltImage, DiskImage, ImageError, RootFs, VerityTool};
pub use initramfs::{Entry, FileContents, Initramfs, InitramfsError, liftoff_initramfs};
pub use kernel::{Kernel, KernelError, fetch_kernel};
pub use paths::{cache_dir, workspace_root};
pub use qemu::{QemuError, Vm, VmConfig};
pub use qmp::{QmpClient, QmpError};
