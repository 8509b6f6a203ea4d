//! `liftoff initramfs`: a compressed newc initramfs holding liftoff as
//! `/init`, the kernel modules asked for with their dependencies, and the
//! initramfs config, so that an image build needs no dracut, no busybox and
//! no depmod (see docs/initramfs.md).
//!
//! * [`archive`] writes a deterministic newc cpio stream from typed entries
//!   (the QEMU harness builds its test guests with it too);
//! * [`elf`] refuses a dynamically linked `/init`;
//! * [`output`] compresses the stream (gzip or none) into a file,
//!   atomically;
//! * [`config`] is the initramfs config stage 1 reads,
//!   `/etc/liftoff/initramfs.toml`;
//! * [`image`] decides what goes in: plans the module closure with
//!   [`crate::modules::plan`] and writes the `modules.liftoff` index beside
//!   the copied modules.
//!
//! Left out: microcode prepended as an uncompressed archive, firmware
//! files, compressors other than gzip, and reproducing a tree's own
//! `modules.dep` (stage 1 reads `modules.liftoff` instead).

pub mod archive;
pub mod config;
pub mod elf;
pub mod image;
pub mod output;

pub use archive::{ArchiveError, Entry, FileContents, INIT_PATH, Initramfs, liftoff_initramfs};
pub use config::{CONFIG_PATH, ConfigError, InitramfsConfig};
pub use elf::{ElfError, ensure_static};
pub use image::{ExtraFile, Image, ImageError, ImageSpec, build};
pub use output::{Compression, Written, read_archive};
