//! Packed inference against the references: eval forward (`Model::eval_counts`), the scalar
//! netlist evaluator, the scalar kernels, and the pack/unpack definition. Seeded loops over
//! every parametrization, ranks 1–6, depths 1–4 and batch sizes around the word and block
//! edges.

use super::*;
use crate::encoder::EncoderKind;
use crate::layer::connections::CONNECTIONS;
use crate::layer::param::PARAMETRIZATIONS;
use crate::layer::{ConnectionKind, Parametrization, WeightInit};
use crate::rng::Rng;
use crate::ModelConfig;
use kernel::BLOCK;

const BATCHES: [usize; 5] = [1, 63, 64, 65, 1000];
const LEVELS: [SimdLevel; 3] = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512];

fn random_bits(n: usize, dim: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..n * dim).map(|_| (r.next_u64() & 1) as u8).collect()
}

struct Spec {
    p: Parametrization,
    rank: usize,
    depth: usize,
    init: WeightInit,
    conn: ConnectionKind,
    seed: u64,
}

/// A model on `features` inputs thermometer-encoded to 2 bits each.
fn model(s: &Spec, features: usize, width: usize, classes: usize) -> Model {
    let mut r = Rng::new(s.seed ^ 0x5eed);
    let x: Vec<f32> = (0..50 * features).map(|_| r.uniform()).collect();
    let mut enc = Encoder::new(EncoderKind::Thermometer, 2, false).unwrap();
    enc.fit(&x, 50, features).unwrap();
    let cfg = ModelConfig {
        widths: vec![width; s.depth],
        lut_rank: s.rank,
        parametrization: s.p,
        connections: s.conn,
        weight_init: s.init,
        classes,
        seed: s.seed,
        ..ModelConfig::default()
    };
    Model::new(cfg, enc).unwrap()
}

/// Every registered parametrization × its ranks × depths 1–4, cycling through the
/// connection kinds and random / residual initialisation.
fn every_spec() -> Vec<Spec> {
    let mut out = Vec::new();
    let mut seed = 1;
    for &(_, p) in PARAMETRIZATIONS {
        for rank in p.ranks() {
            for depth in 1..=4 {
                seed += 1;
                let init = if seed % 3 == 0 {
                    WeightInit::Residual { probability: 0.9 }
                } else {
                    WeightInit::Random
                };
                let conn = CONNECTIONS[seed as usize % CONNECTIONS.len()].1;
                out.push(Spec {
                    p,
                    rank,
                    depth,
                    init,
                    conn,
                    seed,
                });
            }
        }
    }
    out
}

fn packed(m: &Model, simplify: bool, simd: SimdLevel) -> PackedLogicNet {
    let opts = Options {
        simplify,
        simd: Some(simd),
    };
    PackedLogicNet::with_options(m, &opts).unwrap()
}

#[test]
fn packed_equals_eval_forward_for_every_model_and_batch() {
    for s in every_spec() {
        let m = model(&s, 9, 30, 3);
        let dim = m.encoder.output_dim();
        let nets = [
            packed(&m, false, simd_level()),
            packed(&m, true, simd_level()),
        ];
        for n in BATCHES {
            let bits = random_bits(n, dim, s.seed * 31 + n as u64);
            let want = m.eval_counts(&bits, n).unwrap();
            for net in &nets {
                let ctx = format!("{:?} rank {} depth {} n {n}", s.p, s.rank, s.depth);
                assert_eq!(net.forward(&bits, n).unwrap(), want, "{ctx}");
                let words = pack_bits(&bits, n, dim).unwrap();
                assert_eq!(net.forward_packed(&words, n).unwrap(), want, "{ctx} packed");
            }
        }
    }
}

#[test]
fn any_wave_size_gives_the_same_counts() {
    for (rank, seed) in [(2, 40), (4, 41), (6, 42)] {
        let s = Spec {
            p: Parametrization::Warp,
            rank,
            depth: 3,
            init: WeightInit::Random,
            conn: ConnectionKind::RandomUnique,
            seed,
        };
        let m = model(&s, 10, 24, 4);
        let net = netlist_of(&m).unwrap();
        let graph = compile::compile(&simplify::simplify(&net));
        let n = 700;
        let bits = random_bits(n, net.inputs, seed);
        let want = m.eval_counts(&bits, n).unwrap();
        for wave in [1, 2, 7, 50, 100_000] {
            let p = program::schedule_waves(&graph, net.classes, wave).unwrap();
            let e = engine::Engine::new(p, simd_level()).unwrap();
            assert_eq!(
                e.run(Input::Bits(&bits), n).unwrap(),
                want,
                "rank {rank} wave {wave}"
            );
        }
    }
}

#[test]
fn packed_predict_equals_model_predict() {
    let s = Spec {
        p: Parametrization::Light,
        rank: 4,
        depth: 2,
        init: WeightInit::Random,
        conn: ConnectionKind::RandomUnique,
        seed: 3,
    };
    let m = model(&s, 12, 60, 5);
    let mut r = Rng::new(9);
    let n = 700;
    let x: Vec<f32> = (0..n * 12).map(|_| r.uniform()).collect();
    let net = PackedLogicNet::new(&m).unwrap();
    assert_eq!(net.predict(&x, n).unwrap(), m.predict(&x, n).unwrap());
}

#[test]
fn simplified_netlist_equals_unsimplified_on_every_input() {
    for s in every_spec() {
        let m = model(&s, 4, 16, 2);
        let net = netlist_of(&m).unwrap();
        let simple = simplify::simplify(&net);
        assert!(simple.nodes.len() <= net.nodes.len());
        // 8 input bits: every input pattern.
        for env in 0..1u32 << net.inputs {
            let bits: Vec<u8> = (0..net.inputs).map(|i| ((env >> i) & 1) as u8).collect();
            assert_eq!(
                net.eval_sample(&bits),
                simple.eval_sample(&bits),
                "{env:#b}"
            );
        }
    }
}

#[test]
fn netlist_reference_equals_eval_forward() {
    let s = Spec {
        p: Parametrization::Warp,
        rank: 5,
        depth: 3,
        init: WeightInit::Random,
        conn: ConnectionKind::Random,
        seed: 12,
    };
    let m = model(&s, 10, 24, 4);
    let net = netlist_of(&m).unwrap();
    let n = 100;
    let bits = random_bits(n, net.inputs, 4);
    let want = m.eval_counts(&bits, n).unwrap();
    let got: Vec<u32> = bits
        .chunks_exact(net.inputs)
        .flat_map(|b| net.eval_sample(b))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn simplification_folds_pass_throughs_and_constants() {
    // Residual init: most LUTs start as "output = input 0", which all fold away.
    let s = Spec {
        p: Parametrization::Light,
        rank: 2,
        depth: 4,
        init: WeightInit::Residual { probability: 0.99 },
        conn: ConnectionKind::RandomUnique,
        seed: 5,
    };
    let m = model(&s, 20, 200, 10);
    let (before, after) = simplify::gate_counts(&m).unwrap();
    assert_eq!(before, 800);
    assert!(after < before / 4, "{before} → {after}");
}

#[test]
fn simplification_merges_duplicates_and_drops_dead_nodes() {
    use netlist::{Node, Output};
    // n0 = a AND b, n1 = the same, n2 = NOT n0 (folded), n3 unread, outputs n1, n2.
    let net = Netlist {
        inputs: 2,
        nodes: vec![
            Node {
                inputs: vec![0, 1],
                table: 0b1000,
            },
            Node {
                inputs: vec![0, 1],
                table: 0b1000,
            },
            Node {
                inputs: vec![2],
                table: table::NOT,
            },
            Node {
                inputs: vec![0, 1],
                table: 0b0110,
            },
        ],
        outputs: vec![Output::Signal(3), Output::Signal(4)],
        classes: 1,
    };
    let s = simplify::simplify(&net);
    // One AND, plus a NOT node because the head reads the negation.
    assert_eq!(s.nodes.len(), 2, "{s:?}");
    for env in 0..4u32 {
        let bits = [(env & 1) as u8, (env >> 1) as u8];
        assert_eq!(s.eval_sample(&bits), net.eval_sample(&bits));
    }
}

#[test]
fn every_simd_level_equals_scalar() {
    for s in every_spec().iter().filter(|s| s.depth >= 2) {
        // 70 encoded bits: a full and a partial 64-feature chunk in the packers.
        let m = model(s, 35, 40, 4);
        let dim = m.encoder.output_dim();
        let n = BLOCK + 77;
        let bits = random_bits(n, dim, s.seed);
        for simplify in [false, true] {
            let want = packed(&m, simplify, SimdLevel::Scalar)
                .forward(&bits, n)
                .unwrap();
            for level in LEVELS {
                let net = packed(&m, simplify, level);
                assert_eq!(net.forward(&bits, n).unwrap(), want, "{level:?}");
            }
        }
    }
}

#[test]
fn every_immediate_matches_the_reference_at_every_level() {
    use program::{Group, HeadPlan, Program};
    // Slots 0..3 hold random lines; ops write slots 3.. with each immediate, at its arity.
    let mut r = Rng::new(21);
    let inputs: Vec<kernel::Line> = (0..3)
        .map(|_| kernel::Line(std::array::from_fn(|_| r.next_u64())))
        .collect();
    let mut code = Vec::new();
    let mut groups = Vec::new();
    let mut dst = 3u32;
    for imm in 0..=255u8 {
        let arity = kernel::arity_of(imm) as u8;
        groups.push(Group {
            imm,
            arity,
            start: code.len(),
            count: 1,
        });
        code.push(dst);
        code.extend([2u32, 0, 1].iter().take(arity as usize));
        dst += 1;
    }
    let program = Program {
        inputs: 3,
        slots: dst as usize,
        code,
        groups,
        head: HeadPlan {
            slots: vec![vec![]],
            offset: vec![0],
        },
        steps: 1,
        ops: (dst - 3) as usize,
    };
    for level in LEVELS {
        let e = engine::Engine::new(program.clone(), level).unwrap();
        let mut arena = vec![kernel::Line::default(); program.slots];
        arena[..3].copy_from_slice(&inputs);
        for (g, op) in program.groups.iter().zip(3..) {
            let f = kernel::group_fn(e.level(), g.imm);
            let code: Vec<u32> = program.code[g.start..g.start + 1 + g.arity as usize]
                .iter()
                .map(|s| s * 64)
                .collect();
            // SAFETY: slots < arena length, level capped by Engine::new.
            unsafe { f(arena.as_mut_ptr(), &code) };
            // An immediate ignores its operands past its arity, so the reference reads three
            // distinct lines: a kernel that loaded too few operands would differ from it.
            let (a, b, c) = (inputs[2].0, inputs[0].0, inputs[1].0);
            let want: [u64; kernel::WORDS] =
                std::array::from_fn(|l| kernel::tern_ref(g.imm, a[l], b[l], c[l]));
            assert_eq!(
                arena[op].0, want,
                "{level:?} imm {} arity {}",
                g.imm, g.arity
            );
        }
    }
}

#[test]
fn a_group_whose_arity_is_not_its_immediates_is_rejected() {
    use program::{Group, HeadPlan, Program};
    // 0xCA (a ? b : c) reads three operands; as a two-operand group its code would be read
    // with the wrong stride.
    let program = Program {
        inputs: 3,
        slots: 4,
        code: vec![3, 0, 1],
        groups: vec![Group {
            imm: 0xCA,
            arity: 2,
            start: 0,
            count: 1,
        }],
        head: HeadPlan {
            slots: vec![vec![]],
            offset: vec![0],
        },
        steps: 1,
        ops: 1,
    };
    let err = engine::Engine::new(program, SimdLevel::Scalar)
        .err()
        .unwrap();
    assert!(err.to_string().contains("internal error"), "{err}");
}

#[test]
fn head_counts_match_at_every_level_for_every_group_size() {
    for g in [1usize, 5, 15, 16, 17, 33, 100, 300] {
        let net = Netlist {
            inputs: g * 2,
            nodes: vec![],
            outputs: (0..g as u32 * 2).map(netlist::Output::Signal).collect(),
            classes: 2,
        };
        let n = BLOCK + 3;
        let bits = random_bits(n, g * 2, g as u64);
        let want: Vec<u32> = bits
            .chunks_exact(g * 2)
            .flat_map(|b| net.eval_sample(b))
            .collect();
        for level in LEVELS {
            let opts = Options {
                simplify: false,
                simd: Some(level),
            };
            let p = PackedLogicNet::from_netlist(&net, None, &opts).unwrap();
            assert_eq!(p.forward(&bits, n).unwrap(), want, "g {g} {level:?}");
        }
    }
}

#[test]
fn block_packers_agree_for_every_width_and_fill() {
    for dim in [1, 7, 63, 64, 65, 130, 200] {
        for m in [0, 1, 7, 8, 9, 63, 64, 65, 300, BLOCK] {
            let bits = random_bits(m, dim, (m * 1000 + dim) as u64);
            let mut want = vec![kernel::Line::default(); dim];
            assert!(pack::pack_block_at(
                SimdLevel::Scalar,
                &bits,
                m,
                dim,
                &mut want
            ));
            let mut got = vec![kernel::Line(std::array::from_fn(|i| i as u64)); dim];
            assert!(pack::pack_block_at(
                SimdLevel::Avx2,
                &bits,
                m,
                dim,
                &mut got
            ));
            assert_eq!(got, want, "avx2 dim {dim} m {m}");
            let words = pack_bits(&bits, m, dim).unwrap();
            for (f, line) in want.iter().enumerate() {
                let nw = m.div_ceil(64);
                assert_eq!(&line.0[..nw], &words[f * nw..f * nw + nw]);
                assert!(line.0[nw..].iter().all(|&w| w == 0));
            }
            #[cfg(target_arch = "x86_64")]
            if avx512::has_pack_features() {
                let mut got = vec![kernel::Line(std::array::from_fn(|i| i as u64)); dim];
                // SAFETY: features checked; sizes as required.
                assert!(unsafe { avx512::pack_block(&bits, m, dim, &mut got) });
                assert_eq!(got, want, "dim {dim} m {m}");
                let mut bad = bits.clone();
                if let Some(b) = bad.last_mut() {
                    *b = 2;
                    assert!(!unsafe { avx512::pack_block(&bad, m, dim, &mut got) });
                }
            }
        }
    }
}

#[test]
fn unpack_of_pack_is_identity_and_padding_is_zero() {
    for n in [0, 1, 63, 64, 65, 511, 512, 513, 1000] {
        for dim in [1, 3, 64, 70] {
            let bits = random_bits(n, dim, (n * dim) as u64);
            let words = pack_bits(&bits, n, dim).unwrap();
            assert_eq!(words.len(), dim * n.div_ceil(64));
            assert_eq!(unpack_bits(&words, n, dim).unwrap(), bits);
            let nw = n.div_ceil(64);
            for f in 0..dim {
                for s in 0..n {
                    let bit = (words[f * nw + s / 64] >> (s % 64)) & 1;
                    assert_eq!(bit as u8, bits[s * dim + f]);
                }
                if n % 64 != 0 {
                    assert_eq!(words[f * nw + nw - 1] >> (n % 64), 0, "padding");
                }
            }
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let e = pack_bits(&[0, 1, 2, 0], 2, 2).unwrap_err().to_string();
    assert!(
        e.contains("sample 1") && e.contains("feature 0") && e.contains('2'),
        "{e}"
    );
    assert!(pack_bits(&[0, 1, 1], 2, 2).is_err());
    assert!(unpack_bits(&[0; 3], 65, 2).is_err());
    let s = Spec {
        p: Parametrization::Light,
        rank: 2,
        depth: 1,
        init: WeightInit::Random,
        conn: ConnectionKind::RandomUnique,
        seed: 1,
    };
    let m = model(&s, 4, 10, 2);
    let net = PackedLogicNet::new(&m).unwrap();
    let mut bits = vec![0u8; 700 * 8];
    bits[600 * 8 + 5] = 7;
    let e = net.forward(&bits, 700).unwrap_err().to_string();
    assert!(e.contains("sample 600") && e.contains("feature 5"), "{e}");
    assert!(net.forward(&bits[..10], 700).is_err());
    assert_eq!(net.forward(&[], 0).unwrap(), Vec::<u32>::new());
    assert!(net.forward_packed(&[0; 5], 64).is_err());
}

#[test]
fn unsupported_pipelines_are_clear_errors() {
    let s = Spec {
        p: Parametrization::Light,
        rank: 2,
        depth: 2,
        init: WeightInit::Random,
        conn: ConnectionKind::RandomUnique,
        seed: 1,
    };
    let m = model(&s, 4, 10, 2);
    let o = Options::default();
    let (e, l0, l1, h) = (
        Stage::Encoder(&m.encoder),
        Stage::LogicDense(&m.layers[0]),
        Stage::LogicDense(&m.layers[1]),
        Stage::from(&m.head),
    );
    let err = |st: &[Stage]| PackedLogicNet::from_stages(st, &o).unwrap_err().to_string();
    let msg = err(&[e, Stage::Flatten, l0, Stage::Other("Conv2d"), h]);
    assert!(
        msg.contains("'Conv2d'") && msg.contains("position 3"),
        "{msg}"
    );
    let msg = err(&[e, Stage::Flatten, h]);
    assert!(msg.contains("LogicDense"), "{msg}");
    assert!(err(&[e, Stage::Flatten]).contains("at least one LogicDense"));
    assert!(err(&[e, l0, l1]).contains("GroupSum"));
    assert!(err(&[e, l0, l1, h, l1]).contains("position 4"));
    assert!(err(&[e, l0, e, l1, h]).contains("position 2"));
    assert!(err(&[e, l1, h]).contains("encoder produces"));
    let wide = crate::head::GroupSum::new(2, 1.0, 12).unwrap();
    assert!(err(&[e, l0, l1, Stage::GroupSum(&wide)]).contains("width 12"));
    assert!(err(&[e, l0, l0, h]).contains("reads 8 bits"));
    assert!(PackedLogicNet::from_stages(&[Stage::Flatten, l0, l1, h], &o).is_ok());
}

#[test]
fn compare_reports_agreement() {
    let s = Spec {
        p: Parametrization::Difflogic,
        rank: 2,
        depth: 3,
        init: WeightInit::Random,
        conn: ConnectionKind::RandomUnique,
        seed: 8,
    };
    let m = model(&s, 8, 50, 5);
    let n = 600;
    let bits = random_bits(n, m.encoder.output_dim(), 1);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
    let c = compare(&m, &bits, &labels, n).unwrap();
    assert_eq!(c.mismatches, 0);
    assert_eq!(c.accuracy, c.packed_accuracy);
    assert!(compare(&m, &bits, &labels[1..], n).is_err());
}
