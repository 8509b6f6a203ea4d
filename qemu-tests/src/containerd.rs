//! Debian's containerd and runc for the guests, fetched the way
//! [`crate::kernel`] fetches the kernel, never installed on the host.
//!
//! 1. [`fetch_containerd`] downloads the `containerd` and `runc` `.deb`s
//!    with `apt-get download` into `<cache>/containerd/debs/` (an existing
//!    one is reused, so a warm cache works offline) and unpacks each with
//!    `dpkg-deb -x` into `<cache>/containerd/<deb name>/`, through a
//!    temporary folder renamed into place, so a half-unpacked package never
//!    looks complete.
//! 2. [`ContainerdPackages::programs`] says which of their files the guest
//!    gets and where ([`PROGRAMS`]); [`crate::GuestRoot::with_containerd`]
//!    copies them with the libraries `ldd` names (bookworm's are dynamic Go
//!    binaries: libc, and libseccomp for runc) and the loader, and stages
//!    the configuration of the system instance, [`CONTAINERD`].
//! 3. [`Instance::unit`] is the unit file that supervises an instance
//!    (issue 7, item 1), shared by the scenarios; [`Instance::config_toml`]
//!    its configuration. Both are generated from the instance's paths, so
//!    the host containers' instance
//!    ([`crate::host_containers::HOST_CONTAINERD`]) shares them.
//!
//! Package layout (bookworm: containerd 1.6.20, runc 1.1.5):
//! `usr/bin/{containerd,containerd-shim,containerd-shim-runc-v1,
//! containerd-shim-runc-v2,ctr}` and `usr/sbin/runc` (with a
//! `usr/bin/runc` symlink to it). The v1 shims are left out: containerd
//! 1.6 runs tasks with `io.containerd.runc.v2`.
//!
//! What it leaves out: the CRI plugin and networking (no CNI).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::kernel::{self, KernelError};

/// The Debian packages fetched, in the order [`fetch_containerd`] fetches
/// them.
pub const PACKAGES: &[&str] = &["containerd", "runc"];

/// The programs the guest gets: the package they come from and their path,
/// the same in the package and on the guest's root.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("containerd", GUEST_CONTAINERD),
    ("containerd", "/usr/bin/containerd-shim-runc-v2"),
    ("containerd", GUEST_CTR),
    ("runc", "/usr/sbin/runc"),
];

/// containerd on the guest.
pub const GUEST_CONTAINERD: &str = "/usr/bin/containerd";

/// containerd's debugging client on the guest.
pub const GUEST_CTR: &str = "/usr/bin/ctr";

/// Where the system containerd's configuration ([`Instance::config_toml`]
/// of [`CONTAINERD`]) goes on the guest.
pub const GUEST_CONFIG: &str = "/etc/containerd/config.toml";

/// The system containerd's gRPC socket on the guest (`ctr --address`).
pub const SOCKET: &str = "/run/containerd/containerd.sock";

/// The system containerd's unit name: `liftoff ctl status containerd`,
/// `unit containerd: ready` in the log.
pub const UNIT_NAME: &str = "containerd";

/// The SELinux domain every containerd instance runs in
/// (`selinux/policy/10-types.cil`), for [`Instance::unit`] on an SELinux
/// guest.
pub const SELINUX_TYPE: &str = "containerd_t";

/// One containerd instance on the guest: the system's ([`CONTAINERD`]) or
/// the host containers' own
/// ([`crate::host_containers::HOST_CONTAINERD`]), which run side by side
/// from the same binary with their own configuration, `root`, `state`,
/// socket and unit. Its configuration and unit file are generated from
/// these paths by [`Instance::config_toml`] and [`Instance::unit`], so the
/// two instances differ only where they must.
///
/// Every path is absolute and holds no `"` or `\`: they are written into
/// TOML strings as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    /// The unit's name (`/etc/liftoff/units/NAME.toml`).
    pub unit_name: &'static str,
    /// The unit's `description`, shown by `liftoff ctl status`.
    pub description: &'static str,
    /// Where its configuration goes on the guest (`--config`).
    pub config: &'static str,
    /// Its `root`: content store, snapshots and metadata.
    pub root: &'static str,
    /// Its `state`: sockets and the shims' bundles.
    pub state: &'static str,
    /// Its gRPC socket (`ctr --address`), under `state`.
    pub socket: &'static str,
}

/// The system containerd: unit `containerd`, configuration at
/// [`GUEST_CONFIG`], root `/local/containerd`, state `/run/containerd`,
/// socket [`SOCKET`].
pub const CONTAINERD: Instance = Instance {
    unit_name: UNIT_NAME,
    description: "containerd container runtime",
    config: GUEST_CONFIG,
    root: "/local/containerd",
    state: "/run/containerd",
    socket: SOCKET,
};

impl Instance {
    /// The instance's configuration (format version 2, containerd 1.5 and
    /// later), for [`Instance::config`].
    ///
    /// * `root`, the content store, snapshots and metadata, is on the
    ///   persistent `/local` volume ([`LOCAL_VOLUME`]): the erofs root is
    ///   read-only, and the overlayfs snapshotter needs an upper directory
    ///   on a filesystem with `d_type` (ext4 has it). `state`, the sockets
    ///   and the shims' bundles, is on `/run`, a tmpfs, as they must not
    ///   outlive a boot.
    /// * Disabled plugins: the CRI plugin (Kubernetes, needs CNI
    ///   networking), the snapshotters the guest kernel lacks (aufs, btrfs,
    ///   devmapper, zfs: each would only log why it skipped) and the
    ///   tracing exporters (they would dial out).
    /// * The `opt` plugin installs "managed" binaries; its default folder,
    ///   `/opt/containerd`, is on the read-only root, so it moves under
    ///   `root` (`ROOT/opt`).
    #[must_use]
    pub fn config_toml(&self) -> String {
        let Self {
            unit_name,
            root,
            state,
            socket,
            ..
        } = self;
        format!(
            r#"# qemu-tests/src/containerd.rs: {unit_name} for the liftoff QEMU guest.
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
"#
        )
    }

    /// The unit file supervising the instance (issue 7, item 1), for
    /// `/etc/liftoff/units/UNIT_NAME.toml`; with `selinux`, it runs in
    /// [`SELINUX_TYPE`] (an SELinux guest, [`crate::GuestRoot::selinux`]).
    ///
    /// * `type = "notify"`: containerd sends `READY=1` once its gRPC server
    ///   serves, so units after it can talk to the socket at once.
    /// * `kill_mode = "process"`: a stop or a restart signals containerd
    ///   only; the shims in its cgroup, and the containers under them, live
    ///   on.
    /// * `delegate`: runc creates the containers' cgroups below
    ///   containerd's.
    /// * `oom_score_adj = -999` and the raised limits are Debian's
    ///   `containerd.service` values (`LimitNPROC=infinity`,
    ///   `LimitNOFILE=infinity`, which is the kernel's `nr_open`, 1048576).
    /// * `ready_timeout`: containerd is ready in well under a second on
    ///   hardware; QEMU's TCG on a loaded two-core machine is far slower.
    /// * `restart = "always"` with a 1 s backoff doubling up to 30 s.
    #[must_use]
    pub fn unit(&self, selinux: bool) -> String {
        let Self {
            unit_name,
            description,
            config,
            ..
        } = self;
        let selinux_type = if selinux {
            format!("selinux_type = \"{SELINUX_TYPE}\"\n")
        } else {
            String::new()
        };
        format!(
            r#"# qemu-tests/src/containerd.rs: the {unit_name} unit
description = "{description}"
type = "notify"
exec = ["{GUEST_CONTAINERD}", "--config", "{config}"]
ready_timeout = "5min"
restart = "always"
restart_delay = "1s"
restart_delay_max = "30s"
kill_mode = "process"
stop_timeout = "30s"
oom_score_adj = -999
stdout = "kmsg"
stderr = "kmsg"
{selinux_type}
[limits]
nofile = 1048576
nproc = "infinity"

[cgroup]
delegate = true
"#
        )
    }
}

/// The `mounts.toml` that gives containerd its `root`: a persistent ext4
/// volume on the image's blank `DATA` partition, formatted at first boot
/// (the guest needs `mkfs.ext4` and the `ext4` module).
pub const LOCAL_VOLUME: &str = r#"# qemu-tests/src/containerd.rs: LOCAL_VOLUME
[[volume]]
kind = "persistent"
target = "/local"
partlabel = "DATA"
"#;

/// The SELinux label of `/local`'s top folder on a guest with SELinux
/// (a line [`crate::guest_root::GuestRoot`] adds to [`LOCAL_VOLUME`]):
/// what is created under it inherits it.
pub const LOCAL_CONTEXT: &str = "system_u:object_r:local_t";

/// The kernel modules containerd needs beyond the base ones: `overlay`
/// for the overlayfs snapshotter (the guest has no modprobe, so it cannot
/// be loaded on demand) and `ext4` for [`LOCAL_VOLUME`].
pub const MODULES: &[&str] = &["overlay", "ext4"];

/// What failed while fetching containerd and runc.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    /// `apt-get download` failed, or apt does not know the package.
    #[error("cannot download the {package} package")]
    Download {
        /// The package.
        package: &'static str,
        #[source]
        source: KernelError,
    },
    /// A cache file or folder could not be created, listed or renamed.
    #[error("cannot {action} {}", path.display())]
    Cache {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `dpkg-deb -x` could not be started.
    #[error("cannot run `dpkg-deb -x {}`", deb.display())]
    SpawnUnpack {
        /// The package file.
        deb: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `dpkg-deb -x` failed.
    #[error("`dpkg-deb -x {}` failed ({status}): {stderr}", deb.display())]
    Unpack {
        /// The package file.
        deb: PathBuf,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// An unpacked package lacks a program the guest needs.
    #[error("the {package} package has no {}", path.display())]
    MissingProgram {
        /// The package.
        package: &'static str,
        /// Where the program should be.
        path: PathBuf,
    },
}

impl ContainerdError {
    /// True when the fix is `apt-get update`, as for
    /// [`KernelError::is_package_lists_missing`].
    #[must_use]
    pub fn is_package_lists_missing(&self) -> bool {
        matches!(self, Self::Download { source, .. } if source.is_package_lists_missing())
    }
}

/// containerd and runc, unpacked in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdPackages {
    /// Each of [`PACKAGES`] and the folder it is unpacked in.
    pub roots: Vec<(&'static str, PathBuf)>,
}

impl ContainerdPackages {
    /// Each of [`PROGRAMS`]: its file in the cache and its guest path.
    ///
    /// # Errors
    /// [`ContainerdError::MissingProgram`] if one is not in its package.
    pub fn programs(&self) -> Result<Vec<(PathBuf, &'static str)>, ContainerdError> {
        PROGRAMS
            .iter()
            .map(|&(package, guest)| {
                let root = self.roots.iter().find(|(name, _)| *name == package);
                match root.map(|(_, root)| root.join(guest.trim_start_matches('/'))) {
                    Some(host) if host.is_file() => Ok((host, guest)),
                    // Not unpacked, or unpacked without it.
                    host => Err(ContainerdError::MissingProgram {
                        package,
                        path: host.unwrap_or_else(|| PathBuf::from(guest)),
                    }),
                }
            })
            .collect()
    }
}

/// Fetches (or reuses) [`PACKAGES`] under `cache_root/containerd/`.
///
/// # Errors
/// See [`ContainerdError`]; [`ContainerdError::is_package_lists_missing`]
/// says when `apt-get update` would help.
pub fn fetch_containerd(cache_root: &Path) -> Result<ContainerdPackages, ContainerdError> {
    let dir = cache_root.join("containerd");
    let debs = dir.join("debs");
    fs::create_dir_all(&debs).map_err(|source| ContainerdError::Cache {
        action: "create",
        path: debs.clone(),
        source,
    })?;
    let mut roots = Vec::new();
    for &package in PACKAGES {
        let deb = kernel::download(package, &debs)
            .map_err(|source| ContainerdError::Download { package, source })?;
        roots.push((package, unpack(&deb, &dir)?));
    }
    let packages = ContainerdPackages { roots };
    packages.programs()?;
    Ok(packages)
}

/// Unpacks `deb` into `dir/<its name without .deb>` unless it is there.
fn unpack(deb: &Path, dir: &Path) -> Result<PathBuf, ContainerdError> {
    let name = deb
        .file_stem()
        .unwrap_or_else(|| OsStr::new("package"))
        .to_owned();
    let root = dir.join(&name);
    // The folder only ever appears by a rename of a complete unpack.
    if root.is_dir() {
        return Ok(root);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(dir)
        .map_err(|source| ContainerdError::Cache {
            action: "create a temporary folder in",
            path: dir.to_path_buf(),
            source,
        })?;
    let output = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(tmp.path())
        .output()
        .map_err(|source| ContainerdError::SpawnUnpack {
            deb: deb.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        return Err(ContainerdError::Unpack {
            deb: deb.to_path_buf(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    match fs::rename(tmp.path(), &root) {
        Ok(()) => Ok(root),
        // Another test unpacked the same package first: use theirs; ours
        // goes when `tmp` drops.
        Err(_) if root.is_dir() => Ok(root),
        Err(source) => Err(ContainerdError::Cache {
            action: "rename into place",
            path: root,
            source,
        }),
    }
}

#[cfg(test)]
// `pub(crate)`: the host containers' instance is checked the same way
// (`crate::host_containers`).
pub(crate) mod tests {
    use super::*;

    /// Checks what every containerd unit shares, and returns the unit.
    pub(crate) fn check_unit(instance: &Instance, selinux: bool) -> units::unit::Unit {
        let path = PathBuf::from(format!("{}.toml", instance.unit_name));
        let text = instance.unit(selinux);
        let unit = units::file::parse(&path, &text).expect("a valid unit file");
        assert_eq!(unit.name, instance.unit_name);
        assert_eq!(unit.description.as_deref(), Some(instance.description));
        assert_eq!(unit.kind, units::unit::Kind::Notify);
        assert_eq!(unit.kill_mode, units::unit::KillMode::Process);
        assert_eq!(unit.restart, units::unit::Restart::Always);
        assert_eq!(
            unit.process.argv,
            [GUEST_CONTAINERD, "--config", instance.config]
        );
        assert_eq!(unit.process.oom_score_adj, Some(-999));
        assert!(unit.process.cgroup.delegate);
        let nofile = &unit.process.limits["nofile"];
        assert_eq!(
            (nofile.soft, nofile.hard),
            (Some(1_048_576), Some(1_048_576))
        );
        let nproc = &unit.process.limits["nproc"];
        assert_eq!((nproc.soft, nproc.hard), (None, None), "infinity");
        let domain = selinux.then(|| units::unit::SelinuxLabel::Type(SELINUX_TYPE.to_owned()));
        assert_eq!(unit.process.selinux, domain, "{text}");
        unit
    }

    /// Checks what every containerd configuration shares: the instance's
    /// paths, and the CRI plugin off.
    pub(crate) fn check_config(instance: &Instance) {
        let text = instance.config_toml();
        for line in [
            "version = 2".to_owned(),
            format!("root = \"{}\"", instance.root),
            format!("state = \"{}\"", instance.state),
            format!("  address = \"{}\"", instance.socket),
            format!("  path = \"{}/opt\"", instance.root),
            "  \"io.containerd.grpc.v1.cri\",".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(instance.socket.starts_with(&format!("{}/", instance.state)));
    }

    #[test]
    fn the_unit_file_is_one_liftoff_accepts() {
        check_unit(&CONTAINERD, false);
        check_unit(&CONTAINERD, true);
    }

    #[test]
    fn the_volume_file_is_one_liftoff_accepts() {
        let volumes = mounts::volumes::parse(Path::new("mounts.toml"), LOCAL_VOLUME)
            .expect("a valid mounts.toml");
        assert_eq!(volumes[0].target(), Path::new("/local"));
    }

    #[test]
    fn the_config_puts_root_on_local_and_state_on_run() {
        check_config(&CONTAINERD);
        let text = CONTAINERD.config_toml();
        for line in [
            "root = \"/local/containerd\"",
            "state = \"/run/containerd\"",
            "address = \"/run/containerd/containerd.sock\"",
            "path = \"/local/containerd/opt\"",
        ] {
            assert!(text.contains(line), "{line}");
        }
    }

    #[test]
    fn programs_come_from_the_unpacked_packages() {
        let dir = tempfile::tempdir().unwrap();
        let roots: Vec<(&'static str, PathBuf)> =
            PACKAGES.iter().map(|&p| (p, dir.path().join(p))).collect();
        for &(package, guest) in PROGRAMS {
            let path = dir.path().join(package).join(&guest[1..]);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, b"").unwrap();
        }
        let packages = ContainerdPackages { roots };
        let programs = packages.programs().unwrap();
        assert_eq!(programs.len(), PROGRAMS.len());
        assert_eq!(programs[3].0, dir.path().join("runc/usr/sbin/runc"));
        assert_eq!(programs[3].1, "/usr/sbin/runc");

        fs::remove_file(dir.path().join("containerd/usr/bin/ctr")).unwrap();
        match packages.programs() {
            Err(ContainerdError::MissingProgram { package, path }) => {
                assert_eq!(package, "containerd");
                assert!(path.ends_with("usr/bin/ctr"), "{}", path.display());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
