//! Which file holds which module: [`ModuleIndex`].
//!
//! Two ways to build one, and why:
//!
//! * **Precomputed** ([`ModuleIndex::parse`]): the initramfs builder runs
//!   this crate's parser over the modules it copies and writes
//!   `lib/modules/<version>/modules.liftoff` ([`ModuleIndex::render`]).
//!   Stage 1 then reads one small text file and parses no ELF at all. It is
//!   depmod's `modules.dep` + `modules.softdep` + `modules.alias` in one
//!   file, in a format liftoff owns, because Debian's kernel package ships
//!   no `modules.dep` (its postinst runs depmod) and an image builder should
//!   not need depmod for a root it does not run.
//! * **Walked** ([`ModuleIndex::scan`]): a walk of the tree that takes each
//!   module's name from its file name (`dm-verity.ko.xz` → `dm_verity`) and
//!   opens nothing. `.modinfo` is read later, only for the modules a plan
//!   reaches ([`ModuleIndex::read_info`]); aliases need every module's
//!   `.modinfo` and are read only when a name resolves no other way
//!   ([`ModuleIndex::read_all_info`]). This is the fallback for trees with
//!   no index file.
//!
//! The index file, format 1: a header line, then one line per module with
//! six fields separated by spaces; lists are comma-separated, `-` marks an
//! empty one; names and aliases are normalised (`-` → `_`); the path is
//! relative to the tree; `#` starts a comment line.
//!
//! ```text
//! liftoff-modules 1
//! # name path depends softdep-pre softdep-post aliases
//! dm_verity kernel/drivers/md/dm-verity.ko reed_solomon,dm_mod,dm_bufio - - -
//! ext4 kernel/fs/ext4/ext4.ko jbd2,mbcache,crc16 crypto_crc32c - fs_ext4,ext3,fs_ext3
//! ```
//!
//! Only exact aliases are kept (no `*`, `?`, `[`, `,` or spaces): device
//! modaliases are matched by udev-style globbing, which liftoff leaves out.
//!
//! When two files give the same module name, one under `updates/` wins (as
//! depmod's default `search updates built-in`), otherwise the smaller path
//! (byte order), so the choice never depends on directory order.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::compress::{self, CompressError, Compression};
use super::modinfo::{self, ModinfoError, SoftDeps, is_exact_alias};
use super::{ModName, normalize};

/// The first line of a format-1 index file.
pub const INDEX_HEADER: &str = "liftoff-modules 1";
/// The subdirectory whose modules override others of the same name.
const UPDATES_DIR: &str = "updates";
/// The empty-list marker in the index file.
const EMPTY: &str = "-";

/// Why an index could not be built, read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A directory of the tree could not be listed.
    #[error("cannot list {}", path.display())]
    Walk {
        /// The directory.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The index file could not be read.
    #[error("cannot read module index {}", path.display())]
    ReadIndex {
        /// The index file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A line of the index file is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    Syntax {
        /// The index file (or the tree, for text parsed from memory).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A module file could not be read.
    #[error("cannot read module {}", path.display())]
    ReadModule {
        /// The module file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A compressed module could not be decompressed.
    #[error("cannot read the .modinfo of a compressed module")]
    Decompress {
        #[source]
        source: CompressError,
    },
    /// A module file's `.modinfo` is unreadable.
    #[error("cannot read the .modinfo of {}", path.display())]
    Modinfo {
        /// The module file.
        path: PathBuf,
        #[source]
        source: ModinfoError,
    },
    /// A module cannot be written to the index file.
    #[error("module {name} cannot be written to the index: {reason}")]
    Unrepresentable {
        /// The module.
        name: ModName,
        /// Why not.
        reason: &'static str,
    },
}

/// A module's dependencies as loading needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleDeps {
    /// `depends=`, normalised.
    pub depends: Vec<ModName>,
    /// `softdep=`, normalised.
    pub softdeps: SoftDeps,
    /// Exact aliases, normalised.
    pub aliases: Vec<String>,
}

impl From<modinfo::ModInfo> for ModuleDeps {
    fn from(info: modinfo::ModInfo) -> Self {
        Self {
            depends: info.depends,
            softdeps: info.softdeps,
            aliases: info
                .aliases
                .into_iter()
                .filter(|a| is_exact_alias(a))
                .collect(),
        }
    }
}

/// One module file of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Relative to the tree.
    pub path: PathBuf,
    /// From the file name.
    pub compression: Compression,
    /// `None` until read (walked index).
    pub deps: Option<ModuleDeps>,
}

/// Module name → file, for one tree (`lib/modules/<version>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleIndex {
    root: PathBuf,
    entries: BTreeMap<ModName, IndexEntry>,
    aliases: BTreeMap<String, BTreeSet<ModName>>,
}

impl ModuleIndex {
    /// An empty index of `root`; add modules with [`ModuleIndex::insert`].
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            entries: BTreeMap::new(),
            aliases: BTreeMap::new(),
        }
    }

    /// The tree this index describes.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every module, by name.
    #[must_use]
    pub fn entries(&self) -> &BTreeMap<ModName, IndexEntry> {
        &self.entries
    }

    /// A module's entry.
    #[must_use]
    pub fn get(&self, name: &ModName) -> Option<&IndexEntry> {
        self.entries.get(name)
    }

    /// The modules that answer to an exact alias, among those whose
    /// `.modinfo` has been read.
    #[must_use]
    pub fn alias(&self, alias: &str) -> Option<&BTreeSet<ModName>> {
        self.aliases.get(&normalize(alias))
    }

    /// Whether every module's `.modinfo` is known, so that
    /// [`ModuleIndex::alias`] is authoritative.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.entries.values().all(|entry| entry.deps.is_some())
    }

    /// Add (or replace) a module, keeping the alias table in step.
    pub fn insert(&mut self, name: ModName, entry: IndexEntry) {
        if let Some(old) = self.entries.get(&name).and_then(|e| e.deps.as_ref()) {
            for alias in &old.aliases {
                if let Some(providers) = self.aliases.get_mut(alias) {
                    providers.remove(&name);
                    if providers.is_empty() {
                        self.aliases.remove(alias);
                    }
                }
            }
        }
        if let Some(deps) = &entry.deps {
            for alias in &deps.aliases {
                self.aliases
                    .entry(alias.clone())
                    .or_default()
                    .insert(name.clone());
            }
        }
        self.entries.insert(name, entry);
    }

    /// Walk `root` for module files; reads no file contents. Symbolic
    /// links (`build`, `source`) are not followed.
    pub fn scan(root: &Path) -> Result<Self, IndexError> {
        let mut index = Self::new(root);
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            let dir = root.join(&relative);
            let walk_error = |source| IndexError::Walk {
                path: dir.clone(),
                source,
            };
            for dirent in fs::read_dir(&dir).map_err(walk_error)? {
                let dirent = dirent.map_err(walk_error)?;
                let file_type = dirent.file_type().map_err(walk_error)?;
                let path = relative.join(dirent.file_name());
                if file_type.is_dir() {
                    pending.push(path);
                } else if file_type.is_file()
                    && let Some(file_name) = dirent.file_name().to_str()
                    && let Some((stem, compression)) = Compression::split_file_name(file_name)
                {
                    index.offer(ModName::new(stem), path, compression);
                }
            }
        }
        Ok(index)
    }

    /// Keep `path` for `name` unless a file already there wins (see the
    /// module docs).
    fn offer(&mut self, name: ModName, path: PathBuf, compression: Compression) {
        let rank = |p: &Path| (!p.starts_with(UPDATES_DIR), p.to_owned());
        if let Some(existing) = self.entries.get(&name)
            && rank(&existing.path) <= rank(&path)
        {
            return;
        }
        self.entries.insert(
            name,
            IndexEntry {
                path,
                compression,
                deps: None,
            },
        );
    }

    /// Read the `.modinfo` of `names` (those not read yet; unknown names
    /// are ignored).
    pub fn read_info<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a ModName>,
    ) -> Result<(), IndexError> {
        for name in names {
            let Some(entry) = self.entries.get(name) else {
                continue;
            };
            if entry.deps.is_some() {
                continue;
            }
            let deps = read_deps(&self.root.join(&entry.path), entry.compression)?;
            let mut entry = entry.clone();
            entry.deps = Some(deps);
            self.insert(name.clone(), entry);
        }
        Ok(())
    }

    /// Read every module's `.modinfo`: what the initramfs builder does
    /// before [`ModuleIndex::render`], and what stage 1 does when a name
    /// may be an alias and no index file exists.
    pub fn read_all_info(&mut self) -> Result<(), IndexError> {
        let names: Vec<ModName> = self.entries.keys().cloned().collect();
        self.read_info(&names)
    }

    /// Read every module's `.modinfo` that can be read, for the alias
    /// table; the files that cannot are left unread and their errors
    /// returned. Stage 1 uses this so that one corrupt module it does not
    /// need cannot stop a boot.
    pub fn read_all_info_lenient(&mut self) -> Vec<IndexError> {
        let names: Vec<ModName> = self.entries.keys().cloned().collect();
        names
            .iter()
            .filter_map(|name| self.read_info([name]).err())
            .collect()
    }

    /// Read `<root>/modules.liftoff` if it exists, else walk `root`.
    pub fn load(root: &Path) -> Result<Self, IndexError> {
        let file = root.join(super::INDEX_FILE);
        match fs::read_to_string(&file) {
            Ok(text) => Self::parse(root, &file, &text),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Self::scan(root),
            Err(source) => Err(IndexError::ReadIndex { path: file, source }),
        }
    }

    /// Parse index-file `text` (read from `file`, named in errors) for the
    /// tree at `root`.
    pub fn parse(root: &Path, file: &Path, text: &str) -> Result<Self, IndexError> {
        let syntax = |line, reason| IndexError::Syntax {
            path: file.to_owned(),
            line,
            reason,
        };
        let mut index = Self::new(root);
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
        match lines.next() {
            Some((_, INDEX_HEADER)) => {}
            Some((line, _)) => return Err(syntax(line, "expected `liftoff-modules 1`")),
            None => return Err(syntax(1, "empty index, expected `liftoff-modules 1`")),
        }
        for (line, text) in lines {
            let fields: Vec<&str> = text.split_whitespace().collect();
            let [name, path, depends, pre, post, aliases] = fields[..] else {
                return Err(syntax(line, "expected six fields"));
            };
            let path = PathBuf::from(path);
            if !is_plain_relative(&path) {
                return Err(syntax(line, "module path must be relative, without `..`"));
            }
            let file_name = path.file_name().and_then(|name| name.to_str());
            let Some((_, compression)) = file_name.and_then(Compression::split_file_name) else {
                return Err(syntax(
                    line,
                    "module path must end in .ko, .ko.xz or .ko.zst",
                ));
            };
            let name = ModName::new(name);
            if index.entries.contains_key(&name) {
                return Err(syntax(line, "module listed twice"));
            }
            let deps = ModuleDeps {
                depends: list(depends).map(ModName::new).collect(),
                softdeps: SoftDeps {
                    pre: list(pre).map(normalize).collect(),
                    post: list(post).map(normalize).collect(),
                },
                aliases: list(aliases).map(normalize).collect(),
            };
            index.insert(
                name,
                IndexEntry {
                    path,
                    compression,
                    deps: Some(deps),
                },
            );
        }
        Ok(index)
    }

    /// The index file for this index; every module's `.modinfo` must have
    /// been read ([`ModuleIndex::read_all_info`]).
    pub fn render(&self) -> Result<String, IndexError> {
        let mut out =
            format!("{INDEX_HEADER}\n# name path depends softdep-pre softdep-post aliases\n");
        for (name, entry) in &self.entries {
            let unrepresentable = |reason| IndexError::Unrepresentable {
                name: name.clone(),
                reason,
            };
            let deps = entry
                .deps
                .as_ref()
                .ok_or_else(|| unrepresentable(".modinfo not read"))?;
            let path = entry
                .path
                .to_str()
                .filter(|p| is_word(p) && is_plain_relative(&entry.path))
                .ok_or_else(|| unrepresentable("path is not a relative path without spaces"))?;
            if !is_word(name.as_str()) {
                return Err(unrepresentable("name contains a space or comma"));
            }
            let fields = [
                join(deps.depends.iter().map(ModName::as_str)),
                join(deps.softdeps.pre.iter().map(String::as_str)),
                join(deps.softdeps.post.iter().map(String::as_str)),
                join(deps.aliases.iter().map(String::as_str)),
            ];
            let [Some(depends), Some(pre), Some(post), Some(aliases)] = fields else {
                return Err(unrepresentable("a dependency contains a space or comma"));
            };
            out.push_str(&format!("{name} {path} {depends} {pre} {post} {aliases}\n"));
        }
        Ok(out)
    }
}

/// The dependencies in one module file.
fn read_deps(path: &Path, compression: Compression) -> Result<ModuleDeps, IndexError> {
    let bytes = fs::read(path).map_err(|source| IndexError::ReadModule {
        path: path.to_owned(),
        source,
    })?;
    let image = compress::decompress(path, compression, bytes)
        .map_err(|source| IndexError::Decompress { source })?;
    let info = modinfo::modinfo_from_elf(&image).map_err(|source| IndexError::Modinfo {
        path: path.to_owned(),
        source,
    })?;
    Ok(info.into())
}

fn list(field: &str) -> impl Iterator<Item = &str> {
    field
        .split(',')
        .filter(move |item| !item.is_empty() && *item != EMPTY)
}

/// Comma-joined, `-` when empty; `None` if an item cannot be written.
fn join<'a>(items: impl Iterator<Item = &'a str>) -> Option<String> {
    let items: Vec<&str> = items.collect();
    if items.iter().any(|item| !is_word(item) || *item == EMPTY) {
        return None;
    }
    Some(if items.is_empty() {
        EMPTY.to_owned()
    } else {
        items.join(",")
    })
}

fn is_word(text: &str) -> bool {
    !text.is_empty() && !text.contains(',') && !text.chars().any(char::is_whitespace)
}

fn is_plain_relative(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some()
}

#[cfg(test)]
mod tests {
    use super::super::modinfo::tests::fake_module;
    use super::*;

    fn write(root: &Path, relative: &str, contents: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn deps(depends: &[&str], pre: &[&str], aliases: &[&str]) -> ModuleDeps {
        ModuleDeps {
            depends: depends.iter().copied().map(ModName::new).collect(),
            softdeps: SoftDeps {
                pre: pre.iter().copied().map(normalize).collect(),
                post: vec![],
            },
            aliases: aliases.iter().copied().map(normalize).collect(),
        }
    }

    #[test]
    fn scan_takes_names_from_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "kernel/drivers/md/dm-verity.ko", b"not read");
        write(root, "kernel/fs/ext4/ext4.ko.xz", b"not read");
        write(root, "kernel/fs/erofs/erofs.ko.zst", b"not read");
        write(root, "kernel/a/dup.ko", b"");
        write(root, "kernel/b/dup.ko", b"");
        write(root, "kernel/fs/over-lay.ko", b"");
        write(root, "updates/over_lay.ko", b"");
        write(root, "modules.order", b"kernel/drivers/md/dm-verity.ko\n");
        std::os::unix::fs::symlink("/usr/src", root.join("build")).unwrap();
        let index = ModuleIndex::scan(root).unwrap();
        let got: Vec<(&str, &Path, Compression)> = index
            .entries()
            .iter()
            .map(|(name, entry)| (name.as_str(), entry.path.as_path(), entry.compression))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "dm_verity",
                    Path::new("kernel/drivers/md/dm-verity.ko"),
                    Compression::None
                ),
                ("dup", Path::new("kernel/a/dup.ko"), Compression::None),
                (
                    "erofs",
                    Path::new("kernel/fs/erofs/erofs.ko.zst"),
                    Compression::Zstd
                ),
                (
                    "ext4",
                    Path::new("kernel/fs/ext4/ext4.ko.xz"),
                    Compression::Xz
                ),
                (
                    "over_lay",
                    Path::new("updates/over_lay.ko"),
                    Compression::None
                ),
            ]
        );
        assert!(!index.is_complete());
    }

    #[test]
    fn read_info_fills_deps_and_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ext4 = fake_module(&[
            "depends=jbd2,mbcache,crc16",
            "softdep=pre: crypto-crc32c",
            "alias=fs-ext4",
            "alias=pci:v*d*",
        ]);
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut ext4.as_slice(), &mut xz).unwrap();
        write(root, "kernel/fs/ext4/ext4.ko.xz", &xz);
        write(root, "kernel/fs/jbd2/jbd2.ko", &fake_module(&["depends="]));
        let mut index = ModuleIndex::scan(root).unwrap();
        index.read_info([&ModName::new("ext4")]).unwrap();
        assert_eq!(
            index.get(&ModName::new("ext4")).unwrap().deps,
            Some(deps(
                &["jbd2", "mbcache", "crc16"],
                &["crypto-crc32c"],
                &["fs-ext4"]
            ))
        );
        assert_eq!(index.get(&ModName::new("jbd2")).unwrap().deps, None);
        assert_eq!(
            index.alias("fs-ext4"),
            Some(&BTreeSet::from([ModName::new("ext4")]))
        );
        assert!(!index.is_complete());
        index.read_all_info().unwrap();
        assert!(index.is_complete());
    }

    #[test]
    fn read_info_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "kernel/bad.ko", b"not an elf file");
        let mut index = ModuleIndex::scan(dir.path()).unwrap();
        let err = index.read_all_info().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read the .modinfo of {}/kernel/bad.ko",
                dir.path().display()
            )
        );
    }

    #[test]
    fn render_then_parse_round_trips() {
        let root = Path::new("/lib/modules/6.1.0-56-amd64");
        let mut index = ModuleIndex::new(root);
        for (name, path, d) in [
            (
                "ext4",
                "kernel/fs/ext4/ext4.ko.zst",
                deps(
                    &["jbd2", "mbcache", "crc16"],
                    &["crypto_crc32c"],
                    &["fs_ext4", "ext3"],
                ),
            ),
            ("jbd2", "kernel/fs/jbd2/jbd2.ko", deps(&[], &[], &[])),
        ] {
            let compression = Compression::split_file_name(path.rsplit('/').next().unwrap())
                .unwrap()
                .1;
            index.insert(
                ModName::new(name),
                IndexEntry {
                    path: path.into(),
                    compression,
                    deps: Some(d),
                },
            );
        }
        let text = index.render().unwrap();
        assert_eq!(
            text,
            "liftoff-modules 1\n\
             # name path depends softdep-pre softdep-post aliases\n\
             ext4 kernel/fs/ext4/ext4.ko.zst jbd2,mbcache,crc16 crypto_crc32c - fs_ext4,ext3\n\
             jbd2 kernel/fs/jbd2/jbd2.ko - - - -\n"
        );
        let parsed = ModuleIndex::parse(root, &root.join("modules.liftoff"), &text).unwrap();
        assert_eq!(parsed, index);
        assert!(parsed.is_complete());
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("empty", "", 1, "empty index, expected `liftoff-modules 1`"),
            (
                "wrong header",
                "liftoff-modules 2\n",
                1,
                "expected `liftoff-modules 1`",
            ),
            (
                "five fields",
                "liftoff-modules 1\na a.ko - - -\n",
                2,
                "expected six fields",
            ),
            (
                "absolute path",
                "# c\nliftoff-modules 1\na /a.ko - - - -\n",
                3,
                "module path must be relative, without `..`",
            ),
            (
                "dot-dot",
                "liftoff-modules 1\na ../a.ko - - - -\n",
                2,
                "module path must be relative, without `..`",
            ),
            (
                "not a module",
                "liftoff-modules 1\na a.o - - - -\n",
                2,
                "module path must end in .ko, .ko.xz or .ko.zst",
            ),
            (
                "twice",
                "liftoff-modules 1\na-b a.ko - - - -\na_b b.ko - - - -\n",
                3,
                "module listed twice",
            ),
        ];
        for (name, text, line, reason) in cases {
            let err = ModuleIndex::parse(Path::new("/m"), Path::new("/m/i"), text).unwrap_err();
            assert_eq!(err.to_string(), format!("/m/i:{line}: {reason}"), "{name}");
        }
    }

    #[test]
    fn render_refuses_unread_modules() {
        let mut index = ModuleIndex::new(Path::new("/m"));
        index.insert(
            ModName::new("a"),
            IndexEntry {
                path: "a.ko".into(),
                compression: Compression::None,
                deps: None,
            },
        );
        assert_eq!(
            index.render().unwrap_err().to_string(),
            "module a cannot be written to the index: .modinfo not read"
        );
    }

    #[test]
    fn load_prefers_the_index_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "kernel/x.ko", b"");
        assert!(
            ModuleIndex::load(dir.path())
                .unwrap()
                .get(&"x".into())
                .is_some()
        );
        write(
            dir.path(),
            "modules.liftoff",
            b"liftoff-modules 1\ny kernel/y.ko - - - -\n",
        );
        let index = ModuleIndex::load(dir.path()).unwrap();
        assert_eq!(
            index.entries().keys().collect::<Vec<_>>(),
            [&ModName::new("y")]
        );
    }
}
