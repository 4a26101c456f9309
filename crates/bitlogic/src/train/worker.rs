//! One thread's share of a training step: a block of samples forward through every layer,
//! the loss, and backward, with the coefficient gradients kept per thread.
//!
//! Activations and their gradients are stored as `A` (f32, bf16 or f16, from `amp_dtype`);
//! every other buffer here is f32, so the per-thread gradient sums are f32 whatever `A` is.

use super::block_rows::BlockRows;
use super::coef_grads::Writer;
use super::loss::softmax_cross_entropy;
use super::pages::PageBuf;
use super::plan::GradLens;
use super::trainer::EncodedSet;
use crate::head::{Head, HeadScratch};
use crate::layer::simd::SimdLevel;
use crate::layer::{dwn_kernel, kernel, learnable, rows, Act};
use crate::Model;

/// The group size of a GroupSum head whose last layer the multilinear kernels feed directly
/// (`kernel::forward_group_sums`, `kernel::backward_group_at`). `None` otherwise (another head,
/// or a DWN last layer), where the last layer's rows go through the head.
fn fused_head(model: &Model) -> Option<usize> {
    #[cfg(test)]
    if UNFUSED.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let last = model.layers.last()?;
    let fits = matches!(model.head, Head::GroupSum(_)) && last.config.parametrization.multilinear();
    fits.then(|| model.head.group().group_size())
}

/// Tests: turns the fusion off everywhere (harmless to tests running alongside: both ways
/// give the same bits, which is what the test that sets it checks).
#[cfg(test)]
pub(super) static UNFUSED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Per-thread scratch for one block at a time.
pub(super) struct Worker<A: Act> {
    /// `acts[k]`, `[width][bs]`: the encoded input, then each layer's output; and two
    /// gradient buffers, used in turn: the gradient of `acts[k]` lives in buffer `k % 2`.
    /// The backward pass of a layer reads one and adds into the other, which the layer above
    /// has just read (and cleared), so both are warm in L2; one buffer per layer would have
    /// each layer's input gradient come cold from L3 just to add into zeros. Nothing flows
    /// into the input bits.
    pub(super) rows: BlockRows<A>,
    /// Learnable layers: per-slot input gradients of the block and candidate gradients.
    pub(super) slot_grad: Vec<PageBuf<f32>>,
    pub(super) dconn: Vec<Vec<f32>>,
    /// Σ_b of each slot's input gradient (the linear connection surrogate needs it).
    pub(super) gsum: Vec<Vec<f32>>,
    pub(super) scores: Vec<f32>,
    pub(super) dscores: Vec<f32>,
    /// A GroupSum head's gradient, one row per group (`[k][bs]`), where the last layer reads
    /// it directly (see `fused_head`).
    pub(super) group_grad: Vec<A>,
    /// The head's block buffers and its parameter gradient, summed over this thread's blocks.
    pub(super) head: HeadScratch,
    pub(super) dhead: Vec<f32>,
    pub(super) col: Vec<f32>,
    pub(super) labels: Vec<Option<u32>>,
    pub(super) loss: f64,
    pub(super) correct: usize,
    /// Whether this worker ran a block in the current step (its sums are stale otherwise).
    pub(super) active: bool,
}

fn zeros<T: Clone>(lens: &[usize], zero: T) -> Vec<Vec<T>> {
    lens.iter().map(|&n| vec![zero.clone(); n]).collect()
}

/// Buffers of `lens` zeros on memory that may take 2 MB pages (see `pages`).
fn pages<T: Act>(lens: &[usize]) -> Vec<PageBuf<T>> {
    lens.iter().map(|&n| PageBuf::zeroed(n)).collect()
}

impl<A: Act> Worker<A> {
    /// Buffers for blocks of `bs` samples of `model`.
    pub(super) fn new(model: &Model, bs: usize) -> Self {
        let mut widths = vec![model.encoder.output_dim()];
        widths.extend(model.layers.iter().map(|l| l.out_dim()));
        let acts: Vec<usize> = widths.iter().map(|&w| w * bs).collect();
        let lens = GradLens::of(model);
        let slot_len: Vec<usize> = model
            .layers
            .iter()
            .map(|l| {
                if l.config.learnable() {
                    l.out_dim() * l.rank() * bs
                } else {
                    0
                }
            })
            .collect();
        let k = model.head.k();
        Worker {
            rows: BlockRows::new(&acts),
            slot_grad: pages(&slot_len),
            dconn: zeros(&lens.conn, 0.0),
            gsum: zeros(&lens.gsum, 0.0),
            scores: vec![0.0; k * bs],
            dscores: vec![0.0; k * bs],
            group_grad: vec![A::ZERO; k * bs],
            head: model.head.scratch(bs),
            dhead: vec![0.0; model.head.params().len()],
            col: vec![0.0; k],
            labels: vec![None; bs],
            loss: 0.0,
            correct: 0,
            active: false,
        }
    }

    /// Forward, loss and backward of one block; `scale` multiplies the loss gradient (1 / batch
    /// size, times the loss scale of `blocks`). Every kernel runs at `level`, the trainer's
    /// own (max-autotune times it against the others). The coefficient gradients go to
    /// `dcoef`; in the thread's last block of the step (`hand_over`), each layer's is handed
    /// over as soon as its backward pass is done.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_block(
        &mut self,
        level: SimdLevel,
        model: &Model,
        coef_soft: &[Vec<f32>],
        coef_hard: &[Vec<f32>],
        data: EncodedSet,
        idx: &[usize],
        bs: usize,
        scale: f32,
        accumulate: bool,
        dcoef: &mut Writer,
        hand_over: bool,
    ) {
        let dim = data.dim;
        rows::bit_rows_at(level, data.bits, dim, idx, self.rows.act_mut(0));
        for (s, &i) in idx.iter().enumerate() {
            self.labels[s] = Some(data.labels[i]);
        }
        self.labels[idx.len()..].iter_mut().for_each(|l| *l = None);

        let fused = fused_head(model);
        for (l, layer) in model.layers.iter().enumerate() {
            let hard = layer.config.sampling.hard();
            let coef = if hard { &coef_hard[l] } else { &coef_soft[l] };
            let sigmoid = layer.config.parametrization.sigmoid_output() && !hard;
            let (x, y) = self.rows.forward(l);
            if let (Some(group), true) = (fused, l + 1 == model.layers.len()) {
                // Straight into the head's sums: the last layer's rows are never written.
                let (r, ids, scores) = (layer.rank(), &layer.ids, &mut self.scores);
                kernel::forward_group_sums_at(level, r, ids, coef, sigmoid, x, scores, group, bs);
            } else if layer.config.parametrization.multilinear() {
                let (r, ids) = (layer.rank(), &layer.ids);
                kernel::forward_at(level, r, ids, coef, sigmoid, x, y, bs);
            } else {
                let (r, ids) = (layer.rank(), &layer.ids);
                dwn_kernel::forward_at(level, r, ids, coef, x, y, bs);
            }
        }
        let last = model.layers.len();
        let (x, scores) = (self.rows.act(last), &mut self.scores);
        match fused {
            // The sums are in.
            Some(_) => model.head.group().scale_sums(scores),
            None => model.head.forward_at(level, x, &mut self.head, scores, bs),
        }
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
        match fused {
            Some(_) => {
                let (head, gg) = (model.head.group(), &mut self.group_grad);
                head.group_rows_at(level, &self.dscores, gg, bs);
            }
            None => model.head.backward_at(
                level,
                &self.dscores,
                &mut self.head,
                self.rows.grad_mut(last),
                &mut self.dhead,
                accumulate,
                bs,
            ),
        }
        for (l, layer) in model.layers.iter().enumerate().rev() {
            let sigmoid = layer.config.parametrization.sigmoid_output();
            let (x, g_in, b) = self.rows.backward(l);
            // Zero already: the layer above (or, for the top layer, the last block's bottom
            // layer) cleared it as it read it as its output gradient, or it is fresh.
            debug_assert!(g_in.iter().all(|g| g.to_f32() == 0.0));
            let grad_in = (l > 0).then_some(g_in);
            let learn = layer.config.learnable();
            let slot_grad = learn.then_some(&mut self.slot_grad[l][..]);
            let (g, dc) = (b, dcoef.layer(l));
            if let (Some(group), true) = (fused, l + 1 == last) {
                // The output gradients are the head's rows (`b` stays zero, untouched).
                let (r, ids, c, gg) = (
                    layer.rank(),
                    &layer.ids,
                    &coef_soft[l],
                    &self.group_grad[..],
                );
                kernel::backward_group_at(
                    level, r, ids, c, sigmoid, x, gg, group, grad_in, slot_grad, dc, accumulate, bs,
                );
            } else if layer.config.parametrization.multilinear() {
                let c = &coef_soft[l];
                kernel::backward_at(
                    level,
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
                dwn_kernel::backward_at(
                    level,
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
                learnable::candidate_grads_at(
                    level,
                    &self.slot_grad[l],
                    self.rows.act(l),
                    &layer.candidates,
                    layer.config.num_candidates,
                    bs,
                    &mut self.dconn[l],
                    accumulate,
                );
                let (sg, gs) = (&self.slot_grad[l], &mut self.gsum[l]);
                learnable::slot_sums_at(level, sg, bs, gs, accumulate);
            }
            if hand_over {
                dcoef.hand_over(l);
            }
        }
    }
}
