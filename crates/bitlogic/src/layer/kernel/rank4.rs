//! Rank 4 written out as a multilinear polynomial in monomial form (every folded
//! parametrization at rank 4 runs here; `light` rank 4 is the common case).
//!
//! Corner k holds input j in bit 3 − j (x0 the most significant); below, x_b is the input of
//! bit b and S a set of bits. Corners and monomial coefficients are related by the Möbius
//! transform, and the polynomial is evaluated by Horner's rule one input at a time:
//!
//! ```text
//! c_S = Σ_{k ⊆ S} (−1)^{|S|−|k|} a_k           y = Σ_S c_S Π_{b ∈ S} x_b      (15 FMAs)
//! ∂y/∂x_b = Σ_{S ∋ b} c_S Π_{b' ∈ S∖b} x_b'     (a rank-3 polynomial: 7 FMAs)
//! ∂L/∂c_S = Σ g·Π_{b ∈ S} x_b                    ∂L/∂a_k = Σ_{S ⊇ k} (−1)^{|S|−|k|} ∂L/∂c_S
//! ```
//!
//! The lerp tree (`tree.rs`) takes 22 vector operations per chunk forward where Horner's rule
//! takes 15; backward, its walk splits the gradient at every node (two operations each) and
//! gathers sixteen corner sums, where here a chunk costs eleven products for the monomials,
//! sixteen FMAs into sums held in registers, and 28 FMAs for the four slopes (none in the
//! first layer, which has no input gradient). The sums go back to corners a tile at a time.
//! The coefficients of a tile of neurons are transformed together before their chunk loops,
//! so that the loops broadcast each from memory. In the training step of 784 → 8000 × 6,
//! batch 128, 2 threads, bf16, the layer blocks took 10.9 ms a step here against 15.0 ms
//! with the tree (steps alternated in one process).

use super::io::{GradRows, Sink};
use super::{check_ids, prefetch, LANES, PREFETCH};
use crate::layer::act::Act;
use crate::layer::lanes::Lanes;

/// Neurons whose monomial coefficients are worked out together, ahead of their chunk loops:
/// one per lane, so that the transforms run on vectors.
const TILE: usize = LANES;

/// The Möbius transform on 16 vectors, `v[k]` holding corner (or coefficient) k of 16
/// neurons: corners to monomial coefficients.
#[inline(always)]
fn to_monomials<S: Lanes>(v: &mut [S::V; 16]) {
    for bit in [1, 2, 4, 8] {
        for k in (0..16).rev() {
            if k & bit != 0 {
                v[k] = S::sub(v[k], v[k ^ bit]);
            }
        }
    }
}

/// Its transpose: monomial gradients to corner gradients.
#[inline(always)]
fn to_corners<S: Lanes>(v: &mut [S::V; 16]) {
    for bit in [1, 2, 4, 8] {
        for k in 0..16 {
            if k & bit == 0 {
                v[k] = S::sub(v[k], v[k | bit]);
            }
        }
    }
}

/// The monomial coefficients of up to [`TILE`] consecutive neurons (`corners.len() / 16`):
/// transposed so that each vector holds one corner of every neuron, transformed, and
/// transposed back.
#[inline(always)]
fn monomials<S: Lanes>(corners: &[f32], tile: &mut [[f32; 16]; TILE]) {
    let mut v = [S::splat(0.0); 16];
    for (v, a) in v.iter_mut().zip(corners.chunks_exact(16)) {
        // SAFETY: `a` holds 16 floats.
        *v = unsafe { S::load(a.as_ptr()) };
    }
    S::transpose16(&mut v);
    to_monomials::<S>(&mut v);
    S::transpose16(&mut v);
    for (t, v) in tile.iter_mut().zip(v) {
        // SAFETY: `t` holds 16 floats.
        unsafe { S::store(t.as_mut_ptr(), v) };
    }
}

/// Σ_k c[at[k]]·Π_{bit b of k} x[b] over three inputs, by Horner's rule (`at` is a constant
/// once inlined, so each coefficient is a broadcast from its place in `c`).
#[inline(always)]
fn horner3<S: Lanes>(c: &[f32; 16], at: [usize; 8], x: [S::V; 3]) -> S::V {
    let mut p = [x[0]; 4];
    for m in 0..4 {
        p[m] = S::fma(x[0], S::splat(c[at[2 * m + 1]]), S::splat(c[at[2 * m]]));
    }
    let q0 = S::fma(x[1], p[1], p[0]);
    let q1 = S::fma(x[1], p[3], p[2]);
    S::fma(x[2], q1, q0)
}

/// The neuron's polynomial at `x` (bit b's input in `x[b]`).
#[inline(always)]
fn value<S: Lanes>(c: &[f32; 16], x: &[S::V; 4]) -> S::V {
    let x3 = [x[0], x[1], x[2]];
    let lo = [0, 1, 2, 3, 4, 5, 6, 7];
    let hi = [8, 9, 10, 11, 12, 13, 14, 15];
    S::fma(x[3], horner3::<S>(c, hi, x3), horner3::<S>(c, lo, x3))
}

/// ∂y/∂x_b: the monomials that hold bit `b`, as a polynomial in the other three bits.
#[inline(always)]
fn slope<S: Lanes>(c: &[f32; 16], x: &[S::V; 4], b: usize) -> S::V {
    let low = (1 << b) - 1;
    let mut at = [0; 8];
    for (k, a) in at.iter_mut().enumerate() {
        *a = ((k & !low) << 1) | (1 << b) | (k & low);
    }
    let mut others = [x[0]; 3];
    for (k, o) in others.iter_mut().enumerate() {
        *o = x[if k < b { k } else { k + 1 }];
    }
    horner3::<S>(c, at, others)
}

/// The neuron's output from its polynomial's value.
#[inline(always)]
fn out_of<S: Lanes>(sigmoid: bool, y: S::V) -> S::V {
    if sigmoid {
        S::sigmoid(y)
    } else {
        y
    }
}

/// The output gradient `g` carried to the polynomial (through the sigmoid, if any).
#[inline(always)]
fn at_poly<S: Lanes>(c: &[f32; 16], sigmoid: bool, g: S::V, x: &[S::V; 4]) -> S::V {
    if sigmoid {
        let y = S::sigmoid(value::<S>(c, x));
        S::mul(g, S::mul(y, S::sub(S::splat(1.0), y)))
    } else {
        g
    }
}

/// Adds g·Π x over every monomial of one chunk into `sums`: eleven products, each monomial
/// a smaller one times one input. Written out: as a loop, the compiler kept `sums` in memory.
#[inline(always)]
fn add_monomials<S: Lanes>(g: S::V, x: &[S::V; 4], sums: &mut [S::V; 16]) {
    let [x0, x1, x2, x3] = *x;
    let (m3, m4) = (S::mul(x1, x0), x2);
    let (m5, m6) = (S::mul(m4, x0), S::mul(m4, x1));
    let m7 = S::mul(m6, x0);
    let (m9, m10, m12) = (S::mul(x3, x0), S::mul(x3, x1), S::mul(x3, x2));
    let (m11, m13, m14) = (S::mul(m10, x0), S::mul(m12, x0), S::mul(m12, x1));
    let m15 = S::mul(m14, x0);
    let m = [
        x0, x1, m3, m4, m5, m6, m7, x3, m9, m10, m11, m12, m13, m14, m15,
    ];
    sums[0] = S::add(sums[0], g);
    for (s, m) in sums[1..].iter_mut().zip(m) {
        *s = S::fma(g, m, *s);
    }
}

/// Row offsets of neuron `i`'s four inputs by bit (bit b is input 3 − b).
///
/// # Safety
/// `i < out_dim` and `ids.len() == 4 * out_dim`.
#[inline(always)]
unsafe fn offsets(ids: &[u32], i: usize, bs: usize) -> [usize; 4] {
    let mut rows = [0; 4];
    for (b, r) in rows.iter_mut().enumerate() {
        *r = *ids.get_unchecked(4 * i + 3 - b) as usize * bs;
    }
    rows
}

/// Asks for chunk `c` of the rows at `ahead` (the offsets of the neuron `PREFETCH` ahead) in
/// `base`: a hint, never dereferenced.
#[inline(always)]
fn prefetch_ahead<A>(base: *const A, ahead: &[usize; 4], c: usize) {
    for &r in ahead {
        prefetch(base.wrapping_add(r + c));
        if std::mem::size_of::<A>() > 2 {
            prefetch(base.wrapping_add(r + c + LANES));
        }
    }
}

/// Loads samples `c..c + 32` of the rows at `rows` as two vectors each.
///
/// # Safety
/// Every row offset plus `c + 32` is within `input`.
#[inline(always)]
unsafe fn load2<S: Lanes, A: Act>(
    input: &[A],
    rows: &[usize; 4],
    c: usize,
) -> ([S::V; 4], [S::V; 4]) {
    let (mut xa, mut xb) = ([S::splat(0.0); 4], [S::splat(0.0); 4]);
    for b in 0..4 {
        (xa[b], xb[b]) = A::load2::<S>(input.as_ptr().add(rows[b] + c));
    }
    (xa, xb)
}

/// Loads samples `c..c + 16` of the rows at `rows`.
///
/// # Safety
/// Every row offset plus `c + 16` is within `input`.
#[inline(always)]
unsafe fn load<S: Lanes, A: Act>(input: &[A], rows: &[usize; 4], c: usize) -> [S::V; 4] {
    let mut x = [S::splat(0.0); 4];
    for b in 0..4 {
        x[b] = A::load::<S>(input.as_ptr().add(rows[b] + c));
    }
    x
}

/// The sigmoid is a constant of each instance, in both passes, as in `rank2`.
#[inline(always)]
pub(super) fn forward<S: Lanes, A: Act, O: Sink<S, A>>(
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    out: &mut O,
    bs: usize,
) {
    if sigmoid {
        forward_with::<S, A, O, true>(ids, coef, input, out, bs)
    } else {
        forward_with::<S, A, O, false>(ids, coef, input, out, bs)
    }
}

#[inline(always)]
fn forward_with<S: Lanes, A: Act, O: Sink<S, A>, const SIGMOID: bool>(
    ids: &[u32],
    coef: &[f32],
    input: &[A],
    out: &mut O,
    bs: usize,
) {
    let sigmoid = SIGMOID;
    let in_dim = input.len() / bs;
    let out_dim = out.len();
    check_ids(4, ids, coef, out_dim, in_dim);
    let pairs = bs / (2 * LANES) * (2 * LANES);
    let mut tile = [[0f32; 16]; TILE];
    for start in (0..out_dim).step_by(TILE) {
        let end = (start + TILE).min(out_dim);
        monomials::<S>(&coef[16 * start..16 * end], &mut tile);
        for (i, c) in (start..end).zip(&tile) {
            // SAFETY: i < out_dim and so is the neuron ahead (its own past the last), and
            // `check_ids` saw four ids per neuron.
            let (rows, ahead) = unsafe {
                let n = (i + PREFETCH).min(out_dim - 1);
                (offsets(ids, i, bs), offsets(ids, n, bs))
            };
            for ch in (0..pairs).step_by(2 * LANES) {
                prefetch_ahead(input.as_ptr(), &ahead, ch);
                // SAFETY: every row holds `bs` values (`check_ids`) and ch + 32 <= bs.
                unsafe {
                    let (xa, xb) = load2::<S, A>(input, &rows, ch);
                    let (ya, yb) = (value::<S>(c, &xa), value::<S>(c, &xb));
                    out.put2(i, ch, out_of::<S>(sigmoid, ya), out_of::<S>(sigmoid, yb));
                }
            }
            for ch in (pairs..bs).step_by(LANES) {
                prefetch_ahead(input.as_ptr(), &ahead, ch);
                // SAFETY: as above, with ch + 16 <= bs.
                unsafe {
                    let x = load::<S, A>(input, &rows, ch);
                    out.put(i, ch, out_of::<S>(sigmoid, value::<S>(c, &x)));
                }
            }
        }
    }
}

/// Arguments as `super::backward_n` (rank 4), with the output gradients in `grad_out`; the
/// sigmoid a constant as in [`forward`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<S: Lanes, A: Act, const DX: bool, const SLOT: bool>(
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    grad_out: GradRows<A>,
    grad_in: &mut [A],
    slot_grad: &mut [f32],
    dcoef: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let (g, gi, sg) = (grad_out, grad_in, slot_grad);
    if sigmoid {
        backward_with::<S, A, DX, SLOT, true>(ids, coef, input, g, gi, sg, dcoef, accumulate, bs)
    } else {
        backward_with::<S, A, DX, SLOT, false>(ids, coef, input, g, gi, sg, dcoef, accumulate, bs)
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_with<S: Lanes, A: Act, const DX: bool, const SLOT: bool, const SIGMOID: bool>(
    ids: &[u32],
    coef: &[f32],
    input: &[A],
    grad_out: GradRows<A>,
    grad_in: &mut [A],
    slot_grad: &mut [f32],
    dcoef: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let sigmoid = SIGMOID;
    let in_dim = input.len() / bs;
    let out_dim = grad_out.len(bs);
    assert!(!DX || grad_in.len() == input.len());
    assert!(!SLOT || slot_grad.len() == out_dim * bs * 4);
    check_ids(4, ids, coef, out_dim, in_dim);
    // Slot gradients are f32 rows read per sample in row order: single chunks where kept.
    let pairs = if SLOT {
        0
    } else {
        bs / (2 * LANES) * (2 * LANES)
    };
    let zero = S::splat(0.0);
    let mut tile = [[0f32; 16]; TILE];
    let mut g_rows = grad_out.cursor(bs);
    // Each neuron's monomial gradients, lane k for monomial k, until its tile is done.
    let mut done = [zero; TILE];
    for start in (0..out_dim).step_by(TILE) {
        let end = (start + TILE).min(out_dim);
        monomials::<S>(&coef[16 * start..16 * end], &mut tile);
        for (i, c) in (start..end).zip(&tile) {
            // SAFETY: i < out_dim and so is the neuron ahead (its own past the last), and
            // `check_ids` saw four ids per neuron.
            let (rows, ahead) = unsafe {
                let n = (i + PREFETCH).min(out_dim - 1);
                (offsets(ids, i, bs), offsets(ids, n, bs))
            };
            // SAFETY: one call per neuron, and `out_dim` is the rows' length.
            let (g, clear) = unsafe { g_rows.next() };
            let mut sums = [zero; 16];
            for ch in (0..pairs).step_by(2 * LANES) {
                prefetch_ahead(input.as_ptr(), &ahead, ch);
                if DX {
                    prefetch_ahead(grad_in.as_ptr(), &ahead, ch);
                }
                // SAFETY: every row holds `bs` values in `input` and, with DX, in `grad_in`
                // (same shape, asserted); `g` holds `bs`; ch + 32 <= bs.
                unsafe {
                    let (xa, xb) = load2::<S, A>(input, &rows, ch);
                    let (ga, gb) = A::load2::<S>(g.add(ch));
                    // Consumed: cleared while its line is in cache (see `tree::backward_n`).
                    if clear {
                        std::ptr::write_bytes(g.add(ch), 0, 2 * LANES);
                    }
                    let ga = at_poly::<S>(c, sigmoid, ga, &xa);
                    let gb = at_poly::<S>(c, sigmoid, gb, &xb);
                    if DX {
                        // One input at a time, so that only its two slopes are live.
                        for (b, &row) in rows.iter().enumerate() {
                            let (sa, sb) = (slope::<S>(c, &xa, b), slope::<S>(c, &xb, b));
                            let p = grad_in.as_mut_ptr().add(row + ch);
                            let (u, v) = A::load2::<S>(p);
                            A::store2::<S>(p, S::fma(ga, sa, u), S::fma(gb, sb, v));
                        }
                    }
                    add_monomials::<S>(ga, &xa, &mut sums);
                    add_monomials::<S>(gb, &xb, &mut sums);
                }
            }
            for ch in (pairs..bs).step_by(LANES) {
                prefetch_ahead(input.as_ptr(), &ahead, ch);
                if DX {
                    prefetch_ahead(grad_in.as_ptr(), &ahead, ch);
                }
                // SAFETY: as above, with ch + 16 <= bs; with SLOT, slot_grad holds 4 rows per
                // neuron.
                unsafe {
                    let x = load::<S, A>(input, &rows, ch);
                    let gv = A::load::<S>(g.add(ch));
                    if clear {
                        A::store::<S>(g.add(ch), zero);
                    }
                    let gv = at_poly::<S>(c, sigmoid, gv, &x);
                    for (b, &row) in rows.iter().enumerate() {
                        if !(SLOT || DX) {
                            break;
                        }
                        let d = slope::<S>(c, &x, b);
                        if SLOT {
                            let dx = S::mul(gv, d);
                            let j = 3 - b;
                            S::store(slot_grad.as_mut_ptr().add((4 * i + j) * bs + ch), dx);
                            if DX {
                                let p = grad_in.as_mut_ptr().add(row + ch);
                                A::store::<S>(p, S::add(A::load::<S>(p), dx));
                            }
                        } else {
                            let p = grad_in.as_mut_ptr().add(row + ch);
                            A::store::<S>(p, S::fma(gv, d, A::load::<S>(p)));
                        }
                    }
                    add_monomials::<S>(gv, &x, &mut sums);
                }
            }
            done[i - start] = S::hsum16(&sums);
        }
        // Monomial gradients to corners, a tile at a time as the coefficients came.
        S::transpose16(&mut done);
        to_corners::<S>(&mut done);
        S::transpose16(&mut done);
        for (d, v) in dcoef[16 * start..16 * end].chunks_exact_mut(16).zip(done) {
            // SAFETY: `d` holds 16 floats.
            unsafe {
                let v = if accumulate {
                    S::add(S::load(d.as_ptr()), v)
                } else {
                    v
                };
                S::store(d.as_mut_ptr(), v);
            }
        }
    }
}
