//! Bit-packed inference (SPEC §3): `PackedLogicNet` evaluates the discrete network on 512
//! samples at a time with bitwise instructions, giving the same group counts as
//! `Model::eval_counts` and the same integer class scores as `Model::eval_scores`, bit for bit.
//!
//! The path from a model to running code:
//! 1. [`Stage`]s → structural checks → [`netlist::Netlist`] (one LUT node per neuron);
//! 2. [`simplify`] (optional, on by default): constants, pass-throughs and negations folded
//!    into readers, duplicates merged, dead nodes dropped;
//! 3. `compile`: each LUT → ternlog operations (one per ≤ 3-input table, a Shannon tree
//!    for 4–6 inputs); `program`: ops scheduled by level, grouped by immediate, values
//!    assigned to reusable arena slots;
//! 4. `engine`: per block, pack → op groups (`kernel`, `avx512`) → head counts (`head`),
//!    blocks spread over rayon threads, SIMD level chosen at run time;
//! 5. a GroupedDSP head then multiplies the counts by its integer matrix (`Head::eval_scores`).
//!
//! ```
//! use bitlogic::{Model, ModelConfig};
//! use bitlogic::encoder::{Encoder, EncoderKind};
//! use bitlogic::packed::PackedLogicNet;
//! let x: Vec<f32> = (0..40).map(|i| (i % 7) as f32).collect();
//! let mut enc = Encoder::new(EncoderKind::Thermometer, 2, false)?;
//! enc.fit(&x, 10, 4)?;
//! let cfg = ModelConfig { widths: vec![32, 16], classes: 4, lut_rank: 3, ..ModelConfig::default() };
//! let model = Model::new(cfg, enc)?;
//! let packed = PackedLogicNet::new(&model)?;
//! let bits = model.encoder.encode(&x, 10)?;
//! assert_eq!(packed.forward(&bits, 10)?, model.eval_counts(&bits, 10)?);
//! assert_eq!(packed.scores(&bits, 10)?, model.eval_scores(&bits, 10)?);
//! assert_eq!(packed.predict(&x, 10)?, model.predict(&x, 10)?);
//! # Ok::<(), bitlogic::Error>(())
//! ```

#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod compile;
pub mod engine;
mod head;
pub mod kernel;
pub mod netlist;
pub mod pack;
pub mod program;
pub mod simplify;
pub mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dsp;

pub use engine::Input;
pub use netlist::Netlist;
pub use pack::{pack_bits, unpack_bits};

use crate::encoder::Encoder;
use crate::head::{argmax, GroupSum, GroupedDsp, Head};
use crate::layer::simd::{simd_level, SimdLevel};
use crate::layer::LogicDense;
use crate::{Error, Model, Result};

/// One part of a pipeline, as `PackedLogicNet` sees it.
#[derive(Clone, Copy, Debug)]
pub enum Stage<'a> {
    Encoder(&'a Encoder),
    Flatten,
    LogicDense(&'a LogicDense),
    GroupSum(&'a GroupSum),
    GroupedDsp(&'a GroupedDsp),
    /// Anything else, by name (e.g. `"Conv2d"`): always refused.
    Other(&'a str),
}

impl<'a> From<&'a Head> for Stage<'a> {
    fn from(h: &'a Head) -> Self {
        match h {
            Head::GroupSum(g) => Stage::GroupSum(g),
            Head::GroupedDsp(d) => Stage::GroupedDsp(d),
        }
    }
}

impl Stage<'_> {
    fn name(&self) -> String {
        match self {
            Stage::Encoder(_) => "encoder".into(),
            Stage::Flatten => "flatten".into(),
            Stage::LogicDense(_) => "LogicDense".into(),
            Stage::GroupSum(_) => "GroupSum".into(),
            Stage::GroupedDsp(_) => "GroupedDSP".into(),
            Stage::Other(n) => format!("'{n}'"),
        }
    }
}

/// The stages of a model: encoder, flatten, its LogicDense layers, its head.
pub fn stages(model: &Model) -> Vec<Stage<'_>> {
    let mut s = vec![Stage::Encoder(&model.encoder), Stage::Flatten];
    s.extend(model.layers.iter().map(Stage::LogicDense));
    s.push(Stage::from(&model.head));
    s
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Simplify the netlist before compiling (same results, fewer gates).
    pub simplify: bool,
    /// Force a SIMD level (capped at what the CPU has); `None` = `layer::simd::simd_level()`.
    pub simd: Option<SimdLevel>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            simplify: true,
            simd: None,
        }
    }
}

/// Gate (LUT node) counts of the netlist before and after simplification, and the
/// bitwise operations the engine runs per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateCounts {
    pub before: usize,
    pub after: usize,
    pub ops: usize,
}

#[derive(Clone, Debug)]
pub struct PackedLogicNet {
    encoder: Option<Encoder>,
    engine: engine::Engine,
    gates: GateCounts,
    /// Turns the engine's group counts into class scores (a GroupSum head, unless the
    /// pipeline ends in GroupedDSP).
    head: Option<Head>,
}

/// The pieces of a checked pipeline.
struct Parsed<'a> {
    encoder: Option<&'a Encoder>,
    layers: Vec<&'a LogicDense>,
    head: Head,
}

/// Checks the order encoder/flatten* → LogicDense+ → GroupSum | GroupedDSP and the widths
/// between them.
fn parse<'a>(stages: &[Stage<'a>]) -> Result<Parsed<'a>> {
    const SUPPORTED: &str = "encoder, flatten, LogicDense, GroupSum, GroupedDSP";
    let mut encoder = None;
    let mut layers = Vec::new();
    let mut head = None;
    for (i, st) in stages.iter().enumerate() {
        let misplaced = |why: &str| {
            Error::invalid(format!(
                "PackedLogicNet: {} at position {i} {why} \
                 (expected encoder/flatten, then LogicDense layers, then one GroupSum or \
                 GroupedDSP head)",
                st.name()
            ))
        };
        if head.is_some() {
            return Err(misplaced("comes after the head"));
        }
        match *st {
            Stage::Other(_) => {
                return Err(Error::invalid(format!(
                    "PackedLogicNet cannot pack {} at position {i} (supported: {SUPPORTED})",
                    st.name()
                )))
            }
            Stage::Encoder(_) | Stage::Flatten if !layers.is_empty() => {
                return Err(misplaced("comes after a LogicDense layer"))
            }
            Stage::Encoder(_) if encoder.is_some() => return Err(misplaced("is a second encoder")),
            Stage::Encoder(e) => encoder = Some(e),
            Stage::Flatten => {}
            Stage::LogicDense(l) => layers.push(l),
            Stage::GroupSum(_) | Stage::GroupedDsp(_) if layers.is_empty() => {
                return Err(Error::invalid(format!(
                    "PackedLogicNet needs at least one LogicDense layer before the head \
                     ({} at position {i})",
                    st.name()
                )))
            }
            Stage::GroupSum(h) => head = Some(Head::GroupSum(*h)),
            Stage::GroupedDsp(h) => head = Some(Head::GroupedDsp(h.clone())),
        }
    }
    let head = match (head, layers.is_empty()) {
        (_, true) => {
            return Err(Error::invalid(
                "PackedLogicNet needs at least one LogicDense layer (none given)",
            ))
        }
        (None, _) => {
            return Err(Error::invalid(
                "PackedLogicNet needs a GroupSum or GroupedDSP head after the last LogicDense \
                 (none given)",
            ))
        }
        (Some(h), _) => h,
    };
    check_widths(encoder, &layers, head.group())?;
    Ok(Parsed {
        encoder,
        layers,
        head,
    })
}

fn check_widths(enc: Option<&Encoder>, layers: &[&LogicDense], head: &GroupSum) -> Result<()> {
    if let Some(e) = enc {
        e.validate()?;
        if !e.is_fitted() || e.output_dim() != layers[0].in_dim() {
            return Err(Error::invalid(format!(
                "PackedLogicNet: the encoder produces {} bits but the first LogicDense reads {}",
                e.output_dim(),
                layers[0].in_dim()
            )));
        }
    }
    let last = layers[layers.len() - 1].out_dim();
    if head.k == 0 || head.in_dim != last || !last.is_multiple_of(head.k) {
        return Err(Error::invalid(format!(
            "PackedLogicNet: the head (k = {}, width {}) does not fit the last \
             LogicDense width {last}",
            head.k, head.in_dim
        )));
    }
    Ok(())
}

/// The unsimplified netlist of a model (one node per neuron).
pub fn netlist_of(model: &Model) -> Result<Netlist> {
    let p = parse(&stages(model))?;
    Netlist::from_layers(p.layers[0].in_dim(), &p.layers, p.head.k())
}

impl PackedLogicNet {
    /// Packs a model with the default options (simplified, best SIMD level).
    pub fn new(model: &Model) -> Result<Self> {
        Self::with_options(model, &Options::default())
    }

    pub fn with_options(model: &Model, opts: &Options) -> Result<Self> {
        Self::from_stages(&stages(model), opts)
    }

    /// Packs a pipeline given stage by stage.
    pub fn from_stages(stages: &[Stage], opts: &Options) -> Result<Self> {
        let p = parse(stages)?;
        let net = Netlist::from_layers(p.layers[0].in_dim(), &p.layers, p.head.k())?;
        let mut packed = Self::from_netlist(&net, p.encoder.cloned(), opts)?;
        packed.head = Some(p.head);
        Ok(packed)
    }

    /// Packs a netlist directly (no encoder: use `forward` on bits; the class scores are the
    /// group counts, as for a GroupSum head).
    pub fn from_netlist(net: &Netlist, encoder: Option<Encoder>, opts: &Options) -> Result<Self> {
        let before = net.nodes.len();
        let simple;
        let net = if opts.simplify {
            simple = simplify::simplify(net);
            &simple
        } else {
            net
        };
        let graph = compile::compile(net);
        let program = program::schedule(&graph, net.classes)?;
        let gates = GateCounts {
            before,
            after: net.nodes.len(),
            ops: program.ops,
        };
        let engine = engine::Engine::new(program, opts.simd.unwrap_or_else(simd_level))?;
        Ok(PackedLogicNet {
            encoder,
            engine,
            gates,
            head: None,
        })
    }

    /// Input bits per sample.
    pub fn input_dim(&self) -> usize {
        self.engine.program.inputs
    }
    pub fn classes(&self) -> usize {
        self.engine.classes()
    }
    /// The SIMD level the kernels run at.
    pub fn simd_level(&self) -> SimdLevel {
        self.engine.level()
    }
    pub fn gate_counts(&self) -> GateCounts {
        self.gates
    }
    /// The scheduled program (steps, op groups, arena size).
    pub fn program(&self) -> &program::Program {
        &self.engine.program
    }

    /// Group counts `[n][classes]` (ones per head group) from sample-major bits
    /// `[n][input_dim]` — the same as `Model::eval_counts`.
    pub fn forward(&self, bits: &[u8], n: usize) -> Result<Vec<u32>> {
        self.engine.run(Input::Bits(bits), n)
    }

    /// Group counts from packed words `[input_dim][ceil(n/64)]` (see [`pack_bits`]).
    pub fn forward_packed(&self, words: &[u64], n: usize) -> Result<Vec<u32>> {
        self.engine.run(Input::Words(words), n)
    }

    /// Integer class scores `[n][classes]` from bits — the same as `Model::eval_scores`.
    pub fn scores(&self, bits: &[u8], n: usize) -> Result<Vec<i64>> {
        Ok(self.head_scores(self.forward(bits, n)?))
    }

    /// Integer class scores from packed words (see [`pack_bits`]).
    pub fn scores_packed(&self, words: &[u64], n: usize) -> Result<Vec<i64>> {
        Ok(self.head_scores(self.forward_packed(words, n)?))
    }

    fn head_scores(&self, counts: Vec<u32>) -> Vec<i64> {
        match &self.head {
            Some(h) => h.eval_scores(&counts),
            None => counts.into_iter().map(i64::from).collect(),
        }
    }

    /// Predicted classes (first index of the largest score) from bits.
    pub fn predict_bits(&self, bits: &[u8], n: usize) -> Result<Vec<u32>> {
        Ok(self.argmax_rows(&self.scores(bits, n)?))
    }

    /// Predicted classes from raw features `[n][features]` (encoder in floating point, then
    /// packed inference) — the same as `Model::predict`.
    pub fn predict(&self, x: &[f32], n: usize) -> Result<Vec<u32>> {
        let enc = self.encoder.as_ref().ok_or_else(|| {
            Error::invalid("this PackedLogicNet has no encoder; use predict_bits on encoded bits")
        })?;
        let bits = enc.encode(x, n)?;
        self.predict_bits(&bits, n)
    }

    fn argmax_rows(&self, scores: &[i64]) -> Vec<u32> {
        scores
            .chunks_exact(self.classes())
            .map(|c| argmax(c) as u32)
            .collect()
    }
}

/// Runs `f` on a rayon pool of `threads` threads (0 = rayon's default), so the packed
/// engine and `Model::eval_counts` / `eval_scores` inside it use exactly that many.
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::invalid(format!("cannot start {threads} threads: {e}")))?;
    Ok(pool.install(f))
}

/// Eval forward against packed inference on one labelled set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// Accuracy of `Model::eval_scores` predictions.
    pub accuracy: f64,
    /// Accuracy of `PackedLogicNet` predictions.
    pub packed_accuracy: f64,
    /// Samples whose integer class scores differ in any class (0 when the engines agree).
    pub mismatches: usize,
}

/// Evaluates `model` on `n` encoded samples (`bits` `[n][dim]`, `labels[n]`) both ways.
pub fn compare(model: &Model, bits: &[u8], labels: &[u32], n: usize) -> Result<Comparison> {
    if labels.len() != n {
        return Err(Error::invalid(format!(
            "compare got {} labels for {n} samples",
            labels.len()
        )));
    }
    let k = model.head.k();
    let eval = model.eval_scores(bits, n)?;
    let packed = PackedLogicNet::new(model)?.scores(bits, n)?;
    let acc = |scores: &[i64]| {
        let right = scores
            .chunks_exact(k)
            .zip(labels)
            .filter(|(c, &y)| argmax(c) as u32 == y)
            .count();
        right as f64 / n.max(1) as f64
    };
    let mismatches = eval
        .chunks_exact(k)
        .zip(packed.chunks_exact(k))
        .filter(|(a, b)| a != b)
        .count();
    Ok(Comparison {
        accuracy: acc(&eval),
        packed_accuracy: acc(&packed),
        mismatches,
    })
}
