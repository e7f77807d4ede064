//! The backward pass against central finite differences of the reference backend's loss (independent
//! forward code), Adam memorizing a small dataset, determinism, and refusals.

#![allow(clippy::unwrap_used)]

use boltz_core::{Backend, Dataset, DatasetSpec, Memorization, Model, ReferenceBackend};
use boltz_train::{init_model, loss_and_gradient, parameters, train, with_parameters, ModelShape, TrainConfig};

fn data(sequences: usize, length: usize, dim: usize, seed: u64) -> Dataset<f64> {
    Dataset::generate(&DatasetSpec { sequences, length, dim, vocab: 3 * length, seed, ..Default::default() }).unwrap()
}

/// The loss by the reference backend: mean over tokens of the squared distance to the target.
fn reference_loss(model: &Model<f64>, data: &Dataset<f64>) -> f64 {
    let prepared = ReferenceBackend.prepare(model).unwrap();
    let out = ReferenceBackend.forward(&prepared, &data.inputs).unwrap();
    let tokens = (data.inputs.batch() * data.inputs.len()) as f64;
    out.as_slice().iter().zip(data.targets.as_slice()).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / tokens
}

fn check_gradient(shape: &ModelShape, causal: bool, seed: u64) {
    check_gradient_of(shape, causal, seed, false);
}

/// `factored_ffn`: the FFN weights stored as rank-2 factors (the per-token path; init_model's dense FFNs
/// take the tiled products on the CPU engine).
fn check_gradient_of(shape: &ModelShape, causal: bool, seed: u64, factored_ffn: bool) {
    let ds = data(3, 4, shape.dim, seed);
    let mut model: Model<f64> = init_model(shape, seed).unwrap();
    if factored_ffn {
        use boltz_core::{Matrix, Weight};
        let f =
            |rows: usize, cols: usize, salt: usize| Matrix::from_fn(rows, cols, |i, j| ((i * 7 + j * 3 + salt) % 11) as f64 / 11.0 - 0.45);
        let blocks: Vec<_> = model
            .blocks()
            .iter()
            .cloned()
            .map(|mut b| {
                if let Some(ffn) = &mut b.ffn {
                    let (q, d) = (ffn.b1.len(), ffn.b2.len());
                    ffn.w1 = Weight::Factored { u: f(q, 2, 1), v: f(d, 2, 2) };
                    ffn.w2 = Weight::Factored { u: f(d, 2, 3), v: f(q, 2, 4) };
                }
                b
            })
            .collect();
        model = Model::new(shape.dim, blocks, model.info().clone()).unwrap();
    }
    if causal {
        let blocks: Vec<_> = model
            .blocks()
            .iter()
            .cloned()
            .map(|mut b| {
                if let Some(a) = &mut b.attention {
                    a.causal = true;
                }
                b
            })
            .collect();
        model = Model::new(shape.dim, blocks, model.info().clone()).unwrap();
    }
    let mut eval = loss_and_gradient(&model, &ds, boltz_train::Loss::SquaredError, 2).unwrap();
    assert!((eval.loss - reference_loss(&model, &ds)).abs() < 1e-12 * eval.loss.max(1.0), "the loss is the reference backend's");
    let params = parameters(&model);
    let grads: Vec<Vec<f64>> = eval.gradient.tensors_mut().into_iter().map(|g| g.clone()).collect();
    assert_eq!(grads.len(), params.len());
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for (t, tensor) in params.iter().enumerate() {
        for i in 0..tensor.len() {
            let at = |delta: f64| {
                let mut p = params.clone();
                p[t][i] += delta;
                reference_loss(&with_parameters(&model, &p).unwrap(), &ds)
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            let err = (numeric - grads[t][i]).abs() / numeric.abs().max(grads[t][i].abs()).max(1e-3);
            worst = worst.max(err);
        }
    }
    assert!(worst < 1e-5, "{shape:?} causal {causal}: worst relative gradient error {worst:e}");
}

#[test]
fn the_gradient_matches_finite_differences_of_the_reference_forward() {
    let dense = ModelShape { dim: 3, blocks: 2, heads: 2, head_size: 2, rank: None, ffn_width: 5 };
    check_gradient(&dense, false, 1);
    check_gradient(&dense, true, 2);
    let rank1 = ModelShape { dim: 4, blocks: 1, heads: 1, head_size: 3, rank: Some(1), ffn_width: 6 };
    check_gradient(&rank1, false, 3);
    check_gradient_of(&rank1, false, 4, true);
    // More tokens than one FFN tile (64), and an inner size above the engine's small-product limit (d = 10).
    let wide = ModelShape { dim: 10, blocks: 1, heads: 1, head_size: 2, rank: Some(1), ffn_width: 12 };
    let ds = Dataset::generate(&DatasetSpec { sequences: 20, length: 4, dim: 10, vocab: 12, seed: 9, ..Default::default() }).unwrap();
    let model: Model<f64> = init_model(&wide, 9).unwrap();
    let mut eval = loss_and_gradient(&model, &ds, boltz_train::Loss::SquaredError, 1).unwrap();
    assert!((eval.loss - reference_loss(&model, &ds)).abs() < 1e-12 * eval.loss.max(1.0));
    let params = parameters(&model);
    let grads: Vec<Vec<f64>> = eval.gradient.tensors_mut().into_iter().map(|g| g.clone()).collect();
    let mut worst: f64 = 0.0;
    for (t, tensor) in params.iter().enumerate() {
        for i in (0..tensor.len()).step_by(5) {
            let at = |delta: f64| {
                let mut p = params.clone();
                p[t][i] += delta;
                reference_loss(&with_parameters(&model, &p).unwrap(), &ds)
            };
            let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
            worst = worst.max((numeric - grads[t][i]).abs() / numeric.abs().max(grads[t][i].abs()).max(1e-3));
        }
    }
    assert!(worst < 1e-5, "80 tokens, d = 10: worst relative gradient error {worst:e}");
}

#[test]
fn adam_memorizes_a_small_dataset_and_the_result_is_deterministic() {
    let ds = data(6, 3, 4, 5);
    let shape = ModelShape { dim: 4, blocks: 1, heads: 1, head_size: 4, rank: None, ffn_width: 48 };
    let cfg = TrainConfig { steps: 3000, lr: 1e-2, threads: 2, ..Default::default() };
    let run = || {
        let mut m: Model<f64> = init_model(&shape, 7).unwrap();
        let report = train(&mut m, &ds, &cfg, |_, _, _| {}).unwrap();
        (m, report)
    };
    let (model, report) = run();
    assert!(report.memorized, "{:?}", report.curve.last());
    assert!(report.steps < cfg.steps, "early stop at 100 % token accuracy");
    // The reference backend agrees: every token decodes.
    let out = ReferenceBackend.forward(&ReferenceBackend.prepare(&model).unwrap(), &ds.inputs).unwrap();
    assert!(Memorization::measure(&out, &ds.targets).unwrap().is_perfect());
    // The loss fell, and the same seed and threads give the same model bit for bit.
    assert!(report.curve.first().unwrap().1 > 10.0 * report.final_loss);
    let (again, report2) = run();
    assert_eq!(report, report2);
    assert_eq!(parameters(&model), parameters(&again));
}

#[test]
fn f32_training_runs_and_lowers_the_loss() {
    let ds: Dataset<f32> = data(4, 3, 3, 8).convert().unwrap();
    let shape = ModelShape { dim: 3, blocks: 1, heads: 1, head_size: 2, rank: Some(1), ffn_width: 16 };
    let mut m: Model<f32> = init_model(&shape, 1).unwrap();
    let report = train(&mut m, &ds, &TrainConfig { steps: 200, early_stop: false, ..Default::default() }, |_, _, _| {}).unwrap();
    assert_eq!(report.steps, 200);
    assert!(report.final_loss < 0.5 * report.curve[0].1, "{:?}", report.curve);
}

#[test]
fn bad_input_is_refused_by_name() {
    let shape = ModelShape { dim: 3, blocks: 1, heads: 1, head_size: 2, rank: None, ffn_width: 4 };
    assert!(init_model::<f64>(&ModelShape { heads: 0, ..shape.clone() }, 0).unwrap_err().to_string().contains("heads"));
    assert!(init_model::<f64>(&ModelShape { rank: Some(0), ..shape.clone() }, 0).unwrap_err().to_string().contains("rank"));
    let mut m: Model<f64> = init_model(&shape, 0).unwrap();
    let wrong = data(2, 3, 4, 0);
    assert!(loss_and_gradient(&m, &wrong, boltz_train::Loss::SquaredError, 1).is_err(), "d = 4 data for a d = 3 model");
    let ds = data(2, 3, 3, 0);
    let err = train(&mut m, &ds, &TrainConfig { lr: -1.0, ..Default::default() }, |_, _, _| {}).unwrap_err().to_string();
    assert!(err.contains("lr"), "{err}");
    let err = train(&mut m, &ds, &TrainConfig { lr: 1e300, steps: 5, ..Default::default() }, |_, _, _| {}).unwrap_err().to_string();
    assert!(err.contains("non-finite") || err.contains("not finite"), "{err}");
}

#[test]
fn the_trained_capacity_is_the_largest_n_memorized_and_the_next_fails() {
    use boltz_train::{trained_capacity, CapacitySearch};
    let search = CapacitySearch {
        shape: ModelShape { dim: 4, blocks: 1, heads: 1, head_size: 4, rank: Some(1), ffn_width: 6 },
        train: TrainConfig { steps: 600, lr: 2e-2, threads: 2, ..Default::default() },
        data: DatasetSpec { length: 3, dim: 4, vocab: 9, seed: 3, ..Default::default() },
        seeds: vec![1, 2],
        max_sequences: 64,
        warm_start: false,
    };
    let cap = trained_capacity(&search, |_| {}).unwrap();
    let r = &cap.report;
    eprintln!(
        "largest {} failed {:?} params {} bits/param {:.3} probes {}",
        r.largest_memorized,
        r.smallest_failed,
        r.params,
        r.bits_per_param,
        r.probes.len()
    );
    let n = r.largest_memorized;
    assert!(n >= 1, "{r:?}");
    // The answer was memorized by a recorded run, and every seed failed at the first failing N.
    assert!(r.probes.iter().any(|p| p.sequences == n && p.memorized));
    if let Some(f) = r.smallest_failed {
        assert_eq!(f, n + 1, "bisection ends at adjacent N");
        let at_f: Vec<_> = r.probes.iter().filter(|p| p.sequences == f).collect();
        assert_eq!(at_f.len(), 2);
        assert!(at_f.iter().all(|p| !p.memorized));
    } else {
        assert_eq!(n, 64);
    }
    // Bits per parameter: N·n·log₂(2) / params.
    assert!((r.bits_per_param - (n * 3) as f64 / r.params as f64).abs() < 1e-12);
    // Independent re-check: the memorizing run, repeated, decodes every token on the reference backend.
    let seed = r.probes.iter().find(|p| p.sequences == n && p.memorized).unwrap().seed;
    let ds = Dataset::<f64>::generate(&DatasetSpec { sequences: n, ..search.data.clone() }).unwrap();
    let mut m: Model<f64> = init_model(&search.shape, seed).unwrap();
    train(&mut m, &ds, &search.train, |_, _, _| {}).unwrap();
    let out = ReferenceBackend.forward(&ReferenceBackend.prepare(&m).unwrap(), &ds.inputs).unwrap();
    assert!(Memorization::measure(&out, &ds.targets).unwrap().is_perfect());
    // The returned memorizer is that model, on that data.
    let (returned, returned_data) = cap.memorizer.as_ref().unwrap();
    assert_eq!(parameters(returned), parameters(&m));
    assert_eq!(returned_data.inputs.as_slice(), ds.inputs.as_slice());
}

/// Cross-entropy over the label classes, computed from the reference backend's outputs (independent code).
fn reference_cross_entropy(model: &Model<f64>, data: &Dataset<f64>, classes: usize) -> f64 {
    let out = ReferenceBackend.forward(&ReferenceBackend.prepare(model).unwrap(), &data.inputs).unwrap();
    let [big_n, n, _] = data.inputs.shape();
    let mut total = 0.0;
    for b in 0..big_n {
        for k in 0..n {
            let z = &out.token(b, k)[..classes];
            let label = data.targets.token(b, k)[0] as usize;
            let log_sum = z.iter().map(|v| v.exp()).sum::<f64>().ln();
            total += log_sum - z[label];
        }
    }
    total / (big_n * n) as f64
}

#[test]
fn the_cross_entropy_gradient_matches_finite_differences_and_training_decodes_by_argmax() {
    use boltz_train::Loss;
    let ds =
        Dataset::generate(&DatasetSpec { sequences: 4, length: 3, dim: 4, vocab: 9, classes: 3, seed: 4, ..Default::default() }).unwrap();
    let shape = ModelShape { dim: 4, blocks: 1, heads: 1, head_size: 3, rank: Some(1), ffn_width: 6 };
    let model: Model<f64> = init_model(&shape, 2).unwrap();
    let loss = Loss::CrossEntropy { classes: 3, label_coord: 0 };
    let mut eval = loss_and_gradient(&model, &ds, loss, 2).unwrap();
    let reference = reference_cross_entropy(&model, &ds, 3);
    assert!((eval.loss - reference).abs() < 1e-12, "{} vs {reference}", eval.loss);
    let params = parameters(&model);
    let grads: Vec<Vec<f64>> = eval.gradient.tensors_mut().into_iter().map(|g| g.clone()).collect();
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for (t, tensor) in params.iter().enumerate() {
        for i in 0..tensor.len() {
            let at = |delta: f64| {
                let mut p = params.clone();
                p[t][i] += delta;
                reference_cross_entropy(&with_parameters(&model, &p).unwrap(), &ds, 3)
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            worst = worst.max((numeric - grads[t][i]).abs() / numeric.abs().max(grads[t][i].abs()).max(1e-3));
        }
    }
    assert!(worst < 1e-5, "worst relative gradient error {worst:e}");

    // Training on it memorizes; the reference backend's logits decode every token by argmax.
    let wide = ModelShape { ffn_width: 48, ..shape };
    let mut m: Model<f64> = init_model(&wide, 1).unwrap();
    let report = train(&mut m, &ds, &TrainConfig { steps: 3000, lr: 1e-2, loss, ..Default::default() }, |_, _, _| {}).unwrap();
    assert!(report.memorized, "{:?}", report.curve.last());
    let out = ReferenceBackend.forward(&ReferenceBackend.prepare(&m).unwrap(), &ds.inputs).unwrap();
    let [big_n, n, _] = ds.inputs.shape();
    for b in 0..big_n {
        for k in 0..n {
            let z = &out.token(b, k)[..3];
            let label = ds.targets.token(b, k)[0] as usize;
            assert!((0..3).all(|c| c == label || z[c] < z[label]), "sequence {b}, token {k}: logits {z:?}, label {label}");
        }
    }
    assert_eq!(loss.accuracy(&out, &ds.targets).unwrap(), 1.0);
    // The squared-error rule does not decode these logits: the two rules are different.
    assert!(Loss::SquaredError.accuracy(&out, &ds.targets).unwrap() < 1.0);

    // Refusals: more classes than output coordinates, a label coordinate outside d, non-class labels.
    let err = loss_and_gradient(&model, &ds, Loss::CrossEntropy { classes: 5, label_coord: 0 }, 1).unwrap_err().to_string();
    assert!(err.contains("classes"), "{err}");
    let err = loss_and_gradient(&model, &ds, Loss::CrossEntropy { classes: 3, label_coord: 4 }, 1).unwrap_err().to_string();
    assert!(err.contains("label_coord"), "{err}");
    let mut halves = ds.clone();
    halves.targets = boltz_core::Batch::new(4, 3, 4, ds.targets.as_slice().iter().map(|v| v + 0.5).collect()).unwrap();
    let err = loss_and_gradient(&model, &halves, Loss::CrossEntropy { classes: 3, label_coord: 0 }, 1).unwrap_err().to_string();
    assert!(err.contains("integer label"), "{err}");
}

#[test]
fn a_warm_started_search_starts_each_n_from_the_last_memorizer() {
    use boltz_train::{trained_capacity, CapacitySearch};
    let search = CapacitySearch {
        shape: ModelShape { dim: 4, blocks: 1, heads: 1, head_size: 4, rank: Some(1), ffn_width: 6 },
        train: TrainConfig { steps: 400, lr: 2e-2, threads: 2, ..Default::default() },
        data: DatasetSpec { length: 3, dim: 4, vocab: 9, seed: 3, ..Default::default() },
        seeds: vec![1],
        max_sequences: 64,
        warm_start: true,
    };
    let cap = trained_capacity(&search, |_| {}).unwrap();
    let r = &cap.report;
    assert!(r.largest_memorized >= 1, "{r:?}");
    // Every N after the first success is tried first from the largest memorized smaller N, then fresh.
    let mut largest = 0;
    let mut seen = std::collections::BTreeSet::new();
    for p in &r.probes {
        if seen.insert(p.sequences) && largest > 0 {
            assert_eq!(p.warm_from, Some(largest), "the first run at N = {}", p.sequences);
        }
        if p.memorized {
            largest = largest.max(p.sequences);
        }
    }
    assert!(r.probes.iter().any(|p| p.warm_from.is_some()), "{r:?}");
    assert_eq!(largest, r.largest_memorized);
    let (m, ds) = cap.memorizer.as_ref().unwrap();
    assert_eq!(ds.inputs.batch(), r.largest_memorized);
    let out = ReferenceBackend.forward(&ReferenceBackend.prepare(m).unwrap(), &ds.inputs).unwrap();
    assert!(Memorization::measure(&out, &ds.targets).unwrap().is_perfect());
}
