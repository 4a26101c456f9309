//! The encoder: thermometers (here) and the uniform fixed-point code (`fixed_point`). In a
//! thermometer each real feature becomes `num_bits` bits, bit `i` set when the value is above
//! threshold `t_i`, so a larger value lights a longer run of ones.
//!
//! With `k = num_bits`, fitted on values whose minimum is `min` and maximum `max`:
//!
//! * [`EncoderKind::Thermometer`]: evenly spaced thresholds strictly between the extremes,
//!   `t_i = min + (max - min) * (i + 1) / (k + 1)` for `i = 0..k`.
//! * [`EncoderKind::Distributive`]: equal-frequency bins; with the `n` fit values sorted
//!   ascending into `s`, `t_i = s[min(floor((i + 1) * n / (k + 1)), n - 1)]`.
//!
//! In both, bit `i` of a value `x` is `x > t_i`. Thresholds are either global (one set over
//! every value of every feature) or per feature (`per_feature`, each feature fitted on its own
//! column). Encoded output is channel-major within a sample: feature `f`, bit `i` lands at
//! index `f * k + i`.
//!
//! ```
//! use bitlogic::encoder::{Encoder, EncoderKind};
//!
//! // Two samples of two features, sample-major.
//! let x = [0.0, 10.0, 255.0, 20.0];
//! let mut enc = Encoder::new(EncoderKind::Thermometer, 3, false)?;
//! enc.fit(&x, 2, 2)?;
//! assert_eq!(enc.thresholds, vec![63.75, 127.5, 191.25]);
//! assert_eq!(enc.output_dim(), 6);
//!
//! let bits = enc.encode(&[100.0, 200.0], 1)?;
//! // feature 0 (100.0) → 1 0 0, feature 1 (200.0) → 1 1 1
//! assert_eq!(bits, vec![1, 0, 0, 1, 1, 1]);
//! # Ok::<(), bitlogic::Error>(())
//! ```

use rayon::prelude::*;

use crate::{Error, Result};

/// Below this many samples, encoding on one thread beats rayon's start-up cost.
const PARALLEL_MIN_SAMPLES: usize = 256;

/// Values per task in whole-array scans: large enough that per-element closures vectorise
/// and rayon's per-task overhead vanishes.
const SCAN_CHUNK: usize = 1 << 14;

/// Below this many values, multi-selection recurses on one thread.
const PARALLEL_SELECT_MIN: usize = 1 << 18;

/// Features gathered together when transposing for per-feature quantiles: 16 `f32`s are one
/// cache line of a sample row, so each row is read once per block rather than once per feature.
const FEATURE_BLOCK: usize = 16;

/// How thresholds are placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderKind {
    /// Evenly spaced between the fit minimum and maximum.
    Thermometer,
    /// Quantiles of the fit data (equal-frequency bins).
    Distributive,
    /// UniformFixedPoint: the binary code of a uniform quantiser's level (see `fixed_point`);
    /// its parameters are `[lo, hi]` per group instead of thresholds.
    FixedPoint,
}

impl EncoderKind {
    const VALID: &'static str =
        "thermometer, distributive (or distributive-thermometer), fixed-point (or uniform-fixed-point)";

    /// Parses a command-line name, ignoring case and surrounding space.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "thermometer" => Ok(Self::Thermometer),
            "distributive" | "distributive-thermometer" => Ok(Self::Distributive),
            "fixed-point" | "uniform-fixed-point" | "uniformfixedpoint" => Ok(Self::FixedPoint),
            _ => Err(Error::invalid(format!(
                "unknown encoder '{s}' (valid: {})",
                Self::VALID
            ))),
        }
    }

    /// The canonical name, as accepted by [`EncoderKind::parse`] and written by serde.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Thermometer => "thermometer",
            Self::Distributive => "distributive",
            Self::FixedPoint => "fixed-point",
        }
    }

    /// Stored parameters per group (feature, or the one global group).
    fn params(&self, num_bits: usize) -> usize {
        match self {
            Self::FixedPoint => 2,
            _ => num_bits,
        }
    }
}

/// A fitted (or yet to be fitted) thermometer encoder.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Encoder {
    pub kind: EncoderKind,
    pub num_bits: usize,
    pub per_feature: bool,
    /// Input width; 0 until fitted.
    pub features: usize,
    /// Per feature: `[features][num_bits]`; global: `[num_bits]`. Empty until fitted.
    pub thresholds: Vec<f32>,
}

impl Encoder {
    /// An unfitted encoder.
    pub fn new(kind: EncoderKind, num_bits: usize, per_feature: bool) -> Result<Self> {
        check_num_bits(kind, num_bits)?;
        Ok(Self {
            kind,
            num_bits,
            per_feature,
            features: 0,
            thresholds: Vec::new(),
        })
    }

    /// Whether `fit` has run (or a fitted encoder was deserialised).
    pub fn is_fitted(&self) -> bool {
        self.features > 0 && !self.thresholds.is_empty()
    }

    /// Fits thresholds on `x`, sample-major `[n][features]`. Refitting replaces the old fit.
    pub fn fit(&mut self, x: &[f32], n: usize, features: usize) -> Result<()> {
        check_num_bits(self.kind, self.num_bits)?;
        if n == 0 {
            return Err(Error::invalid(
                "cannot fit an encoder on zero samples (n must be at least 1)",
            ));
        }
        if features == 0 {
            return Err(Error::invalid("features must be at least 1 (got 0)"));
        }
        check_len("fit data", x.len(), n, features)?;
        // Infinities are refused too: a thermometer spread over an infinite range has NaN or
        // infinite thresholds, which would encode every value the same way.
        if let Some(idx) = first_where(x, |v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "fit data has a non-finite value ({}) at sample {}, feature {}; \
                 NaN and infinities cannot be encoded",
                x[idx],
                idx / features,
                idx % features
            )));
        }

        let k = self.num_bits;
        self.thresholds = match (self.kind, self.per_feature) {
            (EncoderKind::Thermometer, false) => {
                let (lo, hi) = x
                    .par_chunks(SCAN_CHUNK)
                    .map(|c| {
                        c.iter()
                            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                                (lo.min(v), hi.max(v))
                            })
                    })
                    .reduce(
                        || (f32::INFINITY, f32::NEG_INFINITY),
                        |a, b| (a.0.min(b.0), a.1.max(b.1)),
                    );
                even_thresholds(lo, hi, k)
            }
            (EncoderKind::Thermometer, true) => {
                let (lo, hi) = column_min_max(x, features);
                lo.iter()
                    .zip(&hi)
                    .flat_map(|(&lo, &hi)| even_thresholds(lo, hi, k))
                    .collect()
            }
            (EncoderKind::Distributive, false) => quantiles(&mut x.to_vec(), k),
            (EncoderKind::Distributive, true) => column_quantiles(x, n, features, k),
            (EncoderKind::FixedPoint, false) => {
                let (lo, hi) = column_min_max(x, 1);
                vec![lo[0], hi[0]]
            }
            (EncoderKind::FixedPoint, true) => {
                let (lo, hi) = column_min_max(x, features);
                lo.iter().zip(&hi).flat_map(|(&l, &h)| [l, h]).collect()
            }
        };
        self.features = features;
        Ok(())
    }

    /// Bits per encoded sample: `features * num_bits` (0 before fit).
    pub fn output_dim(&self) -> usize {
        self.features * self.num_bits
    }

    /// The parameters applied to `feature` (thermometers: its `num_bits` thresholds;
    /// fixed point: `[lo, hi]`); empty when unfitted or out of range.
    pub fn thresholds_of(&self, feature: usize) -> &[f32] {
        if feature >= self.features {
            return &[];
        }
        let g = self.kind.params(self.num_bits);
        let range = if self.per_feature {
            feature * g..(feature + 1) * g
        } else {
            0..g
        };
        self.thresholds.get(range).unwrap_or(&[])
    }

    /// Encodes `x`, sample-major `[n][features]`, into sample-major `[n][output_dim]` of 0/1.
    pub fn encode(&self, x: &[f32], n: usize) -> Result<Vec<u8>> {
        self.check_fitted()?;
        let features = self.features;
        check_len("encode input", x.len(), n, features)?;
        // Scanned up front so the reported NaN is always the first one, whatever the threads do.
        if let Some(idx) = first_where(x, f32::is_nan) {
            return Err(nan_error(Some(idx / features), idx % features));
        }
        let dim = self.output_dim();
        let mut out = vec![0u8; n * dim];
        if n < PARALLEL_MIN_SAMPLES {
            for (row, bits) in x.chunks_exact(features).zip(out.chunks_exact_mut(dim)) {
                self.encode_row(row, bits);
            }
        } else {
            out.par_chunks_exact_mut(dim)
                .zip(x.par_chunks_exact(features))
                .with_min_len(64)
                .for_each(|(bits, row)| self.encode_row(row, bits));
        }
        Ok(out)
    }

    /// Encodes one sample of `features` values into `out` of length `output_dim`.
    pub fn encode_into(&self, sample: &[f32], out: &mut [u8]) -> Result<()> {
        self.check_fitted()?;
        if sample.len() != self.features {
            return Err(Error::invalid(format!(
                "sample has {} values but the encoder was fitted on {} features",
                sample.len(),
                self.features
            )));
        }
        if out.len() != self.output_dim() {
            return Err(Error::invalid(format!(
                "output buffer has {} slots but the encoding needs {} ({} features x {} bits)",
                out.len(),
                self.output_dim(),
                self.features,
                self.num_bits
            )));
        }
        if let Some(f) = sample.iter().position(|v| v.is_nan()) {
            return Err(nan_error(None, f));
        }
        self.encode_row(sample, out);
        Ok(())
    }

    /// Checks a deserialised encoder: thresholds length matches the shape, none is NaN, and each
    /// feature's thresholds ascend (as every fit produces).
    pub fn validate(&self) -> Result<()> {
        check_num_bits(self.kind, self.num_bits)?;
        let g = self.kind.params(self.num_bits);
        let expected = match (self.features, self.per_feature) {
            (0, _) => 0,
            (f, true) => f * g,
            (_, false) => g,
        };
        if self.thresholds.len() != expected {
            return Err(Error::invalid(format!(
                "encoder has {} thresholds but {} features x {} bits ({}) needs {}",
                self.thresholds.len(),
                self.features,
                self.num_bits,
                if self.per_feature {
                    "per feature"
                } else {
                    "global"
                },
                expected
            )));
        }
        if let Some(i) = self.thresholds.iter().position(|t| t.is_nan()) {
            return Err(Error::invalid(format!("encoder threshold {i} is NaN")));
        }
        for (group, ts) in self.thresholds.chunks(g).enumerate() {
            if let Some(i) = ts.windows(2).position(|w| w[0] > w[1]) {
                return Err(Error::invalid(format!(
                    "encoder thresholds must ascend, but in group {group} threshold {} ({}) \
                     exceeds threshold {} ({})",
                    i,
                    ts[i],
                    i + 1,
                    ts[i + 1]
                )));
            }
        }
        Ok(())
    }

    fn check_fitted(&self) -> Result<()> {
        if self.is_fitted() {
            Ok(())
        } else {
            Err(Error::invalid(
                "encoder is not fitted: call fit on training data before encode",
            ))
        }
    }

    /// Lengths and NaNs are the caller's to check.
    fn encode_row(&self, row: &[f32], out: &mut [u8]) {
        let k = self.num_bits;
        for (f, (&v, bits)) in row.iter().zip(out.chunks_exact_mut(k)).enumerate() {
            let t = self.thresholds_of(f);
            if self.kind == EncoderKind::FixedPoint {
                super::fixed_point::encode(v, t[0], t[1], bits);
            } else {
                for (b, &t) in bits.iter_mut().zip(t) {
                    *b = u8::from(v > t);
                }
            }
        }
    }
}

fn check_num_bits(kind: EncoderKind, num_bits: usize) -> Result<()> {
    let max = super::fixed_point::MAX_BITS;
    if num_bits == 0 {
        Err(Error::invalid("num_bits must be at least 1 (got 0)"))
    } else if kind == EncoderKind::FixedPoint && num_bits > max {
        Err(Error::invalid(format!(
            "fixed-point num_bits {num_bits} is out of range (valid: 1..={max})"
        )))
    } else {
        Ok(())
    }
}

fn check_len(what: &str, len: usize, n: usize, features: usize) -> Result<()> {
    if n.checked_mul(features) == Some(len) {
        return Ok(());
    }
    let hint = if !len.is_multiple_of(features) {
        format!(", and {len} is not a multiple of {features}")
    } else {
        format!(" ({} samples were given)", len / features)
    };
    Err(Error::invalid(format!(
        "{what} has {len} values but {n} samples x {features} features need {}{hint}",
        n.saturating_mul(features)
    )))
}

/// Index of the first value matching `bad`, found in parallel but always the lowest.
fn first_where(x: &[f32], bad: impl Fn(f32) -> bool + Sync) -> Option<usize> {
    // A branch-free fold per chunk vectorises; `any` would stop early but not vectorise.
    let chunk = x
        .par_chunks(SCAN_CHUNK)
        .position_first(|c| c.iter().fold(false, |acc, &v| acc | bad(v)))?;
    let start = chunk * SCAN_CHUNK;
    x[start..].iter().position(|&v| bad(v)).map(|i| start + i)
}

fn nan_error(sample: Option<usize>, feature: usize) -> Error {
    match sample {
        Some(s) => Error::invalid(format!(
            "encode input has NaN at sample {s}, feature {feature}"
        )),
        None => Error::invalid(format!("encode input has NaN at feature {feature}")),
    }
}

/// Computed in f64 so the exact thresholds of small ranges (e.g. 63.75 on [0, 255]) survive.
fn even_thresholds(lo: f32, hi: f32, k: usize) -> Vec<f32> {
    let (lo, span) = (f64::from(lo), f64::from(hi) - f64::from(lo));
    (0..k)
        .map(|i| (lo + span * (i + 1) as f64 / (k + 1) as f64) as f32)
        .collect()
}

/// Per-column minimum and maximum of sample-major `x`.
fn column_min_max(x: &[f32], features: usize) -> (Vec<f32>, Vec<f32>) {
    let init = || {
        (
            vec![f32::INFINITY; features],
            vec![f32::NEG_INFINITY; features],
        )
    };
    x.par_chunks_exact(features)
        .with_min_len(256)
        .fold(init, |(mut lo, mut hi), row| {
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                *l = l.min(v);
                *h = h.max(v);
            }
            (lo, hi)
        })
        .reduce(init, |(mut lo, mut hi), (lo2, hi2)| {
            for ((l, h), (l2, h2)) in lo.iter_mut().zip(hi.iter_mut()).zip(lo2.iter().zip(&hi2)) {
                *l = l.min(*l2);
                *h = h.max(*h2);
            }
            (lo, hi)
        })
}

/// Per-column quantile thresholds, `[features][k]`, parallel over blocks of columns.
fn column_quantiles(x: &[f32], n: usize, features: usize, k: usize) -> Vec<f32> {
    let blocks: Vec<Vec<f32>> = (0..features.div_ceil(FEATURE_BLOCK))
        .into_par_iter()
        .map(|b| {
            let f0 = b * FEATURE_BLOCK;
            let width = FEATURE_BLOCK.min(features - f0);
            // Transpose the block so each column is contiguous for selection.
            let mut cols = vec![0f32; width * n];
            for (r, row) in x.chunks_exact(features).enumerate() {
                for (j, &v) in row[f0..f0 + width].iter().enumerate() {
                    cols[j * n + r] = v;
                }
            }
            cols.chunks_exact_mut(n)
                .flat_map(|col| quantiles(col, k))
                .collect()
        })
        .collect();
    blocks.concat()
}

/// The `k` quantile thresholds of `v` (reordered in place; must hold no NaN).
fn quantiles(v: &mut [f32], k: usize) -> Vec<f32> {
    let n = v.len();
    let pos: Vec<usize> = (0..k)
        .map(|i| {
            // u128 so (i + 1) * n cannot overflow on any input size.
            let p = (i as u128 + 1) * n as u128 / (k as u128 + 1);
            (p as usize).min(n - 1)
        })
        .collect();
    let mut unique = pos.clone();
    unique.dedup();
    let mut values = vec![0f32; unique.len()];
    select_many(v, &unique, 0, &mut values);
    // Positions ascend, so each maps to its rank among the distinct positions.
    let mut rank = 0;
    pos.iter()
        .map(|&p| {
            while unique[rank] != p {
                rank += 1;
            }
            values[rank]
        })
        .collect()
}

/// Writes the order statistics of `v` at the strictly ascending `positions` (offset by `base`,
/// the start of `v` in the original slice) into `out`. Splitting on the middle position keeps
/// the work at O(n log k) rather than the O(n k) of `k` independent selections.
fn select_many(v: &mut [f32], positions: &[usize], base: usize, out: &mut [f32]) {
    if positions.is_empty() {
        return;
    }
    let mid = positions.len() / 2;
    let p = positions[mid] - base;
    let parallel = v.len() >= PARALLEL_SELECT_MIN;
    let (left, pivot, right) = v.select_nth_unstable_by(p, f32::total_cmp);
    out[mid] = *pivot;
    let (out_left, out_rest) = out.split_at_mut(mid);
    let (pos_left, pos_right) = (&positions[..mid], &positions[mid + 1..]);
    let out_right = &mut out_rest[1..];
    // The halves are independent; splitting them only pays on large slices (global fits).
    if parallel {
        rayon::join(
            || select_many(left, pos_left, base, out_left),
            || select_many(right, pos_right, base + p + 1, out_right),
        );
    } else {
        select_many(left, pos_left, base, out_left);
        select_many(right, pos_right, base + p + 1, out_right);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted(kind: EncoderKind, k: usize, per_feature: bool, x: &[f32], f: usize) -> Encoder {
        let mut e = Encoder::new(kind, k, per_feature).unwrap();
        e.fit(x, x.len() / f, f).unwrap();
        e
    }

    fn err_msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn parse_and_name() {
        assert_eq!(
            EncoderKind::parse("thermometer").unwrap(),
            EncoderKind::Thermometer
        );
        assert_eq!(
            EncoderKind::parse("Distributive").unwrap(),
            EncoderKind::Distributive
        );
        assert_eq!(
            EncoderKind::parse("distributive-thermometer").unwrap(),
            EncoderKind::Distributive
        );
        for kind in [EncoderKind::Thermometer, EncoderKind::Distributive] {
            assert_eq!(EncoderKind::parse(kind.name()).unwrap(), kind);
        }
        let msg = err_msg(EncoderKind::parse("gray"));
        assert!(msg.contains("'gray'"), "{msg}");
        assert!(
            msg.contains("thermometer") && msg.contains("distributive"),
            "{msg}"
        );
    }

    #[test]
    fn serde_round_trip_uses_kebab_names() {
        let e = fitted(EncoderKind::Distributive, 2, true, &[1.0, 2.0, 3.0, 4.0], 2);
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"distributive\""), "{json}");
        let back: Encoder = serde_json::from_str(&json).unwrap();
        back.validate().unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn thermometer_global_thresholds() {
        let x = [0.0, 255.0, 100.0, 30.0];
        let e = fitted(EncoderKind::Thermometer, 3, false, &x, 2);
        assert_eq!(e.thresholds, vec![63.75, 127.5, 191.25]);
        assert_eq!(e.thresholds_of(0), e.thresholds_of(1));
        assert_eq!(e.output_dim(), 6);
    }

    #[test]
    fn thermometer_per_feature_thresholds() {
        // feature 0 spans [0, 4], feature 1 spans [-10, 10]
        let x = [0.0, 10.0, 4.0, -10.0, 2.0, 0.0];
        let e = fitted(EncoderKind::Thermometer, 3, true, &x, 2);
        assert_eq!(e.thresholds_of(0), &[1.0, 2.0, 3.0]);
        assert_eq!(e.thresholds_of(1), &[-5.0, 0.0, 5.0]);
        assert!(e.thresholds_of(2).is_empty());
    }

    #[test]
    fn distributive_global_quantiles() {
        // Sorted: 0..=9, n = 10, k = 4: positions floor(10*(i+1)/5) = 2, 4, 6, 8.
        let x = [9.0, 3.0, 7.0, 1.0, 5.0, 0.0, 8.0, 2.0, 6.0, 4.0];
        let e = fitted(EncoderKind::Distributive, 4, false, &x, 2);
        assert_eq!(e.thresholds, vec![2.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn distributive_per_feature_quantiles() {
        // Feature 0: 10, 40, 20, 30 → sorted 10 20 30 40; feature 1: 5, 5, 1, 100.
        // n = 4, k = 3: positions floor(4*(i+1)/4) = 1, 2, 3.
        let x = [10.0, 5.0, 40.0, 5.0, 20.0, 1.0, 30.0, 100.0];
        let e = fitted(EncoderKind::Distributive, 3, true, &x, 2);
        assert_eq!(e.thresholds_of(0), &[20.0, 30.0, 40.0]);
        assert_eq!(e.thresholds_of(1), &[5.0, 5.0, 100.0]);
    }

    #[test]
    fn distributive_positions_clamp_and_repeat() {
        // n = 2, k = 3: positions floor(2*(i+1)/4) = 0, 1, 1.
        let e = fitted(EncoderKind::Distributive, 3, false, &[7.0, 3.0], 1);
        assert_eq!(e.thresholds, vec![3.0, 7.0, 7.0]);
        // n = 1: every position clamps to 0.
        let e = fitted(EncoderKind::Distributive, 5, false, &[2.5], 1);
        assert_eq!(e.thresholds, vec![2.5; 5]);
    }

    #[test]
    fn quantiles_match_a_full_sort() {
        let mut v: Vec<f32> = (0..1001).map(|i| ((i * 7919) % 1009) as f32).collect();
        let mut sorted = v.clone();
        sorted.sort_by(f32::total_cmp);
        for k in [1, 2, 7, 15, 31] {
            let want: Vec<f32> = (0..k)
                .map(|i| sorted[((i + 1) * v.len() / (k + 1)).min(v.len() - 1)])
                .collect();
            assert_eq!(quantiles(&mut v, k), want, "k = {k}");
        }
    }

    #[test]
    fn per_feature_quantiles_span_several_blocks() {
        // 37 features crosses two block boundaries; each column is a shifted ramp.
        let (n, f) = (50, 37);
        let x: Vec<f32> = (0..n * f)
            .map(|i| ((i / f) * 3 % n + i % f) as f32)
            .collect();
        let e = fitted(EncoderKind::Distributive, 4, true, &x, f);
        for feat in 0..f {
            let mut col: Vec<f32> = (0..n).map(|r| x[r * f + feat]).collect();
            col.sort_by(f32::total_cmp);
            let want: Vec<f32> = (0..4).map(|i| col[(i + 1) * n / 5]).collect();
            assert_eq!(e.thresholds_of(feat), &want[..], "feature {feat}");
        }
    }

    #[test]
    fn channel_major_layout() {
        // Feature 0 thresholds 1, 2, 3; feature 1 thresholds -5, 0, 5.
        let x = [0.0, 10.0, 4.0, -10.0];
        let e = fitted(EncoderKind::Thermometer, 3, true, &x, 2);
        let bits = e.encode(&[2.5, -1.0, 0.5, 7.0], 2).unwrap();
        assert_eq!(
            bits,
            vec![
                1, 1, 0, /* f1 */ 1, 0, 0, // sample 0
                0, 0, 0, /* f1 */ 1, 1, 1, // sample 1
            ]
        );
        let mut one = [9u8; 6];
        e.encode_into(&[2.5, -1.0], &mut one).unwrap();
        assert_eq!(&one[..], &bits[..6]);
    }

    #[test]
    fn threshold_equality_is_not_above() {
        let e = fitted(EncoderKind::Thermometer, 3, false, &[0.0, 4.0], 1);
        assert_eq!(
            e.encode(&[1.0, 2.0, 3.0], 3).unwrap(),
            vec![0, 0, 0, 1, 0, 0, 1, 1, 0]
        );
    }

    #[test]
    fn parallel_encode_matches_sequential() {
        let (n, f) = (1000, 5);
        let x: Vec<f32> = (0..n * f).map(|i| ((i * 37) % 101) as f32).collect();
        let e = fitted(EncoderKind::Distributive, 8, true, &x, f);
        let bits = e.encode(&x, n).unwrap();
        let mut row = vec![0u8; e.output_dim()];
        for (s, chunk) in x.chunks(f).enumerate() {
            e.encode_into(chunk, &mut row).unwrap();
            assert_eq!(&bits[s * row.len()..(s + 1) * row.len()], &row[..]);
        }
    }

    #[test]
    fn constant_feature_does_not_panic() {
        for kind in [EncoderKind::Thermometer, EncoderKind::Distributive] {
            for per_feature in [false, true] {
                let e = fitted(kind, 4, per_feature, &[3.0; 6], 2);
                assert!(e.thresholds.iter().all(|&t| t == 3.0), "{kind:?}");
                assert_eq!(e.encode(&[3.0; 6], 3).unwrap(), vec![0; 24]);
                e.validate().unwrap();
            }
        }
    }

    #[test]
    fn zero_bits_is_refused() {
        let msg = err_msg(Encoder::new(EncoderKind::Thermometer, 0, false));
        assert_eq!(msg, "num_bits must be at least 1 (got 0)");
        // Fields are public, so fit re-checks.
        let mut e = Encoder::new(EncoderKind::Thermometer, 2, false).unwrap();
        e.num_bits = 0;
        assert!(err_msg(e.fit(&[1.0], 1, 1)).contains("num_bits"));
    }

    #[test]
    fn encode_before_fit_is_refused() {
        let e = Encoder::new(EncoderKind::Distributive, 2, true).unwrap();
        assert!(!e.is_fitted());
        assert_eq!(e.output_dim(), 0);
        assert!(e.thresholds_of(0).is_empty());
        let msg = err_msg(e.encode(&[1.0], 1));
        assert!(msg.contains("not fitted"), "{msg}");
        let msg = err_msg(e.encode_into(&[1.0], &mut [0u8; 2]));
        assert!(msg.contains("not fitted"), "{msg}");
    }

    #[test]
    fn wrong_width_is_refused() {
        let mut e = Encoder::new(EncoderKind::Thermometer, 2, false).unwrap();
        let msg = err_msg(e.fit(&[1.0, 2.0, 3.0], 2, 2));
        assert!(
            msg.contains("3 values") && msg.contains("not a multiple of 2"),
            "{msg}"
        );

        e.fit(&[1.0, 2.0, 3.0, 4.0], 2, 2).unwrap();
        let msg = err_msg(e.encode(&[1.0, 2.0, 3.0], 1));
        assert!(
            msg.contains("3 values") && msg.contains("not a multiple of 2"),
            "{msg}"
        );
        let msg = err_msg(e.encode(&[1.0, 2.0, 3.0, 4.0], 3));
        assert!(msg.contains("3 samples x 2 features need 6"), "{msg}");
        assert!(msg.contains("(2 samples were given)"), "{msg}");

        let msg = err_msg(e.encode_into(&[1.0], &mut [0u8; 4]));
        assert!(
            msg.contains("1 values") && msg.contains("2 features"),
            "{msg}"
        );
        let msg = err_msg(e.encode_into(&[1.0, 2.0], &mut [0u8; 3]));
        assert!(msg.contains("3 slots") && msg.contains("needs 4"), "{msg}");
    }

    #[test]
    fn nan_is_refused_with_its_position() {
        let mut e = Encoder::new(EncoderKind::Distributive, 2, true).unwrap();
        let msg = err_msg(e.fit(&[1.0, 2.0, 3.0, f32::NAN, 5.0, 6.0], 2, 3));
        assert!(
            msg.contains("NaN") && msg.contains("sample 1, feature 0"),
            "{msg}"
        );
        let msg = err_msg(e.fit(&[1.0, f32::INFINITY], 1, 2));
        assert!(
            msg.contains("inf") && msg.contains("sample 0, feature 1"),
            "{msg}"
        );
        assert!(!e.is_fitted(), "a failed fit leaves the encoder unfitted");

        e.fit(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3).unwrap();
        let msg = err_msg(e.encode(&[1.0, 2.0, 3.0, 4.0, 5.0, f32::NAN], 2));
        assert!(msg.contains("NaN at sample 1, feature 2"), "{msg}");
        let msg = err_msg(e.encode_into(&[1.0, f32::NAN, 3.0], &mut [0u8; 6]));
        assert!(msg.contains("NaN at feature 1"), "{msg}");
        // Infinite inputs encode fine once thresholds exist.
        assert_eq!(
            e.encode(&[f32::INFINITY, f32::NEG_INFINITY, 0.0], 1)
                .unwrap(),
            vec![1, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn zero_samples_or_features_are_refused() {
        let mut e = Encoder::new(EncoderKind::Thermometer, 2, false).unwrap();
        let msg = err_msg(e.fit(&[], 0, 3));
        assert!(msg.contains("zero samples"), "{msg}");
        let msg = err_msg(e.fit(&[], 4, 0));
        assert_eq!(msg, "features must be at least 1 (got 0)");
    }

    #[test]
    fn validate_catches_corrupt_encoders() {
        let good = fitted(EncoderKind::Thermometer, 3, true, &[0.0, 1.0, 4.0, 5.0], 2);
        good.validate().unwrap();
        Encoder::new(EncoderKind::Thermometer, 3, true)
            .unwrap()
            .validate()
            .unwrap();

        let mut e = good.clone();
        e.thresholds.pop();
        let msg = err_msg(e.validate());
        assert!(
            msg.contains("5 thresholds") && msg.contains("needs 6"),
            "{msg}"
        );

        let mut e = good.clone();
        e.per_feature = false;
        let msg = err_msg(e.validate());
        assert!(msg.contains("global") && msg.contains("needs 3"), "{msg}");

        let mut e = good.clone();
        e.thresholds[4] = f32::NAN;
        assert!(err_msg(e.validate()).contains("threshold 4 is NaN"));

        let mut e = good.clone();
        e.thresholds.swap(3, 4);
        let msg = err_msg(e.validate());
        assert!(msg.contains("ascend") && msg.contains("group 1"), "{msg}");

        let mut e = good;
        e.num_bits = 0;
        assert!(err_msg(e.validate()).contains("num_bits"));
    }

    #[test]
    fn fixed_point_codes_levels_per_feature() {
        // Feature 0 spans [0, 3], feature 1 spans [10, 70]; 2 bits → levels 0..=3.
        let x = [0.0, 10.0, 3.0, 70.0];
        let e = fitted(EncoderKind::FixedPoint, 2, true, &x, 2);
        assert_eq!(e.thresholds, vec![0.0, 3.0, 10.0, 70.0]);
        assert_eq!(e.output_dim(), 4);
        e.validate().unwrap();
        // 1.0 → level 1 → 0 1; 50.0 → (40/60)·3 = 2 → 1 0.
        assert_eq!(e.encode(&[1.0, 50.0], 1).unwrap(), vec![0, 1, 1, 0]);
        // Outside the fit range clamps to the end levels.
        assert_eq!(e.encode(&[-9.0, 900.0], 1).unwrap(), vec![0, 0, 1, 1]);

        let g = fitted(EncoderKind::FixedPoint, 3, false, &x, 2);
        assert_eq!(g.thresholds, vec![0.0, 70.0]);
        assert_eq!(g.encode(&[35.0, 70.0], 1).unwrap(), vec![1, 0, 0, 1, 1, 1]);

        let msg = err_msg(Encoder::new(EncoderKind::FixedPoint, 17, false));
        assert!(msg.contains("17") && msg.contains("1..=16"), "{msg}");
        assert_eq!(
            EncoderKind::parse("UniformFixedPoint").unwrap(),
            EncoderKind::FixedPoint
        );
        let mut bad = e;
        bad.thresholds.push(1.0);
        assert!(err_msg(bad.validate()).contains("needs 4"));
    }
}
