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

#[inline(always)]
fn bit_rows_any<S: Lanes, A: Act>(bits: &[u8], dim: usize, samples: &[usize], rows: &mut [A]) {
    assert!(dim > 0 && rows.len().is_multiple_of(dim));
    let bs = rows.len() / dim;
    assert!(bs.is_multiple_of(LANES) && samples.len() <= bs);
    assert!(samples.iter().all(|&i| (i + 1) * dim <= bits.len()));
    let mut lane = [0f32; LANES];
    for c in (0..bs).step_by(LANES) {
        let chunk = &samples[c.min(samples.len())..(c + LANES).min(samples.len())];
        let mut from = [bits.as_ptr(); LANES];
        for (p, &i) in from.iter_mut().zip(chunk) {
            *p = bits[i * dim..].as_ptr();
        }
        lane.iter_mut().for_each(|v| *v = 0.0);
        for f in 0..dim {
            // An integer-to-float conversion, never a select: for bf16 and f16, LLVM turns
            // every select-shaped 0/1 → ONE mapping into a branch, which mispredicts on half
            // of the random input bits.
            for (v, p) in lane.iter_mut().zip(&from[..chunk.len()]) {
                // SAFETY: each sample's `dim` bytes are in `bits` (asserted) and f < dim.
                *v = f32::from(u8::from(unsafe { *p.add(f) } != 0));
            }
            // SAFETY: `lane` holds 16 floats; row f holds `bs` values and c + 16 <= bs.
            unsafe { A::store::<S>(rows.as_mut_ptr().add(f * bs + c), S::load(lane.as_ptr())) };
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

    fn check<A: Act>() {
        let mut r = Rng::new(3);
        let (n, dim, bs) = (40, 37, 48);
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
    fn bit_rows_transpose_the_block_and_zero_its_tail() {
        check::<f32>();
        check::<Bf16>();
        check::<F16>();
    }
}
