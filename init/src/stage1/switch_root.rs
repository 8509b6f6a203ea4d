//! switch_root: leave the initramfs for the root mounted on `/sysroot`.
//!
//! [`plan`] (pure) lists the steps; [`execute`] carries them out:
//!
//! 1. check that `/` is the initramfs (ramfs or tmpfs): the next steps
//!    delete files on it, and must never run on a real disk;
//! 2. move `/dev`, `/proc`, `/sys` and `/run` under the new root
//!    (`MS_MOVE` takes their submounts along), so stage 2 keeps the same
//!    API filesystems and `/run` carries the boot record over;
//! 3. `chdir` into the new root;
//! 4. delete the initramfs's files, staying on the initramfs's own
//!    filesystem (busybox switch_root's `delete_contents()`): its memory
//!    is freed, and other mounts, the new root among them, are untouched.
//!    Best effort: a file left behind costs memory, not correctness;
//! 5. `mount --move . /` puts the new root over `/`;
//! 6. `chroot .` and `chdir /` make it this process's root;
//! 7. write `/run/liftoff/stage1.json` (best effort: a diagnostic);
//! 8. unblock the signals PID 1 read from its signalfd, since the mask
//!    survives execve(2) and stage 2 expects the default;
//! 9. `execv` `init=` with the arguments after `--`.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use log::{debug, info, warn};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::statfs::statfs;
use thiserror::Error;

use super::{HANDOFF_DIR, HANDOFF_FILE, Handoff};
use crate::abi;
use crate::stamps::{Stamp, Stamps};

/// The API filesystems moved into the new root, in order.
pub const MOVED_MOUNTS: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// One step of switch_root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// statfs("/") must say ramfs or tmpfs.
    CheckInitramfs,
    /// `mount --move <from> <to>`.
    MoveMount {
        /// The mount point now.
        from: PathBuf,
        /// Where it goes, inside the new root.
        to: PathBuf,
    },
    /// `chdir(2)`.
    Chdir(PathBuf),
    /// Delete everything on `/`'s filesystem except `keep`.
    DeleteInitramfs {
        /// The new root's mount point.
        keep: PathBuf,
    },
    /// `mount --move . /`.
    MoveRoot,
    /// `chroot .`.
    Chroot,
    /// Stamp `exec` and write the boot record.
    WriteHandoff,
    /// Empty the signal mask.
    UnblockSignals,
    /// `execv(path, argv)`.
    Exec {
        /// The program.
        path: String,
        /// Its arguments, `argv[0]` first.
        argv: Vec<String>,
    },
}

/// What failed in switch_root.
#[derive(Debug, Error)]
pub enum SwitchRootError {
    /// statfs("/") failed.
    #[error("cannot statfs /")]
    Statfs(#[source] Errno),
    /// `/` is not the initramfs: refusing to delete files on it.
    #[error("/ is not an initramfs (filesystem magic {magic:#x}): refusing to delete its files")]
    NotInitramfs {
        /// The filesystem magic found.
        magic: i64,
    },
    /// `MS_MOVE` of an API filesystem failed (is the directory missing in
    /// the new root?).
    #[error("cannot move the mount {} to {}", from.display(), to.display())]
    MoveMount {
        /// The mount point.
        from: PathBuf,
        /// The target.
        to: PathBuf,
        #[source]
        source: Errno,
    },
    /// `chdir(2)` failed.
    #[error("cannot chdir to {}", path.display())]
    Chdir {
        /// The directory.
        path: PathBuf,
        #[source]
        source: Errno,
    },
    /// `mount --move . /` failed.
    #[error("cannot move the new root onto /")]
    MoveRoot(#[source] Errno),
    /// `chroot .` failed.
    #[error("cannot chroot into the new root")]
    Chroot(#[source] Errno),
    /// sigprocmask(2) failed.
    #[error("cannot unblock signals before exec")]
    UnblockSignals(#[source] Errno),
    /// `init=` or an argument holds a NUL byte.
    #[error("{text:?} cannot be passed to execv: it holds a NUL byte")]
    Nul {
        /// The text.
        text: String,
    },
    /// execv(2) failed.
    #[error("cannot execute {path} on the new root")]
    Exec {
        /// The program.
        path: String,
        #[source]
        source: Errno,
    },
}

/// The steps that switch to `new_root` and run `init` with `args`.
#[must_use]
pub fn plan(new_root: &Path, init: &str, args: &[String]) -> Vec<Step> {
    let mut steps = vec![Step::CheckInitramfs];
    for from in MOVED_MOUNTS {
        steps.push(Step::MoveMount {
            from: from.into(),
            to: new_root.join(from.trim_start_matches('/')),
        });
    }
    steps.extend([
        Step::Chdir(new_root.to_owned()),
        Step::DeleteInitramfs {
            keep: new_root.to_owned(),
        },
        Step::MoveRoot,
        Step::Chroot,
        Step::Chdir("/".into()),
        Step::WriteHandoff,
        Step::UnblockSignals,
        Step::Exec {
            path: init.to_owned(),
            argv: std::iter::once(init.to_owned())
                .chain(args.iter().cloned())
                .collect(),
        },
    ]);
    steps
}

/// Carries out `steps`; `handoff` makes the boot record from the stamps.
/// Returns only on error.
pub fn execute(
    steps: &[Step],
    stamps: &mut Stamps,
    handoff: impl Fn(&[Stamp]) -> Handoff<'_>,
) -> Result<Infallible, SwitchRootError> {
    for step in steps {
        debug!("switch_root: {step:?}");
        match step {
            Step::CheckInitramfs => {
                let magic = statfs("/")
                    .map_err(SwitchRootError::Statfs)?
                    .filesystem_type()
                    .0;
                if !is_initramfs_magic(magic) {
                    return Err(SwitchRootError::NotInitramfs { magic });
                }
            }
            Step::MoveMount { from, to } => {
                mount(
                    Some(from.as_path()),
                    to.as_path(),
                    None::<&str>,
                    MsFlags::MS_MOVE,
                    None::<&str>,
                )
                .map_err(|source| SwitchRootError::MoveMount {
                    from: from.clone(),
                    to: to.clone(),
                    source,
                })?;
            }
            Step::Chdir(path) => {
                nix::unistd::chdir(path.as_path()).map_err(|source| SwitchRootError::Chdir {
                    path: path.clone(),
                    source,
                })?;
            }
            Step::DeleteInitramfs { keep } => match std::fs::symlink_metadata("/") {
                Ok(meta) => {
                    let (removed, failed) = delete_tree(Path::new("/"), meta.dev(), keep);
                    info!("freed the initramfs: {removed} entries removed, {failed} failed");
                }
                Err(e) => warn!("cannot stat / to free the initramfs: {e}"),
            },
            Step::MoveRoot => {
                mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                    .map_err(SwitchRootError::MoveRoot)?;
            }
            Step::Chroot => nix::unistd::chroot(".").map_err(SwitchRootError::Chroot)?,
            Step::WriteHandoff => {
                stamps.mark("switch-root");
                stamps.mark("exec");
                info!("boot stamps: {}", stamps.summary());
                write_handoff(&handoff(&stamps.stamps));
            }
            Step::UnblockSignals => {
                sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                    .map_err(SwitchRootError::UnblockSignals)?;
            }
            Step::Exec { path, argv } => {
                let cstring = |text: &String| {
                    CString::new(text.as_bytes())
                        .map_err(|_| SwitchRootError::Nul { text: text.clone() })
                };
                let program = cstring(path)?;
                let args = argv.iter().map(cstring).collect::<Result<Vec<_>, _>>()?;
                info!("executing {path}");
                let Err(source) = nix::unistd::execv(&program, &args);
                return Err(SwitchRootError::Exec {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    // A plan always ends in Exec; reaching here means it did not.
    Err(SwitchRootError::Exec {
        path: String::new(),
        source: Errno::ENOEXEC,
    })
}

/// Best effort: stage 2 reads the stamps if they are there.
/// Whether a filesystem magic is the initramfs's rootfs (ramfs, or tmpfs
/// when the kernel has it): the only `/` stage 1 may run from and delete.
pub fn is_initramfs_magic(magic: i64) -> bool {
    magic == abi::RAMFS_MAGIC || magic == abi::TMPFS_MAGIC
}

/// Whether `/` is the initramfs. Anything else (a root switched to, or
/// one the kernel mounted itself) means stage 1 is over or not needed.
pub fn root_is_initramfs() -> bool {
    statfs("/").is_ok_and(|s| is_initramfs_magic(s.filesystem_type().0))
}

fn write_handoff(handoff: &Handoff<'_>) {
    let dir = Path::new(HANDOFF_DIR);
    let path = dir.join(HANDOFF_FILE);
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        let json = serde_json::to_vec_pretty(handoff).map_err(std::io::Error::other)?;
        std::fs::write(&path, json)
    });
    if let Err(e) = result {
        warn!("cannot write {}: {e}", path.display());
    }
}

/// Deletes what is under `dir` on the filesystem `dev`, depth first,
/// skipping `keep` and anything on another filesystem (mount points and
/// what is below them). Returns how many entries were removed and how many
/// could not be.
pub fn delete_tree(dir: &Path, dev: u64, keep: &Path) -> (usize, usize) {
    let (mut removed, mut failed) = (0, 0);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            debug!("cannot list {}: {e}", dir.display());
            return (0, 1);
        }
    };
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(_) => {
                failed += 1;
                continue;
            }
        };
        if path == keep {
            continue;
        }
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(_) => {
                failed += 1;
                continue;
            }
        };
        if meta.dev() != dev {
            continue;
        }
        let result = if meta.is_dir() {
            let (r, f) = delete_tree(&path, dev, keep);
            removed += r;
            failed += f;
            std::fs::remove_dir(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Ok(()) => removed += 1,
            Err(e) => {
                debug!("cannot remove {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    (removed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_moves_api_mounts_before_deleting_and_execs_last() {
        let steps = plan(Path::new("/sysroot"), "/sbin/init", &["--debug".to_owned()]);
        assert_eq!(
            steps,
            vec![
                Step::CheckInitramfs,
                Step::MoveMount {
                    from: "/dev".into(),
                    to: "/sysroot/dev".into()
                },
                Step::MoveMount {
                    from: "/proc".into(),
                    to: "/sysroot/proc".into()
                },
                Step::MoveMount {
                    from: "/sys".into(),
                    to: "/sysroot/sys".into()
                },
                Step::MoveMount {
                    from: "/run".into(),
                    to: "/sysroot/run".into()
                },
                Step::Chdir("/sysroot".into()),
                Step::DeleteInitramfs {
                    keep: "/sysroot".into()
                },
                Step::MoveRoot,
                Step::Chroot,
                Step::Chdir("/".into()),
                Step::WriteHandoff,
                Step::UnblockSignals,
                Step::Exec {
                    path: "/sbin/init".into(),
                    argv: vec!["/sbin/init".into(), "--debug".into()]
                },
            ]
        );
    }

    #[test]
    fn delete_tree_removes_everything_but_keep() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("lib/modules/6.1")).unwrap();
        std::fs::write(root.join("lib/modules/6.1/a.ko"), b"x").unwrap();
        std::fs::write(root.join("init"), b"x").unwrap();
        std::os::unix::fs::symlink("init", root.join("link")).unwrap();
        std::fs::create_dir(root.join("sysroot")).unwrap();
        std::fs::write(root.join("sysroot/kept"), b"x").unwrap();
        let dev = std::fs::symlink_metadata(root).unwrap().dev();

        let (removed, failed) = delete_tree(root, dev, &root.join("sysroot"));

        assert_eq!((removed, failed), (6, 0));
        let left: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec!["sysroot"]);
        assert!(root.join("sysroot/kept").exists());
    }

    #[test]
    fn delete_tree_does_not_cross_into_other_filesystems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        // Every entry is on a "different" filesystem than this made-up one.
        let (removed, failed) = delete_tree(dir.path(), u64::MAX, Path::new("/nonexistent"));
        assert_eq!((removed, failed), (0, 0));
        assert!(dir.path().join("file").exists());
    }
}
