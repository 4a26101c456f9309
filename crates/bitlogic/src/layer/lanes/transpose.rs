//! Register shuffles behind [`interleave4`](super::Lanes::interleave4) and
//! [`deinterleave4`](super::Lanes::deinterleave4) for AVX-512 (one zmm per vector) and AVX2
//! (two ymm), and behind AVX2's [`transpose16`](super::Lanes::transpose16) (AVX-512's is in
//! `lanes.rs`).
//!
//! Each is a butterfly of shuffles that moves blocks of 1, 2, 4, … floats at a time:
//!
//! ```text
//!    8 ×  8, ymm:  unpack (1 float) → shuffle_ps (2) → permute2f128 (4)       24 shuffles
//!    4 × 16:       a 4 × 4 transpose inside every 128-bit lane (unpack, shuffle_ps), and
//!                  one of the four 128-bit lanes of the four vectors (f32x4 / 2f128)
//! ```
//!
//! Only data moves: no value changes, so the results are exact at every level.

use std::arch::x86_64::*;

/// Lane q of `out[p]` is 128-bit lane p of `v[q]`.
#[inline(always)]
unsafe fn lanes4x4_zmm(v: [__m512; 4]) -> [__m512; 4] {
    let lo01 = _mm512_shuffle_f32x4::<0x44>(v[0], v[1]); // v0.0 v0.1 v1.0 v1.1
    let lo23 = _mm512_shuffle_f32x4::<0x44>(v[2], v[3]);
    let hi01 = _mm512_shuffle_f32x4::<0xEE>(v[0], v[1]); // v0.2 v0.3 v1.2 v1.3
    let hi23 = _mm512_shuffle_f32x4::<0xEE>(v[2], v[3]);
    [
        _mm512_shuffle_f32x4::<0x88>(lo01, lo23),
        _mm512_shuffle_f32x4::<0xDD>(lo01, lo23),
        _mm512_shuffle_f32x4::<0x88>(hi01, hi23),
        _mm512_shuffle_f32x4::<0xDD>(hi01, hi23),
    ]
}

/// Within every 128-bit lane: float i of `out[k]` is float k of `v[i]` (self-inverse).
#[inline(always)]
unsafe fn floats4x4_zmm(v: [__m512; 4]) -> [__m512; 4] {
    let t0 = _mm512_unpacklo_ps(v[0], v[1]);
    let t1 = _mm512_unpackhi_ps(v[0], v[1]);
    let t2 = _mm512_unpacklo_ps(v[2], v[3]);
    let t3 = _mm512_unpackhi_ps(v[2], v[3]);
    [
        _mm512_shuffle_ps::<0x44>(t0, t2),
        _mm512_shuffle_ps::<0xEE>(t0, t2),
        _mm512_shuffle_ps::<0x44>(t1, t3),
        _mm512_shuffle_ps::<0xEE>(t1, t3),
    ]
}

/// `interleave4` on zmm vectors: after the in-lane step, lane q of `u[i]` holds lane 4q + i
/// of the four rows; the 128-bit lanes then go to their vectors.
#[inline(always)]
pub(super) unsafe fn interleave4_zmm(v: [__m512; 4]) -> [__m512; 4] {
    lanes4x4_zmm(floats4x4_zmm(v))
}

/// `deinterleave4` on zmm vectors: the two steps of `interleave4_zmm`, each its own inverse,
/// in reverse order.
#[inline(always)]
pub(super) unsafe fn deinterleave4_zmm(v: [__m512; 4]) -> [__m512; 4] {
    floats4x4_zmm(lanes4x4_zmm(v))
}

/// An 8 × 8 transpose of ymm vectors.
#[inline(always)]
unsafe fn transpose8_ymm(v: [__m256; 8]) -> [__m256; 8] {
    let mut t = [_mm256_setzero_ps(); 8];
    for i in 0..4 {
        t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    // u[4i + j] holds, in 128-bit lane q, column 4q + j of rows 4i..4i + 4.
    let mut u = [_mm256_setzero_ps(); 8];
    for i in 0..2 {
        u[4 * i] = _mm256_shuffle_ps::<0x44>(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_shuffle_ps::<0xEE>(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_shuffle_ps::<0x44>(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_shuffle_ps::<0xEE>(t[4 * i + 1], t[4 * i + 3]);
    }
    let mut out = [_mm256_setzero_ps(); 8];
    for j in 0..4 {
        out[j] = _mm256_permute2f128_ps::<0x20>(u[j], u[4 + j]);
        out[4 + j] = _mm256_permute2f128_ps::<0x31>(u[j], u[4 + j]);
    }
    out
}

/// `transpose16` on pairs of ymm vectors (lanes 0..8 in `lo`, 8..16 in `hi`): four 8 × 8
/// blocks, the two off the diagonal trading places.
#[inline(always)]
pub(super) unsafe fn transpose16_ymm(lo: &mut [__m256; 16], hi: &mut [__m256; 16]) {
    // Plain copies, not a closure: a closure would not inherit the caller's
    // `target_feature`, and the shuffles would become calls.
    let (mut a, mut b, mut c, mut d) = (
        [_mm256_setzero_ps(); 8],
        [_mm256_setzero_ps(); 8],
        [_mm256_setzero_ps(); 8],
        [_mm256_setzero_ps(); 8],
    );
    a.copy_from_slice(&lo[..8]);
    b.copy_from_slice(&hi[..8]);
    c.copy_from_slice(&lo[8..]);
    d.copy_from_slice(&hi[8..]);
    lo[..8].copy_from_slice(&transpose8_ymm(a));
    hi[..8].copy_from_slice(&transpose8_ymm(c));
    lo[8..].copy_from_slice(&transpose8_ymm(b));
    hi[8..].copy_from_slice(&transpose8_ymm(d));
}

/// `floats4x4_zmm` on ymm vectors.
#[inline(always)]
unsafe fn floats4x4_ymm(v: [__m256; 4]) -> [__m256; 4] {
    let t0 = _mm256_unpacklo_ps(v[0], v[1]);
    let t1 = _mm256_unpackhi_ps(v[0], v[1]);
    let t2 = _mm256_unpacklo_ps(v[2], v[3]);
    let t3 = _mm256_unpackhi_ps(v[2], v[3]);
    [
        _mm256_shuffle_ps::<0x44>(t0, t2),
        _mm256_shuffle_ps::<0xEE>(t0, t2),
        _mm256_shuffle_ps::<0x44>(t1, t3),
        _mm256_shuffle_ps::<0xEE>(t1, t3),
    ]
}

/// `interleave4` on 8 lanes: 32 floats as 4 ymm vectors.
#[inline(always)]
pub(super) unsafe fn interleave4_ymm(v: [__m256; 4]) -> [__m256; 4] {
    // Lane q of u[i] holds lane 4q + i of the four rows.
    let u = floats4x4_ymm(v);
    [
        _mm256_permute2f128_ps::<0x20>(u[0], u[1]),
        _mm256_permute2f128_ps::<0x20>(u[2], u[3]),
        _mm256_permute2f128_ps::<0x31>(u[0], u[1]),
        _mm256_permute2f128_ps::<0x31>(u[2], u[3]),
    ]
}

/// The inverse of `interleave4_ymm`.
#[inline(always)]
pub(super) unsafe fn deinterleave4_ymm(v: [__m256; 4]) -> [__m256; 4] {
    floats4x4_ymm([
        _mm256_permute2f128_ps::<0x20>(v[0], v[2]),
        _mm256_permute2f128_ps::<0x31>(v[0], v[2]),
        _mm256_permute2f128_ps::<0x20>(v[1], v[3]),
        _mm256_permute2f128_ps::<0x31>(v[1], v[3]),
    ])
}
