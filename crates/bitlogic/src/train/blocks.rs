//! The parallel part of a step: every thread runs its blocks, then the per-thread f32
//! gradients are summed in thread order into the step's gradients.
//!
//! The workers' activation type comes from `amp_dtype`; [`Workers`] holds one of three
//! typed vectors and [`Workers::run`] picks the instantiation of [`run`] once per step, so
//! the kernels inside are monomorphised per type (no per-block branching on the type). Where
//! the type asks for it (`Act::LOSS_SCALING`: f16), the loss gradient is multiplied by the
//! largest power of two ≤ the batch size on the way in and the summed gradients are divided
//! by it on the way out (exact in f32).

use super::compile::AmpDtype;
use super::trainer::EncodedSet;
use super::worker::Worker;
use crate::layer::{Act, Bf16, F16};
use crate::Model;
use rayon::prelude::*;

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

    /// Runs the step's blocks and sums the gradients into `out`; returns the summed loss
    /// and the number of correct relaxed predictions.
    pub(super) fn run(&mut self, step: &Step, out: Grads) -> (f64, usize) {
        match self {
            Workers::F32(w) => run(w, step, out),
            Workers::Bf16(w) => run(w, step, out),
            Workers::F16(w) => run(w, step, out),
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
}

/// The step's gradients, summed over threads (f32).
pub(super) struct Grads<'a> {
    pub(super) dcoef: &'a mut [Vec<f32>],
    pub(super) dconn: &'a mut [Vec<f32>],
    pub(super) gsum: &'a mut [Vec<f32>],
    pub(super) dhead: &'a mut [f32],
}

fn run<A: Act>(workers: &mut [Worker<A>], s: &Step, out: Grads) -> (f64, usize) {
    let (bs, blocks, threads) = (s.bs, s.blocks, s.threads);
    let n = s.idx.len();
    let loss_scale = if A::LOSS_SCALING {
        (1u64 << n.max(1).ilog2()) as f32
    } else {
        1.0
    };
    let scale = loss_scale / n as f32;
    workers.par_iter_mut().enumerate().for_each(|(t, w)| {
        w.loss = 0.0;
        w.correct = 0;
        let range = t * blocks / threads..(t + 1) * blocks / threads;
        w.active = !range.is_empty();
        for (n, b) in range.enumerate() {
            let lo = b * bs;
            let hi = (lo + bs).min(s.idx.len());
            let block = &s.idx[lo..hi];
            w.run_block(
                s.model,
                s.coef_soft,
                s.coef_hard,
                s.data,
                block,
                bs,
                scale,
                n > 0,
            );
        }
    });
    // Fixed-order reduction: thread 0, then 1, ... (thread 0 always has a block).
    let unscale = 1.0 / loss_scale;
    let workers = &*workers;
    for (l, d) in out.dcoef.iter_mut().enumerate() {
        d.par_chunks_mut(4096).enumerate().for_each(|(c, d)| {
            let off = c * 4096;
            d.copy_from_slice(&workers[0].dcoef[l][off..off + d.len()]);
            for w in workers[1..].iter().filter(|w| w.active) {
                d.iter_mut()
                    .zip(&w.dcoef[l][off..])
                    .for_each(|(d, s)| *d += s);
            }
            unscaled(d, unscale);
        });
    }
    for (l, d) in out.dconn.iter_mut().enumerate() {
        if d.is_empty() {
            continue;
        }
        d.copy_from_slice(&workers[0].dconn[l]);
        for w in workers[1..].iter().filter(|w| w.active) {
            d.iter_mut().zip(&w.dconn[l]).for_each(|(d, s)| *d += s);
        }
        unscaled(d, unscale);
    }
    for (l, d) in out.gsum.iter_mut().enumerate() {
        if d.is_empty() {
            continue;
        }
        d.copy_from_slice(&workers[0].gsum[l]);
        for w in workers[1..].iter().filter(|w| w.active) {
            d.iter_mut().zip(&w.gsum[l]).for_each(|(d, s)| *d += s);
        }
        unscaled(d, unscale);
    }
    if !out.dhead.is_empty() {
        out.dhead.copy_from_slice(&workers[0].dhead);
        for w in workers[1..].iter().filter(|w| w.active) {
            out.dhead
                .iter_mut()
                .zip(&w.dhead)
                .for_each(|(d, s)| *d += s);
        }
        unscaled(out.dhead, unscale);
    }
    let loss = workers.iter().map(|w| w.loss).sum();
    let correct = workers.iter().map(|w| w.correct).sum();
    (loss, correct)
}

/// Undoes the loss scale (nothing to do, and nothing done, when it is 1).
#[inline]
fn unscaled(d: &mut [f32], unscale: f32) {
    if unscale != 1.0 {
        d.iter_mut().for_each(|v| *v *= unscale);
    }
}
