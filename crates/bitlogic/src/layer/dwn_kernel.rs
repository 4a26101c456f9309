//! Forward and backward of `dwn` layers (see `param::dwn` for the formulas).
//!
//! Per 16-sample chunk: the address of every lane from its binarised inputs, the table value
//! at it, and for the backward the Extended Finite Difference sum over all 2^n entries. The
//! lane loops are plain Rust, dispatched so that they compile for the detected instruction
//! set; the table gradient is a scatter of one value per lane, summed in lane order.

use super::kernel::LANES;
use super::lanes::Lanes;
use super::simd::dispatch;

#[inline(always)]
fn addresses(rows: &[usize], input: &[f32], c: usize) -> [u32; LANES] {
    let mut addr = [0u32; LANES];
    for &r in rows {
        let x = &input[r + c..r + c + LANES];
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
#[allow(clippy::extra_unused_type_parameters)]
fn forward_any<S: Lanes>(
    rank: usize,
    ids: &[u32],
    table: &[f32],
    input: &[f32],
    output: &mut [f32],
    bs: usize,
) {
    let (k, in_dim) = (1 << rank, input.len() / bs);
    for (i, out) in output.chunks_exact_mut(bs).enumerate() {
        let rows = rows_of(&ids[i * rank..(i + 1) * rank], in_dim, bs);
        let t = &table[i * k..(i + 1) * k];
        for c in (0..bs).step_by(LANES) {
            let addr = addresses(&rows[..rank], input, c);
            for l in 0..LANES {
                out[c + l] = (t[addr[l] as usize] + 1.0) * 0.5;
            }
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::extra_unused_type_parameters)]
fn backward_any<S: Lanes>(
    rank: usize,
    ids: &[u32],
    table: &[f32],
    input: &[f32],
    grad_out: &[f32],
    mut grad_in: Option<&mut [f32]>,
    mut slot_grad: Option<&mut [f32]>,
    dtable: &mut [f32],
    accumulate: bool,
    bs: usize,
) {
    let (k, in_dim) = (1 << rank, input.len() / bs);
    // 1 / (h + 1) for Hamming distances 0..=5.
    let recip: [f32; 8] = std::array::from_fn(|h| 1.0 / (h as f32 + 1.0));
    for (i, g) in grad_out.chunks_exact(bs).enumerate() {
        let rows = rows_of(&ids[i * rank..(i + 1) * rank], in_dim, bs);
        let t = &table[i * k..(i + 1) * k];
        let dt = &mut dtable[i * k..(i + 1) * k];
        if !accumulate {
            dt.iter_mut().for_each(|v| *v = 0.0);
        }
        for c in (0..bs).step_by(LANES) {
            let addr = addresses(&rows[..rank], input, c);
            let gc = &g[c..c + LANES];
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
                    let dst = &mut gi[rows[j] + c..rows[j] + c + LANES];
                    dst.iter_mut().zip(&dx).for_each(|(d, v)| *d += v);
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
    pub fn forward / forward_at (rank: usize, ids: &[u32], table: &[f32], input: &[f32], output: &mut [f32], bs: usize) => forward_any;
}

dispatch! {
    /// Backward of a `dwn` layer over one block: the table gradient into `dtable` (written, or
    /// added with `accumulate`) and the EFD input gradient added into `grad_in` and stored per
    /// slot in `slot_grad` (`[out][rank][bs]`, learnable connections) when given.
    pub fn backward / backward_at (rank: usize, ids: &[u32], table: &[f32], input: &[f32], grad_out: &[f32], grad_in: Option<&mut [f32]>, slot_grad: Option<&mut [f32]>, dtable: &mut [f32], accumulate: bool, bs: usize) => backward_any;
}
