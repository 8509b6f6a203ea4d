//! Module loading's parser and planner on Debian's real module tree, checked
//! against kmod's own tools (`depmod`, `modinfo`).
//!
//! The tree is the kernel `cargo xtask test` fetches into
//! `target/liftoff-cache/kernel/<version>/` before it runs the ignored
//! tests; these tests find it there and do not fetch it themselves.

// Helpers of a test binary are test code too: a panic is a failed test
// (clippy's allow-unwrap-in-tests covers only `#[test]` functions).
#![allow(clippy::unwrap_used)]

mod common;

use common::cached_tree;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use liftoff_init::modules::ModName;
use liftoff_init::modules::compress::{self, Compression};
use liftoff_init::modules::index::ModuleIndex;
use liftoff_init::modules::load::{prepare_index, read_builtin};
use liftoff_init::modules::modinfo::{self, Builtin};
use liftoff_init::modules::plan::{self, LoadPlan, PlanInput};

/// What stage 1 loads to boot a verity root on virtio with ext4/erofs
/// volumes and an overlay.
const STAGE1: [&str; 7] = [
    "virtio_pci",
    "virtio_blk",
    "dm-mod",
    "dm-verity",
    "ext4",
    "erofs",
    "overlay",
];

fn plan_for(index: &ModuleIndex, builtin: &Builtin, requested: &[String]) -> LoadPlan {
    let loaded = BTreeSet::new();
    let params = BTreeMap::new();
    plan::plan(&PlanInput {
        requested,
        index,
        builtin,
        loaded: &loaded,
        params: &params,
    })
    .unwrap()
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn planned_names(plan: &LoadPlan) -> BTreeSet<String> {
    plan.modules().map(|m| m.name.to_string()).collect()
}

/// Every planned module's `depends=` (read from its file) that is planned
/// too sits in an earlier wave.
fn assert_waves_respect_depends(plan: &LoadPlan) {
    let wave_of: BTreeMap<&ModName, usize> = plan
        .waves
        .iter()
        .enumerate()
        .flat_map(|(i, wave)| wave.iter().map(move |m| (&m.name, i)))
        .collect();
    for (i, wave) in plan.waves.iter().enumerate() {
        for module in wave {
            let image = compress::decompress(
                &module.path,
                module.compression,
                fs::read(&module.path).unwrap(),
            )
            .unwrap();
            let info = modinfo::modinfo_from_elf(&image).unwrap();
            for dep in &info.depends {
                if let Some(&dep_wave) = wave_of.get(dep) {
                    assert!(
                        dep_wave < i,
                        "{} (wave {i}) needs {dep} (wave {dep_wave})",
                        module.name
                    );
                }
            }
        }
    }
}

#[test]
#[ignore = "needs the cached Debian kernel: run by cargo xtask test"]
fn stage1_closure_on_the_walked_tree() {
    let (version, tree) = cached_tree();
    let requested = strings(&STAGE1);
    let loaded = BTreeSet::new();

    let start = Instant::now();
    let builtin = read_builtin(&tree).unwrap();
    let index = prepare_index(&tree, &requested, &builtin, &loaded).unwrap();
    let prepared = start.elapsed();
    let plan = plan_for(&index, &builtin, &requested);
    let planned = start.elapsed();
    eprintln!(
        "{version}: {} modules; walk + built-in lists + .modinfo of the closure (and aliases): {prepared:?}; with plan: {planned:?}",
        index.entries().len()
    );

    // Soft dependencies are optional, what was asked for and what it
    // cannot load without are not: a CPU without SSE4.2 refuses
    // crc32c_intel, and that must not stop the boot.
    let optional: BTreeSet<&str> = plan
        .waves
        .iter()
        .flatten()
        .filter(|m| m.optional)
        .map(|m| m.name.as_str())
        .collect();
    assert!(optional.contains("crc32c_intel"), "{optional:?}");
    assert!(optional.contains("crc32c_generic"), "{optional:?}");
    for required in [
        "dm_verity",
        "dm_bufio",
        "dm_mod",
        "erofs",
        "ext4",
        "jbd2",
        "virtio_blk",
        "virtio_ring",
    ] {
        assert!(
            !optional.contains(required),
            "{required} must be required: {optional:?}"
        );
    }

    let names = planned_names(&plan);
    for want in [
        "dm_verity",
        "dm_bufio",
        "dm_mod",
        "virtio_blk",
        "virtio_pci",
        "erofs",
        "ext4",
        "mbcache",
        "jbd2",
        "crc16",
        "overlay",
        "virtio",
        "virtio_ring",
        // ext4's `softdep=pre: crypto-crc32c`, an alias of both.
        "crc32c_generic",
        "crc32c_intel",
    ] {
        assert!(names.contains(want), "{want} missing from {names:?}");
    }
    assert_waves_respect_depends(&plan);
    for (i, wave) in plan.waves.iter().enumerate() {
        let names: Vec<&str> = wave.iter().map(|m| m.name.as_str()).collect();
        eprintln!("wave {i}: {}", names.join(" "));
    }
    eprintln!("built in: {:?}", plan.builtin);
    eprintln!("skipped softdeps: {:?}", plan.skipped_softdeps);
}

#[test]
#[ignore = "needs the cached Debian kernel: run by cargo xtask test"]
fn index_file_round_trip_and_timings() {
    let (_, tree) = cached_tree();
    let requested = strings(&STAGE1);

    let start = Instant::now();
    let mut index = ModuleIndex::scan(&tree).unwrap();
    let scanned = start.elapsed();
    index.read_all_info().unwrap();
    let read_all = start.elapsed() - scanned;
    let text = index.render().unwrap();
    let file = tree.join("modules.liftoff");
    let start = Instant::now();
    let parsed = ModuleIndex::parse(&tree, &file, &text).unwrap();
    let parse = start.elapsed();
    assert_eq!(parsed, index);

    let builtin = read_builtin(&tree).unwrap();
    let start = Instant::now();
    let plan = plan_for(&parsed, &builtin, &requested);
    let plan_time = start.elapsed();
    eprintln!(
        "{} modules: walk {scanned:?}; .modinfo of all {read_all:?}; modules.liftoff {} bytes, parse {parse:?}; plan of the stage-1 set {plan_time:?}",
        index.entries().len(),
        text.len()
    );
    // The index gives the same plan as the walk.
    let loaded = BTreeSet::new();
    let walked = prepare_index(&tree, &requested, &builtin, &loaded).unwrap();
    assert_eq!(plan, plan_for(&walked, &builtin, &requested));

    // The initramfs case: an index of just the closure.
    let mut small = ModuleIndex::new(&tree);
    for module in plan.modules() {
        let entry = parsed.get(&module.name).unwrap().clone();
        small.insert(module.name.clone(), entry);
    }
    let small_text = small.render().unwrap();
    let start = Instant::now();
    let small = ModuleIndex::parse(&tree, &file, &small_text).unwrap();
    let small_plan = plan_for(&small, &builtin, &requested);
    eprintln!(
        "initramfs-sized index ({} modules, {} bytes): parse + plan {:?}",
        small.entries().len(),
        small_text.len(),
        start.elapsed()
    );
    assert_eq!(small_plan, plan);
}

/// Hard links (or copies) of the module tree in a temporary `lib/modules`,
/// so that depmod can write its files without touching the cache.
fn tree_copy(version: &str, tree: &Path) -> tempfile::TempDir {
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let target = base.path().join("lib/modules").join(version);
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        fs::create_dir_all(target.join(&relative)).unwrap();
        for entry in fs::read_dir(tree.join(&relative)).unwrap() {
            let entry = entry.unwrap();
            let path = relative.join(entry.file_name());
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_file() {
                let from = tree.join(&path);
                let to = target.join(&path);
                if fs::hard_link(&from, &to).is_err() {
                    fs::copy(&from, &to).unwrap();
                }
            }
        }
    }
    base
}

#[test]
#[ignore = "needs the cached Debian kernel: run by cargo xtask test"]
fn closures_match_depmod_for_every_module() {
    let (version, tree) = cached_tree();
    let base = tree_copy(&version, &tree);
    let status = Command::new("depmod")
        .arg("-b")
        .arg(base.path())
        .arg(&version)
        .status()
        .expect("depmod (kmod) must be installed");
    assert!(status.success(), "depmod: {status}");
    let dep_file = base
        .path()
        .join("lib/modules")
        .join(&version)
        .join("modules.dep");
    let modules_dep = fs::read_to_string(dep_file).unwrap();

    let mut index = ModuleIndex::scan(&tree).unwrap();
    index.read_all_info().unwrap();
    // depmod resolves hard dependencies only, and knows nothing of what is
    // built in beyond "not a file": plan with an empty built-in list and
    // compare against the softdep-free closure.
    let no_softdeps = ModuleIndex::parse(
        &tree,
        Path::new("modules.liftoff"),
        &index
            .render()
            .unwrap()
            .lines()
            .map(|line| {
                let mut fields: Vec<&str> = line.split(' ').collect();
                if fields.len() == 6 {
                    fields[3] = "-";
                    fields[4] = "-";
                }
                fields.join(" ") + "\n"
            })
            .collect::<String>(),
    )
    .unwrap();
    let builtin = Builtin::default();
    let mut checked = 0;
    for line in modules_dep.lines() {
        let (path, deps) = line.split_once(':').unwrap();
        let name = module_name_of(path);
        let want: BTreeSet<String> = deps.split_whitespace().map(module_name_of).collect();
        let plan = plan_for(&no_softdeps, &builtin, std::slice::from_ref(&name));
        let mut got = planned_names(&plan);
        got.remove(&name);
        assert_eq!(got, want, "{name}");
        // Loading in depmod's order must also be loading in wave order
        // (modules.dep lists the deepest dependency last).
        checked += 1;
    }
    assert_eq!(checked, index.entries().len());
    eprintln!("{checked} closures equal depmod's");
}

fn module_name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap();
    let (stem, _) = Compression::split_file_name(file).unwrap();
    ModName::new(stem).to_string()
}

#[test]
#[ignore = "needs the cached Debian kernel: run by cargo xtask test"]
fn modinfo_matches_kmod_modinfo() {
    let (_, tree) = cached_tree();
    let index = ModuleIndex::scan(&tree).unwrap();
    for name in [
        "dm_verity",
        "dm_bufio",
        "ext4",
        "jbd2",
        "erofs",
        "overlay",
        "virtio_blk",
        "virtio_pci",
        "libcrc32c",
        "crc32c_intel",
        "btrfs",
        "xfs",
    ] {
        let path = tree.join(&index.get(&ModName::new(name)).unwrap().path);
        let info = modinfo::modinfo_from_elf(&fs::read(&path).unwrap()).unwrap();
        let field = |field: &str| {
            let out = Command::new("modinfo")
                .args(["-F", field])
                .arg(&path)
                .output()
                .expect("modinfo (kmod) must be installed");
            assert!(out.status.success(), "modinfo {}", path.display());
            String::from_utf8(out.stdout).unwrap()
        };
        let depends: Vec<ModName> = field("depends")
            .trim()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(ModName::new)
            .collect();
        assert_eq!(info.depends, depends, "{name} depends");
        let mut softdeps = liftoff_init::modules::modinfo::SoftDeps::default();
        for line in field("softdep").lines() {
            let parsed = modinfo::parse_modinfo(format!("softdep={line}\0").as_bytes());
            softdeps.pre.extend(parsed.softdeps.pre);
            softdeps.post.extend(parsed.softdeps.post);
        }
        assert_eq!(info.softdeps, softdeps, "{name} softdep");
        let aliases: Vec<String> = field("alias")
            .lines()
            .map(liftoff_init::modules::normalize)
            .collect();
        assert_eq!(info.aliases, aliases, "{name} alias");
        assert_eq!(
            info.vermagic.as_deref().map(str::trim),
            Some(field("vermagic").trim()),
            "{name} vermagic"
        );
        assert_eq!(info.name, Some(ModName::new(name)), "{name} name");
    }
}

/// Compress with the host's `xz`/`zstd` as kbuild does
/// (scripts/Makefile.modinst), or with the pure-Rust encoders when the
/// tool is missing (said on stderr).
fn compressed(tool: &str, args: &[&str], plain: &[u8], dir: &Path) -> Vec<u8> {
    let input = dir.join("m.ko");
    fs::write(&input, plain).unwrap();
    match Command::new(tool).args(args).arg("-c").arg(&input).output() {
        Ok(out) if out.status.success() => out.stdout,
        other => {
            eprintln!("{tool} unavailable ({other:?}); using the pure-Rust encoder");
            let mut out = Vec::new();
            if tool == "xz" {
                lzma_rs::xz_compress(&mut &plain[..], &mut out).unwrap();
            } else {
                out = ruzstd::encoding::compress_to_vec(
                    plain,
                    ruzstd::encoding::CompressionLevel::Fastest,
                );
            }
            out
        }
    }
}

#[test]
#[ignore = "needs the cached Debian kernel: run by cargo xtask test"]
fn compressed_modules_decompress_to_the_original() {
    let (_, tree) = cached_tree();
    let index = ModuleIndex::scan(&tree).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["dm_verity", "ext4"] {
        let path = tree.join(&index.get(&ModName::new(name)).unwrap().path);
        let plain = fs::read(&path).unwrap();
        for (tool, args, compression) in [
            (
                "xz",
                &["--check=crc32", "--lzma2=dict=1MiB"][..],
                Compression::Xz,
            ),
            ("zstd", &["-q", "-T0"][..], Compression::Zstd),
        ] {
            let packed = compressed(tool, args, &plain, dir.path());
            let start = Instant::now();
            let image = compress::decompress(&path, compression, packed.clone()).unwrap();
            eprintln!(
                "{name}: {tool} {} → {} bytes in {:?}",
                packed.len(),
                image.len(),
                start.elapsed()
            );
            assert!(image == plain, "{name} {tool}");
        }
    }
}
