//! Host tests for [`spawn`](super::spawn): real fork and exec of /bin/sh
//! under a fake cgroup tree (plain files: writing "0" to a plain
//! `cgroup.procs` works). Each test reaps its own children by pid.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::*;
use crate::unit::{Process, SelinuxLabel};

/// A tempdir holding a fake cgroup root and the unit's output file.
struct Fixture {
    dir: TempDir,
    cgroups: Cgroups,
}

impl Fixture {
    /// The fake root offers only `pids`, which `prepare` enabled for
    /// liftoff/, as on a kernel built without the memory controller.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cgroup");
        fs::create_dir_all(root.join("liftoff")).unwrap();
        fs::write(root.join("cgroup.controllers"), "pids\n").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "pids\n").unwrap();
        fs::write(root.join("liftoff/cgroup.subtree_control"), "pids\n").unwrap();
        let cgroups = Cgroups::new(root);
        Fixture { dir, cgroups }
    }

    /// What cgroupfs would have made for `name`.
    fn cgroup(&self, name: &str) -> PathBuf {
        let unit = self.cgroups.unit_dir(name);
        fs::create_dir_all(&unit).unwrap();
        fs::write(unit.join(CGROUP_PROCS), "").unwrap();
        unit
    }

    fn ctx(&self) -> SpawnContext<'_> {
        SpawnContext {
            cgroups: &self.cgroups,
            etc: self.dir.path().join("etc"),
            notify_socket: None,
            watchdog_usec: None,
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out.log")
    }

    /// A unit running `sh -c script`, stdout and stderr to `out.log`.
    fn unit(&self, name: &str, script: &str) -> Unit {
        self.cgroup(name);
        let argv = vec!["/bin/sh".into(), "-c".into(), script.into()];
        let mut unit = Unit::for_test(name, argv);
        unit.process.stdout = Output::File(self.out());
        unit.process.stderr = Output::File(self.out());
        unit
    }

    /// Spawns, waits for exit status 0, and returns what it wrote.
    fn run(&self, unit: &Unit) -> String {
        self.run_with(unit, &self.ctx())
    }

    fn run_with(&self, unit: &Unit, ctx: &SpawnContext<'_>) -> String {
        let spawned = spawn(unit, ctx).unwrap();
        assert_eq!(
            reap(spawned.pid),
            WaitStatus::Exited(Pid::from_raw(spawned.pid), 0)
        );
        fs::read_to_string(self.out()).unwrap()
    }
}

fn reap(pid: i32) -> WaitStatus {
    waitpid(Pid::from_raw(pid), None).unwrap()
}

/// Reads a non-blocking pipe to EOF. EAGAIN before EOF means a writer is
/// still open: another test's child may hold a copy between its fork and
/// exec, so wait a little.
fn read_to_eof(fd: OwnedFd) -> String {
    let mut file = fs::File::from(fd);
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match file.read_to_string(&mut text) {
            Ok(_) => return text,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// `Key:\tvalue` from a /proc status dump.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim()
}

#[test]
fn runs_with_its_environment_working_directory_and_file_output() {
    let fx = Fixture::new();
    let workdir = fx.dir.path().join("work");
    fs::create_dir(&workdir).unwrap();
    fs::write(fx.out(), "earlier run\n").unwrap();
    fs::set_permissions(fx.out(), fs::Permissions::from_mode(0o600)).unwrap();

    let mut unit = fx.unit(
        "env",
        r#"pwd; echo "FOO=$FOO"; echo "PATH=$PATH"; echo "NOTIFY_SOCKET=$NOTIFY_SOCKET"; echo "WATCHDOG_USEC=$WATCHDOG_USEC"; echo "HOME=${HOME-unset}"; echo err >&2; env | wc -l"#,
    );
    unit.process.working_directory = Some(workdir.clone());
    unit.process
        .environment
        .insert("FOO".into(), "bar baz".into());
    let ctx = SpawnContext {
        notify_socket: Some("/run/liftoff/notify".into()),
        watchdog_usec: Some(5_000_000),
        ..fx.ctx()
    };
    let out = fx.run_with(&unit, &ctx);
    // Appended, and the mode of an existing file is left alone.
    let expected = format!(
        "earlier run\n{}\nFOO=bar baz\nPATH={DEFAULT_PATH}\nNOTIFY_SOCKET=/run/liftoff/notify\nWATCHDOG_USEC=5000000\nHOME=unset\nerr\n",
        workdir.display()
    );
    assert!(out.starts_with(&expected), "{out}");
    // PATH, FOO, NOTIFY_SOCKET, WATCHDOG_USEC, plus what sh itself exports
    // (PWD, SHLVL, `_`): nothing of the test process's environment.
    let count: usize = out.lines().last().unwrap().trim().parse().unwrap();
    assert!(count <= 7, "{out}");
    assert_eq!(
        fs::metadata(fx.out()).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The child moved itself into the (fake) cgroup.
    assert_eq!(
        fs::read_to_string(fx.cgroups.unit_dir("env").join(CGROUP_PROCS)).unwrap(),
        "0"
    );
}

#[test]
fn a_new_output_file_is_created_0640() {
    let fx = Fixture::new();
    let unit = fx.unit("create", "echo hi");
    assert_eq!(fx.run(&unit), "hi\n");
    assert_eq!(
        fs::metadata(fx.out()).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[test]
fn exec_failure_names_the_program() {
    let fx = Fixture::new();
    let mut unit = fx.unit("missing", "");
    unit.process.argv = vec!["/nonexistent/bin/daemon".into(), "--flag".into()];
    let err = spawn(&unit, &fx.ctx()).unwrap_err();
    match &err {
        SpawnError::Exec {
            unit,
            program,
            source,
        } => {
            assert_eq!(unit, "missing");
            assert_eq!(program, "/nonexistent/bin/daemon");
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("/nonexistent/bin/daemon"), "{err}");
}

#[test]
fn a_failing_step_is_named() {
    let fx = Fixture::new();
    let mut unit = fx.unit("nodir", "echo never");
    unit.process.working_directory = Some(fx.dir.path().join("does-not-exist"));
    let err = spawn(&unit, &fx.ctx()).unwrap_err();
    match &err {
        SpawnError::Setup { step, source, .. } => {
            assert_eq!(*step, ChildStep::Chdir);
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "unit nodir: cannot change to the working directory before exec"
    );
}

#[test]
fn without_nofile_a_unit_gets_the_usual_soft_limit_and_our_hard_one() {
    let fx = Fixture::new();
    let unit = fx.unit("fds", "ulimit -Sn; ulimit -Hn");
    let out = fx.run(&unit);
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let want_hard = if hard == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        hard.to_string()
    };
    let want_soft = DEFAULT_NOFILE.min(hard).to_string();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [want_soft.as_str(), want_hard.as_str()],
        "{out}"
    );
}

#[test]
fn the_child_starts_clean() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

    let fx = Fixture::new();
    let mut unit = fx.unit(
        "clean",
        "echo $$; cut -d' ' -f6 /proc/$$/stat; grep -E '^(SigBlk|SigIgn|NoNewPrivs):' /proc/self/status; cat /proc/self/oom_score_adj; ulimit -Sn; ulimit -Hn",
    );
    unit.process.no_new_privileges = true;
    unit.process.oom_score_adj = Some(500);
    unit.process.limits.insert(
        "nofile".into(),
        Limit {
            soft: Some(100),
            hard: Some(200),
        },
    );

    // Block a signal in this thread, as PID 1 blocks all of them: the
    // forking thread's mask is what a child inherits.
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&usr1), Some(&mut old)).unwrap();
    let spawned = spawn(&unit, &fx.ctx());
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).unwrap();
    let spawned = spawned.unwrap();
    assert_eq!(
        reap(spawned.pid),
        WaitStatus::Exited(Pid::from_raw(spawned.pid), 0)
    );

    let out = fs::read_to_string(fx.out()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // Session leader: its session id is its pid.
    assert_eq!(lines[0], spawned.pid.to_string(), "{out}");
    assert_eq!(lines[1], spawned.pid.to_string(), "{out}");
    assert_eq!(status_field(&out, "SigBlk"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "SigIgn"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    assert_eq!(&lines[lines.len() - 3..], ["500", "100", "200"], "{out}");
}

#[test]
fn no_new_privs_is_off_unless_asked() {
    let fx = Fixture::new();
    let unit = fx.unit("privs", "grep NoNewPrivs /proc/self/status");
    assert_eq!(status_field(&fx.run(&unit), "NoNewPrivs"), "0");
}

#[test]
fn stray_descriptors_are_not_inherited() {
    let fx = Fixture::new();
    // A descriptor without O_CLOEXEC, as a careless PID 1 might hold.
    let file = fs::File::open("/dev/null").unwrap();
    let stray = nix::unistd::dup(&file).unwrap();
    assert!(
        !fcntl(&stray, FcntlArg::F_GETFD)
            .map(FdFlag::from_bits_truncate)
            .unwrap()
            .contains(FdFlag::FD_CLOEXEC)
    );
    let fd = stray.as_raw_fd();
    let unit = fx.unit(
        "fds",
        &format!(
            "if [ -e /proc/self/fd/{fd} ]; then echo open; else echo closed; fi; ls /proc/self/fd"
        ),
    );
    let out = fx.run(&unit);
    drop(stray);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("closed"), "{out}");
    // ls sees stdin, stdout, stderr and its own directory descriptor.
    let fds: BTreeSet<&str> = lines.collect();
    assert_eq!(fds, BTreeSet::from(["0", "1", "2", "3"]), "{out}");
}

#[test]
fn kmsg_output_comes_through_a_pipe() {
    struct Case {
        name: &'static str,
        stdout: Output,
        stderr: Output,
        pipe_out: Option<&'static str>,
        pipe_err: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "both share one pipe",
            stdout: Output::Kmsg,
            stderr: Output::Kmsg,
            pipe_out: Some("out\nerr\n"),
            pipe_err: None,
        },
        Case {
            name: "stdout only",
            stdout: Output::Kmsg,
            stderr: Output::Null,
            pipe_out: Some("out\n"),
            pipe_err: None,
        },
        Case {
            name: "stderr only",
            stdout: Output::Null,
            stderr: Output::Kmsg,
            pipe_out: None,
            pipe_err: Some("err\n"),
        },
    ];
    for case in cases {
        let fx = Fixture::new();
        let mut unit = fx.unit("kmsg", "echo out; echo err >&2");
        unit.process.stdout = case.stdout;
        unit.process.stderr = case.stderr;
        let spawned = spawn(&unit, &fx.ctx()).unwrap();
        assert_eq!(
            reap(spawned.pid),
            WaitStatus::Exited(Pid::from_raw(spawned.pid), 0),
            "{}",
            case.name
        );
        for fd in spawned.stdout.iter().chain(&spawned.stderr) {
            let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
            assert!(flags.contains(OFlag::O_NONBLOCK), "{}", case.name);
            let fd_flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
            assert!(fd_flags.contains(FdFlag::FD_CLOEXEC), "{}", case.name);
        }
        assert_eq!(
            spawned.stdout.map(read_to_eof).as_deref(),
            case.pipe_out,
            "{}",
            case.name
        );
        assert_eq!(
            spawned.stderr.map(read_to_eof).as_deref(),
            case.pipe_err,
            "{}",
            case.name
        );
    }
}

#[test]
fn bad_settings_fail_before_fork_and_name_what_failed() {
    let fx = Fixture::new();
    let etc = fx.dir.path().join("etc");
    fs::create_dir(&etc).unwrap();
    fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(etc.join("group"), "root:x:0:\n").unwrap();

    type Edit = fn(&mut Process);
    let cases: [(&str, Edit, &str); 13] = [
        ("empty argv", |p| p.argv.clear(), "unit bad has no command"),
        (
            "unknown user",
            |p| p.user = Some("postgres".into()),
            "no user \"postgres\" in passwd",
        ),
        (
            "unknown group",
            |p| p.supplementary_groups = vec!["docker".into()],
            "no group \"docker\" in group",
        ),
        (
            "unknown limit",
            |p| {
                p.limits.insert(
                    "files".into(),
                    Limit {
                        soft: None,
                        hard: None,
                    },
                );
            },
            "unknown resource limit \"files\"",
        ),
        (
            "soft above hard",
            |p| {
                p.limits.insert(
                    "nofile".into(),
                    Limit {
                        soft: Some(10),
                        hard: Some(5),
                    },
                );
            },
            "limit nofile has soft 10 above hard 5",
        ),
        (
            "unknown capability",
            |p| p.capabilities = Some(vec!["CAP_FLY".into()]),
            "unknown capability \"CAP_FLY\"",
        ),
        (
            "ambient outside the list",
            |p| {
                p.capabilities = Some(vec!["CAP_CHOWN".into()]);
                p.ambient_capabilities = vec!["CAP_NET_ADMIN".into()];
            },
            "ambient capability CAP_NET_ADMIN is not in its capabilities",
        ),
        (
            "oom_score_adj out of range",
            |p| p.oom_score_adj = Some(1001),
            "oom_score_adj 1001 is outside",
        ),
        (
            "environment name with '='",
            |p| {
                p.environment.insert("A=B".into(), "x".into());
            },
            "environment variable \"A=B\"",
        ),
        (
            "bad selinux_type",
            |p| p.selinux = Some(SelinuxLabel::Type("web t".into())),
            "\"web t\" is not a valid selinux_type",
        ),
        (
            "bad selinux_context",
            |p| p.selinux = Some(SelinuxLabel::Context("web_t".into())),
            "\"web_t\" is not a valid selinux_context",
        ),
        (
            "memory limit on a kernel without the controller",
            |p| p.cgroup.memory_max = Some(1 << 20),
            "the kernel offers no memory controller",
        ),
        (
            "pids limit with the controller but no pids.max",
            |p| p.cgroup.pids_max = Some(16),
            "pids.max does not exist: the pids controller is not enabled",
        ),
    ];
    for (name, edit, message) in cases {
        let mut unit = fx.unit("bad", "exit 0");
        edit(&mut unit.process);
        let err = spawn(&unit, &fx.ctx()).unwrap_err();
        // The whole chain, as PID 1 logs it.
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            chain.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        assert!(chain.contains("unit bad"), "{name}: {chain}");
        assert!(chain.contains(message), "{name}: {chain}");
    }
}

#[test]
fn a_missing_cgroup_procs_is_named() {
    let fx = Fixture::new();
    let unit = fx.unit("gone", "exit 0");
    fs::remove_file(fx.cgroups.unit_dir("gone").join(CGROUP_PROCS)).unwrap();
    let err = spawn(&unit, &fx.ctx()).unwrap_err();
    assert!(
        matches!(&err, SpawnError::Open { path, .. } if path.ends_with("gone/cgroup.procs")),
        "{err:?}"
    );
}

#[test]
fn signal_tolerates_gone_processes_and_refuses_groups() {
    signal(i32::MAX, libc::SIGTERM).unwrap();
    for pid in [0, -1] {
        let err = signal(pid, libc::SIGKILL).unwrap_err();
        assert!(
            matches!(
                err,
                SpawnError::Signal {
                    source: Errno::EINVAL,
                    ..
                }
            ),
            "{pid}"
        );
    }
}

#[test]
fn kill_unit_follows_the_kill_mode() {
    let fx = Fixture::new();
    let long = fx.unit("long", "exec sleep 30");
    let cases = [
        ("process", KillMode::Process, true),
        ("group through the cgroup", KillMode::Group, true),
        ("group, cgroup gone: the main pid", KillMode::Group, false),
    ];
    for (name, mode, keep_cgroup) in cases {
        let spawned = spawn(&long, &fx.ctx()).unwrap();
        let unit_dir = fx.cgroups.unit_dir("long");
        if keep_cgroup {
            // The fake does not track membership: list the child.
            fs::write(unit_dir.join(CGROUP_PROCS), format!("{}\n", spawned.pid)).unwrap();
        } else {
            fs::remove_dir_all(&unit_dir).unwrap();
        }
        kill_unit(&fx.cgroups, "long", spawned.pid, libc::SIGTERM, mode).unwrap();
        assert_eq!(
            reap(spawned.pid),
            WaitStatus::Signaled(Pid::from_raw(spawned.pid), nix::sys::signal::SIGTERM, false),
            "{name}"
        );
        fx.cgroup("long");
    }
}

/// /etc for the root-only tests.
fn etc_with_nobody(fx: &Fixture) -> PathBuf {
    let etc = fx.dir.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    )
    .unwrap();
    fs::write(
        etc.join("group"),
        "root:x:0:\nnogroup:x:65534:\nkvm:x:36:nobody\n",
    )
    .unwrap();
    etc
}

fn cap_mask(caps: &[Capability]) -> String {
    format!("{:016x}", caps.iter().map(|cap| cap.bitmask()).sum::<u64>())
}

#[test]
#[ignore = "needs root (setuid, capabilities, chown): run by cargo xtask test as root"]
fn a_user_with_ambient_capabilities_keeps_exactly_those() {
    let fx = Fixture::new();
    etc_with_nobody(&fx);
    let mut unit = fx.unit("caps", "cat /proc/self/status; echo HOME=$HOME USER=$USER");
    unit.process.user = Some("nobody".into());
    unit.process.capabilities = Some(vec!["CAP_NET_BIND_SERVICE".into(), "CAP_NET_RAW".into()]);
    unit.process.ambient_capabilities = vec!["CAP_NET_BIND_SERVICE".into()];
    // The output file is opened by root before the switch.
    let out = fx.run(&unit);
    assert_eq!(
        status_field(&out, "Uid"),
        "65534\t65534\t65534\t65534",
        "{out}"
    );
    assert_eq!(
        status_field(&out, "Gid"),
        "65534\t65534\t65534\t65534",
        "{out}"
    );
    assert_eq!(status_field(&out, "Groups"), "36 65534", "{out}");
    let bind = cap_mask(&[Capability::CAP_NET_BIND_SERVICE]);
    let both = cap_mask(&[Capability::CAP_NET_BIND_SERVICE, Capability::CAP_NET_RAW]);
    assert_eq!(status_field(&out, "CapBnd"), both, "{out}");
    assert_eq!(status_field(&out, "CapInh"), both, "{out}");
    // After exec a non-root process keeps its ambient set only.
    assert_eq!(status_field(&out, "CapAmb"), bind, "{out}");
    assert_eq!(status_field(&out, "CapPrm"), bind, "{out}");
    assert_eq!(status_field(&out, "CapEff"), bind, "{out}");
    assert!(out.contains("HOME=/nonexistent USER=nobody"), "{out}");
}

#[test]
#[ignore = "needs root (setuid, capabilities, chown): run by cargo xtask test as root"]
fn a_user_without_capabilities_has_none() {
    let fx = Fixture::new();
    etc_with_nobody(&fx);
    let mut unit = fx.unit("nocaps", "cat /proc/self/status");
    unit.process.user = Some("65534".into());
    let out = fx.run(&unit);
    assert_eq!(
        status_field(&out, "Uid"),
        "65534\t65534\t65534\t65534",
        "{out}"
    );
    assert_eq!(status_field(&out, "CapEff"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "CapPrm"), "0000000000000000", "{out}");
}

#[test]
#[ignore = "needs root (setuid, capabilities, chown): run by cargo xtask test as root"]
fn root_with_capabilities_is_cut_to_them() {
    let fx = Fixture::new();
    let mut unit = fx.unit("rootcaps", "cat /proc/self/status");
    unit.process.capabilities = Some(vec!["CAP_CHOWN".into(), "net_admin".into()]);
    let out = fx.run(&unit);
    let listed = cap_mask(&[Capability::CAP_CHOWN, Capability::CAP_NET_ADMIN]);
    for key in ["CapBnd", "CapPrm", "CapEff", "CapInh"] {
        assert_eq!(status_field(&out, key), listed, "{key}: {out}");
    }
}

#[test]
#[ignore = "needs root (setuid, capabilities, chown): run by cargo xtask test as root"]
fn a_delegated_cgroup_belongs_to_the_user() {
    use std::os::unix::fs::MetadataExt;

    let fx = Fixture::new();
    etc_with_nobody(&fx);
    let mut unit = fx.unit("delegated", "exit 0");
    let dir = fx.cgroups.unit_dir("delegated");
    for file in ["cgroup.subtree_control", "cgroup.threads"] {
        fs::write(dir.join(file), "").unwrap();
    }
    unit.process.user = Some("nobody".into());
    unit.process.cgroup.delegate = true;
    fx.run(&unit);
    for path in [dir.clone(), dir.join(CGROUP_PROCS)] {
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{path:?}");
    }
}

#[test]
#[ignore = "needs root (setuid, capabilities, chown): run by cargo xtask test as root"]
fn ambient_capabilities_alone_keep_the_bounding_set() {
    let fx = Fixture::new();
    etc_with_nobody(&fx);
    let mut unit = fx.unit("ambient", "cat /proc/self/status");
    unit.process.user = Some("nobody".into());
    unit.process.ambient_capabilities = vec!["CAP_NET_BIND_SERVICE".into()];
    let out = fx.run(&unit);
    let bind = cap_mask(&[Capability::CAP_NET_BIND_SERVICE]);
    for key in ["CapAmb", "CapPrm", "CapEff", "CapInh"] {
        assert_eq!(status_field(&out, key), bind, "{key}: {out}");
    }
    let own = fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(
        status_field(&out, "CapBnd"),
        status_field(&own, "CapBnd"),
        "{out}"
    );
}

/// A fake `/proc/self` whose `attr/current` holds `current`, and a fake
/// selinuxfs that is mounted (has `enforce`) or not.
fn fake_host(fx: &Fixture, mounted: bool, current: &[u8]) -> HostPaths {
    let proc_self = fx.dir.path().join("proc-self");
    fs::create_dir_all(proc_self.join("attr")).unwrap();
    fs::write(proc_self.join(ATTR_CURRENT), current).unwrap();
    let selinuxfs = fx.dir.path().join("selinuxfs");
    fs::create_dir_all(&selinuxfs).unwrap();
    if mounted {
        fs::write(selinuxfs.join(SELINUX_ENFORCE), "1").unwrap();
    }
    HostPaths {
        proc_self,
        selinuxfs,
    }
}

/// What the unit's program wrote: nothing, if it never ran (the file may
/// not even have been created).
fn output_of(fx: &Fixture) -> String {
    fs::read_to_string(fx.out()).unwrap_or_default()
}

#[test]
fn a_declared_selinux_context_fails_closed_without_a_policy() {
    struct Case {
        name: &'static str,
        mounted: bool,
        current: &'static [u8],
        label: SelinuxLabel,
        message: &'static str,
    }
    let context = || SelinuxLabel::Context("system_u:system_r:web_t:s0".into());
    let cases = [
        Case {
            name: "selinuxfs not mounted",
            mounted: false,
            current: b"",
            label: context(),
            message: "unit web declares selinux_context, but SELinux is not enabled (DIR/selinuxfs/enforce does not exist)",
        },
        Case {
            name: "selinuxfs not mounted, a type",
            mounted: false,
            current: b"",
            label: SelinuxLabel::Type("web_t".into()),
            message: "unit web declares selinux_type, but SELinux is not enabled (DIR/selinuxfs/enforce does not exist)",
        },
        Case {
            name: "mounted, no policy loaded yet",
            mounted: true,
            current: b"kernel\0",
            label: SelinuxLabel::Type("web_t".into()),
            message: "unit web declares selinux_type, but no SELinux policy is loaded (DIR/proc-self/attr/current reads \"kernel\")",
        },
        Case {
            name: "another security module's label",
            mounted: true,
            current: b"unconfined\n",
            label: context(),
            message: "unit web declares selinux_context, but no SELinux policy is loaded (DIR/proc-self/attr/current reads \"unconfined\")",
        },
    ];
    for case in cases {
        let fx = Fixture::new();
        let host = fake_host(&fx, case.mounted, case.current);
        let mut unit = fx.unit("web", "echo ran");
        unit.process.selinux = Some(case.label);
        let err = spawn_on(&unit, &fx.ctx(), &host).unwrap_err();
        let dir = fx.dir.path().display().to_string();
        assert_eq!(
            err.to_string(),
            case.message.replace("DIR", &dir),
            "{}",
            case.name
        );
        assert!(
            matches!(
                err,
                SpawnError::SelinuxNotEnabled { .. } | SpawnError::SelinuxNoPolicy { .. }
            ),
            "{}: {err:?}",
            case.name
        );
        assert_eq!(output_of(&fx), "", "{}: the program ran", case.name);
    }
}

#[test]
fn a_context_the_kernel_refuses_fails_its_named_step() {
    // This host has no SELinux policy that knows `liftoff_test_no_such_t`
    // (and none at all, in CI): the kernel refuses the write to
    // attr/exec, with EINVAL, as it refuses a context a loaded policy
    // does not define. The fake selinuxfs and attr/current only get the
    // parent past its fail-closed check.
    let cases = [
        (
            "a type, under PID 1's user, role and level",
            SelinuxLabel::Type("liftoff_test_no_such_t".into()),
            "system_u:system_r:liftoff_test_no_such_t:s0-s0:c0.c1023",
        ),
        (
            "a full context",
            SelinuxLabel::Context("system_u:system_r:liftoff_test_no_such_t:s0".into()),
            "system_u:system_r:liftoff_test_no_such_t:s0",
        ),
    ];
    for (name, label, context) in cases {
        let fx = Fixture::new();
        let host = fake_host(&fx, true, b"system_u:system_r:init_t:s0-s0:c0.c1023\0");
        let mut unit = fx.unit("web", "echo ran");
        unit.process.selinux = Some(label);
        let err = spawn_on(&unit, &fx.ctx(), &host).unwrap_err();
        match &err {
            SpawnError::Setup {
                step,
                target,
                source,
                ..
            } => {
                assert_eq!(*step, ChildStep::SelinuxExecContext, "{name}");
                assert_eq!(target.as_deref(), Some(context), "{name}");
                assert!(source.raw_os_error().is_some(), "{name}: {source}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!("unit web: cannot set the SELinux exec context {context:?} before exec"),
            "{name}"
        );
        assert_eq!(output_of(&fx), "", "{name}: the program ran");
    }
}

#[test]
fn on_this_host_a_declared_context_never_runs_unconfined() {
    // Whatever this host has (no SELinux, SELinux without a policy, or a
    // policy without this type), the unit must not run.
    let fx = Fixture::new();
    let mut unit = fx.unit("web", "echo ran");
    unit.process.selinux = Some(SelinuxLabel::Context(
        "system_u:system_r:liftoff_test_no_such_t:s0".into(),
    ));
    let err = spawn(&unit, &fx.ctx()).unwrap_err();
    assert!(
        matches!(
            err,
            SpawnError::SelinuxNotEnabled { .. }
                | SpawnError::SelinuxNoPolicy { .. }
                | SpawnError::Setup {
                    step: ChildStep::SelinuxExecContext,
                    ..
                }
        ),
        "{err:?}"
    );
    assert_eq!(output_of(&fx), "", "the program ran: {err}");
}
