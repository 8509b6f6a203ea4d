//! Disk images for the boot scenarios, built from files alone.
//!
//! [`DiskImage::builder`] turns a staging directory into a GPT disk image
//! the way systemd-repart lays out a verity-protected root, so liftoff's
//! Discoverable Partitions path finds it from `roothash=` alone:
//!
//! 1. the root filesystem is made from the staging directory into a
//!    temporary file: erofs (`mkfs.erofs`, the default) or ext4
//!    (`mkfs.ext4 -d`), then padded with a hole to its partition's size,
//!    so the hash tree covers the whole partition;
//! 2. the hash tree (with veritysetup's superblock) is written by liftoff's
//!    own `verity::format` or by `veritysetup format`, and the root hash is
//!    read from its report or from veritysetup's `Root hash:` line;
//! 3. the partition UUIDs are derived from the root hash as systemd-repart
//!    does ([`kernel_cmdline::RootHash`]): the first 128 bits name the
//!    root, the last 128 bits its verity partition;
//! 4. the GPT (from `mounts::devices::gpt::write`) and the two partitions'
//!    bytes are written into a sparse file: `set_len` first, then only the
//!    non-zero chunks. A blank `DATA` partition (Linux generic type) ends
//!    the disk.
//!
//! No loop devices, no mounts, no root: every step works on regular files.
//!
//! SELinux labels: with [`ImageBuilder::file_contexts`], `mkfs.erofs
//! --file-contexts` stores each file's context (from a libselinux
//! `file_contexts` file) in its `security.selinux` extended attribute.
//! Only erofs roots can be labelled this way; `mkfs.ext4 -d` cannot.
//!
//! Reproducibility: with [`ImageBuilder::seed`], the filesystem UUID, the
//! erofs timestamps (`-T 0`), the verity salt and the superblock UUID are
//! derived from the seed, so an erofs image is byte-for-byte the same on
//! every build of the same staging directory. ext4 still takes the files'
//! own timestamps from `mkfs.ext4 -d`. The disk GUID is always derived
//! from the root hash.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use kernel_cmdline::RootHash;
use kernel_cmdline::error::RootHashError;
use mounts::devices::gpt::{
    self, GptError, GptLayout, GptPartition, Guid, GuidParseError, LINUX_GENERIC, PartitionType,
    ROOT_X86_64, ROOT_X86_64_VERITY,
};
use sha2::{Digest, Sha256};
use verity::format::{FormatError, FormatOptions};
use verity::superblock::Uuid;

/// Logical sector size of the image.
pub const SECTOR_SIZE: u32 = 512;
/// Partition alignment (and the gap before the first partition), as
/// systemd-repart and sfdisk use.
pub const ALIGNMENT: u64 = 1 << 20;
/// The DATA partition's size when none is given.
pub const DEFAULT_DATA_SIZE: u64 = 16 << 20;
/// PARTLABEL of the root partition.
pub const ROOT_LABEL: &str = "root";
/// PARTLABEL of the root's verity partition.
pub const VERITY_LABEL: &str = "root-verity";
/// PARTLABEL (and the ext4 label) of the blank data partition.
pub const DATA_LABEL: &str = "DATA";
/// The erofs maker (erofs-utils).
pub const MKFS_EROFS: &str = "mkfs.erofs";
/// The ext4 maker (e2fsprogs).
pub const MKFS_EXT4: &str = "mkfs.ext4";
/// cryptsetup's verity tool (cryptsetup-bin).
pub const VERITYSETUP: &str = "veritysetup";
/// The root partition's number.
pub const ROOT_NUMBER: u32 = 1;
/// The verity partition's number.
pub const VERITY_NUMBER: u32 = 2;
/// Copy granularity: chunks that are all zero are left as holes.
const COPY_CHUNK: usize = 64 << 10;
/// Below this, `mkfs.ext4` with 4 KiB blocks has no room for its metadata.
const MIN_EXT4_SIZE: u64 = 4 << 20;

/// The root filesystem's type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RootFs {
    /// Read-only, compact, what Bottlerocket-style hosts ship.
    #[default]
    Erofs,
    /// ext4 with 4 KiB blocks and no journal (the root is read-only).
    Ext4,
}

/// What writes the hash tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerityTool {
    /// `verity::format`, as `liftoff verity format` runs it.
    #[default]
    Liftoff,
    /// cryptsetup's `veritysetup format`.
    Veritysetup,
}

/// What failed while building a disk image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file operation on the host failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A tool could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        #[source]
        source: io::Error,
    },
    /// A tool ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// Its stderr.
        stderr: String,
    },
    /// veritysetup succeeded but printed no `Root hash:` line.
    #[error("`{command}` printed no root hash")]
    NoRootHash {
        /// The command line.
        command: String,
    },
    /// liftoff's verity format failed.
    #[error("cannot write the hash tree of {} to {}", data.display(), hash.display())]
    Format {
        /// The root filesystem image.
        data: PathBuf,
        /// The hash tree file.
        hash: PathBuf,
        #[source]
        source: FormatError,
    },
    /// The root hash cannot name partitions (a zero half, say).
    #[error("root hash {hash} cannot derive partition uuids")]
    RootHash {
        /// The root hash, hex.
        hash: String,
        #[source]
        source: RootHashError,
    },
    /// A derived partition UUID is not a GUID.
    #[error("derived partition uuid is not a guid")]
    PartUuid(#[source] GuidParseError),
    /// A size does not fit 64 bits.
    #[error("{what} overflows")]
    Overflow {
        /// The size being computed.
        what: &'static str,
    },
    /// The GPT could not be laid out.
    #[error("cannot lay out the gpt of {}", path.display())]
    Gpt {
        /// The image.
        path: PathBuf,
        #[source]
        source: GptError,
    },
    /// SELinux labels were asked for an ext4 root.
    #[error("file contexts can only label an erofs root")]
    LabelsNeedErofs,
    /// The image has no partition with this number.
    #[error("{} has no partition {number}", path.display())]
    NoPartition {
        /// The image.
        path: PathBuf,
        /// The partition number asked for.
        number: u32,
    },
}

/// Entry point: `DiskImage::builder(staging).build(out)`.
#[derive(Debug)]
pub struct DiskImage;

impl DiskImage {
    /// A builder for an image of `staging`, with erofs, liftoff's verity
    /// format, a [`DEFAULT_DATA_SIZE`] DATA partition and random salts.
    #[must_use]
    pub fn builder(staging: impl Into<PathBuf>) -> ImageBuilder {
        ImageBuilder {
            staging: staging.into(),
            root_fs: RootFs::default(),
            verity_tool: VerityTool::default(),
            data_size: DEFAULT_DATA_SIZE,
            seed: None,
            omit_verity_partition: false,
            file_contexts: None,
        }
    }
}

/// How to build an image; see [`DiskImage::builder`].
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    staging: PathBuf,
    root_fs: RootFs,
    verity_tool: VerityTool,
    data_size: u64,
    seed: Option<Vec<u8>>,
    omit_verity_partition: bool,
    file_contexts: Option<PathBuf>,
}

/// One partition of a built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPartition {
    /// 1-based number (the kernel's `N` in `vdaN`).
    pub number: u32,
    /// PARTLABEL.
    pub name: String,
    /// Type GUID.
    pub type_guid: Guid,
    /// PARTUUID.
    pub uuid: Guid,
    /// First sector (inclusive).
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
}

impl BuiltPartition {
    /// Byte offset in the image.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.first_lba * u64::from(SECTOR_SIZE)
    }

    /// Size in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * u64::from(SECTOR_SIZE)
    }

    /// Whether the partition has no bytes (never, for a built image).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`ImageBuilder::build`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The root filesystem's type.
    pub root_fs: RootFs,
    /// The verity root hash, lower-case hex.
    pub root_hash: String,
    /// PARTUUID of the root partition (first half of the root hash).
    pub data_partuuid: Guid,
    /// PARTUUID of the verity partition (last half of the root hash).
    pub verity_partuuid: Guid,
    /// PARTLABEL of the blank data partition.
    pub data_label: &'static str,
    /// Root, verity and data, in that order (without verity when
    /// [`ImageBuilder::omit_verity_partition`] left it out).
    pub partitions: Vec<BuiltPartition>,
    /// The kernel command line words that boot it: `roothash=<hex>`.
    pub cmdline: String,
}

impl BuiltImage {
    /// The partition numbered `number`.
    ///
    /// # Errors
    /// [`ImageError::NoPartition`].
    pub fn partition(&self, number: u32) -> Result<&BuiltPartition, ImageError> {
        self.partitions
            .iter()
            .find(|p| p.number == number)
            .ok_or_else(|| ImageError::NoPartition {
                path: self.path.clone(),
                number,
            })
    }

    /// Copies partition `number` into the (sparse) file `dest`.
    ///
    /// # Errors
    /// No such partition, or an I/O error on either file.
    pub fn extract_partition(&self, number: u32, dest: &Path) -> Result<(), ImageError> {
        let part = self.partition(number)?;
        let src = File::open(&self.path).map_err(io_error("open", &self.path))?;
        let out = File::create(dest).map_err(io_error("create", dest))?;
        out.set_len(part.len()).map_err(io_error("resize", dest))?;
        copy_sparse(&src, &self.path, part.offset(), part.len(), &out, dest, 0)
    }
}

impl ImageBuilder {
    /// The root filesystem's type.
    #[must_use]
    pub fn root_fs(mut self, root_fs: RootFs) -> Self {
        self.root_fs = root_fs;
        self
    }

    /// What writes the hash tree.
    #[must_use]
    pub fn verity_tool(mut self, tool: VerityTool) -> Self {
        self.verity_tool = tool;
        self
    }

    /// The DATA partition's size, rounded up to [`ALIGNMENT`] (at least
    /// one alignment unit).
    #[must_use]
    pub fn data_size(mut self, bytes: u64) -> Self {
        self.data_size = bytes;
        self
    }

    /// Derive every random input (filesystem UUID, salt, superblock UUID,
    /// erofs timestamps) from `seed`, for reproducible images.
    #[must_use]
    pub fn seed(mut self, seed: impl Into<Vec<u8>>) -> Self {
        self.seed = Some(seed.into());
        self
    }

    /// Leave the verity partition out of the disk: its GPT slot (2) stays
    /// empty and its bytes unwritten, while the root hash, the root's
    /// PARTUUID and [`BuiltImage::verity_partuuid`] stay what they would
    /// be. For the "hash partition missing" scenarios.
    #[must_use]
    pub fn omit_verity_partition(mut self, omit: bool) -> Self {
        self.omit_verity_partition = omit;
        self
    }

    /// Label the root's files for SELinux from this libselinux
    /// `file_contexts` file (`mkfs.erofs --file-contexts`). erofs only:
    /// [`ImageBuilder::build`] refuses it for ext4.
    #[must_use]
    pub fn file_contexts(mut self, path: impl Into<PathBuf>) -> Self {
        self.file_contexts = Some(path.into());
        self
    }

    /// Builds the image into `out` (replaced if it exists).
    ///
    /// # Errors
    /// A tool missing or failing, an I/O error, or a root hash that cannot
    /// name partitions.
    pub fn build(&self, out: &Path) -> Result<BuiltImage, ImageError> {
        // Temporary files sit beside the output: same filesystem, and /tmp
        // may be a small tmpfs.
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let work = tempfile::Builder::new()
            .prefix(".liftoff-image-")
            .tempdir_in(parent)
            .map_err(io_error("create a work directory in", parent))?;
        let root_img = work.path().join("root.img");
        let hash_img = work.path().join("root.verity");

        // 1. The root filesystem, padded with a hole to its partition size
        //    so that the tree covers every block of the partition.
        match self.root_fs {
            RootFs::Erofs => self.make_erofs(&root_img)?,
            RootFs::Ext4 if self.file_contexts.is_some() => {
                return Err(ImageError::LabelsNeedErofs);
            }
            RootFs::Ext4 => self.make_ext4(&root_img)?,
        }
        let root_len = align_file(&root_img)?;

        // 2. The hash tree and the root hash.
        let root_hash = match self.verity_tool {
            VerityTool::Liftoff => self.format_liftoff(&root_img, &hash_img)?,
            VerityTool::Veritysetup => self.format_veritysetup(&root_img, &hash_img)?,
        };
        let hash_len = align_file(&hash_img)?;

        // 3. Partition UUIDs from the root hash, as systemd-repart.
        let parsed = RootHash::parse(&root_hash).map_err(|source| ImageError::RootHash {
            hash: root_hash.clone(),
            source,
        })?;
        let guid = |text: String| text.parse::<Guid>().map_err(ImageError::PartUuid);
        let data_partuuid = guid(parsed.data_partuuid())?;
        let verity_partuuid = guid(parsed.verity_partuuid())?;
        let disk_guid = derive_guid(b"liftoff disk guid", root_hash.as_bytes());

        // 4. The GPT and the partitions' bytes, into a sparse file.
        let mut plan = plan_layout(
            [
                (ROOT_LABEL, ROOT_X86_64, data_partuuid, root_len),
                (VERITY_LABEL, ROOT_X86_64_VERITY, verity_partuuid, hash_len),
                (
                    DATA_LABEL,
                    LINUX_GENERIC,
                    data_uuid(&root_hash),
                    self.data_size,
                ),
            ],
            disk_guid,
        )?;
        if self.omit_verity_partition {
            plan.partitions.retain(|p| p.number != VERITY_NUMBER);
        }
        let table = gpt::write(&plan).map_err(|source| ImageError::Gpt {
            path: out.to_owned(),
            source,
        })?;
        let size = plan.total_sectors * u64::from(SECTOR_SIZE);
        let file = File::create(out).map_err(io_error("create", out))?;
        file.set_len(size).map_err(io_error("resize", out))?;
        file.write_all_at(&table.head, 0)
            .map_err(io_error("write the primary gpt to", out))?;
        file.write_all_at(&table.tail, table.tail_offset)
            .map_err(io_error("write the backup gpt to", out))?;
        let partitions: Vec<BuiltPartition> = plan
            .partitions
            .iter()
            .map(|p| BuiltPartition {
                number: p.number,
                name: p.name.clone(),
                type_guid: p.type_guid,
                uuid: p.uuid,
                first_lba: p.first_lba,
                last_lba: p.last_lba,
            })
            .collect();
        for (number, src_path, len) in [
            (ROOT_NUMBER, &root_img, root_len),
            (VERITY_NUMBER, &hash_img, hash_len),
        ] {
            let Some(part) = partitions.iter().find(|p| p.number == number) else {
                continue;
            };
            let src = File::open(src_path).map_err(io_error("open", src_path))?;
            copy_sparse(&src, src_path, 0, len, &file, out, part.offset())?;
        }
        file.sync_all().map_err(io_error("sync", out))?;

        Ok(BuiltImage {
            path: out.to_owned(),
            size,
            root_fs: self.root_fs,
            cmdline: format!("roothash={root_hash}"),
            root_hash,
            data_partuuid,
            verity_partuuid,
            data_label: DATA_LABEL,
            partitions,
        })
    }

    /// A value derived from the seed, or `None` without one.
    fn derived(&self, purpose: &[u8]) -> Option<[u8; 32]> {
        self.seed.as_ref().map(|seed| {
            let mut h = Sha256::new();
            h.update(purpose);
            h.update([0]);
            h.update(seed);
            h.finalize().into()
        })
    }

    fn fs_uuid(&self) -> Option<String> {
        self.derived(b"liftoff fs uuid")
            .map(|d| Uuid::v4_from_random(first16(&d)).to_string())
    }

    /// `mkfs.erofs --all-root [-T 0 -U <uuid>] [--file-contexts=<file>]
    /// <file> <staging>`.
    fn make_erofs(&self, file: &Path) -> Result<(), ImageError> {
        let mut cmd = Command::new(MKFS_EROFS);
        cmd.args(["--quiet", "--all-root"]);
        if let Some(contexts) = &self.file_contexts {
            let mut arg = std::ffi::OsString::from("--file-contexts=");
            arg.push(contexts);
            cmd.arg(arg);
        }
        if let Some(uuid) = self.fs_uuid() {
            cmd.arg("-T0").arg(format!("-U{uuid}"));
        }
        cmd.arg(file).arg(&self.staging);
        run(&mut cmd).map(drop)
    }

    /// `mkfs.ext4 -d <staging>` into a file sized from the staging tree.
    fn make_ext4(&self, file: &Path) -> Result<(), ImageError> {
        let content = tree_size(&self.staging)?;
        // A quarter for directories, bitmaps and inode tables, plus a
        // floor: mkfs.ext4 -d fails (and says so) if that is not enough.
        let size = content
            .checked_add(content / 4)
            .and_then(|s| s.checked_add(MIN_EXT4_SIZE))
            .and_then(|s| align_up(s, ALIGNMENT))
            .ok_or(ImageError::Overflow { what: "ext4 size" })?;
        let f = File::create(file).map_err(io_error("create", file))?;
        f.set_len(size).map_err(io_error("resize", file))?;
        let mut cmd = Command::new(MKFS_EXT4);
        // No journal: the root is read-only under dm-verity. root_owner:
        // the root directory belongs to root whoever builds the image.
        // mke2fs keeps only the last -E, so the extended options are joined.
        let mut extended = String::from("root_owner=0:0");
        cmd.args(["-q", "-F", "-b", "4096", "-m", "0", "-O", "^has_journal"])
            .args(["-L", ROOT_LABEL, "-d"])
            .arg(&self.staging);
        if let Some(uuid) = self.fs_uuid() {
            cmd.args(["-U", &uuid]);
            extended.push_str(&format!(",hash_seed={uuid}"));
        }
        cmd.args(["-E", &extended]).arg(file);
        run(&mut cmd).map(drop)
    }

    fn salt_and_uuid(&self) -> (Option<Vec<u8>>, Option<Uuid>) {
        let salt = self.derived(b"liftoff verity salt").map(|d| d.to_vec());
        let uuid = self
            .derived(b"liftoff verity uuid")
            .map(|d| Uuid::v4_from_random(first16(&d)));
        (salt, uuid)
    }

    fn format_liftoff(&self, data: &Path, hash: &Path) -> Result<String, ImageError> {
        let (salt, uuid) = self.salt_and_uuid();
        let opts = FormatOptions {
            salt,
            uuid,
            ..FormatOptions::default()
        };
        let report =
            verity::format::format(data, hash, &opts).map_err(|source| ImageError::Format {
                data: data.to_owned(),
                hash: hash.to_owned(),
                source,
            })?;
        Ok(hex(&report.root_hash))
    }

    fn format_veritysetup(&self, data: &Path, hash: &Path) -> Result<String, ImageError> {
        let (salt, uuid) = self.salt_and_uuid();
        let mut cmd = Command::new(VERITYSETUP);
        cmd.arg("format");
        if let Some(salt) = salt {
            cmd.arg(format!("--salt={}", hex(&salt)));
        }
        if let Some(uuid) = uuid {
            cmd.arg(format!("--uuid={uuid}"));
        }
        cmd.arg(data).arg(hash);
        let stdout = run(&mut cmd)?;
        parse_root_hash(&stdout).ok_or_else(|| ImageError::NoRootHash {
            command: command_line(&cmd),
        })
    }
}

/// The GPT for partitions `(name, type, uuid, bytes)` numbered from 1,
/// each starting on an [`ALIGNMENT`] boundary and rounded up to one, with
/// one alignment unit before the first (for the primary GPT) and after the
/// last (for the backup).
fn plan_layout(
    parts: [(&str, PartitionType, Guid, u64); 3],
    disk_guid: Guid,
) -> Result<GptLayout, ImageError> {
    let overflow = |what| ImageError::Overflow { what };
    let ss = u64::from(SECTOR_SIZE);
    let mut next = ALIGNMENT;
    let mut partitions = Vec::with_capacity(parts.len());
    for (number, (name, kind, uuid, bytes)) in (1u32..).zip(parts) {
        let len = align_up(bytes.max(1), ALIGNMENT).ok_or(overflow("partition size"))?;
        let end = next.checked_add(len).ok_or(overflow("disk size"))?;
        partitions.push(GptPartition {
            number,
            type_guid: kind.guid,
            uuid,
            first_lba: next / ss,
            last_lba: end / ss - 1,
            attributes: 0,
            name: name.to_owned(),
        });
        next = end;
    }
    let total = next.checked_add(ALIGNMENT).ok_or(overflow("disk size"))?;
    Ok(GptLayout {
        sector_size: SECTOR_SIZE,
        total_sectors: total / ss,
        disk_guid,
        partitions,
    })
}

/// The DATA partition's UUID: derived from the root hash (systemd-repart
/// derives its other partitions' UUIDs from a seed; ours is the hash).
fn data_uuid(root_hash: &str) -> Guid {
    derive_guid(b"liftoff data partuuid", root_hash.as_bytes())
}

/// A version 4 GUID from SHA-256 of `purpose` and `input`.
fn derive_guid(purpose: &[u8], input: &[u8]) -> Guid {
    let mut h = Sha256::new();
    h.update(purpose);
    h.update([0]);
    h.update(input);
    let digest: [u8; 32] = h.finalize().into();
    Guid(Uuid::v4_from_random(first16(&digest)).0)
}

fn first16(d: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

fn align_up(n: u64, to: u64) -> Option<u64> {
    n.checked_next_multiple_of(to)
}

/// Extends `path` (with a hole) to a multiple of [`ALIGNMENT`]; returns
/// the new length.
fn align_file(path: &Path) -> Result<u64, ImageError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error("open", path))?;
    let len = file.metadata().map_err(io_error("stat", path))?.len();
    let aligned = align_up(len.max(1), ALIGNMENT).ok_or(ImageError::Overflow {
        what: "partition size",
    })?;
    file.set_len(aligned).map_err(io_error("resize", path))?;
    Ok(aligned)
}

/// Copies `len` bytes at `src_off` of `src` to `dst_off` of `dst`, which
/// reads as zeros there already (a fresh `set_len`): all-zero chunks are
/// skipped, so holes stay holes.
fn copy_sparse(
    src: &File,
    src_path: &Path,
    src_off: u64,
    len: u64,
    dst: &File,
    dst_path: &Path,
    dst_off: u64,
) -> Result<(), ImageError> {
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = usize::try_from((len - done).min(COPY_CHUNK as u64)).unwrap_or(COPY_CHUNK);
        let chunk = &mut buf[..n];
        src.read_exact_at(chunk, src_off + done)
            .map_err(io_error("read", src_path))?;
        if chunk.iter().any(|&b| b != 0) {
            dst.write_all_at(chunk, dst_off + done)
                .map_err(io_error("write", dst_path))?;
        }
        done += n as u64;
    }
    Ok(())
}

/// Bytes the staging tree's files and directories take in 4 KiB blocks
/// (one block per entry plus each file's data).
fn tree_size(dir: &Path) -> Result<u64, ImageError> {
    const BLOCK: u64 = 4096;
    let mut total = BLOCK;
    let entries = fs::read_dir(dir).map_err(io_error("read directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error("read directory", dir))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(io_error("stat", &path))?;
        let data = if meta.is_dir() {
            tree_size(&path)?
        } else {
            BLOCK.saturating_add(meta.len().next_multiple_of(BLOCK))
        };
        total = total.saturating_add(data);
    }
    Ok(total)
}

/// veritysetup's `Root hash:` line, checked to be hex.
fn parse_root_hash(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("Root hash:"))
        .map(str::trim)
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd`; its stdout on success.
fn run(cmd: &mut Command) -> Result<String, ImageError> {
    let output = cmd.output().map_err(|source| ImageError::Spawn {
        command: command_line(cmd),
        source,
    })?;
    if !output.status.success() {
        return Err(ImageError::Tool {
            command: command_line(cmd),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.to_owned();
    move |source| ImageError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests;
