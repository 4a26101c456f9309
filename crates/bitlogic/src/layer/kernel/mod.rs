//! The fused multilinear kernel shared by every folded parametrization.
//!
//! A neuron with folded coefficients `a[0..2^n]` (see `param`) computes
//! `y = act(Σ_k a_k φ_k(x))`. Evaluating that sum as a tree of linear interpolations,
//! one level per input starting from the least significant address bit (input n−1),
//! costs 2^n − 1 fused multiply-adds per sample and needs no 2^n×batch intermediates.
//! The backward pass walks the same tree depth first, sending the gradient down and the
//! subtrees' values up (`tree.rs`, which has the math).
//!
//! Rows are `bs` samples long (a multiple of [`LANES`]); `input` is `[in_dim][bs]`,
//! `output` `[out_dim][bs]`, `ids` `[out_dim][n]`, `coef` `[out_dim][2^n]`.
//! The kernels are written once over fixed 16-lane arrays and instantiated per SIMD
//! level with `target_feature`, so the compiler emits AVX-512, AVX2 or plain code from
//! the same source; the scalar references and the gradient checks are in `layer/tests.rs`.
//! The SIMD levels unroll the tree walk; the scalar level walks it by recursion (the same
//! operations in the same order), since unrolled on sixteen separate floats it costs more
//! compile time than every other instance together and buys speed only where there is no
//! SIMD level to use.
//! Rank 2, the hot case, is written out as a bilinear polynomial in `rank2.rs`, and rank 4 in
//! monomial form in `rank4.rs` (fewer vector operations per chunk than the tree's walk), at
//! the SIMD levels; `tests.rs` here checks both against the tree.
//! Activation rows (`input`, `output`, `grad_out`, `grad_in`) are generic over their storage
//! type ([`Act`]: f32, bf16, f16); everything in registers, and `dcoef` and `slot_grad`, is f32.

use super::act::Act;
use super::lanes::Lanes;
use super::param::Parametrization;
use super::simd::{dispatch, SimdLevel};

mod io;
mod rank2;
mod rank4;
mod tree;
use tree::{backward_n, forward_n};
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

/// Checks the shapes a written-out kernel's neuron loops rely on (`rank2`, `rank4`): `rank`
/// ids per neuron, each a row of the input (`in_dim` rows), and 2^rank corners per neuron.
/// Once per call, so that the loops read ids and rows without a check each.
#[inline(always)]
fn check_ids(rank: usize, ids: &[u32], coef: &[f32], out_dim: usize, in_dim: usize) {
    assert_eq!(ids.len(), rank * out_dim, "{rank} ids per neuron");
    assert!(coef.len() >= out_dim << rank, "2^{rank} corners per neuron");
    let max = ids.iter().fold(0, |m, &x| m.max(x));
    assert!(
        out_dim == 0 || (max as usize) < in_dim,
        "id {max} of {in_dim} rows"
    );
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
    // The scalar level (`!S::UNROLL`) walks the tree at ranks 2 and 4 too: it serves CPUs
    // without AVX2 and the tests, and the written-out kernels' constant-flag instances on
    // sixteen separate floats were a fifth of the crate's compiled code.
    match rank {
        2 if S::UNROLL => rank2::forward::<S, A, _>(ids, coef, sigmoid, input, out, bs),
        4 if S::UNROLL => rank4::forward::<S, A, _>(ids, coef, sigmoid, input, out, bs),
        _ => tree::by_tree!(rank, forward_n::<_>, (ids, coef, sigmoid, input, out, bs)),
    }
}

/// The backward pass of any rank with its output gradients in `g` (own rows, or a GroupSum
/// head's per-group rows): one instance per SIMD level and storage type serves both.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_rows_any<S: Lanes, A: Act>(
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
    if S::UNROLL && (rank == 2 || rank == 4) {
        // The written-out polynomials, with each combination of input-side gradients a
        // constant.
        macro_rules! by_outputs {
            ($kernel:ident) => {
                match (grad_in, slot_grad) {
                    (Some(gi), Some(sg)) => $kernel::backward::<S, A, true, true>(
                        ids, c, sigmoid, input, g, gi, sg, o, a, bs,
                    ),
                    (Some(gi), None) => $kernel::backward::<S, A, true, false>(
                        ids,
                        c,
                        sigmoid,
                        input,
                        g,
                        gi,
                        &mut [],
                        o,
                        a,
                        bs,
                    ),
                    (None, Some(sg)) => $kernel::backward::<S, A, false, true>(
                        ids,
                        c,
                        sigmoid,
                        input,
                        g,
                        &mut [],
                        sg,
                        o,
                        a,
                        bs,
                    ),
                    (None, None) => $kernel::backward::<S, A, false, false>(
                        ids,
                        c,
                        sigmoid,
                        input,
                        g,
                        &mut [],
                        &mut [],
                        o,
                        a,
                        bs,
                    ),
                }
            };
        }
        if rank == 2 {
            by_outputs!(rank2)
        } else {
            by_outputs!(rank4)
        }
    } else if grad_in.is_some() || slot_grad.is_some() {
        let (gi, sg) = (grad_in, slot_grad);
        tree::by_tree!(
            rank,
            backward_n::<true>,
            (ids, c, sigmoid, input, g, gi, sg, o, a, bs)
        )
    } else {
        let (gi, sg) = (grad_in, slot_grad);
        tree::by_tree!(
            rank,
            backward_n::<false>,
            (ids, c, sigmoid, input, g, gi, sg, o, a, bs)
        )
    }
}

dispatch! {
    fn backward_rows<A: Act> / backward_rows_at (rank: usize, ids: &[u32], coef: &[f32], sigmoid: bool, input: &[A], g: io::GradRows<A>, grad_in: Option<&mut [A]>, slot_grad: Option<&mut [f32]>, dcoef: &mut [f32], accumulate: bool, bs: usize) => backward_rows_any;
}

dispatch! {
    /// Relaxed forward of one layer over one block of `bs` samples.
    pub fn forward<A: Act> / forward_at (rank: usize, ids: &[u32], coef: &[f32], sigmoid: bool, input: &[A], output: &mut [A], bs: usize) => forward_any;
}

/// Backward of one layer over one block at a SIMD level (capped at what the CPU has; the
/// trainer passes `simd_level()`): writes (or with `accumulate`, adds) `∂L/∂a` into `dcoef`;
/// when given, adds `∂L/∂x` into `grad_in` (neurons in order, so the sums are reproducible)
/// and stores each slot's `∂L/∂x_j` in `slot_grad` (`[out][rank][bs]`, for learnable
/// connections). `grad_out` is zeroed as it is read: the caller's gradient buffers are then
/// ready to gather the next block without a memset.
#[allow(clippy::too_many_arguments)]
pub fn backward_at<A: Act>(
    level: SimdLevel,
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
    let (c, o, a) = (coef, dcoef, accumulate);
    backward_rows_at(
        level, rank, ids, c, sigmoid, input, g, grad_in, slot_grad, o, a, bs,
    )
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
        _act: std::marker::PhantomData,
    };
    forward_into::<S, A, _>(rank, ids, coef, sigmoid, input, &mut sink, bs);
    sink.finish();
}

dispatch! {
    /// The last layer into a GroupSum head: its forward pass adds each neuron's output,
    /// rounded to `A`, into row `i / group` of `sums` (`[out_dim / group][bs]`, overwritten)
    /// instead of writing its own row. Bit for bit [`forward`] followed by the head's sums
    /// (before the division by τ), without the layer's rows going through memory.
    pub fn forward_group_sums<A: Act> / forward_group_sums_at (rank: usize, ids: &[u32], coef: &[f32], sigmoid: bool, input: &[A], sums: &mut [f32], group: usize, bs: usize) => forward_group_sums_any;
}

/// The last layer under a GroupSum head, at a given SIMD level (capped at what the CPU has):
/// [`backward_at`] with neuron `i`'s output gradient read from row `i / group` of `group_grad`
/// (`[out_dim / group][bs]`, left as it is), so the head need not write a row per neuron.
#[allow(clippy::too_many_arguments)]
pub fn backward_group_at<A: Act>(
    level: SimdLevel,
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
    backward_rows_at(
        level, rank, ids, c, sigmoid, input, g, grad_in, slot_grad, o, a, bs,
    )
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
