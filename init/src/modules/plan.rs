//! From requested module names to a load schedule: pure.
//!
//! 1. Resolve each requested name: already loaded (`/proc/modules`) or
//!    built in → nothing to do; a module of the index → load it; else an
//!    exact alias (of a built-in, or of modules in the index, all of which
//!    load, as modprobe does) → load those; else an error.
//! 2. Follow every module's `depends=` (module names, never aliases; a
//!    missing one is an error naming who needs it) and `softdep=` (names or
//!    aliases; a missing one is skipped and reported, as modprobe does).
//!    Loaded and built-in modules end the walk: their own dependencies are
//!    satisfied already.
//! 3. Order: a module comes after its `depends=` and `softdep=pre:`
//!    modules, and before its `softdep=post:` modules. Schedule in waves
//!    (Kahn's algorithm, level by level): wave 0 holds the modules with
//!    nothing to wait for, wave *n* those whose last predecessor is in wave
//!    *n − 1*. Modules of one wave can load in parallel. A cycle is an
//!    error that names its modules.
//!
//! A walked index knows dependencies only of the modules whose `.modinfo`
//! was read; [`unread`] says which ones the plan needs next, so that the
//! shell can read exactly those and ask again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::compress::Compression;
use super::index::ModuleIndex;
use super::modinfo::Builtin;
use super::{ModName, normalize};

/// Why no load schedule could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A requested module is neither in the tree, nor built in, nor an
    /// alias of either.
    #[error("module {name} is not in {} and not built in", tree.display())]
    NotFound {
        /// The name as requested.
        name: String,
        /// The module tree.
        tree: PathBuf,
    },
    /// A module's `depends=` names a module the tree lacks.
    #[error("{module} needs {dependency}, which is not in {}", tree.display())]
    MissingDependency {
        /// The module that needs it.
        module: ModName,
        /// The missing module.
        dependency: ModName,
        /// The module tree.
        tree: PathBuf,
    },
    /// Modules wait for each other.
    #[error("dependency cycle: {}", cycle_text(cycle))]
    Cycle {
        /// The modules of the cycle, in order, the first repeated last.
        cycle: Vec<ModName>,
    },
    /// A module's `.modinfo` was needed but not read (a caller that skipped
    /// [`unread`]).
    #[error("the .modinfo of {name} has not been read")]
    Unread {
        /// The module.
        name: ModName,
    },
}

fn cycle_text(cycle: &[ModName]) -> String {
    cycle
        .iter()
        .map(ModName::as_str)
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// What the planner works from.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// Names to load, as given (`liftoff.modules=`, the initramfs's list);
    /// names or exact aliases.
    pub requested: &'a [String],
    /// The module tree.
    pub index: &'a ModuleIndex,
    /// The running kernel's built-in modules.
    pub builtin: &'a Builtin,
    /// Modules already loaded.
    pub loaded: &'a BTreeSet<ModName>,
    /// Parameters per module (`dm_verity.foo=1` on the command line).
    pub params: &'a BTreeMap<ModName, String>,
}

/// One module to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedModule {
    /// The module.
    pub name: ModName,
    /// Its file (the tree joined with the index path).
    pub path: PathBuf,
    /// How the file is compressed.
    pub compression: Compression,
    /// Parameters for `finit_module(2)`/`init_module(2)`, e.g. `a=1 b=2`.
    pub params: String,
    /// The planned modules that must be loaded first (sorted): hard and
    /// `softdep=pre:` dependencies alike.
    pub after: Vec<ModName>,
    /// The planned modules among `after` it cannot load without (its
    /// `depends=`, sorted): if one fails, this one is skipped.
    pub depends: Vec<ModName>,
    /// Reached only through soft dependencies (not requested, and no
    /// requested module needs it through `depends=`): a failure to load it
    /// is reported, not fatal. erofs's `softdep=pre: crypto-crc32c`, for
    /// one, names every crc32c provider, and `crc32c_intel` refuses CPUs
    /// without SSE4.2 with ENODEV while `crc32c_generic` serves them.
    pub optional: bool,
}

/// A soft dependency that is neither in the tree nor built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSoftdep {
    /// The module that asked for it.
    pub module: ModName,
    /// The name it gave.
    pub softdep: String,
}

/// The schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadPlan {
    /// Waves, in order; each sorted by name.
    pub waves: Vec<Vec<PlannedModule>>,
    /// Modules reached that are built in (sorted).
    pub builtin: Vec<ModName>,
    /// Modules reached that are loaded already (sorted).
    pub already_loaded: Vec<ModName>,
    /// Soft dependencies not found.
    pub skipped_softdeps: Vec<SkippedSoftdep>,
}

impl LoadPlan {
    /// Every planned module, wave by wave.
    pub fn modules(&self) -> impl Iterator<Item = &PlannedModule> {
        self.waves.iter().flatten()
    }
}

/// What a walked index must read before [`plan`] can run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unread {
    /// Modules in the closure whose `.modinfo` is unread.
    pub modules: BTreeSet<ModName>,
    /// A name resolved to nothing while some `.modinfo` is unread, so it
    /// may be an alias: read them all.
    pub aliases: bool,
}

impl Unread {
    /// Whether nothing more needs reading.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty() && !self.aliases
    }
}

/// What to read next so that [`plan`] has every `.modinfo` it needs.
#[must_use]
pub fn unread(input: &PlanInput<'_>) -> Unread {
    let walk = Walk::run(input);
    Unread {
        modules: walk.unread,
        aliases: walk.unresolved && !input.index.is_complete(),
    }
}

/// The load schedule for `input`.
pub fn plan(input: &PlanInput<'_>) -> Result<LoadPlan, PlanError> {
    let walk = Walk::run(input);
    let required = walk.required();
    if let Some(error) = walk.errors.into_iter().next() {
        return Err(error);
    }
    if let Some(name) = walk.unread.into_iter().next() {
        return Err(PlanError::Unread { name });
    }
    let waves = schedule(&walk.modules, &walk.before)?;
    let waves = waves
        .into_iter()
        .map(|wave| {
            wave.into_iter()
                .filter_map(|name| {
                    let entry = input.index.get(&name)?;
                    Some(PlannedModule {
                        path: input.index.root().join(&entry.path),
                        compression: entry.compression,
                        params: input.params.get(&name).cloned().unwrap_or_default(),
                        after: walk
                            .before
                            .get(&name)
                            .map(|set| set.iter().cloned().collect())
                            .unwrap_or_default(),
                        depends: walk
                            .hard
                            .get(&name)
                            .map(|set| set.iter().cloned().collect())
                            .unwrap_or_default(),
                        optional: !required.contains(&name),
                        name,
                    })
                })
                .collect()
        })
        .collect();
    Ok(LoadPlan {
        waves,
        builtin: walk.builtin.into_iter().collect(),
        already_loaded: walk.loaded.into_iter().collect(),
        skipped_softdeps: walk.skipped_softdeps,
    })
}

/// Module parameters from the kernel command line, as modprobe applies
/// them to modules it loads (kmod's `kmod_config_parse_kcmdline()`): each
/// `module.param[=value]` word adds `param[=value]` to `module`'s string,
/// in command-line order. The kernel applies these words itself only to
/// built-in code, so a loader must pass them on. Values with spaces are
/// quoted again for the kernel's `parse_args()`. Words for modules that are
/// never loaded (`liftoff.log=`, `systemd.verity_root_data=`) are harmless.
pub fn params_from_cmdline<'a>(
    words: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> BTreeMap<ModName, String> {
    let mut params: BTreeMap<ModName, String> = BTreeMap::new();
    for (key, value) in words {
        let Some((module, param)) = key.split_once('.') else {
            continue;
        };
        if module.is_empty() || param.is_empty() {
            continue;
        }
        let out = params.entry(ModName::new(module)).or_default();
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(param);
        match value {
            Some(value) if value.chars().any(char::is_whitespace) => {
                out.push_str(&format!("=\"{value}\""));
            }
            Some(value) => {
                out.push('=');
                out.push_str(value);
            }
            None => {}
        }
    }
    params
}

/// How one name resolves.
enum Resolved {
    /// Loaded or built in: nothing to do.
    Settled,
    /// Load these.
    Modules(Vec<ModName>),
    NotFound,
}

/// The dependency closure, as far as the read `.modinfo` reaches.
#[derive(Default)]
struct Walk {
    /// Modules to load.
    modules: BTreeSet<ModName>,
    /// module → the modules that must load before it.
    before: BTreeMap<ModName, BTreeSet<ModName>>,
    builtin: BTreeSet<ModName>,
    loaded: BTreeSet<ModName>,
    unread: BTreeSet<ModName>,
    /// Some name (requested or softdep) resolved to nothing.
    unresolved: bool,
    errors: Vec<PlanError>,
    skipped_softdeps: Vec<SkippedSoftdep>,
    /// The modules the requested names resolved to.
    roots: BTreeSet<ModName>,
    /// Each module's `depends=`, resolved (a subset of `before`).
    hard: BTreeMap<ModName, BTreeSet<ModName>>,
}

impl Walk {
    /// The requested modules and, through `depends=`, everything they
    /// cannot load without; the rest of the plan came in as soft
    /// dependencies.
    fn required(&self) -> BTreeSet<ModName> {
        let mut required = BTreeSet::new();
        let mut queue: Vec<ModName> = self.roots.iter().cloned().collect();
        while let Some(module) = queue.pop() {
            if required.insert(module.clone()) {
                queue.extend(self.hard.get(&module).into_iter().flatten().cloned());
            }
        }
        required
    }

    fn run(input: &PlanInput<'_>) -> Self {
        let mut walk = Self::default();
        let mut queue = Vec::new();
        for name in input.requested {
            match walk.resolve(input, name, true) {
                Resolved::Modules(found) => {
                    walk.roots.extend(found.iter().cloned());
                    queue.extend(found);
                }
                Resolved::NotFound => {
                    walk.unresolved = true;
                    walk.errors.push(PlanError::NotFound {
                        name: name.clone(),
                        tree: input.index.root().to_owned(),
                    });
                }
                Resolved::Settled => {}
            }
        }
        while let Some(module) = queue.pop() {
            if !walk.modules.insert(module.clone()) {
                continue;
            }
            walk.before.entry(module.clone()).or_default();
            let Some(deps) = input.index.get(&module).and_then(|e| e.deps.as_ref()) else {
                walk.unread.insert(module);
                continue;
            };
            for dependency in &deps.depends {
                match walk.resolve(input, dependency.as_str(), false) {
                    Resolved::Modules(found) => {
                        walk.hard
                            .entry(module.clone())
                            .or_default()
                            .extend(found.iter().filter(|f| **f != module).cloned());
                        walk.edges(&module, found, true, &mut queue);
                    }
                    Resolved::NotFound => walk.errors.push(PlanError::MissingDependency {
                        module: module.clone(),
                        dependency: dependency.clone(),
                        tree: input.index.root().to_owned(),
                    }),
                    Resolved::Settled => {}
                }
            }
            for (softdeps, pre) in [(&deps.softdeps.pre, true), (&deps.softdeps.post, false)] {
                for softdep in softdeps {
                    match walk.resolve(input, softdep, true) {
                        Resolved::Modules(found) => walk.edges(&module, found, pre, &mut queue),
                        Resolved::NotFound => {
                            walk.unresolved = true;
                            walk.skipped_softdeps.push(SkippedSoftdep {
                                module: module.clone(),
                                softdep: softdep.clone(),
                            });
                        }
                        Resolved::Settled => {}
                    }
                }
            }
        }
        walk.skipped_softdeps
            .sort_by(|a, b| (&a.module, &a.softdep).cmp(&(&b.module, &b.softdep)));
        walk.skipped_softdeps.dedup();
        walk
    }

    /// Order `module` after (`pre`) or before (`!pre`) each of `others`.
    fn edges(
        &mut self,
        module: &ModName,
        others: Vec<ModName>,
        pre: bool,
        queue: &mut Vec<ModName>,
    ) {
        for other in others {
            if other == *module {
                // A module that answers to its own softdep alias.
                continue;
            }
            let (first, then) = if pre {
                (&other, module)
            } else {
                (module, &other)
            };
            self.before
                .entry(then.clone())
                .or_default()
                .insert(first.clone());
            queue.push(other);
        }
    }

    fn resolve(&mut self, input: &PlanInput<'_>, name: &str, aliases: bool) -> Resolved {
        let module = ModName::new(name);
        if let Some(found) = self.settled(input, &module) {
            return found;
        }
        if input.index.get(&module).is_some() {
            return Resolved::Modules(vec![module]);
        }
        if !aliases {
            return Resolved::NotFound;
        }
        let alias = normalize(name);
        if let Some(provider) = input.builtin.aliases.get(&alias).and_then(|s| s.first()) {
            self.builtin.insert(provider.clone());
            return Resolved::Settled;
        }
        let Some(providers) = input.index.alias(&alias) else {
            return Resolved::NotFound;
        };
        let mut load = Vec::new();
        for provider in providers {
            if self.settled(input, provider).is_none() {
                load.push(provider.clone());
            }
        }
        if load.is_empty() {
            // Every provider is loaded or built in already.
            return Resolved::Settled;
        }
        Resolved::Modules(load)
    }

    /// Loaded or built in: nothing to load.
    fn settled(&mut self, input: &PlanInput<'_>, module: &ModName) -> Option<Resolved> {
        if input.loaded.contains(module) {
            self.loaded.insert(module.clone());
            Some(Resolved::Settled)
        } else if input.builtin.modules.contains(module) {
            self.builtin.insert(module.clone());
            Some(Resolved::Settled)
        } else {
            None
        }
    }
}

/// Kahn's algorithm, one level per wave.
fn schedule(
    modules: &BTreeSet<ModName>,
    before: &BTreeMap<ModName, BTreeSet<ModName>>,
) -> Result<Vec<Vec<ModName>>, PlanError> {
    let mut waiting: BTreeMap<&ModName, usize> = modules
        .iter()
        .map(|m| (m, before.get(m).map_or(0, BTreeSet::len)))
        .collect();
    let mut after: BTreeMap<&ModName, Vec<&ModName>> = BTreeMap::new();
    for (module, firsts) in before {
        for first in firsts {
            after.entry(first).or_default().push(module);
        }
    }
    let mut waves = Vec::new();
    let mut ready: Vec<&ModName> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(m, _)| *m)
        .collect();
    let mut placed = 0;
    while !ready.is_empty() {
        ready.sort();
        let mut next = Vec::new();
        for module in &ready {
            for dependant in after.get(module).into_iter().flatten() {
                if let Some(count) = waiting.get_mut(dependant) {
                    *count -= 1;
                    if *count == 0 {
                        next.push(*dependant);
                    }
                }
            }
        }
        placed += ready.len();
        waves.push(ready.iter().map(|m| (*m).clone()).collect());
        ready = next;
    }
    if placed < modules.len() {
        let stuck: BTreeSet<&ModName> = waiting
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(m, _)| *m)
            .collect();
        return Err(PlanError::Cycle {
            cycle: find_cycle(&stuck, before),
        });
    }
    Ok(waves)
}

/// A cycle among `stuck` (modules Kahn's algorithm could not place; each
/// waits for another stuck one, so following predecessors must repeat).
fn find_cycle(
    stuck: &BTreeSet<&ModName>,
    before: &BTreeMap<ModName, BTreeSet<ModName>>,
) -> Vec<ModName> {
    let Some(start) = stuck.first() else {
        return Vec::new();
    };
    let mut path: Vec<&ModName> = vec![start];
    let mut current: &ModName = start;
    loop {
        let next = before
            .get(current)
            .and_then(|firsts| firsts.iter().find(|m| stuck.contains(m)));
        let Some(next) = next else {
            // Not reachable for a genuine Kahn leftover; report what we have.
            return path.into_iter().cloned().collect();
        };
        if let Some(at) = path.iter().position(|m| *m == next) {
            // Written in load order, each before the next: `path` runs
            // backwards (module, then what it waits for) and starts with
            // `next`, so the reversed tail ends with it.
            return std::iter::once(next)
                .chain(path[at..].iter().rev().copied())
                .cloned()
                .collect();
        }
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::super::index::{IndexEntry, ModuleDeps};
    use super::super::modinfo::SoftDeps;
    use super::*;

    use std::path::Path;

    /// `(name, depends, pre, post, aliases)`.
    type Spec<'a> = (
        &'a str,
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
    );

    fn index(specs: &[Spec<'_>]) -> ModuleIndex {
        let mut index = ModuleIndex::new(Path::new("/lib/modules/v"));
        for (name, depends, pre, post, aliases) in specs {
            let strings = |list: &[&str]| list.iter().map(|s| normalize(s)).collect();
            index.insert(
                ModName::new(name),
                IndexEntry {
                    path: format!("kernel/{name}.ko").into(),
                    compression: Compression::None,
                    deps: Some(ModuleDeps {
                        depends: depends.iter().copied().map(ModName::new).collect(),
                        softdeps: SoftDeps {
                            pre: strings(pre),
                            post: strings(post),
                        },
                        aliases: strings(aliases),
                    }),
                },
            );
        }
        index
    }

    /// A small tree shaped like Debian's.
    fn debian() -> ModuleIndex {
        index(&[
            (
                "dm-verity",
                &["reed_solomon", "dm-mod", "dm-bufio"],
                &[],
                &[],
                &[],
            ),
            ("dm-bufio", &["dm-mod"], &[], &[], &[]),
            ("dm-mod", &[], &[], &[], &["devname:mapper/control"]),
            ("reed_solomon", &[], &[], &[], &[]),
            (
                "ext4",
                &["jbd2", "mbcache", "crc16"],
                &["crypto-crc32c"],
                &[],
                &["fs-ext4"],
            ),
            ("jbd2", &[], &[], &[], &[]),
            ("mbcache", &[], &[], &[], &[]),
            ("crc16", &[], &[], &[], &[]),
            (
                "crc32c_generic",
                &[],
                &[],
                &[],
                &["crypto-crc32c", "crc32c"],
            ),
            ("crc32c-intel", &[], &[], &[], &["crypto-crc32c", "crc32c"]),
            ("virtio_blk", &["virtio", "virtio_ring"], &[], &[], &[]),
            (
                "virtio_pci",
                &[
                    "virtio_pci_modern_dev",
                    "virtio_pci_legacy_dev",
                    "virtio",
                    "virtio_ring",
                ],
                &[],
                &[],
                &[],
            ),
            ("virtio_pci_modern_dev", &[], &[], &[], &[]),
            ("virtio_pci_legacy_dev", &[], &[], &[], &[]),
            ("virtio", &[], &[], &[], &[]),
            ("virtio_ring", &[], &[], &[], &[]),
            ("overlay", &[], &[], &[], &[]),
            (
                "erofs",
                &[],
                &["crc32c"],
                &["lz4_decompress"],
                &["fs-erofs"],
            ),
            ("withpost", &[], &[], &["missing_post"], &[]),
        ])
    }

    struct Case {
        name: &'static str,
        requested: &'static [&'static str],
        builtin: &'static [&'static str],
        loaded: &'static [&'static str],
        waves: &'static [&'static [&'static str]],
        skipped: &'static [&'static str],
    }

    fn run(index: &ModuleIndex, case: &Case) -> Result<LoadPlan, PlanError> {
        let requested: Vec<String> = case.requested.iter().map(|s| (*s).to_owned()).collect();
        let builtin = Builtin {
            modules: case.builtin.iter().copied().map(ModName::new).collect(),
            aliases: BTreeMap::new(),
        };
        let loaded: BTreeSet<ModName> = case.loaded.iter().copied().map(ModName::new).collect();
        let params = BTreeMap::from([(ModName::new("dm_verity"), "x=1".to_owned())]);
        let input = PlanInput {
            requested: &requested,
            index,
            builtin: &builtin,
            loaded: &loaded,
            params: &params,
        };
        assert!(unread(&input).is_empty(), "{}", case.name);
        plan(&input)
    }

    fn wave_names(plan: &LoadPlan) -> Vec<Vec<&str>> {
        plan.waves
            .iter()
            .map(|w| w.iter().map(|m| m.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn waves() {
        let cases = [
            Case {
                name: "nothing",
                requested: &[],
                builtin: &[],
                loaded: &[],
                waves: &[],
                skipped: &[],
            },
            Case {
                name: "dm-verity, dashes or not",
                requested: &["dm-verity", "dm_verity"],
                builtin: &[],
                loaded: &[],
                waves: &[&["dm_mod", "reed_solomon"], &["dm_bufio"], &["dm_verity"]],
                skipped: &[],
            },
            Case {
                name: "dm-mod built in",
                requested: &["dm_verity"],
                builtin: &["dm_mod"],
                loaded: &[],
                waves: &[&["dm_bufio", "reed_solomon"], &["dm_verity"]],
                skipped: &[],
            },
            Case {
                name: "dm-bufio loaded: its deps are not walked",
                requested: &["dm_verity"],
                builtin: &[],
                loaded: &["dm_bufio", "dm_mod"],
                waves: &[&["reed_solomon"], &["dm_verity"]],
                skipped: &[],
            },
            Case {
                name: "everything loaded",
                requested: &["dm_verity", "reed_solomon"],
                builtin: &[],
                loaded: &["dm_verity", "reed_solomon"],
                waves: &[],
                skipped: &[],
            },
            Case {
                name: "ext4 softdep alias loads every provider first",
                requested: &["ext4"],
                builtin: &[],
                loaded: &[],
                waves: &[
                    &["crc16", "crc32c_generic", "crc32c_intel", "jbd2", "mbcache"],
                    &["ext4"],
                ],
                skipped: &[],
            },
            Case {
                name: "loaded providers are skipped, the others load",
                requested: &["ext4"],
                builtin: &[],
                loaded: &["crc32c_intel"],
                waves: &[&["crc16", "crc32c_generic", "jbd2", "mbcache"], &["ext4"]],
                skipped: &[],
            },
            Case {
                name: "requested by alias; missing post softdep skipped",
                requested: &["fs-erofs", "withpost"],
                builtin: &[],
                loaded: &[],
                waves: &[&["crc32c_generic", "crc32c_intel", "withpost"], &["erofs"]],
                skipped: &["erofs:lz4_decompress", "withpost:missing_post"],
            },
            Case {
                name: "the full stage-1 set",
                requested: &[
                    "virtio_pci",
                    "virtio_blk",
                    "dm-mod",
                    "dm-verity",
                    "ext4",
                    "erofs",
                    "overlay",
                ],
                builtin: &["crc16"],
                loaded: &[],
                waves: &[
                    &[
                        "crc32c_generic",
                        "crc32c_intel",
                        "dm_mod",
                        "jbd2",
                        "mbcache",
                        "overlay",
                        "reed_solomon",
                        "virtio",
                        "virtio_pci_legacy_dev",
                        "virtio_pci_modern_dev",
                        "virtio_ring",
                    ],
                    &["dm_bufio", "erofs", "ext4", "virtio_blk", "virtio_pci"],
                    &["dm_verity"],
                ],
                skipped: &["erofs:lz4_decompress"],
            },
        ];
        let index = debian();
        for case in &cases {
            let plan = run(&index, case).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let want: Vec<Vec<&str>> = case.waves.iter().map(|w| w.to_vec()).collect();
            assert_eq!(wave_names(&plan), want, "{}", case.name);
            let skipped: Vec<String> = plan
                .skipped_softdeps
                .iter()
                .map(|s| format!("{}:{}", s.module, s.softdep))
                .collect();
            assert_eq!(skipped, case.skipped, "{}", case.name);
        }
    }

    #[test]
    fn planned_modules_carry_path_params_and_predecessors() {
        let index = debian();
        let case = Case {
            name: "dm",
            requested: &["dm_verity"],
            builtin: &["dm_mod"],
            loaded: &[],
            waves: &[],
            skipped: &[],
        };
        let plan = run(&index, &case).unwrap();
        assert_eq!(plan.builtin, [ModName::new("dm_mod")]);
        let verity = plan
            .modules()
            .find(|m| m.name.as_str() == "dm_verity")
            .unwrap();
        assert_eq!(verity.path, Path::new("/lib/modules/v/kernel/dm-verity.ko"));
        assert_eq!(verity.params, "x=1");
        assert_eq!(verity.after, ["dm_bufio", "reed_solomon"].map(ModName::new));
        let bufio = plan
            .modules()
            .find(|m| m.name.as_str() == "dm_bufio")
            .unwrap();
        assert_eq!(bufio.params, "");
        assert!(bufio.after.is_empty());
    }

    #[test]
    fn params_from_the_command_line() {
        let words = [
            ("console", Some("ttyS0")),
            ("dm-verity.require_signatures", Some("1")),
            ("dm_verity.x", None),
            ("ext4.opt", Some("a b")),
            (".bad", Some("1")),
            ("bad.", Some("1")),
            ("liftoff.log", Some("debug")),
        ];
        let got = params_from_cmdline(words);
        let want = BTreeMap::from([
            (
                ModName::new("dm_verity"),
                "require_signatures=1 x".to_owned(),
            ),
            (ModName::new("ext4"), "opt=\"a b\"".to_owned()),
            (ModName::new("liftoff"), "log=debug".to_owned()),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn errors() {
        let cyclic = index(&[
            ("a", &["b"], &[], &[], &[]),
            ("b", &["c"], &[], &[], &[]),
            ("c", &["a"], &[], &[], &[]),
            ("d", &["a"], &[], &[], &[]),
            ("soft", &[], &["soft2"], &[], &[]),
            ("soft2", &[], &["soft"], &[], &[]),
            ("needy", &["nothere"], &[], &[], &[]),
        ]);
        let cases = [
            (
                &["dm_verity", "nope"][..],
                "module nope is not in /lib/modules/v and not built in",
            ),
            (&["d"], "dependency cycle: a -> c -> b -> a"),
            (&["soft"], "dependency cycle: soft -> soft2 -> soft"),
            (
                &["needy"],
                "needy needs nothere, which is not in /lib/modules/v",
            ),
        ];
        let mut merged = debian();
        for (name, entry) in cyclic.entries() {
            merged.insert(name.clone(), entry.clone());
        }
        for (requested, want) in cases {
            let case = Case {
                name: want,
                requested,
                builtin: &[],
                loaded: &[],
                waves: &[],
                skipped: &[],
            };
            assert_eq!(run(&merged, &case).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn unread_asks_for_the_closure_then_aliases() {
        let mut index = debian();
        let ext4 = index.get(&ModName::new("ext4")).unwrap().clone();
        index.insert(ModName::new("ext4"), IndexEntry { deps: None, ..ext4 });
        let requested = vec![
            "dm_verity".to_owned(),
            "ext4".to_owned(),
            "fs-ext4".to_owned(),
        ];
        let builtin = Builtin::default();
        let loaded = BTreeSet::new();
        let params = BTreeMap::new();
        let input = PlanInput {
            requested: &requested,
            index: &index,
            builtin: &builtin,
            loaded: &loaded,
            params: &params,
        };
        assert_eq!(
            unread(&input),
            Unread {
                modules: [ModName::new("ext4")].into(),
                aliases: true,
            }
        );
        assert_eq!(
            plan(&input).unwrap_err().to_string(),
            "module fs-ext4 is not in /lib/modules/v and not built in"
        );
        let input = PlanInput {
            requested: &requested[..2],
            ..input
        };
        assert_eq!(
            plan(&input).unwrap_err().to_string(),
            "the .modinfo of ext4 has not been read"
        );
    }
}
