//! Turn the kernel command line into a typed, validated [`BootPlan`].
//!
//! What it does:
//! * splits the line byte for byte like the kernel (`next_arg()` in
//!   lib/cmdline.c, `parse_args()` in kernel/params.c), quirks included, and
//!   hands everything after a bare `--` to init ([`tokenize`]);
//! * reads the keys PID 1 acts on — `root=`, `ro`/`rw`, `rootwait`,
//!   `selinux=`, `roothash=` and `systemd.verity_root_*`, `dm-mod.create=`
//!   with the kernel's full grammar and limits, and liftoff's own
//!   `liftoff.*` keys — comparing names like the kernel's `parameq()`
//!   (`-` equals `_`);
//! * derives the Discoverable Partitions UUIDs from `roothash=` exactly as
//!   systemd-repart writes them;
//! * reports every malformed key at once ([`Rejected`]) while still handing
//!   back the failure policy the line stated, so PID 1 fails the way the
//!   operator asked.
//!
//! What it leaves out:
//! * all I/O: the caller reads `/proc/cmdline` (or a file, or a string);
//! * looking devices up, loading modules, creating dm devices: the plan only
//!   says what to do;
//! * the arguments of device-mapper targets, which stay strings (the
//!   `verity` crate parses verity tables);
//! * keys it does not know, which are kept in [`BootPlan::unknown`] and are
//!   never an error — except under `liftoff.`, where a typo must not pass.
//!
//! See docs/cmdline.md for every key.

pub mod dm;
pub mod error;
pub mod liftoff;
mod plan;
pub mod root;
pub mod tokenize;
pub mod verity;

pub use dm::{DmDevice, DmTarget};
pub use error::{CmdlineError, Rejected};
pub use liftoff::{CorruptionAction, FailureAction, FailurePolicy, LogLevel};
pub use plan::{
    BootPlan, DEFAULT_BOOT_READ_AHEAD_KB, MAX_BOOT_READ_AHEAD_KB, Param, parse, parse_bytes,
};
pub use root::{RootDevice, RootWait};
pub use verity::{DiscoverableUuids, RootHash, RootHashVerity, Salt, VerityOptions, VeritySource};

#[cfg(test)]
mod tests;
