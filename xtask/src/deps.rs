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

/// Everything the demo and the QEMU tests run on the host. `apt-get` and
/// `dpkg-deb` (to fetch Debian's kernel) are part of every Debian system.
pub const QEMU: &[Need] = &[
    Need {
        program: "qemu-system-x86_64",
        package: "qemu-system-x86",
    },
    Need {
        program: "dpkg-deb",
        package: "dpkg",
    },
    Need {
        program: "apt-get",
        package: "apt",
    },
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

/// Installs the packages for whatever in `needs` is missing, when root;
/// otherwise fails with the line to run.
pub fn ensure(needs: &[Need]) -> Result<(), XtaskError> {
    let mut missing: Vec<&str> = needs
        .iter()
        .filter(|n| !on_path(n.program))
        .map(|n| n.package)
        .collect();
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
        .filter(|n| !on_path(n.program))
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
        for need in QEMU {
            assert!(!need.program.is_empty() && !need.package.is_empty());
        }
    }
}
