//! The synthetic network the `bench` commands measure: `in_dim` binary inputs →
//! `width × depth` LogicDense (or the listed widths) → GroupSum(classes), every LUT and
//! every connection drawn at random.

use anyhow::{bail, Result};
use bitlogic::encoder::{Encoder, EncoderKind};
use bitlogic::layer::{ConnectionGrad, ConnectionKind, Parametrization, WeightInit};
use bitlogic::{Model, ModelConfig};
use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct RandomNet {
    /// Input bits of the random model.
    #[arg(long, default_value_t = 784)]
    pub in_dim: usize,
    /// Neurons per LogicDense layer of the random model; a list (4000,2000) gives each
    /// layer's and sets the depth.
    #[arg(long, value_delimiter = ',', default_value = "8000")]
    pub width: Vec<usize>,
    /// LogicDense layers of the random model (with a single width).
    #[arg(long, default_value_t = 6)]
    pub depth: usize,
    /// Inputs per LUT of the random model (1–6; difflogic: 2).
    #[arg(long, default_value_t = 2)]
    pub lut_rank: usize,
    /// Parametrization of the random model (see `bitlogic train --help`).
    #[arg(long, default_value = "light")]
    pub parametrization: String,
    /// Connections of the random model: fixed, random-unique, random or learnable.
    #[arg(long, default_value = "fixed")]
    pub connections: String,
    /// Candidate inputs per LUT slot (learnable connections).
    #[arg(long, default_value_t = 16)]
    pub num_candidates: usize,
    /// Candidate-logit gradient of learnable connections: softmax or linear.
    #[arg(long, default_value = "softmax")]
    pub connection_grad: String,
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
            widths: self.widths()?,
            lut_rank: self.lut_rank,
            parametrization: Parametrization::parse(&self.parametrization)?,
            connections: ConnectionKind::parse(&self.connections)?,
            num_candidates: self.num_candidates,
            connection_grad: ConnectionGrad::parse(&self.connection_grad)?,
            weight_init: WeightInit::Random,
            classes: self.classes,
            seed: self.seed,
            ..ModelConfig::default()
        };
        Ok(Model::new(cfg, enc)?)
    }

    /// The layer widths: the list, or one width `depth` times.
    fn widths(&self) -> Result<Vec<usize>> {
        let widths = match self.width[..] {
            [w] => vec![w; self.depth],
            _ => self.width.clone(),
        };
        if widths.is_empty() || widths.contains(&0) {
            bail!("--width and --depth must be at least 1 (got widths {widths:?})");
        }
        Ok(widths)
    }

    pub fn describe(&self) -> String {
        let layers = match self.width[..] {
            [w] => format!("{w} × {}", self.depth),
            _ => format!("{:?}", self.width),
        };
        let wiring = if self.connections == "learnable" {
            format!(
                ", learnable connections ({} candidates, {})",
                self.num_candidates, self.connection_grad
            )
        } else {
            String::new()
        };
        format!(
            "random {} → {layers} → GroupSum({}), {} rank {}{wiring}",
            self.in_dim, self.classes, self.parametrization, self.lut_rank
        )
    }
}

/// The median of timings (seconds).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
