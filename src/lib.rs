//! `boltzformer`: the facade of the workspace. It re-exports the crates so that examples, benches and
//! cross-crate tests have one dependency.

pub use boltz_bigfloat as bigfloat;
pub use boltz_construct as construct;
pub use boltz_core as core;
pub use boltz_cpu as cpu;
