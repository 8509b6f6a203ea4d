//! From [`RawUnit`] to [`Unit`]: fill in the defaults and check every value,
//! naming the key and the line of the first bad one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::{Spanned, Value};

use super::raw::{RawCgroup, RawUnit, Text};
use super::{FileError, FileErrorKind, Source, is_valid_name};
use crate::selinux;
use crate::unit::{
    Boot, Cgroup, KillMode, Kind, Limit, Output, Process, Restart, SelinuxLabel, Unit, UnitName,
};

/// The `[limits]` keys: setrlimit(2)'s resources, named as in `ulimit`.
pub(super) const LIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Environment variables that liftoff sets for the unit (docs/units.md).
const RESERVED_ENVIRONMENT: &[&str] = &["NOTIFY_SOCKET", "WATCHDOG_USEC"];

const DEFAULT_RESTART_DELAY: Duration = Duration::from_millis(100);
const DEFAULT_RESTART_DELAY_MAX: Duration = Duration::from_secs(30);
const DEFAULT_START_LIMIT_BURST: u32 = 5;
const DEFAULT_START_LIMIT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The highest signal number on Linux (SIGRTMAX on x86-64 and arm64).
const SIGNAL_MAX: i64 = 64;

type Result<T> = std::result::Result<T, FileError>;

/// Builds the unit called `name` from what its file says.
pub(super) fn unit(src: &Source<'_>, name: UnitName, raw: RawUnit) -> Result<Unit> {
    let kind = match &raw.kind {
        None => Kind::Simple,
        Some(text) => match text.get_ref().as_str() {
            "simple" => Kind::Simple,
            "oneshot" => Kind::Oneshot,
            "notify" => Kind::Notify,
            _ => {
                return Err(not_one_of(
                    src,
                    "type",
                    text,
                    &["simple", "oneshot", "notify"],
                ));
            }
        },
    };
    let boot = match &raw.boot {
        None => Boot::Wait,
        Some(text) => match text.get_ref().as_str() {
            "wait" => Boot::Wait,
            "start" => Boot::Start,
            "manual" => Boot::Manual,
            _ => return Err(not_one_of(src, "boot", text, &["wait", "start", "manual"])),
        },
    };
    let restart = match &raw.restart {
        None if kind == Kind::Oneshot => Restart::Never,
        None => Restart::OnFailure,
        Some(text) => match text.get_ref().as_str() {
            "never" => Restart::Never,
            "on-failure" => Restart::OnFailure,
            "always" => Restart::Always,
            _ => {
                let allowed = &["never", "on-failure", "always"];
                return Err(not_one_of(src, "restart", text, allowed));
            }
        },
    };
    let kill_mode = match &raw.kill_mode {
        None => KillMode::Group,
        Some(text) => match text.get_ref().as_str() {
            "group" => KillMode::Group,
            "process" => KillMode::Process,
            _ => return Err(not_one_of(src, "kill_mode", text, &["group", "process"])),
        },
    };

    let restart_delay = duration_or(
        src,
        "restart_delay",
        &raw.restart_delay,
        DEFAULT_RESTART_DELAY,
    )?;
    let restart_delay_max = duration_or(
        src,
        "restart_delay_max",
        &raw.restart_delay_max,
        DEFAULT_RESTART_DELAY_MAX,
    )?;
    if restart_delay_max < restart_delay {
        // Point at whichever of the two the file wrote last, or at the one
        // it wrote.
        let span = raw
            .restart_delay_max
            .as_ref()
            .or(raw.restart_delay.as_ref())
            .map(Spanned::span);
        let kind = FileErrorKind::DelayMaxBelowDelay {
            max: restart_delay_max,
            min: restart_delay,
        };
        return Err(src.error(span, "restart_delay_max", kind));
    }
    let start_limit_burst = match &raw.start_limit_burst {
        None => DEFAULT_START_LIMIT_BURST,
        Some(burst) => {
            let value = in_range(src, "start_limit_burst", burst, 1, i64::from(u32::MAX))?;
            u32::try_from(value).unwrap_or(u32::MAX)
        }
    };
    let start_limit_interval = duration_or(
        src,
        "start_limit_interval",
        &raw.start_limit_interval,
        DEFAULT_START_LIMIT_INTERVAL,
    )?;

    let ready_timeout = match &raw.ready_timeout {
        None if kind == Kind::Simple => None,
        None => Some(DEFAULT_READY_TIMEOUT),
        Some(value) if kind == Kind::Simple => {
            let kind = FileErrorKind::WrongUnitType {
                allowed: "notify or oneshot",
            };
            return Err(src.error(Some(value.span()), "ready_timeout", kind));
        }
        Some(value) if value.get_ref().as_str() == Some("infinity") => None,
        Some(value) => {
            let timeout = duration(src, "ready_timeout", value)?;
            Some(nonzero(src, "ready_timeout", &raw.ready_timeout, timeout)?)
        }
    };
    let watchdog = match &raw.watchdog {
        None => None,
        Some(value) if kind != Kind::Notify => {
            let kind = FileErrorKind::WrongUnitType { allowed: "notify" };
            return Err(src.error(Some(value.span()), "watchdog", kind));
        }
        Some(value) => {
            let interval = duration(src, "watchdog", value)?;
            Some(nonzero(src, "watchdog", &raw.watchdog, interval)?)
        }
    };

    let stop_signal = match &raw.stop_signal {
        None => Signal::SIGTERM as i32,
        Some(value) => signal(src, value)?,
    };
    let stop_timeout = duration_or(src, "stop_timeout", &raw.stop_timeout, DEFAULT_STOP_TIMEOUT)?;

    let requires = names(src, "requires", &raw.requires, &name)?;
    let wants = names(src, "wants", &raw.wants, &name)?;
    let after = names(src, "after", &raw.after, &name)?;
    let before = names(src, "before", &raw.before, &name)?;
    let description = raw.description.clone().map(Spanned::into_inner);
    let critical = raw.critical.unwrap_or(false);
    let process = process(src, raw)?;

    Ok(Unit {
        name,
        source: src.path.to_path_buf(),
        description,
        kind,
        boot,
        requires,
        wants,
        after,
        before,
        restart,
        restart_delay,
        restart_delay_max,
        start_limit_burst,
        start_limit_interval,
        critical,
        ready_timeout,
        watchdog,
        stop_signal,
        stop_timeout,
        kill_mode,
        process,
    })
}

/// The process setup: argv, environment, credentials, capabilities, limits,
/// cgroup, output and SELinux context.
fn process(src: &Source<'_>, raw: RawUnit) -> Result<Process> {
    let argv = match &raw.exec {
        None => return Err(src.error(None, "exec", FileErrorKind::Missing)),
        Some(exec) => argv(src, exec)?,
    };

    let mut environment = BTreeMap::new();
    for (key, value) in &raw.environment {
        let name = key.get_ref();
        let span = Some(key.span());
        let env_key = format!("environment.{name}");
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            let kind = FileErrorKind::BadEnvironmentName(name.clone());
            return Err(src.error(span, &env_key, kind));
        }
        if RESERVED_ENVIRONMENT.contains(&name.as_str()) {
            let kind = FileErrorKind::ReservedEnvironment(name.clone());
            return Err(src.error(span, &env_key, kind));
        }
        let value = no_nul(src, &env_key, value)?;
        environment.insert(name.clone(), value);
    }

    let working_directory = match &raw.working_directory {
        None => None,
        Some(dir) => Some(absolute(src, "working_directory", dir)?),
    };
    let user = nonempty(src, "user", raw.user.as_ref())?;
    let group = nonempty(src, "group", raw.group.as_ref())?;
    let mut supplementary_groups = Vec::with_capacity(raw.supplementary_groups.len());
    for group in &raw.supplementary_groups {
        if let Some(group) = nonempty(src, "supplementary_groups", Some(group))? {
            supplementary_groups.push(group);
        }
    }

    let capabilities = match &raw.capabilities {
        None => None,
        Some(list) => Some(capability_list(src, "capabilities", list)?),
    };
    let ambient_capabilities =
        capability_list(src, "ambient_capabilities", &raw.ambient_capabilities)?;
    if let Some(bounding) = &capabilities {
        for (cap, text) in ambient_capabilities.iter().zip(&raw.ambient_capabilities) {
            if !bounding.contains(cap) {
                let kind = FileErrorKind::AmbientNotBounded(cap.clone());
                return Err(src.error(Some(text.span()), "ambient_capabilities", kind));
            }
        }
    }

    let oom_score_adj = match &raw.oom_score_adj {
        None => None,
        Some(value) => {
            let value = in_range(src, "oom_score_adj", value, -1000, 1000)?;
            Some(i32::try_from(value).unwrap_or_default())
        }
    };

    let mut limits = BTreeMap::new();
    for (key, value) in &raw.limits {
        let name = key.get_ref();
        let limit_key = format!("limits.{name}");
        if !LIMIT_NAMES.contains(&name.as_str()) {
            let kind = FileErrorKind::UnknownLimit(name.clone());
            return Err(src.error(Some(key.span()), &limit_key, kind));
        }
        limits.insert(name.clone(), limit(src, &limit_key, value)?);
    }

    Ok(Process {
        argv,
        environment,
        working_directory,
        user,
        group,
        supplementary_groups,
        capabilities,
        ambient_capabilities,
        no_new_privileges: raw.no_new_privileges.unwrap_or(false),
        limits,
        oom_score_adj,
        cgroup: cgroup(src, &raw.cgroup)?,
        stdout: output(src, "stdout", raw.stdout.as_ref())?,
        stderr: output(src, "stderr", raw.stderr.as_ref())?,
        selinux: selinux_label(src, &raw)?,
    })
}

/// `selinux_context` or `selinux_type`, not both: a unit that names its
/// domain twice is ambiguous, so neither is guessed to win.
fn selinux_label(src: &Source<'_>, raw: &RawUnit) -> Result<Option<SelinuxLabel>> {
    match (&raw.selinux_context, &raw.selinux_type) {
        (None, None) => Ok(None),
        (Some(context), Some(kind)) => {
            // Point at whichever of the two comes second in the file.
            let (key, text, other) = if kind.span().start > context.span().start {
                ("selinux_type", kind, "selinux_context")
            } else {
                ("selinux_context", context, "selinux_type")
            };
            Err(src.error(Some(text.span()), key, FileErrorKind::Conflict(other)))
        }
        (Some(context), None) => {
            let value = context.get_ref();
            if !selinux::is_valid_context(value) {
                let kind = FileErrorKind::BadSelinuxContext(value.clone());
                return Err(src.error(Some(context.span()), "selinux_context", kind));
            }
            Ok(Some(SelinuxLabel::Context(value.clone())))
        }
        (None, Some(kind)) => {
            let value = kind.get_ref();
            if !selinux::is_valid_type(value) {
                let error = FileErrorKind::BadSelinuxType(value.clone());
                return Err(src.error(Some(kind.span()), "selinux_type", error));
            }
            Ok(Some(SelinuxLabel::Type(value.clone())))
        }
    }
}

/// `exec`: not empty, no NUL, `argv[0]` absolute.
fn argv(src: &Source<'_>, exec: &Spanned<Vec<Text>>) -> Result<Vec<String>> {
    let Some(first) = exec.get_ref().first() else {
        return Err(src.error(Some(exec.span()), "exec", FileErrorKind::Empty));
    };
    absolute(src, "exec", first)?;
    exec.get_ref()
        .iter()
        .map(|arg| no_nul(src, "exec", arg))
        .collect()
}

/// A dependency list: valid names, not the unit itself.
fn names(src: &Source<'_>, key: &str, list: &[Text], own: &str) -> Result<Vec<UnitName>> {
    let mut names = Vec::with_capacity(list.len());
    for text in list {
        let name = text.get_ref();
        let span = Some(text.span());
        if !is_valid_name(name) {
            return Err(src.error(span, key, FileErrorKind::BadName(name.clone())));
        }
        if name == own {
            return Err(src.error(span, key, FileErrorKind::SelfReference(name.clone())));
        }
        names.push(name.clone());
    }
    Ok(names)
}

/// A "not one of" error for a word-valued key.
fn not_one_of(
    src: &Source<'_>,
    key: &str,
    text: &Text,
    allowed: &'static [&'static str],
) -> FileError {
    let kind = FileErrorKind::NotOneOf {
        value: text.get_ref().clone(),
        allowed,
    };
    src.error(Some(text.span()), key, kind)
}

/// A duration: a string that humantime reads ("100ms", "10s", "2min").
/// Integers are refused: a bare `10` could mean seconds or milliseconds.
fn duration(src: &Source<'_>, key: &str, value: &Spanned<Value>) -> Result<Duration> {
    let span = Some(value.span());
    match value.get_ref() {
        Value::String(text) => humantime::parse_duration(text).map_err(|source| {
            let kind = FileErrorKind::BadDuration {
                value: text.clone(),
                source,
            };
            src.error(span, key, kind)
        }),
        other => Err(src.error(
            span,
            key,
            FileErrorKind::DurationNotString(other.type_str()),
        )),
    }
}

/// [`duration`], or `default` when the key is absent.
fn duration_or(
    src: &Source<'_>,
    key: &str,
    value: &Option<Spanned<Value>>,
    default: Duration,
) -> Result<Duration> {
    value
        .as_ref()
        .map_or(Ok(default), |value| duration(src, key, value))
}

/// Refuses a zero `duration` read from `value`.
fn nonzero(
    src: &Source<'_>,
    key: &str,
    value: &Option<Spanned<Value>>,
    duration: Duration,
) -> Result<Duration> {
    if duration.is_zero() {
        let span = value.as_ref().map(Spanned::span);
        return Err(src.error(span, key, FileErrorKind::ZeroDuration));
    }
    Ok(duration)
}

/// An integer in `min..=max`.
fn in_range(src: &Source<'_>, key: &str, value: &Spanned<i64>, min: i64, max: i64) -> Result<i64> {
    let v = *value.get_ref();
    if !(min..=max).contains(&v) {
        let kind = FileErrorKind::OutOfRange { value: v, min, max };
        return Err(src.error(Some(value.span()), key, kind));
    }
    Ok(v)
}

/// A string without NUL bytes (it becomes a C string at exec).
fn no_nul(src: &Source<'_>, key: &str, text: &Text) -> Result<String> {
    let value = text.get_ref();
    if value.contains('\0') {
        return Err(src.error(Some(text.span()), key, FileErrorKind::Nul(value.clone())));
    }
    Ok(value.clone())
}

/// An absolute path without NUL bytes.
fn absolute(src: &Source<'_>, key: &str, text: &Text) -> Result<PathBuf> {
    let value = no_nul(src, key, text)?;
    if !value.starts_with('/') {
        return Err(src.error(Some(text.span()), key, FileErrorKind::RelativePath(value)));
    }
    Ok(PathBuf::from(value))
}

/// An optional name that must not be empty when given (`user`, `group`).
fn nonempty(src: &Source<'_>, key: &str, text: Option<&Text>) -> Result<Option<String>> {
    match text {
        None => Ok(None),
        Some(text) if text.get_ref().is_empty() => {
            Err(src.error(Some(text.span()), key, FileErrorKind::Empty))
        }
        Some(text) => no_nul(src, key, text).map(Some),
    }
}

/// `stop_signal`: a name with or without `SIG` (any case), or a number.
fn signal(src: &Source<'_>, value: &Spanned<Value>) -> Result<i32> {
    let span = Some(value.span());
    let bad =
        |found: String| src.error(span.clone(), "stop_signal", FileErrorKind::BadSignal(found));
    match value.get_ref() {
        Value::Integer(n) if (1..=SIGNAL_MAX).contains(n) => {
            i32::try_from(*n).map_err(|_| bad(n.to_string()))
        }
        Value::String(name) => {
            let upper = name.to_ascii_uppercase();
            let full = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            Signal::from_str(&full)
                .map(|signal| signal as i32)
                .map_err(|_| bad(name.clone()))
        }
        other => Err(bad(other.to_string())),
    }
}

/// Capability names, normalised to `CAP_X`: any case, `CAP_` optional.
fn capability_list(src: &Source<'_>, key: &str, list: &[Text]) -> Result<Vec<String>> {
    let mut caps = Vec::with_capacity(list.len());
    for text in list {
        let upper = text.get_ref().to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        match caps::Capability::from_str(&full) {
            Ok(cap) => {
                let name = cap.to_string();
                if !caps.contains(&name) {
                    caps.push(name);
                }
            }
            Err(_) => {
                let kind = FileErrorKind::BadCapability(text.get_ref().clone());
                return Err(src.error(Some(text.span()), key, kind));
            }
        }
    }
    Ok(caps)
}

/// A `[limits]` value: an integer (soft = hard), `"infinity"`, or
/// `[soft, hard]` of those.
fn limit(src: &Source<'_>, key: &str, value: &Spanned<Value>) -> Result<Limit> {
    let span = Some(value.span());
    let bad = |found: &Value| {
        src.error(
            span.clone(),
            key,
            FileErrorKind::BadLimit(found.to_string()),
        )
    };
    let one = |v: &Value| match v {
        Value::Integer(n) => u64::try_from(*n).map(Some).map_err(|_| bad(v)),
        Value::String(s) if s == "infinity" => Ok(None),
        _ => Err(bad(v)),
    };
    let (soft, hard) = match value.get_ref() {
        Value::Array(pair) => match pair.as_slice() {
            [soft, hard] => (one(soft)?, one(hard)?),
            _ => return Err(bad(value.get_ref())),
        },
        single => {
            let v = one(single)?;
            (v, v)
        }
    };
    // `None` is infinity: only a finite soft limit can stay below it.
    let above = match (soft, hard) {
        (Some(soft), Some(hard)) => soft > hard,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    if above {
        let kind = FileErrorKind::SoftAboveHard {
            soft: soft.map_or_else(|| "infinity".to_owned(), |s| s.to_string()),
            hard: hard.map_or_else(|| "infinity".to_owned(), |h| h.to_string()),
        };
        return Err(src.error(span, key, kind));
    }
    Ok(Limit { soft, hard })
}

/// The `[cgroup]` table.
fn cgroup(src: &Source<'_>, raw: &RawCgroup) -> Result<Cgroup> {
    let memory_max = match &raw.memory_max {
        None => None,
        Some(value) => {
            let expected = "bytes, a size like \"512M\" (K, M, G, T: 1024-based) or \"max\"";
            let bad = || {
                let kind = FileErrorKind::BadCgroupValue {
                    expected,
                    found: value.get_ref().to_string(),
                };
                src.error(Some(value.span()), "cgroup.memory_max", kind)
            };
            match value.get_ref() {
                Value::Integer(n) => Some(u64::try_from(*n).map_err(|_| bad())?),
                Value::String(s) if s == "max" => None,
                Value::String(s) => Some(size(s).ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
    };
    let pids_max = match &raw.pids_max {
        None => None,
        Some(value) => {
            let bad = || {
                let kind = FileErrorKind::BadCgroupValue {
                    expected: "a number or \"max\"",
                    found: value.get_ref().to_string(),
                };
                src.error(Some(value.span()), "cgroup.pids_max", kind)
            };
            match value.get_ref() {
                Value::Integer(n) => Some(u64::try_from(*n).map_err(|_| bad())?),
                Value::String(s) if s == "max" => None,
                _ => return Err(bad()),
            }
        }
    };
    Ok(Cgroup {
        memory_max,
        pids_max,
        delegate: raw.delegate.unwrap_or(false),
    })
}

/// A size: digits with an optional `K`, `M`, `G` or `T` (1024-based, either
/// case); `None` if malformed or above `u64::MAX`.
fn size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        b'T' | b't' => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `stdout`/`stderr`: `"kmsg"`, `"console"`, `"null"` or `{ file = "/abs" }`.
fn output(src: &Source<'_>, key: &str, value: Option<&Spanned<Value>>) -> Result<Output> {
    let Some(value) = value else {
        return Ok(Output::Kmsg);
    };
    let span = Some(value.span());
    let words: &'static [&'static str] = &["kmsg", "console", "null", "{ file = \"/path\" }"];
    match value.get_ref() {
        Value::String(word) => match word.as_str() {
            "kmsg" => Ok(Output::Kmsg),
            "console" => Ok(Output::Console),
            "null" => Ok(Output::Null),
            _ => {
                let kind = FileErrorKind::NotOneOf {
                    value: word.clone(),
                    allowed: words,
                };
                Err(src.error(span, key, kind))
            }
        },
        Value::Table(table) => {
            if let Some(other) = table.keys().find(|k| *k != "file") {
                let inner = format!("{key}.{other}");
                return Err(src.error(span, &inner, FileErrorKind::UnknownKey));
            }
            let file_key = format!("{key}.file");
            match table.get("file") {
                None => Err(src.error(span, &file_key, FileErrorKind::Missing)),
                Some(Value::String(path)) => {
                    let text = Spanned::new(value.span(), path.clone());
                    absolute(src, &file_key, &text).map(Output::File)
                }
                Some(other) => {
                    let message =
                        format!("invalid type: {}, expected a path string", other.type_str());
                    Err(src.error(span, &file_key, FileErrorKind::WrongType(message)))
                }
            }
        }
        other => {
            let kind = FileErrorKind::NotOneOf {
                value: other.to_string(),
                allowed: words,
            };
            Err(src.error(span, key, kind))
        }
    }
}
