//! Check that a binary can run as `/init` from an initramfs: re-exported
//! from liftoff's library (`liftoff_init::initramfs::elf`), which refuses a
//! PT_INTERP program header with an error naming the file.

pub use liftoff_init::initramfs::elf::{ElfError, ensure_static};
