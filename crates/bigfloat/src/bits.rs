//! Finding the fewest mantissa bits at which a property (e.g. exact memorization) still holds.

use std::time::Instant;

use boltz_core::{Backend, Batch, Error, Model, Result};
use serde::{Deserialize, Serialize};

use crate::backend::{BigFloatBackend, DecodeCheck};
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
///
/// **Definition.** `fewest` is the smallest probed precision `p` such that *every* probed `p′ ≥ p` held —
/// "from `p` bits up, nothing we tried failed". The predicate (e.g. exact memorization) is not monotone at
/// low precision: rounding can break a token at 36 bits that decodes at 35 and 37. So the bisection's
/// answer is followed by a dense local scan ([`ScanWindow`]: every precision from 4 bits below to 4 bits
/// above it), and isolated precisions that hold below a failing one are reported in `holds_at`, not as
/// `fewest`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BitsSearch {
    /// Lower end of the searched range.
    pub lo: u64,
    /// Upper end of the searched range.
    pub hi: u64,
    /// The fewest bits as defined above; `None` if the predicate fails even at `hi`.
    pub fewest: Option<u64>,
    /// What bisection alone (assuming monotonicity) reported.
    #[serde(default)]
    pub bisection: Option<u64>,
    /// Runs of probed precisions that held, as inclusive `[from, to]` ranges of consecutive probes in
    /// increasing order of bits (precisions between two probes of a run were not all probed).
    #[serde(default)]
    pub holds_at: Vec<[u64; 2]>,
    /// Whether every probe that held lies above every probe that failed.
    #[serde(default)]
    pub monotone: bool,
    /// Every probe, in the order made.
    pub probes: Vec<Probe>,
    /// For searches whose probes were certified ([`fewest_bits_to_decode_near`]): the faithful forward's
    /// confirmation of the answer on a sample (`None` for other searches, and when nothing held).
    #[serde(default)]
    pub audit: Option<BitsAudit>,
}

/// A certified search's answer re-checked by the plain faithful forward (independent of the enclosure
/// that decided the probes): at `bits` (the fewest), every token of `sequences` decodes; at `failing_bits`
/// (the highest failing probe below it, if any), the first token in sequence order that the certified
/// probe finds failing, `failing_token` = `[sequence, position]`, does not decode either (checked where
/// the model's last FFN is certified; `None` otherwise). A disagreement is an error, never a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitsAudit {
    /// The fewest bits the search answered.
    pub bits: u64,
    /// Sequences run faithfully at `bits` (every token decoded).
    pub sequences: Vec<usize>,
    /// The highest failing probe below `bits`.
    pub failing_bits: Option<u64>,
    /// The failing token found there, confirmed by the faithful forward.
    pub failing_token: Option<[usize; 2]>,
}

/// The dense scan around the bisection's answer `b`: every precision in `[b − below, b + above]`
/// (clipped to the searched range) is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanWindow {
    /// Precisions scanned below the bisection's answer.
    pub below: u64,
    /// Precisions scanned above it.
    pub above: u64,
}

/// Four bits either side. The scan above guards `fewest` (a failure just above the bisection's answer
/// moves it up); the scan below only reports islands in `holds_at`. It was 16 below until 2026-12: none of
/// the 58 searches then committed under `results/` found a single island or failure outside a monotone
/// split, and 12 more probes per search (a third of the precision experiment's time) bought nothing.
impl Default for ScanWindow {
    fn default() -> Self {
        Self { below: 4, above: 4 }
    }
}

/// The fewest bits in `lo..=hi` at which `predicate(outputs)` holds when `model` runs on `inputs` in that
/// many bits (weights, inputs and every operation rounded to it), as defined on [`BitsSearch`], with the
/// default [`ScanWindow`]. Costs `⌈log2(hi − lo)⌉ + 2` forwards for the bisection plus up to 9 for the scan.
pub fn fewest_bits(
    model: &Model<BigReal>,
    inputs: &Batch<BigReal>,
    lo: u64,
    hi: u64,
    threads: usize,
    predicate: impl Fn(&Batch<BigReal>) -> bool,
) -> Result<BitsSearch> {
    fewest_bits_scanned(model, inputs, lo, hi, threads, ScanWindow::default(), predicate)
}

/// [`fewest_bits`] with a chosen scan window.
pub fn fewest_bits_scanned(
    model: &Model<BigReal>,
    inputs: &Batch<BigReal>,
    lo: u64,
    hi: u64,
    threads: usize,
    scan: ScanWindow,
    predicate: impl Fn(&Batch<BigReal>) -> bool,
) -> Result<BitsSearch> {
    fewest_bits_near(model, inputs, lo, hi, None, threads, scan, predicate)
}

/// [`fewest_bits_scanned`] starting from an estimate. With `guess = Some(g)` the search probes `hi` (as the
/// bisection does: nothing to search if even it fails), then `g`, and gallops away from `g` (steps 1, 2,
/// 4, … down while it holds, up while it fails) until a failing and a holding precision bracket the answer,
/// then bisects the bracket ([`smallest_holding_near`]). The result is the same as bisecting `lo..=hi`
/// whenever the predicate is monotone; a good estimate (e.g. the analytic `log2(2R|ΔT|/gap)` of a
/// memorizer) saves most of the bisection's probes, a bad one costs about twice the logarithm of its error.
/// `None` bisects. The dense scan follows as in [`fewest_bits_scanned`].
#[allow(clippy::too_many_arguments)]
pub fn fewest_bits_near(
    model: &Model<BigReal>,
    inputs: &Batch<BigReal>,
    lo: u64,
    hi: u64,
    guess: Option<u64>,
    threads: usize,
    scan: ScanWindow,
    predicate: impl Fn(&Batch<BigReal>) -> bool,
) -> Result<BitsSearch> {
    search(lo, hi, guess, scan, |bits| {
        let backend = BigFloatBackend::with_threads(bits, threads)?;
        Ok(predicate(&backend.run(model, inputs)?))
    })
}

/// [`fewest_bits_near`] for the predicate "every token decodes to its row of `targets`"
/// ([`boltz_core::decodes`], the rule of [`boltz_core::Memorization::measure`]), each probe decided by
/// [`BigFloatBackend::decodes_all`]: the same verdicts as a faithful forward per probe (so the same
/// search), with the last FFN's faithful sum run only for the tokens its rigorous enclosure leaves
/// undecided — what makes the memorizer's search at N = 10⁴ affordable. `on_probe(bits, check)` is called
/// after every probe.
#[allow(clippy::too_many_arguments)]
pub fn fewest_bits_to_decode_near(
    model: &Model<BigReal>,
    inputs: &Batch<BigReal>,
    targets: &Batch<BigReal>,
    lo: u64,
    hi: u64,
    guess: Option<u64>,
    threads: usize,
    scan: ScanWindow,
    on_probe: impl Fn(u64, &DecodeCheck),
) -> Result<BitsSearch> {
    let mut result = search(lo, hi, guess, scan, |bits| {
        let backend = BigFloatBackend::with_threads(bits, threads)?;
        let check = backend.decodes_all(&backend.prepare(model)?, inputs, targets)?;
        on_probe(bits, &check);
        Ok(check.holds)
    })?;
    result.audit = audit(model, inputs, targets, &result, threads)?;
    Ok(result)
}

/// One line for reports: what the faithful forward re-checked.
impl std::fmt::Display for BitsAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "faithful forward: all {} sequences checked decode at {} bits", self.sequences.len(), self.bits)?;
        match (self.failing_bits, self.failing_token) {
            (Some(bits), Some([b, k])) => write!(f, "; token {k} of sequence {b} fails at {bits} bits"),
            _ => Ok(()),
        }
    }
}

/// Sequences the audit re-runs faithfully at the fewest bits.
const AUDIT_SEQUENCES: usize = 8;

/// The [`BitsAudit`] of a certified search: the faithful forward of [`AUDIT_SEQUENCES`] sequences spread
/// over the batch (the first, the last and evenly between) at the answer, and — where the model's last FFN
/// is certified — of the sequence holding the first failing token (in sequence order) at the highest
/// failing probe below it.
fn audit(
    model: &Model<BigReal>,
    inputs: &Batch<BigReal>,
    targets: &Batch<BigReal>,
    search: &BitsSearch,
    threads: usize,
) -> Result<Option<BitsAudit>> {
    let Some(bits) = search.fewest else { return Ok(None) };
    let disagree = |what: String| Error::Backend { backend: "bigfloat", op: "certified fewest-bits search", message: what };
    let batch = inputs.batch();
    let mut sequences: Vec<usize> = match batch <= AUDIT_SEQUENCES {
        true => (0..batch).collect(),
        false => (0..AUDIT_SEQUENCES).map(|i| i * (batch - 1) / (AUDIT_SEQUENCES - 1)).collect(),
    };
    sequences.dedup();
    let backend = BigFloatBackend::with_threads(bits, threads)?;
    let prepared = backend.prepare(model)?;
    for (b, decoded) in sequences.iter().zip(backend.faithful_decodes(&prepared, inputs, targets, &sequences)?) {
        if let Some(k) = decoded.iter().position(|ok| !ok) {
            return Err(disagree(format!(
                "at {bits} bits the certified probe held, but token {k} of sequence {b} does not decode faithfully"
            )));
        }
    }
    let failing_bits = search.probes.iter().filter(|p| !p.holds && p.bits < bits).map(|p| p.bits).max();
    let mut failing_token = None;
    if let Some(fb) = failing_bits.filter(|_| backend.certifies(&prepared)) {
        // One thread: the sequences are then checked in order, so the failing token reported is the same
        // on every run (the first in sequence order), which `boltz check` compares exactly.
        let backend = BigFloatBackend::with_threads(fb, 1)?;
        let prepared = backend.prepare(model)?;
        let check = backend.decodes_all(&prepared, inputs, targets)?;
        let [b, k] = check.failure.ok_or_else(|| disagree(format!("the probe at {fb} bits failed once but holds when repeated")))?;
        if backend.faithful_decodes(&prepared, inputs, targets, &[b])?.first().is_none_or(|d| d[k]) {
            return Err(disagree(format!("at {fb} bits the certified probe failed token {k} of sequence {b}, which decodes faithfully")));
        }
        failing_token = Some([b, k]);
    }
    Ok(Some(BitsAudit { bits, sequences, failing_bits, failing_token }))
}

/// The search of [`fewest_bits_near`] over a predicate of the precision (each value probed at most once).
fn search(lo: u64, hi: u64, guess: Option<u64>, scan: ScanWindow, mut holds: impl FnMut(u64) -> Result<bool>) -> Result<BitsSearch> {
    if lo > hi {
        return Err(Error::InvalidParameter { name: "bits range".into(), reason: format!("lo = {lo} > hi = {hi}") });
    }
    let mut probes: Vec<Probe> = Vec::new();
    let mut probe = |bits: u64, probes: &mut Vec<Probe>| -> Result<bool> {
        if let Some(p) = probes.iter().find(|p| p.bits == bits) {
            return Ok(p.holds);
        }
        let start = Instant::now();
        let held = holds(bits)?;
        probes.push(Probe { bits, holds: held, seconds: start.elapsed().as_secs_f64() });
        Ok(held)
    };
    let bisection = match guess {
        // `hi` first, as the bisection does: nothing to search if even it fails, and the top run of
        // holding probes then reaches `hi`.
        Some(g) => match probe(hi, &mut probes)? {
            true => smallest_holding_near(lo, hi, g, |bits| probe(bits, &mut probes))?,
            false => None,
        },
        None => smallest_holding(lo, hi, |bits| probe(bits, &mut probes))?,
    };
    if let Some(b) = bisection {
        for bits in b.saturating_sub(scan.below).max(lo)..=b.saturating_add(scan.above).min(hi) {
            probe(bits, &mut probes)?;
        }
    }
    let (fewest, holds_at, monotone) = summarize(&probes);
    Ok(BitsSearch { lo, hi, fewest, bisection, holds_at, monotone, probes, audit: None })
}

/// `fewest` (smallest holding probe above the highest failing one), the runs of holding probes, and
/// whether the probes are monotone.
fn summarize(probes: &[Probe]) -> (Option<u64>, Vec<[u64; 2]>, bool) {
    let mut sorted: Vec<&Probe> = probes.iter().collect();
    sorted.sort_by_key(|p| p.bits);
    let highest_fail = sorted.iter().filter(|p| !p.holds).map(|p| p.bits).max();
    let fewest = sorted.iter().find(|p| p.holds && highest_fail.is_none_or(|f| p.bits > f)).map(|p| p.bits);
    let mut runs: Vec<[u64; 2]> = Vec::new();
    let mut open = false;
    for p in &sorted {
        match (p.holds, open) {
            (true, true) => {
                if let Some(last) = runs.last_mut() {
                    last[1] = p.bits;
                }
            }
            (true, false) => {
                runs.push([p.bits, p.bits]);
                open = true;
            }
            (false, _) => open = false,
        }
    }
    let lowest_hold = sorted.iter().filter(|p| p.holds).map(|p| p.bits).min();
    let monotone = match (lowest_hold, highest_fail) {
        (Some(h), Some(f)) => h > f,
        _ => true,
    };
    (fewest, runs, monotone)
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
    bisect_bracket(lo, hi, holds).map(Some)
}

/// The smallest holding `x` in `(a, b]` for a monotone predicate that fails at `a` and holds at `b`.
fn bisect_bracket<X, E>(mut a: X, mut b: X, mut holds: impl FnMut(X) -> Result<bool, E>) -> Result<X, E>
where
    X: Copy + PartialOrd + std::ops::Add<Output = X> + std::ops::Sub<Output = X> + std::ops::Div<Output = X> + From<u8>,
{
    let (one, two) = (X::from(1u8), X::from(2u8));
    while b - a > one {
        let mid = a + (b - a) / two;
        if holds(mid)? {
            b = mid;
        } else {
            a = mid;
        }
    }
    Ok(b)
}

/// [`smallest_holding`] for `u64`, starting at `guess` (clamped to `lo..=hi`): gallops down from it while
/// the predicate holds, or up while it fails, doubling the step, until a failing `a` and a holding `b`
/// bracket the answer; then bisects `(a, b]`. Same answer as [`smallest_holding`] for a monotone predicate
/// (`None` if it fails at `hi`), in about `2·log2|answer − guess| + 2` evaluations.
pub fn smallest_holding_near<E>(lo: u64, hi: u64, guess: u64, mut holds: impl FnMut(u64) -> Result<bool, E>) -> Result<Option<u64>, E> {
    if lo > hi {
        return Ok(None);
    }
    let g = guess.clamp(lo, hi);
    // After galloping: fails at `a`, holds at `b`, a < b.
    let (mut a, mut b);
    if holds(g)? {
        b = g;
        let mut step = 1u64;
        loop {
            if b == lo {
                return Ok(Some(lo));
            }
            let x = b.saturating_sub(step).max(lo);
            if holds(x)? {
                b = x;
                step = step.saturating_mul(2);
            } else {
                a = x;
                break;
            }
        }
    } else {
        a = g;
        let mut step = 1u64;
        loop {
            if a == hi {
                return Ok(None);
            }
            let x = a.saturating_add(step).min(hi);
            if holds(x)? {
                b = x;
                break;
            }
            a = x;
            step = step.saturating_mul(2);
        }
    }
    bisect_bracket(a, b, holds).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(bits: u64, holds: bool) -> Probe {
        Probe { bits, holds, seconds: 0.0 }
    }

    #[test]
    fn galloping_from_a_guess_finds_what_bisection_finds() {
        // Every threshold in 8..=300 (and "never"), every guess, against plain bisection and the truth.
        for threshold in (8u64..=301).step_by(7).chain([8, 9, 299, 300, 301]) {
            for guess in [0u64, 8, 9, 50, threshold.saturating_sub(1), threshold, threshold + 1, 299, 300, 10_000] {
                let mut calls = 0;
                let near = smallest_holding_near::<()>(8, 300, guess, |x| {
                    calls += 1;
                    Ok(x >= threshold)
                })
                .unwrap_or(None);
                let plain = smallest_holding::<u64, ()>(8, 300, |x| Ok(x >= threshold)).unwrap_or(None);
                let truth = (threshold <= 300).then_some(threshold.max(8));
                assert_eq!(near, truth, "threshold {threshold}, guess {guess}");
                assert_eq!(plain, truth);
                let miss = guess.clamp(8, 300).abs_diff(threshold.clamp(8, 300)) as f64 + 1.0;
                assert!(f64::from(calls) <= 2.0 * miss.log2().ceil() + 3.0, "{calls} calls for a miss of {miss}");
            }
        }
        assert_eq!(smallest_holding_near::<()>(5, 4, 4, |_| Ok(true)), Ok(None));
        assert_eq!(smallest_holding_near::<&str>(8, 30, 12, |_| Err("stop")), Err("stop"));
    }

    #[test]
    fn fewest_is_the_start_of_the_top_holding_run() {
        let probes = [p(100, true), p(8, false), p(35, true), p(36, false), p(37, true), p(40, true), p(20, false)];
        let (fewest, runs, monotone) = summarize(&probes);
        assert_eq!(fewest, Some(37));
        assert_eq!(runs, vec![[35, 35], [37, 100]]);
        assert!(!monotone);
        let (fewest, runs, monotone) = summarize(&[p(64, true), p(8, false), p(30, true), p(29, false)]);
        assert_eq!((fewest, runs, monotone), (Some(30), vec![[30, 64]], true));
        assert_eq!(summarize(&[p(64, false)]).0, None);
    }
}
