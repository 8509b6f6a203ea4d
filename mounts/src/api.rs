//! The API filesystems: the kernel interfaces every stage of liftoff needs
//! before it can do anything else.
//!
//! The table follows systemd's `mount_table` in src/shared/mount-setup.c
//! (same targets, flags and options) so that software written for a
//! systemd host finds what it expects, minus what liftoff has no use for
//! (securityfs, debugfs, efivarfs, mqueue, hugetlbfs: a unit that needs
//! them mounts them).

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::MountSpec;
use crate::mountinfo::MountTable;

/// Where procfs goes. PID 1 mounts it before anything else, because the
/// mount table it plans the rest from lives there.
pub const PROC: &str = "/proc";

/// One row of the table, as `const` data.
struct ApiFs {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
    dir_mode: u32,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The API filesystems in mount order: a parent before its children.
const TABLE: &[ApiFs] = &[
    ApiFs {
        source: "proc",
        target: PROC,
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
        dir_mode: 0o555,
    },
    ApiFs {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
        dir_mode: 0o555,
    },
    // devtmpfs: the kernel creates the device nodes itself, so no udev is
    // needed to find block devices. A small size cap as systemd's
    // TMPFS_LIMITS_DEV: /dev only ever holds nodes and a few links.
    ApiFs {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_STRICTATIME),
        data: Some("mode=0755,size=4m"),
        dir_mode: 0o755,
    },
    ApiFs {
        source: "tmpfs",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_STRICTATIME),
        data: Some("mode=1777"),
        dir_mode: 0o1777,
    },
    // gid 5 is the `tty` group on Debian, Fedora and Bottlerocket alike; mode
    // 620 lets the group write to terminals (wall), as systemd does.
    ApiFs {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("mode=0620,gid=5,ptmxmode=0666"),
        dir_mode: 0o755,
    },
    ApiFs {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_STRICTATIME),
        data: Some("mode=0755,size=20%,nr_inodes=800k"),
        dir_mode: 0o755,
    },
    // nsdelegate: cgroup namespaces are delegation boundaries, so a container
    // cannot escape its subtree. memory_recursiveprot: memory.min/low protect
    // a whole subtree (needs Linux 5.7; Debian 12 ships 6.1).
    // favordynmods: moving a process into a cgroup (every unit start) takes
    // the threadgroup rwsem for writing, which by default waits out an RCU
    // grace period, milliseconds each time; this keeps the rwsem in its slow
    // mode so a move is cheap, at a small cost to every fork (Linux 6.0).
    ApiFs {
        source: "cgroup2",
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: NOSUID_NODEV_NOEXEC,
        data: Some("nsdelegate,memory_recursiveprot,favordynmods"),
        dir_mode: 0o555,
    },
];

/// Every API filesystem, in mount order.
pub fn all() -> Vec<MountSpec> {
    TABLE
        .iter()
        .map(|fs| MountSpec {
            source: fs.source.to_owned(),
            target: PathBuf::from(fs.target),
            fstype: fs.fstype.to_owned(),
            flags: fs.flags,
            data: fs.data.map(str::to_owned),
            dir_mode: fs.dir_mode,
        })
        .collect()
}

/// What to do about one API filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Mount it.
    Mount(MountSpec),
    /// Leave it: something is already mounted there (by the kernel, or by an
    /// earlier stage that moved its mounts into this root).
    AlreadyMounted {
        /// The API filesystem that was planned.
        spec: MountSpec,
        /// The filesystem type found there instead (may be the same).
        found: String,
    },
}

/// The steps to bring up the API filesystems given what `mounted` already
/// holds. `/proc` must already be mounted for the caller to read the table,
/// so it normally comes out as [`Step::AlreadyMounted`].
pub fn plan(mounted: &MountTable) -> Vec<Step> {
    all()
        .into_iter()
        .map(|spec| match mounted.at(Path::new(&spec.target)) {
            Some(m) => Step::AlreadyMounted {
                found: m.fstype.clone(),
                spec,
            },
            None => Step::Mount(spec),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(steps: &[Step]) -> Vec<(String, bool)> {
        steps
            .iter()
            .map(|s| match s {
                Step::Mount(m) => (m.target.display().to_string(), true),
                Step::AlreadyMounted { spec, .. } => (spec.target.display().to_string(), false),
            })
            .collect()
    }

    #[test]
    fn parents_come_before_children() {
        let all = all();
        for (i, child) in all.iter().enumerate() {
            for parent in &all[i + 1..] {
                assert!(
                    !child.target.starts_with(&parent.target),
                    "{} is mounted before its parent {}",
                    child.target.display(),
                    parent.target.display()
                );
            }
        }
    }

    #[test]
    fn fresh_initramfs_with_only_proc_mounts_the_rest() {
        let table = MountTable::parse(
            "1 1 0:2 / / rw - rootfs rootfs rw\n\
             2 1 0:21 / /proc rw,nosuid,nodev,noexec - proc proc rw\n",
        )
        .unwrap();
        assert_eq!(
            targets(&plan(&table)),
            vec![
                ("/proc".into(), false),
                ("/sys".into(), true),
                ("/dev".into(), true),
                ("/dev/shm".into(), true),
                ("/dev/pts".into(), true),
                ("/run".into(), true),
                ("/sys/fs/cgroup".into(), true),
            ]
        );
    }

    #[test]
    fn kernel_mounted_devtmpfs_is_kept() {
        // CONFIG_DEVTMPFS_MOUNT mounts /dev before init runs when the kernel
        // mounts the root itself.
        let table = MountTable::parse(
            "1 1 8:1 / / ro - ext4 /dev/vda1 ro\n\
             2 1 0:21 / /proc rw - proc proc rw\n\
             3 1 0:5 / /dev rw - devtmpfs devtmpfs rw\n",
        )
        .unwrap();
        let steps = plan(&table);
        assert!(steps.contains(&Step::AlreadyMounted {
            spec: all()[2].clone(),
            found: "devtmpfs".into()
        }));
        assert_eq!(
            steps.iter().filter(|s| matches!(s, Step::Mount(_))).count(),
            5
        );
    }

    #[test]
    fn run_and_dev_are_not_executable_where_it_matters() {
        let all = all();
        let get = |t: &str| all.iter().find(|m| m.target == Path::new(t)).unwrap();
        assert!(
            get("/proc")
                .flags
                .contains(MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
        );
        assert!(
            get("/run")
                .flags
                .contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
        );
        assert!(get("/dev/pts").flags.contains(MsFlags::MS_NOEXEC));
        assert_eq!(get("/sys/fs/cgroup").fstype, "cgroup2");
    }
}
