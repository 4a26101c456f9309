//! `bitlogic eval`: test accuracy of a saved model (eval mode: hard LUTs, integer head).

use crate::data;
use anyhow::Result;
use bitlogic::io::model_file;
use bitlogic::packed::compare;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// Model file written by `bitlogic train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Folder in MNIST's IDX layout (default: the shipped MNIST copy).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Test CSV file, for models trained on CSV data.
    #[arg(long)]
    pub test_csv: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let loaded = model_file::load(&args.model)?;
    let model = loaded.model;
    let test = data::load_test(
        args.data.as_deref(),
        args.test_csv.as_deref(),
        &loaded.extra,
    )?;
    if test.features != model.input_features() {
        anyhow::bail!(
            "the model reads {} input features but the test data has {}",
            model.input_features(),
            test.features
        );
    }
    let bits = model.encoder.encode(&test.x, test.n)?;
    // The eval forward (hard LUT lookups) and the bit-packed engine, side by side.
    let c = compare(&model, &bits, &test.y, test.n)?;
    if args.json {
        println!(
            "{}",
            json!({
                "accuracy": c.accuracy,
                "packed_accuracy": c.packed_accuracy,
                "mismatches": c.mismatches,
                "samples": test.n,
            })
        );
    } else {
        println!(
            "accuracy {:.4} on {} samples (packed engine {:.4}, {} mismatching samples)",
            c.accuracy, test.n, c.packed_accuracy, c.mismatches
        );
    }
    Ok(())
}
