//! Truth table → bitwise operations.
//!
//! Every operation the engine runs is one 3-input boolean function given by its `vpternlog`
//! immediate, reading 0–3 distinct operands (the kernels load only `arity` words). That one
//! shape covers all cases:
//! - ≤ 3 inputs (after constants, repeats and ignored inputs are removed): one operation,
//!   immediate = the truth table (MSB order matches ternlog's operand order);
//! - 4–6 inputs: Shannon expansion. Three inputs stay in the leaves (2^(m−3) 3-input
//!   cofactors, one op each unless trivial), the others select through a tree of muxes
//!   (`a ? b : c` = immediate 0xCA), with constant or equal branches folded away. The leaf
//!   inputs are chosen per table to minimise the operation count.
//!
//! Operations are hash-consed, so equal leaves (within a neuron or across neurons) are
//! computed once. On AVX-512 each operation is one `vpternlogq`; on AVX2 and scalar code it
//! is the same immediate expanded to at most a handful of and/or/xor/andnot.

use super::netlist::{Netlist, Output};
use super::table::{self, Lit};
use std::collections::HashMap;

/// Value ids: `0..inputs` are input bits, `inputs + i` is op `i`.
pub type ValueId = u32;
type Val = Lit<ValueId>;

/// The mux `a ? b : c` over operands (a, b, c).
const MUX: u64 = 0xCA;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    pub imm: u8,
    /// Operands actually read: `src[..arity]`.
    pub arity: u8,
    pub src: [ValueId; 3],
}

/// The network as ternlog operations, in dependency order.
#[derive(Clone, Debug, Default)]
pub struct OpGraph {
    pub inputs: usize,
    /// LUT nodes compiled (ops per node tells how much Shannon expansion there was).
    pub nodes: usize,
    pub ops: Vec<Op>,
    pub outputs: Vec<Val>,
}

/// Compiles every node of `net` to operations.
pub fn compile(net: &Netlist) -> OpGraph {
    let mut sink = Builder {
        graph: OpGraph {
            inputs: net.inputs,
            nodes: net.nodes.len(),
            ..OpGraph::default()
        },
        seen: HashMap::new(),
    };
    let mut vals: Vec<Val> = (0..net.inputs as ValueId).map(Lit::Var).collect();
    for node in &net.nodes {
        let lits: Vec<Val> = node.inputs.iter().map(|&s| vals[s as usize]).collect();
        let v = emit_best(&mut sink, &lits, node.table);
        vals.push(v);
    }
    sink.graph.outputs = net
        .outputs
        .iter()
        .map(|o| match *o {
            Output::Const(c) => Lit::Const(c),
            Output::Signal(s) => vals[s as usize],
        })
        .collect();
    sink.graph
}

/// The graph under construction, with its hash-consing table.
struct Builder {
    graph: OpGraph,
    seen: HashMap<Op, ValueId>,
}

impl Builder {
    fn op(&mut self, op: Op) -> ValueId {
        if let Some(&v) = self.seen.get(&op) {
            return v;
        }
        let v = (self.graph.inputs + self.graph.ops.len()) as ValueId;
        self.graph.ops.push(op);
        self.seen.insert(op, v);
        v
    }
}

/// Emits a table, choosing the leaf inputs of a Shannon expansion with the fewest operations.
fn emit_best(sink: &mut Builder, lits: &[Val], t: u64) -> Val {
    let (vars, t) = table::reduce(lits, t);
    if vars.len() <= 3 {
        return emit_reduced(sink, vars, t);
    }
    let m = vars.len();
    let perm = leaf_choices(m)
        .into_iter()
        .min_by_key(|p| shannon_cost(table::permute(t, p), m))
        .unwrap_or_else(|| (0..m).collect());
    let (pv, pt) = permuted(&vars, t, &perm);
    emit_reduced(sink, pv, pt)
}

/// Operations [`shannon`] would emit for an `m`-input table (leaves over its last 3 inputs),
/// counted without building them: distinct leaves that are not a constant or a single
/// input, plus distinct muxes of unequal branches per select level.
fn shannon_cost(t: u64, m: usize) -> usize {
    const TRIVIAL: [u64; 5] = [0x00, 0xFF, 0xF0, 0xCC, 0xAA];
    // Value ids: a leaf is its 8-bit table; a mux result is 256 + its index.
    let mut vals: Vec<u32> = (0..1usize << (m - 3))
        .map(|v| ((t >> (v * 8)) & 0xFF) as u32)
        .collect();
    let mut seen: Vec<u32> = Vec::with_capacity(vals.len());
    for &v in &vals {
        if !TRIVIAL.contains(&(v as u64)) && !seen.contains(&v) {
            seen.push(v);
        }
    }
    let mut cost = seen.len();
    let mut next_id = 256;
    while vals.len() > 1 {
        let mut muxes: Vec<(u32, u32, u32)> = Vec::new();
        vals = vals
            .chunks_exact(2)
            .map(|p| {
                if p[0] == p[1] {
                    return p[0];
                }
                match muxes.iter().find(|&&(lo, hi, _)| (lo, hi) == (p[0], p[1])) {
                    Some(&(_, _, id)) => id,
                    None => {
                        next_id += 1;
                        muxes.push((p[0], p[1], next_id));
                        next_id
                    }
                }
            })
            .collect();
        cost += muxes.len();
    }
    cost
}

fn permuted(vars: &[ValueId], t: u64, perm: &[usize]) -> (Vec<ValueId>, u64) {
    (
        perm.iter().map(|&i| vars[i]).collect(),
        table::permute(t, perm),
    )
}

/// Input orders for an `m`-input table, one per choice of the 3 leaf inputs (placed last).
fn leaf_choices(m: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for a in 0..m {
        for b in a + 1..m {
            for c in b + 1..m {
                let mut p: Vec<usize> = (0..m).filter(|&i| i != a && i != b && i != c).collect();
                p.extend([a, b, c]);
                out.push(p);
            }
        }
    }
    out
}

/// Emits a table over literals (reducing it first).
fn emit(sink: &mut Builder, lits: &[Val], t: u64) -> Val {
    let (vars, t) = table::reduce(lits, t);
    emit_reduced(sink, vars, t)
}

/// Emits a reduced table: distinct variables it depends on, in the given order.
fn emit_reduced(sink: &mut Builder, mut vars: Vec<ValueId>, t: u64) -> Val {
    match vars.len() {
        0 => Lit::Const(t & 1 == 1),
        1 if t == table::IDENTITY => Lit::Var(vars[0]),
        1..=3 => {
            // Sorted operands make equal functions hash equal.
            let t = table::sort_inputs(&mut vars, t);
            let mut src = [0; 3];
            src[..vars.len()].copy_from_slice(&vars);
            Lit::Var(sink.op(Op {
                imm: table::ternlog_imm(t, vars.len()),
                arity: vars.len() as u8,
                src,
            }))
        }
        m => shannon(sink, &vars, t, m),
    }
}

/// Leaves over the last 3 inputs, muxed by the first `m − 3` (most significant first).
fn shannon(sink: &mut Builder, vars: &[ValueId], t: u64, m: usize) -> Val {
    let top = m - 3;
    let leaf_vars: Vec<Val> = vars[top..].iter().map(|&v| Lit::Var(v)).collect();
    let mut level: Vec<Val> = (0..1usize << top)
        .map(|v| emit(sink, &leaf_vars, (t >> (v * 8)) & 0xFF))
        .collect();
    for j in (0..top).rev() {
        level = level
            .chunks_exact(2)
            .map(|pair| emit(sink, &[Lit::Var(vars[j]), pair[1], pair[0]], MUX))
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::netlist::Node;

    /// Evaluates the op graph on one input assignment, checking that operands past an op's
    /// arity really are ignored (they are fed as 0 and as 1).
    fn run(g: &OpGraph, inputs: &[bool]) -> Vec<bool> {
        let mut v = inputs.to_vec();
        for op in &g.ops {
            let at = |unused: usize| {
                let b = |i: usize| match i < op.arity as usize {
                    true => v[op.src[i] as usize] as usize,
                    false => unused,
                };
                (op.imm >> ((b(0) << 2) | (b(1) << 1) | b(2))) & 1 == 1
            };
            assert_eq!(
                at(0),
                at(1),
                "imm {:#x} reads past arity {}",
                op.imm,
                op.arity
            );
            v.push(at(0));
        }
        g.outputs
            .iter()
            .map(|o| match *o {
                Lit::Const(c) => c,
                Lit::Var(x) => v[x as usize],
            })
            .collect()
    }

    #[test]
    fn every_arity_compiles_to_an_equal_function() {
        let mut rng = crate::rng::Rng::new(11);
        for arity in 1..=6 {
            for _ in 0..200 {
                let t = rng.next_u64() & table::mask(arity);
                let inputs: Vec<u32> = (0..arity).map(|_| rng.below(7) as u32).collect();
                let net = Netlist {
                    inputs: 7,
                    nodes: vec![Node { inputs, table: t }],
                    outputs: vec![Output::Signal(7)],
                    classes: 1,
                };
                let g = compile(&net);
                let ops_bound = [1, 1, 1, 1, 3, 7, 15][arity];
                assert!(
                    g.ops.len() <= ops_bound,
                    "{} ops for rank {arity}",
                    g.ops.len()
                );
                for env in 0..128u32 {
                    let bits: Vec<u8> = (0..7).map(|i| ((env >> i) & 1) as u8).collect();
                    let want = net.eval_sample(&bits)[0] == 1;
                    let b: Vec<bool> = bits.iter().map(|&x| x == 1).collect();
                    assert_eq!(run(&g, &b)[0], want, "table {t:#x} arity {arity}");
                }
            }
        }
    }

    #[test]
    fn rank2_gates_are_single_ops() {
        for t in 0..16u64 {
            let net = Netlist {
                inputs: 2,
                nodes: vec![Node {
                    inputs: vec![0, 1],
                    table: t,
                }],
                outputs: vec![Output::Signal(2)],
                classes: 1,
            };
            let g = compile(&net);
            // Constants and pass-throughs of either input cost nothing.
            let trivial = matches!(t, 0 | 0xF | 0b1100 | 0b1010);
            assert_eq!(g.ops.len(), usize::from(!trivial), "gate {t:#06b}");
        }
    }
}
