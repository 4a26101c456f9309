//! The discrete network as a netlist: a topologically ordered list of LUT nodes, each reading
//! up to 6 signals (inputs or earlier nodes), and the head's outputs.
//!
//! Layers disappear here on purpose: after simplification a node may read any earlier signal
//! (a pass-through LUT folded away links its reader to a node two layers up), so the engine
//! schedules nodes by dependency depth, not by layer. `eval_sample` is the plain reference the
//! simplifier and the engine are tested against.

use super::table;
use crate::layer::LogicDense;
use crate::{Error, Result};

/// Signal ids: `0..inputs` are input bits, `inputs + i` is node `i`.
pub type SignalId = u32;

/// One LUT: its input signals (at most [`table::MAX_ARITY`]) and truth table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub inputs: Vec<SignalId>,
    pub table: u64,
}

/// What the head reads at one position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Signal(SignalId),
    Const(bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Netlist {
    pub inputs: usize,
    pub nodes: Vec<Node>,
    /// The head's inputs in order; class `c` counts `outputs[c * g..(c + 1) * g]`.
    pub outputs: Vec<Output>,
    pub classes: usize,
}

impl Netlist {
    /// Translates LogicDense layers one neuron per node, exactly as eval forward reads them.
    /// `inputs` is the width the first layer reads; shapes are checked by the caller.
    pub fn from_layers(inputs: usize, layers: &[&LogicDense], classes: usize) -> Result<Self> {
        let mut nodes = Vec::new();
        let mut prev_base = 0u32;
        let mut prev_width = inputs;
        for (li, layer) in layers.iter().enumerate() {
            let (luts, ids) = layer.get_luts_and_ids();
            let rank = layer.rank();
            check_layer(li, layer, &luts, &ids, prev_width)?;
            let base = (inputs + nodes.len()) as u32;
            for (lut, ids) in luts.chunks_exact(1 << rank).zip(ids.chunks_exact(rank)) {
                nodes.push(Node {
                    inputs: ids.iter().map(|&id| prev_base + id).collect(),
                    table: table::from_lut(lut),
                });
            }
            prev_base = base;
            prev_width = layer.out_dim();
        }
        let outputs = (0..prev_width as u32)
            .map(|i| Output::Signal(prev_base + i))
            .collect();
        Ok(Netlist {
            inputs,
            nodes,
            outputs,
            classes,
        })
    }

    pub fn group_size(&self) -> usize {
        self.outputs.len() / self.classes.max(1)
    }

    /// Reference evaluation of one sample (`bits` has `inputs` entries of 0/1): the head's
    /// counts per class.
    pub fn eval_sample(&self, bits: &[u8]) -> Vec<u32> {
        let mut v: Vec<bool> = bits.iter().map(|&b| b != 0).collect();
        for n in &self.nodes {
            let x = table::eval(n.table, n.inputs.iter().map(|&i| v[i as usize]));
            v.push(x);
        }
        let g = self.group_size();
        self.outputs
            .chunks(g.max(1))
            .take(self.classes)
            .map(|grp| {
                grp.iter()
                    .map(|o| match *o {
                        Output::Const(c) => c as u32,
                        Output::Signal(s) => v[s as usize] as u32,
                    })
                    .sum()
            })
            .collect()
    }
}

/// Checks one layer's tables and ids against the width it reads (public fields can be edited
/// after construction, so nothing is taken on trust).
fn check_layer(li: usize, l: &LogicDense, luts: &[u8], ids: &[u32], width: usize) -> Result<()> {
    let rank = l.rank();
    if rank == 0 || rank > table::MAX_ARITY {
        return Err(Error::invalid(format!(
            "LogicDense {li} has lut_rank {rank} (valid: 1..={})",
            table::MAX_ARITY
        )));
    }
    if l.in_dim() != width {
        return Err(Error::invalid(format!(
            "LogicDense {li} reads {} bits but the stage before it produces {width}",
            l.in_dim()
        )));
    }
    if ids.len() != l.out_dim() * rank || luts.len() != l.out_dim() << rank {
        return Err(Error::invalid(format!(
            "LogicDense {li} has {} ids and {} LUT entries, expected {} and {}",
            ids.len(),
            luts.len(),
            l.out_dim() * rank,
            l.out_dim() << rank
        )));
    }
    if let Some(&bad) = ids.iter().find(|&&i| i as usize >= width) {
        return Err(Error::invalid(format!(
            "LogicDense {li} has connection id {bad}, out of range for in_dim {width}"
        )));
    }
    Ok(())
}
