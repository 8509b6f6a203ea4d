//! The kernel's dm-verity table line, typed, in both directions.
//!
//! ```text
//! <version> <dev> <hash_dev> <data_block_size> <hash_block_size>
//! <num_data_blocks> <hash_start_block> <algorithm> <digest> <salt|->
//! [<#opt_params> <opt_params>…]
//! ```
//!
//! [`VerityTable::parse`] (also [`FromStr`]) reads the target parameters
//! (what follows `<start> <length> verity` in a dm table, and what
//! `dm-mod.create=` carries after `verity,`); [`fmt::Display`] writes them
//! back in the kernel's own order, the one `dmsetup table` prints
//! (`verity_status` in drivers/md/dm-verity-target.c). Parsing is pure: no
//! device is opened.
//!
//! The checks are the ones `verity_ctr` (and `verity_fec_parse_opt_args`,
//! `verity_fec_ctr`) make without looking at a device, made stricter where
//! the kernel is silently lenient:
//!
//! * block sizes are powers of two, at least 512 (the smallest logical block
//!   size; the kernel compares with the real device's), the data block size
//!   at most [`PAGE_SIZE`], the hash block size at most `INT_MAX`;
//! * block counts must not overflow a 64-bit sector number;
//! * the digest is exactly the algorithm's size in hex, the salt whole bytes;
//! * the option count matches the options that follow (the kernel ignores
//!   extra words after the group; we refuse them), at most
//!   [`MAX_OPTION_WORDS`];
//! * one corruption mode at most and no option twice (the kernel lets the
//!   last one win);
//! * FEC is all or nothing: `use_fec_from_device`, `fec_roots` and
//!   `fec_blocks` together (`fec_start` defaults to 0), roots in 2..=24, and
//!   equal data and hash block sizes (the kernel ignores FEC values without a
//!   device);
//! * `check_at_most_once` needs at most `INT_MAX` data blocks.
//!
//! Words are split like `dm_split_args` does: on ASCII white space, with a
//! backslash quoting the next character; [`fmt::Display`] quotes white space
//! and backslashes in device names the same way. Option names are matched
//! case-insensitively (`strcasecmp`), the algorithm name exactly (the
//! crypto API's names are case-sensitive), hex digits in either case.
//!
//! What it leaves out: checks that need the devices (sizes, logical block
//! sizes, `fec_blocks` covering the hash tree), which the kernel makes at
//! load time, and algorithms other than [`Algorithm`]'s.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use thiserror::Error;

use crate::hash::{Algorithm, HashType};

/// The largest data block size the kernel accepts: `PAGE_SIZE` on x86-64
/// and on the 4 KiB-page arm64 kernels immutable hosts ship (`verity_ctr`:
/// "Invalid data device block size"). A 64 KiB-page kernel accepts more; we
/// refuse it everywhere so that an image works on every kernel.
pub const PAGE_SIZE: u32 = 4096;
/// The smallest block size: one sector, the smallest logical block size a
/// block device can have.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// The largest hash block size (`verity_ctr` compares with `INT_MAX`); the
/// largest power of two below it.
pub const MAX_HASH_BLOCK_SIZE: u32 = 1 << 30;
/// The most option words one table may carry: `DM_VERITY_OPTS_MAX` in 6.1,
/// 4 single-word options + 8 FEC words + 2 signature words.
pub const MAX_OPTION_WORDS: u32 = 14;
/// Reed-Solomon parity bytes per 255-byte codeword, lowest and highest
/// (`DM_VERITY_FEC_RSM - DM_VERITY_FEC_MAX_RSN` and `… - MIN_RSN`).
pub const FEC_ROOTS: std::ops::RangeInclusive<u8> = 2..=24;
/// `check_at_most_once` keeps a bitmap the kernel indexes with an `int`.
pub const MAX_AT_MOST_ONCE_BLOCKS: u64 = i32::MAX as u64;
/// The number of positional arguments before the options.
const POSITIONAL: usize = 10;

/// Option words, as `dm-verity-target.c` and `dm-verity-fec.c` spell them.
mod word {
    pub const IGNORE_CORRUPTION: &str = "ignore_corruption";
    pub const RESTART_ON_CORRUPTION: &str = "restart_on_corruption";
    pub const PANIC_ON_CORRUPTION: &str = "panic_on_corruption";
    pub const IGNORE_ZERO_BLOCKS: &str = "ignore_zero_blocks";
    pub const CHECK_AT_MOST_ONCE: &str = "check_at_most_once";
    pub const TRY_VERIFY_IN_TASKLET: &str = "try_verify_in_tasklet";
    pub const USE_FEC_FROM_DEVICE: &str = "use_fec_from_device";
    pub const FEC_ROOTS: &str = "fec_roots";
    pub const FEC_BLOCKS: &str = "fec_blocks";
    pub const FEC_START: &str = "fec_start";
    pub const ROOT_HASH_SIG_KEY_DESC: &str = "root_hash_sig_key_desc";
}

/// A dm-verity target's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerityTable {
    /// `<version>`: the hash format (0 Chrome OS, 1 normal).
    pub hash_type: HashType,
    /// `<dev>`: the data device, as the kernel looks it up (`/dev/vda`,
    /// `254:0`, or in `dm-mod.create=` also `PARTUUID=…`).
    pub data_device: String,
    /// `<hash_dev>`: the device holding the hash tree.
    pub hash_device: String,
    /// `<data_block_size>` in bytes.
    pub data_block_size: u32,
    /// `<hash_block_size>` in bytes.
    pub hash_block_size: u32,
    /// `<num_data_blocks>`: how many data blocks the device exposes.
    pub data_blocks: u64,
    /// `<hash_start_block>`: where the tree's top level starts on the hash
    /// device, in hash blocks (1 when a veritysetup superblock precedes it).
    pub hash_start_block: u64,
    /// `<algorithm>`.
    pub algorithm: Algorithm,
    /// `<digest>`: the root hash.
    pub root_digest: Vec<u8>,
    /// `<salt>`; empty for `-`.
    pub salt: Vec<u8>,
    /// `[<#opt_params> <opt_params>…]`.
    pub options: TableOptions,
}

/// The optional parameters. `Default` is none of them: corruption makes
/// reads fail with EIO, no FEC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TableOptions {
    /// What a mismatch does; `None` is the kernel's default, EIO.
    pub corruption: Option<CorruptionMode>,
    /// `ignore_zero_blocks`: blocks whose hash is the zero block's read as
    /// zeroes without being verified.
    pub ignore_zero_blocks: bool,
    /// `check_at_most_once`: verify each data block once, on first read.
    pub check_at_most_once: bool,
    /// `try_verify_in_tasklet` (6.0 and later): verify in softirq context
    /// when the hashes are cached.
    pub try_verify_in_tasklet: bool,
    /// `use_fec_from_device` and its companions.
    pub fec: Option<TableFec>,
    /// `root_hash_sig_key_desc <desc>`: the keyring entry holding the root
    /// hash's PKCS#7 signature.
    pub root_hash_sig_key_desc: Option<String>,
}

/// What dm-verity does when a block does not match its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorruptionMode {
    /// `ignore_corruption`: log it and return the data anyway.
    Ignore,
    /// `restart_on_corruption`: restart the machine.
    Restart,
    /// `panic_on_corruption`: panic the kernel.
    Panic,
}

impl CorruptionMode {
    /// Every mode.
    pub const ALL: [CorruptionMode; 3] = [Self::Ignore, Self::Restart, Self::Panic];

    /// The option word.
    pub fn word(self) -> &'static str {
        match self {
            Self::Ignore => word::IGNORE_CORRUPTION,
            Self::Restart => word::RESTART_ON_CORRUPTION,
            Self::Panic => word::PANIC_ON_CORRUPTION,
        }
    }
}

/// Forward error correction: Reed-Solomon parity on a device of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableFec {
    /// `use_fec_from_device <dev>`.
    pub device: String,
    /// `fec_roots <n>`: parity bytes per 255-byte codeword, 2..=24.
    pub roots: u8,
    /// `fec_blocks <n>`: data blocks covered (data, hash tree and any
    /// metadata after it), in data blocks.
    pub blocks: u64,
    /// `fec_start <n>`: where the parity starts on its device, in data
    /// blocks.
    pub start: u64,
}

/// Why a table line (or a [`VerityTable`]) is not one the kernel accepts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TableError {
    /// A character the kernel's argument splitter would mangle.
    #[error("table line has {character:?} at byte {offset}: only ascii without nul is allowed")]
    InvalidCharacter {
        /// Byte offset in the line.
        offset: usize,
        /// The character.
        character: char,
    },
    /// Fewer than the ten positional arguments.
    #[error(
        "table line has {found} arguments, expected at least {POSITIONAL} (<version> … <salt>)"
    )]
    TooFewArguments {
        /// How many words the line has.
        found: usize,
    },
    /// `<version>` is not 0 or 1.
    #[error("version {text:?} is not a hash type (expected 0 or 1)")]
    Version {
        /// The word.
        text: String,
    },
    /// A number field is not a decimal number of its type.
    #[error("{field} {text:?} is not a decimal number (at most {max})")]
    NotANumber {
        /// The field, as verity.rst names it.
        field: &'static str,
        /// The word.
        text: String,
        /// The largest value the field's type holds.
        max: u64,
    },
    /// A block size is not a power of two in range.
    #[error("{field} {value} is not a power of two between {MIN_BLOCK_SIZE} and {max}")]
    BlockSize {
        /// `data_block_size` or `hash_block_size`.
        field: &'static str,
        /// The value.
        value: u32,
        /// The largest allowed.
        max: u32,
    },
    /// A block number overflows a 64-bit sector number.
    #[error("{field} {value} overflows a 64-bit sector number at {block_size}-byte blocks")]
    BlockCountOverflow {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
        /// The block size it is counted in.
        block_size: u32,
    },
    /// The algorithm is not one liftoff supports.
    #[error("algorithm {text:?} is not supported (expected sha1, sha256 or sha512)")]
    Algorithm {
        /// The word.
        text: String,
    },
    /// A hex field is not whole bytes of hex.
    #[error("{field} {text:?} is not an even number of hex digits")]
    NotHex {
        /// `root_digest` or `salt`.
        field: &'static str,
        /// The word.
        text: String,
    },
    /// The root digest's length does not match the algorithm.
    #[error("root_digest is {found} bytes, {algorithm} digests are {expected}")]
    DigestLength {
        /// The algorithm.
        algorithm: Algorithm,
        /// Its digest size.
        expected: usize,
        /// The digest's size.
        found: usize,
    },
    /// A device or key description is empty.
    #[error("{field} is empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A string field holds a character no table line can carry.
    #[error("{field} {text:?} has {character:?}: only ascii without nul is allowed")]
    FieldCharacter {
        /// The field.
        field: &'static str,
        /// The value.
        text: String,
        /// The character.
        character: char,
    },
    /// The option count is out of range.
    #[error("option count {count} is more than the kernel's {MAX_OPTION_WORDS}")]
    TooManyOptions {
        /// The count.
        count: u32,
    },
    /// The option count does not match the words after it.
    #[error("option count says {declared} words but {found} follow")]
    OptionCount {
        /// The count.
        declared: u32,
        /// Words after it.
        found: usize,
    },
    /// An option word the kernel does not know.
    #[error("unknown option {text:?}")]
    UnknownOption {
        /// The word.
        text: String,
    },
    /// An option that takes a value is last.
    #[error("option {option} needs a value")]
    MissingValue {
        /// The option.
        option: &'static str,
    },
    /// An option given twice.
    #[error("option {option} is given twice")]
    Duplicate {
        /// The option.
        option: &'static str,
    },
    /// Two corruption modes.
    #[error("options {first} and {second} are both given: choose one corruption mode")]
    ConflictingCorruptionModes {
        /// The first seen.
        first: &'static str,
        /// The second.
        second: &'static str,
    },
    /// `fec_roots` out of range.
    #[error("fec_roots {roots} is not between 2 and 24")]
    FecRoots {
        /// The value.
        roots: u8,
    },
    /// Some but not all of the required FEC options.
    #[error("fec options are incomplete: {missing} is missing")]
    FecIncomplete {
        /// The option missing.
        missing: &'static str,
    },
    /// FEC with unequal block sizes.
    #[error("fec needs equal block sizes, data is {data} and hash is {hash}")]
    FecBlockSizes {
        /// `data_block_size`.
        data: u32,
        /// `hash_block_size`.
        hash: u32,
    },
    /// `check_at_most_once` on too large a device.
    #[error(
        "check_at_most_once supports at most {MAX_AT_MOST_ONCE_BLOCKS} data blocks, not {data_blocks}"
    )]
    AtMostOnceTooLarge {
        /// `num_data_blocks`.
        data_blocks: u64,
    },
}

impl VerityTable {
    /// Parse the target parameters of a dm-verity table line.
    pub fn parse(line: &str) -> Result<Self, TableError> {
        if let Some((offset, character)) = line
            .char_indices()
            .find(|&(_, c)| !c.is_ascii() || c == '\0')
        {
            return Err(TableError::InvalidCharacter { offset, character });
        }
        let words = split_args(line);
        if words.len() < POSITIONAL {
            return Err(TableError::TooFewArguments { found: words.len() });
        }
        let (positional, rest) = words.split_at(POSITIONAL);

        let version = parse_number::<u32>("version", &positional[0]).ok();
        let hash_type = version
            .and_then(|n| HashType::from_number(n).ok())
            .ok_or_else(|| TableError::Version {
                text: positional[0].clone(),
            })?;
        let algorithm_text = &positional[7];
        let algorithm = Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == algorithm_text)
            .ok_or_else(|| TableError::Algorithm {
                text: algorithm_text.clone(),
            })?;
        let salt = match positional[9].as_str() {
            "-" => Vec::new(),
            text => parse_hex("salt", text)?,
        };
        let table = Self {
            hash_type,
            data_device: positional[1].clone(),
            hash_device: positional[2].clone(),
            data_block_size: parse_number("data_block_size", &positional[3])?,
            hash_block_size: parse_number("hash_block_size", &positional[4])?,
            data_blocks: parse_number("num_data_blocks", &positional[5])?,
            hash_start_block: parse_number("hash_start_block", &positional[6])?,
            algorithm,
            root_digest: parse_hex("root_digest", &positional[8])?,
            salt,
            options: parse_options(rest)?,
        };
        table.validate()?;
        Ok(table)
    }

    /// Check everything the kernel checks without opening a device (see the
    /// module documentation). [`VerityTable::parse`] runs it; a table built
    /// in code that fails it prints a line the kernel (and `parse`) refuses.
    pub fn validate(&self) -> Result<(), TableError> {
        check_string("data_device", &self.data_device)?;
        check_string("hash_device", &self.hash_device)?;
        check_block_size("data_block_size", self.data_block_size, PAGE_SIZE)?;
        check_block_size("hash_block_size", self.hash_block_size, MAX_HASH_BLOCK_SIZE)?;
        check_sectors("num_data_blocks", self.data_blocks, self.data_block_size)?;
        check_sectors(
            "hash_start_block",
            self.hash_start_block,
            self.hash_block_size,
        )?;
        let expected = self.algorithm.digest_size();
        if self.root_digest.len() != expected {
            return Err(TableError::DigestLength {
                algorithm: self.algorithm,
                expected,
                found: self.root_digest.len(),
            });
        }
        let options = &self.options;
        if options.check_at_most_once && self.data_blocks > MAX_AT_MOST_ONCE_BLOCKS {
            return Err(TableError::AtMostOnceTooLarge {
                data_blocks: self.data_blocks,
            });
        }
        if let Some(fec) = &options.fec {
            check_string(word::USE_FEC_FROM_DEVICE, &fec.device)?;
            if !FEC_ROOTS.contains(&fec.roots) {
                return Err(TableError::FecRoots { roots: fec.roots });
            }
            if self.data_block_size != self.hash_block_size {
                return Err(TableError::FecBlockSizes {
                    data: self.data_block_size,
                    hash: self.hash_block_size,
                });
            }
            // Both are counted in data blocks (`verity_fec_parse_opt_args`).
            check_sectors(word::FEC_BLOCKS, fec.blocks, self.data_block_size)?;
            check_sectors(word::FEC_START, fec.start, self.data_block_size)?;
        }
        if let Some(desc) = &options.root_hash_sig_key_desc {
            check_string(word::ROOT_HASH_SIG_KEY_DESC, desc)?;
        }
        Ok(())
    }

    /// The device's length in 512-byte sectors, the `<length>` of its dm
    /// table line. Saturates for a table [`VerityTable::validate`] refuses.
    pub fn length_sectors(&self) -> u64 {
        let sectors_per_block = u64::from(self.data_block_size / MIN_BLOCK_SIZE);
        self.data_blocks.saturating_mul(sectors_per_block)
    }

    /// How many option words [`fmt::Display`] writes (the `<#opt_params>`).
    pub fn option_words(&self) -> u32 {
        let o = &self.options;
        u32::from(o.corruption.is_some())
            + u32::from(o.ignore_zero_blocks)
            + u32::from(o.check_at_most_once)
            + u32::from(o.try_verify_in_tasklet)
            + if o.fec.is_some() { 8 } else { 0 }
            + if o.root_hash_sig_key_desc.is_some() {
                2
            } else {
                0
            }
    }
}

impl FromStr for VerityTable {
    type Err = TableError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for VerityTable {
    /// The kernel's order (`verity_status`): positional arguments, then the
    /// count and options only when there are any, FEC as
    /// `use_fec_from_device <dev> fec_blocks <n> fec_start <n> fec_roots <n>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.hash_type.number())?;
        write_quoted(f, &self.data_device)?;
        f.write_char(' ')?;
        write_quoted(f, &self.hash_device)?;
        write!(
            f,
            " {} {} {} {} {} ",
            self.data_block_size,
            self.hash_block_size,
            self.data_blocks,
            self.hash_start_block,
            self.algorithm
        )?;
        write_hex(f, &self.root_digest)?;
        f.write_char(' ')?;
        if self.salt.is_empty() {
            f.write_char('-')?;
        } else {
            write_hex(f, &self.salt)?;
        }
        let count = self.option_words();
        if count == 0 {
            return Ok(());
        }
        let o = &self.options;
        write!(f, " {count}")?;
        if let Some(mode) = o.corruption {
            write!(f, " {}", mode.word())?;
        }
        for (set, name) in [
            (o.ignore_zero_blocks, word::IGNORE_ZERO_BLOCKS),
            (o.check_at_most_once, word::CHECK_AT_MOST_ONCE),
            (o.try_verify_in_tasklet, word::TRY_VERIFY_IN_TASKLET),
        ] {
            if set {
                write!(f, " {name}")?;
            }
        }
        if let Some(fec) = &o.fec {
            write!(f, " {} ", word::USE_FEC_FROM_DEVICE)?;
            write_quoted(f, &fec.device)?;
            write!(
                f,
                " {} {} {} {} {} {}",
                word::FEC_BLOCKS,
                fec.blocks,
                word::FEC_START,
                fec.start,
                word::FEC_ROOTS,
                fec.roots
            )?;
        }
        if let Some(desc) = &o.root_hash_sig_key_desc {
            write!(f, " {} ", word::ROOT_HASH_SIG_KEY_DESC)?;
            write_quoted(f, desc)?;
        }
        Ok(())
    }
}

/// The options after the positional arguments: `<#opt_params>` and the
/// words it counts.
fn parse_options(words: &[String]) -> Result<TableOptions, TableError> {
    let mut options = TableOptions::default();
    let Some((count, words)) = words.split_first() else {
        return Ok(options);
    };
    let declared: u32 = parse_number("opt_params", count)?;
    if declared > MAX_OPTION_WORDS {
        return Err(TableError::TooManyOptions { count: declared });
    }
    if usize::try_from(declared).ok() != Some(words.len()) {
        return Err(TableError::OptionCount {
            declared,
            found: words.len(),
        });
    }

    let mut corruption: Option<CorruptionMode> = None;
    let mut fec_device = None;
    let mut fec_roots = None;
    let mut fec_blocks = None;
    let mut fec_start = None;
    let mut seen: Vec<&'static str> = Vec::new();
    let mut iter = words.iter();
    while let Some(text) = iter.next() {
        let Some(option) = [
            word::IGNORE_CORRUPTION,
            word::RESTART_ON_CORRUPTION,
            word::PANIC_ON_CORRUPTION,
            word::IGNORE_ZERO_BLOCKS,
            word::CHECK_AT_MOST_ONCE,
            word::TRY_VERIFY_IN_TASKLET,
            word::USE_FEC_FROM_DEVICE,
            word::FEC_ROOTS,
            word::FEC_BLOCKS,
            word::FEC_START,
            word::ROOT_HASH_SIG_KEY_DESC,
        ]
        .into_iter()
        .find(|name| name.eq_ignore_ascii_case(text)) else {
            return Err(TableError::UnknownOption { text: text.clone() });
        };
        if seen.contains(&option) {
            return Err(TableError::Duplicate { option });
        }
        seen.push(option);
        let mut value = || iter.next().ok_or(TableError::MissingValue { option });
        match option {
            word::USE_FEC_FROM_DEVICE => fec_device = Some(value()?.clone()),
            word::FEC_ROOTS => fec_roots = Some(parse_number::<u8>(option, value()?)?),
            word::FEC_BLOCKS => fec_blocks = Some(parse_number::<u64>(option, value()?)?),
            word::FEC_START => fec_start = Some(parse_number::<u64>(option, value()?)?),
            word::ROOT_HASH_SIG_KEY_DESC => {
                options.root_hash_sig_key_desc = Some(value()?.clone());
            }
            word::IGNORE_ZERO_BLOCKS => options.ignore_zero_blocks = true,
            word::CHECK_AT_MOST_ONCE => options.check_at_most_once = true,
            word::TRY_VERIFY_IN_TASKLET => options.try_verify_in_tasklet = true,
            _ => {
                let mode = CorruptionMode::ALL
                    .into_iter()
                    .find(|mode| mode.word() == option)
                    .ok_or_else(|| TableError::UnknownOption { text: text.clone() })?;
                if let Some(first) = corruption {
                    return Err(TableError::ConflictingCorruptionModes {
                        first: first.word(),
                        second: option,
                    });
                }
                corruption = Some(mode);
            }
        }
    }
    options.corruption = corruption;

    options.fec = match (fec_device, fec_roots, fec_blocks) {
        (None, None, None) if fec_start.is_none() => None,
        (Some(device), Some(roots), Some(blocks)) => Some(TableFec {
            device,
            roots,
            blocks,
            start: fec_start.unwrap_or(0),
        }),
        (None, _, _) => {
            return Err(TableError::FecIncomplete {
                missing: word::USE_FEC_FROM_DEVICE,
            });
        }
        (_, None, _) => {
            return Err(TableError::FecIncomplete {
                missing: word::FEC_ROOTS,
            });
        }
        (_, _, None) => {
            return Err(TableError::FecIncomplete {
                missing: word::FEC_BLOCKS,
            });
        }
    };
    Ok(options)
}

/// `isspace` for ASCII, as the kernel's `dm_split_args` uses it.
fn is_kernel_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Split like `dm_split_args`: white space separates words, a backslash
/// takes the next character literally (a backslash at the very end stays).
fn split_args(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|&c| is_kernel_space(c)).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|&c| !is_kernel_space(c)) {
            match (c, chars.next_if(|_| c == '\\')) {
                ('\\', Some(quoted)) => word.push(quoted),
                _ => word.push(c),
            }
        }
        words.push(word);
    }
}

/// Write a string so that [`split_args`] gives it back as one word.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        if c == '\\' || is_kernel_space(c) {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    Ok(())
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// A decimal number, digits only (no sign, no white space).
fn parse_number<T>(field: &'static str, text: &str) -> Result<T, TableError>
where
    T: FromStr + Bounded,
{
    let error = || TableError::NotANumber {
        field,
        text: text.to_owned(),
        max: T::MAX,
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    text.parse().map_err(|_| error())
}

/// The largest value of a number field's type, for error messages.
trait Bounded {
    const MAX: u64;
}

impl Bounded for u8 {
    const MAX: u64 = u8::MAX as u64;
}

impl Bounded for u32 {
    const MAX: u64 = u32::MAX as u64;
}

impl Bounded for u64 {
    const MAX: u64 = u64::MAX;
}

fn parse_hex(field: &'static str, text: &str) -> Result<Vec<u8>, TableError> {
    let error = || TableError::NotHex {
        field,
        text: text.to_owned(),
    };
    if !text.len().is_multiple_of(2) {
        return Err(error());
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => u8::try_from(high << 4 | low).map_err(|_| error()),
                _ => Err(error()),
            }
        })
        .collect()
}

fn check_string(field: &'static str, text: &str) -> Result<(), TableError> {
    if text.is_empty() {
        return Err(TableError::Empty { field });
    }
    match text.chars().find(|&c| !c.is_ascii() || c == '\0') {
        Some(character) => Err(TableError::FieldCharacter {
            field,
            text: text.to_owned(),
            character,
        }),
        None => Ok(()),
    }
}

fn check_block_size(field: &'static str, value: u32, max: u32) -> Result<(), TableError> {
    if value.is_power_of_two() && (MIN_BLOCK_SIZE..=max).contains(&value) {
        Ok(())
    } else {
        Err(TableError::BlockSize { field, value, max })
    }
}

/// `verity_ctr`'s overflow check: the count in sectors must fit `sector_t`.
/// Call after the block size is checked (a power of two, at least 512).
fn check_sectors(field: &'static str, value: u64, block_size: u32) -> Result<(), TableError> {
    let shift = (block_size / MIN_BLOCK_SIZE).trailing_zeros();
    if value.leading_zeros() >= shift {
        Ok(())
    } else {
        Err(TableError::BlockCountOverflow {
            field,
            value,
            block_size,
        })
    }
}

#[cfg(test)]
mod tests;
