//! GroupSum on packed words: per class, the count of ones over its neurons, for every sample.
//!
//! Bits are packed across samples, so a class count is a *vertical* sum of lines. The lines
//! are added into bit-sliced counters (plane `b` holds bit `b` of every sample's count) with a
//! Harley–Seal carry-save tree — 15 carry-save adders (two 3-input ops each) per 16 lines —
//! and the planes are then turned into integers per sample. This file has the generic
//! version (scalar and AVX2 levels); `avx512.rs` runs the same scheme with ternlogs and
//! masked adds.

use super::kernel::{Line, BLOCK, WORDS};

/// Bit planes needed to count up to `n` ones (at least the 4 Harley–Seal planes, plus one
/// the sixteens ripple into).
pub fn planes_for(n: usize) -> usize {
    let bits = (usize::BITS - n.leading_zeros()) as usize;
    bits.max(4) + 1
}

/// Adds 16 lines into planes `[ones, twos, fours, eights]` and returns the sixteens line.
/// A macro, so the `csa` it calls is inlined under the caller's target features.
macro_rules! harley_seal_16 {
    ($csa:ident, $p:expr, $w:expr) => {{
        let p = $p;
        let w = $w;
        let (two_a, o) = $csa(p[0], w[0], w[1]);
        let (two_b, o) = $csa(o, w[2], w[3]);
        let (four_a, t) = $csa(p[1], two_a, two_b);
        let (two_a, o) = $csa(o, w[4], w[5]);
        let (two_b, o) = $csa(o, w[6], w[7]);
        let (four_b, t) = $csa(t, two_a, two_b);
        let (eight_a, f) = $csa(p[2], four_a, four_b);
        let (two_a, o) = $csa(o, w[8], w[9]);
        let (two_b, o) = $csa(o, w[10], w[11]);
        let (four_a, t) = $csa(t, two_a, two_b);
        let (two_a, o) = $csa(o, w[12], w[13]);
        let (two_b, o) = $csa(o, w[14], w[15]);
        let (four_b, t) = $csa(t, two_a, two_b);
        let (eight_b, f) = $csa(f, four_a, four_b);
        let (sixteen, e) = $csa(p[3], eight_a, eight_b);
        p[0] = o;
        p[1] = t;
        p[2] = f;
        p[3] = e;
        sixteen
    }};
}
pub(crate) use harley_seal_16;

type Row = [u64; WORDS];

#[inline(always)]
fn csa(a: Row, b: Row, c: Row) -> (Row, Row) {
    (
        std::array::from_fn(|l| (a[l] & b[l]) | (c[l] & (a[l] | b[l]))),
        std::array::from_fn(|l| a[l] ^ b[l] ^ c[l]),
    )
}

#[inline(always)]
fn add_at(planes: &mut [Row], p: usize, w: Row) {
    let mut carry = w;
    for pl in &mut planes[p..] {
        let sum = std::array::from_fn(|l| pl[l] ^ carry[l]);
        carry = std::array::from_fn(|l| pl[l] & carry[l]);
        *pl = sum;
    }
}

/// Per-sample counts of ones over the lines in `slots` (generic code).
///
/// # Safety
/// Every slot is inside the arena.
#[inline(always)]
pub unsafe fn count_ones_generic(arena: *const Line, slots: &[u32], counts: &mut [u32; BLOCK]) {
    let np = planes_for(slots.len());
    let mut planes = [[0u64; WORDS]; 66];
    let planes = &mut planes[..np];
    let line = |s: u32| (*arena.add(s as usize)).0;
    let chunks = slots.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        let w: [Row; 16] = std::array::from_fn(|i| line(c[i]));
        let (p, hi) = planes.split_at_mut(4);
        let sixteens = harley_seal_16!(csa, p, w);
        add_at(hi, 0, sixteens);
    }
    for &s in rest {
        add_at(planes, 0, line(s));
    }
    for (s, out) in counts.iter_mut().enumerate() {
        *out = planes
            .iter()
            .enumerate()
            .map(|(b, p)| (((p[s / 64] >> (s % 64)) & 1) as u32) << b)
            .sum();
    }
}

unsafe fn count_scalar(arena: *const Line, slots: &[u32], counts: &mut [u32; BLOCK]) {
    count_ones_generic(arena, slots, counts)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn count_avx2(arena: *const Line, slots: &[u32], counts: &mut [u32; BLOCK]) {
    count_ones_generic(arena, slots, counts)
}

/// Counts for one block at `level`: `counts[c][s]` for every class `c`.
///
/// # Safety
/// The CPU supports `level` and every slot of `plan` is inside the arena.
pub unsafe fn count_block(
    level: crate::layer::simd::SimdLevel,
    arena: *mut Line,
    plan: &super::program::HeadPlan,
    counts: &mut [[u32; BLOCK]],
) {
    use crate::layer::simd::SimdLevel;
    for ((slots, &off), out) in plan.slots.iter().zip(&plan.offset).zip(counts.iter_mut()) {
        match level {
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => super::avx512::count_ones(arena, slots, out),
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => count_avx2(arena, slots, out),
            _ => count_scalar(arena, slots, out),
        }
        if off != 0 {
            out.iter_mut().for_each(|c| *c += off);
        }
    }
}
