//! Users and groups, from the text of `passwd(5)` and `group(5)`.
//!
//! Why not `getpwnam(3)`: liftoff is a static glibc binary, and glibc's
//! user lookups go through NSS, which `dlopen()`s `libnss_*.so` modules
//! named by `/etc/nsswitch.conf` at run time. A static binary cannot load
//! them safely (glibc's link-time warning: "Using 'getpwnam' in statically
//! linked applications requires at runtime the shared libraries from the
//! glibc version used for linking"), and an immutable host keeps its users
//! in the two flat files anyway. So the files are parsed here, as pure
//! functions over their text; the caller reads them.
//!
//! Lines that do not parse (comments, NIS `+`/`-` entries, short lines) are
//! skipped, as glibc's `files` module does.

use nix::unistd::{Gid, Uid};

/// What went wrong resolving a unit's user or groups.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    /// A user name that is not in passwd.
    #[error("no user {user:?} in passwd")]
    UnknownUser {
        /// The name asked for.
        user: String,
    },
    /// A group name that is not in group.
    #[error("no group {group:?} in group")]
    UnknownGroup {
        /// The name asked for.
        group: String,
    },
    /// A numeric uid that has no passwd entry, and no `group`: there is no
    /// primary group to take, and guessing one (runc takes 0) would be
    /// worse than asking.
    #[error("uid {uid} has no passwd entry: set the unit's group")]
    NoPrimaryGroup {
        /// The uid.
        uid: u32,
    },
}

/// The identity a unit's process takes: ids, plus what the environment
/// says about the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id.
    pub uid: Uid,
    /// The primary group id.
    pub gid: Gid,
    /// Supplementary groups, for setgroups(2): the primary group, the groups
    /// listing the user as a member (what `initgroups(3)` adds) and the
    /// unit's own, without duplicates.
    pub groups: Vec<Gid>,
    /// The user's name, for `USER` and `LOGNAME` (none for a numeric uid
    /// without an entry).
    pub name: Option<String>,
    /// The home directory, for `HOME`.
    pub home: Option<String>,
}

/// One passwd line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

/// One group line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

/// `name:password:uid:gid:gecos:home:shell`.
fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[..] {
            [name, _, uid, gid, _, home, _] if is_name(name) => Some(PasswdEntry {
                name,
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home,
            }),
            _ => None,
        }
    })
}

/// `name:password:gid:member,member`.
fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[..] {
            [name, _, gid, members] if is_name(name) => Some(GroupEntry {
                name,
                gid: gid.parse().ok()?,
                members,
            }),
            _ => None,
        }
    })
}

/// A real entry, not a comment or a NIS compat line.
fn is_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(['#', '+', '-'])
}

/// A spec that is all digits is an id (as in systemd and `chown 1000`).
fn numeric(spec: &str) -> Option<u32> {
    if spec.bytes().all(|b| b.is_ascii_digit()) {
        spec.parse().ok()
    } else {
        None
    }
}

/// A group name or numeric gid. A numeric gid need not be in the file.
pub fn resolve_group(group_text: &str, spec: &str) -> Result<Gid, UsersError> {
    if let Some(gid) = numeric(spec) {
        return Ok(Gid::from_raw(gid));
    }
    group_entries(group_text)
        .find(|entry| entry.name == spec)
        .map(|entry| Gid::from_raw(entry.gid))
        .ok_or_else(|| UsersError::UnknownGroup {
            group: spec.to_owned(),
        })
}

/// The identity for a unit's `user`, `group` and `supplementary_groups`.
///
/// * `user` is a name or a numeric uid; `None` is root (uid 0).
/// * `group` overrides the user's primary group from passwd.
/// * A named user (or a numeric uid with a passwd entry) also gets the
///   groups that list it as a member, like `initgroups(3)`.
pub fn resolve(
    passwd_text: &str,
    group_text: &str,
    user: Option<&str>,
    group: Option<&str>,
    supplementary: &[String],
) -> Result<Identity, UsersError> {
    let user = user.unwrap_or("0");
    let entry = match numeric(user) {
        Some(uid) => passwd_entries(passwd_text).find(|entry| entry.uid == uid),
        None => Some(
            passwd_entries(passwd_text)
                .find(|entry| entry.name == user)
                .ok_or_else(|| UsersError::UnknownUser {
                    user: user.to_owned(),
                })?,
        ),
    };
    let uid = match (entry, numeric(user)) {
        (Some(entry), _) => entry.uid,
        (None, Some(uid)) => uid,
        // A name that is not found returned above.
        (None, None) => 0,
    };
    let gid = match (group, entry) {
        (Some(spec), _) => resolve_group(group_text, spec)?,
        (None, Some(entry)) => Gid::from_raw(entry.gid),
        (None, None) if uid == 0 => Gid::from_raw(0),
        (None, None) => return Err(UsersError::NoPrimaryGroup { uid }),
    };

    let mut groups = vec![gid];
    if let Some(entry) = entry {
        for listed in group_entries(group_text) {
            if listed.members.split(',').any(|member| member == entry.name) {
                push_unique(&mut groups, Gid::from_raw(listed.gid));
            }
        }
    }
    for spec in supplementary {
        push_unique(&mut groups, resolve_group(group_text, spec)?);
    }

    Ok(Identity {
        uid: Uid::from_raw(uid),
        gid,
        groups,
        name: entry.map(|entry| entry.name.to_owned()),
        home: entry.map(|entry| entry.home.to_owned()),
    })
}

fn push_unique(groups: &mut Vec<Gid>, gid: Gid) {
    if !groups.contains(&gid) {
        groups.push(gid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment line
+nisuser::::::
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken:x:notanumber:1::/:/bin/false
short:x:5
containerd:x:998:997:containerd:/var/lib/containerd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";

    const GROUP: &str = "\
root:x:0:
daemon:x:1:
kvm:x:36:containerd,qemu
netdev:x:108:qemu,containerd
containerd:x:997:
nogroup:x:65534:
# commented:x:5:containerd
";

    fn gids(ids: &[u32]) -> Vec<Gid> {
        ids.iter().copied().map(Gid::from_raw).collect()
    }

    #[test]
    fn resolves_users_and_groups() {
        struct Case {
            name: &'static str,
            user: Option<&'static str>,
            group: Option<&'static str>,
            supplementary: &'static [&'static str],
            expected: Identity,
        }
        let cases = [
            Case {
                name: "no user is root",
                user: None,
                group: None,
                supplementary: &[],
                expected: Identity {
                    uid: Uid::from_raw(0),
                    gid: Gid::from_raw(0),
                    groups: gids(&[0]),
                    name: Some("root".into()),
                    home: Some("/root".into()),
                },
            },
            Case {
                name: "name with member groups",
                user: Some("containerd"),
                group: None,
                supplementary: &[],
                expected: Identity {
                    uid: Uid::from_raw(998),
                    gid: Gid::from_raw(997),
                    groups: gids(&[997, 36, 108]),
                    name: Some("containerd".into()),
                    home: Some("/var/lib/containerd".into()),
                },
            },
            Case {
                name: "numeric uid with an entry takes its name",
                user: Some("65534"),
                group: None,
                supplementary: &["kvm", "4242", "nogroup"],
                expected: Identity {
                    uid: Uid::from_raw(65534),
                    gid: Gid::from_raw(65534),
                    groups: gids(&[65534, 36, 4242]),
                    name: Some("nobody".into()),
                    home: Some("/nonexistent".into()),
                },
            },
            Case {
                name: "numeric uid without an entry, group given",
                user: Some("1234"),
                group: Some("5678"),
                supplementary: &[],
                expected: Identity {
                    uid: Uid::from_raw(1234),
                    gid: Gid::from_raw(5678),
                    groups: gids(&[5678]),
                    name: None,
                    home: None,
                },
            },
            Case {
                name: "group overrides the primary group",
                user: Some("daemon"),
                group: Some("kvm"),
                supplementary: &[],
                expected: Identity {
                    uid: Uid::from_raw(1),
                    gid: Gid::from_raw(36),
                    groups: gids(&[36]),
                    name: Some("daemon".into()),
                    home: Some("/usr/sbin".into()),
                },
            },
        ];
        for case in cases {
            let supplementary: Vec<String> =
                case.supplementary.iter().map(|s| s.to_string()).collect();
            let got = resolve(PASSWD, GROUP, case.user, case.group, &supplementary);
            assert_eq!(got, Ok(case.expected), "{}", case.name);
        }
    }

    #[test]
    fn failures_name_what_is_missing() {
        struct Case {
            name: &'static str,
            user: Option<&'static str>,
            group: Option<&'static str>,
            supplementary: &'static [&'static str],
            expected: UsersError,
        }
        let cases = [
            Case {
                name: "unknown user",
                user: Some("postgres"),
                group: None,
                supplementary: &[],
                expected: UsersError::UnknownUser {
                    user: "postgres".into(),
                },
            },
            Case {
                name: "a malformed line is not a user",
                user: Some("broken"),
                group: None,
                supplementary: &[],
                expected: UsersError::UnknownUser {
                    user: "broken".into(),
                },
            },
            Case {
                name: "a NIS line is not a user",
                user: Some("+nisuser"),
                group: None,
                supplementary: &[],
                expected: UsersError::UnknownUser {
                    user: "+nisuser".into(),
                },
            },
            Case {
                name: "unknown group",
                user: Some("daemon"),
                group: Some("wheel"),
                supplementary: &[],
                expected: UsersError::UnknownGroup {
                    group: "wheel".into(),
                },
            },
            Case {
                name: "unknown supplementary group",
                user: None,
                group: None,
                supplementary: &["kvm", "docker"],
                expected: UsersError::UnknownGroup {
                    group: "docker".into(),
                },
            },
            Case {
                name: "numeric uid without entry or group",
                user: Some("1234"),
                group: None,
                supplementary: &[],
                expected: UsersError::NoPrimaryGroup { uid: 1234 },
            },
        ];
        for case in cases {
            let supplementary: Vec<String> =
                case.supplementary.iter().map(|s| s.to_string()).collect();
            let got = resolve(PASSWD, GROUP, case.user, case.group, &supplementary);
            assert_eq!(got, Err(case.expected.clone()), "{}", case.name);
        }
        let message = UsersError::UnknownUser {
            user: "postgres".into(),
        }
        .to_string();
        assert!(message.contains("postgres"), "{message}");
    }

    #[test]
    fn empty_files_still_resolve_numeric_ids() {
        let got = resolve("", "", Some("0"), None, &["10".to_string()]).unwrap();
        assert_eq!(got.uid, Uid::from_raw(0));
        assert_eq!(got.groups, gids(&[0, 10]));
        assert_eq!(got.name, None);
        assert_eq!(resolve_group("", "7"), Ok(Gid::from_raw(7)));
    }
}
