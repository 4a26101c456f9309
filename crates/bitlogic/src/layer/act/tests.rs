//! The scalar conversions on hand-picked values (ties, signs, subnormals, ∞, NaN), then every
//! SIMD level against them, bit for bit.

use super::*;
use crate::layer::simd::{dispatch, SimdLevel};
use crate::rng::Rng;

const LEVELS: [SimdLevel; 3] = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512];

#[test]
fn bf16_rounds_to_nearest_ties_away_from_zero() {
    for (x, want) in [
        (0x3F80_0000u32, 0x3F80u16), // 1
        (0x3F80_8000, 0x3F81),       // 1 + half an ulp: tie, away from zero (up)
        (0x3F81_8000, 0x3F82),       // tie above an odd top half: up as well
        (0x3F80_8001, 0x3F81),       // just above the tie
        (0x3F80_7FFF, 0x3F80),       // just below it
        (0xBF80_8000, 0xBF81),       // negative tie: away from zero (down)
        (0xBF80_7FFF, 0xBF80),       // negative, just below the tie in magnitude
        (0x8000_0000, 0x8000),       // −0
        (0x0001_8000, 0x0002),       // f32 subnormal, tie
        (0x0000_8000, 0x0001),       // f32 subnormal, tie: the smallest bf16 subnormal
        (0x0000_7FFF, 0x0000),       // below it: +0
        (0x7F7F_7FFF, 0x7F7F),       // just below the tie with ∞: the largest finite bf16
        (0x7F7F_8000, 0x7F80),       // the tie: ∞
        (0x7F7F_FFFF, 0x7F80),       // largest finite f32 rounds to ∞
        (0xFF7F_FFFF, 0xFF80),       // and its negative to −∞
        (0x7F80_0000, 0x7F80),       // ∞
        (0xFF80_0000, 0xFF80),       // −∞
        (0x7FC0_0000, 0x7FC0),       // quiet NaN
        (0xFFC0_0000, 0xFFC0),       // x86's default NaN
        (0x7FC0_8000, 0x7FC1),       // quiet NaN with low payload: still NaN
        (0xFFA0_0000, 0xFFA0),       // negative signalling NaN, top payload: still NaN
        (0x7F80_0001, 0x7F80),       // signalling NaN with only low payload: ∞ (documented)
        (0x7FFF_8000, 0x8000),       // NaN with a full top payload carries into the sign
    ] {
        assert_eq!(f32_to_bf16(f32::from_bits(x)), want, "{x:#010x}");
    }
    assert_eq!(bf16_to_f32(0x3F80), 1.0);
    assert_eq!(bf16_to_f32(0xC040), -3.0);
    assert_eq!(Bf16::ONE.to_f32(), 1.0);
    assert_eq!(
        (Bf16::from_bit(0), Bf16::from_bit(1)),
        (Bf16::ZERO, Bf16::ONE)
    );
}

#[test]
fn f16_rounds_to_nearest_even() {
    let two = |e: i32| 2f32.powi(e);
    for (x, want) in [
        (1.0f32, 0x3C00u16),
        (1.0 + two(-11), 0x3C00),       // tie, down to even
        (1.0 + 3.0 * two(-11), 0x3C02), // tie, up to even
        (1.0 + two(-11) + two(-20), 0x3C01),
        (-2.0, 0xC000),
        (-0.0, 0x8000),
        (65504.0, 0x7BFF), // largest finite
        (65519.0, 0x7BFF), // below the tie with 2^16
        (65520.0, 0x7C00), // the tie rounds to even, which is ∞
        (1e6, 0x7C00),
        (-1e6, 0xFC00),
        (two(-14), 0x0400),            // smallest normal
        (two(-14) - two(-25), 0x0400), // rounds up into the normals
        (two(-24), 0x0001),            // smallest subnormal
        (two(-25), 0x0000),            // tie between 0 and 2^-24: even is 0
        (3.0 * two(-25), 0x0002),      // tie between 1 and 2 ulps: even is 2
        (two(-25) + two(-40), 0x0001),
        (-1023.0 * two(-24), 0x83FF), // largest subnormal, negative
        (1e-10, 0x0000),
        (f32::INFINITY, 0x7C00),
        (f32::NEG_INFINITY, 0xFC00),
        (f32::NAN, 0x7E00),
    ] {
        assert_eq!(f32_to_f16(x), want, "{x:e}");
    }
    assert_eq!(f32_to_f16(f32::from_bits(0xFF80_0001)), 0xFE00); // −sNaN: quiet, sign kept
    assert_eq!(f16_to_f32(0x0001), two(-24));
    assert_eq!(f16_to_f32(0x83FF), -1023.0 * two(-24));
    assert_eq!(f16_to_f32(0x7BFF), 65504.0);
    assert_eq!(f16_to_f32(0xFC00), f32::NEG_INFINITY);
    assert!(f16_to_f32(0x7C01).is_nan());
    assert_eq!(F16::ONE.to_f32(), 1.0);
    assert_eq!((F16::from_bit(0), F16::from_bit(1)), (F16::ZERO, F16::ONE));
    assert_eq!((f32::from_bit(0), f32::from_bit(1)), (0.0, 1.0));
}

#[test]
fn every_16_bit_value_round_trips() {
    for h in 0..=u16::MAX {
        let (b, f) = (bf16_to_f32(h), f16_to_f32(h));
        if b.is_nan() {
            assert!(bf16_to_f32(f32_to_bf16(b)).is_nan());
        } else {
            assert_eq!(f32_to_bf16(b), h, "bf16 {h:#06x}");
        }
        if f.is_nan() {
            assert!(f16_to_f32(f32_to_f16(f)).is_nan());
        } else {
            assert_eq!(f32_to_f16(f), h, "f16 {h:#06x}");
        }
    }
}

/// Lane-level conversions of whole slices (multiples of 16), dispatched like the kernels.
#[inline(always)]
fn store_any<S: Lanes, A: Act>(src: &[f32], dst: &mut [A]) {
    for (s, d) in src.chunks_exact(16).zip(dst.chunks_exact_mut(16)) {
        // SAFETY: 16 values each; the caller checked S's features.
        unsafe { A::store::<S>(d.as_mut_ptr(), S::load(s.as_ptr())) }
    }
}

#[inline(always)]
fn load_any<S: Lanes, A: Act>(src: &[A], dst: &mut [f32]) {
    for (s, d) in src.chunks_exact(16).zip(dst.chunks_exact_mut(16)) {
        // SAFETY: as above.
        unsafe { S::store(d.as_mut_ptr(), A::load::<S>(s.as_ptr())) }
    }
}

dispatch! {
    #[allow(dead_code)]
    pub fn store_lanes<A: Act> / store_lanes_at (src: &[f32], dst: &mut [A]) => store_any;
}

dispatch! {
    #[allow(dead_code)]
    pub fn load_lanes<A: Act> / load_lanes_at (src: &[A], dst: &mut [f32]) => load_any;
}

/// Hand-picked f32 bit patterns around every rounding boundary of both types, then random ones.
fn test_floats() -> Vec<f32> {
    let mut bits: Vec<u32> = vec![
        0,
        0x8000_0000,
        0x3F80_0000,
        0x3F80_8000,
        0x3F81_8000,
        0x3F80_8001,
        0xBF81_8000,
        0x0001_8000,
        0x0000_8000,
        0x7F7F_FFFF,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0x7F80_0001,
        0xFFA0_0000,
        0x7FFF_FFFF,
        0x477F_E000,
        0x477F_F000,
        0x477F_EFFF,
        0x4780_0000,
        0x3880_0000,
        0x387F_FFFF,
        0x3380_0000,
        0x3300_0000,
        0x3340_0000,
        0x3300_0001,
        0x32FF_FFFF,
        0x0000_0001,
        0x3F80_1000,
        0x3F80_3000,
        0x3F80_2FFF,
    ];
    let mut r = Rng::new(17);
    // Random patterns, and random values in the ranges activations and gradients live in.
    bits.extend((0..4000).map(|_| r.next_u64() as u32));
    bits.extend((0..2000).map(|_| (r.uniform() * 2.0 - 1.0).to_bits()));
    bits.extend((0..2000).map(|_| ((r.uniform() - 0.5) * 1e-5).to_bits()));
    bits.resize(bits.len().div_ceil(16) * 16, 0x3F00_0000);
    bits.into_iter().map(f32::from_bits).collect()
}

fn check_store<A: Act>(to_bits: impl Fn(A) -> u16) {
    let x = test_floats();
    for level in LEVELS {
        let mut out = vec![A::ZERO; x.len()];
        store_lanes_at(level, &x, &mut out);
        for (v, &o) in x.iter().zip(&out) {
            let want = to_bits(A::from_f32(*v));
            assert_eq!(
                to_bits(o),
                want,
                "{} {level:?} {:#010x}",
                A::NAME,
                v.to_bits()
            );
        }
    }
}

fn check_load<A: Act>(from_bits: impl Fn(u16) -> A) {
    let all: Vec<A> = (0..=u16::MAX).map(from_bits).collect();
    for level in LEVELS {
        let mut out = vec![0f32; all.len()];
        load_lanes_at(level, &all, &mut out);
        for (h, &o) in all.iter().zip(&out) {
            let want = h.to_f32();
            assert_eq!(o.to_bits(), want.to_bits(), "{} {level:?} {h:?}", A::NAME);
        }
    }
}

#[test]
fn simd_levels_convert_like_the_scalar_reference() {
    check_store::<Bf16>(|h| h.0);
    check_store::<F16>(|h| h.0);
    check_load(Bf16);
    check_load(F16);
    // f32 "conversion" is a plain move.
    let x = test_floats();
    let mut y = vec![0f32; x.len()];
    for level in LEVELS {
        store_lanes_at(level, &x, &mut y);
        assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// Where `load2` puts row value `j` of 32: (vector, lane). bf16 splits even and odd values,
/// the other types the first and the second sixteen.
fn pair_slot<A: Act>(j: usize) -> usize {
    if A::BF16 {
        (j % 2) * 16 + j / 2
    } else {
        j
    }
}

/// `load2`/`store2` over slices (multiples of 32), the two vectors as 32 consecutive f32.
#[inline(always)]
fn store2_any<S: Lanes, A: Act>(src: &[f32], dst: &mut [A]) {
    for (s, d) in src.chunks_exact(32).zip(dst.chunks_exact_mut(32)) {
        // SAFETY: 32 values each; the caller checked S's features.
        unsafe {
            let (a, b) = (S::load(s.as_ptr()), S::load(s.as_ptr().add(16)));
            A::store2::<S>(d.as_mut_ptr(), a, b)
        }
    }
}

#[inline(always)]
fn load2_any<S: Lanes, A: Act>(src: &[A], dst: &mut [f32]) {
    for (s, d) in src.chunks_exact(32).zip(dst.chunks_exact_mut(32)) {
        // SAFETY: as above.
        unsafe {
            let (a, b) = A::load2::<S>(s.as_ptr());
            S::store(d.as_mut_ptr(), a);
            S::store(d.as_mut_ptr().add(16), b);
        }
    }
}

dispatch! {
    #[allow(dead_code)]
    pub fn store2_lanes<A: Act> / store2_lanes_at (src: &[f32], dst: &mut [A]) => store2_any;
}

dispatch! {
    #[allow(dead_code)]
    pub fn load2_lanes<A: Act> / load2_lanes_at (src: &[A], dst: &mut [f32]) => load2_any;
}

/// The test floats padded to a multiple of 32.
fn test_floats32() -> Vec<f32> {
    let mut x = test_floats();
    x.resize(x.len().div_ceil(32) * 32, 0.25);
    x
}

fn check_pairs<A: Act>(to_bits: impl Fn(A) -> u16 + Copy, from_bits: impl Fn(u16) -> A) {
    let x = test_floats32();
    let all: Vec<A> = (0..=u16::MAX).map(from_bits).collect();
    for level in LEVELS {
        let mut out = vec![A::ZERO; x.len()];
        store2_lanes_at(level, &x, &mut out);
        for (c, (xs, os)) in x.chunks_exact(32).zip(out.chunks_exact(32)).enumerate() {
            for (j, &o) in os.iter().enumerate() {
                let v = xs[pair_slot::<A>(j)];
                let want = to_bits(A::from_f32(v));
                let (name, bits) = (A::NAME, v.to_bits());
                assert_eq!(
                    to_bits(o),
                    want,
                    "store2 {name} {level:?} {c}:{j} {bits:#010x}"
                );
            }
        }
        let mut wide = vec![0f32; all.len()];
        load2_lanes_at(level, &all, &mut wide);
        for (hs, ws) in all.chunks_exact(32).zip(wide.chunks_exact(32)) {
            for (j, h) in hs.iter().enumerate() {
                let got = ws[pair_slot::<A>(j)];
                assert_eq!(got.to_bits(), h.to_f32().to_bits(), "load2 {level:?} {h:?}");
            }
        }
    }
}

#[test]
fn pairs_of_chunks_load_and_store_like_the_reference() {
    check_pairs::<Bf16>(|h| h.0, Bf16);
    check_pairs::<F16>(|h| h.0, F16);
}
