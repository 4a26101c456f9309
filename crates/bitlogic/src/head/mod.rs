//! Heads turn the last layer's bits into class scores. Both heads start by splitting the
//! last layer into `k` equal groups and summing each (GroupSum); GroupedDSP then mixes the
//! group sums with a learnable `k × k` matrix. `Head` is what the model, trainer, model
//! file and packed engine use.

mod group_sum;
mod grouped_dsp;
#[cfg(test)]
mod tests;

pub use group_sum::argmax;
pub use group_sum::GroupSum;
pub use grouped_dsp::{check_settings, mix, GroupedDsp, DEFAULT_WBITS, DIAGONAL_INIT};

use crate::layer::simd::{simd_level, SimdLevel};
use crate::layer::Act;
use crate::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which head a model has, with its settings (τ is `ModelConfig::group_tau`). Stored in
/// model files; a file without it has a GroupSum head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    #[default]
    GroupSum,
    /// GroupSum, then `β · tanh(W)`; quantised to signed `wbits`-bit integers at eval.
    GroupedDsp {
        beta: f32,
        #[serde(default = "default_wbits")]
        wbits: u32,
    },
}

fn default_wbits() -> u32 {
    DEFAULT_WBITS
}

impl HeadKind {
    pub fn validate(&self) -> Result<()> {
        match *self {
            HeadKind::GroupSum => Ok(()),
            HeadKind::GroupedDsp { beta, wbits } => check_settings(beta, wbits),
        }
    }
}

/// A model's head.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Head {
    GroupSum(GroupSum),
    GroupedDsp(GroupedDsp),
}

/// Per-thread buffers of the training head for one block of `bs` samples (empty for
/// GroupSum), sized once so that a training step allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct HeadScratch {
    /// tanh(W), `[k][k]`.
    pub t: Vec<f32>,
    /// Group sums / τ and their gradient, `[k][bs]`.
    pub g: Vec<f32>,
    pub dg: Vec<f32>,
}

impl Head {
    /// A fresh head of `kind` with `k` groups over `in_dim` inputs.
    pub fn new(kind: HeadKind, k: usize, tau: f32, in_dim: usize) -> Result<Self> {
        Ok(match kind {
            HeadKind::GroupSum => Head::GroupSum(GroupSum::new(k, tau, in_dim)?),
            HeadKind::GroupedDsp { beta, wbits } => {
                Head::GroupedDsp(GroupedDsp::new(k, tau, beta, wbits, in_dim)?)
            }
        })
    }

    /// The grouping every head starts with.
    pub fn group(&self) -> &GroupSum {
        match self {
            Head::GroupSum(h) => h,
            Head::GroupedDsp(h) => &h.group,
        }
    }

    pub fn kind(&self) -> HeadKind {
        match self {
            Head::GroupSum(_) => HeadKind::GroupSum,
            Head::GroupedDsp(h) => HeadKind::GroupedDsp {
                beta: h.beta,
                wbits: h.wbits,
            },
        }
    }

    /// Number of classes (= groups).
    pub fn k(&self) -> usize {
        self.group().k
    }
    pub fn tau(&self) -> f32 {
        self.group().tau
    }
    /// Width of the layer it reads.
    pub fn in_dim(&self) -> usize {
        self.group().in_dim
    }
    pub fn group_size(&self) -> usize {
        self.group().group_size()
    }

    /// E.g. `GroupSum(k = 10, τ = 10)` or `GroupedDSP(k = 10, τ = 10, β = 1, wbits = 8)`.
    pub fn label(&self) -> String {
        let g = self.group();
        match self {
            Head::GroupSum(_) => format!("GroupSum(k = {}, τ = {})", g.k, g.tau),
            Head::GroupedDsp(h) => format!(
                "GroupedDSP(k = {}, τ = {}, β = {}, wbits = {})",
                g.k, g.tau, h.beta, h.wbits
            ),
        }
    }

    /// Trainable parameters (W for GroupedDSP, none for GroupSum).
    pub fn params(&self) -> &[f32] {
        match self {
            Head::GroupSum(_) => &[],
            Head::GroupedDsp(h) => &h.weights,
        }
    }
    pub fn params_mut(&mut self) -> &mut [f32] {
        match self {
            Head::GroupSum(_) => &mut [],
            Head::GroupedDsp(h) => &mut h.weights,
        }
    }

    /// Training buffers for blocks of `bs` samples.
    pub fn scratch(&self, bs: usize) -> HeadScratch {
        match self {
            Head::GroupSum(_) => HeadScratch::default(),
            Head::GroupedDsp(h) => {
                let k = h.group.k;
                HeadScratch {
                    t: vec![0.0; k * k],
                    g: vec![0.0; k * bs],
                    dg: vec![0.0; k * bs],
                }
            }
        }
    }

    /// Training scores for a feature-major block: `acts` `[in_dim][bs]` → `scores` `[k][bs]`.
    /// `acts` and `grad_acts` (below) are in the trainer's activation type (f32, bf16, f16);
    /// scores, their gradients and the head's buffers are f32.
    pub fn forward<A: Act>(
        &self,
        acts: &[A],
        scratch: &mut HeadScratch,
        scores: &mut [f32],
        bs: usize,
    ) {
        self.forward_at(simd_level(), acts, scratch, scores, bs)
    }

    /// [`forward`](Self::forward) with its row kernels at `level`: a trainer runs every block
    /// kernel at its own level (max-autotune may pick one below the global one).
    pub fn forward_at<A: Act>(
        &self,
        level: SimdLevel,
        acts: &[A],
        scratch: &mut HeadScratch,
        scores: &mut [f32],
        bs: usize,
    ) {
        match self {
            Head::GroupSum(h) => h.forward_at(level, acts, scores, bs),
            Head::GroupedDsp(h) => {
                h.forward_at(level, acts, &mut scratch.t, &mut scratch.g, scores, bs)
            }
        }
    }

    /// Backward of `forward` (same `scratch`): `grad_acts` `[in_dim][bs]` is overwritten and the
    /// parameter gradient `dparams` (`params().len()` long) is set, or added to if `accumulate`.
    pub fn backward<A: Act>(
        &self,
        dscores: &[f32],
        scratch: &mut HeadScratch,
        grad_acts: &mut [A],
        dparams: &mut [f32],
        accumulate: bool,
        bs: usize,
    ) {
        let level = simd_level();
        self.backward_at(level, dscores, scratch, grad_acts, dparams, accumulate, bs)
    }

    /// [`backward`](Self::backward) with its row kernels at `level`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_at<A: Act>(
        &self,
        level: SimdLevel,
        dscores: &[f32],
        scratch: &mut HeadScratch,
        grad_acts: &mut [A],
        dparams: &mut [f32],
        accumulate: bool,
        bs: usize,
    ) {
        match self {
            Head::GroupSum(h) => h.backward_at(level, dscores, grad_acts, bs),
            Head::GroupedDsp(h) => {
                let HeadScratch { t, g, dg } = scratch;
                h.backward_at(level, dscores, t, g, dg, grad_acts, dparams, accumulate, bs)
            }
        }
    }

    /// Evaluation: integer counts of ones per group for one sample's bits.
    pub fn counts(&self, bits: &[u8], out: &mut [u32]) {
        self.group().counts(bits, out)
    }

    /// Integer class scores `[n][k]` from group counts `[n][k]`: the counts themselves for
    /// GroupSum, `Σ_d Q_cd · n_d` for GroupedDSP.
    pub fn eval_scores(&self, counts: &[u32]) -> Vec<i64> {
        match self {
            Head::GroupSum(_) => counts.iter().map(|&c| c as i64).collect(),
            Head::GroupedDsp(h) => {
                let (k, q) = (h.group.k, h.quantized());
                let mut out = vec![0i64; counts.len()];
                // Samples are independent; 4096 a task keeps rayon's overhead negligible.
                out.par_chunks_mut(4096 * k)
                    .zip(counts.par_chunks(4096 * k))
                    .for_each(|(o, c)| {
                        o.chunks_exact_mut(k)
                            .zip(c.chunks_exact(k))
                            .for_each(|(o, c)| mix(&q, c, o))
                    });
                out
            }
        }
    }
}

impl From<GroupSum> for Head {
    fn from(h: GroupSum) -> Self {
        Head::GroupSum(h)
    }
}

impl From<GroupedDsp> for Head {
    fn from(h: GroupedDsp) -> Self {
        Head::GroupedDsp(h)
    }
}
