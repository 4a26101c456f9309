//! Packing bits across samples (SPEC §3).
//!
//! Public layout: `n` samples of `dim` bits, sample-major `[n][dim]` bytes of 0/1, become
//! `[dim][ceil(n/64)]` words: sample `p*64 + i` is bit `i` of word `p` of its feature, the
//! tail padded with zeros. Inside the engine a feature of one 512-sample block is one
//! [`Line`] (8 such words), so packing a block writes `dim` lines.
//!
//! The block packer ORs eight sample rows into one byte per feature (`row_i << i`, 64
//! features at a time, which vectorises) and drops each byte into its line: byte `q` of a
//! line holds samples `8q..8q+8`.

use super::kernel::{Line, BLOCK, WORDS};
use crate::layer::simd::SimdLevel;
use crate::{Error, Result};

/// Words per feature for `n` samples.
pub fn words_for(n: usize) -> usize {
    n.div_ceil(64)
}

/// Packs `n` samples of `dim` bits (sample-major, each 0 or 1) into `[dim][ceil(n/64)]` words.
pub fn pack_bits(bits: &[u8], n: usize, dim: usize) -> Result<Vec<u64>> {
    check_bits(bits, n, dim)?;
    let nw = words_for(n);
    let mut out = vec![0u64; dim * nw];
    let mut lines = vec![Line::default(); dim];
    for (b, chunk) in bits.chunks(BLOCK * dim.max(1)).enumerate() {
        let m = chunk.len() / dim.max(1);
        if !pack_block(chunk, m, dim, &mut lines) {
            return Err(non_binary_error(bits, dim));
        }
        for (f, line) in lines.iter().enumerate() {
            let w0 = b * WORDS;
            let take = (nw - w0).min(WORDS);
            out[f * nw + w0..f * nw + w0 + take].copy_from_slice(&line.0[..take]);
        }
    }
    Ok(out)
}

/// Inverse of [`pack_bits`]: the first `n` samples, sample-major `[n][dim]` of 0/1.
pub fn unpack_bits(words: &[u64], n: usize, dim: usize) -> Result<Vec<u8>> {
    let nw = words_for(n);
    if words.len() != dim * nw {
        return Err(Error::invalid(format!(
            "unpack_bits got {} words, expected {dim} features × {nw} words for {n} samples",
            words.len()
        )));
    }
    let mut out = vec![0u8; n * dim];
    for (s, row) in out.chunks_exact_mut(dim.max(1)).enumerate() {
        for (f, b) in row.iter_mut().enumerate() {
            *b = ((words[f * nw + s / 64] >> (s % 64)) & 1) as u8;
        }
    }
    Ok(out)
}

/// Checks the shape of sample-major bits (values are checked while packing).
pub fn check_bits(bits: &[u8], n: usize, dim: usize) -> Result<()> {
    if bits.len() != n * dim {
        return Err(Error::invalid(format!(
            "got {} bits, expected {n} samples × {dim} bits",
            bits.len()
        )));
    }
    Ok(())
}

/// The error for the first byte of `bits` that is neither 0 nor 1.
pub fn non_binary_error(bits: &[u8], dim: usize) -> Error {
    match bits.iter().position(|&b| b > 1) {
        Some(i) => Error::invalid(format!(
            "input bit at sample {}, feature {} is {} (valid: 0, 1)",
            i / dim.max(1),
            i % dim.max(1),
            bits[i]
        )),
        None => Error::invalid("input bits must be 0 or 1"),
    }
}

/// Features per pass of the block packer.
const FEATURES: usize = 64;

/// Packs `m ≤ BLOCK` samples (`bits` is `[m][dim]`) into `lines[0..dim]`, zero-padding the
/// block. Returns false if some byte was not 0/1 (the lines are then meaningless).
pub fn pack_block(bits: &[u8], m: usize, dim: usize, lines: &mut [Line]) -> bool {
    pack_block_at(crate::layer::simd::simd_level(), bits, m, dim, lines)
}

/// [`pack_block`] compiled for `level` (capped at what the CPU has).
pub fn pack_block_at(
    level: SimdLevel,
    bits: &[u8],
    m: usize,
    dim: usize,
    lines: &mut [Line],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if level.min(crate::layer::simd::detected_level()) >= SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2.
        return unsafe { pack_block_avx2(bits, m, dim, lines) };
    }
    let _ = level;
    pack_block_body(bits, m, dim, lines)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pack_block_avx2(bits: &[u8], m: usize, dim: usize, lines: &mut [Line]) -> bool {
    pack_block_body(bits, m, dim, lines)
}

#[inline(always)]
fn pack_block_body(bits: &[u8], m: usize, dim: usize, lines: &mut [Line]) -> bool {
    debug_assert!(m <= BLOCK && bits.len() >= m * dim && lines.len() >= dim);
    lines[..dim].iter_mut().for_each(|l| *l = Line::default());
    let zeros = [0u8; FEATURES];
    let mut seen = [0u8; FEATURES];
    for q in 0..m.div_ceil(8) {
        let (word, shift) = (q / 8, 8 * (q % 8));
        for f0 in (0..dim).step_by(FEATURES) {
            let len = FEATURES.min(dim - f0);
            let mut acc = [0u8; FEATURES];
            for i in 0..8 {
                let s = 8 * q + i;
                let row = if s < m {
                    &bits[s * dim + f0..s * dim + f0 + len]
                } else {
                    &zeros[..len]
                };
                for ((a, o), &b) in acc.iter_mut().zip(&mut seen).zip(row) {
                    *a |= b << i;
                    *o |= b;
                }
            }
            for (line, &a) in lines[f0..f0 + len].iter_mut().zip(&acc) {
                line.0[word] |= (a as u64) << shift;
            }
        }
    }
    seen.iter().all(|&s| s <= 1)
}

/// Copies block `b` of feature-major words (`[dim][nw]`) into `lines[0..dim]`, zero-padded.
pub fn load_block(words: &[u64], nw: usize, b: usize, dim: usize, lines: &mut [Line]) {
    let w0 = b * WORDS;
    let take = nw.saturating_sub(w0).min(WORDS);
    for (f, line) in lines[..dim].iter_mut().enumerate() {
        let src = &words[f * nw + w0..f * nw + w0 + take];
        // A whole line is a fixed-size copy (no memcpy call per feature).
        line.0 = match <[u64; WORDS]>::try_from(src) {
            Ok(full) => full,
            Err(_) => std::array::from_fn(|i| src.get(i).copied().unwrap_or(0)),
        };
    }
}
