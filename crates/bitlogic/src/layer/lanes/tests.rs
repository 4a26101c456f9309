use super::Lanes;
use crate::layer::simd::{dispatch, SimdLevel};
use crate::rng::Rng;

/// `out[16 g + i] = hsum16(v[16 g ..][i])` for each group of 16 vectors in `v`.
#[inline(always)]
fn hsum16_any<S: Lanes>(v: &[f32], out: &mut [f32]) {
    for (g, o) in v.chunks_exact(256).zip(out.chunks_exact_mut(16)) {
        // SAFETY: each group holds 16 × 16 floats and `o` 16.
        unsafe {
            let mut vs = [S::splat(0.0); 16];
            for (i, x) in vs.iter_mut().enumerate() {
                *x = S::load(g.as_ptr().add(16 * i));
            }
            S::store(o.as_mut_ptr(), S::hsum16(&vs));
        }
    }
}

dispatch! {
    #[allow(dead_code)]
    pub fn hsum16 / hsum16_at (v: &[f32], out: &mut [f32]) => hsum16_any;
}

#[test]
fn hsum16_matches_one_hsum_per_vector_bit_for_bit() {
    let mut r = Rng::new(3);
    // Magnitudes spread over 2^±20, so a different pairing would change the rounding.
    let groups = 64;
    let v: Vec<f32> = (0..groups * 256)
        .map(|_| r.normal() * 2f32.powi(r.below(41) as i32 - 20))
        .collect();
    let want: Vec<u32> = v
        .chunks_exact(16)
        .map(|x| {
            let mut a = [0f32; 16];
            a.copy_from_slice(x);
            super::Scalar::hsum(a).to_bits()
        })
        .collect();
    for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
        let mut out = vec![0f32; groups * 16];
        hsum16_at(level, &v, &mut out);
        let got: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want, "{level:?}");
    }
}

#[inline(always)]
fn transpose_any<S: Lanes>(m: &[f32], out: &mut [f32]) {
    for (g, o) in m.chunks_exact(256).zip(out.chunks_exact_mut(256)) {
        // SAFETY: each group holds 16 × 16 floats.
        unsafe {
            let mut vs = [S::splat(0.0); 16];
            for (i, x) in vs.iter_mut().enumerate() {
                *x = S::load(g.as_ptr().add(16 * i));
            }
            S::transpose16(&mut vs);
            for (i, x) in vs.iter().enumerate() {
                S::store(o.as_mut_ptr().add(16 * i), *x);
            }
        }
    }
}

dispatch! {
    #[allow(dead_code)]
    pub fn transpose / transpose_at (m: &[f32], out: &mut [f32]) => transpose_any;
}

#[test]
fn transpose16_moves_every_element_at_every_level() {
    let mut r = Rng::new(4);
    let m: Vec<f32> = (0..3 * 256).map(|_| r.normal()).collect();
    for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
        let mut out = vec![0f32; m.len()];
        transpose_at(level, &m, &mut out);
        for g in 0..3 {
            for i in 0..16 {
                for j in 0..16 {
                    let (got, want) = (out[256 * g + 16 * j + i], m[256 * g + 16 * i + j]);
                    assert_eq!(got.to_bits(), want.to_bits(), "{level:?} {g}: ({i}, {j})");
                }
            }
        }
    }
}
