//! A feed-forward lookup-table network: encoder → flatten → LogicDense × N → head
//! (GroupSum or GroupedDSP).
//!
//! ```
//! use bitlogic::{Model, ModelConfig};
//! use bitlogic::encoder::{Encoder, EncoderKind};
//! // 4 real features, thermometer-encoded to 2 bits each, two layers, 2 classes.
//! let x = vec![0.0, 1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 0.0];
//! let mut enc = Encoder::new(EncoderKind::Thermometer, 2, false).unwrap();
//! enc.fit(&x, 2, 4).unwrap();
//! let cfg = ModelConfig { widths: vec![16, 8], classes: 2, ..ModelConfig::default() };
//! let model = Model::new(cfg, enc).unwrap();
//! let classes = model.predict(&x, 2).unwrap();
//! assert_eq!(classes.len(), 2);
//! ```

use crate::encoder::{Encoder, EncoderKind};
use crate::head::{argmax, Head, HeadKind};
use crate::layer::{
    self, ConnectionGrad, ConnectionKind, LayerConfig, LogicDense, Parametrization, Sampling,
    WeightInit,
};
use crate::{rng::Rng, Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The full architecture; stored in every model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    pub encoder: EncoderKind,
    pub encoder_bits: usize,
    pub encoder_per_feature: bool,
    /// Output width of each LogicDense layer.
    pub widths: Vec<usize>,
    pub lut_rank: usize,
    pub parametrization: Parametrization,
    pub connections: ConnectionKind,
    /// Per-layer connections, overriding `connections` (empty: `connections` everywhere).
    /// DWN, for one, learns the first layer's wiring and keeps the others random.
    pub layer_connections: Vec<ConnectionKind>,
    /// Candidates per slot and their softmax τ, for learnable connections.
    pub num_candidates: usize,
    pub connection_temperature: f32,
    /// Candidate-logit gradient rule of learnable connections.
    pub connection_grad: ConnectionGrad,
    /// τ of the layers (divides the logits).
    pub temperature: f32,
    pub sampling: Sampling,
    pub weight_init: WeightInit,
    /// τ of the head's group sums.
    pub group_tau: f32,
    /// The head: GroupSum (the default, also for files written before heads had a kind) or
    /// GroupedDSP.
    pub head: HeadKind,
    pub classes: usize,
    /// Seed of connections and initial weights.
    pub seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            encoder: EncoderKind::Thermometer,
            encoder_bits: 3,
            encoder_per_feature: false,
            widths: vec![8000, 8000],
            lut_rank: 2,
            parametrization: Parametrization::Light,
            connections: ConnectionKind::RandomUnique,
            layer_connections: Vec::new(),
            num_candidates: 16,
            connection_temperature: 1.0,
            connection_grad: ConnectionGrad::Softmax,
            temperature: 1.0,
            sampling: Sampling::Soft,
            weight_init: WeightInit::Random,
            group_tau: 10.0,
            head: HeadKind::GroupSum,
            classes: 10,
            seed: 0,
        }
    }
}

impl ModelConfig {
    pub fn layer_configs(&self, input_bits: usize) -> Vec<LayerConfig> {
        let mut in_dim = input_bits;
        self.widths
            .iter()
            .enumerate()
            .map(|(l, &w)| {
                let c = LayerConfig {
                    in_dim,
                    out_dim: w,
                    lut_rank: self.lut_rank,
                    parametrization: self.parametrization,
                    connections: self
                        .layer_connections
                        .get(l)
                        .copied()
                        .unwrap_or(self.connections),
                    temperature: self.temperature,
                    sampling: self.sampling,
                    weight_init: self.weight_init,
                    // A pool cannot be larger than the layer's inputs.
                    num_candidates: self.num_candidates.min(in_dim),
                    connection_temperature: self.connection_temperature,
                    connection_grad: self.connection_grad,
                };
                in_dim = w;
                c
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub config: ModelConfig,
    pub encoder: Encoder,
    pub layers: Vec<LogicDense>,
    pub head: Head,
}

impl Model {
    /// Builds a fresh model on a fitted encoder.
    pub fn new(config: ModelConfig, encoder: Encoder) -> Result<Self> {
        if !encoder.is_fitted() {
            return Err(Error::invalid(
                "the encoder must be fitted before building a model",
            ));
        }
        if config.widths.is_empty() {
            return Err(Error::invalid(
                "a model needs at least one LogicDense layer (widths is empty)",
            ));
        }
        if !config.layer_connections.is_empty()
            && config.layer_connections.len() != config.widths.len()
        {
            return Err(Error::invalid(format!(
                "layer_connections names {} layers but the model has {} (give one per layer, \
                 or none to use `connections` everywhere)",
                config.layer_connections.len(),
                config.widths.len()
            )));
        }
        let mut rng = Rng::fork(config.seed, 1);
        let mut layers = config
            .layer_configs(encoder.output_dim())
            .into_iter()
            .map(|c| LogicDense::new(c, &mut rng))
            .collect::<Result<Vec<_>>>()?;
        let last = *config.widths.last().unwrap_or(&0);
        let head = Head::new(config.head, config.classes, config.group_tau, last)?;
        // Neurons are numbered in the order of their inputs, so that the kernels read rows in
        // order (a training step at width 8000 was 9–18 % faster, measured in-process). The
        // network is as random as before: the next layer's inputs were drawn independently of
        // this numbering, and a head group's members are unordered, so the last layer is
        // sorted within its groups.
        let n = layers.len();
        for (l, layer) in layers.iter_mut().enumerate() {
            let group = if l + 1 == n {
                head.group_size()
            } else {
                layer.out_dim()
            };
            layer.order_by_inputs(group);
        }
        Ok(Model {
            config,
            encoder,
            layers,
            head,
        })
    }

    /// Trainable parameters: LUT weights, for learnable connections candidate logits, and
    /// the head's (GroupedDSP's matrix).
    pub fn parameters(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| l.weights.len() + l.conn_logits.len())
            .sum();
        layers + self.head.params().len()
    }

    /// LUT neurons (gates) in all layers.
    pub fn gates(&self) -> usize {
        self.layers.iter().map(|l| l.out_dim()).sum()
    }

    pub fn input_features(&self) -> usize {
        self.encoder.features
    }

    /// The discrete network: per layer its LUTs and ids (see `LogicDense::get_luts_and_ids`).
    pub fn luts_and_ids(&self) -> Vec<(Vec<u8>, Vec<u32>)> {
        self.layers.iter().map(|l| l.get_luts_and_ids()).collect()
    }

    /// Eval forward from encoded bits (`[n][encoder.output_dim()]`, sample-major): the hard
    /// LUT lookup in every layer and the integer count of ones in each head group,
    /// `[n][classes]` (GroupSum's class scores; what GroupedDSP's matrix multiplies).
    pub fn eval_counts(&self, bits: &[u8], n: usize) -> Result<Vec<u32>> {
        let dim = self.encoder.output_dim();
        if bits.len() != n * dim {
            return Err(Error::invalid(format!(
                "eval input has {} bits, expected {n} samples × {dim}",
                bits.len()
            )));
        }
        let tables = self.luts_and_ids();
        let k = self.head.k();
        let mut out = vec![0u32; n * k];
        out.par_chunks_mut(k * 64)
            .zip(bits.par_chunks(dim * 64))
            .for_each(|(out, bits)| {
                let mut cur = Vec::new();
                let mut next = Vec::new();
                for (o, x) in out.chunks_mut(k).zip(bits.chunks(dim)) {
                    cur.clear();
                    cur.extend_from_slice(x);
                    for (layer, (luts, ids)) in self.layers.iter().zip(&tables) {
                        next.resize(layer.out_dim(), 0);
                        layer::eval_bits(layer.rank(), luts, ids, &cur, &mut next);
                        std::mem::swap(&mut cur, &mut next);
                    }
                    self.head.counts(&cur, o);
                }
            });
        Ok(out)
    }

    /// Eval-mode integer class scores `[n][classes]` from encoded bits: `eval_counts` through
    /// the integer head (the counts for GroupSum, `Σ_d Q_cd · n_d` for GroupedDSP).
    pub fn eval_scores(&self, bits: &[u8], n: usize) -> Result<Vec<i64>> {
        Ok(self.head.eval_scores(&self.eval_counts(bits, n)?))
    }

    /// Eval-mode class predictions for raw features (`[n][input_features]`): the first
    /// argmax of `eval_scores`.
    pub fn predict(&self, x: &[f32], n: usize) -> Result<Vec<u32>> {
        let bits = self.encoder.encode(x, n)?;
        let scores = self.eval_scores(&bits, n)?;
        Ok(scores
            .chunks(self.head.k())
            .map(|c| argmax(c) as u32)
            .collect())
    }
}
