//! One thread's share of a training step: a block of samples forward through every layer,
//! the loss, and backward, with the coefficient gradients kept per thread.

use super::loss::softmax_cross_entropy;
use super::trainer::EncodedSet;
use crate::head::HeadScratch;
use crate::layer::{dwn_kernel, kernel, learnable};
use crate::Model;

/// Per-thread scratch for one block at a time.
pub(super) struct Worker {
    pub(super) acts: Vec<Vec<f32>>,
    pub(super) grads: Vec<Vec<f32>>,
    pub(super) dcoef: Vec<Vec<f32>>,
    /// Learnable layers: per-slot input gradients of the block and candidate gradients.
    pub(super) slot_grad: Vec<Vec<f32>>,
    pub(super) dconn: Vec<Vec<f32>>,
    /// Σ_b of each slot's input gradient (the linear connection surrogate needs it).
    pub(super) gsum: Vec<Vec<f32>>,
    pub(super) scores: Vec<f32>,
    pub(super) dscores: Vec<f32>,
    /// The head's block buffers and its parameter gradient, summed over this thread's blocks.
    pub(super) head: HeadScratch,
    pub(super) dhead: Vec<f32>,
    pub(super) col: Vec<f32>,
    pub(super) labels: Vec<Option<u32>>,
    pub(super) loss: f64,
    pub(super) correct: usize,
    /// Whether this worker ran a block in the current step (its `dcoef` is stale otherwise).
    pub(super) active: bool,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_block(
        &mut self,
        model: &Model,
        coef_soft: &[Vec<f32>],
        coef_hard: &[Vec<f32>],
        data: EncodedSet,
        idx: &[usize],
        bs: usize,
        scale: f32,
        accumulate: bool,
    ) {
        let dim = data.dim;
        let input = &mut self.acts[0];
        for (s, &i) in idx.iter().enumerate() {
            let x = &data.bits[i * dim..(i + 1) * dim];
            for (f, &b) in x.iter().enumerate() {
                input[f * bs + s] = b as f32;
            }
            self.labels[s] = Some(data.labels[i]);
        }
        self.labels[idx.len()..].iter_mut().for_each(|l| *l = None);

        for (l, layer) in model.layers.iter().enumerate() {
            let hard = layer.config.sampling.hard();
            let coef = if hard { &coef_hard[l] } else { &coef_soft[l] };
            let sigmoid = layer.config.parametrization.sigmoid_output() && !hard;
            let (a, b) = self.acts.split_at_mut(l + 1);
            if layer.config.parametrization.multilinear() {
                kernel::forward(
                    layer.rank(),
                    &layer.ids,
                    coef,
                    sigmoid,
                    &a[l],
                    &mut b[0],
                    bs,
                );
            } else {
                dwn_kernel::forward(layer.rank(), &layer.ids, coef, &a[l], &mut b[0], bs);
            }
        }
        let last = model.layers.len();
        model
            .head
            .forward(&self.acts[last], &mut self.head, &mut self.scores, bs);
        let (loss, correct) = softmax_cross_entropy(
            &self.scores,
            &self.labels,
            model.head.k(),
            bs,
            scale,
            &mut self.dscores,
            &mut self.col,
        );
        self.loss += loss;
        self.correct += correct;
        model.head.backward(
            &self.dscores,
            &mut self.head,
            &mut self.grads[last],
            &mut self.dhead,
            accumulate,
            bs,
        );
        for (l, layer) in model.layers.iter().enumerate().rev() {
            let sigmoid = layer.config.parametrization.sigmoid_output();
            let (a, b) = self.grads.split_at_mut(l + 1);
            let grad_in = if l > 0 {
                a[l].iter_mut().for_each(|v| *v = 0.0);
                Some(&mut a[l][..])
            } else {
                None
            };
            let learn = layer.config.learnable();
            let slot_grad = learn.then_some(&mut self.slot_grad[l][..]);
            let (x, g, dc) = (&self.acts[l], &b[0], &mut self.dcoef[l]);
            if layer.config.parametrization.multilinear() {
                let c = &coef_soft[l];
                kernel::backward(
                    layer.rank(),
                    &layer.ids,
                    c,
                    sigmoid,
                    x,
                    g,
                    grad_in,
                    slot_grad,
                    dc,
                    accumulate,
                    bs,
                );
            } else {
                let t = &coef_soft[l];
                dwn_kernel::backward(
                    layer.rank(),
                    &layer.ids,
                    t,
                    x,
                    g,
                    grad_in,
                    slot_grad,
                    dc,
                    accumulate,
                    bs,
                );
            }
            if learn {
                learnable::candidate_grads(
                    &self.slot_grad[l],
                    &self.acts[l],
                    &layer.candidates,
                    layer.config.num_candidates,
                    bs,
                    &mut self.dconn[l],
                    accumulate,
                );
                learnable::slot_sums(&self.slot_grad[l], bs, &mut self.gsum[l], accumulate);
            }
        }
    }
}
