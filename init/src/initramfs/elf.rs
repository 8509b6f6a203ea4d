//! Check that a binary can run as `/init` from an initramfs.
//!
//! The initramfs holds no dynamic loader and no libraries, so the kernel can
//! only run a binary without a PT_INTERP program header: a static executable
//! or a static PIE (what `+crt-static` produces on the gnu target). A dynamic
//! one would fail at boot with a bare "Failed to execute /init (error -2)";
//! checking on the host turns that into an error naming the file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a file cannot run as `/init`.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The host file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not an ELF binary.
    #[error("{} is not an ELF binary", path.display())]
    NotElf {
        /// The host file.
        path: PathBuf,
        #[source]
        source: goblin::error::Error,
    },
    /// The file is dynamically linked.
    #[error(
        "{} is dynamically linked (interpreter {interpreter}); build it static (+crt-static)",
        path.display()
    )]
    DynamicallyLinked {
        /// The host file.
        path: PathBuf,
        /// Its PT_INTERP, e.g. `/lib64/ld-linux-x86-64.so.2`.
        interpreter: String,
    },
}

/// Check that `path` is an ELF binary with no PT_INTERP program header.
pub fn ensure_static(path: &Path) -> Result<(), ElfError> {
    let bytes = fs::read(path).map_err(|source| ElfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let elf = goblin::elf::Elf::parse(&bytes).map_err(|source| ElfError::NotElf {
        path: path.to_path_buf(),
        source,
    })?;
    match elf.interpreter {
        Some(interpreter) => Err(ElfError::DynamicallyLinked {
            path: path.to_path_buf(),
            interpreter: interpreter.to_owned(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal x86-64 ELF executable: the file header and one program
    /// header, PT_INTERP (pointing at a loader path placed after it) if
    /// `interpreter` is given, PT_LOAD otherwise.
    pub(crate) fn tiny_elf(interpreter: Option<&str>) -> Vec<u8> {
        const EHDR: u16 = 64;
        const PHDR: u16 = 56;
        let mut elf = Vec::new();
        elf.extend_from_slice(b"\x7fELF");
        elf.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, SysV
        elf.extend_from_slice(&[0; 8]); // padding
        elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
        elf.extend_from_slice(&0x40_0000u64.to_le_bytes()); // e_entry
        elf.extend_from_slice(&u64::from(EHDR).to_le_bytes()); // e_phoff
        elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        elf.extend_from_slice(&EHDR.to_le_bytes());
        elf.extend_from_slice(&PHDR.to_le_bytes());
        elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
        elf.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        elf.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        elf.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(elf.len(), usize::from(EHDR));
        let data_offset = u64::from(EHDR + PHDR);
        let (p_type, data) = match interpreter {
            Some(path) => (3u32, format!("{path}\0").into_bytes()), // PT_INTERP
            None => (1u32, Vec::new()),                             // PT_LOAD
        };
        let size = data.len() as u64;
        elf.extend_from_slice(&p_type.to_le_bytes());
        elf.extend_from_slice(&4u32.to_le_bytes()); // PF_R
        elf.extend_from_slice(&data_offset.to_le_bytes()); // p_offset
        elf.extend_from_slice(&0x40_0000u64.to_le_bytes()); // p_vaddr
        elf.extend_from_slice(&0x40_0000u64.to_le_bytes()); // p_paddr
        elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
        elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
        elf.extend_from_slice(&1u64.to_le_bytes()); // p_align
        elf.extend_from_slice(&data);
        elf
    }

    fn check(contents: &[u8]) -> Result<(), ElfError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("binary");
        fs::write(&path, contents).unwrap();
        ensure_static(&path)
    }

    #[test]
    fn static_elf_passes() {
        check(&tiny_elf(None)).unwrap();
    }

    #[test]
    fn pt_interp_is_refused_with_the_loader_named() {
        let err = check(&tiny_elf(Some("/lib64/ld-linux-x86-64.so.2"))).unwrap_err();
        assert!(
            matches!(&err, ElfError::DynamicallyLinked { interpreter, .. } if interpreter == "/lib64/ld-linux-x86-64.so.2"),
            "{err:?}"
        );
    }

    #[test]
    fn debian_bin_true_is_dynamic() {
        // Debian's coreutils are dynamically linked: a real-world check of
        // the PT_INTERP detection beyond the hand-made ELF above.
        let err = ensure_static(Path::new("/bin/true")).unwrap_err();
        assert!(
            matches!(&err, ElfError::DynamicallyLinked { path, .. } if path == Path::new("/bin/true")),
            "{err:?}"
        );
        assert!(err.to_string().contains("/bin/true"), "{err}");
    }

    #[test]
    fn non_elf_is_refused() {
        let err = check(b"#!/bin/sh\n").unwrap_err();
        assert!(matches!(err, ElfError::NotElf { .. }), "{err:?}");
    }

    #[test]
    fn missing_file_is_named() {
        let err = ensure_static(Path::new("/nonexistent/liftoff")).unwrap_err();
        assert!(matches!(err, ElfError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/liftoff"), "{err}");
    }
}
