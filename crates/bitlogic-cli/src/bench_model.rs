//! The synthetic network the `bench` commands measure: `in_dim` binary inputs →
//! `width × depth` LogicDense → GroupSum(classes), every LUT drawn at random.

use anyhow::Result;
use bitlogic::encoder::{Encoder, EncoderKind};
use bitlogic::layer::{Parametrization, WeightInit};
use bitlogic::{Model, ModelConfig};
use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct RandomNet {
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
    /// Parametrization of the random model (see `bitlogic train --help`).
    #[arg(long, default_value = "light")]
    pub parametrization: String,
    /// Classes of the random model's GroupSum head.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Seed of the random model and of the input bits.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl RandomNet {
    /// Random init, so tables are uniform over all functions (no residual pass-throughs for a
    /// simplifier to remove); a 1-bit thermometer passes {0,1} inputs through unchanged.
    pub fn build(&self) -> Result<Model> {
        let mut enc = Encoder::new(EncoderKind::Thermometer, 1, false)?;
        let lo_hi: Vec<f32> = (0..2 * self.in_dim)
            .map(|i| (i >= self.in_dim) as u8 as f32)
            .collect();
        enc.fit(&lo_hi, 2, self.in_dim)?;
        let cfg = ModelConfig {
            encoder_bits: 1,
            widths: vec![self.width; self.depth],
            lut_rank: self.lut_rank,
            parametrization: Parametrization::parse(&self.parametrization)?,
            weight_init: WeightInit::Random,
            classes: self.classes,
            seed: self.seed,
            ..ModelConfig::default()
        };
        Ok(Model::new(cfg, enc)?)
    }

    pub fn describe(&self) -> String {
        format!(
            "random {} → {} × {} → GroupSum({}), {} rank {}",
            self.in_dim, self.width, self.depth, self.classes, self.parametrization, self.lut_rank
        )
    }
}

/// The median of timings (seconds).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
