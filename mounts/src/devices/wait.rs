//! The bounded wait for devices, woken by uevents instead of a sleep loop.
//!
//! 1. The caller opens the uevent source first ([`UeventSocket::open`]),
//!    so a device that appears while sysfs is being scanned still queues
//!    an event;
//! 2. scan sysfs, and resolve every spec;
//! 3. block in `poll` on the source for the time that is left;
//! 4. on a block uevent, re-read just that device's disk and resolve again;
//!    on a lost-event overflow, scan everything again;
//! 5. return when every spec resolves; fail at once when one is ambiguous;
//!    on timeout, say which specs are missing and what was seen.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::uevent::{Action, UeventSocket, UeventSource, Wake};
use super::{DeviceError, DeviceSpec, DeviceTable, Match, Missing, resolve, sysfs};

/// A spec and the device it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What was asked for.
    pub spec: DeviceSpec,
    /// The device's name in sysfs.
    pub name: String,
    /// Its node, e.g. `/dev/vda2`.
    pub node: PathBuf,
}

enum Outcome {
    Done(Vec<Resolved>),
    Waiting(Vec<(DeviceSpec, Missing)>),
}

fn check(specs: &[DeviceSpec], table: &DeviceTable) -> Result<Outcome, DeviceError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for spec in specs {
        match resolve(spec, table) {
            Match::Found { name, node } => found.push(Resolved {
                spec: spec.clone(),
                name,
                node,
            }),
            Match::Missing(why) => missing.push((spec.clone(), why)),
            Match::Ambiguous(devices) => {
                return Err(DeviceError::Ambiguous {
                    spec: spec.clone(),
                    devices,
                });
            }
        }
    }
    Ok(if missing.is_empty() {
        Outcome::Done(found)
    } else {
        Outcome::Waiting(missing)
    })
}

/// Wait up to `timeout` until every spec names exactly one device.
///
/// `uevents` must have been opened before this call (see the module doc).
/// Returns the devices in the order of `specs`.
///
/// # Errors
/// [`DeviceError::Timeout`] listing what is missing and every device seen,
/// [`DeviceError::Ambiguous`] as soon as a spec matches two devices, or a
/// sysfs or uevent socket failure.
pub fn wait_for<U: UeventSource>(
    uevents: &mut U,
    sys_root: &Path,
    dev_root: &Path,
    specs: &[DeviceSpec],
    timeout: Duration,
) -> Result<Vec<Resolved>, DeviceError> {
    let start = Instant::now();
    let mut table = sysfs::scan(sys_root, dev_root)?;
    loop {
        let missing = match check(specs, &table)? {
            Outcome::Done(found) => return Ok(found),
            Outcome::Waiting(missing) => missing,
        };
        let Some(left) = timeout
            .checked_sub(start.elapsed())
            .filter(|l| !l.is_zero())
        else {
            return Err(DeviceError::Timeout {
                timeout,
                missing,
                seen: table.devices,
            });
        };
        match uevents.wait(left)? {
            Wake::TimedOut => {}
            Wake::Overflow => table = sysfs::scan(sys_root, dev_root)?,
            Wake::Events(events) => {
                for event in &events {
                    let interesting =
                        matches!(event.action, Action::Add | Action::Change | Action::Remove);
                    if let Some(name) = event.block_name().filter(|_| interesting) {
                        sysfs::rescan(&mut table, sys_root, dev_root, name)?;
                    }
                }
            }
        }
    }
}

/// [`wait_for`] on the real system: the kernel's uevent socket, `/sys` and
/// `/dev`.
///
/// # Errors
/// As [`wait_for`], and the socket cannot be opened.
pub fn wait_for_devices(
    specs: &[DeviceSpec],
    timeout: Duration,
) -> Result<Vec<Resolved>, DeviceError> {
    // The socket first: see step 1.
    let mut uevents = UeventSocket::open()?;
    wait_for(
        &mut uevents,
        Path::new("/sys"),
        Path::new("/dev"),
        specs,
        timeout,
    )
}
