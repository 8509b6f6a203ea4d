//! What goes into a liftoff initramfs, and writing it: [`build`], then
//! [`Image::write`].
//!
//! 1. liftoff itself as `/init`, refused unless it is a static ELF binary
//!    ([`super::elf`]).
//! 2. The requested modules and their dependency closure, planned by
//!    [`crate::modules::plan`] against the module tree exactly as stage 1
//!    plans at boot, except that nothing counts as loaded already (the
//!    build host's `/proc/modules` says nothing about the target). Built-in
//!    modules are skipped; each planned module is copied to the same path
//!    relative to `/lib/modules/<release>/`.
//! 3. Beside them, the tree's `modules.builtin` and
//!    `modules.builtin.modinfo` (when present) and a `modules.liftoff`
//!    index of the copied modules, so boot parses no ELF.
//! 4. The initramfs config ([`super::config`]) naming the requested modules.
//! 5. Extra host files (`--file HOST:GUEST[:MODE]`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::archive::{ArchiveError, Initramfs};
use super::config::{CONFIG_PATH, ConfigError, InitramfsConfig};
use super::output::{Compression, Written};
use crate::modules::index::{IndexError, ModuleIndex};
use crate::modules::load::{LoadError, prepare_index, read_builtin};
use crate::modules::plan::{self, PlanError, PlanInput, SkippedSoftdep};
use crate::modules::{BUILTIN_FILE, BUILTIN_MODINFO_FILE, INDEX_FILE, MODULES_ROOT, ModName};

/// Mode of copied modules and generated files.
const DATA_MODE: u32 = 0o644;

/// Why an initramfs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The binary meant as `/init` is unusable (not static, unreadable).
    #[error("cannot put liftoff in the initramfs")]
    Init {
        #[source]
        source: ArchiveError,
    },
    /// Modules were asked for without a module tree.
    #[error("modules {} need a module tree (--modules-dir)", names.join(", "))]
    NoModuleTree {
        /// The modules asked for.
        names: Vec<String>,
    },
    /// The module tree's folder name is not a kernel release.
    #[error("cannot tell the kernel release from {}: give its lib/modules/<release> folder", path.display())]
    Release {
        /// The module tree as given.
        path: PathBuf,
    },
    /// The tree's built-in module lists are unreadable.
    #[error("cannot read the built-in module lists")]
    Builtin {
        #[source]
        source: LoadError,
    },
    /// The module tree could not be indexed.
    #[error("cannot index the module tree")]
    Index {
        #[source]
        source: IndexError,
    },
    /// A module is unknown, or a dependency is missing.
    #[error("cannot plan the modules")]
    Plan {
        #[source]
        source: PlanError,
    },
    /// The modules' index cannot be written.
    #[error("cannot write {INDEX_FILE}")]
    RenderIndex {
        #[source]
        source: IndexError,
    },
    /// The initramfs config cannot be written.
    #[error("cannot write {CONFIG_PATH}")]
    Config {
        #[source]
        source: ConfigError,
    },
    /// A `HOST:GUEST[:MODE]` is malformed.
    #[error("invalid --file {spec:?}: {reason}")]
    FileSpec {
        /// The text as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extra file cannot be read.
    #[error("cannot read {}", path.display())]
    FileSource {
        /// The host file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An extra file is not a regular file.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The host path.
        path: PathBuf,
    },
    /// An extra file would replace a file the builder writes itself.
    #[error("--file {guest} would replace a file liftoff initramfs writes itself")]
    FileCollides {
        /// The guest path.
        guest: String,
    },
    /// Writing the archive failed.
    #[error("cannot write the initramfs {}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        #[source]
        source: ArchiveError,
    },
}

/// One extra host file, `HOST:GUEST[:MODE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// The host file.
    pub host: PathBuf,
    /// Its absolute guest path.
    pub guest: String,
    /// Permission bits; `None` keeps the host file's.
    pub mode: Option<u32>,
}

impl ExtraFile {
    /// Parse `HOST:GUEST[:MODE]`: the host path cannot contain `:`, the
    /// guest path must be absolute, the mode is octal (`0755` or `755`).
    pub fn parse(spec: &str) -> Result<Self, ImageError> {
        let invalid = |reason| ImageError::FileSpec {
            spec: spec.to_owned(),
            reason,
        };
        let mut parts = spec.splitn(3, ':');
        let host = parts.next().unwrap_or_default();
        let guest = parts
            .next()
            .ok_or_else(|| invalid("expected HOST:GUEST[:MODE]"))?;
        if host.is_empty() {
            return Err(invalid("empty host path"));
        }
        if !guest.starts_with('/') {
            return Err(invalid("the guest path must be absolute"));
        }
        let mode = match parts.next() {
            None => None,
            Some(mode) => Some(
                u32::from_str_radix(mode, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777 && !mode.is_empty())
                    .ok_or_else(|| {
                        invalid("the mode must be octal permission bits, at most 7777")
                    })?,
            ),
        };
        Ok(Self {
            host: host.into(),
            guest: guest.to_owned(),
            mode,
        })
    }
}

/// What to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    /// The static liftoff binary for `/init`.
    pub liftoff: PathBuf,
    /// A kernel's `lib/modules/<release>`.
    pub modules_dir: Option<PathBuf>,
    /// Module names (or exact aliases) to include with their dependencies.
    pub modules: Vec<String>,
    /// Extra files.
    pub files: Vec<ExtraFile>,
}

/// A built, not yet written, initramfs.
#[derive(Debug, Clone)]
pub struct Image {
    /// The archive's entries.
    pub initramfs: Initramfs,
    /// The kernel release of the modules, when there are any.
    pub release: Option<String>,
    /// The modules copied in, by name.
    pub modules: Vec<ModName>,
    /// Modules the closure reached that are built into the kernel.
    pub builtin: Vec<ModName>,
    /// Soft dependencies found neither in the tree nor built in.
    pub skipped_softdeps: Vec<SkippedSoftdep>,
    /// The config written to [`CONFIG_PATH`].
    pub config: InitramfsConfig,
}

impl Image {
    /// Write the archive to `out`.
    pub fn write(&self, out: &Path, compression: Compression) -> Result<Written, ImageError> {
        self.initramfs
            .write_compressed_to(out, compression)
            .map_err(|source| ImageError::Write {
                path: out.to_owned(),
                source,
            })
    }
}

/// The image `spec` describes; reads the module tree but writes nothing.
pub fn build(spec: &ImageSpec) -> Result<Image, ImageError> {
    let mut initramfs = Initramfs::new()
        .static_init(&spec.liftoff)
        .map_err(|source| ImageError::Init { source })?;
    let mut generated: BTreeSet<String> = BTreeSet::new();
    generated.insert(super::archive::INIT_PATH.to_owned());

    let mut image = Image {
        initramfs: Initramfs::new(),
        release: None,
        modules: Vec::new(),
        builtin: Vec::new(),
        skipped_softdeps: Vec::new(),
        config: InitramfsConfig {
            kernel: None,
            modules: spec.modules.clone(),
        },
    };
    if !spec.modules.is_empty() {
        let Some(tree) = &spec.modules_dir else {
            return Err(ImageError::NoModuleTree {
                names: spec.modules.clone(),
            });
        };
        let release = release(tree)?;
        let files = module_files(tree, &spec.modules, &mut image)?;
        for (relative, file) in files {
            let guest = format!("{MODULES_ROOT}/{release}/{relative}");
            initramfs = match file {
                TreeFile::Host(path) => initramfs.file_from(guest.clone(), DATA_MODE, path),
                TreeFile::Text(text) => initramfs.file(guest.clone(), DATA_MODE, text),
            };
            generated.insert(guest);
        }
        image.config.kernel = Some(release);
    }

    let config = image
        .config
        .render()
        .map_err(|source| ImageError::Config { source })?;
    initramfs = initramfs.file(CONFIG_PATH, DATA_MODE, config);
    generated.insert(CONFIG_PATH.to_owned());

    for extra in &spec.files {
        if generated.contains(&extra.guest) {
            return Err(ImageError::FileCollides {
                guest: extra.guest.clone(),
            });
        }
        let metadata = fs::metadata(&extra.host).map_err(|source| ImageError::FileSource {
            path: extra.host.clone(),
            source,
        })?;
        if !metadata.is_file() {
            return Err(ImageError::NotAFile {
                path: extra.host.clone(),
            });
        }
        let mode = extra.mode.unwrap_or(metadata.permissions().mode() & 0o7777);
        initramfs = initramfs.file_from(extra.guest.clone(), mode, &extra.host);
    }
    image.release = image.config.kernel.clone();
    image.initramfs = initramfs;
    Ok(image)
}

/// The release a `lib/modules/<release>` folder is for.
fn release(tree: &Path) -> Result<String, ImageError> {
    tree.file_name()
        .and_then(|name| name.to_str())
        .filter(|name| !name.is_empty() && !name.chars().any(char::is_whitespace))
        .map(str::to_owned)
        .ok_or_else(|| ImageError::Release {
            path: tree.to_owned(),
        })
}

/// A file of the archive's module tree.
enum TreeFile {
    /// Copied from the host tree.
    Host(PathBuf),
    /// Generated.
    Text(String),
}

/// The module tree's files for `requested`, by path relative to the tree;
/// fills in the plan's outcome in `image`.
fn module_files(
    tree: &Path,
    requested: &[String],
    image: &mut Image,
) -> Result<BTreeMap<String, TreeFile>, ImageError> {
    let builtin = read_builtin(tree).map_err(|source| ImageError::Builtin { source })?;
    // Nothing is loaded on the target before stage 1 runs.
    let loaded = BTreeSet::new();
    let index = prepare_index(tree, requested, &builtin, &loaded)
        .map_err(|source| ImageError::Index { source })?;
    let params = BTreeMap::new();
    let plan = plan::plan(&PlanInput {
        requested,
        index: &index,
        builtin: &builtin,
        loaded: &loaded,
        params: &params,
    })
    .map_err(|source| ImageError::Plan { source })?;

    let mut included = ModuleIndex::new(tree);
    for module in plan.modules() {
        if let Some(entry) = index.get(&module.name) {
            included.insert(module.name.clone(), entry.clone());
        }
    }
    let text = included
        .render()
        .map_err(|source| ImageError::RenderIndex { source })?;

    let mut files = BTreeMap::new();
    for entry in included.entries().values() {
        // render() has checked that every path is UTF-8 and relative.
        files.insert(
            entry.path.to_string_lossy().into_owned(),
            TreeFile::Host(tree.join(&entry.path)),
        );
    }
    for name in [BUILTIN_FILE, BUILTIN_MODINFO_FILE] {
        let path = tree.join(name);
        if path.is_file() {
            files.insert(name.to_owned(), TreeFile::Host(path));
        }
    }
    files.insert(INDEX_FILE.to_owned(), TreeFile::Text(text));

    image.modules = included.entries().keys().cloned().collect();
    image.builtin = plan.builtin;
    image.skipped_softdeps = plan.skipped_softdeps;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::initramfs::archive::tests::{Member, parse};
    use crate::initramfs::elf::tests::tiny_elf;
    use crate::modules::modinfo::tests::fake_module;

    const RELEASE: &str = "6.1.0-test";

    /// A module tree: `top` needs `mid` (which needs `base`) and soft-needs
    /// the alias `crypto-thing` of `thing`; `lonely` is unrelated; `bi` is
    /// built in; `broken` needs a module the tree lacks.
    struct Fixture {
        _dir: tempfile::TempDir,
        liftoff: PathBuf,
        tree: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("lib/modules").join(RELEASE);
        let modules: [(&str, &[&str]); 7] = [
            (
                "kernel/a/top.ko",
                &["depends=mid,bi", "softdep=pre: crypto-thing"],
            ),
            ("kernel/a/mid.ko", &["depends=base"]),
            ("kernel/b/base.ko", &["depends="]),
            ("kernel/b/thing-generic.ko", &["alias=crypto-thing"]),
            ("kernel/c/lonely.ko", &["depends="]),
            ("kernel/c/broken.ko", &["depends=gone"]),
            ("kernel/c/uses-builtin.ko", &["depends=bi"]),
        ];
        for (path, records) in modules {
            let path = tree.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, fake_module(records)).unwrap();
        }
        fs::write(tree.join(BUILTIN_FILE), "kernel/x/bi.ko\n").unwrap();
        fs::write(tree.join(BUILTIN_MODINFO_FILE), b"bi.license=GPL\0").unwrap();
        let liftoff = dir.path().join("liftoff");
        fs::write(&liftoff, tiny_elf(None)).unwrap();
        Fixture {
            _dir: dir,
            liftoff,
            tree,
        }
    }

    fn spec(fixture: &Fixture, modules: &[&str]) -> ImageSpec {
        ImageSpec {
            liftoff: fixture.liftoff.clone(),
            modules_dir: Some(fixture.tree.clone()),
            modules: modules.iter().map(|m| (*m).to_owned()).collect(),
            files: Vec::new(),
        }
    }

    fn members(image: &Image) -> BTreeMap<String, Member> {
        parse(&image.initramfs.to_bytes().unwrap())
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect()
    }

    #[test]
    fn modules_come_with_their_closure_index_and_config() {
        let fixture = fixture();
        let image = build(&spec(&fixture, &["top"])).unwrap();
        let names: Vec<&str> = image.modules.iter().map(ModName::as_str).collect();
        assert_eq!(names, ["base", "mid", "thing_generic", "top"]);
        assert_eq!(image.builtin, [ModName::new("bi")]);
        assert_eq!(image.release.as_deref(), Some(RELEASE));

        let members = members(&image);
        let lib = format!("lib/modules/{RELEASE}");
        for (path, mode) in [
            ("init".to_owned(), 0o100_755),
            (format!("{lib}/kernel/a/top.ko"), 0o100_644),
            (format!("{lib}/kernel/a/mid.ko"), 0o100_644),
            (format!("{lib}/kernel/b/base.ko"), 0o100_644),
            (format!("{lib}/kernel/b/thing-generic.ko"), 0o100_644),
            (format!("{lib}/{BUILTIN_FILE}"), 0o100_644),
            (format!("{lib}/{BUILTIN_MODINFO_FILE}"), 0o100_644),
            (format!("{lib}/{INDEX_FILE}"), 0o100_644),
            ("etc/liftoff/initramfs.toml".to_owned(), 0o100_644),
        ] {
            let member = members
                .get(&path)
                .unwrap_or_else(|| panic!("{path} missing from {:?}", members.keys()));
            assert_eq!(member.mode, mode, "{path}");
        }
        for absent in ["lonely.ko", "broken.ko", "uses-builtin.ko", "bi.ko"] {
            assert!(
                !members.keys().any(|name| name.ends_with(absent)),
                "{absent} should not be copied"
            );
        }
        assert_eq!(members["init"].data, tiny_elf(None));
        let top = &members[&format!("{lib}/kernel/a/top.ko")];
        assert_eq!(
            top.data,
            fs::read(fixture.tree.join("kernel/a/top.ko")).unwrap()
        );

        // The index parses, lists exactly the copied modules, and plans the
        // same closure with no module file to read.
        let index_text =
            String::from_utf8(members[&format!("{lib}/{INDEX_FILE}")].data.clone()).unwrap();
        let index = ModuleIndex::parse(Path::new("/"), Path::new(INDEX_FILE), &index_text).unwrap();
        let indexed: Vec<&str> = index.entries().keys().map(ModName::as_str).collect();
        assert_eq!(indexed, names);
        assert!(index.is_complete());

        let config = InitramfsConfig::parse(
            Path::new(CONFIG_PATH),
            std::str::from_utf8(&members["etc/liftoff/initramfs.toml"].data).unwrap(),
        )
        .unwrap();
        assert_eq!(config.kernel.as_deref(), Some(RELEASE));
        assert_eq!(config.modules, ["top"]);
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let fixture = fixture();
        let a = build(&spec(&fixture, &["top", "lonely"])).unwrap();
        let b = build(&spec(&fixture, &["lonely", "top"])).unwrap();
        for compression in [Compression::Gzip, Compression::None] {
            let first = a.initramfs.to_compressed_bytes(compression).unwrap();
            assert_eq!(
                first,
                a.initramfs.to_compressed_bytes(compression).unwrap(),
                "{compression}"
            );
            // Only the config's list (kept in the order asked) differs.
            let second = b.initramfs.to_compressed_bytes(compression).unwrap();
            assert_eq!(first.len(), second.len(), "{compression}");
        }
    }

    #[test]
    fn builtin_only_and_no_modules() {
        let fixture = fixture();
        let image = build(&spec(&fixture, &["bi"])).unwrap();
        assert!(image.modules.is_empty());
        assert_eq!(image.builtin, [ModName::new("bi")]);

        let mut bare = spec(&fixture, &[]);
        bare.modules_dir = None;
        let image = build(&bare).unwrap();
        let members = members(&image);
        assert!(!members.keys().any(|name| name.starts_with("lib")));
        assert_eq!(image.config, InitramfsConfig::default());
    }

    #[test]
    fn errors_name_what_failed() {
        let fixture = fixture();
        let mut no_tree = spec(&fixture, &["top"]);
        no_tree.modules_dir = None;
        let mut dynamic = spec(&fixture, &[]);
        dynamic.liftoff = fixture.tree.join("dynamic");
        fs::write(&dynamic.liftoff, tiny_elf(Some("/lib64/ld.so"))).unwrap();
        let mut missing_tree = spec(&fixture, &["top"]);
        missing_tree.modules_dir = Some(fixture.tree.with_file_name("9.9.9"));
        let cases: [(&str, ImageSpec, &[&str]); 5] = [
            (
                "unknown module",
                spec(&fixture, &["nosuch"]),
                &["nosuch", RELEASE],
            ),
            (
                "missing dependency",
                spec(&fixture, &["broken"]),
                &["broken", "gone"],
            ),
            ("no tree", no_tree, &["top", "--modules-dir"]),
            ("dynamic init", dynamic, &["dynamic", "/lib64/ld.so"]),
            ("missing tree", missing_tree, &["9.9.9"]),
        ];
        for (name, spec, words) in cases {
            let err = build(&spec).unwrap_err();
            let text = crate::failure::chain(&err);
            for word in words {
                assert!(text.contains(word), "{name}: {word:?} not in {text:?}");
            }
        }
    }

    #[test]
    fn extra_files_are_parsed_and_added() {
        for (spec, want) in [
            ("a:/etc/a", Some(("a", "/etc/a", None))),
            ("a:/etc/a:0600", Some(("a", "/etc/a", Some(0o600)))),
            ("a:/etc/a:4755", Some(("a", "/etc/a", Some(0o4755)))),
            ("a", None),
            (":/etc/a", None),
            ("a:etc/a", None),
            ("a:/etc/a:999", None),
            ("a:/etc/a:17777", None),
            ("a:/etc/a:", None),
        ] {
            let got = ExtraFile::parse(spec).ok();
            let want = want.map(|(host, guest, mode)| ExtraFile {
                host: host.into(),
                guest: guest.into(),
                mode,
            });
            assert_eq!(got, want, "{spec}");
        }

        let fixture = fixture();
        let host = fixture.tree.join("extra.sh");
        fs::write(&host, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&host, fs::Permissions::from_mode(0o750)).unwrap();
        let mut with_files = spec(&fixture, &[]);
        with_files.files = vec![
            ExtraFile::parse(&format!("{}:/bin/extra", host.display())).unwrap(),
            ExtraFile::parse(&format!("{}:/etc/extra:0600", host.display())).unwrap(),
        ];
        let members = members(&build(&with_files).unwrap());
        assert_eq!(members["bin/extra"].mode, 0o100_750);
        assert_eq!(members["etc/extra"].mode, 0o100_600);
        assert_eq!(members["etc/extra"].data, b"#!/bin/sh\n");

        for (name, guest, host) in [
            ("collides with /init", "/init", host.clone()),
            ("collides with the config", CONFIG_PATH, host.clone()),
            ("a folder", "/x", fixture.tree.clone()),
            ("missing", "/x", fixture.tree.join("nonexistent")),
        ] {
            let mut bad = spec(&fixture, &[]);
            bad.files = vec![ExtraFile {
                host: host.clone(),
                guest: guest.into(),
                mode: None,
            }];
            let err = build(&bad).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(guest) || text.contains(&host.display().to_string()),
                "{name}: {text}"
            );
        }
    }
}
