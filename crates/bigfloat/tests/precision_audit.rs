//! Every value a forward produces carries exactly the backend's precision (issue: below 53 bits the
//! backend used to compute the softmax normalisation, the mixing, the residual and the FFN at 53 bits,
//! because literal constants were made at f64's precision).
//!
//! One test in this binary: the audit counts the values of the whole process.

#![allow(clippy::unwrap_used)]

use boltz_bigfloat::{BigFloatBackend, BigReal, FfnEvaluation, PrecisionAudit};
use boltz_core::fixtures::{self, random_model, RandomModelSpec};
use boltz_core::rng::SeededRng;
use boltz_core::{Backend, Batch, Block, ExactConvert, FeedForward, Matrix, Model, ModelInfo, Normalizer, Real, Weight};

fn models() -> Vec<(String, Model<BigReal>, Batch<BigReal>)> {
    let mut out = Vec::new();
    for (seed, normalizer, factor_rank) in [
        (1u64, Normalizer::Softmax, Some(1)),
        (2, Normalizer::Softmax, None),
        (3, Normalizer::Hardmax, None),
        (4, Normalizer::Hardmax, Some(2)),
    ] {
        let (m, x) = fixtures::random_case(seed, &RandomModelSpec::sized(3, 2, 2, 2, 5).varied(seed, normalizer, factor_rank), 3, 5);
        out.push((format!("random {seed} {normalizer:?}"), m.convert().unwrap(), x.convert().unwrap()));
    }
    // Hardmax with exact ties (every token equal): the tie count enters the arithmetic.
    let mut rng = SeededRng::new(9);
    let spec = RandomModelSpec { normalizer: Normalizer::Hardmax, ..RandomModelSpec::sized(2, 1, 1, 1, 2) };
    let m: Model<BigReal> = random_model(&mut rng, &spec).convert().unwrap();
    let x = Batch::new(1, 3, 2, [0.3, -0.7].repeat(3).into_iter().map(BigReal::from_f64).collect()).unwrap();
    out.push(("hardmax ties".into(), m, x));
    // The memorizer's interpolating FFN (`W_1 = 1·vᵀ`: the sorted-threshold path).
    let r = BigReal::from_f64;
    let ffn = FeedForward {
        w1: Weight::rank_one(vec![r(1.0); 3], vec![r(0.6), r(-0.8)]),
        b1: vec![r(0.1), r(-0.2), r(0.45)],
        w2: Weight::Dense(Matrix::from_fn(2, 3, |a, b| r(0.3 * a as f64 - 0.7 * b as f64 + 0.1))),
        b2: vec![r(0.25), r(-1.0 / 3.0)],
    };
    let m = Model::new(2, vec![Block { attention: None, ffn: Some(ffn) }], ModelInfo::named("interpolation")).unwrap();
    let x = Batch::new(2, 2, 2, [0.5, 0.1, -0.3, 0.9, 0.2, 0.2, 1.0, -1.0].into_iter().map(r).collect()).unwrap();
    out.push(("threshold ffn".into(), m, x));
    out
}

#[test]
fn every_value_of_a_forward_has_the_backend_precision() {
    let cases = models();
    for p in [8u64, 16, 24, 40, 53, 64, 256] {
        for mode in [FfnEvaluation::Faithful, FfnEvaluation::PrefixSums] {
            let backend = BigFloatBackend::with_threads(p, 2).unwrap().with_ffn_evaluation(mode);
            for (name, model, x) in &cases {
                let audit = PrecisionAudit::start();
                let out = backend.run(model, x).unwrap();
                let report = audit.finish();
                assert!(report.values > 0, "{name}: the audit saw nothing");
                assert_eq!((report.min_bits, report.max_bits), (p, p), "{name} at {p} bits ({mode:?}): {report:?}");
                for v in out.as_slice() {
                    assert_eq!(v.mantissa_bits(), p, "{name}");
                    assert!(v.to_exact().mantissa_bits() <= p, "{name}: {v:?} has more than {p} significant bits");
                }
            }
        }
    }
    // The audit does see a leak: one 53-bit literal in a 24-bit computation.
    let audit = PrecisionAudit::start();
    let _ = BigReal::from_f64_with_bits(0.5, 24).add(&BigReal::from_f64(1.0));
    let report = audit.finish();
    assert_eq!((report.min_bits, report.max_bits), (24, 53));
}
