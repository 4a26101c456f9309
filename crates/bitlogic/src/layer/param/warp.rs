//! `warp`: Walsh coefficients of a sigmoid (WARP-LUTs).
//!
//! ```text
//!   s_j = 1 − 2 x_j,   z = Σ_S c_S Π_{j∈S} s_j,   y = σ(−z/τ)     (relaxed)
//!   LUT[k] = ẑ_k < 0,  ẑ = H c (Walsh–Hadamard transform)       (discrete)
//! ```
//! Subset S is the mask m with bit n−1−j set for input j. z is multilinear in x with corner
//! values ẑ_k = Σ_m c_m (−1)^{popcount(m & k)}, so the fold is a_k = −ẑ_k/τ and y = σ(Σ a_k φ_k).

use super::{logit, WeightInit};
use crate::rng::Rng;

/// In-place fast Walsh–Hadamard transform (its own inverse up to a factor 2^n).
#[inline(always)]
pub fn wht(v: &mut [f32]) {
    let mut h = 1;
    while h < v.len() {
        for i in (0..v.len()).step_by(2 * h) {
            for j in i..i + h {
                let (x, y) = (v[j], v[j + h]);
                v[j] = x + y;
                v[j + h] = x - y;
            }
        }
        h *= 2;
    }
}

pub(super) fn init(rank: usize, init: WeightInit, tau: f32, rng: &mut Rng, w: &mut [f32]) {
    match init {
        WeightInit::Random => w.iter_mut().for_each(|v| *v = rng.normal()),
        WeightInit::Residual { probability } => {
            // z = τ·logit(p)·s_0 makes y = σ(−z/τ) equal p when x_0 = 1 and 1 − p when x_0 = 0.
            w.iter_mut().for_each(|v| *v = 0.0);
            w[1 << (rank - 1)] = tau * logit(probability);
        }
    }
}

#[inline(always)]
pub(super) fn fold(_rank: usize, w: &[f32], tau: f32, hard: bool, a: &mut [f32]) {
    a.copy_from_slice(w);
    wht(a);
    for a in a.iter_mut() {
        *a = if hard {
            (*a < 0.0) as u8 as f32
        } else {
            -*a / tau
        };
    }
}

#[inline(always)]
pub(super) fn unfold_grad(_rank: usize, tau: f32, da: &[f32], dw: &mut [f32]) {
    let mut buf = [0f32; 1 << super::MAX_RANK];
    let g = &mut buf[..da.len()];
    g.iter_mut().zip(da).for_each(|(g, &d)| *g = -d / tau);
    wht(g);
    for (dw, g) in dw.iter_mut().zip(g.iter()) {
        *dw += g;
    }
}

pub(super) fn reference(rank: usize, w: &[f64], tau: f64, x: &[f64]) -> f64 {
    let z: f64 = (0..1usize << rank)
        .map(|m| {
            let prod: f64 = (0..rank)
                .filter(|j| (m >> (rank - 1 - j)) & 1 == 1)
                .map(|j| 1.0 - 2.0 * x[j])
                .product();
            w[m] * prod
        })
        .sum();
    1.0 / (1.0 + (z / tau).exp())
}
