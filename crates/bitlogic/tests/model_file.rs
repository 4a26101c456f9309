//! Model files: round trip and refusal of broken or foreign files.

mod common;

use bitlogic::head::HeadKind;
use bitlogic::io::model_file::{from_bytes, load, save, to_bytes};
use bitlogic::layer::{Parametrization, Sampling};
use bitlogic::ModelConfig;
use std::collections::BTreeMap;

fn sample_model(p: Parametrization, rank: usize) -> bitlogic::Model {
    common::random_model(
        20,
        ModelConfig {
            widths: vec![60, 40, 30],
            lut_rank: rank,
            parametrization: p,
            sampling: Sampling::Hard,
            classes: 3,
            seed: 5,
            ..ModelConfig::default()
        },
    )
}

#[test]
fn round_trip_keeps_wiring_weights_and_predictions() {
    let dir = std::env::temp_dir().join(format!("bitlogic-mf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (p, rank) in [
        (Parametrization::Light, 4),
        (Parametrization::Difflogic, 2),
        (Parametrization::Warp, 6),
    ] {
        let model = sample_model(p, rank);
        let path = dir.join(format!("{}.safetensors", p.name()));
        let mut extra = BTreeMap::new();
        extra.insert("note".to_string(), "hello".to_string());
        save(&model, &path, &extra).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.model, model, "{p:?}");
        assert_eq!(loaded.extra.get("note").map(String::as_str), Some("hello"));
        let x: Vec<f32> = (0..20 * 50).map(|i| ((i * 37) % 256) as f32).collect();
        assert_eq!(
            loaded.model.predict(&x, 50).unwrap(),
            model.predict(&x, 50).unwrap()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncated_corrupted_and_foreign_files_are_errors() {
    let model = sample_model(Parametrization::Light, 3);
    let bytes = to_bytes(&model, &BTreeMap::new()).unwrap();
    for cut in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        let e = from_bytes(&bytes[..cut])
            .err()
            .expect("truncated file must fail");
        assert!(
            e.to_string().contains("truncated or corrupted"),
            "cut {cut}: {e}"
        );
    }
    // A valid safetensors file that is not a bitlogic model.
    let data = vec![0u8; 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &data).unwrap();
    let foreign = safetensors::serialize(vec![("w", view)], &None).unwrap();
    let e = from_bytes(&foreign).err().unwrap().to_string();
    assert!(e.contains("not a bitlogic model"), "{e}");
    // A connection id pointing outside its layer's inputs.
    let mut bad = model.clone();
    bad.layers[1].ids[0] = 10_000;
    let e = from_bytes(&to_bytes(&bad, &BTreeMap::new()).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("connection id 10000"), "{e}");
    // The path is named when loading from disk.
    let e = load(std::path::Path::new("/nonexistent/model.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/model.safetensors"), "{e}");
}

type Tensors = Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>;

/// Re-serialises a model file after `edit` changed its metadata or tensors.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut std::collections::HashMap<String, String>, &mut Tensors),
) -> Vec<u8> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut meta = meta.metadata().clone().unwrap();
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: Tensors = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    edit(&mut meta, &mut tensors);
    let views = tensors.iter().map(|(n, d, s, b)| {
        let v = safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap();
        (n.clone(), v)
    });
    safetensors::serialize(views, &Some(meta)).unwrap()
}

fn dsp_model() -> bitlogic::Model {
    let mut m = common::random_model(
        20,
        ModelConfig {
            widths: vec![60, 30],
            lut_rank: 3,
            classes: 3,
            head: HeadKind::GroupedDsp {
                beta: 0.5,
                wbits: 6,
            },
            seed: 9,
            ..ModelConfig::default()
        },
    );
    let w = [0.3, -1.2, 2.0, -0.1, 0.7, -3.0, 1.1, 0.0, -0.4];
    m.head.params_mut().copy_from_slice(&w);
    m
}

fn set_json(
    meta: &mut std::collections::HashMap<String, String>,
    key: &str,
    f: impl FnOnce(&mut serde_json::Value),
) {
    let mut v: serde_json::Value = serde_json::from_str(&meta[key]).unwrap();
    f(&mut v);
    meta.insert(key.to_string(), v.to_string());
}

#[test]
fn grouped_dsp_round_trip_keeps_the_matrix() {
    let model = dsp_model();
    let bytes = to_bytes(&model, &BTreeMap::new()).unwrap();
    let loaded = from_bytes(&bytes).unwrap().model;
    assert_eq!(loaded, model);
    assert_eq!(loaded.head.params(), model.head.params());
    let x: Vec<f32> = (0..20 * 50).map(|i| ((i * 53) % 256) as f32).collect();
    assert_eq!(
        loaded.predict(&x, 50).unwrap(),
        model.predict(&x, 50).unwrap()
    );
    // GroupedDSP files are version 2 (older builds refuse them); GroupSum files stay version 1.
    let version = |b: &[u8]| {
        let (_, m) = safetensors::SafeTensors::read_metadata(b).unwrap();
        m.metadata().clone().unwrap()["format_version"].clone()
    };
    assert_eq!(version(&bytes), "2");
    let plain = sample_model(Parametrization::Light, 2);
    assert_eq!(version(&to_bytes(&plain, &BTreeMap::new()).unwrap()), "1");
}

#[test]
fn files_without_a_head_kind_load_as_group_sum() {
    // As written before heads had a kind: no `kind` in `head`, no `head` in the config.
    let model = sample_model(Parametrization::Light, 2);
    let bytes = rewrite(&to_bytes(&model, &BTreeMap::new()).unwrap(), |meta, _| {
        set_json(meta, "head", |v| {
            v.as_object_mut().unwrap().remove("kind");
        });
        set_json(meta, "model_config", |v| {
            v.as_object_mut().unwrap().remove("head");
        });
    });
    assert_eq!(from_bytes(&bytes).unwrap().model, model);
}

#[test]
fn broken_grouped_dsp_files_are_errors() {
    let bytes = to_bytes(&dsp_model(), &BTreeMap::new()).unwrap();
    let err = |edit: &dyn Fn(&mut std::collections::HashMap<String, String>, &mut Tensors)| {
        from_bytes(&rewrite(&bytes, edit))
            .err()
            .expect("must fail")
            .to_string()
    };
    let weights =
        |t: &mut Tensors| -> usize { t.iter().position(|t| t.0 == "head.weights").unwrap() };
    let e = err(&|_, t| {
        let i = weights(t);
        t[i].3[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert!(e.contains("W[0][1]") && e.contains("finite"), "{e}");
    let e = err(&|_, t| {
        let i = weights(t);
        t[i].2 = vec![1, 9];
    });
    assert!(e.contains("head.weights") && e.contains("[3, 3]"), "{e}");
    let e = err(&|_, t| {
        let i = weights(t);
        t.remove(i);
    });
    assert!(e.contains("'head.weights' is missing"), "{e}");
    let e = err(&|m, _| {
        set_json(m, "head", |v| {
            v["kind"] = serde_json::json!({"grouped-dsp": {"beta": 0.5, "wbits": 17}})
        });
        set_json(m, "model_config", |v| {
            v["head"] = serde_json::json!({"grouped-dsp": {"beta": 0.5, "wbits": 17}})
        });
    });
    assert!(e.contains("got 17") && e.contains("2..=16"), "{e}");
    let e = err(&|m, _| set_json(m, "head", |v| v["kind"] = serde_json::json!("group-sum")));
    assert!(e.contains("model config"), "{e}");
    let e = err(&|m, _| {
        m.insert("format_version".into(), "3".into());
    });
    assert!(e.contains("version 3"), "{e}");
}
