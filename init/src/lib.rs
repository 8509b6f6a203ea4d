//! liftoff: a minimal PID 1 for immutable container hosts.
//!
//! One static binary with two faces. As PID 1 ([`pid1::main`]) it mounts
//! the API filesystems, reads the kernel command line, and serves signals
//! in one epoll loop, reaping every child, until an orderly reboot or
//! poweroff; a fatal error runs the failure action instead of letting the
//! kernel panic ([`failure`]). Run by hand ([`cli::main`]) it offers
//! subcommands such as `liftoff cmdline`.
//!
//! Parsing and planning live in the libraries (`kernel-cmdline`, `mounts`);
//! this crate only carries out their plans. [`stage1`] boots a `roothash=`
//! root: modules, devices, dm-verity, mount, switch_root. Not here yet:
//! other root sources and the unit supervisor.

pub mod abi;
pub mod cli;
pub mod ctl;
pub mod failure;
pub mod initramfs;
pub mod initramfs_cli;
pub mod logger;
pub mod modules;
pub mod pid1;
pub mod reap;
pub mod shutdown;
pub mod signals;
pub mod stage1;
pub mod stamps;
pub mod sys;
pub mod verity_cli;
pub mod volumes;
