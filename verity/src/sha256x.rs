//! Multi-buffer SHA-256 for dm-verity: hashes several salted blocks of the
//! same length at once.
//!
//! Why this is hand-written: one SHA-256 stream is a serial chain of 64
//! rounds per block, so a core hashing one block at a time (the `sha2`
//! crate, ~1.3 GB/s with SHA-NI) leaves most of the machine idle. Hashing
//! several independent messages at once fills it. No well-kept crate offers
//! multi-buffer SHA-256, and dm-verity is the ideal case for it: every block
//! of a level has the same length, so every lane has the same length and
//! the same padding.
//!
//! Two engines, picked at run time:
//!
//! * **SHA-NI, 4 lanes** (`ni::compress`): the lanes' `sha256rnds2` chains
//!   interleaved. Measured on the 2-core Sapphire Rapids VM this was written
//!   on, this gains only ~10% over one stream: the SHA unit there is
//!   throughput-bound (`sha256rnds2`, `sha256msg1` and `sha256msg2` share
//!   it), not latency-bound. Kept for short batches and CPUs without
//!   AVX-512.
//! * **AVX-512, 16 lanes** (`ni::compress16`): the plain FIPS 180-4 round
//!   function on sixteen 32-bit lanes of a `zmm` register (rotates are one
//!   instruction, Ch/Maj/three-way XOR one `vpternlogd` each), words
//!   gathered from the 16 blocks. About twice the single-stream speed on
//!   that machine. Used for full batches of 16 when the CPU has SHA-NI *and*
//!   AVX-512F/BW (the SHA-NI lanes take the remainders).
//!
//! Written from FIPS 180-4 and Intel's SHA extensions and intrinsics
//! documentation. Each message is `head ‖ body ‖ tail` after a shared,
//! precomputed prefix:
//!
//! * type 1 (salt first): the salt's whole 64-byte blocks are compressed
//!   once into the prefix state; the salt's remaining bytes are the head;
//! * type 0 (salt last): no prefix and no head; the salt is the tail.
//!
//! The 64-byte chunks that lie wholly inside the body (whatever the head's
//! length: loads are unaligned) are read in place; the few chunks that
//! straddle the head, the tail or the padding are assembled in a stack
//! buffer per lane. Lengths are equal in every lane, so the layout is
//! computed once per batch.
//!
//! On CPUs without SHA-NI (or not x86-64) the `sha2` crate does the work,
//! one message at a time. This module holds the crate's other `unsafe`:
//! calling the `target_feature` functions after the runtime check,
//! unaligned SIMD loads and stores, and gathers.

use sha2::Digest;

use crate::HashType;

/// SHA-256 digest length in bytes.
pub const DIGEST_LEN: usize = 32;

/// Lanes hashed together with SHA-NI (measured on a 2-core Sapphire Rapids
/// VM: 1 lane 0.78, 2 lanes 0.70, 4 lanes 0.68 s of CPU per GiB; `sha2`
/// 0.77).
#[cfg(target_arch = "x86_64")]
const LANES: usize = 4;

/// Lanes hashed together with AVX-512 (same machine: 0.41–0.51 s of CPU
/// per GiB).
const WIDE_LANES: usize = 16;

/// The initial hash value (FIPS 180-4, 5.3.3).
#[cfg(target_arch = "x86_64")]
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The round constants (FIPS 180-4, 4.2.2).
#[cfg(target_arch = "x86_64")]
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 of `salt ‖ message` (type 1) or `message ‖ salt` (type 0), for
/// many messages.
#[derive(Debug, Clone)]
pub struct SaltedSha256 {
    hash_type: HashType,
    salt: Vec<u8>,
    engine: Engine,
}

#[derive(Debug, Clone)]
enum Engine {
    /// SHA-NI lanes: the state after the salt's whole blocks (type 1) or
    /// the initial state (type 0), and how many bytes it covers.
    #[cfg(target_arch = "x86_64")]
    ShaNi {
        prefix: [u32; 8],
        prefix_bytes: u64,
        /// The CPU also has AVX-512 (F and BW): 16-lane batches.
        wide: bool,
    },
    /// The `sha2` crate, with the salt already hashed for type 1.
    Portable { base: sha2::Sha256 },
}

/// Whether this CPU has the instructions the SHA-NI lanes use. `std`
/// caches the answer after the first call (an atomic load afterwards), and
/// each [`SaltedSha256`] asks once.
#[cfg(target_arch = "x86_64")]
fn sha_ni_available() -> bool {
    std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse2")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

impl SaltedSha256 {
    /// A hasher for this hash type and salt, using SHA-NI where the CPU has
    /// it.
    pub fn new(hash_type: HashType, salt: &[u8]) -> Self {
        #[cfg(target_arch = "x86_64")]
        if sha_ni_available() {
            let mut prefix = [H0];
            let mut prefix_bytes = 0;
            if hash_type == HashType::Normal {
                let whole = salt.len() / 64 * 64;
                // SAFETY: the CPU has SHA-NI, SSE2, SSSE3 and SSE4.1
                // (checked just above), the features `compress` enables.
                unsafe { ni::compress::<1>(&mut prefix, [&salt[..whole]]) };
                prefix_bytes = whole as u64;
            }
            let [prefix] = prefix;
            return SaltedSha256 {
                hash_type,
                salt: salt.to_vec(),
                engine: Engine::ShaNi {
                    prefix,
                    prefix_bytes,
                    wide: std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512bw"),
                },
            };
        }
        Self::portable(hash_type, salt)
    }

    /// A hasher that uses the `sha2` crate whatever the CPU.
    pub fn portable(hash_type: HashType, salt: &[u8]) -> Self {
        let mut base = sha2::Sha256::new();
        if hash_type == HashType::Normal {
            base.update(salt);
        }
        SaltedSha256 {
            hash_type,
            salt: salt.to_vec(),
            engine: Engine::Portable { base },
        }
    }

    /// Whether the SHA-NI lanes are in use.
    pub fn is_accelerated(&self) -> bool {
        !matches!(self.engine, Engine::Portable { .. })
    }

    /// The salted digest of one message.
    pub fn digest(&self, message: &[u8]) -> [u8; DIGEST_LEN] {
        let mut out = [[0u8; DIGEST_LEN]];
        self.digest_many(&[message], &mut out);
        out[0]
    }

    /// Writes the salted digest of `messages[i]` to `out[i]`, for each `i`
    /// below the shorter length. Messages of equal length (dm-verity's
    /// case) are hashed several at a time; others one by one.
    pub fn digest_many(&self, messages: &[&[u8]], out: &mut [[u8; DIGEST_LEN]]) {
        let n = messages.len().min(out.len());
        let (messages, out) = (&messages[..n], &mut out[..n]);
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::ShaNi {
                prefix,
                prefix_bytes,
                wide,
            } => {
                let (head, tail): (&[u8], &[u8]) = match self.hash_type {
                    HashType::Normal => (&self.salt[*prefix_bytes as usize..], &[]),
                    HashType::ChromeOs => (&[], &self.salt),
                };
                let job = ni::Job {
                    prefix,
                    prefix_bytes: *prefix_bytes,
                    head,
                    tail,
                };
                let mut i = 0;
                while i < n {
                    let len = messages[i].len();
                    let same = messages[i..]
                        .iter()
                        .take(if *wide { WIDE_LANES } else { LANES })
                        .take_while(|m| m.len() == len)
                        .count();
                    let at = &mut out[i..i + same];
                    let m = &messages[i..i + same];
                    // SAFETY: `ni::hash` needs the features
                    // `sha_ni_available` found, which is the only way to
                    // build an `Engine::ShaNi`; `ni::hash16` needs AVX-512F
                    // and BW, which `wide` says the CPU has.
                    unsafe {
                        match same {
                            WIDE_LANES if *wide => {
                                at.copy_from_slice(&ni::hash16(&job, std::array::from_fn(|l| m[l])))
                            }
                            5.. => {
                                at[..4].copy_from_slice(&ni::hash::<4>(
                                    &job,
                                    [m[0], m[1], m[2], m[3]],
                                ));
                                i += 4;
                                continue;
                            }
                            4 => at.copy_from_slice(&ni::hash::<4>(&job, [m[0], m[1], m[2], m[3]])),
                            2 | 3 => {
                                at[..2].copy_from_slice(&ni::hash::<2>(&job, [m[0], m[1]]));
                                if same == 3 {
                                    at[2] = ni::hash::<1>(&job, [m[2]])[0];
                                }
                            }
                            _ => at[0] = ni::hash::<1>(&job, [m[0]])[0],
                        }
                    }
                    i += same;
                }
            }
            Engine::Portable { base } => {
                for (m, o) in messages.iter().zip(out) {
                    let mut h = base.clone();
                    h.update(m);
                    if self.hash_type == HashType::ChromeOs {
                        h.update(&self.salt);
                    }
                    o.copy_from_slice(&h.finalize());
                }
            }
        }
    }

    /// Hashes each `block_len`-byte block of `data` (a trailing partial
    /// block is ignored, and so is everything if `block_len` is 0) and
    /// calls `emit(index, digest)` for each, in order.
    pub fn digest_each(
        &self,
        data: &[u8],
        block_len: usize,
        mut emit: impl FnMut(usize, &[u8; DIGEST_LEN]),
    ) {
        if block_len == 0 {
            return;
        }
        const BATCH: usize = 2 * WIDE_LANES;
        let mut out = [[0u8; DIGEST_LEN]; BATCH];
        let mut slices: [&[u8]; BATCH] = [&[]; BATCH];
        let mut index = 0;
        for group in data.chunks(BATCH * block_len) {
            let mut n = 0;
            for block in group.chunks_exact(block_len) {
                slices[n] = block;
                n += 1;
            }
            self.digest_many(&slices[..n], &mut out[..n]);
            for d in &out[..n] {
                emit(index, d);
                index += 1;
            }
        }
    }
}

/// The SHA-NI lanes. Every function here needs SHA, SSE2, SSSE3 and
/// SSE4.1; callers check with [`sha_ni_available`] first.
#[cfg(target_arch = "x86_64")]
mod ni {
    use std::arch::x86_64::{
        __m128i, __m512i, _mm_add_epi32, _mm_alignr_epi8, _mm_loadu_si128, _mm_set_epi32,
        _mm_set_epi64x, _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32,
        _mm_shuffle_epi8, _mm_shuffle_epi32, _mm_storeu_si128, _mm512_add_epi32, _mm512_add_epi64,
        _mm512_castsi256_si512, _mm512_i64gather_epi32, _mm512_inserti64x4, _mm512_loadu_si512,
        _mm512_ror_epi32, _mm512_set_epi64, _mm512_set1_epi32, _mm512_set1_epi64,
        _mm512_shuffle_epi8, _mm512_srli_epi32, _mm512_storeu_si512, _mm512_ternarylogic_epi32,
    };

    use super::{DIGEST_LEN, K};

    /// What every lane of a batch shares.
    pub(super) struct Job<'a> {
        /// The state after the shared prefix.
        pub prefix: &'a [u32; 8],
        /// Bytes the prefix covers (a multiple of 64).
        pub prefix_bytes: u64,
        /// Bytes before each body.
        pub head: &'a [u8],
        /// Bytes after each body.
        pub tail: &'a [u8],
    }

    /// Hashes `head ‖ bodies[l] ‖ tail` after the prefix, for each lane
    /// `l`. All bodies must have the same length.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) fn hash<const N: usize>(job: &Job<'_>, bodies: [&[u8]; N]) -> [[u8; DIGEST_LEN]; N] {
        drive(job, bodies, |s, d| compress(s, d))
    }

    /// Hashes 16 lanes with AVX-512 (no SHA-NI): `hash` for wide batches.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn hash16(job: &Job<'_>, bodies: [&[u8]; 16]) -> [[u8; DIGEST_LEN]; 16] {
        drive(job, bodies, |s, d| compress16(s, d))
    }

    /// Pads and feeds the lanes to `compress`.
    #[inline(always)]
    fn drive<const N: usize>(
        job: &Job<'_>,
        bodies: [&[u8]; N],
        mut compress: impl FnMut(&mut [[u32; 8]; N], [&[u8]; N]),
    ) -> [[u8; DIGEST_LEN]; N] {
        let h = job.head.len();
        let b = bodies[0].len();
        let m = h + b + job.tail.len();
        // Message, 0x80, zeros, 64-bit length: whole 64-byte blocks.
        let blocks = (m + 9).div_ceil(64);
        let bits = (job.prefix_bytes + m as u64).wrapping_mul(8);
        // Chunks `first..end` lie wholly inside the body: read in place.
        let first = h.div_ceil(64);
        let end = ((h + b) / 64).max(first);
        let mut state = [*job.prefix; N];
        let mut buf = [[0u8; 64]; N];
        for k in 0..first {
            for l in 0..N {
                assemble(k, job, bodies[l], m, blocks, bits, &mut buf[l]);
            }
            compress(&mut state, std::array::from_fn(|l| &buf[l][..]));
        }
        if end > first {
            let range = first * 64 - h..end * 64 - h;
            compress(
                &mut state,
                std::array::from_fn(|l| &bodies[l][range.clone()]),
            );
        }
        for k in end..blocks {
            for l in 0..N {
                assemble(k, job, bodies[l], m, blocks, bits, &mut buf[l]);
            }
            compress(&mut state, std::array::from_fn(|l| &buf[l][..]));
        }
        std::array::from_fn(|l| {
            let mut d = [0u8; DIGEST_LEN];
            for (bytes, word) in d.chunks_exact_mut(4).zip(state[l]) {
                bytes.copy_from_slice(&word.to_be_bytes());
            }
            d
        })
    }

    /// Builds padded chunk `k` of `head ‖ body ‖ tail ‖ padding` (the
    /// message is `m` bytes, the padded remainder `blocks` chunks, the whole
    /// message with its prefix `bits` bits).
    fn assemble(
        k: usize,
        job: &Job<'_>,
        body: &[u8],
        m: usize,
        blocks: usize,
        bits: u64,
        buf: &mut [u8; 64],
    ) {
        *buf = [0; 64];
        let start = k * 64;
        let h = job.head.len();
        for (at, part) in [(0, job.head), (h, body), (h + body.len(), job.tail)] {
            // The overlap of `part` (at `at..at + len`) with this chunk.
            let from = start.max(at);
            let to = (start + 64).min(at + part.len());
            if from < to {
                buf[from - start..to - start].copy_from_slice(&part[from - at..to - at]);
            }
        }
        if (start..start + 64).contains(&m) {
            buf[m - start] = 0x80;
        }
        if k + 1 == blocks {
            buf[56..].copy_from_slice(&bits.to_be_bytes());
        }
    }

    /// Runs the compression function over each lane's 64-byte blocks (all
    /// `data[l]` have the same length, a multiple of 64), rounds of the
    /// lanes interleaved so one lane's `sha256rnds2` latency overlaps the
    /// others'.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) fn compress<const N: usize>(state: &mut [[u32; 8]; N], data: [&[u8]; N]) {
        // Byte-swaps each 32-bit word: message words are big-endian.
        let swap = _mm_set_epi64x(0x0c0d0e0f_08090a0b, 0x04050607_00010203);
        let k: [__m128i; 16] = std::array::from_fn(|g| {
            _mm_set_epi32(
                K[4 * g + 3] as i32,
                K[4 * g + 2] as i32,
                K[4 * g + 1] as i32,
                K[4 * g] as i32,
            )
        });
        // Intel's layout: ABEF = (A, B, E, F) from the high dword down,
        // CDGH likewise.
        let mut abef: [__m128i; N] = std::array::from_fn(|l| {
            let s = state[l].map(|w| w as i32);
            _mm_set_epi32(s[0], s[1], s[4], s[5])
        });
        let mut cdgh: [__m128i; N] = std::array::from_fn(|l| {
            let s = state[l].map(|w| w as i32);
            _mm_set_epi32(s[2], s[3], s[6], s[7])
        });
        let blocks = data[0].len() / 64;
        for blk in 0..blocks {
            let (abef0, cdgh0) = (abef, cdgh);
            let mut w: [[__m128i; 4]; N] = std::array::from_fn(|l| {
                let chunk = &data[l][blk * 64..blk * 64 + 64];
                std::array::from_fn(|i| {
                    let part = &chunk[16 * i..16 * i + 16];
                    // SAFETY: `part` is 16 readable bytes; `loadu` has no
                    // alignment requirement.
                    _mm_shuffle_epi8(unsafe { _mm_loadu_si128(part.as_ptr().cast()) }, swap)
                })
            });
            // Four rounds per group `g`; `w[l][g % 4]` holds W[4g..4g + 4].
            macro_rules! group {
                ($g:expr) => {
                    for l in 0..N {
                        let w = &mut w[l];
                        if $g >= 4 {
                            // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
                            let t7 = _mm_alignr_epi8::<4>(w[($g + 3) % 4], w[($g + 2) % 4]);
                            let x = _mm_sha256msg1_epu32(w[$g % 4], w[($g + 1) % 4]);
                            w[$g % 4] = _mm_sha256msg2_epu32(_mm_add_epi32(x, t7), w[($g + 3) % 4]);
                        }
                        let wk = _mm_add_epi32(w[$g % 4], k[$g]);
                        // Two rounds each; the old ABEF becomes the new CDGH.
                        cdgh[l] = _mm_sha256rnds2_epu32(cdgh[l], abef[l], wk);
                        abef[l] =
                            _mm_sha256rnds2_epu32(abef[l], cdgh[l], _mm_shuffle_epi32::<0x0e>(wk));
                    }
                };
            }
            group!(0);
            group!(1);
            group!(2);
            group!(3);
            group!(4);
            group!(5);
            group!(6);
            group!(7);
            group!(8);
            group!(9);
            group!(10);
            group!(11);
            group!(12);
            group!(13);
            group!(14);
            group!(15);
            for l in 0..N {
                abef[l] = _mm_add_epi32(abef[l], abef0[l]);
                cdgh[l] = _mm_add_epi32(cdgh[l], cdgh0[l]);
            }
        }
        for l in 0..N {
            let (mut x, mut y) = ([0u32; 4], [0u32; 4]);
            // SAFETY: `x` and `y` are 16 writable bytes each; `storeu` has
            // no alignment requirement.
            unsafe {
                _mm_storeu_si128(x.as_mut_ptr().cast(), abef[l]);
                _mm_storeu_si128(y.as_mut_ptr().cast(), cdgh[l]);
            }
            // x = [F, E, B, A], y = [H, G, D, C] from the low dword up.
            state[l] = [x[3], x[2], y[3], y[2], x[1], x[0], y[1], y[0]];
        }
    }

    /// The compression function on 16 lanes at once, one lane per 32-bit
    /// element of a 512-bit vector, straight from FIPS 180-4 6.2.2.
    #[target_feature(enable = "avx512f,avx512bw")]
    fn compress16(state: &mut [[u32; 8]; 16], data: [&[u8]; 16]) {
        let blocks = data[0].len() / 64;
        if blocks == 0 {
            return;
        }
        let base = data[0].as_ptr();
        let offsets: [i64; 16] =
            std::array::from_fn(|l| (data[l].as_ptr() as i64).wrapping_sub(base as i64));
        // SAFETY: `offsets` is 128 readable bytes; `loadu` has no alignment
        // requirement.
        let (lo, hi) = unsafe {
            (
                _mm512_loadu_si512(offsets[..8].as_ptr().cast()),
                _mm512_loadu_si512(offsets[8..].as_ptr().cast()),
            )
        };
        let swap = _mm512_set_epi64(
            0x0c0d0e0f_08090a0b,
            0x04050607_00010203,
            0x0c0d0e0f_08090a0b,
            0x04050607_00010203,
            0x0c0d0e0f_08090a0b,
            0x04050607_00010203,
            0x0c0d0e0f_08090a0b,
            0x04050607_00010203,
        );
        let load = |col: [u32; 16]| {
            // SAFETY: `col` is 64 readable bytes; `loadu` has no alignment
            // requirement.
            unsafe { _mm512_loadu_si512(col.as_ptr().cast()) }
        };
        let mut s: [__m512i; 8] =
            std::array::from_fn(|i| load(std::array::from_fn(|l| state[l][i])));
        macro_rules! xor3 {
            ($a:expr, $b:expr, $c:expr) => {
                _mm512_ternarylogic_epi32::<0x96>($a, $b, $c)
            };
        }
        for blk in 0..blocks {
            let mut w: [__m512i; 16] = std::array::from_fn(|t| {
                let at = _mm512_set1_epi64((blk * 64 + 4 * t) as i64);
                // SAFETY: lane `l` reads 4 bytes at `data[l][blk * 64 + 4t..]`,
                // inside `data[l]` (every lane holds `blocks` whole blocks).
                let (a, b) = unsafe {
                    (
                        _mm512_i64gather_epi32::<1>(_mm512_add_epi64(lo, at), base.cast()),
                        _mm512_i64gather_epi32::<1>(_mm512_add_epi64(hi, at), base.cast()),
                    )
                };
                _mm512_shuffle_epi8(_mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b), swap)
            });
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = s;
            // Round `16 * r + i`; `w[i]` holds W[16r + i]. Unrolled by 16
            // so `w` stays in registers.
            macro_rules! round {
                ($r:expr, $i:expr) => {
                    if $r > 0 {
                        // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
                        let x = w[($i + 1) % 16];
                        let y = w[($i + 14) % 16];
                        let s0 = xor3!(
                            _mm512_ror_epi32::<7>(x),
                            _mm512_ror_epi32::<18>(x),
                            _mm512_srli_epi32::<3>(x)
                        );
                        let s1 = xor3!(
                            _mm512_ror_epi32::<17>(y),
                            _mm512_ror_epi32::<19>(y),
                            _mm512_srli_epi32::<10>(y)
                        );
                        w[$i] = _mm512_add_epi32(
                            _mm512_add_epi32(w[$i], s0),
                            _mm512_add_epi32(w[($i + 9) % 16], s1),
                        );
                    }
                    let big1 = xor3!(
                        _mm512_ror_epi32::<6>(e),
                        _mm512_ror_epi32::<11>(e),
                        _mm512_ror_epi32::<25>(e)
                    );
                    // Ch(e, f, g) = e ? f : g.
                    let ch = _mm512_ternarylogic_epi32::<0xca>(e, f, g);
                    let t1 = _mm512_add_epi32(
                        _mm512_add_epi32(h, big1),
                        _mm512_add_epi32(
                            ch,
                            _mm512_add_epi32(w[$i], _mm512_set1_epi32(K[16 * $r + $i] as i32)),
                        ),
                    );
                    let big0 = xor3!(
                        _mm512_ror_epi32::<2>(a),
                        _mm512_ror_epi32::<13>(a),
                        _mm512_ror_epi32::<22>(a)
                    );
                    // Maj(a, b, c): the majority of each bit.
                    let maj = _mm512_ternarylogic_epi32::<0xe8>(a, b, c);
                    h = g;
                    g = f;
                    f = e;
                    e = _mm512_add_epi32(d, t1);
                    d = c;
                    c = b;
                    b = a;
                    a = _mm512_add_epi32(t1, _mm512_add_epi32(big0, maj));
                };
            }
            for r in 0..4 {
                round!(r, 0);
                round!(r, 1);
                round!(r, 2);
                round!(r, 3);
                round!(r, 4);
                round!(r, 5);
                round!(r, 6);
                round!(r, 7);
                round!(r, 8);
                round!(r, 9);
                round!(r, 10);
                round!(r, 11);
                round!(r, 12);
                round!(r, 13);
                round!(r, 14);
                round!(r, 15);
            }
            for (x, y) in s.iter_mut().zip([a, b, c, d, e, f, g, h]) {
                *x = _mm512_add_epi32(*x, y);
            }
        }
        for (i, v) in s.into_iter().enumerate() {
            let mut col = [0u32; 16];
            // SAFETY: `col` is 64 writable bytes; `storeu` has no alignment
            // requirement.
            unsafe { _mm512_storeu_si512(col.as_mut_ptr().cast(), v) };
            for (l, word) in col.into_iter().enumerate() {
                state[l][i] = word;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sha2::Digest;

    use super::*;

    fn oracle(ty: HashType, salt: &[u8], m: &[u8]) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        match ty {
            HashType::Normal => {
                h.update(salt);
                h.update(m);
            }
            HashType::ChromeOs => {
                h.update(m);
                h.update(salt);
            }
        }
        h.finalize().into()
    }

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn fips_vectors() {
        for hasher in [
            SaltedSha256::new(HashType::Normal, b""),
            SaltedSha256::portable(HashType::Normal, b""),
        ] {
            assert_eq!(
                hex(&hasher.digest(b"abc")),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            );
            assert_eq!(
                hex(&hasher.digest(b"")),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            );
            assert_eq!(
                hex(&hasher.digest(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            );
        }
        // "abc" split between salt and message, both ways.
        let d = SaltedSha256::new(HashType::Normal, b"a").digest(b"bc");
        assert_eq!(d, SaltedSha256::new(HashType::ChromeOs, b"c").digest(b"ab"));
        assert_eq!(
            hex(&d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn uses_sha_ni_where_the_cpu_has_it() {
        assert_eq!(
            SaltedSha256::new(HashType::Normal, b"").is_accelerated(),
            sha_ni_available()
        );
        assert!(!SaltedSha256::portable(HashType::Normal, b"").is_accelerated());
    }

    fn lengths() -> impl Strategy<Value = usize> {
        prop_oneof![
            prop::sample::select(vec![
                0usize, 1, 55, 56, 63, 64, 65, 119, 120, 512, 4096, 65536
            ]),
            0usize..5000,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn lanes_match_sha2(
            chrome_os in any::<bool>(),
            salt in prop::collection::vec(any::<u8>(), 0..=256),
            len in lengths(),
            lanes in 0usize..40,
            odd in prop::option::of(0usize..10),
            seed in any::<u8>(),
        ) {
            let ty = if chrome_os { HashType::ChromeOs } else { HashType::Normal };
            let data: Vec<Vec<u8>> = (0..lanes)
                .map(|l| {
                    // One lane of another length now and then.
                    let n = if odd == Some(l) { len / 2 + 1 } else { len };
                    (0..n).map(|i| (i as u8).wrapping_mul(seed | 1) ^ (l as u8) ^ (i >> 8) as u8).collect()
                })
                .collect();
            let messages: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            for hasher in [SaltedSha256::new(ty, &salt), SaltedSha256::portable(ty, &salt)] {
                let mut out = vec![[0u8; 32]; lanes];
                hasher.digest_many(&messages, &mut out);
                for (m, d) in messages.iter().zip(&out) {
                    prop_assert_eq!(*d, oracle(ty, &salt, m));
                }
            }
        }

        #[test]
        fn each_block_matches_sha2(
            chrome_os in any::<bool>(),
            salt in prop::collection::vec(any::<u8>(), 0..=256),
            block_len in prop::sample::select(vec![1usize, 32, 55, 64, 65, 512, 4096]),
            blocks in 0usize..40,
            extra in 0usize..3,
        ) {
            let ty = if chrome_os { HashType::ChromeOs } else { HashType::Normal };
            let data: Vec<u8> = (0..blocks * block_len + extra).map(|i| (i * 7 + (i >> 9)) as u8).collect();
            let hasher = SaltedSha256::new(ty, &salt);
            let mut seen = 0;
            hasher.digest_each(&data, block_len, |i, d| {
                assert_eq!(i, seen);
                assert_eq!(*d, oracle(ty, &salt, &data[i * block_len..(i + 1) * block_len]));
                seen += 1;
            });
            prop_assert_eq!(seen, data.len() / block_len);
        }
    }

    #[test]
    fn fallback_gives_the_same_digests() {
        let data: Vec<u8> = (0..16 * 4096u32).map(|i| (i % 251) as u8).collect();
        for ty in [HashType::Normal, HashType::ChromeOs] {
            for salt in [
                &[][..],
                &[0u8],
                &[7u8; 32],
                &[9u8; 64],
                &[3u8; 100],
                &[1u8; 256],
            ] {
                let fast = SaltedSha256::new(ty, salt);
                let slow = SaltedSha256::portable(ty, salt);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                fast.digest_each(&data, 4096, |_, d| a.push(*d));
                slow.digest_each(&data, 4096, |_, d| b.push(*d));
                assert_eq!(a, b);
                assert_eq!(a.len(), 16);
            }
        }
    }
}
