//! The verity crate's I/O `unsafe` (the other is the SIMD in
//! [`crate::sha256x`]): read-only memory maps of a window of
//! the data device, so the hashers read the page cache in place instead of
//! copying every byte through a buffer (measured on a 2-core machine: about
//! 10% more throughput than `pread` into per-thread buffers).

use std::ffi::c_void;
use std::fs::File;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{self, MapFlags, ProtFlags};

/// The kernel's page size (4096 where it cannot be asked): dm-verity
/// refuses data blocks larger than this, which veritysetup warns about.
pub fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => n as u64,
        _ => 4096,
    }
}

/// A read-only, shared mapping of `len` bytes of a file, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<c_void>,
    len: NonZeroUsize,
}

// SAFETY: the mapping is read-only memory owned by this value alone; reading
// it from another thread is as safe as reading a `&[u8]`.
unsafe impl Send for Mapping {}
// SAFETY: as above: only shared reads happen through `&Mapping`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `file` from `offset`, which must be a multiple of
    /// the page size. `len == 0` is an `EINVAL` error.
    pub fn map(file: &File, offset: u64, len: usize) -> nix::Result<Mapping> {
        let len = NonZeroUsize::new(len).ok_or(nix::Error::EINVAL)?;
        let offset = i64::try_from(offset).map_err(|_| nix::Error::EOVERFLOW)?;
        // SAFETY: we ask the kernel for a fresh mapping (no address hint), so
        // no existing Rust object is aliased. PROT_READ only: nothing writes
        // through it. The caller keeps the file open for as long as it reads
        // the mapping (the mapping keeps its own reference to the file
        // anyway). A caveat every mmap reader has: if another process
        // truncates the file while we hash it, touching the lost pages
        // raises SIGBUS; liftoff's callers hash images they own.
        let ptr = unsafe {
            mman::mmap(
                None,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                file,
                offset,
            )?
        };
        Ok(Mapping { ptr, len })
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is the start of a live PROT_READ mapping of `len`
        // bytes (unmapped only in `drop`, which needs `&mut self`), so the
        // slice is valid, initialized and immutable for `&self`'s lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len.get()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe exactly the mapping `map` created,
        // and no slice borrowed from it can outlive `self`. An error here
        // (impossible for a valid mapping) would only leak address space.
        let _ = unsafe { mman::munmap(self.ptr, self.len.get()) };
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn maps_a_window() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let m = Mapping::map(&f, 4096, 4096 + 10).unwrap();
        assert_eq!(m.as_slice(), &data[4096..8192 + 10]);
        assert_eq!(Mapping::map(&f, 0, 0).unwrap_err(), nix::Error::EINVAL);
    }
}
