//! Rank 2 written out as a bilinear polynomial, the hot case (difflogic's gates, light at
//! rank 2). With corners a0..a3 (index 2·[x0] + [x1]) and A = x0, B = x1:
//!
//! ```text
//! y = c0 + cB·B + cA·A + cAB·A·B      c0 = a0, cB = a1 − a0, cA = a2 − a0, cAB = a3 − a2 − a1 + a0
//! ∂y/∂A = cA + cAB·B                  ∂y/∂B = cB + cAB·A
//! ∂L/∂a3 = ΣgAB   ∂L/∂a2 = ΣgA − ΣgAB   ∂L/∂a1 = ΣgB − ΣgAB   ∂L/∂a0 = Σg − ΣgA − ΣgB + ΣgAB
//! ```
//!
//! It is the same function as the general lerp tree (`super::forward_n`), in fewer vector
//! operations per 16-sample chunk: three FMAs forward instead of four operations, and in the
//! backward pass nine instead of fourteen, because each input gradient is one FMA into its
//! row and the four sums Σg, ΣgA, ΣgB, ΣgAB replace the tree's per-leaf sums. The sums turn
//! into corner gradients once per neuron (four vector operations), and four neurons'
//! sixteen are reduced together (`hsum16`).

use super::{add_rest, add_sums, prefetch, LANES, PREFETCH};
use crate::layer::act::Act;
use crate::layer::lanes::Lanes;

/// One neuron's polynomial, broadcast to every lane.
struct Bilinear<V> {
    c0: V,
    ca: V,
    cb: V,
    cab: V,
}

impl<V: Copy> Bilinear<V> {
    #[inline(always)]
    fn of<S: Lanes<V = V>>(a: &[f32]) -> Self {
        Bilinear {
            c0: S::splat(a[0]),
            ca: S::splat(a[2] - a[0]),
            cb: S::splat(a[1] - a[0]),
            cab: S::splat(a[3] - a[2] - a[1] + a[0]),
        }
    }

    #[inline(always)]
    fn eval<S: Lanes<V = V>>(&self, x0: V, x1: V) -> V {
        S::fma(
            x0,
            S::fma(x1, self.cab, self.ca),
            S::fma(x1, self.cb, self.c0),
        )
    }
}

/// Row offsets of the inputs of the neuron `PREFETCH` ahead of `i` (its own past the last):
/// the chunk loops ask for the chunk they are at in those rows, so every line of the rows is
/// requested without a per-neuron prefetch loop. They are hints, never dereferenced here.
#[inline(always)]
fn ahead(ids: &[u32], i: usize, out_dim: usize, bs: usize) -> (usize, usize) {
    let n = if i + PREFETCH < out_dim {
        i + PREFETCH
    } else {
        i
    };
    (ids[2 * n] as usize * bs, ids[2 * n + 1] as usize * bs)
}

/// Row offsets of neuron `i`'s two inputs, checked once so that the chunk loop can read
/// through raw pointers.
#[inline(always)]
fn rows(ids: &[u32], i: usize, in_dim: usize, bs: usize) -> (usize, usize) {
    let (a, b) = (ids[2 * i] as usize, ids[2 * i + 1] as usize);
    assert!(a < in_dim && b < in_dim);
    (a * bs, b * bs)
}

#[inline(always)]
pub(super) fn forward<S: Lanes, A: Act>(
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    output: &mut [A],
    bs: usize,
) {
    let in_dim = input.len() / bs;
    let out_dim = output.len() / bs;
    for (i, out) in output.chunks_exact_mut(bs).enumerate() {
        let (ra, rb) = rows(ids, i, in_dim, bs);
        let (na, nb) = ahead(ids, i, out_dim, bs);
        let p = Bilinear::of::<S>(&coef[4 * i..4 * i + 4]);
        for c in (0..bs).step_by(LANES) {
            // SAFETY: both rows hold `bs` values (checked in `rows`) and c + 16 <= bs.
            unsafe {
                prefetch(input.as_ptr().wrapping_add(na + c));
                prefetch(input.as_ptr().wrapping_add(nb + c));
                let x0 = A::load::<S>(input.as_ptr().add(ra + c));
                let x1 = A::load::<S>(input.as_ptr().add(rb + c));
                let y = p.eval::<S>(x0, x1);
                let y = if sigmoid { S::sigmoid(y) } else { y };
                A::store::<S>(out.as_mut_ptr().add(c), y);
            }
        }
    }
}

/// Arguments as `super::backward_n` (rank 2).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<S: Lanes, A: Act, const DX: bool, const SLOT: bool>(
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    grad_out: &mut [A],
    grad_in: &mut [A],
    slot_grad: &mut [f32],
    dcoef: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let in_dim = input.len() / bs;
    let out_dim = grad_out.len() / bs;
    assert!(!DX || grad_in.len() == input.len());
    assert!(!SLOT || slot_grad.len() == grad_out.len() * 2);
    // The corner gradients of four consecutive neurons, reduced together.
    let mut group = [S::splat(0.0); LANES];
    for (i, g) in grad_out.chunks_exact_mut(bs).enumerate() {
        let (ra, rb) = rows(ids, i, in_dim, bs);
        let (na, nb) = ahead(ids, i, out_dim, bs);
        let p = Bilinear::of::<S>(&coef[4 * i..4 * i + 4]);
        let zero = S::splat(0.0);
        let (mut s, mut sa, mut sb, mut sab) = (zero, zero, zero, zero);
        for c in (0..bs).step_by(LANES) {
            // SAFETY: both rows hold `bs` values in `input` and, with DX, in `grad_in` (same
            // shape, asserted); `g` holds `bs`; with SLOT, slot_grad holds 2 rows per neuron;
            // c + 16 <= bs.
            unsafe {
                prefetch(input.as_ptr().wrapping_add(na + c));
                prefetch(input.as_ptr().wrapping_add(nb + c));
                if DX {
                    prefetch(grad_in.as_ptr().wrapping_add(na + c));
                    prefetch(grad_in.as_ptr().wrapping_add(nb + c));
                }
                let x0 = A::load::<S>(input.as_ptr().add(ra + c));
                let x1 = A::load::<S>(input.as_ptr().add(rb + c));
                let mut gv = A::load::<S>(g.as_ptr().add(c));
                // Consumed: cleared while its line is in cache (see `super::backward_n`).
                A::store::<S>(g.as_mut_ptr().add(c), zero);
                if sigmoid {
                    let y = S::sigmoid(p.eval::<S>(x0, x1));
                    gv = S::mul(gv, S::mul(y, S::sub(S::splat(1.0), y)));
                }
                let da = S::fma(x1, p.cab, p.ca);
                let db = S::fma(x0, p.cab, p.cb);
                if SLOT {
                    let (dxa, dxb) = (S::mul(gv, da), S::mul(gv, db));
                    let at = slot_grad.as_mut_ptr().add(2 * i * bs + c);
                    S::store(at, dxa);
                    S::store(at.add(bs), dxb);
                    if DX {
                        let pa = grad_in.as_mut_ptr().add(ra + c);
                        A::store::<S>(pa, S::add(A::load::<S>(pa), dxa));
                        let pb = grad_in.as_mut_ptr().add(rb + c);
                        A::store::<S>(pb, S::add(A::load::<S>(pb), dxb));
                    }
                } else if DX {
                    // One FMA into each input row.
                    let pa = grad_in.as_mut_ptr().add(ra + c);
                    A::store::<S>(pa, S::fma(gv, da, A::load::<S>(pa)));
                    let pb = grad_in.as_mut_ptr().add(rb + c);
                    A::store::<S>(pb, S::fma(gv, db, A::load::<S>(pb)));
                }
                let ga = S::mul(gv, x0);
                s = S::add(s, gv);
                sa = S::add(sa, ga);
                sb = S::fma(gv, x1, sb);
                sab = S::fma(ga, x1, sab);
            }
        }
        let j = 4 * (i % 4);
        group[j] = S::add(S::sub(s, S::add(sa, sb)), sab);
        group[j + 1] = S::sub(sb, sab);
        group[j + 2] = S::sub(sa, sab);
        group[j + 3] = sab;
        if i % 4 == 3 {
            add_sums::<S>(&group, 0, dcoef, 4 * (i - 3), accumulate);
        }
    }
    let rest = out_dim % 4;
    add_rest::<S>(
        &group[..4 * rest],
        &mut dcoef[4 * (out_dim - rest)..],
        accumulate,
    );
}
