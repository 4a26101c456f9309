//! The per-step work on the layer weights around the blocks: folding them into coefficients
//! before, and the fused update during and after them.
//!
//! The update takes a run of neurons at a time: it sums the threads' coefficient gradients in
//! thread order, unfolds them into weight gradients in a stack buffer and applies Adam to the
//! run at once. Unfused, the weight gradients of a whole layer were written out and read back
//! by the optimizer (four times the size of the coefficients for difflogic). Each weight sees
//! the operations it saw unfused, in the same order, so the model is bit for bit the same.
//! Difflogic goes one step further: each neuron's Adam step is taken in registers as soon as
//! its row of gradients is out, interleaved with the next neurons' unfold
//! (`Parametrization::unfold_run_each`), so that Adam's divisions overlap that work.
//!
//! It runs layer by layer from the top, each layer as soon as every thread has handed its
//! gradients over (`coef_grads`), on the first thread to finish its blocks: where the other
//! is slower, most of the update is done by the time its blocks end.

use super::coef_grads::CoefGrads;
use super::noise;
use super::optimizer::{adam_chunk_any, adam_row, AdamStep};
use crate::layer::lanes::Lanes;
use crate::layer::simd::dispatch;
use crate::layer::{LogicDense, Parametrization};
use rayon::prelude::*;

/// Neurons per parallel task: a few microseconds of work even at rank 2.
const TASK: usize = 2048;
/// Stack buffers of one run of neurons: coefficient gradients and weight gradients (a run
/// stays in L1 between the unfold and Adam).
const DA: usize = 512;
const DW: usize = 2048;

/// Whether a layer's update needs a weight-gradient buffer of its own: a neuron with more
/// weights than the stack buffer holds (large NeuraLUTs).
pub(super) fn needs_scratch(layer: &LogicDense) -> bool {
    layer.weights_per_neuron() > DW
}

/// Folds every layer's weights into `coef_soft` (and `coef_hard` where it samples hard),
/// drawing this step's Gumbel noise first where the layer samples it; one parallel call for
/// all layers.
#[allow(clippy::too_many_arguments)]
pub(super) fn fold_all(
    layers: &[LogicDense],
    coef_soft: &mut [Vec<f32>],
    coef_hard: &mut [Vec<f32>],
    noise: &mut [Vec<f32>],
    w_noisy: &mut [Vec<f32>],
    seed: u64,
    step: u64,
) {
    layers
        .par_iter()
        .zip(coef_soft)
        .zip(coef_hard)
        .zip(noise)
        .zip(w_noisy)
        .enumerate()
        .for_each(|(l, ((((layer, soft), hard), noise), noisy))| {
            fold_layer(layer, soft, hard, noise, noisy, seed, step, l)
        });
}

#[allow(clippy::too_many_arguments)]
fn fold_layer(
    layer: &LogicDense,
    soft: &mut [f32],
    hard: &mut [f32],
    noise: &mut [f32],
    noisy: &mut [f32],
    seed: u64,
    step: u64,
    l: usize,
) {
    let sampling = layer.config.sampling;
    if !sampling.gumbel() {
        layer.fold(false, soft);
        if sampling.hard() {
            layer.fold(true, hard);
        }
        return;
    }
    let softmax = layer.config.parametrization == Parametrization::Difflogic;
    noise::fill(noise, softmax, seed, step, l);
    if layer.noise_on_weights() {
        noisy
            .par_iter_mut()
            .zip(&layer.weights)
            .zip(&*noise)
            .for_each(|((n, &w), &e)| *n = w + e);
        layer.fold_weights(noisy, false, soft);
        if sampling.hard() {
            layer.fold_weights(noisy, true, hard);
        }
    } else {
        layer.fold(false, soft);
        let inv = 1.0 / layer.config.temperature;
        soft.par_iter_mut()
            .zip(&*noise)
            .for_each(|(a, &e)| *a += e * inv);
        if sampling.hard() {
            hard.par_iter_mut()
                .zip(&*soft)
                .for_each(|(h, &a)| *h = (a > 0.0) as u8 as f32);
        }
    }
}

/// Everything the fused update of the layer weights reads and writes, per layer.
pub(super) struct Update<'a> {
    /// The layers' configurations; their weights are `weights`, out of the model for the
    /// step, so that the blocks can read the model while the update runs.
    pub(super) layers: &'a [LogicDense],
    pub(super) weights: &'a mut [Vec<f32>],
    /// Adam's moments of the layer weights (the optimizer's first slots).
    pub(super) m: &'a mut [Vec<f32>],
    pub(super) v: &'a mut [Vec<f32>],
    /// Gumbel noise on the weights: the noisy weights the step ran at (empty otherwise).
    pub(super) w_noisy: &'a [Vec<f32>],
    /// Weight gradients of the layers that `needs_scratch` (empty otherwise).
    pub(super) scratch: &'a mut [Vec<f32>],
    pub(super) adam: AdamStep,
    /// Undoes the loss scale of the step's activation type (`blocks::loss_scale`).
    pub(super) unscale: f32,
}

impl Update<'_> {
    /// Updates every layer, from the top, each as soon as every thread has handed its
    /// coefficient gradients over. A layer's tasks are parallel: threads that have finished
    /// their blocks take some.
    pub(super) fn run(self, grads: &CoefGrads) {
        let Update {
            layers,
            weights,
            m,
            v,
            w_noisy,
            scratch,
            adam,
            unscale,
        } = self;
        let per_layer = weights.iter_mut().zip(m).zip(v).zip(scratch).enumerate();
        for (l, (((w, m), v), scratch)) in per_layer.rev() {
            if !grads.wait(l) {
                // A thread panicked in its blocks; the panic reaches the caller.
                return;
            }
            let layer = &layers[l];
            let noisy = w_noisy.get(l).map_or(&[][..], |n| &n[..]);
            update_layer(grads, l, layer, noisy, w, m, v, scratch, adam, unscale);
        }
    }
}

/// Layer `l`'s update, in parallel tasks of `TASK` neurons.
#[allow(clippy::too_many_arguments)]
fn update_layer(
    grads: &CoefGrads,
    l: usize,
    layer: &LogicDense,
    noisy: &[f32],
    w: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    scratch: &mut [f32],
    adam: AdamStep,
    unscale: f32,
) {
    let p = layer.config.parametrization;
    let wpn = layer.weights_per_neuron();
    let own = !needs_scratch(layer);
    let c = Layer {
        l,
        p,
        r: layer.rank(),
        wpn,
        tau: layer.config.temperature,
        // Weights unfold where the forward ran: at the noisy ones under Gumbel noise.
        noisy: if layer.config.sampling.gumbel() && layer.noise_on_weights() {
            noisy
        } else {
            &[]
        },
        clamp: !p.multilinear(),
        run: (DA >> layer.rank()).min(if own { DW / wpn } else { usize::MAX }),
        unscale,
        adam,
    };
    let tasks = w
        .par_chunks_mut(wpn * TASK)
        .zip(m.par_chunks_mut(wpn * TASK))
        .zip(v.par_chunks_mut(wpn * TASK))
        .enumerate();
    if own {
        tasks.for_each(|(t, ((w, m), v))| update_task(grads, &c, t, w, m, v, &mut []));
    } else {
        // The scratch buffer splits as the weights do.
        tasks
            .zip(scratch.par_chunks_mut(wpn * TASK))
            .for_each(|((t, ((w, m), v)), s)| update_task(grads, &c, t, w, m, v, s));
    }
}

/// What every task of one layer's update shares.
struct Layer<'a> {
    l: usize,
    p: Parametrization,
    r: usize,
    wpn: usize,
    tau: f32,
    /// The noisy weights to unfold at (empty: unfold at the weights).
    noisy: &'a [f32],
    /// DWN tables stay in [−1, 1].
    clamp: bool,
    /// Neurons per run (the stack buffers' share).
    run: usize,
    unscale: f32,
    adam: AdamStep,
}

/// Task `t` of a layer's update: its weights `w` and moments `m`, `v`, run by run; `scratch`
/// holds the weight gradients where the stack cannot (empty otherwise).
fn update_task(
    grads: &CoefGrads,
    c: &Layer,
    t: usize,
    w: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    scratch: &mut [f32],
) {
    let (k, wpn) = (1 << c.r, c.wpn);
    let (mut da, mut dw) = ([0f32; DA], [0f32; DW]);
    let (first, count) = (t * TASK, w.len() / wpn);
    let mut i = 0;
    while i < count {
        let s = c.run.min(count - i);
        let ws = i * wpn..(i + s) * wpn;
        let da = &mut da[..s * k];
        grads.sum(c.l, (first + i) * k, c.unscale, da);
        let dw = if scratch.is_empty() {
            &mut dw[..s * wpn]
        } else {
            &mut scratch[ws.clone()]
        };
        let at =
            (!c.noisy.is_empty()).then(|| &c.noisy[first * wpn + ws.start..first * wpn + ws.end]);
        let (w, m, v) = (&mut w[ws.clone()], &mut m[ws.clone()], &mut v[ws]);
        let (p, r, tau) = (c.p, c.r, c.tau);
        unfold_adam(p, r, wpn, tau, at, w, da, dw, c.adam, m, v, c.clamp);
        i += s;
    }
}

/// Unfolds `da` into `dw` at `at` (or at `w`), then takes Adam's step on `w`; DWN tables
/// stay in [−1, 1].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn unfold_adam_any<S: Lanes>(
    p: Parametrization,
    r: usize,
    wpn: usize,
    tau: f32,
    at: Option<&[f32]>,
    w: &mut [f32],
    da: &[f32],
    dw: &mut [f32],
    h: AdamStep,
    m: &mut [f32],
    v: &mut [f32],
    clamp: bool,
) {
    // Difflogic: each neuron's step as soon as its gradients are out (see `unfold_run_each`).
    let fused = !clamp
        && p.unfold_run_each::<S>(
            at,
            w,
            tau,
            da,
            #[inline(always)]
            |i, w, g| {
                let (m, v) = (&mut m[16 * i..16 * (i + 1)], &mut v[16 * i..16 * (i + 1)]);
                adam_row::<S>(h, w, g, m, v)
            },
        );
    if fused {
        return;
    }
    dw.iter_mut().for_each(|g| *g = 0.0);
    p.unfold_run::<S>(r, at.unwrap_or(w), wpn, tau, da, dw);
    adam_chunk_any::<S>(h, w, dw, m, v);
    if clamp {
        w.iter_mut().for_each(|w| *w = w.clamp(-1.0, 1.0));
    }
}

dispatch! {
    /// One run of neurons of the fused update, compiled for the detected instruction set.
    pub fn unfold_adam / unfold_adam_at (p: Parametrization, r: usize, wpn: usize, tau: f32, at: Option<&[f32]>, w: &mut [f32], da: &[f32], dw: &mut [f32], h: AdamStep, m: &mut [f32], v: &mut [f32], clamp: bool) => unfold_adam_any;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::simd::SimdLevel;
    use crate::rng::Rng;
    use crate::train::optimizer::{adam_chunk_at, Optimizer, OptimizerKind};

    #[test]
    fn difflogic_update_at_every_simd_level_is_one_neuron_at_a_time_and_adam() {
        // Three pipelined blocks of 16 and a tail of 7; at the weights and at noisy ones;
        // Adam with an L2 term and AdamW with decay. In neurons 5 and 50 gate 0 takes nearly
        // all the probability and the coefficient gradients are tiny: the other gates'
        // gradients underflow to zeros of either sign, which the reference's zeroed buffer
        // makes +0. A first moment of −0 and AdamW's bare gradient carry the sign into m.
        let (n, tau, p) = (55, 0.7, Parametrization::Difflogic);
        let mut r = Rng::new(21);
        let mut w0: Vec<f32> = (0..n * 16).map(|_| 3.0 * r.normal()).collect();
        let mut m0: Vec<f32> = (0..n * 16).map(|_| 1e-3 * r.normal()).collect();
        for i in [5, 50] {
            w0[16 * i] = 100.0;
            m0[16 * i..16 * (i + 1)].fill(-0.0);
        }
        let noisy: Vec<f32> = w0.iter().map(|w| w + r.normal()).collect();
        let mut da: Vec<f32> = (0..n * 4).map(|_| 1e-2 * r.normal()).collect();
        for i in [5, 50] {
            da[4 * i..4 * (i + 1)].iter_mut().for_each(|d| *d *= 1e-7);
        }
        let v0: Vec<f32> = (0..n * 16).map(|_| 1e-6 * r.normal().abs()).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for kind in [OptimizerKind::Adam, OptimizerKind::AdamW] {
            let mut opt = Optimizer::new(kind, 0.01, 0.1, &[1]);
            (0..3).for_each(|_| opt.begin_step());
            let h = opt.adam_step();
            for at in [None, Some(&noisy[..])] {
                let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
                let mut dw = vec![0f32; n * 16];
                for (i, dw) in dw.chunks_mut(16).enumerate() {
                    let x = &at.unwrap_or(&w0)[i * 16..(i + 1) * 16];
                    p.unfold_grad(2, x, tau, &da[i * 4..(i + 1) * 4], dw);
                }
                adam_chunk_at(SimdLevel::Scalar, h, &mut w, &dw, &mut m, &mut v);
                for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
                    let (mut w1, mut m1, mut v1) = (w0.clone(), m0.clone(), v0.clone());
                    let mut dw = vec![1f32; n * 16];
                    let (w1s, m1s, v1s) = (&mut w1[..], &mut m1[..], &mut v1[..]);
                    unfold_adam_at(
                        level, p, 2, 16, tau, at, w1s, &da, &mut dw, h, m1s, v1s, false,
                    );
                    let what = format!("{kind:?} at {}", if at.is_some() { "noisy" } else { "w" });
                    assert_eq!(bits(&w1), bits(&w), "{level:?} {what}: w");
                    assert_eq!(bits(&m1), bits(&m), "{level:?} {what}: m");
                    assert_eq!(bits(&v1), bits(&v), "{level:?} {what}: v");
                }
            }
        }
    }
}
