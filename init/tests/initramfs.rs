//! `liftoff initramfs` on Debian's real module tree: the stage-1 modules
//! with their closure, gzip against none, and the archive read back.
//!
//! The tree is the kernel `cargo xtask test` fetches into
//! `target/liftoff-cache/kernel/<version>/`; these tests find it there and
//! do not fetch it themselves.

// Helpers of a test binary are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use common::cached_tree;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cpio::newc;
use liftoff_init::initramfs::{
    CONFIG_PATH, Compression, ImageSpec, InitramfsConfig, build, read_archive,
};
use liftoff_init::modules::index::ModuleIndex;
use liftoff_init::modules::{INDEX_FILE, ModName};

/// What the brief's image holds: a virtio disk, a verity root, erofs and
/// ext4 volumes, an overlay.
const MODULES: [&str; 5] = ["virtio_blk", "dm-verity", "erofs", "ext4", "overlay"];

/// A static ELF stand-in for liftoff: the test binary is dynamically
/// linked, and the static build is xtask's job. Its contents do not matter
/// here; it only has to pass the PT_INTERP check.
fn fake_static_liftoff(dir: &Path) -> PathBuf {
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&0x40_0000u64.to_le_bytes()); // e_entry
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_phoff: no program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes());
    elf.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&64u16.to_le_bytes());
    elf.extend_from_slice(&0u16.to_le_bytes());
    elf.extend_from_slice(&0u16.to_le_bytes());
    let path = dir.join("liftoff");
    fs::write(&path, elf).unwrap();
    path
}

/// Name → (mode, bytes) of every member.
fn members(bytes: &[u8]) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut rest = bytes;
    loop {
        let mut reader = newc::Reader::new(rest).unwrap();
        if reader.entry().is_trailer() {
            break;
        }
        let name = reader.entry().name().to_owned();
        let mode = reader.entry().mode();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut data).unwrap();
        out.insert(name, (mode, data));
        rest = reader.finish().unwrap();
    }
    out
}

#[test]
#[ignore = "needs the cached Debian kernel: run by cargo xtask test"]
fn stage1_modules_from_the_debian_tree() {
    let (version, tree) = cached_tree();
    let dir = tempfile::tempdir().unwrap();
    let spec = ImageSpec {
        liftoff: fake_static_liftoff(dir.path()),
        modules_dir: Some(tree.clone()),
        modules: MODULES.iter().map(|m| (*m).to_owned()).collect(),
        files: Vec::new(),
    };
    let start = Instant::now();
    let image = build(&spec).unwrap();
    let planned = start.elapsed();
    let mut sizes = Vec::new();
    for compression in [Compression::Gzip, Compression::None] {
        let out = dir.path().join(format!("initrd.{compression}"));
        let start = Instant::now();
        let written = image.write(&out, compression).unwrap();
        sizes.push((compression, written, start.elapsed()));
    }
    let names: Vec<&str> = image.modules.iter().map(ModName::as_str).collect();
    eprintln!(
        "{version}: {} modules ({}), planned in {planned:?}",
        names.len(),
        names.join(" ")
    );
    for (compression, written, took) in &sizes {
        eprintln!(
            "  {compression}: {} bytes stored, {} bytes of cpio, written in {took:?}",
            written.stored, written.archive
        );
    }
    let (gzip, none) = (sizes[0].1, sizes[1].1);
    assert_eq!(gzip.archive, none.archive);
    assert_eq!(none.stored, none.archive);
    assert!(gzip.stored < none.stored, "{gzip:?} vs {none:?}");

    // Both files hold the same archive.
    let gz_plain = read_archive(&dir.path().join("initrd.gzip")).unwrap();
    assert_eq!(gz_plain, fs::read(dir.path().join("initrd.none")).unwrap());
    let members = members(&gz_plain);

    // The closure as the planner knows it from the walked tree, and each
    // module byte for byte at its tree path.
    for want in [
        "virtio_blk",
        "virtio",
        "virtio_ring",
        "dm_verity",
        "dm_mod",
        "dm_bufio",
        "erofs",
        "ext4",
        "jbd2",
        "mbcache",
        "overlay",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let lib = format!("lib/modules/{version}");
    let index_text = String::from_utf8(members[&format!("{lib}/{INDEX_FILE}")].1.clone()).unwrap();
    let index = ModuleIndex::parse(Path::new("/"), Path::new(INDEX_FILE), &index_text).unwrap();
    assert_eq!(
        index
            .entries()
            .keys()
            .map(ModName::as_str)
            .collect::<Vec<_>>(),
        names
    );
    for (name, entry) in index.entries() {
        let archived = format!("{lib}/{}", entry.path.display());
        let (mode, data) = members
            .get(&archived)
            .unwrap_or_else(|| panic!("{name}: {archived} not in the archive"));
        assert_eq!(*mode, 0o100_644, "{archived}");
        assert_eq!(
            data,
            &fs::read(tree.join(&entry.path)).unwrap(),
            "{archived}"
        );
        // Every dependency is in the archive too, or built in.
        for dep in &entry.deps.as_ref().unwrap().depends {
            assert!(
                index.get(dep).is_some() || image.builtin.contains(dep),
                "{name} needs {dep}, which is neither in the archive nor built in"
            );
        }
    }
    for file in ["modules.builtin", "modules.builtin.modinfo"] {
        assert!(members.contains_key(&format!("{lib}/{file}")), "{file}");
    }
    let config_name = CONFIG_PATH.trim_start_matches('/');
    let config = InitramfsConfig::parse(
        Path::new(CONFIG_PATH),
        std::str::from_utf8(&members[config_name].1).unwrap(),
    )
    .unwrap();
    assert_eq!(config.kernel.as_deref(), Some(version.as_str()));
    assert_eq!(config.modules, MODULES);

    // Determinism: building again gives the same compressed bytes.
    let again = build(&spec).unwrap();
    let out = dir.path().join("again");
    again.write(&out, Compression::Gzip).unwrap();
    assert_eq!(
        fs::read(&out).unwrap(),
        fs::read(dir.path().join("initrd.gzip")).unwrap()
    );
}
