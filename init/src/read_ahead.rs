//! The root's read-ahead while booting (`liftoff.boot_read_ahead_kb=`).
//!
//! Boot reads large programs once, front to back: containerd alone is a
//! 48 MB Go binary that its runtime touches nearly all of before it
//! serves. With the kernel's 128 KiB read-ahead each fault on it is a
//! small request through dm-verity; a larger window fetches and verifies
//! the same bytes in fewer, larger requests. Android's device init
//! scripts raise `read_ahead_kb` on their system partitions the same way
//! while booting and put it back when boot has completed, because a
//! large window only wastes reads and page cache on a running system's
//! scattered accesses.
//!
//! So stage 1 raises the verity device's `queue/read_ahead_kb` before it
//! mounts the root (a file's window is fixed when the file is opened, so
//! it must be early) and hands the kernel's value to stage 2 in the boot
//! record; stage 2 writes it back when boot completes. Both steps are
//! best effort: a read-ahead is a speed, never a reason to stop a boot.
//!
//! The sysfs file is found from the device's number,
//! `/sys/dev/block/MAJOR:MINOR/queue/read_ahead_kb`, so a node under
//! `/dev/mapper/` and one like `/dev/dm-0` lead to the same file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where sysfs lists block devices by number.
const SYS_DEV_BLOCK: &str = "/sys/dev/block";

/// A raised read-ahead, as stage 1 hands it to stage 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadAhead {
    /// The device's `queue/read_ahead_kb`.
    pub path: PathBuf,
    /// What the kernel had set, restored when boot completes.
    pub kernel_kb: u32,
    /// What boot runs with.
    pub boot_kb: u32,
}

/// What went wrong with a read-ahead; each names the file or device.
#[derive(Debug, thiserror::Error)]
pub enum ReadAheadError {
    /// The device node cannot be examined.
    #[error("cannot stat {}", device.display())]
    Stat {
        /// The device node.
        device: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// The sysfs file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The sysfs file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The sysfs file holds something other than a number.
    #[error("{} holds {text:?}, not a number of KiB", path.display())]
    Parse {
        /// The sysfs file.
        path: PathBuf,
        /// What it holds.
        text: String,
    },
    /// The kernel refused the value.
    #[error("cannot write {value} to {}", path.display())]
    Write {
        /// The sysfs file.
        path: PathBuf,
        /// The value.
        value: u32,
        #[source]
        source: io::Error,
    },
}

/// The `queue/read_ahead_kb` of the block device numbered `rdev`, under
/// `sys_dev_block` (`/sys/dev/block`, or a fake in tests).
pub fn sysfs_file(sys_dev_block: &Path, rdev: u64) -> PathBuf {
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    sys_dev_block
        .join(format!("{major}:{minor}"))
        .join("queue")
        .join("read_ahead_kb")
}

/// Sets the read-ahead of block device `device` to `boot_kb` and returns
/// what to restore. The file is written only if it holds another value.
pub fn raise(device: &Path, boot_kb: u32) -> Result<ReadAhead, ReadAheadError> {
    let rdev = nix::sys::stat::stat(device)
        .map_err(|source| ReadAheadError::Stat {
            device: device.to_owned(),
            source,
        })?
        .st_rdev;
    raise_file(&sysfs_file(Path::new(SYS_DEV_BLOCK), rdev), boot_kb)
}

/// [`raise`] on the sysfs file itself.
pub fn raise_file(path: &Path, boot_kb: u32) -> Result<ReadAhead, ReadAheadError> {
    let kernel_kb = read_kb(path)?;
    if kernel_kb != boot_kb {
        write_kb(path, boot_kb)?;
    }
    Ok(ReadAhead {
        path: path.to_owned(),
        kernel_kb,
        boot_kb,
    })
}

/// What [`restore`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The kernel's value is back.
    Restored,
    /// Boot ran with the kernel's value: nothing to put back.
    Same,
    /// Something else (an operator, a rule) changed the value since stage
    /// 1; its value is kept.
    ChangedMeanwhile,
}

/// Puts the kernel's read-ahead back, unless boot ran with it anyway or
/// something else changed the file since stage 1.
pub fn restore(read_ahead: &ReadAhead) -> Result<Restored, ReadAheadError> {
    if read_ahead.boot_kb == read_ahead.kernel_kb {
        return Ok(Restored::Same);
    }
    if read_kb(&read_ahead.path)? != read_ahead.boot_kb {
        return Ok(Restored::ChangedMeanwhile);
    }
    write_kb(&read_ahead.path, read_ahead.kernel_kb)?;
    Ok(Restored::Restored)
}

fn read_kb(path: &Path) -> Result<u32, ReadAheadError> {
    let text = fs::read_to_string(path).map_err(|source| ReadAheadError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.trim().parse().map_err(|_| ReadAheadError::Parse {
        path: path.to_owned(),
        text: text.trim().to_owned(),
    })
}

fn write_kb(path: &Path, value: u32) -> Result<(), ReadAheadError> {
    // sysfs takes the value in one write; no O_CREAT: a missing file is
    // an error, not a new file (O_TRUNC means nothing to sysfs; it keeps
    // a test's plain file to the value written).
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| io::Write::write_all(&mut file, value.to_string().as_bytes()))
        .map_err(|source| ReadAheadError::Write {
            path: path.to_owned(),
            value,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(value: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read_ahead_kb");
        fs::write(&path, value).unwrap();
        (dir, path)
    }

    #[test]
    fn the_file_is_found_by_device_number() {
        let rdev = nix::sys::stat::makedev(253, 0);
        assert_eq!(
            sysfs_file(Path::new(SYS_DEV_BLOCK), rdev),
            Path::new("/sys/dev/block/253:0/queue/read_ahead_kb")
        );
        let rdev = nix::sys::stat::makedev(259, 1048575);
        assert_eq!(
            sysfs_file(Path::new("/x"), rdev),
            Path::new("/x/259:1048575/queue/read_ahead_kb")
        );
    }

    #[test]
    fn raise_then_restore_puts_the_kernel_value_back() {
        let (_dir, path) = fake("128\n");
        let raised = raise_file(&path, 2048).unwrap();
        assert_eq!(
            raised,
            ReadAhead {
                path: path.clone(),
                kernel_kb: 128,
                boot_kb: 2048
            }
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "2048");
        assert_eq!(restore(&raised).unwrap(), Restored::Restored);
        assert_eq!(fs::read_to_string(&path).unwrap(), "128");
    }

    #[test]
    fn a_value_changed_by_someone_else_is_kept() {
        let (_dir, path) = fake("128\n");
        let raised = raise_file(&path, 2048).unwrap();
        fs::write(&path, "4096\n").unwrap();
        assert_eq!(restore(&raised).unwrap(), Restored::ChangedMeanwhile);
        assert_eq!(fs::read_to_string(&path).unwrap(), "4096\n");
    }

    #[test]
    fn the_same_value_is_not_written() {
        let (_dir, path) = fake("2048\n");
        let raised = raise_file(&path, 2048).unwrap();
        assert_eq!(raised.kernel_kb, 2048);
        // Untouched: still the kernel's text with its newline.
        assert_eq!(fs::read_to_string(&path).unwrap(), "2048\n");
        assert_eq!(restore(&raised).unwrap(), Restored::Same);
        assert_eq!(fs::read_to_string(&path).unwrap(), "2048\n");
    }

    #[test]
    fn errors_name_the_file_or_device() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("read_ahead_kb");
        let err = raise_file(&missing, 2048).unwrap_err();
        assert!(matches!(err, ReadAheadError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("read_ahead_kb"), "{err}");

        let (_dir, path) = fake("lots\n");
        let err = raise_file(&path, 2048).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} holds \"lots\", not a number of KiB", path.display())
        );

        let err = raise(&dir.path().join("no-such-device"), 2048).unwrap_err();
        assert!(err.to_string().contains("no-such-device"), "{err}");
    }
}
