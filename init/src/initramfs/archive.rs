//! Build a newc cpio initramfs from a typed list of entries.
//!
//! The archive is deterministic: entries are written sorted by path (which
//! puts every folder before its contents, as the kernel's unpacker needs),
//! inode numbers count up from 1 in that order, and every entry has uid 0,
//! gid 0 and mtime 0. Two builds of the same entries give the same bytes.
//!
//! Missing parent folders are added (mode 0755). Adding the same path twice
//! keeps the later entry, so a caller can override a default.
//!
//! This module writes the uncompressed cpio stream; [`super::output`]
//! compresses it (or not) into a file.
//!
//! What it leaves out: hard links, block devices, fifos and sockets (nothing
//! boots with them yet).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cpio::newc::{self, ModeFileType};

use super::elf::{ElfError, ensure_static};

/// Device numbers of the nodes every initramfs carries. The kernel opens
/// `/dev/console` from the initramfs before running `/init`
/// (`console_on_rootfs` in init/main.c) and warns "unable to open an initial
/// console" without it, so it must exist before devtmpfs is mounted.
const CONSOLE: (u32, u32) = (5, 1);
/// `/dev/kmsg`, where liftoff logs until it has a console.
const KMSG: (u32, u32) = (1, 11);

/// Where the binary to run as PID 1 goes: the kernel runs `/init` from an
/// initramfs (`rdinit=` default).
pub const INIT_PATH: &str = "/init";

/// The bytes of a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContents {
    /// Given in memory.
    Bytes(Vec<u8>),
    /// Read from this host file when the archive is written.
    Host(PathBuf),
}

/// One file in the archive. Paths are absolute guest paths such as
/// `/dev/console`; modes are permission bits only (at most `0o7777`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A folder.
    Dir {
        /// Guest path.
        path: String,
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Guest path.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Its contents.
        contents: FileContents,
    },
    /// A character device node.
    CharDev {
        /// Guest path.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Guest path.
        path: String,
        /// What it points at, stored as given.
        target: String,
    },
}

impl Entry {
    /// The entry's guest path as given.
    pub fn path(&self) -> &str {
        match self {
            Self::Dir { path, .. }
            | Self::File { path, .. }
            | Self::CharDev { path, .. }
            | Self::Symlink { path, .. } => path,
        }
    }
}

/// What failed while building an initramfs.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A guest path is not absolute, or has empty, `.` or `..` components.
    #[error("invalid guest path {path:?}: must be absolute with no empty, `.` or `..` components")]
    InvalidPath {
        /// The path as given.
        path: String,
    },
    /// A mode has bits beyond the permission bits.
    #[error("invalid mode {mode:#o} for {path}: give permission bits only (at most 0o7777)")]
    InvalidMode {
        /// The guest path.
        path: String,
        /// The mode as given.
        mode: u32,
    },
    /// A symlink with an empty target.
    #[error("symlink {path} has an empty target")]
    EmptySymlinkTarget {
        /// The guest path.
        path: String,
    },
    /// An entry sits below a path that is not a folder.
    #[error("{path} sits below {parent}, which is not a folder")]
    ParentNotDirectory {
        /// The guest path of the entry.
        path: String,
        /// The guest path of its parent.
        parent: String,
    },
    /// A file does not fit the newc format's 32-bit size field.
    #[error("{} is too large for a newc archive ({size} bytes, at most 4 GiB)", path.display())]
    TooLarge {
        /// The host file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A host file could not be read.
    #[error("cannot read {}", path.display())]
    ReadSource {
        /// The host file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A host file changed size while it was being copied.
    #[error("{} changed size while it was copied", path.display())]
    SourceChanged {
        /// The host file.
        path: PathBuf,
    },
    /// The binary meant as `/init` is not a static ELF executable.
    #[error("cannot use {} as /init", path.display())]
    Init {
        /// The host file.
        path: PathBuf,
        #[source]
        source: ElfError,
    },
    /// Finishing the compressed stream failed.
    #[error("cannot finish the {compression} stream")]
    Compress {
        /// The compression.
        compression: &'static str,
        #[source]
        source: io::Error,
    },
    /// Writing an entry into the archive failed.
    #[error("cannot write {entry} into the archive")]
    Write {
        /// The guest path (or `TRAILER!!!`).
        entry: String,
        #[source]
        source: io::Error,
    },
    /// Creating, flushing or renaming the output file failed.
    #[error("cannot {action} {}", path.display())]
    Output {
        /// What was being done.
        action: &'static str,
        /// The output path.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A builder for an initramfs archive.
///
/// ```no_run
/// # use std::path::Path;
/// # use liftoff_init::initramfs::Initramfs;
/// Initramfs::new()
///     .static_init(Path::new("target/release/liftoff"))?
///     .file("/etc/hostname", 0o644, "guest\n")
///     .write_to(Path::new("target/initramfs.cpio"))?;
/// # Ok::<(), liftoff_init::initramfs::ArchiveError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initramfs {
    entries: Vec<Entry>,
}

impl Default for Initramfs {
    fn default() -> Self {
        Self::new()
    }
}

impl Initramfs {
    /// An initramfs holding the folders and nodes every boot needs:
    /// `/dev`, `/dev/console` (c 5 1), `/dev/kmsg` (c 1 11), and the mount
    /// points `/proc`, `/sys`, `/run` and `/root`.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
        .dir("/dev", 0o755)
        .char_dev("/dev/console", 0o600, CONSOLE.0, CONSOLE.1)
        .char_dev("/dev/kmsg", 0o644, KMSG.0, KMSG.1)
        .dir("/proc", 0o555)
        .dir("/sys", 0o555)
        .dir("/run", 0o755)
        .dir("/root", 0o700)
    }

    /// Add a folder.
    pub fn dir(self, path: impl Into<String>, mode: u32) -> Self {
        self.entry(Entry::Dir {
            path: path.into(),
            mode,
        })
    }

    /// Add a regular file with the given bytes.
    pub fn file(self, path: impl Into<String>, mode: u32, contents: impl Into<Vec<u8>>) -> Self {
        self.entry(Entry::File {
            path: path.into(),
            mode,
            contents: FileContents::Bytes(contents.into()),
        })
    }

    /// Add a regular file copied from a host file when the archive is
    /// written.
    pub fn file_from(self, path: impl Into<String>, mode: u32, source: impl Into<PathBuf>) -> Self {
        self.entry(Entry::File {
            path: path.into(),
            mode,
            contents: FileContents::Host(source.into()),
        })
    }

    /// Add a character device node.
    pub fn char_dev(self, path: impl Into<String>, mode: u32, major: u32, minor: u32) -> Self {
        self.entry(Entry::CharDev {
            path: path.into(),
            mode,
            major,
            minor,
        })
    }

    /// Add a symbolic link.
    pub fn symlink(self, path: impl Into<String>, target: impl Into<String>) -> Self {
        self.entry(Entry::Symlink {
            path: path.into(),
            target: target.into(),
        })
    }

    /// Add one entry; a later entry for the same path replaces an earlier one.
    pub fn entry(mut self, entry: Entry) -> Self {
        self.entries.push(entry);
        self
    }

    /// Add several entries (extra files, modules, probes).
    pub fn entries(mut self, entries: impl IntoIterator<Item = Entry>) -> Self {
        self.entries.extend(entries);
        self
    }

    /// Put `binary` at `/init` (mode 0755) after checking that it is a
    /// statically linked ELF file.
    pub fn static_init(self, binary: &Path) -> Result<Self, ArchiveError> {
        ensure_static(binary).map_err(|source| ArchiveError::Init {
            path: binary.to_path_buf(),
            source,
        })?;
        Ok(self.file_from(INIT_PATH, 0o755, binary))
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArchiveError> {
        let mut bytes = Vec::new();
        self.write(&mut bytes)?;
        Ok(bytes)
    }

    /// Write the archive to any writer.
    pub fn write(&self, mut out: impl Write) -> Result<(), ArchiveError> {
        let plan = self.plan()?;
        for (index, (path, node)) in plan.iter().enumerate() {
            // Inode 0 is left unused, as gen_init_cpio does.
            let ino = u32::try_from(index + 1).unwrap_or(u32::MAX);
            write_node(&mut out, path, ino, node).map_err(|err| match err {
                NodeError::Archive(source) => ArchiveError::Write {
                    entry: format!("/{path}"),
                    source,
                },
                NodeError::Build(err) => err,
            })?;
        }
        newc::trailer(&mut out).map_err(|source| ArchiveError::Write {
            entry: "TRAILER!!!".to_owned(),
            source,
        })?;
        Ok(())
    }

    /// Validate the entries and order them: the last entry for a path wins,
    /// missing parents become 0755 folders, and the map's order (a path sorts
    /// before any path it is a prefix of) puts parents before children.
    fn plan(&self) -> Result<BTreeMap<String, Node<'_>>, ArchiveError> {
        let mut plan = BTreeMap::new();
        for entry in &self.entries {
            let path = archive_name(entry.path())?;
            let node = match entry {
                Entry::Dir { mode, .. } => Node::Dir(permissions(&path, *mode)?),
                Entry::File { mode, contents, .. } => {
                    Node::File(permissions(&path, *mode)?, contents)
                }
                Entry::CharDev {
                    mode, major, minor, ..
                } => Node::CharDev(permissions(&path, *mode)?, *major, *minor),
                Entry::Symlink { target, .. } => {
                    if target.is_empty() {
                        return Err(ArchiveError::EmptySymlinkTarget {
                            path: entry.path().to_owned(),
                        });
                    }
                    Node::Symlink(target)
                }
            };
            plan.insert(path, node);
        }

        let paths: Vec<String> = plan.keys().cloned().collect();
        for path in paths {
            let mut parent = path.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                parent = up;
                match plan.get(parent) {
                    Some(Node::Dir(_)) => {}
                    Some(_) => {
                        return Err(ArchiveError::ParentNotDirectory {
                            path: format!("/{path}"),
                            parent: format!("/{parent}"),
                        });
                    }
                    None => {
                        plan.insert(parent.to_owned(), Node::Dir(0o755));
                    }
                }
            }
        }
        Ok(plan)
    }
}

/// Write the standard liftoff initramfs to `out`: the base entries of
/// [`Initramfs::new`] plus `liftoff_bin` as `/init`. Callers that need extra
/// files (modules, probes) use [`Initramfs::static_init`] and add them.
pub fn liftoff_initramfs(liftoff_bin: &Path, out: &Path) -> Result<(), ArchiveError> {
    Initramfs::new().static_init(liftoff_bin)?.write_to(out)
}

/// A validated entry, borrowing its data from the builder.
#[derive(Debug)]
enum Node<'a> {
    Dir(u32),
    File(u32, &'a FileContents),
    CharDev(u32, u32, u32),
    Symlink(&'a str),
}

/// `/dev/console` → `dev/console`, rejecting relative paths and `.`/`..`.
fn archive_name(path: &str) -> Result<String, ArchiveError> {
    let invalid = || ArchiveError::InvalidPath {
        path: path.to_owned(),
    };
    let relative = path.strip_prefix('/').ok_or_else(invalid)?;
    if relative.is_empty() || relative.contains('\0') {
        return Err(invalid());
    }
    if relative
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(invalid());
    }
    Ok(relative.to_owned())
}

fn permissions(path: &str, mode: u32) -> Result<u32, ArchiveError> {
    if mode & !0o7777 != 0 {
        return Err(ArchiveError::InvalidMode {
            path: format!("/{path}"),
            mode,
        });
    }
    Ok(mode)
}

/// Why one node could not be written: the archive writer failed, or a host
/// source file did (already a complete error).
enum NodeError {
    Archive(io::Error),
    Build(ArchiveError),
}

impl From<io::Error> for NodeError {
    fn from(err: io::Error) -> Self {
        Self::Archive(err)
    }
}

fn write_node(
    out: &mut impl Write,
    path: &str,
    ino: u32,
    node: &Node<'_>,
) -> Result<(), NodeError> {
    let header = newc::Builder::new(path).ino(ino).uid(0).gid(0).mtime(0);
    match node {
        Node::Dir(mode) => {
            let header = header
                .mode(*mode)
                .set_mode_file_type(ModeFileType::Directory)
                .nlink(2);
            header.write(out, 0).finish()?;
        }
        Node::CharDev(mode, major, minor) => {
            let header = header
                .mode(*mode)
                .set_mode_file_type(ModeFileType::Char)
                .rdev_major(*major)
                .rdev_minor(*minor);
            header.write(out, 0).finish()?;
        }
        Node::Symlink(target) => {
            let header = header.mode(0o777).set_mode_file_type(ModeFileType::Symlink);
            write_data(header, out, target.as_bytes())?;
        }
        Node::File(mode, FileContents::Bytes(bytes)) => {
            let header = header.mode(*mode).set_mode_file_type(ModeFileType::Regular);
            write_data(header, out, bytes)?;
        }
        Node::File(mode, FileContents::Host(source)) => {
            let header = header.mode(*mode).set_mode_file_type(ModeFileType::Regular);
            copy_host_file(header, out, source)?;
        }
    }
    Ok(())
}

fn write_data(header: newc::Builder, out: &mut impl Write, data: &[u8]) -> Result<(), NodeError> {
    let size = u32::try_from(data.len()).map_err(|_| {
        NodeError::Build(ArchiveError::TooLarge {
            path: PathBuf::from("<memory>"),
            size: data.len() as u64,
        })
    })?;
    let mut writer = header.write(out, size);
    writer.write_all(data)?;
    writer.finish()?;
    Ok(())
}

fn copy_host_file(
    header: newc::Builder,
    out: &mut impl Write,
    source: &Path,
) -> Result<(), NodeError> {
    let read_error = |err| {
        NodeError::Build(ArchiveError::ReadSource {
            path: source.to_path_buf(),
            source: err,
        })
    };
    let file = File::open(source).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    let size32 = u32::try_from(size).map_err(|_| {
        NodeError::Build(ArchiveError::TooLarge {
            path: source.to_path_buf(),
            size,
        })
    })?;
    let mut writer = header.write(out, size32);
    // Copy by hand rather than io::copy so that a read error is told apart
    // from a write error.
    let mut reader = file.take(size);
    let mut buf = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(read_error)?;
        if n == 0 {
            break;
        }
        writer.write_all(&buf[..n])?;
        copied += n as u64;
    }
    if copied != size {
        return Err(NodeError::Build(ArchiveError::SourceChanged {
            path: source.to_path_buf(),
        }));
    }
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs;

    use super::*;
    use crate::initramfs::elf::tests::tiny_elf;

    /// One parsed archive member.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct Member {
        pub(crate) name: String,
        pub(crate) ino: u32,
        pub(crate) mode: u32,
        pub(crate) uid: u32,
        pub(crate) gid: u32,
        pub(crate) mtime: u32,
        pub(crate) rdev: (u32, u32),
        pub(crate) data: Vec<u8>,
    }

    /// The members of an uncompressed archive, in order.
    pub(crate) fn parse(mut bytes: &[u8]) -> Vec<Member> {
        let mut members = Vec::new();
        loop {
            let mut reader = newc::Reader::new(bytes).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            let entry = reader.entry();
            let mut member = Member {
                name: entry.name().to_owned(),
                ino: entry.ino(),
                mode: entry.mode(),
                uid: entry.uid(),
                gid: entry.gid(),
                mtime: entry.mtime(),
                rdev: (entry.rdev_major(), entry.rdev_minor()),
                data: Vec::new(),
            };
            reader.read_to_end(&mut member.data).unwrap();
            members.push(member);
            bytes = reader.finish().unwrap();
        }
        members
    }

    pub(crate) fn find<'a>(members: &'a [Member], name: &str) -> &'a Member {
        members
            .iter()
            .find(|member| member.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {members:#?}"))
    }

    fn sample() -> Initramfs {
        Initramfs::new()
            .file("/etc/liftoff/units/a.toml", 0o644, "x = 1\n")
            .symlink("/sbin/init", "/init")
            .char_dev("/dev/null", 0o666, 1, 3)
            .file("/init", 0o755, b"\x7fELF".to_vec())
    }

    #[test]
    fn base_entries_are_always_there() {
        let members = parse(&Initramfs::new().to_bytes().unwrap());
        let cases = [
            ("dev", 0o040_755, (0, 0)),
            ("dev/console", 0o020_600, (5, 1)),
            ("dev/kmsg", 0o020_644, (1, 11)),
            ("proc", 0o040_555, (0, 0)),
            ("sys", 0o040_555, (0, 0)),
            ("run", 0o040_755, (0, 0)),
            ("root", 0o040_700, (0, 0)),
        ];
        for (name, mode, rdev) in cases {
            let member = find(&members, name);
            assert_eq!(member.mode, mode, "mode of {name}");
            assert_eq!(member.rdev, rdev, "rdev of {name}");
        }
        assert_eq!(members.len(), cases.len());
    }

    #[test]
    fn entries_parse_back_with_types_and_contents() {
        let members = parse(&sample().to_bytes().unwrap());
        let unit = find(&members, "etc/liftoff/units/a.toml");
        assert_eq!(unit.mode, 0o100_644);
        assert_eq!(unit.data, b"x = 1\n");
        let link = find(&members, "sbin/init");
        assert_eq!(link.mode, 0o120_777);
        assert_eq!(link.data, b"/init");
        assert_eq!(find(&members, "dev/null").rdev, (1, 3));
        assert_eq!(find(&members, "init").mode, 0o100_755);
        for member in &members {
            assert_eq!(
                (member.uid, member.gid, member.mtime),
                (0, 0, 0),
                "{}",
                member.name
            );
        }
    }

    #[test]
    fn parents_come_first_and_are_added() {
        let members = parse(&sample().to_bytes().unwrap());
        let names: Vec<&str> = members.iter().map(|member| member.name.as_str()).collect();
        for added in ["etc", "etc/liftoff", "etc/liftoff/units", "sbin"] {
            assert_eq!(find(&members, added).mode, 0o040_755, "{added}");
        }
        for (index, name) in names.iter().enumerate() {
            if let Some((parent, _)) = name.rsplit_once('/') {
                let parent_index = names.iter().position(|other| *other == parent);
                assert!(
                    parent_index.is_some_and(|at| at < index),
                    "{parent} must precede {name} in {names:?}"
                );
            }
        }
    }

    #[test]
    fn inodes_are_unique_and_sequential() {
        let members = parse(&sample().to_bytes().unwrap());
        let inodes: Vec<u32> = members.iter().map(|member| member.ino).collect();
        let expected: Vec<u32> = (1..=members.len() as u32).collect();
        assert_eq!(inodes, expected);
    }

    #[test]
    fn output_is_deterministic_regardless_of_insertion_order() {
        let a = sample().to_bytes().unwrap();
        let b = sample().to_bytes().unwrap();
        assert_eq!(a, b);
        let reordered = Initramfs::new()
            .file("/init", 0o755, b"\x7fELF".to_vec())
            .char_dev("/dev/null", 0o666, 1, 3)
            .symlink("/sbin/init", "/init")
            .file("/etc/liftoff/units/a.toml", 0o644, "x = 1\n");
        assert_eq!(a, reordered.to_bytes().unwrap());
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let members = parse(&Initramfs::new().dir("/root", 0o750).to_bytes().unwrap());
        assert_eq!(find(&members, "root").mode, 0o040_750);
    }

    #[test]
    fn host_files_are_copied_and_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("probe");
        fs::write(&source, b"probe bytes").unwrap();
        let out = dir.path().join("initramfs.cpio");
        Initramfs::new()
            .file_from("/bin/probe", 0o700, &source)
            .write_to(&out)
            .unwrap();
        let members = parse(&fs::read(&out).unwrap());
        assert_eq!(find(&members, "bin/probe").data, b"probe bytes");
        // Only the archive is left: the temporary file was renamed.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn invalid_entries_are_rejected() {
        type Expected = fn(&ArchiveError) -> bool;
        let cases: Vec<(&str, Initramfs, Expected)> = vec![
            ("relative path", Initramfs::new().dir("etc", 0o755), |e| {
                matches!(e, ArchiveError::InvalidPath { .. })
            }),
            ("dot-dot", Initramfs::new().dir("/etc/../x", 0o755), |e| {
                matches!(e, ArchiveError::InvalidPath { .. })
            }),
            (
                "trailing slash",
                Initramfs::new().dir("/etc/", 0o755),
                |e| matches!(e, ArchiveError::InvalidPath { .. }),
            ),
            ("root itself", Initramfs::new().dir("/", 0o755), |e| {
                matches!(e, ArchiveError::InvalidPath { .. })
            }),
            (
                "file type in mode",
                Initramfs::new().file("/a", 0o100_644, ""),
                |e| matches!(e, ArchiveError::InvalidMode { .. }),
            ),
            ("empty symlink", Initramfs::new().symlink("/a", ""), |e| {
                matches!(e, ArchiveError::EmptySymlinkTarget { .. })
            }),
            (
                "child of a file",
                Initramfs::new()
                    .file("/a", 0o644, "")
                    .file("/a/b", 0o644, ""),
                |e| matches!(e, ArchiveError::ParentNotDirectory { .. }),
            ),
            (
                "missing host file",
                Initramfs::new().file_from("/a", 0o644, "/nonexistent/liftoff-test"),
                |e| matches!(e, ArchiveError::ReadSource { path, .. } if path.ends_with("liftoff-test")),
            ),
        ];
        for (name, initramfs, expected) in cases {
            let err = initramfs.to_bytes().unwrap_err();
            assert!(expected(&err), "case {name}: unexpected error {err:?}");
        }
    }

    #[test]
    fn static_elf_is_accepted_as_init() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("static-init");
        fs::write(&binary, tiny_elf(None)).unwrap();
        let out = dir.path().join("initramfs.cpio");
        liftoff_initramfs(&binary, &out).unwrap();
        let members = parse(&fs::read(&out).unwrap());
        let init = find(&members, "init");
        assert_eq!(init.mode, 0o100_755);
        assert_eq!(init.data, tiny_elf(None));
    }

    #[test]
    fn dynamic_elf_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("dynamic-init");
        fs::write(&binary, tiny_elf(Some("/lib64/ld-linux-x86-64.so.2"))).unwrap();
        let err = liftoff_initramfs(&binary, &dir.path().join("out.cpio")).unwrap_err();
        match &err {
            ArchiveError::Init {
                path,
                source: ElfError::DynamicallyLinked { interpreter, .. },
            } => {
                assert_eq!(path, &binary);
                assert_eq!(interpreter, "/lib64/ld-linux-x86-64.so.2");
            }
            other => panic!("unexpected error: {other:?}"),
        }
        assert!(err.to_string().contains("dynamic-init"), "{err}");
        assert!(!dir.path().join("out.cpio").exists());
    }
}
