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
use crate::layer::lanes::{softmax_exp, Lanes};
use crate::rng::Rng;

mod block;

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

// The soft fold and its gradient come twice: for one neuron here, in plain f32 (the
// reference, and the tail of a run), and for 16 neurons side by side in the vector lanes of
// an instruction set (`block`). Both do the same operations in the same order, so a neuron's
// coefficients and gradients do not depend on which path or which instruction set ran it.

/// T_g[k] as a condition, for the sums over the gates.
#[inline(always)]
const fn has(g: usize, k: usize) -> bool {
    (g >> (3 - k)) & 1 == 1
}

/// The unnormalised softmax of one neuron's logits, e_g = exp(w_g/τ − max_h w_h/τ), and
/// 1 / Σ e. With τ > 0 the largest w_g/τ is (the largest w_g)/τ, and one fused
/// multiply-add per gate gives w_g/τ − that.
#[inline(always)]
fn exp_shifted(w: &[f32], tau: f32) -> ([f32; 16], f32) {
    let inv = 1.0 / tau;
    let mut m = w[0];
    for &x in &w[1..16] {
        // A compare and select, not `f32::max`: autovectorised for AVX-512, `max` once gave
        // a shift other than the largest logit (logits are never NaN).
        m = if x > m { x } else { m };
    }
    let m = m * inv;
    let mut e = [0f32; 16];
    let mut s = 0f32;
    for (e, &w) in e.iter_mut().zip(w) {
        *e = softmax_exp(w.mul_add(inv, -m));
        s += *e;
    }
    (e, 1.0 / s)
}

#[inline(always)]
fn fold_one(w: &[f32], tau: f32, a: &mut [f32]) {
    let (e, inv) = exp_shifted(w, tau);
    for (k, a) in a.iter_mut().enumerate().take(4) {
        // a_k = Σ_g p_g T_g[k]: the gates whose table has a 1 at k, in gate order.
        let mut acc = 0f32;
        for (g, &e) in e.iter().enumerate() {
            if has(g, k) {
                acc += e;
            }
        }
        *a = acc * inv;
    }
}

#[inline(always)]
fn unfold_one(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    let (mut p, inv) = exp_shifted(w, tau);
    for p in p.iter_mut() {
        *p *= inv;
    }
    // ∂a_k/∂w_g = p_g (T_g[k] − a_k) / τ, so dw_g = p_g (dp_g − Σ_h p_h dp_h) / τ with
    // dp_g = Σ_k T_g[k] da_k (in k order).
    let mut dp = [0f32; 16];
    for (g, dp) in dp.iter_mut().enumerate() {
        for (k, &d) in da.iter().enumerate().take(4) {
            if has(g, k) {
                *dp += d;
            }
        }
    }
    let mut mean = 0f32;
    for (&p, &dp) in p.iter().zip(&dp) {
        mean += p * dp;
    }
    let t = 1.0 / tau;
    for ((dw, &p), &dp) in dw.iter_mut().zip(&p).zip(&dp) {
        *dw += p * (dp - mean) * t;
    }
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
    fold_one(w, tau, a);
}

/// The soft fold of a run of neurons (`w` `[n][16]`, `a` `[n][4]`), 32 and then 16 at a
/// time in the lanes of `S`, the rest one by one.
#[inline(always)]
pub(super) fn fold_run<S: Lanes>(w: &[f32], tau: f32, a: &mut [f32]) {
    let mut wc = w.chunks_exact(512);
    let mut ac = a.chunks_exact_mut(128);
    for (w, a) in (&mut wc).zip(&mut ac) {
        block::fold::<S, 2>(w, tau, a);
    }
    let (w, a) = (wc.remainder(), ac.into_remainder());
    let mut wc = w.chunks_exact(256);
    let mut ac = a.chunks_exact_mut(64);
    for (w, a) in (&mut wc).zip(&mut ac) {
        block::fold::<S, 1>(w, tau, a);
    }
    for (w, a) in wc
        .remainder()
        .chunks(16)
        .zip(ac.into_remainder().chunks_mut(4))
    {
        fold_one(w, tau, a);
    }
}

#[inline(always)]
pub(super) fn unfold_grad(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    unfold_one(w, tau, da, dw);
}

/// `unfold_grad` over a run of neurons, in blocks as `fold_run`.
#[inline(always)]
pub(super) fn unfold_run<S: Lanes>(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    let mut wc = w.chunks_exact(512);
    let mut dc = da.chunks_exact(128);
    let mut oc = dw.chunks_exact_mut(512);
    for ((w, da), dw) in (&mut wc).zip(&mut dc).zip(&mut oc) {
        block::unfold::<S, 2>(w, tau, da, dw);
    }
    let (w, da, dw) = (wc.remainder(), dc.remainder(), oc.into_remainder());
    let mut wc = w.chunks_exact(256);
    let mut dc = da.chunks_exact(64);
    let mut oc = dw.chunks_exact_mut(256);
    for ((w, da), dw) in (&mut wc).zip(&mut dc).zip(&mut oc) {
        block::unfold::<S, 1>(w, tau, da, dw);
    }
    let rest = wc
        .remainder()
        .chunks(16)
        .zip(dc.remainder().chunks(4))
        .zip(oc.into_remainder().chunks_mut(16));
    for ((w, da), dw) in rest {
        unfold_one(w, tau, da, dw);
    }
}

/// `unfold_run` into a zeroed `dw`, handing each neuron's gradient row to `apply` with the
/// neuron's index in the run and its row of `w`, which `apply` may write. The logits are read
/// at `at`, or at `w` where it is `None`.
///
/// A caller that takes the optimizer step in `apply` (see `train::params`) spends most of it
/// in the divider, the slowest unit of the step. So the loop is software pipelined: the 16
/// rows of one block are applied one per gate inside the next block's exponentials, where
/// the other vector units have work. Two blocks at a time, as `unfold_run` takes them, ran
/// slower here (more live vectors).
#[inline(always)]
pub(super) fn unfold_run_each<S: Lanes>(
    at: Option<&[f32]>,
    w: &mut [f32],
    tau: f32,
    da: &[f32],
    mut apply: impl FnMut(usize, &mut [f32], S::V),
) {
    let n = w.len() / 16;
    // Each gradient is 0 + its value, as in a zeroed `dw` (−0 becomes +0).
    let zero = S::splat(0.0);
    let mut held = [zero; 16];
    let mut i = 0;
    while i + 16 <= n {
        let (done, rest) = w.split_at_mut(16 * i);
        let x = at.map_or(&rest[..256], |a| &a[16 * i..16 * (i + 16)]);
        let before = i.checked_sub(16);
        let rows = block::unfold_rows::<S, 1>(
            x,
            tau,
            &da[4 * i..],
            #[inline(always)]
            |g| {
                if let Some(b) = before {
                    let j = b + g;
                    apply(j, &mut done[16 * j..16 * (j + 1)], held[g]);
                }
            },
        );
        for (h, &g) in held.iter_mut().zip(&rows[0]) {
            *h = S::add(zero, g);
        }
        i += 16;
    }
    if let Some(b) = i.checked_sub(16) {
        for (g, &row) in held.iter().enumerate() {
            apply(b + g, &mut w[16 * (b + g)..16 * (b + g + 1)], row);
        }
    }
    for i in i..n {
        let mut g = [0f32; 16];
        let x = at.unwrap_or(w);
        unfold_one(
            &x[16 * i..16 * (i + 1)],
            tau,
            &da[4 * i..4 * (i + 1)],
            &mut g,
        );
        // SAFETY: `g` holds 16 floats.
        apply(i, &mut w[16 * i..16 * (i + 1)], unsafe {
            S::load(g.as_ptr())
        });
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
    use crate::layer::lanes::Scalar;

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
        // A pair of blocks of 16, one block alone and a tail of 7. Logits up to ±40 at
        // τ = 0.3 put some gates far below the clamp of exp; equal logits, zero and −0
        // gradients take the edge cases.
        let (n, tau, p) = (55, 0.3, Parametrization::Difflogic);
        let mut r = Rng::new(13);
        let mut w: Vec<f32> = (0..n * 16).map(|_| 10.0 * r.normal()).collect();
        w[16..32].iter_mut().for_each(|w| *w = 1.5);
        w[40] = 0.0;
        w[41] = -0.0;
        let mut da: Vec<f32> = (0..n * 4).map(|_| r.normal()).collect();
        da[4..8].copy_from_slice(&[0.0, -0.0, 0.0, -0.0]);
        da[9] = -0.0;
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
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
            let (mut a, mut dw) = (vec![0f32; n * 4], vec![1f32; n * 16]);
            fold_neurons_at(level, p, 2, &w, 16, tau, false, &mut a);
            unfold_neurons_at(level, p, 2, &w, 16, tau, &da, &mut dw);
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
