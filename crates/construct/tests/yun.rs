//! Yun et al.'s construction: exact memorization, layer counts equal to the formulas, both variants agree
//! on stage-B ids, both grids (minimal and dyadic δ) memorize, the bits it needs, and the inputs it cannot
//! take.

#![allow(clippy::unwrap_used)]

use boltz_construct::deep::yun::{Yun, YunDelta, YunOptions, YunReport, YunVariant};
use boltz_core::{Batch, Dataset, DatasetSpec, Error, ReferenceBackend};

fn data(sequences: usize, length: usize, dim: usize, vocab: usize, seed: u64) -> Dataset<f64> {
    Dataset::generate(&DatasetSpec { sequences, length, dim, vocab, seed, classes: 3, ..Default::default() }).unwrap()
}

#[test]
fn adaptive_yun_memorizes_exactly_with_the_formula_counts() {
    let ds = data(30, 4, 2, 8, 1);
    let y = Yun::build(&ds, &YunOptions { threads: 2, ..Default::default() }).unwrap();
    let r = &y.report;
    eprintln!("{}", serde_json::to_string(r).unwrap());
    assert!(r.memorization.is_perfect() && r.memorization.exact == r.memorization.tokens, "{:?}", r.memorization);
    let [affine, quant, ctx, value] = r.layers_by_stage;
    assert_eq!(affine, 1);
    assert_eq!(quant as f64, r.formula.quantization);
    assert_eq!(ctx as f64, r.formula.contextual);
    assert_eq!(value as f64, r.formula.value);
    assert_eq!(r.layers as f64, 1.0 + r.formula.layers);
    assert_eq!(r.ids, 30 * 4);
    assert_eq!(r.params.dense, r.realised_params);
    // The default (dyadic) grid builds what it built before the grid choice existed.
    assert_eq!(r.delta_kind, YunDelta::Dyadic);
    assert_eq!((r.cells, r.layers, r.bits, r.params.dense), (32, 199, 390, 4303));
    // f64 cannot hold the ids (≈ 2^{log2_max_id} with resolution δ) once they pass 2^53.
    let bits = y.fewest_bits(&ds, &boltz_construct::verify::BitsSearchParams::default().bits(8, r.bits).threads(2)).unwrap();
    eprintln!("fewest bits {:?}, log2 max id {:.0}", bits.fewest, r.log2_max_id);
    assert!(bits.fewest.unwrap() > 53);
    let f64_mem = y.in_precision::<f64, _>(&ds, &ReferenceBackend).unwrap();
    assert!(!f64_mem.is_perfect(), "{f64_mem:?}");
}

#[test]
fn full_and_adaptive_variants_give_the_same_stage_b_ids() {
    let ds = data(10, 3, 1, 6, 2);
    let opts = |variant| YunOptions { variant, cells: Some(16), threads: 2, ..Default::default() };
    let a = Yun::build(&ds, &opts(YunVariant::Adaptive)).unwrap();
    let f = Yun::build(&ds, &opts(YunVariant::Full)).unwrap();
    assert_eq!(a.stage_b_ids, f.stage_b_ids);
    assert!(a.report.memorization.is_perfect() && f.report.memorization.is_perfect());
    assert_eq!(f.report.layers_by_stage[2] as f64, 16.0 + 1.0);
    assert_eq!(a.report.layers_by_stage[2], 6 + 1);
    for y in [&a, &f] {
        assert_eq!(y.report.params.dense, y.report.realised_params);
    }
}

#[test]
fn inputs_it_cannot_take_are_errors() {
    let x = Batch::new(1, 3, 1, vec![1.0, 2.0, 1.0]).unwrap();
    let y = Batch::new(1, 3, 1, vec![0.0; 3]).unwrap();
    let ds = Dataset::new(x, y, None).unwrap();
    assert!(matches!(Yun::build(&ds, &YunOptions::default()), Err(Error::DuplicateToken { .. })));
    let ds = data(10, 3, 2, 8, 3);
    let err = Yun::build(&ds, &YunOptions { cells: Some(2), ..Default::default() }).unwrap_err();
    assert!(matches!(err, Error::Assumption { ref what, .. } if what.contains("grid width")), "{err}");
    assert!(err.to_string().contains("too coarse"), "{err}");
}

#[test]
fn four_dimensional_tokens_need_exact_score_products() {
    let ds = Dataset::generate(&DatasetSpec { sequences: 10, length: 6, dim: 4, vocab: 12, seed: 2024, classes: 2, ..Default::default() })
        .unwrap();
    let y = Yun::build(&ds, &YunOptions { threads: 2, ..Default::default() }).unwrap();
    assert!(y.report.memorization.is_perfect(), "{:?}", y.report);
}

#[test]
fn softmax_realisation_finds_the_smallest_scale() {
    let ds = data(8, 3, 1, 6, 5);
    let y = Yun::build(&ds, &YunOptions { threads: 2, ..Default::default() }).unwrap();
    // λ = 2⁶⁰⁰ is hardmax to every bit here (the early selective shifts see score gaps ~ δ², so small λ
    // blurs them); λ = 1 is not.
    let sweep = y.softmax_realisation(&ds, 0, 600, 2).unwrap();
    let k = sweep.min_log2_lambda.expect("softmax with λ = 2^600 behaves like hardmax");
    assert!(k > 0.0 && k <= 64.0, "{sweep:?}");
    // Below the threshold it fails, at it it memorizes.
    assert!(sweep.probes.iter().all(|&(p, ok)| ok == (p >= k)), "{sweep:?}");
}

#[test]
fn event_driven_evaluation_is_bit_identical_to_the_plain_forward() {
    use boltz_bigfloat::{BigFloatBackend, BigReal};
    use boltz_construct::deep::yun::FusedYun;
    use boltz_core::{Backend, ExactConvert};
    for (ds, variant, delta) in [
        (data(12, 4, 2, 8, 5), YunVariant::Adaptive, YunDelta::Dyadic),
        (data(8, 3, 1, 6, 6), YunVariant::Full, YunDelta::Dyadic),
        (data(10, 5, 3, 12, 7), YunVariant::Adaptive, YunDelta::Dyadic),
        (data(12, 4, 2, 8, 5), YunVariant::Adaptive, YunDelta::Minimal),
        (data(8, 3, 1, 6, 6), YunVariant::Full, YunDelta::Minimal),
    ] {
        let y = Yun::build(&ds, &YunOptions { variant, delta, threads: 2, ..Default::default() }).unwrap();
        assert!(y.report.memorization.is_perfect(), "{variant:?} {delta}");
        let backend = BigFloatBackend::with_threads(y.report.bits, 2).unwrap();
        let x: Batch<BigReal> = ds.inputs.convert().unwrap();
        let plain = backend.run(&y.model, &x).unwrap();
        let mut fused = FusedYun::new(&backend, &y.model, &y.layout);
        let out = fused.forward(&x).unwrap();
        let exact = |b: &Batch<BigReal>| b.as_slice().iter().map(|v| v.to_exact().to_string()).collect::<Vec<_>>();
        assert_eq!(exact(&out), exact(&plain), "{variant:?} {delta}");
        // It skipped most of the (layers × sequences) block evaluations of the plain forward.
        assert!(fused.evaluations < y.model.blocks().len() * ds.inputs.batch() / 2, "{} evaluations", fused.evaluations);
    }
}

#[test]
fn a_thousand_sequences_build_and_verify_in_seconds() {
    // The size: N = 10³, n = 8, d = 4 (about 8 000 context ids, so ~8 100 layers).
    let ds = data(1000, 8, 4, 16, 3);
    let y = Yun::build(&ds, &YunOptions { threads: 2, ..Default::default() }).unwrap();
    let r = &y.report;
    assert!(r.memorization.is_perfect() && r.memorization.tokens == 8000, "{:?}", r.memorization);
    assert_eq!(r.layers as f64, 1.0 + r.formula.layers);
    eprintln!("N = 1000: {} layers, build {:.2}s, verify {:.2}s", r.layers, r.build_seconds, r.verify_seconds);
}

/// Exact memorization, and the realised stages equal the formula for the grid used (the harness checks
/// `formula.layers + 1 == layers`).
fn assert_exact_and_formula(r: &YunReport) {
    assert!(r.memorization.is_perfect() && r.memorization.exact == r.memorization.tokens, "{r:?}");
    let [affine, quant, ctx, value] = r.layers_by_stage;
    assert_eq!(affine, 1);
    assert_eq!(r.formula.cells, r.cells);
    assert_eq!(quant as f64, r.formula.quantization);
    assert_eq!(ctx as f64, r.formula.contextual);
    assert_eq!(value as f64, r.formula.value);
    assert_eq!(r.formula.layers + 1.0, r.layers as f64);
    assert_eq!(r.params.dense, r.realised_params);
    assert_eq!(r.delta, 1.0 / r.cells as f64);
}

#[test]
fn minimal_and_dyadic_delta_both_memorize_and_minimal_is_shallower() {
    let d4 = Dataset::generate(&DatasetSpec { sequences: 10, length: 6, dim: 4, vocab: 12, seed: 2024, classes: 2, ..Default::default() })
        .unwrap();
    // (data, d, (K, layers) minimal, (K, layers) dyadic): neither minimal K is a power of two.
    for (ds, d, min_counts, dy_counts) in [(data(10, 4, 2, 8, 1), 2, (14, 83), (32, 119)), (d4, 4, (5, 103), (8, 115))] {
        let build = |delta| Yun::build(&ds, &YunOptions { delta, threads: 2, ..Default::default() }).unwrap();
        let (m, dy) = (build(YunDelta::Minimal), build(YunDelta::Dyadic));
        let (rm, rd) = (&m.report, &dy.report);
        assert_exact_and_formula(rm);
        assert_exact_and_formula(rd);
        assert_eq!((rm.delta_kind, rd.delta_kind), (YunDelta::Minimal, YunDelta::Dyadic));
        assert_eq!((rm.cells, rm.layers), min_counts, "{rm:?}");
        assert_eq!((rd.cells, rd.layers), dy_counts, "{rd:?}");
        assert!(!rm.cells.is_power_of_two() && rd.cells.is_power_of_two());
        assert_eq!((rm.minimal_cells, rd.minimal_cells), (rm.cells, rm.cells));
        // Stage A is d/δ + d; only it depends on δ in the adaptive variant (same ids, same vocabulary).
        assert_eq!(rm.layers_by_stage[1] as u64, d * rm.cells + d);
        assert_eq!(rm.layers_by_stage[2..], rd.layers_by_stage[2..]);
        assert!(rm.cells < rd.cells && rm.layers < rd.layers && rm.bits < rd.bits, "{rm:?} {rd:?}");
        // A minimal cell is wider than a dyadic one, and never wider than the data's ∞-norm gap allows.
        let rep = boltz_core::DataReport::analyze(&ds.inputs, None);
        assert!(rm.cell_width > rd.cell_width && rm.cell_width <= rep.eps_inf, "{rm:?}");
    }
}

#[test]
fn minimal_delta_with_the_full_sweep_and_given_cells() {
    let ds = data(10, 3, 1, 6, 2);
    let opts = |variant, cells| YunOptions { variant, delta: YunDelta::Minimal, cells, threads: 2, ..Default::default() };
    let a = Yun::build(&ds, &opts(YunVariant::Adaptive, None)).unwrap();
    let k = a.report.cells;
    // A given K at or above the minimal one is used as given (not rounded to a power of two) …
    let f = Yun::build(&ds, &opts(YunVariant::Full, Some(k + 1))).unwrap();
    assert_exact_and_formula(&a.report);
    assert_exact_and_formula(&f.report);
    assert_eq!(f.report.cells, k + 1);
    assert_eq!(f.report.layers_by_stage[2] as u64, (k + 1) + 1);
    // … one below it is too coarse.
    let err = Yun::build(&ds, &opts(YunVariant::Adaptive, Some(k - 1))).unwrap_err();
    assert!(matches!(err, Error::Assumption { ref what, .. } if what.contains("grid width")), "{err}");
}

#[test]
fn yun_delta_from_str_rejects_unknown_names() {
    assert_eq!("minimal".parse::<YunDelta>().unwrap(), YunDelta::Minimal);
    assert_eq!("dyadic".parse::<YunDelta>().unwrap(), YunDelta::Dyadic);
    assert!(matches!("bogus".parse::<YunDelta>(), Err(boltz_core::UnknownName { kind: "Yun grid", ref given, .. }) if given == "bogus"));
    assert_eq!(YunOptions::default().delta, YunDelta::Dyadic);
}
