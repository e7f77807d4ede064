//! The parameter-optimal (bit-extraction) Transformer memorizer: exact memorization end to end in
//! arbitrary precision, both tasks, its stage counts, the refusals `docs/theory.md` §9.4 asks for, and what
//! f64 and the fewest-bits search measure.

#![allow(clippy::unwrap_used)]

use boltz_bigfloat::{BigFloatBackend, BigReal};
use boltz_construct::deep::bit_extraction::stack::params_formula;
use boltz_construct::deep::bit_extraction::{next_token_dataset, OptimalMemorizer, OptimalOptions, Task};
use boltz_construct::verify::run_and_measure;
use boltz_core::{Batch, Dataset, DatasetSpec, Error, ReferenceBackend, VocabKind};

fn data(sequences: usize, length: usize, dim: usize, vocab: usize, classes: u32, seed: u64) -> Dataset<f64> {
    Dataset::generate(&DatasetSpec { sequences, length, dim, vocab, seed, classes, ..Default::default() }).unwrap()
}

fn exact_at(m: &OptimalMemorizer, ds: &Dataset<f64>, bits: u64) -> bool {
    let backend = BigFloatBackend::with_threads(bits, 2).unwrap();
    let (mem, _) = run_and_measure::<BigReal, _>(&m.model, ds, &backend).unwrap();
    mem.exact == mem.tokens
}

#[test]
fn sequence_to_sequence_memorizes_exactly_with_one_attention_layer() {
    for (sequences, length, dim, vocab, classes, seed) in [(40, 8, 4, 16, 2, 1), (25, 4, 6, 12, 5, 2), (1, 3, 4, 3, 2, 3)] {
        let ds = data(sequences, length, dim, vocab, classes, seed);
        let m = OptimalMemorizer::build(&ds, &OptimalOptions { threads: 2, ..Default::default() }).unwrap();
        let r = &m.report;
        let mem = r.memorization.as_ref().unwrap();
        assert_eq!(mem.exact, mem.tokens, "every output equals its target exactly: {r:?}");
        // One attention layer; the stages add up; the memorizer stage has the formula's parameters.
        assert_eq!((r.attention_layers, m.model.layer_count().attention), (1, 1));
        assert_eq!(r.layers_by_stage.iter().sum::<usize>(), r.blocks);
        assert_eq!(r.layers_by_stage[1], r.token_bits as usize);
        assert_eq!(r.memorizer.depth as u64, r.memorizer.word_bits + 2);
        assert!(r.ids <= sequences * length);
        let mem_params: u64 = m.model.blocks()[r.blocks - r.memorizer.depth..]
            .iter()
            .map(|b| {
                let f = b.ffn.as_ref().unwrap();
                (f.hidden() * (2 * dim + 1) + dim) as u64
            })
            .sum();
        let mu = &r.memorizer;
        // The selection block carries two more units (clearing the attention's rounding residue).
        let formula = params_formula(mu.groups, mu.group_size, mu.label_bits, mu.gap_bits, dim) + 2 * (2 * dim as u64 + 1);
        assert_eq!(mem_params, formula, "{r:?}");
        assert!(r.params_nonzero < r.params.dense);
        assert!(!r.readout);
    }
}

#[test]
fn permuting_a_sequence_permutes_the_outputs() {
    let ds = data(20, 5, 4, 12, 3, 4);
    let m = OptimalMemorizer::build(&ds, &OptimalOptions::default()).unwrap();
    // Reverse every sequence (inputs and targets): the same model memorizes it exactly.
    let [big_n, n, d] = ds.inputs.shape();
    let reverse = |b: &Batch<f64>| {
        let mut v = Vec::with_capacity(big_n * n * d);
        for s in 0..big_n {
            for k in (0..n).rev() {
                v.extend_from_slice(b.token(s, k));
            }
        }
        Batch::new(big_n, n, d, v).unwrap()
    };
    let reversed = Dataset::new(reverse(&ds.inputs), reverse(&ds.targets), None).unwrap();
    assert!(exact_at(&m, &reversed, m.report.build_bits));
}

#[test]
fn next_token_needs_one_id_per_sequence() {
    let ds = next_token_dataset(&data(50, 6, 4, 14, 4, 5)).unwrap();
    let m = OptimalMemorizer::build(&ds, &OptimalOptions { task: Task::NextToken, ..Default::default() }).unwrap();
    let r = &m.report;
    assert_eq!(r.ids, 50, "one id per distinct multiset");
    let mem = r.memorization.as_ref().unwrap();
    assert_eq!(mem.exact, mem.tokens);
    // The sequence-to-sequence model of the same data needs an id per token, hence more parameters.
    let s2s = OptimalMemorizer::build(&ds, &OptimalOptions { verify: false, ..Default::default() }).unwrap();
    assert_eq!(s2s.report.ids, 300);
    assert!(s2s.report.params.dense > r.params.dense, "{} vs {}", s2s.report.params.dense, r.params.dense);
    // Per-token targets are refused for the next-token task, naming the sequence.
    let err = OptimalMemorizer::build(&data(50, 6, 4, 14, 4, 5), &OptimalOptions { task: Task::NextToken, ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("next-token: sequence"), "{err}");
}

#[test]
fn general_target_vectors_go_through_a_readout() {
    let mut ds = data(15, 4, 4, 10, 2, 6);
    // Targets: one of three arbitrary vectors per token.
    let vectors = [[0.5, -1.25, 3.0, 0.0], [1.0 / 3.0, 0.0, 0.0, 2.0], [-7.0, 1e-3, 0.25, 0.125]];
    let [big_n, n, _] = ds.targets.shape();
    let y: Vec<f64> = (0..big_n * n).flat_map(|i| vectors[(i * 7 + i / n) % 3]).collect();
    ds.targets = Batch::new(big_n, n, 4, y).unwrap();
    let m = OptimalMemorizer::build(&ds, &OptimalOptions::default()).unwrap();
    assert!(m.report.readout);
    assert_eq!(m.report.classes, 3);
    let mem = m.report.memorization.as_ref().unwrap();
    assert_eq!(mem.exact, mem.tokens, "{mem:?}");
}

#[test]
fn refusals_name_what_is_wrong() {
    let err = OptimalMemorizer::build(&data(5, 3, 3, 6, 2, 7), &OptimalOptions::default()).unwrap_err().to_string();
    assert!(err.contains("d ≥ 4"), "{err}");
    // A permutation of a sequence with other targets.
    let ds = data(2, 3, 4, 6, 2, 8);
    let mut x = ds.inputs.as_slice().to_vec();
    let first: Vec<f64> = x[..12].to_vec();
    x[12..24].copy_from_slice(&[&first[4..8], &first[..4], &first[8..12]].concat());
    let y: Vec<f64> = (0..6).flat_map(|i| [i as f64 % 2.0, 0.0, 0.0, 0.0]).collect();
    let bad = Dataset::new(Batch::new(2, 3, 4, x).unwrap(), Batch::new(2, 3, 4, y).unwrap(), None).unwrap();
    assert!(matches!(OptimalMemorizer::build(&bad, &OptimalOptions::default()), Err(Error::InconsistentTargets { .. })));
}

#[test]
fn equal_token_sums_are_refused_or_separated_never_wrong() {
    // Grid tokens: many different multisets share Σx. Next-token labels must then be told apart by the
    // floors' rounding alone; whatever the builder returns is either an exact model or a refusal that
    // names two sequences with equal sums.
    let mut refused = 0;
    for seed in 0..4 {
        let spec = DatasetSpec {
            sequences: 300,
            length: 4,
            dim: 4,
            vocab: 12,
            classes: 2,
            seed,
            vocab_kind: VocabKind::Grid,
            ..Default::default()
        };
        let ds = next_token_dataset(&Dataset::generate(&spec).unwrap()).unwrap();
        match OptimalMemorizer::build(&ds, &OptimalOptions { task: Task::NextToken, ..Default::default() }) {
            Ok(m) => {
                let mem = m.report.memorization.unwrap();
                assert_eq!(mem.exact, mem.tokens);
            }
            Err(Error::Infeasible(msg)) => {
                assert!(msg.contains("equal token sums"), "{msg}");
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0, "grid data with 300 sequences of 4 tokens from 12 must collide somewhere");
}

#[test]
fn f64_cannot_hold_the_words_and_the_fewest_bits_are_measured() {
    let ds = data(60, 8, 4, 16, 2, 9);
    let m = OptimalMemorizer::build(&ds, &OptimalOptions { threads: 2, ..Default::default() }).unwrap();
    let r = &m.report;
    assert!(r.memorizer.word_bits > 53, "{r:?}");
    // In f64 the words are rounded: memorization fails (measured, not assumed), or the conversion refuses.
    match run_and_measure::<f64, _>(&m.model, &ds, &ReferenceBackend) {
        Ok((mem, _)) => assert!(mem.exact < mem.tokens, "{mem:?}"),
        Err(e) => assert!(matches!(e, Error::NonFinite { .. } | Error::Overflow { .. }), "{e}"),
    }
    let search = m.fewest_bits(&ds, &boltz_construct::verify::BitsSearchParams::default().bits(8, r.build_bits).threads(2)).unwrap();
    let fewest = search.fewest.unwrap();
    // Not fewer than the words' bits; at most the build bits; one bit fewer fails.
    assert!(fewest >= r.memorizer.word_bits && fewest <= r.build_bits, "{fewest} vs {r:?}");
    assert!(exact_at(&m, &ds, fewest));
    assert!(!exact_at(&m, &ds, fewest - 1));
}

#[test]
fn token_codes_tolerate_input_perturbations_within_the_measured_margin() {
    // The floor of a = s·vᵀx + β₀ keeps every token's fraction at least w/8 from the integers (checked at
    // build, `docs/theory.md` §9.3): moving every input coordinate by η with ‖s·v‖₁·η < w/8 moves no
    // code, so the same model memorizes the perturbed inputs exactly.
    let ds = data(30, 6, 4, 14, 3, 10);
    let m = OptimalMemorizer::build(&ds, &OptimalOptions::default()).unwrap();
    let projection = m.model.blocks()[0].ffn.as_ref().unwrap();
    let w1 = projection.w1.to_dense();
    let q = projection.hidden();
    let w: Vec<f64> = (0..4).map(|j| boltz_core::Real::to_f64(w1.get(q - 1, j))).collect();
    let l1: f64 = w.iter().map(|x| x.abs()).sum();
    let eta = 0.9 * m.report.fraction_gap / 8.0 / l1;
    for sign in [1.0, -1.0] {
        let x: Vec<f64> =
            ds.inputs.as_slice().chunks(4).flat_map(|t| (0..4).map(|j| t[j] + sign * eta * w[j].signum()).collect::<Vec<_>>()).collect();
        let perturbed = Dataset::new(Batch::new(30, 6, 4, x).unwrap(), ds.targets.clone(), None).unwrap();
        assert!(exact_at(&m, &perturbed, m.report.build_bits), "η = {eta:e}, sign {sign}");
    }
}
