//! Softmax cross-entropy over feature-major scores.

/// For one block: `scores` is `[k][bs]`; samples `s` with `labels[s] = None` are padding and
/// contribute nothing. Writes `dscores = (softmax − onehot) · scale` and returns the summed
/// loss and the number of samples whose largest score is the label. `col` is scratch of
/// length `k` (the caller owns it so that a training step allocates nothing).
pub fn softmax_cross_entropy(
    scores: &[f32],
    labels: &[Option<u32>],
    k: usize,
    bs: usize,
    scale: f32,
    dscores: &mut [f32],
    col: &mut [f32],
) -> (f64, usize) {
    let mut loss = 0.0f64;
    let mut correct = 0;
    for (s, label) in labels.iter().enumerate().take(bs) {
        let Some(y) = *label else {
            (0..k).for_each(|c| dscores[c * bs + s] = 0.0);
            continue;
        };
        (0..k).for_each(|c| col[c] = scores[c * bs + s]);
        let m = col.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f32 = col.iter().map(|&v| (v - m).exp()).sum();
        let lse = m + sum.ln();
        loss += (lse - col[y as usize]) as f64;
        if crate::head::argmax(col) == y as usize {
            correct += 1;
        }
        for c in 0..k {
            let p = (col[c] - lse).exp();
            dscores[c * bs + s] = (p - (c == y as usize) as u32 as f32) * scale;
        }
    }
    (loss, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_finite_differences_and_skips_padding() {
        let (k, bs) = (3, 2);
        let scores = vec![0.3, 9.0, -1.2, 9.0, 2.0, 9.0];
        let labels = [Some(2), None];
        let mut d = vec![0.0; k * bs];
        let mut col = [0.0; 3];
        let (l, _) = softmax_cross_entropy(&scores, &labels, k, bs, 1.0, &mut d, &mut col);
        for c in 0..k {
            let mut p = scores.clone();
            p[c * bs] += 1e-3;
            let mut tmp = vec![0.0; k * bs];
            let (l2, _) = softmax_cross_entropy(&p, &labels, k, bs, 1.0, &mut tmp, &mut col);
            let fd = (l2 - l) / 1e-3;
            assert!(
                (fd - d[c * bs] as f64).abs() < 2e-3,
                "class {c}: {fd} vs {}",
                d[c * bs]
            );
            assert_eq!(d[c * bs + 1], 0.0);
        }
    }
}
