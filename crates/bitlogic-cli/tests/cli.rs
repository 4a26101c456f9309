//! The `bitlogic` binary as a user runs it: a tiny training run, eval agreeing with it,
//! and one-line errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bitlogic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bitlogic"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run bitlogic")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bitlogic-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Fails with a non-zero exit and exactly one line on stderr that contains every `needle`.
/// Runs `bitlogic` with `args`, which must succeed, and parses its stdout as JSON.
fn json_report(args: &[&str]) -> serde_json::Value {
    let out = bitlogic(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "'{n}' missing from: {err}");
    }
}

#[test]
fn train_then_eval_and_info_agree() {
    let out_dir = tmp("train");
    let out = out_dir.to_str().unwrap();
    let r = bitlogic(&[
        "train",
        "--out",
        out,
        "--width",
        "300",
        "--depth",
        "2",
        "--lut-rank",
        "4",
        "--epochs",
        "3",
        "--batch",
        "64",
        "--lr",
        "0.05",
        "--train-subset",
        "3000",
        "--quiet",
        "true",
        "--threads",
        "2",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("metrics.json")).unwrap())
            .unwrap();
    for key in [
        "test_accuracy",
        "train_accuracy",
        "epochs",
        "train_seconds",
        "train_samples_per_second",
        "parameters",
        "gates",
    ] {
        assert!(metrics.get(key).is_some(), "metrics.json lacks {key}");
    }
    let acc = metrics["test_accuracy"].as_f64().unwrap();
    assert!((0.6..=1.0).contains(&acc), "test accuracy {acc}");
    assert_eq!(metrics["gates"].as_u64(), Some(600));
    let png = std::fs::read(out_dir.join("curves.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");

    let model = out_dir.join("model.safetensors");
    let r = bitlogic(&["eval", "--model", model.to_str().unwrap(), "--json"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(
        eval["accuracy"].as_f64(),
        Some(acc),
        "eval must reproduce training's accuracy"
    );
    assert_eq!(eval["samples"].as_u64(), Some(10_000));

    let r = bitlogic(&["info", "--model", model.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.status.success() && text.contains("gates      600"),
        "{text}"
    );
    std::fs::remove_dir_all(&out_dir).ok();
}

#[test]
fn bad_settings_fail_in_one_line() {
    assert_one_line_error(
        &bitlogic(&["train", "--lut-rank", "9", "--out", "/tmp/x"]),
        &["lut_rank 9", "1..=6"],
    );
    assert_one_line_error(
        &bitlogic(&["train", "--parametrization", "nope", "--out", "/tmp/x"]),
        &["'nope'", "light, difflogic, warp"],
    );
    assert_one_line_error(
        &bitlogic(&["train", "--parametrization", "difflogic", "--lut-rank", "4"]),
        &["difflogic", "2..=2"],
    );
    assert_one_line_error(
        &bitlogic(&["train", "--connections", "wired"]),
        &["'wired'", "random-unique"],
    );
    assert_one_line_error(
        &bitlogic(&["train", "--data", "/nonexistent-dir"]),
        &["/nonexistent-dir"],
    );
}

#[test]
fn missing_and_truncated_model_files_fail_in_one_line() {
    assert_one_line_error(
        &bitlogic(&["eval", "--model", "/nonexistent/model.safetensors"]),
        &["/nonexistent/model.safetensors"],
    );
    let d = tmp("trunc");
    let f = d.join("model.safetensors");
    std::fs::write(&f, b"\x40\x00\x00\x00\x00\x00\x00\x00{\"format\":").unwrap();
    let fs = f.to_str().unwrap();
    assert_one_line_error(
        &bitlogic(&["eval", "--model", fs]),
        &[fs, "truncated or corrupted"],
    );
    assert_one_line_error(&bitlogic(&["info", "--model", fs]), &[fs]);
    std::fs::remove_dir_all(Path::new(&d)).ok();
}

#[test]
fn config_file_and_csv_data() {
    let adult = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/uci/adult"
    ));
    if !adult.is_dir() {
        eprintln!("skipping: {} is absent", adult.display());
        return;
    }
    let d = tmp("csv");
    let cfg = d.join("run.toml");
    // Settings from the file; the flag --epochs overrides the file's value.
    std::fs::write(
        &cfg,
        "width = [400]\ndepth = 2\nlut_rank = 4\nepochs = 9\nbatch = 64\nlr = 0.02\nencoder_bits = 4\ntau = 5.0\nquiet = true\n",
    )
    .unwrap();
    let (train, test) = (adult.join("adult.data"), adult.join("adult.test"));
    let out = d.join("out");
    let r = bitlogic(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--train-csv",
        train.to_str().unwrap(),
        "--test-csv",
        test.to_str().unwrap(),
        "--label-column",
        "14",
        "--no-header",
        "true",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["epochs"].as_u64(), Some(1));
    assert_eq!(metrics["gates"].as_u64(), Some(800));
    // The majority class ("<=50K") is 76.4 % of the test split.
    let acc = metrics["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.79, "adult test accuracy {acc}");
    let model = out.join("model.safetensors");
    let r = bitlogic(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--test-csv",
        test.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(eval["accuracy"].as_f64(), Some(acc));
    // A CSV model needs its CSV test file.
    assert_one_line_error(
        &bitlogic(&["eval", "--model", model.to_str().unwrap()]),
        &["--test-csv"],
    );
    // Unknown keys in a config file are named.
    std::fs::write(&cfg, "widht = 3\n").unwrap();
    assert_one_line_error(
        &bitlogic(&["train", "--config", cfg.to_str().unwrap()]),
        &["widht"],
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn neurallut_fixed_point_and_per_layer_connections_train_and_pack_exactly() {
    let d = tmp("blocks");
    let out = d.join("out");
    let r = bitlogic(&[
        "train",
        "--out",
        out.to_str().unwrap(),
        "--parametrization",
        "neurallut",
        "--neurallut-hidden",
        "4",
        "--neurallut-depth",
        "1",
        "--encoder",
        "fixed-point",
        "--encoder-bits",
        "3",
        "--connections",
        "learnable,fixed",
        "--num-candidates",
        "4",
        "--width",
        "400,200",
        "--lut-rank",
        "4",
        "--epochs",
        "2",
        "--lr-schedule",
        "step:1:0.5",
        "--train-subset",
        "3000",
        "--quiet",
        "true",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let model = out.join("model.safetensors");
    let r = bitlogic(&["info", "--model", model.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    for needle in [
        "fixed-point",
        "784 features → 2352 bits",
        "neurallut(hidden 4, depth 1)",
        "learnable connections",
        "random-unique connections",
    ] {
        assert!(text.contains(needle), "'{needle}' missing from: {text}");
    }
    let r = bitlogic(&["eval", "--model", model.to_str().unwrap(), "--json"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(eval["mismatches"].as_u64(), Some(0), "{eval}");
    assert!(eval["accuracy"].as_f64().unwrap() > 0.6, "{eval}");

    assert_one_line_error(
        &bitlogic(&["train", "--connections", "learnable,fixed,fixed"]),
        &["3 layers", "has 2"],
    );
    assert_one_line_error(
        &bitlogic(&["train", "--neurallut-depth", "2"]),
        &["neurallut only", "light"],
    );
    assert_one_line_error(
        &bitlogic(&["train", "--lr-schedule", "step:0:0.1"]),
        &["EVERY >= 1"],
    );
    std::fs::remove_dir_all(&d).ok();
}

/// `bench train` on a model small enough for a test: 64 → 2 × 160, batch 32, one thread.
/// No time budget: exactly 3 warm-up steps and 2 timed ones.
const SMALL_BENCH: [&str; 18] = [
    "bench",
    "train",
    "--in-dim",
    "64",
    "--width",
    "160",
    "--depth",
    "2",
    "--batch",
    "32",
    "--threads",
    "1",
    "--steps",
    "2",
    "--seconds",
    "0",
    "--warmup-seconds",
    "0",
];

#[test]
fn bench_train_reports_the_amp_precision_and_phases_and_refuses_unknown_amp() {
    for (amp, precision) in [("bf16", "bf16"), ("f16", "f16"), ("none", "f32")] {
        let report = json_report(&[&SMALL_BENCH[..], &["--amp", amp, "--json"]].concat());
        assert_eq!(report["precision"], precision);
        assert!(report["samples_per_second"].as_f64().unwrap() > 0.0);
        for phase in ["fold", "blocks", "update"] {
            let ms = report["phases_ms"][phase].as_f64().unwrap();
            assert!(ms > 0.0, "{phase}: {ms} ms");
        }
        assert_eq!(report["baseline_interleaved"], false);
    }
    assert_one_line_error(
        &bitlogic(&["bench", "train", "--amp", "fp8"]),
        &["'fp8'", "none, bf16, f16"],
    );
}

#[test]
fn bench_train_takes_listed_widths_and_learnable_connections() {
    let report = json_report(&[
        "bench",
        "train",
        "--in-dim",
        "64",
        "--width",
        "160,100",
        "--lut-rank",
        "3",
        "--connections",
        "learnable",
        "--num-candidates",
        "4",
        "--connection-grad",
        "linear",
        "--batch",
        "32",
        "--threads",
        "1",
        "--steps",
        "2",
        "--seconds",
        "0",
        "--warmup-seconds",
        "0",
        "--no-baseline",
        "--json",
    ]);
    let model = report["model"].as_str().unwrap();
    assert!(
        model.contains("[160, 100]")
            && model.contains("learnable connections (4 candidates, linear)"),
        "{model}"
    );
    assert!(report["samples_per_second"].as_f64().unwrap() > 0.0);
    assert_one_line_error(
        &bitlogic(&[&SMALL_BENCH[..], &["--connections", "nope"]].concat()),
        &["'nope'", "fixed, random-unique, random, learnable"],
    );
    assert_one_line_error(
        &bitlogic(&["bench", "train", "--width", "160,0"]),
        &["--width", "[160, 0]"],
    );
}

#[test]
fn bench_train_times_steps_for_its_budget_and_reports_the_counts() {
    let report = json_report(&[&SMALL_BENCH[..], &["--no-baseline", "--json"]].concat());
    assert_eq!(report["warmup_steps"], 3, "{report}");
    assert_eq!(report["timed_steps"], 2, "{report}");
    // A budget far longer than two steps of this model: the steps go on until it is spent.
    let args = [
        &SMALL_BENCH[..14],
        &["--seconds", "0.3", "--no-baseline", "--json"],
    ]
    .concat();
    let report = json_report(&args);
    let timed = report["timed_steps"].as_u64().unwrap();
    let seconds = report["timed_seconds"].as_f64().unwrap();
    // The budget is wall time; the steps' own times add up to nearly all of it.
    assert!(timed > 2 && seconds > 0.9 * 0.3, "{report}");
    assert!(report["warmup_steps"].as_u64().unwrap() > 3, "{report}");
    let q = &report["step_quartiles_seconds"];
    let (q1, q3) = (q[0].as_f64().unwrap(), q[1].as_f64().unwrap());
    let median = report["median_step_seconds"].as_f64().unwrap();
    assert!(q1 <= median && median <= q3, "{report}");
    // Interleaved, each configuration gets the budget: the rounds run for both.
    let args = [
        &SMALL_BENCH[..14],
        &["--seconds", "0.2", "--interleave", "--json"],
    ]
    .concat();
    let report = json_report(&args);
    assert!(report["timed_seconds"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["timed_steps"].as_u64().unwrap() > 2, "{report}");
    assert_one_line_error(
        &bitlogic(&[&SMALL_BENCH[..14], &["--seconds=-1"]].concat()),
        &["--seconds", "-1"],
    );
    assert_one_line_error(
        &bitlogic(&[&SMALL_BENCH[..14], &["--warmup-seconds", "NaN"]].concat()),
        &["--warmup-seconds", "NaN"],
    );
}

#[test]
fn bench_train_interleaves_the_baseline_when_asked() {
    let args = SMALL_BENCH;
    let report = json_report(&[&args[..], &["--interleave", "--json"]].concat());
    assert_eq!(report["baseline_interleaved"], true);
    let (c, e) = (
        report["samples_per_second"].as_f64().unwrap(),
        report["eager_samples_per_second"].as_f64().unwrap(),
    );
    let x = report["speedup_over_eager"].as_f64().unwrap();
    assert!(
        c > 0.0 && e > 0.0 && (x - c / e).abs() < 1e-9 * x,
        "{report}"
    );
    assert_one_line_error(
        &bitlogic(&[&args[..], &["--interleave", "--no-baseline"]].concat()),
        &["--interleave", "--no-baseline"],
    );
}

#[test]
fn max_autotune_logs_every_probe_and_reports_its_choice() {
    let report = json_report(&[
        "bench",
        "train",
        "--in-dim",
        "64",
        "--width",
        "160",
        "--depth",
        "2",
        "--batch",
        "64",
        "--threads",
        "2",
        "--steps",
        "2",
        "--seconds",
        "0",
        "--warmup-seconds",
        "0",
        "--mode",
        "max-autotune",
        "--no-baseline",
        "--json",
    ]);
    let probes = report["autotune"].as_array().unwrap();
    assert!(probes.len() >= 2, "{report}");
    let fastest = probes
        .iter()
        .min_by(|a, b| {
            let s = |p: &serde_json::Value| p["seconds"].as_f64().unwrap();
            s(a).total_cmp(&s(b))
        })
        .unwrap();
    let choice = &report["autotune_choice"];
    assert_eq!(choice, fastest);
    for key in ["block", "simd", "threads"] {
        assert_eq!(report[key], choice[key], "{key} in {report}");
    }

    let out_dir = tmp("autotune");
    let r = bitlogic(&[
        "train",
        "--out",
        out_dir.to_str().unwrap(),
        "--width",
        "100",
        "--depth",
        "1",
        "--epochs",
        "1",
        "--batch",
        "64",
        "--train-subset",
        "256",
        "--quiet",
        "true",
        "--threads",
        "2",
        "--compile-mode",
        "max-autotune",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("autotune: "))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("metrics.json")).unwrap())
            .unwrap();
    let choice = &metrics["autotune"]["choice"];
    assert!(metrics["autotune"]["probes"].as_array().unwrap().len() >= 2);
    assert!(
        lines[0].starts_with(&format!("autotune: block {}, ", choice["block"])),
        "{} vs {choice}",
        lines[0]
    );
    assert_eq!(metrics["threads"], choice["threads"]);
    assert_eq!(metrics["simd"], choice["simd"]);
    std::fs::remove_dir_all(&out_dir).ok();
}
