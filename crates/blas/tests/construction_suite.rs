//! The constructions on this backend (`construction_suite!`): the one-layer memorizer and a small Yun et
//! al. model, built and verified in arbitrary precision, then run here in each element type — exact where
//! the precision covers their measured fewest bits, the documented error (or any accuracy) where not.

use boltz_blas::BlasBackend;

boltz_construct::construction_suite!(mod blas_f64, name: "blas", elem: f64, ctor: || BlasBackend::new(2));
boltz_construct::construction_suite!(mod blas_f32, name: "blas", elem: f32, ctor: || BlasBackend::new(2));
