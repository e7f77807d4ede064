//! The constructions on this backend (`construction_suite!`): the one-layer memorizer and a small Yun et
//! al. model, built and verified in arbitrary precision, then run here in each element type — exact where
//! the precision covers their measured fewest bits, the documented error (or any accuracy) where not.
//! Without a GPU every case prints `SKIPPED cuda: <reason>` and passes, unless `BOLTZ_REQUIRE_BACKEND=cuda`.

use boltz_cuda::CudaBackend;

boltz_construct::construction_suite!(mod cuda_f64, name: "cuda", elem: f64, ctor: CudaBackend::new);
boltz_construct::construction_suite!(mod cuda_f32, name: "cuda", elem: f32, ctor: CudaBackend::new);
