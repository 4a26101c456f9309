//! `bitlogic info`: what a model file holds.

use anyhow::Result;
use bitlogic::io::model_file;
use bitlogic::packed::simplify::gate_counts;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct InfoArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InfoArgs) -> Result<()> {
    let m = model_file::load(&args.model)?.model;
    // Gates of the discrete netlist before and after simplification (dead, constant,
    // pass-through and duplicate LUTs removed).
    let (before, after) = gate_counts(&m)?;
    if args.json {
        let layers: Vec<_> = m.layers.iter().map(|l| &l.config).collect();
        println!(
            "{}",
            serde_json::json!({
                "encoder": { "kind": m.encoder.kind, "num_bits": m.encoder.num_bits,
                             "per_feature": m.encoder.per_feature, "features": m.encoder.features,
                             "output_bits": m.encoder.output_dim() },
                "layers": layers,
                "head": m.head,
                "parameters": m.parameters(),
                "gates": m.gates(),
                "gates_simplified": after,
            })
        );
        return Ok(());
    }
    println!(
        "encoder   {} ({} bits per feature, {}): {} features → {} bits",
        m.encoder.kind.name(),
        m.encoder.num_bits,
        if m.encoder.per_feature {
            "per-feature thresholds"
        } else {
            "global thresholds"
        },
        m.encoder.features,
        m.encoder.output_dim()
    );
    for (i, l) in m.layers.iter().enumerate() {
        let c = &l.config;
        let wiring = if c.learnable() {
            format!(
                "learnable connections ({} candidates, τ {}, {} gradient)",
                c.num_candidates,
                c.connection_temperature,
                c.connection_grad.name()
            )
        } else {
            format!("{} connections", c.connections.name())
        };
        println!(
            "layer {i}   LogicDense {} → {}  {} rank {}  {wiring}  τ {}  {} sampling",
            c.in_dim,
            c.out_dim,
            c.parametrization.label(),
            c.lut_rank,
            c.temperature,
            c.sampling.name()
        );
    }
    println!(
        "head      {}, {} neurons per class",
        m.head.label(),
        m.head.group_size()
    );
    println!("parameters {}", m.parameters());
    println!("gates      {before} ({after} after simplification)");
    Ok(())
}
