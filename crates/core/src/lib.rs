//! # boltz-core
//!
//! Model types, the [`Backend`] trait, datasets, errors, file formats and the reference forward of
//! **boltzformer**, a benchmark suite for Kajitsuka & Sato, *Are Transformers with One Layer
//! Self-Attention Using Low-Rank Weight Matrices Universal Approximators?* (ICLR 2024, arXiv 2307.14023).
//!
//! * [`model`]: a [`Model`] is a validated stack of [`Block`]s (softmax/hardmax attention with heads,
//!   rank-r factored or dense weights, query bias, causal mask; ReLU feed-forward; residuals), generic over
//!   the element type ([`Real`]: `f32`, `f64`, arbitrary-precision floats).
//! * [`backend`]: the one [`Backend`] trait; [`reference`](mod@reference): the oracle forward.
//! * [`dataset`]: seeded tokenwise-separated data and its validation.
//! * [`format`](mod@format): safetensors files and the exact (any-precision) JSON encoding; see `docs/format.md`.
//! * `conformance` (feature `conformance`): the test suite every backend instantiates.

pub mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod dataset;
pub mod error;
pub mod exact;
pub mod fixtures;
pub mod format;
pub mod model;
pub mod named;
pub mod npy;
pub mod real;
pub mod reference;
pub mod rng;
pub mod skeleton;
pub mod tensor;
pub mod threads;
pub mod watch;
pub mod workloads;

pub use backend::{check_input, Backend, DeviceInfo};
pub use dataset::{decodes, DataReport, Dataset, DatasetSpec, Memorization, Requirements, VocabKind, Vocabulary};
pub use error::{Error, Result};
pub use exact::{ExactConvert, ExactFloat};
pub use model::{AttentionHead, FeedForward, LayerCount, Model, ModelAttention, ModelBlock, ModelInfo, Normalizer, ParamCount, Weight};
pub use named::{Named, UnknownName};
pub use real::{Float, Real};
pub use reference::{ForwardTrace, ReferenceBackend};
pub use skeleton::{Attention, Block, Site, Stack};
pub use tensor::{Batch, Matrix};
