//! liftoff: a minimal PID 1 for immutable container hosts.
//!
//! One static binary with two faces. As PID 1 ([`pid1::main`]) it mounts
//! the API filesystems, reads the kernel command line, and serves signals
//! in one epoll loop, reaping every child, until an orderly reboot or
//! poweroff; a fatal error runs the failure action instead of letting the
//! kernel panic ([`failure`]). Run by hand ([`cli::main`]) it offers
//! subcommands such as `liftoff cmdline`.
//!
//! Parsing and planning live in the libraries (`kernel-cmdline`, `mounts`,
//! `units`); this crate only carries out their plans. [`stage1`] boots a
//! `roothash=` root: modules, devices, dm-verity, mount, switch_root.
//! [`stage2`] drives the unit supervisor from PID 1's event loop; [`ctl`]
//! is the control socket and `liftoff ctl`. [`selinux`] loads and
//! enforces the policy at the start of stage 2. Not here yet: other root
//! sources than dm-verity ones.

pub mod abi;
pub mod analyze;
pub mod cli;
pub mod ctl;
pub mod failure;
pub mod initramfs;
pub mod initramfs_cli;
pub mod logger;
pub mod modules;
pub mod notify_cli;
pub mod pid1;
pub mod read_ahead;
pub mod reap;
pub mod selinux;
pub mod shutdown;
pub mod signals;
pub mod stage1;
pub mod stage2;
pub mod stamps;
pub mod sys;
pub mod verity_cli;
pub mod volumes;
