//! Scheduling an op graph for the block engine.
//!
//! Ops run in *steps*, and within a step grouped by (arity, immediate), so each group is one
//! branch-free loop of a kernel specialised for its immediate. The ops (in network order)
//! are cut into waves of [`WAVE_OPS`]; inside a wave an op's step is one more than its
//! deepest operand from the same wave. Waves bound how many Shannon leaves of 4–6-input
//! LUTs are alive at once (all leaves of a whole layer would be up to 8× its width); when
//! LUTs are single ops there is one wave and steps are plain dependency levels.
//!
//! Every value lives in a *slot* of the per-thread arena (one block of samples per slot); a
//! slot is released by the last op reading its value (in execution order) and usually taken
//! over by that op's own result, so the store lands on a line just loaded. Otherwise the
//! lowest free slot goes first, which keeps the arena about as large as two adjacent layers
//! — for a 512-sample block of a 8000-wide net, under 1 MB, inside L2.
//!
//! The code stream is `[dst, src_0, …, src_{arity−1}]` per op, slot numbers as `u32`, read
//! front to back once per block.

use super::compile::{OpGraph, ValueId};
use super::table::Lit;
use crate::{Error, Result};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A run of ops sharing one kernel: `count` ops at `code[start..]`, `1 + arity` words each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    pub imm: u8,
    pub arity: u8,
    pub start: usize,
    pub count: usize,
}

/// What the head counts for each class: slots (repeats allowed) plus ones that are constant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadPlan {
    pub slots: Vec<Vec<u32>>,
    pub offset: Vec<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct Program {
    /// Input bits; input `f` is packed into slot `f`.
    pub inputs: usize,
    /// Arena size in slots.
    pub slots: usize,
    pub code: Vec<u32>,
    pub groups: Vec<Group>,
    pub head: HeadPlan,
    /// Steps (dependency levels) the groups run in.
    pub steps: usize,
    pub ops: usize,
}

const FOREVER: u32 = u32::MAX;

/// Ops per wave when LUTs expand to several ops (measured best for rank 6: 16 K).
pub const WAVE_OPS: usize = 16384;

/// Schedules `g` for a head of `classes` equal groups over its outputs.
pub fn schedule(g: &OpGraph, classes: usize) -> Result<Program> {
    // Waves only bound Shannon temporaries; one-op LUTs schedule best as whole levels.
    let wave = if g.ops.len() * 2 > g.nodes * 3 {
        WAVE_OPS
    } else {
        usize::MAX
    };
    schedule_waves(g, classes, wave)
}

/// [`schedule`] with waves of `wave_ops` ops (tests use tiny waves to cross many boundaries).
pub fn schedule_waves(g: &OpGraph, classes: usize, wave_ops: usize) -> Result<Program> {
    let ni = g.inputs;
    let step = steps(g, wave_ops.max(1));
    let steps = step.iter().copied().max().unwrap_or(0) as usize;
    let mut by_step: Vec<Vec<usize>> = vec![Vec::new(); steps + 1];
    for i in 0..g.ops.len() {
        by_step[step[ni + i] as usize].push(i);
    }
    let mut slots = Slots::new(g);
    let mut p = Program {
        inputs: ni,
        steps,
        ops: g.ops.len(),
        ..Program::default()
    };
    for ops in by_step.iter_mut().skip(1) {
        emit_step(g, ops, &mut slots, &mut p);
    }
    p.slots = slots.alloc.high.max(ni).max(1);
    p.head = head_plan(g, &slots.slot, classes)?;
    p.validate()?;
    Ok(p)
}

/// Slot assignment by reference counting: a value's slot is released by its last reader
/// (in execution order), and that reader writes its own result into it — the line was
/// just loaded, so the store hits L1 instead of fetching a cold line.
struct Slots {
    slot: Vec<u32>,
    /// Reads still to come per value (`FOREVER` for outputs, which the head reads).
    left: Vec<u32>,
    alloc: Allocator,
}

impl Slots {
    fn new(g: &OpGraph) -> Self {
        let ni = g.inputs;
        let mut left = vec![0u32; ni + g.ops.len()];
        for op in &g.ops {
            for &s in &op.src[..op.arity as usize] {
                left[s as usize] += 1;
            }
        }
        for o in &g.outputs {
            if let Lit::Var(v) = *o {
                left[v as usize] = FOREVER;
            }
        }
        let mut slot: Vec<u32> = (0..ni as u32).collect();
        slot.resize(ni + g.ops.len(), u32::MAX);
        let mut alloc = Allocator::new(ni);
        // Inputs nobody reads free their slots at once.
        (0..ni)
            .filter(|&f| left[f] == 0)
            .for_each(|f| alloc.free(f as u32));
        Slots { slot, left, alloc }
    }

    /// Records that op `v` read `srcs` and gives it a slot: the slot of an operand it was
    /// the last reader of when there is one, otherwise the lowest free slot.
    fn assign(&mut self, v: usize, srcs: &[ValueId]) -> u32 {
        let mut dst = None;
        for &s in srcs {
            let s = s as usize;
            if self.left[s] == FOREVER {
                continue;
            }
            self.left[s] -= 1;
            if self.left[s] == 0 {
                match dst {
                    None => dst = Some(self.slot[s]),
                    Some(_) => self.alloc.free(self.slot[s]),
                }
            }
        }
        let dst = dst.unwrap_or_else(|| self.alloc.take());
        self.slot[v] = dst;
        if self.left[v] == 0 {
            // Never read (dead code kept in an unsimplified netlist): free right away.
            self.alloc.free(dst);
        }
        dst
    }
}

/// Appends one step's ops as groups of equal (arity, immediate), giving each a slot.
fn emit_step(g: &OpGraph, ops: &mut [usize], slots: &mut Slots, p: &mut Program) {
    let ni = g.inputs;
    // Within a group, ascending first operand: those loads then sweep the arena in order
    // instead of jumping. Order inside a step is free.
    ops.sort_by_key(|&i| {
        let op = &g.ops[i];
        (op.arity, op.imm, slots.slot[op.src[0] as usize], i)
    });
    let kind = |i: usize| (g.ops[i].arity, g.ops[i].imm);
    for run in ops.chunk_by(|&a, &b| kind(a) == kind(b)) {
        let (arity, imm) = kind(run[0]);
        p.groups.push(Group {
            imm,
            arity,
            start: p.code.len(),
            count: run.len(),
        });
        for &i in run {
            let srcs = &g.ops[i].src[..arity as usize];
            let at = p.code.len();
            p.code.push(0);
            p.code.extend(srcs.iter().map(|&s| slots.slot[s as usize]));
            p.code[at] = slots.assign(ni + i, srcs);
        }
    }
}

/// Step of every value: inputs 0; ops numbered wave after wave, each wave's ops at one more
/// than their deepest operand from the same wave.
fn steps(g: &OpGraph, wave: usize) -> Vec<u32> {
    let ni = g.inputs;
    let mut depth = vec![0u32; ni + g.ops.len()];
    let mut wave_start = vec![0u32];
    let mut base = 0u32;
    let mut deepest = 0u32;
    for (i, op) in g.ops.iter().enumerate() {
        if i > 0 && i % wave == 0 {
            base += deepest;
            deepest = 0;
        }
        let first = (ni + i - i % wave) as u32;
        let d = op.src[..op.arity as usize]
            .iter()
            .filter(|&&s| s >= first)
            .map(|&s| depth[s as usize])
            .max()
            .unwrap_or(0)
            + 1;
        depth[ni + i] = d;
        deepest = deepest.max(d);
        if i % wave == 0 {
            wave_start.push(base);
        }
    }
    // Depths are local to their wave; shift each wave past the ones before it.
    for i in 0..g.ops.len() {
        depth[ni + i] += wave_start[1 + i / wave];
    }
    depth
}

fn head_plan(g: &OpGraph, slot: &[u32], classes: usize) -> Result<HeadPlan> {
    if classes == 0 || !g.outputs.len().is_multiple_of(classes) {
        return Err(Error::invalid(format!(
            "the head splits {} outputs into {classes} groups, which does not divide evenly",
            g.outputs.len()
        )));
    }
    let gs = g.outputs.len() / classes;
    let mut plan = HeadPlan::default();
    for grp in g.outputs.chunks(gs.max(1)).take(classes) {
        let mut slots = Vec::new();
        let mut offset = 0;
        for o in grp {
            match *o {
                Lit::Const(c) => offset += c as u32,
                Lit::Var(v) => slots.push(slot[v as usize]),
            }
        }
        plan.slots.push(slots);
        plan.offset.push(offset);
    }
    // A head over zero outputs still has `classes` (empty) groups.
    plan.slots.resize(classes, Vec::new());
    plan.offset.resize(classes, 0);
    Ok(plan)
}

/// Free slots, lowest first.
struct Allocator {
    free: BinaryHeap<Reverse<u32>>,
    high: usize,
}

impl Allocator {
    fn new(reserved: usize) -> Self {
        Allocator {
            free: BinaryHeap::new(),
            high: reserved,
        }
    }
    fn take(&mut self) -> u32 {
        match self.free.pop() {
            Some(Reverse(s)) => s,
            None => {
                self.high += 1;
                (self.high - 1) as u32
            }
        }
    }
    fn free(&mut self, s: u32) {
        self.free.push(Reverse(s));
    }
}

impl Program {
    /// The kernels index the arena without bounds checks; this is the invariant they rely
    /// on: every slot in the code and the head is below `slots`, and groups tile the code.
    pub fn validate(&self) -> Result<()> {
        let bad = || Error::invalid("internal error: packed program refers past its arena");
        let mut at = 0;
        for g in &self.groups {
            if g.start != at || g.arity as usize != super::kernel::arity_of(g.imm) {
                return Err(bad());
            }
            at += g.count * (1 + g.arity as usize);
        }
        if at != self.code.len() || self.inputs > self.slots {
            return Err(bad());
        }
        if self.head.slots.is_empty() || self.head.slots.len() != self.head.offset.len() {
            return Err(Error::invalid(
                "internal error: packed program has no head classes",
            ));
        }
        let in_range = |s: &u32| (*s as usize) < self.slots;
        if !self.code.iter().all(in_range) || !self.head.slots.iter().flatten().all(in_range) {
            return Err(bad());
        }
        Ok(())
    }
}
