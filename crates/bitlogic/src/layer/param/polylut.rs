//! `polylut`: a sigmoid of a polynomial of the inputs with monomials up to a degree D.
//!
//! ```text
//!   z = Σ_{S ⊆ inputs, |S| ≤ D} c_S Π_{j∈S} x_j,   y = σ(z/τ)     (relaxed)
//!   LUT[k] = z(k) > 0                                             (discrete)
//! ```
//! Subset S is the mask m with bit n−1−j set for input j; the weights are the c_m of every
//! mask with popcount ≤ D, in increasing m. A polynomial of distinct inputs is multilinear:
//! its corner values are subset sums, a_k = Σ_{m ⊆ k} c_m / τ (a zeta transform), and the
//! gradient goes back through the transposed (superset) sums.

use super::{logit, WeightInit, MAX_RANK};
use crate::rng::Rng;

/// Masks of the monomials, in weight order.
#[inline(always)]
fn monomials(rank: usize, degree: usize) -> impl Iterator<Item = usize> {
    (0..1usize << rank).filter(move |m| m.count_ones() as usize <= degree)
}

pub fn weights(rank: usize, degree: usize) -> usize {
    monomials(rank, degree).count()
}

pub(super) fn init(
    rank: usize,
    degree: usize,
    init: WeightInit,
    tau: f32,
    rng: &mut Rng,
    w: &mut [f32],
) {
    match init {
        WeightInit::Random => w.iter_mut().for_each(|v| *v = rng.normal()),
        WeightInit::Residual { probability } => {
            // z = L·(2 x_0 − 1): the constant and input 0's monomial.
            let l = tau * logit(probability);
            w.iter_mut().for_each(|v| *v = 0.0);
            for (i, m) in monomials(rank, degree).enumerate() {
                if m == 0 {
                    w[i] = -l;
                } else if m == 1 << (rank - 1) {
                    w[i] = 2.0 * l;
                }
            }
        }
    }
}

#[inline(always)]
pub(super) fn fold(rank: usize, degree: usize, w: &[f32], tau: f32, hard: bool, a: &mut [f32]) {
    let k = 1 << rank;
    let mut full = [0f32; 1 << MAX_RANK];
    for (&c, m) in w.iter().zip(monomials(rank, degree)) {
        full[m] = c;
    }
    // Zeta transform: full[k] becomes Σ_{m ⊆ k} c_m.
    for bit in 0..rank {
        for x in 0..k {
            if x >> bit & 1 == 1 {
                full[x] += full[x ^ (1 << bit)];
            }
        }
    }
    let inv = 1.0 / tau;
    for (a, &z) in a.iter_mut().zip(&full[..k]) {
        *a = if hard {
            (z > 0.0) as u8 as f32
        } else {
            z * inv
        };
    }
}

#[inline(always)]
pub(super) fn unfold_grad(rank: usize, degree: usize, tau: f32, da: &[f32], dw: &mut [f32]) {
    let k = 1 << rank;
    let mut full = [0f32; 1 << MAX_RANK];
    let inv = 1.0 / tau;
    for (f, &d) in full.iter_mut().zip(da) {
        *f = d * inv;
    }
    // Transposed zeta: full[m] becomes Σ_{k ⊇ m} da_k / τ.
    for bit in 0..rank {
        for x in 0..k {
            if x >> bit & 1 == 0 {
                full[x] += full[x | (1 << bit)];
            }
        }
    }
    for (dw, m) in dw.iter_mut().zip(monomials(rank, degree)) {
        *dw += full[m];
    }
}

pub(super) fn reference(rank: usize, degree: usize, w: &[f64], tau: f64, x: &[f64]) -> f64 {
    let z: f64 = w
        .iter()
        .zip(monomials(rank, degree))
        .map(|(c, m)| {
            c * (0..rank)
                .filter(|j| m >> (rank - 1 - j) & 1 == 1)
                .map(|j| x[j])
                .product::<f64>()
        })
        .sum();
    1.0 / (1.0 + (-z / tau).exp())
}
