//! Forward error correction parity, byte for byte as `veritysetup format
//! --fec-device … --fec-roots N [--fec-offset …]` (cryptsetup 2.6) writes
//! it, so that the kernel's `use_fec_from_device` can repair blocks.
//!
//! # What the parity covers
//!
//! The input is the concatenation of byte ranges ([`FecArea`]), in order,
//! seen as `blocks = ceil(total / block_size)` blocks of the data block size
//! (`fec_blocks` in the kernel table). For veritysetup's layout
//! ([`areas_for`]) the two areas are:
//!
//! 1. the data device from offset 0, `data_blocks · block_size` bytes;
//! 2. the hash device from the first hash-tree block (the table's
//!    `hash_start_block`: the block after the 512-byte superblock, rounded
//!    up; the superblock itself is *not* covered) up to
//!    * `fec_offset`, when the FEC area is on the hash device itself, or
//!    * the end of the hash device (whole blocks), when it is elsewhere
//!      (so anything after the tree on a larger partition is covered too).
//!
//! # Interleaving
//!
//! With `rsn = 255 − roots` data symbols per codeword, the blocks are split
//! into `rounds = ceil(blocks / rsn)` rounds. Codeword `b` of round `n`
//! (for each byte position `b` of a block) takes byte `b` of the blocks
//! `n, n + rounds, n + 2·rounds, …` (`rsn` of them; blocks past the end read
//! as zeros), so the bytes of one block land in `block_size` different
//! codewords and a whole lost block costs each codeword one symbol. The
//! parity is written at `fec_offset`, round after round, codeword after
//! codeword: `roots` bytes for round `n`, position `b` at
//! `fec_offset + (n · block_size + b) · roots`. The parity is
//! `rounds · block_size · roots` bytes long.
//!
//! # The kernel table
//!
//! `fec_blocks` is [`FecLayout::blocks`], `fec_start` is
//! `fec_offset / block_size` ([`fec_start`]), `fec_roots` is the roots.
//!
//! # Where liftoff is stricter than veritysetup 2.6.1
//!
//! veritysetup 2.6.1 accepts an FEC offset that overlaps the hash tree on
//! the same device (and then overwrites the tree), and an FEC offset that is
//! not a multiple of the block size (which the table's `fec_start`, counted
//! in blocks, cannot express). Both are refused here.
//!
//! Work is spread over threads by rounds (each round's parity depends only
//! on its own blocks) and streamed: each worker holds a few MiB of input at
//! a time, whatever the device size.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::rs;

mod engine;

use engine::{Job, Mode};

/// The fewest parity bytes per codeword veritysetup accepts (RS(255, 253)).
pub const MIN_ROOTS: u8 = 2;
/// The most parity bytes per codeword veritysetup accepts (RS(255, 231)).
pub const MAX_ROOTS: u8 = 24;

/// veritysetup's and the kernel's block size limits.
const MIN_BLOCK_SIZE: u32 = 512;
const MAX_BLOCK_SIZE: u32 = 512 * 1024;

/// A byte range of a device covered by the parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecArea<'a> {
    /// The file or block device.
    pub path: &'a Path,
    /// Where the range starts, in bytes (a multiple of the block size).
    pub offset: u64,
    /// How long it is, in bytes (a multiple of the block size).
    pub len: u64,
}

/// The code's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecParams {
    /// Parity bytes per codeword, 2..=24 (veritysetup `--fec-roots`).
    pub roots: u8,
    /// The data block size (veritysetup requires hash blocks of the same
    /// size for FEC).
    pub block_size: u32,
}

/// What the parity looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecLayout {
    /// Blocks covered: the kernel table's `fec_blocks`.
    pub blocks: u64,
    /// Length of the parity written at the FEC offset.
    pub parity_bytes: u64,
}

/// The verity geometry whose FEC coverage [`areas_for`] works out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoveredDevices<'a> {
    /// The data device.
    pub data: &'a Path,
    /// Data blocks (the table's `num_data_blocks`).
    pub data_blocks: u64,
    /// The hash device.
    pub hash: &'a Path,
    /// The first block of the hash tree, after the superblock if there is
    /// one: the table's `hash_start_block`.
    pub hash_start_block: u64,
    /// Blocks in the hash tree.
    pub hash_blocks: u64,
    /// The (data and hash) block size.
    pub block_size: u32,
}

/// An FEC step that failed, with the value, path or offset at fault.
#[derive(Debug, Error)]
pub enum FecError {
    /// The number of roots is outside veritysetup's range.
    #[error("fec roots {roots} out of range (expected {MIN_ROOTS} to {MAX_ROOTS})")]
    Roots { roots: u8 },
    /// The block size is not a power of two in 512..=524288.
    #[error("fec block size {block_size} is not a power of two from 512 to 524288")]
    BlockSize { block_size: u32 },
    /// An area does not start or end on a block boundary.
    #[error(
        "fec area {path} at offset {offset}, length {len} is not aligned to the block size {block_size}"
    )]
    MisalignedArea {
        path: PathBuf,
        offset: u64,
        len: u64,
        block_size: u32,
    },
    /// The first area (the data) is empty, which veritysetup refuses.
    #[error("fec data area {path} is empty")]
    EmptyData { path: PathBuf },
    /// No areas were given.
    #[error("fec needs at least one input area")]
    NoAreas,
    /// The sizes overflow 64 bits.
    #[error("fec input of {blocks} blocks is too large")]
    TooLarge { blocks: u64 },
    /// The FEC offset is not a multiple of the block size, so the kernel
    /// table's `fec_start` (in blocks) cannot name it.
    #[error("fec offset {fec_offset} is not a multiple of the block size {block_size}")]
    MisalignedOffset { fec_offset: u64, block_size: u32 },
    /// The parity would overwrite bytes it covers.
    #[error(
        "fec parity at {fec_offset}..{fec_end} of {path} overlaps the covered area {area_offset}..{area_end}"
    )]
    Overlap {
        path: PathBuf,
        fec_offset: u64,
        fec_end: u64,
        area_offset: u64,
        area_end: u64,
    },
    /// The FEC area on the hash device starts before the hash tree ends.
    #[error("fec offset {fec_offset} on {path} is inside the hash area, which ends at {hash_end}")]
    HashOverlap {
        path: PathBuf,
        fec_offset: u64,
        hash_end: u64,
    },
    /// The FEC area on the data device starts before the data ends.
    #[error("fec offset {fec_offset} on {path} is inside the data area, which ends at {data_end}")]
    DataOverlap {
        path: PathBuf,
        fec_offset: u64,
        data_end: u64,
    },
    /// An input area reaches past the end of its device.
    #[error("fec area of {path} ends at {end}, past the end of the device ({size} bytes)")]
    AreaPastEnd { path: PathBuf, end: u64, size: u64 },
    /// A file or device could not be opened.
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file's metadata or size could not be read.
    #[error("cannot stat {path}")]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading input or parity failed.
    #[error("cannot read {path} at offset {offset}")]
    Read {
        path: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// Writing parity failed.
    #[error("cannot write fec parity to {path} at offset {offset}")]
    Write {
        path: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// Flushing the parity to the device failed.
    #[error("cannot sync {path}")]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A worker thread could not be started.
    #[error("cannot start an fec worker thread")]
    Spawn {
        #[source]
        source: io::Error,
    },
    /// The stored parity differs from the recomputed parity.
    #[error("fec parity in {path} differs from the recomputed parity at offset {offset}")]
    Mismatch { path: PathBuf, offset: u64 },
}

/// Validates the parameters and the areas, and computes the layout (pure).
pub fn layout(inputs: &[FecArea<'_>], params: &FecParams) -> Result<FecLayout, FecError> {
    validate_params(params)?;
    let bs = u64::from(params.block_size);
    let first = inputs.first().ok_or(FecError::NoAreas)?;
    if first.len == 0 {
        return Err(FecError::EmptyData {
            path: first.path.to_owned(),
        });
    }
    let mut total: u64 = 0;
    for area in inputs {
        if !area.offset.is_multiple_of(bs) || !area.len.is_multiple_of(bs) {
            return Err(FecError::MisalignedArea {
                path: area.path.to_owned(),
                offset: area.offset,
                len: area.len,
                block_size: params.block_size,
            });
        }
        let blocks = area.len / bs;
        total = total
            .checked_add(blocks)
            .filter(|_| area.offset.checked_add(area.len).is_some())
            .ok_or(FecError::TooLarge { blocks })?;
    }
    let blocks = total;
    let rounds = blocks.div_ceil(rsn(params.roots));
    let parity_bytes = rounds
        .checked_mul(bs * u64::from(params.roots))
        .ok_or(FecError::TooLarge { blocks })?;
    Ok(FecLayout {
        blocks,
        parity_bytes,
    })
}

/// The kernel table's `fec_start`: the FEC offset in blocks.
pub fn fec_start(fec_offset: u64, block_size: u32) -> Result<u64, FecError> {
    validate_block_size(block_size)?;
    let bs = u64::from(block_size);
    if !fec_offset.is_multiple_of(bs) {
        return Err(FecError::MisalignedOffset {
            fec_offset,
            block_size,
        });
    }
    Ok(fec_offset / bs)
}

/// The areas veritysetup 2.6 covers for this geometry, with the FEC parity
/// at `fec_offset` of `fec` (see the module documentation). Call it after
/// the hash tree is written: when the FEC is on another device, the hash
/// area runs to the end of the hash device as it is then. Refuses an FEC
/// area that overlaps the data or the hash tree on the same device.
pub fn areas_for<'a>(
    dev: &CoveredDevices<'a>,
    fec: &Path,
    fec_offset: u64,
) -> Result<[FecArea<'a>; 2], FecError> {
    validate_block_size(dev.block_size)?;
    let bs = u64::from(dev.block_size);
    let too_large = FecError::TooLarge {
        blocks: dev.data_blocks,
    };
    let data_end = dev.data_blocks.checked_mul(bs).ok_or(too_large)?;
    let tree_end = dev
        .hash_start_block
        .checked_add(dev.hash_blocks)
        .and_then(|b| b.checked_mul(bs))
        .ok_or(FecError::TooLarge {
            blocks: dev.hash_blocks,
        })?;

    if same_device(dev.data, fec)? && fec_offset < data_end {
        return Err(FecError::DataOverlap {
            path: fec.to_owned(),
            fec_offset,
            data_end,
        });
    }
    let hash_end = if same_device(dev.hash, fec)? {
        if fec_offset < tree_end {
            return Err(FecError::HashOverlap {
                path: fec.to_owned(),
                fec_offset,
                hash_end: tree_end,
            });
        }
        fec_offset
    } else {
        let size = device_size(dev.hash)?;
        if size < tree_end {
            return Err(FecError::AreaPastEnd {
                path: dev.hash.to_owned(),
                end: tree_end,
                size,
            });
        }
        size
    };
    Ok(covered_areas(dev, hash_end))
}

/// [`areas_for`] once the end of the covered part of the hash device is
/// known: `VERITY_FEC_blocks` in cryptsetup's `lib/verity/verity_fec.c`.
fn covered_areas<'a>(dev: &CoveredDevices<'a>, hash_end: u64) -> [FecArea<'a>; 2] {
    let bs = u64::from(dev.block_size);
    let hash_blocks = (hash_end / bs).saturating_sub(dev.hash_start_block);
    [
        FecArea {
            path: dev.data,
            offset: 0,
            len: dev.data_blocks.saturating_mul(bs),
        },
        FecArea {
            path: dev.hash,
            offset: dev.hash_start_block.saturating_mul(bs),
            len: hash_blocks.saturating_mul(bs),
        },
    ]
}

/// Computes the parity of `inputs` and writes it at `fec_offset` of `fec`
/// (created if missing, mode 0600 like veritysetup; never truncated, as it
/// may be the hash device), then syncs it.
pub fn write_parity(
    inputs: &[FecArea<'_>],
    params: &FecParams,
    fec: &Path,
    fec_offset: u64,
) -> Result<FecLayout, FecError> {
    let job = Job::open(inputs, params, fec, fec_offset, Mode::Write)?;
    job.run()?;
    job.fec.sync_data().map_err(|source| FecError::Sync {
        path: fec.to_owned(),
        source,
    })?;
    Ok(job.layout)
}

/// Recomputes the parity of `inputs` and compares it with the parity stored
/// at `fec_offset` of `fec`; names the first byte that differs.
pub fn check_parity(
    inputs: &[FecArea<'_>],
    params: &FecParams,
    fec: &Path,
    fec_offset: u64,
) -> Result<(), FecError> {
    let job = Job::open(inputs, params, fec, fec_offset, Mode::Check)?;
    job.run()
}

fn rsn(roots: u8) -> u64 {
    rs::CODEWORD_LEN as u64 - u64::from(roots)
}

fn validate_params(params: &FecParams) -> Result<(), FecError> {
    if !(MIN_ROOTS..=MAX_ROOTS).contains(&params.roots) {
        return Err(FecError::Roots {
            roots: params.roots,
        });
    }
    validate_block_size(params.block_size)
}

fn validate_block_size(block_size: u32) -> Result<(), FecError> {
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(FecError::BlockSize { block_size });
    }
    Ok(())
}

/// Whether two paths name the same device: the same block device (by device
/// number, whatever the node), or the same file. A path that does not exist
/// yet (a new FEC file) is nothing else.
fn same_device(a: &Path, b: &Path) -> Result<bool, FecError> {
    let stat = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FecError::Stat {
            path: p.to_owned(),
            source,
        }),
    };
    let (Some(ma), Some(mb)) = (stat(a)?, stat(b)?) else {
        return Ok(false);
    };
    if ma.file_type().is_block_device() && mb.file_type().is_block_device() {
        return Ok(ma.rdev() == mb.rdev());
    }
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

/// The size of a file or block device (metadata says 0 for the latter).
fn device_size(path: &Path) -> Result<u64, FecError> {
    let mut file = File::open(path).map_err(|source| FecError::Open {
        path: path.to_owned(),
        source,
    })?;
    file.seek(SeekFrom::End(0))
        .map_err(|source| FecError::Stat {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests;
