//! Theorem 2's contextual mapping on generated data: separation, boundedness, policies, causal prefixes.

#![allow(clippy::unwrap_used)]

use boltz_construct::{ContextualMapping, ContextualOptions, Policy};
use boltz_core::{Dataset, DatasetSpec};

fn data(sequences: usize, length: usize, dim: usize, vocab: usize, seed: u64) -> Dataset<f64> {
    Dataset::generate(&DatasetSpec { sequences, length, dim, vocab, seed, ..Default::default() }).unwrap()
}

#[test]
fn measured_policy_is_a_contextual_mapping_and_f64_collapses() {
    let ds = data(40, 4, 3, 8, 1);
    let cm = ContextualMapping::build(&ds.inputs, &ContextualOptions { candidates: 500, ..Default::default() }).unwrap();
    let r = &cm.report;
    eprintln!("{}", serde_json::to_string_pretty(r).unwrap());
    assert!(r.is_contextual_mapping);
    assert_eq!(r.separation_bigfloat.contexts, 40 * 4);
    assert_eq!(r.separation_bigfloat.collisions, 0);
    assert!(r.lemma1_gap_achieved >= r.lemma1_gap_required * (1.0 - 1e-12));
    assert!(r.max_norm < r.r);
    assert!(r.separation_bigfloat.min_gap_log10 > r.log10_delta_theory, "measured separation is above the worst case");
}
