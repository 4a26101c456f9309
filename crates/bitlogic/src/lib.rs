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
pub mod head;
pub mod io;
pub mod layer;
pub mod model;
pub mod packed;
pub mod rng;
pub mod train;

pub use error::{Error, Result};
pub use model::{Model, ModelConfig};
