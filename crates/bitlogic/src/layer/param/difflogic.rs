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

#[inline(always)]
fn softmax(w: &[f32], tau: f32, p: &mut [f32; 16]) {
    let m = w.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v / tau));
    let mut s = 0.0;
    for (p, &w) in p.iter_mut().zip(w) {
        *p = crate::layer::kernel::exp_approx(w / tau - m);
        s += *p;
    }
    p.iter_mut().for_each(|p| *p /= s);
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
    let mut p = [0f32; 16];
    softmax(w, tau, &mut p);
    for (k, a) in a.iter_mut().enumerate() {
        *a = (0..16).map(|g| p[g] * gate_table(g, k)).sum();
    }
}

#[inline(always)]
pub(super) fn unfold_grad(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    let mut p = [0f32; 16];
    softmax(w, tau, &mut p);
    let mut dp = [0f32; 16];
    for (g, dp) in dp.iter_mut().enumerate() {
        *dp = (0..4).map(|k| gate_table(g, k) * da[k]).sum();
    }
    let mean: f32 = (0..16).map(|g| p[g] * dp[g]).sum();
    for g in 0..16 {
        dw[g] += p[g] * (dp[g] - mean) / tau;
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
