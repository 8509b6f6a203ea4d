//! Fuzz `verity::table::VerityTable::parse` with arbitrary text.
//!
//! Invariants checked on every input:
//! 1. nothing panics (stage 1 parses the table from the kernel command
//!    line, which an attacker with the boot loader's ear could shape);
//! 2. an accepted table passes `validate`, prints (Display) to text that
//!    parses back to the same table, and that text is a fixed point;
//! 3. its `length_sectors` is the data size in sectors, without overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verity::table::VerityTable;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = VerityTable::parse(line) else {
        return;
    };
    assert_eq!(table.validate(), Ok(()));
    let text = table.to_string();
    let again = VerityTable::parse(&text)
        .unwrap_or_else(|e| panic!("printed table {text:?} does not parse: {e}"));
    assert_eq!(again, table, "{text:?}");
    assert_eq!(again.to_string(), text);
    let sectors = u128::from(table.data_blocks) * u128::from(table.data_block_size) / 512;
    assert_eq!(u128::from(table.length_sectors()), sectors);
});
