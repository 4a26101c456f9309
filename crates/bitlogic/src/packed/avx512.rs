//! AVX-512 kernels: every op is one `vpternlogq` on a 512-bit line, and the head's
//! bit-sliced counters turn into per-sample counts with masked adds.
//!
//! Written with `std::arch` intrinsics rather than left to the auto-vectoriser so each op is
//! guaranteed to be load, load, ternlog, store. Selected at run time (see `kernel::group_fn`).

use super::head::{harley_seal_16, planes_for};
use super::kernel::{arity_of, at, imm_table, ImmTable, Line, BLOCK};
use std::arch::x86_64::*;

pub static GROUPS: ImmTable = imm_table!(group);

/// The line at byte offset `off`.
#[inline(always)]
unsafe fn load(arena: *mut Line, off: u32) -> __m512i {
    _mm512_load_si512(at(arena, off) as *const __m512i)
}

#[inline(always)]
unsafe fn store(arena: *mut Line, off: u32, v: __m512i) {
    _mm512_store_si512(at(arena, off) as *mut __m512i, v)
}

/// The line in slot `s`.
#[inline(always)]
unsafe fn load_slot(arena: *mut Line, s: u32) -> __m512i {
    _mm512_load_si512(arena.add(s as usize) as *const __m512i)
}

#[target_feature(enable = "avx512f")]
unsafe fn group<const IMM: i32>(arena: *mut Line, code: &[u32]) {
    match const { arity_of(IMM as u8) } {
        0 => {
            let z = _mm512_setzero_si512();
            let v = _mm512_ternarylogic_epi64::<IMM>(z, z, z);
            for op in code {
                store(arena, *op, v);
            }
        }
        1 => {
            for op in code.chunks_exact(2) {
                let a = load(arena, op[1]);
                store(arena, op[0], _mm512_ternarylogic_epi64::<IMM>(a, a, a));
            }
        }
        2 => {
            for op in code.chunks_exact(3) {
                let (a, b) = (load(arena, op[1]), load(arena, op[2]));
                store(arena, op[0], _mm512_ternarylogic_epi64::<IMM>(a, b, b));
            }
        }
        _ => {
            for op in code.chunks_exact(4) {
                let (a, b, c) = (load(arena, op[1]), load(arena, op[2]), load(arena, op[3]));
                store(arena, op[0], _mm512_ternarylogic_epi64::<IMM>(a, b, c));
            }
        }
    }
}

/// Carry-save adder: (carry, sum) of three lines.
#[inline(always)]
unsafe fn csa(a: __m512i, b: __m512i, c: __m512i) -> (__m512i, __m512i) {
    (
        _mm512_ternarylogic_epi64::<0xE8>(a, b, c),
        _mm512_ternarylogic_epi64::<0x96>(a, b, c),
    )
}

/// Adds `w` at bit-plane `p` of `planes`, rippling the carry upwards.
#[inline(always)]
unsafe fn add_at(planes: &mut [__m512i], p: usize, w: __m512i) {
    let mut carry = w;
    for pl in &mut planes[p..] {
        let sum = _mm512_xor_si512(*pl, carry);
        carry = _mm512_and_si512(*pl, carry);
        *pl = sum;
    }
}

/// Per-sample counts of ones over the lines in `slots`, written to `counts[0..BLOCK]`.
///
/// # Safety
/// AVX-512F is available and every slot is inside the arena.
#[target_feature(enable = "avx512f")]
pub unsafe fn count_ones(arena: *mut Line, slots: &[u32], counts: &mut [u32; BLOCK]) {
    let np = planes_for(slots.len());
    let mut planes = [_mm512_setzero_si512(); 66];
    let planes = &mut planes[..np];
    let chunks = slots.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        let mut w = [_mm512_setzero_si512(); 16];
        for (w, &s) in w.iter_mut().zip(c) {
            *w = load_slot(arena, s);
        }
        let (p, hi) = planes.split_at_mut(4);
        let sixteens = harley_seal_16!(csa, p, w);
        add_at(hi, 0, sixteens);
    }
    for &s in rest {
        add_at(planes, 0, load_slot(arena, s));
    }
    to_counts(planes, counts);
}

/// Bit-sliced planes (plane `b` holds bit `b` of every sample's count) → integers: for each
/// 16 samples, one masked add of `2^b` per plane, the mask read straight from the plane.
#[inline(always)]
unsafe fn to_counts(planes: &[__m512i], counts: &mut [u32; BLOCK]) {
    let mut masks = [[0u16; BLOCK / 16]; 66];
    let mut weights = [0u32; 66];
    for (b, p) in planes.iter().enumerate() {
        masks[b] = std::mem::transmute::<__m512i, [u16; BLOCK / 16]>(*p);
        weights[b] = 1 << b;
    }
    for (q, out) in counts.chunks_exact_mut(16).enumerate() {
        let mut acc = _mm512_setzero_si512();
        for (m, &w) in masks[..planes.len()].iter().zip(&weights) {
            acc = _mm512_mask_add_epi32(acc, m[q], acc, _mm512_set1_epi32(w as i32));
        }
        _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, acc);
    }
}

/// Whether the byte-transposing packer can run (AVX-512BW for byte masks, VBMI for the
/// byte permutation).
pub fn has_pack_features() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vbmi")
    })
}

/// 8×8 transpose of qwords: `out[k]` qword `i` = `r[i]` qword `k`.
#[inline(always)]
unsafe fn transpose_qwords(r: [__m512i; 8]) -> [__m512i; 8] {
    let s = [
        _mm512_unpacklo_epi64(r[0], r[1]),
        _mm512_unpackhi_epi64(r[0], r[1]),
        _mm512_unpacklo_epi64(r[2], r[3]),
        _mm512_unpackhi_epi64(r[2], r[3]),
        _mm512_unpacklo_epi64(r[4], r[5]),
        _mm512_unpackhi_epi64(r[4], r[5]),
        _mm512_unpacklo_epi64(r[6], r[7]),
        _mm512_unpackhi_epi64(r[6], r[7]),
    ];
    let even = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    let odd = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    // u[k] holds qwords k and k + 4 of rows 0–3 (or 4–7 for u[k + 4]).
    let u = [
        _mm512_permutex2var_epi64(s[0], even, s[2]),
        _mm512_permutex2var_epi64(s[1], even, s[3]),
        _mm512_permutex2var_epi64(s[0], odd, s[2]),
        _mm512_permutex2var_epi64(s[1], odd, s[3]),
        _mm512_permutex2var_epi64(s[4], even, s[6]),
        _mm512_permutex2var_epi64(s[5], even, s[7]),
        _mm512_permutex2var_epi64(s[4], odd, s[6]),
        _mm512_permutex2var_epi64(s[5], odd, s[7]),
    ];
    [
        _mm512_shuffle_i64x2::<0x44>(u[0], u[4]),
        _mm512_shuffle_i64x2::<0x44>(u[1], u[5]),
        _mm512_shuffle_i64x2::<0x44>(u[2], u[6]),
        _mm512_shuffle_i64x2::<0x44>(u[3], u[7]),
        _mm512_shuffle_i64x2::<0xEE>(u[0], u[4]),
        _mm512_shuffle_i64x2::<0xEE>(u[1], u[5]),
        _mm512_shuffle_i64x2::<0xEE>(u[2], u[6]),
        _mm512_shuffle_i64x2::<0xEE>(u[3], u[7]),
    ]
}

/// Features per pass of the packer: 8 chunks of 64, so a pass reads 512 contiguous bytes of
/// each sample row (streams well) and its byte groups (32 KB) stay in L1.
const PASS: usize = 512;

/// Packs `m ≤ BLOCK` sample rows of `dim` bytes into `lines[0..dim]` (see `pack::pack_block`,
/// same result). Per 64 features: each group of 8 samples becomes one register of 64 bytes
/// (`row_i << i`), and the 64×64 byte matrix (groups × features) is transposed into 64 lines
/// by two 8×8 qword transposes around one byte permutation.
///
/// # Safety
/// [`has_pack_features`] is true; `bits` holds `m * dim` bytes and `lines` at least `dim`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub unsafe fn pack_block(bits: &[u8], m: usize, dim: usize, lines: &mut [Line]) -> bool {
    debug_assert!(m <= BLOCK && bits.len() >= m * dim && lines.len() >= dim);
    let mut seen = _mm512_setzero_si512();
    let mut groups = [[_mm512_setzero_si512(); 64]; PASS / 64];
    for p0 in (0..dim).step_by(PASS) {
        let chunks = (dim - p0).div_ceil(64).min(PASS / 64);
        for q in 0..m.div_ceil(8) {
            for (c, group) in groups.iter_mut().enumerate().take(chunks) {
                let f0 = p0 + 64 * c;
                let len = 64.min(dim - f0);
                let mask: __mmask64 = if len == 64 { !0 } else { (1u64 << len) - 1 };
                let mut acc = _mm512_setzero_si512();
                for i in 0..8.min(m - 8 * q) {
                    let p = bits.as_ptr().add((8 * q + i) * dim + f0);
                    let v = _mm512_maskz_loadu_epi8(mask, p as *const i8);
                    seen = _mm512_or_si512(seen, v);
                    acc = _mm512_or_si512(acc, _mm512_sllv_epi64(v, _mm512_set1_epi64(i as i64)));
                }
                group[q] = acc;
            }
        }
        for (c, g) in groups.iter_mut().enumerate().take(chunks) {
            let f0 = p0 + 64 * c;
            transpose_bytes_64(g, &mut lines[f0..dim.min(f0 + 64)]);
        }
    }
    _mm512_test_epi8_mask(seen, _mm512_set1_epi8(!1)) == 0
}

/// `groups[q]` byte `t` → byte `q` of `lines[t]` (rows past `lines.len()` are dropped; groups
/// are zeroed for the next pass).
#[inline(always)]
unsafe fn transpose_bytes_64(groups: &mut [__m512i; 64], lines: &mut [Line]) {
    // Byte 8c + i of a tile ← byte 8i + c: an 8×8 byte transpose inside each qword tile.
    let tile_t = _mm512_set_epi8(
        63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13,
        5, 60, 52, 44, 36, 28, 20, 12, 4, 59, 51, 43, 35, 27, 19, 11, 3, 58, 50, 42, 34, 26, 18,
        10, 2, 57, 49, 41, 33, 25, 17, 9, 1, 56, 48, 40, 32, 24, 16, 8, 0,
    );
    let mut c = [[_mm512_setzero_si512(); 8]; 8];
    for j in 0..8 {
        let mut rows = [_mm512_setzero_si512(); 8];
        rows.copy_from_slice(&groups[8 * j..8 * j + 8]);
        let b = transpose_qwords(rows);
        for (t8, b) in b.iter().enumerate() {
            c[t8][j] = _mm512_permutexvar_epi8(tile_t, *b);
        }
    }
    *groups = [_mm512_setzero_si512(); 64];
    for (t8, c) in c.iter().enumerate() {
        let d = transpose_qwords(*c);
        for (k, d) in d.iter().enumerate() {
            if let Some(line) = lines.get_mut(8 * t8 + k) {
                _mm512_store_si512(line as *mut Line as *mut __m512i, *d);
            }
        }
    }
}
