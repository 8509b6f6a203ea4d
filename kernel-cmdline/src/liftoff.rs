//! liftoff's own `liftoff.*` keys and their value types.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::error::{DurationError, ModuleNameError};

/// What PID 1 does when boot fails or a critical unit dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    /// `reboot(RB_AUTOBOOT)`: the default, so a fleet host retries.
    #[default]
    Reboot,
    /// `reboot(RB_POWER_OFF)`.
    Poweroff,
    /// `reboot(RB_HALT_SYSTEM)`: stop and keep the console for a human.
    Halt,
}

impl FailureAction {
    pub(crate) const EXPECTED: &'static str = "reboot, poweroff, halt";

    pub(crate) fn from_word(word: &str) -> Option<Self> {
        match word {
            "reboot" => Some(Self::Reboot),
            "poweroff" => Some(Self::Poweroff),
            "halt" => Some(Self::Halt),
            _ => None,
        }
    }
}

/// The failure action and how long PID 1 waits (logging, letting a human
/// read the console) before it runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FailurePolicy {
    /// `liftoff.on_failure=`.
    pub action: FailureAction,
    /// `liftoff.failure_delay=`, serialized like the key's syntax (`"5s"`).
    #[serde(serialize_with = "serialize_duration")]
    pub delay: Duration,
}

impl FailurePolicy {
    /// The default delay before the failure action.
    pub const DEFAULT_DELAY: Duration = Duration::from_secs(5);
}

impl Default for FailurePolicy {
    /// Reboot after 5 s.
    fn default() -> Self {
        Self {
            action: FailureAction::Reboot,
            delay: Self::DEFAULT_DELAY,
        }
    }
}

/// `liftoff.log=`: the most verbose level PID 1 logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default: one line per boot step.
    #[default]
    Info,
    /// Decisions and their inputs.
    Debug,
    /// Everything, including each syscall step.
    Trace,
}

impl LogLevel {
    pub(crate) const EXPECTED: &'static str = "error, warn, info, debug, trace";

    pub(crate) fn from_word(word: &str) -> Option<Self> {
        match word {
            "error" => Some(Self::Error),
            "warn" => Some(Self::Warn),
            "info" => Some(Self::Info),
            "debug" => Some(Self::Debug),
            "trace" => Some(Self::Trace),
            _ => None,
        }
    }
}

/// `liftoff.verity.on_corruption=`: what dm-verity does when a block does
/// not match its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CorruptionAction {
    /// `restart_on_corruption`: the kernel reboots; the default.
    #[default]
    Restart,
    /// `panic_on_corruption`: the kernel panics (`panic=` decides the rest).
    Panic,
    /// No flag: the read fails with EIO and the system keeps running.
    Eio,
    /// `ignore_corruption`: log and return the bad data. Defeats verity;
    /// for debugging only.
    Ignore,
}

impl CorruptionAction {
    pub(crate) const EXPECTED: &'static str = "restart, panic, eio, ignore";

    pub(crate) fn from_word(word: &str) -> Option<Self> {
        match word {
            "restart" => Some(Self::Restart),
            "panic" => Some(Self::Panic),
            "eio" => Some(Self::Eio),
            "ignore" => Some(Self::Ignore),
            _ => None,
        }
    }
}

/// The default for `liftoff.device_timeout=`.
pub const DEFAULT_DEVICE_TIMEOUT: Duration = Duration::from_secs(30);

/// Parse a liftoff duration: `<digits>[ms|s|min]`, seconds when no unit.
///
/// No sign, no fraction, no spaces: `1500ms`, not `1.5s`.
///
/// # Errors
/// [`DurationError::Syntax`] or [`DurationError::Overflow`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let digits_end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(DurationError::Syntax);
    }
    let number: u64 = digits.parse().map_err(|_| DurationError::Overflow)?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "min" => number
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or(DurationError::Overflow),
        _ => Err(DurationError::Syntax),
    }
}

/// Format a duration in the syntax [`parse_duration`] reads: whole minutes
/// as `min`, whole seconds as `s`, else `ms` (sub-millisecond parts, which
/// the key syntax cannot produce, are dropped).
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis != 0 && millis.is_multiple_of(60_000) {
        format!("{}min", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

pub(crate) fn serialize_duration<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_duration(*duration))
}

/// `MODULE_NAME_LEN` is 64 bytes minus a `long`, NUL included, so 55
/// characters on 64-bit (include/linux/module.h).
pub const MAX_MODULE_NAME: usize = 55;

/// Check one kernel module name from `liftoff.modules=`.
///
/// # Errors
/// When empty, too long, or outside `[A-Za-z0-9_-]`.
pub fn check_module_name(name: &str) -> Result<(), ModuleNameError> {
    if name.is_empty() {
        return Err(ModuleNameError::Empty);
    }
    if name.len() > MAX_MODULE_NAME {
        return Err(ModuleNameError::TooLong {
            max: MAX_MODULE_NAME,
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ModuleNameError::Charset);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_table() {
        let cases: &[(&str, Result<Duration, DurationError>)] = &[
            ("30", Ok(Duration::from_secs(30))),
            ("30s", Ok(Duration::from_secs(30))),
            ("0", Ok(Duration::ZERO)),
            ("250ms", Ok(Duration::from_millis(250))),
            ("2min", Ok(Duration::from_secs(120))),
            ("", Err(DurationError::Syntax)),
            ("s", Err(DurationError::Syntax)),
            ("1.5s", Err(DurationError::Syntax)),
            ("-1", Err(DurationError::Syntax)),
            ("+1", Err(DurationError::Syntax)),
            ("10 s", Err(DurationError::Syntax)),
            ("10h", Err(DurationError::Syntax)),
            ("10S", Err(DurationError::Syntax)),
            ("99999999999999999999", Err(DurationError::Overflow)),
            ("307445734561825861min", Err(DurationError::Overflow)),
        ];
        for (text, expected) in cases {
            assert_eq!(&parse_duration(text), expected, "case {text:?}");
        }
    }

    #[test]
    fn duration_format_round_trips() {
        for text in ["5s", "0s", "1500ms", "2min", "90s", "1ms"] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(format_duration(parsed), text);
        }
    }

    #[test]
    fn module_names_table() {
        assert_eq!(check_module_name("dm-verity"), Ok(()));
        assert_eq!(check_module_name("virtio_blk"), Ok(()));
        assert_eq!(check_module_name(""), Err(ModuleNameError::Empty));
        assert_eq!(check_module_name("ext4.ko"), Err(ModuleNameError::Charset));
        assert_eq!(check_module_name("../evil"), Err(ModuleNameError::Charset));
        assert_eq!(
            check_module_name(&"a".repeat(56)),
            Err(ModuleNameError::TooLong { max: 55 })
        );
    }
}
