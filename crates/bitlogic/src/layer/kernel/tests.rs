//! The rank-2 kernel against the general lerp tree it replaces, on the scalar lanes (the
//! layer tests compare every SIMD level with the scalar one, and both with references).

use super::{backward_n, forward_n, rank2};
use crate::layer::lanes::Scalar;
use crate::rng::Rng;

fn random(n: usize, r: &mut Rng, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| lo + (hi - lo) * r.uniform()).collect()
}

fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: rank-2 kernel {x}, tree {y}"
        );
    }
}

#[test]
fn rank2_kernel_matches_the_lerp_tree() {
    let mut r = Rng::new(11);
    // 7 neurons: one group of four and a tail of three; 48 samples: three chunks.
    let (in_dim, out_dim, bs) = (9, 7, 48);
    let mut ids: Vec<u32> = (0..2 * out_dim).map(|_| r.below(in_dim) as u32).collect();
    ids[2] = ids[3]; // one neuron reads the same row twice
    let coef = random(4 * out_dim, &mut r, -2.0, 2.0);
    let input = random(in_dim * bs, &mut r, 0.0, 1.0);
    let g = random(out_dim * bs, &mut r, -1.0, 1.0);
    for sigmoid in [false, true] {
        let (mut y2, mut yt) = (vec![0.0; out_dim * bs], vec![0.0; out_dim * bs]);
        rank2::forward::<Scalar, f32>(&ids, &coef, sigmoid, &input, &mut y2, bs);
        forward_n::<Scalar, f32, 2, 4>(&ids, &coef, sigmoid, &input, &mut yt, bs);
        close(&y2, &yt, 1e-6, "forward");
        for accumulate in [false, true] {
            let start = random(4 * out_dim, &mut r, -1.0, 1.0);
            let gi0 = random(in_dim * bs, &mut r, -1.0, 1.0);
            let (mut d2, mut dt) = (start.clone(), start);
            let (mut gi2, mut git) = (gi0.clone(), gi0);
            let (mut s2, mut st) = (vec![0.0; 2 * out_dim * bs], vec![0.0; 2 * out_dim * bs]);
            let (mut g2, mut gt) = (g.clone(), g.clone());
            rank2::backward::<Scalar, f32, true, true>(
                &ids, &coef, sigmoid, &input, &mut g2, &mut gi2, &mut s2, &mut d2, accumulate, bs,
            );
            backward_n::<Scalar, f32, 2, 4, true, true>(
                &ids, &coef, sigmoid, &input, &mut gt, &mut git, &mut st, &mut dt, accumulate, bs,
            );
            close(&d2, &dt, 1e-5, "coefficient gradient");
            close(&gi2, &git, 1e-5, "input gradient");
            close(&s2, &st, 1e-5, "slot gradient");
            assert!(
                g2.iter().all(|&v| v == 0.0),
                "the output gradient is consumed"
            );
            // Without slot gradients the input gradient takes the fused path.
            let mut gi3 = vec![0.0; in_dim * bs];
            let mut d3 = vec![0.0; 4 * out_dim];
            let mut g3 = g.clone();
            rank2::backward::<Scalar, f32, true, false>(
                &ids,
                &coef,
                sigmoid,
                &input,
                &mut g3,
                &mut gi3,
                &mut [],
                &mut d3,
                false,
                bs,
            );
            let mut git = vec![0.0; in_dim * bs];
            let mut dt = vec![0.0; 4 * out_dim];
            let mut gt = g.clone();
            backward_n::<Scalar, f32, 2, 4, true, false>(
                &ids,
                &coef,
                sigmoid,
                &input,
                &mut gt,
                &mut git,
                &mut [],
                &mut dt,
                false,
                bs,
            );
            close(&gi3, &git, 1e-5, "fused input gradient");
            close(&d3, &dt, 1e-5, "coefficient gradient without slots");
        }
    }
}
