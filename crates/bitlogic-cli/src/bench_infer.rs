//! `bitlogic bench infer`: inference throughput of the bit-packed engine against the eval
//! forward (`Model::eval_counts`), measured in the same process on the same random bits.
//!
//! Both start from encoded sample-major bits, so packing is part of the packed time. Each
//! side gets one warm-up call, then the median of `--reps` timed calls. The eval forward is
//! far slower, so it runs on the first `--eval-samples` samples only (rates are per sample);
//! its counts are checked against the packed ones as a side effect.

use anyhow::{bail, Result};
use bitlogic::encoder::{Encoder, EncoderKind};
use bitlogic::io::model_file;
use bitlogic::layer::{Parametrization, WeightInit};
use bitlogic::packed::{self, Options, PackedLogicNet};
use bitlogic::rng::Rng;
use bitlogic::{Model, ModelConfig};
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
    /// Input bits of the random model.
    #[arg(long, default_value_t = 784)]
    pub in_dim: usize,
    /// Neurons per LogicDense layer of the random model.
    #[arg(long, default_value_t = 8000)]
    pub width: usize,
    /// LogicDense layers of the random model.
    #[arg(long, default_value_t = 6)]
    pub depth: usize,
    /// Inputs per LUT of the random model (1–6; difflogic: 2).
    #[arg(long, default_value_t = 2)]
    pub lut_rank: usize,
    /// Parametrization of the random model: light, difflogic or warp.
    #[arg(long, default_value = "light")]
    pub parametrization: String,
    /// Classes of the random model's GroupSum head.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Seed of the random model and of the input bits.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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

/// A random model: every LUT entry an independent coin (random init, so tables are uniform
/// over all functions — no residual pass-throughs for the simplifier to remove).
fn random_model(a: &BenchInferArgs) -> Result<Model> {
    let mut enc = Encoder::new(EncoderKind::Thermometer, 1, false)?;
    let lo_hi: Vec<f32> = (0..2 * a.in_dim)
        .map(|i| (i >= a.in_dim) as u8 as f32)
        .collect();
    enc.fit(&lo_hi, 2, a.in_dim)?;
    let cfg = ModelConfig {
        encoder_bits: 1,
        widths: vec![a.width; a.depth],
        lut_rank: a.lut_rank,
        parametrization: Parametrization::parse(&a.parametrization)?,
        weight_init: WeightInit::Random,
        classes: a.classes,
        seed: a.seed,
        ..ModelConfig::default()
    };
    Ok(Model::new(cfg, enc)?)
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
    secs.sort_by(|a, b| a.total_cmp(b));
    Ok((secs[secs.len() / 2], last))
}

pub fn run(a: &BenchInferArgs) -> Result<()> {
    let model = match &a.model {
        Some(path) => model_file::load(path)?.model,
        None => random_model(a)?,
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
    let mut rng = Rng::new(a.seed ^ 0xB17);
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
    let desc = describe(a, &model);
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

fn describe(a: &BenchInferArgs, m: &Model) -> String {
    if let Some(p) = &a.model {
        return p.display().to_string();
    }
    format!(
        "random {} → {} × {} → GroupSum({}), {} rank {}",
        a.in_dim,
        a.width,
        a.depth,
        m.head.k,
        m.config.parametrization.name(),
        a.lut_rank
    )
}
