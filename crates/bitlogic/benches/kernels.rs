//! Layer kernels in isolation: nanoseconds per neuron and 16-sample chunk for the forward
//! pass, the backward pass with input gradients, and without them (the first layer's case),
//! at the detected SIMD level and, as the baseline in the same process, the scalar level.
//!
//!     cargo bench -p bitlogic --bench kernels                      # ranks 2, 4, 6
//!     cargo bench -p bitlogic --bench kernels -- 2 32,64 1000,8000  # rank, blocks, widths
//!
//! Width 1000 keeps a layer's rows in L2 at every block size here; at width 8000 a 64-sample
//! block of f32 rows is 2 MB per layer and comes from L3. Connections are random, as in a
//! model. Each figure is the best of 9 timed runs (the machines here are shared).

use bitlogic::layer::kernel::{backward_at, forward_at};
use bitlogic::layer::simd::{simd_level, SimdLevel};
use bitlogic::layer::{Act, Bf16, F16};
use bitlogic::rng::Rng;
use std::time::Instant;

fn best(mut f: impl FnMut()) -> f64 {
    (0..9)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// (forward, backward, backward without input gradients) in ns per neuron-chunk.
fn time<A: Act>(level: SimdLevel, rank: usize, w: usize, bs: usize) -> [f64; 3] {
    let mut r = Rng::new(1);
    let ids: Vec<u32> = (0..w * rank).map(|_| r.below(w) as u32).collect();
    let coef: Vec<f32> = (0..w << rank).map(|_| r.uniform()).collect();
    let input: Vec<A> = (0..w * bs).map(|_| A::from_f32(r.uniform())).collect();
    let (mut out, mut gin) = (vec![A::ZERO; w * bs], vec![A::ZERO; w * bs]);
    let mut dcoef = vec![0f32; w << rank];
    // About 20 M neuron-samples per timed run at rank 2, fewer at higher ranks.
    let reps = (20_000_000 >> (rank - 1)) / (w * bs) + 1;
    let per = 1e9 / (reps * w * bs / 16) as f64;
    let fwd = best(|| {
        for _ in 0..reps {
            forward_at(level, rank, &ids, &coef, false, &input, &mut out, bs);
        }
    });
    let mut bwd = |dx: bool| {
        // The backward pass consumes (zeroes) its output gradient, so later runs see zeros;
        // the kernels have no data-dependent branches (no sigmoid here), so the work is the
        // same, and a refill would add a pass over the rows to the timing.
        out.iter_mut().for_each(|g| *g = A::from_f32(0.01));
        best(|| {
            for _ in 0..reps {
                let gi = dx.then_some(&mut gin[..]);
                let (x, o, d) = (&input, &mut out, &mut dcoef);
                backward_at(
                    level, rank, &ids, &coef, false, x, o, gi, None, d, false, bs,
                );
            }
        })
    };
    let (b, b0) = (bwd(true), bwd(false));
    [fwd * per, b * per, b0 * per]
}

fn list(arg: Option<String>, default: &[usize]) -> Vec<usize> {
    arg.map_or(default.to_vec(), |s| {
        s.split(',').filter_map(|v| v.parse().ok()).collect()
    })
}

fn main() {
    // `cargo bench` passes `--bench`; skip flags.
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let ranks = list(args.next(), &[2, 4, 6]);
    let blocks = list(args.next(), &[32, 64]);
    let widths = list(args.next(), &[1000, 8000]);
    let level = simd_level();
    println!(
        "ns per neuron and 16-sample chunk, 1 thread; {} vs scalar (ratio = scalar / {})",
        level.name(),
        level.name()
    );
    println!("| rank | width | block | type | forward | ratio | backward | ratio | backward, no dx | ratio |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &rank in &ranks {
        for &w in &widths {
            for &bs in &blocks {
                for (name, fast, slow) in [
                    (
                        "f32",
                        time::<f32>(level, rank, w, bs),
                        time::<f32>(SimdLevel::Scalar, rank, w, bs),
                    ),
                    (
                        "bf16",
                        time::<Bf16>(level, rank, w, bs),
                        time::<Bf16>(SimdLevel::Scalar, rank, w, bs),
                    ),
                    (
                        "f16",
                        time::<F16>(level, rank, w, bs),
                        time::<F16>(SimdLevel::Scalar, rank, w, bs),
                    ),
                ] {
                    print!("| {rank} | {w} | {bs} | {name} ");
                    for (f, s) in fast.iter().zip(&slow) {
                        print!("| {f:.2} | {:.1}× ", s / f);
                    }
                    println!("|");
                }
            }
        }
    }
}
