//! The test tree's construction: the one-layer rank-1 memorizer (Corollary 1) with the *first* random
//! direction drawn, no search among candidates (the paper's construction with `v` taken as it comes, λ from
//! Lemma 1 on the measured gaps). It is small on purpose: it shows the path every new construction takes,
//! this file plus one entry in `crate::construction::REGISTRY`, and the CLI's tests run it through
//! `boltz memorize`, a suite configuration, its rows and its charts. Compiled into test builds only
//! (feature `test-construction`).

use crate::extension::{Extension, ExtensionBuilt, ExtensionOptions};
use crate::one_layer::contextual::{ContextualOptions, Policy};
use crate::one_layer::memorizer::Memorizer;

/// The registry's handle on this construction.
pub static FIRST_DIRECTION: Extension = Extension { build };

/// Builds the memorizer with one direction candidate and verifies it at its build bits.
fn build(data: &boltz_core::Dataset<f64>, opts: ExtensionOptions) -> boltz_core::Result<ExtensionBuilt> {
    let options =
        ContextualOptions { policy: Policy::Measured, candidates: 1, seed: opts.seed, threads: opts.threads, ..Default::default() };
    let m = Memorizer::build(data, &options)?;
    let r = &m.report;
    let summary = vec![
        format!("  test construction: the first random direction, λ = {:.3e} (Lemma 1 on its gaps)", r.contextual.lambda),
        format!("  {} distinct context ids, FFN width {}", r.ids, r.hidden),
    ];
    let report = serde_json::json!({
        "construction": "test-first-direction",
        "lambda": r.contextual.lambda,
        "ids": r.ids,
        "build_seconds": r.build_seconds,
        "verify_seconds": r.verify_seconds,
    });
    Ok(ExtensionBuilt { bits: r.build_bits, exact: r.memorization.clone(), report, summary, model: m.model })
}
