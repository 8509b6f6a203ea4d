//! What a module says about itself, and what the kernel says about its
//! modules: pure parsers over bytes.
//!
//! A `.ko` file is an ELF relocatable object. modpost writes its metadata
//! into the `.modinfo` section as NUL-terminated `key=value` strings
//! (scripts/mod/modpost.c, `add_depends()`; include/linux/module.h,
//! `MODULE_INFO`). The keys used here:
//!
//! * `depends=a,b-c`: the modules whose symbols it uses (hard dependencies,
//!   names as file names, so with `-`);
//! * `softdep=pre: x y post: z`: modules to load before or after it, which
//!   may be aliases (`MODULE_SOFTDEP`);
//! * `alias=...`: other names it answers to (`fs-ext4`, `crypto-crc32c`,
//!   device modaliases with wildcards);
//! * `name=`, `vermagic=`.

use std::collections::{BTreeMap, BTreeSet};

use goblin::container::Ctx;
use goblin::elf::Elf;
use goblin::elf::section_header::{SHN_XINDEX, SectionHeader};

use super::{ModName, normalize};

/// The ELF section modpost writes the metadata into.
const MODINFO_SECTION: &str = ".modinfo";

/// Why a module's `.modinfo` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModinfoError {
    /// The bytes are not an ELF file goblin can read.
    #[error("not an ELF file")]
    NotElf {
        #[source]
        source: goblin::error::Error,
    },
    /// A section header or name lies outside the file.
    #[error("section {index} is out of bounds")]
    SectionOutOfBounds {
        /// The section's index.
        index: usize,
    },
    /// The file has no `.modinfo` section: not a kernel module.
    #[error("no .modinfo section: not a kernel module")]
    NoModinfo,
}

/// A module's soft dependencies (`MODULE_SOFTDEP`), names normalised. They
/// may be aliases (ext4 has `softdep=pre: crypto-crc32c`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftDeps {
    /// Load these first, when they exist.
    pub pre: Vec<String>,
    /// Load these afterwards, when they exist.
    pub post: Vec<String>,
}

/// The parts of a module's `.modinfo` that loading needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=`: what the module registers as (absent before Linux 5.2).
    pub name: Option<ModName>,
    /// `depends=`: hard dependencies, in the order written, normalised.
    pub depends: Vec<ModName>,
    /// `softdep=`: all occurrences, merged.
    pub softdeps: SoftDeps,
    /// `alias=`: every alias as written (wildcards included), normalised.
    pub aliases: Vec<String>,
    /// `vermagic=`: the kernel release and build options it was built for.
    pub vermagic: Option<String>,
}

/// Parse the contents of a `.modinfo` section (or any run of
/// NUL-separated `key=value` records). Unknown keys are ignored, as are
/// records without `=`.
#[must_use]
pub fn parse_modinfo(section: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for (key, value) in records(section) {
        apply(&mut info, key, &value);
    }
    info
}

fn apply(info: &mut ModInfo, key: &str, value: &str) {
    match key {
        "name" => info.name = Some(ModName::new(value)),
        "depends" => info.depends.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(ModName::new),
        ),
        "softdep" => parse_softdep(value, &mut info.softdeps),
        "alias" => info.aliases.push(normalize(value)),
        "vermagic" => info.vermagic = Some(value.to_owned()),
        _ => {}
    }
}

/// `pre: a b post: c` as kmod reads it (libkmod-config.c,
/// `kmod_config_add_softdep`): words after `pre:` or `post:` go to that
/// list; words before either marker are ignored.
fn parse_softdep(value: &str, softdeps: &mut SoftDeps) {
    #[derive(Clone, Copy)]
    enum Mode {
        None,
        Pre,
        Post,
    }
    let mut mode = Mode::None;
    for word in value.split_whitespace() {
        match word {
            "pre:" => mode = Mode::Pre,
            "post:" => mode = Mode::Post,
            name => match mode {
                Mode::None => {}
                Mode::Pre => softdeps.pre.push(normalize(name)),
                Mode::Post => softdeps.post.push(normalize(name)),
            },
        }
    }
}

/// NUL-separated `key=value` records; empty records (alignment padding)
/// and records without `=` are skipped. Values that are not UTF-8 are
/// converted lossily: the keys liftoff reads are ASCII.
fn records(bytes: &[u8]) -> impl Iterator<Item = (&str, String)> {
    bytes.split(|&b| b == 0).filter_map(|record| {
        let eq = record.iter().position(|&b| b == b'=')?;
        let key = std::str::from_utf8(&record[..eq]).ok()?;
        let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
        Some((key, value))
    })
}

/// The `.modinfo` section of an uncompressed module image.
///
/// Reads only the ELF header, the section headers and the section name
/// table: no symbols or relocations, which is what makes this cheap.
pub fn modinfo_section(image: &[u8]) -> Result<&[u8], ModinfoError> {
    let header = Elf::parse_header(image).map_err(|source| ModinfoError::NotElf { source })?;
    let container = header
        .container()
        .map_err(|source| ModinfoError::NotElf { source })?;
    let endian = header
        .endianness()
        .map_err(|source| ModinfoError::NotElf { source })?;
    let ctx = Ctx::new(container, endian);
    let shoff = usize::try_from(header.e_shoff).map_err(|_| ModinfoError::NoModinfo)?;
    let sections = SectionHeader::parse(image, shoff, usize::from(header.e_shnum), ctx)
        .map_err(|source| ModinfoError::NotElf { source })?;
    // More than SHN_LORESERVE sections moves the string table index into
    // the first section header's sh_link (elf(5)).
    let names_index = if u32::from(header.e_shstrndx) == SHN_XINDEX {
        sections.first().map_or(0, |first| first.sh_link as usize)
    } else {
        usize::from(header.e_shstrndx)
    };
    let names = section_bytes(image, &sections, names_index)?;
    for (index, section) in sections.iter().enumerate() {
        let name = names
            .get(section.sh_name..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .ok_or(ModinfoError::SectionOutOfBounds { index })?;
        if name == MODINFO_SECTION.as_bytes() {
            return section_bytes(image, &sections, index);
        }
    }
    Err(ModinfoError::NoModinfo)
}

fn section_bytes<'a>(
    image: &'a [u8],
    sections: &[SectionHeader],
    index: usize,
) -> Result<&'a [u8], ModinfoError> {
    let section = sections.get(index);
    section
        .and_then(|s| {
            let start = usize::try_from(s.sh_offset).ok()?;
            let end = start.checked_add(usize::try_from(s.sh_size).ok()?)?;
            image.get(start..end)
        })
        .ok_or(ModinfoError::SectionOutOfBounds { index })
}

/// [`parse_modinfo`] of an uncompressed module image's `.modinfo`.
pub fn modinfo_from_elf(image: &[u8]) -> Result<ModInfo, ModinfoError> {
    modinfo_section(image).map(parse_modinfo)
}

/// What the running kernel has built in: names and exact aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Builtin {
    /// Built-in module names, normalised.
    pub modules: BTreeSet<ModName>,
    /// Exact (wildcard-free) aliases of built-in modules, normalised.
    pub aliases: BTreeMap<String, BTreeSet<ModName>>,
}

impl Builtin {
    /// Parse `modules.builtin` (one `kernel/fs/ext4/ext4.ko` path a line)
    /// and `modules.builtin.modinfo` (`name.key=value\0` records, since
    /// Linux 5.2); either may be empty.
    #[must_use]
    pub fn parse(builtin: &str, builtin_modinfo: &[u8]) -> Self {
        let mut out = Self::default();
        for line in builtin.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let file = line.rsplit('/').next().unwrap_or(line);
            let stem = file.split_once(".ko").map_or(file, |(stem, _)| stem);
            out.modules.insert(ModName::new(stem));
        }
        for (key, value) in records(builtin_modinfo) {
            // Module names never contain '.', keys never do either.
            let Some((module, key)) = key.split_once('.') else {
                continue;
            };
            let module = ModName::new(module);
            if key == "alias" && is_exact_alias(&value) {
                out.aliases
                    .entry(normalize(&value))
                    .or_default()
                    .insert(module.clone());
            }
            // modules.builtin.modinfo also holds parameters of core code
            // that is not a module (`printk.`, `workqueue.`); only files
            // that modules.builtin lists count as modules.
        }
        out
    }

    /// Whether `name` is built in (by name or by exact alias).
    #[must_use]
    pub fn provides(&self, name: &str) -> bool {
        self.modules.contains(&ModName::new(name)) || self.aliases.contains_key(&normalize(name))
    }
}

/// Whether an alias can be matched by string equality: no glob syntax.
/// Device aliases (`pci:v00001AF4d*...`) are for udev, not for liftoff.
#[must_use]
pub fn is_exact_alias(alias: &str) -> bool {
    !alias.is_empty()
        && !alias
            .bytes()
            .any(|b| matches!(b, b'*' | b'?' | b'[' | b']' | b',') || b.is_ascii_whitespace())
}

/// The loaded modules in `/proc/modules` text (proc(5)): the first word of
/// each line, whatever its state (`Live`, `Loading`, `Unloading`), since
/// loading any of them again returns `EEXIST`.
#[must_use]
pub fn parse_proc_modules(text: &str) -> BTreeSet<ModName> {
    text.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(ModName::new)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal little-endian ELF64 relocatable object with the given
    /// sections (name, contents), for tests: header, contents, then the
    /// section headers, the last section being `.shstrtab`.
    pub(crate) fn elf_with_sections(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut shstrtab = vec![0u8];
        let mut name_offsets = Vec::new();
        for (name, _) in sections.iter().chain([(".shstrtab", &[][..])].iter()) {
            name_offsets.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(name.as_bytes());
            shstrtab.push(0);
        }
        let mut body = Vec::new();
        let mut placed = Vec::new();
        for (_, contents) in sections {
            placed.push((64 + body.len() as u64, contents.len() as u64));
            body.extend_from_slice(contents);
        }
        placed.push((64 + body.len() as u64, shstrtab.len() as u64));
        body.extend_from_slice(&shstrtab);
        while body.len() % 8 != 0 {
            body.push(0);
        }
        let shoff = 64 + body.len() as u64;
        let shnum = (sections.len() + 2) as u16;
        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
        out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // entry
        out.extend_from_slice(&0u64.to_le_bytes()); // phoff
        out.extend_from_slice(&shoff.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&64u16.to_le_bytes()); // ehsize
        out.extend_from_slice(&0u16.to_le_bytes()); // phentsize
        out.extend_from_slice(&0u16.to_le_bytes()); // phnum
        out.extend_from_slice(&64u16.to_le_bytes()); // shentsize
        out.extend_from_slice(&shnum.to_le_bytes());
        out.extend_from_slice(&(shnum - 1).to_le_bytes()); // shstrndx
        out.extend_from_slice(&body);
        out.extend_from_slice(&[0u8; 64]); // the null section
        for (i, (offset, size)) in placed.iter().enumerate() {
            let sh_type: u32 = if i + 1 == placed.len() { 3 } else { 1 };
            out.extend_from_slice(&name_offsets[i].to_le_bytes());
            out.extend_from_slice(&sh_type.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes()); // flags
            out.extend_from_slice(&0u64.to_le_bytes()); // addr
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // link
            out.extend_from_slice(&0u32.to_le_bytes()); // info
            out.extend_from_slice(&1u64.to_le_bytes()); // addralign
            out.extend_from_slice(&0u64.to_le_bytes()); // entsize
        }
        out
    }

    /// A fake module whose `.modinfo` holds `records`.
    pub(crate) fn fake_module(records: &[&str]) -> Vec<u8> {
        let mut modinfo = Vec::new();
        for record in records {
            modinfo.extend_from_slice(record.as_bytes());
            modinfo.push(0);
        }
        elf_with_sections(&[(".text", b"\xc3"), (".modinfo", &modinfo)])
    }

    fn names(list: &[&str]) -> Vec<ModName> {
        list.iter().copied().map(ModName::new).collect()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn modinfo_records() {
        struct Case {
            name: &'static str,
            section: &'static [u8],
            want: ModInfo,
        }
        let cases = [
            Case {
                name: "empty",
                section: b"",
                want: ModInfo::default(),
            },
            Case {
                name: "dm-verity as modpost writes it",
                section: b"license=GPL\0depends=reed_solomon,dm-mod,dm-bufio\0retpoline=Y\0intree=Y\0name=dm_verity\0vermagic=6.1.0-56-amd64 SMP preempt mod_unload modversions \0",
                want: ModInfo {
                    name: Some(ModName::new("dm_verity")),
                    depends: names(&["reed_solomon", "dm_mod", "dm_bufio"]),
                    vermagic: Some("6.1.0-56-amd64 SMP preempt mod_unload modversions ".into()),
                    ..ModInfo::default()
                },
            },
            Case {
                name: "empty depends, padding between records",
                section: b"depends=\0\0\0\0alias=fs-ext4\0alias=ext3\0softdep=pre: crypto-crc32c\0",
                want: ModInfo {
                    aliases: strings(&["fs_ext4", "ext3"]),
                    softdeps: SoftDeps {
                        pre: strings(&["crypto_crc32c"]),
                        post: vec![],
                    },
                    ..ModInfo::default()
                },
            },
            Case {
                name: "softdeps merge, stray words ignored",
                section: b"softdep=stray pre: a b post: c\0softdep=post: d-e pre: f\0junk-without-equals\0",
                want: ModInfo {
                    softdeps: SoftDeps {
                        pre: strings(&["a", "b", "f"]),
                        post: strings(&["c", "d_e"]),
                    },
                    ..ModInfo::default()
                },
            },
        ];
        for case in cases {
            assert_eq!(parse_modinfo(case.section), case.want, "{}", case.name);
        }
    }

    #[test]
    fn modinfo_from_a_tiny_elf() {
        let image = fake_module(&["depends=a,b", "name=c"]);
        let info = modinfo_from_elf(&image).unwrap();
        assert_eq!(info.depends, names(&["a", "b"]));
        assert_eq!(info.name, Some(ModName::new("c")));
    }

    #[test]
    fn modinfo_errors() {
        let no_modinfo = elf_with_sections(&[(".text", b"\xc3")]);
        let mut truncated = fake_module(&["depends="]);
        truncated.truncate(100);
        let cases: [(&str, &[u8], &str); 3] = [
            (
                "not elf",
                b"hello world, not an ELF file at all, 64+ bytes long .......",
                "not an ELF file",
            ),
            (
                "no modinfo",
                &no_modinfo,
                "no .modinfo section: not a kernel module",
            ),
            ("truncated", &truncated, "not an ELF file"),
        ];
        for (name, image, want) in cases {
            let err = modinfo_from_elf(image).unwrap_err();
            assert_eq!(err.to_string(), want, "{name}");
        }
    }

    #[test]
    fn builtin_lists() {
        let builtin = Builtin::parse(
            "kernel/crypto/crc32c_generic.ko\nkernel/drivers/md/dm-mod.ko\n\n",
            b"crc32c_generic.alias=crypto-crc32c\0crc32c_generic.alias=crc32c\0virtio_pci.alias=pci:v00001AF4d*sv*sd*bc*sc*i*\0printk.time=1\0",
        );
        assert_eq!(
            builtin.modules,
            ["crc32c_generic", "dm_mod"].map(ModName::new).into()
        );
        for (name, want) in [
            ("dm-mod", true),
            ("crc32c", true),
            ("crypto-crc32c", true),
            ("virtio_pci", false),
            ("printk", false),
            ("ext4", false),
        ] {
            assert_eq!(builtin.provides(name), want, "{name}");
        }
    }

    #[test]
    fn exact_aliases() {
        for (alias, want) in [
            ("fs-ext4", true),
            ("crypto-crc32c", true),
            ("pci:v00001AF4d*sv*sd*bc*sc*i*", false),
            ("of:N*T*Cfoo,bar", false),
            ("", false),
        ] {
            assert_eq!(is_exact_alias(alias), want, "{alias}");
        }
    }

    #[test]
    fn proc_modules() {
        let text = "dm_verity 45056 0 - Live 0xffffffffc0a00000\n\
                    dm_bufio 40960 1 dm_verity, Live 0x0000000000000000\n\
                    virtio_blk 24576 2 - Loading 0x0000000000000000 (E)\n\n";
        assert_eq!(
            parse_proc_modules(text),
            ["dm_verity", "dm_bufio", "virtio_blk"]
                .map(ModName::new)
                .into()
        );
    }
}
