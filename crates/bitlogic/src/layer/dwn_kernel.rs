//! Forward and backward of `dwn` layers (see `param::dwn` for the formulas).
//!
//! Per 16-sample chunk: the address of every lane from its binarised inputs, the table value
//! at it, and for the backward the Extended Finite Difference sum over all 2^n entries. The
//! lane loops are plain Rust, dispatched so that they compile for the detected instruction
//! set; the table gradient is a scatter of one value per lane, summed in lane order.
//! Activation rows are generic over their storage type ([`Act`]): each 16-sample chunk is
//! widened to f32 lanes once ([`chunk`]) and written back rounded ([`put`]); the EFD sums,
//! the table gradient and `slot_grad` are f32.

use super::act::Act;
use super::kernel::LANES;
use super::lanes::Lanes;
use super::simd::dispatch;

/// Sixteen values of `row` from `c` as f32.
#[inline(always)]
fn chunk<S: Lanes, A: Act>(row: &[A], c: usize) -> [f32; LANES] {
    let x = &row[c..c + LANES];
    let mut out = [0f32; LANES];
    // SAFETY: `x` holds 16 values, `out` 16 floats; the dispatcher checked S's features.
    unsafe { S::store(out.as_mut_ptr(), A::load::<S>(x.as_ptr())) };
    out
}

/// Stores `v` (rounded to `A`) at `row[c..c + 16]`.
#[inline(always)]
fn put<S: Lanes, A: Act>(row: &mut [A], c: usize, v: &[f32; LANES]) {
    let dst = &mut row[c..c + LANES];
    // SAFETY: as in `chunk`.
    unsafe { A::store::<S>(dst.as_mut_ptr(), S::load(v.as_ptr())) };
}

#[inline(always)]
fn addresses<S: Lanes, A: Act>(rows: &[usize], input: &[A], c: usize) -> [u32; LANES] {
    let mut addr = [0u32; LANES];
    for &r in rows {
        let x = chunk::<S, A>(input, r + c);
        for l in 0..LANES {
            addr[l] = (addr[l] << 1) | (x[l] > 0.5) as u32;
        }
    }
    addr
}

#[inline(always)]
fn rows_of(id: &[u32], in_dim: usize, bs: usize) -> [usize; 6] {
    let mut rows = [0usize; 6];
    for (r, &i) in rows.iter_mut().zip(id) {
        assert!((i as usize) < in_dim);
        *r = i as usize * bs;
    }
    rows
}

#[inline(always)]
fn forward_any<S: Lanes, A: Act>(
    rank: usize,
    ids: &[u32],
    table: &[f32],
    input: &[A],
    output: &mut [A],
    bs: usize,
) {
    let (k, in_dim) = (1 << rank, input.len() / bs);
    for (i, out) in output.chunks_exact_mut(bs).enumerate() {
        let rows = rows_of(&ids[i * rank..(i + 1) * rank], in_dim, bs);
        let t = &table[i * k..(i + 1) * k];
        for c in (0..bs).step_by(LANES) {
            let addr = addresses::<S, A>(&rows[..rank], input, c);
            // A plain loop: `array::from_fn` here unrolls into 16 checked gathers (20% slower).
            let mut y = [0f32; LANES];
            for l in 0..LANES {
                y[l] = (t[addr[l] as usize] + 1.0) * 0.5;
            }
            put::<S, A>(out, c, &y);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_any<S: Lanes, A: Act>(
    rank: usize,
    ids: &[u32],
    table: &[f32],
    input: &[A],
    grad_out: &mut [A],
    mut grad_in: Option<&mut [A]>,
    mut slot_grad: Option<&mut [f32]>,
    dtable: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let (k, in_dim) = (1 << rank, input.len() / bs);
    // 1 / (h + 1) for Hamming distances 0..=5.
    let recip: [f32; 8] = std::array::from_fn(|h| 1.0 / (h as f32 + 1.0));
    for (i, g) in grad_out.chunks_exact_mut(bs).enumerate() {
        let rows = rows_of(&ids[i * rank..(i + 1) * rank], in_dim, bs);
        let t = &table[i * k..(i + 1) * k];
        let dt = &mut dtable[i * k..(i + 1) * k];
        if !accumulate {
            dt.iter_mut().for_each(|v| *v = 0.0);
        }
        for c in (0..bs).step_by(LANES) {
            let addr = addresses::<S, A>(&rows[..rank], input, c);
            let gc = chunk::<S, A>(g, c);
            // Consumed: cleared while in cache (see `kernel::backward_at`).
            put::<S, A>(g, c, &[0.0; LANES]);
            for l in 0..LANES {
                dt[addr[l] as usize] += 0.5 * gc[l];
            }
            if grad_in.is_none() && slot_grad.is_none() {
                continue;
            }
            // Walk the table by offset d = k ⊕ k̂: the entry T[k̂ ⊕ d] is gathered once per lane
            // and shared by every input, and its weight 1 / (H_j + 1) depends on d and j only.
            let mut acc = [[0f32; LANES]; 6];
            for d in 0..k as u32 {
                let v: [f32; LANES] = std::array::from_fn(|l| t[(addr[l] ^ d) as usize]);
                for (j, acc) in acc[..rank].iter_mut().enumerate() {
                    let bit = 1u32 << (rank - 1 - j);
                    let w = recip[(d & !bit).count_ones() as usize];
                    for l in 0..LANES {
                        // s_j(k) = +1 when bit j of k = k̂ ⊕ d is set.
                        let sign = if (addr[l] ^ d) & bit != 0 { w } else { -w };
                        acc[l] += sign * v[l];
                    }
                }
            }
            for (j, acc) in acc[..rank].iter().enumerate() {
                let dx: [f32; LANES] = std::array::from_fn(|l| 0.5 * gc[l] * acc[l]);
                if let Some(gi) = grad_in.as_deref_mut() {
                    let old = chunk::<S, A>(gi, rows[j] + c);
                    put::<S, A>(gi, rows[j] + c, &std::array::from_fn(|l| old[l] + dx[l]));
                }
                if let Some(sg) = slot_grad.as_deref_mut() {
                    let o = (i * rank + j) * bs + c;
                    sg[o..o + LANES].copy_from_slice(&dx);
                }
            }
        }
    }
}

dispatch! {
    /// Training forward of a `dwn` layer over one block.
    pub fn forward<A: Act> / forward_at (rank: usize, ids: &[u32], table: &[f32], input: &[A], output: &mut [A], bs: usize) => forward_any;
}

dispatch! {
    /// Backward of a `dwn` layer over one block: the table gradient into `dtable` (written, or
    /// added with `accumulate`) and the EFD input gradient added into `grad_in` and stored per
    /// slot in `slot_grad` (`[out][rank][bs]`, learnable connections) when given; `grad_out`
    /// is zeroed as it is read (as in `kernel::backward_at`).
    pub fn backward<A: Act> / backward_at (rank: usize, ids: &[u32], table: &[f32], input: &[A], grad_out: &mut [A], grad_in: Option<&mut [A]>, slot_grad: Option<&mut [f32]>, dtable: &mut [f32], accumulate: bool, bs: usize) => backward_any;
}
