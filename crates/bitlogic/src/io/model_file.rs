//! Model files: one self-describing safetensors file.
//!
//! Tensors: `layers.{i}.weights` (F32 `[out_dim, weights_per_neuron]`), `layers.{i}.ids`
//! (U32 `[out_dim, lut_rank]`, the wiring), for learnable connections `layers.{i}.candidates`
//! (U32) and `layers.{i}.conn_logits` (F32), both `[out_dim, lut_rank, num_candidates]`,
//! `encoder.thresholds` (F32) and, for a GroupedDSP head, `head.weights` (F32 `[k, k]`, W).
//! Metadata (strings): `format` = `bitlogic-model`, `format_version`, `model_config`,
//! `layers`, `encoder` and `head` as JSON, and any `extra.*` entries the caller adds (e.g. a
//! CSV schema). Loading checks every shape, index and value, so a truncated, corrupted or
//! foreign file is an error, never a wrong model.
//!
//! Version 2 added the head's `kind` (absent = GroupSum) and `head.weights`. GroupSum models
//! are still written as version 1, which older builds read; GroupedDSP models are version 2,
//! which older builds refuse instead of loading them as a GroupSum model.

use crate::encoder::Encoder;
use crate::head::{GroupSum, GroupedDsp, Head, HeadKind};
use crate::layer::{LayerConfig, LogicDense};
use crate::{Error, Model, ModelConfig, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub const FORMAT: &str = "bitlogic-model";
/// The newest version this build writes and reads (it reads every version from 1).
pub const FORMAT_VERSION: u32 = 2;

/// The `head` metadata: the groups, and the kind (absent in version 1 files: GroupSum).
#[derive(serde::Serialize, serde::Deserialize)]
struct HeadMeta {
    k: usize,
    tau: f32,
    in_dim: usize,
    #[serde(default)]
    kind: HeadKind,
}

/// The oldest format version that can describe `model` (see the module documentation).
fn version_of(model: &Model) -> u32 {
    match model.head {
        Head::GroupSum(_) => 1,
        Head::GroupedDsp(_) => 2,
    }
}

fn le_bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn le_bytes_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::invalid(format!("cannot describe the model: {e}")))
}

/// Serialises `model` (and `extra` metadata, stored under `extra.<key>`) to bytes.
pub fn to_bytes(model: &Model, extra: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, l) in model.layers.iter().enumerate() {
        buffers.push((
            format!("layers.{i}.weights"),
            Dtype::F32,
            vec![l.out_dim(), l.weights_per_neuron()],
            le_bytes_f32(&l.weights),
        ));
        buffers.push((
            format!("layers.{i}.ids"),
            Dtype::U32,
            vec![l.out_dim(), l.rank()],
            le_bytes_u32(&l.ids),
        ));
        if l.config.learnable() {
            let shape = vec![l.out_dim(), l.rank(), l.config.num_candidates];
            buffers.push((
                format!("layers.{i}.candidates"),
                Dtype::U32,
                shape.clone(),
                le_bytes_u32(&l.candidates),
            ));
            buffers.push((
                format!("layers.{i}.conn_logits"),
                Dtype::F32,
                shape,
                le_bytes_f32(&l.conn_logits),
            ));
        }
    }
    buffers.push((
        "encoder.thresholds".into(),
        Dtype::F32,
        vec![model.encoder.thresholds.len()],
        le_bytes_f32(&model.encoder.thresholds),
    ));
    if let Head::GroupedDsp(h) = &model.head {
        buffers.push((
            "head.weights".into(),
            Dtype::F32,
            vec![h.group.k, h.group.k],
            le_bytes_f32(&h.weights),
        ));
    }
    let views = buffers
        .iter()
        .map(|(name, dt, shape, data)| {
            TensorView::new(*dt, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::invalid(format!("cannot store tensor {name}: {e:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut encoder = model.encoder.clone();
    encoder.thresholds.clear();
    let layers: Vec<&LayerConfig> = model.layers.iter().map(|l| &l.config).collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("format_version".to_string(), version_of(model).to_string());
    meta.insert("model_config".to_string(), to_json(&model.config)?);
    meta.insert("layers".to_string(), to_json(&layers)?);
    meta.insert("encoder".to_string(), to_json(&encoder)?);
    let g = model.head.group();
    let head = HeadMeta {
        k: g.k,
        tau: g.tau,
        in_dim: g.in_dim,
        kind: model.head.kind(),
    };
    meta.insert("head".to_string(), to_json(&head)?);
    for (k, v) in extra {
        meta.insert(format!("extra.{k}"), v.clone());
    }
    safetensors::serialize(views, &Some(meta))
        .map_err(|e| Error::invalid(format!("cannot serialise the model: {e:?}")))
}

/// Writes the model file (through a temporary file, so a crash never leaves half a model).
pub fn save(model: &Model, path: &Path, extra: &BTreeMap<String, String>) -> Result<()> {
    let bytes = to_bytes(model, extra)?;
    let tmp = path.with_extension("safetensors.partial");
    std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A loaded model and the `extra.*` metadata it was saved with.
pub struct Loaded {
    pub model: Model,
    pub extra: BTreeMap<String, String>,
}

pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_bytes(&bytes).map_err(|e| match e {
        Error::Invalid(msg) => Error::format(path, msg),
        other => other,
    })
}

fn meta_json<T: serde::de::DeserializeOwned>(
    meta: &HashMap<String, String>,
    key: &str,
) -> Result<T> {
    let s = meta.get(key).ok_or_else(|| {
        Error::invalid(format!("not a bitlogic model: metadata '{key}' is missing"))
    })?;
    serde_json::from_str(s).map_err(|e| Error::invalid(format!("metadata '{key}' is invalid: {e}")))
}

fn tensor<'a>(st: &'a SafeTensors, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&'a [u8]> {
    let t = st
        .tensor(name)
        .map_err(|_| Error::invalid(format!("tensor '{name}' is missing")))?;
    if t.dtype() != dtype || t.shape() != shape {
        return Err(Error::invalid(format!(
            "tensor '{name}' is {:?} {:?}, expected {dtype:?} {shape:?}",
            t.dtype(),
            t.shape()
        )));
    }
    Ok(t.data())
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn from_bytes(bytes: &[u8]) -> Result<Loaded> {
    let bad = |e: safetensors::SafeTensorError| {
        Error::invalid(format!(
            "not a valid safetensors file (truncated or corrupted?): {e:?}"
        ))
    };
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let meta = metadata
        .metadata()
        .clone()
        .ok_or_else(|| Error::invalid("not a bitlogic model: the file has no metadata"))?;
    match meta.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        other => {
            return Err(Error::invalid(format!(
                "not a bitlogic model: format is {other:?}, expected \"{FORMAT}\""
            )))
        }
    }
    let version: u32 = meta
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::invalid("format_version is missing or not a number"))?;
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(Error::invalid(format!(
            "model format version {version} is not supported (this build reads versions 1 to {FORMAT_VERSION})"
        )));
    }
    let config: ModelConfig = meta_json(&meta, "model_config")?;
    let layer_configs: Vec<LayerConfig> = meta_json(&meta, "layers")?;
    let mut encoder: Encoder = meta_json(&meta, "encoder")?;
    let head: HeadMeta = meta_json(&meta, "head")?;

    let n_thr = tensor_len(&st, "encoder.thresholds")?;
    encoder.thresholds = f32s(tensor(&st, "encoder.thresholds", Dtype::F32, &[n_thr])?);
    encoder.validate()?;
    if layer_configs.is_empty() {
        return Err(Error::invalid("the model has no LogicDense layer"));
    }
    let mut layers = Vec::with_capacity(layer_configs.len());
    let mut in_dim = encoder.output_dim();
    for (i, c) in layer_configs.into_iter().enumerate() {
        if c.in_dim != in_dim {
            return Err(Error::invalid(format!(
                "layer {i} reads {} inputs but the previous stage outputs {in_dim}",
                c.in_dim
            )));
        }
        let wpn = c.parametrization.weights_per_neuron(c.lut_rank);
        let w = f32s(tensor(
            &st,
            &format!("layers.{i}.weights"),
            Dtype::F32,
            &[c.out_dim, wpn],
        )?);
        let ids = u32s(tensor(
            &st,
            &format!("layers.{i}.ids"),
            Dtype::U32,
            &[c.out_dim, c.lut_rank],
        )?);
        let (cand, logits) = if c.learnable() {
            let shape = [c.out_dim, c.lut_rank, c.num_candidates];
            (
                u32s(tensor(
                    &st,
                    &format!("layers.{i}.candidates"),
                    Dtype::U32,
                    &shape,
                )?),
                f32s(tensor(
                    &st,
                    &format!("layers.{i}.conn_logits"),
                    Dtype::F32,
                    &shape,
                )?),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        in_dim = c.out_dim;
        layers.push(
            LogicDense::from_parts_learnable(c, ids, w, cand, logits)
                .map_err(|e| Error::invalid(format!("layer {i}: {e}")))?,
        );
    }
    if head.in_dim != in_dim {
        return Err(Error::invalid(format!(
            "the head reads {} inputs but the last layer outputs {in_dim}",
            head.in_dim
        )));
    }
    let head = load_head(&st, head, &config)?;
    let extra = meta
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("extra.").map(|k| (k.to_string(), v.clone())))
        .collect();
    Ok(Loaded {
        model: Model {
            config,
            encoder,
            layers,
            head,
        },
        extra,
    })
}

/// The head from its metadata and, for GroupedDSP, its `head.weights` tensor.
fn load_head(st: &SafeTensors, meta: HeadMeta, config: &ModelConfig) -> Result<Head> {
    if meta.kind != config.head {
        return Err(Error::invalid(format!(
            "the head metadata says {:?} but the model config says {:?}",
            meta.kind, config.head
        )));
    }
    let HeadMeta { k, tau, in_dim, .. } = meta;
    Ok(match meta.kind {
        HeadKind::GroupSum => Head::GroupSum(GroupSum::new(k, tau, in_dim)?),
        HeadKind::GroupedDsp { beta, wbits } => {
            // Checked first, so that a bad k or τ is named rather than the tensor's shape.
            GroupSum::new(k, tau, in_dim)?;
            let w = f32s(tensor(st, "head.weights", Dtype::F32, &[k, k])?);
            Head::GroupedDsp(GroupedDsp::from_weights(k, tau, beta, wbits, in_dim, w)?)
        }
    })
}

fn tensor_len(st: &SafeTensors, name: &str) -> Result<usize> {
    let t = st
        .tensor(name)
        .map_err(|_| Error::invalid(format!("tensor '{name}' is missing")))?;
    Ok(t.shape().iter().product())
}
