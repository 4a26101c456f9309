//! Shared helpers for the integration tests.
#![allow(dead_code)]

use bitlogic::encoder::{Encoder, EncoderKind};
use bitlogic::io::idx::{load_idx_dir, Split};
use bitlogic::io::Dataset;
use bitlogic::{Model, ModelConfig};
use std::path::PathBuf;

pub fn mnist_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist"))
}

pub fn mnist(split: Split, n: usize) -> Dataset {
    load_idx_dir(&mnist_dir(), split)
        .expect("shipped MNIST")
        .head(n)
}

/// A random model on a thermometer encoder fitted to `[0, 255]`-valued data.
pub fn random_model(features: usize, cfg: ModelConfig) -> Model {
    let mut enc = Encoder::new(EncoderKind::Thermometer, cfg.encoder_bits, false).unwrap();
    let x: Vec<f32> = (0..features * 2)
        .map(|i| if i < features { 0.0 } else { 255.0 })
        .collect();
    enc.fit(&x, 2, features).unwrap();
    Model::new(cfg, enc).unwrap()
}
