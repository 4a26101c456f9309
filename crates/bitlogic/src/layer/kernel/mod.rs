//! The fused multilinear kernel shared by every folded parametrization.
//!
//! A neuron with folded coefficients `a[0..2^n]` (see `param`) computes
//! `y = act(Σ_k a_k φ_k(x))`. Evaluating that sum as a tree of linear interpolations,
//! one level per input starting from the least significant address bit (input n−1),
//! costs 2^n − 1 fused multiply-adds per sample and needs no 2^n×batch intermediates.
//! The backward pass replays the tree for a 16-sample chunk in registers, then walks it
//! top-down: a node's gradient splits into (1 − x_j)·d and x_j·d for its children, and
//! x_j's gradient gathers d·(hi − lo). The leaves' gradients are ∂L/∂a_k.
//!
//! Rows are `bs` samples long (a multiple of [`LANES`]); `input` is `[in_dim][bs]`,
//! `output` `[out_dim][bs]`, `ids` `[out_dim][n]`, `coef` `[out_dim][2^n]`.
//! The kernels are written once over fixed 16-lane arrays and instantiated per SIMD
//! level with `target_feature`, so the compiler emits AVX-512, AVX2 or plain code from
//! the same source; the scalar references and the gradient checks are in `layer/tests.rs`.
//! Rank 2, the hot case, is written out as a bilinear polynomial in `rank2.rs` (fewer vector
//! operations per chunk); `tests.rs` here checks it against the tree.
//! Activation rows (`input`, `output`, `grad_out`, `grad_in`) are generic over their storage
//! type ([`Act`]: f32, bf16, f16); everything in registers, and `dcoef` and `slot_grad`, is f32.

use super::act::Act;
use super::lanes::Lanes;
use super::param::Parametrization;
use super::simd::dispatch;

mod io;
mod rank2;
#[cfg(test)]
mod tests;

/// Samples per chunk: one AVX-512 register of f32.
pub const LANES: usize = 16;

/// exp(x) by range reduction to [−ln2/2, ln2/2] and a degree-6 polynomial; written so that
/// it vectorises (the libm call would not). Relative error below 2e-7.
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    // 1.5 · 2^23: adding it rounds to the nearest integer, which then sits in the low
    // mantissa bits. Reading n from there keeps every step in vector lanes; `n as i32`
    // saturates and maps NaN to 0, which compiles to a scalar test per lane.
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let k = x * std::f32::consts::LOG2_E + SHIFT;
    let n = k - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    // n ∈ [−126, 127] after the clamp, so n + 127 is a normal exponent.
    let bits = k.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127);
    p * f32::from_bits(bits << 23)
}

#[inline(always)]
pub fn sigmoid_approx(z: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-z))
}

/// The first level of the lerp tree pairs corners 2m and 2m+1 (they differ in input n−1):
/// their low value and their difference, broadcast to all lanes into `lo[..K/2]`, `d[..K/2]`.
/// The arrays live across neurons (entries ≥ K/2 are never read), so nothing is zeroed here:
/// at rank 6 that would be an 8 KB memset per neuron.
#[inline(always)]
fn first_level<S: Lanes, const K: usize>(a: &[f32], lo: &mut [S::V; K], d: &mut [S::V; K]) {
    // Plain loops rather than `array::from_fn`: at K = 16 and up the latter is not inlined,
    // and its closure then calls the broadcast intrinsic out of line, once per entry.
    for m in 0..K / 2 {
        lo[m] = S::splat(a[2 * m]);
        d[m] = S::splat(a[2 * m + 1] - a[2 * m]);
    }
}

#[inline(always)]
fn forward_n<S: Lanes, A: Act, const N: usize, const K: usize, O: io::Sink<S, A>>(
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    out: &mut O,
    bs: usize,
) {
    let in_dim = input.len() / bs;
    let (mut lo, mut d) = ([S::splat(0.0); K], [S::splat(0.0); K]);
    // The tree's nodes: entries are written before they are read in every chunk.
    let mut t = [S::splat(0.0); K];
    let out_dim = out.len();
    for i in 0..out_dim {
        let id = &ids[i * N..i * N + N];
        let a = &coef[i * K..i * K + K];
        if i + PREFETCH < out_dim {
            prefetch_rows(
                input.as_ptr(),
                &ids[(i + PREFETCH) * N..(i + PREFETCH + 1) * N],
                bs,
            );
        }
        // Bounds are checked once per neuron; the chunk loop then reads through raw pointers.
        let mut rows = [input.as_ptr(); N];
        for j in 0..N {
            let r = id[j] as usize;
            assert!(r < in_dim);
            rows[j] = input[r * bs..].as_ptr();
        }
        first_level::<S, K>(a, &mut lo, &mut d);
        for c in (0..bs).step_by(LANES) {
            // SAFETY: every row holds `bs` values and c + 16 <= bs.
            unsafe {
                let x = A::load::<S>(rows[N - 1].add(c));
                for m in 0..K / 2 {
                    t[m] = S::fma(x, d[m], lo[m]);
                }
                let mut len = K / 2;
                let mut j = N - 1;
                while len > 1 {
                    j -= 1;
                    len /= 2;
                    let x = A::load::<S>(rows[j].add(c));
                    for m in 0..len {
                        t[m] = S::fma(x, S::sub(t[2 * m + 1], t[2 * m]), t[2 * m]);
                    }
                }
                let y = if sigmoid { S::sigmoid(t[0]) } else { t[0] };
                out.put(i, c, y);
            }
        }
    }
}

/// Offset of tree level `lev` in the flat node array (level 0 has K/2 nodes, the root is at K−2).
#[inline(always)]
const fn off(k: usize, lev: usize) -> usize {
    k - (k >> lev)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_n<
    S: Lanes,
    A: Act,
    const N: usize,
    const K: usize,
    const DX: bool,
    const SLOT: bool,
>(
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    mut grad_out: io::GradRows<A>,
    grad_in: &mut [A],
    slot_grad: &mut [f32],
    dcoef: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let in_dim = input.len() / bs;
    assert!(!DX || grad_in.len() == input.len());
    assert!(!SLOT || slot_grad.len() == grad_out.len(bs) * bs * N);
    // Tree values and their gradients: every entry is written before it is read in each
    // chunk, so they are initialised once per call, not per chunk (a 4 KB memset at rank 6).
    let mut nodes = [S::splat(0.0); K];
    let mut gn = [S::splat(0.0); K];
    // Coefficient gradients, one vector per coefficient: the first chunk writes them, later
    // ones add. They are reduced 16 vectors at a time (`hsum16`), so below rank 4 the
    // vectors of 16 / K consecutive neurons gather here first, at `base`; their 16
    // coefficients are contiguous in `dcoef`.
    let mut da = [S::splat(0.0); 64];
    let per = if K < LANES { LANES / K } else { 1 };
    let out_dim = grad_out.len(bs);
    let (mut lo, mut d) = ([S::splat(0.0); K], [S::splat(0.0); K]);
    for i in 0..out_dim {
        let (g, clear) = grad_out.row(i, bs);
        let id = &ids[i * N..i * N + N];
        let a = &coef[i * K..i * K + K];
        if i + PREFETCH < out_dim {
            let next = &ids[(i + PREFETCH) * N..(i + PREFETCH + 1) * N];
            prefetch_rows(input.as_ptr(), next, bs);
            if DX {
                prefetch_rows(grad_in.as_ptr(), next, bs);
            }
        }
        let base = (i % per) * K;
        let mut rows = [0usize; N];
        for j in 0..N {
            let r = id[j] as usize;
            assert!(r < in_dim);
            rows[j] = r * bs;
        }
        first_level::<S, K>(a, &mut lo, &mut d);
        for c in (0..bs).step_by(LANES) {
            // SAFETY: rows were bounds-checked above and c + 16 <= bs.
            unsafe {
                let mut xs = [S::splat(0.0); N];
                for j in 0..N {
                    xs[j] = A::load::<S>(input.as_ptr().add(rows[j] + c));
                }
                for m in 0..K / 2 {
                    nodes[m] = S::fma(xs[N - 1], d[m], lo[m]);
                }
                // The root (level N − 1) is read only by the sigmoid's derivative; the input
                // gradients need the levels below it.
                let top = if sigmoid { N } else { N - 1 };
                for lev in 1..top {
                    let j = N - 1 - lev;
                    let (p, q) = (off(K, lev - 1), off(K, lev));
                    for m in 0..K >> (lev + 1) {
                        let (l, h) = (nodes[p + 2 * m], nodes[p + 2 * m + 1]);
                        nodes[q + m] = S::fma(xs[j], S::sub(h, l), l);
                    }
                }
                let gv = A::load::<S>(g.add(c));
                // Consumed: cleared while its line is in cache, so that the buffer is zero
                // when it next gathers input gradients (no separate memset pass).
                if clear {
                    A::store::<S>(g.add(c), S::splat(0.0));
                }
                gn[K - 2] = if sigmoid {
                    let y = S::sigmoid(nodes[K - 2]);
                    S::mul(gv, S::mul(y, S::sub(S::splat(1.0), y)))
                } else {
                    gv
                };
                let mut dx = [S::splat(0.0); N];
                for lev in (1..N).rev() {
                    let j = N - 1 - lev;
                    let (p, q) = (off(K, lev - 1), off(K, lev));
                    for m in 0..K >> (lev + 1) {
                        let dn = gn[q + m];
                        if DX || SLOT {
                            dx[j] =
                                S::fma(dn, S::sub(nodes[p + 2 * m + 1], nodes[p + 2 * m]), dx[j]);
                        }
                        let hi = S::mul(dn, xs[j]);
                        gn[p + 2 * m] = S::sub(dn, hi);
                        gn[p + 2 * m + 1] = hi;
                    }
                }
                for m in 0..K / 2 {
                    let dn = gn[m];
                    if DX || SLOT {
                        dx[N - 1] = S::fma(dn, d[m], dx[N - 1]);
                    }
                    // Σ dn and Σ dn·x; the pair's gradients are their difference and the
                    // latter, taken once per neuron below (two operations fewer per chunk).
                    let (e, o) = (base + 2 * m, base + 2 * m + 1);
                    if c == 0 {
                        da[e] = dn;
                        da[o] = S::mul(dn, xs[N - 1]);
                    } else {
                        da[e] = S::add(da[e], dn);
                        da[o] = S::fma(dn, xs[N - 1], da[o]);
                    }
                }
                if DX {
                    for j in 0..N {
                        let p = grad_in.as_mut_ptr().add(rows[j] + c);
                        A::store::<S>(p, S::add(A::load::<S>(p), dx[j]));
                    }
                }
                if SLOT {
                    for (j, v) in dx.iter().enumerate() {
                        S::store(slot_grad.as_mut_ptr().add((i * N + j) * bs + c), *v);
                    }
                }
            }
        }
        // The pair's gradients are Σ dn·(1 − x) = Σ dn − Σ dn·x and Σ dn·x.
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

/// `dcoef[at..at + 16]` (+)= the lane sums of `v[from..from + 16]`.
#[inline(always)]
fn add_sums<S: Lanes>(v: &[S::V], from: usize, dcoef: &mut [f32], at: usize, accumulate: bool) {
    let sums = S::hsum16(v[from..from + LANES].try_into().expect("16 vectors"));
    let d = &mut dcoef[at..at + LANES];
    // SAFETY: `d` holds 16 floats.
    unsafe {
        let sums = if accumulate {
            S::add(S::load(d.as_ptr()), sums)
        } else {
            sums
        };
        S::store(d.as_mut_ptr(), sums);
    }
}

/// `dcoef[e]` (+)= the lane sum of `v[e]`, one vector at a time (groups short of 16).
#[inline(always)]
fn add_rest<S: Lanes>(v: &[S::V], dcoef: &mut [f32], accumulate: bool) {
    for (d, &v) in dcoef.iter_mut().zip(v) {
        let v = S::hsum(v);
        *d = if accumulate { *d + v } else { v };
    }
}

/// How many neurons ahead the kernels ask for input rows: a neuron's inputs are random rows,
/// and at 64-sample blocks a layer's rows no longer fit in L2, so each would otherwise wait
/// on a cache miss.
const PREFETCH: usize = 4;

/// Asks for the cache line at `p` (a hint: it never faults, so `p` needs no check).
#[inline(always)]
fn prefetch<A>(p: *const A) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches every cache line of the `bs`-sample rows `ids` of `base` (a hint: it never
/// faults, so the ids need no check here).
#[inline(always)]
fn prefetch_rows<A>(base: *const A, ids: &[u32], bs: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = bs * std::mem::size_of::<A>();
        for &r in ids {
            let p = base.wrapping_add(r as usize * bs) as *const i8;
            for off in (0..bytes).step_by(64) {
                // SAFETY: a prefetch reads nothing and cannot fault.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (base, ids, bs);
}

macro_rules! by_rank {
    ($rank:expr, $f:ident $(::<$($c:tt),*>)?, ($($arg:expr),*)) => {
        match $rank {
            1 => $f::<S, A, 1, 2 $($(, $c)*)?>($($arg),*),
            2 => $f::<S, A, 2, 4 $($(, $c)*)?>($($arg),*),
            3 => $f::<S, A, 3, 8 $($(, $c)*)?>($($arg),*),
            4 => $f::<S, A, 4, 16 $($(, $c)*)?>($($arg),*),
            5 => $f::<S, A, 5, 32 $($(, $c)*)?>($($arg),*),
            6 => $f::<S, A, 6, 64 $($(, $c)*)?>($($arg),*),
            r => unreachable!("rank {r} is rejected when the layer is built"),
        }
    };
}

#[inline(always)]
fn forward_any<S: Lanes, A: Act>(
    rank: usize,
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    output: &mut [A],
    bs: usize,
) {
    let mut rows = io::Rows { out: output, bs };
    forward_into::<S, A, _>(rank, ids, coef, sigmoid, input, &mut rows, bs)
}

/// The forward pass of any rank into `out` (rows, or a GroupSum head's sums).
#[inline(always)]
fn forward_into<S: Lanes, A: Act, O: io::Sink<S, A>>(
    rank: usize,
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    out: &mut O,
    bs: usize,
) {
    if rank == 2 {
        return rank2::forward::<S, A, _>(ids, coef, sigmoid, input, out, bs);
    }
    by_rank!(rank, forward_n::<_>, (ids, coef, sigmoid, input, out, bs))
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_any<S: Lanes, A: Act>(
    rank: usize,
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    grad_out: &mut [A],
    grad_in: Option<&mut [A]>,
    slot_grad: Option<&mut [f32]>,
    dcoef: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let g = io::GradRows::Own(grad_out);
    backward_rows::<S, A>(
        rank, ids, coef, sigmoid, input, g, grad_in, slot_grad, dcoef, accumulate, bs,
    )
}

/// The backward pass of any rank with its output gradients in `g` (own rows, or a GroupSum
/// head's per-group rows).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_rows<S: Lanes, A: Act>(
    rank: usize,
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    g: io::GradRows<A>,
    grad_in: Option<&mut [A]>,
    slot_grad: Option<&mut [f32]>,
    dcoef: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let (c, o, a) = (coef, dcoef, accumulate);
    // Rank 2 has its own kernel (`rank2`); every other rank walks the lerp tree.
    macro_rules! any_rank {
        ($dx:literal, $slot:literal, $gi:expr, $sg:expr) => {
            if rank == 2 {
                rank2::backward::<S, A, $dx, $slot>(ids, c, sigmoid, input, g, $gi, $sg, o, a, bs)
            } else {
                by_rank!(
                    rank,
                    backward_n::<$dx, $slot>,
                    (ids, c, sigmoid, input, g, $gi, $sg, o, a, bs)
                )
            }
        };
    }
    match (grad_in, slot_grad) {
        (Some(gi), Some(sg)) => any_rank!(true, true, gi, sg),
        (Some(gi), None) => any_rank!(true, false, gi, &mut []),
        (None, Some(sg)) => any_rank!(false, true, &mut [], sg),
        (None, None) => any_rank!(false, false, &mut [], &mut []),
    }
}

dispatch! {
    /// Relaxed forward of one layer over one block of `bs` samples.
    pub fn forward<A: Act> / forward_at (rank: usize, ids: &[u32], coef: &[f32], sigmoid: bool, input: &[A], output: &mut [A], bs: usize) => forward_any;
}

dispatch! {
    /// Backward of one layer over one block: writes (or with `accumulate`, adds) `∂L/∂a`
    /// into `dcoef`; when given, adds `∂L/∂x` into `grad_in` (neurons in order, so the sums
    /// are reproducible) and stores each slot's `∂L/∂x_j` in `slot_grad` (`[out][rank][bs]`,
    /// for learnable connections). `grad_out` is zeroed as it is read: the caller's gradient
    /// buffers are then ready to gather the next block without a memset.
    pub fn backward<A: Act> / backward_at (rank: usize, ids: &[u32], coef: &[f32], sigmoid: bool, input: &[A], grad_out: &mut [A], grad_in: Option<&mut [A]>, slot_grad: Option<&mut [f32]>, dcoef: &mut [f32], accumulate: bool, bs: usize) => backward_any;
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_group_sums_any<S: Lanes, A: Act>(
    rank: usize,
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    sums: &mut [f32],
    group: usize,
    bs: usize,
) {
    let out_dim = ids.len() / rank;
    assert!(group > 0 && out_dim.is_multiple_of(group) && sums.len() == out_dim / group * bs);
    sums.iter_mut().for_each(|s| *s = 0.0);
    let mut sink = io::GroupSums {
        sums,
        group,
        out_dim,
        bs,
        tmp: [A::ZERO; 2 * LANES],
    };
    forward_into::<S, A, _>(rank, ids, coef, sigmoid, input, &mut sink, bs);
}

dispatch! {
    /// The last layer into a GroupSum head: its forward pass adds each neuron's output,
    /// rounded to `A`, into row `i / group` of `sums` (`[out_dim / group][bs]`, overwritten)
    /// instead of writing its own row. Bit for bit [`forward`] followed by the head's sums
    /// (before the division by τ), without the layer's rows going through memory.
    pub fn forward_group_sums<A: Act> / forward_group_sums_at (rank: usize, ids: &[u32], coef: &[f32], sigmoid: bool, input: &[A], sums: &mut [f32], group: usize, bs: usize) => forward_group_sums_any;
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_group_any<S: Lanes, A: Act>(
    rank: usize,
    ids: &[u32],
    coef: &[f32],
    sigmoid: bool,
    input: &[A],
    group_grad: &[A],
    group: usize,
    grad_in: Option<&mut [A]>,
    slot_grad: Option<&mut [f32]>,
    dcoef: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let out_dim = ids.len() / rank;
    assert!(group > 0 && out_dim.is_multiple_of(group));
    assert_eq!(group_grad.len(), out_dim / group * bs);
    let g = io::GradRows::Shared {
        rows: group_grad,
        group,
        out_dim,
    };
    let (c, o, a) = (coef, dcoef, accumulate);
    backward_rows::<S, A>(
        rank, ids, c, sigmoid, input, g, grad_in, slot_grad, o, a, bs,
    )
}

dispatch! {
    /// The last layer under a GroupSum head: [`backward`] with neuron `i`'s output gradient
    /// read from row `i / group` of `group_grad` (`[out_dim / group][bs]`, left as it is), so
    /// the head need not write a row per neuron.
    pub fn backward_group<A: Act> / backward_group_at (rank: usize, ids: &[u32], coef: &[f32], sigmoid: bool, input: &[A], group_grad: &[A], group: usize, grad_in: Option<&mut [A]>, slot_grad: Option<&mut [f32]>, dcoef: &mut [f32], accumulate: bool, bs: usize) => backward_group_any;
}

#[inline(always)]
fn candidate_grads_any<S: Lanes, A: Act>(
    slot_grad: &[f32],
    input: &[A],
    candidates: &[u32],
    c: usize,
    bs: usize,
    dq: &mut [f32],
    accumulate: bool,
) {
    let in_dim = input.len() / bs;
    for (s, g) in slot_grad.chunks_exact(bs).enumerate() {
        for k in 0..c {
            let row = candidates[s * c + k] as usize;
            assert!(row < in_dim);
            let mut acc = S::splat(0.0);
            for ch in (0..bs).step_by(LANES) {
                // SAFETY: the row was bounds-checked and ch + 16 <= bs.
                unsafe {
                    let x = A::load::<S>(input.as_ptr().add(row * bs + ch));
                    acc = S::fma(S::load(g.as_ptr().add(ch)), x, acc);
                }
            }
            let v = S::hsum(acc);
            let d = &mut dq[s * c + k];
            *d = if accumulate { *d + v } else { v };
        }
    }
}

dispatch! {
    /// Learnable connections: `dq[s][c] (+)= Σ_b slot_grad[s][b] · input[cand[s][c]][b]`.
    pub fn candidate_grads<A: Act> / candidate_grads_at (slot_grad: &[f32], input: &[A], candidates: &[u32], c: usize, bs: usize, dq: &mut [f32], accumulate: bool) => candidate_grads_any;
}

// Per-step parameter work, dispatched so that it compiles for the detected instruction set
// (the crate itself targets baseline x86-64, where even `floor` is a call): plain loops that
// vectorise on their own, and difflogic's blocks of 16 neurons in the lanes of `S`.

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fold_neurons_any<S: Lanes>(
    p: Parametrization,
    rank: usize,
    w: &[f32],
    wpn: usize,
    tau: f32,
    hard: bool,
    coef: &mut [f32],
) {
    p.fold_run::<S>(rank, w, wpn, tau, hard, coef);
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn unfold_neurons_any<S: Lanes>(
    p: Parametrization,
    rank: usize,
    w: &[f32],
    wpn: usize,
    tau: f32,
    da: &[f32],
    dw: &mut [f32],
) {
    dw.iter_mut().for_each(|v| *v = 0.0);
    p.unfold_run::<S>(rank, w, wpn, tau, da, dw);
}

dispatch! {
    /// Folds the weights of consecutive neurons (`w` is `[n][wpn]`, `coef` `[n][2^rank]`).
    pub fn fold_neurons / fold_neurons_at (p: Parametrization, rank: usize, w: &[f32], wpn: usize, tau: f32, hard: bool, coef: &mut [f32]) => fold_neurons_any;
}

dispatch! {
    /// `dw = ∂a/∂w · da` for consecutive neurons (overwrites `dw`).
    pub fn unfold_neurons / unfold_neurons_at (p: Parametrization, rank: usize, w: &[f32], wpn: usize, tau: f32, da: &[f32], dw: &mut [f32]) => unfold_neurons_any;
}

/// Checks the shapes the kernels rely on, so a bad call fails loudly instead of reading
/// the wrong rows.
pub fn check_shapes<A>(
    rank: usize,
    ids: &[u32],
    coef: &[f32],
    input: &[A],
    out_len: usize,
    bs: usize,
) {
    assert!(
        bs.is_multiple_of(LANES) && bs > 0,
        "block size {bs} must be a positive multiple of {LANES}"
    );
    let out_dim = out_len / bs;
    assert_eq!(ids.len(), out_dim * rank);
    assert_eq!(coef.len(), out_dim << rank);
    let in_dim = input.len() / bs;
    assert!(ids.iter().all(|&i| (i as usize) < in_dim));
}
