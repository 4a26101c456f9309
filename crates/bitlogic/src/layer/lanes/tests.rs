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

/// `out = exp_approx(x)`, or `softmax_exp(x)` with `softmax`, 16 lanes at a time.
#[inline(always)]
fn exp_any<S: Lanes>(softmax: bool, x: &[f32], out: &mut [f32]) {
    for (x, o) in x.chunks_exact(16).zip(out.chunks_exact_mut(16)) {
        // SAFETY: both chunks hold 16 floats.
        unsafe {
            let x = S::load(x.as_ptr());
            let y = if softmax {
                S::softmax_exp(x)
            } else {
                S::exp_approx(x)
            };
            S::store(o.as_mut_ptr(), y);
        }
    }
}

dispatch! {
    #[allow(dead_code)]
    pub fn exp / exp_at (softmax: bool, x: &[f32], out: &mut [f32]) => exp_any;
}

/// Checks that every SIMD level gives the bits `want` for `x`.
fn every_level_gives(softmax: bool, x: &[f32], want: &[u32]) {
    for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
        let mut out = vec![0f32; x.len()];
        exp_at(level, softmax, x, &mut out);
        let got: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want, "{level:?}");
    }
}

#[test]
fn exp_approx_matches_the_scalar_bit_for_bit() {
    let mut r = Rng::new(5);
    // Both clamps, infinities, zeros of both signs, and a spread of magnitudes.
    let mut x: Vec<f32> = vec![
        -f32::INFINITY,
        f32::INFINITY,
        -1e30,
        1e30,
        -87.0,
        -87.5,
        88.0,
        88.5,
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        0.5,
        -0.5,
        0.346_573_6,
        -0.346_573_6,
    ];
    x.extend((0..4096).map(|_| r.normal() * 2f32.powi(r.below(10) as i32 - 2)));
    let want: Vec<u32> = x
        .iter()
        .map(|&x| crate::layer::kernel::exp_approx(x).to_bits())
        .collect();
    every_level_gives(false, &x, &want);
}

#[test]
fn softmax_exp_matches_the_scalar_bit_for_bit_and_exp_to_two_ulp() {
    let mut r = Rng::new(6);
    // The clamp, zeros of both signs, the ends of the reduced range, and x ≤ 0 of every
    // magnitude a softmax meets.
    let mut x: Vec<f32> = vec![
        -f32::INFINITY,
        -1e30,
        -87.0,
        -87.5,
        -86.9,
        0.0,
        -0.0,
        -1e-30,
        -0.346_573_6,
        -0.346_573_7,
        -std::f32::consts::LN_2,
        -1.0,
    ];
    x.extend((0..4084).map(|_| -(r.normal() * 2f32.powi(r.below(10) as i32 - 2)).abs()));
    let want: Vec<u32> = x.iter().map(|&x| super::softmax_exp(x).to_bits()).collect();
    every_level_gives(true, &x, &want);
    for (&x, &bits) in x.iter().zip(&want) {
        let (got, exact) = (f32::from_bits(bits) as f64, (x.max(-87.0) as f64).exp());
        // Relative error within two units in the last place of a normal f32.
        assert!(
            ((got - exact) / exact).abs() <= 2.0 * f32::EPSILON as f64,
            "exp({x}) = {got}, want {exact}"
        );
    }
}

/// `out[..64]`: `interleave4` of `v[..64]`; `out[64..128]`: `deinterleave4` of `v[..64]`;
/// `out[128..144]`: `max` of `v[..16]` and `v[16..32]`.
#[inline(always)]
fn moves_any<S: Lanes>(v: &[f32], out: &mut [f32]) {
    let (v, out) = (&v[..64], &mut out[..144]);
    // SAFETY: the offsets stay inside the slices' lengths, checked above.
    unsafe {
        let mut four = [S::splat(0.0); 4];
        for (i, x) in four.iter_mut().enumerate() {
            *x = S::load(v.as_ptr().add(16 * i));
        }
        for (j, &x) in S::interleave4(four).iter().enumerate() {
            S::store(out.as_mut_ptr().add(16 * j), x);
        }
        for (j, &x) in S::deinterleave4(four).iter().enumerate() {
            S::store(out.as_mut_ptr().add(64 + 16 * j), x);
        }
        S::store(out.as_mut_ptr().add(128), S::max(four[0], four[1]));
    }
}

dispatch! {
    #[allow(dead_code)]
    pub fn moves / moves_at (v: &[f32], out: &mut [f32]) => moves_any;
}

#[test]
fn interleaves_and_max_move_every_float_where_they_say() {
    // Distinct values: float i is i (and a few negatives for max).
    let mut v: Vec<f32> = (0..64).map(|i| i as f32).collect();
    for i in (0..32).step_by(3) {
        v[i] = -v[i] - 100.0;
    }
    let mut want = vec![0f32; 144];
    for l in 0..16 {
        for k in 0..4 {
            want[4 * l + k] = v[16 * k + l];
            want[64 + 16 * k + l] = v[4 * l + k];
        }
        want[128 + l] = v[l].max(v[16 + l]);
    }
    for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
        let mut out = vec![0f32; 144];
        moves_at(level, &v, &mut out);
        assert_eq!(out, want, "{level:?}");
    }
}

#[inline(always)]
fn corners_any<S: Lanes>(v: &[f32], out: &mut [f32]) {
    for (x, o) in v.chunks_exact(16).zip(out.chunks_exact_mut(16)) {
        // SAFETY: both chunks hold 16 floats.
        unsafe { S::store(o.as_mut_ptr(), S::bilinear_corners(S::load(x.as_ptr()))) };
    }
}

dispatch! {
    #[allow(dead_code)]
    pub fn corners / corners_at (v: &[f32], out: &mut [f32]) => corners_any;
}

#[test]
fn bilinear_corners_are_the_formula_bit_for_bit_at_every_level() {
    let mut r = Rng::new(5);
    let mut v: Vec<f32> = (0..64 * 16)
        .map(|_| r.normal() * 2f32.powi(r.below(41) as i32 - 20))
        .collect();
    // Signed zeros, where an operation on the wrong lanes (even adding zero) would show,
    // infinities and a NaN.
    let edges = [
        0.0,
        -0.0,
        -0.0,
        -0.0,
        -0.0,
        0.0,
        -0.0,
        0.0,
        f32::INFINITY,
        1.0,
        -1.0,
        2.0,
    ];
    v[..edges.len()].copy_from_slice(&edges);
    v[20] = f32::NAN;
    let want: Vec<u32> = v
        .chunks_exact(4)
        .flat_map(|n| {
            let [s, sa, sb, sab] = [n[0], n[1], n[2], n[3]];
            [(s - (sa + sb)) + sab, sb - sab, sa - sab, sab].map(f32::to_bits)
        })
        .collect();
    for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
        let mut out = vec![0f32; v.len()];
        corners_at(level, &v, &mut out);
        let got: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
        // NaNs compare by being NaN (their payload may differ by level).
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let (gf, wf) = (f32::from_bits(*g), f32::from_bits(*w));
            assert!(
                g == w || (gf.is_nan() && wf.is_nan()),
                "{level:?} [{i}]: {gf:?}, expected {wf:?}"
            );
        }
    }
}
