//! The hash algorithms and hash types dm-verity knows, as veritysetup and
//! the kernel name them.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A hash algorithm liftoff can build and verify trees with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// SHA-1 (20-byte digests). Kept for old images only.
    Sha1,
    /// SHA-256 (32-byte digests), veritysetup's default.
    Sha256,
    /// SHA-512 (64-byte digests).
    Sha512,
}

/// The name is not one of the supported algorithms.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("hash algorithm {0:?} is not supported (expected sha1, sha256 or sha512)")]
pub struct UnknownAlgorithm(pub String);

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];

    /// The name in the superblock, the table line and on veritysetup's
    /// command line.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Digest size in bytes.
    pub fn digest_size(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Accepts the names case-insensitively, as veritysetup does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

/// The on-disk hash format (veritysetup `--format`, the table's version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashType {
    /// Type 0, the original Chrome OS format: the salt is hashed after the
    /// block, and digests are packed in hash blocks.
    ChromeOs,
    /// Type 1, the normal format: the salt is hashed before the block, and
    /// each digest takes a power-of-two slot in its hash block.
    Normal,
}

/// The number is not a known hash type.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("hash type {0} is not supported (expected 0 or 1)")]
pub struct UnknownHashType(pub u32);

impl HashType {
    /// The number in the superblock and the table line.
    pub fn number(self) -> u32 {
        match self {
            HashType::ChromeOs => 0,
            HashType::Normal => 1,
        }
    }

    /// The hash type with this number.
    pub fn from_number(n: u32) -> Result<Self, UnknownHashType> {
        match n {
            0 => Ok(HashType::ChromeOs),
            1 => Ok(HashType::Normal),
            other => Err(UnknownHashType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>(), Ok(a));
            assert_eq!(a.name().to_uppercase().parse::<Algorithm>(), Ok(a));
        }
        assert_eq!(
            "md5".parse::<Algorithm>(),
            Err(UnknownAlgorithm("md5".into()))
        );
    }

    #[test]
    fn digest_sizes() {
        assert_eq!(Algorithm::Sha1.digest_size(), 20);
        assert_eq!(Algorithm::Sha256.digest_size(), 32);
        assert_eq!(Algorithm::Sha512.digest_size(), 64);
    }

    #[test]
    fn hash_type_numbers() {
        assert_eq!(HashType::from_number(0), Ok(HashType::ChromeOs));
        assert_eq!(HashType::from_number(1), Ok(HashType::Normal));
        assert_eq!(HashType::from_number(2), Err(UnknownHashType(2)));
        assert_eq!(HashType::Normal.number(), 1);
    }
}
