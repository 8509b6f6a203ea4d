//! A busybox guest: an initramfs whose `/init` is a shell script, with the
//! kernel modules it needs and any static binaries under test.
//!
//! liftoff as PID 1 cannot run programs yet, so scenarios that drive a
//! liftoff subcommand inside a guest (`liftoff verity open`, …) boot
//! Debian's `busybox-static` instead and run a script:
//!
//! 1. [`BusyboxGuest::modules`] names modules (`virtio_blk`, `dm-verity`);
//!    [`resolve_modules`] finds them under the kernel's module tree and adds
//!    their dependencies, read from each module's own `.modinfo`
//!    `depends=` (the package ships no `modules.dep`);
//! 2. those modules are copied into a staging tree on the host and the
//!    host's `depmod -b <staging> <version>` (Debian `kmod`) writes their
//!    `modules.dep`, so busybox's `modprobe` in the guest loads them with
//!    their dependencies, in order;
//! 3. `/init` is a script run by `/bin/busybox sh`: it installs the applet
//!    links, mounts `/proc`, `/sys` and `/dev` (devtmpfs), loads the
//!    modules, runs the scenario's script in a subshell, prints
//!    `GUEST-EXIT <status>` and powers off (`poweroff -f`, so QEMU exits).
//!
//! What it leaves out: networking, udev/mdev (devtmpfs makes every node the
//! scenarios use) and module parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::elf::{ElfError, ensure_static};
use crate::initramfs::{Initramfs, InitramfsError};
use crate::kernel::Kernel;

/// Debian's `busybox-static`.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";
/// Where busybox goes in the guest; the applet links go beside it.
pub const GUEST_BUSYBOX: &str = "/bin/busybox";
/// The host's depmod (Debian `kmod`).
pub const DEPMOD: &str = "depmod";
/// The line the prologue prints when the scenario's script ends, followed
/// by its exit status.
pub const EXIT_MARKER: &str = "GUEST-EXIT ";

/// What failed while building a busybox guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// A module name matches no `.ko` file in the kernel's tree.
    #[error("no module {name} under {}", modules_dir.display())]
    ModuleNotFound {
        /// The module name, as asked for or as a `depends=` named it.
        name: String,
        /// The kernel's module tree.
        modules_dir: PathBuf,
    },
    /// A module's `.modinfo` cannot be read.
    #[error("cannot read the .modinfo of {}", path.display())]
    ModInfo {
        /// The `.ko` file.
        path: PathBuf,
        #[source]
        source: ModInfoError,
    },
    /// A file operation on the host failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// depmod could not run or failed.
    #[error("`{command}` failed: {stderr}")]
    Depmod {
        /// The command line.
        command: String,
        /// Its stderr, or why it could not start.
        stderr: String,
    },
    /// busybox or a binary under test is not static.
    #[error("cannot put {} in the guest", path.display())]
    NotStatic {
        /// The host file.
        path: PathBuf,
        #[source]
        source: ElfError,
    },
    /// Writing the archive failed.
    #[error("cannot write the guest's initramfs")]
    Initramfs {
        #[source]
        source: InitramfsError,
    },
}

/// Why a `.modinfo` section could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModInfoError {
    /// Reading the file failed.
    #[error("cannot read the file")]
    Read(#[source] io::Error),
    /// The file is not ELF.
    #[error("not an elf file")]
    Elf(#[source] goblin::error::Error),
    /// No `.modinfo` section.
    #[error("no .modinfo section")]
    Missing,
}

/// A module file in the kernel's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Its name with `-` as `_`, as the kernel names modules.
    pub name: String,
    /// Its path relative to `lib/modules/<version>/`, e.g.
    /// `kernel/drivers/md/dm-verity.ko`.
    pub relative: PathBuf,
}

/// A builder for a busybox guest's initramfs.
#[derive(Debug, Clone)]
pub struct BusyboxGuest {
    kernel: Kernel,
    busybox: PathBuf,
    modules: Vec<String>,
    binaries: Vec<(String, PathBuf)>,
    files: Vec<(String, u32, Vec<u8>)>,
    script: String,
}

impl BusyboxGuest {
    /// A guest for `kernel` with [`DEFAULT_BUSYBOX`], no modules and an
    /// empty script.
    pub fn new(kernel: &Kernel) -> Self {
        Self {
            kernel: kernel.clone(),
            busybox: PathBuf::from(DEFAULT_BUSYBOX),
            modules: Vec::new(),
            binaries: Vec::new(),
            files: Vec::new(),
            script: String::new(),
        }
    }

    /// Use another static busybox.
    pub fn busybox(mut self, path: impl Into<PathBuf>) -> Self {
        self.busybox = path.into();
        self
    }

    /// Load these modules (and their dependencies) before the script, in
    /// the order given.
    pub fn modules<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.modules
            .extend(names.into_iter().map(|n| n.as_ref().to_owned()));
        self
    }

    /// Put a static binary at `guest_path` (mode 0755).
    pub fn binary(mut self, guest_path: impl Into<String>, host: impl Into<PathBuf>) -> Self {
        self.binaries.push((guest_path.into(), host.into()));
        self
    }

    /// Add a file.
    pub fn file(
        mut self,
        guest_path: impl Into<String>,
        mode: u32,
        bytes: impl Into<Vec<u8>>,
    ) -> Self {
        self.files.push((guest_path.into(), mode, bytes.into()));
        self
    }

    /// The scenario's script (busybox `sh`), run after the prologue.
    pub fn script(mut self, script: impl Into<String>) -> Self {
        self.script = script.into();
        self
    }

    /// The whole `/init` script: prologue, the scenario's script in a
    /// subshell, the exit marker and `poweroff -f`.
    pub fn init_script(&self) -> String {
        let mut init = String::from(concat!(
            "#!/bin/busybox sh\n",
            "# Generated by qemu-tests/src/guest.rs.\n",
            "/bin/busybox --install -s /bin\n",
            "export PATH=/bin\n",
            "mount -t proc proc /proc\n",
            "mount -t sysfs sysfs /sys\n",
            "mount -t devtmpfs devtmpfs /dev\n",
        ));
        if !self.modules.is_empty() {
            init.push_str(&format!(
                "modprobe -a {} || echo 'GUEST-ERROR modprobe failed'\n",
                self.modules.join(" ")
            ));
        }
        init.push_str("(\n");
        init.push_str(&self.script);
        if !self.script.ends_with('\n') {
            init.push('\n');
        }
        init.push_str(")\n");
        init.push_str(&format!("echo \"{EXIT_MARKER}$?\"\n"));
        // -f: reboot(RB_POWER_OFF) at once, no init to signal.
        init.push_str("poweroff -f\n");
        init
    }

    /// Build the initramfs into `out`, staging modules under `work_dir`.
    pub fn write_to(&self, work_dir: &Path, out: &Path) -> Result<(), GuestError> {
        self.initramfs(work_dir)?
            .write_to(out)
            .map_err(|source| GuestError::Initramfs { source })
    }

    /// The initramfs, with modules staged (and depmod run) under
    /// `work_dir`; callers may add entries before writing it.
    pub fn initramfs(&self, work_dir: &Path) -> Result<Initramfs, GuestError> {
        let not_static = |path: &Path| {
            let path = path.to_path_buf();
            move |source| GuestError::NotStatic { path, source }
        };
        ensure_static(&self.busybox).map_err(not_static(&self.busybox))?;
        let mut initramfs = Initramfs::new()
            .file_from(GUEST_BUSYBOX, 0o755, &self.busybox)
            .file("/init", 0o755, self.init_script());
        for (guest, host) in &self.binaries {
            ensure_static(host).map_err(not_static(host))?;
            initramfs = initramfs.file_from(guest.clone(), 0o755, host);
        }
        for (guest, mode, bytes) in &self.files {
            initramfs = initramfs.file(guest.clone(), *mode, bytes.clone());
        }
        if self.modules.is_empty() {
            return Ok(initramfs);
        }

        // 1. The modules and their dependencies.
        let modules = resolve_modules(&self.kernel.modules_dir, &self.modules)?;
        // 2. A staging tree with just those, and depmod's modules.dep.
        let version = &self.kernel.version;
        let staging = work_dir.join("modules-root");
        let staged = staging.join("lib/modules").join(version);
        let _ = fs::remove_dir_all(&staging);
        for module in &modules {
            let to = staged.join(&module.relative);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(io_error("create", parent))?;
            }
            let from = self.kernel.modules_dir.join(&module.relative);
            fs::copy(&from, &to).map_err(io_error("copy", &from))?;
        }
        depmod(&staging, version)?;
        // 3. Everything depmod wrote (modules.dep, its binary twin, …) and
        //    the modules, at the same paths in the guest.
        let guest_dir = format!("/lib/modules/{version}");
        for entry in fs::read_dir(&staged).map_err(io_error("read", &staged))? {
            let entry = entry.map_err(io_error("read", &staged))?;
            let path = entry.path();
            if path.is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                initramfs = initramfs.file_from(format!("{guest_dir}/{name}"), 0o644, path);
            }
        }
        for module in &modules {
            let relative = module.relative.to_string_lossy();
            initramfs = initramfs.file_from(
                format!("{guest_dir}/{relative}"),
                0o644,
                staged.join(&module.relative),
            );
        }
        Ok(initramfs)
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> GuestError {
    let path = path.to_path_buf();
    move |source| GuestError::Io {
        action,
        path,
        source,
    }
}

/// The kernel's name for a module: `dm-verity` and `dm_verity` are the same.
pub fn module_name(name: &str) -> String {
    name.trim_end_matches(".ko").replace('-', "_")
}

/// Find `names` and everything they depend on under `modules_dir`
/// (`lib/modules/<version>`), dependencies first.
pub fn resolve_modules(modules_dir: &Path, names: &[String]) -> Result<Vec<Module>, GuestError> {
    let index = index_modules(modules_dir)?;
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    for name in names {
        visit(
            &index,
            modules_dir,
            &module_name(name),
            &mut done,
            &mut order,
        )?;
    }
    Ok(order)
}

/// Depth-first, dependencies before dependents. Module dependencies form a
/// DAG (the kernel refuses cycles), so `done` is marked before recursing
/// only to stop on a malformed one.
fn visit(
    index: &BTreeMap<String, PathBuf>,
    modules_dir: &Path,
    name: &str,
    done: &mut BTreeSet<String>,
    order: &mut Vec<Module>,
) -> Result<(), GuestError> {
    if !done.insert(name.to_owned()) {
        return Ok(());
    }
    let relative = index
        .get(name)
        .ok_or_else(|| GuestError::ModuleNotFound {
            name: name.to_owned(),
            modules_dir: modules_dir.to_path_buf(),
        })?
        .clone();
    let path = modules_dir.join(&relative);
    let info = read_modinfo(&path).map_err(|source| GuestError::ModInfo {
        path: path.clone(),
        source,
    })?;
    for dep in depends(&info) {
        visit(index, modules_dir, &module_name(&dep), done, order)?;
    }
    order.push(Module {
        name: name.to_owned(),
        relative,
    });
    Ok(())
}

/// Every `.ko` under `modules_dir/kernel`, by kernel name.
fn index_modules(modules_dir: &Path) -> Result<BTreeMap<String, PathBuf>, GuestError> {
    let mut index = BTreeMap::new();
    let mut stack = vec![PathBuf::from("kernel")];
    while let Some(relative) = stack.pop() {
        let dir = modules_dir.join(&relative);
        for entry in fs::read_dir(&dir).map_err(io_error("read", &dir))? {
            let entry = entry.map_err(io_error("read", &dir))?;
            let file_name = entry.file_name();
            let child = relative.join(&file_name);
            let file_type = entry.file_type().map_err(io_error("stat", &entry.path()))?;
            if file_type.is_dir() {
                stack.push(child);
            } else if let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".ko")) {
                index.insert(module_name(stem), child);
            }
        }
    }
    Ok(index)
}

/// The `.modinfo` section of a module: NUL-separated `key=value` strings.
pub fn read_modinfo(path: &Path) -> Result<Vec<u8>, ModInfoError> {
    let bytes = fs::read(path).map_err(ModInfoError::Read)?;
    let elf = goblin::elf::Elf::parse(&bytes).map_err(ModInfoError::Elf)?;
    let section = elf
        .section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".modinfo"))
        .ok_or(ModInfoError::Missing)?;
    let start = usize::try_from(section.sh_offset).map_err(|_| ModInfoError::Missing)?;
    let size = usize::try_from(section.sh_size).map_err(|_| ModInfoError::Missing)?;
    bytes
        .get(start..start.saturating_add(size))
        .map(<[u8]>::to_vec)
        .ok_or(ModInfoError::Missing)
}

/// The module names in a `.modinfo`'s `depends=` (empty when none).
pub fn depends(modinfo: &[u8]) -> Vec<String> {
    modinfo
        .split(|&b| b == 0)
        .filter_map(|field| field.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `depmod -b <root> <version>`: writes `modules.dep` and friends into
/// `<root>/lib/modules/<version>/`.
fn depmod(root: &Path, version: &str) -> Result<(), GuestError> {
    let command = format!("{DEPMOD} -b {} {version}", root.display());
    let output = Command::new(DEPMOD)
        .arg("-b")
        .arg(root)
        .arg(version)
        .output()
        .map_err(|err| GuestError::Depmod {
            command: command.clone(),
            stderr: format!("cannot run it ({err}); install kmod"),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(GuestError::Depmod {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_reads_the_modinfo_field() {
        let cases: &[(&str, &[u8], &[&str])] = &[
            ("none", b"license=GPL\0depends=\0vermagic=x\0", &[]),
            (
                "several",
                b"license=GPL\0depends=reed_solomon,dm-mod,dm-bufio\0",
                &["reed_solomon", "dm-mod", "dm-bufio"],
            ),
            ("absent", b"license=GPL\0", &[]),
        ];
        for (name, modinfo, expected) in cases {
            assert_eq!(depends(modinfo), *expected, "{name}");
        }
    }

    #[test]
    fn module_names_use_underscores() {
        assert_eq!(module_name("dm-verity"), "dm_verity");
        assert_eq!(module_name("dm-verity.ko"), "dm_verity");
        assert_eq!(module_name("virtio_blk"), "virtio_blk");
    }

    #[test]
    fn init_script_runs_the_scenario_then_powers_off() {
        let kernel = Kernel {
            version: "6.1.0-0-amd64".into(),
            vmlinuz: "/k".into(),
            config: "/c".into(),
            modules_dir: "/m".into(),
        };
        let script = BusyboxGuest::new(&kernel)
            .modules(["virtio_blk", "dm-verity"])
            .script("echo hi")
            .init_script();
        assert!(script.starts_with("#!/bin/busybox sh\n"), "{script}");
        let modprobe = script.find("modprobe -a virtio_blk dm-verity").unwrap();
        let body = script.find("(\necho hi\n)\n").unwrap();
        let poweroff = script.find("poweroff -f").unwrap();
        assert!(modprobe < body && body < poweroff, "{script}");
        assert!(script.contains("echo \"GUEST-EXIT $?\""), "{script}");
    }

    #[test]
    fn missing_modules_are_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("kernel/drivers")).unwrap();
        let err = resolve_modules(dir.path(), &["nope".to_owned()]).unwrap_err();
        assert!(
            matches!(&err, GuestError::ModuleNotFound { name, .. } if name == "nope"),
            "{err:?}"
        );
    }

    #[test]
    fn non_elf_modules_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ko");
        fs::write(&path, b"not elf").unwrap();
        assert!(matches!(read_modinfo(&path), Err(ModInfoError::Elf(_))));
    }
}
