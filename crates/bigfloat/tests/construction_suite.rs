//! The constructions on this backend (`construction_suite!`): the one-layer memorizer and a small Yun et
//! al. model, built and verified in arbitrary precision, then run here in each element type — exact where
//! the precision covers their measured fewest bits, the documented error (or any accuracy) where not.

use boltz_bigfloat::{BigFloatBackend, BigReal};

boltz_construct::construction_suite!(mod bits24, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(24, 2), bits: 24);
boltz_construct::construction_suite!(mod bits53, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(53, 2), bits: 53);
boltz_construct::construction_suite!(mod bits512, name: "bigfloat", elem: BigReal, ctor: || BigFloatBackend::with_threads(512, 2), bits: 512);
