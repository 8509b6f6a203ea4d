//! The device wait on a fake sysfs (a tempdir tree shaped like `/sys`,
//! with image files for `/dev` nodes) and fake uevents (a socketpair, read
//! through the same poll/recv code as the netlink socket).

// Helpers outside #[test] fns unwrap too: clippy.toml's allow-unwrap-in-tests
// only covers the test functions themselves, and a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use kernel_cmdline::RootDevice;
use mounts::devices::gpt::{self, GptLayout, GptPartition, Guid};
use mounts::devices::uevent::{UeventError, UeventSocket, UeventSource, Wake};
use mounts::devices::wait::wait_for;
use mounts::devices::{DeviceError, DeviceSpec, Missing, sysfs};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
use tempfile::TempDir;

const ROOT_UUID: &str = "01234567-89ab-cdef-0f1e-2d3c4b5a6978";
const HASH_UUID: &str = "88776655-4433-2211-fedc-ba9876543210";

/// A sysfs and a /dev in a tempdir.
struct FakeSys {
    dir: TempDir,
}

impl FakeSys {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        fs::create_dir_all(dir.path().join("sys/class/block")).unwrap();
        fs::create_dir_all(dir.path().join("sys/devices/virtual/block")).unwrap();
        fs::create_dir_all(dir.path().join("dev")).unwrap();
        Self { dir }
    }

    fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    fn dev(&self) -> PathBuf {
        self.dir.path().join("dev")
    }

    fn attrs(&self, dir: &Path, name: &str, minor: u32, sectors: u64, devtype: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("dev"), format!("254:{minor}\n")).unwrap();
        fs::write(dir.join("size"), format!("{sectors}\n")).unwrap();
        fs::write(
            dir.join("uevent"),
            format!("MAJOR=254\nMINOR={minor}\nDEVNAME={name}\nDEVTYPE={devtype}\n"),
        )
        .unwrap();
        let rel = dir.strip_prefix(self.sys()).unwrap();
        symlink(
            Path::new("../..").join(rel),
            self.sys().join("class/block").join(name),
        )
        .unwrap();
    }

    /// A disk whose node holds `head` (the first bytes are all that is read).
    fn add_disk(&self, name: &str, minor: u32, sectors: u64, head: &[u8]) {
        let dir = self.sys().join("devices/virtual/block").join(name);
        self.attrs(&dir, name, minor, sectors, "disk");
        fs::create_dir_all(dir.join("queue")).unwrap();
        fs::write(dir.join("queue/logical_block_size"), "512\n").unwrap();
        fs::write(self.dev().join(name), head).unwrap();
    }

    /// Partition `number` of `disk`, its node holding `contents`.
    fn add_partition(&self, disk: &str, number: u32, minor: u32, contents: &[u8]) {
        let name = format!("{disk}{number}");
        let dir = self
            .sys()
            .join("devices/virtual/block")
            .join(disk)
            .join(&name);
        self.attrs(&dir, &name, minor, 2048, "partition");
        fs::write(dir.join("partition"), format!("{number}\n")).unwrap();
        fs::write(self.dev().join(&name), contents).unwrap();
    }
}

fn entry(number: u32, kind: gpt::PartitionType, uuid: &str, name: &str) -> GptPartition {
    let first = 2048 * u64::from(number);
    GptPartition {
        number,
        type_guid: kind.guid,
        uuid: uuid.parse().unwrap(),
        first_lba: first,
        last_lba: first + 2047,
        attributes: 0,
        name: name.into(),
    }
}

/// The GPT of an 8 GiB disk with a root and a verity partition.
fn verity_disk() -> Vec<u8> {
    gpt::write(&GptLayout {
        sector_size: 512,
        total_sectors: 16 << 20,
        disk_guid: Guid([7; 16]),
        partitions: vec![
            entry(1, gpt::ROOT_X86_64, ROOT_UUID, "root-a"),
            entry(2, gpt::ROOT_X86_64_VERITY, HASH_UUID, "root-a-verity"),
        ],
    })
    .unwrap()
    .head
}

/// An ext4 superblock with a label (enough for the probe).
fn ext4_with_label(label: &str) -> Vec<u8> {
    let mut b = vec![0u8; 8192];
    b[1024 + 0x38..1024 + 0x3a].copy_from_slice(&[0x53, 0xef]);
    b[1024 + 0x68..1024 + 0x78].copy_from_slice(&[0x42; 16]);
    b[1024 + 0x78..1024 + 0x78 + label.len()].copy_from_slice(label.as_bytes());
    b
}

fn uevents() -> (UeventSocket, OwnedFd) {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Datagram,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    (UeventSocket::from_fd(ours), theirs)
}

fn kernel_says(to: &OwnedFd, msg: &str) {
    send(to.as_raw_fd(), msg.as_bytes(), MsgFlags::empty()).unwrap();
}

fn partuuid(uuid: &str) -> DeviceSpec {
    DeviceSpec::Named(RootDevice::PartUuid {
        uuid: uuid.into(),
        partnroff: None,
    })
}

#[test]
fn scan_reads_gpt_and_superblocks() {
    let fake = FakeSys::new();
    fake.add_disk("vda", 0, 16 << 20, &verity_disk());
    fake.add_partition("vda", 1, 1, &ext4_with_label("rootfs"));
    fake.add_partition("vda", 2, 2, b"verity\0\0");
    fake.add_disk("vdb", 16, 2048, &ext4_with_label("data"));
    let table = sysfs::scan(&fake.sys(), &fake.dev()).unwrap();
    let names: Vec<&str> = table.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["vda", "vda1", "vda2", "vdb"]);
    let vda1 = table.get("vda1").unwrap();
    let info = vda1.partition.as_ref().unwrap();
    assert_eq!(info.uuid.as_deref(), Some(ROOT_UUID));
    assert_eq!(info.label.as_deref(), Some("root-a"));
    assert_eq!(info.type_guid, Some(gpt::ROOT_X86_64.guid));
    assert_eq!(vda1.disk.as_deref(), Some("vda"));
    assert_eq!(
        vda1.probe.as_ref().unwrap().label.as_deref(),
        Some("rootfs")
    );
    let vdb = table.get("vdb").unwrap();
    assert_eq!(vdb.table, None);
    assert_eq!(vdb.probe.as_ref().unwrap().label.as_deref(), Some("data"));
    assert_eq!(table.node(vdb), fake.dev().join("vdb"));
}

/// The device appears 200 ms in; sysfs alone does not wake the wait (no
/// polling), the uevent does, at once.
#[test]
fn device_appearing_later_is_found_on_its_uevent() {
    let fake = FakeSys::new();
    fake.add_disk("vda", 0, 16 << 20, &verity_disk());
    fake.add_partition("vda", 1, 1, &[]);
    let (mut source, kernel) = uevents();
    let (sys, dev) = (fake.sys(), fake.dev());
    let waiter = thread::spawn(move || {
        let specs = [
            partuuid(ROOT_UUID),
            DeviceSpec::Discoverable {
                kind: gpt::ROOT_X86_64_VERITY,
                uuid: HASH_UUID.parse().unwrap(),
            },
        ];
        let result = wait_for(&mut source, &sys, &dev, &specs, Duration::from_secs(20));
        (result, Instant::now())
    });
    thread::sleep(Duration::from_millis(200));
    fake.add_partition("vda", 2, 2, &[]);
    thread::sleep(Duration::from_millis(300));
    assert!(
        !waiter.is_finished(),
        "the wait found the device without a uevent: it is polling"
    );
    let sent = Instant::now();
    kernel_says(
        &kernel,
        "add@/devices/virtual/block/vda/vda2\0ACTION=add\0SUBSYSTEM=block\0DEVNAME=vda2\0DEVTYPE=partition\0PARTN=2\0",
    );
    let (result, done) = waiter.join().unwrap();
    let found = result.unwrap();
    let latency = done - sent;
    assert!(
        latency < Duration::from_millis(500),
        "woke after {latency:?}"
    );
    let nodes: Vec<PathBuf> = found.iter().map(|r| r.node.clone()).collect();
    assert_eq!(nodes, [fake.dev().join("vda1"), fake.dev().join("vda2")]);
}

#[test]
fn timeout_names_the_missing_device_and_what_was_seen() {
    let fake = FakeSys::new();
    fake.add_disk("vda", 0, 16 << 20, &verity_disk());
    fake.add_partition("vda", 1, 1, &ext4_with_label("rootfs"));
    fake.add_partition("vda", 2, 2, b"verity\0\0");
    fake.add_disk("vdb", 16, 131_072, &ext4_with_label("data"));
    let (mut source, kernel) = uevents();
    // An unrelated event must not end the wait early.
    kernel_says(&kernel, "add@/devices/virtual/net/eth0\0SUBSYSTEM=net\0");
    let start = Instant::now();
    let err = wait_for(
        &mut source,
        &fake.sys(),
        &fake.dev(),
        &[
            partuuid(ROOT_UUID),
            partuuid("deadbeef-0000-4000-8000-000000000000"),
        ],
        Duration::from_millis(300),
    )
    .unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let DeviceError::Timeout { missing, seen, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].1, Missing::NotFound);
    assert_eq!(seen.len(), 4);
    let text = err.to_string();
    println!("{text}");
    assert_eq!(
        text,
        "timed out after 300ms waiting for PARTUUID=deadbeef-0000-4000-8000-000000000000: not found; \
         block devices seen: vda (8 GiB, gpt: \
         vda1 root-x86-64 PARTUUID=01234567-89ab-cdef-0f1e-2d3c4b5a6978 PARTLABEL=root-a ext4 LABEL=rootfs UUID=42424242-4242-4242-4242-424242424242, \
         vda2 root-x86-64-verity PARTUUID=88776655-4433-2211-fedc-ba9876543210 PARTLABEL=root-a-verity DM_verity_hash), \
         vdb (64 MiB, ext4 LABEL=data UUID=42424242-4242-4242-4242-424242424242)"
    );
}

#[test]
fn duplicate_partuuid_fails_at_once() {
    let fake = FakeSys::new();
    fake.add_disk("vda", 0, 16 << 20, &verity_disk());
    fake.add_partition("vda", 1, 1, &[]);
    fake.add_disk("vdb", 16, 16 << 20, &verity_disk());
    fake.add_partition("vdb", 1, 17, &[]);
    let (mut source, _kernel) = uevents();
    let start = Instant::now();
    let err = wait_for(
        &mut source,
        &fake.sys(),
        &fake.dev(),
        &[partuuid(ROOT_UUID)],
        Duration::from_secs(20),
    )
    .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&err, DeviceError::Ambiguous { devices, .. } if devices == &["vda1", "vdb1"]),
        "{err}"
    );
}

/// The trait seam with a scripted source: the "kernel" adds a disk, and
/// reports lost events; the wait rescans everything and finds it.
#[test]
fn overflow_rescans_everything() {
    struct Scripted<'a> {
        fake: &'a FakeSys,
        calls: usize,
    }
    impl UeventSource for Scripted<'_> {
        fn wait(&mut self, _timeout: Duration) -> Result<Wake, UeventError> {
            self.calls += 1;
            self.fake
                .add_disk("vdc", 32, 2048, &ext4_with_label("late"));
            Ok(Wake::Overflow)
        }
    }
    let fake = FakeSys::new();
    let mut source = Scripted {
        fake: &fake,
        calls: 0,
    };
    let found = wait_for(
        &mut source,
        &fake.sys(),
        &fake.dev(),
        &[DeviceSpec::Named(RootDevice::Label {
            label: "late".into(),
        })],
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(found[0].name, "vdc");
    assert_eq!(source.calls, 1);
}

#[test]
fn removed_device_is_dropped() {
    let fake = FakeSys::new();
    fake.add_disk("vda", 0, 16 << 20, &verity_disk());
    fake.add_partition("vda", 1, 1, &[]);
    let mut table = sysfs::scan(&fake.sys(), &fake.dev()).unwrap();
    fs::remove_file(fake.sys().join("class/block/vda1")).unwrap();
    sysfs::rescan(&mut table, &fake.sys(), &fake.dev(), "vda1").unwrap();
    assert!(table.get("vda1").is_none());
    assert!(table.get("vda").is_some());
}

#[test]
fn unreadable_node_is_an_issue_not_an_error() {
    let fake = FakeSys::new();
    fake.add_disk("sr0", 0, 2048, &[]);
    fs::remove_file(fake.dev().join("sr0")).unwrap();
    let table = sysfs::scan(&fake.sys(), &fake.dev()).unwrap();
    let text = mounts::devices::summarize(&table.devices);
    assert!(text.starts_with("sr0 (1 MiB, cannot read "), "{text}");
}
