//! Carry out a [`LoadPlan`]: the thin syscall shell.
//!
//! 1. Wave by wave, in order: a wave starts only when the previous one has
//!    finished, so every module finds its dependencies in the kernel.
//! 2. Within a wave, worker threads take modules from a shared counter and
//!    load them in parallel: the kernel's `load_module()` spends most of
//!    its time relocating and running the module's init, which is per
//!    module. Threads are allowed here because module loading runs in
//!    stage 1 before PID 1 forks any child (docs/design.md); they are all
//!    joined before [`execute`] returns.
//! 3. Each module: an uncompressed file goes to `finit_module(2)` (the
//!    kernel reads it; no copy through user space); a compressed one is
//!    read, decompressed ([`super::compress`]) and given to
//!    `init_module(2)`. `EEXIST` means some other path loaded it first:
//!    fine.
//! 4. A failed module is reported and its dependants are skipped, not
//!    tried (they would fail with "Unknown symbol"); other modules still
//!    load. Whether a failure is fatal is the caller's decision.
//!
//! [`load_modules`] is the whole recipe for stage 1: `/proc/modules`,
//! built-in lists, index, plan, execute.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use nix::errno::Errno;
use nix::kmod::ModuleInitFlags;
use serde::Serialize;

use super::compress::{self, CompressError, Compression};
use super::index::{IndexError, ModuleIndex};
use super::modinfo::{self, Builtin};
use super::plan::{self, LoadPlan, PlanError, PlanInput, PlannedModule};
use super::{BUILTIN_FILE, BUILTIN_MODINFO_FILE, ModName, PROC_MODULES};

/// The syscalls module loading makes; [`NixModuleSys`] is the real one.
pub trait ModuleSys: Sync {
    /// Open `path` and `finit_module(2)` it.
    fn finit_module(&self, path: &Path, params: &CStr) -> Result<(), FinitError>;
    /// `init_module(2)` an image in memory.
    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno>;
    /// Read a whole (compressed) module file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The text of `/proc/modules`.
    fn read_proc_modules(&self) -> io::Result<String>;
}

/// Which half of [`ModuleSys::finit_module`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FinitError {
    /// `open(2)`.
    #[error("cannot open the module file")]
    Open(#[source] io::Error),
    /// `finit_module(2)`.
    #[error("finit_module failed")]
    Load(#[source] Errno),
}

/// The real syscalls, through nix (no `unsafe` here).
#[derive(Debug, Clone)]
pub struct NixModuleSys {
    proc_modules: PathBuf,
}

impl NixModuleSys {
    /// Reading the loaded-module list from `proc_modules` (a parameter for
    /// tests; [`Default`] is `/proc/modules`).
    #[must_use]
    pub fn with_proc_modules(proc_modules: &Path) -> Self {
        Self {
            proc_modules: proc_modules.to_owned(),
        }
    }
}

impl Default for NixModuleSys {
    fn default() -> Self {
        Self::with_proc_modules(Path::new(PROC_MODULES))
    }
}

impl ModuleSys for NixModuleSys {
    fn finit_module(&self, path: &Path, params: &CStr) -> Result<(), FinitError> {
        // std opens with O_CLOEXEC, so no child ever inherits the module fd.
        let file = File::open(path).map_err(FinitError::Open)?;
        nix::kmod::finit_module(&file, params, ModuleInitFlags::empty()).map_err(FinitError::Load)
    }

    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
        nix::kmod::init_module(image, params)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_proc_modules(&self) -> io::Result<String> {
        fs::read_to_string(&self.proc_modules)
    }
}

/// Why one module did not load.
#[derive(Debug, thiserror::Error)]
pub enum ModuleFailure {
    /// Its parameters contain a NUL byte.
    #[error("parameters for {name} contain a NUL byte")]
    Params {
        /// The module.
        name: ModName,
    },
    /// The module file could not be opened.
    #[error("cannot open module {name} at {}", path.display())]
    Open {
        /// The module.
        name: ModName,
        /// Its file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The kernel refused the file.
    #[error("finit_module of {name} ({}) failed", path.display())]
    Finit {
        /// The module.
        name: ModName,
        /// Its file.
        path: PathBuf,
        #[source]
        source: Errno,
    },
    /// The compressed file could not be read.
    #[error("cannot read module {name} at {}", path.display())]
    Read {
        /// The module.
        name: ModName,
        /// Its file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The compressed file could not be decompressed.
    #[error("cannot decompress module {name}")]
    Decompress {
        /// The module.
        name: ModName,
        #[source]
        source: CompressError,
    },
    /// The kernel refused the decompressed image.
    #[error("init_module of {name} ({}) failed", path.display())]
    Init {
        /// The module.
        name: ModName,
        /// Its file.
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

/// How one module's load ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The kernel loaded it.
    Loaded,
    /// `EEXIST`: it was loaded already.
    AlreadyLoaded,
}

/// One module's load, for the boot record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleTiming {
    /// The module.
    pub name: ModName,
    /// Its wave (0-based).
    pub wave: usize,
    /// Wall time of read + decompress + syscall, in microseconds.
    pub micros: u64,
    /// CLOCK_BOOTTIME when its load began, in microseconds.
    pub started_us: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A module not tried because a module it needs did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The module.
    pub name: ModName,
    /// The first of its predecessors that failed or was skipped.
    pub because: ModName,
    /// Whether the skipped module was optional.
    pub optional: bool,
}

/// What [`execute`] did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Loaded modules in wave order, by name within a wave.
    pub timings: Vec<ModuleTiming>,
    /// Required modules that failed.
    pub failures: Vec<ModuleFailure>,
    /// Optional modules (soft dependencies only) that failed: reported,
    /// not fatal.
    pub optional_failures: Vec<ModuleFailure>,
    /// Modules not tried because a hard dependency failed.
    pub skipped: Vec<Skipped>,
}

impl LoadReport {
    /// Whether every required module is loaded (an optional module that
    /// failed, or was skipped for one, does not count).
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty() && self.skipped.iter().all(|s| s.optional)
    }
}

/// Load `plan` through `sys`, up to `workers` modules at a time.
pub fn execute<S: ModuleSys>(sys: &S, plan: &LoadPlan, workers: usize) -> LoadReport {
    let mut report = LoadReport::default();
    let mut broken: BTreeSet<ModName> = BTreeSet::new();
    for (wave_number, wave) in plan.waves.iter().enumerate() {
        let mut todo: Vec<&PlannedModule> = Vec::new();
        for module in wave {
            // Only a failed hard dependency stops a module: a failed
            // `softdep=pre:` module was ordering, not a need.
            match module.depends.iter().find(|m| broken.contains(*m)) {
                Some(because) => {
                    report.skipped.push(Skipped {
                        name: module.name.clone(),
                        because: because.clone(),
                        optional: module.optional,
                    });
                    broken.insert(module.name.clone());
                }
                None => todo.push(module),
            }
        }
        for (module, result) in todo.iter().zip(run_wave(sys, &todo, workers)) {
            match result {
                Ok((started_us, micros, outcome)) => report.timings.push(ModuleTiming {
                    name: module.name.clone(),
                    wave: wave_number,
                    micros,
                    started_us,
                    outcome,
                }),
                Err(failure) => {
                    broken.insert(module.name.clone());
                    if module.optional {
                        report.optional_failures.push(failure);
                    } else {
                        report.failures.push(failure);
                    }
                }
            }
        }
    }
    report
}

/// (CLOCK_BOOTTIME at the start in µs, the load's wall time in µs, the outcome).
type LoadResult = Result<(u64, u64, Outcome), ModuleFailure>;

/// Load every module of one wave; results in `wave` order.
fn run_wave<S: ModuleSys>(sys: &S, wave: &[&PlannedModule], workers: usize) -> Vec<LoadResult> {
    let workers = workers.clamp(1, wave.len().max(1));
    if workers == 1 {
        // No thread for a wave of one: the common last waves (dm_verity).
        return wave.iter().map(|module| load_one(sys, module)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<LoadResult>> = wave.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(module) = wave.get(i) else {
                            break done;
                        };
                        done.push((i, load_one(sys, module)));
                    }
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => {
                    for (i, result) in done {
                        if let Some(slot) = results.get_mut(i) {
                            *slot = Some(result);
                        }
                    }
                }
                // A worker only panics on a bug; carry the panic on to the
                // PID 1 panic hook rather than invent a result.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
    });
    // Every index below wave.len() was taken by exactly one worker.
    results.into_iter().flatten().collect()
}

/// Load one module; the time covers reading and decompressing too.
fn load_one<S: ModuleSys>(sys: &S, module: &PlannedModule) -> LoadResult {
    let start = Instant::now();
    let started_us = u64::try_from(crate::stamps::boottime().as_micros()).unwrap_or(u64::MAX);
    let name = || module.name.clone();
    let path = || module.path.clone();
    let params =
        CString::new(module.params.as_str()).map_err(|_| ModuleFailure::Params { name: name() })?;
    let loaded = if module.compression == Compression::None {
        match sys.finit_module(&module.path, &params) {
            Ok(()) => Ok(()),
            Err(FinitError::Open(source)) => {
                return Err(ModuleFailure::Open {
                    name: name(),
                    path: path(),
                    source,
                });
            }
            Err(FinitError::Load(errno)) => Err((errno, true)),
        }
    } else {
        let bytes = sys
            .read_file(&module.path)
            .map_err(|source| ModuleFailure::Read {
                name: name(),
                path: path(),
                source,
            })?;
        let image =
            compress::decompress(&module.path, module.compression, bytes).map_err(|source| {
                ModuleFailure::Decompress {
                    name: name(),
                    source,
                }
            })?;
        sys.init_module(&image, &params)
            .map_err(|errno| (errno, false))
    };
    let outcome = match loaded {
        Ok(()) => Outcome::Loaded,
        Err((Errno::EEXIST, _)) => Outcome::AlreadyLoaded,
        Err((source, true)) => {
            return Err(ModuleFailure::Finit {
                name: name(),
                path: path(),
                source,
            });
        }
        Err((source, false)) => {
            return Err(ModuleFailure::Init {
                name: name(),
                path: path(),
                source,
            });
        }
    };
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok((started_us, micros, outcome))
}

/// Why stage 1 could not plan its modules.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `/proc/modules` could not be read.
    #[error("cannot read {PROC_MODULES}")]
    ProcModules(#[source] io::Error),
    /// `modules.builtin` or `modules.builtin.modinfo` exists but could not
    /// be read.
    #[error("cannot read {}", path.display())]
    Builtin {
        /// The file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The module tree could not be indexed.
    #[error("cannot index the module tree")]
    Index(#[source] IndexError),
    /// No schedule.
    #[error("cannot plan module loading")]
    Plan(#[source] PlanError),
}

/// The built-in lists of the tree at `root`; a missing file counts as
/// empty (a kernel with nothing built in, or a tree without the lists).
pub fn read_builtin(root: &Path) -> Result<Builtin, LoadError> {
    let read = |file: &str| -> Result<Vec<u8>, LoadError> {
        let path = root.join(file);
        match fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(LoadError::Builtin { path, source }),
        }
    };
    let builtin = read(BUILTIN_FILE)?;
    let builtin_modinfo = read(BUILTIN_MODINFO_FILE)?;
    Ok(Builtin::parse(
        &String::from_utf8_lossy(&builtin),
        &builtin_modinfo,
    ))
}

/// Index `root` and read the `.modinfo` a plan for `requested` needs, given
/// what is built in and loaded. With a `modules.liftoff` this reads no
/// module file.
pub fn prepare_index(
    root: &Path,
    requested: &[String],
    builtin: &Builtin,
    loaded: &BTreeSet<ModName>,
) -> Result<ModuleIndex, IndexError> {
    let mut index = ModuleIndex::load(root)?;
    let params = BTreeMap::new();
    let mut aliases_read = false;
    loop {
        let input = PlanInput {
            requested,
            index: &index,
            builtin,
            loaded,
            params: &params,
        };
        let unread = plan::unread(&input);
        let read_aliases = unread.aliases && !aliases_read;
        if unread.modules.is_empty() && !read_aliases {
            return Ok(index);
        }
        if read_aliases {
            // Best effort: a module nobody needs may be unreadable. The
            // ones the plan needs are read strictly below.
            for error in index.read_all_info_lenient() {
                log::warn!("module index: {error}");
            }
            aliases_read = true;
        }
        index.read_info(&unread.modules)?;
    }
}

/// Stage 1's module step: load `requested` (and their dependencies) from
/// the tree at `root` through `sys`, `workers` at a time.
pub fn load_modules<S: ModuleSys>(
    sys: &S,
    root: &Path,
    requested: &[String],
    params: &BTreeMap<ModName, String>,
    workers: usize,
) -> Result<(LoadPlan, LoadReport), LoadError> {
    // 1. What is loaded already, so that a second run does nothing.
    let loaded =
        modinfo::parse_proc_modules(&sys.read_proc_modules().map_err(LoadError::ProcModules)?);
    // 2. What the kernel has built in needs no file.
    let builtin = read_builtin(root)?;
    // 3. Name → file, plus the .modinfo the plan reaches.
    let index = prepare_index(root, requested, &builtin, &loaded).map_err(LoadError::Index)?;
    // 4. The waves.
    let plan = plan::plan(&PlanInput {
        requested,
        index: &index,
        builtin: &builtin,
        loaded: &loaded,
        params,
    })
    .map_err(LoadError::Plan)?;
    // 5. Load them.
    let report = execute(sys, &plan, workers);
    Ok((plan, report))
}

/// The fake [`ModuleSys`] tests use: it records every call, in order.
#[cfg(test)]
pub(crate) mod fake {
    use std::sync::Mutex;

    use super::*;

    /// One recorded call.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Call {
        /// `finit_module` of a file.
        Finit { path: PathBuf, params: String },
        /// `init_module` of an image, named by its `.modinfo` `name=`.
        Init {
            name: Option<ModName>,
            params: String,
        },
        /// `read_file`.
        Read { path: PathBuf },
        /// `read_proc_modules`.
        ProcModules,
    }

    #[derive(Debug, Default)]
    pub(crate) struct FakeModuleSys {
        pub(crate) calls: Mutex<Vec<Call>>,
        /// Files `read_file` serves.
        pub(crate) files: BTreeMap<PathBuf, Vec<u8>>,
        /// Paths whose `finit_module` fails with this errno.
        pub(crate) errors: BTreeMap<PathBuf, Errno>,
        pub(crate) proc_modules: String,
    }

    impl FakeModuleSys {
        pub(crate) fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }

        fn record(&self, call: Call) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl ModuleSys for FakeModuleSys {
        fn finit_module(&self, path: &Path, params: &CStr) -> Result<(), FinitError> {
            self.record(Call::Finit {
                path: path.to_owned(),
                params: params.to_string_lossy().into_owned(),
            });
            // Give the other workers a chance to interleave.
            std::thread::yield_now();
            match self.errors.get(path) {
                Some(errno) => Err(FinitError::Load(*errno)),
                None => Ok(()),
            }
        }

        fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
            let name = modinfo::modinfo_from_elf(image).ok().and_then(|i| i.name);
            self.record(Call::Init {
                name,
                params: params.to_string_lossy().into_owned(),
            });
            Ok(())
        }

        fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.record(Call::Read {
                path: path.to_owned(),
            });
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn read_proc_modules(&self) -> io::Result<String> {
            self.record(Call::ProcModules);
            Ok(self.proc_modules.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::modinfo::tests::fake_module;
    use super::fake::{Call, FakeModuleSys};
    use super::*;

    fn planned(name: &str, after: &[&str]) -> PlannedModule {
        PlannedModule {
            name: ModName::new(name),
            path: PathBuf::from(format!("/m/{name}.ko")),
            compression: Compression::None,
            params: String::new(),
            after: after.iter().copied().map(ModName::new).collect(),
            depends: after.iter().copied().map(ModName::new).collect(),
            optional: false,
        }
    }

    fn wide_plan() -> LoadPlan {
        let first: Vec<PlannedModule> =
            (0..16).map(|i| planned(&format!("a{i:02}"), &[])).collect();
        let second: Vec<PlannedModule> = (0..16)
            .map(|i| planned(&format!("b{i:02}"), &[&format!("a{i:02}")]))
            .collect();
        LoadPlan {
            waves: vec![first, second, vec![planned("c", &["b00", "b15"])]],
            ..LoadPlan::default()
        }
    }

    fn finit_name(call: &Call) -> String {
        match call {
            Call::Finit { path, .. } => path.file_stem().unwrap().to_string_lossy().into_owned(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn waves_complete_before_the_next_starts() {
        for workers in [1, 2, 8, 64] {
            let sys = FakeModuleSys::default();
            let plan = wide_plan();
            let report = execute(&sys, &plan, workers);
            assert!(report.is_complete(), "{workers}");
            let order: Vec<String> = sys.calls().iter().map(finit_name).collect();
            assert_eq!(order.len(), 33, "{workers}");
            let wave_of = |name: &str| name.as_bytes()[0];
            assert!(
                order.windows(2).all(|w| wave_of(&w[0]) <= wave_of(&w[1])),
                "{workers} workers: {order:?}"
            );
            let timed: Vec<(&str, usize)> = report
                .timings
                .iter()
                .map(|t| (t.name.as_str(), t.wave))
                .collect();
            assert_eq!(timed[0], ("a00", 0));
            assert_eq!(timed[16], ("b00", 1));
            assert_eq!(timed[32], ("c", 2));
        }
    }

    #[test]
    fn a_failed_optional_softdep_is_reported_and_its_dependant_still_loads() {
        // erofs's `softdep=pre: crypto-crc32c` plans every provider;
        // crc32c_intel refuses a CPU without SSE4.2 with ENODEV.
        let mut sys = FakeModuleSys::default();
        sys.errors
            .insert("/m/crc32c_intel.ko".into(), Errno::ENODEV);
        let mut intel = planned("crc32c_intel", &[]);
        intel.optional = true;
        let mut generic = planned("crc32c_generic", &[]);
        generic.optional = true;
        let mut erofs = planned("erofs", &[]);
        erofs.after = vec!["crc32c_generic".into(), "crc32c_intel".into()];
        let plan = LoadPlan {
            waves: vec![vec![generic, intel], vec![erofs]],
            ..LoadPlan::default()
        };
        let report = execute(&sys, &plan, 2);
        let loaded: Vec<&str> = report.timings.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(loaded, ["crc32c_generic", "erofs"]);
        assert!(report.failures.is_empty());
        let optional: Vec<String> = report
            .optional_failures
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            optional,
            ["finit_module of crc32c_intel (/m/crc32c_intel.ko) failed"]
        );
        assert!(report.skipped.is_empty());
        assert!(report.is_complete());
    }

    #[test]
    fn eexist_is_success_and_failures_skip_dependants() {
        let mut sys = FakeModuleSys::default();
        sys.errors.insert("/m/dup.ko".into(), Errno::EEXIST);
        sys.errors.insert("/m/bad.ko".into(), Errno::ENOEXEC);
        let plan = LoadPlan {
            waves: vec![
                vec![planned("bad", &[]), planned("dup", &[]), planned("ok", &[])],
                vec![
                    planned("needs_bad", &["bad"]),
                    planned("needs_dup", &["dup"]),
                ],
                vec![planned("needs_needs_bad", &["needs_bad", "ok"])],
            ],
            ..LoadPlan::default()
        };
        let report = execute(&sys, &plan, 4);
        let outcomes: Vec<(&str, Outcome)> = report
            .timings
            .iter()
            .map(|t| (t.name.as_str(), t.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("dup", Outcome::AlreadyLoaded),
                ("ok", Outcome::Loaded),
                ("needs_dup", Outcome::Loaded)
            ]
        );
        let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
        assert_eq!(failures, ["finit_module of bad (/m/bad.ko) failed"]);
        assert_eq!(
            report.skipped,
            [
                Skipped {
                    name: "needs_bad".into(),
                    because: "bad".into(),
                    optional: false,
                },
                Skipped {
                    name: "needs_needs_bad".into(),
                    because: "needs_bad".into(),
                    optional: false,
                },
            ]
        );
        assert!(
            !sys.calls()
                .iter()
                .any(|c| finit_name(c).starts_with("needs_bad"))
        );
    }

    #[test]
    fn compressed_modules_go_through_init_module() {
        let image = fake_module(&["name=ext4", "depends="]);
        let zst = ruzstd::encoding::compress_to_vec(
            image.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let mut sys = FakeModuleSys::default();
        sys.files.insert("/m/ext4.ko.zst".into(), zst);
        sys.files.insert("/m/bad.ko.xz".into(), b"not xz".to_vec());
        let mut ext4 = planned("ext4", &[]);
        ext4.path = "/m/ext4.ko.zst".into();
        ext4.compression = Compression::Zstd;
        ext4.params = "a=1".into();
        let mut bad = planned("bad", &[]);
        bad.path = "/m/bad.ko.xz".into();
        bad.compression = Compression::Xz;
        let mut missing = planned("missing", &[]);
        missing.path = "/m/missing.ko.xz".into();
        missing.compression = Compression::Xz;
        let plan = LoadPlan {
            waves: vec![vec![bad, ext4, missing]],
            ..LoadPlan::default()
        };
        let report = execute(&sys, &plan, 1);
        assert_eq!(
            sys.calls(),
            [
                Call::Read {
                    path: "/m/bad.ko.xz".into()
                },
                Call::Read {
                    path: "/m/ext4.ko.zst".into()
                },
                Call::Init {
                    name: Some("ext4".into()),
                    params: "a=1".into()
                },
                Call::Read {
                    path: "/m/missing.ko.xz".into()
                },
            ]
        );
        let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
        assert_eq!(
            failures,
            [
                "cannot decompress module bad",
                "cannot read module missing at /m/missing.ko.xz"
            ]
        );
    }

    #[test]
    fn load_modules_runs_the_whole_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |relative: &str, bytes: &[u8]| {
            let path = root.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        };
        write(
            "kernel/drivers/md/dm-verity.ko",
            &fake_module(&["name=dm_verity", "depends=dm-bufio,dm-mod"]),
        );
        write(
            "kernel/drivers/md/dm-bufio.ko",
            &fake_module(&["name=dm_bufio", "depends=dm-mod"]),
        );
        write("kernel/drivers/md/dm-mod.ko", b"never read: loaded already");
        write(
            "kernel/fs/ext4/ext4.ko",
            &fake_module(&["depends=", "softdep=pre: crypto-crc32c"]),
        );
        write(
            "kernel/crypto/crc32c_generic.ko",
            &fake_module(&["depends=", "alias=crypto-crc32c"]),
        );
        write("modules.builtin", b"kernel/lib/crc16.ko\n");
        let sys = FakeModuleSys {
            proc_modules: "dm_mod 184320 0 - Live 0x0000000000000000\n".into(),
            ..FakeModuleSys::default()
        };
        let requested = vec!["dm-verity".to_owned(), "ext4".to_owned()];
        let params = BTreeMap::from([(ModName::new("ext4"), "x=1".to_owned())]);
        let (plan, report) = load_modules(&sys, root, &requested, &params, 4).unwrap();
        assert!(report.is_complete());
        assert_eq!(plan.already_loaded, [ModName::new("dm_mod")]);
        let calls = sys.calls();
        assert_eq!(calls[0], Call::ProcModules);
        let order: Vec<String> = calls[1..].iter().map(finit_name).collect();
        let at = |name: &str| order.iter().position(|n| n == name).unwrap();
        assert!(at("dm-bufio") < at("dm-verity"), "{order:?}");
        assert!(at("crc32c_generic") < at("ext4"), "{order:?}");
        assert!(calls.contains(&Call::Finit {
            path: root.join("kernel/fs/ext4/ext4.ko"),
            params: "x=1".into()
        }));

        let err = load_modules(&sys, root, &["nope".to_owned()], &params, 4).unwrap_err();
        assert_eq!(err.to_string(), "cannot plan module loading");
    }
}
