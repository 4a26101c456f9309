//! `kernel::exp_approx` in zmm and ymm lanes, bit for bit: every rounding of the scalar's,
//! in its order.
//!
//! ```text
//!   x ← clamp(x, −87, 88)
//!   k ← x·log2 e + 1.5·2^23          (n = round(x·log2 e) sits in k's low mantissa bits)
//!   n ← k − 1.5·2^23
//!   r ← (x − n·ln2_hi) − n·ln2_lo
//!   p ← 1 + r(1 + r(1/2 + r(1/6 + r(1/24 + r(1/120 + r/720)))))
//!   exp x ≈ p · 2^n
//! ```
//!
//! Rust never fuses a multiplication with an addition, so neither may these where the
//! product rounds. Two steps have exact intermediates and take fewer instructions for the
//! same result: n·ln2_hi is exact (ln2_hi has 15 significant bits, |n| ≤ 127 has 7), so
//! x − n·ln2_hi is one fused multiply-add; and p · 2^n is one `vscalefps` on AVX-512 (the
//! same single rounding as the multiplication; the scalar builds 2^n from k's bits).

use std::arch::x86_64::*;

const SHIFT: f32 = 12_582_912.0;
pub(super) const LOG2E: f32 = std::f32::consts::LOG2_E;
pub(super) const LN2_HI: f32 = 0.693_145_75;
pub(super) const LN2_LO: f32 = 1.428_606_8e-6;
/// The polynomial's coefficients from the innermost out (after 1/720 · r comes + 1/120, …).
pub(super) const P: [f32; 6] = [
    0.001_388_889,
    0.008_333_334,
    0.041_666_668,
    0.166_666_67,
    0.5,
    1.0,
];
/// bits(2^n) = (bits(k) + (127 − bits(1.5·2^23))) << 23: wrapping integer additions are
/// associative, so one addition matches the scalar's subtraction and addition.
const BIAS: i32 = 127i32.wrapping_sub(SHIFT.to_bits() as i32);

#[inline(always)]
pub(super) unsafe fn exp_zmm(x: __m512) -> __m512 {
    // `f32::clamp`: x < lo ? lo : x, then x > hi ? hi : x. vmaxps / vminps return their
    // second operand unless the first wins, so a NaN passes through as in the scalar.
    let x = _mm512_min_ps(
        _mm512_set1_ps(88.0),
        _mm512_max_ps(_mm512_set1_ps(-87.0), x),
    );
    let k = _mm512_add_ps(
        _mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
        _mm512_set1_ps(SHIFT),
    );
    let n = _mm512_sub_ps(k, _mm512_set1_ps(SHIFT));
    let r = _mm512_sub_ps(
        _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x),
        _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)),
    );
    let mut p = _mm512_set1_ps(P[0]);
    for &a in &P[1..] {
        p = _mm512_add_ps(_mm512_set1_ps(a), _mm512_mul_ps(r, p));
    }
    p = _mm512_add_ps(_mm512_set1_ps(1.0), _mm512_mul_ps(r, p));
    // n ∈ [−126, 127] after the clamp, so 2^n is a normal float and p · 2^n rounds once.
    _mm512_scalef_ps(p, n)
}

/// `exp_zmm` on 8 lanes. AVX2 has no `vscalefps`: 2^n comes from k's bits, as in the scalar.
#[inline(always)]
pub(super) unsafe fn exp_ymm(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_set1_ps(88.0),
        _mm256_max_ps(_mm256_set1_ps(-87.0), x),
    );
    let k = _mm256_add_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
        _mm256_set1_ps(SHIFT),
    );
    let n = _mm256_sub_ps(k, _mm256_set1_ps(SHIFT));
    let r = _mm256_sub_ps(
        _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x),
        _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)),
    );
    let mut p = _mm256_set1_ps(P[0]);
    for &a in &P[1..] {
        p = _mm256_add_ps(_mm256_set1_ps(a), _mm256_mul_ps(r, p));
    }
    p = _mm256_add_ps(_mm256_set1_ps(1.0), _mm256_mul_ps(r, p));
    let bits = _mm256_add_epi32(_mm256_castps_si256(k), _mm256_set1_epi32(BIAS));
    _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32::<23>(bits)))
}
