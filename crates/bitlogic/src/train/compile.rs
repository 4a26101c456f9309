//! Compile options: the Rust counterpart of BitLogic's `compile_model` (SPEC §2).
//!
//! | mode | here |
//! | --- | --- |
//! | `reduce-overhead` (default, `true`) | every buffer planned once for the batch size; a step allocates nothing |
//! | `default` | the same plan (there is no graph capture on the CPU to leave out) |
//! | `max-autotune`, `max-autotune-no-cudagraphs` | the plan, plus the block size timed on the first batch and the fastest kept |
//! | `false` | no plan: buffers are made afresh for every step (the eager baseline) |
//!
//! `dynamic` lets the batch size vary between steps (the plan grows instead of refusing a
//! larger batch). `amp_dtype` selects the storage type of activations; only `none` (f32) is
//! implemented on the CPU trainer so far, and asking for another is an error, not a silent
//! fallback. `device` is `cpu`; `cuda` needs a build with the CUDA crate.

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
        if self.amp_dtype != AmpDtype::None {
            return Err(Error::invalid(format!(
                "amp_dtype {:?} is not implemented on the CPU trainer yet (valid here: none)",
                self.amp_dtype
            )));
        }
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
        let o = CompileOptions {
            amp_dtype: AmpDtype::Bf16,
            ..CompileOptions::default()
        };
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("valid here: none"));
    }
}
