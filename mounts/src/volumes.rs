//! Volumes: the mounts the verified root asks for in
//! `/etc/liftoff/mounts.toml` (docs/volumes.md).
//!
//! [`parse`] reads the file's text into typed [`Volume`]s; [`plan`] turns
//! them into an ordered list of [`Step`]s under the new root, without a
//! syscall. `liftoff` (init/src/volumes.rs) carries the steps out before
//! switch_root, and undoes its mounts if one fails.
//!
//! Four kinds: a `tmpfs`, an ephemeral `overlay` over a directory of the
//! read-only root, a `persistent` ext4 partition found by its label (and
//! formatted by `init` when it is blank), and a `bind` from a directory
//! on a persistent volume, made shared.
//!
//! Left out: other filesystems for persistent volumes, and mount options
//! as data beyond `mode` and `size`. A volume's SELinux `context` is not a
//! mount option (see [`labels`]).

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use kernel_cmdline::RootDevice;
use nix::mount::MsFlags;
use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::MountSpec;
use crate::devices::DeviceSpec;

/// The file, relative to the new root.
pub const CONFIG_PATH: &str = "etc/liftoff/mounts.toml";
/// Where overlay upper and work directories go (on stage 1's `/run`, a
/// tmpfs that switch_root moves into the new root).
pub const OVERLAY_DIR: &str = "/run/liftoff/overlay";
/// The only filesystem a persistent volume has.
pub const PERSISTENT_FSTYPE: &str = "ext4";
/// Mode of the directories the plan creates (bind sources, overlay dirs).
pub const DIR_MODE: u32 = 0o755;
/// mke2fs refuses longer volume labels.
const EXT4_LABEL_MAX: usize = 16;

/// What is wrong with the volumes file. Every variant names the file and,
/// where the text has one, the line and key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VolumesError {
    /// The TOML does not parse or does not fit the format (unknown key,
    /// wrong type, missing key); `message` is the toml crate's.
    #[error("{}:{}: key `{key}`: {message}", path.display(), line_text(*line))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line, when the parser gave a place.
        line: Option<usize>,
        /// The key on that line (`volume` when none can be read there).
        key: String,
        /// What the parser said.
        message: String,
    },
    /// A value parsed but is not valid for its key.
    #[error("{}:{line}: key `{key}` of volume {index}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// 0-based index of the `[[volume]]` entry.
        index: usize,
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// The volumes cannot be ordered (a bind whose source is under a
    /// volume mounted below the bind's own target, say).
    #[error("{}: volumes cannot be ordered: {} depend on each other", path.display(), targets.join(", "))]
    Cycle {
        /// The file.
        path: PathBuf,
        /// The targets in the cycle (and those waiting on it).
        targets: Vec<String>,
    },
}

fn line_text(line: Option<usize>) -> String {
    line.map_or_else(|| "?".to_owned(), |l| l.to_string())
}

/// The kind of a volume, as `kind =` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A tmpfs.
    Tmpfs,
    /// A writable, ephemeral overlay over the root's directory.
    Overlay,
    /// An ext4 partition by label, formatted when blank.
    Persistent,
    /// A bind mount from a persistent volume, shared.
    Bind,
}

/// One `[[volume]]` entry as written; every key but `kind` and `target`
/// is optional here and checked against the kind in [`parse`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolume {
    kind: Spanned<Kind>,
    target: Spanned<String>,
    source: Option<Spanned<String>>,
    partlabel: Option<Spanned<String>>,
    label: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    size: Option<Spanned<String>>,
    options: Option<Spanned<Vec<String>>>,
    context: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    volume: Vec<RawVolume>,
}

/// How a persistent volume's partition is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceLabel {
    /// `partlabel =`: the GPT partition name (present while still blank).
    PartLabel(String),
    /// `label =`: the filesystem label (only once formatted).
    Label(String),
}

impl DeviceLabel {
    /// The label itself; a blank partition is formatted with it.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::PartLabel(l) | Self::Label(l) => l,
        }
    }

    /// The spec to wait for.
    #[must_use]
    pub fn spec(&self) -> DeviceSpec {
        DeviceSpec::Named(match self {
            Self::PartLabel(label) => RootDevice::PartLabel {
                label: label.clone(),
            },
            Self::Label(label) => RootDevice::Label {
                label: label.clone(),
            },
        })
    }
}

/// One volume, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volume {
    /// A tmpfs.
    Tmpfs {
        /// Where, on the new root.
        target: PathBuf,
        /// `mode=`, octal.
        mode: Option<u32>,
        /// `size=` as tmpfs takes it (`64m`, `10%`).
        size: Option<String>,
        /// mount(2) flags from `options`.
        flags: MsFlags,
        /// SELinux label of the volume's top folder ([`labels`]).
        context: Option<String>,
    },
    /// An overlay whose lower layer is the root's own `target`.
    Overlay {
        /// Where, on the new root.
        target: PathBuf,
        /// SELinux context, carried only.
        context: Option<String>,
    },
    /// An ext4 partition.
    Persistent {
        /// Where, on the new root.
        target: PathBuf,
        /// How to find it.
        device: DeviceLabel,
        /// mount(2) flags from `options`.
        flags: MsFlags,
        /// SELinux label of the volume's top folder ([`labels`]).
        context: Option<String>,
    },
    /// A bind from a directory on a persistent volume.
    Bind {
        /// The directory (created if missing), on the new root.
        source: PathBuf,
        /// Where, on the new root.
        target: PathBuf,
        /// SELinux context, carried only.
        context: Option<String>,
    },
}

impl Volume {
    /// Where it is mounted, relative to the new root (absolute).
    #[must_use]
    pub fn target(&self) -> &Path {
        match self {
            Self::Tmpfs { target, .. }
            | Self::Overlay { target, .. }
            | Self::Persistent { target, .. }
            | Self::Bind { target, .. } => target,
        }
    }

    /// The SELinux context it declares.
    #[must_use]
    pub fn context(&self) -> Option<&str> {
        match self {
            Self::Tmpfs { context, .. }
            | Self::Overlay { context, .. }
            | Self::Persistent { context, .. }
            | Self::Bind { context, .. } => context.as_deref(),
        }
    }
}

/// The SELinux labels the volumes declare: `(target, context)`, in mount
/// order. They are not `context=` mount options: stage 1 mounts the
/// volumes before stage 2 loads the policy, and the kernel refuses
/// SELinux mount options until a policy is loaded. Stage 2 sets each as
/// the label of the volume's top folder right after the load, before any
/// unit runs; what is created in it later inherits the folder's type.
#[must_use]
pub fn labels(volumes: &[Volume]) -> Vec<(PathBuf, String)> {
    volumes
        .iter()
        .filter_map(|v| v.context().map(|c| (v.target().to_owned(), c.to_owned())))
        .collect()
}

/// The runtime tmpfs every stage has; a volume entry for it only labels
/// it.
pub const RUN: &str = "/run";

/// The mount flags `options` may name.
const FLAG_NAMES: &[(&str, MsFlags)] = &[
    ("ro", MsFlags::MS_RDONLY),
    ("nosuid", MsFlags::MS_NOSUID),
    ("nodev", MsFlags::MS_NODEV),
    ("noexec", MsFlags::MS_NOEXEC),
    ("noatime", MsFlags::MS_NOATIME),
    ("nodiratime", MsFlags::MS_NODIRATIME),
    ("relatime", MsFlags::MS_RELATIME),
    ("strictatime", MsFlags::MS_STRICTATIME),
    ("sync", MsFlags::MS_SYNCHRONOUS),
    ("dirsync", MsFlags::MS_DIRSYNC),
];

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The key written on the line holding `offset` (`key = …`), if any.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    index: usize,
}

impl Checker<'_> {
    fn invalid(&self, span: Range<usize>, key: &'static str, reason: String) -> VolumesError {
        VolumesError::Invalid {
            path: self.path.to_owned(),
            line: line_of(self.text, span.start),
            index: self.index,
            key,
            reason,
        }
    }

    /// `key` must not be set for this kind.
    fn forbid<T>(
        &self,
        value: Option<&Spanned<T>>,
        key: &'static str,
        kind: &str,
    ) -> Result<(), VolumesError> {
        match value {
            Some(v) => Err(self.invalid(v.span(), key, format!("not a key of a {kind} volume"))),
            None => Ok(()),
        }
    }

    /// An absolute, normal path other than `/`, with nothing mount data
    /// or overlay options would split on.
    fn path(&self, value: &Spanned<String>, key: &'static str) -> Result<PathBuf, VolumesError> {
        let text = value.get_ref();
        let path = Path::new(text);
        let bad = |why: &str| Err(self.invalid(value.span(), key, format!("{text:?} {why}")));
        if !path.is_absolute() {
            return bad("is not an absolute path");
        }
        if path.components().any(|c| {
            !matches!(c, Component::RootDir | Component::Normal(_)) || c.as_os_str() == "."
        }) {
            return bad("has `.` or `..` components");
        }
        if path.parent().is_none() {
            return bad("is the root itself");
        }
        if text
            .chars()
            .any(|c| matches!(c, ',' | ':' | '"' | '\\') || c.is_control())
        {
            return bad("holds `,`, `:`, `\"`, `\\` or a control character");
        }
        // Normalised: no trailing or doubled slashes.
        Ok(path.components().collect())
    }

    fn flags(&self, value: Option<&Spanned<Vec<String>>>) -> Result<MsFlags, VolumesError> {
        let mut flags = MsFlags::empty();
        for name in value.map(Spanned::get_ref).into_iter().flatten() {
            match FLAG_NAMES.iter().find(|(n, _)| n == name) {
                Some((_, flag)) => flags |= *flag,
                None => {
                    let known: Vec<_> = FLAG_NAMES.iter().map(|(n, _)| *n).collect();
                    let span = value.map_or(0..0, Spanned::span);
                    return Err(self.invalid(
                        span,
                        "options",
                        format!("unknown option {name:?} (known: {})", known.join(", ")),
                    ));
                }
            }
        }
        Ok(flags)
    }

    fn context(&self, value: Option<&Spanned<String>>) -> Result<Option<String>, VolumesError> {
        let Some(value) = value else { return Ok(None) };
        let text = value.get_ref();
        if text.is_empty() || text.chars().any(|c| c == '"' || c.is_control()) {
            return Err(self.invalid(
                value.span(),
                "context",
                format!("{text:?} is empty or holds `\"` or a control character"),
            ));
        }
        Ok(Some(text.clone()))
    }

    fn mode(&self, value: Option<&Spanned<String>>) -> Result<Option<u32>, VolumesError> {
        let Some(value) = value else { return Ok(None) };
        match u32::from_str_radix(value.get_ref(), 8) {
            Ok(mode) if mode <= 0o7777 => Ok(Some(mode)),
            _ => Err(self.invalid(
                value.span(),
                "mode",
                format!("{:?} is not an octal mode up to 7777", value.get_ref()),
            )),
        }
    }

    fn size(&self, value: Option<&Spanned<String>>) -> Result<Option<String>, VolumesError> {
        let Some(value) = value else { return Ok(None) };
        let text = value.get_ref();
        let digits = text.trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G', '%']);
        let suffix_ok = text.len() - digits.len() <= 1;
        if digits.is_empty() || !suffix_ok || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.invalid(
                value.span(),
                "size",
                format!("{text:?} is not a size such as 64m, 1g or 10%"),
            ));
        }
        Ok(Some(text.clone()))
    }

    fn device(&self, raw: &RawVolume) -> Result<DeviceLabel, VolumesError> {
        let (label, key, device) = match (&raw.partlabel, &raw.label) {
            (Some(l), None) => (l, "partlabel", DeviceLabel::PartLabel(l.get_ref().clone())),
            (None, Some(l)) => (l, "label", DeviceLabel::Label(l.get_ref().clone())),
            (Some(_), Some(l)) => {
                return Err(self.invalid(
                    l.span(),
                    "label",
                    "give partlabel or label, not both".into(),
                ));
            }
            (None, None) => {
                return Err(self.invalid(
                    raw.kind.span(),
                    "partlabel",
                    "a persistent volume needs partlabel or label".into(),
                ));
            }
        };
        let name = label.get_ref();
        if name.is_empty()
            || name.len() > EXT4_LABEL_MAX
            || name.chars().any(|c| c.is_control() || c == '/')
        {
            return Err(self.invalid(
                label.span(),
                key,
                format!("{name:?} is not a label of 1 to {EXT4_LABEL_MAX} bytes without `/`"),
            ));
        }
        Ok(device)
    }

    fn volume(&self, raw: &RawVolume) -> Result<Volume, VolumesError> {
        let target = self.path(&raw.target, "target")?;
        let kind = *raw.kind.get_ref();
        let name = match kind {
            Kind::Tmpfs => "tmpfs",
            Kind::Overlay => "overlay",
            Kind::Persistent => "persistent",
            Kind::Bind => "bind",
        };
        if kind != Kind::Bind {
            self.forbid(raw.source.as_ref(), "source", name)?;
        }
        if kind != Kind::Persistent {
            self.forbid(raw.partlabel.as_ref(), "partlabel", name)?;
            self.forbid(raw.label.as_ref(), "label", name)?;
        }
        if kind != Kind::Tmpfs {
            self.forbid(raw.mode.as_ref(), "mode", name)?;
            self.forbid(raw.size.as_ref(), "size", name)?;
        }
        if matches!(kind, Kind::Overlay | Kind::Bind) {
            self.forbid(raw.options.as_ref(), "options", name)?;
        }
        let context = self.context(raw.context.as_ref())?;
        Ok(match kind {
            Kind::Tmpfs => Volume::Tmpfs {
                target,
                mode: self.mode(raw.mode.as_ref())?,
                size: self.size(raw.size.as_ref())?,
                flags: self.flags(raw.options.as_ref())?,
                context,
            },
            Kind::Overlay => Volume::Overlay { target, context },
            Kind::Persistent => Volume::Persistent {
                target,
                device: self.device(raw)?,
                flags: self.flags(raw.options.as_ref())?,
                context,
            },
            Kind::Bind => {
                let Some(source) = &raw.source else {
                    return Err(self.invalid(
                        raw.kind.span(),
                        "source",
                        "a bind volume needs a source".into(),
                    ));
                };
                Volume::Bind {
                    source: self.path(source, "source")?,
                    target,
                    context,
                }
            }
        })
    }
}

/// Parses the volumes file's `text`; `path` only names it in errors.
///
/// # Errors
/// TOML errors, unknown keys, wrong types, keys that do not belong to the
/// kind, bad values and two volumes on one target, each with its line.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Volume>, VolumesError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start);
        VolumesError::Syntax {
            path: path.to_owned(),
            line: offset.map(|o| line_of(text, o)),
            key: offset
                .and_then(|o| key_at(text, o))
                .unwrap_or_else(|| "volume".to_owned()),
            message: e.message().trim_end().to_owned(),
        }
    })?;
    let mut seen = BTreeSet::new();
    let mut volumes = Vec::with_capacity(raw.volume.len());
    for (index, entry) in raw.volume.iter().enumerate() {
        let checker = Checker { path, text, index };
        let volume = checker.volume(entry)?;
        if !seen.insert(volume.target().to_owned()) {
            return Err(checker.invalid(
                entry.target.span(),
                "target",
                format!(
                    "{} is the target of an earlier volume",
                    volume.target().display()
                ),
            ));
        }
        // /run is already a tmpfs (stage 1 moves its own onto the new
        // root): an entry for it only labels it, so it takes nothing else.
        if let Volume::Tmpfs {
            target,
            mode,
            size,
            flags,
            ..
        } = &volume
            && target == Path::new(RUN)
            && (mode.is_some() || size.is_some() || !flags.is_empty())
        {
            return Err(checker.invalid(
                entry.target.span(),
                "target",
                "/run is liftoff's own tmpfs: its entry may only set a context".into(),
            ));
        }
        if let Volume::Bind { source, .. } = &volume {
            let on_persistent = raw.volume.iter().any(|v| {
                *v.kind.get_ref() == Kind::Persistent
                    && source.starts_with(Path::new(v.target.get_ref()))
            });
            if !on_persistent {
                let span = entry.source.as_ref().map_or(0..0, Spanned::span);
                return Err(checker.invalid(
                    span,
                    "source",
                    format!(
                        "{} is not under a persistent volume's target",
                        source.display()
                    ),
                ));
            }
        }
        volumes.push(volume);
    }
    Ok(volumes)
}

/// One step of the plan; paths are absolute, already under the new root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `mkdir -p` (on a writable filesystem: `/run`, a persistent volume).
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// mount(2) as it stands (tmpfs, overlay, bind).
    Mount(MountSpec),
    /// Find the partition, format it when blank, mount it.
    Persistent {
        /// What to wait for.
        device: DeviceLabel,
        /// The mount; `source` is filled in once the device is found.
        mount: MountSpec,
    },
    /// `mount --make-shared`.
    MakeShared(PathBuf),
}

/// `root` + an absolute `path`.
#[must_use]
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// A target as a single directory name, as systemd-escape --path does
/// (`/usr/local` → `usr-local`, `-` → `\x2d`).
#[must_use]
pub fn escape(target: &Path) -> String {
    target
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().replace('-', "\\x2d")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn join_data(parts: Vec<String>) -> Option<String> {
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Whether `a` must be mounted before `b`: `b`'s target is below `a`'s,
/// or `b` binds from below `a`'s target.
fn before(a: &Volume, b: &Volume) -> bool {
    let below = |p: &Path| p != a.target() && p.starts_with(a.target());
    below(b.target()) || matches!(b, Volume::Bind { source, .. } if source.starts_with(a.target()))
}

/// The volumes in mount order: parents before children, persistent
/// volumes before the binds from them; otherwise as written.
///
/// # Errors
/// The targets of the volumes that cannot be ordered.
pub fn order(volumes: &[Volume]) -> Result<Vec<&Volume>, Vec<String>> {
    let mut left: Vec<&Volume> = volumes.iter().collect();
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left.iter().position(|v| {
            !left
                .iter()
                .any(|other| !std::ptr::eq(*other, *v) && before(other, v))
        });
        match ready {
            Some(i) => out.push(left.remove(i)),
            None => {
                return Err(left
                    .iter()
                    .map(|v| v.target().display().to_string())
                    .collect());
            }
        }
    }
    Ok(out)
}

/// The steps for `volumes` on the new root mounted at `root`, with
/// overlay directories under `overlay_dir` ([`OVERLAY_DIR`]).
///
/// # Errors
/// [`VolumesError::Cycle`] when the volumes cannot be ordered; `path`
/// names the file.
pub fn plan(
    path: &Path,
    volumes: &[Volume],
    root: &Path,
    overlay_dir: &Path,
) -> Result<Vec<Step>, VolumesError> {
    let ordered = order(volumes).map_err(|targets| VolumesError::Cycle {
        path: path.to_owned(),
        targets,
    })?;
    let mut steps = Vec::new();
    for volume in ordered {
        let target = under(root, volume.target());
        match volume {
            // Already mounted: only its label ([`labels`]) applies.
            Volume::Tmpfs { target, .. } if target == Path::new(RUN) => {}
            Volume::Tmpfs {
                mode, size, flags, ..
            } => {
                let data = [
                    mode.map(|m| format!("mode={m:04o}")),
                    size.as_ref().map(|s| format!("size={s}")),
                ];
                steps.push(Step::Mount(MountSpec {
                    source: "tmpfs".into(),
                    target,
                    fstype: "tmpfs".into(),
                    flags: *flags,
                    data: join_data(data.into_iter().flatten().collect()),
                    dir_mode: DIR_MODE,
                }));
            }
            Volume::Overlay { .. } => {
                let base = overlay_dir.join(escape(volume.target()));
                let (upper, work) = (base.join("upper"), base.join("work"));
                for dir in [&upper, &work] {
                    steps.push(Step::CreateDir {
                        path: dir.clone(),
                        mode: DIR_MODE,
                    });
                }
                steps.push(Step::Mount(MountSpec {
                    source: "overlay".into(),
                    fstype: "overlay".into(),
                    flags: MsFlags::empty(),
                    data: Some(format!(
                        "lowerdir={},upperdir={},workdir={}",
                        target.display(),
                        upper.display(),
                        work.display()
                    )),
                    target,
                    dir_mode: DIR_MODE,
                }));
            }
            Volume::Persistent { device, flags, .. } => steps.push(Step::Persistent {
                device: device.clone(),
                mount: MountSpec {
                    source: String::new(),
                    target,
                    fstype: PERSISTENT_FSTYPE.into(),
                    flags: *flags,
                    data: None,
                    dir_mode: DIR_MODE,
                },
            }),
            Volume::Bind { source, .. } => {
                let source = under(root, source);
                steps.push(Step::CreateDir {
                    path: source.clone(),
                    mode: DIR_MODE,
                });
                steps.push(Step::Mount(MountSpec {
                    source: source.display().to_string(),
                    target: target.clone(),
                    fstype: String::new(),
                    flags: MsFlags::MS_BIND,
                    data: None,
                    dir_mode: DIR_MODE,
                }));
                steps.push(Step::MakeShared(target));
            }
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests;
