//! bitlogic: train and deploy lookup-table networks.
//!
//! The pipeline mirrors the folders of this crate:
//! `encoder` (real values → bits) → `layer` (LogicDense: connections × parametrization)
//! → `head` (GroupSum) → `train` (loss, optimizer, trainer) → `packed` (bit-parallel inference)
//! and `io` (datasets and model files).
//!
//! Activations are feature-major: a layer's output is `[feature][batch]`, so every neuron's
//! kernel streams contiguous batch vectors.

pub mod encoder;
pub mod error;
pub mod feedforward;
pub mod head;
pub mod io;
pub mod layer;
pub mod model;
pub mod packed;
pub mod rng;
pub mod train;

pub use error::{Error, Result};

// The README's library example is compiled as a doc test, so it cannot drift from the API.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
pub use feedforward::FeedForward;
pub use model::{Model, ModelConfig};
