//! Netlist simplification: fewer gates, same outputs on every input.
//!
//! One forward pass resolves every node to a constant, to (possibly negated) another signal,
//! or to a fresh canonical node:
//! - readers of constants get the constant substituted into their table (rank drops);
//! - readers of pass-through and negated LUTs read the source directly, the negation
//!   absorbed into the reader's table;
//! - repeated and ignored inputs are merged / dropped, inputs are sorted, and the output
//!   polarity is normalised (entry 0 is 0; a complement becomes a negated reference), so
//!   identical and complementary neurons over the same inputs collapse into one node.
//!
//! A backward pass then drops every node no output depends on. Outputs that resolve to a
//! negation get one NOT node (the head counts ones of stored words).

use super::netlist::{Netlist, Node, Output, SignalId};
use super::table::{self, Lit};
use crate::{Model, Result};
use std::collections::HashMap;

/// What a signal of the original netlist became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved {
    Const(bool),
    Sig { id: SignalId, neg: bool },
}

/// Gate counts of a model's netlist: `(before, after)` simplification.
pub fn gate_counts(model: &Model) -> Result<(usize, usize)> {
    let net = super::netlist_of(model)?;
    let simple = simplify(&net);
    Ok((net.nodes.len(), simple.nodes.len()))
}

/// The simplified netlist (see the module docs); same inputs, classes and output order.
pub fn simplify(net: &Netlist) -> Netlist {
    let mut b = Builder::new(net.inputs);
    let mut resolved: Vec<Resolved> = (0..net.inputs as u32)
        .map(|id| Resolved::Sig { id, neg: false })
        .collect();
    for node in &net.nodes {
        let lits: Vec<Resolved> = node.inputs.iter().map(|&i| resolved[i as usize]).collect();
        let r = b.add(&lits, node.table);
        resolved.push(r);
    }
    let outs: Vec<Resolved> = net
        .outputs
        .iter()
        .map(|o| match *o {
            Output::Const(c) => Resolved::Const(c),
            Output::Signal(s) => resolved[s as usize],
        })
        .collect();
    let outputs = b.outputs(&outs);
    let full = Netlist {
        inputs: net.inputs,
        nodes: b.nodes,
        outputs,
        classes: net.classes,
    };
    drop_dead(&full)
}

/// Accumulates canonical nodes, hash-consed on (inputs, table).
struct Builder {
    inputs: usize,
    nodes: Vec<Node>,
    seen: HashMap<Node, SignalId>,
}

impl Builder {
    fn new(inputs: usize) -> Self {
        Builder {
            inputs,
            nodes: Vec::new(),
            seen: HashMap::new(),
        }
    }

    /// Adds a LUT over resolved operands and says what it resolves to.
    fn add(&mut self, lits: &[Resolved], t: u64) -> Resolved {
        let mut t = t;
        let ops: Vec<Lit<SignalId>> = lits
            .iter()
            .enumerate()
            .map(|(j, l)| match *l {
                Resolved::Const(c) => Lit::Const(c),
                Resolved::Sig { id, neg } => {
                    if neg {
                        t = table::negate_input(t, lits.len(), j);
                    }
                    Lit::Var(id)
                }
            })
            .collect();
        let (mut vars, t) = table::reduce(&ops, t);
        let t = table::sort_inputs(&mut vars, t);
        match (vars.len(), t) {
            (0, t) => return Resolved::Const(t & 1 == 1),
            (1, table::IDENTITY) => {
                return Resolved::Sig {
                    id: vars[0],
                    neg: false,
                }
            }
            (1, table::NOT) => {
                return Resolved::Sig {
                    id: vars[0],
                    neg: true,
                }
            }
            _ => {}
        }
        // Entry 0 set: store the complement and hand out a negated reference instead.
        let neg = t & 1 == 1;
        let t = if neg { !t & table::mask(vars.len()) } else { t };
        let id = self.intern(Node {
            inputs: vars,
            table: t,
        });
        Resolved::Sig { id, neg }
    }

    fn intern(&mut self, node: Node) -> SignalId {
        if let Some(&id) = self.seen.get(&node) {
            return id;
        }
        let id = (self.inputs + self.nodes.len()) as SignalId;
        self.nodes.push(node.clone());
        self.seen.insert(node, id);
        id
    }

    /// What the head reads. Nodes the head reads only negated are complemented in place
    /// (their node readers absorb the flip); other negations get one NOT node each. So the
    /// canonical polarity never costs a gate the original network did not have.
    fn outputs(&mut self, outs: &[Resolved]) -> Vec<Output> {
        let ni = self.inputs;
        let (mut pos, mut neg) = (vec![false; self.nodes.len()], vec![false; self.nodes.len()]);
        for r in outs {
            if let Resolved::Sig { id, neg: n } = *r {
                if id as usize >= ni {
                    let i = id as usize - ni;
                    if n {
                        neg[i] = true;
                    } else {
                        pos[i] = true;
                    }
                }
            }
        }
        let flip: Vec<bool> = neg.iter().zip(&pos).map(|(&n, &p)| n && !p).collect();
        for node in &mut self.nodes {
            for (j, &s) in node.inputs.iter().enumerate() {
                if s as usize >= ni && flip[s as usize - ni] {
                    node.table = table::negate_input(node.table, node.inputs.len(), j);
                }
            }
        }
        for (node, _) in self.nodes.iter_mut().zip(&flip).filter(|(_, &f)| f) {
            node.table = !node.table & table::mask(node.inputs.len());
        }
        outs.iter()
            .map(|r| match *r {
                Resolved::Const(c) => Output::Const(c),
                Resolved::Sig { id, neg } => {
                    let flipped = id as usize >= ni && flip[id as usize - ni];
                    if neg && !flipped {
                        Output::Signal(self.not_of(id))
                    } else {
                        Output::Signal(id)
                    }
                }
            })
            .collect()
    }

    /// A NOT node over `id`, shared by every output that needs it.
    fn not_of(&mut self, id: SignalId) -> SignalId {
        self.intern(Node {
            inputs: vec![id],
            table: table::NOT,
        })
    }
}

/// Removes nodes no output depends on and renumbers the rest (order kept).
fn drop_dead(net: &Netlist) -> Netlist {
    let ni = net.inputs;
    let mut live = vec![false; net.nodes.len()];
    for o in &net.outputs {
        if let Output::Signal(s) = *o {
            if s as usize >= ni {
                live[s as usize - ni] = true;
            }
        }
    }
    for i in (0..net.nodes.len()).rev() {
        if live[i] {
            for &s in &net.nodes[i].inputs {
                if s as usize >= ni {
                    live[s as usize - ni] = true;
                }
            }
        }
    }
    let mut new_id: Vec<SignalId> = (0..ni as u32).collect();
    let mut nodes = Vec::new();
    for (i, node) in net.nodes.iter().enumerate() {
        new_id.push((ni + nodes.len()) as SignalId);
        if live[i] {
            nodes.push(Node {
                inputs: node.inputs.iter().map(|&s| new_id[s as usize]).collect(),
                table: node.table,
            });
        }
    }
    let outputs = net
        .outputs
        .iter()
        .map(|o| match *o {
            Output::Signal(s) => Output::Signal(new_id[s as usize]),
            c => c,
        })
        .collect();
    Netlist {
        inputs: ni,
        nodes,
        outputs,
        classes: net.classes,
    }
}
