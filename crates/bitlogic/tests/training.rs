//! End-to-end training on a slice of the shipped MNIST copy.

mod common;

use bitlogic::encoder::{Encoder, EncoderKind};
use bitlogic::head::{Head, HeadKind};
use bitlogic::io::idx::Split;
use bitlogic::layer::simd::{simd_level, SimdLevel};
use bitlogic::layer::{ConnectionGrad, ConnectionKind, Parametrization};
use bitlogic::rng::Rng;
use bitlogic::train::trainer::EncodedSet;
use bitlogic::train::{AmpDtype, CompileMode, CompileOptions, Progress, TrainConfig, Trainer};
use bitlogic::{Model, ModelConfig};

type Setup = (Model, Trainer, Vec<u8>, Vec<u32>, Vec<u8>, Vec<u32>);

fn setup(threads: usize, seed: u64) -> Setup {
    setup_with(threads, seed, HeadKind::GroupSum, 6000)
}

/// `n` training images, 2000 test images, 2 × 1000 rank-4 light layers and `head`.
fn setup_with(threads: usize, seed: u64, head: HeadKind, n: usize) -> Setup {
    let train = common::mnist(Split::Train, n);
    let test = common::mnist(Split::Test, 2000);
    let mut enc = Encoder::new(EncoderKind::Thermometer, 2, false).unwrap();
    enc.fit(&train.x, train.n, train.features).unwrap();
    let (tb, sb) = (
        enc.encode(&train.x, train.n).unwrap(),
        enc.encode(&test.x, test.n).unwrap(),
    );
    let cfg = ModelConfig {
        widths: vec![1000, 1000],
        lut_rank: 4,
        group_tau: 10.0,
        head,
        seed,
        weight_init: bitlogic::layer::WeightInit::Random,
        ..ModelConfig::default()
    };
    let model = Model::new(cfg, enc).unwrap();
    let trainer = Trainer::new(
        &model,
        TrainConfig {
            epochs: 4,
            batch: 64,
            lr: 0.05,
            threads,
            seed,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    (model, trainer, tb, train.y, sb, test.y)
}

fn set<'a>(dim: usize, bits: &'a [u8], labels: &'a [u32]) -> EncodedSet<'a> {
    EncodedSet {
        n: labels.len(),
        dim,
        bits,
        labels,
    }
}

#[test]
fn learns_mnist_subset() {
    let (mut model, mut trainer, tb, ty, sb, sy) = setup(2, 1);
    let dim = model.encoder.output_dim();
    let (train, test) = (set(dim, &tb, &ty), set(dim, &sb, &sy));
    let reports = trainer
        .fit(&mut model, train, Some(test), &mut |_| {})
        .unwrap();
    let acc = reports.last().unwrap().test_accuracy.unwrap();
    // 6,000 images, 4 epochs, 2 × 1000 rank-4 light, lr 0.05: measured 0.88 on the full test split.
    assert!(acc >= 0.85, "test accuracy {acc}");
    assert!(reports[3].train_loss < reports[0].train_loss);
    // 6,000 samples are enough for `evaluate` to score them with the packed engine (the 2,000
    // test images were scored by the eval forward): the eval forward's accuracy either way.
    assert!(train.n >= bitlogic::train::trainer::PACKED_EVAL_MIN);
    assert!(test.n < bitlogic::train::trainer::PACKED_EVAL_MIN);
    for data in [train, test] {
        let k = model.head.k();
        let scores = model.eval_scores(data.bits, data.n).unwrap();
        let right = scores
            .chunks(k)
            .zip(data.labels)
            .filter(|(c, &y)| bitlogic::head::argmax(c) == y as usize)
            .count();
        let want = right as f64 / data.n as f64;
        assert_eq!(
            trainer.evaluate(&model, data).unwrap(),
            want,
            "{} samples",
            data.n
        );
    }
}

#[test]
fn same_seed_and_threads_give_the_same_model() {
    let run = |threads, seed| {
        let (mut model, mut trainer, tb, ty, ..) = setup(threads, seed);
        let dim = model.encoder.output_dim();
        let train = EncodedSet {
            n: 1000,
            dim,
            bits: &tb[..1000 * dim],
            labels: &ty[..1000],
        };
        for chunk in (0..1000).collect::<Vec<_>>().chunks(64) {
            trainer.step(&mut model, train, chunk).unwrap();
        }
        model
    };
    let a = run(2, 3);
    assert_eq!(a, run(2, 3));
    assert_ne!(a.layers[0].weights, run(2, 4).layers[0].weights);
}

/// The trainer of `setup` with activations stored as `amp`.
fn with_amp(model: &Model, trainer: &Trainer, amp: AmpDtype) -> Trainer {
    let config = TrainConfig {
        compile: CompileOptions {
            amp_dtype: amp,
            ..CompileOptions::default()
        },
        ..trainer.config.clone()
    };
    Trainer::new(model, config).unwrap()
}

#[test]
fn same_seed_threads_and_amp_give_the_same_model() {
    let run = |seed, amp| {
        let (mut model, trainer, tb, ty, ..) = setup(2, seed);
        let mut trainer = with_amp(&model, &trainer, amp);
        let dim = model.encoder.output_dim();
        let train = set(dim, &tb[..640 * dim], &ty[..640]);
        for chunk in (0..640).collect::<Vec<_>>().chunks(64) {
            trainer.step(&mut model, train, chunk).unwrap();
        }
        model
    };
    let a = run(3, AmpDtype::Bf16);
    assert_eq!(a, run(3, AmpDtype::Bf16));
    assert_ne!(
        a.layers[0].weights,
        run(4, AmpDtype::Bf16).layers[0].weights
    );
    // bf16 storage does change the arithmetic's inputs, hence the trained weights.
    assert_ne!(
        a.layers[0].weights,
        run(3, AmpDtype::None).layers[0].weights
    );
    let h = run(3, AmpDtype::F16);
    assert_eq!(h, run(3, AmpDtype::F16));
}

#[test]
fn bf16_and_f16_learn_mnist_subset_like_f32() {
    let accuracy = |amp| {
        let (mut model, trainer, tb, ty, sb, sy) = setup_with(2, 1, HeadKind::GroupSum, 3000);
        let mut trainer = with_amp(&model, &trainer, amp);
        trainer.config.epochs = 3;
        let dim = model.encoder.output_dim();
        let (train, test) = (set(dim, &tb, &ty), set(dim, &sb, &sy));
        let reports = trainer
            .fit(&mut model, train, Some(test), &mut |_| {})
            .unwrap();
        reports.last().unwrap().test_accuracy.unwrap()
    };
    let f32_acc = accuracy(AmpDtype::None);
    for amp in [AmpDtype::Bf16, AmpDtype::F16] {
        let acc = accuracy(amp);
        // 3,000 images, 3 epochs: measured f32 0.7930, bf16 0.7945, f16 0.7930 (eval-mode
        // accuracy on 2,000 test images).
        assert!(
            (acc - f32_acc).abs() <= 0.02,
            "{amp:?}: test accuracy {acc}, f32 {f32_acc}"
        );
    }
}

#[test]
fn gumbel_sampling_is_seeded_and_changes_training() {
    use bitlogic::layer::Sampling;
    let run = |sampling: Sampling, seed: u64| {
        let (mut model, _, tb, ty, ..) = setup(2, 1);
        for l in &mut model.layers {
            l.config.sampling = sampling;
        }
        let mut trainer = Trainer::new(
            &model,
            TrainConfig {
                batch: 64,
                threads: 2,
                seed,
                ..TrainConfig::default()
            },
        )
        .unwrap();
        let dim = model.encoder.output_dim();
        let train = EncodedSet {
            n: 640,
            dim,
            bits: &tb[..640 * dim],
            labels: &ty[..640],
        };
        for chunk in (0..640).collect::<Vec<_>>().chunks(64) {
            trainer.step(&mut model, train, chunk).unwrap();
        }
        model
    };
    let a = run(Sampling::GumbelSoft, 5);
    assert_eq!(a, run(Sampling::GumbelSoft, 5), "same seed, same noise");
    assert_ne!(
        a.layers[0].weights,
        run(Sampling::GumbelSoft, 6).layers[0].weights
    );
    assert_ne!(
        a.layers[0].weights,
        run(Sampling::Soft, 5).layers[0].weights
    );
    let h = run(Sampling::GumbelHard, 5);
    assert!(h
        .layers
        .iter()
        .all(|l| l.weights.iter().all(|w| w.is_finite())));
}

const DSP: HeadKind = HeadKind::GroupedDsp {
    beta: 1.0,
    wbits: 8,
};

#[test]
fn grouped_dsp_head_learns_mnist_subset() {
    let (mut model, mut trainer, tb, ty, sb, sy) = setup_with(2, 1, DSP, 3000);
    trainer.config.epochs = 3;
    let dim = model.encoder.output_dim();
    let (train, test) = (set(dim, &tb, &ty), set(dim, &sb, &sy));
    let w0 = model.head.params().to_vec();
    let reports = trainer
        .fit(&mut model, train, Some(test), &mut |_| {})
        .unwrap();
    let acc = reports.last().unwrap().test_accuracy.unwrap();
    // 3,000 images, 3 epochs, β = 1: measured 0.77 with the integer (8-bit) head (GroupSum on
    // the same setup: 0.79).
    assert!(acc >= 0.70, "test accuracy {acc}");
    assert!(reports[2].train_loss < reports[0].train_loss);
    // W was trained and stayed finite; some off-diagonal entry (index not a multiple of
    // k + 1 = 11) left its initial 0, so the head mixes groups.
    let Head::GroupedDsp(h) = &model.head else {
        panic!("the model lost its GroupedDSP head")
    };
    assert!(h.weights.iter().all(|w| w.is_finite()));
    assert!(h.weights.iter().zip(&w0).any(|(a, b)| a != b));
    assert!(h
        .weights
        .iter()
        .enumerate()
        .any(|(i, &w)| i % 11 != 0 && w != 0.0));
}

#[test]
fn grouped_dsp_training_is_deterministic() {
    let run = |seed| {
        let (mut model, mut trainer, tb, ty, ..) = setup_with(2, seed, DSP, 640);
        let dim = model.encoder.output_dim();
        let train = EncodedSet {
            n: 640,
            dim,
            bits: &tb,
            labels: &ty,
        };
        for chunk in (0..640).collect::<Vec<_>>().chunks(64) {
            trainer.step(&mut model, train, chunk).unwrap();
        }
        model
    };
    let a = run(3);
    assert_eq!(a, run(3));
    assert_ne!(a.head.params(), run(4).head.params());
}

/// A small random model on 32 input bits (learnable connections and a GroupedDSP head, so
/// that every block kernel runs) and `n` random samples for it.
fn tiny(p: Parametrization, n: usize) -> (Model, Vec<u8>, Vec<u32>) {
    let cfg = ModelConfig {
        widths: vec![120, 80],
        lut_rank: 3,
        parametrization: p,
        connections: ConnectionKind::Learnable,
        num_candidates: 4,
        connection_grad: ConnectionGrad::Linear,
        head: DSP,
        encoder_bits: 1,
        classes: 10,
        seed: 9,
        weight_init: bitlogic::layer::WeightInit::Random,
        ..ModelConfig::default()
    };
    let model = common::random_model(32, cfg);
    let mut rng = Rng::new(11);
    let bits: Vec<u8> = (0..n * 32).map(|_| (rng.next_u64() & 1) as u8).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.below(10) as u32).collect();
    (model, bits, labels)
}

fn compiled(mode: CompileMode, threads: usize, block: usize) -> TrainConfig {
    TrainConfig {
        batch: 64,
        lr: 0.05,
        threads,
        block,
        seed: 5,
        compile: CompileOptions {
            mode,
            ..CompileOptions::default()
        },
        ..TrainConfig::default()
    }
}

#[test]
fn max_autotune_keeps_its_fastest_probe_and_steps_like_that_configuration() {
    let (model, bits, labels) = tiny(Parametrization::Light, 64);
    let data = set(32, &bits, &labels);
    let idx: Vec<usize> = (0..64).collect();
    let mut tuned = Trainer::new(&model, compiled(CompileMode::MaxAutotune, 2, 0)).unwrap();
    let mut a = model.clone();
    let loss_a = tuned.step(&mut a, data, &idx).unwrap();

    let probes = tuned
        .autotune
        .clone()
        .expect("max-autotune times on the first step");
    let mut blocks: Vec<usize> = probes.iter().map(|p| p.block).collect();
    blocks.sort_unstable();
    blocks.dedup();
    assert!(probes.len() >= 2 && blocks.len() >= 2, "{probes:?}");
    // Both thread counts (2 and 1) and, on AVX-512 CPUs, AVX2 as well.
    assert!(probes.iter().any(|p| p.threads == 1) && probes.iter().any(|p| p.threads == 2));
    let choice = *tuned.autotune_choice().unwrap();
    assert!(probes
        .iter()
        .all(|p| p.seconds >= choice.seconds && p.seconds > 0.0));
    assert_eq!(
        (tuned.block_size(), tuned.threads(), tuned.simd()),
        (choice.block, choice.threads, choice.simd)
    );

    // Probing stepped copies only: the same first step under the chosen settings, without
    // autotuning, gives the same model bit for bit.
    let config = compiled(CompileMode::ReduceOverhead, choice.threads, choice.block);
    let mut plain = Trainer::new(&model, config).unwrap();
    plain.set_simd(choice.simd);
    let mut b = model.clone();
    let loss_b = plain.step(&mut b, data, &idx).unwrap();
    assert_eq!(loss_a, loss_b);
    assert_eq!(a, b);
    // The choice is made once.
    tuned.step(&mut a, data, &idx).unwrap();
    assert_eq!(tuned.autotune.as_ref(), Some(&probes));
}

#[test]
fn fit_reports_the_autotune_choice_once() {
    let (mut model, bits, labels) = tiny(Parametrization::Light, 192);
    let config = TrainConfig {
        epochs: 2,
        ..compiled(CompileMode::MaxAutotuneNoCudagraphs, 1, 0)
    };
    let mut trainer = Trainer::new(&model, config).unwrap();
    let mut seen = Vec::new();
    trainer
        .fit(&mut model, set(32, &bits, &labels), None, &mut |p| {
            if let Progress::Autotuned { probes, choice } = p {
                seen.push((probes.len(), *choice));
            }
        })
        .unwrap();
    let probes = trainer.autotune.as_ref().unwrap();
    assert_eq!(seen, [(probes.len(), *trainer.autotune_choice().unwrap())]);
    // One thread configured: nothing to halve.
    assert!(probes.iter().all(|p| p.threads == 1));
}

#[test]
fn the_trainers_simd_level_changes_a_step_only_by_rounding() {
    for p in [Parametrization::Light, Parametrization::Dwn] {
        let (model, bits, labels) = tiny(p, 64);
        let data = set(32, &bits, &labels);
        let idx: Vec<usize> = (0..64).collect();
        let step = |level: Option<SimdLevel>| {
            let config = compiled(CompileMode::ReduceOverhead, 2, 0);
            let mut t = Trainer::new(&model, config).unwrap();
            assert_eq!(t.simd(), simd_level());
            if let Some(level) = level {
                t.set_simd(level);
                assert_eq!(t.simd(), level);
            }
            let mut m = model.clone();
            let loss = t.step(&mut m, data, &idx).unwrap().0;
            (loss, m)
        };
        let ((d, md), (s, ms)) = (step(None), step(Some(SimdLevel::Scalar)));
        let level = simd_level();
        assert!(
            (d - s).abs() <= 1e-4 * d.abs(),
            "{p:?}: loss {d} at {level:?}, {s} at scalar"
        );
        // The backward kernels ran at the level too: the updates agree. (Adam's first step
        // moves every parameter by ±lr, so a gradient within rounding of 0 may flip one.)
        let params = |m: &Model| -> Vec<f32> {
            let mut v: Vec<f32> = m.layers.iter().flat_map(|l| l.weights.clone()).collect();
            v.extend(m.layers.iter().flat_map(|l| l.conn_logits.clone()));
            v.extend(m.head.params());
            v
        };
        let (pd, ps) = (params(&md), params(&ms));
        let same = pd
            .iter()
            .zip(&ps)
            .filter(|(a, b)| (*a - *b).abs() <= 1e-5)
            .count();
        assert!(
            same as f64 >= 0.99 * pd.len() as f64,
            "{p:?}: {same} of {} parameters agree",
            pd.len()
        );
    }
}

#[test]
fn step_times_name_each_phase_of_the_last_step_within_its_wall_time() {
    let (mut model, bits, labels) = tiny(Parametrization::Light, 64);
    let mut trainer = Trainer::new(&model, compiled(CompileMode::ReduceOverhead, 2, 0)).unwrap();
    assert_eq!(trainer.step_times(), Default::default());
    let data = EncodedSet {
        n: 64,
        dim: 32,
        bits: &bits,
        labels: &labels,
    };
    let idx: Vec<usize> = (0..64).collect();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        trainer.step(&mut model, data, &idx).unwrap();
        let wall = start.elapsed();
        let t = trainer.step_times();
        assert!(t.fold > Default::default() && t.blocks > Default::default());
        assert!(t.update > Default::default(), "{t:?}");
        assert!(t.fold + t.blocks + t.update <= wall, "{t:?} in {wall:?}");
    }
}
