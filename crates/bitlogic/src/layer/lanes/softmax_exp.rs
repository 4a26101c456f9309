//! The exponential of a softmax: exp(x) for x ≤ 0 (a logit less the largest), with fused
//! multiply-adds, bit for bit the same in the scalar reference and in zmm and ymm lanes.
//!
//! ```text
//!   x ← max(x, −87)                      (x ≤ 0 here, so no upper clamp)
//!   k ← fma(x, log2 e, 1.5·2^23)         (n = round(x·log2 e) sits in k's low mantissa bits)
//!   n ← k − 1.5·2^23
//!   r ← fma(−n, ln2_lo, fma(−n, ln2_hi, x))
//!   p ← 1 + r(1 + r(1/2 + r(1/6 + r(1/24 + r(1/120 + r/720)))))   (six fmas)
//!   exp x ≈ p · 2^n
//! ```
//!
//! Twelve instructions where `kernel::exp_approx`, which must match Rust's unfused scalar
//! arithmetic, takes twenty-three. The degree-6 Taylor polynomial on |r| ≤ ln2/2 is within
//! 1.2·10⁻⁷ of exp, about one unit in the last place. The scalar uses `f32::mul_add`: a
//! fused instruction where the caller is compiled for FMA, the C library's `fmaf` (the same
//! single rounding) elsewhere.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

const SHIFT: f32 = 12_582_912.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
const FLOOR: f32 = -87.0;
/// The polynomial's coefficients from the innermost out.
const P: [f32; 7] = [
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// The scalar reference. Meant for x ≤ 0; a larger x is clamped to nothing and overflows
/// past 88.
#[inline(always)]
pub fn softmax_exp(x: f32) -> f32 {
    // vmaxps(−87, x) keeps x unless −87 is larger, so a NaN passes through.
    let x = if FLOOR > x { FLOOR } else { x };
    let k = x.mul_add(LOG2E, SHIFT);
    let n = k - SHIFT;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let mut p = P[0];
    for &c in &P[1..] {
        p = p.mul_add(r, c);
    }
    // n ∈ [−126, 0] after the clamp, so n + 127 is a normal exponent.
    let bits = k.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127);
    p * f32::from_bits(bits << 23)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn softmax_exp_zmm(x: __m512) -> __m512 {
    let x = _mm512_max_ps(_mm512_set1_ps(FLOOR), x);
    let k = _mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), _mm512_set1_ps(SHIFT));
    let n = _mm512_sub_ps(k, _mm512_set1_ps(SHIFT));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    let mut p = _mm512_set1_ps(P[0]);
    for &c in &P[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    // p · 2^n rounds once, as the scalar's multiplication by a normal power of two.
    _mm512_scalef_ps(p, n)
}

/// `softmax_exp_zmm` on 8 lanes; 2^n from k's bits, as in the scalar.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn softmax_exp_ymm(x: __m256) -> __m256 {
    let x = _mm256_max_ps(_mm256_set1_ps(FLOOR), x);
    let k = _mm256_fmadd_ps(x, _mm256_set1_ps(LOG2E), _mm256_set1_ps(SHIFT));
    let n = _mm256_sub_ps(k, _mm256_set1_ps(SHIFT));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let mut p = _mm256_set1_ps(P[0]);
    for &c in &P[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let bits = _mm256_add_epi32(
        _mm256_castps_si256(k),
        _mm256_set1_epi32(127i32.wrapping_sub(SHIFT.to_bits() as i32)),
    );
    _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32::<23>(bits)))
}
