//! A verified-root guest for the stage 1 and stage 2 scenarios: a staged
//! root filesystem with liftoff as `/sbin/init`, built into a dm-verity
//! disk image, plus an initramfs made by `liftoff initramfs` and Debian's
//! kernel.
//!
//! [`GuestRoot`] collects what the root holds; [`GuestRoot::build`] writes
//! it out in these steps:
//!
//! 1. a staging folder with the mount points every boot needs
//!    ([`BASE_DIRS`]), a static busybox at `/bin/busybox`, liftoff at
//!    `/sbin/init`, and the scenario's files, unit files
//!    (`/etc/liftoff/units/NAME.toml`) and `mounts.toml` (whose targets get
//!    a mount point each: an erofs root cannot grow them at boot);
//! 2. optionally the host's `mkfs.ext4` with every library `ldd` names and
//!    the loader, so that stage 1 can format a blank persistent volume;
//!    optionally ([`GuestRoot::with_containerd`]) Debian's containerd,
//!    its shim, `ctr` and runc from the [`crate::containerd`] cache, with
//!    their libraries and loader the same way, and containerd's
//!    configuration;
//!    optionally ([`GuestRoot::with_host_containers`]) the static
//!    `host-ctr` and the host containers' own containerd, its
//!    configuration and unit ([`crate::host_containers`]), and
//!    ([`GuestRoot::host_container`]) each host container's OCI archive;
//!    optionally ([`GuestRoot::selinux`]) the repository's SELinux policy,
//!    compiled by `secilc`, and its `/etc/selinux/config`;
//! 3. the disk image ([`DiskImage`], adjusted by [`GuestRoot::image`]),
//!    its erofs root labelled from `selinux/file_contexts` for an SELinux
//!    guest;
//! 4. the initramfs, liftoff as `/init` with [`BASE_MODULES`] and the
//!    scenario's extra modules.
//!
//! [`Guest::boot`] then starts QEMU with the image's `roothash=` and the
//! flags in [`Guest::append`]; [`expect`] and [`expect_exit`] wait on the
//! console and [`refute`] checks it, each failing with all of it.
//!
//! What it leaves out: busybox applet links (scripts call
//! `/bin/busybox APPLET`), users and groups, networking.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use tempfile::TempDir;

use crate::containerd::{self, ContainerdError};
use crate::host_containers;
use crate::image::{BuiltImage, DiskImage, ImageBuilder, ImageError};
use crate::kernel::{KernelError, fetch_kernel};
use crate::oci::{self, ArchiveOptions, OciError};
use crate::paths::cache_dir;
use crate::qemu::{
    KERNEL_FLAG_CONSOLE, KERNEL_FLAG_DEVKMSG, KERNEL_FLAG_PANIC, QemuError, Vm, VmConfig,
};
use crate::scenario::{ScenarioError, build_initramfs, host_ctr_bin, liftoff_bin};
use crate::selinux::{self, KERNEL_FLAG_SELINUX, PolicyError};

/// The modules every guest's initramfs carries (their dependencies come
/// along): virtio over PCI for the disk, dm-verity (with dm-mod and
/// dm-bufio) and erofs for the root.
pub const BASE_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "dm-verity", "erofs"];

/// The root's folders every boot needs: busybox and liftoff live in `bin`
/// and `sbin`; switch_root moves the API filesystems onto `dev`, `proc`,
/// `sys` and `run`, which an erofs root cannot create at boot.
pub const BASE_DIRS: &[&str] = &["bin", "sbin", "dev", "proc", "sys", "run"];

/// Where liftoff goes on the root: booted with `init=/sbin/init` it
/// continues as stage 2, as on a real image.
pub const GUEST_LIFTOFF: &str = "/sbin/init";

/// Where unit files go on the root.
pub const UNITS_DIR: &str = "/etc/liftoff/units";

/// Where the volumes file goes on the root.
pub const MOUNTS_TOML: &str = "/etc/liftoff/mounts.toml";

/// The host's mkfs.ext4 (e2fsprogs), copied with
/// [`GuestRoot::with_mkfs_ext4`] to the same path on the root, where
/// liftoff looks for it.
pub const HOST_MKFS_EXT4: &str = "/sbin/mkfs.ext4";

/// Guest kernel flag: no 5 s wait before liftoff's failure action; the
/// scenarios read the console, not a person.
pub const KERNEL_FLAG_NO_FAILURE_DELAY: &str = "liftoff.failure_delay=0";

/// The default limit on one boot, start to QEMU's exit; see
/// [`GuestRoot::run_timeout`].
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// What failed while building a guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestRootError {
    /// `LIFTOFF_BIN` is not set and no [`GuestRoot::liftoff`] was given.
    #[error("{}", crate::scenario::MISSING_LIFTOFF_BIN)]
    NoLiftoff,
    /// `HOST_CTR_BIN` is not set and no [`GuestRoot::host_ctr`] was given
    /// for a [`GuestRoot::with_host_containers`] guest.
    #[error("{}", crate::scenario::MISSING_HOST_CTR_BIN)]
    NoHostCtr,
    /// The kernel could not be fetched or found in the cache.
    #[error("cannot get the guest kernel (cargo xtask test fetches it)")]
    Kernel(#[source] KernelError),
    /// A file or folder could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: "read", "write", "create".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `ldd` could not list a program's libraries.
    #[error("`ldd {}` failed: {output}", program.display())]
    Ldd {
        /// The program (mkfs.ext4, containerd, …).
        program: PathBuf,
        /// Its stderr, or why it could not run.
        output: String,
    },
    /// A program needs a library the host does not have, so it cannot be
    /// copied either.
    #[error("{} needs {library}, which the host lacks (`ldd` says not found)", program.display())]
    MissingLibrary {
        /// The program.
        program: PathBuf,
        /// The library's name.
        library: String,
    },
    /// containerd and runc could not be fetched or found in the cache.
    #[error("cannot get Debian's containerd and runc (cargo xtask test fetches them)")]
    Containerd(#[source] ContainerdError),
    /// The scenario's mounts.toml is not one liftoff would accept.
    #[error("the scenario's mounts.toml is invalid")]
    Mounts(#[source] mounts::volumes::VolumesError),
    /// A staged path is not absolute or leaves the root.
    #[error("guest path {path:?} must be absolute, without `..`")]
    BadPath {
        /// The path.
        path: String,
    },
    /// The disk image could not be built.
    #[error("cannot build the disk image")]
    Image(#[source] ImageError),
    /// `liftoff initramfs` failed.
    #[error("cannot build the initramfs")]
    Initramfs(#[source] ScenarioError),
    /// The SELinux policy did not compile.
    #[error("cannot compile the SELinux policy")]
    Policy(#[source] PolicyError),
    /// A host container's OCI archive could not be written.
    #[error("cannot write the OCI archive {path}")]
    Archive {
        /// Its guest path.
        path: String,
        #[source]
        source: OciError,
    },
}

/// One file for the root.
#[derive(Debug, Clone)]
struct StagedFile {
    /// Absolute guest path.
    path: String,
    bytes: Vec<u8>,
    mode: u32,
}

/// Adjusts the image builder (erofs or ext4, which verity tool, …).
type ImageFn = Box<dyn FnOnce(ImageBuilder) -> ImageBuilder>;

/// What a guest's root holds and how it boots; see the module docs.
pub struct GuestRoot {
    liftoff: Option<PathBuf>,
    busybox: PathBuf,
    init: String,
    files: Vec<StagedFile>,
    dirs: Vec<String>,
    mounts_toml: Option<String>,
    mkfs_ext4: bool,
    containerd: bool,
    host_containers: bool,
    host_ctr: Option<PathBuf>,
    /// Each host container's archive: its guest path and what it holds.
    archives: Vec<(String, ArchiveOptions)>,
    modules: Vec<String>,
    image: Option<ImageFn>,
    run_timeout: Duration,
    selinux: bool,
}

impl fmt::Debug for GuestRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestRoot")
            .field("liftoff", &self.liftoff)
            .field("busybox", &self.busybox)
            .field("init", &self.init)
            .field(
                "files",
                &self.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            )
            .field("dirs", &self.dirs)
            .field("mounts_toml", &self.mounts_toml.is_some())
            .field("mkfs_ext4", &self.mkfs_ext4)
            .field("containerd", &self.containerd)
            .field("host_containers", &self.host_containers)
            .field("host_ctr", &self.host_ctr)
            .field(
                "archives",
                &self.archives.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .field("modules", &self.modules)
            .field("image", &self.image.is_some())
            .field("run_timeout", &self.run_timeout)
            .field("selinux", &self.selinux)
            .finish()
    }
}

impl Default for GuestRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestRoot {
    /// A root with busybox and liftoff (from `LIFTOFF_BIN`) only, booting
    /// `init=/sbin/init` (liftoff's stage 2), on a default [`DiskImage`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            liftoff: None,
            busybox: PathBuf::from(crate::guest::DEFAULT_BUSYBOX),
            init: GUEST_LIFTOFF.to_owned(),
            files: Vec::new(),
            dirs: Vec::new(),
            mounts_toml: None,
            mkfs_ext4: false,
            containerd: false,
            host_containers: false,
            host_ctr: None,
            archives: Vec::new(),
            modules: Vec::new(),
            image: None,
            run_timeout: DEFAULT_RUN_TIMEOUT,
            selinux: false,
        }
    }

    /// The static liftoff to stage (as `/sbin/init`) and to build the
    /// initramfs with; `LIFTOFF_BIN` by default.
    #[must_use]
    pub fn liftoff(mut self, host: impl Into<PathBuf>) -> Self {
        self.liftoff = Some(host.into());
        self
    }

    /// What `init=` names: the program stage 1 executes on the new root.
    /// [`GUEST_LIFTOFF`] (stage 2) by default; a probe script for stage 1
    /// scenarios.
    #[must_use]
    pub fn init(mut self, guest_path: impl Into<String>) -> Self {
        self.init = guest_path.into();
        self
    }

    /// A file at `guest_path` (absolute) with `mode`; its folders are
    /// created.
    #[must_use]
    pub fn file(
        mut self,
        guest_path: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Self {
        self.files.push(StagedFile {
            path: guest_path.into(),
            bytes: bytes.into(),
            mode,
        });
        self
    }

    /// An executable (0755) script at `guest_path`.
    #[must_use]
    pub fn script(self, guest_path: impl Into<String>, text: &str) -> Self {
        self.file(guest_path, text, 0o755)
    }

    /// A unit file, `/etc/liftoff/units/NAME.toml`, holding `toml`.
    #[must_use]
    pub fn unit(self, name: &str, toml: &str) -> Self {
        self.file(format!("{UNITS_DIR}/{name}.toml"), toml, 0o644)
    }

    /// An empty folder at `guest_path`, for a mount point.
    #[must_use]
    pub fn dir(mut self, guest_path: impl Into<String>) -> Self {
        self.dirs.push(guest_path.into());
        self
    }

    /// `/etc/liftoff/mounts.toml`; [`GuestRoot::build`] checks it with
    /// liftoff's own parser and creates each volume's mount point.
    #[must_use]
    pub fn mounts_toml(mut self, text: &str) -> Self {
        self.mounts_toml = Some(text.to_owned());
        self
    }

    /// Stages the host's `mkfs.ext4` with its libraries and loader, for
    /// persistent volumes on a blank partition.
    #[must_use]
    pub fn with_mkfs_ext4(mut self) -> Self {
        self.mkfs_ext4 = true;
        self
    }

    /// Stages Debian's containerd and runc ([`crate::containerd`]: fetched
    /// into the cache on first use) at their packages' paths, with their
    /// libraries and loader, and the configuration of
    /// [`containerd::CONTAINERD`] at [`containerd::GUEST_CONFIG`] unless
    /// the scenario stages its own.
    ///
    /// containerd's `root` is on `/local`, so this also implies
    /// [`GuestRoot::with_mkfs_ext4`], the modules in
    /// [`containerd::MODULES`] (`overlay`, `ext4`) and, when the scenario
    /// gives no `mounts.toml`, [`containerd::LOCAL_VOLUME`]; a scenario
    /// with its own must mount `/local` itself. The unit file is the
    /// scenario's to add: `.unit("containerd", &CONTAINERD.unit(false))`.
    #[must_use]
    pub fn with_containerd(mut self) -> Self {
        self.containerd = true;
        self.mkfs_ext4 = true;
        self
    }

    /// Stages what host containers need ([`crate::host_containers`]):
    /// everything of [`GuestRoot::with_containerd`] (containerd, runc, the
    /// shim and their libraries, `overlay` and `ext4`, `/local`), the
    /// static `host-ctr` (from `HOST_CTR_BIN`, or [`GuestRoot::host_ctr`])
    /// at [`host_containers::GUEST_HOST_CTR`], and the host containers'
    /// containerd: its configuration at
    /// [`host_containers::HOST_CONTAINERD_CONFIG_PATH`] and its unit
    /// `host-containerd` (in `containerd_t` on a [`GuestRoot::selinux`]
    /// guest), each unless the scenario stages its own.
    ///
    /// The system containerd's unit stays the scenario's to add; the host
    /// containers themselves are added with [`GuestRoot::host_container`].
    #[must_use]
    pub fn with_host_containers(self) -> Self {
        let mut root = self.with_containerd();
        root.host_containers = true;
        root
    }

    /// The static `host-ctr` to stage for
    /// [`GuestRoot::with_host_containers`]; `HOST_CTR_BIN` by default.
    #[must_use]
    pub fn host_ctr(mut self, host: impl Into<PathBuf>) -> Self {
        self.host_ctr = Some(host.into());
        self
    }

    /// Host container `name`: `settings` (such as
    /// [`host_containers::settings_toml`]) at
    /// `/etc/liftoff/host-containers/NAME.toml` and, when `archive` is
    /// given, a busybox OCI archive built from it
    /// ([`oci::busybox_archive`]) at
    /// [`host_containers::archive_path`] (`/usr/share/host-containers/NAME.tar`).
    /// `None` leaves the archive out, for a scenario whose `source` is
    /// missing on purpose or staged with [`GuestRoot::file`].
    ///
    /// Goes with [`GuestRoot::with_host_containers`], which stages what
    /// runs it.
    #[must_use]
    pub fn host_container(
        mut self,
        name: &str,
        settings: &str,
        archive: Option<&ArchiveOptions>,
    ) -> Self {
        if let Some(options) = archive {
            self.archives
                .push((host_containers::archive_path(name), options.clone()));
        }
        self.file(host_containers::settings_path(name), settings, 0o644)
    }

    /// Modules the initramfs carries besides [`BASE_MODULES`] (`ext4`,
    /// `overlay`).
    #[must_use]
    pub fn modules(mut self, names: &[&str]) -> Self {
        self.modules.extend(names.iter().map(|&n| n.to_owned()));
        self
    }

    /// Adjusts the disk image: `.image(|b| b.root_fs(RootFs::Ext4))`.
    /// A later call replaces an earlier one.
    #[must_use]
    pub fn image(mut self, adjust: impl FnOnce(ImageBuilder) -> ImageBuilder + 'static) -> Self {
        self.image = Some(Box::new(adjust));
        self
    }

    /// The limit on each boot, from QEMU's start to its exit
    /// ([`DEFAULT_RUN_TIMEOUT`] unless set).
    #[must_use]
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.run_timeout = timeout;
        self
    }

    /// An SELinux guest: the repository's policy (`selinux/policy`,
    /// compiled by `secilc`) at [`selinux::GUEST_POLICY`],
    /// `selinux/config` at [`selinux::GUEST_CONFIG`], the erofs root
    /// labelled from `selinux/file_contexts`, and `security=selinux` on
    /// the kernel command line. A scenario's own file at one of these
    /// paths (a broken policy) replaces the staged one.
    #[must_use]
    pub fn selinux(mut self) -> Self {
        self.selinux = true;
        self
    }

    /// Stages the root, builds the disk image and the initramfs in a new
    /// temporary folder (removed with the [`Guest`]), and finds the kernel.
    ///
    /// # Errors
    /// See [`GuestRootError`].
    pub fn build(self) -> Result<Guest, GuestRootError> {
        let liftoff = match self.liftoff {
            Some(path) => path,
            None => liftoff_bin().ok_or(GuestRootError::NoLiftoff)?,
        };
        let host_ctr = match (self.host_containers, self.host_ctr) {
            (false, _) => None,
            (true, Some(path)) => Some(path),
            (true, None) => Some(host_ctr_bin().ok_or(GuestRootError::NoHostCtr)?),
        };
        let kernel = fetch_kernel(&cache_dir()).map_err(GuestRootError::Kernel)?;
        let dir = tempfile::Builder::new()
            .prefix("liftoff-qemu-")
            .tempdir()
            .map_err(io_error("create", std::env::temp_dir()))?;

        // 1. The root's folders, busybox, liftoff and the scenario's files.
        let staging = dir.path().join("staging");
        let mut dirs: Vec<String> = BASE_DIRS.iter().map(|d| format!("/{d}")).collect();
        dirs.extend(self.dirs);
        let mut files = self.files;
        let mut mounts_toml = self.mounts_toml;
        if self.containerd && mounts_toml.is_none() {
            let mut volume = containerd::LOCAL_VOLUME.to_owned();
            if self.selinux {
                // A fresh ext4 has no labels: without one on its top
                // folder, everything containerd unpacks there would be
                // unlabeled_t, which no container domain may run.
                volume.push_str(&format!("context = \"{}\"\n", containerd::LOCAL_CONTEXT));
            }
            mounts_toml = Some(volume);
        }
        if let Some(text) = &mounts_toml {
            let volumes = mounts::volumes::parse(Path::new(MOUNTS_TOML), text)
                .map_err(GuestRootError::Mounts)?;
            dirs.extend(
                volumes
                    .iter()
                    .map(|v| v.target().to_string_lossy().into_owned()),
            );
            files.push(StagedFile {
                path: MOUNTS_TOML.to_owned(),
                bytes: text.clone().into_bytes(),
                mode: 0o644,
            });
        }
        for guest in &dirs {
            let path = under(&staging, guest)?;
            fs::create_dir_all(&path).map_err(io_error("create", &path))?;
        }
        let busybox = fs::read(&self.busybox).map_err(io_error("read", &self.busybox))?;
        write_file(&staging, crate::guest::GUEST_BUSYBOX, &busybox, 0o755)?;
        let liftoff_bytes = fs::read(&liftoff).map_err(io_error("read", &liftoff))?;
        write_file(&staging, GUEST_LIFTOFF, &liftoff_bytes, 0o755)?;
        for file in &files {
            write_file(&staging, &file.path, &file.bytes, file.mode)?;
        }

        // 2. mkfs.ext4, containerd and runc, host-ctr, and what they link
        // against; the configurations and units of containerd and the host
        // containers' containerd, and the SELinux policy, unless the
        // scenario brought its own (a broken policy); the host containers'
        // archives.
        let mut libraries = BTreeSet::new();
        if self.mkfs_ext4 {
            let host = Path::new(HOST_MKFS_EXT4);
            stage_program(&staging, host, HOST_MKFS_EXT4, &mut libraries)?;
        }
        if self.containerd {
            stage_containerd(&staging, &files, &mut libraries)?;
        }
        if let Some(host_ctr) = &host_ctr {
            stage_host_containers(&staging, &files, host_ctr, self.selinux, &mut libraries)?;
        }
        for (guest, options) in &self.archives {
            stage_archive(&staging, &self.busybox, guest, options)?;
        }
        if self.selinux {
            stage_selinux(dir.path(), &staging, &files)?;
        }

        // 3. The disk image.
        let mut image = DiskImage::builder(&staging);
        if let Some(adjust) = self.image {
            image = adjust(image);
        }
        if self.selinux {
            image = image.file_contexts(selinux::file_contexts());
        }
        let image = image
            .build(&dir.path().join("disk.img"))
            .map_err(GuestRootError::Image)?;

        // 4. The initramfs.
        let initrd = dir.path().join("initrd.img");
        let containerd_modules = if self.containerd {
            containerd::MODULES
        } else {
            &[]
        };
        let mut modules: Vec<&str> = BASE_MODULES.to_vec();
        for name in containerd_modules
            .iter()
            .copied()
            .chain(self.modules.iter().map(String::as_str))
        {
            if !modules.contains(&name) {
                modules.push(name);
            }
        }
        build_initramfs(&liftoff, &kernel.modules_dir, &modules, &initrd)
            .map_err(GuestRootError::Initramfs)?;

        Ok(Guest {
            dir,
            image,
            initrd,
            vmlinuz: kernel.vmlinuz,
            init: self.init,
            run_timeout: self.run_timeout,
            kernel_flags: if self.selinux {
                format!(" {KERNEL_FLAG_SELINUX}")
            } else {
                String::new()
            },
        })
    }
}

/// A built guest: its disk image, initramfs and kernel, in a temporary
/// folder that lives as long as it does. Each boot reuses the same image
/// file, so what one boot writes to DATA the next one sees.
#[derive(Debug)]
pub struct Guest {
    dir: TempDir,
    /// The disk image (root, hash tree, blank DATA).
    pub image: BuiltImage,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The kernel.
    pub vmlinuz: PathBuf,
    init: String,
    run_timeout: Duration,
    /// Flags the guest needs on every boot (` security=selinux`), each
    /// after a space.
    kernel_flags: String,
}

impl Guest {
    /// The guest's folder (the image, the initramfs, one folder per run).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The kernel command line for a boot whose root is named by
    /// `root_cmdline`: the harness's flags (`console=ttyS0 panic=-1
    /// printk.devkmsg=on`, see [`crate::qemu`]), `init=`, `root_cmdline`,
    /// the guest's own flags (`security=selinux` for
    /// [`GuestRoot::selinux`]), and [`KERNEL_FLAG_NO_FAILURE_DELAY`] last.
    /// A later `init=` in `root_cmdline` wins over the builder's.
    #[must_use]
    pub fn append(&self, root_cmdline: &str) -> String {
        format!(
            "{KERNEL_FLAG_CONSOLE} {KERNEL_FLAG_PANIC} {KERNEL_FLAG_DEVKMSG} init={} {root_cmdline}{} {KERNEL_FLAG_NO_FAILURE_DELAY}",
            self.init, self.kernel_flags
        )
    }

    /// The QEMU configuration for [`Guest::boot_cmdline`].
    #[must_use]
    pub fn config(&self, root_cmdline: &str, run: &str) -> VmConfig {
        let mut config = VmConfig::new(&self.vmlinuz, &self.initrd);
        config.append = self.append(root_cmdline);
        config.disks = vec![self.image.path.clone()];
        // TCG's default qemu64 CPU: no SSE4.2, so crc32c_intel (one of the
        // providers erofs's `softdep=pre: crc32c` plans) refuses with
        // ENODEV. It is optional, so the boot goes on with crc32c_generic.
        config.run_dir = Some(self.dir.path().join(run));
        config.timeout = self.run_timeout;
        config
    }

    /// Boots the image by its own `roothash=` with `extra` kernel flags;
    /// `run` names the folder for this boot's console log.
    ///
    /// # Errors
    /// QEMU could not be started.
    pub fn boot(&self, extra: &str, run: &str) -> Result<Vm, QemuError> {
        self.boot_cmdline(&format!("{} {extra}", self.image.cmdline), run)
    }

    /// Boots with `root_cmdline` in place of the image's `roothash=` (a
    /// wrong hash, `systemd.verity_*` keys, `dm-mod.create=`).
    ///
    /// # Errors
    /// QEMU could not be started.
    pub fn boot_cmdline(&self, root_cmdline: &str, run: &str) -> Result<Vm, QemuError> {
        Vm::start(&self.config(root_cmdline, run))
    }
}

/// Waits until the console shows `pattern`.
///
/// # Panics
/// When it does not within `within` (or QEMU exits first), with the run's
/// folder and the whole console in the message: this is a test assertion.
pub fn expect(vm: &Vm, pattern: &str, within: Duration) {
    if let Err(e) = vm.wait_for(pattern, within) {
        fail(vm, &e);
    }
    // The serial console delivers a line in pieces: wait for the rest of
    // the line that holds `pattern`, so that a test reading that line
    // (`after`) sees all of it, not the part that had arrived.
    let deadline = std::time::Instant::now() + LINE_REST;
    while std::time::Instant::now() < deadline {
        let console = vm.console();
        let complete = console
            .find(pattern)
            .is_some_and(|at| console[at..].contains('\n'));
        if complete {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long [`expect`] waits for the end of the line it found: the rest
/// of a line is milliseconds behind its start, even under TCG.
const LINE_REST: Duration = Duration::from_secs(10);

/// Waits until QEMU exits (the guest powered off, rebooted or panicked).
///
/// # Panics
/// When it does not within `within` (QEMU is then killed), with the whole
/// console in the message.
pub fn expect_exit(vm: &mut Vm, within: Duration) -> ExitStatus {
    match vm.wait_exit(within) {
        Ok(status) => status,
        Err(e) => fail(vm, &e),
    }
}

/// Fails if `console` shows any of `patterns`.
///
/// # Panics
/// On the first pattern found, with the whole console: a test assertion.
pub fn refute(console: &str, patterns: &[&str]) {
    for pattern in patterns {
        assert!(
            !console.contains(pattern),
            "unexpected {pattern:?} on the console:\n{console}"
        );
    }
}

/// The rest of the first console line that contains `marker`, trimmed:
/// `after(console, "PROBE root=")`.
#[must_use]
pub fn after<'a>(console: &'a str, marker: &str) -> Option<&'a str> {
    console
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.trim()))
}

/// Whether a console line ends with `line` (serial lines end in `\r`).
#[must_use]
pub fn has_line(console: &str, line: &str) -> bool {
    console.lines().any(|l| l.trim_end().ends_with(line))
}

/// [`after`], or a test failure with the console.
///
/// # Panics
/// When no line contains `marker`.
#[must_use]
pub fn line_after<'a>(console: &'a str, marker: &str) -> &'a str {
    after(console, marker).unwrap_or_else(|| panic!("no {marker:?} line:\n{console}"))
}

/// Where `pattern` first appears on the console.
///
/// # Panics
/// When it does not appear: this is a test assertion.
#[must_use]
pub fn position(console: &str, pattern: &str) -> usize {
    console
        .find(pattern)
        .unwrap_or_else(|| panic!("no {pattern:?}:\n{console}"))
}

/// The value of `key=` in `line`, up to the next space.
#[must_use]
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// The rest of every console line a probe prefixed with `PROBE PREFIX:`,
/// with runs of spaces squeezed to one.
#[must_use]
pub fn probe_lines(console: &str, prefix: &str) -> Vec<String> {
    let marker = format!("PROBE {prefix}:");
    console
        .lines()
        .filter_map(|l| l.split_once(marker.as_str()))
        .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Fails unless one of `lines` starts with `prefix`.
///
/// # Panics
/// When none does, with the lines and the console.
pub fn expect_line(lines: &[String], prefix: &str, console: &str) {
    assert!(
        lines.iter().any(|l| l.starts_with(prefix)),
        "no {prefix:?} in {lines:#?}\n--- console ---\n{console}"
    );
}

/// The kernel's timestamp of a console line, `[    2.996271] …`, in
/// seconds since the kernel started.
#[must_use]
pub fn kernel_time(line: &str) -> Option<f64> {
    let (stamp, _) = line.trim_start().strip_prefix('[')?.split_once(']')?;
    stamp.trim().parse().ok()
}

/// The kernel timestamps of the console lines that contain `pattern`.
#[must_use]
pub fn kernel_times(console: &str, pattern: &str) -> Vec<f64> {
    console
        .lines()
        .filter(|l| l.contains(pattern))
        .filter_map(kernel_time)
        .collect()
}

fn fail(vm: &Vm, error: &QemuError) -> ! {
    panic!(
        "{}: {error}\n--- console ---\n{}",
        vm.run_dir().display(),
        vm.console()
    )
}

fn io_error(
    action: &'static str,
    path: impl AsRef<Path>,
) -> impl FnOnce(std::io::Error) -> GuestRootError {
    let path = path.as_ref().to_owned();
    move |source| GuestRootError::Io {
        action,
        path,
        source,
    }
}

/// `guest` (absolute, no `..`) under `staging`.
fn under(staging: &Path, guest: &str) -> Result<PathBuf, GuestRootError> {
    let relative = Path::new(guest)
        .strip_prefix("/")
        .map_err(|_| GuestRootError::BadPath {
            path: guest.to_owned(),
        })?;
    if relative
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(GuestRootError::BadPath {
            path: guest.to_owned(),
        });
    }
    Ok(staging.join(relative))
}

fn write_file(staging: &Path, guest: &str, bytes: &[u8], mode: u32) -> Result<(), GuestRootError> {
    let path = under(staging, guest)?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_error("create", parent))?;
    }
    fs::write(&path, bytes).map_err(io_error("write", &path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_error("chmod", &path))
}

/// Compiles the repository's policy into `work` and stages it with
/// `selinux/config`, unless the scenario's `files` hold their own.
fn stage_selinux(work: &Path, staging: &Path, files: &[StagedFile]) -> Result<(), GuestRootError> {
    let own = |guest: &str| files.iter().any(|f| f.path == guest);
    if !own(selinux::GUEST_POLICY) {
        let policy = work.join(format!("policy.{}", selinux::POLICY_VERSION));
        selinux::compile_policy(&selinux::policy_dir(), &policy).map_err(GuestRootError::Policy)?;
        let bytes = fs::read(&policy).map_err(io_error("read", &policy))?;
        write_file(staging, selinux::GUEST_POLICY, &bytes, 0o644)?;
    }
    if !own(selinux::GUEST_CONFIG) {
        let config = selinux::config();
        let bytes = fs::read(&config).map_err(io_error("read", &config))?;
        write_file(staging, selinux::GUEST_CONFIG, &bytes, 0o644)?;
    }
    Ok(())
}

/// Fetches containerd and runc into the cache and stages their programs
/// and, unless `files` hold one, containerd's configuration.
fn stage_containerd(
    staging: &Path,
    files: &[StagedFile],
    libraries: &mut BTreeSet<String>,
) -> Result<(), GuestRootError> {
    let packages =
        containerd::fetch_containerd(&cache_dir()).map_err(GuestRootError::Containerd)?;
    let programs = packages.programs().map_err(GuestRootError::Containerd)?;
    for (host, guest) in &programs {
        stage_program(staging, host, guest, libraries)?;
    }
    if !files.iter().any(|f| f.path == containerd::GUEST_CONFIG) {
        write_file(
            staging,
            containerd::GUEST_CONFIG,
            containerd::CONTAINERD.config_toml().as_bytes(),
            0o644,
        )?;
    }
    Ok(())
}

/// Stages `host-ctr` (the host's file at `host_ctr`; static, so it brings
/// no libraries, but a dynamic build would bring its own) and, unless
/// `files` hold their own, the host containers' containerd's
/// configuration and unit (in `containerd_t` when `selinux`).
fn stage_host_containers(
    staging: &Path,
    files: &[StagedFile],
    host_ctr: &Path,
    selinux: bool,
    libraries: &mut BTreeSet<String>,
) -> Result<(), GuestRootError> {
    stage_program(
        staging,
        host_ctr,
        host_containers::GUEST_HOST_CTR,
        libraries,
    )?;
    let unit = format!(
        "{UNITS_DIR}/{}.toml",
        host_containers::HOST_CONTAINERD_UNIT_NAME
    );
    for (guest, text) in [
        (
            host_containers::HOST_CONTAINERD_CONFIG_PATH,
            host_containers::host_containerd_config(),
        ),
        (
            unit.as_str(),
            host_containers::host_containerd_unit(selinux),
        ),
    ] {
        if !files.iter().any(|f| f.path == guest) {
            write_file(staging, guest, text.as_bytes(), 0o644)?;
        }
    }
    Ok(())
}

/// Writes a busybox OCI archive (`busybox`, the host's static one, with
/// `options`) straight into the staging folder at `guest`.
fn stage_archive(
    staging: &Path,
    busybox: &Path,
    guest: &str,
    options: &ArchiveOptions,
) -> Result<(), GuestRootError> {
    let path = under(staging, guest)?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_error("create", parent))?;
    }
    oci::busybox_archive(busybox, &path, options).map_err(|source| GuestRootError::Archive {
        path: guest.to_owned(),
        source,
    })?;
    Ok(())
}

/// Copies the program at `host` to `guest` on the root, and every library
/// `ldd` names (and the loader) to the same paths as on the host, each
/// once however many programs need it (`libraries` records them). The
/// program then runs through the root's own loader. A static program has
/// none to copy.
fn stage_program(
    staging: &Path,
    host: &Path,
    guest: &str,
    libraries: &mut BTreeSet<String>,
) -> Result<(), GuestRootError> {
    let bytes = fs::read(host).map_err(io_error("read", host))?;
    write_file(staging, guest, &bytes, 0o755)?;
    for path in program_libraries(host)? {
        if libraries.insert(path.clone()) {
            let bytes = fs::read(&path).map_err(io_error("read", &path))?;
            write_file(staging, &path, &bytes, 0o755)?;
        }
    }
    Ok(())
}

/// The libraries `ldd` names for the program at `host`, and its loader, by
/// their paths on the host (where a root or initramfs must have them too);
/// none for a static program.
///
/// # Errors
/// `ldd` failed, or names a library the host lacks.
pub fn program_libraries(host: &Path) -> Result<Vec<String>, GuestRootError> {
    let output = Command::new("ldd")
        .arg(host)
        .output()
        .map_err(|e| GuestRootError::Ldd {
            program: host.to_owned(),
            output: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // glibc's ldd exits 1 with this on stdout (or stderr, by version)
        // for a static program.
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stdout.contains(LDD_STATIC) || stderr.contains(LDD_STATIC) {
            return Ok(Vec::new());
        }
        return Err(GuestRootError::Ldd {
            program: host.to_owned(),
            output: stderr.into_owned(),
        });
    }
    let paths = ldd_paths(&stdout).map_err(|library| GuestRootError::MissingLibrary {
        program: host.to_owned(),
        library: library.to_owned(),
    })?;
    Ok(paths.into_iter().map(str::to_owned).collect())
}

/// What glibc's `ldd` says about a static program.
const LDD_STATIC: &str = "not a dynamic executable";

/// The files `ldd` output names: `libc.so.6 => /lib/…/libc.so.6 (0x…)` or
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vdso has no file.
///
/// # Errors
/// The name of the first library `ldd` could not find
/// (`libseccomp.so.2 => not found`).
fn ldd_paths(output: &str) -> Result<Vec<&str>, &str> {
    let mut paths = Vec::new();
    for line in output.lines() {
        let path = match line.split_once("=>") {
            Some((name, right)) => {
                if right.trim() == "not found" {
                    return Err(name.trim());
                }
                right.split_whitespace().next()
            }
            None => line.split_whitespace().next(),
        };
        paths.extend(path.filter(|p| p.starts_with('/')));
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_helpers_read_probe_lines_fields_and_kernel_times() {
        let console = "[    2.996271] PROBE ctl web: state:   running\r\n\
                       [   10.500000] unit web: ready pid=42 at=10.5\n\
                       setup: no timestamp here\n";
        assert_eq!(probe_lines(console, "ctl web"), ["state: running"]);
        assert!(probe_lines(console, "ctl db").is_empty());
        assert_eq!(kernel_time(console), Some(2.996_271));
        assert_eq!(kernel_time("setup: no timestamp here"), None);
        assert_eq!(kernel_times(console, "unit web"), [10.5]);
        let line = line_after(console, "unit web: ready");
        assert_eq!(field(line, "pid"), Some("42"));
        assert_eq!(field(line, "at"), Some("10.5"));
        assert_eq!(field(line, "p"), None);
        assert_eq!(
            position(console, "unit web"),
            console.find("unit web").unwrap()
        );
        expect_line(&probe_lines(console, "ctl web"), "state:", console);
    }

    #[test]
    fn ldd_paths_skip_the_vdso() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibext2fs.so.2 => /lib/x86_64-linux-gnu/libext2fs.so.2 (0x00007f)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            ldd_paths(output),
            Ok(vec![
                "/lib/x86_64-linux-gnu/libext2fs.so.2",
                "/lib64/ld-linux-x86-64.so.2"
            ])
        );
    }

    #[test]
    fn ldd_paths_give_libraries_and_loader() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                      \tlibsystemd-shared-252.so => /usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so (0x1)\n\
                      \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\
                      \t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        assert_eq!(
            ldd_paths(output),
            Ok(vec![
                "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2",
            ])
        );
    }

    #[test]
    fn ldd_paths_name_a_missing_library() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibseccomp.so.2 => not found\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n";
        assert_eq!(ldd_paths(output), Err("libseccomp.so.2"));
    }

    #[test]
    fn a_static_program_is_staged_without_libraries() {
        let staging = tempfile::tempdir().unwrap();
        let busybox = Path::new(crate::guest::DEFAULT_BUSYBOX);
        let mut libraries = BTreeSet::new();
        stage_program(staging.path(), busybox, "/bin/busybox", &mut libraries).unwrap();
        assert!(libraries.is_empty(), "{libraries:?}");
        assert!(staging.path().join("bin/busybox").is_file());
    }

    #[test]
    fn guest_paths_stay_under_the_staging_folder() {
        let staging = Path::new("/s");
        for (name, guest, ok) in [
            ("absolute", "/etc/liftoff/units/a.toml", true),
            ("relative", "etc/a", false),
            ("dot-dot", "/etc/../../a", false),
            ("root itself", "/", true),
        ] {
            assert_eq!(under(staging, guest).is_ok(), ok, "{name}");
        }
        assert_eq!(
            under(staging, "/sbin/init").unwrap(),
            Path::new("/s/sbin/init")
        );
    }

    #[test]
    fn the_command_line_ends_with_the_no_delay_flag() {
        let guest = Guest {
            dir: tempfile::tempdir().unwrap(),
            image: BuiltImage {
                path: PathBuf::from("/d.img"),
                size: 0,
                root_fs: crate::RootFs::Erofs,
                root_hash: String::new(),
                data_partuuid: mounts::devices::gpt::Guid([0; 16]),
                verity_partuuid: mounts::devices::gpt::Guid([0; 16]),
                data_label: "DATA",
                partitions: Vec::new(),
                cmdline: "roothash=ab".to_owned(),
            },
            initrd: PathBuf::from("/i"),
            vmlinuz: PathBuf::from("/k"),
            init: "/sbin/probe".to_owned(),
            run_timeout: DEFAULT_RUN_TIMEOUT,
            kernel_flags: String::new(),
        };
        assert_eq!(
            guest.config("roothash=ab x=1", "boot").append,
            "console=ttyS0 panic=-1 printk.devkmsg=on init=/sbin/probe roothash=ab x=1 liftoff.failure_delay=0"
        );
    }
}
