use std::collections::BTreeSet;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    CreateDir(PathBuf),
    Mount { source: String, target: PathBuf },
    MakeShared(PathBuf),
    Unmount(PathBuf),
    FindDevice(String),
    ReadHead(PathBuf),
    Format { device: PathBuf, label: String },
}

/// Records every call; the `fail_*` fields make one fail.
#[derive(Debug, Default)]
struct FakeSys {
    calls: Vec<Call>,
    dirs: BTreeSet<PathBuf>,
    head: Vec<u8>,
    fail_mount: Option<PathBuf>,
    fail_format: bool,
}

impl VolumeSys for FakeSys {
    fn create_dir_all(&mut self, path: &Path, _mode: u32) -> io::Result<()> {
        self.calls.push(Call::CreateDir(path.to_owned()));
        self.dirs.insert(path.to_owned());
        Ok(())
    }
    fn is_dir(&mut self, path: &Path) -> bool {
        self.dirs.contains(path)
    }
    fn mount(&mut self, spec: &MountSpec, source: &str) -> Result<(), Errno> {
        if self.fail_mount.as_deref() == Some(spec.target.as_path()) {
            return Err(Errno::EINVAL);
        }
        self.calls.push(Call::Mount {
            source: source.to_owned(),
            target: spec.target.clone(),
        });
        Ok(())
    }
    fn make_shared(&mut self, target: &Path) -> Result<(), Errno> {
        self.calls.push(Call::MakeShared(target.to_owned()));
        Ok(())
    }
    fn unmount(&mut self, target: &Path) -> Result<(), Errno> {
        self.calls.push(Call::Unmount(target.to_owned()));
        Ok(())
    }
    fn find_device(
        &mut self,
        spec: &DeviceSpec,
        _timeout: Duration,
    ) -> Result<PathBuf, DeviceError> {
        self.calls.push(Call::FindDevice(spec.to_string()));
        Ok(PathBuf::from("/dev/vda3"))
    }
    fn read_head(&mut self, device: &Path) -> io::Result<Vec<u8>> {
        self.calls.push(Call::ReadHead(device.to_owned()));
        Ok(self.head.clone())
    }
    fn format(&mut self, _root: &Path, device: &Path, label: &str) -> Result<(), VolumeMountError> {
        self.calls.push(Call::Format {
            device: device.to_owned(),
            label: label.to_owned(),
        });
        if self.fail_format {
            return Err(VolumeMountError::NoMkfs {
                device: device.to_owned(),
            });
        }
        Ok(())
    }
}

const CONFIG: &str = r#"
[[volume]]
kind = "tmpfs"
target = "/tmp"
mode = "1777"
options = ["nosuid", "nodev"]

[[volume]]
kind = "overlay"
target = "/etc"

[[volume]]
kind = "persistent"
target = "/local"
partlabel = "DATA"

[[volume]]
kind = "bind"
source = "/local/var"
target = "/var"
"#;

/// A root with the config and the mount points an image ships.
fn root(config: Option<&str>) -> (tempfile::TempDir, FakeSys) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(config) = config {
        let path = dir.path().join(CONFIG_PATH);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, config).unwrap();
    }
    let mut sys = FakeSys {
        head: vec![0; PROBE_BYTES],
        ..FakeSys::default()
    };
    for d in ["tmp", "etc", "local", "var"] {
        sys.dirs.insert(dir.path().join(d));
    }
    (dir, sys)
}

fn ext4_head() -> Vec<u8> {
    let mut head = vec![0; PROBE_BYTES];
    head[1024 + 0x38..1024 + 0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
    head
}

fn run(sys: &mut FakeSys, root: &Path) -> Result<Vec<PathBuf>, VolumeMountError> {
    mount_volumes(
        sys,
        root,
        Path::new("/run/liftoff/overlay"),
        Duration::from_secs(1),
    )
}

#[test]
fn absent_file_mounts_nothing() {
    let (dir, mut sys) = root(None);
    assert_eq!(run(&mut sys, dir.path()).unwrap(), Vec::<PathBuf>::new());
    assert_eq!(sys.calls, vec![]);
}

#[test]
fn blank_partition_is_formatted_then_everything_mounts_in_order() {
    let (dir, mut sys) = root(Some(CONFIG));
    let r = dir.path();
    let mounted = run(&mut sys, r).unwrap();
    assert_eq!(
        mounted,
        vec![r.join("tmp"), r.join("etc"), r.join("local"), r.join("var")]
    );
    let mount = |source: &str, target: &str| Call::Mount {
        source: source.to_owned(),
        target: r.join(target),
    };
    assert_eq!(
        sys.calls,
        vec![
            mount("tmpfs", "tmp"),
            Call::CreateDir("/run/liftoff/overlay/etc/upper".into()),
            Call::CreateDir("/run/liftoff/overlay/etc/work".into()),
            mount("overlay", "etc"),
            Call::FindDevice("PARTLABEL=DATA".into()),
            Call::ReadHead("/dev/vda3".into()),
            Call::Format {
                device: "/dev/vda3".into(),
                label: "DATA".into()
            },
            mount("/dev/vda3", "local"),
            Call::CreateDir(r.join("local/var")),
            Call::Mount {
                source: r.join("local/var").display().to_string(),
                target: r.join("var"),
            },
            Call::MakeShared(r.join("var")),
        ]
    );
}

#[test]
fn ext4_partition_is_mounted_as_is() {
    let (dir, mut sys) = root(Some(CONFIG));
    sys.head = ext4_head();
    run(&mut sys, dir.path()).unwrap();
    assert!(!sys.calls.iter().any(|c| matches!(c, Call::Format { .. })));
}

#[test]
fn other_filesystem_is_never_formatted() {
    let (dir, mut sys) = root(Some(CONFIG));
    // erofs magic at 1024.
    sys.head[1024..1028].copy_from_slice(&0xe0f5_e1e2u32.to_le_bytes());
    let err = run(&mut sys, dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            VolumeMountError::NotExt4 {
                found: FsType::Erofs,
                ..
            }
        ),
        "{err}"
    );
    assert!(!sys.calls.iter().any(|c| matches!(c, Call::Format { .. })));
    // What was mounted is undone, in reverse.
    let r = dir.path();
    assert_eq!(
        sys.calls[sys.calls.len() - 2..],
        [Call::Unmount(r.join("etc")), Call::Unmount(r.join("tmp"))]
    );
}

#[test]
fn failing_mount_unmounts_the_others_in_reverse() {
    let (dir, mut sys) = root(Some(CONFIG));
    let r = dir.path();
    sys.head = ext4_head();
    sys.fail_mount = Some(r.join("var"));
    let err = run(&mut sys, r).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "cannot mount {} (bind) on {}",
            r.join("local/var").display(),
            r.join("var").display()
        )),
        "{err}"
    );
    let unmounts: Vec<_> = sys
        .calls
        .iter()
        .filter_map(|c| match c {
            Call::Unmount(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        unmounts,
        vec![r.join("local"), r.join("etc"), r.join("tmp")]
    );
}

#[test]
fn failing_format_is_fatal_and_undone() {
    let (dir, mut sys) = root(Some(CONFIG));
    sys.fail_format = true;
    let err = run(&mut sys, dir.path()).unwrap_err();
    assert!(matches!(err, VolumeMountError::NoMkfs { .. }), "{err}");
    assert_eq!(
        sys.calls.last(),
        Some(&Call::Unmount(dir.path().join("tmp")))
    );
}

#[test]
fn invalid_file_names_line_and_key() {
    let (dir, mut sys) = root(Some(
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/tmp\"\nsize = 3\n",
    ));
    let err = run(&mut sys, dir.path()).unwrap_err();
    let VolumeMountError::Config(inner) = &err else {
        panic!("{err}");
    };
    let text = inner.to_string();
    assert!(text.contains("mounts.toml:4: key `size`"), "{text}");
    assert_eq!(sys.calls, vec![]);
}

#[test]
fn mkfs_command_uses_the_roots_loader_or_runs_a_static_mkfs() {
    let root = Path::new("/sysroot");
    let mkfs = Path::new("/sysroot/sbin/mkfs.ext4");
    let dynamic = mkfs_command(
        root,
        mkfs,
        Some("/lib64/ld-linux-x86-64.so.2"),
        Path::new("/dev/vda3"),
        "DATA",
    );
    assert_eq!(
        dynamic.program,
        PathBuf::from("/sysroot/lib64/ld-linux-x86-64.so.2")
    );
    let args: Vec<_> = dynamic
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(args[0], "--library-path");
    assert!(args[1].starts_with("/sysroot/lib/"), "{}", args[1]);
    assert!(
        args[1].split(':').all(|d| d.starts_with("/sysroot/")),
        "{}",
        args[1]
    );
    assert_eq!(
        args[2..],
        ["/sysroot/sbin/mkfs.ext4", "-q", "-L", "DATA", "/dev/vda3"]
    );

    let fixed = mkfs_command(root, mkfs, None, Path::new("/dev/vda3"), "DATA");
    assert_eq!(fixed.program, mkfs);
    assert_eq!(
        fixed.args,
        ["-q", "-L", "DATA", "/dev/vda3"].map(OsString::from)
    );
}

#[test]
fn labels_go_to_mounted_volumes_after_the_load() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/liftoff")).unwrap();
    fs::write(
        root.path().join(CONFIG_PATH),
        r#"
[[volume]]
kind = "tmpfs"
target = "/secrets"
context = "system_u:object_r:secret_t"

[[volume]]
kind = "tmpfs"
target = "/scratch"

[[volume]]
kind = "tmpfs"
target = "/absent"
context = "system_u:object_r:run_t"
"#,
    )
    .unwrap();
    let set = std::cell::RefCell::new(Vec::new());
    let absent = root.path().join("absent");
    let labelled = apply_labels(
        root.path(),
        |p| p != absent,
        |p, c| {
            set.borrow_mut()
                .push((p.to_owned(), String::from_utf8(c.to_vec()).unwrap()));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(labelled, 1);
    assert_eq!(
        set.into_inner(),
        [(
            root.path().join("secrets"),
            "system_u:object_r:secret_t".to_owned()
        )]
    );
}

#[test]
fn a_label_the_kernel_refuses_is_an_error_naming_the_volume() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/liftoff")).unwrap();
    fs::write(
        root.path().join(CONFIG_PATH),
        "[[volume]]\nkind = \"tmpfs\"\ntarget = \"/secrets\"\ncontext = \"u:r:nope_t\"\n",
    )
    .unwrap();
    let err = apply_labels(
        root.path(),
        |_| true,
        |_, _| Err(io::Error::from_raw_os_error(libc::EINVAL)),
    )
    .unwrap_err();
    let text = crate::failure::chain(&err);
    assert!(
        text.contains("secrets") && text.contains("u:r:nope_t"),
        "{text}"
    );
    // No mounts.toml: nothing to label.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        apply_labels(empty.path(), |_| true, |_, _| Ok(())).unwrap(),
        0
    );
}
