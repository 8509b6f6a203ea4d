//! The task's standard output and error: two FIFOs that containerd's shim
//! writes and `host-ctr` copies to its own stdout and stderr (which liftoff
//! tags with the unit's name and sends to the kernel log).
//!
//! `host-ctr` opens each FIFO for reading *and* writing, so that opening
//! does not wait for the shim and the reader never sees end-of-file while
//! the shim reopens it (after a containerd restart, say); the copy ends
//! when the task is gone.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

/// Where the FIFOs of host container `NAME` live: `DIR/NAME/stdout`,
/// `DIR/NAME/stderr`.
pub const FIFO_DIR: &str = "/run/host-ctr";

/// The FIFOs of one task and the copies running from them.
#[derive(Debug)]
pub struct Output {
    /// The folder holding the FIFOs.
    pub dir: PathBuf,
    /// The FIFO the task's stdout goes to.
    pub stdout: PathBuf,
    /// The FIFO the task's stderr goes to.
    pub stderr: PathBuf,
    copies: Vec<JoinHandle<()>>,
}

impl Output {
    /// Makes the folder and FIFOs afresh (0700, 0600) and starts copying
    /// from them.
    pub fn open(base: &Path, name: &str) -> std::io::Result<Output> {
        let dir = base.join(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(base)?;
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let stdout = dir.join("stdout");
        let stderr = dir.join("stderr");
        let mut copies = Vec::new();
        for (path, to_stderr) in [(&stdout, false), (&stderr, true)] {
            nix::unistd::mkfifo(path.as_path(), Mode::from_bits_truncate(0o600))
                .map_err(std::io::Error::from)?;
            let receiver = pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(path)?;
            copies.push(tokio::spawn(copy(receiver, to_stderr)));
        }
        Ok(Output {
            dir,
            stdout,
            stderr,
            copies,
        })
    }

    /// Stops copying (after what the FIFOs still hold is read) and removes
    /// the FIFOs.
    pub async fn close(self) {
        // The shim has written everything by the time the task is deleted;
        // give the copies a moment to read it.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        for copy in self.copies {
            copy.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies what arrives on `receiver` to stdout or stderr until an error.
async fn copy(mut receiver: pipe::Receiver, to_stderr: bool) {
    let mut buf = vec![0u8; 8192];
    loop {
        match receiver.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                let written = if to_stderr {
                    let mut err = std::io::stderr().lock();
                    err.write_all(&buf[..n]).and_then(|()| err.flush())
                } else {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf[..n]).and_then(|()| out.flush())
                };
                if written.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
