//! `GroupSum(k, τ)`: splits the last layer's outputs into `k` equal, contiguous groups.
//!
//! ```text
//!   training:   score_c = Σ_{f ∈ group c} y_f / τ      (then softmax cross-entropy)
//!   evaluation: score_c = number of ones in group c     (an integer)
//! ```

use crate::layer::simd::{simd_level, SimdLevel};
use crate::layer::{rows, Act};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupSum {
    pub k: usize,
    pub tau: f32,
    /// Width of the layer it reads.
    pub in_dim: usize,
}

impl GroupSum {
    pub fn new(k: usize, tau: f32, in_dim: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::invalid(
                "GroupSum needs at least one group (got k = 0)",
            ));
        }
        if !in_dim.is_multiple_of(k) {
            return Err(Error::invalid(format!(
                "GroupSum: width {in_dim} is not divisible by the number of groups {k}"
            )));
        }
        if !(tau.is_finite() && tau > 0.0) {
            return Err(Error::invalid(format!(
                "GroupSum tau must be a positive number (got {tau})"
            )));
        }
        Ok(GroupSum { k, tau, in_dim })
    }

    pub fn group_size(&self) -> usize {
        self.in_dim / self.k
    }

    /// Training scores for a feature-major block: `acts` is `[in_dim][bs]` (f32 or a 16-bit
    /// activation type), `scores` `[k][bs]` (f32, summed in f32).
    pub fn forward<A: Act>(&self, acts: &[A], scores: &mut [f32], bs: usize) {
        self.forward_at(simd_level(), acts, scores, bs)
    }

    /// [`forward`](Self::forward) with the row kernels at `level` (a trainer's own level).
    pub fn forward_at<A: Act>(&self, level: SimdLevel, acts: &[A], scores: &mut [f32], bs: usize) {
        let g = self.group_size();
        for (c, s) in scores.chunks_exact_mut(bs).enumerate() {
            s.iter_mut().for_each(|v| *v = 0.0);
            rows::add_rows_at(level, &acts[c * g * bs..(c + 1) * g * bs], s);
        }
        self.scale_sums(scores);
    }

    /// The training scores from each group's sum of rows: what [`forward`](Self::forward)
    /// does after summing (a layer kernel may hand the sums over directly).
    pub fn scale_sums(&self, sums: &mut [f32]) {
        sums.iter_mut().for_each(|v| *v /= self.tau);
    }

    /// [`backward`](Self::backward) with one row per group (`rows` `[k][bs]`): the row that
    /// every feature of group c gets, written once (a layer kernel may read it directly).
    pub fn group_rows_at<A: Act>(
        &self,
        level: SimdLevel,
        dscores: &[f32],
        rows: &mut [A],
        bs: usize,
    ) {
        for (d, row) in dscores.chunks_exact(bs).zip(rows.chunks_exact_mut(bs)) {
            rows::fill_rows_div_at(level, d, self.tau, row);
        }
    }

    /// `grad_acts[f][s] = dscores[group(f)][s] / τ` (rounded to `A`).
    pub fn backward<A: Act>(&self, dscores: &[f32], grad_acts: &mut [A], bs: usize) {
        self.backward_at(simd_level(), dscores, grad_acts, bs)
    }

    /// [`backward`](Self::backward) with the row kernels at `level`.
    pub fn backward_at<A: Act>(
        &self,
        level: SimdLevel,
        dscores: &[f32],
        grad_acts: &mut [A],
        bs: usize,
    ) {
        let g = self.group_size();
        for (d, rows) in dscores
            .chunks_exact(bs)
            .zip(grad_acts.chunks_exact_mut(g * bs))
        {
            rows::fill_rows_div_at(level, d, self.tau, rows);
        }
    }

    /// Evaluation: integer counts of ones per group for one sample's bits.
    pub fn counts(&self, bits: &[u8], out: &mut [u32]) {
        let g = self.group_size();
        for (c, o) in out.iter_mut().enumerate() {
            *o = bits[c * g..(c + 1) * g].iter().map(|&b| b as u32).sum();
        }
    }
}

/// The predicted class: the first index of the largest score.
pub fn argmax<T: PartialOrd + Copy>(scores: &[T]) -> usize {
    let Some(&first) = scores.first() else {
        return 0;
    };
    // The best value rides in a register: read back from `scores[best]`, each comparison
    // waited for the load that the previous one chose.
    let (mut best, mut top) = (0, first);
    for (i, &s) in scores.iter().enumerate() {
        if s > top {
            (best, top) = (i, s);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_is_the_first_largest() {
        assert_eq!(argmax::<f32>(&[]), 0);
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 3.0]), 1, "ties go to the first");
        assert_eq!(argmax(&[-1.0, f32::NAN, -0.5]), 2, "a NaN never wins");
        assert_eq!(argmax(&[f32::NAN, 1.0]), 0, "nothing beats a NaN in front");
        // Against the definition, on rows full of ties.
        let mut r = crate::rng::Rng::new(9);
        for _ in 0..200 {
            let row: Vec<i64> = (0..16).map(|_| r.below(4) as i64).collect();
            let max = *row.iter().max().unwrap();
            assert_eq!(argmax(&row), row.iter().position(|&v| v == max).unwrap());
        }
    }

    #[test]
    fn train_and_eval_scores() {
        let h = GroupSum::new(2, 2.0, 4).unwrap();
        // 4 features × 1 sample padded to bs = 1.
        let acts = [1.0, 0.5, 0.0, 1.0];
        let mut s = [0.0; 2];
        h.forward(&acts, &mut s, 1);
        assert_eq!(s, [0.75, 0.5]);
        let mut counts = [0; 2];
        h.counts(&[1, 1, 0, 1], &mut counts);
        assert_eq!(counts, [2, 1]);
        let mut g = [0.0; 4];
        h.backward(&[1.0, -2.0], &mut g, 1);
        assert_eq!(g, [0.5, 0.5, -1.0, -1.0]);
    }

    #[test]
    fn indivisible_width_is_an_error() {
        let e = GroupSum::new(10, 1.0, 95).unwrap_err().to_string();
        assert!(e.contains("95") && e.contains("10"), "{e}");
    }
}
