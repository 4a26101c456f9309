//! `bitlogic bench train`: training throughput on synthetic binary inputs.
//!
//! Builds a random `in_dim → width × depth → GroupSum(10)` model (or listed widths, and
//! learnable connections if asked: `bench_model`), warms up (at least 3 steps and 0.5 s),
//! then times individual optimisation steps for at least `--steps` steps and `--seconds`
//! seconds, and reports the median with its quartiles, and the median of each phase of a
//! step (folding the weights, the blocks, the update: `Trainer::step_times`). Peak memory is
//! the process's high-water mark (VmHWM), so run one configuration per process. `--amp`
//! stores activations and their gradients as bf16 or f16 (the eager baseline uses the same
//! storage type).

use crate::bench_model::{median, RandomNet};
use anyhow::Result;
use bitlogic::rng::Rng;
use bitlogic::train::trainer::EncodedSet;
use bitlogic::train::{AmpDtype, CompileMode, CompileOptions, StepTimes, TrainConfig, Trainer};
use bitlogic::Model;
use clap::Args;
use serde_json::json;
use std::time::Instant;

#[derive(Args)]
pub struct BenchTrainArgs {
    #[command(flatten)]
    pub net: RandomNet,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Samples per kernel block (0 = automatic).
    #[arg(long, default_value_t = 0)]
    pub block: usize,
    /// Timed steps, at least (see --seconds).
    #[arg(long, default_value_t = 15)]
    pub steps: usize,
    /// Keep timing steps until they add up to this many seconds (per configuration), so that
    /// the median covers more than a passing minute of a shared machine.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Warm-up before the timed steps: at least 3 steps and this many seconds (per
    /// configuration). A fresh process's first tens of milliseconds of steps can run several
    /// times slower than the rest.
    #[arg(long, default_value_t = 0.5)]
    pub warmup_seconds: f64,
    /// Compile mode: default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs, true, false.
    #[arg(long, default_value = "reduce-overhead")]
    pub mode: String,
    /// Storage type of activations and their gradients: none (f32), bf16, f16. Arithmetic,
    /// weights, gradient sums and the optimizer stay f32 (f16 also scales the loss gradient).
    #[arg(long, default_value = "none")]
    pub amp: String,
    /// Skip the mode=false baseline run (for profiling the compiled path alone; the
    /// baseline's fields are then null).
    #[arg(long)]
    pub no_baseline: bool,
    /// Run the mode=false baseline step by step alongside the compiled path instead of before
    /// it, so that the speedup is measured over the same minutes (on a shared machine the
    /// speed drifts by tens of percent). Peak RSS then covers both.
    #[arg(long)]
    pub interleave: bool,
    #[arg(long)]
    pub json: bool,
}

/// Peak resident set size of this process, from /proc (0 where unavailable).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Median time of each phase of the timed steps (each phase's own median), in ms.
#[derive(Clone, Copy)]
struct Phases {
    fold: f64,
    blocks: f64,
    update: f64,
}

/// One configuration's timing: the median step and its quartiles, the median of each phase,
/// how many steps were run, and its trainer.
struct Timed {
    step: f64,
    quartiles: (f64, f64),
    phases: Phases,
    counts: Counts,
    trainer: Trainer,
}

/// Warm-up steps, timed steps and the sum of the timed steps' seconds.
#[derive(Clone, Copy, Default)]
struct Counts {
    warmup: usize,
    timed: usize,
    timed_seconds: f64,
}

/// Runs `step` (given the step's index) at least `min` times and until `seconds` have
/// passed; returns how many steps ran.
fn run_for(min: usize, seconds: f64, mut step: impl FnMut(usize) -> Result<()>) -> Result<usize> {
    // A bound for a tiny model with a huge budget, so that a typo cannot run for hours.
    const MAX_STEPS: usize = 1_000_000;
    let start = Instant::now();
    let mut s = 0;
    while s < MAX_STEPS && (s < min || start.elapsed().as_secs_f64() < seconds) {
        step(s)?;
        s += 1;
    }
    Ok(s)
}

/// Each configuration trains its own copy of `model`: warm-up steps each (at least 3 and
/// `--warmup-seconds`; autotuning, if any, happens in the first, and the trainer then reports
/// the threads, block and SIMD level it chose), then timed steps (at least `--steps` and
/// `--seconds` per configuration), one configuration after the other within every step, so
/// that all of them see the same minutes of a shared machine.
fn time_steps(model: &Model, configs: Vec<TrainConfig>, a: &BenchTrainArgs) -> Result<Vec<Timed>> {
    let n = a.batch * 4;
    let mut rng = Rng::new(7);
    let bits: Vec<u8> = (0..n * a.net.in_dim)
        .map(|_| (rng.next_u64() & 1) as u8)
        .collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.below(10) as u32).collect();
    let data = EncodedSet {
        n,
        dim: a.net.in_dim,
        bits: &bits,
        labels: &labels,
    };
    let idx: Vec<usize> = (0..n).collect();
    let batches: Vec<&[usize]> = idx.chunks(a.batch).collect();
    let batch = |s: usize| batches[s % batches.len()];
    let (steps, n_configs) = (a.steps.max(1), configs.len());
    let mut runs = Vec::with_capacity(n_configs);
    for config in configs {
        let model = model.clone();
        let trainer = Trainer::new(&model, config)?;
        runs.push(Run {
            model,
            trainer,
            times: Vec::with_capacity(steps),
            phases: Vec::with_capacity(steps),
            counts: Counts::default(),
        });
    }
    if let [r] = &mut runs[..] {
        // One configuration: its steps, warm-up included, run inside its pool, as `fit`
        // runs an epoch's.
        let Run { model, trainer, .. } = r;
        let (times, phases, counts) = (&mut r.times, &mut r.phases, &mut r.counts);
        trainer.with_pool(|trainer| -> Result<()> {
            counts.warmup = run_for(3, a.warmup_seconds, |s| {
                trainer.step(model, data, batch(s))?;
                Ok(())
            })?;
            counts.timed = run_for(steps, a.seconds, |s| {
                let t = Instant::now();
                trainer.step(model, data, batch(s))?;
                times.push(t.elapsed().as_secs_f64());
                phases.push(trainer.step_times());
                Ok(())
            })?;
            Ok(())
        })?;
    } else {
        for r in runs.iter_mut() {
            let Run { model, trainer, .. } = r;
            r.counts.warmup = run_for(3, a.warmup_seconds, |s| {
                trainer.step(model, data, batch(s))?;
                Ok(())
            })?;
        }
        // Interleaved configurations alternate between their pools step by step; the budget
        // is per configuration, so the rounds run for n times `--seconds`.
        let rounds = run_for(steps, a.seconds * n_configs as f64, |s| {
            for r in runs.iter_mut() {
                let t = Instant::now();
                r.trainer.step(&mut r.model, data, batch(s))?;
                r.times.push(t.elapsed().as_secs_f64());
                r.phases.push(r.trainer.step_times());
            }
            Ok(())
        })?;
        runs.iter_mut().for_each(|r| r.counts.timed = rounds);
    }
    Ok(runs.into_iter().map(Run::timed).collect())
}

/// One configuration's model, trainer and what its steps measured so far.
struct Run {
    model: Model,
    trainer: Trainer,
    times: Vec<f64>,
    phases: Vec<StepTimes>,
    counts: Counts,
}

impl Run {
    fn timed(self) -> Timed {
        let ms = |f: fn(&StepTimes) -> std::time::Duration| {
            median(
                self.phases
                    .iter()
                    .map(|p| f(p).as_secs_f64() * 1e3)
                    .collect(),
            )
        };
        let mut sorted = self.times.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let n = sorted.len();
        Timed {
            // `median`'s choice for an even count, the upper middle.
            step: sorted[n / 2],
            quartiles: (sorted[n / 4], sorted[(3 * n) / 4]),
            phases: Phases {
                fold: ms(|p| p.fold),
                blocks: ms(|p| p.blocks),
                update: ms(|p| p.update),
            },
            counts: Counts {
                timed_seconds: self.times.iter().sum(),
                ..self.counts
            },
            trainer: self.trainer,
        }
    }
}

/// The one timing of a one-configuration run.
fn pop(mut v: Vec<Timed>) -> Timed {
    v.pop().expect("one timing per configuration")
}

pub fn run(a: &BenchTrainArgs) -> Result<()> {
    if a.interleave && a.no_baseline {
        anyhow::bail!(
            "--interleave runs the mode=false baseline alongside the compiled path; it cannot go with --no-baseline"
        );
    }
    for (flag, v) in [
        ("--seconds", a.seconds),
        ("--warmup-seconds", a.warmup_seconds),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            anyhow::bail!("{flag} must be a finite number of seconds, 0 or more (got {v})");
        }
    }
    let mode = CompileMode::parse(&a.mode)?;
    let amp = AmpDtype::parse(&a.amp)?;
    let compile = CompileOptions {
        mode,
        amp_dtype: amp,
        ..CompileOptions::default()
    };
    compile.validate()?;
    let model = a.net.build()?;
    let base = TrainConfig {
        batch: a.batch,
        threads: a.threads,
        block: a.block,
        ..TrainConfig::default()
    };
    // The uncompiled baseline (mode=false, same storage type) runs in the same process, just
    // before, or with --interleave step by step alongside.
    let eager = TrainConfig {
        compile: CompileOptions {
            mode: CompileMode::Eager,
            ..compile
        },
        ..base.clone()
    };
    let compiled = TrainConfig { compile, ..base };
    let (
        eager_step,
        Timed {
            step,
            quartiles,
            phases,
            counts,
            trainer,
        },
    ) = match (a.no_baseline, a.interleave) {
        (true, _) => (None, pop(time_steps(&model, vec![compiled], a)?)),
        (false, false) => {
            let e = pop(time_steps(&model, vec![eager], a)?);
            (Some(e.step), pop(time_steps(&model, vec![compiled], a)?))
        }
        (false, true) => {
            let mut both = time_steps(&model, vec![eager, compiled], a)?;
            let c = pop(both.split_off(1));
            (Some(pop(both).step), c)
        }
    };
    let sps = a.batch as f64 / step;
    let eager_sps = eager_step.map(|s| a.batch as f64 / s);
    let speedup = eager_sps.map(|e| sps / e);
    let rss = peak_rss_bytes();
    let model_desc = a.net.describe();
    if a.json {
        println!(
            "{}",
            json!({
                "samples_per_second": sps,
                "median_step_seconds": step,
                "step_quartiles_seconds": [quartiles.0, quartiles.1],
                "warmup_steps": counts.warmup,
                "timed_steps": counts.timed,
                "timed_seconds": counts.timed_seconds,
                "eager_samples_per_second": eager_sps,
                "speedup_over_eager": speedup,
                "baseline_interleaved": eager_sps.map(|_| a.interleave),
                "peak_rss_bytes": rss,
                "simd": trainer.simd().name(),
                "mode": mode.name(),
                "precision": amp.precision(),
                "threads": trainer.threads(),
                "batch": a.batch,
                "block": trainer.block_size(),
                "autotune": trainer.autotune,
                "autotune_choice": trainer.autotune_choice(),
                "model": model_desc,
                "phases_ms": {
                    "fold": phases.fold,
                    "blocks": phases.blocks,
                    "update": phases.update,
                },
            })
        );
    } else {
        let baseline = match (eager_sps, speedup) {
            (Some(e), Some(x)) if a.interleave => {
                format!("mode=false, step by step alongside: {e:.0} samples/s ({x:.2}×)")
            }
            (Some(e), Some(x)) => format!("mode=false: {e:.0} samples/s ({x:.2}×)"),
            _ => "mode=false: not run".to_string(),
        };
        let tuned = match &trainer.autotune {
            Some(p) => format!(", chosen from {} probes", p.len()),
            None => String::new(),
        };
        println!(
            "{model_desc}: {sps:.0} samples/s with mode {} (median step {:.2} ms, quartiles {:.2}–{:.2} ms over {} timed steps after {} warm-up steps, batch {}, {} threads, block {}, {}, {}{tuned}); {baseline}; peak RSS {:.1} MB; phases (median ms): fold {:.3}, blocks {:.3}, update {:.3}",
            mode.name(),
            step * 1e3,
            quartiles.0 * 1e3,
            quartiles.1 * 1e3,
            counts.timed,
            counts.warmup,
            a.batch,
            trainer.threads(),
            trainer.block_size(),
            trainer.simd().name(),
            amp.precision(),
            rss as f64 / 1e6,
            phases.fold,
            phases.blocks,
            phases.update
        );
    }
    Ok(())
}
