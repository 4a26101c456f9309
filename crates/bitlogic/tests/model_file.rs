//! Model files: round trip and refusal of broken or foreign files.

mod common;

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
