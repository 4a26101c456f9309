//! The block engine: splits the batch into 512-sample blocks, runs blocks on rayon threads,
//! and per block packs the input, runs every op group and counts the head.
//!
//! Each thread keeps its arena (`program.slots` lines) and head counters in a thread-local,
//! so repeated calls reuse warm memory instead of faulting in fresh pages per call.

use super::head;
use super::kernel::{self, GroupFn, Line, BLOCK};
use super::pack;
use super::program::Program;
use crate::layer::simd::{detected_level, SimdLevel};
use crate::{Error, Result};
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a batch comes from.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Sample-major `[n][dim]` bytes of 0/1.
    Bits(&'a [u8]),
    /// Feature-major packed words `[dim][ceil(n/64)]` (see `pack_bits`).
    Words(&'a [u64]),
}

#[derive(Default)]
struct Scratch {
    arena: Vec<Line>,
    counts: Vec<[u32; BLOCK]>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Clone, Debug)]
pub struct Engine {
    pub program: Program,
    level: SimdLevel,
    kernels: Vec<GroupFn>,
    /// `program.code` with slots as byte offsets (what the kernels read).
    code: Vec<u32>,
}

impl Engine {
    /// An engine at `level`, capped at what this CPU supports.
    pub fn new(program: Program, level: SimdLevel) -> Result<Self> {
        program.validate()?;
        let level = level.min(detected_level());
        let kernels = program
            .groups
            .iter()
            .map(|g| kernel::group_fn(level, g.imm))
            .collect();
        let too_big = || {
            Error::invalid(format!(
                "the packed program needs {} arena slots; at most {} fit 32-bit offsets",
                program.slots,
                u32::MAX / 64
            ))
        };
        let code = program
            .code
            .iter()
            .map(|&s| s.checked_mul(64).ok_or_else(too_big))
            .collect::<Result<_>>()?;
        Ok(Engine {
            program,
            level,
            kernels,
            code,
        })
    }

    pub fn level(&self) -> SimdLevel {
        self.level
    }

    pub fn classes(&self) -> usize {
        self.program.head.slots.len()
    }

    /// Class counts `[n][classes]` for `n` samples of `input`.
    pub fn run(&self, input: Input, n: usize) -> Result<Vec<u32>> {
        let dim = self.program.inputs;
        match input {
            Input::Bits(b) => pack::check_bits(b, n, dim)?,
            Input::Words(w) if w.len() != dim * pack::words_for(n) => {
                return Err(Error::invalid(format!(
                    "packed input has {} words, expected {dim} features × {} words for {n} samples",
                    w.len(),
                    pack::words_for(n)
                )))
            }
            Input::Words(_) => {}
        }
        let k = self.classes();
        // Not zeroed first: every block writes all of its rows (a zeroing pass over a large
        // output was a measurable share of the run).
        let mut out: Vec<u32> = Vec::with_capacity(n * k);
        let bad = AtomicBool::new(false);
        // A task runs consecutive blocks, so while one block computes, the next one's input
        // can be prefetched (see `run_ops`).
        let task = |(t, out): (usize, &mut [MaybeUninit<u32>])| {
            let blocks = out.chunks_mut(BLOCK * k);
            let last = t * TASK_BLOCKS + blocks.len() - 1;
            for (b, out) in (t * TASK_BLOCKS..).zip(blocks) {
                let next = (b < last)
                    .then(|| self.block_bytes(input, n, b + 1))
                    .flatten();
                if !self.block(input, n, b, next, out) {
                    bad.store(true, Ordering::Relaxed);
                }
            }
        };
        let spare = &mut out.spare_capacity_mut()[..n * k];
        if n <= BLOCK {
            spare.chunks_mut(BLOCK * k).enumerate().for_each(task);
        } else {
            spare
                .par_chunks_mut(TASK_BLOCKS * BLOCK * k)
                .enumerate()
                .for_each(task);
        }
        if bad.into_inner() {
            return Err(match input {
                Input::Bits(b) => pack::non_binary_error(b, dim),
                Input::Words(_) => Error::invalid("internal error: packed words rejected"),
            });
        }
        // SAFETY: no block failed, and each block's `write_counts` wrote every entry of its
        // rows; the blocks' chunks tile `[0, n * k)`.
        unsafe { out.set_len(n * k) };
        Ok(out)
    }

    /// The input bytes of block `b` (its sample rows, or its words of every feature — those
    /// are scattered, so there is nothing contiguous to prefetch).
    fn block_bytes<'a>(&self, input: Input<'a>, n: usize, b: usize) -> Option<&'a [u8]> {
        let dim = self.program.inputs;
        match input {
            Input::Bits(bits) => Some(&bits[b * BLOCK * dim..n.min((b + 1) * BLOCK) * dim]),
            Input::Words(_) => None,
        }
    }

    /// Runs block `b` into `out` (`[m][k]` for its `m` samples), prefetching `next` into L2
    /// meanwhile; false on non-binary input.
    fn block(
        &self,
        input: Input,
        n: usize,
        b: usize,
        next: Option<&[u8]>,
        out: &mut [MaybeUninit<u32>],
    ) -> bool {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let Scratch { arena, counts } = &mut *s;
            let p = &self.program;
            if arena.len() < p.slots {
                arena.resize(p.slots, Line::default());
            }
            counts.resize(self.classes(), [0; BLOCK]);
            let (dim, m) = (p.inputs, (n - b * BLOCK).min(BLOCK));
            match input {
                Input::Bits(bits) => {
                    let rows = &bits[b * BLOCK * dim..(b * BLOCK + m) * dim];
                    if !self.pack(rows, m, dim, arena) {
                        return false;
                    }
                }
                Input::Words(w) => pack::load_block(w, pack::words_for(n), b, dim, arena),
            }
            self.run_ops(arena, next.unwrap_or(&[]));
            // SAFETY: the program was validated (all head slots < slots ≤ arena.len()) and
            // `level` is capped at the detected level.
            unsafe { head::count_block(self.level, arena.as_mut_ptr(), &p.head, counts) };
            write_counts(counts, out);
            true
        })
    }

    /// Packs one block of sample rows with the fastest packer this level allows.
    fn pack(&self, rows: &[u8], m: usize, dim: usize, arena: &mut [Line]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self.level == SimdLevel::Avx512 && super::avx512::has_pack_features() {
            // SAFETY: features checked; `rows` is `m * dim` bytes and the arena holds at least
            // `inputs = dim` lines (validated program).
            return unsafe { super::avx512::pack_block(rows, m, dim, arena) };
        }
        pack::pack_block_at(self.level, rows, m, dim, arena)
    }

    /// Runs every op group; `prefetch` (the next block's input) is pulled towards L2 a few
    /// lines per [`PREFETCH_OPS`] ops, so the packer of the next block finds it there
    /// instead of waiting on memory while the ops themselves only touch L2.
    fn run_ops(&self, arena: &mut [Line], prefetch: &[u8]) {
        let p = &self.program;
        debug_assert!(arena.len() >= p.slots);
        let base = arena.as_mut_ptr();
        let lines = prefetch.len().div_ceil(64);
        let per_run = (lines * PREFETCH_OPS).div_ceil(p.ops.max(1));
        let mut fetched = 0;
        for (g, f) in p.groups.iter().zip(&self.kernels) {
            let width = 1 + g.arity as usize;
            let code = &self.code[g.start..g.start + g.count * width];
            for run in code.chunks(PREFETCH_OPS * width) {
                // SAFETY: validated program (every slot < p.slots ≤ arena.len()), aligned
                // `Line` arena, kernels chosen for a level the CPU has.
                unsafe { f(base, run) };
                let upto = lines.min(fetched + per_run);
                prefetch_lines(prefetch, fetched, upto);
                fetched = upto;
            }
        }
    }
}

/// Transposes class-major block counts into the sample-major output rows (`out` holds the
/// block's samples only).
fn write_counts(counts: &[[u32; BLOCK]], out: &mut [MaybeUninit<u32>]) {
    let k = counts.len();
    debug_assert_eq!(out.len() % k, 0);
    for (s, row) in out.chunks_exact_mut(k).enumerate() {
        for (o, c) in row.iter_mut().zip(counts) {
            o.write(c[s]);
        }
    }
}

/// Blocks per rayon task.
const TASK_BLOCKS: usize = 8;
/// Ops between prefetch bursts.
const PREFETCH_OPS: usize = 64;

/// Hints lines `from..to` (64-byte units) of `bytes` into L2.
fn prefetch_lines(bytes: &[u8], from: usize, to: usize) {
    #[cfg(target_arch = "x86_64")]
    for l in from..to {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        // SAFETY: a prefetch never faults; the address is inside `bytes` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(bytes.as_ptr().add(l * 64) as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, from, to);
}
