//! Encoders turn real-valued features into bits. They are fitted once on training data and
//! then frozen; their thresholds travel inside the model file.

pub mod fixed_point;
mod thermometer;

pub use thermometer::{Encoder, EncoderKind};
