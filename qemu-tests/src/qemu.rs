//! Boot a guest under QEMU and watch its serial console.
//!
//! [`Vm::start`] spawns `qemu-system-x86_64` with the flags in [`BASE_ARGS`]
//! (each explained there), the kernel and initramfs given by direct boot, and
//! a QMP socket in the run folder. A reader thread copies the serial console
//! into a shared buffer and into `<run dir>/console.log`, so a test can wait
//! for a line ([`Vm::wait_for`]) and a failing test can print what the guest
//! said. QEMU's own stderr goes to `<run dir>/qemu.stderr`.
//!
//! Every wait is bounded twice: by its own timeout and by the run's
//! [`VmConfig::timeout`], so a hung guest cannot hang the test suite. QEMU is
//! killed when the [`Vm`] drops.
//!
//! With `-no-reboot`, every way a guest ends (poweroff, reboot, ctrl-alt-del,
//! a kernel panic with `panic=-1`) makes QEMU exit with status 0: the exit
//! status does not tell them apart, the console does.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::qmp::{QmpClient, QmpError};

/// The QEMU binary, from Debian's `qemu-system-x86` package.
pub const QEMU: &str = "qemu-system-x86_64";

/// Flags every guest gets. Disks, memory, kernel, initrd, command line and
/// QMP socket are added per run.
pub const BASE_ARGS: &[&str] = &[
    // TCG, never KVM: KVM hangs on the project machines, and TCG behaves the
    // same on every developer machine and in CI.
    "-accel",
    "tcg",
    // The i440fx board. It brings the i8042 PS/2 controller (even with
    // -nodefaults: it is part of the board, `-machine pc,i8042=on` by
    // default), through which QMP's send-key delivers ctrl-alt-delete to the
    // kernel's keyboard handler, and PIIX4 ACPI, through which
    // reboot(RB_POWER_OFF) powers off. Plain PCI is all virtio-blk needs; q35
    // would add PCIe and AHCI probing to every boot.
    "-machine",
    "pc",
    // No default NIC, VGA, floppy, CD-ROM, parallel or serial port and no
    // monitor: every device the guest sees is named here or per run.
    "-nodefaults",
    // Ignore the host's /etc/qemu configuration, for reproducible runs.
    "-no-user-config",
    // No window: the serial port is the only console.
    "-display",
    "none",
    // A guest reset (reboot(2), ctrl-alt-delete, `panic=-1`, a triple fault)
    // makes QEMU exit instead of booting again: one boot per run, and a dead
    // PID 1 ends the run instead of looping.
    "-no-reboot",
    // The first serial port (ttyS0, I/O port 0x3f8) on QEMU's stdout, which
    // the harness reads through a pipe. stdin is /dev/null; signal=off keeps
    // a stray ^C from the terminal from reaching QEMU through it.
    "-chardev",
    "stdio,id=console,signal=off",
    "-serial",
    "chardev:console",
];

/// Guest kernel flag: the kernel console (and so `/dev/console` for PID 1)
/// is the first serial port, which the harness captures.
pub const KERNEL_FLAG_CONSOLE: &str = "console=ttyS0";
/// Guest kernel flag: on a panic (for example PID 1 exiting), reboot at once
/// instead of hanging; with `-no-reboot` QEMU then exits, so the run ends
/// right away. Not `reboot=`: with `-no-reboot` any reset method exits QEMU.
pub const KERNEL_FLAG_PANIC: &str = "panic=-1";
/// Guest kernel flag: do not rate-limit writes to `/dev/kmsg` (the default,
/// `ratelimit`, drops lines after a burst of 10), since liftoff logs there
/// before it has a console and tests read those lines.
pub const KERNEL_FLAG_DEVKMSG: &str = "printk.devkmsg=on";

/// The default kernel command line, the flags above joined by spaces.
pub const DEFAULT_APPEND: &str = "console=ttyS0 panic=-1 printk.devkmsg=on";

/// Default guest memory. A stock Debian kernel with a small initramfs boots
/// in far less; 512 MiB leaves room for page-cache-heavy hashing tests.
pub const DEFAULT_MEMORY_MIB: u32 = 512;
/// Default limit on one whole run. A stock kernel reaches /init in about two
/// guest seconds under TCG (about six wall seconds on two cores).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long QEMU may take to create its QMP socket.
const QMP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much console output an error message quotes.
const TAIL_BYTES: usize = 4000;
/// Longest path a unix socket address can hold (`sun_path` is 108 bytes with
/// its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What to boot and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// The kernel image (`vmlinuz`), booted directly with `-kernel`.
    pub kernel: PathBuf,
    /// The initramfs (`-initrd`).
    pub initrd: PathBuf,
    /// The guest kernel command line; see [`DEFAULT_APPEND`].
    pub append: String,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Raw disk images, attached as virtio-blk drives in order
    /// (`/dev/vda`, `/dev/vdb`, …).
    pub disks: Vec<PathBuf>,
    /// Limit on the whole run, from start to exit.
    pub timeout: Duration,
    /// More QEMU arguments, appended last.
    pub extra_args: Vec<OsString>,
    /// Where to keep `console.log`, `qemu.stderr` and `qmp.sock`; a
    /// temporary folder (removed with the [`Vm`]) if `None`. The socket path
    /// must stay under 108 bytes.
    pub run_dir: Option<PathBuf>,
    /// Also copy the console to this process's stderr as it arrives (for
    /// `cargo xtask demo` and debugging).
    pub echo_console: bool,
}

impl VmConfig {
    /// A configuration with the defaults: [`DEFAULT_APPEND`],
    /// [`DEFAULT_MEMORY_MIB`], [`DEFAULT_TIMEOUT`], no disks.
    pub fn new(kernel: impl Into<PathBuf>, initrd: impl Into<PathBuf>) -> Self {
        Self {
            kernel: kernel.into(),
            initrd: initrd.into(),
            append: DEFAULT_APPEND.to_owned(),
            memory_mib: DEFAULT_MEMORY_MIB,
            disks: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            extra_args: Vec::new(),
            run_dir: None,
            echo_console: false,
        }
    }

    /// The full QEMU argument list for a run whose QMP socket is `qmp_socket`.
    pub fn qemu_args(&self, qmp_socket: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = BASE_ARGS.iter().map(OsString::from).collect();
        let mut push = |flag: &str, value: OsString| {
            args.push(flag.into());
            args.push(value);
        };
        push("-m", self.memory_mib.to_string().into());
        push("-kernel", self.kernel.clone().into());
        push("-initrd", self.initrd.clone().into());
        push("-append", self.append.clone().into());
        for disk in &self.disks {
            // `file=` takes a comma-separated option string: a comma in the
            // path is doubled to escape it.
            let mut drive = OsString::from("file=");
            drive.push(disk.to_string_lossy().replace(',', ",,"));
            // Raw, so QEMU does not probe the format (and warn); virtio-blk
            // over PCI, so the guest needs only virtio_pci and virtio_blk.
            drive.push(",format=raw,if=virtio");
            push("-drive", drive);
        }
        // A QMP server on a unix socket; wait=off lets QEMU start the guest
        // without waiting for the harness to connect.
        let mut qmp = OsString::from("unix:");
        qmp.push(qmp_socket);
        qmp.push(",server=on,wait=off");
        push("-qmp", qmp);
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// What failed while running a guest.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// The run folder or a file in it could not be created.
    #[error("cannot create {}", path.display())]
    RunDir {
        /// The folder or file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The QMP socket path does not fit a unix socket address.
    #[error("qmp socket path {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter run_dir", path.display())]
    SocketPathTooLong {
        /// The socket path.
        path: PathBuf,
    },
    /// QEMU could not be started.
    #[error("cannot run {QEMU} (install qemu-system-x86)")]
    Spawn {
        #[source]
        source: io::Error,
    },
    /// QEMU exited before its QMP socket answered, usually a bad argument or
    /// a missing kernel file.
    #[error("{QEMU} exited at start ({status}): {stderr}")]
    ExitedAtStart {
        /// How it exited.
        status: ExitStatus,
        /// QEMU's stderr.
        stderr: String,
    },
    /// A QMP exchange failed.
    #[error("qmp {action} failed")]
    Qmp {
        /// What was being done, e.g. "send ctrl-alt-delete".
        action: &'static str,
        #[source]
        source: QmpError,
    },
    /// The console did not show the pattern in time.
    #[error("console did not show {pattern:?} within {waited:?}; console tail:\n{tail}")]
    PatternTimeout {
        /// The pattern waited for.
        pattern: String,
        /// How long it waited.
        waited: Duration,
        /// The end of the console output.
        tail: String,
    },
    /// The console closed (QEMU exited) without showing the pattern.
    #[error("qemu exited before the console showed {pattern:?}; console tail:\n{tail}")]
    ExitedBeforePattern {
        /// The pattern waited for.
        pattern: String,
        /// The end of the console output.
        tail: String,
    },
    /// QEMU did not exit in time and was killed.
    #[error("qemu did not exit within {waited:?} and was killed; console tail:\n{tail}")]
    ExitTimeout {
        /// How long it waited.
        waited: Duration,
        /// The end of the console output.
        tail: String,
    },
    /// Waiting for or killing the QEMU process failed.
    #[error("cannot {action} qemu (pid {pid})")]
    Process {
        /// "wait for" or "kill".
        action: &'static str,
        /// QEMU's process id.
        pid: u32,
        #[source]
        source: io::Error,
    },
}

/// A running (or finished) guest. QEMU is killed when this drops.
#[derive(Debug)]
pub struct Vm {
    child: ChildGuard,
    console: Arc<Console>,
    reader: Option<JoinHandle<()>>,
    qmp: QmpClient,
    run_dir: PathBuf,
    deadline: Instant,
    // Dropped last (fields drop in order), after QEMU is dead.
    _tmp: Option<TempDir>,
}

impl Vm {
    /// Start QEMU and connect to its QMP socket. The guest starts running at
    /// once; the run's time limit starts now.
    pub fn start(config: &VmConfig) -> Result<Self, QemuError> {
        let started = Instant::now();
        // 1. The run folder: the caller's, or a temporary one.
        let (tmp, run_dir) = match &config.run_dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|source| QemuError::RunDir {
                    path: dir.clone(),
                    source,
                })?;
                (None, dir.clone())
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("liftoff-vm-")
                    .tempdir()
                    .map_err(|source| QemuError::RunDir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let socket = run_dir.join("qmp.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(QemuError::SocketPathTooLong { path: socket });
        }
        // A socket left by an earlier run in the same folder would make QEMU
        // fail to bind; it is ours to remove.
        let _ = fs::remove_file(&socket);
        let create = |name: &str| {
            let path = run_dir.join(name);
            File::create(&path).map_err(|source| QemuError::RunDir { path, source })
        };
        let log = create("console.log")?;
        let stderr = create("qemu.stderr")?;

        // 2. QEMU, with the console on a pipe.
        let mut child = Command::new(QEMU)
            .args(config.qemu_args(&socket))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|source| QemuError::Spawn { source })?;
        let stdout = child.stdout.take();
        let mut child = ChildGuard(child);

        // 3. The console reader.
        let console = Arc::new(Console::default());
        let reader = stdout.map(|stdout| {
            let console = Arc::clone(&console);
            let echo = config.echo_console;
            std::thread::spawn(move || read_console(stdout, log, echo, &console))
        });

        // 4. QMP, polling so that a QEMU that dies at start is reported with
        //    its stderr instead of as a connection timeout.
        let connect_deadline = Instant::now() + QMP_CONNECT_TIMEOUT;
        let qmp = loop {
            if let Some(status) = child.try_wait()? {
                return Err(exited_at_start(status, &run_dir));
            }
            match QmpClient::connect(&socket, Duration::from_millis(100)) {
                Ok(qmp) => break qmp,
                Err(QmpError::Connect { .. }) if Instant::now() < connect_deadline => {}
                // QEMU creates the socket before it loads the kernel, so a
                // bad kernel path shows up as a reset connection: prefer
                // QEMU's own explanation when it is exiting.
                Err(source) => {
                    return Err(match child.wait_briefly(Duration::from_secs(2))? {
                        Some(status) => exited_at_start(status, &run_dir),
                        None => QemuError::Qmp {
                            action: "connect",
                            source,
                        },
                    });
                }
            }
        };

        Ok(Self {
            child,
            console,
            reader,
            qmp,
            run_dir,
            deadline: started + config.timeout,
            _tmp: tmp,
        })
    }

    /// Wait until the console output (from the start of the run) contains
    /// `pattern`. Fails when `timeout` or the run's limit passes, or when
    /// QEMU exits first; the error quotes the console's tail.
    pub fn wait_for(&self, pattern: &str, timeout: Duration) -> Result<(), QemuError> {
        let started = Instant::now();
        let deadline = self.deadline.min(started + timeout);
        let needle = pattern.as_bytes();
        let mut state = self.console.lock();
        loop {
            if contains(&state.bytes, needle) {
                return Ok(());
            }
            if state.closed {
                return Err(QemuError::ExitedBeforePattern {
                    pattern: pattern.to_owned(),
                    tail: tail(&state.bytes),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(QemuError::PatternTimeout {
                    pattern: pattern.to_owned(),
                    waited: now - started,
                    tail: tail(&state.bytes),
                });
            }
            state = self
                .console
                .grew
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Wait for QEMU to exit, at most `timeout` (and the run's limit). On
    /// timeout QEMU is killed and the error says so. Once it returns, the
    /// console holds everything the guest printed.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, QemuError> {
        let started = Instant::now();
        let deadline = self.deadline.min(started + timeout);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.join_reader();
                return Ok(status);
            }
            let now = Instant::now();
            if now >= deadline {
                self.child.kill()?;
                self.join_reader();
                return Err(QemuError::ExitTimeout {
                    waited: now - started,
                    tail: tail(&self.console.lock().bytes),
                });
            }
            std::thread::sleep(Duration::from_millis(20).min(deadline - now));
        }
    }

    /// Press ctrl-alt-delete on the guest's PS/2 keyboard. Unless PID 1 has
    /// disabled it (reboot(RB_DISABLE_CAD)), the kernel restarts at once and,
    /// with `-no-reboot`, QEMU exits; otherwise PID 1 gets SIGINT.
    pub fn send_ctrl_alt_del(&mut self) -> Result<(), QemuError> {
        self.qmp
            .send_ctrl_alt_del()
            .map_err(|source| QemuError::Qmp {
                action: "send ctrl-alt-delete",
                source,
            })
    }

    /// The QMP session, for commands the harness has no method for.
    pub fn qmp(&mut self) -> &mut QmpClient {
        &mut self.qmp
    }

    /// Everything the console printed so far (invalid UTF-8 replaced).
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&self.console.lock().bytes).into_owned()
    }

    /// The run folder (`console.log`, `qemu.stderr`, `qmp.sock`).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The console log file, complete once QEMU has exited.
    pub fn console_log(&self) -> PathBuf {
        self.run_dir.join("console.log")
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            // The reader only ends at EOF, which QEMU's exit guarantees. A
            // panic in it (none is expected) leaves the buffer as it was.
            let _ = reader.join();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // Best effort: there is nobody to report a failed kill to, and the
        // process is gone either way once the guard's wait returns.
        let _ = self.child.kill();
        self.join_reader();
    }
}

fn exited_at_start(status: ExitStatus, run_dir: &Path) -> QemuError {
    // Best effort: the exit status alone still says something went wrong.
    let stderr = fs::read_to_string(run_dir.join("qemu.stderr")).unwrap_or_default();
    QemuError::ExitedAtStart {
        status,
        stderr: stderr.trim().to_owned(),
    }
}

/// Owns the QEMU process and kills it when dropped, also on early returns
/// from [`Vm::start`].
#[derive(Debug)]
struct ChildGuard(Child);

impl ChildGuard {
    fn try_wait(&mut self) -> Result<Option<ExitStatus>, QemuError> {
        let pid = self.0.id();
        self.0.try_wait().map_err(|source| QemuError::Process {
            action: "wait for",
            pid,
            source,
        })
    }

    /// Wait up to `timeout` for the process to exit by itself.
    fn wait_briefly(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, QemuError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.try_wait()?;
            if status.is_some() || Instant::now() >= deadline {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill (if still running) and reap.
    fn kill(&mut self) -> Result<(), QemuError> {
        let pid = self.0.id();
        if self.try_wait()?.is_none() {
            // An error here means it exited meanwhile; the wait reaps it.
            let _ = self.0.kill();
        }
        self.0
            .wait()
            .map(drop)
            .map_err(|source| QemuError::Process {
                action: "wait for",
                pid,
                source,
            })
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// The console as read so far, shared between the reader thread and waiters.
#[derive(Debug, Default)]
struct Console {
    state: Mutex<ConsoleState>,
    grew: Condvar,
}

#[derive(Debug, Default)]
struct ConsoleState {
    bytes: Vec<u8>,
    /// The pipe reached EOF (or failed): nothing more will arrive.
    closed: bool,
}

impl Console {
    fn lock(&self) -> MutexGuard<'_, ConsoleState> {
        // The state is plain bytes, valid whatever a panicking holder did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Copy QEMU's stdout into the buffer, the log file and (optionally) stderr
/// until EOF. Writing the log and the echo is best effort: the buffer is
/// what tests read, and a full disk must not stop the guest's console.
fn read_console(mut stdout: ChildStdout, mut log: File, echo: bool, console: &Console) {
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stdout.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let data = &chunk[..n];
        let _ = log.write_all(data);
        if echo {
            let _ = io::stderr().write_all(data);
        }
        console.lock().bytes.extend_from_slice(data);
        console.grew.notify_all();
    }
    console.lock().closed = true;
    console.grew.notify_all();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The last [`TAIL_BYTES`] of the console, from a line start when possible.
fn tail(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        // Under TCG the kernel prints nothing for the first second or two
        // (decompression, early boot before the serial console registers).
        return "(no console output yet)".to_owned();
    }
    let start = bytes.len().saturating_sub(TAIL_BYTES);
    let mut tail = &bytes[start..];
    if start > 0
        && let Some(newline) = tail.iter().position(|byte| *byte == b'\n')
    {
        tail = &tail[newline + 1..];
    }
    String::from_utf8_lossy(tail).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_append_is_the_documented_flags() {
        assert_eq!(
            DEFAULT_APPEND,
            [KERNEL_FLAG_CONSOLE, KERNEL_FLAG_PANIC, KERNEL_FLAG_DEVKMSG].join(" ")
        );
    }

    #[test]
    fn qemu_args_name_kernel_initrd_disks_and_socket() {
        let mut config = VmConfig::new("/k/vmlinuz", "/k/initrd.cpio");
        config.disks = vec![
            PathBuf::from("/img/root.raw"),
            PathBuf::from("/img/a,b.raw"),
        ];
        config.memory_mib = 256;
        config.extra_args = vec!["-smp".into(), "2".into()];
        let args: Vec<String> = config
            .qemu_args(Path::new("/run/qmp.sock"))
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect();
        let pairs: Vec<(&str, &str)> = args
            .windows(2)
            .map(|pair| (pair[0].as_str(), pair[1].as_str()))
            .collect();
        for expected in [
            ("-accel", "tcg"),
            ("-machine", "pc"),
            ("-m", "256"),
            ("-kernel", "/k/vmlinuz"),
            ("-initrd", "/k/initrd.cpio"),
            ("-append", DEFAULT_APPEND),
            ("-drive", "file=/img/root.raw,format=raw,if=virtio"),
            ("-drive", "file=/img/a,,b.raw,format=raw,if=virtio"),
            ("-qmp", "unix:/run/qmp.sock,server=on,wait=off"),
        ] {
            assert!(
                pairs.contains(&expected),
                "{expected:?} missing from {args:?}"
            );
        }
        assert!(args.contains(&"-no-reboot".to_owned()));
        assert!(!args.iter().any(|arg| arg.contains("kvm")), "{args:?}");
        assert_eq!(&args[args.len() - 2..], ["-smp", "2"]);
    }

    #[test]
    fn tail_starts_at_a_line() {
        let mut console = vec![b'x'; TAIL_BYTES];
        console.extend_from_slice(b"\nlast line\n");
        assert_eq!(tail(&console), "last line\n");
        assert_eq!(tail(b"short\n"), "short\n");
        assert_eq!(tail(b""), "(no console output yet)");
    }

    #[test]
    fn contains_finds_substrings() {
        assert!(contains(b"hello from init\r\n", b"from init"));
        assert!(!contains(b"hello", b"hello from init"));
    }

    #[test]
    fn a_missing_qemu_or_kernel_is_reported_with_stderr() {
        // Runs the real binary (a harness requirement) only to see it fail at
        // start; no guest boots.
        let dir = tempfile::tempdir().unwrap();
        let mut config = VmConfig::new(
            dir.path().join("no-such-vmlinuz"),
            dir.path().join("no-initrd"),
        );
        config.run_dir = Some(dir.path().join("run"));
        match Vm::start(&config) {
            Err(QemuError::ExitedAtStart { stderr, .. }) => {
                assert!(stderr.contains("no-such-vmlinuz"), "{stderr}");
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
}
