//! `bitlogic bench train`: training throughput on synthetic binary inputs.
//!
//! Builds a random `in_dim → width × depth → GroupSum(10)` model (or listed widths, and
//! learnable connections if asked: `bench_model`), warms up, then times
//! individual optimisation steps and reports the median, and the median of each phase of a
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
    /// Timed steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 15)]
    pub steps: usize,
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

/// One configuration's timing: the median step, the median of each phase, and its trainer.
struct Timed {
    step: f64,
    phases: Phases,
    trainer: Trainer,
}

/// Each configuration trains its own copy of `model`: 3 warm-up steps each (autotuning, if
/// any, happens in the first, and the trainer then reports the threads, block and SIMD level
/// it chose), then `steps` timed steps each, one configuration after the other within every
/// step, so that all of them see the same minutes of a shared machine.
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
    let mut runs = Vec::with_capacity(configs.len());
    for config in configs {
        let mut model = model.clone();
        let mut trainer = Trainer::new(&model, config)?;
        for b in batches.iter().take(3) {
            trainer.step(&mut model, data, b)?;
        }
        runs.push((
            model,
            trainer,
            Vec::with_capacity(a.steps),
            Vec::with_capacity(a.steps),
        ));
    }
    let steps = a.steps.max(1);
    if let [(model, trainer, times, phases)] = &mut runs[..] {
        // One configuration: its steps run inside its pool, as `fit` runs an epoch's.
        trainer.with_pool(|trainer| -> Result<()> {
            for s in 0..steps {
                let t = Instant::now();
                trainer.step(model, data, batches[s % batches.len()])?;
                times.push(t.elapsed().as_secs_f64());
                phases.push(trainer.step_times());
            }
            Ok(())
        })?;
    } else {
        // Interleaved configurations alternate between their pools step by step.
        for s in 0..steps {
            for (model, trainer, times, phases) in runs.iter_mut() {
                let t = Instant::now();
                trainer.step(model, data, batches[s % batches.len()])?;
                times.push(t.elapsed().as_secs_f64());
                phases.push(trainer.step_times());
            }
        }
    }
    Ok(runs
        .into_iter()
        .map(
            |(_, trainer, times, phases): (_, _, Vec<f64>, Vec<StepTimes>)| {
                let ms = |f: fn(&StepTimes) -> std::time::Duration| {
                    median(phases.iter().map(|p| f(p).as_secs_f64() * 1e3).collect())
                };
                Timed {
                    step: median(times),
                    phases: Phases {
                        fold: ms(|p| p.fold),
                        blocks: ms(|p| p.blocks),
                        update: ms(|p| p.update),
                    },
                    trainer,
                }
            },
        )
        .collect())
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
            phases,
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
            "{model_desc}: {sps:.0} samples/s with mode {} (median step {:.2} ms, batch {}, {} threads, block {}, {}, {}{tuned}); {baseline}; peak RSS {:.1} MB; phases (median ms): fold {:.3}, blocks {:.3}, update {:.3}",
            mode.name(),
            step * 1e3,
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
