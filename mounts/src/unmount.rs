//! The shutdown unmount loop, planned: which mounts to take down, in which
//! order, and when to stop trying.
//!
//! At shutdown every unit is stopped and every other process is gone, but
//! a mount can still be busy (a lazily closed file, a mount on top of it,
//! the root itself). The loop, as systemd-shutdown and s6-linux-init-umountall
//! do it:
//!
//! 1. read `/proc/self/mountinfo`;
//! 2. for every mount [`pass`] returns (last mounted first, so children go
//!    before their parents): unmount it, and if that fails, remount it
//!    read-only so its filesystem is clean even if it stays mounted;
//! 3. read the table again; if it is the same as before the pass
//!    ([`settled`]), stop, otherwise go back to 2 (at most [`MAX_PASSES`]).
//!
//! The API filesystems (`/proc`, `/sys`, `/dev`, `/run` and what is under
//! them) are left alone: they hold no data, and PID 1 still needs `/dev`
//! for its log and `/proc` for the table. The root is never unmounted; the
//! executor remounts it read-only at the end.

use std::path::{Path, PathBuf};

use crate::mountinfo::{MountInfo, MountTable};

/// The loop gives up after this many passes, whatever changes.
pub const MAX_PASSES: usize = 8;

/// Mount points whose whole subtree belongs to the kernel's API
/// filesystems.
const API_TREES: &[&str] = &["/proc", "/sys", "/dev", "/run"];

/// One mount to take down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Its filesystem type, for the log.
    pub fstype: String,
    /// It is mounted read-only already: if unmounting fails there is
    /// nothing more to do.
    pub read_only: bool,
}

/// The mounts one pass tries, in order: every mount but the root and the
/// API trees, the most recently mounted first.
pub fn pass(table: &MountTable) -> Vec<Target> {
    table
        .mounts
        .iter()
        .rev()
        .filter(|m| !is_kept(&m.mount_point))
        .map(|m| Target {
            mount_point: m.mount_point.clone(),
            fstype: m.fstype.clone(),
            read_only: is_read_only(m),
        })
        .collect()
}

/// Whether a pass changed nothing: the same mounts, with the same options.
pub fn settled(before: &MountTable, after: &MountTable) -> bool {
    let key = |m: &MountInfo| (m.mount_id, m.mount_options.clone());
    before
        .mounts
        .iter()
        .map(key)
        .eq(after.mounts.iter().map(key))
}

/// The root's entry, if it is still writable (the executor then remounts
/// it read-only).
pub fn writable_root(table: &MountTable) -> Option<&MountInfo> {
    table
        .mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == Path::new("/"))
        .filter(|m| !is_read_only(m))
}

fn is_kept(mount_point: &Path) -> bool {
    mount_point == Path::new("/") || API_TREES.iter().any(|t| mount_point.starts_with(t))
}

fn is_read_only(m: &MountInfo) -> bool {
    m.mount_options.split(',').any(|o| o == "ro") || m.super_options.split(',').any(|o| o == "ro")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table as the guest has it after boot: API filesystems, the verity
    /// root, and the volumes of docs/volumes.md.
    const BOOTED: &str = "\
20 1 254:0 / / ro,relatime - erofs /dev/dm-0 ro,user_xattr
21 20 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw,size=4096k
22 20 0:20 / /proc rw,nosuid,nodev,noexec - proc proc rw
23 20 0:21 / /sys rw,nosuid,nodev,noexec - sysfs sysfs rw
24 23 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw
25 20 0:23 / /run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755
26 20 254:3 / /local rw,relatime - ext4 /dev/vda3 rw
27 20 0:25 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw
28 20 0:26 / /etc rw,relatime - overlay overlay rw,lowerdir=/etc
29 20 254:3 /var /var rw,relatime shared:1 - ext4 /dev/vda3 rw
30 26 0:27 / /local/mnt ro,relatime - tmpfs tmpfs ro
";

    fn table(text: &str) -> MountTable {
        MountTable::parse(text).unwrap()
    }

    fn points(targets: &[Target]) -> Vec<&str> {
        targets
            .iter()
            .map(|t| t.mount_point.to_str().unwrap())
            .collect()
    }

    #[test]
    fn children_first_and_api_trees_and_root_kept() {
        let plan = pass(&table(BOOTED));
        assert_eq!(
            points(&plan),
            ["/local/mnt", "/var", "/etc", "/tmp", "/local"]
        );
        assert!(plan[0].read_only);
        assert!(!plan[4].read_only);
    }

    #[test]
    fn nothing_to_do_on_a_bare_system() {
        let bare: String = BOOTED.lines().take(6).map(|l| format!("{l}\n")).collect();
        assert!(pass(&table(&bare)).is_empty());
    }

    #[test]
    fn settled_compares_mounts_and_options() {
        let before = table(BOOTED);
        assert!(settled(&before, &before.clone()));
        let fewer: String = BOOTED.lines().take(9).map(|l| format!("{l}\n")).collect();
        assert!(!settled(&before, &table(&fewer)));
        let remounted = BOOTED.replace("26 20 254:3 / /local rw,", "26 20 254:3 / /local ro,");
        assert!(!settled(&before, &table(&remounted)));
    }

    #[test]
    fn root_needs_remounting_only_when_writable() {
        assert!(writable_root(&table(BOOTED)).is_none());
        let rw = BOOTED.replace(
            "/ / ro,relatime - erofs /dev/dm-0 ro,",
            "/ / rw,relatime - ext4 /dev/vda1 rw,",
        );
        assert_eq!(
            writable_root(&table(&rw)).map(|m| m.fstype.as_str()),
            Some("ext4")
        );
    }

    #[test]
    fn a_path_that_only_starts_like_an_api_tree_is_unmounted() {
        let text = "20 1 254:0 / / ro - erofs /dev/dm-0 ro\n21 20 0:30 / /running rw - tmpfs tmpfs rw\n22 20 0:31 / /devices rw - tmpfs tmpfs rw\n";
        assert_eq!(points(&pass(&table(text))), ["/devices", "/running"]);
    }
}
