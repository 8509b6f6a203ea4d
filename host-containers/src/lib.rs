//! liftoff's host containers: long-lived system containers (Bottlerocket's
//! admin and control containers) that operators use instead of SSH, each
//! supervised by liftoff as an ordinary unit named after it.
//!
//! * [`settings`]: one TOML file per host container, shipped by the image
//!   in `/etc/liftoff/host-containers` and overridden by the operator in
//!   `/local/host-containers` (pure parsing and merging, plus the thin
//!   directory reader);
//! * [`unit`](mod@unit): the unit file that runs an enabled host container (pure);
//! * [`generate`](mod@generate): the boot-time generator that writes those
//!   unit files into `/run/liftoff/units`;
//! * [`cli`]: the `host-ctr` command line (`settings`, `units`).
//!
//! The user documentation is `docs/host-containers.md`.
//!
//! Left out: running the container (containerd's API). The generated units
//! run `host-ctr run --name NAME --source ARCHIVE [--superpowered]`, which
//! does not exist yet: importing the archive, creating the container from
//! an OCI runtime spec and supervising its task through containerd's gRPC
//! API are future work, as are the separate containerd instance for host
//! containers and their SELinux domains.

pub mod archive;
pub mod cli;
pub mod generate;
pub mod settings;
pub mod spec;
pub mod unit;

pub use generate::{GenerateError, Generated, GeneratedUnit, generate};
pub use settings::{Settings, SettingsError};
pub use unit::unit_for;
