//! The op kernels: one loop per (immediate, SIMD level), over the ops of a group.
//!
//! A slot holds one block of [`BLOCK`] samples: [`WORDS`] `u64` words, one 64-byte cache line,
//! so an op is two or three line loads, one boolean function and one line store. The
//! immediate is a const generic, so each of the 256 functions compiles to its own short
//! expression (one `vpternlogq` on AVX-512, see `avx512.rs`; a few and/or/xor/andnot here)
//! and a group runs without a branch per op. Scalar and AVX2 share the generic body below,
//! compiled twice (plain and `target_feature(enable = "avx2")`), as in `layer::simd`.

use crate::layer::simd::SimdLevel;

/// Samples per block: one 512-bit line per slot.
pub const BLOCK: usize = 512;
/// `u64` words per slot.
pub const WORDS: usize = BLOCK / 64;

/// One slot of the arena, aligned so AVX-512 loads and stores are whole cache lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Line(pub [u64; WORDS]);

/// Runs `code` (`[dst, src…]` per op, `1 + arity_of(imm)` words each) on `arena`. Operands
/// are byte offsets (slot × 64), which saves the hot loop a shift per operand.
///
/// # Safety
/// Every offset in `code` is a multiple of 64 inside the arena, the arena is 64-byte aligned
/// (a `Line` slice), and the CPU supports the kernel's level.
pub type GroupFn = unsafe fn(arena: *mut Line, code: &[u32]);

/// The distinct operands immediate `imm` reads: 3 if it depends on its third operand, else 2
/// if on its second, else 1 if on its first, else 0. An op's arity is always its immediate's
/// (`table::ternlog_imm` of a table that depends on each of its inputs; `Program::validate`
/// checks it), so each kernel knows its operand count at compile time: one loop per
/// immediate instead of four.
pub const fn arity_of(imm: u8) -> usize {
    // Bit (a << 2) | (b << 1) | c of `imm`; an operand matters where flipping it changes a bit.
    if (imm & 0x55) << 1 != imm & 0xAA {
        3
    } else if (imm & 0x33) << 2 != imm & 0xCC {
        2
    } else if (imm & 0x0F) << 4 != imm & 0xF0 {
        1
    } else {
        0
    }
}

/// The 2-input function with truth table `t` (bit `2b + c`) of `b` and `c`.
#[inline(always)]
fn gate2(t: i32, b: u64, c: u64) -> u64 {
    match t & 15 {
        0 => 0,
        1 => !(b | c),
        2 => !b & c,
        3 => !b,
        4 => b & !c,
        5 => !c,
        6 => b ^ c,
        7 => !(b & c),
        8 => b & c,
        9 => !(b ^ c),
        10 => c,
        11 => !b | c,
        12 => b,
        13 => b | !c,
        14 => b | c,
        _ => !0,
    }
}

/// `vpternlog` semantics on `u64`: bit `(a << 2) | (b << 1) | c` of `IMM`, by Shannon on `a`.
#[inline(always)]
pub fn tern<const IMM: i32>(a: u64, b: u64, c: u64) -> u64 {
    let (hi, lo) = (IMM >> 4, IMM & 15);
    if hi == lo {
        return gate2(lo, b, c);
    }
    let (f1, f0) = (gate2(hi, b, c), gate2(lo, b, c));
    (a & f1) | (!a & f0)
}

/// Plain definition of one ternlog with a run-time immediate (the reference for tests).
pub fn tern_ref(imm: u8, a: u64, b: u64, c: u64) -> u64 {
    (0..64).fold(0, |r, i| {
        let k = (((a >> i) & 1) << 2) | (((b >> i) & 1) << 1) | ((c >> i) & 1);
        r | ((((imm >> k) & 1) as u64) << i)
    })
}

/// The line at byte offset `off` of the arena.
#[inline(always)]
pub(crate) unsafe fn at(arena: *mut Line, off: u32) -> *mut Line {
    arena.cast::<u8>().add(off as usize).cast::<Line>()
}

#[inline(always)]
unsafe fn line(arena: *mut Line, off: u32) -> [u64; WORDS] {
    (*at(arena, off)).0
}

#[inline(always)]
unsafe fn put(arena: *mut Line, off: u32, v: [u64; WORDS]) {
    (*at(arena, off)).0 = v;
}

/// The generic group loop over ops of `arity_of(IMM)` operands.
#[inline(always)]
unsafe fn group_body<const IMM: i32>(arena: *mut Line, code: &[u32]) {
    match const { arity_of(IMM as u8) } {
        0 => {
            let v = [tern::<IMM>(0, 0, 0); WORDS];
            for op in code {
                put(arena, *op, v);
            }
        }
        1 => {
            for op in code.chunks_exact(2) {
                let a = line(arena, op[1]);
                put(arena, op[0], a.map(|a| tern::<IMM>(a, a, a)));
            }
        }
        2 => {
            for op in code.chunks_exact(3) {
                let (a, b) = (line(arena, op[1]), line(arena, op[2]));
                let r = std::array::from_fn(|l| tern::<IMM>(a[l], b[l], b[l]));
                put(arena, op[0], r);
            }
        }
        _ => {
            for op in code.chunks_exact(4) {
                let (a, b, c) = (line(arena, op[1]), line(arena, op[2]), line(arena, op[3]));
                let r = std::array::from_fn(|l| tern::<IMM>(a[l], b[l], c[l]));
                put(arena, op[0], r);
            }
        }
    }
}

unsafe fn group_scalar<const IMM: i32>(arena: *mut Line, code: &[u32]) {
    group_body::<IMM>(arena, code)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn group_avx2<const IMM: i32>(arena: *mut Line, code: &[u32]) {
    group_body::<IMM>(arena, code)
}

/// `[[f::<0>, …, f::<15>], …, [f::<240>, …, f::<255>]]`: one instance per immediate.
macro_rules! imm_table {
    ($f:ident) => {
        imm_table!(@rows $f; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@rows $f:ident; $($h:literal)*) => {
        [$(imm_table!(@row $f; $h)),*]
    };
    (@row $f:ident; $h:literal) => {
        [
            $f::<{ $h * 16 }>, $f::<{ $h * 16 + 1 }>, $f::<{ $h * 16 + 2 }>,
            $f::<{ $h * 16 + 3 }>, $f::<{ $h * 16 + 4 }>, $f::<{ $h * 16 + 5 }>,
            $f::<{ $h * 16 + 6 }>, $f::<{ $h * 16 + 7 }>, $f::<{ $h * 16 + 8 }>,
            $f::<{ $h * 16 + 9 }>, $f::<{ $h * 16 + 10 }>, $f::<{ $h * 16 + 11 }>,
            $f::<{ $h * 16 + 12 }>, $f::<{ $h * 16 + 13 }>, $f::<{ $h * 16 + 14 }>,
            $f::<{ $h * 16 + 15 }>,
        ]
    };
}
pub(crate) use imm_table;

pub type ImmTable = [[GroupFn; 16]; 16];

static SCALAR: ImmTable = imm_table!(group_scalar);
#[cfg(target_arch = "x86_64")]
static AVX2: ImmTable = imm_table!(group_avx2);

/// The kernel for `imm` at `level` (the caller guarantees the CPU has `level`).
pub fn group_fn(level: SimdLevel, imm: u8) -> GroupFn {
    let (h, l) = ((imm >> 4) as usize, (imm & 15) as usize);
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => super::avx512::GROUPS[h][l],
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => AVX2[h][l],
        _ => SCALAR[h][l],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<const IMM: i32>(a: u64, b: u64, c: u64) {
        assert_eq!(
            tern::<IMM>(a, b, c),
            tern_ref(IMM as u8, a, b, c),
            "imm {IMM}"
        );
    }

    #[test]
    fn an_immediates_arity_is_the_inputs_of_its_table() {
        // Every table the compiler emits an op for depends on each of its 1–3 inputs.
        use crate::packed::table::{depends_on, ternlog_imm};
        let mut seen = 0;
        for arity in 1..=3usize {
            for t in 0..1u64 << (1 << arity) {
                if (0..arity).all(|j| depends_on(t, arity, j)) {
                    let imm = ternlog_imm(t, arity);
                    assert_eq!(arity_of(imm), arity, "table {t:#x} of {arity} inputs");
                    seen += 1;
                }
            }
        }
        // 2 + 10 + 218 tables depend on all of their 1, 2, 3 inputs.
        assert_eq!(seen, 230);
        assert_eq!((arity_of(0x00), arity_of(0xFF)), (0, 0));
    }

    #[test]
    fn generic_ternlog_matches_its_definition() {
        let (a, b, c) = (
            0xF0F0_F0F0_F0F0_F0F0,
            0xCCCC_CCCC_CCCC_CCCC,
            0xAAAA_AAAA_AAAA_AAAA,
        );
        // The canonical operands make the result equal to the immediate, repeated.
        macro_rules! all {
            ($($i:literal)*) => { $(
                check::<{ $i * 16 }>(a, b, c); check::<{ $i * 16 + 3 }>(a, b, c);
                check::<{ $i * 16 + 6 }>(a, b, c); check::<{ $i * 16 + 9 }>(a, b, c);
                check::<{ $i * 16 + 10 }>(a, b, c); check::<{ $i * 16 + 15 }>(a, b, c);
            )* };
        }
        all!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
        for imm in 0..=255u8 {
            assert_eq!(tern_ref(imm, a, b, c) & 0xFF, imm as u64);
        }
    }
}
