//! The certified probe of the fewest-bits search (`BigFloatBackend::decodes_all`) gives the faithful
//! forward's verdict at every precision: checked against a full faithful forward plus
//! `Memorization::measure`, on memorizers of several policies, at every precision of a window around their
//! fewest bits and at a few far above and below. The walk must also decide almost every token of the
//! probes that hold, the fewest bits included (otherwise it would only be the faithful forward again).

#![allow(clippy::unwrap_used)]

use boltz_bigfloat::{BigFloatBackend, BigReal};
use boltz_construct::verify::{fewest_bits_to_memorize, BitsSearchParams};
use boltz_construct::{ContextualOptions, Memorizer, Policy};
use boltz_core::{Backend, Batch, Dataset, DatasetSpec, Memorization};

fn faithful_holds(m: &Memorizer, x: &Batch<BigReal>, y: &Batch<BigReal>, bits: u64) -> bool {
    let out = BigFloatBackend::with_threads(bits, 2).unwrap().run(&m.model, x).unwrap();
    Memorization::measure(&out, y).unwrap().is_perfect()
}

#[test]
fn certified_verdicts_equal_the_faithful_forward_at_every_precision() {
    let cases = [
        (Policy::Measured, 40, 6, 4, 16, 1),
        (Policy::Measured, 30, 8, 4, 16, 2),
        (Policy::FewestBits, 60, 8, 4, 16, 3),
        (Policy::MeanPool, 40, 8, 4, 16, 4),
    ];
    for (policy, sequences, length, dim, vocab, seed) in cases {
        let data = Dataset::<f64>::generate(&DatasetSpec { sequences, length, dim, vocab, seed, ..Default::default() }).unwrap();
        let m = Memorizer::build(&data, &ContextualOptions { policy, threads: 2, verify_top: 0, ..Default::default() }).unwrap();
        let x: Batch<BigReal> = data.inputs.convert().unwrap();
        let y: Batch<BigReal> = data.targets.convert().unwrap();
        let hi = m.report.build_bits;
        let search = fewest_bits_to_memorize(&m.model, &data, &BitsSearchParams::default().bits(8, hi).threads(2), |_, _| {}).unwrap();
        let fewest = search.fewest.unwrap();
        let mut precisions: Vec<u64> = (fewest.saturating_sub(6).max(8)..=fewest + 6).collect();
        precisions.extend([8, 24, 53, fewest / 2, fewest + 40, 2 * fewest, hi]);
        let (mut certified, mut tokens) = (0, 0);
        for bits in precisions {
            let backend = BigFloatBackend::with_threads(bits, 2).unwrap();
            let check = backend.decodes_all(&backend.prepare(&m.model).unwrap(), &x, &y).unwrap();
            let faithful = faithful_holds(&m, &x, &y, bits);
            assert_eq!(check.holds, faithful, "{policy:?} seed {seed}: {bits} bits, {check:?}");
            // Every probe that holds decides its tokens mostly by the walk, even at the fewest bits itself.
            if check.holds && bits >= 40 {
                certified += check.certified;
                tokens += check.certified + check.evaluated;
            }
        }
        eprintln!("{policy:?} seed {seed}: fewest {fewest}, {certified}/{tokens} tokens of holding probes certified");
        assert!(certified * 100 >= tokens * 95, "{policy:?}: the walk decided only {certified} of {tokens} tokens");
    }
}

/// The search with certified probes equals a search whose every probe is a full faithful forward.
#[test]
fn certified_search_equals_the_faithful_search() {
    let data =
        Dataset::<f64>::generate(&DatasetSpec { sequences: 50, length: 8, dim: 4, vocab: 16, seed: 5, ..Default::default() }).unwrap();
    let m = Memorizer::build(&data, &ContextualOptions { policy: Policy::Measured, threads: 2, ..Default::default() }).unwrap();
    let x: Batch<BigReal> = data.inputs.convert().unwrap();
    let y: Batch<BigReal> = data.targets.convert().unwrap();
    let hi = m.report.build_bits;
    let certified = fewest_bits_to_memorize(&m.model, &data, &BitsSearchParams::default().bits(8, hi).threads(2), |_, _| {}).unwrap();
    let faithful = boltz_bigfloat::fewest_bits(&m.model, &x, 8, hi, 2, |out| Memorization::measure(out, &y).unwrap().is_perfect()).unwrap();
    assert_eq!(certified.fewest, faithful.fewest);
    assert_eq!(certified.bisection, faithful.bisection);
    let verdicts = |s: &boltz_bigfloat::BitsSearch| {
        let mut v: Vec<(u64, bool)> = s.probes.iter().map(|p| (p.bits, p.holds)).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(verdicts(&certified), verdicts(&faithful));
    // The audit re-checked the answer with the faithful forward; check its failing token here too.
    assert!(faithful.audit.is_none(), "a predicate search has no audit");
    let audit = certified.audit.expect("a certified search is audited");
    assert_eq!(Some(audit.bits), certified.fewest);
    assert_eq!(audit.sequences.len(), 8);
    let ([b, k], bits) = (audit.failing_token.expect("a failing token"), audit.failing_bits.expect("a failing probe"));
    assert!(bits < audit.bits);
    let out = BigFloatBackend::with_threads(bits, 2).unwrap().run(&m.model, &x).unwrap();
    let d = x.dim();
    let token = |batch: &Batch<BigReal>| batch.sequence(b)[k * d..(k + 1) * d].to_vec();
    assert!(!boltz_core::decodes(&token(&out), &token(&y)), "token {k} of sequence {b} decodes at {bits} bits");
    // The same audit on every run (one thread finds the first failing token in sequence order).
    let again = fewest_bits_to_memorize(&m.model, &data, &BitsSearchParams::default().bits(8, hi).threads(2), |_, _| {}).unwrap();
    assert_eq!(again.audit, Some(audit));
}

/// Targets shaped unlike the inputs, and sequences beyond the batch, are refused by name.
#[test]
fn decoding_runs_refuse_mismatched_targets_and_sequences() {
    let data = Dataset::<f64>::generate(&DatasetSpec { sequences: 4, length: 4, dim: 3, vocab: 8, ..Default::default() }).unwrap();
    let m = Memorizer::build(&data, &ContextualOptions { policy: Policy::FewestBits, threads: 1, ..Default::default() }).unwrap();
    let x: Batch<BigReal> = data.inputs.convert().unwrap();
    let short = Batch::<BigReal>::new(3, 4, 3, x.as_slice()[..36].to_vec()).unwrap();
    let backend = BigFloatBackend::with_threads(64, 1).unwrap();
    let prepared = backend.prepare(&m.model).unwrap();
    let err = backend.decodes_all(&prepared, &x, &short).unwrap_err();
    assert!(err.to_string().contains("targets"), "{err}");
    let err = backend.faithful_decodes(&prepared, &x, &short, &[0]).unwrap_err();
    assert!(err.to_string().contains("targets"), "{err}");
    let y: Batch<BigReal> = data.targets.convert().unwrap();
    let err = backend.faithful_decodes(&prepared, &x, &y, &[4]).unwrap_err();
    assert!(err.to_string().contains("sequence 4"), "{err}");
}
