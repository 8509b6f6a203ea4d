//! Reed-Solomon encoding over GF(2^8), the code dm-verity's FEC uses.
//!
//! The code is the one cryptsetup builds with Phil Karn's
//! `init_rs_char(8, 0x11d, 0, 1, roots, 0)`: symbols are bytes, the field
//! polynomial is x^8 + x^4 + x^3 + x^2 + 1 (0x11d), the primitive element is
//! α = 2, and the generator polynomial has the roots α^0 … α^(roots−1)
//! (first consecutive root 0, root step 1). Codewords are RS(255, 255 − roots)
//! with no shortening padding; the parity is the remainder of
//! `data(x) · x^roots` divided by the generator, with `data[0]` the highest
//! power. Any correct encoder for that code produces the same bytes, and the
//! tests check it through the syndromes.
//!
//! Why hand-written rather than a crate: the `reed-solomon` crate (0.2.1,
//! last released 2017) implements this same code and gives the same parity
//! bytes (checked for 2, 13 and 24 roots), but it encodes one codeword at a
//! time from a contiguous slice and returns a fresh buffer per codeword.
//! dm-verity's interleaving puts the symbols of one codeword in
//! `255 − roots` different blocks (byte `b` of each), so that API would need
//! a strided gather and an allocation for every 253 bytes. Encoding every
//! byte position of a round at once, as below, walks each block
//! sequentially, and the encoder is about 60 lines with no dependency.
//!
//! How it is fast: the parity register of one codeword (at most 24 bytes)
//! lives in up to three `u64` words, little-endian, byte 0 being the next
//! byte to leave the register. One encoding step for an input byte `d` is
//! `f = d ^ reg[0]; reg = (reg >> 8) ^ PRODUCTS[f]`, where `PRODUCTS[f]`
//! holds `f · g_(roots−1−j)` in byte `j`: one table load per input byte,
//! whatever the number of roots, instead of `roots` multiplications.

/// The field polynomial x^8 + x^4 + x^3 + x^2 + 1.
const FIELD_POLY: u16 = 0x11d;

/// Symbols in a full codeword.
pub const CODEWORD_LEN: usize = 255;

/// The most parity bytes the register words can hold (3 × 8).
pub const MAX_ROOTS: usize = 24;

/// Powers of α, doubled so that `EXP[LOG[a] + LOG[b]]` needs no modulo.
const EXP: [u8; 512] = exp_table();

/// Discrete logarithms base α; `LOG[0]` is unused.
const LOG: [u8; 256] = log_table();

const fn exp_table() -> [u8; 512] {
    let mut table = [0u8; 512];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        // x < 256 always holds after the reduction below.
        table[i] = x as u8;
        table[i + 255] = x as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= FIELD_POLY;
        }
        i += 1;
    }
    table
}

const fn log_table() -> [u8; 256] {
    let exp = exp_table();
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        table[exp[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// Multiplication in GF(2^8).
pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        0
    } else {
        EXP[usize::from(LOG[usize::from(a)]) + usize::from(LOG[usize::from(b)])]
    }
}

/// α^i.
pub fn alpha_pow(i: usize) -> u8 {
    EXP[i % 255]
}

/// The generator polynomial Π (x − α^i) for i in 0..roots, coefficient of
/// x^k at index k (so the last, x^roots, is 1).
pub fn generator(roots: usize) -> Vec<u8> {
    let mut g = vec![1u8];
    for i in 0..roots {
        let root = alpha_pow(i);
        // Multiply by (x + root): new[k] = old[k − 1] + root · old[k].
        let mut next = vec![0u8; g.len() + 1];
        for (k, &c) in g.iter().enumerate() {
            next[k + 1] ^= c;
            next[k] ^= mul(root, c);
        }
        g = next;
    }
    g
}

/// A systematic encoder for RS(255, 255 − roots).
#[derive(Debug, Clone)]
pub struct Encoder {
    roots: usize,
    /// `products[f]`, byte j (little-endian across the words) =
    /// `f · g_(roots−1−j)`; bytes at and past `roots` are zero.
    products: Box<[[u64; 3]; 256]>,
}

impl Encoder {
    /// An encoder with `roots` parity bytes per codeword, 1..=24 (the
    /// callers validate dm-verity's narrower range).
    pub fn new(roots: usize) -> Encoder {
        let roots = roots.clamp(1, MAX_ROOTS);
        let g = generator(roots);
        let mut products = Box::new([[0u64; 3]; 256]);
        for (f, row) in products.iter_mut().enumerate() {
            let mut bytes = [0u8; 24];
            for (j, byte) in bytes.iter_mut().take(roots).enumerate() {
                // f < 256 by the enumerate over 256 rows.
                *byte = mul(f as u8, g[roots - 1 - j]);
            }
            for (word, chunk) in row.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut le = [0u8; 8];
                le.copy_from_slice(chunk);
                *word = u64::from_le_bytes(le);
            }
        }
        Encoder { roots, products }
    }

    /// Parity bytes per codeword.
    pub fn roots(&self) -> usize {
        self.roots
    }

    /// Data bytes per codeword (`255 − roots`).
    pub fn data_len(&self) -> usize {
        CODEWORD_LEN - self.roots
    }

    /// Encodes one codeword: `parity` (`roots` bytes) for `data` (at most
    /// `255 − roots` bytes; fewer act as a codeword shortened at the front).
    pub fn encode(&self, data: &[u8], parity: &mut [u8]) {
        let mut reg = [0u64; 3];
        for &d in data {
            let f = d ^ reg.low_byte();
            reg.shift_xor(&self.products[usize::from(f)]);
        }
        write_register(&reg, parity);
    }

    /// Encodes `block_len` codewords at once, codeword `b` made of byte `b`
    /// of each of the `255 − roots` columns: column `i` is
    /// `input[i * column_stride..][..block_len]`. Codeword `b`'s parity goes
    /// to `parity[b * roots..][..roots]`, which is how veritysetup writes it.
    pub fn encode_columns(
        &self,
        input: &[u8],
        column_stride: usize,
        block_len: usize,
        parity: &mut [u8],
    ) {
        match self.roots {
            0..=8 => self.encode_columns_as::<u64>(input, column_stride, block_len, parity),
            9..=16 => self.encode_columns_as::<[u64; 2]>(input, column_stride, block_len, parity),
            _ => self.encode_columns_as::<[u64; 3]>(input, column_stride, block_len, parity),
        }
    }

    /// `encode_columns` with registers just wide enough for the roots, so
    /// that the inner loop touches only the words it needs and the
    /// registers of a 4 KiB block stay in the L1 cache for up to 8 roots.
    fn encode_columns_as<R: Register>(
        &self,
        input: &[u8],
        column_stride: usize,
        block_len: usize,
        parity: &mut [u8],
    ) {
        let mut registers = vec![R::default(); block_len];
        for i in 0..self.data_len() {
            let start = i * column_stride;
            match input.get(start..start + block_len) {
                Some(column) => {
                    for (reg, &d) in registers.iter_mut().zip(column) {
                        let f = d ^ reg.low_byte();
                        reg.shift_xor(&self.products[usize::from(f)]);
                    }
                }
                // A column the input does not reach holds zeros (callers
                // always pass whole columns; this only keeps it total).
                None => {
                    for reg in registers.iter_mut() {
                        let f = reg.low_byte();
                        reg.shift_xor(&self.products[usize::from(f)]);
                    }
                }
            }
        }
        for (reg, out) in registers.iter().zip(parity.chunks_exact_mut(self.roots)) {
            write_register(&reg.words(), out);
        }
    }
}

/// A parity register of one, two or three little-endian words. Each width
/// is written out: a generic loop with a carry test is not unrolled at the
/// release profile's opt-level "s" and costs several times as much there.
trait Register: Copy + Default {
    /// The byte that leaves the register next.
    fn low_byte(&self) -> u8;
    /// Shifts out the low byte and adds the products row.
    fn shift_xor(&mut self, p: &[u64; 3]);
    /// All three words, zero-extended.
    fn words(&self) -> [u64; 3];
}

// The `as u8` casts below keep the low byte on purpose.
impl Register for u64 {
    fn low_byte(&self) -> u8 {
        *self as u8
    }
    fn shift_xor(&mut self, p: &[u64; 3]) {
        *self = (*self >> 8) ^ p[0];
    }
    fn words(&self) -> [u64; 3] {
        [*self, 0, 0]
    }
}

impl Register for [u64; 2] {
    fn low_byte(&self) -> u8 {
        self[0] as u8
    }
    fn shift_xor(&mut self, p: &[u64; 3]) {
        self[0] = ((self[0] >> 8) | (self[1] << 56)) ^ p[0];
        self[1] = (self[1] >> 8) ^ p[1];
    }
    fn words(&self) -> [u64; 3] {
        [self[0], self[1], 0]
    }
}

impl Register for [u64; 3] {
    fn low_byte(&self) -> u8 {
        self[0] as u8
    }
    fn shift_xor(&mut self, p: &[u64; 3]) {
        self[0] = ((self[0] >> 8) | (self[1] << 56)) ^ p[0];
        self[1] = ((self[1] >> 8) | (self[2] << 56)) ^ p[1];
        self[2] = (self[2] >> 8) ^ p[2];
    }
    fn words(&self) -> [u64; 3] {
        *self
    }
}

/// Copies the first `out.len()` bytes of a register, little-endian.
fn write_register(reg: &[u64; 3], out: &mut [u8]) {
    let mut bytes = [0u8; 24];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(reg) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b;
    }
}

/// The syndromes of a codeword (`data ‖ parity`, highest power first):
/// `c(α^i)` for i in 0..roots. All zero exactly when `c` is a codeword.
pub fn syndromes(codeword: &[u8], roots: usize) -> Vec<u8> {
    (0..roots)
        .map(|i| {
            let x = alpha_pow(i);
            // Horner's rule, highest power first.
            codeword.iter().fold(0u8, |acc, &c| mul(acc, x) ^ c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn field_tables_are_consistent() {
        // α generates the whole multiplicative group: 255 distinct powers.
        let mut seen = [false; 256];
        for i in 0..255 {
            let x = alpha_pow(i);
            assert!(!seen[usize::from(x)], "α^{i} repeats");
            seen[usize::from(x)] = true;
        }
        assert!(!seen[0]);
        assert_eq!(alpha_pow(8), 0x1d, "α^8 reduces by 0x11d");
        assert_eq!(mul(0x80, 2), 0x1d);
        assert_eq!(mul(3, 7), 9);
        for a in 0..=255u8 {
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
        }
    }

    #[test]
    fn generator_polynomials() {
        // Hand-computed: (x + 1)(x + 2) = x^2 + 3x + 2.
        let cases: [(&str, usize, &[u8]); 3] = [
            ("one root", 1, &[1, 1]),
            ("two roots", 2, &[2, 3, 1]),
            // (x^2 + 3x + 2)(x + 4) = x^3 + 7x^2 + (2 + 12)x + 8.
            ("three roots", 3, &[8, 14, 7, 1]),
        ];
        for (name, roots, want) in cases {
            assert_eq!(generator(roots), want, "{name}");
        }
        for roots in 2..=24 {
            let g = generator(roots);
            for i in 0..roots {
                let x = alpha_pow(i);
                let value = g.iter().rev().fold(0u8, |acc, &c| mul(acc, x) ^ c);
                assert_eq!(value, 0, "α^{i} is a root of g for {roots} roots");
            }
        }
    }

    #[test]
    fn known_vectors() {
        // Codeword of all-zero data is all zero; a single 1 in the last data
        // position gives the generator's low coefficients as parity (the
        // remainder of x^roots mod g is g − x^roots).
        let cases: [(&str, usize); 3] = [("2 roots", 2), ("13 roots", 13), ("24 roots", 24)];
        for (name, roots) in cases {
            let enc = Encoder::new(roots);
            let mut parity = vec![0xffu8; roots];
            enc.encode(&vec![0u8; enc.data_len()], &mut parity);
            assert!(parity.iter().all(|&p| p == 0), "{name}: zero data");

            let mut data = vec![0u8; enc.data_len()];
            data[enc.data_len() - 1] = 1;
            enc.encode(&data, &mut parity);
            let g = generator(roots);
            let want: Vec<u8> = g[..roots].iter().rev().copied().collect();
            assert_eq!(parity, want, "{name}: unit data");
        }
    }

    #[test]
    fn columns_match_single_codewords() {
        for roots in [2usize, 8, 9, 16, 17, 24] {
            let enc = Encoder::new(roots);
            let block_len = 37;
            let stride = 41;
            let input: Vec<u8> = (0..stride * enc.data_len())
                .map(|i| (i * 7 + i / 13) as u8)
                .collect();
            let mut parity = vec![0u8; block_len * roots];
            enc.encode_columns(&input, stride, block_len, &mut parity);
            for b in 0..block_len {
                let data: Vec<u8> = (0..enc.data_len()).map(|i| input[i * stride + b]).collect();
                let mut want = vec![0u8; roots];
                enc.encode(&data, &mut want);
                assert_eq!(
                    &parity[b * roots..][..roots],
                    &want[..],
                    "{roots} roots, codeword {b}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn codewords_have_zero_syndromes_and_errors_do_not(
            roots in 2usize..=24,
            seed in proptest::collection::vec(any::<u8>(), 253),
            flips in proptest::collection::vec((0usize..255, 1u8..=255), 1..=12),
        ) {
            let enc = Encoder::new(roots);
            let data = &seed[..enc.data_len()];
            let mut parity = vec![0u8; roots];
            enc.encode(data, &mut parity);
            let mut codeword = data.to_vec();
            codeword.extend_from_slice(&parity);
            prop_assert!(syndromes(&codeword, roots).iter().all(|&s| s == 0));

            // Up to roots / 2 symbol errors are correctable, so they can
            // never turn a codeword into another codeword (minimum distance
            // roots + 1): the syndromes must be non-zero.
            let mut positions = Vec::new();
            for (pos, xor) in flips.into_iter().take(roots / 2) {
                if !positions.contains(&pos) {
                    positions.push(pos);
                    codeword[pos] ^= xor;
                }
            }
            prop_assert!(syndromes(&codeword, roots).iter().any(|&s| s != 0));
        }
    }
}
