//! `veritysetup format`, byte for byte: the hash tree (built in parallel by
//! [`crate::tree`]), then the FEC parity ([`crate::fec`]) if asked for,
//! then the superblock, in veritysetup's order.
//!
//! Defaults are veritysetup 2.6's: hash type 1, sha256, 4096-byte blocks,
//! a 32-byte random salt, a random UUID, all data blocks of the device
//! (a trailing partial block is ignored, as veritysetup does). Like
//! veritysetup, the hash device is created (mode 0600) when missing and
//! never truncated: bytes past the hash area are left alone.
//!
//! Where liftoff is stricter than veritysetup 2.6.1: a hash offset that is
//! not a multiple of the hash block size is refused (veritysetup moves the
//! tree to the next block boundary), a salt over 256 bytes is refused with
//! a message (veritysetup exits 1 silently), and the UUID is checked before
//! anything is written (veritysetup checks it after writing the tree).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::fec::{self, CoveredDevices, FecError, FecLayout, FecParams};
use crate::geometry::{Geometry, GeometryError, GeometryParams};
use crate::superblock::{self, Superblock, Uuid};
use crate::tree::{self, ReadMode, TreeError, TreeOptions};
use crate::{Algorithm, HashType};

/// veritysetup's default salt size in bytes (`DEFAULT_VERITY_SALT_SIZE`).
pub const DEFAULT_SALT_SIZE: usize = 32;

/// veritysetup's default block size (`DEFAULT_VERITY_DATA_BLOCK`,
/// `DEFAULT_VERITY_HASH_BLOCK`).
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;

/// veritysetup's default FEC roots (`DEFAULT_VERITY_FEC_ROOTS`).
pub const DEFAULT_FEC_ROOTS: u8 = 2;

/// Where and how to write FEC parity (`--fec-device`, `--fec-offset`,
/// `--fec-roots`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FecOptions {
    /// The device or file for the parity (created when missing).
    pub device: PathBuf,
    /// Byte offset of the parity on it.
    pub offset: u64,
    /// Parity bytes per codeword, 2..=24.
    pub roots: u8,
}

/// `veritysetup format`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatOptions {
    /// `--format` (default 1).
    pub hash_type: HashType,
    /// `--hash` (default sha256).
    pub algorithm: Algorithm,
    /// `--data-block-size` (default 4096).
    pub data_block_size: u32,
    /// `--hash-block-size` (default 4096).
    pub hash_block_size: u32,
    /// `--data-blocks`; `None` (or veritysetup's 0) means every whole block
    /// of the data device.
    pub data_blocks: Option<u64>,
    /// `--hash-offset` in bytes (a multiple of the hash block size).
    pub hash_offset: u64,
    /// `--salt`; `None` is 32 random bytes, `Some(vec![])` no salt (`-`).
    pub salt: Option<Vec<u8>>,
    /// `--uuid`; `None` is a random one. Unused with `superblock: false`.
    pub uuid: Option<Uuid>,
    /// `false` for `--no-superblock`.
    pub superblock: bool,
    /// `--fec-device` and friends.
    pub fec: Option<FecOptions>,
    /// Hashing threads; `None` is one per core.
    pub threads: Option<usize>,
    /// How the data device is read.
    pub read_mode: ReadMode,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            hash_type: HashType::Normal,
            algorithm: Algorithm::Sha256,
            data_block_size: DEFAULT_BLOCK_SIZE,
            hash_block_size: DEFAULT_BLOCK_SIZE,
            data_blocks: None,
            hash_offset: 0,
            salt: None,
            uuid: None,
            superblock: true,
            fec: None,
            threads: None,
            read_mode: ReadMode::default(),
        }
    }
}

/// What `format` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatReport {
    /// The layout.
    pub geometry: Geometry,
    /// The root hash.
    pub root_hash: Vec<u8>,
    /// The salt used.
    pub salt: Vec<u8>,
    /// The superblock's UUID (`None` without a superblock).
    pub uuid: Option<Uuid>,
    /// The FEC parity written, if any.
    pub fec: Option<FecLayout>,
}

/// A format step that failed.
#[derive(Debug, Error)]
pub enum FormatError {
    /// The salt does not fit the superblock.
    #[error("salt of {len} bytes is too long (at most {max})", max = superblock::MAX_SALT_SIZE)]
    SaltTooLong {
        /// The salt's length.
        len: usize,
    },
    /// FEC needs equal data and hash block sizes.
    #[error(
        "fec needs equal block sizes, but the data block size is {data_block_size} and the hash block size {hash_block_size}"
    )]
    FecBlockSizes {
        /// `--data-block-size`.
        data_block_size: u32,
        /// `--hash-block-size`.
        hash_block_size: u32,
    },
    /// Opening the data device failed.
    #[error("cannot open data device {path}")]
    OpenData {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Opening or creating the hash device failed.
    #[error("cannot open hash device {path}")]
    OpenHash {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading a device's metadata or size failed.
    #[error("cannot find the size of {path}")]
    Size {
        /// The device.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The data device holds less than one block.
    #[error("data device {path} ({size} bytes) holds no whole {block_size}-byte block")]
    NoDataBlocks {
        /// The data device.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The data block size.
        block_size: u32,
    },
    /// The data device is smaller than `--data-blocks` blocks.
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
        /// `--data-blocks`.
        blocks: u64,
    },
    /// Data and hash share a device and the hash area starts inside the data.
    #[error(
        "data area of {path} (up to byte {data_end}) overlaps the hash area at offset {hash_offset}"
    )]
    Overlap {
        /// The shared device.
        path: PathBuf,
        /// Where the data ends.
        data_end: u64,
        /// `--hash-offset`.
        hash_offset: u64,
    },
    /// The layout is invalid.
    #[error("invalid hash tree layout")]
    Geometry(#[source] GeometryError),
    /// A hash block device is too small for the hash area.
    #[error("hash device {path} has {size} bytes, the hash area needs {needed}")]
    HashTooSmall {
        /// The hash device.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The end of the hash area.
        needed: u64,
    },
    /// Getting random bytes (salt, UUID) failed.
    #[error("cannot get random bytes for the {what}")]
    Random {
        /// "salt" or "uuid".
        what: &'static str,
        /// Why.
        #[source]
        source: getrandom::Error,
    },
    /// Hashing failed.
    #[error("cannot build the hash tree")]
    Tree(#[source] TreeError),
    /// Growing the hash file failed.
    #[error("cannot extend hash device {path} to {len} bytes")]
    Extend {
        /// The hash file.
        path: PathBuf,
        /// The size asked for.
        len: u64,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing the tree or the superblock failed.
    #[error("cannot write {len} bytes at offset {offset} of hash device {path}")]
    WriteHash {
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
    /// Flushing the hash device failed.
    #[error("cannot sync hash device {path}")]
    Sync {
        /// The hash device.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing the FEC parity failed.
    #[error("cannot write fec parity")]
    Fec(#[source] FecError),
}

/// Whether two open files are the same file or block device.
pub fn same_device(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    if a.file_type().is_block_device() && b.file_type().is_block_device() {
        a.rdev() == b.rdev()
    } else {
        a.dev() == b.dev() && a.ino() == b.ino()
    }
}

/// 16 random bytes as a version 4 UUID.
pub fn random_uuid() -> Result<Uuid, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(Uuid::v4_from_random(bytes))
}

/// Formats `hash` for the data on `data`, as `veritysetup format data hash`
/// with these options.
pub fn format(data: &Path, hash: &Path, opts: &FormatOptions) -> Result<FormatReport, FormatError> {
    // 1. Check what needs no device.
    if let Some(salt) = &opts.salt
        && salt.len() > superblock::MAX_SALT_SIZE
    {
        return Err(FormatError::SaltTooLong { len: salt.len() });
    }
    if opts.fec.is_some() && opts.data_block_size != opts.hash_block_size {
        return Err(FormatError::FecBlockSizes {
            data_block_size: opts.data_block_size,
            hash_block_size: opts.hash_block_size,
        });
    }
    let size_error = |path: &Path| {
        let path = path.to_owned();
        move |source| FormatError::Size { path, source }
    };

    // 2. The data device decides the block count.
    let data_file = File::open(data).map_err(|source| FormatError::OpenData {
        path: data.to_owned(),
        source,
    })?;
    let data_size = tree::device_size(&data_file).map_err(size_error(data))?;
    let data_blocks = match opts.data_blocks {
        Some(n) if n > 0 => n,
        _ => data_size / u64::from(opts.data_block_size.max(1)),
    };
    let layout = Geometry::new(GeometryParams {
        hash_type: opts.hash_type,
        algorithm: opts.algorithm,
        data_block_size: opts.data_block_size,
        hash_block_size: opts.hash_block_size,
        data_blocks,
        hash_offset: opts.hash_offset,
        superblock: opts.superblock,
    });
    let geometry = match layout {
        Err(GeometryError::NoDataBlocks) => {
            return Err(FormatError::NoDataBlocks {
                path: data.to_owned(),
                size: data_size,
                block_size: opts.data_block_size,
            });
        }
        other => other.map_err(FormatError::Geometry)?,
    };
    if data_size < geometry.data_bytes() {
        return Err(FormatError::DataTooSmall {
            path: data.to_owned(),
            size: data_size,
            needed: geometry.data_bytes(),
            blocks: data_blocks,
        });
    }

    // 3. The hash device: created if missing, never truncated.
    let hash_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(hash)
        .map_err(|source| FormatError::OpenHash {
            path: hash.to_owned(),
            source,
        })?;
    let data_meta = data_file.metadata().map_err(size_error(data))?;
    let hash_meta = hash_file.metadata().map_err(size_error(hash))?;
    if same_device(&data_meta, &hash_meta) && geometry.data_bytes() > opts.hash_offset {
        return Err(FormatError::Overlap {
            path: hash.to_owned(),
            data_end: geometry.data_bytes(),
            hash_offset: opts.hash_offset,
        });
    }
    let end = geometry.hash_device_end();
    if hash_meta.file_type().is_block_device() {
        let size = tree::device_size(&hash_file).map_err(size_error(hash))?;
        if size < end {
            return Err(FormatError::HashTooSmall {
                path: hash.to_owned(),
                size,
                needed: end,
            });
        }
    }

    // 4. Salt, then the tree.
    let salt = match &opts.salt {
        Some(salt) => salt.clone(),
        None => {
            let mut salt = vec![0u8; DEFAULT_SALT_SIZE];
            getrandom::fill(&mut salt).map_err(|source| FormatError::Random {
                what: "salt",
                source,
            })?;
            salt
        }
    };
    let uuid = match (opts.superblock, opts.uuid) {
        (false, _) => None,
        (true, Some(u)) => Some(u),
        (true, None) => Some(random_uuid().map_err(|source| FormatError::Random {
            what: "uuid",
            source,
        })?),
    };
    let tree = tree::build(
        &data_file,
        data,
        &geometry,
        opts.hash_type,
        &salt,
        &TreeOptions {
            threads: opts.threads,
            read_mode: opts.read_mode,
        },
    )
    .map_err(FormatError::Tree)?;
    write_at(&hash_file, hash, &tree.bytes, geometry.tree_offset())?;

    // 5. FEC parity, before the superblock as veritysetup does (the parity
    // does not cover the superblock).
    let fec = match &opts.fec {
        None => None,
        Some(f) => {
            hash_file.sync_data().map_err(|source| FormatError::Sync {
                path: hash.to_owned(),
                source,
            })?;
            let covered = CoveredDevices {
                data,
                data_blocks,
                hash,
                hash_start_block: geometry.tree_start_block(),
                hash_blocks: geometry.tree_blocks(),
                block_size: opts.data_block_size,
            };
            let areas = fec::areas_for(&covered, &f.device, f.offset).map_err(FormatError::Fec)?;
            let params = FecParams {
                roots: f.roots,
                block_size: opts.data_block_size,
            };
            Some(
                fec::write_parity(&areas, &params, &f.device, f.offset)
                    .map_err(FormatError::Fec)?,
            )
        }
    };

    // 6. The superblock.
    if let Some(uuid) = uuid {
        let sb = Superblock {
            hash_type: opts.hash_type,
            uuid,
            algorithm: opts.algorithm,
            data_block_size: opts.data_block_size,
            hash_block_size: opts.hash_block_size,
            data_blocks,
            salt: salt.clone(),
        };
        write_at(&hash_file, hash, &sb.to_bytes(), opts.hash_offset)?;
        if !hash_meta.file_type().is_block_device() {
            // veritysetup writes the superblock as one whole I/O block (the
            // file system's block, at most a page, at most a hash block),
            // which can grow a short file: mirrored for identical files.
            let io_block = nix::sys::statvfs::fstatvfs(&hash_file)
                .ok()
                .map(|v| v.block_size())
                .filter(|&b| b > 0 && b <= crate::sys::page_size())
                .unwrap_or_else(crate::sys::page_size);
            let len = opts.hash_offset + io_block.min(geometry.hash_block_size());
            let current = tree::device_size(&hash_file).map_err(size_error(hash))?;
            if current < len {
                hash_file
                    .set_len(len)
                    .map_err(|source| FormatError::Extend {
                        path: hash.to_owned(),
                        len,
                        source,
                    })?;
            }
        }
    }
    hash_file.sync_all().map_err(|source| FormatError::Sync {
        path: hash.to_owned(),
        source,
    })?;
    Ok(FormatReport {
        geometry,
        root_hash: tree.root,
        salt,
        uuid,
        fec,
    })
}

fn write_at(file: &File, path: &Path, bytes: &[u8], offset: u64) -> Result<(), FormatError> {
    file.write_all_at(bytes, offset)
        .map_err(|source| FormatError::WriteHash {
            path: path.to_owned(),
            offset,
            len: bytes.len() as u64,
            source,
        })
}
