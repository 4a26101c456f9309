//! A 16-lane f32 vector with one implementation per instruction set.
//!
//! The layer kernels are written once against [`Lanes`]; `kernel.rs` instantiates them
//! with [`Avx512`] (one zmm register), [`Avx2`] (two ymm registers) or [`Scalar`] (a plain
//! array, the reference) inside `target_feature` functions, so each intrinsic inlines into
//! code compiled for its instruction set.
//!
//! Besides f32 memory, lanes load and store the 16-bit activation types of `act`
//! (bf16, f16): widened to f32 on load and rounded on store, bit for bit as `act`'s scalar
//! conversions do. bf16 needs only integer instructions (its bits are the top half of an
//! f32, rounded by one addition); f16 uses the F16C / AVX-512F conversion instructions.

/// Sixteen f32 lanes. Implementations must only be used where their instruction set is
/// available (the dispatcher guarantees it).
pub trait Lanes {
    type V: Copy;
    /// Whether kernels unroll the lerp tree for these lanes (`kernel::tree`). Not for the
    /// scalar lanes: an unrolled rank-6 walk on sixteen separate floats is some thousands of
    /// instructions per chunk for the compiler to vectorize back, once per storage type and
    /// kernel variant, and the scalar fallback is not where speed matters.
    const UNROLL: bool = true;
    /// # Safety
    /// `p` must point to 16 readable floats.
    unsafe fn load(p: *const f32) -> Self::V;
    /// # Safety
    /// `p` must point to 16 writable floats.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// # Safety
    /// `p` must point to 16 readable bf16 values.
    unsafe fn load_bf16(p: *const u16) -> Self::V;
    /// Rounds as `act::f32_to_bf16`.
    /// # Safety
    /// `p` must point to 16 writable bf16 values.
    unsafe fn store_bf16(p: *mut u16, v: Self::V);
    /// What [`Lanes::store_bf16`] then [`Lanes::load_bf16`] give, without memory.
    /// # Safety
    /// The instruction set must be available.
    #[inline(always)]
    unsafe fn round_bf16(v: Self::V) -> Self::V {
        let mut h = [0u16; 16];
        Self::store_bf16(h.as_mut_ptr(), v);
        Self::load_bf16(h.as_ptr())
    }
    /// Thirty-two bf16 values as two vectors: the even-indexed ones and the odd-indexed ones.
    /// A bf16 is the top half of an f32, so each 32-bit word of the row holds an odd value
    /// in place and an even one a shift away: the SIMD versions widen 32 values with one
    /// integer instruction per vector instead of two. Kernels that work lane by lane may read
    /// samples in this order as long as they store them back with [`Lanes::store_bf16_pair`].
    /// # Safety
    /// `p` must point to 32 readable bf16 values.
    #[inline(always)]
    unsafe fn load_bf16_pair(p: *const u16) -> (Self::V, Self::V) {
        let h = std::ptr::read_unaligned(p as *const [u16; 32]);
        let even: [u16; 16] = std::array::from_fn(|l| h[2 * l]);
        let odd: [u16; 16] = std::array::from_fn(|l| h[2 * l + 1]);
        (
            Self::load_bf16(even.as_ptr()),
            Self::load_bf16(odd.as_ptr()),
        )
    }
    /// The inverse of [`Lanes::load_bf16_pair`], rounding as [`Lanes::store_bf16`].
    /// # Safety
    /// `p` must point to 32 writable bf16 values.
    #[inline(always)]
    unsafe fn store_bf16_pair(p: *mut u16, even: Self::V, odd: Self::V) {
        let (mut e, mut o) = ([0u16; 16], [0u16; 16]);
        Self::store_bf16(e.as_mut_ptr(), even);
        Self::store_bf16(o.as_mut_ptr(), odd);
        let h: [u16; 32] = std::array::from_fn(|i| if i % 2 == 0 { e[i / 2] } else { o[i / 2] });
        std::ptr::write_unaligned(p as *mut [u16; 32], h)
    }
    /// # Safety
    /// `p` must point to 16 readable f16 values.
    unsafe fn load_f16(p: *const u16) -> Self::V;
    /// Rounds to nearest even (overflow to ∞, NaN stays a quiet NaN).
    /// # Safety
    /// `p` must point to 16 writable f16 values.
    unsafe fn store_f16(p: *mut u16, v: Self::V);
    fn splat(x: f32) -> Self::V;
    fn add(a: Self::V, b: Self::V) -> Self::V;
    fn sub(a: Self::V, b: Self::V) -> Self::V;
    fn mul(a: Self::V, b: Self::V) -> Self::V;
    fn div(a: Self::V, b: Self::V) -> Self::V;
    /// Square root, correctly rounded in every implementation.
    fn sqrt(a: Self::V) -> Self::V;
    /// `a·b + c`
    fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a·b + c` rounded once in every implementation, the scalar one included (whose
    /// `fma` rounds twice, as the kernels' scalar references do).
    fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Logistic sigmoid with the polynomial exp of `kernel::exp_approx`.
    fn sigmoid(a: Self::V) -> Self::V;
    /// Sum of the lanes, in a fixed order.
    fn hsum(a: Self::V) -> f32;
    /// The larger of each pair of lanes, as `f32::max` where neither is NaN (with a NaN the
    /// SIMD versions may return either operand; equal zeros may come out with either sign).
    fn max(a: Self::V, b: Self::V) -> Self::V;
    /// `kernel::exp_approx` in every lane, bit for bit: every rounding of the scalar's, in
    /// its order (see `lanes/exp.rs`). The default calls it lane by lane.
    #[inline(always)]
    fn exp_approx(a: Self::V) -> Self::V {
        lane_by_lane::<Self>(a, super::kernel::exp_approx)
    }
    /// [`softmax_exp`] in every lane, bit for bit (see `lanes/softmax_exp.rs`). The
    /// default calls it lane by lane.
    #[inline(always)]
    fn softmax_exp(a: Self::V) -> Self::V {
        lane_by_lane::<Self>(a, softmax_exp)
    }
    /// A 4 × 16 matrix (row k = `v[k]`) transposed into memory order: lane l of `v[k]`
    /// becomes float 4l + k of the 64 floats `out[0]`, `out[1]`, … hold (so `out[j]` holds
    /// lanes 4j..4j + 4 of the four rows, lane by lane).
    #[inline(always)]
    fn interleave4(v: [Self::V; 4]) -> [Self::V; 4] {
        let mut m = [[0f32; 16]; 4];
        let mut o = [0f32; 64];
        // SAFETY: every row of `m` holds 16 floats, `o` four times 16.
        unsafe {
            for (row, &x) in m.iter_mut().zip(v.iter()) {
                Self::store(row.as_mut_ptr(), x);
            }
            for (i, o) in o.iter_mut().enumerate() {
                *o = m[i % 4][i / 4];
            }
            [
                Self::load(o.as_ptr()),
                Self::load(o[16..].as_ptr()),
                Self::load(o[32..].as_ptr()),
                Self::load(o[48..].as_ptr()),
            ]
        }
    }
    /// The inverse of [`Lanes::interleave4`]: float 4l + k of the 64 floats in `v` becomes
    /// lane l of `out[k]`.
    #[inline(always)]
    fn deinterleave4(v: [Self::V; 4]) -> [Self::V; 4] {
        let mut o = [0f32; 64];
        let mut m = [[0f32; 16]; 4];
        // SAFETY: `o` holds four times 16 floats, every row of `m` 16.
        unsafe {
            for (j, &x) in v.iter().enumerate() {
                Self::store(o[16 * j..].as_mut_ptr(), x);
            }
            for (i, &o) in o.iter().enumerate() {
                m[i % 4][i / 4] = o;
            }
            [
                Self::load(m[0].as_ptr()),
                Self::load(m[1].as_ptr()),
                Self::load(m[2].as_ptr()),
                Self::load(m[3].as_ptr()),
            ]
        }
    }
    /// Transposes 16 vectors in place: lane j of `v[i]` becomes lane i of `v[j]`. The
    /// default goes through memory; AVX-512 and AVX2 shuffle in registers (64 and 96
    /// instructions, where element-wise code compiles to gathers and scatters).
    #[inline(always)]
    fn transpose16(v: &mut [Self::V; 16]) {
        let mut m = [[0f32; 16]; 16];
        // SAFETY: each row of `m` holds 16 floats.
        unsafe {
            for (row, &x) in m.iter_mut().zip(v.iter()) {
                Self::store(row.as_mut_ptr(), x);
            }
            for (j, out) in v.iter_mut().enumerate() {
                let col: [f32; 16] = std::array::from_fn(|i| m[i][j]);
                *out = Self::load(col.as_ptr());
            }
        }
    }
    /// Rank 2's corner gradients from its sums, per group of four lanes (one neuron):
    /// (Σg, Σg·A, Σg·B, Σg·A·B) becomes ((Σg − (Σg·A + Σg·B)) + Σg·A·B, Σg·B − Σg·A·B,
    /// Σg·A − Σg·A·B, Σg·A·B) (`kernel/rank2.rs` has the math). AVX-512 permutes within
    /// 128-bit lanes: seven instructions for four neurons.
    #[inline(always)]
    fn bilinear_corners(v: Self::V) -> Self::V {
        let mut x = [0f32; 16];
        // SAFETY: `x` holds 16 floats.
        unsafe {
            Self::store(x.as_mut_ptr(), v);
            for n in x.chunks_exact_mut(4) {
                let [s, sa, sb, sab] = [n[0], n[1], n[2], n[3]];
                n.copy_from_slice(&[(s - (sa + sb)) + sab, sb - sab, sa - sab, sab]);
            }
            Self::load(x.as_ptr())
        }
    }
    /// Lane i of the result is `hsum(v[i])`, bit for bit. The default sums one vector at a
    /// time; AVX-512 runs the same pairings across the 16 vectors at once (a transpose
    /// folded into the additions), about a third of the instructions.
    #[inline(always)]
    fn hsum16(v: &[Self::V; 16]) -> Self::V {
        let mut s = [0f32; 16];
        for (s, &v) in s.iter_mut().zip(v) {
            *s = Self::hsum(v);
        }
        // SAFETY: `s` holds 16 floats.
        unsafe { Self::load(s.as_ptr()) }
    }
}

use super::act::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};

pub struct Scalar;

impl Lanes for Scalar {
    type V = [f32; 16];
    const UNROLL: bool = false;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        std::ptr::read_unaligned(p as *const [f32; 16])
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        std::ptr::write_unaligned(p as *mut [f32; 16], v)
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> Self::V {
        let h = std::ptr::read_unaligned(p as *const [u16; 16]);
        std::array::from_fn(|l| bf16_to_f32(h[l]))
    }
    #[inline(always)]
    unsafe fn store_bf16(p: *mut u16, v: Self::V) {
        let h: [u16; 16] = std::array::from_fn(|l| f32_to_bf16(v[l]));
        std::ptr::write_unaligned(p as *mut [u16; 16], h)
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self::V {
        let h = std::ptr::read_unaligned(p as *const [u16; 16]);
        std::array::from_fn(|l| f16_to_f32(h[l]))
    }
    #[inline(always)]
    unsafe fn store_f16(p: *mut u16, v: Self::V) {
        let h: [u16; 16] = std::array::from_fn(|l| f32_to_f16(v[l]));
        std::ptr::write_unaligned(p as *mut [u16; 16], h)
    }
    #[inline(always)]
    fn splat(x: f32) -> Self::V {
        [x; 16]
    }
    #[inline(always)]
    fn add(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] + b[l])
    }
    #[inline(always)]
    fn sub(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] - b[l])
    }
    #[inline(always)]
    fn mul(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] * b[l])
    }
    #[inline(always)]
    fn div(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] / b[l])
    }
    #[inline(always)]
    fn sqrt(a: Self::V) -> Self::V {
        a.map(f32::sqrt)
    }
    #[inline(always)]
    fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] * b[l] + c[l])
    }
    #[inline(always)]
    fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l].mul_add(b[l], c[l]))
    }
    #[inline(always)]
    fn max(a: Self::V, b: Self::V) -> Self::V {
        // A compare and select, as the SIMD versions (`f32::max` also orders NaN).
        std::array::from_fn(|l| if b[l] > a[l] { b[l] } else { a[l] })
    }
    #[inline(always)]
    fn sigmoid(a: Self::V) -> Self::V {
        std::array::from_fn(|l| super::kernel::sigmoid_approx(a[l]))
    }
    #[inline(always)]
    fn hsum(a: Self::V) -> f32 {
        hsum_tree(&a)
    }
}

/// `f` applied to each lane of `a`, through memory.
#[inline(always)]
fn lane_by_lane<S: Lanes + ?Sized>(a: S::V, f: fn(f32) -> f32) -> S::V {
    let mut x = [0f32; 16];
    // SAFETY: `x` holds 16 floats.
    unsafe {
        S::store(x.as_mut_ptr(), a);
        for x in x.iter_mut() {
            *x = f(*x);
        }
        S::load(x.as_ptr())
    }
}

/// Pairwise sum in the order the SIMD versions use: halves, then quarters, ...
#[inline(always)]
fn hsum_tree(a: &[f32; 16]) -> f32 {
    let h8: [f32; 8] = std::array::from_fn(|l| a[l] + a[l + 8]);
    let h4: [f32; 4] = std::array::from_fn(|l| h8[l] + h8[l + 4]);
    let h2: [f32; 2] = [h4[0] + h4[2], h4[1] + h4[3]];
    h2[0] + h2[1]
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod exp;
mod softmax_exp;
pub use softmax_exp::softmax_exp;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod transpose;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::exp::{exp_ymm, exp_zmm};
    use super::softmax_exp::{softmax_exp_ymm, softmax_exp_zmm};
    use super::transpose::{
        deinterleave4_ymm, deinterleave4_zmm, interleave4_ymm, interleave4_zmm, transpose16_ymm,
    };
    use super::Lanes;
    use std::arch::x86_64::*;

    // exp_approx's constants, shared with the bit-exact vector exp.
    use super::exp::{LN2_HI, LN2_LO, LOG2E, P};

    pub struct Avx512;

    impl Lanes for Avx512 {
        type V = __m512;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> __m512 {
            let h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(h))
        }
        #[inline(always)]
        unsafe fn store_bf16(p: *mut u16, v: __m512) {
            let h = _mm512_srli_epi32::<16>(bf16_top(v));
            _mm256_storeu_si256(p as *mut __m256i, _mm512_cvtepi32_epi16(h))
        }
        #[inline(always)]
        unsafe fn round_bf16(v: __m512) -> __m512 {
            let top = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
            _mm512_castsi512_ps(_mm512_and_si512(bf16_top(v), top))
        }
        #[inline(always)]
        unsafe fn load_bf16_pair(p: *const u16) -> (__m512, __m512) {
            let w = _mm512_loadu_si512(p as *const _);
            let even = _mm512_slli_epi32::<16>(w);
            let odd = _mm512_and_si512(w, _mm512_set1_epi32(0xFFFF_0000u32 as i32));
            (_mm512_castsi512_ps(even), _mm512_castsi512_ps(odd))
        }
        #[inline(always)]
        unsafe fn store_bf16_pair(p: *mut u16, even: __m512, odd: __m512) {
            // Odd values keep their top half in place, even ones move down: one bitwise
            // select (0xCA: mask ? odd : even) merges them.
            let top = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
            let even = _mm512_srli_epi32::<16>(bf16_top(even));
            let w = _mm512_ternarylogic_epi32::<0xCA>(top, bf16_top(odd), even);
            _mm512_storeu_si512(p as *mut _, w)
        }
        #[inline(always)]
        unsafe fn load_f16(p: *const u16) -> __m512 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
        }
        #[inline(always)]
        unsafe fn store_f16(p: *mut u16, v: __m512) {
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            _mm256_storeu_si256(p as *mut __m256i, h)
        }
        #[inline(always)]
        fn splat(x: f32) -> __m512 {
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        fn add(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        fn sub(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_sub_ps(a, b) }
        }
        #[inline(always)]
        fn mul(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        fn div(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_div_ps(a, b) }
        }
        #[inline(always)]
        fn sqrt(a: __m512) -> __m512 {
            unsafe { _mm512_sqrt_ps(a) }
        }
        #[inline(always)]
        fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 {
            Self::fma(a, b, c)
        }
        #[inline(always)]
        fn max(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_max_ps(a, b) }
        }
        #[inline(always)]
        fn exp_approx(a: __m512) -> __m512 {
            unsafe { exp_zmm(a) }
        }
        #[inline(always)]
        fn softmax_exp(a: __m512) -> __m512 {
            unsafe { softmax_exp_zmm(a) }
        }
        #[inline(always)]
        fn interleave4(v: [__m512; 4]) -> [__m512; 4] {
            unsafe { interleave4_zmm(v) }
        }
        #[inline(always)]
        fn deinterleave4(v: [__m512; 4]) -> [__m512; 4] {
            unsafe { deinterleave4_zmm(v) }
        }
        #[inline(always)]
        fn sigmoid(z: __m512) -> __m512 {
            unsafe {
                let x = _mm512_min_ps(
                    _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), z), _mm512_set1_ps(-87.0)),
                    _mm512_set1_ps(88.0),
                );
                let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(
                    _mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), _mm512_set1_ps(0.5)),
                );
                let r = _mm512_sub_ps(
                    _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(LN2_HI))),
                    _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)),
                );
                let mut p = _mm512_set1_ps(P[0]);
                for c in &P[1..] {
                    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*c));
                }
                p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0));
                let pow = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
                    _mm512_cvttps_epi32(n),
                    _mm512_set1_epi32(127),
                )));
                let e = _mm512_mul_ps(p, pow);
                _mm512_div_ps(_mm512_set1_ps(1.0), _mm512_add_ps(_mm512_set1_ps(1.0), e))
            }
        }
        #[inline(always)]
        fn hsum(a: __m512) -> f32 {
            // Halves, quarters, pairs: the order of `hsum_tree`, in registers.
            unsafe {
                let lo = _mm512_castps512_ps256(a);
                let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a)));
                hsum8(_mm256_add_ps(lo, hi))
            }
        }
        #[inline(always)]
        fn transpose16(v: &mut [__m512; 16]) {
            // SAFETY: register shuffles only (AVX-512F, which this type requires).
            unsafe {
                // 2×2 blocks of rows 2i, 2i + 1 within each 128-bit lane ...
                let mut t = [_mm512_setzero_ps(); 16];
                for i in 0..8 {
                    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
                    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
                }
                // ... 4×4 blocks: u[4i + j] holds, in 128-bit lane q, column 4q + j of rows
                // 4i..4i + 4 ...
                let mut u = [_mm512_setzero_ps(); 16];
                for i in 0..4 {
                    u[4 * i] = _mm512_shuffle_ps::<0x44>(t[4 * i], t[4 * i + 2]);
                    u[4 * i + 1] = _mm512_shuffle_ps::<0xEE>(t[4 * i], t[4 * i + 2]);
                    u[4 * i + 2] = _mm512_shuffle_ps::<0x44>(t[4 * i + 1], t[4 * i + 3]);
                    u[4 * i + 3] = _mm512_shuffle_ps::<0xEE>(t[4 * i + 1], t[4 * i + 3]);
                }
                // ... then the 128-bit lanes of the four row groups, twice.
                for j in 0..4 {
                    let a = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
                    let b = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
                    let c = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
                    let d = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
                    v[j] = _mm512_shuffle_f32x4::<0x88>(a, c);
                    v[8 + j] = _mm512_shuffle_f32x4::<0xDD>(a, c);
                    v[4 + j] = _mm512_shuffle_f32x4::<0x88>(b, d);
                    v[12 + j] = _mm512_shuffle_f32x4::<0xDD>(b, d);
                }
            }
        }
        #[inline(always)]
        fn hsum16(v: &[__m512; 16]) -> __m512 {
            // Level by level, the pairings of `hsum_tree` (lane l with l + 8, then l + 4, l + 2,
            // l + 1), two vectors per addition: 256-bit halves, then 128-bit quarters, then
            // within 128-bit lanes. The result's lane 4a + b holds input 4b + a, so the inputs
            // are taken in that (self-inverse) order.
            const ORDER: [usize; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
            unsafe {
                // Plain loops: `array::from_fn` would not be inlined (see kernel.rs).
                let mut s1 = [_mm512_setzero_ps(); 8];
                for p in 0..8 {
                    let (a, b) = (v[ORDER[2 * p]], v[ORDER[2 * p + 1]]);
                    s1[p] = _mm512_add_ps(
                        _mm512_shuffle_f32x4::<0x44>(a, b),
                        _mm512_shuffle_f32x4::<0xEE>(a, b),
                    );
                }
                let mut s2 = [_mm512_setzero_ps(); 4];
                for q in 0..4 {
                    let (a, b) = (s1[2 * q], s1[2 * q + 1]);
                    s2[q] = _mm512_add_ps(
                        _mm512_shuffle_f32x4::<0x88>(a, b),
                        _mm512_shuffle_f32x4::<0xDD>(a, b),
                    );
                }
                let mut s3 = [_mm512_setzero_ps(); 2];
                for r in 0..2 {
                    let (a, b) = (s2[2 * r], s2[2 * r + 1]);
                    s3[r] = _mm512_add_ps(
                        _mm512_shuffle_ps::<0x44>(a, b),
                        _mm512_shuffle_ps::<0xEE>(a, b),
                    );
                }
                _mm512_add_ps(
                    _mm512_shuffle_ps::<0x88>(s3[0], s3[1]),
                    _mm512_shuffle_ps::<0xDD>(s3[0], s3[1]),
                )
            }
        }
        #[inline(always)]
        fn bilinear_corners(v: __m512) -> __m512 {
            // Lanes 4n..4n + 4 hold (s, a, b, ab). The additions are masked to the first lane
            // of each group, because adding a zero elsewhere could turn −0 into +0. The last
            // lane's only extra operation is `ab − (+0)`, which leaves every value as it is.
            const FIRST: __mmask16 = 0x1111;
            unsafe {
                let x = _mm512_permute_ps::<0b11_01_10_00>(v); // (s, b, a, ab)
                let y = _mm512_maskz_permute_ps::<0b11_11_11_01>(0x7777, v); // (a, ab, ab, 0)
                let z = _mm512_permute_ps::<0b10_10_10_10>(v); // b everywhere
                let y = _mm512_mask_add_ps(y, FIRST, y, z); // (a + b, ab, ab, 0)
                let d = _mm512_sub_ps(x, y);
                let ab = _mm512_permute_ps::<0b11_11_11_11>(v);
                _mm512_mask_add_ps(d, FIRST, d, ab)
            }
        }
    }

    /// `act::f32_to_bf16` in integer lanes: each lane's top half is its bf16.
    #[inline(always)]
    unsafe fn bf16_top(v: __m512) -> __m512i {
        _mm512_add_epi32(_mm512_castps_si512(v), _mm512_set1_epi32(0x8000))
    }

    /// Sum of 8 lanes as `hsum_tree` orders it after its first halving.
    #[inline(always)]
    unsafe fn hsum8(h8: __m256) -> f32 {
        let h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps::<1>(h8));
        let h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps::<1>(h2, h2)))
    }

    /// `act::f32_to_bf16` on 8 lanes, the bf16 in the low half of each lane.
    #[inline(always)]
    unsafe fn bf16_bits8(v: __m256) -> __m256i {
        let b = _mm256_castps_si256(v);
        _mm256_srli_epi32::<16>(_mm256_add_epi32(b, _mm256_set1_epi32(0x8000)))
    }

    pub struct Avx2;

    #[derive(Clone, Copy)]
    pub struct Pair(__m256, __m256);

    impl Lanes for Avx2 {
        type V = Pair;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Pair {
            Pair(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Pair) {
            _mm256_storeu_ps(p, v.0);
            _mm256_storeu_ps(p.add(8), v.1);
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> Pair {
            let half = |q: *const u16| {
                let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(q as *const __m128i));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(h))
            };
            Pair(half(p), half(p.add(8)))
        }
        #[inline(always)]
        unsafe fn store_bf16(p: *mut u16, v: Pair) {
            // The halves' rounded words are packed to 16-bit per 128-bit lane, hence the
            // 64-bit permute back into order.
            let packed = _mm256_packus_epi32(bf16_bits8(v.0), bf16_bits8(v.1));
            let h = _mm256_permute4x64_epi64::<0b11_01_10_00>(packed);
            _mm256_storeu_si256(p as *mut __m256i, h)
        }
        #[inline(always)]
        unsafe fn round_bf16(v: Pair) -> Pair {
            #[inline(always)]
            unsafe fn round(v: __m256) -> __m256 {
                let b = _mm256_add_epi32(_mm256_castps_si256(v), _mm256_set1_epi32(0x8000));
                let top = _mm256_set1_epi32(0xFFFF_0000u32 as i32);
                _mm256_castsi256_ps(_mm256_and_si256(b, top))
            }
            Pair(round(v.0), round(v.1))
        }
        #[inline(always)]
        unsafe fn load_bf16_pair(p: *const u16) -> (Pair, Pair) {
            let (lo, hi) = (
                _mm256_loadu_si256(p as *const __m256i),
                _mm256_loadu_si256(p.add(16) as *const __m256i),
            );
            // Plain functions, not closures: a closure would not inherit the caller's
            // `target_feature`, and its intrinsics would become calls.
            #[inline(always)]
            unsafe fn even(w: __m256i) -> __m256 {
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w))
            }
            #[inline(always)]
            unsafe fn odd(w: __m256i) -> __m256 {
                _mm256_castsi256_ps(_mm256_and_si256(
                    w,
                    _mm256_set1_epi32(0xFFFF_0000u32 as i32),
                ))
            }
            (Pair(even(lo), even(hi)), Pair(odd(lo), odd(hi)))
        }
        #[inline(always)]
        unsafe fn store_bf16_pair(p: *mut u16, even: Pair, odd: Pair) {
            #[inline(always)]
            unsafe fn words(e: __m256, o: __m256) -> __m256i {
                _mm256_or_si256(bf16_bits8(e), _mm256_slli_epi32::<16>(bf16_bits8(o)))
            }
            _mm256_storeu_si256(p as *mut __m256i, words(even.0, odd.0));
            _mm256_storeu_si256(p.add(16) as *mut __m256i, words(even.1, odd.1));
        }
        #[inline(always)]
        unsafe fn load_f16(p: *const u16) -> Pair {
            Pair(
                _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(p.add(8) as *const __m128i)),
            )
        }
        #[inline(always)]
        unsafe fn store_f16(p: *mut u16, v: Pair) {
            const RNE: i32 = _MM_FROUND_TO_NEAREST_INT;
            _mm_storeu_si128(p as *mut __m128i, _mm256_cvtps_ph::<RNE>(v.0));
            _mm_storeu_si128(p.add(8) as *mut __m128i, _mm256_cvtps_ph::<RNE>(v.1));
        }
        #[inline(always)]
        fn splat(x: f32) -> Pair {
            unsafe { Pair(_mm256_set1_ps(x), _mm256_set1_ps(x)) }
        }
        #[inline(always)]
        fn add(a: Pair, b: Pair) -> Pair {
            unsafe { Pair(_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1)) }
        }
        #[inline(always)]
        fn sub(a: Pair, b: Pair) -> Pair {
            unsafe { Pair(_mm256_sub_ps(a.0, b.0), _mm256_sub_ps(a.1, b.1)) }
        }
        #[inline(always)]
        fn mul(a: Pair, b: Pair) -> Pair {
            unsafe { Pair(_mm256_mul_ps(a.0, b.0), _mm256_mul_ps(a.1, b.1)) }
        }
        #[inline(always)]
        fn div(a: Pair, b: Pair) -> Pair {
            unsafe { Pair(_mm256_div_ps(a.0, b.0), _mm256_div_ps(a.1, b.1)) }
        }
        #[inline(always)]
        fn sqrt(a: Pair) -> Pair {
            unsafe { Pair(_mm256_sqrt_ps(a.0), _mm256_sqrt_ps(a.1)) }
        }
        #[inline(always)]
        fn fma(a: Pair, b: Pair, c: Pair) -> Pair {
            unsafe {
                Pair(
                    _mm256_fmadd_ps(a.0, b.0, c.0),
                    _mm256_fmadd_ps(a.1, b.1, c.1),
                )
            }
        }
        #[inline(always)]
        fn mul_add(a: Pair, b: Pair, c: Pair) -> Pair {
            Self::fma(a, b, c)
        }
        #[inline(always)]
        fn max(a: Pair, b: Pair) -> Pair {
            unsafe { Pair(_mm256_max_ps(a.0, b.0), _mm256_max_ps(a.1, b.1)) }
        }
        #[inline(always)]
        fn exp_approx(a: Pair) -> Pair {
            unsafe { Pair(exp_ymm(a.0), exp_ymm(a.1)) }
        }
        #[inline(always)]
        fn softmax_exp(a: Pair) -> Pair {
            unsafe { Pair(softmax_exp_ymm(a.0), softmax_exp_ymm(a.1)) }
        }
        #[inline(always)]
        fn transpose16(v: &mut [Pair; 16]) {
            // Plain loops, not `map`: closures do not inherit the caller's `target_feature`,
            // so vectors passed through them go by memory.
            unsafe {
                let (mut lo, mut hi) = ([_mm256_setzero_ps(); 16], [_mm256_setzero_ps(); 16]);
                for i in 0..16 {
                    (lo[i], hi[i]) = (v[i].0, v[i].1);
                }
                transpose16_ymm(&mut lo, &mut hi);
                for i in 0..16 {
                    v[i] = Pair(lo[i], hi[i]);
                }
            }
        }
        #[inline(always)]
        fn interleave4(v: [Pair; 4]) -> [Pair; 4] {
            // The low halves make the first 32 floats, the high halves the last 32.
            unsafe {
                let lo = interleave4_ymm([v[0].0, v[1].0, v[2].0, v[3].0]);
                let hi = interleave4_ymm([v[0].1, v[1].1, v[2].1, v[3].1]);
                [
                    Pair(lo[0], lo[1]),
                    Pair(lo[2], lo[3]),
                    Pair(hi[0], hi[1]),
                    Pair(hi[2], hi[3]),
                ]
            }
        }
        #[inline(always)]
        fn deinterleave4(v: [Pair; 4]) -> [Pair; 4] {
            unsafe {
                let lo = deinterleave4_ymm([v[0].0, v[0].1, v[1].0, v[1].1]);
                let hi = deinterleave4_ymm([v[2].0, v[2].1, v[3].0, v[3].1]);
                [
                    Pair(lo[0], hi[0]),
                    Pair(lo[1], hi[1]),
                    Pair(lo[2], hi[2]),
                    Pair(lo[3], hi[3]),
                ]
            }
        }
        #[inline(always)]
        fn sigmoid(z: Pair) -> Pair {
            unsafe fn half(z: __m256) -> __m256 {
                let x = _mm256_min_ps(
                    _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), z), _mm256_set1_ps(-87.0)),
                    _mm256_set1_ps(88.0),
                );
                let n = _mm256_floor_ps(_mm256_fmadd_ps(
                    x,
                    _mm256_set1_ps(LOG2E),
                    _mm256_set1_ps(0.5),
                ));
                let r = _mm256_sub_ps(
                    _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI))),
                    _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)),
                );
                let mut p = _mm256_set1_ps(P[0]);
                for c in &P[1..] {
                    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
                }
                p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0));
                let pow = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                    _mm256_cvttps_epi32(n),
                    _mm256_set1_epi32(127),
                )));
                _mm256_div_ps(
                    _mm256_set1_ps(1.0),
                    _mm256_add_ps(_mm256_set1_ps(1.0), _mm256_mul_ps(p, pow)),
                )
            }
            unsafe { Pair(half(z.0), half(z.1)) }
        }
        #[inline(always)]
        fn hsum(a: Pair) -> f32 {
            unsafe { hsum8(_mm256_add_ps(a.0, a.1)) }
        }
    }
}
