//! Packed inference with a GroupedDSP head: the integer matrix after the popcounts gives the
//! same scores as `Model::eval_scores` (random W with negative and saturated entries), and
//! the stage checks accept the head.

use super::*;
use crate::encoder::EncoderKind;
use crate::head::{mix, HeadKind};
use crate::layer::{ConnectionKind, Parametrization};
use crate::rng::Rng;
use crate::ModelConfig;

fn random_bits(n: usize, dim: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..n * dim).map(|_| (r.next_u64() & 1) as u8).collect()
}

/// A GroupedDSP model on 8 features × 2 bits with W drawn from [−3, 3].
fn dsp_model(p: Parametrization, rank: usize, wbits: u32, seed: u64) -> Model {
    let mut r = Rng::new(seed);
    let x: Vec<f32> = (0..50 * 8).map(|_| r.uniform()).collect();
    let mut enc = Encoder::new(EncoderKind::Thermometer, 2, false).unwrap();
    enc.fit(&x, 50, 8).unwrap();
    let cfg = ModelConfig {
        widths: vec![60, 40],
        lut_rank: rank,
        parametrization: p,
        connections: ConnectionKind::RandomUnique,
        classes: 5,
        head: HeadKind::GroupedDsp { beta: 2.0, wbits },
        seed,
        ..ModelConfig::default()
    };
    let mut m = Model::new(cfg, enc).unwrap();
    m.head
        .params_mut()
        .iter_mut()
        .for_each(|w| *w = 6.0 * r.uniform() - 3.0);
    m
}

#[test]
fn packed_scores_equal_eval_scores_for_grouped_dsp() {
    let cases = [
        (Parametrization::Light, 4, 8, 1),
        (Parametrization::Warp, 6, 4, 2),
        (Parametrization::Difflogic, 2, 16, 3),
        (Parametrization::Dwn, 3, 2, 4),
    ];
    for (p, rank, wbits, seed) in cases {
        let m = dsp_model(p, rank, wbits, seed);
        let Head::GroupedDsp(h) = &m.head else {
            unreachable!("a GroupedDSP model")
        };
        let q = h.quantized();
        assert!(q.iter().any(|&v| v < 0), "W has negative entries");
        let dim = m.encoder.output_dim();
        let nets = [true, false].map(|simplify| {
            let opts = Options {
                simplify,
                simd: None,
            };
            PackedLogicNet::with_options(&m, &opts).unwrap()
        });
        for n in [1, 63, 64, 65, 1000] {
            let bits = random_bits(n, dim, seed * 101 + n as u64);
            let want = m.eval_scores(&bits, n).unwrap();
            // The reference is the counts through Q, sample by sample.
            let counts = m.eval_counts(&bits, n).unwrap();
            let mut by_hand = vec![0i64; n * 5];
            for (o, c) in by_hand.chunks_exact_mut(5).zip(counts.chunks_exact(5)) {
                mix(&q, c, o);
            }
            assert_eq!(want, by_hand, "{p:?} n {n}");
            let words = pack_bits(&bits, n, dim).unwrap();
            for net in &nets {
                assert_eq!(net.scores(&bits, n).unwrap(), want, "{p:?} n {n}");
                assert_eq!(net.scores_packed(&words, n).unwrap(), want, "{p:?} n {n}");
                let classes: Vec<u32> = want.chunks(5).map(|s| argmax(s) as u32).collect();
                assert_eq!(net.predict_bits(&bits, n).unwrap(), classes, "{p:?} n {n}");
            }
        }
        let n = 300;
        let bits = random_bits(n, dim, seed);
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
        let c = compare(&m, &bits, &labels, n).unwrap();
        assert_eq!((c.mismatches, c.accuracy), (0, c.packed_accuracy));
    }
}

#[test]
fn the_matrix_changes_predictions_and_predict_agrees() {
    let m = dsp_model(Parametrization::Light, 4, 8, 7);
    let n = 1000;
    let bits = random_bits(n, m.encoder.output_dim(), 7);
    let counts = m.eval_counts(&bits, n).unwrap();
    let scores = m.eval_scores(&bits, n).unwrap();
    let by_counts = counts.chunks(5).map(argmax);
    let by_scores = scores.chunks(5).map(argmax);
    assert!(by_counts.zip(by_scores).any(|(a, b)| a != b));
    let mut r = Rng::new(3);
    let x: Vec<f32> = (0..n * 8).map(|_| r.uniform()).collect();
    let net = PackedLogicNet::new(&m).unwrap();
    assert_eq!(net.predict(&x, n).unwrap(), m.predict(&x, n).unwrap());
}

#[test]
fn stages_accept_grouped_dsp_and_check_its_width() {
    let m = dsp_model(Parametrization::Light, 2, 8, 5);
    let Head::GroupedDsp(h) = &m.head else {
        unreachable!("a GroupedDSP model")
    };
    let (e, l0, l1) = (
        Stage::Encoder(&m.encoder),
        Stage::LogicDense(&m.layers[0]),
        Stage::LogicDense(&m.layers[1]),
    );
    let o = Options::default();
    let net = PackedLogicNet::from_stages(&[e, Stage::Flatten, l0, l1, Stage::GroupedDsp(h)], &o);
    assert!(net.is_ok());
    let err = |st: &[Stage]| PackedLogicNet::from_stages(st, &o).unwrap_err().to_string();
    let wide = GroupedDsp::new(5, 1.0, 1.0, 8, 60).unwrap();
    assert!(err(&[e, l0, l1, Stage::GroupedDsp(&wide)]).contains("width 60"));
    let msg = err(&[e, Stage::GroupedDsp(h)]);
    assert!(msg.contains("GroupedDSP at position 1"), "{msg}");
    let msg = err(&[e, l0, l1, Stage::GroupedDsp(h), l1]);
    assert!(msg.contains("position 4"), "{msg}");
}
