pub use boltz_core as core;
