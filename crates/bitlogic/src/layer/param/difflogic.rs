//! `difflogic`: a softmax over the 16 two-input gates (Petersen et al., 2022).
//!
//! ```text
//!   y = Σ_g softmax(w/τ)_g · gate_g(a, b)     (relaxed, real-valued gates: a·b, a+b−a·b, …)
//!   LUT = truth table of argmax_g w_g          (discrete)
//! ```
//! Each real-valued gate is the multilinear interpolation of its truth table, so the whole
//! mixture folds to 4 coefficients: a_k = Σ_g p_g T_g[k]. Gate g's truth table in MSB order
//! (address k = 2a + b) is bit 3−k of g: gate 1 is AND, 6 XOR, 7 OR, 14 NAND, …

use super::{logit, WeightInit};
use crate::layer::lanes::{Lanes, Scalar};
use crate::rng::Rng;

/// T_g[k]: output of gate `g` at address `k` (k = 2a + b).
#[inline(always)]
pub fn gate_table(g: usize, k: usize) -> f32 {
    ((g >> (3 - k)) & 1) as f32
}

/// The 16 gates as real-valued functions, written out as difflogic defines them.
pub fn gate_real(g: usize, a: f64, b: f64) -> f64 {
    match g {
        0 => 0.0,
        1 => a * b,
        2 => a - a * b,
        3 => a,
        4 => b - a * b,
        5 => b,
        6 => a + b - 2.0 * a * b,
        7 => a + b - a * b,
        8 => 1.0 - (a + b - a * b),
        9 => 1.0 - (a + b - 2.0 * a * b),
        10 => 1.0 - b,
        11 => 1.0 - b + a * b,
        12 => 1.0 - a,
        13 => 1.0 - a + a * b,
        14 => 1.0 - a * b,
        _ => 1.0,
    }
}

/// Gate 3 passes input a (input 0) through.
const PASS_A: usize = 3;

pub(super) fn init(init: WeightInit, tau: f32, rng: &mut Rng, w: &mut [f32]) {
    match init {
        WeightInit::Random => w.iter_mut().for_each(|v| *v = rng.normal()),
        WeightInit::Residual { probability } => {
            // softmax puts `probability` on the pass-through gate when its logit exceeds the
            // 15 others (all zero) by ln(15 p / (1 − p)).
            w.iter_mut().for_each(|v| *v = 0.0);
            w[PASS_A] = tau * (logit(probability) + 15f32.ln());
        }
    }
}

// The soft fold and its gradient are written per lane: `L` neurons side by side, lane l
// holding neuron l (`w` is `[L][16]`, `a` `[L][4]`). With L = 16 the loops run across
// neurons and vectorise, and the moves between a neuron's row and the lanes are 16×16
// transposes in registers (`Lanes::transpose16`; written per element they compile to gathers
// and scatters, which cost more than the arithmetic). L = 1 is the single neuron. Both
// compute the same operations in the same order, so a neuron's coefficients do not depend on
// which path folded it.

/// Sixteen rows of `width` ≤ 16 floats at `p` as vectors, transposed: `v[j]` holds element j
/// of every row (zeros past `width`).
#[inline(always)]
fn columns<S: Lanes>(p: &[f32], width: usize) -> [S::V; 16] {
    let mut v = [S::splat(0.0); 16];
    if width == 16 {
        for (r, x) in v.iter_mut().enumerate() {
            // SAFETY: the slice (bounds-checked) holds 16 floats.
            *x = unsafe { S::load(p[16 * r..16 * r + 16].as_ptr()) };
        }
    } else {
        for (r, x) in v.iter_mut().enumerate() {
            let mut row = [0f32; 16];
            row[..width].copy_from_slice(&p[width * r..width * r + width]);
            // SAFETY: `row` holds 16 floats.
            *x = unsafe { S::load(row.as_ptr()) };
        }
    }
    S::transpose16(&mut v);
    v
}

/// The gate logits of `L` neurons, transposed to `[gate][lane]` and divided by τ.
#[inline(always)]
fn logits<S: Lanes, const L: usize>(w: &[f32], tau: f32) -> [[f32; L]; 16] {
    let inv = 1.0 / tau;
    let mut x = [[0f32; L]; 16];
    if L == 16 {
        let v = columns::<S>(w, 16);
        for (row, &g) in x.iter_mut().zip(&v) {
            // SAFETY: with L = 16 a row holds 16 floats.
            unsafe { S::store(row.as_mut_ptr(), S::mul(g, S::splat(inv))) };
        }
        return x;
    }
    for l in 0..L {
        for g in 0..16 {
            x[g][l] = w[l * 16 + g] * inv;
        }
    }
    x
}

/// `out[l * W + j] (+)= m[j][l]` for the first `W` rows of `m` (`[W][L]` to `[L][W]`).
#[inline(always)]
fn untranspose<S: Lanes, const L: usize, const W: usize>(
    m: &[[f32; L]],
    add: bool,
    out: &mut [f32],
) {
    if L == 16 {
        let mut v = [S::splat(0.0); 16];
        for (x, row) in v.iter_mut().zip(m) {
            // SAFETY: with L = 16 a row holds 16 floats.
            *x = unsafe { S::load(row.as_ptr()) };
        }
        S::transpose16(&mut v);
        for (l, &x) in v.iter().enumerate() {
            let mut row = [0f32; 16];
            // SAFETY: `row` holds 16 floats.
            unsafe { S::store(row.as_mut_ptr(), x) };
            let o = &mut out[l * W..l * W + W];
            if add {
                o.iter_mut().zip(&row).for_each(|(o, r)| *o += r);
            } else {
                o.copy_from_slice(&row[..W]);
            }
        }
        return;
    }
    for l in 0..L {
        for j in 0..W {
            let o = &mut out[l * W + j];
            *o = if add { *o + m[j][l] } else { m[j][l] };
        }
    }
}

/// Unnormalised softmax in place (e_g = exp(x_g − max)); returns 1 / Σ e per lane.
#[inline(always)]
fn exp_shifted<const L: usize>(x: &mut [[f32; L]; 16]) -> [f32; L] {
    let mut m = x[0];
    for row in &x[1..] {
        for l in 0..L {
            // A compare and select, not `f32::max`: vectorised for AVX-512, `max` did not
            // always give the shift one neuron at a time gives, and the softmax then differed
            // in its last bits (logits are never NaN).
            m[l] = if row[l] > m[l] { row[l] } else { m[l] };
        }
    }
    let mut s = [0f32; L];
    for row in x.iter_mut() {
        for l in 0..L {
            row[l] = crate::layer::kernel::exp_approx(row[l] - m[l]);
            s[l] += row[l];
        }
    }
    let mut inv = [0f32; L];
    for l in 0..L {
        inv[l] = 1.0 / s[l];
    }
    inv
}

#[inline(always)]
fn fold_lanes<S: Lanes, const L: usize>(w: &[f32], tau: f32, a: &mut [f32]) {
    let mut e = logits::<S, L>(w, tau);
    let inv = exp_shifted(&mut e);
    let mut out = [[0f32; L]; 4];
    for (k, out) in out.iter_mut().enumerate() {
        let mut acc = [0f32; L];
        // a_k = Σ_g p_g T_g[k]: the gates whose table has a 1 at k, in gate order.
        for (g, row) in e.iter().enumerate() {
            if gate_table(g, k) == 1.0 {
                for l in 0..L {
                    acc[l] += row[l];
                }
            }
        }
        for l in 0..L {
            out[l] = acc[l] * inv[l];
        }
    }
    untranspose::<S, L, 4>(&out, false, a);
}

#[inline(always)]
fn unfold_lanes<S: Lanes, const L: usize>(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    let mut p = logits::<S, L>(w, tau);
    let inv = exp_shifted(&mut p);
    for row in p.iter_mut() {
        for l in 0..L {
            row[l] *= inv[l];
        }
    }
    // ∂a_k/∂w_g = p_g (T_g[k] − a_k) / τ, so dw_g = p_g (dp_g − Σ_h p_h dp_h) / τ with
    // dp_g = Σ_k T_g[k] da_k.
    // `da` transposed to `[k][lane]` once: read in place, every gate gathered it anew.
    let mut dt = [[0f32; L]; 4];
    if L == 16 {
        let v = columns::<S>(da, 4);
        for (row, &x) in dt.iter_mut().zip(&v) {
            // SAFETY: with L = 16 a row holds 16 floats.
            unsafe { S::store(row.as_mut_ptr(), x) };
        }
    } else {
        for l in 0..L {
            for k in 0..4 {
                dt[k][l] = da[l * 4 + k];
            }
        }
    }
    // dp_g sums the da_k of the 1s in gate g's table in k order, from 0; the last of them
    // is the lowest set bit of g, so dp_g = dp_(g without it) + da_k: the same additions in
    // the same order, one per gate and no branches.
    let mut dp = [[0f32; L]; 16];
    for g in 1..16usize {
        let low = g & g.wrapping_neg();
        let k = 3 - low.trailing_zeros() as usize;
        for l in 0..L {
            dp[g][l] = dp[g - low][l] + dt[k][l];
        }
    }
    let mut mean = [0f32; L];
    for g in 0..16 {
        for l in 0..L {
            mean[l] += p[g][l] * dp[g][l];
        }
    }
    let t = 1.0 / tau;
    let mut out = [[0f32; L]; 16];
    for g in 0..16 {
        for l in 0..L {
            out[g][l] = p[g][l] * (dp[g][l] - mean[l]) * t;
        }
    }
    untranspose::<S, L, 16>(&out, true, dw);
}

#[inline(always)]
fn argmax(w: &[f32]) -> usize {
    let mut best = 0;
    for (g, &v) in w.iter().enumerate() {
        if v > w[best] {
            best = g;
        }
    }
    best
}

#[inline(always)]
pub(super) fn fold(w: &[f32], tau: f32, hard: bool, a: &mut [f32]) {
    if hard {
        let g = argmax(w);
        for (k, a) in a.iter_mut().enumerate() {
            *a = gate_table(g, k);
        }
        return;
    }
    fold_lanes::<Scalar, 1>(w, tau, a);
}

/// The soft fold of a run of neurons (`w` `[n][16]`, `a` `[n][4]`), 16 at a time.
#[inline(always)]
pub(super) fn fold_run<S: Lanes>(w: &[f32], tau: f32, a: &mut [f32]) {
    let mut wc = w.chunks_exact(256);
    let mut ac = a.chunks_exact_mut(64);
    for (w, a) in (&mut wc).zip(&mut ac) {
        fold_lanes::<S, 16>(w, tau, a);
    }
    for (w, a) in wc
        .remainder()
        .chunks(16)
        .zip(ac.into_remainder().chunks_mut(4))
    {
        fold_lanes::<S, 1>(w, tau, a);
    }
}

#[inline(always)]
pub(super) fn unfold_grad(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    unfold_lanes::<Scalar, 1>(w, tau, da, dw);
}

/// `unfold_grad` over a run of neurons, 16 at a time.
#[inline(always)]
pub(super) fn unfold_run<S: Lanes>(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    let mut wc = w.chunks_exact(256);
    let mut dc = da.chunks_exact(64);
    let mut oc = dw.chunks_exact_mut(256);
    for ((w, da), dw) in (&mut wc).zip(&mut dc).zip(&mut oc) {
        unfold_lanes::<S, 16>(w, tau, da, dw);
    }
    let rest = wc
        .remainder()
        .chunks(16)
        .zip(dc.remainder().chunks(4))
        .zip(oc.into_remainder().chunks_mut(16));
    for ((w, da), dw) in rest {
        unfold_lanes::<S, 1>(w, tau, da, dw);
    }
}

pub(super) fn reference(w: &[f64], tau: f64, x: &[f64]) -> f64 {
    let m = w.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v / tau));
    let e: Vec<f64> = w.iter().map(|&v| (v / tau - m).exp()).collect();
    let s: f64 = e.iter().sum();
    (0..16).map(|g| e[g] / s * gate_real(g, x[0], x[1])).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_neurons_fold_and_unfold_like_one_neuron_at_a_time() {
        // 37 neurons: two vectorised groups of 16 and a remainder of 5.
        let (n, tau) = (37, 0.7);
        let mut r = Rng::new(11);
        let w: Vec<f32> = (0..n * 16).map(|_| 3.0 * r.normal()).collect();
        let da: Vec<f32> = (0..n * 4).map(|_| r.normal()).collect();
        let mut run = vec![0f32; n * 4];
        fold_run::<Scalar>(&w, tau, &mut run);
        let mut dw_run = vec![0.5f32; n * 16];
        unfold_run::<Scalar>(&w, tau, &da, &mut dw_run);
        for i in 0..n {
            let mut one = [0f32; 4];
            fold(&w[i * 16..(i + 1) * 16], tau, false, &mut one);
            assert_eq!(&run[i * 4..(i + 1) * 4], &one, "fold, neuron {i}");
            let mut dw = [0.5f32; 16];
            unfold_grad(
                &w[i * 16..(i + 1) * 16],
                tau,
                &da[i * 4..(i + 1) * 4],
                &mut dw,
            );
            assert_eq!(&dw_run[i * 16..(i + 1) * 16], &dw, "unfold, neuron {i}");
        }
        // And the coefficients are the mixture they stand for: Σ_g p_g T_g[k].
        let p: Vec<f64> = {
            let e: Vec<f64> = w[..16]
                .iter()
                .map(|&v| (v as f64 / tau as f64).exp())
                .collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|e| e / s).collect()
        };
        for (k, &got) in run.iter().enumerate().take(4) {
            let want: f64 = (0..16).map(|g| p[g] * gate_table(g, k) as f64).sum();
            assert!((got as f64 - want).abs() < 1e-6, "a_{k}: {got} vs {want}");
        }
    }

    #[test]
    fn every_simd_level_folds_and_unfolds_like_one_neuron_at_a_time() {
        use crate::layer::kernel::{fold_neurons_at, unfold_neurons_at};
        use crate::layer::simd::SimdLevel;
        use crate::layer::Parametrization;
        // Three vectorised groups (their transposes in registers at AVX-512) and a tail of 7.
        let (n, tau, p) = (55, 0.3, Parametrization::Difflogic);
        let mut r = Rng::new(13);
        let w: Vec<f32> = (0..n * 16).map(|_| 4.0 * r.normal()).collect();
        let da: Vec<f32> = (0..n * 4).map(|_| r.normal()).collect();
        let (mut a1, mut dw1) = (vec![0f32; n * 4], vec![0f32; n * 16]);
        for i in 0..n {
            let (w, a) = (&w[i * 16..(i + 1) * 16], &mut a1[i * 4..(i + 1) * 4]);
            fold(w, tau, false, a);
            unfold_grad(
                w,
                tau,
                &da[i * 4..(i + 1) * 4],
                &mut dw1[i * 16..(i + 1) * 16],
            );
        }
        for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
            let (mut a, mut dw) = (vec![0f32; n * 4], vec![1f32; n * 16]);
            fold_neurons_at(level, p, 2, &w, 16, tau, false, &mut a);
            unfold_neurons_at(level, p, 2, &w, 16, tau, &da, &mut dw);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&a1), "{level:?} fold");
            assert_eq!(bits(&dw), bits(&dw1), "{level:?} unfold");
        }
    }

    #[test]
    fn real_gates_interpolate_their_truth_tables() {
        for g in 0..16 {
            for k in 0..4 {
                let (a, b) = ((k >> 1) as f64, (k & 1) as f64);
                assert_eq!(
                    gate_real(g, a, b),
                    gate_table(g, k) as f64,
                    "gate {g} at {k}"
                );
            }
        }
        // Named gates at their well-known addresses.
        assert_eq!(gate_table(1, 3), 1.0); // AND(1,1)
        assert_eq!(gate_table(6, 0), 0.0); // XOR(0,0)
        assert_eq!(gate_table(6, 2), 1.0); // XOR(1,0)
        assert_eq!(gate_table(14, 3), 0.0); // NAND(1,1)
    }
}
