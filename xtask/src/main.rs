//! Developer tasks for liftoff (`cargo xtask …`, an alias in .cargo/config.toml).
//!
//! * `demo`: build liftoff and an initramfs, boot Debian's kernel in QEMU,
//!   show the console, press ctrl-alt-delete, and print a timing report;
//! * `test`: every check CI runs: fmt, clippy, docs, then every test
//!   (host, veritysetup comparisons, QEMU scenarios) against a freshly
//!   built static binary;
//! * `bench verity`: liftoff's hash-tree build against veritysetup's;
//! * `bench units`: the service manager's memory, restart latency and
//!   time to start 1000 units, in QEMU.
//!
//! Both install what they need first ([`deps`]).

mod bench;
mod bench_boot;
mod bench_systemd;
mod bench_units;
mod build;
mod cmd;
mod demo;
mod deps;
mod test;

use std::process::ExitStatus;

use thiserror::Error;

/// Why a task stopped.
#[derive(Debug, Error)]
pub enum XtaskError {
    /// Packages are missing and xtask is not root.
    #[error("missing Debian packages; as root, run:\n    {line}")]
    NeedPackages {
        /// The command to run.
        line: String,
    },
    /// apt-get ran but the programs are still not on PATH.
    #[error("still missing after apt-get install: {programs}")]
    StillMissing {
        /// Programs not found.
        programs: String,
    },
    /// A command could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A command exited unsuccessfully.
    #[error("`{command}` failed ({status})")]
    Failed {
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// Fetching the kernel failed.
    #[error("cannot fetch Debian's kernel")]
    Kernel(#[source] qemu_tests::KernelError),
    /// A binary built for the guests (liftoff, host-ctr) is not static.
    #[error("the {binary} build is not static, so the guests cannot run it")]
    NotStatic {
        /// The binary's name.
        binary: String,
        /// What the ELF check found.
        #[source]
        source: qemu_tests::ElfError,
    },
    /// Writing the initramfs failed.
    #[error("cannot build the initramfs")]
    Initramfs(#[source] qemu_tests::InitramfsError),
    /// QEMU failed.
    #[error("the QEMU guest failed")]
    Qemu(#[source] qemu_tests::QemuError),
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A guest (verified root, disk image, initramfs) could not be built.
    #[error("cannot build the guest")]
    Guest(#[source] qemu_tests::guest_root::GuestRootError),
    /// A busybox initramfs (a benchmark's peer) could not be built.
    #[error("cannot build the busybox initramfs")]
    BusyboxGuest(#[source] qemu_tests::GuestError),
    /// A benchmark failed or missed its target.
    #[error("benchmark: {0}")]
    Bench(String),
    /// The command line was not understood.
    #[error(
        "{0}\n\nusage: cargo xtask <demo | test | bench [verity | units | boot] [--runs N] [--mib N]>"
    )]
    Usage(String),
}

fn main() {
    if let Err(e) = run() {
        let mut message = format!("xtask: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), XtaskError> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    if !rest.is_empty() && task.as_deref() != Some("bench") {
        return Err(XtaskError::Usage(format!(
            "unexpected arguments: {}",
            rest.join(" ")
        )));
    }
    match task.as_deref() {
        Some("demo") => demo::run(),
        Some("test") => test::run(),
        Some("bench") => bench::run_selected(bench::parse(&rest)?),
        Some(other) => Err(XtaskError::Usage(format!("unknown task {other:?}"))),
        None => Err(XtaskError::Usage("missing task".into())),
    }
}

/// Fetches the kernel, running `apt-get update` first when the package
/// lists are missing and xtask may (root).
pub fn kernel() -> Result<qemu_tests::Kernel, XtaskError> {
    let cache = qemu_tests::cache_dir();
    match qemu_tests::fetch_kernel(&cache) {
        Err(e) if e.is_package_lists_missing() && deps::is_root() => {
            deps::apt_get_update()?;
            qemu_tests::fetch_kernel(&cache).map_err(XtaskError::Kernel)
        }
        other => other.map_err(XtaskError::Kernel),
    }
}
