//! The conformance suite must be able to fail: each deliberately broken backend below trips at least the
//! named case, while the reference passes it.

#![allow(clippy::unwrap_used)]

use boltz_core::conformance::{self, tolerance_for_bits};
use boltz_core::reference::DenseModel;
use boltz_core::{Backend, Batch, DeviceInfo, Model, Normalizer, ReferenceBackend, Result};

#[derive(Clone, Copy)]
enum Bug {
    IgnoreCausalMask,
    HardmaxAsSoftmax,
    DropQueryBias,
    RelativeNoise(f64),
    TransposeFactors,
}

struct Buggy(Bug);

impl Backend<f64> for Buggy {
    type Prepared = DenseModel<f64>;
    fn name(&self) -> &'static str {
        "buggy"
    }
    fn device_info(&self) -> DeviceInfo {
        DeviceInfo::default()
    }
    fn prepare(&self, model: &Model<f64>) -> Result<DenseModel<f64>> {
        let mut blocks = model.blocks().to_vec();
        for b in &mut blocks {
            if let Some(a) = &mut b.attention {
                match self.0 {
                    Bug::IgnoreCausalMask => a.causal = false,
                    Bug::HardmaxAsSoftmax => a.normalizer = Normalizer::Softmax,
                    Bug::DropQueryBias => a.heads.iter_mut().for_each(|h| h.b_q = None),
                    Bug::TransposeFactors => a.heads.iter_mut().for_each(|h| {
                        if let boltz_core::Weight::Factored { u, v } = &h.w_q {
                            if u.rows() == v.rows() {
                                h.w_q = boltz_core::Weight::Factored { u: v.clone(), v: u.clone() };
                            }
                        }
                    }),
                    Bug::RelativeNoise(_) => {}
                }
            }
        }
        Ok(DenseModel::new(&Model::new(model.dim(), blocks, model.info().clone())?))
    }
    fn forward(&self, model: &DenseModel<f64>, input: &Batch<f64>) -> Result<Batch<f64>> {
        let y = ReferenceBackend.forward(model, input)?;
        match self.0 {
            Bug::RelativeNoise(eps) => {
                let data = y.as_slice().iter().enumerate().map(|(i, x)| x * (1.0 + if i % 3 == 0 { eps } else { 0.0 })).collect();
                Batch::new(y.batch(), y.len(), y.dim(), data)
            }
            _ => Ok(y),
        }
    }
}

type Case = fn(&Buggy, f64) -> std::result::Result<(), String>;

#[test]
fn each_bug_is_caught() {
    let tol = tolerance_for_bits(53);
    let cases: [(Bug, &str, Case); 6] = [
        (Bug::IgnoreCausalMask, "causal prefix", conformance::causal_prefix_independence::<f64, Buggy>),
        (Bug::IgnoreCausalMask, "random models", conformance::random_models_match_reference::<f64, Buggy>),
        (Bug::HardmaxAsSoftmax, "hardmax ties", conformance::hardmax_ties_split_equally::<f64, Buggy>),
        (Bug::DropQueryBias, "query bias", conformance::query_bias_selects_extremes::<f64, Buggy>),
        (Bug::RelativeNoise(1e-9), "random models at f64 tolerance", conformance::random_models_match_reference::<f64, Buggy>),
        (Bug::TransposeFactors, "odd sizes", conformance::odd_sizes_match_reference::<f64, Buggy>),
    ];
    for (bug, what, case) in cases {
        assert!(case(&Buggy(bug), tol).is_err(), "the suite missed a bug: {what}");
    }
    // And the same cases pass on the reference itself.
    assert!(conformance::causal_prefix_independence::<f64, _>(&ReferenceBackend, tol).is_ok());
}

#[test]
fn missing_device_skips_unless_required() {
    let no_device =
        || -> Result<ReferenceBackend> { Err(boltz_core::Error::NoDevice { backend: "ghost", reason: "no such device".into() }) };
    assert!(conformance::obtain("ghost", no_device).is_none());
}

/// `BOLTZ_REQUIRE_BACKEND` is case-insensitive and refuses unknown names (a typo must not silently skip).
#[test]
fn required_backend_names_are_checked() {
    use boltz_core::conformance::parse_required_backends;
    assert_eq!(parse_required_backends("CUDA").unwrap(), vec!["cuda"]);
    assert_eq!(parse_required_backends(" cpu , Blas ,").unwrap(), vec!["cpu", "blas"]);
    assert_eq!(parse_required_backends("").unwrap(), Vec::<String>::new());
    let err = parse_required_backends("cuda,gpu").unwrap_err();
    assert!(err.contains("\"gpu\"") && err.contains("reference, cpu, blas, bigfloat, cuda"), "{err}");
}
