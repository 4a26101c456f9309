//! The `bitlogic` command: train, evaluate, inspect and benchmark lookup-table networks.

mod bench_infer;
mod bench_model;
mod bench_train;
mod data;
mod eval;
mod info;
mod plot;
mod settings;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bitlogic",
    version,
    about = "Train and deploy lookup-table (logic-gate) networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a network (MNIST by default) and write model, metrics and curves to --out.
    Train(Box<settings::TrainArgs>),
    /// Accuracy of a saved model on a test split.
    Eval(eval::EvalArgs),
    /// Architecture, parameter and gate counts of a saved model.
    Info(info::InfoArgs),
    /// Throughput benchmarks.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    /// Training samples/s on synthetic binary inputs.
    Train(bench_train::BenchTrainArgs),
    /// Inference samples/s: the bit-packed engine against the eval forward.
    Infer(bench_infer::BenchInferArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train::run(*a),
        Command::Eval(a) => eval::run(&a),
        Command::Info(a) => info::run(&a),
        Command::Bench(Bench::Train(a)) => bench_train::run(&a),
        Command::Bench(Bench::Infer(a)) => bench_infer::run(&a),
    };
    if let Err(e) = result {
        // One line, the whole cause chain: users read this, not a backtrace.
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
