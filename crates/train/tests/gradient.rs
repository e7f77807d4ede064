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
    let ds = data(3, 4, shape.dim, seed);
    let mut model: Model<f64> = init_model(shape, seed).unwrap();
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
    let mut eval = loss_and_gradient(&model, &ds, 2).unwrap();
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
    assert!(loss_and_gradient(&m, &wrong, 1).is_err(), "d = 4 data for a d = 3 model");
    let ds = data(2, 3, 3, 0);
    let err = train(&mut m, &ds, &TrainConfig { lr: -1.0, ..Default::default() }, |_, _, _| {}).unwrap_err().to_string();
    assert!(err.contains("lr"), "{err}");
    let err = train(&mut m, &ds, &TrainConfig { lr: 1e300, steps: 5, ..Default::default() }, |_, _, _| {}).unwrap_err().to_string();
    assert!(err.contains("non-finite") || err.contains("not finite"), "{err}");
}
