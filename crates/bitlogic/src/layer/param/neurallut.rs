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

/// Largest hidden width and depth accepted.
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

/// tanh(x) = 2σ(2x) − 1 through the kernels' polynomial exp: it vectorises where libm's
/// tanh would be a call per corner (the fold runs for every neuron at every step).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    2.0 / (1.0 + crate::layer::kernel::exp_approx(-2.0 * x)) - 1.0
}

/// Bit `i` of every corner address, as f32 (input i is address bit n−1−i).
#[inline(always)]
fn corner_bit(rank: usize, i: usize, k: usize) -> f32 {
    ((k >> (rank - 1 - i)) & 1) as f32
}

thread_local! {
    /// Per-thread scratch: hidden activations `[depth][hidden][2^n]` and two gradient
    /// planes. It grows once to the largest layer a thread folds and is then reused, so a
    /// training step allocates nothing (and no 32 KB stack array is zeroed per neuron).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < len {
            s.resize(len, 0.0);
        }
        f(&mut s[..len])
    })
}

/// Hidden activations of every corner into `h` (`[depth][hidden][kk]`) and f(k) into `f`.
fn forward(rank: usize, hidden: usize, depth: usize, w: &[f32], h: &mut [f32], f: &mut [f32]) {
    let kk = 1 << rank;
    let plane = hidden * kk;
    for l in 0..depth {
        let (wo, bo, fan_in) = layer_at(rank, hidden, l);
        let (prev, cur) = h.split_at_mut(l * plane);
        let prev = &prev[prev.len().saturating_sub(plane)..];
        for u in 0..hidden {
            let row = &w[wo + u * fan_in..wo + (u + 1) * fan_in];
            let z = &mut cur[u * kk..(u + 1) * kk];
            z.iter_mut().for_each(|v| *v = w[bo + u]);
            for (i, &c) in row.iter().enumerate() {
                if l == 0 {
                    for (k, z) in z.iter_mut().enumerate() {
                        *z += c * corner_bit(rank, i, k);
                    }
                } else {
                    let src = &prev[i * kk..(i + 1) * kk];
                    z.iter_mut().zip(src).for_each(|(z, s)| *z += c * s);
                }
            }
            z.iter_mut().for_each(|v| *v = tanh(*v));
        }
    }
    let out = w.len() - hidden - 1;
    let top = &h[(depth - 1) * plane..depth * plane];
    f[..kk].iter_mut().for_each(|v| *v = w[out + hidden]);
    for u in 0..hidden {
        let c = w[out + u];
        let hu = &top[u * kk..(u + 1) * kk];
        f[..kk].iter_mut().zip(hu).for_each(|(f, h)| *f += c * h);
    }
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
    let kk = 1 << rank;
    let mut f = [0f32; K];
    with_scratch(depth * hidden * kk, |h| {
        forward(rank, hidden, depth, w, h, &mut f)
    });
    let inv = 1.0 / tau;
    for (a, &f) in a.iter_mut().zip(&f[..kk]) {
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
    let plane = hidden * kk;
    with_scratch((depth + 2) * plane, |buf| {
        let (h, rest) = buf.split_at_mut(depth * plane);
        let (g, below) = rest.split_at_mut(plane);
        let mut f = [0f32; K];
        forward(rank, hidden, depth, w, h, &mut f);
        let inv = 1.0 / tau;
        let df: [f32; K] = std::array::from_fn(|k| if k < kk { da[k] * inv } else { 0.0 });
        let out = w.len() - hidden - 1;
        dw[out + hidden] += df[..kk].iter().sum::<f32>();
        // g[unit][k]: ∂L/∂(pre-activation) of the current layer, walked from the top.
        let top = &h[(depth - 1) * plane..];
        for u in 0..hidden {
            let hu = &top[u * kk..(u + 1) * kk];
            dw[out + u] += (0..kk).map(|k| df[k] * hu[k]).sum::<f32>();
            for k in 0..kk {
                g[u * kk + k] = df[k] * w[out + u] * (1.0 - hu[k] * hu[k]);
            }
        }
        for l in (0..depth).rev() {
            let (wo, bo, fan_in) = layer_at(rank, hidden, l);
            for u in 0..hidden {
                let gu = &g[u * kk..(u + 1) * kk];
                dw[bo + u] += gu.iter().sum::<f32>();
                for i in 0..fan_in {
                    let v: f32 = if l == 0 {
                        (0..kk).map(|k| gu[k] * corner_bit(rank, i, k)).sum()
                    } else {
                        let src = &h[(l - 1) * plane + i * kk..(l - 1) * plane + (i + 1) * kk];
                        gu.iter().zip(src).map(|(g, s)| g * s).sum()
                    };
                    dw[wo + u * fan_in + i] += v;
                }
            }
            if l > 0 {
                below.iter_mut().for_each(|v| *v = 0.0);
                for i in 0..hidden {
                    let b = &mut below[i * kk..(i + 1) * kk];
                    for u in 0..hidden {
                        let c = w[wo + u * fan_in + i];
                        b.iter_mut()
                            .zip(&g[u * kk..(u + 1) * kk])
                            .for_each(|(b, g)| *b += c * g);
                    }
                    let hp = &h[(l - 1) * plane + i * kk..(l - 1) * plane + (i + 1) * kk];
                    b.iter_mut().zip(hp).for_each(|(b, h)| *b *= 1.0 - h * h);
                }
                g.copy_from_slice(below);
            }
        }
    })
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
