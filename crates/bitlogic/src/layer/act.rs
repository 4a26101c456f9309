//! Storage types of activations and activation gradients (`amp_dtype`, SPEC §2).
//!
//! A training step streams every activation row and every gradient row through memory at
//! least twice, so halving their bytes halves that traffic and the worker buffers. Only the
//! *storage* changes: kernels load 16 values into f32 lanes ([`Act::load`]), compute in f32
//! and round once when they store ([`Act::store`], to nearest). Weights, folded
//! coefficients, every gradient sum and the optimizer stay f32.
//!
//! | type | bits | exponent | mantissa | note |
//! | --- | --- | --- | --- | --- |
//! | `f32` | 32 | 8 | 23 | the reference; load and store are plain moves |
//! | [`Bf16`] | 16 | 8 | 7 | the top half of an f32: f32's range, 3 significant digits |
//! | [`F16`] | 16 | 5 | 10 | IEEE half: more precision, range 6e-8 … 65504 (hence [`Act::LOSS_SCALING`]) |
//!
//! The scalar conversions here are the reference the SIMD versions in `lanes` are tested
//! against, bit for bit: NaN stays NaN (quiet, sign kept), ±∞ stays ±∞, f16 rounds into
//! its subnormals and overflows to ∞ past 65519.

use super::lanes::Lanes;

/// bfloat16: the upper 16 bits of an f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Bf16(pub u16);

/// IEEE 754 binary16.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct F16(pub u16);

/// A storage type for activations and their gradients.
pub trait Act: Copy + Default + PartialEq + Send + Sync + std::fmt::Debug + 'static {
    /// `f32`, `bf16` or `f16`.
    const NAME: &'static str;
    const ZERO: Self;
    const ONE: Self;
    /// Whether the trainer scales the loss gradient up before the backward pass (and the f32
    /// parameter gradients back down after it). f16 needs it: the gradient of a batch mean is
    /// the per-sample gradient / n, and 1e-3 of it at a deep layer is already below f16's
    /// normal range (6e-5) at n = 128. The scale is the largest power of two ≤ n, which puts
    /// stored gradients at per-sample size (≤ 1 at the loss, with ample headroom below f16's
    /// maximum 65504) and makes both scalings exact in f32.
    const LOSS_SCALING: bool;
    /// True for [`Bf16`] only, whose [`Act::load2`] takes even- and odd-indexed values.
    const BF16: bool = false;
    /// An encoded input bit as an activation: 0 → 0, anything else → 1. The scalar
    /// definition; the training blocks convert whole rows with `rows::bit_rows`, which LLVM
    /// cannot turn into a branch per bit (it does so here for bf16 and f16).
    fn from_bit(b: u8) -> Self;
    /// Round to nearest (see [`f32_to_bf16`] and [`f32_to_f16`] for ties and NaN).
    fn from_f32(x: f32) -> Self;
    fn to_f32(self) -> f32;
    /// Sixteen values widened to f32 lanes.
    ///
    /// # Safety
    /// `p` must point to 16 readable values, and `S`'s instruction set must be available.
    unsafe fn load<S: Lanes>(p: *const Self) -> S::V;
    /// Sixteen f32 lanes rounded to this type as [`Act::from_f32`].
    ///
    /// # Safety
    /// `p` must point to 16 writable values, and `S`'s instruction set must be available.
    unsafe fn store<S: Lanes>(p: *mut Self, v: S::V);
    /// What [`Act::store`] then [`Act::load`] give, kept in registers where the type allows.
    ///
    /// # Safety
    /// `S`'s instruction set must be available.
    #[inline(always)]
    unsafe fn round<S: Lanes>(v: S::V) -> S::V {
        let mut t = [Self::ZERO; 16];
        Self::store::<S>(t.as_mut_ptr(), v);
        Self::load::<S>(t.as_ptr())
    }
    /// Thirty-two values as two vectors, in an order of the type's choosing that
    /// [`Act::store2`] undoes: the first and the second sixteen, except for bf16, which
    /// takes the even- and the odd-indexed values (half the instructions to widen, see
    /// [`Lanes::load_bf16_pair`]). Kernels that work lane by lane may use it wherever every
    /// row they touch goes through `load2`/`store2` alike.
    ///
    /// # Safety
    /// `p` must point to 32 readable values, and `S`'s instruction set must be available.
    #[inline(always)]
    unsafe fn load2<S: Lanes>(p: *const Self) -> (S::V, S::V) {
        (Self::load::<S>(p), Self::load::<S>(p.add(16)))
    }
    /// The inverse of [`Act::load2`], rounding as [`Act::store`].
    ///
    /// # Safety
    /// `p` must point to 32 writable values, and `S`'s instruction set must be available.
    #[inline(always)]
    unsafe fn store2<S: Lanes>(p: *mut Self, a: S::V, b: S::V) {
        Self::store::<S>(p, a);
        Self::store::<S>(p.add(16), b);
    }
}

impl Act for f32 {
    const NAME: &'static str = "f32";
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const LOSS_SCALING: bool = false;
    #[inline(always)]
    fn from_bit(b: u8) -> Self {
        f32::from(u8::from(b != 0))
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    unsafe fn load<S: Lanes>(p: *const Self) -> S::V {
        S::load(p)
    }
    #[inline(always)]
    unsafe fn store<S: Lanes>(p: *mut Self, v: S::V) {
        S::store(p, v)
    }
    #[inline(always)]
    unsafe fn round<S: Lanes>(v: S::V) -> S::V {
        v
    }
}

impl Act for Bf16 {
    const NAME: &'static str = "bf16";
    const ZERO: Self = Bf16(0);
    const ONE: Self = Bf16(0x3F80);
    // bf16 has f32's exponent range: nothing to scale.
    const LOSS_SCALING: bool = false;
    const BF16: bool = true;
    #[inline(always)]
    fn from_bit(b: u8) -> Self {
        Bf16((b != 0) as u16 * Self::ONE.0)
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        Bf16(f32_to_bf16(x))
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16_to_f32(self.0)
    }
    #[inline(always)]
    unsafe fn load<S: Lanes>(p: *const Self) -> S::V {
        S::load_bf16(p as *const u16)
    }
    #[inline(always)]
    unsafe fn store<S: Lanes>(p: *mut Self, v: S::V) {
        S::store_bf16(p as *mut u16, v)
    }
    #[inline(always)]
    unsafe fn load2<S: Lanes>(p: *const Self) -> (S::V, S::V) {
        S::load_bf16_pair(p as *const u16)
    }
    #[inline(always)]
    unsafe fn store2<S: Lanes>(p: *mut Self, a: S::V, b: S::V) {
        S::store_bf16_pair(p as *mut u16, a, b)
    }
    #[inline(always)]
    unsafe fn round<S: Lanes>(v: S::V) -> S::V {
        S::round_bf16(v)
    }
}

impl Act for F16 {
    const NAME: &'static str = "f16";
    const ZERO: Self = F16(0);
    const ONE: Self = F16(0x3C00);
    const LOSS_SCALING: bool = true;
    #[inline(always)]
    fn from_bit(b: u8) -> Self {
        F16((b != 0) as u16 * Self::ONE.0)
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        F16(f32_to_f16(x))
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16_to_f32(self.0)
    }
    #[inline(always)]
    unsafe fn load<S: Lanes>(p: *const Self) -> S::V {
        S::load_f16(p as *const u16)
    }
    #[inline(always)]
    unsafe fn store<S: Lanes>(p: *mut Self, v: S::V) {
        S::store_f16(p as *mut u16, v)
    }
}

/// f32 → bf16, round to nearest, ties away from zero: add half a bf16 unit in the last
/// place to the bits and keep the top half. A carry out of the mantissa steps the exponent,
/// and past the largest finite value lands on ∞.
///
/// Not ties to even, because this is one integer addition per lane in every instruction set,
/// where ties to even takes four more (or AVX512-BF16's conversion and a permute, which
/// some CPUs lack and which flushes subnormals). In the rank-2 kernels the store is a large
/// part of each pass: the training step's blocks took 2–5 % less (light and difflogic rank 2,
/// light rank 4 and 6, bf16). The two differ only on exact ties.
///
/// A NaN stays a NaN unless its top seven mantissa bits are all zero (a signalling NaN,
/// which becomes ±∞) or all ones with the low half at 0x8000 or above (which carries into
/// the sign: ∓0). x86's default NaN (0xFFC0_0000), every NaN computed from it and every
/// NaN read from a bf16 row are none of these.
#[inline(always)]
pub fn f32_to_bf16(x: f32) -> u16 {
    (x.to_bits().wrapping_add(0x8000) >> 16) as u16
}

#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// f32 → f16, round to nearest even, as `vcvtps2ph` does: subnormal results are rounded
/// (not flushed), values from 65520 up become ∞, NaN becomes a quiet NaN keeping the sign
/// and the top payload bits.
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let a = b & 0x7FFF_FFFF;
    let h = if a > 0x7F80_0000 {
        0x7E00 | ((a >> 13) & 0x3FF) as u16
    } else if a >= 0x4780_0000 {
        // |x| ≥ 2^16 (and ∞): beyond rounding range.
        0x7C00
    } else if a < 0x3880_0000 {
        // |x| < 2^-14: the result is subnormal or zero. Adding 0.5 aligns the 10 kept bits
        // at the bottom of the mantissa, and the f32 addition rounds them to nearest even.
        let magic = f32::from_bits(0x3F00_0000);
        ((f32::from_bits(a) + magic).to_bits() - magic.to_bits()) as u16
    } else {
        // Rebias the exponent, then round the 13 dropped bits to nearest even.
        let odd = (a >> 13) & 1;
        ((a.wrapping_sub((127 - 15) << 23) + 0xFFF + odd) >> 13) as u16
    };
    sign | h
}

/// f16 → f32 (exact; a NaN is returned quiet, as `vcvtph2ps` returns it).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let mant = (h & 0x3FF) as u32;
    let bits = match exp {
        // Subnormal: mant · 2^-24, exact in f32.
        0 => (mant as f32 * f32::from_bits(0x3380_0000)).to_bits(),
        31 if mant == 0 => 0x7F80_0000,
        31 => 0x7FC0_0000 | (mant << 13),
        _ => ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(sign | bits)
}

#[cfg(test)]
mod tests;
