//! Corollary 1: the one-layer memorizer memorizes exactly in arbitrary precision; f64/f32 results are
//! measured, not assumed; the fewest bits are found by bisection.

#![allow(clippy::unwrap_used)]

use boltz_construct::{ContextualOptions, Memorizer, Policy};
use boltz_core::{Dataset, DatasetSpec, ReferenceBackend};

fn data(sequences: usize, length: usize, dim: usize, vocab: usize, seed: u64) -> Dataset<f64> {
    Dataset::generate(&DatasetSpec { sequences, length, dim, vocab, seed, classes: 3, ..Default::default() }).unwrap()
}

#[test]
fn memorizes_exactly_in_arbitrary_precision() {
    let ds = data(60, 4, 3, 10, 2);
    let m = Memorizer::build(&ds, &ContextualOptions { candidates: 500, ..Default::default() }).unwrap();
    let r = &m.report;
    eprintln!("bits {} ids {} params {:?} paper {} slope 1e{:.0} build {:.2}s verify {:.2}s mem {:?}", r.build_bits, r.ids, r.params, r.paper_params, r.log10_max_slope, r.build_seconds, r.verify_seconds, r.memorization);
    assert!(r.memorization.is_perfect(), "{:?}", r.memorization);
    assert_eq!(r.ids, 60 * 4);
    assert_eq!(r.hidden, 60 * 4);
    assert!(r.memorization.max_abs_error < 1e-6);
    let f64_acc = m.in_precision::<f64, _>(&ds, &ReferenceBackend);
    eprintln!("f64: {f64_acc:?}");
    let search = m.fewest_bits(&ds, 24, r.build_bits, 2).unwrap();
    eprintln!("fewest bits {:?} probes {}", search.fewest, search.probes.len());
    assert!(search.fewest.unwrap() > 53);
}

#[test]
fn thousand_sequences_in_seconds() {
    let ds = data(1000, 8, 4, 16, 3);
    for policy in [Policy::Measured, Policy::Tuned] {
        let t = std::time::Instant::now();
        let m = Memorizer::build(&ds, &ContextualOptions { policy, candidates: 2000, ..Default::default() }).unwrap();
        let r = &m.report;
        eprintln!("{policy:?}: bits {} r_a {:.1} lambda {:.3e} build {:.2}s verify {:.2}s total {:.2}s mem {:?}", r.build_bits, r.contextual.r_a, r.contextual.lambda, r.build_seconds, r.verify_seconds, t.elapsed().as_secs_f64(), r.memorization);
        assert!(r.memorization.is_perfect());
    }
}
