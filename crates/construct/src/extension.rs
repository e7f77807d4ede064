//! What a construction added by its own file provides ([`Extension`]), and what its build takes and gives:
//! a leaf module, so that the registry (`crate::construction`) and the extensions' files both depend on it
//! and not on each other.

/// The inputs of an [`Extension`]'s build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtensionOptions {
    /// Seed of the construction's random choices.
    pub seed: u64,
    /// Worker threads (≥ 1).
    pub threads: usize,
}

/// What an [`Extension`]'s build returns: the model, exact in arbitrary precision, and what it says about itself.
#[derive(Clone, Debug)]
pub struct ExtensionBuilt {
    /// The model, exactly as built.
    pub model: boltz_core::Model<boltz_bigfloat::BigReal>,
    /// The mantissa bits it was built (and verified) with.
    pub bits: u64,
    /// How it memorizes the data at `bits` (the build verifies it).
    pub exact: boltz_core::Memorization,
    /// Its own report (JSON, recorded as the construction's `report`).
    pub report: serde_json::Value,
    /// Human-readable lines for the CLI's summary.
    pub summary: Vec<String>,
}

/// A construction added by its own file and one [`crate::construction::REGISTRY`] entry: how it is built. Errors are the
/// library's ([`boltz_core::Error`]), e.g. data the construction cannot memorize.
pub struct Extension {
    /// Builds the construction on a dataset and verifies it at its build bits.
    pub build: fn(&boltz_core::Dataset<f64>, ExtensionOptions) -> boltz_core::Result<ExtensionBuilt>,
}

impl PartialEq for Extension {
    /// Extensions are `static`s: one is equal to itself only.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Extension {}
