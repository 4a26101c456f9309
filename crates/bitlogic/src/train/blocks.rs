//! The parallel part of a step: every thread runs its blocks, and the first to finish them
//! runs the update of the layer weights (`params`), layer by layer from the top as the
//! others hand their coefficient gradients over (`coef_grads`); any thread that has finished
//! its blocks helps with the layer at hand. Then the per-thread f32 gradient of the head is
//! summed in thread order (the connections' are summed inside their update, `connections`).
//!
//! The workers' activation type comes from `amp_dtype`; [`Workers`] holds one of three
//! typed vectors and [`Workers::run`] picks the instantiation of [`run`] once per step, so
//! the kernels inside are monomorphised per type (no per-block branching on the type). Where
//! the type asks for it (`Act::LOSS_SCALING`: f16), the loss gradient is multiplied by the
//! largest power of two ≤ the batch size on the way in and the summed gradients are divided
//! by it on the way out (exact in f32).

use super::coef_grads::CoefGrads;
use super::compile::AmpDtype;
use super::connections::{self, ConnBuffers};
use super::optimizer::AdamStep;
use super::params::Update;
use super::trainer::EncodedSet;
use super::worker::Worker;
use crate::layer::simd::SimdLevel;
use crate::layer::{Act, Bf16, LogicDense, F16};
use crate::Model;
use rayon::prelude::*;
use std::sync::Mutex;
use std::time::Instant;

/// One worker per thread, with activations stored as f32, bf16 or f16.
pub(super) enum Workers {
    F32(Vec<Worker<f32>>),
    Bf16(Vec<Worker<Bf16>>),
    F16(Vec<Worker<F16>>),
}

impl Workers {
    pub(super) fn new(amp: AmpDtype, model: &Model, bs: usize, threads: usize) -> Self {
        fn make<A: Act>(model: &Model, bs: usize, threads: usize) -> Vec<Worker<A>> {
            (0..threads).map(|_| Worker::new(model, bs)).collect()
        }
        match amp {
            AmpDtype::None => Workers::F32(make(model, bs, threads)),
            AmpDtype::Bf16 => Workers::Bf16(make(model, bs, threads)),
            AmpDtype::F16 => Workers::F16(make(model, bs, threads)),
        }
    }

    /// Updates layer `l`'s learnable connections after a step of `n` samples (`connections`).
    pub(super) fn update_connections(
        &self,
        l: usize,
        n: usize,
        layer: &mut LogicDense,
        b: ConnBuffers,
        adam: AdamStep,
    ) {
        let unscale = 1.0 / self.loss_scale(n);
        match self {
            Workers::F32(w) => connections::update(w, l, unscale, layer, b, adam),
            Workers::Bf16(w) => connections::update(w, l, unscale, layer, b, adam),
            Workers::F16(w) => connections::update(w, l, unscale, layer, b, adam),
        }
    }

    /// Layer `l`'s candidate gradients and slot sums of a step of `n` samples, summed over
    /// threads.
    #[cfg(test)]
    pub(super) fn conn_sums(&self, l: usize, n: usize, dq: &mut [f32], gsum: &mut [f32]) {
        fn sums<A: Act>(w: &[Worker<A>], l: usize, u: f32, dq: &mut [f32], gs: &mut [f32]) {
            sum_threads(w, dq, u, |w| &w.dconn[l]);
            sum_threads(w, gs, u, |w| &w.gsum[l]);
        }
        let unscale = 1.0 / self.loss_scale(n);
        match self {
            Workers::F32(w) => sums(w, l, unscale, dq, gsum),
            Workers::Bf16(w) => sums(w, l, unscale, dq, gsum),
            Workers::F16(w) => sums(w, l, unscale, dq, gsum),
        }
    }

    /// The factor on the loss gradient of a step of `n` samples (see [`loss_scale`]).
    pub(super) fn loss_scale(&self, n: usize) -> f32 {
        match self {
            Workers::F32(_) => loss_scale::<f32>(n),
            Workers::Bf16(_) => loss_scale::<Bf16>(n),
            Workers::F16(_) => loss_scale::<F16>(n),
        }
    }

    /// Runs the step's blocks with their coefficient gradients in `dcoef`, and `update` (if
    /// any) alongside; then sums the other gradients into `out`. Returns the summed loss,
    /// the number of correct relaxed predictions, and when the last thread finished its blocks.
    pub(super) fn run(
        &mut self,
        step: &Step,
        dcoef: &mut CoefGrads,
        update: Option<Update>,
        out: Grads,
    ) -> (f64, usize, Instant) {
        match self {
            Workers::F32(w) => run(w, step, dcoef, update, out),
            Workers::Bf16(w) => run(w, step, dcoef, update, out),
            Workers::F16(w) => run(w, step, dcoef, update, out),
        }
    }
}

/// What every block of a step reads.
pub(super) struct Step<'a> {
    pub(super) model: &'a Model,
    pub(super) coef_soft: &'a [Vec<f32>],
    pub(super) coef_hard: &'a [Vec<f32>],
    pub(super) data: EncodedSet<'a>,
    pub(super) idx: &'a [usize],
    pub(super) bs: usize,
    pub(super) blocks: usize,
    pub(super) threads: usize,
    /// The instruction set of every block kernel (the trainer's; see `Trainer::simd`).
    pub(super) simd: SimdLevel,
}

/// The step's head gradient, summed over threads (f32); the coefficients' and the
/// connections' are summed where they are used (`params`, `connections`).
pub(super) struct Grads<'a> {
    pub(super) dhead: &'a mut [f32],
}

/// The factor on the loss gradient of a step of `n` samples with activations `A`.
pub(super) fn loss_scale<A: Act>(n: usize) -> f32 {
    if A::LOSS_SCALING {
        (1u64 << n.max(1).ilog2()) as f32
    } else {
        1.0
    }
}

/// The blocks thread `t` of `threads` runs of a step of `blocks`: the threads that run any
/// are `0..blocks.min(threads)`.
pub(super) fn blocks_of(t: usize, blocks: usize, threads: usize) -> std::ops::Range<usize> {
    if blocks <= threads {
        t.min(blocks)..(t + 1).min(blocks)
    } else {
        t * blocks / threads..(t + 1) * blocks / threads
    }
}

fn run<A: Act>(
    workers: &mut [Worker<A>],
    s: &Step,
    dcoef: &mut CoefGrads,
    update: Option<Update>,
    out: Grads,
) -> (f64, usize, Instant) {
    let (bs, blocks, threads) = (s.bs, s.blocks, s.threads);
    let n = s.idx.len();
    let loss_scale = loss_scale::<A>(n);
    let scale = loss_scale / n as f32;
    dcoef.begin(blocks.min(threads));
    let dcoef = &*dcoef;
    // Taken by the first thread to finish its blocks.
    let update = Mutex::new(update);
    let finished = Mutex::new(None::<Instant>);
    workers.par_iter_mut().enumerate().for_each(|(t, w)| {
        w.loss = 0.0;
        w.correct = 0;
        let range = blocks_of(t, blocks, threads);
        w.active = !range.is_empty();
        let last = range.len().saturating_sub(1);
        let mut writer = dcoef.writer(t);
        for (n, b) in range.enumerate() {
            let lo = b * bs;
            let hi = (lo + bs).min(s.idx.len());
            let block = &s.idx[lo..hi];
            w.run_block(
                s.simd,
                s.model,
                s.coef_soft,
                s.coef_hard,
                s.data,
                block,
                bs,
                scale,
                n > 0,
                &mut writer,
                n == last,
            );
        }
        let now = Instant::now();
        let mut f = finished.lock().unwrap_or_else(|e| e.into_inner());
        *f = Some(f.map_or(now, |f| f.max(now)));
        drop(f);
        let job = update.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            job.run(dcoef);
        }
    });
    let finished = finished
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_else(Instant::now);
    // Fixed-order reduction: thread 0, then 1, ... (thread 0 always has a block).
    let unscale = 1.0 / loss_scale;
    let workers = &*workers;
    sum_threads(workers, out.dhead, unscale, |w| &w.dhead);
    let loss = workers.iter().map(|w| w.loss).sum();
    let correct = workers.iter().map(|w| w.correct).sum();
    (loss, correct, finished)
}

/// `out` = Σ over the threads, in thread order, of `part(worker)`'s first `out.len()` values,
/// times `unscale` (thread 0 always has a block; nothing is multiplied when it is 1). Long
/// sums split into parallel chunks: each value is still summed in thread order.
pub(super) fn sum_threads<A: Act>(
    workers: &[Worker<A>],
    out: &mut [f32],
    unscale: f32,
    part: impl Fn(&Worker<A>) -> &[f32] + Sync,
) {
    const CHUNK: usize = 1 << 14;
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, out)| {
        let at = i * CHUNK..i * CHUNK + out.len();
        out.copy_from_slice(&part(&workers[0])[at.clone()]);
        for w in workers[1..].iter().filter(|w| w.active) {
            out.iter_mut()
                .zip(&part(w)[at.clone()])
                .for_each(|(d, s)| *d += s);
        }
        if unscale != 1.0 {
            out.iter_mut().for_each(|v| *v *= unscale);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::{Encoder, EncoderKind};
    use crate::head::HeadKind;
    use crate::layer::{ConnectionGrad, ConnectionKind};
    use crate::rng::Rng;
    use crate::ModelConfig;

    /// Every summed gradient of one step (layer coefficients, candidates, slot sums, head),
    /// then the summed loss.
    fn step_grads(model: &Model, amp: AmpDtype, data: EncodedSet, idx: &[usize]) -> Vec<f32> {
        steps_grads(model, amp, data, idx.len(), &[idx])
    }

    /// `step_grads` of the last of `steps`, run in turn on one 2-thread plan for `batch`.
    fn steps_grads(
        model: &Model,
        amp: AmpDtype,
        data: EncodedSet,
        batch: usize,
        steps: &[&[usize]],
    ) -> Vec<f32> {
        let plan = super::super::plan::Plan::new(model, batch, 2, 0, amp);
        let (bs, planned) = (plan.bs, plan.blocks);
        let (mut workers, mut dcoef) = (plan.workers, plan.dcoef);
        let coef: Vec<Vec<f32>> = model
            .layers
            .iter()
            .map(|l| {
                let mut c = vec![0.0; l.out_dim() << l.rank()];
                l.fold(false, &mut c);
                c
            })
            .collect();
        let (mut dconn, mut gsum) = (plan.dconn, plan.gsum);
        let mut dhead = plan.dhead;
        let (mut loss, mut n) = (0.0, 0);
        for idx in steps {
            let step = Step {
                model,
                coef_soft: &coef,
                coef_hard: &[],
                data,
                idx,
                bs,
                // As `Trainer::step` counts them: a short batch may need fewer.
                blocks: planned.min(idx.len().div_ceil(bs)),
                threads: 2,
                simd: crate::layer::simd::simd_level(),
            };
            let grads = Grads { dhead: &mut dhead };
            (loss, n) = (workers.run(&step, &mut dcoef, None, grads).0, idx.len());
        }
        let mut all: Vec<f32> = Vec::new();
        for (l, c) in coef.iter().enumerate() {
            let mut d = vec![0.0; c.len()];
            dcoef.sum(l, 0, 1.0 / workers.loss_scale(n), &mut d);
            all.extend(d);
        }
        for (l, (dq, gs)) in dconn.iter_mut().zip(&mut gsum).enumerate() {
            workers.conn_sums(l, n, dq, gs);
        }
        all.extend(dconn.concat());
        all.extend(gsum.concat());
        all.extend(dhead);
        all.push(loss as f32);
        all
    }

    /// Rank 3, learnable connections and a GroupedDSP head: every kind of summed gradient.
    fn learnable_with_dsp_head() -> ModelConfig {
        ModelConfig {
            widths: vec![96, 60],
            lut_rank: 3,
            connections: ConnectionKind::Learnable,
            num_candidates: 4,
            connection_grad: ConnectionGrad::Linear,
            head: HeadKind::GroupedDsp {
                beta: 1.0,
                wbits: 8,
            },
            encoder_bits: 1,
            classes: 10,
            ..ModelConfig::default()
        }
    }

    /// A model on 32 one-bit inputs, and 100 random samples of them (bits, labels).
    fn model_and_data(cfg: ModelConfig, seed: u64) -> (Model, Vec<u8>, Vec<u32>) {
        let mut enc = Encoder::new(EncoderKind::Thermometer, 1, false).unwrap();
        let x: Vec<f32> = (0..64).map(|i| if i < 32 { 0.0 } else { 1.0 }).collect();
        enc.fit(&x, 2, 32).unwrap();
        let model = Model::new(cfg, enc).unwrap();
        let mut r = Rng::new(seed);
        let bits: Vec<u8> = (0..100 * 32).map(|_| (r.next_u64() & 1) as u8).collect();
        let labels: Vec<u32> = (0..100).map(|_| r.below(10) as u32).collect();
        (model, bits, labels)
    }

    fn set<'a>(bits: &'a [u8], labels: &'a [u32]) -> EncodedSet<'a> {
        EncodedSet {
            n: labels.len(),
            dim: 32,
            bits,
            labels,
        }
    }

    #[test]
    fn the_last_layer_feeds_group_sum_directly_with_the_same_bits() {
        use crate::layer::Parametrization::{Difflogic, Light};
        use crate::train::worker::UNFUSED;
        use std::sync::atomic::Ordering;
        let cases = [
            (Light, 2, ConnectionKind::Random),
            (Difflogic, 2, ConnectionKind::Random),
            (Light, 4, ConnectionKind::Learnable),
        ];
        for (p, rank, connections) in cases {
            let cfg = ModelConfig {
                widths: vec![96, 60],
                lut_rank: rank,
                parametrization: p,
                connections,
                num_candidates: 4,
                connection_grad: ConnectionGrad::Linear,
                encoder_bits: 1,
                classes: 10,
                ..ModelConfig::default()
            };
            let (model, bits, labels) = model_and_data(cfg, 6);
            let data = set(&bits, &labels);
            let idx: Vec<usize> = (0..data.n).collect();
            for amp in [AmpDtype::None, AmpDtype::Bf16, AmpDtype::F16] {
                let fused = step_grads(&model, amp, data, &idx);
                UNFUSED.store(true, Ordering::Relaxed);
                let rows = step_grads(&model, amp, data, &idx);
                UNFUSED.store(false, Ordering::Relaxed);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fused), bits(&rows), "{p:?} rank {rank} {amp:?}");
            }
        }
    }

    #[test]
    fn the_f16_loss_scale_is_undone_in_every_summed_gradient() {
        let cfg = learnable_with_dsp_head();
        let (model, bits, labels) = model_and_data(cfg, 5);
        let data = set(&bits, &labels);
        let idx: Vec<usize> = (0..data.n).collect();
        let f32_grads = step_grads(&model, AmpDtype::None, data, &idx);
        let f16_grads = step_grads(&model, AmpDtype::F16, data, &idx);
        // The loss scale here is 64 (the largest power of two ≤ 100); undone, only f16's
        // rounding of activations and gradients (2^-11 relative) separates the two.
        let max = f32_grads.iter().fold(0f32, |m, g| m.max(g.abs()));
        for (i, (a, b)) in f32_grads.iter().zip(&f16_grads).enumerate() {
            assert!(
                (a - b).abs() <= 2e-2 * max,
                "gradient {i}: f32 {a}, f16 {b}"
            );
        }
    }

    #[test]
    fn a_short_batch_sums_only_what_it_ran() {
        // 10 samples fill one block of the 2-thread plan for 128: one thread sits the step
        // out, and nothing of its previous step may reach the sums.
        let cfg = learnable_with_dsp_head();
        let (model, bits, labels) = model_and_data(cfg, 8);
        let data = set(&bits, &labels);
        let (full, short): (Vec<usize>, Vec<usize>) = ((0..100).collect(), (40..50).collect());
        let after_full = steps_grads(&model, AmpDtype::None, data, 128, &[&full, &short]);
        let fresh = steps_grads(&model, AmpDtype::None, data, 128, &[&short]);
        assert_eq!(after_full.len(), fresh.len());
        let differs = after_full
            .iter()
            .zip(&fresh)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(differs, None, "first gradient that differs");
    }
}
