//! `FeedForward`: the builder of the standard network,
//! encoder → flatten → N × LogicDense → head, with BitLogic's argument names.
//!
//! Flatten is implicit: samples arrive as rows of `features` values (images flattened), so
//! the encoder's output is already the flat bit vector the first layer reads. Settings given
//! by name (`"light"`, `"learnable"`, …) are checked when the model is built; the first bad
//! one is the error, naming the valid choices.
//!
//! ```
//! use bitlogic::FeedForward;
//! // 8 samples of 4 features, 2 classes.
//! let x: Vec<f32> = (0..32).map(|i| (i * 7 % 11) as f32).collect();
//! let model = FeedForward::new(&[64, 32], 2)
//!     .encoder("distributive", 3)
//!     .lut_rank(4)
//!     .parametrization("light")
//!     .connections("learnable")
//!     .num_candidates(8)
//!     .forward_sampling("soft")
//!     .weight_init("residual")
//!     .group_sum(2.0)
//!     .build(&x, 8, 4)?;
//! assert_eq!(model.layers.len(), 2);
//! assert_eq!(model.layers[0].in_dim(), 4 * 3);
//! # Ok::<(), bitlogic::Error>(())
//! ```

use crate::encoder::{Encoder, EncoderKind};
use crate::head::HeadKind;
use crate::layer::{ConnectionGrad, ConnectionKind, Parametrization, Sampling, WeightInit};
use crate::{Error, Model, ModelConfig, Result};

/// Default chance that a residual-initialised LUT passes its first input (logit ≈ 3).
pub const RESIDUAL_PROBABILITY: f32 = 0.951;

#[derive(Clone, Debug)]
pub struct FeedForward {
    config: ModelConfig,
    residual_probability: f32,
    /// The first setting that failed to parse, reported by `build`.
    error: Option<String>,
}

impl FeedForward {
    /// `hidden`: the width of each LogicDense layer; `num_classes`: the head's groups.
    /// Everything else starts at [`ModelConfig::default`].
    pub fn new(hidden: &[usize], num_classes: usize) -> Self {
        Self::from_config(ModelConfig {
            widths: hidden.to_vec(),
            classes: num_classes,
            ..ModelConfig::default()
        })
    }

    /// Starts from a full configuration (a saved model's, or one read from a file).
    pub fn from_config(config: ModelConfig) -> Self {
        let residual_probability = match config.weight_init {
            WeightInit::Residual { probability } => probability,
            WeightInit::Random => RESIDUAL_PROBABILITY,
        };
        FeedForward {
            config,
            residual_probability,
            error: None,
        }
    }

    fn parsed<T>(mut self, r: Result<T>, set: impl FnOnce(&mut ModelConfig, T)) -> Self {
        match r {
            Ok(v) => set(&mut self.config, v),
            Err(e) if self.error.is_none() => self.error = Some(e.to_string()),
            Err(_) => {}
        }
        self
    }

    /// `thermometer`, `distributive` or `fixed-point`, with `num_bits` per feature.
    pub fn encoder(self, name: &str, num_bits: usize) -> Self {
        self.parsed(EncoderKind::parse(name), |c, k| {
            c.encoder = k;
            c.encoder_bits = num_bits;
        })
    }

    /// Fit encoder thresholds per feature (true) or over all values (false).
    pub fn per_feature(mut self, on: bool) -> Self {
        self.config.encoder_per_feature = on;
        self
    }

    pub fn lut_rank(mut self, rank: usize) -> Self {
        self.config.lut_rank = rank;
        self
    }

    /// A registered parametrization by name (see `list_parametrizations`).
    pub fn parametrization(self, name: &str) -> Self {
        self.parsed(Parametrization::parse(name), |c, p| c.parametrization = p)
    }

    /// The monomial degree of `polylut` (sets the parametrization).
    pub fn poly_degree(mut self, degree: u8) -> Self {
        self.config.parametrization = Parametrization::PolyLut { degree };
        self
    }

    /// The MLP of `neurallut` (sets the parametrization).
    pub fn neurallut(mut self, hidden: u8, depth: u8) -> Self {
        self.config.parametrization = Parametrization::NeuraLut { hidden, depth };
        self
    }

    /// `fixed` (random-unique), `random` or `learnable`, for every layer.
    pub fn connections(self, name: &str) -> Self {
        self.parsed(ConnectionKind::parse(name), |c, k| {
            c.connections = k;
            c.layer_connections.clear();
        })
    }

    /// One connection kind per layer, e.g. `["learnable", "fixed"]`.
    pub fn layer_connections(self, names: &[&str]) -> Self {
        let kinds = names.iter().map(|n| ConnectionKind::parse(n)).collect();
        self.parsed(kinds, |c, k: Vec<ConnectionKind>| {
            if let Some(&first) = k.first() {
                c.connections = first;
            }
            c.layer_connections = k;
        })
    }

    pub fn num_candidates(mut self, n: usize) -> Self {
        self.config.num_candidates = n;
        self
    }

    pub fn connection_temperature(mut self, tau: f32) -> Self {
        self.config.connection_temperature = tau;
        self
    }

    /// `softmax` or `linear` (DWN's learnable mapping): how candidate logits learn.
    pub fn connection_grad(self, name: &str) -> Self {
        self.parsed(ConnectionGrad::parse(name), |c, g| c.connection_grad = g)
    }

    /// τ of the layers (divides the logits).
    pub fn temperature(mut self, tau: f32) -> Self {
        self.config.temperature = tau;
        self
    }

    /// `soft`, `hard`, `gumbel_soft` or `gumbel_hard`.
    pub fn forward_sampling(self, name: &str) -> Self {
        self.parsed(Sampling::parse(name), |c, s| c.sampling = s)
    }

    /// `random` or `residual`.
    pub fn weight_init(self, name: &str) -> Self {
        let p = self.residual_probability;
        let init = match name {
            "random" => Ok(WeightInit::Random),
            "residual" => Ok(WeightInit::Residual { probability: p }),
            _ => Err(Error::invalid(format!(
                "unknown weight_init '{name}' (valid: random, residual)"
            ))),
        };
        self.parsed(init, |c, i| c.weight_init = i)
    }

    /// The probability residual init gives "output = input 0" (default 0.951).
    pub fn residual_probability(mut self, p: f32) -> Self {
        self.residual_probability = p;
        if let WeightInit::Residual { probability } = &mut self.config.weight_init {
            *probability = p;
        }
        self
    }

    /// A `GroupSum(num_classes, tau)` head.
    pub fn group_sum(mut self, tau: f32) -> Self {
        self.config.group_tau = tau;
        self.config.head = HeadKind::GroupSum;
        self
    }

    /// A `GroupedDSP(num_classes, tau, beta, wbits)` head: GroupSum, then a learnable
    /// k×k matrix tanh(W), quantised to signed `wbits`-bit integers at eval.
    pub fn grouped_dsp(mut self, tau: f32, beta: f32, wbits: u32) -> Self {
        self.config.group_tau = tau;
        self.config.head = HeadKind::GroupedDsp { beta, wbits };
        self
    }

    /// Seed of connections and initial weights.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// The configuration so far, or the first bad setting.
    pub fn config(&self) -> Result<&ModelConfig> {
        match &self.error {
            Some(e) => Err(Error::invalid(e.clone())),
            None => Ok(&self.config),
        }
    }

    /// Fits the encoder on `x` (`[n][features]`, the training data) and builds the model.
    pub fn build(self, x: &[f32], n: usize, features: usize) -> Result<Model> {
        let c = self.config()?;
        let mut encoder = Encoder::new(c.encoder, c.encoder_bits, c.encoder_per_feature)?;
        encoder.fit(x, n, features)?;
        self.build_with_encoder(encoder)
    }

    /// Builds the model on an already fitted encoder.
    pub fn build_with_encoder(self, encoder: Encoder) -> Result<Model> {
        self.config()?;
        Model::new(self.config, encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<f32> {
        (0..40).map(|i| (i * 13 % 17) as f32).collect()
    }

    #[test]
    fn settings_reach_every_layer() {
        let m = FeedForward::new(&[20, 10], 5)
            .encoder("thermometer", 2)
            .lut_rank(3)
            .neurallut(4, 1)
            .layer_connections(&["learnable", "fixed"])
            .num_candidates(6)
            .connection_grad("linear")
            .temperature(2.0)
            .forward_sampling("gumbel_hard")
            .residual_probability(0.9)
            .weight_init("residual")
            .seed(7)
            .build(&data(), 10, 4)
            .unwrap();
        let (a, b) = (&m.layers[0].config, &m.layers[1].config);
        assert_eq!((a.in_dim, a.out_dim, b.in_dim, b.out_dim), (8, 20, 20, 10));
        assert_eq!(a.connections, ConnectionKind::Learnable);
        assert_eq!(b.connections, ConnectionKind::RandomUnique);
        assert_eq!(a.num_candidates, 6);
        assert_eq!(a.connection_grad, ConnectionGrad::Linear);
        for c in [a, b] {
            assert_eq!(c.lut_rank, 3);
            assert_eq!(c.temperature, 2.0);
            assert_eq!(c.sampling, Sampling::GumbelHard);
            assert_eq!(c.weight_init, WeightInit::Residual { probability: 0.9 });
            assert_eq!(
                c.parametrization,
                Parametrization::NeuraLut {
                    hidden: 4,
                    depth: 1
                }
            );
        }
        assert_eq!(m.head.k(), 5);
        let m = FeedForward::new(&[20], 5)
            .grouped_dsp(3.0, 2.0, 6)
            .build(&data(), 10, 4)
            .unwrap();
        assert_eq!(
            m.head.kind(),
            HeadKind::GroupedDsp {
                beta: 2.0,
                wbits: 6
            }
        );
        assert_eq!(m.head.tau(), 3.0);
        let e = FeedForward::new(&[20], 5)
            .grouped_dsp(3.0, 2.0, 1)
            .build(&data(), 10, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("wbits") && e.contains('1'), "{e}");
    }

    #[test]
    fn the_first_bad_name_is_the_error() {
        let e = FeedForward::new(&[10], 2)
            .parametrization("lightt")
            .connections("nope")
            .build(&data(), 10, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'lightt'") && e.contains("neurallut"), "{e}");
        let e = FeedForward::new(&[10], 2)
            .weight_init("zeros")
            .config()
            .unwrap_err()
            .to_string();
        assert!(e.contains("zeros") && e.contains("residual"), "{e}");
        let e = FeedForward::new(&[10, 10], 2)
            .layer_connections(&["fixed"])
            .build(&data(), 10, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 layers") && e.contains("has 2"), "{e}");
    }
}
