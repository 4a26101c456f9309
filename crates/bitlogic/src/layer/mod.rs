//! `LogicDense`: a layer of lookup-table neurons = connections × parametrization.
//!
//! Each of `out_dim` neurons reads `lut_rank` inputs (its row of `ids`) and outputs one
//! value through its own LUT. Training uses the relaxed output of the parametrization
//! (`param`); evaluation is the hard lookup in [`LogicDense::get_luts_and_ids`].
//!
//! ```
//! use bitlogic::layer::{LayerConfig, LogicDense};
//! use bitlogic::rng::Rng;
//! let layer = LogicDense::new(LayerConfig::new(8, 4, 2), &mut Rng::new(0)).unwrap();
//! let (luts, ids) = layer.get_luts_and_ids();
//! assert_eq!((luts.len(), ids.len()), (4 * 4, 4 * 2));
//! ```

pub mod act;
pub mod connections;
pub mod dwn_kernel;
pub mod kernel;
pub mod lanes;
pub mod learnable;
pub mod param;
pub mod rows;
pub mod simd;

pub use act::{Act, Bf16, F16};
pub use connections::ConnectionKind;
pub use param::{list_parametrizations, Parametrization, WeightInit};

use crate::{rng::Rng, Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How the training forward samples a neuron's LUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// The relaxed (real-valued) LUT.
    Soft,
    /// Straight-through: forward with the discrete LUT, backward through the relaxed one.
    Hard,
    /// `soft` with seeded noise on the logits before σ, drawn afresh every step.
    GumbelSoft,
    /// `hard` with the same noise.
    GumbelHard,
}

impl Sampling {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "soft" => Ok(Sampling::Soft),
            "hard" => Ok(Sampling::Hard),
            "gumbel_soft" | "gumbel-soft" => Ok(Sampling::GumbelSoft),
            "gumbel_hard" | "gumbel-hard" => Ok(Sampling::GumbelHard),
            _ => Err(Error::invalid(format!(
                "unknown forward_sampling '{name}' (valid: soft, hard, gumbel_soft, gumbel_hard)"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Sampling::Soft => "soft",
            Sampling::Hard => "hard",
            Sampling::GumbelSoft => "gumbel_soft",
            Sampling::GumbelHard => "gumbel_hard",
        }
    }

    /// Forward with the discrete LUT (straight-through)?
    pub fn hard(self) -> bool {
        matches!(self, Sampling::Hard | Sampling::GumbelHard)
    }

    pub fn gumbel(self) -> bool {
        matches!(self, Sampling::GumbelSoft | Sampling::GumbelHard)
    }
}

/// How learnable connections turn a slot's input gradient into candidate-logit gradients
/// (see `learnable`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionGrad {
    /// Through softmax(ℓ/τ) of the candidate mixture.
    #[default]
    Softmax,
    /// Linear in the ±1 candidate inputs, as DWN's learnable mapping.
    Linear,
}

impl ConnectionGrad {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "softmax" => Ok(ConnectionGrad::Softmax),
            "linear" => Ok(ConnectionGrad::Linear),
            _ => Err(Error::invalid(format!(
                "unknown connection_grad '{name}' (valid: softmax, linear)"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ConnectionGrad::Softmax => "softmax",
            ConnectionGrad::Linear => "linear",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerConfig {
    pub in_dim: usize,
    pub out_dim: usize,
    pub lut_rank: usize,
    pub parametrization: Parametrization,
    pub connections: ConnectionKind,
    /// τ: divides the logits.
    pub temperature: f32,
    pub sampling: Sampling,
    pub weight_init: WeightInit,
    /// Candidate inputs per slot (learnable connections only).
    #[serde(default = "default_candidates")]
    pub num_candidates: usize,
    /// τ of the candidate softmax (learnable connections only).
    #[serde(default = "default_connection_temperature")]
    pub connection_temperature: f32,
    /// Candidate-logit gradient rule (learnable connections only).
    #[serde(default)]
    pub connection_grad: ConnectionGrad,
}

fn default_candidates() -> usize {
    16
}
fn default_connection_temperature() -> f32 {
    1.0
}

impl LayerConfig {
    pub fn learnable(&self) -> bool {
        self.connections == ConnectionKind::Learnable
    }

    /// Defaults: light, random-unique connections, τ = 1, soft sampling, random init.
    pub fn new(in_dim: usize, out_dim: usize, lut_rank: usize) -> Self {
        LayerConfig {
            in_dim,
            out_dim,
            lut_rank,
            parametrization: Parametrization::Light,
            connections: ConnectionKind::RandomUnique,
            temperature: 1.0,
            sampling: Sampling::Soft,
            weight_init: WeightInit::Random,
            num_candidates: default_candidates(),
            connection_temperature: default_connection_temperature(),
            connection_grad: ConnectionGrad::Softmax,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.lut_rank == 0 || self.lut_rank > param::MAX_RANK {
            return Err(Error::invalid(format!(
                "lut_rank {} is out of range (valid: 1..={})",
                self.lut_rank,
                param::MAX_RANK
            )));
        }
        self.parametrization.check_rank(self.lut_rank)?;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::invalid(format!(
                "temperature must be a positive number (got {})",
                self.temperature
            )));
        }
        if let WeightInit::Residual { probability } = self.weight_init {
            if !(probability > 0.0 && probability < 1.0) {
                return Err(Error::invalid(format!(
                    "residual_probability must lie strictly between 0 and 1 (got {probability})"
                )));
            }
        }
        if self.learnable() {
            if self.num_candidates == 0 || self.num_candidates > self.in_dim {
                return Err(Error::invalid(format!(
                    "num_candidates must be in 1..={} (the layer's inputs), got {}",
                    self.in_dim, self.num_candidates
                )));
            }
            if !(self.connection_temperature.is_finite() && self.connection_temperature > 0.0) {
                return Err(Error::invalid(format!(
                    "connection_temperature must be a positive number (got {})",
                    self.connection_temperature
                )));
            }
        }
        if self.in_dim == 0 || self.out_dim == 0 {
            return Err(Error::invalid(format!(
                "a layer needs in_dim and out_dim >= 1 (got {} and {})",
                self.in_dim, self.out_dim
            )));
        }
        Ok(())
    }
}

/// Neurons per parallel task of the per-step fold and unfold: a task is a few microseconds
/// of work even at rank 2, so the scheduling overhead stays small.
const FOLD_TASK: usize = 2048;

#[derive(Clone, Debug, PartialEq)]
pub struct LogicDense {
    pub config: LayerConfig,
    /// `[out_dim][lut_rank]` input indices.
    pub ids: Vec<u32>,
    /// `[out_dim][weights_per_neuron]`.
    pub weights: Vec<f32>,
    /// Learnable connections: `[out_dim][lut_rank][num_candidates]` input indices and the
    /// logits over them; empty for fixed connections. `ids` holds the argmax candidates.
    pub candidates: Vec<u32>,
    pub conn_logits: Vec<f32>,
}

impl LogicDense {
    pub fn new(config: LayerConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let slots = config.out_dim * config.lut_rank;
        let (ids, candidates, conn_logits) = if config.learnable() {
            let c = config.num_candidates;
            let candidates = learnable::draw_candidates(config.in_dim, slots, c, rng)?;
            // Equal logits: the first candidate (itself random) wires the forward at first.
            let logits = vec![0.0; slots * c];
            let ids = candidates.iter().step_by(c).copied().collect();
            (ids, candidates, logits)
        } else {
            let ids = connections::draw(
                config.connections,
                config.in_dim,
                config.out_dim,
                config.lut_rank,
                rng,
            )?;
            (ids, Vec::new(), Vec::new())
        };
        let wpn = config.parametrization.weights_per_neuron(config.lut_rank);
        let mut weights = vec![0f32; config.out_dim * wpn];
        for w in weights.chunks_mut(wpn) {
            config.parametrization.init(
                config.lut_rank,
                config.weight_init,
                config.temperature,
                rng,
                w,
            );
        }
        Ok(LogicDense {
            config,
            ids,
            weights,
            candidates,
            conn_logits,
        })
    }

    /// Renumbers the neurons within each run of `group` consecutive ones in the order of
    /// their inputs (`connections::input_order`), keeping each neuron's weights and, for
    /// learnable connections, its candidates and logits with it. The layer computes the
    /// same functions, listed in another order; whoever reads its outputs must be renumbered
    /// to match (a fresh model's next layer, drawn independently, need not be).
    pub fn order_by_inputs(&mut self, group: usize) {
        fn permute<T: Copy>(v: &[T], order: &[usize]) -> Vec<T> {
            let per = v.len() / order.len();
            order
                .iter()
                .flat_map(|&i| &v[i * per..(i + 1) * per])
                .copied()
                .collect()
        }
        let order = connections::input_order(&self.ids, self.rank(), group);
        self.ids = permute(&self.ids, &order);
        self.weights = permute(&self.weights, &order);
        if !self.candidates.is_empty() {
            self.candidates = permute(&self.candidates, &order);
            self.conn_logits = permute(&self.conn_logits, &order);
        }
    }

    /// Rebuilds a layer with fixed connections from stored parts.
    pub fn from_parts(config: LayerConfig, ids: Vec<u32>, weights: Vec<f32>) -> Result<Self> {
        Self::from_parts_learnable(config, ids, weights, Vec::new(), Vec::new())
    }

    /// Rebuilds a layer from stored parts, checking every shape and index; `candidates` and
    /// `conn_logits` are empty unless the connections are learnable.
    pub fn from_parts_learnable(
        config: LayerConfig,
        ids: Vec<u32>,
        weights: Vec<f32>,
        candidates: Vec<u32>,
        conn_logits: Vec<f32>,
    ) -> Result<Self> {
        config.validate()?;
        let n = config.out_dim * config.lut_rank;
        if ids.len() != n {
            return Err(Error::invalid(format!(
                "layer has {} connection ids, expected {n} (out_dim {} × lut_rank {})",
                ids.len(),
                config.out_dim,
                config.lut_rank
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= config.in_dim) {
            return Err(Error::invalid(format!(
                "connection id {bad} is out of range for in_dim {}",
                config.in_dim
            )));
        }
        let wpn = config.parametrization.weights_per_neuron(config.lut_rank);
        if weights.len() != config.out_dim * wpn {
            return Err(Error::invalid(format!(
                "layer has {} weights, expected {} (out_dim {} × {wpn})",
                weights.len(),
                config.out_dim * wpn,
                config.out_dim
            )));
        }
        if weights.iter().any(|w| !w.is_finite()) {
            return Err(Error::invalid("layer weights contain NaN or infinity"));
        }
        let pool = if config.learnable() {
            n * config.num_candidates
        } else {
            0
        };
        if candidates.len() != pool || conn_logits.len() != pool {
            return Err(Error::invalid(format!(
                "layer has {} candidates and {} connection logits, expected {pool} each",
                candidates.len(),
                conn_logits.len()
            )));
        }
        if let Some(&bad) = candidates.iter().find(|&&i| i as usize >= config.in_dim) {
            return Err(Error::invalid(format!(
                "candidate id {bad} is out of range for in_dim {}",
                config.in_dim
            )));
        }
        if conn_logits.iter().any(|w| !w.is_finite()) {
            return Err(Error::invalid("connection logits contain NaN or infinity"));
        }
        let mut layer = LogicDense {
            config,
            ids,
            weights,
            candidates,
            conn_logits,
        };
        if layer.config.learnable() {
            let argmax = layer.ids.clone();
            layer.refresh_ids();
            if argmax != layer.ids {
                return Err(Error::invalid(
                    "stored connection ids are not the argmax of the connection logits",
                ));
            }
        }
        Ok(layer)
    }

    /// Re-derives `ids` from the connection logits (learnable connections; no-op otherwise).
    pub fn refresh_ids(&mut self) {
        if self.config.learnable() {
            let c = self.config.num_candidates;
            self.ids
                .par_chunks_mut(4096)
                .zip(self.candidates.par_chunks(4096 * c))
                .zip(self.conn_logits.par_chunks(4096 * c))
                .for_each(|((ids, cand), logits)| learnable::argmax_ids(cand, logits, c, ids));
        }
    }

    pub fn rank(&self) -> usize {
        self.config.lut_rank
    }
    pub fn in_dim(&self) -> usize {
        self.config.in_dim
    }
    pub fn out_dim(&self) -> usize {
        self.config.out_dim
    }
    pub fn weights_per_neuron(&self) -> usize {
        self.config
            .parametrization
            .weights_per_neuron(self.config.lut_rank)
    }

    /// Folds every neuron's weights into `coef` (`[out_dim][2^rank]`).
    pub fn fold(&self, hard: bool, coef: &mut [f32]) {
        self.fold_weights(&self.weights, hard, coef)
    }

    /// `fold` with other weights of the same shape (noisy ones, for Gumbel sampling).
    pub fn fold_weights(&self, weights: &[f32], hard: bool, coef: &mut [f32]) {
        let (p, r, t) = (
            self.config.parametrization,
            self.rank(),
            self.config.temperature,
        );
        let (wpn, k) = (self.weights_per_neuron(), 1 << r);
        coef.par_chunks_mut(k * FOLD_TASK)
            .zip(weights.par_chunks(wpn * FOLD_TASK))
            .for_each(|(a, w)| kernel::fold_neurons(p, r, w, wpn, t, hard, a));
    }

    /// `dw = ∂a/∂w · dcoef` for every neuron (overwrites `dw`).
    pub fn unfold_grad(&self, dcoef: &[f32], dw: &mut [f32]) {
        self.unfold_grad_at(&self.weights, dcoef, dw)
    }

    /// `unfold_grad` at other weights of the same shape (the noisy ones of Gumbel sampling).
    pub fn unfold_grad_at(&self, weights: &[f32], dcoef: &[f32], dw: &mut [f32]) {
        let (p, r, t) = (
            self.config.parametrization,
            self.rank(),
            self.config.temperature,
        );
        let (wpn, k) = (self.weights_per_neuron(), 1 << r);
        dw.par_chunks_mut(wpn * FOLD_TASK)
            .zip(weights.par_chunks(wpn * FOLD_TASK))
            .zip(dcoef.par_chunks(k * FOLD_TASK))
            .for_each(|((dw, w), da)| kernel::unfold_neurons(p, r, w, wpn, t, da, dw));
    }

    /// Gumbel sampling puts its noise on the weights (light: each LUT logit; difflogic: the
    /// gate logits) or, for the sigmoid parametrizations, on each corner's pre-activation.
    pub fn noise_on_weights(&self) -> bool {
        !self.config.parametrization.sigmoid_output()
    }

    /// Length of the noise buffer Gumbel sampling draws per step.
    pub fn noise_len(&self) -> usize {
        if self.noise_on_weights() {
            self.weights.len()
        } else {
            self.out_dim() << self.rank()
        }
    }

    /// The discrete truth tables `[out_dim][2^rank]` (MSB order, 0/1) and input ids
    /// `[out_dim][rank]`.
    pub fn get_luts_and_ids(&self) -> (Vec<u8>, Vec<u32>) {
        let (p, r, t) = (
            self.config.parametrization,
            self.rank(),
            self.config.temperature,
        );
        let (wpn, k) = (self.weights_per_neuron(), 1 << r);
        let mut luts = vec![0u8; self.out_dim() * k];
        for (l, w) in luts.chunks_mut(k).zip(self.weights.chunks(wpn)) {
            p.lut(r, w, t, l);
        }
        (luts, self.ids.clone())
    }
}

/// Hard evaluation of one layer on one sample's bits, given its LUTs.
pub fn eval_bits(rank: usize, luts: &[u8], ids: &[u32], input: &[u8], output: &mut [u8]) {
    let k = 1 << rank;
    for (i, o) in output.iter_mut().enumerate() {
        let mut addr = 0usize;
        for &id in &ids[i * rank..(i + 1) * rank] {
            addr = (addr << 1) | input[id as usize] as usize;
        }
        *o = luts[i * k + addr];
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_amp;
