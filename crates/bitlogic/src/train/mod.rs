//! Training: loss, optimizers and the trainer that runs fused, multithreaded steps.

mod block_rows;
mod blocks;
mod coef_grads;
pub mod compile;
mod connections;
pub mod loss;
pub mod noise;
pub mod optimizer;
mod pages;
mod params;
mod plan;
pub mod trainer;
mod warm;
mod worker;

pub use compile::{AmpDtype, CompileMode, CompileOptions, Device};
pub use optimizer::{Optimizer, OptimizerKind};
pub use trainer::{
    AutotuneProbe, EpochReport, LrSchedule, Progress, StepTimes, TrainConfig, Trainer,
};
