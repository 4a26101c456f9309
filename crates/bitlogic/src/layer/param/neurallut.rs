//! `neurallut`: a tiny MLP per neuron (NeuraLUT), `depth` hidden layers of `hidden` tanh units.
//!
//! ```text
//!   h_1 = tanh(W_1 x + b_1),  h_l = tanh(W_l h_{l−1} + b_l),  f(x) = v·h_D + c
//!   relaxed:  y = σ( Σ_k f(k)/τ · φ_k(x) )        (the multilinear extension of f)
//!   LUT[k] = f(k) > 0                            (f at every binary address k)
//! ```
//! Every input a trained network ever sees is binary, so only the 2^n values f(k) matter
//! after training. Training therefore evaluates the MLP at the 2^n corners once per step
//! (the fold) and interpolates between them exactly as `light` does; on binary inputs the
//! relaxed output is σ(f(x)/τ). The gradient goes back through the MLP at each corner.
//!
//! Weights, in order: W_1 `[hidden][n]`, b_1, then per further layer W_l `[hidden][hidden]`,
//! b_l, then v `[hidden]` and c.
//!
//! ```
//! use bitlogic::layer::{LayerConfig, LogicDense, Parametrization};
//! use bitlogic::rng::Rng;
//! let mut cfg = LayerConfig::new(16, 8, 4);
//! cfg.parametrization = Parametrization::NeuraLut { hidden: 8, depth: 2 };
//! let layer = LogicDense::new(cfg, &mut Rng::new(1)).unwrap();
//! assert_eq!(layer.weights.len(), 8 * (8 * 4 + 8 + 8 * 8 + 8 + 8 + 1));
//! ```

use super::{logit, WeightInit, MAX_RANK};
use crate::rng::Rng;

/// Largest hidden width and depth accepted (keeps the per-corner scratch on the stack).
pub const MAX_HIDDEN: usize = 32;
pub const MAX_DEPTH: usize = 4;
const K: usize = 1 << MAX_RANK;

pub fn weights(rank: usize, hidden: usize, depth: usize) -> usize {
    hidden * rank + hidden + (depth - 1) * (hidden * hidden + hidden) + hidden + 1
}

/// Offsets of (W, b) of hidden layer `l` and of the output weights.
fn layer_at(rank: usize, hidden: usize, l: usize) -> (usize, usize, usize) {
    let fan_in = if l == 0 { rank } else { hidden };
    let start = if l == 0 {
        0
    } else {
        hidden * rank + hidden + (l - 1) * (hidden * hidden + hidden)
    };
    (start, start + hidden * fan_in, fan_in)
}

pub(super) fn init(
    rank: usize,
    hidden: usize,
    depth: usize,
    init: WeightInit,
    tau: f32,
    rng: &mut Rng,
    w: &mut [f32],
) {
    let out = w.len() - hidden - 1;
    match init {
        WeightInit::Random => {
            // Glorot-like scale per layer, so f(k) starts with a spread of order one.
            for l in 0..depth {
                let (wo, bo, fan_in) = layer_at(rank, hidden, l);
                let s = (1.0 / fan_in as f32).sqrt() * 1.5;
                w[wo..bo].iter_mut().for_each(|v| *v = rng.normal() * s);
                w[bo..bo + hidden].iter_mut().for_each(|v| *v = 0.0);
            }
            let s = 2.0 / (hidden as f32).sqrt();
            w[out..out + hidden]
                .iter_mut()
                .for_each(|v| *v = rng.normal() * s);
            w[out + hidden] = 0.0;
        }
        WeightInit::Residual { probability } => {
            // Unit 0 of every layer carries ±t_l = tanh(…) of (2 x_0 − 1) (odd, zero biases),
            // and the output scales it to f = L·(2 x_0 − 1).
            w.iter_mut().for_each(|v| *v = 0.0);
            let mut t = 1.0f32;
            for l in 0..depth {
                let (wo, bo, _) = layer_at(rank, hidden, l);
                if l == 0 {
                    // W x_0 + b = x_0·2 − 1.
                    w[wo] = 2.0;
                    w[bo] = -1.0;
                } else {
                    w[wo] = 1.0;
                }
                t = t.tanh();
            }
            w[out] = tau * logit(probability) / t;
        }
    }
}

/// The input bits of every corner, `x[j][k]`.
#[inline]
fn corners(rank: usize) -> [[f32; K]; MAX_RANK] {
    std::array::from_fn(|j| {
        std::array::from_fn(|k| {
            if j < rank {
                ((k >> (rank - 1 - j)) & 1) as f32
            } else {
                0.0
            }
        })
    })
}

/// Hidden activations of every corner, `h[l][unit][k]`, and f(k).
struct Pass {
    h: [[[f32; K]; MAX_HIDDEN]; MAX_DEPTH],
    f: [f32; K],
}

fn forward(rank: usize, hidden: usize, depth: usize, w: &[f32]) -> Pass {
    let kk = 1 << rank;
    let x = corners(rank);
    let mut p = Pass {
        h: [[[0.0; K]; MAX_HIDDEN]; MAX_DEPTH],
        f: [0.0; K],
    };
    for l in 0..depth {
        let (wo, bo, fan_in) = layer_at(rank, hidden, l);
        let (prev, cur) = p.h.split_at_mut(l);
        for u in 0..hidden {
            let row = &w[wo + u * fan_in..wo + (u + 1) * fan_in];
            let z = &mut cur[0][u][..kk];
            z.iter_mut().for_each(|v| *v = w[bo + u]);
            for (i, &c) in row.iter().enumerate() {
                let src = if l == 0 { &x[i] } else { &prev[l - 1][i] };
                z.iter_mut().zip(&src[..kk]).for_each(|(z, s)| *z += c * s);
            }
            z.iter_mut().for_each(|v| *v = v.tanh());
        }
    }
    let out = w.len() - hidden - 1;
    p.f[..kk].iter_mut().for_each(|v| *v = w[out + hidden]);
    for u in 0..hidden {
        let c = w[out + u];
        let h = &p.h[depth - 1][u];
        p.f[..kk].iter_mut().zip(h).for_each(|(f, h)| *f += c * h);
    }
    p
}

pub(super) fn fold(
    rank: usize,
    hidden: usize,
    depth: usize,
    w: &[f32],
    tau: f32,
    hard: bool,
    a: &mut [f32],
) {
    let p = forward(rank, hidden, depth, w);
    let inv = 1.0 / tau;
    for (a, &f) in a.iter_mut().zip(&p.f) {
        *a = if hard {
            (f > 0.0) as u8 as f32
        } else {
            f * inv
        };
    }
}

pub(super) fn unfold_grad(
    rank: usize,
    hidden: usize,
    depth: usize,
    w: &[f32],
    tau: f32,
    da: &[f32],
    dw: &mut [f32],
) {
    let kk = 1 << rank;
    let p = forward(rank, hidden, depth, w);
    let x = corners(rank);
    let inv = 1.0 / tau;
    let df: [f32; K] = std::array::from_fn(|k| if k < kk { da[k] * inv } else { 0.0 });
    let out = w.len() - hidden - 1;
    dw[out + hidden] += df[..kk].iter().sum::<f32>();
    // g[unit][k]: ∂L/∂(pre-activation) of the current layer, walked from the top.
    let mut g = [[0f32; K]; MAX_HIDDEN];
    for u in 0..hidden {
        let h = &p.h[depth - 1][u];
        dw[out + u] += (0..kk).map(|k| df[k] * h[k]).sum::<f32>();
        for k in 0..kk {
            g[u][k] = df[k] * w[out + u] * (1.0 - h[k] * h[k]);
        }
    }
    for l in (0..depth).rev() {
        let (wo, bo, fan_in) = layer_at(rank, hidden, l);
        for u in 0..hidden {
            dw[bo + u] += g[u][..kk].iter().sum::<f32>();
            for i in 0..fan_in {
                let src = if l == 0 { &x[i] } else { &p.h[l - 1][i] };
                dw[wo + u * fan_in + i] += (0..kk).map(|k| g[u][k] * src[k]).sum::<f32>();
            }
        }
        if l > 0 {
            let mut below = [[0f32; K]; MAX_HIDDEN];
            for (i, b) in below[..hidden].iter_mut().enumerate() {
                let h = &p.h[l - 1][i];
                for u in 0..hidden {
                    let c = w[wo + u * fan_in + i];
                    b[..kk]
                        .iter_mut()
                        .zip(&g[u][..kk])
                        .for_each(|(b, g)| *b += c * g);
                }
                b[..kk]
                    .iter_mut()
                    .zip(&h[..kk])
                    .for_each(|(b, h)| *b *= 1.0 - h * h);
            }
            g = below;
        }
    }
}

/// Plain f64 reference: σ of the multilinear extension of the MLP, written from the formula
/// (each f(k) by a direct MLP pass, then Σ_k f(k)/τ φ_k(x)).
pub(super) fn reference(
    rank: usize,
    hidden: usize,
    depth: usize,
    w: &[f64],
    tau: f64,
    x: &[f64],
) -> f64 {
    let out = w.len() - hidden - 1;
    let mlp = |bits: &[f64]| -> f64 {
        let mut h: Vec<f64> = bits.to_vec();
        for l in 0..depth {
            let (wo, bo, fan_in) = layer_at(rank, hidden, l);
            h = (0..hidden)
                .map(|u| {
                    let z: f64 = (0..fan_in).map(|i| w[wo + u * fan_in + i] * h[i]).sum();
                    (z + w[bo + u]).tanh()
                })
                .collect();
        }
        (0..hidden).map(|u| w[out + u] * h[u]).sum::<f64>() + w[out + hidden]
    };
    let z: f64 = (0..1usize << rank)
        .map(|k| {
            let bits: Vec<f64> = (0..rank)
                .map(|j| ((k >> (rank - 1 - j)) & 1) as f64)
                .collect();
            mlp(&bits) / tau * super::basis(rank, k, x)
        })
        .sum();
    1.0 / (1.0 + (-z).exp())
}
