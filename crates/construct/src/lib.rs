//! # boltz-construct
//!
//! The constructions of Kajitsuka & Sato (ICLR 2024, arXiv 2307.14023) as plain [`boltz_core::Model`]s that
//! any backend runs, each with a serialisable report of its constants:
//!
//! * [`one_layer`], Kajitsuka & Sato's one-layer results:
//!   [`boltzmann`](one_layer::boltzmann) (the Boltzmann operator and a measured check of Lemma 1),
//!   [`contextual`](one_layer::contextual) (Theorem 2's rank-1 contextual mapping and its policies),
//!   [`memorizer`](one_layer::memorizer) (Corollary 1's one-layer memorizer: contextual mapping +
//!   interpolating ReLU FFN), [`approximator`](one_layer::approximator) (Proposition 1's FF∘SA∘FF universal
//!   approximator), [`hardmax`](one_layer::hardmax) (a demonstration of Theorem 1: one hardmax layer cannot
//!   separate contexts);
//! * [`deep`], the deep baselines: [`yun`](deep::yun) (Yun et al.'s selective-shift construction as an
//!   executable, exactly verified model, with its grid and layer formulas), [`kim`](deep::kim) (Kim et al.'s
//!   reference curve), [`bit_extraction`](deep::bit_extraction) (the parameter-optimal Transformer
//!   memorizer of Kim, Kim & Mozafari 2023 and Kajitsuka & Sato 2025: one averaging attention layer and
//!   Vardi et al.'s bit-extraction ReLU stack, Õ(√(nN)) parameters, made of exact ReLU gadgets);
//! * [`construction`]: the one vocabulary of constructions ([`Construction`] and its registry);
//! * [`verify`]: running a built model on any backend, and the fewest-bits search
//!   ([`verify::fewest_bits_to_memorize`] with [`verify::BitsSearchParams`]).
//!
//! Constructions build their weights in arbitrary precision ([`boltz_bigfloat::BigReal`]): the constants
//! the paper needs do not fit f64 (Theorem 2's worst-case δ is about 10^-124 already for n = |V| = 2). Convert with `model.convert::<f64>()`
//! to run them in f64 or f32 — and to see them fail there.
//!
//! ## What was checked of the INFERRED parts of `docs/theory.md` (§2–§4)
//!
//! * Lemma 1's bound `(ln n)² e^{−2r}` under gaps `> 2 ln n + 3`: property test over random families
//!   (`one_layer::boltzmann::tests::lemma1_holds_on_random_families`), measured margin reported by
//!   [`one_layer::boltzmann::check_lemma1`].
//! * Theorem 2's construction (`W_K = W_V = vᵀ`, `W_Q = λvᵀ`, `λ = (2 ln n + 3)/(g m)`): the measured
//!   separation of distinct contexts is positive and the ids are bounded by `r = r_max + ε/4` on every
//!   tested dataset (`tests/contextual.rs`, `tests/memorizer.rs`); Theorem 2's δ formula is reported in log10 next to it.
//! * Corollary 1: exact memorization in arbitrary precision; the parameter count is reported next to the
//!   paper's `4(s+d) + d(2nN+d)`.

pub mod construction;
pub mod deep;
pub mod extension;
pub mod one_layer;
#[cfg(feature = "suite")]
pub mod suite;
pub mod verify;

/// The test tree's construction (`tests/support/first_direction.rs`), compiled into test builds: it shows
/// that a construction added by its own file and one registry entry reaches the CLI, the suite and the charts.
#[cfg(feature = "test-construction")]
#[path = "../tests/support/first_direction.rs"]
pub mod test_construction;

pub use construction::{Construction, ConstructionKind, Family};
pub use extension::{Extension, ExtensionBuilt, ExtensionOptions};

pub use one_layer::contextual::{ContextReport, ContextualMapping, ContextualOptions, LambdaCandidate, Policy, Projection, Separation};
pub use one_layer::memorizer::{Memorizer, MemorizerReport};
