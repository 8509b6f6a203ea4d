//! liftoff's units: unit files ([`file`](mod@file)), the dependency graph
//! ([`graph`]), the supervisor state machine ([`supervisor`]), sd_notify
//! ([`notify`]), and starting a unit's process ([`spawn`], [`cgroup`], and
//! its SELinux context from [`selinux`]).
//!
//! Everything but `spawn` and `cgroup` is pure and tested on the host;
//! the PID 1 event loop (`init/src/stage2.rs`) drives it: it feeds the
//! supervisor what happened (exits, notify messages, requests, time) and
//! carries out the actions it returns. The user documentation of the unit
//! file is `docs/units.md`.
//!
//! Left out: socket activation, timers, templates, and anything that would
//! need PID 1 to run more than one thread.

pub mod cgroup;
pub mod file;
pub mod graph;
pub mod notify;
pub mod selinux;
pub mod spawn;
pub mod supervisor;
pub mod unit;

pub use unit::{Boot, KillMode, Kind, Output, Restart, SelinuxLabel, Unit, UnitName};
