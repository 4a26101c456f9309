//! Layer tests: kernels against the f64 references and finite differences, SIMD levels
//! against each other, MSB ordering on known truth tables.

use super::dwn_kernel;
use super::kernel::{self, LANES};
use super::simd::{simd_level, SimdLevel};
use super::*;

pub(super) const PARAMS: [Parametrization; 8] = [
    Parametrization::Light,
    Parametrization::Difflogic,
    Parametrization::Warp,
    Parametrization::Linear,
    Parametrization::PolyLut { degree: 2 },
    Parametrization::PolyLut { degree: 3 },
    Parametrization::NeuraLut {
        hidden: 8,
        depth: 2,
    },
    Parametrization::NeuraLut {
        hidden: 3,
        depth: 1,
    },
];

pub(super) fn layer(p: Parametrization, rank: usize, sampling: Sampling, seed: u64) -> LogicDense {
    let mut c = LayerConfig::new(9, 5, rank);
    c.parametrization = p;
    c.sampling = sampling;
    c.temperature = 1.3;
    LogicDense::new(c, &mut Rng::new(seed)).unwrap()
}

pub(super) fn random_rows(n: usize, bs: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n * bs).map(|_| 0.05 + 0.9 * r.uniform()).collect()
}

/// Σ_i Σ_s g[i][s] · y_i(x_s) in f64 from the reference formulas.
fn reference_loss(l: &LogicDense, w: &[f64], x: &[f64], g: &[f32], bs: usize) -> f64 {
    let (r, wpn) = (l.rank(), l.weights_per_neuron());
    let mut total = 0.0;
    for i in 0..l.out_dim() {
        for s in 0..bs {
            let xs: Vec<f64> = (0..r)
                .map(|j| x[l.ids[i * r + j] as usize * bs + s])
                .collect();
            let y = l.config.parametrization.reference_forward(
                r,
                &w[i * wpn..(i + 1) * wpn],
                l.config.temperature as f64,
                &xs,
            );
            total += g[i * bs + s] as f64 * y;
        }
    }
    total
}

fn kernel_forward(l: &LogicDense, hard: bool, x: &[f32], bs: usize) -> Vec<f32> {
    let mut coef = vec![0.0; l.out_dim() << l.rank()];
    l.fold(hard, &mut coef);
    let sigmoid = l.config.parametrization.sigmoid_output() && !hard;
    let mut y = vec![0.0; l.out_dim() * bs];
    kernel::check_shapes(l.rank(), &l.ids, &coef, x, y.len(), bs);
    kernel::forward(l.rank(), &l.ids, &coef, sigmoid, x, &mut y, bs);
    y
}

/// (dL/dw, dL/dx) from the kernel's backward (always through the relaxed LUT).
fn kernel_backward(
    l: &LogicDense,
    x: &[f32],
    g: &[f32],
    bs: usize,
    level: SimdLevel,
) -> (Vec<f32>, Vec<f32>) {
    let mut coef = vec![0.0; l.out_dim() << l.rank()];
    l.fold(false, &mut coef);
    let mut dcoef = vec![0.0; coef.len()];
    let mut dx = vec![0.0; x.len()];
    let sig = l.config.parametrization.sigmoid_output();
    kernel::backward_at(
        level,
        l.rank(),
        &l.ids,
        &coef,
        sig,
        x,
        &mut g.to_vec(),
        Some(&mut dx),
        None,
        &mut dcoef,
        false,
        bs,
    );
    let mut dw = vec![0.0; l.weights.len()];
    l.unfold_grad(&dcoef, &mut dw);
    (dw, dx)
}

/// Eval-mode outputs `[out][bs]` of a layer on feature-major bits `[in][bs]`, one sample at a
/// time through `eval_bits` (the hard lookup every fast path must match).
fn lut_outputs(l: &LogicDense, bits: &[u8], bs: usize) -> Vec<u8> {
    let (luts, ids) = l.get_luts_and_ids();
    let mut y = vec![0u8; l.out_dim() * bs];
    for s in 0..bs {
        let sample: Vec<u8> = (0..l.in_dim()).map(|f| bits[f * bs + s]).collect();
        let mut out = vec![0u8; l.out_dim()];
        eval_bits(l.rank(), &luts, &ids, &sample, &mut out);
        for (i, o) in out.into_iter().enumerate() {
            y[i * bs + s] = o;
        }
    }
    y
}

fn close(a: f64, b: f64, what: &str) {
    let tol = 2e-3 * a.abs().max(b.abs()) + 2e-4;
    assert!((a - b).abs() <= tol, "{what}: analytic {a} vs numeric {b}");
}

#[test]
fn relaxed_forward_matches_reference() {
    let bs = 2 * LANES;
    for p in PARAMS {
        for rank in p.ranks() {
            let l = layer(p, rank, Sampling::Soft, rank as u64);
            let x = random_rows(l.in_dim(), bs, 7);
            let y = kernel_forward(&l, false, &x, bs);
            let w: Vec<f64> = l.weights.iter().map(|&v| v as f64).collect();
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            for i in 0..l.out_dim() {
                for s in 0..bs {
                    let mut g = vec![0f32; l.out_dim() * bs];
                    g[i * bs + s] = 1.0;
                    let r = reference_loss(&l, &w, &xd, &g, bs);
                    assert!(
                        (y[i * bs + s] as f64 - r).abs() < 1e-5,
                        "{p:?} rank {rank}: {} vs {r}",
                        y[i * bs + s]
                    );
                }
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let bs = 2 * LANES;
    for p in PARAMS {
        for rank in p.ranks() {
            for sampling in [Sampling::Soft, Sampling::Hard] {
                let l = layer(p, rank, sampling, 10 + rank as u64);
                let x = random_rows(l.in_dim(), bs, 3);
                let g = random_rows(l.out_dim(), bs, 4)
                    .iter()
                    .map(|v| v - 0.5)
                    .collect::<Vec<_>>();
                let (dw, dx) = kernel_backward(&l, &x, &g, bs, SimdLevel::Avx512);
                let w: Vec<f64> = l.weights.iter().map(|&v| v as f64).collect();
                let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let h = 1e-5;
                let what = format!("{p:?} rank {rank} {sampling:?}");
                for i in 0..w.len() {
                    let (mut wp, mut wm) = (w.clone(), w.clone());
                    wp[i] += h;
                    wm[i] -= h;
                    let fd = (reference_loss(&l, &wp, &xd, &g, bs)
                        - reference_loss(&l, &wm, &xd, &g, bs))
                        / (2.0 * h);
                    close(dw[i] as f64, fd, &format!("{what} dw[{i}]"));
                }
                for i in 0..xd.len() {
                    let (mut xp, mut xm) = (xd.clone(), xd.clone());
                    xp[i] += h;
                    xm[i] -= h;
                    let fd = (reference_loss(&l, &w, &xp, &g, bs)
                        - reference_loss(&l, &w, &xm, &g, bs))
                        / (2.0 * h);
                    close(dx[i] as f64, fd, &format!("{what} dx[{i}]"));
                }
            }
        }
    }
}

#[test]
fn simd_levels_agree_with_scalar() {
    let bs = 4 * LANES;
    for p in PARAMS {
        for rank in p.ranks() {
            let l = layer(p, rank, Sampling::Soft, 99);
            let x = random_rows(l.in_dim(), bs, 5);
            let g = random_rows(l.out_dim(), bs, 6);
            let mut coef = vec![0.0; l.out_dim() << rank];
            l.fold(false, &mut coef);
            let sig = p.sigmoid_output();
            let run = |level| {
                let mut y = vec![0.0; l.out_dim() * bs];
                kernel::forward_at(level, rank, &l.ids, &coef, sig, &x, &mut y, bs);
                (y, kernel_backward(&l, &x, &g, bs, level))
            };
            let scalar = run(SimdLevel::Scalar);
            for level in [SimdLevel::Avx2, SimdLevel::Avx512] {
                let fast = run(level);
                let max_diff = |a: &[f32], b: &[f32]| {
                    a.iter()
                        .zip(b)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max)
                };
                // Relative to the largest value (at least 1): the scalar level walks the lerp
                // tree at every rank, the SIMD levels evaluate ranks 2 and 4 as written-out
                // polynomials, so they differ by a few roundings of the largest terms.
                let tol = |tol: f32, a: &[f32]| tol * a.iter().fold(1f32, |m, v| m.max(v.abs()));
                let (f, s) = (&fast, &scalar);
                let what = format!("{p:?} {rank} {level:?}");
                assert!(max_diff(&f.0, &s.0) <= tol(1e-6, &s.0), "{what} forward");
                assert!(
                    max_diff(&f.1 .0, &s.1 .0) <= tol(2e-6, &s.1 .0),
                    "{what} dw"
                );
                assert!(
                    max_diff(&f.1 .1, &s.1 .1) <= tol(2e-6, &s.1 .1),
                    "{what} dx"
                );
            }
        }
    }
}

#[test]
fn hard_forward_is_the_lut_at_binary_inputs() {
    let bs = LANES;
    for p in PARAMS {
        for rank in p.ranks() {
            let l = layer(p, rank, Sampling::Hard, 5);
            let mut r = Rng::new(1);
            let bits: Vec<u8> = (0..l.in_dim() * bs)
                .map(|_| (r.uniform() < 0.5) as u8)
                .collect();
            let x: Vec<f32> = bits.iter().map(|&b| b as f32).collect();
            let y = kernel_forward(&l, true, &x, bs);
            let soft = kernel_forward(&l, false, &x, bs);
            let lut = lut_outputs(&l, &bits, bs);
            for (j, &out) in lut.iter().enumerate() {
                assert_eq!(y[j], out as f32, "{p:?} rank {rank}");
                // light and warp: the discrete LUT is the relaxed one rounded at the same
                // corner (difflogic's argmax gate need not agree with its mixture).
                if p != Parametrization::Difflogic {
                    assert_eq!((soft[j] > 0.5) as u8, out, "{p:?} rank {rank}");
                }
            }
        }
    }
}

#[test]
fn luts_are_in_msb_order() {
    let mut c = LayerConfig::new(8, 1, 2);
    // light: only address 0b10 (input 0 = 1, input 1 = 0) is on: "x0 AND NOT x1".
    let light = LogicDense::from_parts(c.clone(), vec![5, 2], vec![-1.0, -1.0, 1.0, -1.0]).unwrap();
    let (luts, _) = light.get_luts_and_ids();
    assert_eq!(luts, vec![0, 0, 1, 0]);
    let mut input = vec![0u8; 8];
    input[5] = 1; // input 0 reads feature 5
    let mut out = [0u8];
    eval_bits(2, &luts, &light.ids, &input, &mut out);
    assert_eq!(out, [1]);
    input[2] = 1; // input 1 reads feature 2
    eval_bits(2, &luts, &light.ids, &input, &mut out);
    assert_eq!(out, [0]);

    // difflogic gate 2 is "a AND NOT b" with a = input 0.
    c.parametrization = Parametrization::Difflogic;
    let mut w = vec![0.0; 16];
    w[2] = 5.0;
    let d = LogicDense::from_parts(c.clone(), vec![5, 2], w).unwrap();
    assert_eq!(d.get_luts_and_ids().0, vec![0, 0, 1, 0]);

    // warp: a positive coefficient on S = {input 0} (mask 0b10) gives y = σ(−c·s_0) = [x_0].
    c.parametrization = Parametrization::Warp;
    let wp = LogicDense::from_parts(c, vec![5, 2], vec![0.0, 0.0, 2.0, 0.0]).unwrap();
    assert_eq!(wp.get_luts_and_ids().0, vec![0, 0, 1, 1]);
}

#[test]
fn residual_init_passes_input_zero() {
    for p in PARAMS {
        for rank in p.ranks() {
            let mut c = LayerConfig::new(10, 6, rank);
            c.parametrization = p;
            c.temperature = 2.0;
            c.weight_init = WeightInit::Residual { probability: 0.951 };
            let l = LogicDense::new(c, &mut Rng::new(2)).unwrap();
            let (luts, _) = l.get_luts_and_ids();
            for lut in luts.chunks(1 << rank) {
                for (k, &v) in lut.iter().enumerate() {
                    assert_eq!(v as usize, (k >> (rank - 1)) & 1, "{p:?} rank {rank}");
                }
            }
            // The relaxed output at a corner is the residual probability; for difflogic the
            // other 15 gates share the remaining mass and 7 of them are also 1 at (1, 1).
            let bs = LANES;
            let x = vec![1.0; l.in_dim() * bs];
            let y = kernel_forward(&l, false, &x, bs);
            let expect = match p {
                Parametrization::Difflogic => 0.951 + 0.049 * 7.0 / 15.0,
                _ => 0.951,
            };
            assert!(
                y.iter().all(|&v| (v - expect).abs() < 1e-4),
                "{p:?} rank {rank}: {}",
                y[0]
            );
        }
    }
}

#[test]
fn bad_configs_are_errors() {
    let mut c = LayerConfig::new(8, 4, 9);
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("lut_rank 9") && e.contains("1..=6"), "{e}");
    c.lut_rank = 4;
    c.parametrization = Parametrization::Difflogic;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("difflogic") && e.contains("2..=2"), "{e}");
    let e = Parametrization::parse("nope").unwrap_err().to_string();
    assert!(
        e.contains("'nope'") && e.contains("light, difflogic, warp"),
        "{e}"
    );
    let c = LayerConfig::new(8, 1, 2);
    assert!(LogicDense::from_parts(c.clone(), vec![1, 8], vec![0.0; 4]).is_err());
    assert!(LogicDense::from_parts(c, vec![1, 2], vec![0.0; 3]).is_err());
}

#[test]
fn backward_writes_then_accumulates() {
    let bs = LANES;
    let l = layer(Parametrization::Light, 3, Sampling::Soft, 4);
    let x = random_rows(l.in_dim(), bs, 1);
    let g = random_rows(l.out_dim(), bs, 2);
    let mut coef = vec![0.0; l.out_dim() << 3];
    l.fold(false, &mut coef);
    let run = |g: &mut [f32], dcoef: &mut [f32], accumulate: bool| {
        let (ids, level) = (&l.ids, simd_level());
        kernel::backward_at(
            level, 3, ids, &coef, false, &x, g, None, None, dcoef, accumulate, bs,
        );
    };
    let mut once = vec![f32::NAN; coef.len()];
    run(&mut g.clone(), &mut once, false);
    let mut twice = once.clone();
    let mut g2 = g.clone();
    run(&mut g2, &mut twice, true);
    assert!(
        g2.iter().all(|&v| v == 0.0),
        "grad_out is cleared as it is read"
    );
    assert!(
        once.iter().all(|v| v.is_finite()),
        "stale values must be overwritten"
    );
    for (a, b) in once.iter().zip(&twice) {
        assert_eq!(2.0 * a, *b);
    }
}

#[test]
fn learnable_candidate_gradients_match_finite_differences() {
    let bs = LANES;
    for p in PARAMS {
        let rank = if p == Parametrization::Difflogic {
            2
        } else {
            3
        };
        let mut c = LayerConfig::new(12, 4, rank);
        c.parametrization = p;
        c.connections = ConnectionKind::Learnable;
        c.num_candidates = 5;
        let mut l = LogicDense::new(c, &mut Rng::new(8)).unwrap();
        let mut r = Rng::new(9);
        l.conn_logits.iter_mut().for_each(|v| *v = r.normal());
        l.refresh_ids();
        let x = random_rows(l.in_dim(), bs, 11);
        let g = random_rows(l.out_dim(), bs, 12)
            .iter()
            .map(|v| v - 0.5)
            .collect::<Vec<_>>();
        let mut coef = vec![0.0; l.out_dim() << rank];
        l.fold(false, &mut coef);
        let mut slot = vec![0.0; l.out_dim() * rank * bs];
        let mut dcoef = vec![0.0; coef.len()];
        let sig = p.sigmoid_output();
        kernel::backward_at(
            simd_level(),
            rank,
            &l.ids,
            &coef,
            sig,
            &x,
            &mut g.clone(),
            None,
            Some(&mut slot),
            &mut dcoef,
            false,
            bs,
        );
        let cands = l.config.num_candidates;
        let mut dq = vec![0.0; l.candidates.len()];
        learnable::candidate_grads(&slot, &x, &l.candidates, cands, bs, &mut dq, false);
        // ∂L/∂q_c is the derivative of L along "slot input += δ · x[candidate c]".
        let w: Vec<f64> = l.weights.iter().map(|&v| v as f64).collect();
        let wpn = l.weights_per_neuron();
        let loss = |slot_s: usize, cand: u32, delta: f64| -> f64 {
            let mut total = 0.0;
            for i in 0..l.out_dim() {
                for s in 0..bs {
                    let xs: Vec<f64> = (0..rank)
                        .map(|j| {
                            let mut v = x[l.ids[i * rank + j] as usize * bs + s] as f64;
                            if i * rank + j == slot_s {
                                v += delta * x[cand as usize * bs + s] as f64;
                            }
                            v
                        })
                        .collect();
                    let y = p.reference_forward(
                        rank,
                        &w[i * wpn..(i + 1) * wpn],
                        l.config.temperature as f64,
                        &xs,
                    );
                    total += g[i * bs + s] as f64 * y;
                }
            }
            total
        };
        for s in 0..l.out_dim() * rank {
            for k in 0..cands {
                let cand = l.candidates[s * cands + k];
                let fd = (loss(s, cand, 1e-5) - loss(s, cand, -1e-5)) / 2e-5;
                close(
                    dq[s * cands + k] as f64,
                    fd,
                    &format!("{p:?} slot {s} candidate {k}"),
                );
            }
        }
    }
}

#[test]
fn learnable_layers_round_trip_and_check_their_parts() {
    let mut c = LayerConfig::new(30, 6, 4);
    c.connections = ConnectionKind::Learnable;
    c.num_candidates = 8;
    let mut l = LogicDense::new(c.clone(), &mut Rng::new(1)).unwrap();
    assert_eq!(l.candidates.len(), 6 * 4 * 8);
    l.conn_logits[3] = 2.0; // slot 0 now prefers its candidate 3
    l.refresh_ids();
    assert_eq!(l.ids[0], l.candidates[3]);
    let back = LogicDense::from_parts_learnable(
        c.clone(),
        l.ids.clone(),
        l.weights.clone(),
        l.candidates.clone(),
        l.conn_logits.clone(),
    )
    .unwrap();
    assert_eq!(back, l);
    let mut wrong = l.ids.clone();
    wrong[0] = l.candidates[0];
    let e = LogicDense::from_parts_learnable(
        c.clone(),
        wrong,
        l.weights.clone(),
        l.candidates.clone(),
        l.conn_logits.clone(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("argmax"), "{e}");
    c.num_candidates = 31;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("num_candidates") && e.contains("1..=30"), "{e}");
}

pub(super) fn dwn_layer(rank: usize, seed: u64) -> LogicDense {
    let mut c = LayerConfig::new(9, 5, rank);
    c.parametrization = Parametrization::Dwn;
    LogicDense::new(c, &mut Rng::new(seed)).unwrap()
}

#[test]
fn dwn_efd_by_hand() {
    // T = [0.2, −0.4, 0.6, 1.0] read at address 0b10 (x0 = 1, x1 = 0):
    // ∂y/∂x0 = ½ (T[2] − T[0] + (T[3] − T[1]) / 2) = 0.55.
    let t = [0.2, -0.4, 0.6, 1.0];
    let d = param::dwn::reference_efd(2, &t, &[0.9, 0.1], 0);
    assert!((d - 0.55).abs() < 1e-12, "{d}");
    // ∂y/∂x1 = ½ (T[3] − T[2] + (T[1] − T[0]) / 2) = 0.05: addresses 2 and 3 are at distance 0
    // from 0b10 once bit 1 (the LSB) is ignored, 0 and 1 at distance 1.
    let d1 = param::dwn::reference_efd(2, &t, &[0.9, 0.1], 1);
    assert!((d1 - 0.05).abs() < 1e-12, "{d1}");
}

#[test]
fn dwn_kernel_matches_the_formulas() {
    let bs = 2 * LANES;
    for rank in 1..=6 {
        let l = dwn_layer(rank, rank as u64);
        let x = random_rows(l.in_dim(), bs, 21);
        let g = random_rows(l.out_dim(), bs, 22)
            .iter()
            .map(|v| v - 0.5)
            .collect::<Vec<_>>();
        let t = l.weights.clone();
        let mut y = vec![0.0; l.out_dim() * bs];
        dwn_kernel::forward(rank, &l.ids, &t, &x, &mut y, bs);
        let mut dt = vec![f32::NAN; t.len()];
        let mut dx = vec![0.0; x.len()];
        let mut slot = vec![0.0; l.out_dim() * rank * bs];
        dwn_kernel::backward_at(
            simd_level(),
            rank,
            &l.ids,
            &t,
            &x,
            &mut g.clone(),
            Some(&mut dx),
            Some(&mut slot),
            &mut dt,
            false,
            bs,
        );
        let k = 1 << rank;
        let mut want_dt = vec![0.0f64; t.len()];
        let mut want_dx = vec![0.0f64; x.len()];
        for i in 0..l.out_dim() {
            let w: Vec<f64> = t[i * k..(i + 1) * k].iter().map(|&v| v as f64).collect();
            for s in 0..bs {
                let xs: Vec<f64> = (0..rank)
                    .map(|j| x[l.ids[i * rank + j] as usize * bs + s] as f64)
                    .collect();
                let yr = param::dwn::reference(rank, &w, &xs);
                assert!(
                    (y[i * bs + s] as f64 - yr).abs() < 1e-6,
                    "rank {rank} forward"
                );
                let addr = (0..rank).fold(0, |a, j| (a << 1) | (xs[j] > 0.5) as usize);
                let gs = g[i * bs + s] as f64;
                want_dt[i * k + addr] += 0.5 * gs;
                for j in 0..rank {
                    let e = gs * param::dwn::reference_efd(rank, &w, &xs, j);
                    want_dx[l.ids[i * rank + j] as usize * bs + s] += e;
                    assert!(
                        (slot[(i * rank + j) * bs + s] as f64 - e).abs() < 1e-5,
                        "rank {rank} slot"
                    );
                }
            }
        }
        for (a, b) in dt.iter().zip(&want_dt) {
            assert!(
                (*a as f64 - b).abs() < 1e-5,
                "rank {rank} table gradient {a} vs {b}"
            );
        }
        for (a, b) in dx.iter().zip(&want_dx) {
            assert!(
                (*a as f64 - b).abs() < 1e-5,
                "rank {rank} input gradient {a} vs {b}"
            );
        }
    }
}

#[test]
fn dwn_hard_forward_and_luts_agree() {
    let bs = LANES;
    for rank in 1..=6 {
        let l = dwn_layer(rank, 40 + rank as u64);
        let mut r = Rng::new(3);
        let bits: Vec<u8> = (0..l.in_dim() * bs)
            .map(|_| (r.uniform() < 0.5) as u8)
            .collect();
        let x: Vec<f32> = bits.iter().map(|&b| b as f32).collect();
        let mut hard = vec![0.0; l.out_dim() << rank];
        l.fold(true, &mut hard);
        let mut y = vec![0.0; l.out_dim() * bs];
        dwn_kernel::forward(rank, &l.ids, &hard, &x, &mut y, bs);
        let lut = lut_outputs(&l, &bits, bs);
        for (j, &out) in lut.iter().enumerate() {
            assert_eq!(y[j], out as f32, "rank {rank}");
        }
    }
}

/// Renumbering by inputs moves each neuron whole: its outputs, weights, candidates and logits
/// land on its new number, and numbers follow the inputs within each group only.
#[test]
fn ordering_by_inputs_moves_whole_neurons() {
    let (rank, group, bs) = (3, 4, 8);
    for learnable in [false, true] {
        let mut c = LayerConfig::new(9, 12, rank);
        if learnable {
            c.connections = ConnectionKind::Learnable;
            c.num_candidates = 3;
        }
        let mut l = LogicDense::new(c, &mut Rng::new(21)).unwrap();
        let mut r = Rng::new(22);
        l.weights.iter_mut().for_each(|w| *w = r.uniform() - 0.5);
        l.conn_logits.iter_mut().for_each(|w| *w = r.uniform());
        let bits: Vec<u8> = (0..l.in_dim() * bs)
            .map(|_| (r.uniform() < 0.5) as u8)
            .collect();
        let before = l.clone();
        let order = connections::input_order(&l.ids, rank, group);
        l.order_by_inputs(group);
        let (y0, y1) = (lut_outputs(&before, &bits, bs), lut_outputs(&l, &bits, bs));
        let wpn = l.weights.len() / l.out_dim();
        let cpn = l.candidates.len() / l.out_dim();
        for (new, &old) in order.iter().enumerate() {
            let row = |v: &[u8], i: usize| v[i * bs..(i + 1) * bs].to_vec();
            assert_eq!(row(&y1, new), row(&y0, old), "outputs of neuron {old}");
            assert_eq!(
                l.ids[new * rank..][..rank],
                before.ids[old * rank..][..rank]
            );
            assert_eq!(
                l.weights[new * wpn..][..wpn],
                before.weights[old * wpn..][..wpn]
            );
            assert_eq!(
                l.candidates[new * cpn..][..cpn],
                before.candidates[old * cpn..][..cpn]
            );
            assert_eq!(
                l.conn_logits[new * cpn..][..cpn],
                before.conn_logits[old * cpn..][..cpn]
            );
            assert_eq!(old / group, new / group, "neuron {old} left its group");
        }
        for g in l.ids.chunks(rank * group) {
            let rows: Vec<&[u32]> = g.chunks(rank).collect();
            assert!(
                rows.windows(2).all(|w| w[0] <= w[1]),
                "{rows:?} not in order"
            );
        }
        assert_ne!(
            order,
            (0..12).collect::<Vec<_>>(),
            "a draw already in order tests nothing"
        );
    }
}
