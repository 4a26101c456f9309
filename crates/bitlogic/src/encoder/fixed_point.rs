//! `UniformFixedPoint(num_bits)`: a uniform quantiser whose level is written in binary.
//!
//! Fitted on values with minimum `lo` and maximum `hi` (globally or per feature), with
//! `L = 2^num_bits − 1`:
//!
//! ```text
//!   level(x) = clamp(round((x − lo) / (hi − lo) · L), 0, L)      (0 when hi = lo)
//!   bit i    = bit (num_bits − 1 − i) of level                   (MSB first)
//! ```
//!
//! Unlike a thermometer, `num_bits` bits distinguish 2^num_bits levels, so the code is
//! compact but no longer monotone bit by bit. The stored parameters are `[lo, hi]` per group.
//!
//! ```
//! use bitlogic::encoder::{Encoder, EncoderKind};
//! let mut enc = Encoder::new(EncoderKind::FixedPoint, 2, false)?;
//! enc.fit(&[0.0, 3.0], 2, 1)?;
//! // Levels 0..=3 on [0, 3]: 2.0 → level 2 → bits 1 0.
//! assert_eq!(enc.encode(&[2.0], 1)?, vec![1, 0]);
//! # Ok::<(), bitlogic::Error>(())
//! ```

/// Largest `num_bits` of the fixed-point code (the level must fit a `u32` comfortably).
pub const MAX_BITS: usize = 16;

/// The quantisation level of `v` on `[lo, hi]` with `k` bits.
#[inline]
pub fn level(v: f32, lo: f32, hi: f32, k: usize) -> u32 {
    let top = ((1u32 << k) - 1) as f64;
    let span = f64::from(hi) - f64::from(lo);
    if span <= 0.0 {
        return 0;
    }
    // f64 keeps the exact midpoints of small integer ranges (pixel values) on the right side.
    let q = ((f64::from(v) - f64::from(lo)) / span * top).round();
    q.clamp(0.0, top) as u32
}

/// Writes the `k`-bit code of `v` into `out` (MSB first).
#[inline]
pub fn encode(v: f32, lo: f32, hi: f32, out: &mut [u8]) {
    let k = out.len();
    let l = level(v, lo, hi, k);
    for (i, b) in out.iter_mut().enumerate() {
        *b = ((l >> (k - 1 - i)) & 1) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_and_clamp() {
        // 3 bits on [0, 7]: one level per unit.
        assert_eq!(level(0.0, 0.0, 7.0, 3), 0);
        assert_eq!(level(3.49, 0.0, 7.0, 3), 3);
        assert_eq!(level(3.5, 0.0, 7.0, 3), 4);
        assert_eq!(level(-5.0, 0.0, 7.0, 3), 0);
        assert_eq!(level(99.0, 0.0, 7.0, 3), 7);
        // 8 bits on pixel values: identity.
        for p in 0..=255u32 {
            assert_eq!(level(p as f32, 0.0, 255.0, 8), p);
        }
        assert_eq!(level(4.0, 2.0, 2.0, 4), 0, "a constant feature is level 0");
    }

    #[test]
    fn code_is_msb_first() {
        let mut out = [0u8; 4];
        encode(11.0, 0.0, 15.0, &mut out);
        assert_eq!(out, [1, 0, 1, 1]);
    }
}
