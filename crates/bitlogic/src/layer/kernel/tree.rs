//! The lerp tree of ranks 1, 3, 5 and 6, walked depth first (and of ranks 2 and 4 at the
//! scalar level and in the tests, as the reference for their written-out kernels).
//!
//! A neuron with coefficients `a[0..2^n]` computes `y = Σ_k a_k φ_k(x)`: corners 2m and
//! 2m+1 (they differ in the last input, n−1) are lerped by `x_{n−1}` into a pair's value,
//! pairs by `x_{n−2}`, and so on up to the root, which lerps by `x_0`. That is 2^n − 1
//! fused multiply-adds per sample.
//!
//! Backward, with `w` the gradient arriving at a node (the output gradient at the root), a
//! node at input `j` with children `lo`, `hi` passes `(1 − x_j)·w` to `lo` and `x_j·w` to
//! `hi`, and `x_j` gathers `w·(hi − lo)`; a pair's `w` is `∂L/∂a` of its two corners times
//! `1 − x` and `x`. The weight a node passes down needs only the inputs, and the difference
//! it adds to `x_j` needs only its subtree's value, so one depth-first walk does both: it
//! descends with the weights and returns each subtree's value on the way up. At any moment
//! it holds one pending sibling per level, O(n) vectors, where a level-by-level walk holds
//! all 2^n node values and their gradients, which at rank 4 and up no longer fit in the
//! registers and go through memory on every chunk.
//!
//! The tree's shape is a type (`Pair`, `Node<Pair>`, `Node<Node<Pair>>`, …), so that the
//! walk is unrolled at compile time with every index a constant.

use super::io::{GradRows, Sink};
use super::{add_rest, add_sums, prefetch_rows, LANES, PREFETCH};
use crate::layer::act::Act;
use crate::layer::lanes::Lanes;
use std::marker::PhantomData;

/// A neuron's constants and one chunk's state while the tree is walked.
pub(super) struct Walk<'a, S: Lanes, const N: usize> {
    /// The chunk's inputs.
    xs: [S::V; N],
    /// The neuron's corners (corner 2m is pair m's low end) and a_{2m+1} − a_{2m}: scalars,
    /// broadcast where they are used (a broadcast load costs no arithmetic).
    a: &'a [f32],
    d: &'a [f32; 32],
    /// ∂L/∂x_j, summed over the nodes at input j, when `want_dx` (a constant per kernel).
    /// The two lowest levels, which have the most nodes, sum into four and two partial sums
    /// (`dx_last`, `dx_next`): one running sum would chain 2^(n−1) dependent FMAs per chunk.
    dx: [S::V; N],
    dx_last: [S::V; 4],
    dx_next: [S::V; 2],
    want_dx: bool,
    /// Per corner pair, Σ w and Σ w·x_{n−1} over the chunks so far (the pair's gradients are
    /// their difference and the latter, taken once per neuron), at `base + 2m`, `base + 2m + 1`.
    da: &'a mut [S::V; 64],
    base: usize,
    /// The neuron's first chunk: `da` is written, not added to.
    first: bool,
}

/// A subtree whose first pair is `m`.
pub(super) trait Tree {
    /// Its value.
    fn value<S: Lanes, const N: usize>(xs: &[S::V; N], a: &[f32], d: &[f32; 32], m: usize) -> S::V;
    /// Sends the gradient `w` down it; returns its value.
    fn back<S: Lanes, const N: usize>(t: &mut Walk<'_, S, N>, m: usize, w: S::V) -> S::V;
}

/// A subtree whose shape is its type: its height (0 for a pair of corners, which reads input
/// n − 1) and its number of pairs.
pub(super) trait Shape: Tree {
    const LEVEL: usize;
    const PAIRS: usize;
}

/// Two corners, lerped by the last input.
pub(super) struct Pair;

/// Two subtrees `C`, lerped by the input above theirs.
pub(super) struct Node<C>(PhantomData<C>);

/// The whole tree of rank N, walked by recursion on the height at run time: the same
/// operations in the same order as the unrolled shapes, in a fraction of the code. For lanes
/// that do not unroll (`Lanes::UNROLL`).
pub(super) struct Looped;

/// `l + x·(h − l)`.
#[inline(always)]
fn lerp<S: Lanes>(x: S::V, l: S::V, h: S::V) -> S::V {
    S::fma(x, S::sub(h, l), l)
}

/// The value of pair `m`.
#[inline(always)]
fn pair_value<S: Lanes>(x: S::V, a: &[f32], d: &[f32; 32], m: usize) -> S::V {
    S::fma(x, S::splat(d[m]), S::splat(a[2 * m]))
}

/// Pair `m` receives `w`: its input gradient and corner sums are gathered.
#[inline(always)]
fn pair_back<S: Lanes, const N: usize>(t: &mut Walk<'_, S, N>, m: usize, w: S::V) -> S::V {
    let x = t.xs[N - 1];
    let d = S::splat(t.d[m]);
    if t.want_dx {
        t.dx_last[m % 4] = S::fma(w, d, t.dx_last[m % 4]);
    }
    let (e, o) = (t.base + 2 * m, t.base + 2 * m + 1);
    if t.first {
        t.da[e] = w;
        t.da[o] = S::mul(w, x);
    } else {
        t.da[e] = S::add(t.da[e], w);
        t.da[o] = S::fma(w, x, t.da[o]);
    }
    S::fma(x, d, S::splat(t.a[2 * m]))
}

/// The weights a node at height `level` passes to its low and high child.
#[inline(always)]
fn node_split<S: Lanes, const N: usize>(t: &Walk<'_, S, N>, level: usize, w: S::V) -> (S::V, S::V) {
    let wh = S::mul(w, t.xs[N - 1 - level]);
    (S::sub(w, wh), wh)
}

/// A node at height `level` over pair `m`, given its children's values: adds its share of
/// ∂L/∂x_j and returns its value.
#[inline(always)]
fn node_join<S: Lanes, const N: usize>(
    t: &mut Walk<'_, S, N>,
    level: usize,
    m: usize,
    w: S::V,
    l: S::V,
    h: S::V,
) -> S::V {
    let j = N - 1 - level;
    let diff = S::sub(h, l);
    if t.want_dx {
        if level == 1 {
            let p = (m / 2) % 2;
            t.dx_next[p] = S::fma(w, diff, t.dx_next[p]);
        } else {
            t.dx[j] = S::fma(w, diff, t.dx[j]);
        }
    }
    S::fma(t.xs[j], diff, l)
}

impl Tree for Pair {
    #[inline(always)]
    fn value<S: Lanes, const N: usize>(xs: &[S::V; N], a: &[f32], d: &[f32; 32], m: usize) -> S::V {
        pair_value::<S>(xs[N - 1], a, d, m)
    }

    #[inline(always)]
    fn back<S: Lanes, const N: usize>(t: &mut Walk<'_, S, N>, m: usize, w: S::V) -> S::V {
        pair_back(t, m, w)
    }
}

impl Shape for Pair {
    const LEVEL: usize = 0;
    const PAIRS: usize = 1;
}

impl<C: Shape> Tree for Node<C> {
    #[inline(always)]
    fn value<S: Lanes, const N: usize>(xs: &[S::V; N], a: &[f32], d: &[f32; 32], m: usize) -> S::V {
        let l = C::value::<S, N>(xs, a, d, m);
        let h = C::value::<S, N>(xs, a, d, m + C::PAIRS);
        lerp::<S>(xs[N - 1 - Self::LEVEL], l, h)
    }

    #[inline(always)]
    fn back<S: Lanes, const N: usize>(t: &mut Walk<'_, S, N>, m: usize, w: S::V) -> S::V {
        let (wl, wh) = node_split(t, Self::LEVEL, w);
        let l = C::back::<S, N>(t, m, wl);
        let h = C::back::<S, N>(t, m + C::PAIRS, wh);
        node_join(t, Self::LEVEL, m, w, l, h)
    }
}

impl<C: Shape> Shape for Node<C> {
    const LEVEL: usize = C::LEVEL + 1;
    const PAIRS: usize = 2 * C::PAIRS;
}

fn looped_value<S: Lanes, const N: usize>(
    xs: &[S::V; N],
    a: &[f32],
    d: &[f32; 32],
    level: usize,
    m: usize,
) -> S::V {
    if level == 0 {
        return pair_value::<S>(xs[N - 1], a, d, m);
    }
    let l = looped_value::<S, N>(xs, a, d, level - 1, m);
    let h = looped_value::<S, N>(xs, a, d, level - 1, m + (1 << (level - 1)));
    lerp::<S>(xs[N - 1 - level], l, h)
}

fn looped_back<S: Lanes, const N: usize>(
    t: &mut Walk<'_, S, N>,
    level: usize,
    m: usize,
    w: S::V,
) -> S::V {
    if level == 0 {
        return pair_back(t, m, w);
    }
    let (wl, wh) = node_split(t, level, w);
    let l = looped_back(t, level - 1, m, wl);
    let h = looped_back(t, level - 1, m + (1 << (level - 1)), wh);
    node_join(t, level, m, w, l, h)
}

impl Tree for Looped {
    #[inline(always)]
    fn value<S: Lanes, const N: usize>(xs: &[S::V; N], a: &[f32], d: &[f32; 32], m: usize) -> S::V {
        looped_value::<S, N>(xs, a, d, N - 1, m)
    }

    #[inline(always)]
    fn back<S: Lanes, const N: usize>(t: &mut Walk<'_, S, N>, m: usize, w: S::V) -> S::V {
        looped_back(t, N - 1, m, w)
    }
}

/// A neuron's pair differences a_{2m+1} − a_{2m} (`d[..K/2]`; the rest is never read).
#[inline(always)]
fn differences<const K: usize>(a: &[f32], d: &mut [f32; 32]) {
    for m in 0..K / 2 {
        d[m] = a[2 * m + 1] - a[2 * m];
    }
}

/// Row offsets of a neuron's inputs, checked once so that the chunk loops read through raw
/// pointers.
#[inline(always)]
fn rows<const N: usize>(id: &[u32], in_dim: usize, bs: usize) -> [usize; N] {
    let mut rows = [0usize; N];
    for j in 0..N {
        let r = id[j] as usize;
        assert!(r < in_dim);
        rows[j] = r * bs;
    }
    rows
}

/// Loads a chunk of each input row.
///
/// # Safety
/// Every row offset plus `c + 16` is within `input`.
#[inline(always)]
unsafe fn load_inputs<S: Lanes, A: Act, const N: usize>(
    input: &[A],
    rows: &[usize; N],
    c: usize,
) -> [S::V; N] {
    let mut xs = [S::splat(0.0); N];
    for j in 0..N {
        xs[j] = A::load::<S>(input.as_ptr().add(rows[j] + c));
    }
    xs
}

/// Loads 32 samples of each input row as two vectors, in `Act::load2`'s order.
///
/// # Safety
/// Every row offset plus `c + 32` is within `input`.
#[inline(always)]
unsafe fn load_inputs2<S: Lanes, A: Act, const N: usize>(
    input: &[A],
    rows: &[usize; N],
    c: usize,
) -> ([S::V; N], [S::V; N]) {
    let (mut xa, mut xb) = ([S::splat(0.0); N], [S::splat(0.0); N]);
    for j in 0..N {
        (xa[j], xb[j]) = A::load2::<S>(input.as_ptr().add(rows[j] + c));
    }
    (xa, xb)
}

#[inline(always)]
pub(super) fn forward_n<S: Lanes, A: Act, T: Tree, const N: usize, const K: usize, O>(
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    out: &mut O,
    bs: usize,
) where
    O: Sink<S, A>,
{
    let in_dim = input.len() / bs;
    let mut d = [0.0; 32];
    let out_dim = out.len();
    for i in 0..out_dim {
        if i + PREFETCH < out_dim {
            let next = &ids[(i + PREFETCH) * N..(i + PREFETCH + 1) * N];
            prefetch_rows(input.as_ptr(), next, bs);
        }
        let rows = rows::<N>(&ids[i * N..i * N + N], in_dim, bs);
        let a = &coef[i * K..i * K + K];
        differences::<K>(a, &mut d);
        let act = |y| if sigmoid { S::sigmoid(y) } else { y };
        // Chunks go two at a time (`Act::load2`: bf16 widens 32 values in two instructions);
        // a block of an odd number of chunks ends with one alone.
        let pairs = bs / (2 * LANES) * (2 * LANES);
        for c in (0..pairs).step_by(2 * LANES) {
            // SAFETY: every row holds `bs` values and c + 32 <= bs.
            unsafe {
                let (xa, xb) = load_inputs2::<S, A, N>(input, &rows, c);
                let ya = T::value::<S, N>(&xa, a, &d, 0);
                let yb = T::value::<S, N>(&xb, a, &d, 0);
                out.put2(i, c, act(ya), act(yb));
            }
        }
        for c in (pairs..bs).step_by(LANES) {
            // SAFETY: every row holds `bs` values and c + 16 <= bs.
            unsafe {
                let xs = load_inputs::<S, A, N>(input, &rows, c);
                let y = T::value::<S, N>(&xs, a, &d, 0);
                out.put(i, c, if sigmoid { S::sigmoid(y) } else { y });
            }
        }
    }
}

/// What a chunk's walk needs of its neuron.
struct Neuron<'a, const N: usize> {
    a: &'a [f32],
    d: &'a [f32; 32],
    /// Where its pair sums sit in `da`.
    base: usize,
    want_dx: bool,
}

/// The gradient arriving at the root: the output gradient, through the sigmoid if any.
#[inline(always)]
fn arriving<S: Lanes, T: Tree, const N: usize>(
    sigmoid: bool,
    g: S::V,
    xs: &[S::V; N],
    nb: &Neuron<'_, N>,
) -> S::V {
    if sigmoid {
        let y = S::sigmoid(T::value::<S, N>(xs, nb.a, nb.d, 0));
        S::mul(g, S::mul(y, S::sub(S::splat(1.0), y)))
    } else {
        g
    }
}

/// Walks one chunk down the tree from the root with gradient `w`: adds into the pair sums
/// `da` (writes them on the neuron's `first` chunk) and returns ∂L/∂x_j.
#[inline(always)]
fn walk<S: Lanes, T: Tree, const N: usize>(
    xs: [S::V; N],
    w: S::V,
    nb: &Neuron<'_, N>,
    da: &mut [S::V; 64],
    first: bool,
) -> [S::V; N] {
    let zero = S::splat(0.0);
    let mut t = Walk::<S, N> {
        xs,
        a: nb.a,
        d: nb.d,
        dx: [zero; N],
        dx_last: [zero; 4],
        dx_next: [zero; 2],
        want_dx: nb.want_dx,
        da,
        base: nb.base,
        first,
    };
    T::back::<S, N>(&mut t, 0, w);
    let mut dx = t.dx;
    let (l, n) = (t.dx_last, t.dx_next);
    dx[N - 1] = S::add(S::add(l[0], l[1]), S::add(l[2], l[3]));
    if N >= 2 {
        dx[N - 2] = S::add(n[0], n[1]);
    }
    dx
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_n<
    S: Lanes,
    A: Act,
    T: Tree,
    const N: usize,
    const K: usize,
    const DX: bool,
>(
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    mut grad_out: GradRows<A>,
    grad_in: Option<&mut [A]>,
    slot_grad: Option<&mut [f32]>,
    dcoef: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let in_dim = input.len() / bs;
    // The walk gathers ∂L/∂x only with `DX` (a constant, so that the first layer's walk
    // skips it); where it goes, to `grad_in` or `slot_grad` or both, is decided per chunk.
    assert_eq!(DX, grad_in.is_some() || slot_grad.is_some());
    let gi = grad_in.map(|g| {
        assert_eq!(g.len(), input.len());
        g.as_mut_ptr()
    });
    let sg = slot_grad.map(|s| {
        assert_eq!(s.len(), grad_out.len(bs) * bs * N);
        s.as_mut_ptr()
    });
    // Coefficient gradients are reduced 16 vectors at a time (`hsum16`), so below rank 4 the
    // vectors of 16 / K consecutive neurons gather here first, at `base`; their 16
    // coefficients are contiguous in `dcoef`.
    let mut da = [S::splat(0.0); 64];
    let per = if K < LANES { LANES / K } else { 1 };
    let out_dim = grad_out.len(bs);
    let mut d = [0.0; 32];
    for i in 0..out_dim {
        let (g, clear) = grad_out.row(i, bs);
        if i + PREFETCH < out_dim {
            let next = &ids[(i + PREFETCH) * N..(i + PREFETCH + 1) * N];
            prefetch_rows(input.as_ptr(), next, bs);
            if let Some(gi) = gi {
                prefetch_rows(gi as *const A, next, bs);
            }
        }
        let rows = rows::<N>(&ids[i * N..i * N + N], in_dim, bs);
        let a = &coef[i * K..i * K + K];
        differences::<K>(a, &mut d);
        let nb = Neuron::<N> {
            a,
            d: &d,
            base: (i % per) * K,
            want_dx: DX,
        };
        // Pairs of chunks as in `forward_n`, but where slot gradients are kept: their f32
        // rows are read per sample in row order.
        let pairs = if sg.is_some() {
            0
        } else {
            bs / (2 * LANES) * (2 * LANES)
        };
        for c in (0..pairs).step_by(2 * LANES) {
            // SAFETY: rows were bounds-checked above (`grad_in` has the shape of `input`),
            // `g` holds `bs` values, and c + 32 <= bs.
            unsafe {
                let (xa, xb) = load_inputs2::<S, A, N>(input, &rows, c);
                let (ga, gb) = A::load2::<S>(g.add(c));
                // Consumed: cleared while its line is in cache, so that the buffer is zero
                // when it next gathers input gradients (no separate memset pass); zero is
                // all-zero bits in every storage type.
                if clear {
                    std::ptr::write_bytes(g.add(c), 0, 2 * LANES);
                }
                let wa = arriving::<S, T, N>(sigmoid, ga, &xa, &nb);
                let wb = arriving::<S, T, N>(sigmoid, gb, &xb, &nb);
                let dxa = walk::<S, T, N>(xa, wa, &nb, &mut da, c == 0);
                let dxb = walk::<S, T, N>(xb, wb, &nb, &mut da, false);
                if let Some(gi) = gi {
                    for j in 0..N {
                        let p = gi.add(rows[j] + c);
                        let (u, v) = A::load2::<S>(p);
                        A::store2::<S>(p, S::add(u, dxa[j]), S::add(v, dxb[j]));
                    }
                }
            }
        }
        for c in (pairs..bs).step_by(LANES) {
            // SAFETY: as above, with c + 16 <= bs; `slot_grad` holds N rows per neuron.
            unsafe {
                let xs = load_inputs::<S, A, N>(input, &rows, c);
                let gv = A::load::<S>(g.add(c));
                if clear {
                    A::store::<S>(g.add(c), S::splat(0.0));
                }
                let w = arriving::<S, T, N>(sigmoid, gv, &xs, &nb);
                let dx = walk::<S, T, N>(xs, w, &nb, &mut da, c == 0);
                if let Some(gi) = gi {
                    for j in 0..N {
                        let p = gi.add(rows[j] + c);
                        A::store::<S>(p, S::add(A::load::<S>(p), dx[j]));
                    }
                }
                if let Some(sg) = sg {
                    for (j, v) in dx.iter().enumerate() {
                        S::store(sg.add((i * N + j) * bs + c), *v);
                    }
                }
            }
        }
        // The pair's gradients are Σ w·(1 − x) = Σ w − Σ w·x and Σ w·x.
        let base = (i % per) * K;
        for m in 0..K / 2 {
            let (e, o) = (base + 2 * m, base + 2 * m + 1);
            da[e] = S::sub(da[e], da[o]);
        }
        if K >= LANES {
            for grp in 0..K / LANES {
                add_sums::<S>(&da, grp * LANES, dcoef, i * K + grp * LANES, accumulate);
            }
        } else if (i + 1) % per == 0 {
            add_sums::<S>(&da, 0, dcoef, (i + 1) * K - LANES, accumulate);
        }
    }
    // Neurons left over from the last group of 16 / K (out_dim not a multiple): one at a time.
    let rest = if K < LANES { out_dim % per } else { 0 };
    add_rest::<S>(
        &da[..rest * K],
        &mut dcoef[(out_dim - rest) * K..],
        accumulate,
    );
}

/// Calls `$f` with the tree of rank `$rank`, other than 2 and 4 (they have `rank2` and
/// `rank4`): unrolled where the lanes are, else `Looped`.
macro_rules! by_tree {
    ($rank:expr, $f:ident $(::<$($c:tt),*>)?, ($($arg:expr),*)) => {{
        use $crate::layer::kernel::tree::{Looped, Node, Pair};
        type T3 = Node<Node<Pair>>;
        // `S::UNROLL` is a constant: the branch not taken is never instantiated.
        if S::UNROLL {
            match $rank {
                1 => $f::<S, A, Pair, 1, 2 $($(, $c)*)?>($($arg),*),
                3 => $f::<S, A, T3, 3, 8 $($(, $c)*)?>($($arg),*),
                5 => $f::<S, A, Node<Node<T3>>, 5, 32 $($(, $c)*)?>($($arg),*),
                6 => $f::<S, A, Node<Node<Node<T3>>>, 6, 64 $($(, $c)*)?>($($arg),*),
                r => unreachable!("rank {r} is rejected when the layer is built, 2 and 4 have their kernels"),
            }
        } else {
            // Every rank, 2 and 4 included: see `forward_into`.
            match $rank {
                1 => $f::<S, A, Looped, 1, 2 $($(, $c)*)?>($($arg),*),
                2 => $f::<S, A, Looped, 2, 4 $($(, $c)*)?>($($arg),*),
                3 => $f::<S, A, Looped, 3, 8 $($(, $c)*)?>($($arg),*),
                4 => $f::<S, A, Looped, 4, 16 $($(, $c)*)?>($($arg),*),
                5 => $f::<S, A, Looped, 5, 32 $($(, $c)*)?>($($arg),*),
                6 => $f::<S, A, Looped, 6, 64 $($(, $c)*)?>($($arg),*),
                r => unreachable!("rank {r} is rejected when the layer is built"),
            }
        }
    }};
}
pub(super) use by_tree;
