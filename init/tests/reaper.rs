//! The reaper collects orphans it never started, as PID 1 must.
//!
//! This test makes its own process a child subreaper (prctl(2)
//! PR_SET_CHILD_SUBREAPER), the same re-parenting PID 1 gets from the kernel,
//! so it lives in its own test binary and changes nothing for other tests.

use std::process::Command;
use std::time::{Duration, Instant};

use liftoff_init::reap::reap_all;
use nix::sys::wait::WaitStatus;

#[test]
fn orphans_of_an_exited_parent_are_reaped() {
    nix::sys::prctl::set_child_subreaper(true).expect("prctl(PR_SET_CHILD_SUBREAPER)");

    // The shell starts a background child that outlives it, prints its pid,
    // and exits: the orphan is re-parented to us, like a double-forking
    // daemon's grandchild is to PID 1.
    let shell = Command::new("sh")
        .args(["-c", "sleep 0.3 & echo $!"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let shell_pid = shell.id() as i32;
    let output = shell.wait_with_output_without_reaping();
    let orphan_pid: i32 = output.trim().parse().expect("orphan pid");

    let mut exited = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reaped = reap_all();
        exited.extend(reaped.exited.iter().filter_map(|s| match s {
            WaitStatus::Exited(pid, 0) => Some(pid.as_raw()),
            _ => None,
        }));
        if reaped.none_left {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children still running after 10 s: reaped {exited:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    exited.sort_unstable();
    let mut want = vec![shell_pid, orphan_pid];
    want.sort_unstable();
    assert_eq!(
        exited, want,
        "both the shell and its orphan are reaped, each once"
    );
    // Nothing is left to reap: a further pass finds no children at all.
    assert!(reap_all().none_left);
}

/// Reads the child's stdout to the end without calling wait(): the reaper
/// under test must be the one to collect the exit status.
trait ReadWithoutReaping {
    fn wait_with_output_without_reaping(self) -> String;
}

impl ReadWithoutReaping for std::process::Child {
    fn wait_with_output_without_reaping(mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(mut stdout) = self.stdout.take() {
            stdout.read_to_string(&mut text).expect("read stdout");
        }
        // Dropping a Child neither waits nor kills it.
        drop(self);
        text
    }
}
