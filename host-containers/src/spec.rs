//! The OCI runtime spec of a host container, built in code (pure).
//!
//! [`runtime_spec`] turns a host container's name, mode and image process
//! into the `config.json` that runc runs, in one of two modes:
//!
//! * **ordinary**: its own PID, IPC, UTS, mount and cgroup namespaces,
//!   Docker's default capabilities and the syscalls Docker's seccomp
//!   profile withholds denied, runc's masked and read-only `/proc` paths,
//!   only the usual character devices, `noNewPrivileges`;
//! * **superpowered**: the host's PID namespace, all capabilities, no
//!   seccomp, no masked paths, every device, and the host's root
//!   read-only at [`HOST_ROOT_IN_CONTAINER`].
//!
//! Both share the host's network namespace (host containers are how
//! operators reach the host) and see their persistent storage at
//! [`STORAGE_IN_CONTAINER`].
//!
//! The spec is built from empty, field by field: `oci_spec`'s `Default`
//! impls (which its builders fall back to for every field left unset) carry
//! youki's example values (hostname `youki`, args `sh`, a network namespace,
//! `CAP_KILL` in the ambient set …). Every field with a non-empty default is
//! therefore set here, or cleared, on purpose; a test pins the JSON keys.
//!
//! Left out: user namespaces, resource limits other than `RLIMIT_NOFILE`,
//! AppArmor, seccomp argument filters (Docker's profile also filters
//! `clone` and `personality` flags), and resolving a user name through the
//! image's `/etc/passwd`.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Arch, Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompBuilder, LinuxSyscallBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::archive::ImageProcess;

/// Where the host container's persistent storage (/local/host-containers/NAME on the host) appears inside it.
pub const STORAGE_IN_CONTAINER: &str = "/.liftoff/host-containers/current";

/// Where a superpowered container sees the host's root, read-only.
pub const HOST_ROOT_IN_CONTAINER: &str = "/.liftoff/rootfs";

/// The SELinux label of an ordinary host container's processes.
pub const CONTAINER_LABEL: &str = "system_u:system_r:container_t";

/// The SELinux label of a superpowered host container's processes.
pub const SUPER_CONTAINER_LABEL: &str = "system_u:system_r:super_container_t";

/// The runtime spec version written. Every field used exists in 1.0.2
/// (`errnoRet` is the newest); containerd 1.6 itself writes "1.0.2-dev",
/// and its runc accepts any 1.0.x.
const OCI_VERSION: &str = "1.0.2";

/// `PATH` when the image's environment has none (Docker's default).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `EPERM`, what a denied syscall returns.
const EPERM: u32 = 1;

/// Open files an ordinary container's processes may have (Docker's
/// default soft and hard limit).
const NOFILE_LIMIT: u64 = 1024;

/// The capabilities of an ordinary container: Docker's default set.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability `oci_spec` knows, through `CAP_CHECKPOINT_RESTORE`
/// (Linux 5.9, the last one as of Linux 6.x): a superpowered container's
/// set. `Capability` has no iterator, hence the list.
pub const ALL_CAPABILITIES: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The syscalls an ordinary container may not make (they fail with
/// `EPERM`): those Docker's default seccomp profile withholds from a
/// container without extra capabilities. They load or change the kernel
/// (modules, kexec, BPF, reboot), the clock, accounting and swap, mounts
/// and namespaces, keyrings, and other processes' memory (ptrace,
/// process_vm_*), or are obsolete. Names unknown on an architecture
/// (`vm86` on x86-64) are skipped by runc there.
pub const DENIED_SYSCALLS: [&str; 50] = [
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fanotify_init",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fspick",
    "name_to_handle_at",
    "open_by_handle_at",
    "nfsservctl",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// `/proc` and `/sys` paths hidden from an ordinary container (runc's
/// defaults): they leak host information or reach hardware.
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// `/proc` paths read-only in an ordinary container (runc's defaults):
/// writing them changes the host's kernel.
pub const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The character devices an ordinary container may use, as (major,
/// minor); `None` is any minor: null, zero, full, tty, random, urandom,
/// ptmx and the ptys.
const ALLOWED_CHAR_DEVICES: [(i64, Option<i64>); 8] = [
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (5, Some(0)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(2)),
    (136, None),
];

/// What [`runtime_spec`] needs to know about a host container.
#[derive(Debug, Clone, Copy)]
pub struct SpecOptions<'a> {
    /// The container's name: its id, hostname and cgroup.
    pub name: &'a str,
    /// Superpowered (privileged) or ordinary.
    pub superpowered: bool,
    /// The host path of the persistent storage.
    pub storage: &'a Path,
    /// What the image says to run.
    pub process: &'a ImageProcess,
    /// Whether to set process.selinuxLabel (the host has SELinux enabled).
    pub selinux: bool,
}

/// Why a host container's runtime spec cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The name cannot be a hostname and a cgroup directory.
    #[error(
        "{name:?} is not a host container name: use 1 to 64 letters, digits, '-', '_', '.', '@', \
         not starting with '.'"
    )]
    Name {
        /// The name.
        name: String,
    },
    /// Nothing to run.
    #[error("image config has no entrypoint or cmd")]
    NoCommand,
    /// A `User` that is not `uid[:gid]`: no passwd lookup is done.
    #[error(
        "image config user {user:?} is not numeric: use uid or uid:gid \
         (user names are not looked up)"
    )]
    User {
        /// The image config's `User`.
        user: String,
    },
    /// A relative `WorkingDir`; runc needs an absolute `cwd`.
    #[error("image config working dir {working_dir:?} is not absolute")]
    WorkingDir {
        /// The image config's `WorkingDir`.
        working_dir: String,
    },
    /// An `oci_spec` builder refused a value.
    #[error("cannot build the runtime spec's {what}")]
    Build {
        /// The part being built (`process`, `mount /proc` …).
        what: String,
        /// The builder's error.
        #[source]
        source: OciSpecError,
    },
}

/// Wraps a builder's error with the part being built.
fn build<T>(what: &str, result: Result<T, OciSpecError>) -> Result<T, SpecError> {
    result.map_err(|source| SpecError::Build {
        what: what.to_owned(),
        source,
    })
}

/// The OCI runtime spec of the host container `opts` describes.
///
/// # Errors
///
/// A bad name, an image process with no command, a non-numeric user or a
/// relative working directory, as a [`SpecError`] naming the value.
pub fn runtime_spec(opts: &SpecOptions) -> Result<Spec, SpecError> {
    if !units::file::is_valid_name(opts.name) {
        return Err(SpecError::Name {
            name: opts.name.to_owned(),
        });
    }
    let process = process(opts)?;
    let root = build(
        "root",
        RootBuilder::default()
            .path("rootfs")
            .readonly(false)
            .build(),
    )?;
    let mut spec = build(
        "spec",
        SpecBuilder::default()
            .version(OCI_VERSION)
            .root(root)
            .mounts(mounts(opts)?)
            .process(process)
            .hostname(opts.name)
            .linux(linux(opts)?)
            .build(),
    )?;
    // Unset builder fields come from `Spec::default()`, whose only other
    // non-empty field is an empty annotation map.
    spec.set_annotations(None);
    spec.set_domainname(None);
    spec.set_hooks(None);
    Ok(spec)
}

/// The `process` object: what the image runs, as root unless the image
/// names a numeric user, with the mode's privileges.
fn process(opts: &SpecOptions) -> Result<oci_spec::runtime::Process, SpecError> {
    let image = opts.process;
    let args: Vec<String> = image.entrypoint.iter().chain(&image.cmd).cloned().collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let mut env = image.env.clone();
    if !env.iter().any(|var| var.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_owned());
    }
    let cwd = image.working_dir.as_deref().unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(SpecError::WorkingDir {
            working_dir: cwd.to_owned(),
        });
    }
    let (uid, gid) = parse_user(image.user.as_deref())?;
    let user = build(
        "process.user",
        UserBuilder::default().uid(uid).gid(gid).build(),
    )?;

    let mut builder = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities(opts.superpowered)?)
        .no_new_privileges(!opts.superpowered);
    if opts.selinux {
        let label = if opts.superpowered {
            SUPER_CONTAINER_LABEL
        } else {
            CONTAINER_LABEL
        };
        builder = builder.selinux_label(label);
    }
    if !opts.superpowered {
        let nofile = build(
            "process.rlimits",
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(NOFILE_LIMIT)
                .hard(NOFILE_LIMIT)
                .build(),
        )?;
        builder = builder.rlimits(vec![nofile]);
    }
    let mut process = build("process", builder.build())?;
    if opts.superpowered {
        // `Process::default()` has RLIMIT_NOFILE 1024: a superpowered
        // container keeps containerd's limits instead.
        process.set_rlimits(None);
    }
    Ok(process)
}

/// The uid and gid of the image's `User`: root if unset, else numeric
/// `uid` (gid 0) or `uid:gid`.
fn parse_user(user: Option<&str>) -> Result<(u32, u32), SpecError> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Ok((0, 0));
    };
    let bad = || SpecError::User {
        user: user.to_owned(),
    };
    let (uid, gid) = match user.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (user, None),
    };
    // `u32::from_str` takes a leading '+'; a user id does not.
    let number = |s: &str| {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<u32>().ok()
        } else {
            None
        }
    };
    let uid = number(uid).ok_or_else(bad)?;
    let gid = match gid {
        Some(gid) => number(gid).ok_or_else(bad)?,
        None => 0,
    };
    Ok((uid, gid))
}

/// The capability sets: Docker's default 14 for an ordinary container,
/// all of them for a superpowered one. Nothing is inherited across exec
/// without file capabilities (inheritable and ambient are empty).
fn capabilities(superpowered: bool) -> Result<LinuxCapabilities, SpecError> {
    let set: HashSet<Capability> = if superpowered {
        ALL_CAPABILITIES.into_iter().collect()
    } else {
        DEFAULT_CAPABILITIES.into_iter().collect()
    };
    build(
        "process.capabilities",
        LinuxCapabilitiesBuilder::default()
            .bounding(set.clone())
            .effective(set.clone())
            .permitted(set)
            .inheritable(HashSet::new())
            .ambient(HashSet::new())
            .build(),
    )
}

/// One mount entry.
fn mount(
    destination: &str,
    typ: &str,
    source: &Path,
    options: &[&str],
) -> Result<Mount, SpecError> {
    build(
        &format!("mount {destination}"),
        MountBuilder::default()
            .destination(destination)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
            .build(),
    )
}

/// The mounts, in the order runc makes them (a mount point's parent
/// first).
fn mounts(opts: &SpecOptions) -> Result<Vec<Mount>, SpecError> {
    // Ordinary containers may not change the host's kernel settings in
    // sysfs or its cgroups.
    let ro_or_rw = if opts.superpowered { "rw" } else { "ro" };
    let mut mounts = vec![
        mount(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev",
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            Path::new("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            Path::new("shm"),
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            Path::new("mqueue"),
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            Path::new("sysfs"),
            &["nosuid", "noexec", "nodev", ro_or_rw],
        )?,
        // In an ordinary container's cgroup namespace this is its own
        // cgroup; a superpowered container sees the whole hierarchy.
        mount(
            "/sys/fs/cgroup",
            "cgroup2",
            Path::new("cgroup2"),
            &["nosuid", "noexec", "nodev", "relatime", ro_or_rw],
        )?,
        mount(
            STORAGE_IN_CONTAINER,
            "bind",
            opts.storage,
            &["rbind", "rw", "nosuid", "nodev", "private"],
        )?,
    ];
    if opts.superpowered {
        // The host's root, for inspection and `chroot` by operators.
        // rslave: mounts the host makes later appear here too, and
        // nothing mounted here leaks back. runc makes `ro` a remount of
        // the top mount only: mounts below / keep their own flags.
        mounts.push(mount(
            HOST_ROOT_IN_CONTAINER,
            "bind",
            Path::new("/"),
            &["rbind", "ro", "rslave"],
        )?);
    }
    Ok(mounts)
}

/// One namespace the container gets its own of.
fn namespace(typ: LinuxNamespaceType) -> Result<LinuxNamespace, SpecError> {
    build(
        "linux.namespaces",
        LinuxNamespaceBuilder::default().typ(typ).build(),
    )
}

/// One device cgroup rule, `rwm` access.
fn device_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut builder = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access("rwm");
    if let Some(major) = major {
        builder = builder.major(major);
    }
    if let Some(minor) = minor {
        builder = builder.minor(minor);
    }
    build("linux.resources.devices", builder.build())
}

/// The `linux` object: namespaces, cgroup, devices, masked paths and
/// seccomp.
fn linux(opts: &SpecOptions) -> Result<oci_spec::runtime::Linux, SpecError> {
    // No network namespace in either mode: host containers use the host's
    // network. A superpowered one also shares the host's PID namespace (it
    // sees and can signal host processes) and cgroup namespace.
    let namespace_types: &[LinuxNamespaceType] = if opts.superpowered {
        &[
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
        ]
    } else {
        &[
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup,
        ]
    };
    let namespaces = namespace_types
        .iter()
        .map(|typ| namespace(*typ))
        .collect::<Result<Vec<_>, _>>()?;

    let devices = if opts.superpowered {
        vec![device_rule(true, LinuxDeviceType::A, None, None)?]
    } else {
        let mut rules = vec![device_rule(false, LinuxDeviceType::A, None, None)?];
        for (major, minor) in ALLOWED_CHAR_DEVICES {
            rules.push(device_rule(true, LinuxDeviceType::C, Some(major), minor)?);
        }
        rules
    };
    let resources = build(
        "linux.resources",
        LinuxResourcesBuilder::default().devices(devices).build(),
    )?;

    // A cgroup at the root of the hierarchy, not under containerd's:
    // containerd's own cgroup holds processes (containerd's), and cgroup
    // v2 forbids a cgroup with processes from having children with
    // controllers enabled ("no internal processes"), so the container's
    // cgroup could get no memory, pids or cpu controller there.
    let cgroups_path = format!("/host-containers/{}", opts.name);

    let mut builder = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(cgroups_path);
    if !opts.superpowered {
        builder = builder
            .masked_paths(to_strings(&MASKED_PATHS))
            .readonly_paths(to_strings(&READONLY_PATHS))
            .seccomp(seccomp()?);
    }
    let mut linux = build("linux", builder.build())?;
    if opts.superpowered {
        // `Linux::default()` has runc's masked and read-only paths.
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    }
    Ok(linux)
}

/// Owned copies of `items`.
fn to_strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// An ordinary container's seccomp filter: everything allowed but
/// [`DENIED_SYSCALLS`], which fail with `EPERM`, on x86-64 and its 32-bit
/// ABIs (x86 and x32, so the deny list cannot be bypassed through them).
fn seccomp() -> Result<LinuxSeccomp, SpecError> {
    let denied = build(
        "linux.seccomp.syscalls",
        LinuxSyscallBuilder::default()
            .names(to_strings(&DENIED_SYSCALLS))
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(EPERM)
            .build(),
    )?;
    build(
        "linux.seccomp",
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .architectures(vec![
                Arch::ScmpArchX86_64,
                Arch::ScmpArchX86,
                Arch::ScmpArchX32,
            ])
            .syscalls(vec![denied])
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use oci_spec::runtime::Process;

    use super::*;

    const STORAGE: &str = "/local/host-containers/admin";

    fn image() -> ImageProcess {
        ImageProcess {
            entrypoint: vec!["/usr/sbin/start_admin".to_owned()],
            cmd: vec!["--verbose".to_owned(), "now".to_owned()],
            env: vec!["LANG=C.UTF-8".to_owned()],
            working_dir: None,
            user: None,
        }
    }

    fn spec_of(image: &ImageProcess, superpowered: bool, selinux: bool) -> Result<Spec, SpecError> {
        runtime_spec(&SpecOptions {
            name: "admin",
            superpowered,
            storage: Path::new(STORAGE),
            process: image,
            selinux,
        })
    }

    fn ordinary() -> Spec {
        spec_of(&image(), false, true).unwrap()
    }

    fn superpowered() -> Spec {
        spec_of(&image(), true, true).unwrap()
    }

    fn process_of(spec: &Spec) -> &Process {
        spec.process().as_ref().unwrap()
    }

    fn linux_of(spec: &Spec) -> &oci_spec::runtime::Linux {
        spec.linux().as_ref().unwrap()
    }

    /// The cgroup device rules, each as `ALLOW:RULE` (`true:c 1:3 rwm`).
    fn device_rules(spec: &Spec) -> Vec<String> {
        linux_of(spec)
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap()
            .iter()
            .map(|d| format!("{}:{d}", d.allow()))
            .collect()
    }

    fn namespaces(spec: &Spec) -> Vec<LinuxNamespaceType> {
        linux_of(spec)
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|ns| {
                assert_eq!(ns.path(), &None, "a namespace joined instead of created");
                ns.typ()
            })
            .collect()
    }

    fn find_mount<'a>(spec: &'a Spec, destination: &str) -> Option<&'a Mount> {
        spec.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new(destination))
    }

    fn options(mount: &Mount) -> Vec<&str> {
        mount
            .options()
            .as_ref()
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect()
    }

    fn cap_names(set: &Option<HashSet<Capability>>) -> BTreeSet<String> {
        set.as_ref()
            .unwrap()
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn ordinary_namespaces_are_pid_ipc_uts_mount_cgroup() {
        use LinuxNamespaceType::*;
        assert_eq!(namespaces(&ordinary()), vec![Pid, Ipc, Uts, Mount, Cgroup]);
    }

    #[test]
    fn superpowered_shares_the_host_pid_and_cgroup_namespaces() {
        use LinuxNamespaceType::*;
        let ns = namespaces(&superpowered());
        assert_eq!(ns, vec![Ipc, Uts, Mount]);
        assert!(!ns.contains(&Pid));
        assert!(!ns.contains(&Network));
    }

    #[test]
    fn no_mode_has_a_network_namespace() {
        for spec in [ordinary(), superpowered()] {
            assert!(!namespaces(&spec).contains(&LinuxNamespaceType::Network));
        }
    }

    #[test]
    fn the_host_root_is_mounted_read_only_only_when_superpowered() {
        assert!(find_mount(&ordinary(), HOST_ROOT_IN_CONTAINER).is_none());
        let spec = superpowered();
        let root = find_mount(&spec, HOST_ROOT_IN_CONTAINER).unwrap();
        assert_eq!(root.typ().as_deref(), Some("bind"));
        assert_eq!(root.source().as_deref(), Some(Path::new("/")));
        assert_eq!(options(root), ["rbind", "ro", "rslave"]);
    }

    #[test]
    fn the_storage_is_bound_in_both_modes() {
        for spec in [ordinary(), superpowered()] {
            let storage = find_mount(&spec, STORAGE_IN_CONTAINER).unwrap();
            assert_eq!(storage.typ().as_deref(), Some("bind"));
            assert_eq!(storage.source().as_deref(), Some(Path::new(STORAGE)));
            assert_eq!(
                options(storage),
                ["rbind", "rw", "nosuid", "nodev", "private"]
            );
        }
    }

    #[test]
    fn mounts_are_in_order_with_sys_and_cgroup_read_only_when_ordinary() {
        let destinations = |spec: &Spec| -> Vec<PathBuf> {
            spec.mounts()
                .as_ref()
                .unwrap()
                .iter()
                .map(|m| m.destination().clone())
                .collect()
        };
        let common = [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            STORAGE_IN_CONTAINER,
        ];
        let ordinary = ordinary();
        assert_eq!(
            destinations(&ordinary),
            common.iter().map(PathBuf::from).collect::<Vec<_>>()
        );
        let superpowered = superpowered();
        let mut expected: Vec<PathBuf> = common.iter().map(PathBuf::from).collect();
        expected.push(PathBuf::from(HOST_ROOT_IN_CONTAINER));
        assert_eq!(destinations(&superpowered), expected);

        let cgroup = find_mount(&ordinary, "/sys/fs/cgroup").unwrap();
        assert_eq!(cgroup.typ().as_deref(), Some("cgroup2"));
        assert_eq!(cgroup.source().as_deref(), Some(Path::new("cgroup2")));
        assert!(options(cgroup).contains(&"ro"));
        assert!(options(find_mount(&ordinary, "/sys").unwrap()).contains(&"ro"));
        assert!(options(find_mount(&superpowered, "/sys/fs/cgroup").unwrap()).contains(&"rw"));
        assert!(options(find_mount(&superpowered, "/sys").unwrap()).contains(&"rw"));
        let pts = find_mount(&ordinary, "/dev/pts").unwrap();
        assert_eq!(
            options(pts),
            [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ]
        );
    }

    #[test]
    fn ordinary_capabilities_are_dockers_default_fourteen() {
        let spec = ordinary();
        let caps = process_of(&spec).capabilities().as_ref().unwrap();
        let expected: BTreeSet<String> = [
            "CAP_AUDIT_WRITE",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_MKNOD",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
            "CAP_SETFCAP",
            "CAP_SETGID",
            "CAP_SETPCAP",
            "CAP_SETUID",
            "CAP_SYS_CHROOT",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(cap_names(caps.bounding()), expected);
        assert_eq!(cap_names(caps.effective()), expected);
        assert_eq!(cap_names(caps.permitted()), expected);
        assert!(cap_names(caps.inheritable()).is_empty());
        assert!(cap_names(caps.ambient()).is_empty());
    }

    #[test]
    fn superpowered_capabilities_are_all_41() {
        let spec = superpowered();
        let caps = process_of(&spec).capabilities().as_ref().unwrap();
        let all = cap_names(caps.bounding());
        assert_eq!(all.len(), 41);
        for cap in [
            "CAP_SYS_ADMIN",
            "CAP_SYS_MODULE",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
        ] {
            assert!(all.contains(cap), "{cap} missing");
        }
        assert_eq!(cap_names(caps.effective()), all);
        assert_eq!(cap_names(caps.permitted()), all);
        assert!(cap_names(caps.inheritable()).is_empty());
        assert!(cap_names(caps.ambient()).is_empty());
    }

    #[test]
    fn seccomp_denies_dockers_list_only_when_ordinary() {
        let spec = ordinary();
        let seccomp = linux_of(&spec).seccomp().as_ref().unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            seccomp.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let rules = seccomp.syscalls().as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(rules[0].errno_ret(), Some(1));
        let names = rules[0].names();
        assert_eq!(names.len(), 50);
        for denied in [
            "mount",
            "reboot",
            "ptrace",
            "kexec_load",
            "unshare",
            "setns",
            "bpf",
        ] {
            assert!(names.iter().any(|n| n == denied), "{denied} allowed");
        }
        for allowed in ["read", "clone", "execve", "chroot"] {
            assert!(!names.iter().any(|n| n == allowed), "{allowed} denied");
        }
        assert!(linux_of(&superpowered()).seccomp().is_none());
    }

    #[test]
    fn the_selinux_label_is_set_iff_selinux_is_enabled() {
        let label = |superpowered, selinux| {
            let spec = spec_of(&image(), superpowered, selinux).unwrap();
            process_of(&spec).selinux_label().clone()
        };
        assert_eq!(label(false, true).as_deref(), Some(CONTAINER_LABEL));
        assert_eq!(label(true, true).as_deref(), Some(SUPER_CONTAINER_LABEL));
        assert_eq!(label(false, false), None);
        assert_eq!(label(true, false), None);
    }

    #[test]
    fn masked_and_readonly_paths_only_when_ordinary() {
        let spec = ordinary();
        let linux = linux_of(&spec);
        let masked = linux.masked_paths().as_ref().unwrap();
        assert_eq!(masked.len(), 10);
        assert!(masked.iter().any(|p| p == "/proc/kcore"));
        assert!(masked.iter().any(|p| p == "/sys/firmware"));
        let readonly = linux.readonly_paths().as_ref().unwrap();
        assert!(readonly.iter().any(|p| p == "/proc/sysrq-trigger"));
        assert_eq!(readonly.len(), 6);

        let spec = superpowered();
        assert_eq!(linux_of(&spec).masked_paths(), &None);
        assert_eq!(linux_of(&spec).readonly_paths(), &None);
    }

    #[test]
    fn devices_are_restricted_only_when_ordinary() {
        let spec = ordinary();
        let rules = device_rules(&spec);
        assert_eq!(
            rules,
            [
                "false:a *:* rwm",
                "true:c 1:3 rwm",
                "true:c 1:5 rwm",
                "true:c 1:7 rwm",
                "true:c 5:0 rwm",
                "true:c 1:8 rwm",
                "true:c 1:9 rwm",
                "true:c 5:2 rwm",
                "true:c 136:* rwm",
            ]
        );
        let spec = superpowered();
        let rules = device_rules(&spec);
        assert_eq!(rules, ["true:a *:* rwm"]);
    }

    #[test]
    fn privileges_differ_by_mode() {
        let spec = ordinary();
        let process = process_of(&spec);
        assert_eq!(process.no_new_privileges(), Some(true));
        let rlimits = process.rlimits().as_ref().unwrap();
        assert_eq!(rlimits.len(), 1);
        assert_eq!(rlimits[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((rlimits[0].soft(), rlimits[0].hard()), (1024, 1024));

        let spec = superpowered();
        let process = process_of(&spec);
        assert_eq!(process.no_new_privileges(), Some(false));
        assert_eq!(process.rlimits(), &None);
    }

    #[test]
    fn the_common_fields() {
        for spec in [ordinary(), superpowered()] {
            assert_eq!(spec.hostname().as_deref(), Some("admin"));
            assert_eq!(spec.annotations(), &None);
            let root = spec.root().as_ref().unwrap();
            assert_eq!(root.path(), Path::new("rootfs"));
            assert_eq!(root.readonly(), Some(false));
            assert_eq!(
                linux_of(&spec).cgroups_path().as_deref(),
                Some(Path::new("/host-containers/admin"))
            );
            let process = process_of(&spec);
            assert_eq!(process.terminal(), Some(false));
            assert_eq!(process.cwd(), Path::new("/"));
            assert_eq!((process.user().uid(), process.user().gid()), (0, 0));
        }
    }

    #[test]
    fn args_are_entrypoint_then_cmd_and_env_gets_a_path() {
        let spec = ordinary();
        let process = process_of(&spec);
        assert_eq!(
            process.args().as_deref(),
            Some(&["/usr/sbin/start_admin", "--verbose", "now"].map(str::to_owned)[..])
        );
        assert_eq!(
            process.env().as_deref(),
            Some(&["LANG=C.UTF-8".to_owned(), DEFAULT_PATH.to_owned()][..])
        );

        // The image's own PATH is kept; cmd alone is enough.
        let mut own = image();
        own.entrypoint.clear();
        own.env = vec!["PATH=/opt/bin".to_owned()];
        own.working_dir = Some("/home/admin".to_owned());
        let spec = spec_of(&own, false, false).unwrap();
        let process = process_of(&spec);
        assert_eq!(
            process.args().as_deref(),
            Some(&["--verbose".to_owned(), "now".to_owned()][..])
        );
        assert_eq!(
            process.env().as_deref(),
            Some(&["PATH=/opt/bin".to_owned()][..])
        );
        assert_eq!(process.cwd(), Path::new("/home/admin"));
    }

    #[test]
    fn no_entrypoint_nor_cmd_is_an_error() {
        let mut empty = image();
        empty.entrypoint.clear();
        empty.cmd.clear();
        let err = spec_of(&empty, false, false).unwrap_err();
        assert!(matches!(err, SpecError::NoCommand), "{err:?}");
        assert_eq!(err.to_string(), "image config has no entrypoint or cmd");
    }

    #[test]
    fn a_numeric_user_sets_uid_and_gid() {
        let uid_gid = |user: &str| {
            let mut with_user = image();
            with_user.user = Some(user.to_owned());
            let spec = spec_of(&with_user, false, false).unwrap();
            let user = process_of(&spec).user();
            (user.uid(), user.gid())
        };
        assert_eq!(uid_gid("1000:1000"), (1000, 1000));
        assert_eq!(uid_gid("1000:50"), (1000, 50));
        assert_eq!(uid_gid("42"), (42, 0));
    }

    #[test]
    fn a_user_name_is_an_error_naming_it() {
        for user in [
            "nobody",
            "1000:wheel",
            "+1",
            "1000:",
            ":1000",
            "99999999999",
        ] {
            let mut with_user = image();
            with_user.user = Some(user.to_owned());
            let err = spec_of(&with_user, false, false).unwrap_err();
            assert!(
                matches!(&err, SpecError::User { user: u } if u == user),
                "{user}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{user:?}")), "{err}");
        }
    }

    #[test]
    fn a_relative_working_dir_is_an_error() {
        let mut relative = image();
        relative.working_dir = Some("app".to_owned());
        let err = spec_of(&relative, false, false).unwrap_err();
        assert!(
            matches!(&err, SpecError::WorkingDir { working_dir } if working_dir == "app"),
            "{err:?}"
        );
    }

    #[test]
    fn a_name_that_could_escape_the_cgroup_is_an_error() {
        for name in ["", "../admin", "a/b", ".hidden"] {
            let err = runtime_spec(&SpecOptions {
                name,
                superpowered: false,
                storage: Path::new(STORAGE),
                process: &image(),
                selinux: false,
            })
            .unwrap_err();
            assert!(
                matches!(&err, SpecError::Name { name: n } if n == name),
                "{err:?}"
            );
        }
    }

    #[test]
    fn json_round_trips_with_the_keys_runc_reads() {
        for spec in [ordinary(), superpowered()] {
            let json = serde_json::to_string(&spec).unwrap();
            assert!(
                json.contains(r#""selinuxLabel":"system_u:system_r:"#),
                "{json}"
            );
            assert!(json.contains(r#""noNewPrivileges":"#), "{json}");
            assert!(
                json.contains(r#""cgroupsPath":"/host-containers/admin""#),
                "{json}"
            );
            let back: Spec = serde_json::from_str(&json).unwrap();
            assert_eq!(back, spec);
        }
        let json = serde_json::to_string(&ordinary()).unwrap();
        assert!(json.contains(r#""errnoRet":1"#), "{json}");
        assert!(
            json.contains(r#""defaultAction":"SCMP_ACT_ALLOW""#),
            "{json}"
        );
    }

    /// The keys of a JSON object.
    fn keys(value: &serde_json::Value) -> BTreeSet<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn no_default_is_left_over() {
        // oci_spec's defaults (youki's example spec) must not leak in:
        // exactly these keys, nothing else.
        let json = serde_json::to_value(ordinary()).unwrap();
        assert_eq!(
            keys(&json),
            BTreeSet::from([
                "ociVersion",
                "root",
                "mounts",
                "process",
                "hostname",
                "linux"
            ])
        );
        assert_eq!(json["ociVersion"], "1.0.2");
        assert_eq!(
            keys(&json["process"]),
            BTreeSet::from([
                "terminal",
                "user",
                "args",
                "env",
                "cwd",
                "capabilities",
                "rlimits",
                "noNewPrivileges",
                "selinuxLabel",
            ])
        );
        assert_eq!(
            keys(&json["process"]["user"]),
            BTreeSet::from(["uid", "gid"])
        );
        assert_eq!(
            keys(&json["linux"]),
            BTreeSet::from([
                "resources",
                "cgroupsPath",
                "namespaces",
                "seccomp",
                "maskedPaths",
                "readonlyPaths",
            ])
        );
        assert_eq!(
            keys(&json["linux"]["resources"]),
            BTreeSet::from(["devices"])
        );

        let json = serde_json::to_value(spec_of(&image(), true, false).unwrap()).unwrap();
        assert_eq!(
            keys(&json["process"]),
            BTreeSet::from([
                "terminal",
                "user",
                "args",
                "env",
                "cwd",
                "capabilities",
                "noNewPrivileges",
            ])
        );
        assert_eq!(
            keys(&json["linux"]),
            BTreeSet::from(["resources", "cgroupsPath", "namespaces"])
        );
    }

    #[test]
    fn capability_lists_have_no_duplicates() {
        let all: HashSet<Capability> = ALL_CAPABILITIES.into_iter().collect();
        assert_eq!(all.len(), ALL_CAPABILITIES.len());
        assert!(DEFAULT_CAPABILITIES.iter().all(|c| all.contains(c)));
        let denied: HashSet<&str> = DENIED_SYSCALLS.into_iter().collect();
        assert_eq!(denied.len(), DENIED_SYSCALLS.len());
    }
}
