//! Filesystem labels and UUIDs from superblock bytes: what `LABEL=` and
//! `UUID=` resolve against.
//!
//! Not libblkid: it is C, needs a static build of util-linux in the
//! initramfs, and probes hundreds of formats liftoff never boots from. The
//! few superblocks a container host uses are read here from their on-disk
//! structs, with the field offsets cited. Checksums are not verified: the
//! result only picks a device, and the kernel verifies what it mounts.

use std::fmt;

/// How many bytes from the start of a device [`probe`] needs (the swap
/// signature sits at the end of the first 4 KiB page).
pub const PROBE_BYTES: usize = 8192;

/// ext2/3/4 superblock: 1024 bytes in (fs/ext4/ext4.h `struct ext4_super_block`).
const EXT_SB: usize = 1024;
const EXT_MAGIC: u16 = 0xef53;
/// erofs superblock: 1024 bytes in (fs/erofs/erofs_fs.h `struct erofs_super_block`).
const EROFS_SB: usize = 1024;
const EROFS_MAGIC: u32 = 0xe0f5_e1e2;
/// dm-verity superblock at offset 0 (cryptsetup lib/verity/verity.c
/// `struct verity_sb`): "verity\0\0", version, hash type, uuid[16], …
const VERITY_SIGNATURE: &[u8; 8] = b"verity\0\0";
/// `union swap_header` (include/linux/swap.h) for 4 KiB pages: the magic in
/// the page's last 10 bytes, `info` (version, last_page, nr_badpages,
/// uuid[16], volume_name[16]) after 1024 boot bytes.
const SWAP_MAGIC: &[u8; 10] = b"SWAPSPACE2";
const SWAP_PAGE: usize = 4096;

/// The filesystem (or on-disk format) a device holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    /// ext2, ext3 or ext4 (one magic; the ext4 driver mounts all three).
    Ext4,
    /// EROFS.
    Erofs,
    /// FAT12/16/32.
    Vfat,
    /// Linux swap, version 2.
    Swap,
    /// A dm-verity hash device with a superblock (`veritysetup format`).
    VerityHash,
}

impl FsType {
    /// blkid's TYPE for it (also the `mount -t` name where there is one).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ext4 => "ext4",
            Self::Erofs => "erofs",
            Self::Vfat => "vfat",
            Self::Swap => "swap",
            Self::VerityHash => "DM_verity_hash",
        }
    }
}

impl fmt::Display for FsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a superblock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The format.
    pub fstype: FsType,
    /// The UUID as blkid prints it (lower-case `8-4-4-4-12`, or vfat's
    /// `ABCD-1234`); `None` when absent or all zero.
    pub uuid: Option<String>,
    /// The label, trailing NULs (and vfat's padding) removed; `None` when
    /// empty.
    pub label: Option<String>,
}

fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}

fn uuid_text(raw: [u8; 16]) -> Option<String> {
    if raw == [0; 16] {
        return None;
    }
    let mut s = String::with_capacity(36);
    for (i, b) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    Some(s)
}

fn label_text(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let label = String::from_utf8_lossy(&raw[..end]).into_owned();
    (!label.is_empty()).then_some(label)
}

fn ext4(b: &[u8]) -> Option<Probe> {
    (u16::from_le_bytes(bytes(b, EXT_SB + 0x38)?) == EXT_MAGIC).then_some(())?;
    Some(Probe {
        fstype: FsType::Ext4,
        // s_uuid at 0x68, s_volume_name[16] at 0x78.
        uuid: uuid_text(bytes(b, EXT_SB + 0x68)?),
        label: label_text(&bytes::<16>(b, EXT_SB + 0x78)?),
    })
}

fn erofs(b: &[u8]) -> Option<Probe> {
    (u32::from_le_bytes(bytes(b, EROFS_SB)?) == EROFS_MAGIC).then_some(())?;
    Some(Probe {
        fstype: FsType::Erofs,
        // uuid[16] at 48 and volume_name[16] at 64 (after magic, checksum,
        // feature_compat, blkszbits, sb_extslots, root_nid, inos,
        // build_time, build_time_nsec, blocks, meta_blkaddr, xattr_blkaddr).
        uuid: uuid_text(bytes(b, EROFS_SB + 48)?),
        label: label_text(&bytes::<16>(b, EROFS_SB + 64)?),
    })
}

fn verity(b: &[u8]) -> Option<Probe> {
    (b.get(..8)? == VERITY_SIGNATURE).then_some(())?;
    Some(Probe {
        fstype: FsType::VerityHash,
        uuid: bytes(b, 16).and_then(uuid_text),
        label: None,
    })
}

fn swap(b: &[u8]) -> Option<Probe> {
    (b.get(SWAP_PAGE - 10..SWAP_PAGE)? == SWAP_MAGIC).then_some(())?;
    Some(Probe {
        fstype: FsType::Swap,
        uuid: uuid_text(bytes(b, 1024 + 12)?),
        label: label_text(&bytes::<16>(b, 1024 + 28)?),
    })
}

/// FAT boot sector (Microsoft's FAT spec): the 0x55AA signature, and the
/// "FAT" file-system-type string of the FAT32 (at 0x52) or FAT12/16 (at
/// 0x36) extended BPB, which also says where the serial and label are. The
/// label in the root directory, which blkid prefers, is not read:
/// `mkfs.vfat -n` writes both.
fn vfat(b: &[u8]) -> Option<Probe> {
    (b.get(510..512)? == [0x55, 0xaa]).then_some(())?;
    let (serial_at, label_at) = if b.get(0x52..0x57)? == b"FAT32" {
        (0x43, 0x47)
    } else if b.get(0x36..0x39)? == b"FAT" {
        (0x27, 0x2b)
    } else {
        return None;
    };
    let serial: [u8; 4] = bytes(b, serial_at)?;
    let label = label_text(&bytes::<11>(b, label_at)?)
        .map(|l| l.trim_end_matches(' ').to_owned())
        .filter(|l| !l.is_empty() && l != "NO NAME");
    Some(Probe {
        fstype: FsType::Vfat,
        uuid: (serial != [0; 4]).then(|| {
            format!(
                "{:02X}{:02X}-{:02X}{:02X}",
                serial[3], serial[2], serial[1], serial[0]
            )
        }),
        label,
    })
}

/// Identify the format in the first [`PROBE_BYTES`] of a device.
///
/// Formats whose magic sits at a fixed place are tried first (verity at 0,
/// ext4 and erofs at 1024, swap at 4086); vfat, whose boot sector has no
/// magic of its own, last.
#[must_use]
pub fn probe(head: &[u8]) -> Option<Probe> {
    verity(head)
        .or_else(|| ext4(head))
        .or_else(|| erofs(head))
        .or_else(|| swap(head))
        .or_else(|| vfat(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(patches: &[(usize, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_BYTES];
        for (at, data) in patches {
            b[*at..*at + data.len()].copy_from_slice(data);
        }
        b
    }

    const UUID: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc,
        0xfe,
    ];
    const UUID_TEXT: &str = "01234567-89ab-cdef-1032-547698badcfe";

    #[test]
    fn superblocks_table() {
        let cases: Vec<(&str, Vec<u8>, Option<Probe>)> = vec![
            ("zeros", image(&[]), None),
            (
                "ext4",
                image(&[
                    (1024 + 0x38, &[0x53, 0xef]),
                    (1024 + 0x68, &UUID),
                    (1024 + 0x78, b"rootfs\0"),
                ]),
                Some(Probe {
                    fstype: FsType::Ext4,
                    uuid: Some(UUID_TEXT.into()),
                    label: Some("rootfs".into()),
                }),
            ),
            (
                "ext4 16-byte label, no uuid",
                image(&[
                    (1024 + 0x38, &[0x53, 0xef]),
                    (1024 + 0x78, b"0123456789abcdef"),
                ]),
                Some(Probe {
                    fstype: FsType::Ext4,
                    uuid: None,
                    label: Some("0123456789abcdef".into()),
                }),
            ),
            (
                "erofs",
                image(&[
                    (1024, &[0xe2, 0xe1, 0xf5, 0xe0]),
                    (1024 + 48, &UUID),
                    (1024 + 64, b"usr"),
                ]),
                Some(Probe {
                    fstype: FsType::Erofs,
                    uuid: Some(UUID_TEXT.into()),
                    label: Some("usr".into()),
                }),
            ),
            (
                "verity",
                image(&[(0, b"verity\0\0"), (8, &[1, 0, 0, 0]), (16, &UUID)]),
                Some(Probe {
                    fstype: FsType::VerityHash,
                    uuid: Some(UUID_TEXT.into()),
                    label: None,
                }),
            ),
            (
                "verity-like text is not verity",
                image(&[(0, b"verityX\0")]),
                None,
            ),
            (
                "swap",
                image(&[(4086, b"SWAPSPACE2"), (1036, &UUID), (1052, b"swp")]),
                Some(Probe {
                    fstype: FsType::Swap,
                    uuid: Some(UUID_TEXT.into()),
                    label: Some("swp".into()),
                }),
            ),
            (
                "fat32",
                image(&[
                    (510, &[0x55, 0xaa]),
                    (0x52, b"FAT32   "),
                    (0x43, &[0x34, 0x12, 0xcd, 0xab]),
                    (0x47, b"EFI        "),
                ]),
                Some(Probe {
                    fstype: FsType::Vfat,
                    uuid: Some("ABCD-1234".into()),
                    label: Some("EFI".into()),
                }),
            ),
            (
                "fat16 no name",
                image(&[
                    (510, &[0x55, 0xaa]),
                    (0x36, b"FAT16   "),
                    (0x27, &[1, 0, 0, 0]),
                    (0x2b, b"NO NAME    "),
                ]),
                Some(Probe {
                    fstype: FsType::Vfat,
                    uuid: Some("0000-0001".into()),
                    label: None,
                }),
            ),
            (
                "bare mbr is no filesystem",
                image(&[(510, &[0x55, 0xaa])]),
                None,
            ),
            ("short input", vec![0u8; 100], None),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(probe(&bytes), expected, "case {name}");
        }
    }
}
