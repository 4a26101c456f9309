//! An in-memory labelled data set: real-valued features, sample-major.

/// `x` holds `n` samples of `features` values each, sample-major (`x[s * features + f]`);
/// `y[s]` is the class of sample `s`, in `0..classes`.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub n: usize,
    pub features: usize,
    pub classes: usize,
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    /// `(height, width)` when the samples are single-channel images (row-major).
    pub image_shape: Option<(usize, usize)>,
}

impl Dataset {
    /// The first `n` samples (or all, when there are fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.n);
        Dataset {
            n,
            features: self.features,
            classes: self.classes,
            x: self.x[..n * self.features].to_vec(),
            y: self.y[..n].to_vec(),
            image_shape: self.image_shape,
        }
    }

    pub fn sample(&self, s: usize) -> &[f32] {
        &self.x[s * self.features..(s + 1) * self.features]
    }
}
