//! The constructions on this backend (`construction_suite!`): the one-layer memorizer and a small Yun et
//! al. model, built and verified in arbitrary precision, then run here in each element type — exact where
//! the precision covers their measured fewest bits, the documented error (or any accuracy) where not.

use boltz_cpu::CpuBackend;

boltz_construct::construction_suite!(mod cpu_f64, name: "cpu", elem: f64, ctor: || CpuBackend::new(2));
boltz_construct::construction_suite!(mod cpu_f32, name: "cpu", elem: f32, ctor: || CpuBackend::new(2));
