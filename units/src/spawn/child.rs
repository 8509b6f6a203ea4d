//! What the child does between fork and exec: a plan built in the parent
//! ([`ChildPlan`]) carried out by [`setup`] through a narrow syscall seam
//! ([`ChildSys`]), so the order of the steps, including the root-only ones,
//! is tested on the host with a recording fake.

use std::ffi::{CStr, CString};
use std::fmt;

use caps::{Capability, CapsHashSet};
use nix::errno::Errno;
use nix::sys::resource::Resource;
use nix::unistd::{Gid, Uid};

/// One step of the child's setup, in the order they run. A failing step
/// is sent back to the parent as its byte, so the error can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ChildStep {
    /// Writing "0" to the unit's `cgroup.procs`.
    JoinCgroup = 1,
    /// setsid(2).
    Setsid,
    /// Signal dispositions to default, empty mask.
    ResetSignals,
    /// Writing the SELinux context to `/proc/thread-self/attr/exec`.
    SelinuxExecContext,
    /// Writing `/proc/self/oom_score_adj`.
    OomScoreAdj,
    /// setrlimit(2).
    Rlimit,
    /// prctl(PR_SET_KEEPCAPS).
    KeepCaps,
    /// prctl(PR_CAPBSET_DROP).
    DropBounding,
    /// setgroups(2).
    SetGroups,
    /// setgid(2).
    SetGid,
    /// setuid(2).
    SetUid,
    /// capset(2) of the effective, inheritable and permitted sets.
    SetCapabilities,
    /// prctl(PR_CAP_AMBIENT_RAISE).
    RaiseAmbient,
    /// chdir(2) to the working directory.
    Chdir,
    /// prctl(PR_SET_NO_NEW_PRIVS).
    NoNewPrivs,
    /// close_range(2) with CLOSE_RANGE_CLOEXEC.
    CloseFds,
}

impl ChildStep {
    /// Every step, for decoding the byte the child sends.
    const ALL: [ChildStep; 16] = [
        ChildStep::JoinCgroup,
        ChildStep::Setsid,
        ChildStep::ResetSignals,
        ChildStep::SelinuxExecContext,
        ChildStep::OomScoreAdj,
        ChildStep::Rlimit,
        ChildStep::KeepCaps,
        ChildStep::DropBounding,
        ChildStep::SetGroups,
        ChildStep::SetGid,
        ChildStep::SetUid,
        ChildStep::SetCapabilities,
        ChildStep::RaiseAmbient,
        ChildStep::Chdir,
        ChildStep::NoNewPrivs,
        ChildStep::CloseFds,
    ];

    /// The step a byte from the child names.
    pub(crate) fn from_byte(byte: u8) -> Option<ChildStep> {
        ChildStep::ALL.into_iter().find(|step| *step as u8 == byte)
    }
}

impl fmt::Display for ChildStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChildStep::JoinCgroup => "join the unit's cgroup",
            ChildStep::Setsid => "setsid",
            ChildStep::ResetSignals => "reset signals",
            ChildStep::SelinuxExecContext => "set the SELinux exec context",
            ChildStep::OomScoreAdj => "set oom_score_adj",
            ChildStep::Rlimit => "setrlimit",
            ChildStep::KeepCaps => "set keepcaps",
            ChildStep::DropBounding => "drop from the capability bounding set",
            ChildStep::SetGroups => "setgroups",
            ChildStep::SetGid => "setgid",
            ChildStep::SetUid => "setuid",
            ChildStep::SetCapabilities => "set capabilities",
            ChildStep::RaiseAmbient => "raise ambient capabilities",
            ChildStep::Chdir => "change to the working directory",
            ChildStep::NoNewPrivs => "set no_new_privs",
            ChildStep::CloseFds => "mark stray file descriptors close-on-exec",
        })
    }
}

/// The identity switch: setgroups, setgid, setuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityPlan {
    pub uid: Uid,
    pub gid: Gid,
    pub groups: Vec<Gid>,
}

/// Capability changes, all resolved in the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapsPlan {
    /// Dropped from the bounding set: every capability the kernel has
    /// that the unit does not list (empty without a `capabilities` key).
    pub drop_bounding: Vec<Capability>,
    /// The effective and permitted sets.
    pub permitted: CapsHashSet,
    /// The inheritable set.
    pub inheritable: CapsHashSet,
    /// Raised into the ambient set, in order.
    pub ambient: Vec<Capability>,
}

/// Everything the child does, resolved before fork: the child only makes
/// syscalls with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChildPlan {
    /// The full SELinux context for exec, when the unit declares one.
    pub selinux_exec_context: Option<CString>,
    /// The decimal text for `oom_score_adj`.
    pub oom_score_adj: Option<Vec<u8>>,
    /// (resource, soft, hard), RLIM_INFINITY already filled in.
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// Keep the permitted set across setuid (needed when a non-root
    /// identity is given capabilities).
    pub keep_caps: bool,
    /// setgroups/setgid/setuid, when the unit names a user or groups.
    pub identity: Option<IdentityPlan>,
    /// When the unit sets capabilities or ambient capabilities.
    pub capabilities: Option<CapsPlan>,
    /// chdir target.
    pub working_directory: CString,
    /// prctl(PR_SET_NO_NEW_PRIVS).
    pub no_new_privileges: bool,
}

/// The syscalls the child makes, one method each (STYLE.md, "A narrow
/// syscall seam"). The real one is `sys::Kernel`.
pub(crate) trait ChildSys {
    /// Writes "0" to the unit's `cgroup.procs` (opened by the parent).
    fn join_cgroup(&mut self) -> Result<(), Errno>;
    /// setsid(2).
    fn setsid(&mut self) -> Result<(), Errno>;
    /// Every catchable signal to SIG_DFL, then an empty mask.
    fn reset_signals(&mut self) -> Result<(), Errno>;
    /// Writes `context` to this thread's `attr/exec`: the SELinux context
    /// its next execve(2) runs in.
    fn set_exec_context(&mut self, context: &CStr) -> Result<(), Errno>;
    /// Writes `value` to this process's `oom_score_adj`.
    fn set_oom_score_adj(&mut self, value: &[u8]) -> Result<(), Errno>;
    /// setrlimit(2).
    fn setrlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> Result<(), Errno>;
    /// prctl(PR_SET_KEEPCAPS, 1).
    fn set_keepcaps(&mut self) -> Result<(), Errno>;
    /// prctl(PR_CAPBSET_DROP, cap).
    fn drop_bounding(&mut self, cap: Capability) -> Result<(), Errno>;
    /// setgroups(2).
    fn setgroups(&mut self, groups: &[Gid]) -> Result<(), Errno>;
    /// setgid(2).
    fn setgid(&mut self, gid: Gid) -> Result<(), Errno>;
    /// setuid(2).
    fn setuid(&mut self, uid: Uid) -> Result<(), Errno>;
    /// Effective and permitted to `permitted`, inheritable to `inheritable`.
    fn set_capabilities(
        &mut self,
        permitted: &CapsHashSet,
        inheritable: &CapsHashSet,
    ) -> Result<(), Errno>;
    /// prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap).
    fn raise_ambient(&mut self, cap: Capability) -> Result<(), Errno>;
    /// chdir(2).
    fn chdir(&mut self, dir: &CString) -> Result<(), Errno>;
    /// prctl(PR_SET_NO_NEW_PRIVS, 1).
    fn set_no_new_privs(&mut self) -> Result<(), Errno>;
    /// Marks every descriptor from `first` up close-on-exec.
    fn cloexec_from(&mut self, first: u32) -> Result<(), Errno>;
}

/// The child's recipe, in order. Stops at the first failing step.
pub(crate) fn setup<S: ChildSys>(plan: &ChildPlan, sys: &mut S) -> Result<(), (ChildStep, Errno)> {
    let at = |step: ChildStep| move |errno: Errno| (step, errno);

    // 1. Into the unit's cgroup before anything else runs, so every
    //    process the unit ever makes is accounted, limited and killable
    //    with it, and nothing escapes in between.
    sys.join_cgroup().map_err(at(ChildStep::JoinCgroup))?;
    // 2. A session (and process group) of its own, with no controlling
    //    terminal: PID 1's terminal signals must not reach units, and a
    //    unit's process group can be signalled apart from others.
    sys.setsid().map_err(at(ChildStep::Setsid))?;
    // 3. PID 1 blocks every signal (it reads them from a signalfd), and
    //    both the mask and ignored dispositions survive exec (signal(7)).
    //    Daemons expect the defaults.
    sys.reset_signals().map_err(at(ChildStep::ResetSignals))?;
    // 4. The SELinux domain for exec, first of the unit's settings: a
    //    context the policy does not define is refused (EINVAL), and the
    //    spawn fails here, named, before anything else changes. SELinux
    //    checks the write (`process setexec`) against the child's own
    //    domain, still PID 1's, before the unit's user or capabilities
    //    take over; the kernel keeps the context until exec (setuid does
    //    not clear it), where it takes effect.
    if let Some(context) = &plan.selinux_exec_context {
        sys.set_exec_context(context)
            .map_err(at(ChildStep::SelinuxExecContext))?;
    }
    // 5. Before dropping privileges: lowering the score needs
    //    CAP_SYS_RESOURCE (proc(5)).
    if let Some(value) = &plan.oom_score_adj {
        sys.set_oom_score_adj(value)
            .map_err(at(ChildStep::OomScoreAdj))?;
    }
    // 6. Also while privileged: raising a hard limit needs
    //    CAP_SYS_RESOURCE (setrlimit(2)).
    for &(resource, soft, hard) in &plan.rlimits {
        sys.setrlimit(resource, soft, hard)
            .map_err(at(ChildStep::Rlimit))?;
    }
    // 7. Identity and capabilities.
    //    a. KEEPCAPS: without it setuid from 0 clears the permitted set, and
    //       the unit's capabilities could not be re-established.
    if plan.keep_caps {
        sys.set_keepcaps().map_err(at(ChildStep::KeepCaps))?;
    }
    //    b. The bounding set before setuid: PR_CAPBSET_DROP needs
    //       CAP_SETPCAP in the effective set, which setuid to non-root
    //       clears.
    if let Some(caps) = &plan.capabilities {
        for &cap in &caps.drop_bounding {
            sys.drop_bounding(cap)
                .map_err(at(ChildStep::DropBounding))?;
        }
    }
    //    c. Groups before uid: after setuid to non-root, setgroups and
    //       setgid would be refused. setgroups also drops PID 1's groups.
    if let Some(identity) = &plan.identity {
        sys.setgroups(&identity.groups)
            .map_err(at(ChildStep::SetGroups))?;
        sys.setgid(identity.gid).map_err(at(ChildStep::SetGid))?;
        sys.setuid(identity.uid).map_err(at(ChildStep::SetUid))?;
    }
    //    d. Re-establish the sets after setuid (which emptied the
    //       effective set), cut to the unit's list; then the ambient set,
    //       whose members must be permitted and inheritable
    //       (PR_CAP_AMBIENT_RAISE in prctl(2)), so that a non-root process
    //       keeps them across exec.
    if let Some(caps) = &plan.capabilities {
        sys.set_capabilities(&caps.permitted, &caps.inheritable)
            .map_err(at(ChildStep::SetCapabilities))?;
        for &cap in &caps.ambient {
            sys.raise_ambient(cap)
                .map_err(at(ChildStep::RaiseAmbient))?;
        }
    }
    // 8. chdir as the unit's user, so a directory it may not enter fails
    //    here, named, rather than later.
    sys.chdir(&plan.working_directory)
        .map_err(at(ChildStep::Chdir))?;
    // 9. After setuid: no_new_privs forbids gaining privileges at exec
    //    (set-user-ID, file capabilities); setting it earlier changes
    //    nothing for the steps above, but last keeps it obviously after.
    if plan.no_new_privileges {
        sys.set_no_new_privs().map_err(at(ChildStep::NoNewPrivs))?;
    }
    // 10. Descriptors PID 1 left open without O_CLOEXEC must not leak
    //     into units. CLOEXEC rather than closing: std's own error pipe
    //     (which reports a failed exec) must stay open until exec.
    sys.cloexec_from(3).map_err(at(ChildStep::CloseFds))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One recorded call.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        JoinCgroup,
        Setsid,
        ResetSignals,
        SetExecContext(CString),
        OomScoreAdj(Vec<u8>),
        Setrlimit(Resource, u64, u64),
        KeepCaps,
        DropBounding(Capability),
        SetGroups(Vec<Gid>),
        SetGid(Gid),
        SetUid(Uid),
        SetCapabilities(Vec<Capability>, Vec<Capability>),
        RaiseAmbient(Capability),
        Chdir(CString),
        NoNewPrivs,
        CloexecFrom(u32),
    }

    /// Records calls; fails the call that matches `fail`.
    #[derive(Default)]
    struct Fake {
        calls: Vec<Call>,
        fail: Option<fn(&Call) -> bool>,
    }

    impl Fake {
        fn record(&mut self, call: Call) -> Result<(), Errno> {
            let fails = self.fail.is_some_and(|fail| fail(&call));
            self.calls.push(call);
            if fails { Err(Errno::EPERM) } else { Ok(()) }
        }
    }

    fn sorted(set: &CapsHashSet) -> Vec<Capability> {
        let mut caps: Vec<Capability> = set.iter().copied().collect();
        caps.sort_by_key(|cap| cap.index());
        caps
    }

    impl ChildSys for Fake {
        fn join_cgroup(&mut self) -> Result<(), Errno> {
            self.record(Call::JoinCgroup)
        }
        fn setsid(&mut self) -> Result<(), Errno> {
            self.record(Call::Setsid)
        }
        fn reset_signals(&mut self) -> Result<(), Errno> {
            self.record(Call::ResetSignals)
        }
        fn set_exec_context(&mut self, context: &CStr) -> Result<(), Errno> {
            self.record(Call::SetExecContext(context.to_owned()))
        }
        fn set_oom_score_adj(&mut self, value: &[u8]) -> Result<(), Errno> {
            self.record(Call::OomScoreAdj(value.to_vec()))
        }
        fn setrlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> Result<(), Errno> {
            self.record(Call::Setrlimit(resource, soft, hard))
        }
        fn set_keepcaps(&mut self) -> Result<(), Errno> {
            self.record(Call::KeepCaps)
        }
        fn drop_bounding(&mut self, cap: Capability) -> Result<(), Errno> {
            self.record(Call::DropBounding(cap))
        }
        fn setgroups(&mut self, groups: &[Gid]) -> Result<(), Errno> {
            self.record(Call::SetGroups(groups.to_vec()))
        }
        fn setgid(&mut self, gid: Gid) -> Result<(), Errno> {
            self.record(Call::SetGid(gid))
        }
        fn setuid(&mut self, uid: Uid) -> Result<(), Errno> {
            self.record(Call::SetUid(uid))
        }
        fn set_capabilities(
            &mut self,
            permitted: &CapsHashSet,
            inheritable: &CapsHashSet,
        ) -> Result<(), Errno> {
            self.record(Call::SetCapabilities(
                sorted(permitted),
                sorted(inheritable),
            ))
        }
        fn raise_ambient(&mut self, cap: Capability) -> Result<(), Errno> {
            self.record(Call::RaiseAmbient(cap))
        }
        fn chdir(&mut self, dir: &CString) -> Result<(), Errno> {
            self.record(Call::Chdir(dir.clone()))
        }
        fn set_no_new_privs(&mut self) -> Result<(), Errno> {
            self.record(Call::NoNewPrivs)
        }
        fn cloexec_from(&mut self, first: u32) -> Result<(), Errno> {
            self.record(Call::CloexecFrom(first))
        }
    }

    fn root_plan() -> ChildPlan {
        ChildPlan {
            selinux_exec_context: None,
            oom_score_adj: None,
            rlimits: Vec::new(),
            keep_caps: false,
            identity: None,
            capabilities: None,
            working_directory: c"/".to_owned(),
            no_new_privileges: false,
        }
    }

    const PROLOGUE: [Call; 3] = [Call::JoinCgroup, Call::Setsid, Call::ResetSignals];

    fn with_prologue(rest: Vec<Call>) -> Vec<Call> {
        PROLOGUE.into_iter().chain(rest).collect()
    }

    #[test]
    fn steps_run_in_order() {
        use Capability::{CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, CAP_SYS_ADMIN};
        let identity = IdentityPlan {
            uid: Uid::from_raw(998),
            gid: Gid::from_raw(997),
            groups: vec![Gid::from_raw(997), Gid::from_raw(36)],
        };
        let listed: CapsHashSet = [CAP_NET_ADMIN, CAP_NET_BIND_SERVICE].into_iter().collect();
        let caps = CapsPlan {
            drop_bounding: vec![CAP_SYS_ADMIN],
            permitted: listed.clone(),
            inheritable: listed.clone(),
            ambient: vec![CAP_NET_BIND_SERVICE],
        };
        let set_ids = |identity: &IdentityPlan| {
            vec![
                Call::SetGroups(identity.groups.clone()),
                Call::SetGid(identity.gid),
                Call::SetUid(identity.uid),
            ]
        };
        let tail = || vec![Call::Chdir(c"/".to_owned()), Call::CloexecFrom(3)];
        struct Case {
            name: &'static str,
            plan: ChildPlan,
            calls: Vec<Call>,
        }
        let cases = [
            Case {
                name: "root, nothing set",
                plan: root_plan(),
                calls: with_prologue(tail()),
            },
            Case {
                name: "oom, rlimits, cwd, nnp",
                plan: ChildPlan {
                    oom_score_adj: Some(b"-500".to_vec()),
                    rlimits: vec![(Resource::RLIMIT_NOFILE, 1024, 4096)],
                    working_directory: c"/var/lib/app".to_owned(),
                    no_new_privileges: true,
                    ..root_plan()
                },
                calls: with_prologue(vec![
                    Call::OomScoreAdj(b"-500".to_vec()),
                    Call::Setrlimit(Resource::RLIMIT_NOFILE, 1024, 4096),
                    Call::Chdir(c"/var/lib/app".to_owned()),
                    Call::NoNewPrivs,
                    Call::CloexecFrom(3),
                ]),
            },
            Case {
                name: "non-root without capabilities: the kernel clears them",
                plan: ChildPlan {
                    identity: Some(identity.clone()),
                    ..root_plan()
                },
                calls: with_prologue([set_ids(&identity), tail()].concat()),
            },
            Case {
                name: "non-root with capabilities: keepcaps, bounding before setuid",
                plan: ChildPlan {
                    keep_caps: true,
                    identity: Some(identity.clone()),
                    capabilities: Some(caps.clone()),
                    ..root_plan()
                },
                calls: with_prologue(
                    [
                        vec![Call::KeepCaps, Call::DropBounding(CAP_SYS_ADMIN)],
                        set_ids(&identity),
                        vec![
                            Call::SetCapabilities(sorted(&listed), sorted(&listed)),
                            Call::RaiseAmbient(CAP_NET_BIND_SERVICE),
                        ],
                        tail(),
                    ]
                    .concat(),
                ),
            },
            Case {
                name: "SELinux context: before limits, identity and capabilities",
                plan: ChildPlan {
                    selinux_exec_context: Some(c"system_u:system_r:web_t:s0".to_owned()),
                    oom_score_adj: Some(b"-500".to_vec()),
                    rlimits: vec![(Resource::RLIMIT_NOFILE, 1024, 4096)],
                    keep_caps: true,
                    identity: Some(identity.clone()),
                    capabilities: Some(caps.clone()),
                    no_new_privileges: true,
                    ..root_plan()
                },
                calls: with_prologue(
                    [
                        vec![
                            Call::SetExecContext(c"system_u:system_r:web_t:s0".to_owned()),
                            Call::OomScoreAdj(b"-500".to_vec()),
                            Call::Setrlimit(Resource::RLIMIT_NOFILE, 1024, 4096),
                            Call::KeepCaps,
                            Call::DropBounding(CAP_SYS_ADMIN),
                        ],
                        set_ids(&identity),
                        vec![
                            Call::SetCapabilities(sorted(&listed), sorted(&listed)),
                            Call::RaiseAmbient(CAP_NET_BIND_SERVICE),
                            Call::Chdir(c"/".to_owned()),
                            Call::NoNewPrivs,
                            Call::CloexecFrom(3),
                        ],
                    ]
                    .concat(),
                ),
            },
            Case {
                name: "root with capabilities: no identity switch",
                plan: ChildPlan {
                    capabilities: Some(CapsPlan {
                        ambient: Vec::new(),
                        ..caps.clone()
                    }),
                    ..root_plan()
                },
                calls: with_prologue(
                    [
                        vec![
                            Call::DropBounding(CAP_SYS_ADMIN),
                            Call::SetCapabilities(sorted(&listed), sorted(&listed)),
                        ],
                        tail(),
                    ]
                    .concat(),
                ),
            },
        ];
        for case in cases {
            let mut fake = Fake::default();
            setup(&case.plan, &mut fake).unwrap();
            assert_eq!(fake.calls, case.calls, "{}", case.name);
        }
    }

    #[test]
    fn a_failing_step_stops_the_recipe_and_is_named() {
        let plan = ChildPlan {
            identity: Some(IdentityPlan {
                uid: Uid::from_raw(1),
                gid: Gid::from_raw(1),
                groups: vec![Gid::from_raw(1)],
            }),
            no_new_privileges: true,
            ..root_plan()
        };
        let mut fake = Fake {
            fail: Some(|call| matches!(call, Call::SetGid(_))),
            ..Fake::default()
        };
        assert_eq!(
            setup(&plan, &mut fake),
            Err((ChildStep::SetGid, Errno::EPERM))
        );
        assert_eq!(fake.calls.last(), Some(&Call::SetGid(Gid::from_raw(1))));
        assert!(!fake.calls.contains(&Call::SetUid(Uid::from_raw(1))));
    }

    #[test]
    fn a_rejected_selinux_context_stops_before_any_other_setting() {
        let plan = ChildPlan {
            selinux_exec_context: Some(c"system_u:system_r:no_such_t:s0".to_owned()),
            oom_score_adj: Some(b"-500".to_vec()),
            identity: Some(IdentityPlan {
                uid: Uid::from_raw(1),
                gid: Gid::from_raw(1),
                groups: Vec::new(),
            }),
            ..root_plan()
        };
        let mut fake = Fake {
            fail: Some(|call| matches!(call, Call::SetExecContext(_))),
            ..Fake::default()
        };
        assert_eq!(
            setup(&plan, &mut fake),
            Err((ChildStep::SelinuxExecContext, Errno::EPERM))
        );
        assert_eq!(
            fake.calls,
            with_prologue(vec![Call::SetExecContext(
                c"system_u:system_r:no_such_t:s0".to_owned()
            )])
        );
    }

    #[test]
    fn steps_round_trip_through_their_byte() {
        for step in ChildStep::ALL {
            assert_eq!(ChildStep::from_byte(step as u8), Some(step));
        }
        assert_eq!(ChildStep::from_byte(0), None);
        assert_eq!(ChildStep::from_byte(200), None);
    }
}
