//! liftoff as PID 1: the recipe from kernel hand-off to the event loop.
//!
//! 1. block every handled signal and read them from a signalfd;
//! 2. disable the kernel's ctrl-alt-delete reboot, so it arrives as SIGINT;
//! 3. mount /proc, then the other API filesystems the kernel left unmounted;
//! 4. open the log sinks; read and check the kernel command line;
//! 5. boot what the command line names: a `roothash=` root goes to stage 1
//!    ([`crate::stage1`]), which never returns on success; on the root
//!    stage 1 switched to (or one the kernel mounted) this is stage 2:
//!    load and enforce the SELinux policy and re-execute into the init
//!    domain ([`crate::selinux`]), then read the units and start them
//!    ([`crate::stage2`]); with no root, idle;
//! 6. run the event loop (signals, the reaper, the units, the control
//!    socket) until a shutdown request has been carried out.
//!
//! Any error in 1–5 is fatal and runs the failure action; PID 1 never
//! returns.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kernel_cmdline::{BootPlan, FailurePolicy, Rejected};
use log::{debug, error, info, warn};
use mounts::MountSpec;
use mounts::api::{self, Step};
use mounts::mountinfo::{MountInfoError, MountTable};
use mounts::unmount;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::reboot::set_cad_enabled;
use nix::sys::signal::{SigmaskHow, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::statfs::statfs;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::unistd::{Pid, sync};
use thiserror::Error;

use crate::ctl::{CONNECTION_EVENTS, ConnId, ControlServer, Dispatch, IDLE_TIMEOUT};
use crate::selinux::{self, SelinuxError};
use crate::shutdown::{Action, Event, Phase, Power, Request, Shutdown};
use crate::signals::{self, Meaning};
use crate::stage1::{self, Stage1Error};
use crate::stage2::{Outcome, Services, UNIT_DIRS};
use crate::stamps::Stamps;
use crate::{abi, failure, logger, reap, sys};

/// Why PID 1 could not come up.
#[derive(Debug, Error)]
pub enum Pid1Error {
    /// sigprocmask(2) refused to block the handled signals.
    #[error("cannot block signals")]
    BlockSignals(#[source] Errno),
    /// signalfd(2) failed.
    #[error("cannot create the signalfd")]
    SignalFd(#[source] Errno),
    /// timerfd_create(2) failed.
    #[error("cannot create the timerfd")]
    TimerFd(#[source] Errno),
    /// epoll_create1(2) or epoll_ctl(2) failed.
    #[error("cannot set up epoll")]
    Epoll(#[source] Errno),
    /// epoll_wait(2) failed with something other than EINTR.
    #[error("epoll_wait failed")]
    EpollWait(#[source] Errno),
    /// Creating a mount point failed.
    #[error("cannot create mount point {path}")]
    MountPoint {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// mount(2) failed for an API filesystem.
    #[error("cannot mount {fstype} on {target}")]
    Mount {
        /// The filesystem type.
        fstype: String,
        /// Where.
        target: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// A file under /proc could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// /proc/self/mountinfo did not parse.
    #[error("cannot parse {path}")]
    MountInfo {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: MountInfoError,
    },
    /// The kernel command line has malformed keys.
    #[error("kernel command line rejected:\n{0}")]
    Cmdline(Rejected),
    /// The command line names a root stage 1 cannot mount yet.
    #[error("root={0} given, but stage 1 only boots roothash= roots so far")]
    RootUnsupported(String),
    /// Stage 1 failed; fail closed.
    #[error("stage 1 failed")]
    Stage1(#[source] Stage1Error),
    /// The SELinux policy could not be loaded or enforced; no unit runs
    /// without it.
    #[error("SELinux policy load failed")]
    Selinux(#[source] SelinuxError),
    /// A volume's SELinux label from mounts.toml could not be set.
    #[error("SELinux volume labels")]
    Label(#[source] crate::volumes::LabelError),
    /// An argument of PID 1 holds a NUL byte and cannot be passed on.
    #[error("cannot re-execute {program}: an argument holds a NUL byte")]
    ReexecArgument {
        /// The program.
        program: &'static str,
    },
    /// execv(2) of PID 1's own binary failed.
    #[error("cannot re-execute {program}")]
    Reexec {
        /// The program.
        program: &'static str,
        /// Why.
        #[source]
        source: Errno,
    },
}

/// PID 1's own binary, executed again after the policy load.
const SELF_EXE: &str = "/proc/self/exe";

/// Executes PID 1's own binary again with the same arguments, so that the
/// policy's type transition (`kernel_t` running `init_exec_t`) moves PID 1
/// into `init_t`. The blocked signal mask survives execve(2), and so do
/// pending signals: none is lost while the new image starts. The
/// signalfd, epoll and every other descriptor are close-on-exec.
fn reexec() -> Result<Infallible, Pid1Error> {
    let args = std::env::args_os()
        .map(|a| std::ffi::CString::new(std::os::unix::ffi::OsStringExt::into_vec(a)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Pid1Error::ReexecArgument { program: SELF_EXE })?;
    info!("re-executing {SELF_EXE} to enter the init domain");
    log::logger().flush();
    let Err(source) = nix::unistd::execv(c"/proc/self/exe", &args);
    Err(Pid1Error::Reexec {
        program: SELF_EXE,
        source,
    })
}

/// PID 1's entry point. `start` is CLOCK_BOOTTIME at the first instruction.
pub fn main(start: Duration) -> ! {
    logger::install();
    failure::install_panic_hook();
    // After the SELinux re-exec of /proc/self/exe the kernel names the
    // process `exe`; `ps` and /proc/1/comm should say `init` as after the
    // kernel's own exec of /init or /sbin/init.
    if let Err(e) = nix::sys::prctl::set_name(c"init") {
        log::debug!("cannot name the process init: {e}");
    }
    let mut pid1 = Pid1 {
        stamps: Stamps::default(),
        mounted: Vec::new(),
        policy: FailurePolicy::default(),
        services: None,
        control: None,
    };
    pid1.stamps.mark_at("start", start);
    match pid1.run() {
        Ok(never) => match never {},
        Err(e) => {
            let policy = pid1.policy;
            failure::fail(&policy, &e)
        }
    }
}

struct Pid1 {
    stamps: Stamps,
    /// What liftoff mounted, in order; unmounted in reverse at shutdown.
    mounted: Vec<PathBuf>,
    policy: FailurePolicy,
    /// Stage 2's units; `None` until they are loaded.
    services: Option<Services>,
    /// The control socket, `liftoff ctl`'s way in.
    control: Option<ControlServer>,
}

const TOKEN_SIGNAL: u64 = 1;
const TOKEN_TIMER: u64 = 2;
const TOKEN_UNIT_TIMER: u64 = 3;
const TOKEN_CONTROL: u64 = 4;
/// Control connection `id` polls as `FIRST_CONN_TOKEN + id`; the services'
/// tokens lie between [`crate::stage2::FIRST_TOKEN`] and this.
const FIRST_CONN_TOKEN: u64 = 1 << 48;

impl Pid1 {
    fn run(&mut self) -> Result<Infallible, Pid1Error> {
        // 1. Signals first: a child or ctrl-alt-delete arriving while PID 1
        // sets up must wait in the signalfd, not run a default action.
        let mask = sys::sigset(&signals::handled());
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).map_err(Pid1Error::BlockSignals)?;
        let signal_fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(Pid1Error::SignalFd)?;

        // 2. Ctrl-alt-delete becomes SIGINT to PID 1 instead of an instant
        // reboot, so it goes through the orderly shutdown. Best effort: it
        // only fails outside the initial user namespace.
        if let Err(e) = set_cad_enabled(false) {
            warn!("cannot disable ctrl-alt-delete reboot: {e}");
        }

        // 3. API filesystems.
        self.mount_api_filesystems()?;
        self.stamps.mark("api-filesystems");

        // 4. Command line, then the log sinks at the level it asks for.
        let plan = self.read_cmdline();
        logger::attach();
        let plan = plan?;
        self.stamps.mark("cmdline");
        if log::log_enabled!(log::Level::Debug) {
            self.log_mount_table()?;
        }

        // 5. Boot. Stage 1 runs only from the initramfs. On a mounted root
        // (the one stage 1 switched to and exec'd liftoff on, or one the
        // kernel mounted itself) this is stage 2: the root keys on the
        // command line were stage 1's, and running it again would try to
        // map a root that is already `/`.
        if !stage1::switch_root::root_is_initramfs() {
            // 5a. The SELinux policy, before any unit: load, enforce, and
            // re-execute into init_t; after the exec this returns Running.
            let start = self
                .stamps
                .stamps
                .first()
                .map_or(Duration::ZERO, |s| Duration::from_micros(s.boottime_us));
            let paths = selinux::Paths::system();
            match selinux::start(&plan, &paths, &mut self.stamps, start)
                .map_err(Pid1Error::Selinux)?
            {
                selinux::Started::Reexec => {
                    // The volumes' labels from mounts.toml, now that the
                    // kernel can take them; a declared label that cannot
                    // be set is fatal: the volume would be more open than
                    // the image says.
                    let table = read_mount_table()?;
                    crate::volumes::apply_labels(
                        Path::new("/"),
                        |p| table.at(p).is_some(),
                        crate::volumes::set_label,
                    )
                    .map_err(Pid1Error::Label)?;
                    let never = reexec()?;
                    match never {}
                }
                selinux::Started::Disabled | selinux::Started::Running => {}
            }
            let record = stage1::HandoffRecord::read();
            match &record {
                Some(record) => info!(
                    "stage 2 on {} ({}); stage 1: {}",
                    record.root_device,
                    record.fstype,
                    record.summary()
                ),
                None => info!("stage 2 on a root the kernel mounted (no stage 1 record)"),
            }
            crate::stage2::generate_host_container_units();
            self.stamps.mark("units");
            info!("boot stamps: {}", self.stamps.summary());
            let dirs: Vec<PathBuf> = UNIT_DIRS.iter().map(PathBuf::from).collect();
            let mut services = Services::load(&dirs, units::cgroup::Cgroups::default());
            services.boot(&self.stamps, record.as_ref());
            self.services = Some(services);
            return self.event_loop(signal_fd);
        }
        // A verity root is the only root stage 1 mounts, and any error on
        // its way is fatal: the data partition is never mounted without its
        // verity device.
        if let Some(source) = &plan.verity {
            let never = stage1::boot(&plan, source, &mut self.stamps).map_err(Pid1Error::Stage1)?;
            match never {}
        }
        if let Some(root) = &plan.root {
            return Err(Pid1Error::RootUnsupported(root.to_string()));
        }
        self.stamps.mark("idle");
        info!("boot stamps: {}", self.stamps.summary());
        info!("no root= on the kernel command line: nothing to boot; idling");
        // No units, but the same loop: `liftoff ctl poweroff` works here too.
        self.services = Some(Services::empty());

        // 6. Serve signals.
        self.event_loop(signal_fd)
    }

    fn mount_api_filesystems(&mut self) -> Result<(), Pid1Error> {
        // /proc first: the mount table the rest is planned from lives there.
        // Its filesystem magic tells whether it is mounted already.
        let proc_mounted =
            statfs(api::PROC).is_ok_and(|s| s.filesystem_type().0 == abi::PROC_SUPER_MAGIC);
        if !proc_mounted
            && let Some(proc) = api::all()
                .into_iter()
                .find(|m| m.target == Path::new(api::PROC))
        {
            self.mount(&proc)?;
        }
        for step in api::plan(&read_mount_table()?) {
            match step {
                Step::Mount(spec) => self.mount(&spec)?,
                Step::AlreadyMounted { spec, found } => {
                    if !self.mounted.contains(&spec.target) {
                        debug!("{} already mounted ({found})", spec.target.display());
                    }
                }
            }
        }
        Ok(())
    }

    fn mount(&mut self, spec: &MountSpec) -> Result<(), Pid1Error> {
        if !spec.target.is_dir() {
            nix::unistd::mkdir(&spec.target, Mode::from_bits_truncate(spec.dir_mode)).map_err(
                |e| Pid1Error::MountPoint {
                    path: spec.target.clone(),
                    source: std::io::Error::from(e),
                },
            )?;
        }
        mount(
            Some(spec.source.as_str()),
            &spec.target,
            Some(spec.fstype.as_str()),
            spec.flags,
            spec.data.as_deref(),
        )
        .map_err(|source| Pid1Error::Mount {
            fstype: spec.fstype.clone(),
            target: spec.target.clone(),
            source,
        })?;
        debug!("mounted {} on {}", spec.fstype, spec.target.display());
        self.mounted.push(spec.target.clone());
        Ok(())
    }

    fn read_cmdline(&mut self) -> Result<BootPlan, Pid1Error> {
        // Bytes, not a String: the kernel does not require UTF-8, and a
        // stray byte in an unknown key must not stop the boot.
        let bytes = std::fs::read(abi::PROC_CMDLINE).map_err(|source| Pid1Error::Read {
            path: abi::PROC_CMDLINE.into(),
            source,
        })?;
        match kernel_cmdline::parse_bytes(bytes.strip_suffix(b"\n").unwrap_or(&bytes)) {
            Ok(plan) => {
                logger::set_level(logger::filter(plan.log));
                self.policy = plan.failure;
                failure::set_policy(plan.failure);
                if !plan
                    .unknown
                    .iter()
                    .any(|p| p.key == abi::PRINTK_DEVKMSG_KEY)
                {
                    allow_kmsg_bursts();
                }
                Ok(plan)
            }
            Err(rejected) => {
                logger::set_level(logger::filter(rejected.log));
                self.policy = rejected.failure;
                failure::set_policy(rejected.failure);
                Err(Pid1Error::Cmdline(rejected))
            }
        }
    }

    /// The kernel's view of the mounts, for `liftoff.log=debug`.
    fn log_mount_table(&self) -> Result<(), Pid1Error> {
        for m in read_mount_table()?.mounts {
            debug!(
                "mount: {} {} {} {}",
                m.mount_point.display(),
                m.fstype,
                m.source,
                m.mount_options
            );
        }
        Ok(())
    }

    fn event_loop(&mut self, signal_fd: SignalFd) -> Result<Infallible, Pid1Error> {
        let timer = TimerFd::new(
            ClockId::CLOCK_BOOTTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(Pid1Error::TimerFd)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(Pid1Error::Epoll)?;
        epoll
            .add(
                signal_fd.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_SIGNAL),
            )
            .map_err(Pid1Error::Epoll)?;
        epoll
            .add(
                timer.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_TIMER),
            )
            .map_err(Pid1Error::Epoll)?;
        // The units' timers (restart delays, stop and ready timeouts,
        // watchdogs): one timerfd armed for the earliest.
        let unit_timer = TimerFd::new(
            ClockId::CLOCK_BOOTTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(Pid1Error::TimerFd)?;
        epoll
            .add(
                unit_timer.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_UNIT_TIMER),
            )
            .map_err(Pid1Error::Epoll)?;

        // The control socket. Without it the machine still boots and
        // still answers signals; `liftoff ctl` then says it cannot connect.
        match ControlServer::bind(Path::new(crate::ctl::CONTROL_SOCKET)) {
            Ok(server) => {
                match epoll.add(
                    server.listener_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_CONTROL),
                ) {
                    Ok(()) => self.control = Some(server),
                    Err(e) => warn!("cannot poll the control socket: {e}"),
                }
            }
            Err(e) => warn!("control socket: {}", failure::chain(&e)),
        }

        let mut shutdown = Shutdown::default();
        let mut events = [EpollEvent::empty(); 32];
        let mut queue = VecDeque::new();
        // Children may have exited before the loop started (stage 1's
        // helpers); the units' first actions run before the first wait.
        self.reap(&mut queue);
        self.run_services(&epoll, &unit_timer, &mut queue);
        loop {
            // The only timeout the loop keeps itself: idle control
            // connections are dropped after IDLE_TIMEOUT.
            let timeout = self
                .control
                .as_ref()
                .and_then(|c| c.next_expiry(IDLE_TIMEOUT))
                .map(|at| {
                    let ms = at.saturating_duration_since(Instant::now()).as_millis() + 1;
                    EpollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
                })
                .unwrap_or(EpollTimeout::NONE);
            let n = match epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Pid1Error::EpollWait(e)),
            };
            for event in &events[..n] {
                match event.data() {
                    TOKEN_SIGNAL => self.drain_signals(&signal_fd, &mut queue),
                    TOKEN_TIMER => {
                        // Reading resets the expiry count; EAGAIN means a
                        // stale wake-up after the timer was re-armed.
                        if timer.wait().is_ok() {
                            queue.push_back(Event::TimerExpired);
                        }
                    }
                    TOKEN_UNIT_TIMER => {
                        if unit_timer.wait().is_ok()
                            && let Some(services) = self.services.as_mut()
                        {
                            services.tick();
                        }
                    }
                    TOKEN_CONTROL => self.accept_control(&epoll),
                    token if token >= FIRST_CONN_TOKEN => {
                        self.serve_control(
                            ConnId(token - FIRST_CONN_TOKEN),
                            event.events(),
                            &mut queue,
                        );
                    }
                    token if token >= crate::stage2::FIRST_TOKEN => {
                        if let Some(services) = self.services.as_mut() {
                            services.on_ready(token, &epoll);
                        }
                    }
                    other => debug!("epoll: unknown token {other}"),
                }
            }
            if let Some(control) = self.control.as_mut() {
                control.expire_older_than(Instant::now(), IDLE_TIMEOUT);
            }
            // The units and the shutdown feed each other (a shutdown
            // stops the units; the units' end moves the shutdown on):
            // go round until both are quiet.
            loop {
                self.run_services(&epoll, &unit_timer, &mut queue);
                if queue.is_empty() {
                    break;
                }
                while let Some(event) = queue.pop_front() {
                    for action in shutdown.on(event) {
                        self.act(action, &timer, &mut queue);
                    }
                }
            }
            if let Phase::Done(power) = shutdown.phase() {
                self.finish(power);
            }
        }
    }

    fn accept_control(&mut self, epoll: &Epoll) {
        let Some(control) = self.control.as_mut() else {
            return;
        };
        for id in control.accept() {
            let Some(fd) = control.fd(id) else { continue };
            if let Err(e) = epoll.add(
                fd,
                EpollEvent::new(CONNECTION_EVENTS, FIRST_CONN_TOKEN + id.0),
            ) {
                warn!("cannot poll a control connection: {e}");
                control.close(id);
            }
        }
    }

    /// Reads a control request, answers it, and carries it out: a unit
    /// request goes to the supervisor, a power request starts the
    /// orderly shutdown as a signal would.
    fn serve_control(&mut self, id: ConnId, flags: EpollFlags, queue: &mut VecDeque<Event>) {
        let Some(control) = self.control.as_mut() else {
            return;
        };
        if flags.contains(EpollFlags::EPOLLOUT) {
            control.on_writable(id);
        }
        if !flags.intersects(
            EpollFlags::EPOLLIN
                | EpollFlags::EPOLLRDHUP
                | EpollFlags::EPOLLHUP
                | EpollFlags::EPOLLERR,
        ) {
            return;
        }
        let Some(request) = control.on_readable(id) else {
            return;
        };
        let Some(services) = self.services.as_mut() else {
            control.respond(
                id,
                &crate::ctl::Response::error("no units here: liftoff is not in stage 2"),
            );
            return;
        };
        match crate::ctl::dispatch(request, services.supervisor(), services.boot_complete()) {
            Dispatch::Answer(response) => control.respond(id, &response),
            Dispatch::Supervise(input, response) => {
                control.respond(id, &response);
                services.request(input);
            }
            Dispatch::Shutdown(power, response) => {
                control.respond(id, &response);
                info!("liftoff ctl: {}", power.name());
                queue.push_back(Event::Requested(Request {
                    power,
                    immediate: false,
                }));
            }
        }
    }

    fn drain_signals(&mut self, signal_fd: &SignalFd, queue: &mut VecDeque<Event>) {
        loop {
            match signal_fd.read_signal() {
                Ok(Some(info)) => {
                    let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
                    match signals::meaning(signo) {
                        Some(Meaning::Child) => self.reap(queue),
                        Some(Meaning::Shutdown(request)) => {
                            info!(
                                "signal {signo} from pid {}: {}{}",
                                info.ssi_pid,
                                request.power.name(),
                                if request.immediate {
                                    " (immediate)"
                                } else {
                                    ""
                                }
                            );
                            queue.push_back(Event::Requested(request));
                        }
                        None => debug!("ignoring signal {signo}"),
                    }
                }
                Ok(None) | Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    warn!("reading the signalfd failed: {e}");
                    return;
                }
            }
        }
    }

    fn reap(&mut self, queue: &mut VecDeque<Event>) {
        let reaped = reap::reap_all();
        for status in &reaped.exited {
            debug!("reaped {status:?}");
        }
        if let Some(services) = self.services.as_mut() {
            services.exited(&reaped.exited);
        }
        if reaped.none_left {
            queue.push_back(Event::NoChildren);
        }
    }

    /// Lets the supervisor act on what it was told, turns its outcomes
    /// into shutdown events, and re-arms the units' timer.
    fn run_services(&mut self, epoll: &Epoll, unit_timer: &TimerFd, queue: &mut VecDeque<Event>) {
        let Some(services) = self.services.as_mut() else {
            return;
        };
        for outcome in services.run(epoll) {
            match outcome {
                Outcome::Critical { unit, reason } => {
                    let power = Power::from(self.policy.action);
                    error!(
                        "critical unit {unit} failed: {reason}; failure action: {}",
                        power.name()
                    );
                    queue.push_back(Event::Requested(Request {
                        power,
                        immediate: false,
                    }));
                }
                Outcome::AllStopped => {
                    info!("all units stopped");
                    queue.push_back(Event::UnitsStopped);
                }
            }
        }
        let expiration = services.next_deadline().map(|at| {
            Expiration::OneShot(TimeSpec::from_duration(at.max(Duration::from_nanos(1))))
        });
        let armed = match expiration {
            Some(e) => unit_timer.set(e, TimerSetTimeFlags::TFD_TIMER_ABSTIME),
            None => unit_timer.unset(),
        };
        if let Err(e) = armed {
            warn!("cannot arm the units' timer: {e}");
        }
    }

    fn act(&mut self, action: Action, timer: &TimerFd, queue: &mut VecDeque<Event>) {
        match action {
            Action::SignalAll(signal) => {
                info!("sending {signal} to all processes");
                // kill(-1) reaches every process but PID 1 itself; ESRCH
                // means there was none.
                if let Err(e) = kill(Pid::from_raw(-1), signal)
                    && e != Errno::ESRCH
                {
                    warn!("kill(-1, {signal}) failed: {e}");
                }
            }
            Action::ArmTimer(after) => {
                let expiration = Expiration::OneShot(TimeSpec::from_duration(after));
                if let Err(e) = timer.set(expiration, TimerSetTimeFlags::empty()) {
                    // Without the timer the grace period cannot end; go on
                    // to the next step at once rather than hang.
                    warn!("cannot arm the shutdown timer: {e}");
                    queue.push_back(Event::TimerExpired);
                }
            }
            Action::CheckChildren => self.reap(queue),
            Action::StopUnits => match self.services.as_mut() {
                Some(services) => {
                    info!("stopping units");
                    services.shutdown();
                }
                None => queue.push_back(Event::UnitsStopped),
            },
            Action::Finish(_) => {}
        }
    }

    /// Sync, the unmount loop, remove dm devices, sync, reboot(2).
    fn finish(&mut self, power: Power) -> ! {
        info!("all processes gone; syncing and unmounting");
        sync();
        unmount_all();
        remove_dm_devices();
        sync();
        info!("{}", power.name());
        failure::power_off(power)
    }
}

/// The shutdown unmount loop ([`mounts::unmount`]): unmount what can be,
/// remount the rest read-only, until a pass changes nothing; then the root
/// read-only. Best effort throughout: every failure is counted and
/// reported, none stops the shutdown.
fn unmount_all() {
    let mut table = match read_mount_table() {
        Ok(t) => t,
        Err(e) => {
            warn!("cannot read the mount table: {e}; nothing unmounted");
            return;
        }
    };
    let (mut unmounted, mut remounted) = (0, 0);
    let mut stuck: Vec<String> = Vec::new();
    for _ in 0..unmount::MAX_PASSES {
        stuck.clear();
        for target in unmount::pass(&table) {
            let path = &target.mount_point;
            match umount2(path, MntFlags::empty()) {
                Ok(()) => {
                    unmounted += 1;
                    debug!("unmounted {} ({})", path.display(), target.fstype);
                }
                Err(e) if target.read_only => {
                    stuck.push(format!("{} (read-only): {e}", path.display()));
                }
                // Busy: at least make its filesystem clean. A plain
                // MS_REMOUNT (no MS_BIND) reaches the superblock.
                Err(e) => match remount_read_only(path) {
                    Ok(()) => {
                        remounted += 1;
                        debug!("remounted {} read-only (unmount: {e})", path.display());
                    }
                    Err(e2) => stuck.push(format!("{}: {e}; read-only: {e2}", path.display())),
                },
            }
        }
        let next = match read_mount_table() {
            Ok(t) => t,
            Err(e) => {
                warn!("cannot read the mount table: {e}");
                break;
            }
        };
        let settled = unmount::settled(&table, &next);
        table = next;
        if settled {
            break;
        }
    }
    if unmount::writable_root(&table).is_some() {
        match remount_read_only(Path::new("/")) {
            Ok(()) => remounted += 1,
            Err(e) => stuck.push(format!("/: read-only: {e}")),
        }
    }
    info!("unmounted {unmounted} filesystems, remounted {remounted} read-only");
    for line in &stuck {
        warn!("still mounted: {line}");
    }
}

fn remount_read_only(path: &Path) -> Result<(), Errno> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
}

/// Removes every dm device that is no longer in use. The root's verity
/// device stays (the root is still mounted, read-only): the kernel drops it
/// at power-off, and a read-only device loses nothing.
fn remove_dm_devices() {
    let names = match verity::dm::list() {
        Ok(names) => names,
        // No dm-mod loaded: nothing to remove.
        Err(e) => {
            debug!("dm devices: {e}");
            return;
        }
    };
    for name in names {
        match verity::dm::close(&name) {
            Ok(()) => info!("removed dm device {name}"),
            Err(e) => debug!("dm device {name} kept: {e}"),
        }
    }
}

fn read_mount_table() -> Result<MountTable, Pid1Error> {
    let text = std::fs::read_to_string(abi::PROC_MOUNTINFO).map_err(|source| Pid1Error::Read {
        path: abi::PROC_MOUNTINFO.into(),
        source,
    })?;
    MountTable::parse(&text).map_err(|source| Pid1Error::MountInfo {
        path: abi::PROC_MOUNTINFO.into(),
        source,
    })
}

/// Lets PID 1 log a burst at boot: by default the kernel drops all but ten
/// records per five seconds from each /dev/kmsg writer (`printk_devkmsg=
/// ratelimit`). An operator who pinned `printk.devkmsg=` keeps their choice.
fn allow_kmsg_bursts() {
    match std::fs::read_to_string(abi::PROC_PRINTK_DEVKMSG) {
        Ok(current) if current.trim() == "ratelimit" => {
            if let Err(e) = std::fs::write(abi::PROC_PRINTK_DEVKMSG, "on\n") {
                debug!("cannot lift the kmsg rate limit: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => error!("cannot read {}: {e}", abi::PROC_PRINTK_DEVKMSG),
    }
}
