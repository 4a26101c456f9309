//! `bitlogic train`: fit the encoder, train, then write the model, metrics and curves.

use crate::data::{self, CSV_SCHEMA_KEY};
use crate::plot::{write_curves, CurvePoint};
use crate::settings::{resolve, TrainArgs};
use anyhow::{bail, Context, Result};
use bitlogic::io::augment::shift_images;
use bitlogic::io::model_file;
use bitlogic::train::trainer::EncodedSet;
use bitlogic::train::{AutotuneProbe, Progress, Trainer};
use bitlogic::FeedForward;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

pub fn run(args: TrainArgs) -> Result<()> {
    let wall = Instant::now();
    let r = resolve(args)?;
    let quiet = r.args.quiet.unwrap_or(false);
    let mut splits = data::load_for_training(&r.args)?;
    if let Some(n) = r.args.train_subset {
        if n == 0 {
            bail!("--train-subset must be at least 1");
        }
        splits.train = splits.train.head(n);
    }
    let mut model_cfg = r.model.clone();
    // Tabular columns have unrelated scales: unless told otherwise, fit thresholds per column.
    if splits.csv_schema.is_some() && r.args.encoder_per_feature.is_none() {
        model_cfg.encoder_per_feature = true;
    }
    model_cfg.classes = splits.train.classes.max(splits.test.classes);
    let (train, test) = (&splits.train, &splits.test);

    let mut model = FeedForward::from_config(model_cfg).build(&train.x, train.n, train.features)?;
    let train_bits = model.encoder.encode(&train.x, train.n)?;
    let test_bits = model.encoder.encode(&test.x, test.n)?;
    let dim = model.encoder.output_dim();
    let train_set = EncodedSet {
        n: train.n,
        dim,
        bits: &train_bits,
        labels: &train.y,
    };
    let test_set = EncodedSet {
        n: test.n,
        dim,
        bits: &test_bits,
        labels: &test.y,
    };

    std::fs::create_dir_all(&r.out)
        .with_context(|| format!("cannot create output directory {}", r.out.display()))?;
    let mut trainer = Trainer::new(&model, r.train.clone())?;
    eprintln!(
        "bitlogic: {} → {} bits → {:?} (rank {}, {}) → {} | {} train / {} test | {} epochs, batch {}, lr {}, {} threads, {} SIMD",
        splits.source,
        dim,
        model.config.widths,
        model.config.lut_rank,
        model.config.parametrization.label(),
        model.head.label(),
        train.n,
        test.n,
        r.train.epochs,
        r.train.batch,
        r.train.lr,
        trainer.threads(),
        bitlogic::layer::simd::simd_level().name(),
    );

    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(train.n as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} {per_sec} {msg}")
            .map_err(|e| anyhow::anyhow!("progress bar template: {e}"))?
            .progress_chars("=> "),
    );
    let epochs = r.train.epochs;
    let mut on_progress = |p: Progress| match p {
        Progress::Autotuned { probes, choice } => {
            let line = autotune_line(choice, probes.len());
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
        Progress::Batch {
            epoch,
            done,
            loss,
            accuracy,
            ..
        } => {
            if done == 0 || bar.position() == 0 {
                bar.set_prefix(format!("{epoch}/{epochs}"));
            }
            bar.set_position(done as u64);
            bar.set_message(format!("loss {loss:.4} acc {:.2}%", accuracy * 100.0));
        }
        Progress::Epoch(e) => {
            let line = format!(
                "epoch {:>3}/{epochs}: loss {:.4}  train acc {:.2}%  test acc {}  {:.1} s  {:.0} samples/s",
                e.epoch,
                e.train_loss,
                e.train_accuracy * 100.0,
                e.test_accuracy.map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
                e.seconds,
                e.samples_per_second
            );
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
            bar.reset();
        }
    };
    let shift = r.args.augment_shift.unwrap_or(0);
    let shape = train.image_shape;
    if shift > 0 && shape.is_none() {
        bail!("--augment-shift needs image data (IDX images); this data set has no image shape");
    }
    let mut reports = Vec::with_capacity(epochs);
    for epoch in 1..=epochs {
        let report = match shape.filter(|_| shift > 0) {
            Some(hw) => {
                let x = shift_images(&train.x, train.n, hw, shift, r.train.seed, epoch as u64)?;
                let bits = model.encoder.encode(&x, train.n)?;
                let set = EncodedSet {
                    bits: &bits,
                    ..train_set
                };
                trainer.fit_epoch(&mut model, set, Some(test_set), epoch, &mut on_progress)?
            }
            None => trainer.fit_epoch(
                &mut model,
                train_set,
                Some(test_set),
                epoch,
                &mut on_progress,
            )?,
        };
        reports.push(report);
    }
    bar.finish_and_clear();

    let train_seconds: f64 = reports.iter().map(|e| e.seconds).sum();
    let samples = train.n as f64 * reports.len() as f64;
    let test_accuracy = trainer.evaluate(&model, test_set)?;
    let train_accuracy = trainer.evaluate(&model, train_set)?;

    let mut extra = BTreeMap::new();
    if let Some(schema) = &splits.csv_schema {
        extra.insert(CSV_SCHEMA_KEY.to_string(), serde_json::to_string(schema)?);
    }
    extra.insert("train_config".to_string(), serde_json::to_string(&r.train)?);
    let model_path = r.out.join("model.safetensors");
    model_file::save(&model, &model_path, &extra)?;
    let model_bytes = std::fs::metadata(&model_path).map(|m| m.len()).unwrap_or(0);

    let points: Vec<CurvePoint> = reports
        .iter()
        .map(|e| CurvePoint {
            epoch: e.epoch,
            train_loss: e.train_loss,
            train_accuracy: e.train_accuracy,
            test_accuracy: e.test_accuracy,
        })
        .collect();
    write_curves(&r.out.join("curves.png"), &points, "bitlogic training")?;

    let metrics = json!({
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "epochs": reports.len(),
        "train_seconds": train_seconds,
        "train_samples_per_second": samples / train_seconds.max(1e-9),
        "wall_seconds": wall.elapsed().as_secs_f64(),
        "parameters": model.parameters(),
        "gates": model.gates(),
        "model_bytes": model_bytes,
        "threads": trainer.threads(),
        "simd": trainer.simd().name(),
        "autotune": trainer.autotune.as_ref().map(|probes| json!({
            "choice": trainer.autotune_choice(),
            "probes": probes,
        })),
        "data": splits.source,
        "model_config": model.config,
        "train_config": r.train,
        "history": reports,
    });
    let metrics_path = r.out.join("metrics.json");
    std::fs::write(
        &metrics_path,
        serde_json::to_string_pretty(&metrics)? + "\n",
    )
    .with_context(|| format!("cannot write {}", metrics_path.display()))?;
    eprintln!(
        "test accuracy {:.2}%  train accuracy {:.2}%  ({:.1} s training, {:.0} samples/s, {} gates, {} parameters)\nwrote {}, {} and {}",
        test_accuracy * 100.0,
        train_accuracy * 100.0,
        train_seconds,
        samples / train_seconds.max(1e-9),
        model.gates(),
        model.parameters(),
        model_path.display(),
        metrics_path.display(),
        r.out.join("curves.png").display()
    );
    Ok(())
}

/// E.g. `autotune: block 32, avx512, 2 threads (14.2 ms/step; 16 probes)`.
fn autotune_line(choice: &AutotuneProbe, probes: usize) -> String {
    format!(
        "autotune: block {}, {}, {} thread{} ({:.1} ms/step; {probes} probe{})",
        choice.block,
        choice.simd.name(),
        choice.threads,
        if choice.threads == 1 { "" } else { "s" },
        choice.seconds * 1e3,
        if probes == 1 { "" } else { "s" },
    )
}
