//! Compile options: the Rust counterpart of BitLogic's `compile_model` (SPEC §2).
//!
//! | mode | here |
//! | --- | --- |
//! | `reduce-overhead` (default, `true`) | every buffer planned once for the batch size; a step allocates nothing |
//! | `default` | the same plan (there is no graph capture on the CPU to leave out) |
//! | `max-autotune`, `max-autotune-no-cudagraphs` | the plan, plus on the first batch every block size (16, 32, 64, 128, up to the batch) × SIMD level of the block kernels (the trainer's, and AVX2 where that is AVX-512) × thread count (the configured one, and half of it) timed on probe trainers and copies of the model (one warm-up step, median of 3); the fastest is kept for the run, its threads included, and every probe is recorded (`Trainer::autotune`, `autotune_choice`; `bitlogic train` prints the choice and writes it to metrics.json) |
//! | `false` | no plan: buffers are made afresh for every step (the eager baseline) |
//!
//! `dynamic` lets the batch size vary between steps (the plan grows instead of refusing a
//! larger batch). `amp_dtype` selects the storage type of activations and their gradients:
//! `none` (f32), `bf16` or `f16`, each 16-bit value widened to f32 for arithmetic and rounded
//! to nearest when stored (see `layer::act`). Weights, coefficient and parameter
//! gradients, every sum and the optimizer stay f32; f16 scales the loss gradient up to
//! per-sample size (by a power of two, undone exactly in f32) so that small gradients do not
//! flush to zero. Evaluation (hard LUTs) is unaffected.
//! `device` is `cpu`; `cuda` needs a build with the CUDA crate.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompileMode {
    Default,
    ReduceOverhead,
    MaxAutotune,
    MaxAutotuneNoCudagraphs,
    /// `false`: no compilation.
    Eager,
}

const MODES: &str =
    "default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs, true, false";

impl CompileMode {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "default" => CompileMode::Default,
            "reduce-overhead" | "true" => CompileMode::ReduceOverhead,
            "max-autotune" => CompileMode::MaxAutotune,
            "max-autotune-no-cudagraphs" => CompileMode::MaxAutotuneNoCudagraphs,
            "false" => CompileMode::Eager,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown compile mode '{s}' (valid: {MODES})"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CompileMode::Default => "default",
            CompileMode::ReduceOverhead => "reduce-overhead",
            CompileMode::MaxAutotune => "max-autotune",
            CompileMode::MaxAutotuneNoCudagraphs => "max-autotune-no-cudagraphs",
            CompileMode::Eager => "false",
        }
    }

    pub fn planned(self) -> bool {
        self != CompileMode::Eager
    }

    pub fn autotune(self) -> bool {
        matches!(
            self,
            CompileMode::MaxAutotune | CompileMode::MaxAutotuneNoCudagraphs
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AmpDtype {
    None,
    Bf16,
    F16,
}

impl AmpDtype {
    /// The storage type's name: `f32`, `bf16` or `f16`.
    pub fn precision(self) -> &'static str {
        match self {
            AmpDtype::None => "f32",
            AmpDtype::Bf16 => "bf16",
            AmpDtype::F16 => "f16",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" | "f32" => Ok(AmpDtype::None),
            "bf16" => Ok(AmpDtype::Bf16),
            "f16" => Ok(AmpDtype::F16),
            _ => Err(Error::invalid(format!(
                "unknown amp_dtype '{s}' (valid: none, bf16, f16)"
            ))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Device {
    Cpu,
    Cuda,
}

impl Device {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            _ => Err(Error::invalid(format!(
                "unknown device '{s}' (valid: cpu, cuda)"
            ))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompileOptions {
    pub mode: CompileMode,
    pub dynamic: bool,
    pub amp_dtype: AmpDtype,
    /// Inferred from the model when absent (always the CPU for now).
    pub device: Option<Device>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            mode: CompileMode::ReduceOverhead,
            dynamic: false,
            amp_dtype: AmpDtype::None,
            device: None,
        }
    }
}

impl CompileOptions {
    /// Refuses what this build cannot do, naming what it can.
    pub fn validate(&self) -> Result<()> {
        if self.device == Some(Device::Cuda) {
            return Err(Error::invalid(
                "device cuda: this build has no CUDA support (valid here: cpu)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_errors_list_the_valid_ones() {
        assert_eq!(
            CompileMode::parse("true").unwrap(),
            CompileMode::ReduceOverhead
        );
        assert_eq!(CompileMode::parse("false").unwrap(), CompileMode::Eager);
        assert!(CompileMode::parse("max-autotune").unwrap().autotune());
        let e = CompileMode::parse("fast").unwrap_err().to_string();
        assert!(
            e.contains("'fast'") && e.contains("max-autotune-no-cudagraphs"),
            "{e}"
        );
    }

    #[test]
    fn every_amp_dtype_is_accepted_and_unknown_ones_name_the_valid_ones() {
        for (name, amp, precision) in [
            ("none", AmpDtype::None, "f32"),
            ("f32", AmpDtype::None, "f32"),
            ("bf16", AmpDtype::Bf16, "bf16"),
            ("f16", AmpDtype::F16, "f16"),
        ] {
            assert_eq!(AmpDtype::parse(name).unwrap(), amp);
            assert_eq!(amp.precision(), precision);
            let o = CompileOptions {
                amp_dtype: amp,
                ..CompileOptions::default()
            };
            o.validate().unwrap();
        }
        let e = AmpDtype::parse("fp8").unwrap_err().to_string();
        assert!(e.contains("'fp8'") && e.contains("none, bf16, f16"), "{e}");
    }
}
