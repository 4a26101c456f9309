//! Reading data sets (IDX, CSV) and reading/writing model files.

pub mod augment;
pub mod csv;
pub mod dataset;
pub mod idx;
pub mod model_file;

pub use dataset::Dataset;
