//! dm-verity for liftoff.
//!
//! * the on-disk format of cryptsetup's `veritysetup` 2.6, byte for byte:
//!   superblock, hash tree (built in parallel, streaming), FEC parity;
//! * verification in user space that names the wrong block;
//! * the kernel's dm-verity table line, typed, in both directions;
//! * activation through device-mapper (the `devicemapper` crate).
//!
//! What it leaves out: anything about booting (which device, when, what to
//! do on failure): that is liftoff's stage 1.

pub mod dm;
pub mod dump;
pub mod fec;
pub mod format;
pub mod geometry;
pub mod hash;
pub mod rs;
pub mod sha256x;
pub mod superblock;
pub mod sys;
pub mod table;
pub mod tree;
pub mod verify;

pub use hash::{Algorithm, HashType};
