//! The trainer: seeded minibatches, fused per-layer kernels, threads over sample blocks.
//!
//! A step splits the batch into blocks of `bs` samples (a multiple of 16). Each thread takes
//! a fixed, contiguous range of blocks and runs forward → loss → backward through the whole
//! network for each block, so activations of a block stay in cache across layers and no two
//! threads ever write the same input gradient. Coefficient gradients (and the head's) are
//! summed per thread in block order and then across threads in thread order: the same seed and
//! thread count give the same model, bit for bit. Every buffer is planned once for the batch size.
//! `compile.amp_dtype` picks the storage type of activations and their gradients (f32, bf16,
//! f16; see `layer::act`); parameters, their gradients and the optimizer are f32 throughout.

use super::blocks::{Grads, Step};
use super::compile::{CompileMode, CompileOptions};
use super::connections::ConnBuffers;
use super::optimizer::{Optimizer, OptimizerKind};
use super::params::{self, Update};
use super::plan::{plan_blocks, Plan};
use super::warm;
use crate::layer::kernel;
use crate::layer::simd::{detected_level, simd_level, SimdLevel};
use crate::{rng::Rng, Error, Model, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub optimizer: OptimizerKind,
    pub weight_decay: f32,
    /// Seed of the minibatch order.
    pub seed: u64,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Target samples per block (rounded to a multiple of 16; 0 = automatic).
    pub block: usize,
    pub lr_schedule: LrSchedule,
    pub compile: CompileOptions,
}

/// Learning rate over the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    Constant,
    /// Half a cosine from `lr` down to 0 over all steps of all epochs.
    Cosine,
    /// `lr · gamma^⌊(epoch − 1) / every⌋` (PyTorch's StepLR, stepped once per epoch).
    Step {
        every: usize,
        gamma: f32,
    },
}

impl LrSchedule {
    pub fn parse(name: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "unknown lr schedule '{name}' (valid: constant, cosine, step:EVERY:GAMMA \
                 e.g. step:14:0.1)"
            ))
        };
        match name {
            "constant" => Ok(LrSchedule::Constant),
            "cosine" => Ok(LrSchedule::Cosine),
            _ => {
                let rest = name.strip_prefix("step:").ok_or_else(bad)?;
                let (every, gamma) = rest.split_once(':').ok_or_else(bad)?;
                let every: usize = every.parse().map_err(|_| bad())?;
                let gamma: f32 = gamma.parse().map_err(|_| bad())?;
                if every == 0 || !(gamma.is_finite() && gamma > 0.0) {
                    return Err(Error::invalid(format!(
                        "lr schedule '{name}': the step needs EVERY >= 1 epoch and GAMMA > 0"
                    )));
                }
                Ok(LrSchedule::Step { every, gamma })
            }
        }
    }

    /// The learning rate in `epoch` (1-based) at `progress` ∈ [0, 1] of the run.
    pub fn at(self, lr: f32, epoch: usize, progress: f64) -> f32 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Step { every, gamma } => {
                lr * gamma.powi((epoch.saturating_sub(1) / every.max(1)) as i32)
            }
            LrSchedule::Cosine => {
                (lr as f64 * 0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos()))
                    as f32
            }
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch: 128,
            lr: 0.01,
            optimizer: OptimizerKind::Adam,
            weight_decay: 0.0,
            seed: 0,
            threads: 0,
            block: 0,
            lr_schedule: LrSchedule::Constant,
            compile: CompileOptions::default(),
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::invalid("batch size must be at least 1 (got 0)"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(format!(
                "learning rate must be a positive number (got {})",
                self.lr
            )));
        }
        self.compile.validate()?;
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::invalid(format!(
                "weight decay must be >= 0 (got {})",
                self.weight_decay
            )));
        }
        Ok(())
    }
}

/// Encoded samples: `bits` is `[n][dim]` (0/1), `labels[n]`.
#[derive(Clone, Copy, Debug)]
pub struct EncodedSet<'a> {
    pub n: usize,
    pub dim: usize,
    pub bits: &'a [u8],
    pub labels: &'a [u32],
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    /// Mean training loss over the epoch (relaxed forward).
    pub train_loss: f64,
    /// Running accuracy of the relaxed forward on the training batches.
    pub train_accuracy: f64,
    /// Eval-mode (hard LUT) accuracy on the test set, when one was given.
    pub test_accuracy: Option<f64>,
    /// Training seconds of this epoch (without the test evaluation).
    pub seconds: f64,
    pub samples_per_second: f64,
}

/// One configuration that max-autotune timed on the first batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutotuneProbe {
    /// Samples per block, as planned (a multiple of 16).
    pub block: usize,
    pub simd: SimdLevel,
    pub threads: usize,
    /// Median of 3 step times, after one warm-up step.
    pub seconds: f64,
}

pub enum Progress<'a> {
    /// max-autotune has timed its probes (during the first step) and kept `choice`.
    Autotuned {
        probes: &'a [AutotuneProbe],
        choice: &'a AutotuneProbe,
    },
    Batch {
        epoch: usize,
        done: usize,
        total: usize,
        loss: f64,
        accuracy: f64,
    },
    Epoch(&'a EpochReport),
}

pub struct Trainer {
    pub config: TrainConfig,
    threads: usize,
    /// Instruction set of the block kernels (forward, backward, head, candidate gradients).
    simd: SimdLevel,
    plan: Plan,
    opt: Optimizer,
    pool: std::sync::Arc<rayon::ThreadPool>,
    /// max-autotune: every configuration timed, in the order tried, once measured.
    pub autotune: Option<Vec<AutotuneProbe>>,
    /// Steps taken (seeds the Gumbel noise).
    steps: u64,
    /// Where the last step's time went.
    times: StepTimes,
    /// Set to send `with_pool`'s waiting threads back to sleep (see `warm`).
    warm: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Samples from which [`Trainer::evaluate`] packs the model first (see there).
pub const PACKED_EVAL_MIN: usize = 4096;

/// Times max-autotune takes each probe's step (their median is the probe's time).
const AUTOTUNE_ROUNDS: usize = 3;

/// Wall time of the phases of one training step (see [`Trainer::step_times`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StepTimes {
    /// Folding the weights into coefficients (and drawing Gumbel noise).
    pub fold: std::time::Duration,
    /// The blocks: forward, loss and backward on every thread, until the last thread ends
    /// its blocks. The update of the top layers may run inside it, on a thread that has
    /// finished its own.
    pub blocks: std::time::Duration,
    /// The rest of the step: what is left of the layers' update (the fused unfold and Adam
    /// step), the thread-order sums, the head and the connections.
    pub update: std::time::Duration,
}

impl Trainer {
    pub fn new(model: &Model, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.threads
        };
        let pool = start_pool(threads)?;
        // Optimizer slots: layer weights first, then connection logits (empty when fixed),
        // then the head's parameters (empty for GroupSum).
        let mut sizes: Vec<usize> = model.layers.iter().map(|l| l.weights.len()).collect();
        sizes.extend(model.layers.iter().map(|l| l.conn_logits.len()));
        sizes.push(model.head.params().len());
        Ok(Trainer {
            threads,
            simd: simd_level(),
            plan: Plan::new(
                model,
                config.batch,
                threads,
                config.block,
                config.compile.amp_dtype,
            ),
            opt: Optimizer::new(config.optimizer, config.lr, config.weight_decay, &sizes),
            pool,
            autotune: None,
            times: StepTimes::default(),
            steps: 0,
            warm: Default::default(),
            config,
        })
    }

    /// Runs `f` on one of this trainer's threads, so that the steps inside it hand no work
    /// across threads from outside the pool (each such hand-over costs a queue slot), while
    /// the other threads wait for work awake (see `warm`). [`fit`](Self::fit) runs each
    /// epoch's steps this way; a training loop of your own gains the same by running inside.
    pub fn with_pool<R: Send>(&mut self, f: impl FnOnce(&mut Self) -> R + Send) -> R {
        let (pool, stop, threads) = (self.pool.clone(), self.warm.clone(), self.threads);
        warm::run(&pool, threads, &stop, || f(self))
    }

    /// Learning rate of the following steps.
    /// Where the last [`step`](Self::step)'s wall time went, phase by phase (zero before the
    /// first step). The phases run one after another, so they add up to the step, less the
    /// checks and the hand-over to the thread pool.
    pub fn step_times(&self) -> StepTimes {
        self.times
    }

    pub fn set_lr(&mut self, lr: f32) {
        self.opt.lr = lr;
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Samples per block (a multiple of 16).
    pub fn block_size(&self) -> usize {
        self.plan.bs
    }

    /// Instruction set of the block kernels: `simd_level()` unless set, or chosen by
    /// max-autotune.
    pub fn simd(&self) -> SimdLevel {
        self.simd
    }

    /// Runs the block kernels of the following steps at `level`, capped at what the CPU has
    /// (so that `simd()` names what runs). The per-step parameter work (folding the weights,
    /// their gradients, the optimizer) stays at the global `simd_level()`: it is a small part
    /// of a step, and the same code serves model evaluation outside any trainer.
    pub fn set_simd(&mut self, level: SimdLevel) {
        self.simd = level.min(detected_level());
    }

    /// max-autotune's choice: the fastest probe (the first of equals), once measured.
    pub fn autotune_choice(&self) -> Option<&AutotuneProbe> {
        self.autotune
            .as_deref()?
            .iter()
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
    }

    /// Times block size × SIMD level × thread count on `idx`, each on a probe trainer with its
    /// own copy of the model (the model itself is untouched) and its own threads, then plans
    /// with the fastest. SIMD levels: this trainer's and, where that is AVX-512, AVX2 too (its
    /// narrower vectors can win where AVX-512 lowers the clock); threads: these and half of
    /// them (fewer, larger shares can beat more threads on small models or busy cores).
    fn run_autotune(&mut self, model: &Model, data: EncodedSet, idx: &[usize]) -> Result<()> {
        // The probes time pools of their own: this pool's threads, if `with_pool` keeps them
        // awake, would take cores from them (and the pool may be replaced below).
        self.warm.store(true, std::sync::atomic::Ordering::Release);
        let batch = self.plan.batch;
        let mut levels = vec![self.simd];
        if self.simd == SimdLevel::Avx512 {
            levels.push(SimdLevel::Avx2);
        }
        let mut thread_counts = vec![self.threads];
        if self.threads >= 2 {
            thread_counts.push(self.threads / 2);
        }
        let covered = idx.len().div_ceil(kernel::LANES) * kernel::LANES;
        // (block, SIMD level, threads) of every probe.
        let mut targets: Vec<(usize, SimdLevel, usize)> = Vec::new();
        for block in [16, 32, 64, 128] {
            if block > covered && !targets.is_empty() {
                break;
            }
            for &threads in &thread_counts {
                // Targets that plan the same blocks run the same step: time it once.
                let bs = plan_blocks(batch, threads, block).0;
                for &simd in &levels {
                    if !targets.contains(&(bs, simd, threads)) {
                        targets.push((bs, simd, threads));
                    }
                }
            }
        }
        // Each probe is timed once per round, and the rounds go through the probes forwards,
        // backwards, forwards: a shared machine drifts by tens of percent within seconds, and
        // timing each probe's steps back to back compared the probes at different moments.
        let mut times = vec![Vec::with_capacity(AUTOTUNE_ROUNDS); targets.len()];
        for round in 0..AUTOTUNE_ROUNDS {
            let order: Vec<usize> = if round % 2 == 0 {
                (0..targets.len()).collect()
            } else {
                (0..targets.len()).rev().collect()
            };
            for i in order {
                let (bs, simd, threads) = targets[i];
                times[i].push(self.time_probe(model, data, idx, bs, simd, threads)?);
            }
        }
        let probes = targets
            .into_iter()
            .zip(times)
            .map(|((block, simd, threads), mut t)| {
                t.sort_by(|a, b| a.total_cmp(b));
                AutotuneProbe {
                    block,
                    simd,
                    threads,
                    seconds: t[t.len() / 2],
                }
            })
            .collect();
        self.autotune = Some(probes);
        let best = *self
            .autotune_choice()
            .ok_or_else(|| Error::invalid("max-autotune timed no configuration"))?;
        if best.threads != self.threads {
            // Inside `with_pool` the rest of this epoch's steps hand over from the old pool to
            // this one (one queue slot a step); the next epoch starts on this one.
            self.pool = start_pool(best.threads)?;
            self.threads = best.threads;
            self.config.threads = best.threads;
        }
        self.simd = best.simd;
        // A planned block size plans itself (see `plan_blocks`), so this is the plan timed.
        self.config.block = best.block;
        let amp = self.config.compile.amp_dtype;
        self.plan = Plan::new(model, batch, self.threads, best.block, amp);
        Ok(())
    }

    /// One step (after a warm-up step) of a reduce-overhead trainer with these settings, on a
    /// copy of `model`, run on the probe's own threads as `fit` runs its steps.
    fn time_probe(
        &self,
        model: &Model,
        data: EncodedSet,
        idx: &[usize],
        block: usize,
        simd: SimdLevel,
        threads: usize,
    ) -> Result<f64> {
        let config = TrainConfig {
            batch: self.plan.batch,
            threads,
            block,
            compile: CompileOptions {
                mode: CompileMode::ReduceOverhead,
                ..self.config.compile
            },
            ..self.config.clone()
        };
        let mut probe = Trainer::new(model, config)?;
        probe.set_simd(simd);
        let mut copy = model.clone();
        probe.with_pool(|p| {
            p.step(&mut copy, data, idx)?;
            let t = Instant::now();
            p.step(&mut copy, data, idx)?;
            Ok(t.elapsed().as_secs_f64())
        })
    }

    /// One optimisation step on the samples `idx` of `data` (at most `batch` of them, unless
    /// the compile options are `dynamic`). Returns the summed loss and the number of correct
    /// relaxed predictions.
    pub fn step(
        &mut self,
        model: &mut Model,
        data: EncodedSet,
        idx: &[usize],
    ) -> Result<(f64, usize)> {
        let mode = self.config.compile.mode;
        if idx.is_empty()
            || (idx.len() > self.plan.batch && !self.config.compile.dynamic && mode.planned())
        {
            return Err(Error::invalid(format!(
                "a step takes 1..={} samples (got {}); compile with dynamic = true to vary the batch size",
                self.plan.batch,
                idx.len()
            )));
        }
        if data.dim != model.encoder.output_dim() {
            return Err(Error::invalid(format!(
                "data has {} input bits per sample, the model expects {}",
                data.dim,
                model.encoder.output_dim()
            )));
        }
        if !mode.planned() || idx.len() > self.plan.batch {
            // Eager: fresh buffers for every step, as an uncompiled framework would make.
            let batch = if mode.planned() {
                idx.len()
            } else {
                idx.len().max(1)
            };
            let amp = self.config.compile.amp_dtype;
            self.plan = Plan::new(model, batch, self.threads, self.config.block, amp);
        }
        if mode.autotune() && self.autotune.is_none() {
            self.run_autotune(model, data, idx)?;
        }
        let (threads, simd) = (self.threads, self.simd);
        let Plan {
            bs,
            blocks,
            workers,
            dcoef,
            weights,
            coef_soft,
            coef_hard,
            dw,
            dconn,
            gsum,
            dlogits,
            dhead,
            noise,
            w_noisy,
            ..
        } = &mut self.plan;
        self.steps += 1;
        let (seed, step_no) = (self.config.seed, self.steps);
        let (opt, pool) = (&mut self.opt, &*self.pool);
        let bs = *bs;
        let blocks = (*blocks).min(idx.len().div_ceil(bs));
        let mut totals = (0.0, 0);
        let times = &mut self.times;
        pool.install(|| {
            let start = Instant::now();
            // Folding, the weight update and the optimizer below run at the global SIMD level;
            // only the block kernels (`workers.run`) take the trainer's (see `set_simd`).
            params::fold_all(
                &model.layers,
                coef_soft,
                coef_hard,
                noise,
                w_noisy,
                seed,
                step_no,
            );
            let folded = Instant::now();
            opt.begin_step();
            let n_layers = model.layers.len();
            let adam = opt.adam_step();
            // The weights wait in the plan while the blocks read the model and the update
            // writes them; they return however the step ends.
            for (w, layer) in weights.iter_mut().zip(&mut model.layers) {
                std::mem::swap(w, &mut layer.weights);
            }
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let (m, v) = opt.moments_mut(n_layers);
                let update = Update {
                    layers: &model.layers,
                    weights: &mut weights[..],
                    m,
                    v,
                    w_noisy: &w_noisy[..],
                    scratch: &mut dw[..],
                    adam,
                    unscale: 1.0 / workers.loss_scale(idx.len()),
                };
                let step = Step {
                    model: &*model,
                    coef_soft: &coef_soft[..],
                    coef_hard: &coef_hard[..],
                    data,
                    idx,
                    bs,
                    blocks,
                    threads,
                    simd,
                };
                let grads = Grads {
                    dhead: &mut dhead[..],
                };
                workers.run(&step, dcoef, Some(update), grads)
            }));
            for (w, layer) in weights.iter_mut().zip(&mut model.layers) {
                std::mem::swap(w, &mut layer.weights);
            }
            let (loss, correct, ran) = ran.unwrap_or_else(|p| std::panic::resume_unwind(p));
            totals = (loss, correct);
            if !dhead.is_empty() {
                opt.update(2 * n_layers, model.head.params_mut(), dhead);
            }
            for (l, layer) in model.layers.iter_mut().enumerate() {
                if layer.config.learnable() {
                    let (m, v) = opt.slot_moments_mut(n_layers + l);
                    let b = ConnBuffers {
                        dq: &mut dconn[l],
                        gsum: &mut gsum[l],
                        dlogits: &mut dlogits[l],
                        m,
                        v,
                    };
                    workers.update_connections(l, idx.len(), layer, b, adam);
                }
            }
            *times = StepTimes {
                fold: folded - start,
                blocks: ran - folded,
                update: ran.elapsed(),
            };
        });
        Ok(totals)
    }

    /// Eval-mode accuracy (hard LUTs, integer head) on `data`, on this trainer's threads.
    ///
    /// From [`PACKED_EVAL_MIN`] samples on, the scores come from the bit-packed engine, which
    /// gives the eval forward's scores exactly (`packed` tests that for every
    /// parametrization, head and batch edge) and is about 60 times faster; its compile
    /// costs about as much as the eval forward of a few thousand samples. A model the engine
    /// cannot pack is scored by the eval forward.
    pub fn evaluate(&self, model: &Model, data: EncodedSet) -> Result<f64> {
        let scores = self.pool.install(|| {
            if data.n >= PACKED_EVAL_MIN {
                if let Ok(net) = crate::packed::PackedLogicNet::new(model) {
                    return net.scores(data.bits, data.n);
                }
            }
            model.eval_scores(data.bits, data.n)
        })?;
        let k = model.head.k();
        let correct = scores
            .chunks(k)
            .zip(data.labels)
            .filter(|(c, &y)| crate::head::argmax(c) == y as usize)
            .count();
        Ok(correct as f64 / data.n.max(1) as f64)
    }

    /// Trains for `config.epochs` epochs, evaluating on `test` after each.
    pub fn fit(
        &mut self,
        model: &mut Model,
        train: EncodedSet,
        test: Option<EncodedSet>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Vec<EpochReport>> {
        (1..=self.config.epochs)
            .map(|epoch| self.fit_epoch(model, train, test, epoch, progress))
            .collect()
    }

    /// One epoch (1-based) over `train` in a seeded order, then the test evaluation. The
    /// learning-rate schedule reads its position from `epoch`, so callers that build a new
    /// training set per epoch (augmentation) can drive the epochs themselves.
    pub fn fit_epoch(
        &mut self,
        model: &mut Model,
        train: EncodedSet,
        test: Option<EncodedSet>,
        epoch: usize,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<EpochReport> {
        if train.n == 0 {
            return Err(Error::invalid("the training set is empty"));
        }
        let mut order: Vec<usize> = (0..train.n).collect();
        Rng::fork(self.config.seed, 1000 + epoch as u64).shuffle(&mut order);
        let start = Instant::now();
        let (loss, correct, seen) =
            self.with_pool(|t| t.epoch_steps(model, train, &order, epoch, progress))?;
        let seconds = start.elapsed().as_secs_f64();
        let test_accuracy = match test {
            Some(t) => Some(self.evaluate(model, t)?),
            None => None,
        };
        let report = EpochReport {
            epoch,
            train_loss: loss / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            test_accuracy,
            seconds,
            samples_per_second: seen as f64 / seconds.max(1e-9),
        };
        progress(Progress::Epoch(&report));
        Ok(report)
    }

    fn epoch_steps(
        &mut self,
        model: &mut Model,
        train: EncodedSet,
        order: &[usize],
        epoch: usize,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(f64, usize, usize)> {
        let batch = self.config.batch;
        let steps_per_epoch = train.n.div_ceil(batch);
        let total_steps = (steps_per_epoch * self.config.epochs.max(epoch)).max(1);
        let (mut loss, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (step, chunk) in (steps_per_epoch * (epoch - 1)..).zip(order.chunks(batch)) {
            let lr =
                self.config
                    .lr_schedule
                    .at(self.config.lr, epoch, step as f64 / total_steps as f64);
            self.set_lr(lr);
            let tuned = self.autotune.is_some();
            let (l, c) = self.step(model, train, chunk)?;
            if let (false, Some(probes), Some(choice)) =
                (tuned, self.autotune.as_deref(), self.autotune_choice())
            {
                progress(Progress::Autotuned { probes, choice });
            }
            if !l.is_finite() {
                return Err(Error::invalid(format!(
                    "training diverged at epoch {epoch} (loss {l}); lower the learning rate"
                )));
            }
            loss += l;
            correct += c;
            seen += chunk.len();
            progress(Progress::Batch {
                epoch,
                done: seen,
                total: train.n,
                loss: loss / seen as f64,
                accuracy: correct as f64 / seen as f64,
            });
        }
        Ok((loss, correct, seen))
    }
}

/// A pool of `threads` workers, all started.
fn start_pool(threads: usize) -> Result<std::sync::Arc<rayon::ThreadPool>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::invalid(format!("cannot start {threads} threads: {e}")))?;
    // Wait until every worker is up, so thread start-up never lands inside a step.
    pool.broadcast(|_| ());
    Ok(std::sync::Arc::new(pool))
}
