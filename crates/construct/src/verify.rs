//! Checking a built model against its data: in any element type on any backend, and the fewest bits.

use boltz_bigfloat::{fewest_bits_to_decode_near, BigReal, BitsSearch, DecodeCheck, ScanWindow};
use boltz_core::{Backend, Batch, Dataset, Memorization, Model, Real, Result};

/// Runs `model` rounded to `T` on `backend` over `data` (one batched forward after `prepare`): how well it
/// memorizes, and the seconds of that forward. An [`boltz_core::Error::NonFinite`] means the weights do
/// not even fit `T`; an [`boltz_core::Error::Overflow`], that the forward left `T`'s range. The one place
/// that runs a built model on a backend (the CLI, the experiments and the construction suite use it).
pub fn run_and_measure<T: Real, B: Backend<T>>(model: &Model<BigReal>, data: &Dataset<f64>, backend: &B) -> Result<(Memorization, f64)> {
    let (m, seconds) = run_and_time(model, data, backend, 1)?;
    Ok((m, seconds[0]))
}

/// [`run_and_measure`] with the forward repeated `repeats` (≥ 1) times on the one prepared model: the
/// memorization of the first forward and the seconds of every forward, in order (for a median and a
/// spread). Every repeat must give the same outputs (backends are deterministic); a repeat that differs is
/// an error.
pub fn run_and_time<T: Real, B: Backend<T>>(
    model: &Model<BigReal>,
    data: &Dataset<f64>,
    backend: &B,
    repeats: usize,
) -> Result<(Memorization, Vec<f64>)> {
    let m: Model<T> = model.convert()?;
    let x: Batch<T> = data.inputs.convert()?;
    let y: Batch<T> = data.targets.convert()?;
    let prepared = backend.prepare(&m)?;
    let mut seconds = Vec::with_capacity(repeats.max(1));
    let mut first: Option<Batch<T>> = None;
    for _ in 0..repeats.max(1) {
        let start = std::time::Instant::now();
        let out = backend.forward(&prepared, &x)?;
        seconds.push(start.elapsed().as_secs_f64());
        match &first {
            None => first = Some(out),
            Some(f) if f.as_slice() != out.as_slice() => {
                return Err(boltz_core::Error::Backend {
                    backend: backend.name(),
                    op: "repeated forward",
                    message: "a repeat gave different outputs from the first forward on the same prepared model".into(),
                });
            }
            Some(_) => {}
        }
    }
    let out = first.ok_or(boltz_core::Error::InvalidParameter { name: "repeats".into(), reason: "at least one forward".into() })?;
    Ok((Memorization::measure(&out, &y)?, seconds))
}

/// [`run_and_measure`] without the timing.
pub fn memorization_in<T: Real, B: Backend<T>>(model: &Model<BigReal>, data: &Dataset<f64>, backend: &B) -> Result<Memorization> {
    run_and_measure(model, data, backend).map(|(m, _)| m)
}

/// How to search the fewest bits (the one value every fewest-bits question takes, in faer's `SvdParams`
/// style: `#[non_exhaustive]`, start from [`Default`] and set what differs with the builder methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BitsSearchParams {
    /// The smallest precision searched (8).
    pub lo: u64,
    /// The largest (the build bits, usually: the model is exact there). Default 4 096.
    pub hi: u64,
    /// An estimate of the answer to start from (galloping from it, [`boltz_bigfloat::fewest_bits_near`]);
    /// `None` bisects `lo..=hi`. The answer is the same either way.
    pub guess: Option<u64>,
    /// Worker threads of the arbitrary-precision backend (0: all cores, [`boltz_core::threads`]).
    pub threads: usize,
    /// The dense scan around the bisection's answer.
    pub window: ScanWindow,
}

impl Default for BitsSearchParams {
    fn default() -> Self {
        Self { lo: 8, hi: 4096, guess: None, threads: 0, window: ScanWindow::default() }
    }
}

impl BitsSearchParams {
    /// Searches `lo..=hi`.
    pub fn bits(self, lo: u64, hi: u64) -> Self {
        Self { lo, hi, ..self }
    }

    /// Starts from an estimate (`None` bisects).
    pub fn guess(self, guess: Option<u64>) -> Self {
        Self { guess, ..self }
    }

    /// Runs with `threads` workers (0: all cores).
    pub fn threads(self, threads: usize) -> Self {
        Self { threads, ..self }
    }
}

/// The fewest bits in `params.lo..=params.hi` at which every token of `data` still decodes to its label
/// when `model` runs with weights, inputs and arithmetic at that precision (faithful evaluation; each
/// probe's verdict by [`boltz_bigfloat::BigFloatBackend::decodes_all`], which runs a memorizer's `O(K)` FFN
/// sum only for the tokens a rigorous enclosure of it cannot decide). `on_probe(bits, check)` is called
/// after every probe (each is a whole forward at that precision: progress for long searches; `|_, _| {}`
/// for none). The one entry point of the search: the constructions' `fewest_bits` methods, the CLI, the
/// suite and Python all come here.
pub fn fewest_bits_to_memorize(
    model: &Model<BigReal>,
    data: &Dataset<f64>,
    params: &BitsSearchParams,
    on_probe: impl Fn(u64, &DecodeCheck),
) -> Result<BitsSearch> {
    let x: Batch<BigReal> = data.inputs.convert()?;
    let y: Batch<BigReal> = data.targets.convert()?;
    let threads = boltz_core::threads::resolve(Some(params.threads));
    fewest_bits_to_decode_near(model, &x, &y, params.lo, params.hi, params.guess, threads, params.window, on_probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContextualOptions, Memorizer, Policy};
    use boltz_core::{DatasetSpec, ReferenceBackend};

    /// The memorizer's search starts from its analytic estimate and finds what a plain bisection finds.
    #[test]
    fn search_from_the_estimate_finds_the_bisections_answer() {
        for (seed, policy) in [(1, Policy::Measured), (2, Policy::Measured), (3, Policy::FewestBits)] {
            let spec = DatasetSpec { sequences: 8, length: 4, dim: 3, vocab: 8, seed, ..Default::default() };
            let data = Dataset::<f64>::generate(&spec).expect("dataset");
            let opts = ContextualOptions { policy, threads: 1, verify_top: 0, ..Default::default() };
            let m = Memorizer::build(&data, &opts).expect("build");
            let hi = m.report.build_bits;
            let estimate = m.report.bits_estimate().expect("an estimate");
            let near = m.fewest_bits(&data, &BitsSearchParams::default().bits(8, hi).threads(1)).expect("search from the estimate");
            let plain = fewest_bits_to_memorize(&m.model, &data, &BitsSearchParams::default().bits(8, hi).threads(1), |_, _| {})
                .expect("bisection");
            eprintln!(
                "seed {seed} {policy:?}: estimate {estimate}, fewest {:?}, probes {} vs {}",
                near.fewest,
                near.probes.len(),
                plain.probes.len()
            );
            assert_eq!(near.fewest, plain.fewest, "seed {seed}");
            assert_eq!(near.bisection, plain.bisection, "seed {seed}");
            // `hi` first (as the bisection), then the estimate.
            assert_eq!((near.probes[0].bits, near.probes[1].bits), (hi, estimate.clamp(8, hi)));
        }
    }

    /// Repeated forwards of one prepared model: one timing each, and the memorization of a single run.
    #[test]
    fn repeats_time_every_forward_and_measure_the_same_memorization() {
        let spec = DatasetSpec { sequences: 6, length: 4, dim: 3, vocab: 8, ..Default::default() };
        let data = Dataset::<f64>::generate(&spec).expect("dataset");
        let m =
            Memorizer::build(&data, &ContextualOptions { policy: Policy::FewestBits, threads: 1, ..Default::default() }).expect("build");
        let (once, _) = run_and_measure::<f64, _>(&m.model, &data, &ReferenceBackend).expect("one run");
        let (repeated, seconds) = run_and_time::<f64, _>(&m.model, &data, &ReferenceBackend, 4).expect("repeats");
        assert_eq!(once, repeated);
        assert_eq!(seconds.len(), 4);
        assert!(seconds.iter().all(|s| s.is_finite() && *s >= 0.0));
        // Zero repeats still run (and time) one forward.
        assert_eq!(run_and_time::<f32, _>(&m.model, &data, &ReferenceBackend, 0).expect("one forward").1.len(), 1);
    }
}
