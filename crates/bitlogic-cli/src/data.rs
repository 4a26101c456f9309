//! Where the CLI's data comes from: the shipped MNIST copy, any IDX folder, or CSV files.

use crate::settings::TrainArgs;
use anyhow::{bail, Context, Result};
use bitlogic::io::csv::{load_csv_train, load_csv_with_schema, CsvOptions, CsvSchema};
use bitlogic::io::idx::{load_idx_dir, Split};
use bitlogic::io::Dataset;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Metadata key of the CSV schema inside a model file.
pub const CSV_SCHEMA_KEY: &str = "csv_schema";

pub struct Splits {
    pub train: Dataset,
    pub test: Dataset,
    pub csv_schema: Option<CsvSchema>,
    /// What was loaded, for logs and metrics.
    pub source: String,
}

/// `data/mnist` under the working directory, else the copy in this source tree.
pub fn default_mnist_dir() -> PathBuf {
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

pub fn load_for_training(args: &TrainArgs) -> Result<Splits> {
    match (&args.train_csv, &args.test_csv) {
        (Some(train), Some(test)) => {
            if args.data.is_some() {
                bail!("--data and --train-csv cannot be used together");
            }
            let Some(label) = &args.label_column else {
                bail!("--train-csv needs --label-column NAME (a header name, or an index for header-less files)");
            };
            let opts = CsvOptions {
                has_header: !args.no_header.unwrap_or(false),
                delimiter: None,
                label_column: label.clone(),
            };
            let (train_set, schema) = load_csv_train(train, &opts)?;
            let test_set = load_csv_with_schema(test, &schema)?;
            Ok(Splits {
                train: train_set,
                test: test_set,
                csv_schema: Some(schema),
                source: format!("csv {} / {}", train.display(), test.display()),
            })
        }
        (Some(_), None) | (None, Some(_)) => bail!("--train-csv and --test-csv go together"),
        (None, None) => {
            let dir = args.data.clone().unwrap_or_else(default_mnist_dir);
            let train = load_idx_dir(&dir, Split::Train)?;
            let test = load_idx_dir(&dir, Split::Test)?;
            if train.features != test.features {
                bail!(
                    "{}: train images have {} features but test images {}",
                    dir.display(),
                    train.features,
                    test.features
                );
            }
            Ok(Splits {
                train,
                test,
                csv_schema: None,
                source: format!("idx {}", dir.display()),
            })
        }
    }
}

/// The test split for `eval`: a CSV file (read with the schema saved in the model), or an
/// IDX folder (default: the shipped MNIST copy).
pub fn load_test(
    data: Option<&Path>,
    test_csv: Option<&Path>,
    extra: &BTreeMap<String, String>,
) -> Result<Dataset> {
    let schema = match extra.get(CSV_SCHEMA_KEY) {
        Some(s) => Some(
            serde_json::from_str::<CsvSchema>(s).context("the model's CSV schema is corrupted")?,
        ),
        None => None,
    };
    match (test_csv, schema) {
        (Some(path), Some(schema)) => Ok(load_csv_with_schema(path, &schema)?),
        (Some(_), None) => bail!(
            "this model was trained on image (IDX) data; use --data DIR instead of --test-csv"
        ),
        (None, Some(_)) => {
            bail!("this model was trained on CSV data; pass the test file with --test-csv FILE")
        }
        (None, None) => {
            let dir = data
                .map(Path::to_path_buf)
                .unwrap_or_else(default_mnist_dir);
            Ok(load_idx_dir(&dir, Split::Test)?)
        }
    }
}
