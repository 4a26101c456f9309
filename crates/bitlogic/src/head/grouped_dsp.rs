//! `GroupedDSP(k, τ, β, wbits)`: GroupSum followed by a learnable `k × k` mixing matrix tanh(W).
//!
//! ```text
//!   training:   g_d     = Σ_{f ∈ group d} y_f / τ
//!               score_c = β · Σ_d tanh(W_cd) · g_d             (then softmax cross-entropy)
//!   backward:   ∂L/∂g_d  = β · Σ_c tanh(W_cd) · ∂L/∂score_c,   ∂L/∂y_f = ∂L/∂g_group(f) / τ
//!               ∂L/∂W_cd = β · (1 − tanh² W_cd) · Σ_samples ∂L/∂score_c · g_d
//!   evaluation: n_d     = number of ones in group d             (as GroupSum)
//!               Q_cd    = round(tanh(W_cd) · (2^(wbits−1) − 1)) (a signed wbits-bit integer)
//!               score_c = Σ_d Q_cd · n_d                        (an i64)
//! ```
//!
//! β and τ are positive scales of every score alike, so they cannot change the argmax and
//! do not enter evaluation; the integer head is exactly what a DSP slice computes.

use super::GroupSum;
use crate::layer::simd::{simd_level, SimdLevel};
use crate::layer::Act;
use crate::{Error, Result};
use serde::Serialize;

/// Weight bits of the integer matrix when none are given.
pub const DEFAULT_WBITS: u32 = 8;

/// The diagonal of the initial W. tanh(1) ≈ 0.76: a fresh head is GroupSum scaled by
/// 0.76 β (so it ranks classes exactly like GroupSum, also after quantisation), while
/// 1 − tanh²(1) ≈ 0.42 keeps the diagonal far from saturation, so it still learns quickly.
/// Off-diagonal entries start at 0, where their gradient is largest.
pub const DIAGONAL_INIT: f32 = 1.0;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupedDsp {
    /// The groups, their τ and the width read.
    #[serde(flatten)]
    pub group: GroupSum,
    pub beta: f32,
    pub wbits: u32,
    /// W, row-major `[k][k]`: `weights[c * k + d]` weighs group `d` in the score of class `c`.
    pub weights: Vec<f32>,
}

/// Checks β and the weight bits of a GroupedDSP head.
pub fn check_settings(beta: f32, wbits: u32) -> Result<()> {
    if !(beta.is_finite() && beta > 0.0) {
        return Err(Error::invalid(format!(
            "GroupedDSP beta must be a finite number > 0 (got {beta})"
        )));
    }
    if !(2..=16).contains(&wbits) {
        return Err(Error::invalid(format!(
            "GroupedDSP wbits must be in 2..=16 (got {wbits})"
        )));
    }
    Ok(())
}

impl GroupedDsp {
    /// A fresh head: W = `DIAGONAL_INIT` · identity.
    pub fn new(k: usize, tau: f32, beta: f32, wbits: u32, in_dim: usize) -> Result<Self> {
        let mut w = vec![0.0; k * k];
        w.iter_mut().step_by(k + 1).for_each(|v| *v = DIAGONAL_INIT);
        Self::from_weights(k, tau, beta, wbits, in_dim, w)
    }

    /// A head with a given W (`[k][k]`, row-major, every entry finite).
    pub fn from_weights(
        k: usize,
        tau: f32,
        beta: f32,
        wbits: u32,
        in_dim: usize,
        weights: Vec<f32>,
    ) -> Result<Self> {
        let group = GroupSum::new(k, tau, in_dim)?;
        check_settings(beta, wbits)?;
        if weights.len() != k * k {
            return Err(Error::invalid(format!(
                "GroupedDSP weights have {} entries, expected k × k = {}",
                weights.len(),
                k * k
            )));
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
            return Err(Error::invalid(format!(
                "GroupedDSP weight W[{}][{}] is {} (weights must be finite)",
                i / k,
                i % k,
                weights[i]
            )));
        }
        Ok(GroupedDsp {
            group,
            beta,
            wbits,
            weights,
        })
    }

    /// The largest magnitude of a quantised entry: 2^(wbits−1) − 1.
    pub fn scale(&self) -> i32 {
        (1 << (self.wbits - 1)) - 1
    }

    /// The integer matrix Q = round(tanh(W) · scale), row-major `[k][k]`. In f64, so that
    /// rounding ties do not depend on f32 tanh's last bit.
    pub fn quantized(&self) -> Vec<i32> {
        let s = self.scale() as f64;
        self.weights
            .iter()
            .map(|&w| ((w as f64).tanh() * s).round() as i32)
            .collect()
    }

    /// Training scores: `acts` `[in_dim][bs]` (any activation type) → `g` `[k][bs]` (f32,
    /// kept for backward) → `scores` `[k][bs]`. `t` (k × k scratch) receives tanh(W).
    pub fn forward<A: Act>(
        &self,
        acts: &[A],
        t: &mut [f32],
        g: &mut [f32],
        scores: &mut [f32],
        bs: usize,
    ) {
        self.forward_at(simd_level(), acts, t, g, scores, bs)
    }

    /// [`forward`](Self::forward) with the group sums at `level` (the k × k mixing is a plain
    /// loop either way: it is tiny next to the sums).
    pub fn forward_at<A: Act>(
        &self,
        level: SimdLevel,
        acts: &[A],
        t: &mut [f32],
        g: &mut [f32],
        scores: &mut [f32],
        bs: usize,
    ) {
        let k = self.group.k;
        t.iter_mut()
            .zip(&self.weights)
            .for_each(|(t, &w)| *t = w.tanh());
        self.group.forward_at(level, acts, g, bs);
        for (c, s) in scores.chunks_exact_mut(bs).enumerate() {
            s.iter_mut().for_each(|v| *v = 0.0);
            for (d, gd) in g.chunks_exact(bs).enumerate() {
                let a = self.beta * t[c * k + d];
                s.iter_mut().zip(gd).for_each(|(s, &x)| *s += a * x);
            }
        }
    }

    /// Backward from `dscores` `[k][bs]`, with `t` and `g` as `forward` left them: the input
    /// gradient into `grad_acts` `[in_dim][bs]` (through scratch `dg` `[k][bs]`) and ∂L/∂W into
    /// `dw` (`[k][k]`; added to it when `accumulate`).
    #[allow(clippy::too_many_arguments)]
    pub fn backward<A: Act>(
        &self,
        dscores: &[f32],
        t: &[f32],
        g: &[f32],
        dg: &mut [f32],
        grad_acts: &mut [A],
        dw: &mut [f32],
        accumulate: bool,
        bs: usize,
    ) {
        let level = simd_level();
        self.backward_at(level, dscores, t, g, dg, grad_acts, dw, accumulate, bs)
    }

    /// [`backward`](Self::backward) with the group-sum gradient rows at `level`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_at<A: Act>(
        &self,
        level: SimdLevel,
        dscores: &[f32],
        t: &[f32],
        g: &[f32],
        dg: &mut [f32],
        grad_acts: &mut [A],
        dw: &mut [f32],
        accumulate: bool,
        bs: usize,
    ) {
        let k = self.group.k;
        for (d, out) in dg.chunks_exact_mut(bs).enumerate() {
            out.iter_mut().for_each(|v| *v = 0.0);
            for (c, ds) in dscores.chunks_exact(bs).enumerate() {
                let a = self.beta * t[c * k + d];
                out.iter_mut().zip(ds).for_each(|(o, &x)| *o += a * x);
            }
        }
        self.group.backward_at(level, dg, grad_acts, bs);
        for (c, ds) in dscores.chunks_exact(bs).enumerate() {
            for (d, gd) in g.chunks_exact(bs).enumerate() {
                let dot: f32 = ds.iter().zip(gd).map(|(&a, &b)| a * b).sum();
                let tc = t[c * k + d];
                let v = self.beta * (1.0 - tc * tc) * dot;
                let slot = &mut dw[c * k + d];
                *slot = if accumulate { *slot + v } else { v };
            }
        }
    }
}

/// Integer scores of one sample: `out[c] = Σ_d q[c·k + d] · counts[d]`.
pub fn mix(q: &[i32], counts: &[u32], out: &mut [i64]) {
    let k = counts.len();
    for (o, row) in out.iter_mut().zip(q.chunks_exact(k)) {
        *o = row
            .iter()
            .zip(counts)
            .map(|(&q, &n)| q as i64 * n as i64)
            .sum();
    }
}
