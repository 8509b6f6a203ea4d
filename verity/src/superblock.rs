//! The 512-byte verity superblock that veritysetup writes at the start of
//! the hash area (cryptsetup `lib/verity/verity.c`, `struct verity_sb`),
//! parsed from and serialized to bytes. Pure: the caller reads and writes
//! the device.
//!
//! Layout, little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | signature `verity\0\0` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | hash type (0 Chrome OS, 1 normal) |
//! | 16 | 16 | UUID of the hash device |
//! | 32 | 32 | algorithm name, NUL-padded, lower case |
//! | 64 | 4 | data block size |
//! | 68 | 4 | hash block size |
//! | 72 | 8 | number of data blocks |
//! | 80 | 2 | salt size |
//! | 82 | 6 | padding |
//! | 88 | 256 | salt, zero-padded |
//! | 344 | 168 | padding |
//!
//! Like veritysetup, parsing ignores the padding bytes.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::Algorithm;
use crate::geometry::{self, BlockKind};
use crate::hash::{HashType, UnknownHashType};

/// The superblock's size in bytes.
pub const SIZE: usize = 512;

/// The signature at offset 0.
pub const MAGIC: [u8; 8] = *b"verity\0\0";

/// The only superblock version there is.
pub const VERSION: u32 = 1;

/// The most salt the superblock (and veritysetup) can hold, in bytes.
pub const MAX_SALT_SIZE: usize = 256;

const ALGORITHM_FIELD: std::ops::Range<usize> = 32..64;
const SALT_FIELD: usize = 88;

/// Why bytes are not a valid superblock.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SuperblockError {
    /// Fewer than 512 bytes.
    #[error("superblock needs {SIZE} bytes, got {len}")]
    TooShort {
        /// How many bytes there were.
        len: usize,
    },
    /// The first 8 bytes are not `verity\0\0`.
    #[error("no verity superblock signature at offset 0 (found {found:02x?})")]
    BadMagic {
        /// The 8 bytes found.
        found: [u8; 8],
    },
    /// A version other than 1 (offset 8).
    #[error("superblock version {0} is not supported (expected 1)")]
    UnsupportedVersion(u32),
    /// A hash type other than 0 or 1 (offset 12).
    #[error("superblock hash type is not supported")]
    HashType(#[source] UnknownHashType),
    /// A block size veritysetup would refuse (offset 64 or 68).
    #[error("superblock {kind} block size {size} is not a power of two from 512 to 524288")]
    BlockSize {
        /// Data or hash.
        kind: BlockKind,
        /// The size found.
        size: u32,
    },
    /// The algorithm field (offset 32) is not a NUL-terminated name of a
    /// supported algorithm.
    #[error(
        "superblock hash algorithm {name:?} is not supported (expected sha1, sha256 or sha512)"
    )]
    UnknownAlgorithm {
        /// The name found, lossily decoded.
        name: String,
    },
    /// The salt size (offset 80) exceeds the 256-byte salt field.
    #[error("superblock salt size {0} exceeds {MAX_SALT_SIZE} bytes")]
    SaltTooLong(u16),
    /// The data block count (offset 72) is zero.
    #[error("superblock protects no data blocks")]
    NoDataBlocks,
}

/// A UUID as veritysetup stores and prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

/// The text is not a UUID in the 8-4-4-4-12 hex form.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0:?} is not a UUID (expected the form 01234567-89ab-cdef-0123-456789abcdef)")]
pub struct BadUuid(pub String);

impl Uuid {
    /// A random (version 4) UUID from 16 random bytes.
    pub fn v4_from_random(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid(bytes)
    }
}

impl FromStr for Uuid {
    type Err = BadUuid;

    /// The form `uuid_parse(3)` accepts: 36 characters, dashes at 8, 13,
    /// 18 and 23, hex digits (either case) elsewhere.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadUuid(s.to_owned());
        let text = s.as_bytes();
        if text.len() != 36 {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in text.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(bad());
                }
                continue;
            }
            let v = (c as char).to_digit(16).ok_or_else(bad)? as u8;
            out[nibbles / 2] |= if nibbles.is_multiple_of(2) { v << 4 } else { v };
            nibbles += 1;
        }
        Ok(Uuid(out))
    }
}

impl fmt::Display for Uuid {
    /// Lower case, as `uuid_unparse(3)` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The superblock's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Type 0 (Chrome OS) or 1 (normal).
    pub hash_type: HashType,
    /// The hash device's UUID.
    pub uuid: Uuid,
    /// The digest algorithm.
    pub algorithm: Algorithm,
    /// Data block size in bytes.
    pub data_block_size: u32,
    /// Hash block size in bytes.
    pub hash_block_size: u32,
    /// Number of data blocks.
    pub data_blocks: u64,
    /// The salt, at most 256 bytes.
    pub salt: Vec<u8>,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

impl Superblock {
    /// Parses the first 512 bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Superblock, SuperblockError> {
        let Some(bytes) = bytes.get(..SIZE) else {
            return Err(SuperblockError::TooShort { len: bytes.len() });
        };
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&bytes[..8]);
        if magic != MAGIC {
            return Err(SuperblockError::BadMagic { found: magic });
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(SuperblockError::UnsupportedVersion(version));
        }
        let hash_type =
            HashType::from_number(u32_at(bytes, 12)).map_err(SuperblockError::HashType)?;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&bytes[16..32]);
        let field = &bytes[ALGORITHM_FIELD];
        let name = &field[..field.iter().position(|&b| b == 0).unwrap_or(field.len())];
        let algorithm = std::str::from_utf8(name)
            .ok()
            .and_then(|n| n.parse::<Algorithm>().ok())
            .ok_or_else(|| SuperblockError::UnknownAlgorithm {
                name: String::from_utf8_lossy(name).into_owned(),
            })?;
        let data_block_size = u32_at(bytes, 64);
        let hash_block_size = u32_at(bytes, 68);
        for (kind, size) in [
            (BlockKind::Data, data_block_size),
            (BlockKind::Hash, hash_block_size),
        ] {
            geometry::check_block_size(kind, size)
                .map_err(|_| SuperblockError::BlockSize { kind, size })?;
        }
        let mut blocks = [0u8; 8];
        blocks.copy_from_slice(&bytes[72..80]);
        let data_blocks = u64::from_le_bytes(blocks);
        if data_blocks == 0 {
            return Err(SuperblockError::NoDataBlocks);
        }
        let salt_size = u16::from_le_bytes([bytes[80], bytes[81]]);
        if usize::from(salt_size) > MAX_SALT_SIZE {
            return Err(SuperblockError::SaltTooLong(salt_size));
        }
        Ok(Superblock {
            hash_type,
            uuid: Uuid(uuid),
            algorithm,
            data_block_size,
            hash_block_size,
            data_blocks,
            salt: bytes[SALT_FIELD..SALT_FIELD + usize::from(salt_size)].to_vec(),
        })
    }

    /// The 512 bytes veritysetup would write for these fields. A salt longer
    /// than 256 bytes is cut to 256 (and its size field says 256): callers
    /// that take a salt from users refuse longer ones first.
    pub fn to_bytes(&self) -> [u8; SIZE] {
        let mut out = [0u8; SIZE];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.hash_type.number().to_le_bytes());
        out[16..32].copy_from_slice(&self.uuid.0);
        let name = self.algorithm.name().as_bytes();
        out[ALGORITHM_FIELD.start..ALGORITHM_FIELD.start + name.len()].copy_from_slice(name);
        out[64..68].copy_from_slice(&self.data_block_size.to_le_bytes());
        out[68..72].copy_from_slice(&self.hash_block_size.to_le_bytes());
        out[72..80].copy_from_slice(&self.data_blocks.to_le_bytes());
        let salt = &self.salt[..self.salt.len().min(MAX_SALT_SIZE)];
        // At most 256: fits.
        out[80..82].copy_from_slice(&(salt.len() as u16).to_le_bytes());
        out[SALT_FIELD..SALT_FIELD + salt.len()].copy_from_slice(salt);
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Superblock {
        Superblock {
            hash_type: HashType::Normal,
            uuid: "12345678-1234-1234-1234-123456789abc".parse().unwrap(),
            algorithm: Algorithm::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 129,
            salt: vec![0x00, 0x11, 0x22, 0x33],
        }
    }

    /// The first 96 bytes `veritysetup format --salt=00112233
    /// --uuid=12345678-1234-1234-1234-123456789abc` wrote for 129 blocks.
    const VERITYSETUP_HEAD: [u8; 96] = [
        0x76, 0x65, 0x72, 0x69, 0x74, 0x79, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, //
        0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x12, 0x34, 0x12, 0x34, 0x12, 0x34, 0x56, 0x78, 0x9a,
        0xbc, //
        0x73, 0x68, 0x61, 0x32, 0x35, 0x36, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0, 0x10, 0, 0, 0, 0x10, 0, 0, 0x81, 0, 0, 0, 0, 0, 0, 0, //
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0, 0, 0, 0, //
    ];

    #[test]
    fn serializes_like_veritysetup() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes[..96], VERITYSETUP_HEAD);
        assert!(bytes[96..].iter().all(|&b| b == 0));
        assert_eq!(Superblock::parse(&bytes), Ok(sample()));
    }

    #[test]
    fn refusals() {
        let good = sample().to_bytes();
        let with = |at: usize, patch: &[u8]| {
            let mut b = good;
            b[at..at + patch.len()].copy_from_slice(patch);
            b
        };
        let cases: [(&str, Vec<u8>, SuperblockError); 10] = [
            (
                "too short",
                good[..511].to_vec(),
                SuperblockError::TooShort { len: 511 },
            ),
            (
                "bad magic",
                with(0, b"VERITY").to_vec(),
                SuperblockError::BadMagic {
                    found: *b"VERITY\0\0",
                },
            ),
            (
                "version 2",
                with(8, &[2]).to_vec(),
                SuperblockError::UnsupportedVersion(2),
            ),
            (
                "hash type 7",
                with(12, &[7]).to_vec(),
                SuperblockError::HashType(UnknownHashType(7)),
            ),
            (
                "unknown algorithm",
                with(32, b"md5\0\0\0").to_vec(),
                SuperblockError::UnknownAlgorithm { name: "md5".into() },
            ),
            (
                "algorithm without NUL",
                with(32, &[b'a'; 32]).to_vec(),
                SuperblockError::UnknownAlgorithm {
                    name: "a".repeat(32),
                },
            ),
            (
                "data block size 1000",
                with(64, &1000u32.to_le_bytes()).to_vec(),
                SuperblockError::BlockSize {
                    kind: BlockKind::Data,
                    size: 1000,
                },
            ),
            (
                "hash block size 0",
                with(68, &[0, 0, 0, 0]).to_vec(),
                SuperblockError::BlockSize {
                    kind: BlockKind::Hash,
                    size: 0,
                },
            ),
            (
                "no data blocks",
                with(72, &[0; 8]).to_vec(),
                SuperblockError::NoDataBlocks,
            ),
            (
                "salt too long",
                with(80, &[1, 1]).to_vec(),
                SuperblockError::SaltTooLong(257),
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(Superblock::parse(&bytes), Err(want), "{name}");
        }
    }

    #[test]
    fn uuid_forms() {
        let u: Uuid = "0123ABCD-89ab-cdef-0123-456789abcdef".parse().unwrap();
        assert_eq!(u.to_string(), "0123abcd-89ab-cdef-0123-456789abcdef");
        for bad in [
            "",
            "0123abcd89ab-cdef-0123-456789abcdef0",
            "0123abcd-89ab-cdef-0123-456789abcdeg",
            "0123abcd-89ab-cdef-0123-456789abcde",
            "bogus",
        ] {
            assert_eq!(bad.parse::<Uuid>(), Err(BadUuid(bad.into())), "{bad}");
        }
        let v4 = Uuid::v4_from_random([0xff; 16]);
        assert_eq!(v4.to_string(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }

    fn arb_superblock() -> impl Strategy<Value = Superblock> {
        (
            prop_oneof![Just(HashType::ChromeOs), Just(HashType::Normal)],
            any::<[u8; 16]>(),
            prop::sample::select(Algorithm::ALL.to_vec()),
            9u32..=19,
            9u32..=19,
            1u64..,
            prop::collection::vec(any::<u8>(), 0..=MAX_SALT_SIZE),
        )
            .prop_map(
                |(hash_type, uuid, algorithm, d, h, data_blocks, salt)| Superblock {
                    hash_type,
                    uuid: Uuid(uuid),
                    algorithm,
                    data_block_size: 1 << d,
                    hash_block_size: 1 << h,
                    data_blocks,
                    salt,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trips(sb in arb_superblock()) {
            prop_assert_eq!(Superblock::parse(&sb.to_bytes()), Ok(sb));
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = Superblock::parse(&bytes);
        }

        #[test]
        fn uuid_round_trips(bytes in any::<[u8; 16]>()) {
            let u = Uuid(bytes);
            prop_assert_eq!(u.to_string().parse::<Uuid>(), Ok(u));
        }
    }
}
