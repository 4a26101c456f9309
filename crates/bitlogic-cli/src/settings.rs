//! Training settings: defaults (the README's main job), overlaid by `--config FILE.toml`,
//! overlaid by command-line flags. The TOML keys are the flag names with `_` for `-`.

use anyhow::{bail, Context, Result};
use bitlogic::encoder::EncoderKind;
use bitlogic::head::{HeadKind, DEFAULT_WBITS};
use bitlogic::layer::{ConnectionGrad, ConnectionKind, Parametrization, Sampling, WeightInit};
use bitlogic::train::{
    AmpDtype, CompileMode, CompileOptions, LrSchedule, OptimizerKind, TrainConfig,
};
use bitlogic::ModelConfig;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every setting of a training run. All optional so that a config file and flags can each
/// set any subset; `resolve` fills the rest with defaults.
#[derive(Args, Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainArgs {
    /// TOML file with any of these settings (flags win over the file).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Output directory for model.safetensors, metrics.json and curves.png.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// light, difflogic (rank 2), warp, linear, polylut, neurallut or dwn.
    #[arg(long)]
    pub parametrization: Option<String>,
    /// Monomial degree of polylut (1–6, default 2).
    #[arg(long)]
    pub poly_degree: Option<u8>,
    /// Hidden tanh units per layer of each neurallut MLP (1–32, default 8).
    #[arg(long)]
    pub neurallut_hidden: Option<u8>,
    /// Hidden layers of each neurallut MLP (1–4, default 2).
    #[arg(long)]
    pub neurallut_depth: Option<u8>,
    /// Inputs per LUT (1–6; difflogic: 2).
    #[arg(long)]
    pub lut_rank: Option<usize>,
    /// fixed (= random-unique), random-unique, random or learnable; or one per layer,
    /// comma-separated (e.g. learnable,fixed).
    #[arg(long)]
    pub connections: Option<String>,
    /// Candidate-logit gradient of learnable connections: softmax (through the candidate
    /// mixture) or linear (DWN's learnable mapping: each candidate's ±1 input correlated with
    /// the slot's gradient).
    #[arg(long)]
    pub connection_grad: Option<String>,
    /// Candidate inputs per LUT slot (learnable connections).
    #[arg(long)]
    pub num_candidates: Option<usize>,
    /// Softmax temperature over the candidates (learnable connections).
    #[arg(long)]
    pub connection_temperature: Option<f32>,
    /// Neurons per layer; a comma list gives each layer its own width.
    #[arg(long, value_delimiter = ',')]
    pub width: Option<Vec<usize>>,
    /// Number of LogicDense layers (ignored when --width lists several widths).
    #[arg(long)]
    pub depth: Option<usize>,
    /// GroupSum temperature τ (class score = group sum / τ).
    #[arg(long)]
    pub tau: Option<f32>,
    /// Temperature of the LUT logits.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// soft, hard (straight-through), gumbel_soft or gumbel_hard.
    #[arg(long)]
    pub sampling: Option<String>,
    /// random (default) or residual (deep nets).
    #[arg(long)]
    pub weight_init: Option<String>,
    #[arg(long)]
    pub residual_probability: Option<f32>,
    /// group-sum (default) or grouped-dsp (GroupSum then a learnable k×k matrix tanh(W),
    /// integer multiply-accumulate at eval).
    #[arg(long)]
    pub head: Option<String>,
    /// β of the grouped-dsp head (scales its scores in training; default 1).
    #[arg(long)]
    pub dsp_beta: Option<f32>,
    /// Signed integer bits of the grouped-dsp matrix at eval (2–16, default 8).
    #[arg(long)]
    pub dsp_wbits: Option<u32>,
    /// thermometer, distributive (quantile thermometer) or fixed-point (UniformFixedPoint).
    #[arg(long)]
    pub encoder: Option<String>,
    /// Thermometer bits per input feature.
    #[arg(long)]
    pub encoder_bits: Option<usize>,
    /// Fit thresholds per feature instead of globally.
    #[arg(long)]
    pub encoder_per_feature: Option<bool>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long)]
    pub lr: Option<f32>,
    /// adam or adamw.
    #[arg(long)]
    pub optimizer: Option<String>,
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// constant, cosine (decays to 0 over the run) or step:EVERY:GAMMA (StepLR per epoch).
    #[arg(long)]
    pub lr_schedule: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Compile mode: reduce-overhead (default), default, max-autotune,
    /// max-autotune-no-cudagraphs, true, false.
    #[arg(long)]
    pub compile_mode: Option<String>,
    /// Activation precision: none (f32), bf16, f16.
    #[arg(long)]
    pub amp: Option<String>,
    /// Samples per kernel block (multiple of 16; default automatic).
    #[arg(long)]
    pub block: Option<usize>,
    /// Folder in MNIST's IDX layout (default: the MNIST copy in data/mnist).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Tabular training data (CSV); needs --test-csv and --label-column.
    #[arg(long)]
    pub train_csv: Option<PathBuf>,
    #[arg(long)]
    pub test_csv: Option<PathBuf>,
    /// Label column of the CSV files: a header name, or an index for header-less files.
    #[arg(long)]
    pub label_column: Option<String>,
    /// The CSV files have no header row.
    #[arg(long)]
    pub no_header: Option<bool>,
    /// Shift each training image by up to N pixels (fresh draw every epoch; image data only).
    #[arg(long)]
    pub augment_shift: Option<usize>,
    /// Train on the first N training samples only.
    #[arg(long)]
    pub train_subset: Option<usize>,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: Option<bool>,
}

/// The main job (`bitlogic train` with no flags): a two-layer rank-6 light network with
/// learnable connections on per-pixel quantile thermometers. The README gives its measured
/// accuracy and time; flags not given fall back to these values.
pub fn main_job_model() -> ModelConfig {
    ModelConfig {
        encoder: EncoderKind::Distributive,
        encoder_bits: 3,
        encoder_per_feature: true,
        widths: vec![4000, 2000],
        lut_rank: 6,
        parametrization: Parametrization::Light,
        connections: ConnectionKind::Learnable,
        num_candidates: 16,
        // DWN's rule: +0.29 pp test accuracy over the softmax surrogate at the same cost
        // (97.78 % against 97.49 %), which keeps the main job clear of its 97.5 % bar.
        connection_grad: ConnectionGrad::Linear,
        group_tau: 5.0,
        ..ModelConfig::default()
    }
}

pub fn main_job_training() -> TrainConfig {
    TrainConfig {
        epochs: MAIN_JOB_EPOCHS,
        batch: 128,
        lr: 0.01,
        lr_schedule: LrSchedule::Cosine,
        ..TrainConfig::default()
    }
}

const MAIN_JOB_EPOCHS: usize = 10;

pub struct Resolved {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub out: PathBuf,
    pub args: TrainArgs,
}

fn merge(file: TrainArgs, cli: TrainArgs) -> TrainArgs {
    macro_rules! pick {
        ($($f:ident),*) => { TrainArgs { config: cli.config.clone(), $($f: cli.$f.or(file.$f)),* } };
    }
    pick!(
        out,
        parametrization,
        poly_degree,
        neurallut_hidden,
        neurallut_depth,
        lut_rank,
        connections,
        num_candidates,
        connection_temperature,
        connection_grad,
        width,
        depth,
        tau,
        temperature,
        sampling,
        weight_init,
        residual_probability,
        encoder,
        encoder_bits,
        encoder_per_feature,
        epochs,
        batch,
        lr,
        optimizer,
        weight_decay,
        lr_schedule,
        seed,
        threads,
        compile_mode,
        amp,
        block,
        data,
        train_csv,
        test_csv,
        label_column,
        no_header,
        head,
        dsp_beta,
        dsp_wbits,
        augment_shift,
        train_subset,
        quiet
    )
}

/// The parametrization with its options; an option given for another parametrization is an
/// error rather than silently ignored.
fn parametrization(args: &TrainArgs, default: Parametrization) -> Result<Parametrization> {
    let p = match &args.parametrization {
        Some(p) => Parametrization::parse(p)?,
        None => default,
    };
    let mlp = args.neurallut_hidden.is_some() || args.neurallut_depth.is_some();
    Ok(match p {
        Parametrization::PolyLut { degree } if !mlp => Parametrization::PolyLut {
            degree: args.poly_degree.unwrap_or(degree),
        },
        Parametrization::NeuraLut { hidden, depth } if args.poly_degree.is_none() => {
            Parametrization::NeuraLut {
                hidden: args.neurallut_hidden.unwrap_or(hidden),
                depth: args.neurallut_depth.unwrap_or(depth),
            }
        }
        p if args.poly_degree.is_some() => {
            bail!("--poly-degree applies to --parametrization polylut only (got {})", p.name())
        }
        p if mlp => bail!(
            "--neurallut-hidden/--neurallut-depth apply to --parametrization neurallut only (got {})",
            p.name()
        ),
        p => p,
    })
}

fn head_kind(args: &TrainArgs) -> Result<HeadKind> {
    let dsp_option = args.dsp_beta.is_some() || args.dsp_wbits.is_some();
    let kind = match args.head.as_deref() {
        None | Some("group-sum") | Some("group_sum") | Some("groupsum") if dsp_option => {
            bail!("--dsp-beta/--dsp-wbits apply to --head grouped-dsp only")
        }
        None | Some("group-sum") | Some("group_sum") | Some("groupsum") => HeadKind::GroupSum,
        Some("grouped-dsp") | Some("grouped_dsp") | Some("groupeddsp") => HeadKind::GroupedDsp {
            beta: args.dsp_beta.unwrap_or(1.0),
            wbits: args.dsp_wbits.unwrap_or(DEFAULT_WBITS),
        },
        Some(other) => bail!("unknown head '{other}' (valid: group-sum, grouped-dsp)"),
    };
    kind.validate()?;
    Ok(kind)
}

pub fn resolve(cli: TrainArgs) -> Result<Resolved> {
    let args = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let file: TrainArgs = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("config file {}: {}", path.display(), e.message()))?;
            merge(file, cli)
        }
        None => cli,
    };
    let d = main_job_model();
    let parametrization = parametrization(&args, d.parametrization)?;
    let widths = match (&args.width, args.depth) {
        (Some(w), _) if w.len() > 1 => w.clone(),
        (Some(w), depth) => vec![w.first().copied().unwrap_or(0); depth.unwrap_or(d.widths.len())],
        (None, Some(depth)) => vec![d.widths[0]; depth],
        (None, None) => d.widths.clone(),
    };
    if widths.is_empty() || widths.contains(&0) {
        bail!("--depth and --width must be at least 1 (got widths {widths:?})");
    }
    let (connections, layer_connections) = match &args.connections {
        Some(c) if c.contains(',') => {
            let per_layer = c
                .split(',')
                .map(|c| ConnectionKind::parse(c.trim()))
                .collect::<bitlogic::Result<Vec<_>>>()?;
            if per_layer.len() != widths.len() {
                bail!(
                    "--connections {c} names {} layers but the model has {} (one kind for all, \
                     or one per layer)",
                    per_layer.len(),
                    widths.len()
                );
            }
            (per_layer[0], per_layer)
        }
        Some(c) => (ConnectionKind::parse(c)?, Vec::new()),
        None => (d.connections, Vec::new()),
    };
    let residual_probability = args.residual_probability.unwrap_or(0.951);
    let weight_init = match args.weight_init.as_deref() {
        Some("residual") => WeightInit::Residual {
            probability: residual_probability,
        },
        None | Some("random") => WeightInit::Random,
        Some(other) => bail!("unknown weight_init '{other}' (valid: residual, random)"),
    };
    let model = ModelConfig {
        encoder: match &args.encoder {
            Some(e) => EncoderKind::parse(e)?,
            None => d.encoder,
        },
        encoder_bits: args.encoder_bits.unwrap_or(d.encoder_bits),
        encoder_per_feature: args.encoder_per_feature.unwrap_or(d.encoder_per_feature),
        widths,
        lut_rank: args.lut_rank.unwrap_or(d.lut_rank),
        parametrization,
        connections,
        layer_connections,
        num_candidates: args.num_candidates.unwrap_or(d.num_candidates),
        connection_grad: match &args.connection_grad {
            Some(g) => ConnectionGrad::parse(g)?,
            None => d.connection_grad,
        },
        connection_temperature: args
            .connection_temperature
            .unwrap_or(d.connection_temperature),
        temperature: args.temperature.unwrap_or(d.temperature),
        sampling: match &args.sampling {
            Some(s) => Sampling::parse(s)?,
            None => d.sampling,
        },
        weight_init,
        group_tau: args.tau.unwrap_or(d.group_tau),
        head: head_kind(&args)?,
        classes: d.classes,
        seed: args.seed.unwrap_or(d.seed),
    };
    // Check the layer settings before any data is read, so a typo fails at once.
    for c in model.layer_configs(1.max(model.lut_rank)) {
        c.validate()?;
    }
    let t = main_job_training();
    let train = TrainConfig {
        epochs: args.epochs.unwrap_or(t.epochs),
        batch: args.batch.unwrap_or(t.batch),
        lr: args.lr.unwrap_or(t.lr),
        optimizer: match &args.optimizer {
            Some(o) => OptimizerKind::parse(o)?,
            None => t.optimizer,
        },
        weight_decay: args.weight_decay.unwrap_or(t.weight_decay),
        seed: args.seed.unwrap_or(t.seed),
        threads: args.threads.unwrap_or(t.threads),
        block: args.block.unwrap_or(t.block),
        compile: CompileOptions {
            mode: match &args.compile_mode {
                Some(m) => CompileMode::parse(m)?,
                None => t.compile.mode,
            },
            amp_dtype: match &args.amp {
                Some(a) => AmpDtype::parse(a)?,
                None => t.compile.amp_dtype,
            },
            ..t.compile
        },
        lr_schedule: match &args.lr_schedule {
            Some(s) => LrSchedule::parse(s)?,
            None => t.lr_schedule,
        },
    };
    train.validate()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/mnist"));
    Ok(Resolved {
        model,
        train,
        out,
        args,
    })
}
