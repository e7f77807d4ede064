//! The constructions on this backend (`construction_suite!`): the one-layer memorizer and a small Yun et
//! al. model, built and verified in arbitrary precision, then run here in each element type — exact where
//! the precision covers their measured fewest bits, the documented error (or any accuracy) where not.

use boltz_core::ReferenceBackend;

boltz_construct::construction_suite!(mod reference_f64, name: "reference", elem: f64, ctor: || Ok(ReferenceBackend::new()));
boltz_construct::construction_suite!(mod reference_f32, name: "reference", elem: f32, ctor: || Ok(ReferenceBackend::new()));

/// The suite can fail: a backend that computes a wrong forward (every output shifted by 1, a whole label,
/// so every token decodes to the wrong class) is caught wherever exactness is promised.
#[test]
fn a_wrong_backend_is_caught() {
    use boltz_core::{Backend, Batch, DeviceInfo, Model, Result};

    struct Shifted(ReferenceBackend);
    impl Backend<f64> for Shifted {
        type Prepared = <ReferenceBackend as Backend<f64>>::Prepared;
        fn name(&self) -> &'static str {
            "shifted"
        }
        fn device_info(&self) -> DeviceInfo {
            Backend::<f64>::device_info(&self.0)
        }
        fn prepare(&self, model: &Model<f64>) -> Result<Self::Prepared> {
            self.0.prepare(model)
        }
        fn forward(&self, model: &Self::Prepared, input: &Batch<f64>) -> Result<Batch<f64>> {
            let out = self.0.forward(model, input)?;
            let data = out.as_slice().iter().map(|x| x + 1.0).collect();
            Batch::new(out.batch(), out.len(), out.dim(), data)
        }
    }
    for fixture in [boltz_construct::suite::memorizer(), boltz_construct::suite::yun()] {
        let err = boltz_construct::suite::check_on::<f64, _>(fixture, &Shifted(ReferenceBackend::new()), 53).unwrap_err();
        assert!(err.contains("accuracy"), "{err}");
    }
}
