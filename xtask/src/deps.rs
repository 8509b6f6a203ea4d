//! Installs what the demo and the tests need from Debian, or says exactly
//! how to (README: "each installs what is missing itself").

use crate::XtaskError;
use crate::cmd::{on_path, run};

/// A program the tasks run, and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    /// The program looked up on PATH.
    pub program: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

const fn need(program: &'static str, package: &'static str) -> Need {
    Need { program, package }
}

/// Everything the demo and the QEMU tests run on the host. `apt-get` and
/// `dpkg-deb` (to fetch Debian's kernel) are part of every Debian system.
pub const QEMU: &[Need] = &[
    need("qemu-system-x86_64", "qemu-system-x86"),
    need("dpkg-deb", "dpkg"),
    need("apt-get", "apt"),
];

/// What building the workspace needs beyond Rust: the `devicemapper` crate
/// generates its ioctl bindings with bindgen (libclang) from libdevmapper's
/// headers, found through pkg-config; `containerd-client` (host-ctr's
/// containerd API) runs `protoc` over containerd's vendored protos in its
/// build script.
pub const BUILD: &[Need] = &[
    need("pkg-config", "pkg-config"),
    need("/usr/include/libdevmapper.h", "libdevmapper-dev"),
    need("/usr/lib/llvm-14/lib/libclang.so", "libclang-dev"),
    need("protoc", "protobuf-compiler"),
];

/// What the tests run besides QEMU: cryptsetup's veritysetup as the
/// reference the verity format is compared with, busybox as the guest-side
/// test driver, kmod's depmod and modinfo (and xz, zstd) as the references
/// for module dependencies and compressed modules, the partitioning and
/// mkfs tools the device-probing code is checked against, and secilc to
/// compile the SELinux policy (`selinux/policy`) for the guests.
pub const TESTS: &[Need] = &[
    need("veritysetup", "cryptsetup-bin"),
    need("busybox", "busybox-static"),
    need("depmod", "kmod"),
    need("xz", "xz-utils"),
    need("zstd", "zstd"),
    need("sfdisk", "fdisk"),
    need("sgdisk", "gdisk"),
    need("mkfs.vfat", "dosfstools"),
    need("mkfs.erofs", "erofs-utils"),
    need("mkfs.ext4", "e2fsprogs"),
    need("secilc", "secilc"),
];

/// What the benchmarks need besides the tests: GNU time for peak RSS.
pub const BENCH: &[Need] = &[need("/usr/bin/time", "time")];

/// What `bench boot`'s systemd system needs: Debian's systemd (PID 1,
/// journald, `systemd-veritysetup` and its generator) with
/// libcryptsetup, which `systemd-veritysetup` loads at run time, and
/// dracut to build its initramfs (`dracut-core`: the tool and its
/// modules without the kernel hooks of `dracut`, which would replace
/// initramfs-tools on the host), with `dmsetup` (its `dm` module).
pub const BENCH_BOOT: &[Need] = &[
    need("/lib/systemd/systemd", "systemd"),
    need("/lib/systemd/systemd-veritysetup", "systemd"),
    need(
        "/lib/x86_64-linux-gnu/libcryptsetup.so.12",
        "libcryptsetup12",
    ),
    need("dracut", "dracut-core"),
    need("dmsetup", "dmsetup"),
];

/// Whether xtask runs as root and may call apt-get itself.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The exact command a person runs to install `packages`.
pub fn install_line(packages: &[&str]) -> String {
    format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    )
}

/// Whether `need` is present: a program on PATH, or, for an absolute
/// path (a header or a library), that file.
fn present(need: &Need) -> bool {
    if need.program.starts_with('/') {
        std::path::Path::new(need.program).exists()
    } else {
        on_path(need.program)
    }
}

/// Installs the packages for whatever in `groups` is missing, when root;
/// otherwise fails with the line to run.
pub fn ensure(groups: &[&[Need]]) -> Result<(), XtaskError> {
    let needs: Vec<&Need> = groups.iter().flat_map(|g| g.iter()).collect();
    let mut missing: Vec<&str> = needs
        .iter()
        .filter(|n| !present(n))
        .map(|n| n.package)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(XtaskError::NeedPackages {
            line: install_line(&missing),
        });
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    apt_get_update()?;
    run(std::process::Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing))?;
    let still: Vec<&str> = needs
        .iter()
        .filter(|n| !present(n))
        .map(|n| n.program)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(XtaskError::StillMissing {
            programs: still.join(", "),
        })
    }
}

/// `apt-get update`, quietly.
pub fn apt_get_update() -> Result<(), XtaskError> {
    run(std::process::Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["update", "-q"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_line_is_copy_pasteable() {
        assert_eq!(
            install_line(&["qemu-system-x86", "dpkg"]),
            "apt-get update && apt-get install -y --no-install-recommends qemu-system-x86 dpkg"
        );
    }

    #[test]
    fn every_need_names_a_package() {
        for need in [QEMU, BUILD, TESTS, BENCH, BENCH_BOOT].concat() {
            assert!(!need.program.is_empty() && !need.package.is_empty());
        }
    }
}
