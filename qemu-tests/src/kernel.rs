//! Fetch Debian's stock kernel and its modules into a cache.
//!
//! 1. Resolve the metapackage `linux-image-amd64` to the versioned image
//!    package it depends on (`linux-image-6.1.0-NN-amd64` on bookworm; the
//!    signed build, whose `vmlinuz` boots the same as the unsigned one under
//!    QEMU's direct `-kernel` boot) with `apt-cache depends`. That reads the
//!    local package lists only, so a cached kernel is reused offline.
//! 2. Download the `.deb` with `apt-get download` into
//!    `<cache>/kernel/debs/` (through a temporary folder, so a partial
//!    download never looks complete).
//! 3. Unpack it with `dpkg-deb -x` into a temporary folder next to
//!    `<cache>/kernel/<version>/` and rename it into place, so an interrupted
//!    run never leaves a half-unpacked kernel behind.
//!
//! Neither step needs root. When the package lists are missing (a fresh
//! machine before `apt-get update`), the error is
//! [`KernelError::PackageListsMissing`]; a caller running as root may call
//! [`apt_get_update`] and try again.
//!
//! Layout of the unpacked package (bookworm, 6.1): `boot/vmlinuz-<version>`,
//! `boot/config-<version>`, `boot/System.map-<version>` and
//! `lib/modules/<version>/kernel/**.ko`. The modules are not compressed
//! (`CONFIG_MODULE_COMPRESS_NONE=y`) and there is no `modules.dep`: the
//! package's postinst runs depmod, which `dpkg-deb -x` does not.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The metapackage that always depends on the current kernel image.
pub const METAPACKAGE: &str = "linux-image-amd64";

/// A kernel unpacked in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The kernel release, as `uname -r` prints it, e.g. `6.1.0-28-amd64`.
    pub version: String,
    /// The bootable image, `<root>/boot/vmlinuz-<version>`.
    pub vmlinuz: PathBuf,
    /// The kernel's build configuration, `<root>/boot/config-<version>`.
    pub config: PathBuf,
    /// The module tree, `<root>/lib/modules/<version>`.
    pub modules_dir: PathBuf,
}

/// What failed while fetching the kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// apt has no package lists, so it knows no kernel package.
    #[error(
        "apt knows no package {package}: the package lists are missing or stale, run `apt-get update` (as root) and try again"
    )]
    PackageListsMissing {
        /// The package apt could not find.
        package: String,
    },
    /// An external command could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        #[source]
        source: io::Error,
    },
    /// An external command exited with a failure.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The metapackage depends on no versioned kernel image package.
    #[error("`{command}` names no linux-image-<version>-amd64 package in: {depends}")]
    NoImagePackage {
        /// The command whose output was searched.
        command: String,
        /// The dependency text that was searched.
        depends: String,
    },
    /// `apt-get download` succeeded but left no `.deb` for the package.
    #[error("`apt-get download {package}` left no {package}_*.deb in {}", dir.display())]
    DebMissing {
        /// The package.
        package: String,
        /// The download folder.
        dir: PathBuf,
    },
    /// The unpacked package lacks a file a kernel package must have.
    #[error("the unpacked kernel package lacks {}", path.display())]
    IncompletePackage {
        /// The missing file or folder.
        path: PathBuf,
    },
    /// A filesystem operation on the cache failed.
    #[error("cannot {action} {}", path.display())]
    Cache {
        /// What was being done, e.g. "create" or "rename into place".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl KernelError {
    /// True when the fix is `apt-get update`: callers running as root may
    /// run [`apt_get_update`] and retry.
    pub fn is_package_lists_missing(&self) -> bool {
        matches!(self, Self::PackageListsMissing { .. })
    }
}

/// Fetch (or reuse) the kernel `linux-image-amd64` currently points at,
/// cached under `cache_root/kernel/`.
pub fn fetch_kernel(cache_root: &Path) -> Result<Kernel, KernelError> {
    // 1. Which image package? Read from the local package lists only.
    let depends = run_apt_cache_depends(METAPACKAGE)?;
    let package = pick_image_package(&depends).ok_or_else(|| KernelError::NoImagePackage {
        command: format!("apt-cache depends {METAPACKAGE}"),
        depends: depends.trim().to_owned(),
    })?;
    let version = version_of(&package).to_owned();

    let kernel_dir = cache_root.join("kernel");
    let root = kernel_dir.join(&version);
    // 2. Reuse: the folder only ever appears by an atomic rename of a
    //    complete unpack, so its presence means it is whole.
    if root.is_dir() {
        return kernel_in(&root, &version);
    }

    let debs = kernel_dir.join("debs");
    create_dir_all(&debs)?;
    let deb = download(&package, &debs)?;

    // 3. Unpack next to the final place, then rename it in.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".unpack-{version}-"))
        .tempdir_in(&kernel_dir)
        .map_err(|source| KernelError::Cache {
            action: "create a temporary folder in",
            path: kernel_dir.clone(),
            source,
        })?;
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(tmp.path()))?;
    kernel_in(tmp.path(), &version)?;
    match fs::rename(tmp.path(), &root) {
        Ok(()) => {}
        // Another process unpacked the same kernel first: use theirs, ours
        // is removed when `tmp` drops.
        Err(_) if root.is_dir() => {}
        Err(source) => {
            return Err(KernelError::Cache {
                action: "rename into place",
                path: root,
                source,
            });
        }
    }
    kernel_in(&root, &version)
}

/// Run `apt-get update`. Needs root; meant for xtask after
/// [`KernelError::is_package_lists_missing`].
pub fn apt_get_update() -> Result<(), KernelError> {
    run(Command::new("apt-get").arg("update")).map(drop)
}

/// Pick the versioned kernel image package out of dependency text, either
/// `dpkg-deb -f <deb> Depends` (`linux-image-6.1.0-28-amd64 (= 6.1.119-1)`)
/// or `apt-cache depends` output (`  Depends: linux-image-6.1.0-28-amd64`).
///
/// The name must look like `linux-image-<digit>…-amd64`: that skips the
/// metapackage itself and the `-unsigned` and `-dbg` builds. Of several
/// matches the highest (by Debian's numbering, compared numerically per
/// field) wins.
pub fn pick_image_package(depends: &str) -> Option<String> {
    depends
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '|' | '(' | ')' | '<' | '>'))
        .filter(|token| is_image_package(token))
        .max_by(|a, b| version_key(version_of(a)).cmp(&version_key(version_of(b))))
        .map(str::to_owned)
}

fn is_image_package(name: &str) -> bool {
    name.strip_prefix("linux-image-")
        .and_then(|rest| rest.strip_suffix("-amd64"))
        .is_some_and(|middle| middle.starts_with(|c: char| c.is_ascii_digit()))
}

/// `linux-image-6.1.0-28-amd64` → `6.1.0-28-amd64`.
fn version_of(package: &str) -> &str {
    package.strip_prefix("linux-image-").unwrap_or(package)
}

/// Numeric fields of a kernel release, for ordering `6.1.0-9` below `6.1.0-28`.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-'])
        .filter_map(|field| field.parse().ok())
        .collect()
}

fn kernel_in(root: &Path, version: &str) -> Result<Kernel, KernelError> {
    let kernel = Kernel {
        version: version.to_owned(),
        vmlinuz: root.join("boot").join(format!("vmlinuz-{version}")),
        config: root.join("boot").join(format!("config-{version}")),
        modules_dir: root.join("lib").join("modules").join(version),
    };
    for path in [&kernel.vmlinuz, &kernel.config, &kernel.modules_dir] {
        if !path.exists() {
            return Err(KernelError::IncompletePackage { path: path.clone() });
        }
    }
    Ok(kernel)
}

fn run_apt_cache_depends(package: &str) -> Result<String, KernelError> {
    let mut command = Command::new("apt-cache");
    command.arg("depends").arg(package);
    let output = spawn(&mut command)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // apt-cache prints `E: No packages found` (and exits 0 or 100 depending
    // on the version) when the lists lack the package.
    if stderr.contains("No packages found") || stderr.contains("Unable to locate package") {
        return Err(KernelError::PackageListsMissing {
            package: package.to_owned(),
        });
    }
    check(&command, &output)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Download `package`'s `.deb` into `debs` (reusing one already there) and
/// return its path. [`crate::containerd`] fetches its packages with it too.
pub(crate) fn download(package: &str, debs: &Path) -> Result<PathBuf, KernelError> {
    if let Some(deb) = find_deb(package, debs)? {
        return Ok(deb);
    }
    // apt-get download writes into the current folder; give it a fresh one so
    // an interrupted download is never mistaken for a complete `.deb`.
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(debs)
        .map_err(|source| KernelError::Cache {
            action: "create a temporary folder in",
            path: debs.to_path_buf(),
            source,
        })?;
    let mut command = Command::new("apt-get");
    command.arg("download").arg(package).current_dir(tmp.path());
    let output = spawn(&mut command)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // No lists: "Unable to locate package"; stale lists naming a version
        // the mirror no longer has: "404  Not Found". apt-get update fixes both.
        if stderr.contains("Unable to locate package")
            || stderr.contains("has no installation candidate")
            || (stderr.contains("404") && stderr.contains("Not Found"))
        {
            return Err(KernelError::PackageListsMissing {
                package: package.to_owned(),
            });
        }
    }
    check(&command, &output)?;
    let fetched = find_deb(package, tmp.path())?.ok_or_else(|| KernelError::DebMissing {
        package: package.to_owned(),
        dir: tmp.path().to_path_buf(),
    })?;
    let Some(name) = fetched.file_name() else {
        return Err(KernelError::DebMissing {
            package: package.to_owned(),
            dir: tmp.path().to_path_buf(),
        });
    };
    let deb = debs.join(name);
    fs::rename(&fetched, &deb).map_err(|source| KernelError::Cache {
        action: "rename into place",
        path: deb.clone(),
        source,
    })?;
    Ok(deb)
}

/// The `<package>_*.deb` in `dir`, if any (the highest name if several).
fn find_deb(package: &str, dir: &Path) -> Result<Option<PathBuf>, KernelError> {
    let read_dir = fs::read_dir(dir).map_err(|source| KernelError::Cache {
        action: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    let prefix = format!("{package}_");
    let mut debs: Vec<PathBuf> = read_dir
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".deb"))
        })
        .collect();
    debs.sort();
    Ok(debs.pop())
}

fn create_dir_all(path: &Path) -> Result<(), KernelError> {
    fs::create_dir_all(path).map_err(|source| KernelError::Cache {
        action: "create",
        path: path.to_path_buf(),
        source,
    })
}

fn run(command: &mut Command) -> Result<Output, KernelError> {
    let output = spawn(command)?;
    check(command, &output)?;
    Ok(output)
}

fn spawn(command: &mut Command) -> Result<Output, KernelError> {
    command.output().map_err(|source| KernelError::Spawn {
        command: describe(command),
        source,
    })
}

fn check(command: &Command, output: &Output) -> Result<(), KernelError> {
    if output.status.success() {
        return Ok(());
    }
    Err(KernelError::CommandFailed {
        command: describe(command),
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// The command line as a person would type it, for error messages.
fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_image_package() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "dpkg-deb -f Depends, bookworm",
                "linux-image-6.1.0-28-amd64 (= 6.1.119-1)",
                Some("linux-image-6.1.0-28-amd64"),
            ),
            (
                "apt-cache depends output names the metapackage first",
                "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n",
                Some("linux-image-6.1.0-56-amd64"),
            ),
            (
                "unsigned and dbg builds are skipped",
                "linux-image-6.1.0-28-amd64-unsigned (= 6.1.119-1), linux-image-6.1.0-28-amd64-dbg",
                None,
            ),
            (
                "alternatives keep the signed image",
                "linux-image-6.1.0-28-amd64-unsigned | linux-image-6.1.0-28-amd64",
                Some("linux-image-6.1.0-28-amd64"),
            ),
            (
                "the highest ABI wins numerically",
                "linux-image-6.1.0-9-amd64, linux-image-6.1.0-28-amd64",
                Some("linux-image-6.1.0-28-amd64"),
            ),
            (
                "other dependencies are ignored",
                "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool",
                None,
            ),
            (
                "trixie metapackage",
                "linux-image-6.12.48+deb13-amd64 (= 6.12.48-1)",
                Some("linux-image-6.12.48+deb13-amd64"),
            ),
            ("empty", "", None),
        ];
        for (name, depends, expected) in cases {
            assert_eq!(
                pick_image_package(depends).as_deref(),
                *expected,
                "case: {name}"
            );
        }
    }

    #[test]
    fn version_is_the_package_name_without_prefix() {
        assert_eq!(version_of("linux-image-6.1.0-28-amd64"), "6.1.0-28-amd64");
    }

    #[test]
    fn kernel_in_reports_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = kernel_in(dir.path(), "6.1.0-1-amd64").unwrap_err();
        match err {
            KernelError::IncompletePackage { path } => {
                assert!(
                    path.ends_with("boot/vmlinuz-6.1.0-1-amd64"),
                    "{}",
                    path.display()
                );
            }
            other => panic!("unexpected error: {other}"),
        }
    }

    #[test]
    fn kernel_in_accepts_a_complete_tree() {
        let dir = tempfile::tempdir().unwrap();
        let version = "6.1.0-1-amd64";
        fs::create_dir_all(dir.path().join("boot")).unwrap();
        fs::create_dir_all(dir.path().join("lib/modules").join(version)).unwrap();
        fs::write(dir.path().join("boot/vmlinuz-6.1.0-1-amd64"), b"").unwrap();
        fs::write(dir.path().join("boot/config-6.1.0-1-amd64"), b"").unwrap();
        let kernel = kernel_in(dir.path(), version).unwrap();
        assert_eq!(
            kernel.modules_dir,
            dir.path().join("lib/modules/6.1.0-1-amd64")
        );
    }

    #[test]
    fn package_lists_missing_says_what_to_run() {
        let err = KernelError::PackageListsMissing {
            package: METAPACKAGE.to_owned(),
        };
        assert!(err.is_package_lists_missing());
        assert!(err.to_string().contains("apt-get update"), "{err}");
    }
}
