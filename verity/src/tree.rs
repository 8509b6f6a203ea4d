//! Builds a hash tree in memory, in parallel, streaming the data device:
//! the machinery under both [`crate::format`] and [`crate::verify`].
//!
//! How it goes fast (measured on a 2-core SHA-NI machine, 1 GiB in the page
//! cache):
//!
//! * The data is cut into chunks of about 4 MiB. Worker threads (one per
//!   core by default) take the next chunk from a shared queue, map it
//!   read-only ([`crate::sys::Mapping`]), hash its blocks in place and drop
//!   the mapping: no copy, and memory stays bounded at one window per
//!   thread whatever the data size. Where a device cannot be mapped the
//!   worker falls back to `pread` into a reused buffer.
//! * Each chunk's digests land directly in their slots of level 0, a
//!   disjoint `&mut` region of the tree buffer, so workers share nothing
//!   but the queue.
//! * SHA-256 (veritysetup's default) hashes 16 or 4 blocks at once
//!   ([`crate::sha256x`]: AVX-512 or SHA-NI lanes), about twice the speed
//!   of one stream per core; SHA-1 and SHA-512 use the RustCrypto crates.
//! * Type 1 hashes the salt first: the salted hasher state is computed once
//!   and reused for every block. No allocation per block.
//! * The upper levels are hashed from memory with the same queue, and the
//!   whole tree is handed back as one buffer in on-disk order, for one
//!   write.
//!
//! Peak memory: the tree (about 1/128 of the data for SHA-256 and 4 KiB
//! blocks) plus one window per thread.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use sha2::Digest;
use thiserror::Error;

use crate::geometry::Geometry;
use crate::sha256x::SaltedSha256;
use crate::sys::Mapping;
use crate::{Algorithm, HashType};

/// Bytes of data one worker hashes per step (a multiple of every page size
/// and block size liftoff accepts).
const CHUNK_BYTES: u64 = 4 << 20;

/// Bytes of a lower level one worker hashes per step.
const LEVEL_CHUNK_BYTES: u64 = 1 << 20;

/// How workers read the data device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Map a window per chunk (falls back to `pread` where mapping fails).
    #[default]
    Mmap,
    /// `pread` each chunk into a per-thread buffer.
    Pread,
}

/// How to build a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeOptions {
    /// Worker threads; `None` is one per available core.
    pub threads: Option<usize>,
    /// How workers read the data.
    pub read_mode: ReadMode,
}

impl TreeOptions {
    fn thread_count(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}

/// Why a tree could not be built.
#[derive(Debug, Error)]
pub enum TreeError {
    /// Finding the data device's size failed.
    #[error("cannot find the size of data device {path}")]
    DataSize {
        /// The data device.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The data device holds fewer bytes than the blocks to hash.
    #[error(
        "data device {path} has {size} bytes, fewer than the {needed} that {blocks} data blocks need"
    )]
    DataTooSmall {
        /// The data device.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// Bytes needed.
        needed: u64,
        /// Data blocks asked for.
        blocks: u64,
    },
    /// Reading data failed.
    #[error("cannot read {len} bytes at offset {offset} of data device {path}")]
    ReadData {
        /// The data device.
        path: PathBuf,
        /// Where the read started.
        offset: u64,
        /// How much was asked for.
        len: u64,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// A worker thread panicked (a bug).
    #[error("a hashing thread panicked")]
    WorkerPanicked,
}

/// The tree as it goes on the hash device, and its root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The tree's bytes in on-disk order (top level first), to be written
    /// at [`Geometry::tree_offset`]. Empty for a single data block.
    pub bytes: Vec<u8>,
    /// The root hash.
    pub root: Vec<u8>,
}

impl Tree {
    /// The bytes of one level (0 = the data blocks' digests).
    pub fn level<'a>(&'a self, geometry: &Geometry, level: usize) -> Option<&'a [u8]> {
        level_slice(&self.bytes, geometry, level)
    }
}

pub(crate) fn level_slice<'a>(tree: &'a [u8], g: &Geometry, level: usize) -> Option<&'a [u8]> {
    let start = g.level_offset_in_tree(level)? as usize;
    let len = (g.levels()[level].blocks * g.hash_block_size()) as usize;
    tree.get(start..start + len)
}

/// The size of a file or block device (seeking to its end works for both).
pub fn device_size(file: &File) -> io::Result<u64> {
    let mut f = file;
    let size = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(size)
}

/// Hashes one block the way dm-verity does for this hash type and salt.
pub fn digest_block(
    algorithm: Algorithm,
    hash_type: HashType,
    salt: &[u8],
    block: &[u8],
) -> Vec<u8> {
    let mut out = vec![0u8; algorithm.digest_size()];
    match algorithm {
        Algorithm::Sha1 => Salted::<sha1::Sha1>::new(hash_type, salt).hash(block, &mut out),
        Algorithm::Sha256 => SaltedSha256::new(hash_type, salt).hash(block, &mut out),
        Algorithm::Sha512 => Salted::<sha2::Sha512>::new(hash_type, salt).hash(block, &mut out),
    }
    out
}

/// Builds the tree over the data blocks `geometry` describes.
pub fn build(
    data: &File,
    data_path: &Path,
    geometry: &Geometry,
    hash_type: HashType,
    salt: &[u8],
    options: &TreeOptions,
) -> Result<Tree, TreeError> {
    // Checked first: a mapping past the end of a file would fault (SIGBUS).
    let size = device_size(data).map_err(|source| TreeError::DataSize {
        path: data_path.to_owned(),
        source,
    })?;
    if size < geometry.data_bytes() {
        return Err(TreeError::DataTooSmall {
            path: data_path.to_owned(),
            size,
            needed: geometry.data_bytes(),
            blocks: geometry.params().data_blocks,
        });
    }
    let source = FileSource {
        file: data,
        path: data_path,
        mode: options.read_mode,
    };
    let threads = options.thread_count();
    match geometry.params().algorithm {
        Algorithm::Sha1 => build_with(
            &Salted::<sha1::Sha1>::new(hash_type, salt),
            &source,
            geometry,
            threads,
        ),
        Algorithm::Sha256 => build_with(
            &SaltedSha256::new(hash_type, salt),
            &source,
            geometry,
            threads,
        ),
        Algorithm::Sha512 => build_with(
            &Salted::<sha2::Sha512>::new(hash_type, salt),
            &source,
            geometry,
            threads,
        ),
    }
}

/// A digest with the salt placed as the hash type wants it.
struct Salted<D> {
    hash_type: HashType,
    /// Type 1: the state after hashing the salt. Type 0: a fresh state.
    base: D,
    salt: Vec<u8>,
}

/// Hashes blocks the way dm-verity does, one by one or many at once.
trait BlockHasher: Sync {
    /// Writes the block's digest to `out` (exactly the digest's length).
    fn hash(&self, block: &[u8], out: &mut [u8]);

    /// Calls `emit(j, digest)` for each `block_len`-byte block `j` of
    /// `data`, in order.
    fn hash_each(&self, data: &[u8], block_len: usize, emit: &mut dyn FnMut(usize, &[u8]));
}

impl<D: Digest + Clone + Sync> BlockHasher for Salted<D> {
    fn hash(&self, block: &[u8], out: &mut [u8]) {
        Salted::hash(self, block, out);
    }

    fn hash_each(&self, data: &[u8], block_len: usize, emit: &mut dyn FnMut(usize, &[u8])) {
        let mut out = vec![0u8; <D as Digest>::output_size()];
        for (j, block) in data.chunks_exact(block_len).enumerate() {
            Salted::hash(self, block, &mut out);
            emit(j, &out);
        }
    }
}

/// SHA-256 hashes several blocks at once (see [`crate::sha256x`]).
impl BlockHasher for SaltedSha256 {
    fn hash(&self, block: &[u8], out: &mut [u8]) {
        out.copy_from_slice(&self.digest(block));
    }

    fn hash_each(&self, data: &[u8], block_len: usize, emit: &mut dyn FnMut(usize, &[u8])) {
        self.digest_each(data, block_len, |j, d| emit(j, d));
    }
}

impl<D: Digest + Clone> Salted<D> {
    fn new(hash_type: HashType, salt: &[u8]) -> Self {
        let mut base = D::new();
        if hash_type == HashType::Normal {
            base.update(salt);
        }
        Salted {
            hash_type,
            base,
            salt: salt.to_vec(),
        }
    }

    /// Writes the block's digest to `out` (exactly the digest's length).
    fn hash(&self, block: &[u8], out: &mut [u8]) {
        let mut h = self.base.clone();
        h.update(block);
        if self.hash_type == HashType::ChromeOs {
            h.update(&self.salt);
        }
        out.copy_from_slice(&h.finalize());
    }
}

/// Somewhere blocks come from.
trait Source: Sync {
    /// Calls `f` with blocks `first..first + count` (each `block_size`
    /// bytes) as one slice.
    fn with_blocks(
        &self,
        first: u64,
        count: u64,
        block_size: u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TreeError>;
}

struct FileSource<'a> {
    file: &'a File,
    path: &'a Path,
    mode: ReadMode,
}

impl Source for FileSource<'_> {
    fn with_blocks(
        &self,
        first: u64,
        count: u64,
        block_size: u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TreeError> {
        let offset = first * block_size;
        let len = count * block_size;
        if self.mode == ReadMode::Mmap {
            // Offsets are multiples of CHUNK_BYTES, hence page-aligned.
            if let Ok(map) = Mapping::map(self.file, offset, len as usize) {
                f(map.as_slice());
                return Ok(());
            }
        }
        scratch.resize(len as usize, 0);
        self.file
            .read_exact_at(scratch, offset)
            .map_err(|source| TreeError::ReadData {
                path: self.path.to_owned(),
                offset,
                len,
                source,
            })?;
        f(scratch);
        Ok(())
    }
}

struct MemorySource<'a>(&'a [u8]);

impl Source for MemorySource<'_> {
    fn with_blocks(
        &self,
        first: u64,
        count: u64,
        block_size: u64,
        _scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TreeError> {
        let start = (first * block_size) as usize;
        f(&self.0[start..start + (count * block_size) as usize]);
        Ok(())
    }
}

fn build_with<H: BlockHasher>(
    hasher: &H,
    data: &FileSource<'_>,
    g: &Geometry,
    threads: usize,
) -> Result<Tree, TreeError> {
    let digest = g.digest_size();
    let dbs = g.data_block_size();
    let hbs = g.hash_block_size();
    let levels = g.levels();
    let mut tree = vec![0u8; g.tree_bytes() as usize];
    let mut root = vec![0u8; digest];
    if levels.is_empty() {
        // One data block: its digest is the root hash.
        data.with_blocks(0, 1, dbs, &mut Vec::new(), &mut |b| {
            hasher.hash(b, &mut root)
        })?;
        return Ok(Tree { bytes: tree, root });
    }
    // Level 0 from the data device.
    let offset0 = g.level_offset_in_tree(0).unwrap_or(0) as usize;
    hash_level(
        hasher,
        data,
        g.params().data_blocks,
        dbs,
        (CHUNK_BYTES / dbs).max(1),
        &mut tree[offset0..],
        g,
        threads,
    )?;
    // Each upper level from the one below it, which lies after it.
    for i in 1..levels.len() {
        let below = g.level_offset_in_tree(i - 1).unwrap_or(0) as usize;
        let here = g.level_offset_in_tree(i).unwrap_or(0) as usize;
        let (head, tail) = tree.split_at_mut(below);
        let input = &tail[..(levels[i - 1].blocks * hbs) as usize];
        let output = &mut head[here..here + (levels[i].blocks * hbs) as usize];
        hash_level(
            hasher,
            &MemorySource(input),
            levels[i - 1].blocks,
            hbs,
            (LEVEL_CHUNK_BYTES / hbs).max(1),
            output,
            g,
            threads,
        )?;
    }
    // The top level is one block; its digest is the root hash.
    let top = g.level_offset_in_tree(levels.len() - 1).unwrap_or(0) as usize;
    hasher.hash(&tree[top..top + hbs as usize], &mut root);
    Ok(Tree { bytes: tree, root })
}

/// Hashes `blocks` blocks of `source` into the slots of `out` (a level's
/// bytes), `chunk` blocks per step, on `threads` threads.
#[allow(clippy::too_many_arguments)]
fn hash_level<H: BlockHasher>(
    hasher: &H,
    source: &dyn Source,
    blocks: u64,
    block_size: u64,
    chunk: u64,
    out: &mut [u8],
    g: &Geometry,
    threads: usize,
) -> Result<(), TreeError> {
    let digest = g.digest_size();
    // Cut `out` into one disjoint region per chunk: chunk c's digests lie
    // between the slots of its first block and of the next chunk's.
    let chunks = blocks.div_ceil(chunk);
    let mut regions = Vec::with_capacity(chunks as usize);
    let mut rest = out;
    for c in 0..chunks {
        let first = c * chunk;
        let end = if c + 1 == chunks {
            rest.len()
        } else {
            (g.slot_position(first + chunk) - g.slot_position(first)) as usize
        };
        let (region, tail) = rest.split_at_mut(end);
        regions.push((first, region));
        rest = tail;
    }
    let queue = Mutex::new(regions.into_iter());
    let failed = AtomicBool::new(false);
    let error = Mutex::new(None);
    let work = || {
        let mut scratch = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((first, region)) = next else { break };
            let count = chunk.min(blocks - first);
            let base = g.slot_position(first);
            let result = source.with_blocks(first, count, block_size, &mut scratch, &mut |bytes| {
                hasher.hash_each(bytes, block_size as usize, &mut |j, d| {
                    let at = (g.slot_position(first + j as u64) - base) as usize;
                    region[at..at + digest].copy_from_slice(d);
                });
            });
            if let Err(e) = result {
                failed.store(true, Ordering::Relaxed);
                error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(e);
            }
        }
    };
    let threads = threads.min(chunks as usize).max(1);
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            for h in handles {
                if h.join().is_err() {
                    failed.store(true, Ordering::Relaxed);
                    error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(TreeError::WorkerPanicked);
                }
            }
        });
    }
    match error.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;
    use sha2::Digest;

    use super::*;
    use crate::geometry::GeometryParams;

    /// The simplest possible dm-verity tree, one level at a time, single
    /// threaded, straight from the format's description: the oracle.
    fn reference(
        data: &[u8],
        alg: Algorithm,
        ty: HashType,
        salt: &[u8],
        dbs: usize,
        hbs: usize,
        blocks: usize,
    ) -> (Vec<Vec<u8>>, Vec<u8>) {
        let digest = |block: &[u8]| -> Vec<u8> {
            let parts: [&[u8]; 2] = match ty {
                HashType::Normal => [salt, block],
                HashType::ChromeOs => [block, salt],
            };
            match alg {
                Algorithm::Sha1 => sha1::Sha1::digest(parts.concat()).to_vec(),
                Algorithm::Sha256 => sha2::Sha256::digest(parts.concat()).to_vec(),
                Algorithm::Sha512 => sha2::Sha512::digest(parts.concat()).to_vec(),
            }
        };
        let size = alg.digest_size();
        let mut per = 1;
        while per * 2 * size <= hbs {
            per *= 2;
        }
        let slot = match ty {
            HashType::Normal => size.next_power_of_two(),
            HashType::ChromeOs => size,
        };
        let mut digests: Vec<Vec<u8>> = data[..blocks * dbs].chunks(dbs).map(digest).collect();
        let mut levels = Vec::new();
        while digests.len() > 1 {
            let level: Vec<u8> = digests
                .chunks(per)
                .flat_map(|group| {
                    let mut block = vec![0u8; hbs];
                    for (i, d) in group.iter().enumerate() {
                        block[i * slot..i * slot + size].copy_from_slice(d);
                    }
                    block
                })
                .collect();
            digests = level.chunks(hbs).map(digest).collect();
            levels.push(level);
        }
        (levels, digests.remove(0))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn matches_the_reference(
            alg in prop::sample::select(Algorithm::ALL.to_vec()),
            chrome_os in any::<bool>(),
            salt in prop::collection::vec(any::<u8>(), 0..80),
            dbs_bits in 9u32..=12,
            hbs_bits in 9u32..=11,
            blocks in 1usize..300,
            tail in 0usize..600,
            threads in 1usize..4,
            pread in any::<bool>(),
            seed in any::<u8>(),
        ) {
            let ty = if chrome_os { HashType::ChromeOs } else { HashType::Normal };
            let (dbs, hbs) = (1usize << dbs_bits, 1usize << hbs_bits);
            let data: Vec<u8> = (0..blocks * dbs + tail)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
                .collect();
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&data).unwrap();
            let g = Geometry::new(GeometryParams {
                hash_type: ty,
                algorithm: alg,
                data_block_size: dbs as u32,
                hash_block_size: hbs as u32,
                data_blocks: blocks as u64,
                hash_offset: 0,
                superblock: true,
            }).unwrap();
            let opts = TreeOptions {
                threads: Some(threads),
                read_mode: if pread { ReadMode::Pread } else { ReadMode::Mmap },
            };
            let tree = build(&file, Path::new("test"), &g, ty, &salt, &opts).unwrap();
            let (levels, root) = reference(&data, alg, ty, &salt, dbs, hbs, blocks);
            prop_assert_eq!(&tree.root, &root);
            prop_assert_eq!(g.levels().len(), levels.len());
            for (i, level) in levels.iter().enumerate() {
                prop_assert_eq!(tree.level(&g, i).unwrap(), &level[..], "level {}", i);
            }
            prop_assert_eq!(digest_block(alg, ty, &salt, &data[..dbs]).len(), alg.digest_size());
        }
    }

    #[test]
    fn data_smaller_than_the_blocks_is_refused() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[1u8; 4096 * 3]).unwrap();
        let g = Geometry::new(GeometryParams {
            hash_type: HashType::Normal,
            algorithm: Algorithm::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 4,
            hash_offset: 0,
            superblock: true,
        })
        .unwrap();
        let e = build(
            &file,
            Path::new("img"),
            &g,
            HashType::Normal,
            &[],
            &TreeOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                TreeError::DataTooSmall {
                    size: 12288,
                    needed: 16384,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
