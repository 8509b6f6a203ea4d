//! Host-container settings: one TOML file per host container, shipped by the
//! image in [`IMAGE_DIR`] and overridden by the operator in [`LOCAL_DIR`].
//! The format is documented in `docs/host-containers.md`.
//!
//! [`parse`] reads one file's text (pure), [`merge`] lays an override over
//! the image's file (pure), and [`load`] is the thin shell that lists both
//! directories and reads the files. Every error names the file, the 1-based
//! line and the key, and one bad file costs only its own host container.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use toml::{Spanned, Value};

/// The settings shipped on the verified root, one `NAME.toml` per host
/// container.
pub const IMAGE_DIR: &str = "/etc/liftoff/host-containers";
/// The operator's overrides, on the persistent volume so that they survive
/// reboots and image updates; `NAME.toml` overrides the image's
/// `NAME.toml` key by key.
pub const LOCAL_DIR: &str = "/local/host-containers";

/// The unit every generated host-container unit requires: the containerd
/// instance that runs host containers only (issue 7). A host container may
/// not take this name: its unit would require itself.
pub const HOST_CONTAINERD: &str = "host-containerd";

/// The first restart's delay when the settings do not say (the unit
/// default, 100ms, would retry a missing archive ten times a second).
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
/// The cap on the doubled restart delay when the settings do not say (the
/// unit default).
pub const DEFAULT_RESTART_DELAY_MAX: Duration = Duration::from_secs(30);

/// One host container's settings, the image's file and the override
/// merged, with every default filled in.
///
/// [`load`] and [`merge`] only build valid ones (a unit name, an absolute
/// `source` without NUL, `restart_delay_max` ≥ `restart_delay`);
/// [`crate::unit::unit_for`] relies on that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The host container's name: its files' stem, and the name of its
    /// unit (so `liftoff ctl status admin` works).
    pub name: String,
    /// Whether a unit is generated for it. Default `false`.
    pub enabled: bool,
    /// The local OCI archive its image is imported from (absolute).
    pub source: PathBuf,
    /// Privileged mode: host PID namespace, the host root read-only inside,
    /// the privileged SELinux domain. Default `false`.
    pub superpowered: bool,
    /// One line for people (the unit's `description`).
    pub description: Option<String>,
    /// The unit's first restart delay.
    #[serde(serialize_with = "human_duration")]
    pub restart_delay: Duration,
    /// The cap on the unit's doubled restart delay.
    #[serde(serialize_with = "human_duration")]
    pub restart_delay_max: Duration,
    /// The files the settings came from: the image's, then the override.
    pub files: Vec<PathBuf>,
}

/// Serializes a duration the way settings files write it (`"1s"`).
fn human_duration<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*duration).to_string())
}

/// What one settings file says, checked on its own: keys it leaves out are
/// `None` so that [`merge`] can take them from the image's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsFile {
    path: PathBuf,
    name: String,
    enabled: Option<bool>,
    source: Option<PathBuf>,
    superpowered: Option<bool>,
    description: Option<String>,
    restart_delay: Option<Located<Duration>>,
    restart_delay_max: Option<Located<Duration>>,
}

impl SettingsFile {
    /// The host container's name (the file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A value and the line it is on, for errors found after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Located<T> {
    value: T,
    line: usize,
}

/// What went wrong in a settings file (or its directory);
/// [`SettingsError`] adds where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsErrorKind {
    /// Listing a settings directory failed (a missing directory is not an
    /// error).
    #[error("cannot read the settings directory")]
    ReadDir(#[source] io::Error),
    /// Reading a settings file failed (including text that is not UTF-8).
    #[error("cannot read the settings file")]
    ReadFile(#[source] io::Error),
    /// The text is not TOML; the message is the toml crate's.
    #[error("{0}")]
    Syntax(String),
    /// A key that the format does not have.
    #[error("unknown key")]
    UnknownKey,
    /// A value of the wrong type; the message is serde's.
    #[error("{0}")]
    WrongType(String),
    /// A required key is missing from the image's file and the override.
    #[error("is required")]
    Missing,
    /// The file's stem is not a unit name (the generated unit is named
    /// after it).
    #[error(
        "{0:?} is not a host container name: use 1 to 64 letters, digits, '-', '_', '.', '@', \
         not starting with '.'"
    )]
    BadName(String),
    /// A name that is taken by the unit host containers depend on.
    #[error("{0:?} is reserved: it is the containerd instance of host containers")]
    ReservedName(String),
    /// An override paired with an image file of another name.
    #[error("overrides {image:?}, a different host container")]
    DifferentNames {
        /// The image file's host container.
        image: String,
    },
    /// A path that must be absolute.
    #[error("{0:?} is not an absolute path")]
    RelativePath(String),
    /// A string that would be cut short at exec.
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
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
    /// `restart_delay_max` below `restart_delay` once merged with the
    /// other file and the defaults.
    #[error("{max:?} is less than restart_delay ({min:?})")]
    DelayMaxBelowDelay {
        /// `restart_delay_max`.
        max: Duration,
        /// `restart_delay`.
        min: Duration,
    },
}

/// An error in a settings file or directory: where (file, line, key) and
/// what.
///
/// Displays as `/local/host-containers/admin.toml:2: key "enabled": invalid
/// type: string "yes", expected a boolean`; the line and the key are left
/// out when unknown. Not derived with thiserror: its [`source`] is the
/// kind's source, so that the kind's message is not printed twice in a
/// chain.
///
/// [`source`]: std::error::Error::source
#[derive(Debug)]
pub struct SettingsError {
    path: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    name: Option<String>,
    kind: Box<SettingsErrorKind>,
}

impl SettingsError {
    /// An error about the whole of `path`.
    fn file(path: &Path, name: Option<&str>, kind: SettingsErrorKind) -> Self {
        SettingsError {
            path: path.to_path_buf(),
            line: None,
            key: None,
            name: name.map(str::to_owned),
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

    /// The key, when known.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The host container the file is about, if its name is valid; `None`
    /// for a directory error.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> &SettingsErrorKind {
        &self.kind
    }
}

impl fmt::Display for SettingsError {
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

impl std::error::Error for SettingsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.kind)
    }
}

/// A settings file as serde reads it: every key optional, values that need
/// checking kept [`Spanned`] so that errors can name their line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    enabled: Option<bool>,
    source: Option<Spanned<String>>,
    superpowered: Option<bool>,
    description: Option<Spanned<String>>,
    restart_delay: Option<Spanned<Value>>,
    restart_delay_max: Option<Spanned<Value>>,
}

/// Where errors in one file point: turns byte spans into lines.
#[derive(Debug)]
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    name: &'a str,
}

impl Source<'_> {
    /// An error at byte `span` (if known) of the file, about `key`.
    fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        kind: SettingsErrorKind,
    ) -> SettingsError {
        SettingsError {
            path: self.path.to_path_buf(),
            line: span.map(|span| line_of(self.text, span.start)),
            key,
            name: Some(self.name.to_owned()),
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

/// The host container name of `path`: its stem, checked like a unit name.
fn stem_name(path: &Path) -> Result<String, SettingsErrorKind> {
    let stem = path.file_stem().unwrap_or_default();
    match stem.to_str() {
        Some(HOST_CONTAINERD) => Err(SettingsErrorKind::ReservedName(HOST_CONTAINERD.to_owned())),
        Some(name) if units::file::is_valid_name(name) => Ok(name.to_owned()),
        _ => Err(SettingsErrorKind::BadName(
            stem.to_string_lossy().into_owned(),
        )),
    }
}

/// Reads one settings file's text. The host container's name is the stem
/// of `path` (`admin` for `/etc/liftoff/host-containers/admin.toml`);
/// `path` is also named in errors. Pure: nothing is read from `path`.
///
/// # Errors
///
/// The first problem found: a bad name, TOML syntax, an unknown key, a
/// wrong type, or a value that fails its check (a relative `source`, a
/// duration without a unit).
pub fn parse(path: &Path, text: &str) -> Result<SettingsFile, SettingsError> {
    let name = stem_name(path).map_err(|kind| SettingsError::file(path, None, kind))?;
    let src = Source {
        path,
        text,
        name: &name,
    };
    let table = toml::de::DeTable::parse(text).map_err(|e| {
        src.error(
            e.span(),
            None,
            SettingsErrorKind::Syntax(e.message().to_owned()),
        )
    })?;
    let raw = RawSettings::deserialize(toml::de::Deserializer::from(table))
        .map_err(|e| schema_error(&src, &e))?;
    let source = match raw.source {
        Some(source) => Some(absolute(&src, "source", &source)?),
        None => None,
    };
    let description = match raw.description {
        Some(text) if text.get_ref().contains('\0') => {
            let kind = SettingsErrorKind::Nul(text.get_ref().clone());
            return Err(src.error(Some(text.span()), Some("description".into()), kind));
        }
        Some(text) => Some(text.into_inner()),
        None => None,
    };
    Ok(SettingsFile {
        path: path.to_path_buf(),
        name: name.clone(),
        enabled: raw.enabled,
        source,
        superpowered: raw.superpowered,
        description,
        restart_delay: duration(&src, "restart_delay", raw.restart_delay.as_ref())?,
        restart_delay_max: duration(&src, "restart_delay_max", raw.restart_delay_max.as_ref())?,
    })
}

/// An absolute path without NUL bytes (it becomes an argument of `exec`).
fn absolute(src: &Source<'_>, key: &str, text: &Spanned<String>) -> Result<PathBuf, SettingsError> {
    let value = text.get_ref();
    let kind = if value.contains('\0') {
        SettingsErrorKind::Nul(value.clone())
    } else if !value.starts_with('/') {
        SettingsErrorKind::RelativePath(value.clone())
    } else {
        return Ok(PathBuf::from(value));
    };
    Err(src.error(Some(text.span()), Some(key.to_owned()), kind))
}

/// A duration: a string that humantime reads ("100ms", "10s", "2min").
/// Integers are refused: a bare `10` could mean seconds or milliseconds.
fn duration(
    src: &Source<'_>,
    key: &str,
    value: Option<&Spanned<Value>>,
) -> Result<Option<Located<Duration>>, SettingsError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let span = Some(value.span());
    let kind = match value.get_ref() {
        Value::String(text) => match humantime::parse_duration(text) {
            Ok(duration) => {
                return Ok(Some(Located {
                    value: duration,
                    line: line_of(src.text, value.span().start),
                }));
            }
            Err(source) => SettingsErrorKind::BadDuration {
                value: text.clone(),
                source,
            },
        },
        other => SettingsErrorKind::DurationNotString(other.type_str()),
    };
    Err(src.error(span, Some(key.to_owned()), kind))
}

/// Turns a serde error (unknown key, wrong type) into a [`SettingsError`]:
/// the toml error knows the span but keeps its key path private, so the key
/// is found again as the top-level key whose name or value holds the span.
fn schema_error(src: &Source<'_>, error: &toml::de::Error) -> SettingsError {
    let span = error.span();
    let key = span
        .as_ref()
        .and_then(|span| match toml::de::DeTable::parse(src.text) {
            Ok(table) => table
                .get_ref()
                .iter()
                .find(|(key, value)| {
                    key.span().contains(&span.start) || value.span().contains(&span.start)
                })
                .map(|(key, _)| key.get_ref().to_string()),
            Err(_) => None,
        });
    let message = error.message();
    let kind = if message.starts_with("unknown field") {
        SettingsErrorKind::UnknownKey
    } else {
        SettingsErrorKind::WrongType(message.to_owned())
    };
    src.error(span, key, kind)
}

/// Lays `local` (the operator's override) over `image` (the file the image
/// ships): each key the override sets replaces the image's, and keys that
/// neither sets get their defaults. `Ok(None)` when there is no file at
/// all.
///
/// # Errors
///
/// * the two files name different host containers;
/// * neither file names a `source` (an override for a host container that
///   the image does not ship must name one);
/// * `restart_delay_max` ends up below `restart_delay`.
pub fn merge(
    image: Option<&SettingsFile>,
    local: Option<&SettingsFile>,
) -> Result<Option<Settings>, SettingsError> {
    let top = match (image, local) {
        (None, None) => return Ok(None),
        (Some(image), Some(local)) if image.name != local.name => {
            let kind = SettingsErrorKind::DifferentNames {
                image: image.name.clone(),
            };
            return Err(SettingsError::file(&local.path, Some(&local.name), kind));
        }
        (_, Some(file)) | (Some(file), None) => file,
    };
    let name = top.name.clone();
    let Some((_, source)) = layered(image, local, |f| f.source.clone()) else {
        return Err(SettingsError {
            key: Some("source".to_owned()),
            ..SettingsError::file(&top.path, Some(&name), SettingsErrorKind::Missing)
        });
    };
    let delay = layered(image, local, |f| f.restart_delay);
    let max = layered(image, local, |f| f.restart_delay_max);
    let restart_delay = delay.map_or(DEFAULT_RESTART_DELAY, |(_, d)| d.value);
    let restart_delay_max = max.map_or(DEFAULT_RESTART_DELAY_MAX, |(_, d)| d.value);
    if restart_delay_max < restart_delay {
        // Point at the key that was written: the maximum if a file sets
        // it, else the delay that overshoots the default maximum (one of
        // the two is set, or the defaults would be in order).
        let (key, written) = match max {
            Some(max) => ("restart_delay_max", Some(max)),
            None => ("restart_delay", delay),
        };
        let kind = SettingsErrorKind::DelayMaxBelowDelay {
            max: restart_delay_max,
            min: restart_delay,
        };
        let file = written.map_or(top, |(file, _)| file);
        return Err(SettingsError {
            line: written.map(|(_, d)| d.line),
            key: Some(key.to_owned()),
            ..SettingsError::file(&file.path, Some(&name), kind)
        });
    }
    Ok(Some(Settings {
        name,
        enabled: layered(image, local, |f| f.enabled).is_some_and(|(_, on)| on),
        source,
        superpowered: layered(image, local, |f| f.superpowered).is_some_and(|(_, on)| on),
        description: layered(image, local, |f| f.description.clone()).map(|(_, d)| d),
        restart_delay,
        restart_delay_max,
        files: image
            .into_iter()
            .chain(local)
            .map(|f| f.path.clone())
            .collect(),
    }))
}

/// The value of one key: the override's if it sets the key, else the
/// image's; with the file it came from.
fn layered<'a, T>(
    image: Option<&'a SettingsFile>,
    local: Option<&'a SettingsFile>,
    key: impl Fn(&SettingsFile) -> Option<T>,
) -> Option<(&'a SettingsFile, T)> {
    let from = |file: &'a SettingsFile| key(file).map(|value| (file, value));
    local.and_then(from).or_else(|| image.and_then(from))
}

/// What [`load`] found: the host containers whose settings are good, and an
/// error for every file (or directory) that is not.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every host container with good settings, enabled or not, sorted by
    /// name.
    pub settings: Vec<Settings>,
    /// One error per bad file or unreadable directory.
    pub errors: Vec<SettingsError>,
}

/// Reads the settings in `image_dir` (meant for [`IMAGE_DIR`]) and the
/// overrides in `local_dir` (meant for [`LOCAL_DIR`]) and merges them by
/// name.
///
/// A missing directory is fine. A bad file costs only its host container:
/// a broken override does not fall back to the image's file, so that a
/// host container the operator turned off never runs because the override
/// became unreadable. For the same reason a `local_dir` that cannot be
/// listed costs every host container (which ones it overrides is
/// unknown); an `image_dir` that cannot be listed leaves the overrides that
/// stand on their own.
pub fn load(image_dir: &Path, local_dir: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let mut local = match read_dir(local_dir) {
        Ok(files) => files,
        Err(error) => {
            loaded.errors.push(error);
            return loaded;
        }
    };
    let mut image = read_dir(image_dir).unwrap_or_else(|error| {
        loaded.errors.push(error);
        BTreeMap::new()
    });
    let mut names: Vec<String> = image.keys().chain(local.keys()).cloned().collect();
    names.sort();
    names.dedup();
    for name in names {
        let (image, local) = match (
            image.remove(&name).transpose(),
            local.remove(&name).transpose(),
        ) {
            (Ok(image), Ok(local)) => (image, local),
            (image, local) => {
                loaded.errors.extend(image.err());
                loaded.errors.extend(local.err());
                continue;
            }
        };
        match merge(image.as_ref(), local.as_ref()) {
            Ok(Some(settings)) => loaded.settings.push(settings),
            Ok(None) => {}
            Err(error) => loaded.errors.push(error),
        }
    }
    loaded
}

/// The parsed files of one directory, by host container name. A file whose
/// name is not a valid host container name is kept under its stem, so that
/// it is reported once.
type DirFiles = BTreeMap<String, Result<SettingsFile, SettingsError>>;

/// Reads every `*.toml` file in `dir`; none if `dir` does not exist.
fn read_dir(dir: &Path) -> Result<DirFiles, SettingsError> {
    let dir_error = |e| SettingsError::file(dir, None, SettingsErrorKind::ReadDir(e));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(dir_error(e)),
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(dir_error)?.path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let result = std::fs::read_to_string(&path)
            .map_err(|e| {
                let name = stem_name(&path).ok();
                SettingsError::file(&path, name.as_deref(), SettingsErrorKind::ReadFile(e))
            })
            .and_then(|text| parse(&path, &text));
        files.insert(stem, result);
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
