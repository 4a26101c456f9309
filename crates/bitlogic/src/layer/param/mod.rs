//! Parametrizations: what a neuron's LUT is made of, how it relaxes for training and how
//! it becomes a discrete truth table.
//!
//! `light` and `difflogic` neurons are multilinear polynomials of their `n` inputs and `warp`
//! is a sigmoid of one, so every parametrization here *folds* its weights into 2^n
//! coefficients `a_k` (one per LUT address, MSB order) once per step:
//!
//! ```text
//!   y = act( Σ_k a_k φ_k(x) ),   φ_k(x) = Π_j (x_j if bit n-1-j of k is set else 1 − x_j)
//! ```
//!
//! with `act` the identity (light, difflogic) or the logistic sigmoid (warp). The layer kernel
//! (`layer::kernel`) only ever sees folded coefficients; `unfold_grad` carries `∂L/∂a` back to
//! the weights.

mod difflogic;
pub mod dwn;
mod light;
mod linear;
pub mod neurallut;
mod polylut;
mod warp;

use crate::layer::lanes::Lanes;
use crate::{rng::Rng, Error, Result};

use serde::{Deserialize, Serialize};

/// How a layer's weights are initialised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum WeightInit {
    /// Independent standard-normal logits.
    Random,
    /// Every LUT starts near "output = input 0" with the given probability.
    Residual { probability: f32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parametrization {
    Light,
    Difflogic,
    Warp,
    Linear,
    /// A polynomial with monomials up to `degree` inputs.
    PolyLut {
        degree: u8,
    },
    /// A table read at the binarised inputs, Extended Finite Difference backward.
    Dwn,
    /// A tiny MLP of `depth` hidden layers of `hidden` tanh units (NeuraLUT).
    NeuraLut {
        hidden: u8,
        depth: u8,
    },
}

/// Every registered parametrization, by name.
pub const PARAMETRIZATIONS: &[(&str, Parametrization)] = &[
    ("light", Parametrization::Light),
    ("difflogic", Parametrization::Difflogic),
    ("warp", Parametrization::Warp),
    ("linear", Parametrization::Linear),
    ("polylut", Parametrization::PolyLut { degree: 2 }),
    ("dwn", Parametrization::Dwn),
    (
        "neurallut",
        Parametrization::NeuraLut {
            hidden: 8,
            depth: 2,
        },
    ),
];

pub fn list_parametrizations() -> Vec<&'static str> {
    PARAMETRIZATIONS.iter().map(|(n, _)| *n).collect()
}

impl Parametrization {
    pub fn parse(name: &str) -> Result<Self> {
        PARAMETRIZATIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown parametrization '{name}' (valid: {})",
                    list_parametrizations().join(", ")
                ))
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Parametrization::Light => "light",
            Parametrization::Difflogic => "difflogic",
            Parametrization::Warp => "warp",
            Parametrization::Linear => "linear",
            Parametrization::PolyLut { .. } => "polylut",
            Parametrization::Dwn => "dwn",
            Parametrization::NeuraLut { .. } => "neurallut",
        }
    }

    /// The name with its options, for people: `polylut(degree 3)`.
    pub fn label(self) -> String {
        match self {
            Parametrization::PolyLut { degree } => format!("polylut(degree {degree})"),
            Parametrization::NeuraLut { hidden, depth } => {
                format!("neurallut(hidden {hidden}, depth {depth})")
            }
            p => p.name().to_string(),
        }
    }

    /// The LUT ranks this parametrization supports.
    pub fn ranks(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Parametrization::Difflogic => 2..=2,
            _ => 1..=MAX_RANK,
        }
    }

    pub fn check_rank(self, rank: usize) -> Result<()> {
        if let Parametrization::PolyLut { degree } = self {
            if degree == 0 || degree as usize > MAX_RANK {
                return Err(Error::invalid(format!(
                    "polylut degree {degree} is out of range (valid: 1..={MAX_RANK})"
                )));
            }
        }
        if let Parametrization::NeuraLut { hidden, depth } = self {
            if hidden == 0 || hidden as usize > neurallut::MAX_HIDDEN {
                return Err(Error::invalid(format!(
                    "neurallut hidden width {hidden} is out of range (valid: 1..={})",
                    neurallut::MAX_HIDDEN
                )));
            }
            if depth == 0 || depth as usize > neurallut::MAX_DEPTH {
                return Err(Error::invalid(format!(
                    "neurallut depth {depth} is out of range (valid: 1..={})",
                    neurallut::MAX_DEPTH
                )));
            }
        }
        let r = self.ranks();
        if r.contains(&rank) {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "lut_rank {rank} is not supported by parametrization '{}' (valid: {}..={})",
                self.name(),
                r.start(),
                r.end()
            )))
        }
    }

    pub fn weights_per_neuron(self, rank: usize) -> usize {
        match self {
            Parametrization::Difflogic => 16,
            Parametrization::Linear => rank + 1,
            Parametrization::PolyLut { degree } => polylut::weights(rank, degree as usize),
            Parametrization::NeuraLut { hidden, depth } => {
                neurallut::weights(rank, hidden as usize, depth as usize)
            }
            _ => 1 << rank,
        }
    }

    /// True for parametrizations evaluated by the multilinear kernel (all but `dwn`, which
    /// reads its table at binarised inputs).
    pub fn multilinear(self) -> bool {
        self != Parametrization::Dwn
    }

    /// True when the relaxed output is a sigmoid of the folded polynomial.
    pub fn sigmoid_output(self) -> bool {
        matches!(
            self,
            Parametrization::Warp
                | Parametrization::Linear
                | Parametrization::PolyLut { .. }
                | Parametrization::NeuraLut { .. }
        )
    }

    /// Initial weights of one neuron.
    pub fn init(self, rank: usize, init: WeightInit, tau: f32, rng: &mut Rng, w: &mut [f32]) {
        match self {
            Parametrization::Light => light::init(rank, init, tau, rng, w),
            Parametrization::Difflogic => difflogic::init(init, tau, rng, w),
            Parametrization::Warp => warp::init(rank, init, tau, rng, w),
            Parametrization::Linear => linear::init(rank, init, tau, rng, w),
            Parametrization::PolyLut { degree } => {
                polylut::init(rank, degree as usize, init, tau, rng, w)
            }
            Parametrization::Dwn => dwn::init(rank, init, rng, w),
            Parametrization::NeuraLut { hidden, depth } => {
                neurallut::init(rank, hidden as usize, depth as usize, init, tau, rng, w)
            }
        }
    }

    #[inline(always)]
    /// Folds one neuron's weights into its 2^rank coefficients. `hard` gives the discrete LUT
    /// (as 0/1 coefficients, identity activation) used by straight-through sampling.
    pub fn fold(self, rank: usize, w: &[f32], tau: f32, hard: bool, a: &mut [f32]) {
        match self {
            Parametrization::Light => light::fold(w, tau, hard, a),
            Parametrization::Difflogic => difflogic::fold(w, tau, hard, a),
            Parametrization::Warp => warp::fold(rank, w, tau, hard, a),
            Parametrization::Linear => linear::fold(rank, w, tau, hard, a),
            Parametrization::PolyLut { degree } => {
                polylut::fold(rank, degree as usize, w, tau, hard, a)
            }
            Parametrization::Dwn => dwn::fold(w, hard, a),
            Parametrization::NeuraLut { hidden, depth } => {
                neurallut::fold(rank, hidden as usize, depth as usize, w, tau, hard, a)
            }
        }
    }

    #[inline(always)]
    /// `dw += ∂a/∂w · da` for the soft fold.
    pub fn unfold_grad(self, rank: usize, w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
        match self {
            Parametrization::Light => light::unfold_grad(w, tau, da, dw),
            Parametrization::Difflogic => difflogic::unfold_grad(w, tau, da, dw),
            Parametrization::Warp => warp::unfold_grad(rank, tau, da, dw),
            Parametrization::Linear => linear::unfold_grad(rank, tau, da, dw),
            Parametrization::PolyLut { degree } => {
                polylut::unfold_grad(rank, degree as usize, tau, da, dw)
            }
            Parametrization::Dwn => dwn::unfold_grad(da, dw),
            Parametrization::NeuraLut { hidden, depth } => {
                neurallut::unfold_grad(rank, hidden as usize, depth as usize, w, tau, da, dw)
            }
        }
    }

    /// [`fold`](Self::fold) over a run of consecutive neurons (`w` `[n][wpn]`, `a`
    /// `[n][2^rank]`), vectorised where the parametrization allows: light and dwn fold each
    /// weight on its own, so the run is one flat slice; difflogic folds 16 neurons side by
    /// side, transposing with `S` (the lanes of the instruction set the caller runs at). The
    /// coefficients are bit for bit those of one neuron at a time.
    #[inline(always)]
    #[rustfmt::skip]
    pub fn fold_run<S: Lanes>(self, rank: usize, w: &[f32], wpn: usize, tau: f32, hard: bool, a: &mut [f32]) {
        match self {
            Parametrization::Light | Parametrization::Dwn => self.fold(rank, w, tau, hard, a),
            Parametrization::Difflogic if !hard => difflogic::fold_run::<S>(w, tau, a),
            _ => {
                for (a, w) in a.chunks_mut(1 << rank).zip(w.chunks(wpn)) {
                    self.fold(rank, w, tau, hard, a);
                }
            }
        }
    }

    /// [`unfold_grad`](Self::unfold_grad) over a run of neurons, vectorised as in `fold_run`.
    #[inline(always)]
    pub fn unfold_run<S: Lanes>(
        self,
        rank: usize,
        w: &[f32],
        wpn: usize,
        tau: f32,
        da: &[f32],
        dw: &mut [f32],
    ) {
        match self {
            Parametrization::Light | Parametrization::Dwn => self.unfold_grad(rank, w, tau, da, dw),
            Parametrization::Difflogic => difflogic::unfold_run::<S>(w, tau, da, dw),
            _ => {
                let runs = dw
                    .chunks_mut(wpn)
                    .zip(w.chunks(wpn))
                    .zip(da.chunks(1 << rank));
                for ((dw, w), da) in runs {
                    self.unfold_grad(rank, w, tau, da, dw);
                }
            }
        }
    }

    /// [`unfold_run`](Self::unfold_run) into a zeroed gradient, handing each neuron's row of
    /// 16 gradients to `apply` with its index in the run and its row of `w` as soon as it is
    /// computed; the logits are read at `at`, or at `w` where it is `None`. Difflogic only,
    /// whose unfold computes a whole row of weight gradients in vector lanes: for the others
    /// it returns false and touches nothing.
    #[inline(always)]
    pub fn unfold_run_each<S: Lanes>(
        self,
        at: Option<&[f32]>,
        w: &mut [f32],
        tau: f32,
        da: &[f32],
        apply: impl FnMut(usize, &mut [f32], S::V),
    ) -> bool {
        if self != Parametrization::Difflogic {
            return false;
        }
        difflogic::unfold_run_each::<S>(at, w, tau, da, apply);
        true
    }

    /// The discrete truth table (MSB order, 0/1 per address) of one neuron.
    pub fn lut(self, rank: usize, w: &[f32], tau: f32, lut: &mut [u8]) {
        let mut a = vec![0f32; 1 << rank];
        self.fold(rank, w, tau, true, &mut a);
        for (l, &v) in lut.iter_mut().zip(&a) {
            *l = (v > 0.5) as u8;
        }
    }

    /// Plain f64 reference of the relaxed output, written from the formulas (not from the fold);
    /// the fast kernels are tested against it.
    pub fn reference_forward(self, rank: usize, w: &[f64], tau: f64, x: &[f64]) -> f64 {
        match self {
            Parametrization::Light => light::reference(rank, w, tau, x),
            Parametrization::Difflogic => difflogic::reference(w, tau, x),
            Parametrization::Warp => warp::reference(rank, w, tau, x),
            Parametrization::Linear => linear::reference(rank, w, tau, x),
            Parametrization::PolyLut { degree } => {
                polylut::reference(rank, degree as usize, w, tau, x)
            }
            Parametrization::Dwn => dwn::reference(rank, w, x),
            Parametrization::NeuraLut { hidden, depth } => {
                neurallut::reference(rank, hidden as usize, depth as usize, w, tau, x)
            }
        }
    }
}

/// Largest LUT rank supported.
pub const MAX_RANK: usize = 6;

pub(crate) fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

/// φ_k(x) in MSB order, f64, for the references.
pub(crate) fn basis(rank: usize, k: usize, x: &[f64]) -> f64 {
    (0..rank)
        .map(|j| {
            if (k >> (rank - 1 - j)) & 1 == 1 {
                x[j]
            } else {
                1.0 - x[j]
            }
        })
        .product()
}
