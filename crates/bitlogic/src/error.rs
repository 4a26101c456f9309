//! One error type for the library: every message names the bad value and, where there is a
//! fixed set, the valid choices.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting or argument outside its valid range.
    #[error("{0}")]
    Invalid(String),
    /// The file system refused an operation on `path`. (The I/O error is part of the message,
    /// not a separate cause, so one-line reports do not repeat it.)
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// A file was read but its contents are not what they claim to be.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err,
        }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
