//! Row operations between activation rows of any storage type ([`Act`]) and f32 rows, for
//! the training head (`head::GroupSum`): it sums the last layer's rows into f32 scores and
//! writes its gradient back into activation-gradient rows.
//!
//! They are dispatched like the layer kernels so that bf16 and f16 rows are widened and
//! rounded with SIMD conversions (a scalar f16 conversion per value would cost as much as the
//! head itself). Each sum runs over the rows in order, per sample, so f32 rows give exactly
//! the sums of a plain loop. Rows of any length work; a tail shorter than 16 converts one
//! value at a time.

use super::act::Act;
use super::kernel::LANES;
use super::lanes::Lanes;
use super::simd::dispatch;

/// Chunks of 16 per tile: a tile's sums (or values) stay in four registers while every row
/// streams past, so each row is read or written as one contiguous run of 64 samples.
const TILE: usize = 4;

#[inline(always)]
fn add_rows_any<S: Lanes, A: Act>(rows: &[A], acc: &mut [f32]) {
    let bs = acc.len();
    assert!(bs > 0 && rows.len().is_multiple_of(bs));
    let full = bs - bs % LANES;
    for t in (0..full).step_by(TILE * LANES) {
        let n = ((full - t) / LANES).min(TILE);
        // `acc` and every row hold `bs` values, and t + 16 · n <= full <= bs, which makes
        // every access below in bounds.
        let mut sum: [S::V; TILE] = std::array::from_fn(|i| {
            if i < n {
                // SAFETY: in bounds (above).
                unsafe { S::load(acc.as_ptr().add(t + i * LANES)) }
            } else {
                S::splat(0.0)
            }
        });
        for row in rows.chunks_exact(bs) {
            for (i, s) in sum.iter_mut().enumerate().take(n) {
                // SAFETY: in bounds (above).
                let x = unsafe { A::load::<S>(row.as_ptr().add(t + i * LANES)) };
                *s = S::add(*s, x);
            }
        }
        for (i, s) in sum.iter().enumerate().take(n) {
            // SAFETY: in bounds (above).
            unsafe { S::store(acc.as_mut_ptr().add(t + i * LANES), *s) };
        }
    }
    for row in rows.chunks_exact(bs) {
        for (a, &x) in acc[full..].iter_mut().zip(&row[full..]) {
            *a += x.to_f32();
        }
    }
}

dispatch! {
    /// `acc[s] += Σ_r rows[r][s]`, rows in order (`rows` is `[n][bs]`, `acc` `[bs]`).
    pub fn add_rows<A: Act> / add_rows_at (rows: &[A], acc: &mut [f32]) => add_rows_any;
}

#[inline(always)]
fn fill_rows_div_any<S: Lanes, A: Act>(src: &[f32], div: f32, rows: &mut [A]) {
    let bs = src.len();
    assert!(bs > 0 && rows.len().is_multiple_of(bs));
    let full = bs - bs % LANES;
    for row in rows.chunks_exact_mut(bs) {
        for (r, &x) in row[full..].iter_mut().zip(&src[full..]) {
            *r = A::from_f32(x / div);
        }
    }
    let d = S::splat(div);
    for t in (0..full).step_by(TILE * LANES) {
        let n = ((full - t) / LANES).min(TILE);
        // Divided in registers: a copy from memory would become a `memcpy` call per row.
        let v: [S::V; TILE] = std::array::from_fn(|i| {
            if i < n {
                // SAFETY: `src` holds `bs` floats and t + 16 · n <= full <= bs.
                S::div(unsafe { S::load(src.as_ptr().add(t + i * LANES)) }, d)
            } else {
                d
            }
        });
        // A constant count per instance: with a variable one, the compiler turns the f32
        // stores into a `memcpy` call per row.
        match n {
            4 => store_tile::<S, A, 4>(&v, rows, bs, t),
            3 => store_tile::<S, A, 3>(&v, rows, bs, t),
            2 => store_tile::<S, A, 2>(&v, rows, bs, t),
            _ => store_tile::<S, A, 1>(&v, rows, bs, t),
        }
    }
}

/// `v[..N]` into samples `t..t + 16 N` of every row (`N <= TILE`, t + 16 N <= bs).
#[inline(always)]
fn store_tile<S: Lanes, A: Act, const N: usize>(
    v: &[S::V; TILE],
    rows: &mut [A],
    bs: usize,
    t: usize,
) {
    assert!(N <= TILE && t + N * LANES <= bs);
    for row in rows.chunks_exact_mut(bs) {
        for (i, v) in v.iter().enumerate().take(N) {
            // SAFETY: every row holds `bs` values and t + 16 N <= bs (asserted).
            unsafe { A::store::<S>(row.as_mut_ptr().add(t + i * LANES), *v) };
        }
    }
}

dispatch! {
    /// Every row of `rows` (`[n][bs]`) becomes `src / div` (`src` is `[bs]`).
    pub fn fill_rows_div<A: Act> / fill_rows_div_at (src: &[f32], div: f32, rows: &mut [A]) => fill_rows_div_any;
}

/// Bit k of the result is set when byte k of `x` is nonzero.
#[inline(always)]
fn nonzero_bytes(x: u64) -> u8 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // Bit 7 of each byte: set by the byte's own top bit, or by the carry out of its low seven.
    let top = (((x & LOW7) + LOW7) | x) & !LOW7;
    // Byte k's flag (bit 8k + 7) moves to bit 56 + k; no two products meet above bit 55.
    ((top >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

/// The transpose of an 8×8 bit matrix held as bytes (bit c of byte r is entry (r, c)): three
/// rounds of swapping blocks across the diagonal (Hacker's Delight, 7–3).
#[inline(always)]
fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^ t ^ (t << 28)
}

// Dispatched like the other row operations (`dispatch!` passes the lanes type); its
// integer code has no use for the lanes.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)]
fn bit_rows_any<S: Lanes, A: Act>(bits: &[u8], dim: usize, samples: &[usize], rows: &mut [A]) {
    assert!(dim > 0 && rows.len().is_multiple_of(dim));
    let bs = rows.len() / dim;
    assert!(bs.is_multiple_of(LANES) && samples.len() <= bs);
    assert!(samples.iter().all(|&i| (i + 1) * dim <= bits.len()));
    // The values of eight consecutive samples for each pattern of their bits.
    // (On the stack: a step allocates nothing.)
    let octets: [[A; 8]; 256] =
        std::array::from_fn(|m| std::array::from_fn(|k| A::from_bit((m >> k) as u8 & 1)));
    // Sixteen samples at a time, 64 features of each: every eight bytes of a sample become
    // eight flag bits, two 8×8 transposes turn eight features' flags into one 16-bit pattern
    // per feature, and each pattern writes its row's 16 values from `octets`. Reading bytes
    // one sample at a time and writing values one at a time cost a few cycles per value,
    // for tens of thousands of values in every block.
    // `flags[g][s]`: bit k is set when feature f0 + 8g + k of sample s is nonzero.
    let mut flags = [[0u8; LANES]; 8];
    for c in (0..bs).step_by(LANES) {
        let chunk = &samples[c.min(samples.len())..(c + LANES).min(samples.len())];
        for f0 in (0..dim).step_by(64) {
            let nf = (dim - f0).min(64);
            for (s, &i) in chunk.iter().enumerate() {
                let from = &bits[i * dim + f0..i * dim + f0 + nf];
                for (g, word) in from.chunks(8).enumerate() {
                    flags[g][s] = nonzero_bytes(match <[u8; 8]>::try_from(word) {
                        Ok(b) => u64::from_le_bytes(b),
                        Err(_) => {
                            let mut b = [0u8; 8];
                            b[..word.len()].copy_from_slice(word);
                            u64::from_le_bytes(b)
                        }
                    });
                }
            }
            for (g, group) in flags.iter_mut().enumerate().take(nf.div_ceil(8)) {
                group[chunk.len()..].fill(0);
                let half = |h: usize| {
                    let b: [u8; 8] = group[8 * h..8 * h + 8].try_into().expect("8 samples");
                    transpose8(u64::from_le_bytes(b))
                };
                let (lo, hi) = (half(0), half(1));
                for k in 0..(nf - 8 * g).min(8) {
                    let at = (f0 + 8 * g + k) * bs + c;
                    let row = &mut rows[at..at + LANES];
                    row[..8].copy_from_slice(&octets[(lo >> (8 * k)) as u8 as usize]);
                    row[8..].copy_from_slice(&octets[(hi >> (8 * k)) as u8 as usize]);
                }
            }
        }
    }
}

dispatch! {
    /// A block's input rows from encoded samples: `rows[f][s] = bits[samples[s] · dim + f]`
    /// as 0 or 1 (`bits` is `[n][dim]`, `rows` `[dim][bs]`; samples past the block's last
    /// are 0).
    pub fn bit_rows<A: Act> / bit_rows_at (bits: &[u8], dim: usize, samples: &[usize], rows: &mut [A]) => bit_rows_any;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::simd::SimdLevel;
    use crate::layer::{Bf16, F16};
    use crate::rng::Rng;

    fn check<A: Act>(dim: usize) {
        let mut r = Rng::new(3);
        let (n, bs) = (40, 48);
        // Encoders write 0 and 1; any other nonzero byte also reads as 1.
        let bits: Vec<u8> = (0..n * dim).map(|_| [0, 1, 1, 0, 7][r.below(5)]).collect();
        // A short block (the last of an epoch): 35 samples in a 48-sample row.
        let samples: Vec<usize> = (0..35).map(|_| r.below(n)).collect();
        for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
            let mut rows = vec![A::ONE; dim * bs];
            bit_rows_at(level, &bits, dim, &samples, &mut rows);
            for f in 0..dim {
                for s in 0..bs {
                    let want = samples
                        .get(s)
                        .map_or(A::ZERO, |&i| A::from_bit(bits[i * dim + f]));
                    assert_eq!(
                        rows[f * bs + s],
                        want,
                        "{} {level:?} feature {f} sample {s}",
                        A::NAME
                    );
                }
            }
        }
    }

    #[test]
    fn byte_flags_and_bit_transposes_match_their_definitions() {
        let mut r = Rng::new(5);
        for _ in 0..2000 {
            let bytes: [u8; 8] = std::array::from_fn(|_| [0, 1, 0x80, 0x7F, 255, 2][r.below(6)]);
            let want = (0..8).fold(0u8, |m, k| m | (u8::from(bytes[k] != 0) << k));
            assert_eq!(nonzero_bytes(u64::from_le_bytes(bytes)), want, "{bytes:?}");
            let x = u64::from_le_bytes(std::array::from_fn(|_| r.below(256) as u8));
            let t = transpose8(x);
            for (row, col) in (0..8).flat_map(|a| (0..8).map(move |b| (a, b))) {
                assert_eq!((x >> (8 * row + col)) & 1, (t >> (8 * col + row)) & 1);
            }
        }
    }

    #[test]
    fn bit_rows_transpose_the_block_and_zero_its_tail() {
        // Less than one 64-feature group, and two groups and a part (with a partial word).
        for dim in [37, 150] {
            check::<f32>(dim);
            check::<Bf16>(dim);
            check::<F16>(dim);
        }
    }
}
