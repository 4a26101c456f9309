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
//! row and the four sums Σg, ΣgA, ΣgB, ΣgAB replace the tree's per-leaf sums. Four
//! neurons' sixteen sums are reduced across lanes together (`hsum16`) and only then turned
//! into corner gradients, seven vector operations for the four (`Lanes::bilinear_corners`)
//! where it took five per neuron before the reduction.
//!
//! What bounds both loops is the number of instructions issued, not any one port: thirty
//! no-ops added per neuron slowed the forward pass by a cycle per three of them. So the
//! per-neuron bookkeeping is kept lean: the ids are checked once per call and then read
//! without a check, the polynomials are worked out a tile of neurons at a time (each
//! coefficient is then a broadcast load), and the output-gradient row advances by a counter.

use super::io::{GradRows, Sink};
use super::{check_ids, prefetch, LANES, PREFETCH};
use crate::layer::act::Act;
use crate::layer::lanes::Lanes;

/// One neuron's polynomial, broadcast to every lane.
struct Bilinear<V> {
    c0: V,
    ca: V,
    cb: V,
    cab: V,
}

/// Neurons whose polynomials are worked out together, ahead of their chunk loops.
const TILE: usize = 64;

/// The polynomials (c0, cA, cB, cAB) of up to [`TILE`] consecutive neurons from their
/// corners (`corners.len() / 4` of them), in one pass that the compiler vectorises.
#[inline(always)]
fn polynomials(corners: &[f32], tile: &mut [[f32; 4]; TILE]) {
    for (m, a) in tile.iter_mut().zip(corners.chunks_exact(4)) {
        *m = [a[0], a[2] - a[0], a[1] - a[0], a[3] - a[2] - a[1] + a[0]];
    }
}

impl<V: Copy> Bilinear<V> {
    #[inline(always)]
    fn of<S: Lanes<V = V>>(m: &[f32; 4]) -> Self {
        Bilinear {
            c0: S::splat(m[0]),
            ca: S::splat(m[1]),
            cb: S::splat(m[2]),
            cab: S::splat(m[3]),
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

    /// The neuron's output (through the sigmoid, if any).
    #[inline(always)]
    fn out<S: Lanes<V = V>>(&self, sigmoid: bool, x0: V, x1: V) -> V {
        let y = self.eval::<S>(x0, x1);
        if sigmoid {
            S::sigmoid(y)
        } else {
            y
        }
    }

    /// The output gradient `g` carried to the polynomial (through the sigmoid, if any).
    #[inline(always)]
    fn at_poly<S: Lanes<V = V>>(&self, sigmoid: bool, g: V, x0: V, x1: V) -> V {
        if sigmoid {
            let y = S::sigmoid(self.eval::<S>(x0, x1));
            S::mul(g, S::mul(y, S::sub(S::splat(1.0), y)))
        } else {
            g
        }
    }
}

/// Row offsets of neuron `i`'s two inputs, and of the neuron `PREFETCH` ahead (its own past
/// the last): the chunk loops ask for the chunk they are at in those rows, so every line of
/// the rows is requested without a per-neuron prefetch loop.
///
/// # Safety
/// `i < out_dim` and `ids.len() == 2 * out_dim`.
#[inline(always)]
unsafe fn offsets(ids: &[u32], i: usize, out_dim: usize, bs: usize) -> [usize; 4] {
    let n = (i + PREFETCH).min(out_dim - 1);
    let id = |k: usize| *ids.get_unchecked(k) as usize * bs;
    [id(2 * i), id(2 * i + 1), id(2 * n), id(2 * n + 1)]
}

/// Asks for the lines of a 32-sample pair of chunks at `p`: one line of bf16 or f16, two of
/// f32.
#[inline(always)]
fn prefetch_pair<A>(p: *const A) {
    prefetch(p);
    if std::mem::size_of::<A>() > 2 {
        prefetch(p.wrapping_add(LANES));
    }
}

/// The sigmoid is a constant of each instance, in both passes: as a run-time flag it kept
/// the unused path's registers live in the chunk loops, and the parametrizations without it
/// (light, difflogic) spilled more (their blocks took 3–4 % longer).
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
    // Chunks go two at a time (`Act::load2`: bf16 widens 32 values in two instructions); a
    // block of an odd number of chunks ends with one alone.
    let pairs = bs / (2 * LANES) * (2 * LANES);
    check_ids(2, ids, coef, out_dim, in_dim);
    let mut tile = [[0f32; 4]; TILE];
    for start in (0..out_dim).step_by(TILE) {
        let end = (start + TILE).min(out_dim);
        polynomials(&coef[4 * start..4 * end], &mut tile);
        for (i, m) in (start..end).zip(&tile) {
            let p = Bilinear::of::<S>(m);
            // SAFETY: i < out_dim, and `check_ids` saw two ids per neuron.
            let [ra, rb, na, nb] = unsafe { offsets(ids, i, out_dim, bs) };
            for c in (0..pairs).step_by(2 * LANES) {
                // SAFETY: both rows hold `bs` values (`check_ids`) and c + 32 <= bs.
                unsafe {
                    prefetch_pair(input.as_ptr().wrapping_add(na + c));
                    prefetch_pair(input.as_ptr().wrapping_add(nb + c));
                    let (x0, x0b) = A::load2::<S>(input.as_ptr().add(ra + c));
                    let (x1, x1b) = A::load2::<S>(input.as_ptr().add(rb + c));
                    let (y, yb) = (p.out::<S>(sigmoid, x0, x1), p.out::<S>(sigmoid, x0b, x1b));
                    out.put2(i, c, y, yb);
                }
            }
            if pairs < bs {
                let c = pairs;
                // SAFETY: as above, with c + 16 == bs.
                unsafe {
                    prefetch(input.as_ptr().wrapping_add(na + c));
                    prefetch(input.as_ptr().wrapping_add(nb + c));
                    let x0 = A::load::<S>(input.as_ptr().add(ra + c));
                    let x1 = A::load::<S>(input.as_ptr().add(rb + c));
                    out.put(i, c, p.out::<S>(sigmoid, x0, x1));
                }
            }
        }
    }
}

/// One neuron's backward sums Σg, Σg·A, Σg·B, Σg·A·B over its chunks.
struct Sums<V> {
    s: V,
    sa: V,
    sb: V,
    sab: V,
}

impl<V: Copy> Sums<V> {
    /// The sums of the first pair of chunks: two additions fewer than adding it to zeros.
    #[inline(always)]
    fn of_pair<S: Lanes<V = V>>(g: (V, V), x0: (V, V), x1: (V, V)) -> Self {
        let (ga, gab) = (S::mul(g.0, x0.0), S::mul(g.1, x0.1));
        Sums {
            s: S::add(g.0, g.1),
            sa: S::add(ga, gab),
            sb: S::fma(g.1, x1.1, S::mul(g.0, x1.0)),
            sab: S::fma(gab, x1.1, S::mul(ga, x1.0)),
        }
    }

    #[inline(always)]
    fn add<S: Lanes<V = V>>(&mut self, g: V, x0: V, x1: V) {
        let ga = S::mul(g, x0);
        self.s = S::add(self.s, g);
        self.sa = S::add(self.sa, ga);
        self.sb = S::fma(g, x1, self.sb);
        self.sab = S::fma(ga, x1, self.sab);
    }
}

/// Arguments as `super::backward_n` (rank 2), with the output gradients in `grad_out`. The
/// sigmoid is a constant as in [`forward`], and so is whether the output-gradient rows are
/// cleared as they are read (own rows, not a GroupSum head's shared ones): blocks 0.2–1.6 %
/// shorter.
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
    let own = matches!(g, GradRows::Own(_));
    match (sigmoid, own) {
        (true, true) => backward_with::<S, A, DX, SLOT, true, true>(
            ids, coef, input, g, gi, sg, dcoef, accumulate, bs,
        ),
        (true, false) => backward_with::<S, A, DX, SLOT, true, false>(
            ids, coef, input, g, gi, sg, dcoef, accumulate, bs,
        ),
        (false, true) => backward_with::<S, A, DX, SLOT, false, true>(
            ids, coef, input, g, gi, sg, dcoef, accumulate, bs,
        ),
        (false, false) => backward_with::<S, A, DX, SLOT, false, false>(
            ids, coef, input, g, gi, sg, dcoef, accumulate, bs,
        ),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_with<
    S: Lanes,
    A: Act,
    const DX: bool,
    const SLOT: bool,
    const SIGMOID: bool,
    const CLEAR: bool,
>(
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
    assert!(!SLOT || slot_grad.len() == out_dim * bs * 2);
    // Pairs of chunks as in `forward`, but where slot gradients are kept: their f32 rows are
    // read per sample in row order.
    let pairs = if SLOT {
        0
    } else {
        bs / (2 * LANES) * (2 * LANES)
    };
    // The sums of four consecutive neurons, reduced together and then turned into corner
    // gradients (once per neuron instead of once per lane).
    let mut group = [S::splat(0.0); LANES];
    check_ids(2, ids, coef, out_dim, in_dim);
    let mut tile = [[0f32; 4]; TILE];
    let mut g_rows = grad_out.cursor(bs);
    for start in (0..out_dim).step_by(TILE) {
        let end = (start + TILE).min(out_dim);
        polynomials(&coef[4 * start..4 * end], &mut tile);
        for (i, m) in (start..end).zip(&tile) {
            let p = Bilinear::of::<S>(m);
            // SAFETY: i < out_dim, and `check_ids` saw two ids per neuron.
            let [ra, rb, na, nb] = unsafe { offsets(ids, i, out_dim, bs) };
            // SAFETY: one call per neuron, and `out_dim` is the rows' length.
            let (g, clear) = unsafe { g_rows.next() };
            debug_assert_eq!(clear, CLEAR);
            let clear = CLEAR;
            let zero = S::splat(0.0);
            let mut sums = Sums {
                s: zero,
                sa: zero,
                sb: zero,
                sab: zero,
            };
            for c in (0..pairs).step_by(2 * LANES) {
                // SAFETY: both rows hold `bs` values in `input` and, with DX, in `grad_in` (same
                // shape, asserted); `g` holds `bs`; c + 32 <= bs.
                unsafe {
                    prefetch_pair(input.as_ptr().wrapping_add(na + c));
                    prefetch_pair(input.as_ptr().wrapping_add(nb + c));
                    if DX {
                        prefetch_pair(grad_in.as_ptr().wrapping_add(na + c));
                        prefetch_pair(grad_in.as_ptr().wrapping_add(nb + c));
                    }
                    let (x0, x0b) = A::load2::<S>(input.as_ptr().add(ra + c));
                    let (x1, x1b) = A::load2::<S>(input.as_ptr().add(rb + c));
                    let (gv, gvb) = A::load2::<S>(g.add(c));
                    // Consumed: cleared while its line is in cache (see `super::tree::backward_n`); zero
                    // is all-zero bits in every storage type.
                    if clear {
                        std::ptr::write_bytes(g.add(c), 0, 2 * LANES);
                    }
                    let (gv, gvb) = (
                        p.at_poly::<S>(sigmoid, gv, x0, x1),
                        p.at_poly::<S>(sigmoid, gvb, x0b, x1b),
                    );
                    if DX {
                        // One FMA into each input row; a row read twice sees its first update.
                        let pa = grad_in.as_mut_ptr().add(ra + c);
                        let (ga, gab) = A::load2::<S>(pa);
                        let da = S::fma(x1, p.cab, p.ca);
                        let dab = S::fma(x1b, p.cab, p.ca);
                        A::store2::<S>(pa, S::fma(gv, da, ga), S::fma(gvb, dab, gab));
                        let pb = grad_in.as_mut_ptr().add(rb + c);
                        let (gb, gbb) = A::load2::<S>(pb);
                        let db = S::fma(x0, p.cab, p.cb);
                        let dbb = S::fma(x0b, p.cab, p.cb);
                        A::store2::<S>(pb, S::fma(gv, db, gb), S::fma(gvb, dbb, gbb));
                    }
                    if c == 0 {
                        sums = Sums::of_pair::<S>((gv, gvb), (x0, x0b), (x1, x1b));
                    } else {
                        sums.add::<S>(gv, x0, x1);
                        sums.add::<S>(gvb, x0b, x1b);
                    }
                }
            }
            for c in (pairs..bs).step_by(LANES) {
                // SAFETY: as above, with c + 16 <= bs; with SLOT, slot_grad holds 2 rows per
                // neuron.
                unsafe {
                    prefetch(input.as_ptr().wrapping_add(na + c));
                    prefetch(input.as_ptr().wrapping_add(nb + c));
                    if DX {
                        prefetch(grad_in.as_ptr().wrapping_add(na + c));
                        prefetch(grad_in.as_ptr().wrapping_add(nb + c));
                    }
                    let x0 = A::load::<S>(input.as_ptr().add(ra + c));
                    let x1 = A::load::<S>(input.as_ptr().add(rb + c));
                    let gv = A::load::<S>(g.add(c));
                    if clear {
                        A::store::<S>(g.add(c), zero);
                    }
                    let gv = p.at_poly::<S>(sigmoid, gv, x0, x1);
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
                        let pa = grad_in.as_mut_ptr().add(ra + c);
                        A::store::<S>(pa, S::fma(gv, da, A::load::<S>(pa)));
                        let pb = grad_in.as_mut_ptr().add(rb + c);
                        A::store::<S>(pb, S::fma(gv, db, A::load::<S>(pb)));
                    }
                    sums.add::<S>(gv, x0, x1);
                }
            }
            let j = 4 * (i % 4);
            [group[j], group[j + 1], group[j + 2], group[j + 3]] =
                [sums.s, sums.sa, sums.sb, sums.sab];
            if i % 4 == 3 {
                add_corners::<S>(&group, &mut dcoef[4 * (i - 3)..4 * (i + 1)], accumulate);
            }
        }
    }
    let rest = out_dim % 4;
    if rest > 0 {
        add_corners::<S>(&group, &mut dcoef[4 * (out_dim - rest)..], accumulate);
    }
}

/// `dcoef` (+)= the corner gradients of up to four neurons (`dcoef.len() / 4`) from the
/// sums in `group` (Σg, Σg·A, Σg·B, Σg·A·B per neuron).
#[inline(always)]
fn add_corners<S: Lanes>(group: &[S::V; LANES], dcoef: &mut [f32], accumulate: bool) {
    let mut c = [0f32; LANES];
    // SAFETY: `c` holds 16 floats.
    unsafe { S::store(c.as_mut_ptr(), S::bilinear_corners(S::hsum16(group))) };
    for (d, c) in dcoef.iter_mut().zip(c) {
        *d = if accumulate { *d + c } else { c };
    }
}
