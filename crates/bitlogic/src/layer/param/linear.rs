//! `linear`: a sigmoid of an affine function of the inputs.
//!
//! ```text
//!   y = σ((b + Σ_j w_j x_j) / τ)            (relaxed)
//!   LUT[k] = b + Σ_j w_j bit_j(k) > 0        (discrete)
//! ```
//! Weights are `[w_0, …, w_{n−1}, b]`. An affine function is multilinear, so its corner values
//! fold exactly: a_k = (b + Σ_j w_j bit_j(k)) / τ with the sigmoid as activation.

use super::{logit, WeightInit};
use crate::rng::Rng;

/// bit_j(k) in MSB order: input j is address bit n−1−j.
#[inline(always)]
fn bit(rank: usize, k: usize, j: usize) -> f32 {
    ((k >> (rank - 1 - j)) & 1) as f32
}

pub(super) fn init(rank: usize, init: WeightInit, tau: f32, rng: &mut Rng, w: &mut [f32]) {
    match init {
        WeightInit::Random => w.iter_mut().for_each(|v| *v = rng.normal()),
        WeightInit::Residual { probability } => {
            // z = L·(2 x_0 − 1) gives σ(z/τ) = p at x_0 = 1 and 1 − p at x_0 = 0.
            let l = tau * logit(probability);
            w.iter_mut().for_each(|v| *v = 0.0);
            w[0] = 2.0 * l;
            w[rank] = -l;
        }
    }
}

#[inline(always)]
pub(super) fn fold(rank: usize, w: &[f32], tau: f32, hard: bool, a: &mut [f32]) {
    let inv = 1.0 / tau;
    for (k, a) in a.iter_mut().enumerate() {
        let z = w[rank] + (0..rank).map(|j| w[j] * bit(rank, k, j)).sum::<f32>();
        *a = if hard {
            (z > 0.0) as u8 as f32
        } else {
            z * inv
        };
    }
}

#[inline(always)]
pub(super) fn unfold_grad(rank: usize, tau: f32, da: &[f32], dw: &mut [f32]) {
    let inv = 1.0 / tau;
    for (k, &d) in da.iter().enumerate() {
        let d = d * inv;
        for (j, dw) in dw[..rank].iter_mut().enumerate() {
            *dw += d * bit(rank, k, j);
        }
        dw[rank] += d;
    }
}

pub(super) fn reference(rank: usize, w: &[f64], tau: f64, x: &[f64]) -> f64 {
    let z = w[rank] + (0..rank).map(|j| w[j] * x[j]).sum::<f64>();
    1.0 / (1.0 + (-z / tau).exp())
}
