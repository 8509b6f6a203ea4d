//! Loading the SELinux policy at the start of stage 2, and PID 1's move
//! into its own domain.
//!
//! The recipe ([`start`]), run before any unit exists:
//!
//! 1. `selinux=0` on the command line, or no `/sys/fs/selinux` (the kernel
//!    was booted without `security=selinux`): log it and boot without.
//! 2. Mount selinuxfs on `/sys/fs/selinux` unless it is mounted.
//! 3. Read `/proc/self/attr/current`. `kernel` means no policy is loaded
//!    yet: this is the first run of stage 2. Anything else means the policy
//!    was loaded by this PID 1 before it re-executed itself: read the
//!    boot stamps back from [`PRE_EXEC_RECORD`] and go on (step 8).
//! 4. Read `SELINUXTYPE=` from the verified root's `/etc/selinux/config`,
//!    the kernel's newest policy version from `/sys/fs/selinux/policyvers`,
//!    and pick the newest `/etc/selinux/<type>/policy/policy.NN` with `NN`
//!    no newer than it.
//! 5. Write the whole file to `/sys/fs/selinux/load` in one write(2).
//!    Stamp `policy-load`.
//! 6. Write `1` to `/sys/fs/selinux/enforce`, or `0` when `enforcing=0`
//!    asks for it *and* the image allows it (`allow_permissive = true` in
//!    `/etc/liftoff/selinux.toml`); otherwise the request is refused in
//!    the log.
//! 7. Save the stamps to [`PRE_EXEC_RECORD`] and ask PID 1 to re-execute
//!    `/sbin/init`: the policy's type transition (`kernel_t` executing
//!    `init_exec_t` enters `init_t`) then gives PID 1 its own domain.
//! 8. After the exec: stamp `reexec` and log the domain PID 1 runs in.
//!
//! Any error in 2–6 is fatal: the machine never runs units without the
//! policy it was built with. The pure parts ([`policy_type`],
//! [`newest_policy`], [`Settings::parse`], [`decide`]) are host-tested;
//! the rest runs in QEMU (`qemu-tests/tests/selinux.rs`).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kernel_cmdline::BootPlan;
use log::{info, warn};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::stamps::Stamps;

/// Where selinuxfs is mounted (and where the kernel makes its mount point
/// when SELinux is enabled in this boot).
pub const SELINUXFS: &str = "/sys/fs/selinux";
/// The policy configuration on the root.
pub const CONFIG: &str = "/etc/selinux/config";
/// The image's own switch: whether `enforcing=0` may be honoured.
pub const SETTINGS: &str = "/etc/liftoff/selinux.toml";
/// PID 1's security context.
pub const PROC_ATTR_CURRENT: &str = "/proc/self/attr/current";
/// The boot stamps taken before the re-exec, read back after it.
pub const PRE_EXEC_RECORD: &str = "/run/liftoff/stage2-pre-exec.json";
/// What `/proc/self/attr/current` says before any policy is loaded: the
/// name of the kernel's initial SID.
const NO_POLICY_CONTEXT: &str = "kernel";

/// Why the policy could not be loaded or enforced.
#[derive(Debug, Error)]
pub enum SelinuxError {
    /// mount(2) of selinuxfs failed.
    #[error("cannot mount selinuxfs on {target}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// A file the load needs could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `/etc/selinux/config` names no policy.
    #[error("{path} has no SELINUXTYPE= line")]
    NoPolicyType {
        /// The configuration file.
        path: PathBuf,
    },
    /// `SELINUXTYPE=` is not a plain name.
    #[error("{path}: SELINUXTYPE={value:?} is not a plain name")]
    BadPolicyType {
        /// The configuration file.
        path: PathBuf,
        /// The value.
        value: String,
    },
    /// `/sys/fs/selinux/policyvers` is not a number.
    #[error("{path} holds {text:?}, not a policy version")]
    PolicyVersion {
        /// The file.
        path: PathBuf,
        /// What it holds.
        text: String,
    },
    /// The policy folder has no `policy.NN` the kernel can load.
    #[error("no policy.NN with NN <= {max} in {dir}")]
    NoPolicy {
        /// The folder searched.
        dir: PathBuf,
        /// The kernel's newest version.
        max: u32,
    },
    /// `/etc/liftoff/selinux.toml` does not parse.
    #[error("cannot parse {path}")]
    Settings {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// The kernel refused the policy (EINVAL for a malformed one).
    #[error("the kernel refused the policy {policy}")]
    Load {
        /// The policy file.
        policy: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The enforcing mode could not be set.
    #[error("cannot write {path}")]
    Enforce {
        /// `/sys/fs/selinux/enforce`.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The stamps could not be saved for the re-exec.
    #[error("cannot write {path}")]
    SaveRecord {
        /// The record file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `/etc/liftoff/selinux.toml`: what the image lets the command line change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Whether `enforcing=0` on the kernel command line is honoured. Off by
    /// default: a production image cannot be talked out of enforcing.
    #[serde(default)]
    pub allow_permissive: bool,
}

impl Settings {
    /// Parses the file's text; `path` names it in the error.
    ///
    /// # Errors
    /// [`SelinuxError::Settings`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, SelinuxError> {
        toml::from_str(text).map_err(|source| SelinuxError::Settings {
            path: path.to_owned(),
            source,
        })
    }
}

/// What [`decide`] chose for the enforcing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Enforce (the default).
    Enforcing,
    /// Enforce although `enforcing=0` asked otherwise: the image does not
    /// allow it.
    EnforcingRefused,
    /// Permissive: `enforcing=0`, allowed by the image.
    Permissive,
}

/// The enforcing mode for a command line's `enforcing=` and the image's
/// settings.
#[must_use]
pub fn decide(enforcing: Option<bool>, settings: Settings) -> Mode {
    match (enforcing, settings.allow_permissive) {
        (Some(false), true) => Mode::Permissive,
        (Some(false), false) => Mode::EnforcingRefused,
        _ => Mode::Enforcing,
    }
}

/// The value of `SELINUXTYPE=` in an `/etc/selinux/config` text (the last
/// one wins, as libselinux reads it); `#` starts a comment line.
#[must_use]
pub fn policy_type(config: &str) -> Option<&str> {
    config
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("SELINUXTYPE="))
        .map(|v| v.trim().trim_matches('"'))
        .next_back()
}

/// The newest `policy.NN` among `names` with `NN <= max`, as `(NN, name)`.
#[must_use]
pub fn newest_policy<'a>(
    names: impl IntoIterator<Item = &'a str>,
    max: u32,
) -> Option<(u32, &'a str)> {
    names
        .into_iter()
        .filter_map(|name| {
            let digits = name.strip_prefix("policy.")?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<u32>().ok().map(|v| (v, name))
        })
        .filter(|&(v, _)| v <= max)
        .max_by_key(|&(v, _)| v)
}

/// What [`start`] did; PID 1 acts on it.
#[derive(Debug)]
pub enum Started {
    /// SELinux is off in this boot; the reason is logged.
    Disabled,
    /// The policy is loaded and the stamps saved: PID 1 must now re-execute
    /// itself so that it enters its domain.
    Reexec,
    /// This is PID 1 after its re-exec: go on to the units.
    Running,
}

/// Where [`start`] finds things: the root, selinuxfs and `/proc/self/attr`.
/// Every filesystem root is a parameter (STYLE.md); [`Paths::system`] is
/// the real one.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The root that holds `/etc/selinux` and `/etc/liftoff`.
    pub root: PathBuf,
    /// Where selinuxfs is (to be) mounted.
    pub selinuxfs: PathBuf,
    /// PID 1's `attr/current`.
    pub attr_current: PathBuf,
    /// The record kept across the re-exec.
    pub pre_exec_record: PathBuf,
}

impl Paths {
    /// The running system's paths.
    #[must_use]
    pub fn system() -> Self {
        Self {
            root: PathBuf::from("/"),
            selinuxfs: PathBuf::from(SELINUXFS),
            attr_current: PathBuf::from(PROC_ATTR_CURRENT),
            pre_exec_record: PathBuf::from(PRE_EXEC_RECORD),
        }
    }

    fn on_root(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }
}

/// The boot stamps, as they cross the re-exec.
#[derive(Debug, Serialize, Deserialize)]
struct PreExecRecord {
    stamps: Vec<SavedStamp>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedStamp {
    phase: String,
    boottime_us: u64,
}

/// Steps 1–8 of the module docs. `start` is this process's first stamp
/// (after a re-exec it becomes the `reexec` stamp).
///
/// # Errors
/// A policy that cannot be loaded or enforced; see [`SelinuxError`].
pub fn start(
    plan: &BootPlan,
    paths: &Paths,
    stamps: &mut Stamps,
    start: Duration,
) -> Result<Started, SelinuxError> {
    // 1. Off by the command line, or not enabled in this kernel boot: the
    // kernel makes /sys/fs/selinux only when SELinux initialised (Debian's
    // kernel needs `security=selinux`).
    if plan.selinux == Some(false) {
        info!("selinux=0 on the kernel command line: SELinux disabled");
        return Ok(Started::Disabled);
    }
    if !paths.selinuxfs.is_dir() {
        info!(
            "SELinux is not enabled in this kernel (no {}; boot with security=selinux)",
            paths.selinuxfs.display()
        );
        return Ok(Started::Disabled);
    }

    // 2. selinuxfs: the load, enforce and policyvers files live there.
    if !paths.selinuxfs.join("enforce").exists() {
        mount(
            Some("selinuxfs"),
            &paths.selinuxfs,
            Some("selinuxfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|source| SelinuxError::Mount {
            target: paths.selinuxfs.clone(),
            source,
        })?;
    }

    // 3. Loaded already? Then this is PID 1 after its re-exec.
    let current = read_text(&paths.attr_current)?;
    if current != NO_POLICY_CONTEXT {
        restore_stamps(paths, stamps, start);
        stamps.mark_at("reexec", start);
        if current.contains(":kernel_t") {
            warn!(
                "PID 1 still runs in {current} after its re-exec: is /sbin/init labelled init_exec_t?"
            );
        } else {
            info!("PID 1 runs in {current}");
        }
        return Ok(Started::Running);
    }

    // 4. Which policy.
    let config_path = paths.on_root(CONFIG);
    let config = read_text(&config_path)?;
    let kind = policy_type(&config).ok_or_else(|| SelinuxError::NoPolicyType {
        path: config_path.clone(),
    })?;
    if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
        return Err(SelinuxError::BadPolicyType {
            path: config_path,
            value: kind.to_owned(),
        });
    }
    let vers_path = paths.selinuxfs.join("policyvers");
    let vers_text = read_text(&vers_path)?;
    let max: u32 = vers_text.parse().map_err(|_| SelinuxError::PolicyVersion {
        path: vers_path,
        text: vers_text.clone(),
    })?;
    let dir = paths.on_root(&format!("/etc/selinux/{kind}/policy"));
    let entries = fs::read_dir(&dir).map_err(|source| SelinuxError::Read {
        path: dir.clone(),
        source,
    })?;
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let (_, name) = newest_policy(names.iter().map(String::as_str), max).ok_or_else(|| {
        SelinuxError::NoPolicy {
            dir: dir.clone(),
            max,
        }
    })?;
    let policy = dir.join(name);

    // The image's switch, read before the load: a malformed file stops the
    // boot before anything changes.
    let settings_path = paths.on_root(SETTINGS);
    let settings = match fs::read_to_string(&settings_path) {
        Ok(text) => Settings::parse(&settings_path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::default(),
        Err(source) => {
            return Err(SelinuxError::Read {
                path: settings_path,
                source,
            });
        }
    };

    // 5. The load: the kernel wants the whole policy in one write(2) at
    // offset 0 (security/selinux/selinuxfs.c, sel_write_load).
    let bytes = fs::read(&policy).map_err(|source| SelinuxError::Read {
        path: policy.clone(),
        source,
    })?;
    let load = paths.selinuxfs.join("load");
    fs::OpenOptions::new()
        .write(true)
        .open(&load)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(|source| SelinuxError::Load {
            policy: policy.clone(),
            source,
        })?;
    stamps.mark("policy-load");
    info!(
        "SELinux policy {} loaded ({} bytes, kernel policy version {max})",
        policy.display(),
        bytes.len()
    );

    // 6. Enforce, unless the image lets the command line say otherwise.
    let mode = decide(plan.enforcing, settings);
    let enforce_path = paths.selinuxfs.join("enforce");
    let value = if mode == Mode::Permissive { "0" } else { "1" };
    fs::write(&enforce_path, value).map_err(|source| SelinuxError::Enforce {
        path: enforce_path,
        source,
    })?;
    match mode {
        Mode::Enforcing => info!("SELinux enforcing"),
        Mode::EnforcingRefused => warn!(
            "enforcing=0 refused: {} does not set allow_permissive = true; SELinux enforcing",
            settings_path.display()
        ),
        Mode::Permissive => warn!("enforcing=0: SELinux permissive, as the image allows"),
    }

    // 7. Keep the stamps for the process the re-exec makes.
    save_stamps(paths, stamps)?;
    Ok(Started::Reexec)
}

fn read_text(path: &Path) -> Result<String, SelinuxError> {
    let text = fs::read_to_string(path).map_err(|source| SelinuxError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(text.trim_end_matches(['\0', '\n']).trim().to_owned())
}

fn save_stamps(paths: &Paths, stamps: &Stamps) -> Result<(), SelinuxError> {
    let record = PreExecRecord {
        stamps: stamps
            .stamps
            .iter()
            .map(|s| SavedStamp {
                phase: s.phase.to_string(),
                boottime_us: s.boottime_us,
            })
            .collect(),
    };
    let to_io = |e: serde_json::Error| std::io::Error::other(e.to_string());
    let path = &paths.pre_exec_record;
    serde_json::to_vec(&record)
        .map_err(to_io)
        .and_then(|json| {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(path, json)
        })
        .map_err(|source| SelinuxError::SaveRecord {
            path: path.clone(),
            source,
        })
}

/// Replaces this process's stamps by the ones taken before the re-exec.
/// Best effort: without the record the stamps start at the re-exec, which
/// the log says.
fn restore_stamps(paths: &Paths, stamps: &mut Stamps, start: Duration) {
    let record = fs::read(&paths.pre_exec_record)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<PreExecRecord>(&b).map_err(|e| e.to_string()));
    match record {
        Ok(record) => {
            stamps.stamps.clear();
            for s in record.stamps {
                stamps.mark_at(s.phase, Duration::from_micros(s.boottime_us));
            }
        }
        Err(e) => {
            warn!(
                "cannot read {}: {e}; boot stamps start at the re-exec",
                paths.pre_exec_record.display()
            );
            stamps.stamps.retain(|s| s.phase != "start");
            stamps.stamps.insert(
                0,
                crate::stamps::Stamp {
                    phase: "start".into(),
                    boottime_us: u64::try_from(start.as_micros()).unwrap_or(u64::MAX),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_type_reads_the_last_uncommented_line() {
        for (name, text, want) in [
            ("plain", "SELINUXTYPE=liftoff\n", Some("liftoff")),
            (
                "comment and spaces",
                "# SELINUXTYPE=no\n  SELINUXTYPE=liftoff  \n",
                Some("liftoff"),
            ),
            ("quoted", "SELINUXTYPE=\"targeted\"", Some("targeted")),
            ("last wins", "SELINUXTYPE=a\nSELINUXTYPE=b\n", Some("b")),
            ("missing", "SELINUX=enforcing\n", None),
        ] {
            assert_eq!(policy_type(text), want, "{name}");
        }
    }

    #[test]
    fn newest_policy_the_kernel_accepts_is_chosen() {
        let names = ["policy.31", "policy.33", "policy.34", "policy.x", "notes"];
        assert_eq!(newest_policy(names, 33), Some((33, "policy.33")));
        assert_eq!(newest_policy(names, 35), Some((34, "policy.34")));
        assert_eq!(newest_policy(names, 30), None);
        assert_eq!(newest_policy(["policy."], 33), None);
    }

    #[test]
    fn enforcing_zero_needs_the_image_switch() {
        let allow = Settings {
            allow_permissive: true,
        };
        for (name, enforcing, settings, want) in [
            ("default", None, Settings::default(), Mode::Enforcing),
            ("enforcing=1", Some(true), allow, Mode::Enforcing),
            (
                "refused",
                Some(false),
                Settings::default(),
                Mode::EnforcingRefused,
            ),
            ("allowed", Some(false), allow, Mode::Permissive),
        ] {
            assert_eq!(decide(enforcing, settings), want, "{name}");
        }
    }

    #[test]
    fn settings_parse_and_name_the_file() {
        let path = Path::new("/etc/liftoff/selinux.toml");
        assert_eq!(Settings::parse(path, "").unwrap(), Settings::default());
        assert!(
            Settings::parse(path, "allow_permissive = true\n")
                .unwrap()
                .allow_permissive
        );
        let e = Settings::parse(path, "allow_permisive = true\n").unwrap_err();
        assert!(e.to_string().contains("selinux.toml"), "{e}");
    }

    #[test]
    fn stamps_survive_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: dir.path().to_owned(),
            selinuxfs: dir.path().join("selinuxfs"),
            attr_current: dir.path().join("current"),
            pre_exec_record: dir.path().join("run/liftoff/pre.json"),
        };
        let mut before = Stamps::default();
        before.mark_at("start", Duration::from_micros(10));
        before.mark_at("policy-load", Duration::from_micros(20));
        // Any name comes back, not only the ones this build knows.
        before.mark_at("a-phase-from-elsewhere", Duration::from_micros(25));
        save_stamps(&paths, &before).unwrap();
        let mut after = Stamps::default();
        after.mark_at("start", Duration::from_micros(30));
        restore_stamps(&paths, &mut after, Duration::from_micros(30));
        assert_eq!(after, before);
    }

    #[test]
    fn disabled_without_selinuxfs() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: dir.path().to_owned(),
            selinuxfs: dir.path().join("no-selinuxfs"),
            attr_current: dir.path().join("current"),
            pre_exec_record: dir.path().join("pre.json"),
        };
        let plan = BootPlan::default();
        let mut stamps = Stamps::default();
        assert!(matches!(
            start(&plan, &paths, &mut stamps, Duration::ZERO),
            Ok(Started::Disabled)
        ));
        let off = BootPlan {
            selinux: Some(false),
            ..BootPlan::default()
        };
        assert!(matches!(
            start(&off, &paths, &mut stamps, Duration::ZERO),
            Ok(Started::Disabled)
        ));
    }
}
