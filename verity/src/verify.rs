//! `veritysetup verify`: rebuild the tree from the data (with the parallel
//! machinery of [`crate::tree`]), compare it with the stored one and with
//! the root hash, and on a mismatch name what is wrong.
//!
//! Naming the culprit works top-down, the way the kernel trusts blocks:
//! the root hash vouches for the top hash block; a stored hash block whose
//! digest matches its (trusted) parent's slot vouches for its own slots;
//! a stored block that does not match is reported as a wrong *hash block*
//! (its descendants are then not judged); a data block whose digest does not
//! match its trusted slot is a wrong *data block*. When the stored tree is
//! exactly what the data produces but the root differs, the root hash
//! itself is reported. With a single data block (no tree) a mismatch can
//! only be reported as a root hash mismatch.
//!
//! Stricter than veritysetup: like format, an unaligned hash offset is
//! refused. Like veritysetup, the explicit parameters are ignored when a
//! superblock is read.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::format::DEFAULT_BLOCK_SIZE;
use crate::geometry::{Geometry, GeometryError, GeometryParams};
use crate::superblock::{self, Superblock, SuperblockError};
use crate::tree::{self, ReadMode, Tree, TreeError, TreeOptions};
use crate::{Algorithm, HashType};

/// At most this many problems are listed (all are counted).
pub const MAX_LISTED: usize = 64;

/// The parameters `--no-superblock` takes from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplicitParams {
    /// `--format`.
    pub hash_type: HashType,
    /// `--hash`.
    pub algorithm: Algorithm,
    /// `--data-block-size`.
    pub data_block_size: u32,
    /// `--hash-block-size`.
    pub hash_block_size: u32,
    /// `--data-blocks`; `None` is every whole block of the data device.
    pub data_blocks: Option<u64>,
    /// `--salt` (empty for `-`).
    pub salt: Vec<u8>,
}

impl Default for ExplicitParams {
    fn default() -> Self {
        ExplicitParams {
            hash_type: HashType::Normal,
            algorithm: Algorithm::Sha256,
            data_block_size: DEFAULT_BLOCK_SIZE,
            hash_block_size: DEFAULT_BLOCK_SIZE,
            data_blocks: None,
            salt: Vec::new(),
        }
    }
}

/// How to verify.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyOptions {
    /// `--hash-offset` in bytes: where the superblock (or, without one, the
    /// tree) is.
    pub hash_offset: u64,
    /// `Some` for `--no-superblock`, with the parameters to use.
    pub no_superblock: Option<ExplicitParams>,
    /// Hashing threads; `None` is one per core.
    pub threads: Option<usize>,
    /// How the data device is read.
    pub read_mode: ReadMode,
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// A data block's digest does not match its trusted slot.
    DataBlock {
        /// Index of the block.
        index: u64,
        /// Byte offset on the data device.
        offset: u64,
    },
    /// A stored hash block does not match its trusted parent digest.
    HashBlock {
        /// Tree level (0 holds the data blocks' digests).
        level: usize,
        /// Index of the block in its level.
        index: u64,
        /// Byte offset on the hash device.
        offset: u64,
    },
    /// The tree is consistent with the data, but its root is not the root
    /// hash given.
    RootHash {
        /// The root hash given.
        expected: Vec<u8>,
        /// The root hash of the data.
        computed: Vec<u8>,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::DataBlock { index, offset } => {
                write!(
                    f,
                    "data block {index} (data device offset {offset}) does not match its hash"
                )
            }
            Corruption::HashBlock {
                level,
                index,
                offset,
            } => write!(
                f,
                "hash block {index} of level {level} (hash device offset {offset}) does not match its parent"
            ),
            Corruption::RootHash { expected, computed } => write!(
                f,
                "root hash mismatch: expected {}, the data gives {}",
                hex(expected),
                hex(computed)
            ),
        }
    }
}

/// Lower-case hex, as veritysetup prints hashes and salts.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A verify step that failed, or the verdict that the data is corrupt.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// Opening a device failed.
    #[error("cannot open {path}")]
    Open {
        /// The device.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading the hash device failed (or it is too short).
    #[error("cannot read {len} bytes at offset {offset} of hash device {path}")]
    ReadHash {
        /// The hash device.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// How much.
        len: u64,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The superblock is invalid.
    #[error("{path} has no valid verity superblock at offset {offset}")]
    Superblock {
        /// The hash device.
        path: PathBuf,
        /// Where it was looked for.
        offset: u64,
        /// What is wrong with it.
        #[source]
        source: SuperblockError,
    },
    /// The data device holds less than one block (`--no-superblock`
    /// without `--data-blocks`).
    #[error("data device {path} ({size} bytes) holds no whole {block_size}-byte block")]
    NoDataBlocks {
        /// The data device.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The data block size.
        block_size: u32,
    },
    /// The layout is invalid.
    #[error("invalid hash tree layout")]
    Geometry(#[source] GeometryError),
    /// The root hash has the wrong length for the algorithm.
    #[error("root hash has {got} bytes, {algorithm} digests have {expected}")]
    RootHashLength {
        /// The algorithm.
        algorithm: Algorithm,
        /// Its digest size.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// Hashing the data failed.
    #[error("cannot hash the data")]
    Tree(#[source] TreeError),
    /// The data or the hash device is corrupt (or the root hash wrong).
    #[error(
        "verification of {data} against {hash} failed: {total} problem(s), the first: {}",
        .corruptions.first().map(ToString::to_string).unwrap_or_default()
    )]
    Corrupt {
        /// The data device.
        data: PathBuf,
        /// The hash device.
        hash: PathBuf,
        /// Up to [`MAX_LISTED`] problems, top-down.
        corruptions: Vec<Corruption>,
        /// How many problems there are in all.
        total: u64,
    },
}

impl VerifyError {
    /// The problems found, when this is a verdict about the contents
    /// (empty for a failure to check).
    pub fn corruptions(&self) -> &[Corruption] {
        match self {
            VerifyError::Corrupt { corruptions, .. } => corruptions,
            _ => &[],
        }
    }
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The layout checked.
    pub geometry: Geometry,
    /// The superblock read, if any.
    pub superblock: Option<Superblock>,
}

/// Reads and parses the superblock at `offset` of `path`.
pub fn read_superblock(path: &Path, offset: u64) -> Result<Superblock, VerifyError> {
    let file = File::open(path).map_err(|source| VerifyError::Open {
        path: path.to_owned(),
        source,
    })?;
    let mut bytes = [0u8; superblock::SIZE];
    file.read_exact_at(&mut bytes, offset)
        .map_err(|source| VerifyError::ReadHash {
            path: path.to_owned(),
            offset,
            len: superblock::SIZE as u64,
            source,
        })?;
    Superblock::parse(&bytes).map_err(|source| VerifyError::Superblock {
        path: path.to_owned(),
        offset,
        source,
    })
}

/// Verifies `data` against the tree on `hash` and `root_hash`.
pub fn verify(
    data: &Path,
    hash: &Path,
    root_hash: &[u8],
    opts: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let open = |path: &Path| {
        File::open(path).map_err(|source| VerifyError::Open {
            path: path.to_owned(),
            source,
        })
    };
    let data_file = open(data)?;
    let hash_file = open(hash)?;
    let (sb, hash_type, algorithm, dbs, hbs, blocks, salt) = match &opts.no_superblock {
        None => {
            let sb = read_superblock(hash, opts.hash_offset)?;
            let fields = (
                sb.hash_type,
                sb.algorithm,
                sb.data_block_size,
                sb.hash_block_size,
                sb.data_blocks,
                sb.salt.clone(),
            );
            (
                Some(sb),
                fields.0,
                fields.1,
                fields.2,
                fields.3,
                fields.4,
                fields.5,
            )
        }
        Some(p) => {
            let blocks = match p.data_blocks {
                Some(n) if n > 0 => n,
                _ => {
                    let size =
                        tree::device_size(&data_file).map_err(|source| VerifyError::Open {
                            path: data.to_owned(),
                            source,
                        })?;
                    let n = size / u64::from(p.data_block_size.max(1));
                    if n == 0 {
                        return Err(VerifyError::NoDataBlocks {
                            path: data.to_owned(),
                            size,
                            block_size: p.data_block_size,
                        });
                    }
                    n
                }
            };
            let p = p.clone();
            (
                None,
                p.hash_type,
                p.algorithm,
                p.data_block_size,
                p.hash_block_size,
                blocks,
                p.salt,
            )
        }
    };
    if root_hash.len() != algorithm.digest_size() {
        return Err(VerifyError::RootHashLength {
            algorithm,
            expected: algorithm.digest_size(),
            got: root_hash.len(),
        });
    }
    let geometry = Geometry::new(GeometryParams {
        hash_type,
        algorithm,
        data_block_size: dbs,
        hash_block_size: hbs,
        data_blocks: blocks,
        hash_offset: opts.hash_offset,
        superblock: sb.is_some(),
    })
    .map_err(VerifyError::Geometry)?;

    // The stored tree, whole (it is small next to the data).
    let mut stored = vec![0u8; geometry.tree_bytes() as usize];
    hash_file
        .read_exact_at(&mut stored, geometry.tree_offset())
        .map_err(|source| VerifyError::ReadHash {
            path: hash.to_owned(),
            offset: geometry.tree_offset(),
            len: geometry.tree_bytes(),
            source,
        })?;
    let computed = tree::build(
        &data_file,
        data,
        &geometry,
        hash_type,
        &salt,
        &TreeOptions {
            threads: opts.threads,
            read_mode: opts.read_mode,
        },
    )
    .map_err(VerifyError::Tree)?;
    if computed.bytes == stored && computed.root == root_hash {
        return Ok(VerifyReport {
            geometry,
            superblock: sb,
        });
    }
    let (corruptions, total) = diagnose(&geometry, hash_type, &salt, &stored, &computed, root_hash);
    Err(VerifyError::Corrupt {
        data: data.to_owned(),
        hash: hash.to_owned(),
        corruptions,
        total,
    })
}

/// Names what is wrong, top-down (see the module documentation). Pure.
pub fn diagnose(
    g: &Geometry,
    hash_type: HashType,
    salt: &[u8],
    stored: &[u8],
    computed: &Tree,
    root_hash: &[u8],
) -> (Vec<Corruption>, u64) {
    let mut found = Found::default();
    let mut report = |c: Corruption| found.push(c);
    let root_mismatch = || Corruption::RootHash {
        expected: root_hash.to_vec(),
        computed: computed.root.clone(),
    };
    let levels = g.levels();
    if levels.is_empty() {
        if computed.root != root_hash {
            report(root_mismatch());
        }
        return (found.list, found.total);
    }
    let algorithm = g.params().algorithm;
    let hbs = g.hash_block_size() as usize;
    let digest = g.digest_size();
    let per = g.digests_per_block();
    let block = |bytes: &'_ [u8], i: u64| -> Vec<u8> {
        bytes
            .get(i as usize * hbs..(i as usize + 1) * hbs)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    let slot = |bytes: &'_ [u8], c: u64| -> Vec<u8> {
        let at = g.slot_position(c) as usize;
        bytes
            .get(at..at + digest)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };

    // `trusted[i]`: the digest block i of the current level must have, or
    // `None` when its parent could not be trusted.
    let top = levels.len() - 1;
    let mut trusted: Vec<Option<Vec<u8>>> = vec![Some(root_hash.to_vec())];
    for level in (0..=top).rev() {
        let stored_level = tree::level_slice(stored, g, level).unwrap_or_default();
        let computed_level = tree::level_slice(&computed.bytes, g, level).unwrap_or_default();
        let mut authentic = vec![false; levels[level].blocks as usize];
        for (i, want) in trusted.iter().enumerate() {
            let Some(want) = want else { continue };
            let i = i as u64;
            let mine = block(stored_level, i);
            if &tree::digest_block(algorithm, hash_type, salt, &mine) == want {
                authentic[i as usize] = true;
            } else if level == top && mine == block(computed_level, i) {
                // The tree is what the data gives: the root hash is wrong.
                report(root_mismatch());
            } else {
                report(Corruption::HashBlock {
                    level,
                    index: i,
                    offset: g.hash_block_offset(level, i).unwrap_or(0),
                });
            }
        }
        if level > 0 {
            // The children's trusted digests come from authentic slots.
            trusted = (0..levels[level - 1].blocks)
                .map(|c| authentic[(c / per) as usize].then(|| slot(stored_level, c)))
                .collect();
            continue;
        }
        // Data blocks under authentic level-0 blocks.
        for (i, _) in authentic.iter().enumerate().filter(|(_, a)| **a) {
            let i = i as u64;
            if block(stored_level, i) == block(computed_level, i) {
                continue;
            }
            let last = ((i + 1) * per).min(g.params().data_blocks);
            for k in i * per..last {
                if slot(stored_level, k) != slot(computed_level, k) {
                    report(Corruption::DataBlock {
                        index: k,
                        offset: k * g.data_block_size(),
                    });
                }
            }
        }
    }
    if found.total == 0 {
        // Everything the root vouches for matches, yet the bytes differ: a
        // hash block whose unused (zero) area is not zero, which
        // veritysetup refuses too. Name the first one.
        for (level, l) in levels.iter().enumerate() {
            let s = tree::level_slice(stored, g, level).unwrap_or_default();
            let c = tree::level_slice(&computed.bytes, g, level).unwrap_or_default();
            if let Some(i) = (0..l.blocks).find(|&i| block(s, i) != block(c, i)) {
                found.push(Corruption::HashBlock {
                    level,
                    index: i,
                    offset: g.hash_block_offset(level, i).unwrap_or(0),
                });
                break;
            }
        }
    }
    (found.list, found.total)
}

/// The problems listed so far, and how many there are in all.
#[derive(Default)]
struct Found {
    list: Vec<Corruption>,
    total: u64,
}

impl Found {
    fn push(&mut self, c: Corruption) {
        self.total += 1;
        if self.list.len() < MAX_LISTED {
            self.list.push(c);
        }
    }
}
