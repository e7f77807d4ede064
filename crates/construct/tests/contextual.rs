//! Theorem 2's contextual mapping on generated data: separation, boundedness, the three policies, the
//! causal variant, and Theorem 2's δ formula.

#![allow(clippy::unwrap_used)]

use boltz_construct::one_layer::contextual::log10_delta_theory;
use boltz_construct::{ContextualMapping, ContextualOptions, Policy};
use boltz_core::{Batch, Dataset, DatasetSpec, Error};

fn data(sequences: usize, length: usize, dim: usize, vocab: usize, seed: u64) -> Dataset<f64> {
    Dataset::generate(&DatasetSpec { sequences, length, dim, vocab, seed, ..Default::default() }).unwrap()
}

fn opts(policy: Policy) -> ContextualOptions {
    ContextualOptions { policy, candidates: 500, threads: 2, ..Default::default() }
}

#[test]
fn measured_policy_is_a_contextual_mapping_and_f64_collapses() {
    let ds = data(40, 4, 3, 8, 1);
    let cm = ContextualMapping::build(&ds.inputs, &opts(Policy::Measured)).unwrap();
    let r = &cm.report;
    assert!(r.is_contextual_mapping);
    assert_eq!(r.separation_bigfloat.contexts, 40 * 4);
    assert_eq!(r.separation_bigfloat.collisions, 0);
    // Lemma 1's gap condition holds with equality by the choice of λ.
    assert!((r.lemma1_gap_achieved / r.lemma1_gap_required - 1.0).abs() < 1e-12);
    assert!(r.max_norm <= r.r);
    // Measured separation: far above Theorem 2's worst case, below Lemma 1's bound times the output scale.
    assert!(r.separation_bigfloat.min_gap_log10 > r.log10_delta_theory);
    assert!(r.separation_bigfloat.min_gap_log10 < -100.0, "{}", r.separation_bigfloat.min_gap_log10);
    // f64 cannot hold these ids apart.
    assert!(r.separation_f64.collisions > 0, "{:?}", r.separation_f64);
    // The report serialises for the harness.
    let json = serde_json::to_string(r).unwrap();
    assert!(json.contains("\"policy\":\"measured\""));
}

#[test]
fn theory_policy_uses_the_papers_constants() {
    let ds = data(3, 2, 1, 3, 4);
    let cm = ContextualMapping::build(&ds.inputs, &opts(Policy::Theory)).unwrap();
    let r = &cm.report;
    let c = r.c_projection_lemma;
    assert!((c - (8.0 / std::f64::consts::PI).sqrt() / 16.0).abs() < 1e-15);
    let expected = (2.0 * 2f64.ln() + 3.0) / (c * c * r.data.eps * r.data.r_min);
    assert!((r.lambda / expected - 1.0).abs() < 1e-12);
    assert!(r.is_contextual_mapping, "{}", serde_json::to_string_pretty(r).unwrap());
    assert!(r.projection.g >= c * r.data.eps && r.projection.m >= c * r.data.r_min);
    // Too large for the precision budget → a clear error, not a hang.
    let err =
        ContextualMapping::build(&data(20, 4, 2, 8, 4).inputs, &ContextualOptions { max_bits: 4096, ..opts(Policy::Theory) }).unwrap_err();
    assert!(matches!(err, Error::Infeasible(ref m) if m.contains("max_bits")), "{err}");
}

#[test]
fn theorem2_delta_matches_the_table_of_paper_md() {
    assert!((log10_delta_theory(2, 2, 1, 1.0, 1.0, 1.0) + 124.0).abs() < 1.0);
    assert!((log10_delta_theory(4, 4, 2, 1.0, 1.0, 1.0) + 2465.0).abs() < 5.0);
    assert!((log10_delta_theory(10, 10, 16, 1.0, 1.0, 2.0) / -2.4e6 - 1.0).abs() < 0.05);
}

/// `{1..6}` choose 3 in d = 1: `{1,2,5}` and `{1,3,4}` share token 1 and have equal sums.
fn lattice_triples() -> Batch<f64> {
    let mut v = Vec::new();
    for a in 1..=6 {
        for b in a + 1..=6 {
            for c in b + 1..=6 {
                v.push([a as f64, b as f64, c as f64]);
            }
        }
    }
    Batch::new(v.len(), 3, 1, v.iter().flatten().copied().collect()).unwrap()
}

#[test]
fn mean_pooling_separates_generic_data_and_fails_on_equal_sums() {
    let ds = data(40, 4, 3, 8, 1);
    let measured = ContextualMapping::build(&ds.inputs, &opts(Policy::Measured)).unwrap().report;
    let mean = ContextualMapping::build(&ds.inputs, &opts(Policy::MeanPool)).unwrap().report;
    assert_eq!(mean.lambda, 0.0);
    assert_eq!(mean.policy.name(), "mean-pool");
    assert!(mean.is_contextual_mapping && mean.bits < measured.bits);
    let err = ContextualMapping::build(&lattice_triples(), &opts(Policy::MeanPool)).unwrap_err();
    assert!(matches!(err, Error::Infeasible(_)) && err.to_string().contains("mean pooling"), "{err}");
}

#[test]
fn tuned_and_fewest_bits_use_softmax_with_positive_lambda() {
    let x = lattice_triples();
    let tuned = ContextualMapping::build(&x, &opts(Policy::Tuned)).unwrap().report;
    assert!(tuned.lambda > 0.0 && tuned.lambda <= tuned.lambda_unshrunk, "{tuned:?}");
    assert!(tuned.is_contextual_mapping);
    let fewest = ContextualMapping::build(&x, &opts(Policy::FewestBits)).unwrap().report;
    assert!(fewest.lambda > 0.0 && fewest.is_contextual_mapping, "{fewest:?}");
    // The ranking is sorted, and the chosen λ is the best-ranked candidate.
    let s = &fewest.lambda_search;
    assert!(s.len() >= 5, "{s:?}");
    assert_eq!(s[0].lambda, fewest.lambda);
    let ranked: Vec<f64> = s.iter().filter_map(|c| c.resolve_bits).collect();
    assert!(ranked.windows(2).all(|w| w[0] <= w[1]), "{ranked:?}");
    // On generic data the search still keeps λ > 0.
    let ds = data(30, 4, 3, 8, 2);
    let generic = ContextualMapping::build(&ds.inputs, &opts(Policy::FewestBits)).unwrap().report;
    assert!(generic.lambda > 0.0 && generic.is_contextual_mapping);
    assert!("fewest-bits".parse::<Policy>().unwrap() == Policy::FewestBits && "hardmax".parse::<Policy>().is_err());
}

#[test]
fn causal_mask_separates_prefixes() {
    // Tokens a, b, c, d in R^2; seq 0 and 2 share the prefix set {a, b, c} at position 2 (in another
    // order), seq 0 and 1 differ in the prefix seen by d.
    let t = [[1.0, 0.2], [0.3, 1.1], [-1.2, 0.4], [0.5, -1.4]];
    let seqs = [[0, 1, 2, 3], [0, 1, 3, 2], [1, 0, 2, 3]];
    let data: Vec<f64> = seqs.iter().flat_map(|s| s.iter().flat_map(|&i| t[i])).collect();
    let x = Batch::new(3, 4, 2, data).unwrap();
    let cm = ContextualMapping::build(&x, &ContextualOptions { causal: true, ..opts(Policy::Measured) }).unwrap();
    let r = &cm.report;
    assert!(r.causal && r.is_contextual_mapping);
    // Distinct (token, prefix set) keys: 4 + 2 (d sees {a,b,d}; c sees {a,b,c,d}) + 2 (b first, a second).
    assert_eq!(r.separation_bigfloat.contexts, 8);
    assert_eq!(r.separation_bigfloat.collisions, 0);
    // Same key, permuted prefix: ids agree to rounding (far below the separation).
    assert!(r.separation_bigfloat.max_within_log10 < r.separation_bigfloat.min_gap_log10 - 20.0);
    let pos = |b: usize, k: usize| cm.projected[b * 4 + k].clone();
    assert_eq!(pos(0, 0), pos(1, 0));
    assert_eq!(pos(0, 1), pos(1, 1));
    assert!(pos(0, 3) != pos(1, 2));
}

#[test]
fn repeated_tokens_are_rejected() {
    let x = Batch::new(1, 3, 1, vec![1.0, 2.0, 1.0]).unwrap();
    let err = ContextualMapping::build(&x, &opts(Policy::Measured)).unwrap_err();
    assert!(matches!(err, Error::DuplicateToken { sequence: 0, first: 0, second: 2 }), "{err}");
}
