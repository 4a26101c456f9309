//! `dwn`: a table of 2^n values in [−1, 1], read at the binarised inputs (Differentiable
//! Weightless Neural Networks, ICML 2024).
//!
//! ```text
//!   b_j = [x_j > ½],  k̂ = address of b (MSB order)
//!   y = (T[k̂] + 1) / 2                                   (training output, in [0, 1])
//!   LUT[k] = T[k] ≥ 0                                      (discrete)
//!   ∂y/∂T[k] = ½ [k = k̂]
//!   ∂y/∂x_j  = ½ Σ_k s_j(k) · T[k] / (H_j(k, k̂) + 1)      (Extended Finite Difference)
//! ```
//! with s_j(k) = +1 when bit j of k is set and −1 otherwise, and H_j the Hamming distance
//! between k and k̂ ignoring bit j. Every table entry contributes to the input gradient,
//! nearer addresses more. The table is kept in [−1, 1] by clamping after each update. The
//! kernel is `layer::dwn_kernel`; the weights are the table itself (no fold).

use super::WeightInit;
use crate::rng::Rng;

pub(super) fn init(rank: usize, init: WeightInit, rng: &mut Rng, w: &mut [f32]) {
    match init {
        WeightInit::Random => w.iter_mut().for_each(|v| *v = rng.uniform() * 2.0 - 1.0),
        WeightInit::Residual { probability } => {
            // Entries whose address has input 0 set lean to 1 by the residual margin.
            let m = 2.0 * probability - 1.0;
            for (k, v) in w.iter_mut().enumerate() {
                *v = if (k >> (rank - 1)) & 1 == 1 { m } else { -m };
            }
        }
    }
}

/// The table as coefficients: the DWN kernel reads it directly. `hard` gives ±1, so that the
/// training output (a + 1)/2 is the LUT bit.
#[inline(always)]
pub(super) fn fold(w: &[f32], hard: bool, a: &mut [f32]) {
    for (a, &t) in a.iter_mut().zip(w) {
        *a = if hard {
            if t >= 0.0 {
                1.0
            } else {
                -1.0
            }
        } else {
            t
        };
    }
}

#[inline(always)]
pub(super) fn unfold_grad(da: &[f32], dw: &mut [f32]) {
    for (dw, &d) in dw.iter_mut().zip(da) {
        *dw += d;
    }
}

/// The training output at real inputs (binarised at ½), for the references.
pub fn reference(rank: usize, w: &[f64], x: &[f64]) -> f64 {
    let addr = (0..rank).fold(0, |a, j| (a << 1) | (x[j] > 0.5) as usize);
    (w[addr] + 1.0) / 2.0
}

/// The EFD input gradient of the reference (∂y/∂x_j), written from the formula.
pub fn reference_efd(rank: usize, w: &[f64], x: &[f64], j: usize) -> f64 {
    let addr = (0..rank).fold(0, |a, i| (a << 1) | (x[i] > 0.5) as usize);
    let bit = 1 << (rank - 1 - j);
    (0..1usize << rank)
        .map(|k| {
            let s = if k & bit != 0 { 1.0 } else { -1.0 };
            let h = ((k ^ addr) & !bit).count_ones() as f64;
            s * w[k] / (h + 1.0)
        })
        .sum::<f64>()
        / 2.0
}
