//! The layer kernels with 16-bit activations (bf16, f16) against the f32 kernels.
//!
//! Two checks per parametrization family (multilinear without and with sigmoid, dwn), rank
//! and SIMD level:
//! - *exact*: on the same values (the f32 kernel reads the 16-bit inputs widened), arithmetic
//!   is the same f32 arithmetic, so outputs are the f32 outputs rounded once, and `dcoef`,
//!   `slot_grad` and the candidate gradients are equal bit for bit. Only `grad_in`, summed
//!   over the neurons reading an input in the storage type, differs: by at most one rounding
//!   per term.
//! - *tolerance*: against f32 on the original (unrounded) inputs, the end-to-end error of
//!   16-bit storage stays within the bounds stated in [`Tol`].

use super::act::{Act, Bf16, F16};
use super::kernel::{self, LANES};
use super::simd::SimdLevel;
use super::tests::{dwn_layer, layer, random_rows, PARAMS};
use super::*;

const LEVELS: [SimdLevel; 3] = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512];

/// Rounds to `A`; also returns the rounded values widened back to f32.
fn round<A: Act>(x: &[f32]) -> (Vec<A>, Vec<f32>) {
    let a: Vec<A> = x.iter().map(|&v| A::from_f32(v)).collect();
    let w = a.iter().map(|v| v.to_f32()).collect();
    (a, w)
}

fn widen<A: Act>(x: &[A]) -> Vec<f32> {
    x.iter().map(|v| v.to_f32()).collect()
}

/// One layer's forward and full backward (`grad_in`, `slot_grad`, `dcoef`) on `x` and `g`.
struct Run<A> {
    y: Vec<A>,
    dcoef: Vec<f32>,
    grad_in: Vec<A>,
    slot: Vec<f32>,
}

fn run<A: Act>(l: &LogicDense, level: SimdLevel, x: &[A], g: &[A], bs: usize) -> Run<A> {
    let rank = l.rank();
    let mut coef = vec![0.0; l.out_dim() << rank];
    l.fold(false, &mut coef);
    let mut y = vec![A::ZERO; l.out_dim() * bs];
    let mut dcoef = vec![0.0; coef.len()];
    let mut grad_in = vec![A::ZERO; x.len()];
    let mut slot = vec![0.0; l.out_dim() * rank * bs];
    let (gi, sg) = (Some(&mut grad_in[..]), Some(&mut slot[..]));
    if l.config.parametrization.multilinear() {
        let sig = l.config.parametrization.sigmoid_output();
        kernel::forward_at(level, rank, &l.ids, &coef, sig, x, &mut y, bs);
        kernel::backward_at(
            level,
            rank,
            &l.ids,
            &coef,
            sig,
            x,
            &mut g.to_vec(),
            gi,
            sg,
            &mut dcoef,
            false,
            bs,
        );
    } else {
        dwn_kernel::forward_at(level, rank, &l.ids, &coef, x, &mut y, bs);
        dwn_kernel::backward_at(
            level,
            rank,
            &l.ids,
            &coef,
            x,
            &mut g.to_vec(),
            gi,
            sg,
            &mut dcoef,
            false,
            bs,
        );
    }
    Run {
        y,
        dcoef,
        grad_in,
        slot,
    }
}

/// Every layer the checks run on: each multilinear parametrization at each rank, and dwn.
fn layers() -> Vec<LogicDense> {
    let mut out = Vec::new();
    for p in PARAMS {
        for rank in p.ranks() {
            out.push(layer(p, rank, Sampling::Soft, 31 + rank as u64));
        }
    }
    out.extend((1..=6).map(|rank| dwn_layer(rank, 50 + rank as u64)));
    out
}

/// Inputs in (0.05, 0.95), kept 0.01 away from dwn's threshold 0.5 so that rounding cannot
/// flip an address; gradients in (−0.45, 0.45) · `gscale`.
fn inputs(l: &LogicDense, bs: usize, gscale: f32) -> (Vec<f32>, Vec<f32>) {
    let x = random_rows(l.in_dim(), bs, 3)
        .into_iter()
        .map(|v| if (v - 0.5).abs() < 0.01 { v + 0.02 } else { v })
        .collect();
    let g = random_rows(l.out_dim(), bs, 4)
        .into_iter()
        .map(|v| (v - 0.5) * gscale)
        .collect();
    (x, g)
}

fn bits<A: Act>(v: A) -> u32 {
    v.to_f32().to_bits()
}

/// The exact check for one storage type; `unit` is its unit roundoff (half an ulp at 1) and
/// `floor` half its smallest subnormal (the absolute error of a rounding near zero).
fn exact_on_the_same_values<A: Act>(unit: f32, floor: f32) {
    let bs = 2 * LANES;
    for l in layers() {
        let what = format!(
            "{} {:?} rank {}",
            A::NAME,
            l.config.parametrization,
            l.rank()
        );
        // Gradients of 1e-3: the size they have in training (f16 then has full precision).
        let (x, g) = inputs(&l, bs, 1e-3);
        let ((xa, xw), (ga, gw)) = (round::<A>(&x), round::<A>(&g));
        // How many neurons read each input row: grad_in rounds once per term.
        let mut fan = vec![0usize; l.in_dim()];
        l.ids.iter().for_each(|&i| fan[i as usize] += 1);
        for level in LEVELS {
            let half = run(&l, level, &xa, &ga, bs);
            let full = run(&l, level, &xw, &gw, bs);
            for (h, f) in half.y.iter().zip(&full.y) {
                assert_eq!(bits(*h), bits(A::from_f32(*f)), "{what} {level:?} forward");
            }
            assert_eq!(half.dcoef, full.dcoef, "{what} {level:?} dcoef");
            assert_eq!(half.slot, full.slot, "{what} {level:?} slot_grad");
            let gi = widen(&half.grad_in);
            for (i, (h, f)) in gi.iter().zip(&full.grad_in).enumerate() {
                // Each of the m rounded additions errs by at most `unit` times the running
                // sum (bounded by the sum of the terms' magnitudes: the slot gradients), or by
                // `floor` where the sum is subnormal.
                let row = i / bs;
                let s = i % bs;
                let mag: f32 = (0..l.ids.len())
                    .filter(|&k| l.ids[k] as usize == row)
                    .map(|k| full.slot[k * bs + s].abs())
                    .sum();
                let tol = fan[row] as f32 * (unit * mag + floor) * 1.01;
                assert!((h - f).abs() <= tol, "{what} {level:?} grad_in {h} vs {f}");
            }
            // Learnable connections' candidate gradients read the same input rows.
            let c = 3;
            let cands: Vec<u32> = (0..l.ids.len() * c)
                .map(|i| (i * 7 % l.in_dim()) as u32)
                .collect();
            let mut dq_half = vec![0.0; cands.len()];
            let mut dq_full = vec![0.0; cands.len()];
            kernel::candidate_grads_at(level, &half.slot, &xa, &cands, c, bs, &mut dq_half, false);
            kernel::candidate_grads_at(level, &full.slot, &xw, &cands, c, bs, &mut dq_full, false);
            assert_eq!(dq_half, dq_full, "{what} {level:?} candidate gradients");
        }
    }
}

#[test]
fn bf16_kernels_equal_f32_kernels_on_the_same_values() {
    exact_on_the_same_values::<Bf16>(2f32.powi(-8), 2f32.powi(-134));
}

#[test]
fn f16_kernels_equal_f32_kernels_on_the_same_values() {
    exact_on_the_same_values::<F16>(2f32.powi(-11), 2f32.powi(-25));
}

/// Bounds of 16-bit storage against f32 on the unrounded values: outputs absolutely (they
/// live in [0, 1]), gradients relative to the largest of their kind in the layer.
struct Tol {
    forward: f32,
    dcoef: f32,
    grad_in: f32,
}

fn within_tolerance_of_f32<A: Act>(tol: Tol) {
    let bs = 4 * LANES;
    for l in layers() {
        let what = format!(
            "{} {:?} rank {}",
            A::NAME,
            l.config.parametrization,
            l.rank()
        );
        let (x, g) = inputs(&l, bs, 1e-3);
        let (xa, ga) = (round::<A>(&x).0, round::<A>(&g).0);
        let half = run(&l, simd::simd_level(), &xa, &ga, bs);
        let full = run(&l, simd::simd_level(), &x, &g, bs);
        let max_abs = |v: &[f32]| v.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst =
            |a: &[f32], b: &[f32]| a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let dy = worst(&widen(&half.y), &full.y);
        assert!(dy <= tol.forward, "{what} forward off by {dy}");
        let dc = worst(&half.dcoef, &full.dcoef) / max_abs(&full.dcoef);
        assert!(dc <= tol.dcoef, "{what} dcoef off by {dc} (relative)");
        let dx = worst(&widen(&half.grad_in), &full.grad_in) / max_abs(&full.grad_in);
        assert!(dx <= tol.grad_in, "{what} grad_in off by {dx} (relative)");
    }
}

#[test]
fn bf16_kernels_are_close_to_f32() {
    within_tolerance_of_f32::<Bf16>(Tol {
        forward: 1e-2,
        dcoef: 1e-2,
        grad_in: 2e-2,
    });
}

#[test]
fn f16_kernels_are_close_to_f32() {
    within_tolerance_of_f32::<F16>(Tol {
        forward: 2e-3,
        dcoef: 2e-3,
        grad_in: 3e-3,
    });
}
