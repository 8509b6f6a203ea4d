//! Fuzz `verity::superblock::Superblock::parse` with arbitrary bytes.
//!
//! Invariants checked on every input:
//! 1. nothing panics (the superblock is read from a disk, untrusted until
//!    the root hash checks out);
//! 2. an accepted superblock serializes (`to_bytes`) to 512 bytes that
//!    parse back to the same fields, and serializing again gives the same
//!    bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verity::superblock::Superblock;

fuzz_target!(|data: &[u8]| {
    let Ok(superblock) = Superblock::parse(data) else {
        return;
    };
    let bytes = superblock.to_bytes();
    let again = Superblock::parse(&bytes)
        .unwrap_or_else(|e| panic!("serialized superblock does not parse: {e}"));
    assert_eq!(again, superblock);
    assert_eq!(again.to_bytes(), bytes);
});
