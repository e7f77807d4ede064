//! The one error type of the library crates.

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in building, validating, running, reading or writing models and data.
///
/// Every variant names the offending tensor, index or field, so that the message says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor has the wrong shape (`tensor` uses the file-format names, e.g. `blocks.0.attn.1.w_k`).
    #[error("shape mismatch in {tensor}: expected {expected}, found {found}")]
    ShapeMismatch {
        /// The tensor, by its file-format name.
        tensor: String,
        /// The shape it should have.
        expected: String,
        /// The shape it has.
        found: String,
    },

    /// A NaN or infinity in an input, a weight, or a result.
    #[error("non-finite value (NaN or inf) at {location}")]
    NonFinite {
        /// Where: a tensor and index, or a stage of a forward.
        location: String,
    },

    /// A forward produced a non-finite value although the inputs and weights were finite.
    #[error("numeric overflow: {location} produced a non-finite value; the model's weights or inputs are too large for {dtype}")]
    Overflow {
        /// The stage of the forward that overflowed.
        location: String,
        /// The element type (`f32`, `f64`, …).
        dtype: &'static str,
    },

    /// A batch with no sequences.
    #[error("empty batch: at least one sequence is needed")]
    EmptyBatch,

    /// A sequence of length zero, or tokens of dimension zero.
    #[error("zero-sized {what}: sequences need n ≥ 1 tokens of dimension d ≥ 1")]
    ZeroSize {
        /// What is empty (`sequence length`, `token dimension`, …).
        what: &'static str,
    },

    /// The same token twice in one sequence, where a construction or theorem forbids it.
    #[error("duplicate token in sequence {sequence}: positions {first} and {second} hold the same token")]
    DuplicateToken {
        /// Index of the sequence.
        sequence: usize,
        /// First position holding the token.
        first: usize,
        /// Second position holding the same token.
        second: usize,
    },

    /// Two sequences that are permutations of each other where distinct contexts are required.
    #[error("sequences {first} and {second} are permutations of each other")]
    PermutedDuplicate {
        /// Index of the first sequence.
        first: usize,
        /// Index of the sequence that permutes it.
        second: usize,
    },

    /// Targets that are not consistent under a permutation of the same input sequence.
    #[error("targets of sequences {first} and {second} disagree although the inputs are permutations of each other")]
    InconsistentTargets {
        /// Index of the first sequence.
        first: usize,
        /// Index of the sequence that permutes it with other targets.
        second: usize,
    },

    /// Data that violates a quantitative assumption (separation, norm bounds, ...).
    #[error("assumption violated: {what} (required {required}, measured {measured})")]
    Assumption {
        /// The assumption.
        what: String,
        /// What it requires.
        required: String,
        /// What the data has.
        measured: String,
    },

    /// A parameter outside its valid range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter (a CLI flag, config field or tensor name).
        name: String,
        /// Why its value is refused, with the valid range.
        reason: String,
    },

    /// A request that cannot be met (e.g. more distinct sequences than the vocabulary allows).
    #[error("infeasible: {0}")]
    Infeasible(String),

    /// A value that cannot be stored exactly in the requested format.
    #[error("value {index} of {tensor} is not exactly representable as {dtype}; use the exact JSON format or allow rounding")]
    Inexact {
        /// The tensor, by its file-format name.
        tensor: String,
        /// Flat index of the value.
        index: usize,
        /// The format it does not fit exactly.
        dtype: &'static str,
    },

    /// A malformed file or text encoding.
    #[error("format error: {0}")]
    Format(String),

    /// The backend has no device to run on (no driver, no GPU, library missing).
    #[error("backend {backend} has no device: {reason}")]
    NoDevice {
        /// The backend (`cuda`, …).
        backend: &'static str,
        /// What is missing (a library, a driver, a device).
        reason: String,
    },

    /// An error reported by a backend's driver or library.
    #[error("backend {backend} failed in {op}: {message}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// The operation that failed (`nvrtc compile`, `upload`, …).
        op: &'static str,
        /// The driver's or library's message.
        message: String,
    },

    /// The computation was stopped from outside at one of its safe points ([`crate::watch`]: Python's
    /// Ctrl-C); it wrote nothing half.
    #[error("interrupted")]
    Interrupted,

    /// File-system errors, with the path (the operating system's error is part of the message, not a
    /// separate cause, so an error chain prints it once).
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error (or why the file was refused).
        cause: std::io::Error,
    },
}

impl Error {
    pub(crate) fn shape(tensor: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Self {
        Self::ShapeMismatch { tensor: tensor.into(), expected: expected.into(), found: found.into() }
    }

    pub(crate) fn param(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter { name: name.into(), reason: reason.into() }
    }
}
