//! Unit files: `/etc/liftoff/units/NAME.toml` (from the verified root), then
//! `/run/liftoff/units/NAME.toml` (generated at runtime), read into
//! [`Unit`]s with every default filled in. The format is documented in
//! `docs/units.md`.
//!
//! [`parse`] is pure (a path for the name and messages, and the text);
//! [`load`] is the thin shell that lists directories and reads files. Every
//! error names the file, the 1-based line and the key, and one bad file never
//! stops the others from loading. Dependencies between units are checked
//! later, by [`crate::graph`].
//!
//! Left out: drop-ins and overrides (a name is defined once; the first
//! directory wins), templates (`@` is allowed in names but not expanded).

mod convert;
mod raw;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::unit::{Unit, UnitName};

/// The directory of the unit files shipped on the verified root.
pub const ETC_UNITS: &str = "/etc/liftoff/units";
/// The directory of unit files generated at runtime; a name already defined
/// in [`ETC_UNITS`] cannot be redefined here.
pub const RUN_UNITS: &str = "/run/liftoff/units";

/// The longest unit name, in bytes. A name becomes the notify socket
/// `/run/liftoff/notify/NAME`, and `sun_path` holds 108 bytes with its NUL;
/// 64 leaves room for a longer prefix.
pub const NAME_MAX: usize = 64;

/// Whether `name` is a valid unit name: 1 to [`NAME_MAX`] bytes of ASCII
/// letters, digits, `-`, `_`, `.` and `@`, not starting with `.` (so never
/// `.`, `..` or a hidden file, and never a `/`).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// What went wrong in a unit file (or its directory); [`FileError`] adds
/// where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileErrorKind {
    /// Listing a unit directory failed (a missing directory is not an
    /// error).
    #[error("cannot read the unit directory")]
    ReadDir(#[source] io::Error),
    /// Reading a unit file failed (including text that is not UTF-8).
    #[error("cannot read the unit file")]
    ReadFile(#[source] io::Error),
    /// The text is not TOML; the message is the toml crate's.
    #[error("{0}")]
    Syntax(String),
    /// A key that the format does not have.
    #[error("unknown key")]
    UnknownKey,
    /// A value of the wrong type; the message is serde's (`invalid type:
    /// integer `5`, expected a string`).
    #[error("{0}")]
    WrongType(String),
    /// A required key is missing.
    #[error("is required")]
    Missing,
    /// The file's stem, or a name in a dependency list, is not a valid unit
    /// name (see [`is_valid_name`]).
    #[error(
        "{0:?} is not a unit name: use 1 to 64 letters, digits, '-', '_', '.', '@', \
         not starting with '.'"
    )]
    BadName(String),
    /// A unit lists itself as a dependency.
    #[error("{0:?} is this unit itself")]
    SelfReference(String),
    /// A string that must be one of a fixed set of words.
    #[error("{value:?} is not one of {}", allowed.join(", "))]
    NotOneOf {
        /// What the file says.
        value: String,
        /// The accepted words.
        allowed: &'static [&'static str],
    },
    /// A string that humantime cannot read as a duration.
    #[error("{value:?} is not a duration like \"100ms\", \"10s\" or \"2min\"")]
    BadDuration {
        /// What the file says.
        value: String,
        /// Why humantime rejected it.
        #[source]
        source: humantime::DurationError,
    },
    /// A duration written as something other than a string: durations
    /// always carry a unit, so `10` is rejected rather than guessed.
    #[error("a duration must be a string with a unit, like \"10s\", found {0}")]
    DurationNotString(&'static str),
    /// A zero duration where it would mean "fail at once".
    #[error("must be more than 0")]
    ZeroDuration,
    /// `restart_delay_max` below `restart_delay`.
    #[error("{max:?} is less than restart_delay ({min:?})")]
    DelayMaxBelowDelay {
        /// `restart_delay_max`.
        max: std::time::Duration,
        /// `restart_delay`.
        min: std::time::Duration,
    },
    /// A key that only some unit types accept.
    #[error("only allowed with type {allowed}")]
    WrongUnitType {
        /// The types that accept the key.
        allowed: &'static str,
    },
    /// An integer outside its range.
    #[error("{value} is not in {min}..={max}")]
    OutOfRange {
        /// What the file says.
        value: i64,
        /// The smallest accepted value.
        min: i64,
        /// The largest accepted value.
        max: i64,
    },
    /// A path that must be absolute.
    #[error("{0:?} is not an absolute path")]
    RelativePath(String),
    /// An empty list where at least one item is needed.
    #[error("must not be empty")]
    Empty,
    /// A string that would be cut short at exec (argv, environment).
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
    /// A signal name or number that does not exist.
    #[error("{0:?} is not a signal (a name like \"SIGTERM\" or \"TERM\", or a number 1..=64)")]
    BadSignal(String),
    /// A capability name that does not exist.
    #[error("{0:?} is not a capability")]
    BadCapability(String),
    /// An ambient capability outside the bounding set.
    #[error("{0} is not in capabilities (the bounding set)")]
    AmbientNotBounded(String),
    /// An environment variable name that is empty or contains `=`.
    #[error("{0:?} is not an environment variable name")]
    BadEnvironmentName(String),
    /// An environment variable that liftoff sets itself.
    #[error("{0} is set by liftoff")]
    ReservedEnvironment(String),
    /// A resource limit that is not in the list.
    #[error("{0:?} is not a resource limit (one of {list})", list = convert::LIMIT_NAMES.join(", "))]
    UnknownLimit(String),
    /// A resource limit value of the wrong shape.
    #[error("expected an integer, \"infinity\" or [soft, hard], found {0}")]
    BadLimit(String),
    /// A soft limit above the hard limit.
    #[error("soft limit {soft} is above hard limit {hard}")]
    SoftAboveHard {
        /// The soft limit (a number or "infinity").
        soft: String,
        /// The hard limit.
        hard: String,
    },
    /// A cgroup size or count that is not a number, a `K`/`M`/`G`/`T`
    /// size, or `"max"`.
    #[error("expected {expected}, found {found}")]
    BadCgroupValue {
        /// What the key accepts.
        expected: &'static str,
        /// What the file says.
        found: String,
    },
    /// A `selinux_context` that is not `user:role:type` or
    /// `user:role:type:level` (see [`crate::selinux::is_valid_context`]).
    #[error(
        "{0:?} is not an SELinux context: expected user:role:type or user:role:type:level, \
         with names of letters, digits, '_', '.', '-' and no spaces"
    )]
    BadSelinuxContext(String),
    /// A `selinux_type` that is not a type name (see
    /// [`crate::selinux::is_valid_type`]).
    #[error("{0:?} is not an SELinux type: use letters, digits, '_', '.', '-'")]
    BadSelinuxType(String),
    /// Two keys that say the same thing differently, both given.
    #[error("cannot be used together with {0}")]
    Conflict(&'static str),
    /// A unit name already defined by an earlier file.
    #[error("unit {name:?} is already defined by {}", first.display())]
    Duplicate {
        /// The unit name.
        name: UnitName,
        /// The file that defined it first, and that stays.
        first: PathBuf,
    },
}

/// An error in a unit file or directory: where (file, line, key) and what.
///
/// Displays as `/etc/liftoff/units/web.toml:7: key "restart": "sometimes" is
/// not one of never, on-failure, always`; the line and the key are left out
/// when unknown. Not derived with thiserror: its [`source`] is the kind's
/// source, so that the kind's message is not printed twice in a chain.
///
/// [`source`]: std::error::Error::source
#[derive(Debug)]
pub struct FileError {
    path: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    unit: Option<UnitName>,
    /// Boxed: errors travel in every `Result` of the parser, and most
    /// kinds are small while a few hold two strings.
    kind: Box<FileErrorKind>,
}

impl FileError {
    /// An error about the whole of `path`, which is a unit file (its name is
    /// the file's stem, when valid).
    fn file(path: &Path, kind: FileErrorKind) -> Self {
        FileError {
            path: path.to_path_buf(),
            line: None,
            key: None,
            unit: stem_name(path).ok(),
            kind: Box::new(kind),
        }
    }

    /// The file or directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The key, dotted for nested tables (`cgroup.memory_max`), when known.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> &FileErrorKind {
        &self.kind
    }

    /// The unit the file would define, if its name is valid; `None` for a
    /// directory error. [`crate::graph::check`] uses it to say "requires X,
    /// whose file failed to load".
    pub fn name(&self) -> Option<&str> {
        self.unit.as_deref()
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "key {key:?}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.kind)
    }
}

/// Where errors in one file point: turns byte spans into lines.
#[derive(Debug)]
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    unit: Option<&'a str>,
}

impl Source<'_> {
    /// An error at byte `span` (if known) of the file, about `key`.
    fn error(&self, span: Option<Range<usize>>, key: &str, kind: FileErrorKind) -> FileError {
        FileError {
            path: self.path.to_path_buf(),
            line: span.map(|span| line_of(self.text, span.start)),
            key: Some(key.to_owned()),
            unit: self.unit.map(str::to_owned),
            kind: Box::new(kind),
        }
    }
}

/// The 1-based line of byte `offset` (counted in bytes: an offset inside a
/// multi-byte character cannot panic).
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The unit name of `path`: its stem, validated.
fn stem_name(path: &Path) -> Result<UnitName, FileErrorKind> {
    let stem = path.file_stem().unwrap_or_default();
    match stem.to_str() {
        Some(name) if is_valid_name(name) => Ok(name.to_owned()),
        _ => Err(FileErrorKind::BadName(stem.to_string_lossy().into_owned())),
    }
}

/// Reads one unit file's text. The unit's name is the stem of `path`
/// (`web` for `/etc/liftoff/units/web.toml`); `path` is also recorded as
/// [`Unit::source`] and named in errors. Pure: nothing is read from `path`.
///
/// # Errors
///
/// The first problem found: a bad name, TOML syntax, an unknown key, a
/// wrong type, or a value that fails its check (see `docs/units.md`).
pub fn parse(path: &Path, text: &str) -> Result<Unit, FileError> {
    let name = stem_name(path).map_err(|kind| FileError::file(path, kind))?;
    let source = Source {
        path,
        text,
        unit: Some(&name),
    };
    let table = toml::de::DeTable::parse(text).map_err(|e| FileError {
        path: path.to_path_buf(),
        line: e.span().map(|span| line_of(text, span.start)),
        key: None,
        unit: Some(name.clone()),
        kind: Box::new(FileErrorKind::Syntax(e.message().to_owned())),
    })?;
    let raw = raw::RawUnit::deserialize(toml::de::Deserializer::from(table))
        .map_err(|e| schema_error(&source, &e))?;
    convert::unit(&source, name.clone(), raw)
}

/// Turns a serde error (unknown key, wrong type) into a [`FileError`]: the
/// toml error knows the span but keeps its key path private, so the key is
/// found again by walking the document to the innermost key around the span.
fn schema_error(source: &Source<'_>, error: &toml::de::Error) -> FileError {
    let span = error.span();
    let key = span
        .as_ref()
        .and_then(|span| match toml::de::DeTable::parse(source.text) {
            Ok(table) => key_at(table.get_ref(), span.start, ""),
            Err(_) => None,
        });
    let message = error.message();
    let kind = if message.starts_with("unknown field") {
        FileErrorKind::UnknownKey
    } else {
        FileErrorKind::WrongType(message.to_owned())
    };
    FileError {
        key,
        ..source.error(span, "", kind)
    }
}

/// The dotted key whose name or value holds byte `offset`, innermost first.
fn key_at(table: &toml::de::DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if let Some(inner) = value.get_ref().as_table()
            && let Some(found) = key_at(inner, offset, &path)
        {
            return Some(found);
        }
        if key.span().contains(&offset) || value.span().contains(&offset) {
            return Some(path);
        }
    }
    None
}

/// What [`load`] found: the units that parsed, and an error for every file
/// (or directory) that did not.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The units, in directory order then name order.
    pub units: Vec<Unit>,
    /// One error per bad file, duplicate name or unreadable directory.
    pub errors: Vec<FileError>,
}

impl Loaded {
    /// The names of the units whose files failed to load, for
    /// [`crate::graph::check`].
    pub fn unloadable(&self) -> Vec<UnitName> {
        let mut names: Vec<UnitName> = self
            .errors
            .iter()
            .filter_map(|e| e.name())
            .filter(|name| !self.units.iter().any(|u| u.name == *name))
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Reads every `*.toml` file in `dirs`, in order, each directory's files
/// sorted by name. Meant for `[ETC_UNITS, RUN_UNITS]` under the root.
///
/// A missing directory is skipped; an unreadable one is an error. A name
/// defined twice keeps the first file (even when that file is broken: a
/// generated unit never replaces a shipped one) and reports the second.
pub fn load(dirs: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::default();
    let mut defined: BTreeMap<UnitName, PathBuf> = BTreeMap::new();
    for dir in dirs {
        let files = match unit_files(dir) {
            Ok(files) => files,
            Err(kind) => {
                loaded.errors.push(FileError {
                    path: dir.clone(),
                    line: None,
                    key: None,
                    unit: None,
                    kind: Box::new(kind),
                });
                continue;
            }
        };
        for path in files {
            let result = std::fs::read_to_string(&path)
                .map_err(|e| FileError::file(&path, FileErrorKind::ReadFile(e)))
                .and_then(|text| parse(&path, &text));
            let name = match &result {
                Ok(unit) => Some(unit.name.clone()),
                Err(e) => e.name().map(str::to_owned),
            };
            if let Some(name) = name {
                if let Some(first) = defined.get(&name) {
                    let kind = FileErrorKind::Duplicate {
                        name,
                        first: first.clone(),
                    };
                    loaded.errors.push(FileError::file(&path, kind));
                    continue;
                }
                defined.insert(name, path.clone());
            }
            match result {
                Ok(unit) => loaded.units.push(unit),
                Err(e) => loaded.errors.push(e),
            }
        }
    }
    loaded
}

/// The `*.toml` files in `dir`, sorted; none if `dir` does not exist.
fn unit_files(dir: &Path) -> Result<Vec<PathBuf>, FileErrorKind> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FileErrorKind::ReadDir(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(FileErrorKind::ReadDir)?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
