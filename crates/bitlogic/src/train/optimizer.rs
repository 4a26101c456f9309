//! Adam and AdamW over f32 master weights.
//!
//! ```text
//!   m ← β1 m + (1−β1) g,  v ← β2 v + (1−β2) g²
//!   w ← w − lr · m̂ / (√v̂ + ε)        (AdamW first applies w ← w − lr·λ·w)
//! ```

use crate::layer::lanes::Lanes;
use crate::layer::simd::dispatch;
use crate::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    AdamW,
}

impl OptimizerKind {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "adam" => Ok(OptimizerKind::Adam),
            "adamw" => Ok(OptimizerKind::AdamW),
            _ => Err(Error::invalid(format!(
                "unknown optimizer '{name}' (valid: adam, adamw)"
            ))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    step: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Optimizer {
    /// One state slot per parameter tensor, with the given lengths.
    pub fn new(kind: OptimizerKind, lr: f32, weight_decay: f32, sizes: &[usize]) -> Self {
        Optimizer {
            kind,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            step: 0,
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// Call once per step before `update`.
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    /// This step's scalars (after `begin_step`).
    pub fn adam_step(&self) -> AdamStep {
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let lr = self.lr;
        let decay = match self.kind {
            OptimizerKind::AdamW => 1.0 - lr * self.weight_decay,
            OptimizerKind::Adam => 1.0,
        };
        let l2 = match self.kind {
            OptimizerKind::Adam => self.weight_decay,
            OptimizerKind::AdamW => 0.0,
        };
        let (c1, c2) = (1.0 - b1.powi(self.step), 1.0 - b2.powi(self.step));
        AdamStep {
            b1,
            b2,
            eps,
            step: lr / c1,
            inv_sqrt_c2: 1.0 / c2.sqrt(),
            decay,
            l2,
        }
    }

    /// The first and second moments of the first `n` slots, for an update fused with the
    /// computation of the gradients (see `params`).
    pub(super) fn moments_mut(&mut self, n: usize) -> (&mut [Vec<f32>], &mut [Vec<f32>]) {
        (&mut self.m[..n], &mut self.v[..n])
    }

    /// The first and second moments of tensor `slot`.
    pub(super) fn slot_moments_mut(&mut self, slot: usize) -> (&mut [f32], &mut [f32]) {
        (&mut self.m[slot], &mut self.v[slot])
    }

    /// Updates tensor `slot` with gradient `g`.
    pub fn update(&mut self, slot: usize, w: &mut [f32], g: &[f32]) {
        let h = self.adam_step();
        const CH: usize = 4096;
        w.par_chunks_mut(CH)
            .zip(g.par_chunks(CH))
            .zip(self.m[slot].par_chunks_mut(CH))
            .zip(self.v[slot].par_chunks_mut(CH))
            .for_each(|(((w, g), m), v)| adam_chunk(h, w, g, m, v));
    }
}

/// The scalars of one Adam step.
#[derive(Clone, Copy)]
pub struct AdamStep {
    b1: f32,
    b2: f32,
    eps: f32,
    /// The bias corrections c = 1 − β^t folded into two scalars, as PyTorch does: the step
    /// size lr / c1, and 1 / √c2 on √v. Per weight that leaves one division (the vector
    /// divider is the slowest unit in the update) instead of three.
    step: f32,
    inv_sqrt_c2: f32,
    /// Decoupled (AdamW) factor on the weights, and the L2 (Adam) coefficient on the gradient.
    decay: f32,
    l2: f32,
}

/// Adam over a chunk of weights: rows of 16 through [`adam_row`], then the tail.
#[inline(always)]
pub(super) fn adam_chunk_any<S: Lanes>(
    h: AdamStep,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let mut rows = w
        .chunks_exact_mut(16)
        .zip(g.chunks_exact(16))
        .zip(m.chunks_exact_mut(16).zip(v.chunks_exact_mut(16)));
    for ((w, g), (m, v)) in &mut rows {
        // SAFETY: `g` holds 16 floats.
        adam_row::<S>(h, w, unsafe { S::load(g.as_ptr()) }, m, v);
    }
    let n = w.len() / 16 * 16;
    let tail = w.len() - n;
    if tail > 0 {
        // The last few weights go through a padded row: the same operations, lane by lane.
        let mut t = [[0f32; 16]; 4];
        t[0][..tail].copy_from_slice(&w[n..]);
        t[1][..tail].copy_from_slice(&g[n..]);
        t[2][..tail].copy_from_slice(&m[n..]);
        t[3][..tail].copy_from_slice(&v[n..]);
        let [tw, tg, tm, tv] = &mut t;
        // SAFETY: `tg` holds 16 floats.
        adam_row::<S>(h, tw, unsafe { S::load(tg.as_ptr()) }, tm, tv);
        w[n..].copy_from_slice(&tw[..tail]);
        m[n..].copy_from_slice(&tm[..tail]);
        v[n..].copy_from_slice(&tv[..tail]);
    }
}

/// One Adam step on a row of 16 weights, their gradients in a vector:
///
/// ```text
///   g ← g + λ·w (Adam's L2; 0 for AdamW),  m ← β1·m + (1−β1)·g,  v ← β2·v + ((1−β2)·g)·g
///   w ← w·decay − (lr/c1 · m) / (√v · (1/√c2) + ε)
/// ```
///
/// evaluated in that order, lane by lane, at every instruction set (no fused multiply-adds),
/// so that the weights do not depend on the one detected. The fused difflogic update (see
/// `params`) calls it with a row straight from the unfold.
#[inline(always)]
pub(super) fn adam_row<S: Lanes>(
    h: AdamStep,
    w: &mut [f32],
    g: S::V,
    m: &mut [f32],
    v: &mut [f32],
) {
    let (w, m, v) = (&mut w[..16], &mut m[..16], &mut v[..16]);
    let c = S::splat;
    // SAFETY: each row holds 16 floats.
    unsafe {
        let (w0, m0, v0) = (
            S::load(w.as_ptr()),
            S::load(m.as_ptr()),
            S::load(v.as_ptr()),
        );
        let gi = S::add(g, S::mul(c(h.l2), w0));
        let m1 = S::add(S::mul(c(h.b1), m0), S::mul(c(1.0 - h.b1), gi));
        let v1 = S::add(S::mul(c(h.b2), v0), S::mul(S::mul(c(1.0 - h.b2), gi), gi));
        let denom = S::add(S::mul(S::sqrt(v1), c(h.inv_sqrt_c2)), c(h.eps));
        let w1 = S::sub(S::mul(w0, c(h.decay)), S::div(S::mul(c(h.step), m1), denom));
        S::store(w.as_mut_ptr(), w1);
        S::store(m.as_mut_ptr(), m1);
        S::store(v.as_mut_ptr(), v1);
    }
}

dispatch! {
    /// One Adam step over a chunk of weights, compiled for the detected instruction set.
    pub fn adam_chunk / adam_chunk_at (h: AdamStep, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) => adam_chunk_any;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simd_level_takes_the_written_out_step_bit_for_bit() {
        use crate::layer::simd::SimdLevel;
        use crate::rng::Rng;
        // Two rows of 16 and a tail of 5, for Adam with an L2 term and for AdamW.
        let n = 37;
        let mut r = Rng::new(5);
        let w0: Vec<f32> = (0..n).map(|_| r.normal()).collect();
        let g: Vec<f32> = (0..n).map(|_| 1e-2 * r.normal()).collect();
        let m0: Vec<f32> = (0..n).map(|_| 1e-3 * r.normal()).collect();
        let v0: Vec<f32> = (0..n).map(|_| 1e-5 * r.normal().abs()).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for kind in [OptimizerKind::Adam, OptimizerKind::AdamW] {
            let mut opt = Optimizer::new(kind, 0.01, 0.1, &[n]);
            (0..4).for_each(|_| opt.begin_step());
            let h = opt.adam_step();
            let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
            for i in 0..n {
                let gi = g[i] + h.l2 * w[i];
                m[i] = h.b1 * m[i] + (1.0 - h.b1) * gi;
                v[i] = h.b2 * v[i] + (1.0 - h.b2) * gi * gi;
                let denom = v[i].sqrt() * h.inv_sqrt_c2 + h.eps;
                w[i] = w[i] * h.decay - h.step * m[i] / denom;
            }
            for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
                let (mut w1, mut m1, mut v1) = (w0.clone(), m0.clone(), v0.clone());
                adam_chunk_at(level, h, &mut w1, &g, &mut m1, &mut v1);
                assert_eq!(bits(&w1), bits(&w), "{kind:?} {level:?}: w");
                assert_eq!(bits(&m1), bits(&m), "{kind:?} {level:?}: m");
                assert_eq!(bits(&v1), bits(&v), "{kind:?} {level:?}: v");
            }
        }
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut w = vec![3.0f32, -2.0];
        let mut opt = Optimizer::new(OptimizerKind::Adam, 0.1, 0.0, &[2]);
        for _ in 0..500 {
            let g: Vec<f32> = w.iter().map(|&x| 2.0 * (x - 1.0)).collect();
            opt.begin_step();
            opt.update(0, &mut w, &g);
        }
        assert!(w.iter().all(|&x| (x - 1.0).abs() < 1e-2), "{w:?}");
    }

    #[test]
    fn first_adam_step_moves_by_lr_and_adamw_decays() {
        let mut w = vec![1.0f32];
        let mut opt = Optimizer::new(OptimizerKind::AdamW, 0.01, 0.5, &[1]);
        opt.begin_step();
        opt.update(0, &mut w, &[4.0]);
        // decay 1 − 0.01·0.5, then the bias-corrected first step is exactly lr·sign(g).
        assert!((w[0] - (0.995 - 0.01)).abs() < 1e-6, "{}", w[0]);
    }
}
