//! Checking a built model against its data: in any element type on any backend, and the fewest bits.

use boltz_bigfloat::{fewest_bits, BigReal, BitsSearch};
use boltz_core::{Backend, Batch, Dataset, Memorization, Model, Real, Result};

/// Runs `model` rounded to `T` on `backend` over `data` (one batched forward after `prepare`): how well it
/// memorizes, and the seconds of that forward. An [`boltz_core::Error::NonFinite`] means the weights do
/// not even fit `T`; an [`boltz_core::Error::Overflow`], that the forward left `T`'s range. The one place
/// that runs a built model on a backend (the CLI, the experiments and the construction suite use it).
pub fn run_and_measure<T: Real, B: Backend<T>>(model: &Model<BigReal>, data: &Dataset<f64>, backend: &B) -> Result<(Memorization, f64)> {
    let m: Model<T> = model.convert()?;
    let x: Batch<T> = data.inputs.convert()?;
    let y: Batch<T> = data.targets.convert()?;
    let prepared = backend.prepare(&m)?;
    let start = std::time::Instant::now();
    let out = backend.forward(&prepared, &x)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((Memorization::measure(&out, &y)?, seconds))
}

/// [`run_and_measure`] without the timing.
pub fn memorization_in<T: Real, B: Backend<T>>(model: &Model<BigReal>, data: &Dataset<f64>, backend: &B) -> Result<Memorization> {
    run_and_measure(model, data, backend).map(|(m, _)| m)
}

/// The fewest bits in `lo..=hi` at which every token of `data` still decodes to its label when `model` runs
/// with weights, inputs and arithmetic at that precision (faithful evaluation).
pub fn fewest_bits_to_memorize(model: &Model<BigReal>, data: &Dataset<f64>, lo: u64, hi: u64, threads: usize) -> Result<BitsSearch> {
    fewest_bits_to_memorize_with(model, data, lo, hi, threads, |_, _| {})
}

/// [`fewest_bits_to_memorize`], calling `on_probe(bits, held)` after every probe (progress for long
/// searches: each probe is a whole forward at that precision).
pub fn fewest_bits_to_memorize_with(
    model: &Model<BigReal>,
    data: &Dataset<f64>,
    lo: u64,
    hi: u64,
    threads: usize,
    on_probe: impl Fn(u64, bool),
) -> Result<BitsSearch> {
    let x: Batch<BigReal> = data.inputs.convert()?;
    let y: Batch<BigReal> = data.targets.convert()?;
    fewest_bits(model, &x, lo, hi, threads, |out| {
        let held = Memorization::measure(out, &y).is_ok_and(|m| m.is_perfect());
        on_probe(out.as_slice().first().map_or(0, BigReal::bits), held);
        held
    })
}
