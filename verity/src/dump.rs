//! veritysetup's "VERITY header information" block, which `veritysetup
//! format` and `veritysetup dump` print (cryptsetup 2.6.1 `VERITY_dump`),
//! rendered exactly: the same labels, tabs and conditional lines.

use std::fmt::Write as _;
use std::path::Path;

use crate::HashType;
use crate::geometry::Geometry;
use crate::verify::hex;

/// The FEC part of veritysetup's header output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecLines {
    /// `--fec-roots`.
    pub roots: u8,
    /// veritysetup's "FEC blocks": the parity length in data blocks.
    pub rs_blocks: u64,
    /// Whether the parity is on the hash device.
    pub on_hash_device: bool,
    /// `--fec-offset`.
    pub offset: u64,
}

/// veritysetup's "VERITY header information" block (cryptsetup 2.6.1
/// `VERITY_dump`), printed by both `format` and `dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The hash device as given on the command line.
    pub hash_path: &'a Path,
    /// The UUID as printed (`None` without a superblock).
    pub uuid: Option<String>,
    /// The hash type.
    pub hash_type: HashType,
    /// The layout.
    pub geometry: &'a Geometry,
    /// The algorithm as printed (format prints it as given).
    pub algorithm: String,
    /// The FEC lines, when there is FEC.
    pub fec: Option<FecLines>,
    /// The salt.
    pub salt: &'a [u8],
    /// The root hash (format prints it, dump does not).
    pub root_hash: Option<&'a [u8]>,
}

impl Header<'_> {
    /// The text, lines ending in `\n`.
    pub fn render(&self) -> String {
        let g = self.geometry;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "VERITY header information for {}",
            self.hash_path.display()
        );
        let _ = writeln!(
            s,
            "UUID:            \t{}",
            self.uuid.as_deref().unwrap_or("")
        );
        let _ = writeln!(s, "Hash type:       \t{}", self.hash_type.number());
        let _ = writeln!(s, "Data blocks:     \t{}", g.params().data_blocks);
        let _ = writeln!(s, "Data block size: \t{}", g.params().data_block_size);
        let _ = writeln!(s, "Hash blocks:     \t{}", g.tree_blocks());
        let _ = writeln!(s, "Hash block size: \t{}", g.params().hash_block_size);
        let _ = writeln!(s, "Hash algorithm:  \t{}", self.algorithm);
        if let Some(fec) = &self.fec {
            let _ = writeln!(s, "FEC RS roots:   \t{}", fec.roots);
            let _ = writeln!(s, "FEC blocks:     \t{}", fec.rs_blocks);
        }
        let salt = if self.salt.is_empty() {
            "-".to_owned()
        } else {
            hex(self.salt)
        };
        let _ = writeln!(s, "Salt:            \t{salt}");
        if let Some(root) = self.root_hash {
            let _ = writeln!(s, "Root hash:      \t{}", hex(root));
        }
        let mut blocks = g.tree_start_block() + g.tree_blocks();
        if let Some(fec) = self.fec.as_ref().filter(|f| f.on_hash_device) {
            blocks += fec.rs_blocks;
        }
        if g.params().hash_offset == 0 {
            let _ = writeln!(
                s,
                "Hash device size: \t{} [bytes]",
                blocks * g.hash_block_size()
            );
        }
        if let Some(fec) = self
            .fec
            .as_ref()
            .filter(|f| f.offset == 0 && !f.on_hash_device)
        {
            let _ = writeln!(
                s,
                "FEC device size: \t{} [bytes]",
                fec.rs_blocks * g.data_block_size()
            );
        }
        s
    }
}
