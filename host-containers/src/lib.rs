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
//! * [`archive`]: a local OCI archive, read and verified blob by blob;
//! * [`spec`]: the OCI runtime spec of an ordinary or superpowered host
//!   container (pure);
//! * `run` (feature `run`): one host container's life through
//!   containerd's gRPC API, `host-ctr run`;
//! * [`cli`]: the `host-ctr` command line (`settings`, `units`, `run`).
//!
//! The user documentation is `docs/host-containers.md`.
//!
//! liftoff's PID 1 links this crate without the `run` feature, for the
//! settings and the generator only: containerd's client (tonic, tokio)
//! stays out of PID 1.

pub mod archive;
pub mod cli;
pub mod generate;
#[cfg(feature = "run")]
pub mod run;
pub mod settings;
pub mod spec;
pub mod unit;

pub use generate::{GenerateError, Generated, GeneratedUnit, generate};
pub use settings::{Settings, SettingsError};
pub use unit::unit_for;
