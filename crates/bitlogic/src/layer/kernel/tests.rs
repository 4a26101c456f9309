//! The kernels against references: the rank-2 and rank-4 kernels against the lerp tree on the
//! scalar lanes, the tree at every other rank against the multilinear formula in f64, bf16 pairs of
//! chunks, and the GroupSum fusion (the layer tests add finite differences per
//! parametrization).

use super::tree::{Node, Pair};
use super::{backward_n, forward_n, io, rank2};
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
            "{what}[{i}]: {x}, expected {y}"
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
        let mut sink = io::Rows { out: &mut y2, bs };
        rank2::forward::<Scalar, f32, _>(&ids, &coef, sigmoid, &input, &mut sink, bs);
        let mut tree = io::Rows { out: &mut yt, bs };
        forward_n::<Scalar, f32, Node<Pair>, 2, 4, _>(&ids, &coef, sigmoid, &input, &mut tree, bs);
        close(&y2, &yt, 1e-6, "forward");
        for accumulate in [false, true] {
            let start = random(4 * out_dim, &mut r, -1.0, 1.0);
            let gi0 = random(in_dim * bs, &mut r, -1.0, 1.0);
            let (mut d2, mut dt) = (start.clone(), start);
            let (mut gi2, mut git) = (gi0.clone(), gi0);
            let (mut s2, mut st) = (vec![0.0; 2 * out_dim * bs], vec![0.0; 2 * out_dim * bs]);
            let (mut g2, mut gt) = (g.clone(), g.clone());
            let own = io::GradRows::Own(&mut g2);
            rank2::backward::<Scalar, f32, true, true>(
                &ids, &coef, sigmoid, &input, own, &mut gi2, &mut s2, &mut d2, accumulate, bs,
            );
            let own = io::GradRows::Own(&mut gt);
            let (gi, sg) = (Some(&mut git[..]), Some(&mut st[..]));
            backward_n::<Scalar, f32, Node<Pair>, 2, 4, true>(
                &ids, &coef, sigmoid, &input, own, gi, sg, &mut dt, accumulate, bs,
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
                io::GradRows::Own(&mut g3),
                &mut gi3,
                &mut [],
                &mut d3,
                false,
                bs,
            );
            let mut git = vec![0.0; in_dim * bs];
            let mut dt = vec![0.0; 4 * out_dim];
            let mut gt = g.clone();
            backward_n::<Scalar, f32, Node<Pair>, 2, 4, true>(
                &ids,
                &coef,
                sigmoid,
                &input,
                io::GradRows::Own(&mut gt),
                Some(&mut git),
                None,
                &mut dt,
                false,
                bs,
            );
            close(&gi3, &git, 1e-5, "fused input gradient");
            close(&d3, &dt, 1e-5, "coefficient gradient without slots");
        }
    }
}

/// The written-out kernels (rank 2, rank 4) work out their polynomials a tile of neurons at a
/// time: across several tiles and a part tile, at the AVX2 and AVX-512 levels, they must give
/// the lerp tree's outputs and gradients (the tree on the scalar lanes as the reference; the
/// scalar level, which walks the tree itself, is checked against it too).
#[test]
fn written_out_kernels_match_the_tree_across_tiles() {
    use crate::layer::kernel::{backward_at, forward_at};
    use crate::layer::simd::SimdLevel;
    fn tree_run<const N: usize, const K: usize, T: super::tree::Tree>(
        ids: &[u32],
        coef: &[f32],
        sigmoid: bool,
        input: &[f32],
        g: &[f32],
        bs: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let (in_dim, out_dim) = (input.len() / bs, g.len() / bs);
        let mut y = vec![0.0; out_dim * bs];
        let mut rows = io::Rows { out: &mut y, bs };
        forward_n::<Scalar, f32, T, N, K, _>(ids, coef, sigmoid, input, &mut rows, bs);
        let (mut gi, mut sg, mut d) = (
            vec![0.0; in_dim * bs],
            vec![0.0; N * out_dim * bs],
            vec![0.0; K * out_dim],
        );
        let mut go = g.to_vec();
        let own = io::GradRows::Own(&mut go);
        backward_n::<Scalar, f32, T, N, K, true>(
            ids,
            coef,
            sigmoid,
            input,
            own,
            Some(&mut gi),
            Some(&mut sg),
            &mut d,
            false,
            bs,
        );
        (y, d, gi, sg)
    }
    let mut r = Rng::new(17);
    let bs = 48;
    // Rank 2 tiles 64 neurons, rank 4 sixteen.
    for (rank, out_dim) in [(2, 150), (4, 37)] {
        let (in_dim, k) = (23, 1 << rank);
        let ids: Vec<u32> = (0..rank * out_dim)
            .map(|_| r.below(in_dim) as u32)
            .collect();
        let coef = random(k * out_dim, &mut r, -2.0, 2.0);
        let input = random(in_dim * bs, &mut r, 0.0, 1.0);
        let g = random(out_dim * bs, &mut r, -1.0, 1.0);
        for sigmoid in [false, true] {
            let (y_t, d_t, gi_t, sg_t) = if rank == 2 {
                tree_run::<2, 4, Node<Pair>>(&ids, &coef, sigmoid, &input, &g, bs)
            } else {
                tree_run::<4, 16, Node<Node<Node<Pair>>>>(&ids, &coef, sigmoid, &input, &g, bs)
            };
            for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
                let what = format!("rank {rank} sigmoid {sigmoid} {level:?}");
                let mut y = vec![0.0; out_dim * bs];
                forward_at(level, rank, &ids, &coef, sigmoid, &input, &mut y, bs);
                close(&y, &y_t, 1e-5, &format!("{what} forward"));
                for (inputs, slots) in [(true, true), (true, false), (false, true)] {
                    let (mut gi, mut sg) = (vec![0.0; in_dim * bs], vec![0.0; rank * out_dim * bs]);
                    let mut d = vec![0.0; k * out_dim];
                    let mut go = g.clone();
                    let (gin, sgo) = (inputs.then_some(&mut gi[..]), slots.then_some(&mut sg[..]));
                    backward_at(
                        level, rank, &ids, &coef, sigmoid, &input, &mut go, gin, sgo, &mut d,
                        false, bs,
                    );
                    let what = format!("{what} inputs {inputs} slots {slots}");
                    close(&d, &d_t, 1e-5, &format!("{what} coefficient gradient"));
                    if inputs {
                        close(&gi, &gi_t, 1e-5, &format!("{what} input gradient"));
                    }
                    if slots {
                        close(&sg, &sg_t, 1e-5, &format!("{what} slot gradient"));
                    }
                }
            }
        }
    }
}

/// bf16 rows go through the rank-2 kernel two chunks at a time, even and odd samples apart
/// (`Act::load2`); at every SIMD level the results must land on the right samples: the
/// forward pass exactly as the f32 kernel's outputs rounded, the gradients within bf16's
/// rounding of the f32 kernel's on the same (widened) values.
#[test]
fn bf16_pairs_of_chunks_land_on_their_samples() {
    use crate::layer::act::{Act, Bf16};
    use crate::layer::kernel::{backward_at, forward_at};
    use crate::layer::simd::SimdLevel;
    let mut r = Rng::new(12);
    // 48 samples: one pair of chunks and one alone.
    let (in_dim, out_dim, bs) = (9, 7, 48);
    let mut ids: Vec<u32> = (0..2 * out_dim).map(|_| r.below(in_dim) as u32).collect();
    ids[2] = ids[3];
    let coef = random(4 * out_dim, &mut r, -2.0, 2.0);
    let to_bf16 = |v: Vec<f32>| v.into_iter().map(Bf16::from_f32).collect::<Vec<Bf16>>();
    let widen = |v: &[Bf16]| v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>();
    let input = to_bf16(random(in_dim * bs, &mut r, 0.0, 1.0));
    let g = to_bf16(random(out_dim * bs, &mut r, -1.0, 1.0));
    let (input32, g32) = (widen(&input), widen(&g));
    for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
        for sigmoid in [false, true] {
            let mut y32 = vec![0.0; out_dim * bs];
            forward_at(level, 2, &ids, &coef, sigmoid, &input32, &mut y32, bs);
            let mut y = vec![Bf16::ZERO; out_dim * bs];
            forward_at(level, 2, &ids, &coef, sigmoid, &input, &mut y, bs);
            for (j, (a, b)) in y.iter().zip(&y32).enumerate() {
                assert_eq!(*a, Bf16::from_f32(*b), "{level:?} forward, value {j}");
            }
            let (mut gi32, mut d32) = (vec![0.0; in_dim * bs], vec![0.0; 4 * out_dim]);
            let mut go32 = g32.clone();
            let (x, gi) = (&input32, Some(&mut gi32[..]));
            backward_at(
                level, 2, &ids, &coef, sigmoid, x, &mut go32, gi, None, &mut d32, false, bs,
            );
            let (mut gi, mut d) = (vec![Bf16::ZERO; in_dim * bs], vec![0.0; 4 * out_dim]);
            let mut go = g.clone();
            let (x, gin) = (&input, Some(&mut gi[..]));
            backward_at(
                level, 2, &ids, &coef, sigmoid, x, &mut go, gin, None, &mut d, false, bs,
            );
            assert!(go.iter().all(|&v| v == Bf16::ZERO), "consumed");
            close(&d, &d32, 1e-5, "coefficient gradient");
            close(&widen(&gi), &gi32, 1e-2, "input gradient");
        }
    }
}

/// The GroupSum fusion: summing into the head's rows and reading the head's shared gradient
/// rows give, bit for bit, what the layer's own rows through `GroupSum` give, at every rank,
/// for every storage type and SIMD level, with and without input and slot gradients and the
/// sigmoid.
#[test]
fn group_sum_fusion_is_the_head_on_the_layers_rows_bit_for_bit() {
    use crate::head::GroupSum;
    use crate::layer::act::{Act, Bf16, F16};
    use crate::layer::kernel::{backward_at, backward_group_at, forward_at, forward_group_sums_at};
    use crate::layer::simd::SimdLevel;
    fn check<A: Act>(level: SimdLevel, rank: usize, bs: usize) {
        let mut r = Rng::new(13);
        // 12 neurons in 3 groups of 4.
        let (in_dim, out_dim, k) = (10, 12, 3);
        let group = out_dim / k;
        let ids: Vec<u32> = (0..rank * out_dim)
            .map(|_| r.below(in_dim) as u32)
            .collect();
        let coef = random(out_dim << rank, &mut r, -2.0, 2.0);
        let round = |v: Vec<f32>| v.into_iter().map(A::from_f32).collect::<Vec<A>>();
        let input = round(random(in_dim * bs, &mut r, 0.0, 1.0));
        let dscores = random(k * bs, &mut r, -1.0, 1.0);
        let head = GroupSum::new(k, 1.5, out_dim).unwrap();
        for sigmoid in [false, true] {
            let what = format!(
                "{} {level:?} rank {rank} bs {bs} sigmoid {sigmoid}",
                A::NAME
            );
            let (x, c) = (&input, &coef);
            let mut y = vec![A::ZERO; out_dim * bs];
            forward_at(level, rank, &ids, c, sigmoid, x, &mut y, bs);
            let mut want = vec![0.0; k * bs];
            head.forward_at(level, &y, &mut want, bs);
            // Stale values in the sums must not leak in.
            let mut got = vec![7.0; k * bs];
            forward_group_sums_at(level, rank, &ids, c, sigmoid, x, &mut got, group, bs);
            head.scale_sums(&mut got);
            assert_eq!(got, want, "{what}: scores");

            let mut rows = vec![A::ZERO; out_dim * bs];
            head.backward_at(level, &dscores, &mut rows, bs);
            let mut shared = vec![A::ZERO; k * bs];
            head.group_rows_at(level, &dscores, &mut shared, bs);
            for (dx, slots) in [(false, false), (true, false), (true, true), (false, true)] {
                let (mut gi1, mut gi2) = (vec![A::ZERO; in_dim * bs], vec![A::ZERO; in_dim * bs]);
                let (mut s1, mut s2) = (
                    vec![0.0; out_dim * rank * bs],
                    vec![0.0; out_dim * rank * bs],
                );
                let (mut d1, mut d2) = (vec![0.5; out_dim << rank], vec![0.5; out_dim << rank]);
                let mut own = rows.clone();
                let (gi, sg) = (dx.then_some(&mut gi1[..]), slots.then_some(&mut s1[..]));
                backward_at(
                    level, rank, &ids, c, sigmoid, x, &mut own, gi, sg, &mut d1, true, bs,
                );
                let before = shared.clone();
                let (gi, sg) = (dx.then_some(&mut gi2[..]), slots.then_some(&mut s2[..]));
                let (sh, d) = (&shared, &mut d2);
                backward_group_at(
                    level, rank, &ids, c, sigmoid, x, sh, group, gi, sg, d, true, bs,
                );
                assert_eq!(
                    shared, before,
                    "{what}: the shared rows are left as they are"
                );
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let how = format!("{what} dx {dx} slots {slots}");
                assert_eq!(bits(&d2), bits(&d1), "{how}: coefficient gradients");
                assert_eq!(gi2, gi1, "{how}: input gradients");
                assert_eq!(bits(&s2), bits(&s1), "{how}: slot gradients");
            }
        }
    }
    for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
        // A pair of chunks and one alone; two pairs and one alone.
        for (rank, bs) in (1..=6).flat_map(|r| [(r, 48), (r, 80)]) {
            check::<f32>(level, rank, bs);
            check::<Bf16>(level, rank, bs);
            check::<F16>(level, rank, bs);
        }
    }
}

/// One neuron in f64 from the multilinear formula `y = Σ_k a_k Π_j (x_j or 1 − x_j)` (input
/// 0 is the most significant bit of k): (pre-activation, ∂y/∂a_k, ∂y/∂x_j).
fn multilinear(a: &[f32], x: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let n = x.len();
    let basis = |k: usize, skip: usize| -> f64 {
        (0..n)
            .filter(|&j| j != skip)
            .map(|j| {
                if k >> (n - 1 - j) & 1 == 1 {
                    x[j]
                } else {
                    1.0 - x[j]
                }
            })
            .product()
    };
    let phi: Vec<f64> = (0..a.len()).map(|k| basis(k, n)).collect();
    let y = a.iter().zip(&phi).map(|(&a, p)| a as f64 * p).sum();
    let dx = (0..n)
        .map(|j| {
            (0..a.len())
                .map(|k| {
                    let sign = if k >> (n - 1 - j) & 1 == 1 { 1.0 } else { -1.0 };
                    sign * a[k] as f64 * basis(k, j)
                })
                .sum()
        })
        .collect();
    (y, phi, dx)
}

/// The depth-first lerp tree (ranks 1, 3, 5, 6) and rank 4's kernel against the formula
/// above, at every SIMD level (the scalar lanes walk the tree by recursion, the others
/// unrolled): forward, coefficient,
/// input and slot gradients, with and without the sigmoid, with and without each of the
/// input-side gradients, on 48 samples (a pair of chunks and a chunk alone; slot gradients
/// take single chunks throughout).
#[test]
fn the_tree_kernels_are_the_multilinear_polynomial() {
    use crate::layer::kernel::{backward_at, forward_at};
    use crate::layer::simd::SimdLevel;
    let mut r = Rng::new(14);
    let (in_dim, out_dim, bs) = (8, 5, 48);
    for rank in [1, 3, 4, 5, 6] {
        let k = 1 << rank;
        let mut ids: Vec<u32> = (0..rank * out_dim)
            .map(|_| r.below(in_dim) as u32)
            .collect();
        ids[rank - 1] = ids[0]; // neuron 0 reads a row twice (rank 1: trivially)
        let coef = random(k * out_dim, &mut r, -2.0, 2.0);
        let input = random(in_dim * bs, &mut r, 0.0, 1.0);
        let g = random(out_dim * bs, &mut r, -1.0, 1.0);
        for sigmoid in [false, true] {
            // The reference, in f64.
            let (mut y_ref, mut dx_ref) = (vec![0.0; out_dim * bs], vec![0.0; in_dim * bs]);
            let (mut da_ref, mut slot_ref) =
                (vec![0.0; k * out_dim], vec![0.0; rank * out_dim * bs]);
            for i in 0..out_dim {
                for s in 0..bs {
                    let x: Vec<f64> = (0..rank)
                        .map(|j| input[ids[i * rank + j] as usize * bs + s] as f64)
                        .collect();
                    let (z, phi, dx) = multilinear(&coef[i * k..(i + 1) * k], &x);
                    let (y, dz) = if sigmoid {
                        let y = 1.0 / (1.0 + (-z).exp());
                        (y, y * (1.0 - y))
                    } else {
                        (z, 1.0)
                    };
                    y_ref[i * bs + s] = y;
                    let w = g[i * bs + s] as f64 * dz;
                    for (c, p) in phi.iter().enumerate() {
                        da_ref[i * k + c] += w * p;
                    }
                    for j in 0..rank {
                        dx_ref[ids[i * rank + j] as usize * bs + s] += w * dx[j];
                        slot_ref[(i * rank + j) * bs + s] = w * dx[j];
                    }
                }
            }
            let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
                let what = format!("rank {rank} sigmoid {sigmoid} {level:?}");
                let mut y = vec![0.0; out_dim * bs];
                forward_at(level, rank, &ids, &coef, sigmoid, &input, &mut y, bs);
                close(&y, &f32s(&y_ref), 1e-5, &format!("{what} forward"));
                for (inputs, slots) in [(true, false), (true, true), (false, true), (false, false)]
                {
                    let (mut gi, mut d) = (vec![0.0; in_dim * bs], vec![0.0; k * out_dim]);
                    let mut sg = vec![0.0; rank * out_dim * bs];
                    let mut go = g.clone();
                    let sgo = slots.then_some(&mut sg[..]);
                    let (x, gin) = (&input, inputs.then_some(&mut gi[..]));
                    backward_at(
                        level, rank, &ids, &coef, sigmoid, x, &mut go, gin, sgo, &mut d, false, bs,
                    );
                    let what = format!("{what} inputs {inputs} slots {slots}");
                    assert!(go.iter().all(|&v| v == 0.0), "{what}: consumed");
                    close(
                        &d,
                        &f32s(&da_ref),
                        1e-5,
                        &format!("{what} coefficient gradient"),
                    );
                    if inputs {
                        close(&gi, &f32s(&dx_ref), 1e-5, &format!("{what} input gradient"));
                    }
                    if slots {
                        close(
                            &sg,
                            &f32s(&slot_ref),
                            1e-5,
                            &format!("{what} slot gradient"),
                        );
                    }
                }
            }
        }
    }
}
