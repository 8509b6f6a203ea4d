//! Parser for `/proc/<pid>/mountinfo` (proc(5), "/proc/pid/mountinfo").
//!
//! Written by hand: the format is one line per mount with a fixed field
//! order, and the crates that parse it (`procfs`, `libmount`) bring either
//! the whole of procfs or a C library that does not link statically.

use std::path::PathBuf;

use thiserror::Error;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Unique mount ID.
    pub mount_id: u32,
    /// ID of the parent mount.
    pub parent_id: u32,
    /// `major:minor` of the filesystem's device.
    pub major: u32,
    /// See `major`.
    pub minor: u32,
    /// The root of the mount inside its filesystem.
    pub root: PathBuf,
    /// Where it is mounted, relative to the reader's root.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`, `nosuid`, …).
    pub mount_options: String,
    /// Optional fields (`shared:N`, `master:N`, …).
    pub optional: Vec<String>,
    /// Filesystem type, with any `subtype` after a dot.
    pub fstype: String,
    /// Mount source (device, or a name such as `proc`).
    pub source: String,
    /// Per-superblock options.
    pub super_options: String,
}

/// Why a mountinfo line could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MountInfoError {
    /// The line has fewer fields than the format requires.
    #[error("mountinfo line {line}: missing field {field}")]
    MissingField {
        /// 1-based line number.
        line: usize,
        /// Name of the first missing field.
        field: &'static str,
    },
    /// A numeric field is not a number.
    #[error("mountinfo line {line}: {field} {text:?} is not a number")]
    BadNumber {
        /// 1-based line number.
        line: usize,
        /// Name of the field.
        field: &'static str,
        /// What was there instead.
        text: String,
    },
}

/// The whole mount table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountTable {
    /// Mounts in the kernel's order (parents before children).
    pub mounts: Vec<MountInfo>,
}

impl MountTable {
    /// Parses the text of a mountinfo file.
    pub fn parse(text: &str) -> Result<Self, MountInfoError> {
        let mounts = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| parse_line(i + 1, l))
            .collect::<Result<_, _>>()?;
        Ok(Self { mounts })
    }

    /// The mount that is visible at `path` (the last one mounted there), if
    /// `path` is a mount point.
    pub fn at(&self, path: &std::path::Path) -> Option<&MountInfo> {
        self.mounts.iter().rev().find(|m| m.mount_point == path)
    }
}

fn parse_line(line: usize, text: &str) -> Result<MountInfo, MountInfoError> {
    let mut fields = text.split_ascii_whitespace();
    let mut next = |field: &'static str| {
        fields
            .next()
            .ok_or(MountInfoError::MissingField { line, field })
    };
    let number = |field: &'static str, text: &str| {
        text.parse::<u32>().map_err(|_| MountInfoError::BadNumber {
            line,
            field,
            text: text.to_owned(),
        })
    };

    let mount_id = number("mount id", next("mount id")?)?;
    let parent_id = number("parent id", next("parent id")?)?;
    let devno = next("major:minor")?;
    let (major, minor) = devno.split_once(':').ok_or(MountInfoError::BadNumber {
        line,
        field: "major:minor",
        text: devno.to_owned(),
    })?;
    let (major, minor) = (number("major", major)?, number("minor", minor)?);
    let root = PathBuf::from(unescape(next("root")?));
    let mount_point = PathBuf::from(unescape(next("mount point")?));
    let mount_options = next("mount options")?.to_owned();
    let mut optional = Vec::new();
    loop {
        let field = next("separator")?;
        if field == "-" {
            break;
        }
        optional.push(field.to_owned());
    }
    let fstype = next("filesystem type")?.to_owned();
    let source = unescape(next("mount source")?);
    let super_options = next("super options")?.to_owned();
    Ok(MountInfo {
        mount_id,
        parent_id,
        major,
        minor,
        root,
        mount_point,
        mount_options,
        optional,
        fstype,
        source,
        super_options,
    })
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011` tab, `\012`
/// newline, `\134` backslash; fs/proc_namespace.c `mangle`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let value = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
23 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
24 1 0:5 / /dev rw,nosuid,relatime shared:3 master:1 - devtmpfs udev rw,size=4096k,nr_inodes=1024,mode=755
31 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
40 1 8:1 /sub /mnt/with\\040space rw - ext4 /dev/sda1 rw
";

    #[test]
    fn parses_every_field() {
        let table = MountTable::parse(SAMPLE).unwrap();
        assert_eq!(table.mounts.len(), 5);
        let dev = &table.mounts[2];
        assert_eq!(dev.mount_id, 24);
        assert_eq!(dev.parent_id, 1);
        assert_eq!((dev.major, dev.minor), (0, 5));
        assert_eq!(dev.mount_point, Path::new("/dev"));
        assert_eq!(dev.optional, vec!["shared:3", "master:1"]);
        assert_eq!(dev.fstype, "devtmpfs");
        assert_eq!(dev.source, "udev");
        assert_eq!(dev.super_options, "rw,size=4096k,nr_inodes=1024,mode=755");
    }

    #[test]
    fn unescapes_octal_sequences() {
        let table = MountTable::parse(SAMPLE).unwrap();
        let m = &table.mounts[4];
        assert_eq!(m.mount_point, Path::new("/mnt/with space"));
        assert_eq!(m.root, Path::new("/sub"));
        assert_eq!(unescape("a\\011b\\012c\\134d"), "a\tb\nc\\d");
        // Not an escape: too short, or not octal.
        assert_eq!(unescape("x\\04"), "x\\04");
        assert_eq!(unescape("x\\09a"), "x\\09a");
    }

    #[test]
    fn at_finds_the_topmost_mount() {
        let text = "1 0 0:1 / / rw - rootfs rootfs rw\n\
                    2 1 0:2 / /run rw - tmpfs tmpfs rw\n\
                    3 2 0:3 / /run rw - ramfs none rw\n";
        let table = MountTable::parse(text).unwrap();
        assert_eq!(table.at(Path::new("/run")).unwrap().fstype, "ramfs");
        assert!(table.at(Path::new("/proc")).is_none());
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let cases = [
            (
                "missing separator",
                "1 0 0:1 / / rw",
                MountInfoError::MissingField {
                    line: 1,
                    field: "separator",
                },
            ),
            (
                "bad id",
                "x 0 0:1 / / rw - proc proc rw",
                MountInfoError::BadNumber {
                    line: 1,
                    field: "mount id",
                    text: "x".into(),
                },
            ),
            (
                "bad devno",
                "1 0 01 / / rw - proc proc rw",
                MountInfoError::BadNumber {
                    line: 1,
                    field: "major:minor",
                    text: "01".into(),
                },
            ),
            (
                "no super options",
                "1 0 0:1 / / rw - proc proc",
                MountInfoError::MissingField {
                    line: 1,
                    field: "super options",
                },
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(MountTable::parse(text).unwrap_err(), want, "case {name}");
        }
        let second = MountTable::parse("1 0 0:1 / / rw - proc proc rw\n2 1 0:2 /").unwrap_err();
        assert_eq!(
            second,
            MountInfoError::MissingField {
                line: 2,
                field: "mount point"
            }
        );
    }
}
