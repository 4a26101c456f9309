//! GroupedDSP: gradients against finite differences, quantisation and integer scores by hand,
//! settings errors; the `Head` dispatch.

use super::*;
use crate::rng::Rng;

/// A head with k = 3 over 6 inputs (2 per group) and random W, some entries negative.
fn random_head(seed: u64) -> GroupedDsp {
    let mut r = Rng::new(seed);
    let w = (0..9).map(|_| 2.0 * r.uniform() - 1.0).collect();
    GroupedDsp::from_weights(3, 2.0, 1.5, 8, 6, w).unwrap()
}

/// L = Σ r · score for fixed random r, so ∂L/∂score = r.
fn loss(h: &GroupedDsp, acts: &[f32], r: &[f32], bs: usize) -> f64 {
    let (mut t, mut g, mut s) = (vec![0.0; 9], vec![0.0; 3 * bs], vec![0.0; 3 * bs]);
    h.forward(acts, &mut t, &mut g, &mut s, bs);
    s.iter().zip(r).map(|(&s, &r)| s as f64 * r as f64).sum()
}

#[test]
fn gradients_match_finite_differences() {
    let bs = 4;
    let h = random_head(1);
    let mut rng = Rng::new(2);
    let acts: Vec<f32> = (0..6 * bs).map(|_| rng.uniform()).collect();
    let r: Vec<f32> = (0..3 * bs).map(|_| 2.0 * rng.uniform() - 1.0).collect();
    let mut scratch = Head::GroupedDsp(h.clone()).scratch(bs);
    let mut scores = vec![0.0; 3 * bs];
    h.forward(&acts, &mut scratch.t, &mut scratch.g, &mut scores, bs);
    let (mut grad_acts, mut dw) = (vec![0.0; 6 * bs], vec![0.0; 9]);
    let HeadScratch { t, g, dg } = &mut scratch;
    h.backward(&r, t, g, dg, &mut grad_acts, &mut dw, false, bs);

    // Central differences in f32; the loss is linear in the inputs and smooth in W.
    let eps = 1e-2f32;
    let close = |fd: f64, an: f32, what: String| {
        assert!(
            (fd - an as f64).abs() < 2e-3 * (1.0 + fd.abs()),
            "{what}: finite difference {fd}, analytic {an}"
        );
    };
    for i in 0..acts.len() {
        let (mut up, mut down) = (acts.clone(), acts.clone());
        up[i] += eps;
        down[i] -= eps;
        let fd = (loss(&h, &up, &r, bs) - loss(&h, &down, &r, bs)) / (2.0 * eps as f64);
        close(fd, grad_acts[i], format!("input {i}"));
    }
    for (i, &an) in dw.iter().enumerate() {
        let (mut up, mut down) = (h.clone(), h.clone());
        up.weights[i] += eps;
        down.weights[i] -= eps;
        let fd = (loss(&up, &acts, &r, bs) - loss(&down, &acts, &r, bs)) / (2.0 * eps as f64);
        close(fd, an, format!("W[{}][{}]", i / 3, i % 3));
    }

    // `accumulate` adds the block's gradient to what is there.
    let mut twice = dw.clone();
    h.backward(&r, t, g, dg, &mut grad_acts, &mut twice, true, bs);
    for (a, b) in twice.iter().zip(&dw) {
        assert!(
            (a - 2.0 * b).abs() <= 1e-6 * (1.0 + b.abs()),
            "{a} vs 2 × {b}"
        );
    }
}

#[test]
fn quantisation_by_hand_at_4_bits() {
    // wbits = 4 → scale 2^3 − 1 = 7; W chosen through atanh so tanh(W) is known.
    let tanh = [0.6f32, -0.45, 0.0, 0.95, -0.99999, 0.05];
    let mut w: Vec<f32> = tanh.iter().map(|t| t.atanh()).collect();
    w.extend([20.0, -20.0, 0.0]);
    let h = GroupedDsp::from_weights(3, 1.0, 1.0, 4, 3, w).unwrap();
    assert_eq!(h.scale(), 7);
    // 4.2 → 4, −3.15 → −3, 0, 6.65 → 7, −6.99993 → −7, 0.35 → 0, saturated ±7.
    assert_eq!(h.quantized(), vec![4, -3, 0, 7, -7, 0, 7, -7, 0]);
    assert_eq!(GroupedDsp::new(2, 1.0, 1.0, 16, 2).unwrap().scale(), 32767);
}

#[test]
fn integer_scores_by_hand() {
    // Q = [[7, −3], [0, 4]] at 4 bits.
    let w = vec![20.0, (-0.45f32).atanh(), 0.0, 0.6f32.atanh()];
    let h = Head::GroupedDsp(GroupedDsp::from_weights(2, 3.0, 0.5, 4, 8, w).unwrap());
    // Sample 0: 4 bits per group, counts [3, 2]; sample 1: counts [1, 4].
    let bits = [[1, 1, 0, 1, 0, 1, 1, 0], [0, 0, 1, 0, 1, 1, 1, 1]];
    let mut counts = vec![0u32; 4];
    for (b, c) in bits.iter().zip(counts.chunks_exact_mut(2)) {
        h.counts(b, c);
    }
    assert_eq!(counts, [3, 2, 1, 4]);
    // [7·3 − 3·2, 0·3 + 4·2] and [7·1 − 3·4, 4·4]: β and τ do not enter.
    assert_eq!(h.eval_scores(&counts), vec![15, 8, -5, 16]);
    assert_eq!(argmax(&h.eval_scores(&counts)[2..]), 1);
    // GroupSum's scores are its counts.
    let gs = Head::GroupSum(GroupSum::new(2, 3.0, 8).unwrap());
    assert_eq!(gs.eval_scores(&counts), vec![3, 2, 1, 4]);
}

#[test]
fn fresh_head_is_a_scaled_group_sum() {
    let h = Head::new(
        HeadKind::GroupedDsp {
            beta: 2.0,
            wbits: 8,
        },
        3,
        1.0,
        9,
    )
    .unwrap();
    // tanh(1) · 127 = 96.7 → 97 on the diagonal, 0 elsewhere.
    assert_eq!(h.eval_scores(&[1, 2, 3]), vec![97, 194, 291]);
    let (mut scratch, mut s) = (h.scratch(1), vec![0.0; 3]);
    h.forward(
        &[1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        &mut scratch,
        &mut s,
        1,
    );
    let t = 1.0f32.tanh() * 2.0;
    for (s, want) in s.iter().zip([2.0 * t, 2.0 * t, t]) {
        assert!((s - want).abs() < 1e-6, "{s} vs {want}");
    }
    assert_eq!(h.params().len(), 9);
    assert!(Head::new(HeadKind::GroupSum, 3, 1.0, 9)
        .unwrap()
        .params()
        .is_empty());
}

#[test]
fn bad_settings_are_errors_naming_value_and_range() {
    for wbits in [0, 1, 17, 64] {
        let e = GroupedDsp::new(2, 1.0, 1.0, wbits, 4)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("got {wbits}")) && e.contains("2..=16"),
            "{e}"
        );
    }
    for beta in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let e = HeadKind::GroupedDsp { beta, wbits: 8 }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("beta") && e.contains("> 0"), "{e}");
    }
    let e = GroupedDsp::from_weights(2, 1.0, 1.0, 8, 4, vec![0.0, 1.0, f32::NAN, 0.0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("W[1][0]") && e.contains("finite"), "{e}");
    let e = GroupedDsp::from_weights(2, 1.0, 1.0, 8, 4, vec![0.0; 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 entries"), "{e}");
    assert!(
        GroupedDsp::new(3, 1.0, 1.0, 8, 10).is_err(),
        "10 is not divisible by 3"
    );
}

#[test]
fn head_kind_json_defaults_to_8_bits() {
    let k: HeadKind = serde_json::from_str(r#"{"grouped-dsp":{"beta":2.0}}"#).unwrap();
    assert_eq!(
        k,
        HeadKind::GroupedDsp {
            beta: 2.0,
            wbits: 8
        }
    );
    let k: HeadKind = serde_json::from_str(r#""group-sum""#).unwrap();
    assert_eq!(k, HeadKind::GroupSum);
}

/// The training head on 16-bit activations: scores, ∂L/∂W and the rounded input gradient
/// equal f32 on the same (widened) values; block sizes with and without a tail below 16.
fn head_on_16_bit_rows<A: crate::layer::Act>() {
    let dsp = HeadKind::GroupedDsp {
        beta: 1.5,
        wbits: 8,
    };
    for kind in [HeadKind::GroupSum, dsp] {
        for bs in [4, 16, 37] {
            let h = Head::new(kind, 3, 2.0, 6).unwrap();
            let mut r = Rng::new(bs as u64);
            let acts: Vec<A> = (0..6 * bs).map(|_| A::from_f32(r.uniform())).collect();
            let wide: Vec<f32> = acts.iter().map(|a| a.to_f32()).collect();
            let ds: Vec<f32> = (0..3 * bs).map(|_| 2.0 * r.uniform() - 1.0).collect();
            let (mut sa, mut scores_a) = (h.scratch(bs), vec![0.0; 3 * bs]);
            let (mut sf, mut scores_f) = (h.scratch(bs), vec![0.0; 3 * bs]);
            h.forward(&acts, &mut sa, &mut scores_a, bs);
            h.forward(&wide, &mut sf, &mut scores_f, bs);
            assert_eq!(scores_a, scores_f, "{} {kind:?} bs {bs}", A::NAME);
            let (mut ga, mut gf) = (vec![A::ZERO; 6 * bs], vec![0f32; 6 * bs]);
            let (mut dwa, mut dwf) = (vec![0.0; 9], vec![0.0; 9]);
            h.backward(&ds, &mut sa, &mut ga, &mut dwa, false, bs);
            h.backward(&ds, &mut sf, &mut gf, &mut dwf, false, bs);
            assert_eq!(dwa, dwf, "{} {kind:?} bs {bs}", A::NAME);
            for (a, f) in ga.iter().zip(&gf) {
                assert_eq!(*a, A::from_f32(*f), "{} {kind:?} bs {bs}", A::NAME);
            }
        }
    }
}

#[test]
fn bf16_and_f16_rows_give_the_f32_head_rounded() {
    head_on_16_bit_rows::<crate::layer::Bf16>();
    head_on_16_bit_rows::<crate::layer::F16>();
    head_on_16_bit_rows::<f32>();
}
