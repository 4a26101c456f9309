//! The plan of a training step: every buffer sized once for a batch size and thread count,
//! so that a planned step allocates nothing (see `compile`).

use super::blocks::Workers;
use super::coef_grads::CoefGrads;
use super::compile::AmpDtype;
use super::params;
use crate::layer::kernel;
use crate::Model;

/// Every buffer a step needs, sized once for a batch size (see `compile`).
pub(super) struct Plan {
    pub(super) batch: usize,
    pub(super) bs: usize,
    pub(super) blocks: usize,
    /// One per thread, with activations stored as `amp_dtype` says.
    pub(super) workers: Workers,
    /// Every thread's coefficient gradients per layer (f32 whatever `amp_dtype` is).
    pub(super) dcoef: CoefGrads,
    /// Where the layer weights wait during a step (empty between steps), so that the blocks
    /// can read the model while the update writes the weights.
    pub(super) weights: Vec<Vec<f32>>,
    pub(super) coef_soft: Vec<Vec<f32>>,
    /// Hard sampling: the discrete coefficients (empty for the layers that sample soft).
    pub(super) coef_hard: Vec<Vec<f32>>,
    /// Weight gradients of the layers whose neurons overflow the update's stack buffers
    /// (see `params`; empty for the others).
    pub(super) dw: Vec<Vec<f32>>,
    pub(super) dconn: Vec<Vec<f32>>,
    /// Learnable layers: Σ over the batch of each slot's input gradient.
    pub(super) gsum: Vec<Vec<f32>>,
    pub(super) dlogits: Vec<Vec<f32>>,
    /// The head's parameter gradient, summed over threads (empty for GroupSum).
    pub(super) dhead: Vec<f32>,
    /// Gumbel sampling: this step's noise and, where it goes on the weights, the noisy weights.
    pub(super) noise: Vec<Vec<f32>>,
    pub(super) w_noisy: Vec<Vec<f32>>,
}

/// Block size and block count for a batch: at least one block per thread.
pub(super) fn plan_blocks(batch: usize, threads: usize, target: usize) -> (usize, usize) {
    let target = if target == 0 { 64 } else { target };
    let blocks = threads
        .max(batch.div_ceil(target))
        .min(batch.div_ceil(kernel::LANES));
    let bs = batch.div_ceil(blocks).div_ceil(kernel::LANES) * kernel::LANES;
    (bs, batch.div_ceil(bs))
}

fn zeros(lens: &[usize]) -> Vec<Vec<f32>> {
    lens.iter().map(|&n| vec![0.0; n]).collect()
}

/// Per-layer lengths of the gradients that both a worker (per thread) and the plan (summed
/// over threads) hold: coefficients, candidate logits, and slot sums of learnable layers.
pub(super) struct GradLens {
    pub(super) coef: Vec<usize>,
    pub(super) conn: Vec<usize>,
    pub(super) gsum: Vec<usize>,
}

impl GradLens {
    pub(super) fn of(model: &Model) -> Self {
        let layers = &model.layers;
        GradLens {
            coef: layers.iter().map(|l| l.out_dim() << l.rank()).collect(),
            conn: layers.iter().map(|l| l.conn_logits.len()).collect(),
            gsum: layers
                .iter()
                .map(|l| if l.config.learnable() { l.ids.len() } else { 0 })
                .collect(),
        }
    }
}

impl Plan {
    pub(super) fn new(
        model: &Model,
        batch: usize,
        threads: usize,
        block: usize,
        amp: AmpDtype,
    ) -> Plan {
        let (bs, blocks) = plan_blocks(batch, threads, block);
        let GradLens {
            coef: coef_len,
            conn: conn_len,
            gsum: gsum_len,
        } = GradLens::of(model);
        let dw_len: Vec<usize> = model
            .layers
            .iter()
            .map(|l| {
                if params::needs_scratch(l) {
                    l.weights.len()
                } else {
                    0
                }
            })
            .collect();
        let hard_len: Vec<usize> = model
            .layers
            .iter()
            .zip(&coef_len)
            .map(|(l, &n)| if l.config.sampling.hard() { n } else { 0 })
            .collect();
        let head_len = model.head.params().len();
        let workers = Workers::new(amp, model, bs, threads);
        let gumbel = |l: &crate::layer::LogicDense| l.config.sampling.gumbel();
        let noise_len: Vec<usize> = model
            .layers
            .iter()
            .map(|l| if gumbel(l) { l.noise_len() } else { 0 })
            .collect();
        let noisy_len: Vec<usize> = model
            .layers
            .iter()
            .map(|l| {
                if gumbel(l) && l.noise_on_weights() {
                    l.weights.len()
                } else {
                    0
                }
            })
            .collect();
        Plan {
            batch,
            bs,
            blocks,
            workers,
            dcoef: CoefGrads::new(&coef_len, threads),
            weights: vec![Vec::new(); model.layers.len()],
            coef_soft: zeros(&coef_len),
            coef_hard: zeros(&hard_len),
            dw: zeros(&dw_len),
            dconn: zeros(&conn_len),
            gsum: zeros(&gsum_len),
            dlogits: zeros(&conn_len),
            dhead: vec![0.0; head_len],
            noise: zeros(&noise_len),
            w_noisy: zeros(&noisy_len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plan_blocks;

    #[test]
    fn blocks_cover_the_batch() {
        for &(batch, threads) in &[(128, 2), (100, 2), (1, 4), (1000, 3), (17, 1)] {
            let (bs, blocks) = plan_blocks(batch, threads, 0);
            assert_eq!(bs % 16, 0);
            assert!(
                bs * blocks >= batch && bs * (blocks - 1) < batch,
                "{batch} {threads}"
            );
        }
        assert_eq!(plan_blocks(128, 2, 0), (64, 2));
    }

    #[test]
    fn a_planned_block_size_plans_itself() {
        // max-autotune keeps the block size it measured as the target of the real plan.
        for batch in 1..300 {
            for threads in 1..5 {
                for target in [0, 16, 17, 32, 48, 64, 100, 128, 256] {
                    let planned = plan_blocks(batch, threads, target);
                    assert_eq!(
                        plan_blocks(batch, threads, planned.0),
                        planned,
                        "{batch} {threads} {target}"
                    );
                }
            }
        }
    }
}
