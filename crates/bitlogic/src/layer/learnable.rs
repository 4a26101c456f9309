//! Learnable connections: each (neuron, slot) owns a pool of `C` candidate inputs and
//! logits over them.
//!
//! ```text
//!   forward:   x_slot = x[cand[argmax_c ℓ_c]]
//!   surrogate: x_slot ≈ Σ_c q_c x[cand[c]],  q = softmax(ℓ / τ_c)
//!   ∂L/∂q_c   = Σ_b ∂L/∂x_slot(b) · x[cand[c]](b)
//!   ∂L/∂ℓ_c   = q_c (∂L/∂q_c − Σ_d q_d ∂L/∂q_d) / τ_c
//! ```
//! With `ConnectionGrad::Linear` (DWN's learnable mapping) the surrogate is instead linear in
//! the ±1 inputs, x_slot ≈ Σ_c ℓ_c (2 x[cand[c]] − 1), so every candidate gets its own
//! correlation with the slot's gradient whatever its current probability:
//!
//! ```text
//!   ∂L/∂ℓ_c = Σ_b ∂L/∂x_slot(b) · (2 x[cand[c]](b) − 1) = 2 ∂L/∂q_c − Σ_b ∂L/∂x_slot(b)
//! ```
//! The input gradient flows to the argmax candidate only (the forward's wiring), so a
//! learnable layer costs one extra dot product per candidate and slot, not C scatters.

use super::kernel::exp_approx;
use super::lanes::Lanes;
use super::simd::dispatch;
use crate::rng::Rng;

/// Candidate pools `[slots][c]`: each slot's candidates are distinct, and every input
/// appears about equally often over all pools.
pub fn draw_candidates(
    in_dim: usize,
    slots: usize,
    c: usize,
    rng: &mut Rng,
) -> crate::Result<Vec<u32>> {
    super::connections::draw(super::ConnectionKind::RandomUnique, in_dim, slots, c, rng)
}

/// `ids[s] = cand[s][argmax ℓ[s]]` (first index on ties).
pub fn argmax_ids(candidates: &[u32], logits: &[f32], c: usize, ids: &mut [u32]) {
    for ((id, cand), l) in ids
        .iter_mut()
        .zip(candidates.chunks(c))
        .zip(logits.chunks(c))
    {
        *id = cand[crate::head::argmax(l)];
    }
}

/// `dq[s][c] (+)= Σ_b slot_grad[s][b] · input[cand[s][c]][b]` over one block of `bs` samples
/// (a multiple of 16), compiled for the detected SIMD level.
pub use super::kernel::{candidate_grads, candidate_grads_at};

#[inline(always)]
// The lane type only selects the instruction set; these loops vectorise on their own.
#[allow(clippy::extra_unused_type_parameters)]
fn logits_grad_any<S: Lanes>(logits: &[f32], dq: &[f32], c: usize, tau: f32, dlogits: &mut [f32]) {
    let inv = 1.0 / tau;
    for ((l, d), out) in logits
        .chunks(c)
        .zip(dq.chunks(c))
        .zip(dlogits.chunks_mut(c))
    {
        // The softmax goes into `out` first, so no scratch buffer is needed.
        let m = l.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        // Separate passes: the exponentials vectorise, the sums stay in a fixed order.
        for (o, &v) in out.iter_mut().zip(l) {
            *o = exp_approx((v - m) * inv);
        }
        let norm = 1.0 / out.iter().sum::<f32>();
        let mut mean = 0.0;
        for (o, d) in out.iter_mut().zip(d) {
            *o *= norm;
            mean += *o * d;
        }
        for (o, d) in out.iter_mut().zip(d) {
            *o *= (d - mean) * inv;
        }
    }
}

#[inline(always)]
// Dispatched only so that the trainer's per-step SIMD level (max-autotune) reaches every
// block kernel; the sum runs in order, so every level gives the same bits.
#[allow(clippy::extra_unused_type_parameters)]
fn slot_sums_any<S: Lanes>(slot_grad: &[f32], bs: usize, gsum: &mut [f32], accumulate: bool) {
    for (g, row) in gsum.iter_mut().zip(slot_grad.chunks_exact(bs)) {
        let v: f32 = row.iter().sum();
        *g = if accumulate { *g + v } else { v };
    }
}

dispatch! {
    /// `gsum[s] (+)= Σ_b slot_grad[s][b]` over one block.
    pub fn slot_sums / slot_sums_at (slot_grad: &[f32], bs: usize, gsum: &mut [f32], accumulate: bool) => slot_sums_any;
}

/// The linear (DWN) surrogate: `dlogits[s][c] = 2·dq[s][c] − gsum[s]`.
pub fn linear_logits_grad(dq: &[f32], gsum: &[f32], c: usize, dlogits: &mut [f32]) {
    for ((out, dq), &g) in dlogits.chunks_mut(c).zip(dq.chunks(c)).zip(gsum) {
        for (o, &d) in out.iter_mut().zip(dq) {
            *o = 2.0 * d - g;
        }
    }
}

dispatch! {
    /// Softmax Jacobian: `dlogits` from `dq` for every slot.
    pub fn logits_grad / logits_grad_at (logits: &[f32], dq: &[f32], c: usize, tau: f32, dlogits: &mut [f32]) => logits_grad_any;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_picks_the_best_candidate() {
        let cand = [4, 7, 9, 1, 2, 3];
        let logits = [0.1, 0.5, -1.0, 2.0, 2.0, 0.0];
        let mut ids = [0u32; 2];
        argmax_ids(&cand, &logits, 3, &mut ids);
        assert_eq!(ids, [7, 1]);
    }

    #[test]
    fn logits_grad_matches_finite_differences_of_the_surrogate() {
        // L(ℓ) = Σ_c softmax(ℓ/τ)_c · dq_c is linear in q, so ∂L/∂ℓ is the softmax Jacobian.
        let (c, tau) = (5, 0.7f32);
        let logits = [0.3f32, -0.2, 1.1, 0.0, -0.9];
        let dq = [0.5f32, -1.0, 0.25, 2.0, -0.3];
        let loss = |l: &[f64]| {
            let e: Vec<f64> = l.iter().map(|v| (v / tau as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter()
                .zip(&dq)
                .map(|(e, d)| e / s * *d as f64)
                .sum::<f64>()
        };
        let mut g = [0f32; 5];
        logits_grad(&logits, &dq, c, tau, &mut g);
        let base: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
        for i in 0..c {
            let (mut p, mut m) = (base.clone(), base.clone());
            p[i] += 1e-6;
            m[i] -= 1e-6;
            let fd = (loss(&p) - loss(&m)) / 2e-6;
            assert!((fd - g[i] as f64).abs() < 1e-4, "{i}: {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn linear_rule_correlates_each_candidate_with_the_slot_gradient() {
        // One slot, 3 candidates, 4 samples (bs = 4): x rows and the slot's gradient g.
        let x = [
            [1.0f32, 0.0, 1.0, 1.0],
            [0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 1.0],
        ];
        let g = [0.5f32, -1.0, 2.0, 0.25];
        let dq: Vec<f32> = x
            .iter()
            .map(|r| r.iter().zip(&g).map(|(x, g)| x * g).sum())
            .collect();
        let mut gsum = [0f32];
        slot_sums(&g, 4, &mut gsum, false);
        assert_eq!(gsum, [1.75]);
        slot_sums(&g, 4, &mut gsum, true);
        assert_eq!(gsum, [3.5]);
        let mut out = [0f32; 3];
        linear_logits_grad(&dq, &[1.75], 3, &mut out);
        // Σ_b g_b (2 x_cb − 1), written out per candidate.
        for (c, row) in x.iter().enumerate() {
            let want: f32 = row.iter().zip(&g).map(|(x, g)| g * (2.0 * x - 1.0)).sum();
            assert!((out[c] - want).abs() < 1e-6, "{c}: {} vs {want}", out[c]);
        }
        assert_eq!(out[1], -1.75, "an input that is always 0 counts as −1");
    }
}
