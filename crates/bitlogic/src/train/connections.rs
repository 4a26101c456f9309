//! The step's update of a layer's learnable connections, fused per run of slots.
//!
//! For each run of slots, while it is in cache: the threads' candidate gradients and slot
//! sums added in thread order, the logits' gradient (the softmax Jacobian or the linear
//! surrogate, `layer::learnable`), Adam on the logits, and each slot's new input, the argmax
//! of its logits. Run as separate passes, each of these read and wrote every logit of the
//! layer again. Every value sees the same operations in the same order either way, so the
//! model is bit for bit the same.

use super::blocks::sum_threads;
use super::optimizer::{adam_chunk, AdamStep};
use super::worker::Worker;
use crate::layer::learnable::{argmax_ids, linear_logits_grad, logits_grad};
use crate::layer::{Act, ConnectionGrad, LogicDense};
use rayon::prelude::*;

/// Slots per parallel task: with 16 candidates, 64 KB of each of logits, moments, candidate
/// ids and gradients.
const TASK: usize = 1024;

/// The buffers of one layer's connection update.
pub(super) struct ConnBuffers<'a> {
    /// Candidate gradients summed over threads, `[slot][candidate]`.
    pub(super) dq: &'a mut [f32],
    /// Slot sums over threads (the linear surrogate), `[slot]`.
    pub(super) gsum: &'a mut [f32],
    /// The logits' gradient, `[slot][candidate]`.
    pub(super) dlogits: &'a mut [f32],
    /// Adam's moments of the logits.
    pub(super) m: &'a mut [f32],
    pub(super) v: &'a mut [f32],
}

/// Updates layer `l`'s connections (a learnable layer) from the workers' gradients of a step;
/// `unscale` undoes the loss scale.
pub(super) fn update<A: Act>(
    workers: &[Worker<A>],
    l: usize,
    unscale: f32,
    layer: &mut LogicDense,
    b: ConnBuffers,
    adam: AdamStep,
) {
    let (c, tau) = (
        layer.config.num_candidates,
        layer.config.connection_temperature,
    );
    let rule = layer.config.connection_grad;
    let n = TASK * c;
    layer
        .ids
        .par_chunks_mut(TASK)
        .zip(layer.candidates.par_chunks(n))
        .zip(layer.conn_logits.par_chunks_mut(n))
        .zip(b.dq.par_chunks_mut(n))
        .zip(b.gsum.par_chunks_mut(TASK))
        .zip(b.dlogits.par_chunks_mut(n))
        .zip(b.m.par_chunks_mut(n))
        .zip(b.v.par_chunks_mut(n))
        .enumerate()
        .for_each(|(t, (((((((ids, cand), logits), dq), gsum), dl), m), v))| {
            let (slots, q) = (t * TASK, t * n);
            sum_threads(workers, dq, unscale, |w| &w.dconn[l][q..]);
            if rule == ConnectionGrad::Linear {
                sum_threads(workers, gsum, unscale, |w| &w.gsum[l][slots..]);
                linear_logits_grad(dq, gsum, c, dl);
            } else {
                logits_grad(logits, dq, c, tau, dl);
            }
            adam_chunk(adam, logits, dl, m, v);
            argmax_ids(cand, logits, c, ids);
        });
}
