//! SELinux contexts as units name them: the syntax a unit file accepts
//! ([`is_valid_context`], [`is_valid_type`]), and the full context a unit's
//! process is given at exec ([`exec_context`]) from its
//! [`SelinuxLabel`] and PID 1's own context ([`current_context`]).
//!
//! Pure: [`crate::spawn`] reads PID 1's context from
//! `/proc/self/attr/current` and writes the result to
//! `/proc/thread-self/attr/exec` in the child. Only the syntax is checked
//! here; whether the loaded policy knows the user, role and type, and lets
//! PID 1's domain move to it, is the kernel's to say (a context it rejects
//! fails that write with EINVAL, and the spawn names the step).
//!
//! Left out: mcstrans-style level aliases (`SystemLow`), and asking the
//! policy about a context before the unit starts
//! (`/sys/fs/selinux/context`): the exec-time write is the one check that
//! cannot disagree with what the kernel enforces.

use crate::unit::SelinuxLabel;

/// Whether `name` can be an SELinux user, role or type name: one or more
/// ASCII letters, digits, `_`, `.` or `-`.
///
/// Wider than the classic `[A-Za-z0-9_]`: checkpolicy identifiers may hold
/// `-` and `.`, and CIL names a type declared inside a block by its
/// dotted path (`container.process`), which is the name the kernel knows.
pub fn is_valid_type(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `level` can be an MLS/MCS level or range: `s0`,
/// `s0-s0:c0.c1023`, `s0:c1,c5`. Not empty; letters, digits, `_`, `.`,
/// `,`, `:` and `-`.
fn is_valid_level(level: &str) -> bool {
    !level.is_empty()
        && level
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b',' | b':' | b'-'))
}

/// Whether `context` is a full SELinux context: `user:role:type` (a policy
/// without MLS) or `user:role:type:level`, where the level may itself hold
/// colons (`s0-s0:c0.c1023`). User, role and type are checked as
/// [`is_valid_type`] names, so no whitespace and no NUL anywhere.
pub fn is_valid_context(context: &str) -> bool {
    let mut fields = context.splitn(4, ':');
    let (Some(user), Some(role), Some(kind)) = (fields.next(), fields.next(), fields.next()) else {
        return false;
    };
    [user, role, kind].into_iter().all(is_valid_type) && fields.next().is_none_or(is_valid_level)
}

/// PID 1's context from the bytes of `/proc/self/attr/current`, without
/// the trailing NUL SELinux adds (or a newline); `None` when it is not an
/// SELinux context of a loaded policy:
///
/// * empty: no security module answers (or the file could not be read);
/// * `kernel`: SELinux is enabled but no policy is loaded yet, when every
///   context written to `attr/exec` would silently mean the kernel's own
///   unconfined domain;
/// * `unconfined`, `docker-default (enforce)`: another module's label
///   (AppArmor answers this file when it is the major LSM).
pub fn current_context(attr: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(attr).ok()?;
    let text = text.trim_end_matches(['\0', '\n']);
    is_valid_context(text).then_some(text)
}

/// The full context a unit's process gets: a [`SelinuxLabel::Context`]
/// as written; a [`SelinuxLabel::Type`] in place of the type in
/// `current` (PID 1's context, as [`current_context`] returns it), keeping
/// its user, role and level.
///
/// `None` if `current` is not a full context.
pub fn exec_context(label: &SelinuxLabel, current: &str) -> Option<String> {
    match label {
        SelinuxLabel::Context(context) => Some(context.clone()),
        SelinuxLabel::Type(kind) => {
            let mut fields = current.splitn(4, ':');
            let user = fields.next()?;
            let role = fields.next()?;
            fields.next()?;
            Some(match fields.next() {
                Some(level) => format!("{user}:{role}:{kind}:{level}"),
                None => format!("{user}:{role}:{kind}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts() {
        let cases: &[(&str, &str, bool)] = &[
            ("with a level", "system_u:system_r:web_t:s0", true),
            ("without MLS", "system_u:system_r:web_t", true),
            ("a range", "system_u:system_r:web_t:s0-s15:c0.c1023", true),
            ("categories", "u:r:t:s0:c1,c5", true),
            (
                "CIL dotted type",
                "sys.id:sys.role:container.process:s0",
                true,
            ),
            ("dash", "u:r:web-server_t:s0", true),
            ("two fields", "system_u:web_t", false),
            ("one field", "web_t", false),
            ("empty", "", false),
            ("empty user", ":system_r:web_t:s0", false),
            ("empty role", "system_u::web_t:s0", false),
            ("empty type", "system_u:system_r::s0", false),
            ("empty level", "system_u:system_r:web_t:", false),
            ("space", "system_u:system_r:web_t :s0", false),
            ("leading space", " system_u:system_r:web_t:s0", false),
            ("newline", "system_u:system_r:web_t:s0\n", false),
            ("tab in level", "u:r:t:s0\tc1", false),
            ("NUL", "system_u:system_r:web\0_t:s0", false),
            ("slash", "system_u:system_r:web/t:s0", false),
            ("non-ASCII", "system_u:system_r:wéb_t:s0", false),
        ];
        for (name, context, valid) in cases {
            assert_eq!(is_valid_context(context), *valid, "{name}: {context:?}");
        }
    }

    #[test]
    fn types() {
        let cases: &[(&str, bool)] = &[
            ("web_t", true),
            ("container.process", true),
            ("a-b", true),
            ("9", true),
            ("", false),
            ("web t", false),
            ("web_t:s0", false),
            ("system_u:system_r:web_t", false),
            ("web\0", false),
        ];
        for (name, valid) in cases {
            assert_eq!(is_valid_type(name), *valid, "{name:?}");
        }
    }

    #[test]
    fn pid1_context() {
        let cases: &[(&str, &[u8], Option<&str>)] = &[
            (
                "SELinux, with its NUL",
                b"system_u:system_r:init_t:s0\0",
                Some("system_u:system_r:init_t:s0"),
            ),
            (
                "a newline",
                b"system_u:system_r:init_t:s0\n",
                Some("system_u:system_r:init_t:s0"),
            ),
            ("bare", b"u:r:init_t", Some("u:r:init_t")),
            ("no security module", b"", None),
            ("SELinux before the policy load", b"kernel\0", None),
            ("AppArmor", b"unconfined\n", None),
            ("AppArmor profile", b"docker-default (enforce)\n", None),
            ("not UTF-8", b"u:r:\xff:s0", None),
        ];
        for (name, attr, expected) in cases {
            assert_eq!(current_context(attr), *expected, "{name}");
        }
    }

    #[test]
    fn exec_contexts() {
        let context = |s: &str| SelinuxLabel::Context(s.to_owned());
        let kind = |s: &str| SelinuxLabel::Type(s.to_owned());
        let cases: &[(&str, SelinuxLabel, &str, Option<&str>)] = &[
            (
                "a context is used as written",
                context("other_u:other_r:web_t:s0:c1"),
                "system_u:system_r:init_t:s0",
                Some("other_u:other_r:web_t:s0:c1"),
            ),
            (
                "a type replaces PID 1's",
                kind("web_t"),
                "system_u:system_r:init_t:s0",
                Some("system_u:system_r:web_t:s0"),
            ),
            (
                "the level keeps its colons",
                kind("web_t"),
                "system_u:system_r:init_t:s0-s15:c0.c1023",
                Some("system_u:system_r:web_t:s0-s15:c0.c1023"),
            ),
            (
                "no MLS",
                kind("web_t"),
                "system_u:system_r:init_t",
                Some("system_u:system_r:web_t"),
            ),
            ("not a context", kind("web_t"), "kernel", None),
        ];
        for (name, label, current, expected) in cases {
            assert_eq!(exec_context(label, current).as_deref(), *expected, "{name}");
        }
    }
}
