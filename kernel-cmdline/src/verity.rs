//! `roothash=`, the `systemd.verity_root_*` keys, and the Discoverable
//! Partitions UUID derivation.
//!
//! systemd-repart (`partition_format_verity_hash()`, src/repart/repart.c)
//! sets the data partition's GPT UUID to the first 16 bytes of the root hash
//! and the verity partition's to the last 16, copied raw: it does NOT pass
//! them through `id128_make_v4_uuid()`, so the version/variant nibbles are
//! whatever the hash says. systemd-dissect (`dissect_image()`,
//! src/shared/dissect-image.c) compares the raw bytes the same way and
//! refuses an all-zero half. liftoff matches both exactly, so images made
//! by systemd-repart or mkosi are found.

use serde::Serialize;

use crate::error::{RootHashError, VerityOptionError};
use crate::liftoff::CorruptionAction;
use crate::root::{DeviceForms, RootDevice, is_uuid, parse_device};

/// 128 bits, the least a root hash can have (two UUIDs' worth of halves).
const MIN_ROOT_HASH_DIGITS: usize = 32;
/// 512 bits, the longest digest dm-verity is used with (sha512).
const MAX_ROOT_HASH_DIGITS: usize = 128;

/// A validated `roothash=`: lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RootHash(String);

impl RootHash {
    /// Parse `roothash=`'s value.
    ///
    /// # Errors
    /// Not hex, odd length, outside 32..=128 digits, or a half that is zero.
    pub fn parse(text: &str) -> Result<Self, RootHashError> {
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) || !text.len().is_multiple_of(2) {
            return Err(RootHashError::NotHex);
        }
        if !(MIN_ROOT_HASH_DIGITS..=MAX_ROOT_HASH_DIGITS).contains(&text.len()) {
            return Err(RootHashError::Length {
                len: text.len(),
                min: MIN_ROOT_HASH_DIGITS,
                max: MAX_ROOT_HASH_DIGITS,
            });
        }
        let hash = Self(text.to_ascii_lowercase());
        let zero = |half: &str| half.bytes().all(|b| b == b'0');
        if zero(hash.first_half()) || zero(hash.last_half()) {
            return Err(RootHashError::NullUuid);
        }
        Ok(hash)
    }

    /// The hash as lower-case hex.
    #[must_use]
    pub fn as_hex(&self) -> &str {
        &self.0
    }

    fn first_half(&self) -> &str {
        self.0.get(..32).unwrap_or_default()
    }

    fn last_half(&self) -> &str {
        self.0
            .get(self.0.len().saturating_sub(32)..)
            .unwrap_or_default()
    }

    /// The data partition's UUID: the first 128 bits as a UUID string.
    #[must_use]
    pub fn data_partuuid(&self) -> String {
        format_uuid(self.first_half())
    }

    /// The verity (hash) partition's UUID: the last 128 bits.
    #[must_use]
    pub fn verity_partuuid(&self) -> String {
        format_uuid(self.last_half())
    }
}

/// 32 hex digits as `8-4-4-4-12`, bytes in order (the text form
/// `SD_ID128_TO_UUID_STRING` and the kernel's PARTUUID both use).
fn format_uuid(hex32: &str) -> String {
    let part = |range: std::ops::Range<usize>| hex32.get(range).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

/// The two partition UUIDs the Discoverable Partitions Specification derives
/// from a root hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoverableUuids {
    /// GPT partition UUID of the data (filesystem) partition.
    pub data: String,
    /// GPT partition UUID of the verity hash partition.
    pub verity: String,
}

/// `salt=` in `systemd.verity_root_options=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Salt {
    /// `salt=` (empty): veritysetup's default.
    Default,
    /// `salt=-`: no salt.
    None,
    /// `salt=<hex>`, lower-case.
    Hex(String),
}

/// `systemd.verity_root_options=`: systemd-veritysetup's option words
/// (systemd-veritysetup@.service(8), src/veritysetup/veritysetup.c).
/// `None` means "not given": the superblock or veritysetup default applies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VerityOptions {
    /// `superblock=<bool>`.
    pub superblock: Option<bool>,
    /// `format=0|1`.
    pub format: Option<u8>,
    /// `data-block-size=<size>` in bytes.
    pub data_block_size: Option<u64>,
    /// `hash-block-size=<size>` in bytes.
    pub hash_block_size: Option<u64>,
    /// `data-blocks=<n>`.
    pub data_blocks: Option<u64>,
    /// `hash-offset=<size>` in bytes.
    pub hash_offset: Option<u64>,
    /// `salt=`.
    pub salt: Option<Salt>,
    /// `uuid=`, lower-case.
    pub uuid: Option<String>,
    /// `hash=<algorithm>`.
    pub hash: Option<String>,
    /// `fec-device=`.
    pub fec_device: Option<RootDevice>,
    /// `fec-offset=<size>` in bytes.
    pub fec_offset: Option<u64>,
    /// `fec-roots=<2..24>`.
    pub fec_roots: Option<u8>,
    /// `root-hash-signature=<path>|base64:<data>`.
    pub root_hash_signature: Option<String>,
    /// `ignore-corruption`, `restart-on-corruption`, `panic-on-corruption`;
    /// when given, it wins over `liftoff.verity.on_corruption=` for this
    /// device.
    pub on_corruption: Option<CorruptionAction>,
    /// `ignore-zero-blocks`.
    pub ignore_zero_blocks: bool,
    /// `check-at-most-once`.
    pub check_at_most_once: bool,
}

/// systemd's `parse_size(t, 1024)` without fractions: digits and an
/// optional `B`, `K`, `M`, `G`, `T`, `P` or `E` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, VerityOptionError> {
    let digits_end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    let shift = match suffix {
        "" | "B" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        "E" => 60,
        _ => return Err(VerityOptionError::Number),
    };
    let number: u64 = digits.parse().map_err(|_| VerityOptionError::Number)?;
    number
        .checked_mul(1_u64 << shift)
        .ok_or(VerityOptionError::Number)
}

fn parse_block_size(text: &str) -> Result<u64, VerityOptionError> {
    let size = parse_size(text)?;
    if (512..=512 * 1024).contains(&size) && size.is_power_of_two() {
        Ok(size)
    } else {
        Err(VerityOptionError::BlockSize)
    }
}

fn parse_aligned(text: &str) -> Result<u64, VerityOptionError> {
    let offset = parse_size(text)?;
    if offset.is_multiple_of(512) {
        Ok(offset)
    } else {
        Err(VerityOptionError::Alignment)
    }
}

fn parse_number(text: &str) -> Result<u64, VerityOptionError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerityOptionError::Number);
    }
    text.parse().map_err(|_| VerityOptionError::Number)
}

/// systemd's `parse_boolean()`.
fn parse_boolean(text: &str) -> Result<bool, VerityOptionError> {
    match text {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => Err(VerityOptionError::Boolean),
    }
}

fn is_base64(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// Words systemd-veritysetup skips (fstab/crypttab flags about ordering).
const IGNORED_WORDS: [&str; 6] = [
    "noauto",
    "auto",
    "nofail",
    "fail",
    "_netdev",
    "x-initrd.attach",
];

impl VerityOptions {
    /// Parse one option word into `self`.
    ///
    /// # Errors
    /// Unknown words are errors (systemd only warns): liftoff does not boot
    /// a verity root with settings it silently dropped.
    pub fn apply(&mut self, word: &str) -> Result<(), VerityOptionError> {
        if word.is_empty() || IGNORED_WORDS.contains(&word) {
            return Ok(());
        }
        let corruption = match word {
            "ignore-corruption" => Some(CorruptionAction::Ignore),
            "restart-on-corruption" => Some(CorruptionAction::Restart),
            "panic-on-corruption" => Some(CorruptionAction::Panic),
            _ => None,
        };
        if let Some(mode) = corruption {
            if self.on_corruption.is_some_and(|earlier| earlier != mode) {
                return Err(VerityOptionError::ConflictingCorruptionMode);
            }
            self.on_corruption = Some(mode);
            return Ok(());
        }
        match word {
            "ignore-zero-blocks" => {
                self.ignore_zero_blocks = true;
                return Ok(());
            }
            "check-at-most-once" => {
                self.check_at_most_once = true;
                return Ok(());
            }
            _ => {}
        }
        let Some((name, value)) = word.split_once('=') else {
            return Err(VerityOptionError::Unknown);
        };
        match name {
            "superblock" => self.superblock = Some(parse_boolean(value)?),
            "format" => {
                self.format = Some(match value {
                    "0" => 0,
                    "1" => 1,
                    _ => return Err(VerityOptionError::Format),
                });
            }
            "data-block-size" => self.data_block_size = Some(parse_block_size(value)?),
            "hash-block-size" => self.hash_block_size = Some(parse_block_size(value)?),
            "data-blocks" => self.data_blocks = Some(parse_number(value)?),
            "hash-offset" => self.hash_offset = Some(parse_aligned(value)?),
            "fec-offset" => self.fec_offset = Some(parse_aligned(value)?),
            "fec-roots" => {
                let roots = parse_number(value)?;
                let roots = u8::try_from(roots)
                    .ok()
                    .filter(|r| (2..=24).contains(r))
                    .ok_or(VerityOptionError::FecRoots)?;
                self.fec_roots = Some(roots);
            }
            "salt" => {
                self.salt = Some(match value {
                    "" => Salt::Default,
                    "-" => Salt::None,
                    hex if hex.len().is_multiple_of(2)
                        && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        Salt::Hex(hex.to_ascii_lowercase())
                    }
                    _ => return Err(VerityOptionError::Salt),
                });
            }
            "uuid" => {
                // sd_id128_from_string(): 36-char UUID or 32 plain hex digits.
                let plain = value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit());
                if !is_uuid(value) && !plain {
                    return Err(VerityOptionError::Uuid);
                }
                self.uuid = Some(value.to_ascii_lowercase());
            }
            "hash" => {
                if value.is_empty()
                    || !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(VerityOptionError::Hash);
                }
                self.hash = Some(value.to_owned());
            }
            "fec-device" => {
                let device = parse_device(value, DeviceForms::SYSTEMD)
                    .map_err(VerityOptionError::FecDevice)?;
                self.fec_device = Some(device);
            }
            "root-hash-signature" => {
                let ok =
                    value.starts_with('/') || value.strip_prefix("base64:").is_some_and(is_base64);
                if !ok {
                    return Err(VerityOptionError::Signature);
                }
                self.root_hash_signature = Some(value.to_owned());
            }
            "ignore-corruption"
            | "restart-on-corruption"
            | "panic-on-corruption"
            | "ignore-zero-blocks"
            | "check-at-most-once" => {
                return Err(VerityOptionError::Malformed);
            }
            _ => return Err(VerityOptionError::Unknown),
        }
        Ok(())
    }
}

/// A verity root described by `roothash=` and the `systemd.verity_root_*`
/// keys, the way systemd-veritysetup-generator reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootHashVerity {
    /// The root hash, lower-case hex.
    pub root_hash: RootHash,
    /// The UUIDs derived from it (always present, whether or not the data
    /// and hash devices were named explicitly).
    pub discoverable: DiscoverableUuids,
    /// `systemd.verity_root_data=`, else `PARTUUID=<discoverable.data>`.
    pub data: RootDevice,
    /// `systemd.verity_root_hash=`, else `PARTUUID=<discoverable.verity>`.
    pub hash: RootDevice,
    /// `systemd.verity_root_options=`.
    pub options: VerityOptions,
}

/// Where the verity protection of the root comes from.
///
/// liftoff keeps the two sources apart and refuses a command line with
/// both: a `roothash=` next to a `dm-mod.create=` verity table are two
/// claims about the root that could disagree, and PID 1 must not guess.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum VeritySource {
    /// `roothash=` (systemd style): liftoff creates `/dev/mapper/root`.
    RootHash(Box<RootHashVerity>),
    /// `dm-mod.create=` (Bottlerocket/ChromeOS style): the named devices in
    /// [`crate::BootPlan::dm_create`] have `verity` targets.
    DmCreate {
        /// Names of the `dm-mod.create=` devices with a verity target.
        devices: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash whose derived UUIDs were checked by hand against repart's
    /// memcpy of the first and last 16 bytes.
    const HASH: &str = "0123456789ABCDEF0F1E2D3C4B5A69788877665544332211FEDCBA9876543210";

    #[test]
    fn discoverable_uuids_are_raw_halves() {
        let hash = RootHash::parse(HASH).unwrap();
        assert_eq!(hash.as_hex(), HASH.to_ascii_lowercase());
        assert_eq!(hash.data_partuuid(), "01234567-89ab-cdef-0f1e-2d3c4b5a6978");
        assert_eq!(
            hash.verity_partuuid(),
            "88776655-4433-2211-fedc-ba9876543210"
        );
        // Not v4-marked: the version nibble is the hash's own "c".
        assert_eq!(hash.data_partuuid().as_bytes()[14], b'c');
    }

    #[test]
    fn short_hash_halves_overlap() {
        // 128-bit hash: both halves are the whole hash, as in systemd.
        let hash = RootHash::parse("00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(hash.data_partuuid(), hash.verity_partuuid());
    }

    #[test]
    fn root_hash_errors() {
        let cases: Vec<(&str, String, RootHashError)> = vec![
            ("not hex", "xyz0".into(), RootHashError::NotHex),
            ("odd", "abc".into(), RootHashError::NotHex),
            (
                "short",
                "ab".repeat(15),
                RootHashError::Length {
                    len: 30,
                    min: 32,
                    max: 128,
                },
            ),
            (
                "long",
                "ab".repeat(65),
                RootHashError::Length {
                    len: 130,
                    min: 32,
                    max: 128,
                },
            ),
            (
                "zero first half",
                format!("{}{}", "0".repeat(32), "1".repeat(32)),
                RootHashError::NullUuid,
            ),
            (
                "zero last half",
                format!("{}{}", "1".repeat(32), "0".repeat(32)),
                RootHashError::NullUuid,
            ),
        ];
        for (name, text, expected) in cases {
            assert_eq!(RootHash::parse(&text), Err(expected), "case {name}");
        }
    }

    #[test]
    fn verity_options_table() {
        let mut options = VerityOptions::default();
        for word in [
            "superblock=no",
            "format=1",
            "data-block-size=4K",
            "hash-block-size=4096",
            "data-blocks=262144",
            "hash-offset=1M",
            "salt=AB01",
            "uuid=6E0E3D54-5F0A-4C3A-9F8B-2B1D4F6A7C8E",
            "hash=sha256",
            "fec-device=PARTLABEL=fec",
            "fec-offset=0",
            "fec-roots=2",
            "root-hash-signature=base64:MIIB+w==",
            "panic-on-corruption",
            "ignore-zero-blocks",
            "check-at-most-once",
            "nofail",
            "",
        ] {
            options
                .apply(word)
                .unwrap_or_else(|e| panic!("{word}: {e}"));
        }
        assert_eq!(
            options,
            VerityOptions {
                superblock: Some(false),
                format: Some(1),
                data_block_size: Some(4096),
                hash_block_size: Some(4096),
                data_blocks: Some(262_144),
                hash_offset: Some(1 << 20),
                salt: Some(Salt::Hex("ab01".into())),
                uuid: Some("6e0e3d54-5f0a-4c3a-9f8b-2b1d4f6a7c8e".into()),
                hash: Some("sha256".into()),
                fec_device: Some(RootDevice::PartLabel {
                    label: "fec".into()
                }),
                fec_offset: Some(0),
                fec_roots: Some(2),
                root_hash_signature: Some("base64:MIIB+w==".into()),
                on_corruption: Some(CorruptionAction::Panic),
                ignore_zero_blocks: true,
                check_at_most_once: true,
            }
        );
    }

    #[test]
    fn verity_option_errors() {
        let cases: &[(&str, VerityOptionError)] = &[
            ("frobnicate", VerityOptionError::Unknown),
            ("tpm2-measure-nvpcr=yes", VerityOptionError::Unknown),
            ("ignore-zero-blocks=1", VerityOptionError::Malformed),
            ("superblock=maybe", VerityOptionError::Boolean),
            ("format=2", VerityOptionError::Format),
            ("data-block-size=1000", VerityOptionError::BlockSize),
            ("data-block-size=1M", VerityOptionError::BlockSize),
            ("hash-block-size=4k", VerityOptionError::Number),
            ("hash-offset=100", VerityOptionError::Alignment),
            ("data-blocks=-1", VerityOptionError::Number),
            ("fec-roots=25", VerityOptionError::FecRoots),
            ("salt=xyz", VerityOptionError::Salt),
            ("uuid=nope", VerityOptionError::Uuid),
            ("hash=", VerityOptionError::Hash),
            ("root-hash-signature=relative", VerityOptionError::Signature),
            (
                "fec-device=8:1",
                VerityOptionError::FecDevice(crate::error::DeviceError::UnknownForm {
                    forms: "/dev/<name>, PARTUUID=<uuid>, PARTLABEL=<name>, LABEL=<label> or UUID=<uuid>",
                }),
            ),
        ];
        for (word, expected) in cases {
            let mut options = VerityOptions::default();
            assert_eq!(options.apply(word).as_ref(), Err(expected), "case {word}");
        }
        let mut options = VerityOptions::default();
        options.apply("restart-on-corruption").unwrap();
        options.apply("restart-on-corruption").unwrap();
        assert_eq!(
            options.apply("ignore-corruption"),
            Err(VerityOptionError::ConflictingCorruptionMode)
        );
    }
}
