//! The initramfs writer, from liftoff's own library
//! (`liftoff_init::initramfs`, what `liftoff initramfs` uses): a
//! deterministic newc cpio archive from a typed list of entries. Re-exported
//! here so that the harness and the scenarios build their guests with the
//! same code that builds real images.

pub use liftoff_init::initramfs::archive::*;
pub use liftoff_init::initramfs::{Compression, Written};

/// What failed while building an initramfs (the library's name is
/// `ArchiveError`).
pub type InitramfsError = ArchiveError;
