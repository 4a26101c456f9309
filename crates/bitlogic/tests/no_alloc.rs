//! A planned training step allocates nothing: every buffer is sized once for the batch when
//! the trainer is built. A counting global allocator proves it.

mod common;

use bitlogic::head::HeadKind;
use bitlogic::layer::{ConnectionKind, Parametrization, Sampling};
use bitlogic::rng::Rng;
use bitlogic::train::trainer::EncodedSet;
use bitlogic::train::{AmpDtype, CompileOptions, TrainConfig, Trainer};
use bitlogic::ModelConfig;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counter is process-wide: tests that count must not overlap with each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// Set on the threads that run the measured steps, so that the test harness's own
    /// threads (printing results, starting tests) are not counted.
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTED.with(|c| c.get()) {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Marks every thread of `trainer`'s pool as counted.
fn count_pool_threads(trainer: &mut Trainer) {
    trainer.with_pool(|_| rayon::broadcast(|_| COUNTED.with(|c| c.set(true))));
}

#[test]
fn training_steps_do_not_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dsp = HeadKind::GroupedDsp {
        beta: 1.0,
        wbits: 8,
    };
    for (p, rank, connections, sampling, head, amp) in [
        (
            Parametrization::Light,
            4,
            ConnectionKind::RandomUnique,
            Sampling::Soft,
            HeadKind::GroupSum,
            AmpDtype::None,
        ),
        (
            Parametrization::Warp,
            3,
            ConnectionKind::Learnable,
            Sampling::Hard,
            HeadKind::GroupSum,
            AmpDtype::None,
        ),
        (
            Parametrization::Difflogic,
            2,
            ConnectionKind::Random,
            Sampling::Soft,
            HeadKind::GroupSum,
            AmpDtype::None,
        ),
        // The GroupedDSP head's buffers and its optimizer state are planned too.
        (
            Parametrization::Light,
            3,
            ConnectionKind::RandomUnique,
            Sampling::Soft,
            dsp,
            AmpDtype::None,
        ),
        // 16-bit activations: the typed worker buffers are planned like the f32 ones.
        (
            Parametrization::Light,
            4,
            ConnectionKind::RandomUnique,
            Sampling::Soft,
            HeadKind::GroupSum,
            AmpDtype::Bf16,
        ),
        (
            Parametrization::Dwn,
            4,
            ConnectionKind::Learnable,
            Sampling::Soft,
            dsp,
            AmpDtype::Bf16,
        ),
        (
            Parametrization::Warp,
            3,
            ConnectionKind::Learnable,
            Sampling::Hard,
            HeadKind::GroupSum,
            AmpDtype::F16,
        ),
    ] {
        let cfg = ModelConfig {
            widths: vec![300, 200],
            lut_rank: rank,
            parametrization: p,
            connections,
            sampling,
            head,
            encoder_bits: 1,
            classes: 10,
            ..ModelConfig::default()
        };
        let mut model = common::random_model(64, cfg);
        let mut trainer = Trainer::new(
            &model,
            TrainConfig {
                batch: 100,
                threads: 2,
                compile: CompileOptions {
                    amp_dtype: amp,
                    ..CompileOptions::default()
                },
                ..TrainConfig::default()
            },
        )
        .unwrap();
        let mut rng = Rng::new(1);
        let n = 400;
        let bits: Vec<u8> = (0..n * 64).map(|_| (rng.next_u64() & 1) as u8).collect();
        let labels: Vec<u32> = (0..n).map(|_| rng.below(10) as u32).collect();
        let data = EncodedSet {
            n,
            dim: 64,
            bits: &bits,
            labels: &labels,
        };
        let idx: Vec<usize> = (0..n).collect();
        // The last batch is short (75 samples): the plan must cover it too.
        let batches: Vec<&[usize]> = idx[..375].chunks(100).collect();
        for b in &batches {
            trainer.step(&mut model, data, b).unwrap();
        }
        // Steps run on the trainer's own threads, as `fit` runs them.
        count_pool_threads(&mut trainer);
        let allocated = trainer.with_pool(|t| {
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            for _ in 0..10 {
                for b in &batches {
                    t.step(&mut model, data, b).unwrap();
                }
            }
            ALLOCATIONS.load(Ordering::SeqCst) - before
        });
        assert_eq!(
            allocated, 0,
            "{p:?} {head:?} {amp:?}: {allocated} allocations in 40 steps"
        );
    }
}

#[test]
fn eager_mode_plans_every_step_and_dynamic_grows() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use bitlogic::train::{CompileMode, CompileOptions};
    let cfg = ModelConfig {
        widths: vec![64, 40],
        lut_rank: 2,
        encoder_bits: 1,
        classes: 10,
        ..ModelConfig::default()
    };
    let mut model = common::random_model(32, cfg);
    let mut rng = Rng::new(2);
    let n = 200;
    let bits: Vec<u8> = (0..n * 32).map(|_| (rng.next_u64() & 1) as u8).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.below(10) as u32).collect();
    let data = EncodedSet {
        n,
        dim: 32,
        bits: &bits,
        labels: &labels,
    };
    let idx: Vec<usize> = (0..n).collect();
    let eager = CompileOptions {
        mode: CompileMode::Eager,
        ..CompileOptions::default()
    };
    let mut t = Trainer::new(
        &model,
        TrainConfig {
            batch: 50,
            threads: 1,
            compile: eager,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    count_pool_threads(&mut t);
    let allocated = t.with_pool(|t| {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        t.step(&mut model, data, &idx[..50]).unwrap();
        ALLOCATIONS.load(Ordering::SeqCst) - before
    });
    assert!(
        allocated > 0,
        "the eager baseline makes its buffers per step"
    );
    // A planned trainer refuses a larger batch unless it is dynamic.
    let mut planned = Trainer::new(
        &model,
        TrainConfig {
            batch: 50,
            threads: 1,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    let e = planned
        .step(&mut model, data, &idx[..80])
        .unwrap_err()
        .to_string();
    assert!(e.contains("dynamic"), "{e}");
    let dynamic = CompileOptions {
        dynamic: true,
        ..CompileOptions::default()
    };
    let mut grows = Trainer::new(
        &model,
        TrainConfig {
            batch: 50,
            threads: 1,
            compile: dynamic,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    grows.step(&mut model, data, &idx[..80]).unwrap();
    grows.step(&mut model, data, &idx[..200]).unwrap();
}
