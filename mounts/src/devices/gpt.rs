//! GUID Partition Tables: a pure reader and writer (UEFI 2.10, §5.3).
//!
//! Hand-written over `crc32fast` instead of using the `gpt` crate: that
//! crate works on a `Read + Write + Seek` device, reads the backup header
//! by seeking to the device's end (so a parse of the first sectors alone is
//! not its model), has `expect` on library paths (a panic is a dead PID 1),
//! and writes through a full-size device where the image builder wants two
//! byte regions to place in a sparse file. The format is small: a protective
//! MBR, a 92-byte header and an array of 128-byte entries, each checked by
//! a CRC32.
//!
//! Only the primary header is read, as the PARTUUIDs the kernel matches come
//! from it whenever it is valid (block/partitions/efi.c `find_valid_gpt()`);
//! a disk whose primary GPT is corrupt is reported, never guessed at from the
//! backup.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// "EFI PART".
const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Revision 1.0.
const REVISION: u32 = 0x0001_0000;
/// The header's size in bytes (the rest of its sector is reserved, zero).
const HEADER_SIZE: u32 = 92;
/// Every GPT in use has 128-byte entries; the kernel accepts no other size
/// (`sizeof(gpt_entry)` check in `is_gpt_valid()`).
pub const ENTRY_SIZE: usize = 128;
/// The usual number of entries (16 KiB of array), which the writer uses.
pub const DEFAULT_ENTRIES: u32 = 128;
/// More than this many bytes of entry array is no real disk: refuse rather
/// than read megabytes at boot.
const MAX_ARRAY_BYTES: u64 = 1 << 20;
/// MBR partition type of the protective partition.
const PROTECTIVE_TYPE: u8 = 0xee;
/// GPT names are 36 UTF-16 code units.
pub const NAME_UNITS: usize = 36;

/// A GUID as text shows it: the bytes of `8-4-4-4-12` in reading order.
///
/// On disk, GPT stores the first three fields little-endian ("mixed
/// endian"); [`Guid::from_disk`] and [`Guid::to_disk`] convert, so the text
/// form is what the kernel shows as PARTUUID and sgdisk/systemd print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID (an unused entry's type).
    pub const NIL: Self = Self([0; 16]);

    /// From the 16 bytes GPT stores.
    #[must_use]
    pub fn from_disk(b: [u8; 16]) -> Self {
        Self([
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ])
    }

    /// The 16 bytes GPT stores. The swap is its own inverse.
    #[must_use]
    pub fn to_disk(self) -> [u8; 16] {
        Self::from_disk(self.0).0
    }

    /// Parse `8-4-4-4-12` hex at compile time (for the type table).
    ///
    /// # Panics
    /// At compile time, on a malformed literal.
    const fn parse_const(text: &str) -> Self {
        let s = text.as_bytes();
        let mut out = [0u8; 16];
        let mut i = 0;
        let mut n = 0;
        while i < s.len() {
            if s[i] != b'-' {
                let hi = hex_value(s[i]);
                let lo = hex_value(s[i + 1]);
                out[n] = (hi << 4) | lo;
                n += 1;
                i += 1;
            }
            i += 1;
        }
        assert!(n == 16, "a GUID has 16 bytes");
        Self(out)
    }
}

const fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

impl fmt::Display for Guid {
    /// Lower-case `8-4-4-4-12`, like the kernel's `%pUl` PARTUUID.
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

/// A string that is not `8-4-4-4-12` hex.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{text:?}: not a GUID (8-4-4-4-12 hex digits)")]
pub struct GuidParseError {
    /// What was given.
    pub text: String,
}

impl FromStr for Guid {
    type Err = GuidParseError;

    /// Case-insensitive `8-4-4-4-12`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || GuidParseError {
            text: text.to_owned(),
        };
        let groups: Vec<&str> = text.split('-').collect();
        let shape_ok = groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if !shape_ok {
            return Err(err());
        }
        let hex: String = groups.concat();
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(err)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        Ok(Self(out))
    }
}

/// A partition type with a well-known meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionType {
    /// systemd's name for it (`systemd-id128 show --gpt`), used in messages.
    pub name: &'static str,
    /// The type GUID.
    pub guid: Guid,
}

/// The root partition on x86-64 (UAPI Discoverable Partitions
/// Specification, `SD_GPT_ROOT_X86_64`).
pub const ROOT_X86_64: PartitionType = PartitionType {
    name: "root-x86-64",
    guid: Guid::parse_const("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"),
};
/// The dm-verity hash partition of the x86-64 root (`SD_GPT_ROOT_X86_64_VERITY`).
pub const ROOT_X86_64_VERITY: PartitionType = PartitionType {
    name: "root-x86-64-verity",
    guid: Guid::parse_const("2c7357ed-ebd2-46d9-aec1-23d437ec2bf5"),
};
/// The root partition on arm64 (`SD_GPT_ROOT_ARM64`).
pub const ROOT_ARM64: PartitionType = PartitionType {
    name: "root-arm64",
    guid: Guid::parse_const("b921b045-1df0-41c3-af44-4c6f280d3fae"),
};
/// The dm-verity hash partition of the arm64 root (`SD_GPT_ROOT_ARM64_VERITY`).
pub const ROOT_ARM64_VERITY: PartitionType = PartitionType {
    name: "root-arm64-verity",
    guid: Guid::parse_const("df3300ce-d69f-4c92-978c-9bfb0f38d820"),
};
/// Any Linux filesystem (`SD_GPT_LINUX_GENERIC`).
pub const LINUX_GENERIC: PartitionType = PartitionType {
    name: "linux-generic",
    guid: Guid::parse_const("0fc63daf-8483-4772-8e79-3d69d8477de4"),
};
/// EFI System Partition (`SD_GPT_ESP`).
pub const ESP: PartitionType = PartitionType {
    name: "esp",
    guid: Guid::parse_const("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"),
};
/// Linux swap (`SD_GPT_SWAP`).
pub const SWAP: PartitionType = PartitionType {
    name: "swap",
    guid: Guid::parse_const("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"),
};

const KNOWN_TYPES: &[PartitionType] = &[
    ROOT_X86_64,
    ROOT_X86_64_VERITY,
    ROOT_ARM64,
    ROOT_ARM64_VERITY,
    LINUX_GENERIC,
    ESP,
    SWAP,
];

/// The well-known name of a type GUID, if it has one.
#[must_use]
pub fn type_name(guid: Guid) -> Option<&'static str> {
    KNOWN_TYPES.iter().find(|t| t.guid == guid).map(|t| t.name)
}

/// One used entry of the partition array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// The kernel's partition number: the entry's index + 1 (empty entries
    /// keep their numbers, as in `efi_partition()`).
    pub number: u32,
    /// Partition type GUID.
    pub type_guid: Guid,
    /// Unique partition GUID: the kernel's PARTUUID.
    pub uuid: Guid,
    /// First LBA (inclusive).
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Attribute bits.
    pub attributes: u64,
    /// The name (PARTLABEL), UTF-16LE on disk up to the first NUL; unpaired
    /// surrogates become U+FFFD.
    pub name: String,
}

/// A parsed primary GPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// Logical sector size the table was read with.
    pub sector_size: u32,
    /// The disk GUID.
    pub disk_guid: Guid,
    /// First LBA partitions may use.
    pub first_usable_lba: u64,
    /// Last LBA partitions may use.
    pub last_usable_lba: u64,
    /// LBA of the backup header.
    pub backup_lba: u64,
    /// The used entries, by number.
    pub partitions: Vec<GptPartition>,
}

/// Why a GPT was not read (or written).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GptError {
    /// Fewer bytes than the table needs were given; read `needed` and retry.
    #[error("need {needed} bytes of the disk to read its gpt, have {have}")]
    Truncated {
        /// Bytes needed from the start of the disk.
        needed: usize,
        /// Bytes given.
        have: usize,
    },
    /// No 0x55AA boot signature or no 0xEE partition in LBA 0.
    #[error("no protective mbr in lba 0")]
    NoProtectiveMbr,
    /// LBA 1 does not start with "EFI PART".
    #[error("no \"EFI PART\" signature at lba 1")]
    Signature,
    /// The header's size field is out of range.
    #[error("header size {size} is out of range")]
    HeaderSize {
        /// The field's value.
        size: u32,
    },
    /// The header's CRC32 does not match.
    #[error("header crc32 is {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc {
        /// The stored value.
        stored: u32,
        /// What the bytes hash to.
        computed: u32,
    },
    /// The header does not say it is at LBA 1.
    #[error("primary header says it is at lba {my_lba}, not 1")]
    MyLba {
        /// The field's value.
        my_lba: u64,
    },
    /// Entries that are not 128 bytes, or an array too large for any disk.
    #[error("entry array of {count} entries of {size} bytes is not supported")]
    EntryArray {
        /// Number of entries.
        count: u32,
        /// Entry size.
        size: u32,
    },
    /// The entry array's CRC32 does not match.
    #[error("partition entry array crc32 is {stored:#010x}, computed {computed:#010x}")]
    ArrayCrc {
        /// The stored value.
        stored: u32,
        /// What the bytes hash to.
        computed: u32,
    },
    /// Usable range or partition out of order or out of the disk.
    #[error("bad layout: {what}")]
    Layout {
        /// What is wrong.
        what: &'static str,
    },
    /// A partition name longer than 36 UTF-16 units (writer).
    #[error("partition {number} name {name:?} is longer than 36 utf-16 units")]
    NameTooLong {
        /// Partition number.
        number: u32,
        /// The name.
        name: String,
    },
    /// Sector size other than 512 or 4096.
    #[error("sector size {size} is not 512 or 4096")]
    SectorSize {
        /// The size given.
        size: u32,
    },
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn guid_at(b: &[u8], at: usize) -> Guid {
    let mut a = [0u8; 16];
    if let Some(s) = b.get(at..at + 16) {
        a.copy_from_slice(s);
    }
    Guid::from_disk(a)
}

fn check_sector_size(sector_size: u32) -> Result<usize, GptError> {
    match sector_size {
        512 | 4096 => Ok(sector_size as usize),
        size => Err(GptError::SectorSize { size }),
    }
}

/// Whether LBA 0 holds a protective (or hybrid) MBR: the boot signature and
/// an 0xEE partition in one of the four slots (`is_pmbr_valid()`).
#[must_use]
pub fn has_protective_mbr(lba0: &[u8]) -> bool {
    lba0.get(510..512) == Some(&[0x55, 0xaa])
        && (0..4).any(|i| lba0.get(446 + 16 * i + 4) == Some(&PROTECTIVE_TYPE))
}

/// The MBR disk signature when LBA 0 is a plain (not protective) MBR: the
/// kernel's MBR PARTUUID is `format!("{sig:08x}-{partno:02x}")`
/// (block/partitions/msdos.c), for logical partitions too.
#[must_use]
pub fn mbr_signature(lba0: &[u8]) -> Option<u32> {
    (lba0.get(510..512) == Some(&[0x55, 0xaa]) && !has_protective_mbr(lba0))
        .then(|| le_u32(lba0, 440))
}

/// Parse the primary GPT from the first bytes of a disk.
///
/// `head` must hold LBA 0 through the end of the entry array; with less,
/// [`GptError::Truncated`] says how much to read. 64 KiB is enough for
/// every table made with the default 128 entries.
///
/// # Errors
/// Any check the kernel's `is_gpt_valid()` makes on the primary header.
pub fn parse(head: &[u8], sector_size: u32) -> Result<Gpt, GptError> {
    let ss = check_sector_size(sector_size)?;
    let need = |needed: usize| {
        if head.len() < needed {
            Err(GptError::Truncated {
                needed,
                have: head.len(),
            })
        } else {
            Ok(())
        }
    };
    need(2 * ss)?;
    if !has_protective_mbr(&head[..ss]) {
        return Err(GptError::NoProtectiveMbr);
    }
    let hdr = &head[ss..2 * ss];
    if &hdr[..8] != SIGNATURE {
        return Err(GptError::Signature);
    }
    let header_size = le_u32(hdr, 12);
    if header_size < HEADER_SIZE || header_size as usize > ss {
        return Err(GptError::HeaderSize { size: header_size });
    }
    let stored = le_u32(hdr, 16);
    let mut copy = hdr[..header_size as usize].to_vec();
    copy[16..20].fill(0);
    let computed = crc32fast::hash(&copy);
    if stored != computed {
        return Err(GptError::HeaderCrc { stored, computed });
    }
    let my_lba = le_u64(hdr, 24);
    if my_lba != 1 {
        return Err(GptError::MyLba { my_lba });
    }
    let backup_lba = le_u64(hdr, 32);
    let first_usable_lba = le_u64(hdr, 40);
    let last_usable_lba = le_u64(hdr, 48);
    if first_usable_lba > last_usable_lba {
        return Err(GptError::Layout {
            what: "first usable lba is past the last",
        });
    }
    let disk_guid = guid_at(hdr, 56);
    let array_lba = le_u64(hdr, 72);
    let count = le_u32(hdr, 80);
    let size = le_u32(hdr, 84);
    let array_bytes = u64::from(count) * u64::from(size);
    if size as usize != ENTRY_SIZE || array_bytes > MAX_ARRAY_BYTES {
        return Err(GptError::EntryArray { count, size });
    }
    let start = array_lba
        .checked_mul(ss as u64)
        .filter(|&s| s >= 2 * ss as u64 && s <= MAX_ARRAY_BYTES * 4)
        .ok_or(GptError::Layout {
            what: "entry array is not after the header near the start of the disk",
        })?;
    // Bounded above: at most 4 MiB + 1 MiB, so these fit a usize.
    let (start, end) = (start as usize, (start + array_bytes) as usize);
    need(end)?;
    let array = &head[start..end];
    let stored = le_u32(hdr, 88);
    let computed = crc32fast::hash(array);
    if stored != computed {
        return Err(GptError::ArrayCrc { stored, computed });
    }
    let mut partitions = Vec::new();
    for (index, e) in array.chunks_exact(ENTRY_SIZE).enumerate() {
        let type_guid = guid_at(e, 0);
        if type_guid == Guid::NIL {
            continue;
        }
        let units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        partitions.push(GptPartition {
            // index < count <= 8192 (1 MiB / 128), so this fits.
            number: u32::try_from(index + 1).unwrap_or(u32::MAX),
            type_guid,
            uuid: guid_at(e, 16),
            first_lba: le_u64(e, 32),
            last_lba: le_u64(e, 40),
            attributes: le_u64(e, 48),
            name: char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        });
    }
    Ok(Gpt {
        sector_size,
        disk_guid,
        first_usable_lba,
        last_usable_lba,
        backup_lba,
        partitions,
    })
}

/// What to write: a whole disk's partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptLayout {
    /// Logical sector size: 512 or 4096.
    pub sector_size: u32,
    /// Size of the disk in sectors.
    pub total_sectors: u64,
    /// The disk GUID.
    pub disk_guid: Guid,
    /// Partitions; `number` is the 1-based slot in the array (at most
    /// [`DEFAULT_ENTRIES`]).
    pub partitions: Vec<GptPartition>,
}

/// The bytes of a GPT, in the two places they go on the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptImage {
    /// Protective MBR, primary header and primary array: write at offset 0.
    pub head: Vec<u8>,
    /// Backup array and backup header: write at [`GptImage::tail_offset`].
    pub tail: Vec<u8>,
    /// Byte offset of `tail` (it ends at the end of the disk).
    pub tail_offset: u64,
}

/// Lay out the GPT for `layout`: a protective MBR, the primary header at
/// LBA 1 with its array at LBA 2, and the backup array and header at the
/// end, with both CRCs, as sgdisk and sfdisk write them.
///
/// # Errors
/// A bad sector size, a partition outside the usable range or overlapping
/// another, a slot number out of range or repeated, or a name too long.
pub fn write(layout: &GptLayout) -> Result<GptImage, GptError> {
    let ss = check_sector_size(layout.sector_size)?;
    let ss64 = ss as u64;
    let array_bytes = DEFAULT_ENTRIES as usize * ENTRY_SIZE;
    let array_sectors = (array_bytes as u64).div_ceil(ss64);
    let first_usable = 2 + array_sectors;
    let backup_lba = layout
        .total_sectors
        .checked_sub(1)
        .ok_or(GptError::Layout {
            what: "disk has no sectors",
        })?;
    let last_usable = backup_lba
        .checked_sub(array_sectors + 1)
        .filter(|&l| l >= first_usable)
        .ok_or(GptError::Layout {
            what: "disk too small for a gpt",
        })?;

    let mut array = vec![0u8; array_bytes];
    let mut taken: Vec<(u64, u64)> = Vec::new();
    for p in &layout.partitions {
        let slot = p
            .number
            .checked_sub(1)
            .filter(|&s| s < DEFAULT_ENTRIES)
            .ok_or(GptError::Layout {
                what: "partition number is not 1..=128",
            })? as usize;
        if p.type_guid == Guid::NIL {
            return Err(GptError::Layout {
                what: "partition type is the nil guid",
            });
        }
        if p.first_lba < first_usable || p.last_lba > last_usable || p.first_lba > p.last_lba {
            return Err(GptError::Layout {
                what: "partition is outside the usable range",
            });
        }
        if taken
            .iter()
            .any(|&(a, b)| p.first_lba <= b && a <= p.last_lba)
        {
            return Err(GptError::Layout {
                what: "partitions overlap",
            });
        }
        taken.push((p.first_lba, p.last_lba));
        let units: Vec<u16> = p.name.encode_utf16().collect();
        if units.len() > NAME_UNITS {
            return Err(GptError::NameTooLong {
                number: p.number,
                name: p.name.clone(),
            });
        }
        let e = &mut array[slot * ENTRY_SIZE..(slot + 1) * ENTRY_SIZE];
        if e[..16] != [0; 16] {
            return Err(GptError::Layout {
                what: "two partitions have the same number",
            });
        }
        e[0..16].copy_from_slice(&p.type_guid.to_disk());
        e[16..32].copy_from_slice(&p.uuid.to_disk());
        e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
        e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
        e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
        for (i, u) in units.iter().enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
    }
    let array_crc = crc32fast::hash(&array);

    let header = |my_lba: u64, alternate_lba: u64, array_lba: u64| {
        let mut h = vec![0u8; ss];
        h[0..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&REVISION.to_le_bytes());
        h[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
        h[40..48].copy_from_slice(&first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&layout.disk_guid.to_disk());
        h[72..80].copy_from_slice(&array_lba.to_le_bytes());
        h[80..84].copy_from_slice(&DEFAULT_ENTRIES.to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..HEADER_SIZE as usize]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };

    // Protective MBR: one 0xEE partition from LBA 1 to the end of the disk
    // (or 0xFFFFFFFF when the disk is larger than 32 bits of sectors).
    let mut head = vec![0u8; ss];
    let pe = &mut head[446..462];
    pe[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    pe[4] = PROTECTIVE_TYPE;
    pe[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    pe[8..12].copy_from_slice(&1u32.to_le_bytes());
    let mbr_size = u32::try_from(backup_lba).unwrap_or(u32::MAX);
    pe[12..16].copy_from_slice(&mbr_size.to_le_bytes());
    head[510] = 0x55;
    head[511] = 0xaa;
    head.extend(header(1, backup_lba, 2));
    head.extend(&array);
    head.resize(first_usable as usize * ss, 0);

    let backup_array_lba = backup_lba - array_sectors;
    let mut tail = array;
    tail.resize(array_sectors as usize * ss, 0);
    tail.extend(header(backup_lba, 1, backup_array_lba));
    Ok(GptImage {
        head,
        tail,
        tail_offset: backup_array_lba * ss64,
    })
}

#[cfg(test)]
#[path = "gpt_tests.rs"]
mod tests;
