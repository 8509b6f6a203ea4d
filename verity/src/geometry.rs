//! The hash tree's layout on the hash device, exactly as veritysetup 2.6
//! computes it (cryptsetup `lib/verity/verity_hash.c`, `hash_levels`, and
//! `lib/verity/verity.c`, `VERITY_hash_offset_block`). Pure arithmetic: no
//! I/O, no hashing.
//!
//! The facts this module encodes:
//!
//! * A hash block holds `2^k` digests, the largest power of two that fits
//!   (`4096 / 20` for SHA-1 is 204, so 128), for *both* hash types.
//! * Type 1 gives each digest a power-of-two slot (SHA-1: 32 bytes); type 0
//!   packs them (SHA-1: 20 bytes). Either way the rest of the block is zero.
//! * Level 0 holds the digests of the data blocks; level `i + 1` those of
//!   level `i`'s hash blocks; the top level is one hash block, whose digest
//!   is the root hash. With a single data block there is no level at all:
//!   the root hash is that block's digest.
//! * On the device the levels are stored top first: the top level at the
//!   tree's start, level 0 last.
//! * The superblock (512 bytes) sits at the hash offset and the tree starts
//!   at the next hash block; without a superblock the tree starts at the
//!   offset itself.

use thiserror::Error;

use crate::{Algorithm, HashType};

/// The superblock's size on disk, in bytes.
pub const SUPERBLOCK_SIZE: u64 = 512;

/// The smallest block size veritysetup accepts.
pub const MIN_BLOCK_SIZE: u32 = 512;

/// The largest block size veritysetup accepts (`VERITY_BLOCK_SIZE_OK`:
/// 512 KiB). The kernel itself only activates data blocks up to the page
/// size; veritysetup formats larger ones with a warning, and so do we.
pub const MAX_BLOCK_SIZE: u32 = 512 * 1024;

/// veritysetup's limit on the number of tree levels (`VERITY_MAX_LEVELS`).
pub const MAX_LEVELS: usize = 63;

/// Which block size a [`GeometryError::BlockSize`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// `--data-block-size`.
    Data,
    /// `--hash-block-size`.
    Hash,
}

impl std::fmt::Display for BlockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlockKind::Data => "data",
            BlockKind::Hash => "hash",
        })
    }
}

/// Why a layout cannot be built.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum GeometryError {
    /// A block size is not a power of two between 512 bytes and 512 KiB.
    #[error(
        "{kind} block size {size} is not supported (expected a power of two from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE})"
    )]
    BlockSize {
        /// Data or hash.
        kind: BlockKind,
        /// The rejected size in bytes.
        size: u32,
    },
    /// The hash offset does not fall on a hash block boundary. veritysetup
    /// would silently start the tree at the next boundary (with a
    /// superblock) or the previous one (without); liftoff refuses instead.
    #[error("hash offset {offset} is not a multiple of the hash block size {hash_block_size}")]
    UnalignedHashOffset {
        /// The rejected offset in bytes.
        offset: u64,
        /// The hash block size it must be a multiple of.
        hash_block_size: u32,
    },
    /// There is nothing to protect.
    #[error("the data area has no blocks")]
    NoDataBlocks,
    /// The tree would need more levels, or more bytes, than fit in 64 bits.
    #[error(
        "hash area overflow: {data_blocks} data blocks do not fit a tree at hash offset {hash_offset}"
    )]
    Overflow {
        /// The data block count asked for.
        data_blocks: u64,
        /// The hash offset asked for.
        hash_offset: u64,
    },
}

/// Everything that decides the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeometryParams {
    /// Type 0 (Chrome OS) or 1 (normal).
    pub hash_type: HashType,
    /// The digest algorithm (only its digest size matters here).
    pub algorithm: Algorithm,
    /// Data block size in bytes.
    pub data_block_size: u32,
    /// Hash block size in bytes.
    pub hash_block_size: u32,
    /// Number of data blocks protected.
    pub data_blocks: u64,
    /// Byte offset of the hash area (superblock, then tree) on the hash
    /// device.
    pub hash_offset: u64,
    /// Whether a superblock precedes the tree.
    pub superblock: bool,
}

/// One level of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// The level's first hash block, counted in hash blocks from the start
    /// of the hash device (the table line's `hash_start_block` counts the
    /// same way).
    pub start_block: u64,
    /// Number of hash blocks in the level.
    pub blocks: u64,
}

/// The layout of a hash device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    params: GeometryParams,
    digest_size: usize,
    slot_size: usize,
    digests_per_block_bits: u32,
    tree_start_block: u64,
    /// Bottom (level 0) first.
    levels: Vec<Level>,
    tree_blocks: u64,
}

/// Checks a block size against veritysetup's rule.
pub fn check_block_size(kind: BlockKind, size: u32) -> Result<(), GeometryError> {
    if (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&size) && size.is_power_of_two() {
        Ok(())
    } else {
        Err(GeometryError::BlockSize { kind, size })
    }
}

impl Geometry {
    /// Computes the layout, refusing what veritysetup refuses (and an
    /// unaligned hash offset, which veritysetup would move).
    pub fn new(params: GeometryParams) -> Result<Self, GeometryError> {
        check_block_size(BlockKind::Data, params.data_block_size)?;
        check_block_size(BlockKind::Hash, params.hash_block_size)?;
        let hbs = u64::from(params.hash_block_size);
        if !params.hash_offset.is_multiple_of(hbs) {
            return Err(GeometryError::UnalignedHashOffset {
                offset: params.hash_offset,
                hash_block_size: params.hash_block_size,
            });
        }
        if params.data_blocks == 0 {
            return Err(GeometryError::NoDataBlocks);
        }
        let overflow = GeometryError::Overflow {
            data_blocks: params.data_blocks,
            hash_offset: params.hash_offset,
        };
        let digest_size = params.algorithm.digest_size();
        // floor(log2(hash_block_size / digest_size)): at least 3, since the
        // smallest block (512) holds 8 of the largest digest (64).
        let per_block = params.hash_block_size as usize / digest_size;
        let bits = per_block.ilog2();
        let slot_size = match params.hash_type {
            HashType::ChromeOs => digest_size,
            HashType::Normal => digest_size.next_power_of_two(),
        };
        // veritysetup rounds `offset + 512` up to a hash block; with an
        // aligned offset that is the next block.
        let tree_start_block = params.hash_offset / hbs + u64::from(params.superblock);

        // Level count: how many times `bits` bits must be shifted off the
        // highest block index before nothing is left.
        let last = params.data_blocks - 1;
        let mut count = 0usize;
        while u64::from(bits) * (count as u64) < 64 && (last >> (bits as usize * count)) != 0 {
            count += 1;
        }
        if count > MAX_LEVELS {
            return Err(overflow);
        }
        let mut sizes = Vec::with_capacity(count);
        for i in 0..count {
            let shift = (i as u32 + 1) * bits;
            if shift > 63 {
                return Err(overflow);
            }
            sizes.push(params.data_blocks.div_ceil(1u64 << shift));
        }
        // Top level first on the device.
        let mut levels = vec![
            Level {
                start_block: 0,
                blocks: 0
            };
            count
        ];
        let mut position = tree_start_block;
        for i in (0..count).rev() {
            levels[i] = Level {
                start_block: position,
                blocks: sizes[i],
            };
            position = position.checked_add(sizes[i]).ok_or(overflow.clone())?;
        }
        if position.checked_mul(hbs).is_none() {
            return Err(overflow);
        }
        if params
            .data_blocks
            .checked_mul(u64::from(params.data_block_size))
            .is_none()
        {
            return Err(overflow);
        }
        Ok(Geometry {
            params,
            digest_size,
            slot_size,
            digests_per_block_bits: bits,
            tree_start_block,
            levels,
            tree_blocks: position - tree_start_block,
        })
    }

    /// The parameters this layout was built from.
    pub fn params(&self) -> &GeometryParams {
        &self.params
    }

    /// Digest size in bytes.
    pub fn digest_size(&self) -> usize {
        self.digest_size
    }

    /// Bytes each digest takes in a hash block (type 1: the digest size
    /// rounded up to a power of two; type 0: the digest size).
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Digests per hash block (a power of two).
    pub fn digests_per_block(&self) -> u64 {
        1u64 << self.digests_per_block_bits
    }

    /// The levels, bottom (level 0, the data blocks' digests) first.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Byte offset of the superblock on the hash device, if there is one.
    pub fn superblock_offset(&self) -> Option<u64> {
        self.params.superblock.then_some(self.params.hash_offset)
    }

    /// The tree's first hash block on the hash device (the table line's
    /// `hash_start_block`).
    pub fn tree_start_block(&self) -> u64 {
        self.tree_start_block
    }

    /// Byte offset of the tree on the hash device.
    pub fn tree_offset(&self) -> u64 {
        self.tree_start_block * self.hash_block_size()
    }

    /// Number of hash blocks in the tree (veritysetup's "Hash blocks").
    pub fn tree_blocks(&self) -> u64 {
        self.tree_blocks
    }

    /// The tree's size in bytes.
    pub fn tree_bytes(&self) -> u64 {
        self.tree_blocks * self.hash_block_size()
    }

    /// Where the hash area ends on the hash device, in bytes: the size a
    /// hash device needs (veritysetup's "Hash device size" when the hash
    /// offset is 0).
    pub fn hash_device_end(&self) -> u64 {
        (self.tree_start_block + self.tree_blocks) * self.hash_block_size()
    }

    /// Hash block size in bytes, widened.
    pub fn hash_block_size(&self) -> u64 {
        u64::from(self.params.hash_block_size)
    }

    /// Data block size in bytes, widened.
    pub fn data_block_size(&self) -> u64 {
        u64::from(self.params.data_block_size)
    }

    /// The bytes of data the tree covers.
    pub fn data_bytes(&self) -> u64 {
        self.params.data_blocks * self.data_block_size()
    }

    /// Where the digest of child `index` (a data block for level 0, a hash
    /// block of level `n - 1` for level `n`) sits in its level's bytes.
    pub fn slot_position(&self, index: u64) -> u64 {
        let per = self.digests_per_block();
        (index / per) * self.hash_block_size() + (index % per) * self.slot_size as u64
    }

    /// Byte offset of a level's bytes inside the tree (the tree as written
    /// at [`Geometry::tree_offset`]).
    pub fn level_offset_in_tree(&self, level: usize) -> Option<u64> {
        self.levels
            .get(level)
            .map(|l| (l.start_block - self.tree_start_block) * self.hash_block_size())
    }

    /// Device byte offset of hash block `index` of `level`.
    pub fn hash_block_offset(&self, level: usize, index: u64) -> Option<u64> {
        self.levels
            .get(level)
            .map(|l| (l.start_block + index) * self.hash_block_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(alg: Algorithm, ty: HashType, dbs: u32, hbs: u32, blocks: u64) -> GeometryParams {
        GeometryParams {
            hash_type: ty,
            algorithm: alg,
            data_block_size: dbs,
            hash_block_size: hbs,
            data_blocks: blocks,
            hash_offset: 0,
            superblock: true,
        }
    }

    /// Known layouts, checked against `veritysetup format` 2.6.1 ("Hash
    /// blocks" and "Hash device size" in its output).
    #[test]
    fn known_layouts() {
        struct Case {
            name: &'static str,
            params: GeometryParams,
            per_block: u64,
            slot: usize,
            level_blocks: &'static [u64],
            tree_blocks: u64,
            device_end: u64,
        }
        let sha256 = |blocks| params(Algorithm::Sha256, HashType::Normal, 4096, 4096, blocks);
        let cases = [
            Case {
                name: "one block: no levels, superblock only",
                params: sha256(1),
                per_block: 128,
                slot: 32,
                level_blocks: &[],
                tree_blocks: 0,
                device_end: 4096,
            },
            Case {
                name: "128 blocks fill one hash block",
                params: sha256(128),
                per_block: 128,
                slot: 32,
                level_blocks: &[1],
                tree_blocks: 1,
                device_end: 8192,
            },
            Case {
                name: "129 blocks need a second level",
                params: sha256(129),
                per_block: 128,
                slot: 32,
                level_blocks: &[2, 1],
                tree_blocks: 3,
                device_end: 16384,
            },
            Case {
                name: "16385 blocks: three levels",
                params: sha256(16385),
                per_block: 128,
                slot: 32,
                level_blocks: &[129, 2, 1],
                tree_blocks: 132,
                device_end: 133 * 4096,
            },
            Case {
                name: "sha1 type 1: 128 slots of 32 bytes",
                params: params(Algorithm::Sha1, HashType::Normal, 4096, 4096, 129),
                per_block: 128,
                slot: 32,
                level_blocks: &[2, 1],
                tree_blocks: 3,
                device_end: 16384,
            },
            Case {
                name: "sha1 type 0: 128 packed digests of 20 bytes",
                params: params(Algorithm::Sha1, HashType::ChromeOs, 4096, 4096, 129),
                per_block: 128,
                slot: 20,
                level_blocks: &[2, 1],
                tree_blocks: 3,
                device_end: 16384,
            },
            Case {
                name: "sha512 in 512-byte hash blocks: 8 per block",
                params: params(Algorithm::Sha512, HashType::Normal, 4096, 512, 65),
                per_block: 8,
                slot: 64,
                level_blocks: &[9, 2, 1],
                tree_blocks: 12,
                device_end: 13 * 512,
            },
            Case {
                name: "no superblock: the tree starts at the offset",
                params: GeometryParams {
                    superblock: false,
                    hash_offset: 8192,
                    ..sha256(129)
                },
                per_block: 128,
                slot: 32,
                level_blocks: &[2, 1],
                tree_blocks: 3,
                device_end: 8192 + 3 * 4096,
            },
            Case {
                name: "hash offset with superblock: tree one block later",
                params: GeometryParams {
                    hash_offset: 8192,
                    ..sha256(129)
                },
                per_block: 128,
                slot: 32,
                level_blocks: &[2, 1],
                tree_blocks: 3,
                device_end: 8192 + 4 * 4096,
            },
        ];
        for case in cases {
            let g = Geometry::new(case.params).unwrap();
            assert_eq!(g.digests_per_block(), case.per_block, "{}", case.name);
            assert_eq!(g.slot_size(), case.slot, "{}", case.name);
            let blocks: Vec<u64> = g.levels().iter().map(|l| l.blocks).collect();
            assert_eq!(blocks, case.level_blocks, "{}", case.name);
            assert_eq!(g.tree_blocks(), case.tree_blocks, "{}", case.name);
            assert_eq!(g.hash_device_end(), case.device_end, "{}", case.name);
        }
    }

    #[test]
    fn levels_are_stored_top_first() {
        let g = Geometry::new(params(
            Algorithm::Sha256,
            HashType::Normal,
            4096,
            4096,
            16385,
        ))
        .unwrap();
        let starts: Vec<u64> = g.levels().iter().map(|l| l.start_block).collect();
        // Level 2 (1 block) at 1, level 1 (2 blocks) at 2, level 0 at 4.
        assert_eq!(starts, [4, 2, 1]);
        assert_eq!(g.tree_start_block(), 1);
        assert_eq!(g.level_offset_in_tree(0), Some(3 * 4096));
        assert_eq!(g.hash_block_offset(1, 1), Some(3 * 4096));
    }

    #[test]
    fn slot_positions() {
        let g =
            Geometry::new(params(Algorithm::Sha1, HashType::ChromeOs, 4096, 4096, 300)).unwrap();
        assert_eq!(g.slot_position(0), 0);
        assert_eq!(g.slot_position(127), 127 * 20);
        assert_eq!(g.slot_position(128), 4096);
        assert_eq!(g.slot_position(130), 4096 + 40);
    }

    #[test]
    fn refusals() {
        let base = params(Algorithm::Sha256, HashType::Normal, 4096, 4096, 10);
        let cases = [
            (
                "data block not a power of two",
                GeometryParams {
                    data_block_size: 3000,
                    ..base
                },
                GeometryError::BlockSize {
                    kind: BlockKind::Data,
                    size: 3000,
                },
            ),
            (
                "hash block too small",
                GeometryParams {
                    hash_block_size: 256,
                    ..base
                },
                GeometryError::BlockSize {
                    kind: BlockKind::Hash,
                    size: 256,
                },
            ),
            (
                "data block too large",
                GeometryParams {
                    data_block_size: 1 << 20,
                    ..base
                },
                GeometryError::BlockSize {
                    kind: BlockKind::Data,
                    size: 1 << 20,
                },
            ),
            (
                "unaligned hash offset",
                GeometryParams {
                    hash_offset: 1024,
                    ..base
                },
                GeometryError::UnalignedHashOffset {
                    offset: 1024,
                    hash_block_size: 4096,
                },
            ),
            (
                "no data blocks",
                GeometryParams {
                    data_blocks: 0,
                    ..base
                },
                GeometryError::NoDataBlocks,
            ),
            (
                "byte size overflows",
                GeometryParams {
                    data_blocks: u64::MAX,
                    ..base
                },
                GeometryError::Overflow {
                    data_blocks: u64::MAX,
                    hash_offset: 0,
                },
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(Geometry::new(p), Err(want), "{name}");
        }
    }

    #[test]
    fn largest_block_sizes_accepted() {
        let p = params(
            Algorithm::Sha256,
            HashType::Normal,
            MAX_BLOCK_SIZE,
            MAX_BLOCK_SIZE,
            3,
        );
        let g = Geometry::new(p).unwrap();
        assert_eq!(g.levels().len(), 1);
    }
}
