//! Corollary 1: the one-layer memorizer memorizes exactly in arbitrary precision; f64/f32 results are
//! measured, not assumed; the fewest bits are found by bisection.

#![allow(clippy::unwrap_used)]

use boltz_bigfloat::{BigFloatBackend, BigReal};
use boltz_construct::{ContextualOptions, Memorizer, Policy};
use boltz_core::{Backend, Batch, Dataset, DatasetSpec, Memorization, Real, ReferenceBackend};

fn data(sequences: usize, length: usize, dim: usize, vocab: usize, seed: u64) -> Dataset<f64> {
    Dataset::generate(&DatasetSpec { sequences, length, dim, vocab, seed, classes: 3, ..Default::default() }).unwrap()
}

#[test]
fn memorizes_exactly_in_arbitrary_precision() {
    let ds = data(60, 4, 3, 10, 2);
    let m = Memorizer::build(&ds, &ContextualOptions { candidates: 500, ..Default::default() }).unwrap();
    let r = &m.report;
    eprintln!(
        "bits {} ids {} params {:?} paper {} slope 1e{:.0} build {:.2}s verify {:.2}s mem {:?}",
        r.build_bits, r.ids, r.params, r.paper_params, r.log10_max_slope, r.build_seconds, r.verify_seconds, r.memorization
    );
    assert!(r.memorization.is_perfect(), "{:?}", r.memorization);
    assert_eq!(r.ids, 60 * 4);
    assert_eq!(r.hidden, 60 * 4);
    assert!(r.memorization.max_abs_error < 1e-6);
    let f64_acc = m.in_precision::<f64, _>(&ds, &ReferenceBackend);
    eprintln!("f64: {f64_acc:?}");
    let search = m.fewest_bits(&ds, &boltz_construct::verify::BitsSearchParams::default().bits(24, r.build_bits).threads(2)).unwrap();
    eprintln!("fewest bits {:?} probes {}", search.fewest, search.probes.len());
    assert!(search.fewest.unwrap() > 53);
}

#[test]
fn memorizes_across_sizes_with_f64_and_f32_measured() {
    // (N, n, d, |V>, policy): Measured where its precision is affordable, mean pooling for long sequences.
    let configs = [
        (1000, 8, 4, 16, Policy::Measured),
        (1000, 8, 4, 16, Policy::MeanPool),
        (200, 4, 2, 12, Policy::Measured),
        (100, 6, 16, 12, Policy::Measured),
        (100, 16, 8, 24, Policy::MeanPool),
    ];
    for (big_n, n, d, v, policy) in configs {
        let ds = data(big_n, n, d, v, 3);
        let t = std::time::Instant::now();
        let m = Memorizer::build(&ds, &ContextualOptions { policy, candidates: 1000, threads: 2, ..Default::default() }).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let r = &m.report;
        let f64_mem = m.in_precision::<f64, _>(&ds, &ReferenceBackend).map(|m| m.accuracy);
        let f32_mem = m.in_precision::<f32, _>(&ds, &ReferenceBackend).map(|m| m.accuracy);
        eprintln!(
            "N={big_n} n={n} d={d} |V|={v} {policy:?}: {:.2}s, {} bits, λ={:.3e}, exact={} f64={f64_mem:?} f32={f32_mem:?}",
            secs,
            r.build_bits,
            r.contextual.lambda,
            r.memorization.is_perfect()
        );
        assert!(r.memorization.is_perfect(), "{:?}", r.memorization);
        assert_eq!(r.ids, big_n * n);
    }
}

/// Prouhet–Tarry–Escott data: mean pooling collides, the fewest-bits softmax (λ > 0) memorizes exactly and
/// needs far fewer bits than the Measured constants; its reported fewest bits are re-checked by fresh runs
/// at that precision and one bit below.
#[test]
fn fewest_bits_policy_memorizes_adversarial_data_with_few_bits() {
    use boltz_bigfloat::BigFloatBackend;
    use boltz_core::{Backend, Batch, Memorization, VocabKind};
    let spec =
        DatasetSpec { sequences: 12, length: 6, dim: 1, vocab: 12, seed: 5, classes: 2, vocab_kind: VocabKind::Pte, ..Default::default() };
    let ds = Dataset::<f64>::generate(&spec).unwrap();
    let opts = |policy| ContextualOptions { policy, seed: 5, candidates: 300, threads: 2, ..Default::default() };
    let err = Memorizer::build(&ds, &opts(Policy::MeanPool)).unwrap_err();
    assert!(err.to_string().contains("mean pooling"), "{err}");
    let fewest = Memorizer::build(&ds, &opts(Policy::FewestBits)).unwrap();
    let r = &fewest.report;
    assert!(r.memorization.is_perfect() && r.contextual.lambda > 0.0, "{r:?}");
    let search = r.fewest_bits.clone().unwrap();
    let f = search.fewest.unwrap();
    // The chosen candidate is the verified one that needs fewest bits.
    let verified: Vec<u64> = r.contextual.lambda_search.iter().filter_map(|c| c.fewest_bits).collect();
    assert_eq!(verified.iter().min(), Some(&f), "{:?}", r.contextual.lambda_search);
    let measured = Memorizer::build(&ds, &opts(Policy::Measured)).unwrap();
    let m_bits = measured
        .fewest_bits(&ds, &boltz_construct::verify::BitsSearchParams::default().bits(8, measured.report.build_bits).threads(2))
        .unwrap()
        .fewest
        .unwrap();
    assert!(4 * f < m_bits, "fewest-bits {f} vs measured {m_bits}");
    let x: Batch<BigReal> = ds.inputs.convert().unwrap();
    let y: Batch<BigReal> = ds.targets.convert().unwrap();
    let at = |bits: u64| {
        let out = BigFloatBackend::with_threads(bits, 2).unwrap().run(&fewest.model, &x).unwrap();
        Memorization::measure(&out, &y).unwrap().is_perfect()
    };
    assert!(at(f), "not exact at its fewest bits {f}");
    assert!(!at(f - 1), "exact at {} bits, below the reported fewest {f}", f - 1);
}

/// Issue #18: the paper's worst-case constants (the Theory policy) at n = |V| = 2 run at about 4·10⁶ bits —
/// one forward at 2²² = 4 194 304 bits completes, every output carries that precision, and the model still
/// memorizes (a few seconds: each of the exps costs ~0.6 s at this precision).
#[test]
fn theory_policy_forward_at_four_million_bits() {
    let spec = DatasetSpec { sequences: 1, length: 2, dim: 1, vocab: 2, ..Default::default() };
    let data = Dataset::<f64>::generate(&spec).expect("dataset");
    let m = Memorizer::build(&data, &ContextualOptions { policy: Policy::Theory, threads: 1, ..Default::default() }).expect("build");
    let bits = 1u64 << 22;
    let backend = BigFloatBackend::with_threads(bits, 1).expect("backend");
    let x: Batch<BigReal> = data.inputs.convert().expect("inputs");
    let y: Batch<BigReal> = data.targets.convert().expect("targets");
    let out = backend.run(&m.model, &x).expect("forward at 4 194 304 bits");
    assert!(out.as_slice().iter().all(|v| v.bits() == bits && v.is_finite()));
    assert!(Memorization::measure(&out, &y).expect("measure").is_perfect());
}
