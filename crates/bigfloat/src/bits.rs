//! Finding the fewest mantissa bits at which a property (e.g. exact memorization) still holds.

use std::time::Instant;

use boltz_core::{Backend, Batch, Error, Model, Result};
use serde::{Deserialize, Serialize};

use crate::backend::BigFloatBackend;
use crate::real::BigReal;

/// One evaluation of the predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Precision tried.
    pub bits: u64,
    /// Whether the predicate held.
    pub holds: bool,
    /// Wall time of the forward and the predicate, seconds.
    pub seconds: f64,
}

/// The result of [`fewest_bits`], with everything needed to reproduce it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BitsSearch {
    /// Lower end of the searched range.
    pub lo: u64,
    /// Upper end of the searched range.
    pub hi: u64,
    /// The fewest bits in `lo..=hi` for which the predicate holds; `None` if it fails even at `hi`.
    pub fewest: Option<u64>,
    /// Every probe, in the order made.
    pub probes: Vec<Probe>,
}

/// Bisects `lo..=hi` for the fewest bits at which `predicate(outputs)` holds when `model` runs on
/// `inputs` in that many bits (weights and inputs rounded to it).
///
/// The predicate is assumed monotone (more bits never break it); the probes are recorded so that a
/// violation can be seen. Costs `⌈log2(hi − lo)⌉ + 2` forwards.
pub fn fewest_bits(
    model: &Model<BigReal>,
    inputs: &Batch<BigReal>,
    lo: u64,
    hi: u64,
    threads: usize,
    predicate: impl Fn(&Batch<BigReal>) -> bool,
) -> Result<BitsSearch> {
    if lo > hi {
        return Err(Error::InvalidParameter { name: "bits range".into(), reason: format!("lo = {lo} > hi = {hi}") });
    }
    let mut probes = Vec::new();
    let mut probe = |bits: u64| -> Result<bool> {
        let start = Instant::now();
        let backend = BigFloatBackend::with_threads(bits, threads)?;
        let out = backend.run(model, inputs)?;
        let holds = predicate(&out);
        probes.push(Probe { bits, holds, seconds: start.elapsed().as_secs_f64() });
        Ok(holds)
    };
    let fewest = smallest_holding(lo, hi, &mut probe)?;
    Ok(BitsSearch { lo, hi, fewest, probes })
}

/// The smallest `x` in `lo..=hi` for which the monotone predicate `holds` is true (`None` if it fails at
/// `hi`): probes `hi`, then `lo`, then bisects. Errors from the predicate stop the search.
pub fn smallest_holding<X, E>(lo: X, hi: X, mut holds: impl FnMut(X) -> Result<bool, E>) -> Result<Option<X>, E>
where
    X: Copy + PartialOrd + std::ops::Add<Output = X> + std::ops::Sub<Output = X> + std::ops::Div<Output = X> + From<u8>,
{
    if !holds(hi)? {
        return Ok(None);
    }
    if holds(lo)? {
        return Ok(Some(lo));
    }
    // Invariant: fails at `a`, holds at `b`.
    let (mut a, mut b) = (lo, hi);
    let (one, two) = (X::from(1u8), X::from(2u8));
    while b - a > one {
        let mid = a + (b - a) / two;
        if holds(mid)? {
            b = mid;
        } else {
            a = mid;
        }
    }
    Ok(Some(b))
}
