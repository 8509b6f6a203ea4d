//! The typed [`BootPlan`] and [`parse`], which builds it from the words the
//! tokenizer produced.
//!
//! Scalar keys follow the kernel: the last occurrence wins. Every malformed
//! occurrence is reported, even one a later occurrence overrides, because a
//! typo that happens to be shadowed today is a boot failure tomorrow.

use std::time::Duration;

use serde::Serialize;

use crate::dm::{DmDevice, parse_dm_create, parse_dm_waitfor};
use crate::error::{CmdlineError, DurationError, Rejected};
use crate::liftoff::{
    CorruptionAction, DEFAULT_DEVICE_TIMEOUT, FailureAction, FailurePolicy, LogLevel,
    check_module_name, parse_duration, serialize_duration,
};
use crate::root::{DeviceForms, RootDevice, RootWait, parse_device, parse_rootwait_secs};
use crate::tokenize::{Arg, split_args};
use crate::verity::{DiscoverableUuids, RootHash, RootHashVerity, VerityOptions, VeritySource};

/// A `key[=value]` the plan does not interpret, kept in command-line order
/// (e.g. `console=`, `BOOT_IMAGE=`, `systemd.log_target=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    /// The key as written.
    pub key: String,
    /// The value, `None` for a bare word.
    pub value: Option<String>,
}

/// Everything PID 1 needs from the command line, typed and validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootPlan {
    /// `root=`.
    pub root: Option<RootDevice>,
    /// `rootfstype=`: filesystem types to try, in order (empty: probe).
    pub root_fstype: Vec<String>,
    /// `rootflags=`: mount data, verbatim.
    pub root_flags: Option<String>,
    /// `ro` (`Some(true)`) or `rw` (`Some(false)`), last one wins; `None`
    /// when neither is given, where the kernel's default is read-only
    /// (`root_mountflags = MS_RDONLY`); see [`BootPlan::root_read_only`].
    pub read_only: Option<bool>,
    /// `rootwait` or `rootwait=<secs>`.
    pub root_wait: Option<RootWait>,
    /// `init=`: the program stage 1 executes on the new root.
    pub init: Option<String>,
    /// `selinux=0|1`.
    pub selinux: Option<bool>,
    /// `enforcing=0|1`.
    pub enforcing: Option<bool>,
    /// How the root is verity-protected, if it is.
    pub verity: Option<VeritySource>,
    /// `dm-mod.create=`: every mapped device, verity or not.
    pub dm_create: Vec<DmDevice>,
    /// `dm-mod.waitfor=`: devices to wait for before creating them.
    pub dm_waitfor: Vec<RootDevice>,
    /// `liftoff.modules=`: extra kernel modules to load, in order, without
    /// duplicates (occurrences accumulate).
    pub modules: Vec<String>,
    /// `liftoff.device_timeout=`: how long to wait for each device.
    #[serde(serialize_with = "serialize_duration")]
    pub device_timeout: Duration,
    /// `liftoff.on_failure=` and `liftoff.failure_delay=`.
    pub failure: FailurePolicy,
    /// `liftoff.verity.on_corruption=`.
    pub verity_on_corruption: CorruptionAction,
    /// `liftoff.log=`.
    pub log: LogLevel,
    /// `liftoff.boot_read_ahead_kb=`: the read-ahead, in KiB, of the root's
    /// verity device until boot completes; `None` (`off`) leaves the
    /// kernel's.
    pub boot_read_ahead_kb: Option<u32>,
    /// Words after `--`, as the kernel passes them to init.
    pub init_args: Vec<String>,
    /// Every key the plan does not interpret, in order.
    pub unknown: Vec<Param>,
}

impl Default for BootPlan {
    /// The plan of an empty command line.
    fn default() -> Self {
        Self {
            root: None,
            root_fstype: Vec::new(),
            root_flags: None,
            read_only: None,
            root_wait: None,
            init: None,
            selinux: None,
            enforcing: None,
            verity: None,
            dm_create: Vec::new(),
            dm_waitfor: Vec::new(),
            modules: Vec::new(),
            device_timeout: DEFAULT_DEVICE_TIMEOUT,
            failure: FailurePolicy::default(),
            verity_on_corruption: CorruptionAction::default(),
            log: LogLevel::default(),
            boot_read_ahead_kb: Some(DEFAULT_BOOT_READ_AHEAD_KB),
            init_args: Vec::new(),
            unknown: Vec::new(),
        }
    }
}

impl BootPlan {
    /// Whether the root is mounted read-only: `ro`/`rw` if given, else the
    /// kernel's default, read-only.
    #[must_use]
    pub fn root_read_only(&self) -> bool {
        self.read_only.unwrap_or(true)
    }
}

/// Known `liftoff.*` keys, for the unknown-key error.
const LIFTOFF_KEYS: &str = "liftoff.modules, liftoff.device_timeout, liftoff.on_failure, liftoff.failure_delay, liftoff.verity.on_corruption, liftoff.log, liftoff.boot_read_ahead_kb";

/// The default of `liftoff.boot_read_ahead_kb=`: 2 MiB, what Android
/// devices' init scripts set on their system partitions while booting
/// (the kernel's own default is 128 KiB).
pub const DEFAULT_BOOT_READ_AHEAD_KB: u32 = 2048;
/// The largest `liftoff.boot_read_ahead_kb=`: 64 MiB. More would only
/// read what boot never touches.
pub const MAX_BOOT_READ_AHEAD_KB: u32 = 65536;

/// `liftoff.boot_read_ahead_kb=`'s value: `off` (`Some(None)`), or a
/// whole number of KiB from 1 to [`MAX_BOOT_READ_AHEAD_KB`].
fn parse_read_ahead(value: &str) -> Option<Option<u32>> {
    if value == "off" {
        return Some(None);
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match value.parse::<u32>() {
        Ok(kb) if (1..=MAX_BOOT_READ_AHEAD_KB).contains(&kb) => Some(Some(kb)),
        _ => None,
    }
}

/// A key folded like the kernel's `parameq()` (`-` equals `_`).
fn fold_key(key: &str) -> String {
    key.replace('-', "_")
}

fn is_fs_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The last `systemd.verity_root_*` occurrence, kept to report it when
/// `roothash=` is missing.
#[derive(Debug, Default)]
struct Spelled {
    key: String,
    value: String,
}

#[derive(Debug, Default)]
struct Builder {
    plan: BootPlan,
    errors: Vec<CmdlineError>,
    root_hash: Option<(Spelled, RootHash)>,
    verity_data: Option<(Spelled, RootDevice)>,
    verity_hash: Option<(Spelled, RootDevice)>,
    verity_options: Option<(Spelled, VerityOptions)>,
}

impl Builder {
    fn value<'v>(&mut self, key: &str, value: Option<&'v str>) -> Option<&'v str> {
        if value.is_none() {
            self.errors.push(CmdlineError::MissingValue {
                key: key.to_owned(),
            });
        }
        value
    }

    fn flag(&mut self, key: &str, value: Option<&str>) -> bool {
        match value {
            None => true,
            Some(value) => {
                self.errors.push(CmdlineError::UnexpectedValue {
                    key: key.to_owned(),
                    value: value.to_owned(),
                });
                false
            }
        }
    }

    fn one_of<T>(
        &mut self,
        key: &str,
        value: Option<&str>,
        expected: &'static str,
        from_word: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let value = self.value(key, value)?;
        let parsed = from_word(value);
        if parsed.is_none() {
            self.errors.push(CmdlineError::NotOneOf {
                key: key.to_owned(),
                value: value.to_owned(),
                expected,
            });
        }
        parsed
    }

    fn device(&mut self, key: &str, value: Option<&str>, forms: DeviceForms) -> Option<RootDevice> {
        let value = self.value(key, value)?;
        parse_device(value, forms)
            .map_err(|reason| {
                self.errors.push(CmdlineError::Device {
                    key: key.to_owned(),
                    value: value.to_owned(),
                    reason,
                });
            })
            .ok()
    }

    fn duration(&mut self, key: &str, value: Option<&str>, allow_zero: bool) -> Option<Duration> {
        let value = self.value(key, value)?;
        let parsed = parse_duration(value).and_then(|d| {
            if d.is_zero() && !allow_zero {
                Err(DurationError::Zero)
            } else {
                Ok(d)
            }
        });
        parsed
            .map_err(|reason| {
                self.errors.push(CmdlineError::Duration {
                    key: key.to_owned(),
                    value: value.to_owned(),
                    reason,
                });
            })
            .ok()
    }

    #[allow(clippy::too_many_lines)] // one arm per key reads best as a table
    fn take(&mut self, arg: &Arg<'_>) {
        let key: &str = &arg.param;
        let value: Option<&str> = arg.value.as_deref();
        let spelled = |value: &str| Spelled {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        match fold_key(key).as_str() {
            "root" => {
                if let Some(device) = self.device(key, value, DeviceForms::ROOT) {
                    self.plan.root = Some(device);
                }
            }
            "rootfstype" => {
                let Some(value) = self.value(key, value) else {
                    return;
                };
                if let Some(bad) = value.split(',').find(|name| !is_fs_name(name)) {
                    self.errors.push(CmdlineError::BadListItem {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        item: bad.to_owned(),
                    });
                    return;
                }
                self.plan.root_fstype = value.split(',').map(str::to_owned).collect();
            }
            "rootflags" => {
                if let Some(value) = self.value(key, value) {
                    self.plan.root_flags = Some(value.to_owned());
                }
            }
            "ro" => {
                if self.flag(key, value) {
                    self.plan.read_only = Some(true);
                }
            }
            "rw" => {
                if self.flag(key, value) {
                    self.plan.read_only = Some(false);
                }
            }
            "rootwait" => match value {
                None => self.plan.root_wait = Some(RootWait::Forever),
                Some(text) => match parse_rootwait_secs(text) {
                    Some(timeout) => self.plan.root_wait = Some(RootWait::Timeout(timeout)),
                    None => self.errors.push(CmdlineError::RootWait {
                        key: key.to_owned(),
                        value: text.to_owned(),
                    }),
                },
            },
            "init" => {
                let Some(value) = self.value(key, value) else {
                    return;
                };
                if value.starts_with('/') {
                    self.plan.init = Some(value.to_owned());
                } else {
                    self.errors.push(CmdlineError::NotAbsolutePath {
                        key: key.to_owned(),
                        value: value.to_owned(),
                    });
                }
            }
            "selinux" => {
                if let Some(on) = self.one_of(key, value, "0, 1", bit) {
                    self.plan.selinux = Some(on);
                }
            }
            "enforcing" => {
                if let Some(on) = self.one_of(key, value, "0, 1", bit) {
                    self.plan.enforcing = Some(on);
                }
            }
            "roothash" => {
                let Some(value) = self.value(key, value) else {
                    return;
                };
                match RootHash::parse(value) {
                    Ok(hash) => self.root_hash = Some((spelled(value), hash)),
                    Err(reason) => self.errors.push(CmdlineError::RootHash {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        reason,
                    }),
                }
            }
            "systemd.verity_root_data" => {
                if let Some(device) = self.device(key, value, DeviceForms::SYSTEMD) {
                    self.verity_data = Some((spelled(value.unwrap_or_default()), device));
                }
            }
            "systemd.verity_root_hash" => {
                if let Some(device) = self.device(key, value, DeviceForms::SYSTEMD) {
                    self.verity_hash = Some((spelled(value.unwrap_or_default()), device));
                }
            }
            "systemd.verity_root_options" => {
                let Some(value) = self.value(key, value) else {
                    return;
                };
                let mut options = VerityOptions::default();
                let mut ok = true;
                for word in value.split(',') {
                    if let Err(reason) = options.apply(word) {
                        ok = false;
                        self.errors.push(CmdlineError::VerityOption {
                            key: key.to_owned(),
                            value: value.to_owned(),
                            option: word.to_owned(),
                            reason,
                        });
                    }
                }
                if ok {
                    self.verity_options = Some((spelled(value), options));
                }
            }
            "dm_mod.create" => {
                let Some(value) = self.value(key, value) else {
                    return;
                };
                match parse_dm_create(value) {
                    Ok(devices) => self.plan.dm_create = devices,
                    Err(reason) => self.errors.push(CmdlineError::DmCreate {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        reason,
                    }),
                }
            }
            "dm_mod.waitfor" => {
                let Some(value) = self.value(key, value) else {
                    return;
                };
                match parse_dm_waitfor(value) {
                    Ok(devices) => self.plan.dm_waitfor = devices,
                    Err(reason) => self.errors.push(CmdlineError::DmWaitfor {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        reason,
                    }),
                }
            }
            "liftoff.modules" => {
                let Some(value) = self.value(key, value) else {
                    return;
                };
                let mut names = Vec::new();
                for module in value.split(',') {
                    match check_module_name(module) {
                        Ok(()) => names.push(module),
                        Err(reason) => {
                            self.errors.push(CmdlineError::Module {
                                key: key.to_owned(),
                                value: value.to_owned(),
                                module: module.to_owned(),
                                reason,
                            });
                            return;
                        }
                    }
                }
                for name in names {
                    if !self.plan.modules.iter().any(|m| m == name) {
                        self.plan.modules.push(name.to_owned());
                    }
                }
            }
            "liftoff.device_timeout" => {
                if let Some(timeout) = self.duration(key, value, false) {
                    self.plan.device_timeout = timeout;
                }
            }
            "liftoff.failure_delay" => {
                if let Some(delay) = self.duration(key, value, true) {
                    self.plan.failure.delay = delay;
                }
            }
            "liftoff.on_failure" => {
                if let Some(action) = self.one_of(
                    key,
                    value,
                    FailureAction::EXPECTED,
                    FailureAction::from_word,
                ) {
                    self.plan.failure.action = action;
                }
            }
            "liftoff.verity.on_corruption" => {
                if let Some(action) = self.one_of(
                    key,
                    value,
                    CorruptionAction::EXPECTED,
                    CorruptionAction::from_word,
                ) {
                    self.plan.verity_on_corruption = action;
                }
            }
            "liftoff.boot_read_ahead_kb" => {
                let Some(value) = self.value(key, value) else {
                    return;
                };
                match parse_read_ahead(value) {
                    Some(kb) => self.plan.boot_read_ahead_kb = kb,
                    None => self.errors.push(CmdlineError::ReadAhead {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        max: MAX_BOOT_READ_AHEAD_KB,
                    }),
                }
            }
            "liftoff.log" => {
                if let Some(level) =
                    self.one_of(key, value, LogLevel::EXPECTED, LogLevel::from_word)
                {
                    self.plan.log = level;
                }
            }
            folded if folded.starts_with("liftoff.") => {
                self.errors.push(CmdlineError::UnknownLiftoffKey {
                    key: key.to_owned(),
                    value: value.map(str::to_owned),
                    known: LIFTOFF_KEYS,
                });
            }
            _ => self.plan.unknown.push(Param {
                key: key.to_owned(),
                value: value.map(str::to_owned),
            }),
        }
    }

    /// Cross-key rules, then the verity source.
    fn finish(mut self) -> Result<BootPlan, Rejected> {
        let dm_verity: Vec<String> = self
            .plan
            .dm_create
            .iter()
            .filter(|d| d.is_verity())
            .map(|d| d.name.clone())
            .collect();

        match self.root_hash.take() {
            Some((spelled, root_hash)) => {
                if let Some(device) = dm_verity.first() {
                    self.errors.push(CmdlineError::ConflictingVerity {
                        root_hash: spelled.value,
                        device: device.clone(),
                    });
                }
                let discoverable = DiscoverableUuids {
                    data: root_hash.data_partuuid(),
                    verity: root_hash.verity_partuuid(),
                };
                let by_partuuid = |uuid: &str| RootDevice::PartUuid {
                    uuid: uuid.to_owned(),
                    partnroff: None,
                };
                let data = self
                    .verity_data
                    .take()
                    .map_or_else(|| by_partuuid(&discoverable.data), |(_, d)| d);
                let hash = self
                    .verity_hash
                    .take()
                    .map_or_else(|| by_partuuid(&discoverable.verity), |(_, d)| d);
                let options = self
                    .verity_options
                    .take()
                    .map(|(_, o)| o)
                    .unwrap_or_default();
                self.plan.verity = Some(VeritySource::RootHash(Box::new(RootHashVerity {
                    root_hash,
                    discoverable,
                    data,
                    hash,
                    options,
                })));
            }
            None => {
                let orphans = [
                    self.verity_data.take().map(|(s, _)| s),
                    self.verity_hash.take().map(|(s, _)| s),
                    self.verity_options.take().map(|(s, _)| s),
                ];
                for spelled in orphans.into_iter().flatten() {
                    self.errors.push(CmdlineError::NeedsRootHash {
                        key: spelled.key,
                        value: spelled.value,
                    });
                }
                if !dm_verity.is_empty() {
                    self.plan.verity = Some(VeritySource::DmCreate { devices: dm_verity });
                }
            }
        }

        if self.errors.is_empty() {
            Ok(self.plan)
        } else {
            Err(Rejected {
                errors: self.errors,
                failure: self.plan.failure,
                log: self.plan.log,
            })
        }
    }
}

fn bit(word: &str) -> Option<bool> {
    match word {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// Parse a kernel command line (e.g. the contents of `/proc/cmdline`).
///
/// # Errors
/// [`Rejected`] with every malformed key, and the failure policy and log
/// level the line stated validly.
pub fn parse(cmdline: &str) -> Result<BootPlan, Rejected> {
    parse_bytes(cmdline.as_bytes())
}

/// [`parse`] for raw bytes: `/proc/cmdline` need not be UTF-8. Words are
/// split on bytes exactly like the kernel, then decoded lossily.
///
/// # Errors
/// As [`parse`].
pub fn parse_bytes(cmdline: &[u8]) -> Result<BootPlan, Rejected> {
    let split = split_args(cmdline);
    let mut builder = Builder::default();
    for arg in &split.params {
        builder.take(arg);
    }
    builder.plan.init_args = split.init_args.iter().map(Arg::to_init_arg).collect();
    builder.finish()
}
