//! The unit file as serde reads it, before any check: every key optional so
//! that a missing key gets its default (or a "required" error naming it), and
//! values that need checking kept [`Spanned`] so errors can name their line.
//! Enumerations are plain strings here so that a bad word gets liftoff's
//! message ("is not one of …") rather than serde's.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::{Spanned, Value};

/// A string with its position.
pub(super) type Text = Spanned<String>;

/// The top level of a unit file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUnit {
    pub description: Option<Text>,
    #[serde(rename = "type")]
    pub kind: Option<Text>,
    pub boot: Option<Text>,
    pub exec: Option<Spanned<Vec<Text>>>,

    #[serde(default)]
    pub requires: Vec<Text>,
    #[serde(default)]
    pub wants: Vec<Text>,
    #[serde(default)]
    pub after: Vec<Text>,
    #[serde(default)]
    pub before: Vec<Text>,

    pub restart: Option<Text>,
    pub restart_delay: Option<Spanned<Value>>,
    pub restart_delay_max: Option<Spanned<Value>>,
    pub start_limit_burst: Option<Spanned<i64>>,
    pub start_limit_interval: Option<Spanned<Value>>,
    pub critical: Option<bool>,
    pub ready_timeout: Option<Spanned<Value>>,
    pub watchdog: Option<Spanned<Value>>,

    pub stop_signal: Option<Spanned<Value>>,
    pub stop_timeout: Option<Spanned<Value>>,
    pub kill_mode: Option<Text>,

    #[serde(default)]
    pub environment: BTreeMap<Text, Text>,
    pub working_directory: Option<Text>,
    pub user: Option<Text>,
    pub group: Option<Text>,
    #[serde(default)]
    pub supplementary_groups: Vec<Text>,
    pub capabilities: Option<Vec<Text>>,
    #[serde(default)]
    pub ambient_capabilities: Vec<Text>,
    pub no_new_privileges: Option<bool>,
    pub oom_score_adj: Option<Spanned<i64>>,
    pub stdout: Option<Spanned<Value>>,
    pub stderr: Option<Spanned<Value>>,
    pub selinux_context: Option<Text>,
    pub selinux_type: Option<Text>,
    #[serde(default)]
    pub limits: BTreeMap<Text, Spanned<Value>>,
    #[serde(default)]
    pub cgroup: RawCgroup,
}

/// The `[cgroup]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCgroup {
    pub memory_max: Option<Spanned<Value>>,
    pub pids_max: Option<Spanned<Value>>,
    pub delegate: Option<bool>,
}
