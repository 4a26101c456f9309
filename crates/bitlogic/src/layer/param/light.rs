//! `light`: one logit per LUT entry.
//!
//! ```text
//!   y = Σ_k σ(w_k/τ) φ_k(x)          (relaxed)
//!   LUT[k] = w_k > 0                  (discrete)
//! ```
//! The fold is direct: a_k = σ(w_k/τ).

use super::{basis, logit, WeightInit};
use crate::layer::kernel::sigmoid_approx;
use crate::rng::Rng;

pub(super) fn init(rank: usize, init: WeightInit, tau: f32, rng: &mut Rng, w: &mut [f32]) {
    match init {
        WeightInit::Random => w.iter_mut().for_each(|v| *v = rng.normal()),
        WeightInit::Residual { probability } => {
            // Entries whose address has input 0 (the MSB) set lean to 1, the rest to 0.
            let l = tau * logit(probability);
            for (k, v) in w.iter_mut().enumerate() {
                *v = if (k >> (rank - 1)) & 1 == 1 { l } else { -l };
            }
        }
    }
}

// The polynomial sigmoid vectorises; these run over every weight every step.
#[inline(always)]
pub(super) fn fold(w: &[f32], tau: f32, hard: bool, a: &mut [f32]) {
    let inv = 1.0 / tau;
    for (a, &w) in a.iter_mut().zip(w) {
        *a = if hard {
            (w > 0.0) as u8 as f32
        } else {
            sigmoid_approx(w * inv)
        };
    }
}

#[inline(always)]
pub(super) fn unfold_grad(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    let inv = 1.0 / tau;
    for ((dw, &w), &da) in dw.iter_mut().zip(w).zip(da) {
        let s = sigmoid_approx(w * inv);
        *dw += da * s * (1.0 - s) * inv;
    }
}

pub(super) fn reference(rank: usize, w: &[f64], tau: f64, x: &[f64]) -> f64 {
    (0..1 << rank)
        .map(|k| basis(rank, k, x) / (1.0 + (-w[k] / tau).exp()))
        .sum()
}
