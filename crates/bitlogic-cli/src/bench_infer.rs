//! `bitlogic bench infer`: inference throughput of the bit-packed engine against the eval
//! forward (`Model::eval_counts`), measured in the same process on the same random bits.
//!
//! Both start from encoded sample-major bits, so packing is part of the packed time. Each
//! side gets one warm-up call, then the median of `--reps` timed calls. The eval forward is
//! far slower, so it runs on the first `--eval-samples` samples only (rates are per sample);
//! its counts are checked against the packed ones as a side effect.

use crate::bench_model::{median, RandomNet};
use anyhow::{bail, Result};
use bitlogic::io::model_file;
use bitlogic::packed::{self, Options, PackedLogicNet};
use bitlogic::rng::Rng;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct BenchInferArgs {
    /// Model file to benchmark (its encoder width sets the input bits).
    #[arg(long, conflicts_with = "random", required_unless_present = "random")]
    pub model: Option<PathBuf>,
    /// Benchmark a random model built from --in-dim/--width/--depth/--lut-rank instead.
    #[arg(long)]
    pub random: bool,
    #[command(flatten)]
    pub net: RandomNet,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Samples per packed forward call.
    #[arg(long, default_value_t = 65536)]
    pub batch: usize,
    /// Samples per eval-forward call (at most --batch).
    #[arg(long, default_value_t = 4096)]
    pub eval_samples: usize,
    /// Timed repetitions per engine (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub reps: usize,
    /// Run the netlist as is, without simplification.
    #[arg(long)]
    pub no_simplify: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Median seconds of `reps` calls of `f`, after one warm-up call.
fn time<T>(reps: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut last = f()?;
    let mut secs = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        last = f()?;
        secs.push(t.elapsed().as_secs_f64());
    }
    Ok((median(secs), last))
}

pub fn run(a: &BenchInferArgs) -> Result<()> {
    let model = match &a.model {
        Some(path) => model_file::load(path)?.model,
        None => a.net.build()?,
    };
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let threads = match a.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    };
    let opts = Options {
        simplify: !a.no_simplify,
        ..Options::default()
    };
    let net = PackedLogicNet::with_options(&model, &opts)?;
    let dim = net.input_dim();
    let n = a.batch;
    let ne = a.eval_samples.clamp(1, n);
    let mut rng = Rng::new(a.net.seed ^ 0xB17);
    let bits: Vec<u8> = (0..n * dim).map(|_| (rng.next_u64() & 1) as u8).collect();

    let r = packed::with_threads(threads, || -> Result<_> {
        let (tp, counts) = time(a.reps, || Ok(net.forward(&bits, n)?))?;
        let words = packed::pack_bits(&bits, n, dim)?;
        let (tw, _) = time(a.reps, || Ok(net.forward_packed(&words, n)?))?;
        let (te, eval) = time(a.reps.min(3), || {
            Ok(model.eval_counts(&bits[..ne * dim], ne)?)
        })?;
        Ok((tp, tw, te, counts[..eval.len()] == eval[..]))
    })??;
    let (tp, tw, te, agree) = r;
    if !agree {
        bail!("packed and eval forward disagree on this model (a bug: please report it)");
    }
    let packed_sps = n as f64 / tp;
    let core_sps = n as f64 / tw;
    let eval_sps = ne as f64 / te;
    let g = net.gate_counts();
    let desc = describe(a);
    if a.json {
        println!(
            "{}",
            json!({
                "packed_samples_per_second": packed_sps,
                "packed_prepacked_samples_per_second": core_sps,
                "eval_samples_per_second": eval_sps,
                "speedup": packed_sps / eval_sps,
                "threads": threads,
                "samples": n,
                "eval_samples": ne,
                "simd": net.simd_level().name(),
                "simplified": !a.no_simplify,
                "gates_before": g.before,
                "gates_after": g.after,
                "ops": g.ops,
                "model": desc,
            })
        );
    } else {
        println!(
            "{desc}: packed {packed_sps:.0} samples/s ({core_sps:.0} from pre-packed words), \
             eval forward {eval_sps:.0} samples/s, speedup {:.1}× \
             ({threads} threads, {}, {n} samples; gates {} → {}, {} ops)",
            packed_sps / eval_sps,
            net.simd_level().name(),
            g.before,
            g.after,
            g.ops
        );
    }
    Ok(())
}

fn describe(a: &BenchInferArgs) -> String {
    match &a.model {
        Some(p) => p.display().to_string(),
        None => a.net.describe(),
    }
}
