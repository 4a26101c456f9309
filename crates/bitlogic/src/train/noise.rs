//! Seeded noise for Gumbel sampling.
//!
//! Logistic noise `ln u − ln(1 − u)` before a sigmoid, Gumbel noise `−ln(−ln u)` before a
//! softmax (difflogic's gate logits). Each 4096-value chunk has its own stream derived from
//! (seed, step, layer, chunk), so the noise does not depend on the thread count.

use crate::rng::Rng;
use rayon::prelude::*;

const CHUNK: usize = 4096;

pub fn fill(noise: &mut [f32], gumbel: bool, seed: u64, step: u64, layer: usize) {
    noise
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, out)| {
            let mut rng = Rng::fork(
                seed ^ 0x6A09_E667 ^ ((layer as u64) << 40),
                (step << 20) + c as u64,
            );
            for v in out.iter_mut() {
                // Strictly inside (0, 1), so both logarithms are finite.
                let u = ((rng.next_u64() >> 40) as f32 + 0.5) / (1u32 << 24) as f32;
                *v = if gumbel {
                    -(-u.ln()).ln()
                } else {
                    u.ln() - (1.0 - u).ln()
                };
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_finite_and_centred() {
        let mut a = vec![0f32; 20_000];
        let mut b = vec![0f32; 20_000];
        fill(&mut a, false, 1, 7, 0);
        fill(&mut b, false, 1, 7, 0);
        assert_eq!(a, b);
        fill(&mut b, false, 1, 8, 0);
        assert_ne!(a, b);
        assert!(a.iter().all(|v| v.is_finite()));
        // Logistic(0, 1): mean 0, variance π²/3.
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(
            mean.abs() < 0.05 && (var - 3.29).abs() < 0.2,
            "{mean} {var}"
        );
        // Gumbel(0, 1): mean = Euler–Mascheroni constant.
        fill(&mut b, true, 1, 7, 0);
        let mean = b.iter().map(|&v| v as f64).sum::<f64>() / b.len() as f64;
        assert!((mean - 0.5772).abs() < 0.05, "{mean}");
    }
}
