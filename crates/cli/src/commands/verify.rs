//! `boltz verify`: a model file on a dataset file, on any backend and precision.

use anyhow::{bail, Context, Result};
use boltz_bigfloat::BigReal;
use boltz_core::format::{self, Rounding};
use boltz_lab::backends;
use boltz_lab::construction::{read_dataset_file, RunOn};
use boltz_lab::records::{BackendRun, RecordHead, VerifyRecord};
use serde_json::json;

use crate::cli::{threads, VerifyArgs};

pub(crate) fn verify(a: &VerifyArgs) -> Result<bool> {
    let threads = threads(a.threads)?;
    backends::check(a.backend, a.precision)?;
    backends::probe(a.backend)?;
    // Read exactly (no rounding): a safetensors model in f32/f64 becomes exact big floats, an exact JSON
    // model keeps every digit; the backend rounds to its own precision.
    let model: boltz_core::Model<BigReal> =
        format::load_model(&a.model, Rounding::Forbid).with_context(|| format!("reading --model {}", a.model.display()))?;
    let data = read_dataset_file("--dataset", &a.dataset, a.labels.as_deref(), a.targets.as_deref())?;
    let [big_n, n, d] = data.inputs.shape();
    if model.dim() != d {
        bail!("--model {} has token dimension {} but --dataset {} has d = {d}", a.model.display(), model.dim(), a.dataset.display());
    }
    errln!("running {} on {} {} (N = {big_n}, n = {n}, d = {d})", a.model.display(), a.backend.name(), a.precision);
    let run = backends::dispatch(a.backend, a.precision, threads, RunOn { model: &model, data: &data });
    let (mem, seconds, run_error) = match run {
        Ok((m, s)) => (Some(m), Some(s), None),
        Err(e) => (None, None, Some(format!("{e:#}"))),
    };
    let bits = if a.bisect {
        errln!("searching the fewest bits (8..={}; each probe is a forward)", a.max_bits);
        let probes = std::cell::Cell::new(0usize);
        Some(boltz_construct::verify::fewest_bits_to_memorize(
            &model,
            &data,
            &boltz_construct::verify::BitsSearchParams::default().bits(8, a.max_bits).threads(threads),
            |bits, check| {
                probes.set(probes.get() + 1);
                errln!("  probe {}: {bits} bits {check}", probes.get());
            },
        )?)
    } else {
        None
    };
    let layers = model.layer_count();
    let params = model.param_count();
    let record = VerifyRecord {
        head: RecordHead::new("verify", threads, serde_json::to_value(a)?),
        model: json!({ "file": a.model, "construction": model.info().construction, "params": params, "layers": layers }),
        dataset: json!({ "file": a.dataset, "N": big_n, "n": n, "d": d }),
        run: BackendRun {
            backend: a.backend,
            precision: a.precision,
            memorization: mem.clone(),
            run_error: run_error.clone(),
            forward_seconds: seconds,
            fewest_bits: bits.clone(),
        },
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        outln!(
            "{} ({} layers) on {}: N = {big_n}, n = {n}, d = {d}",
            a.model.display(),
            layers.attention + layers.ffn,
            a.dataset.display()
        );
        match (&mem, &run_error) {
            (Some(m), _) => outln!(
                "  {} at {}: {}/{} tokens decoded ({:.1}%), max |error| 1e{:.2}, forward {:.3}s",
                a.backend.name(),
                a.precision,
                m.decoded,
                m.tokens,
                100.0 * m.accuracy,
                m.log10_max_abs_error,
                seconds.unwrap_or(0.0)
            ),
            (None, Some(e)) => outln!("  {} at {}: could not run: {e}", a.backend.name(), a.precision),
            _ => {}
        }
        if let Some(b) = &bits {
            match b.fewest {
                Some(f) => {
                    outln!("  fewest bits for exact memorization: {f} (searched 8..={}, {} probes)", a.max_bits, b.probes.len());
                    if let Some(audit) = &b.audit {
                        outln!("  checked by the {audit}");
                    }
                }
                None => outln!("  no precision up to {} bits memorizes", a.max_bits),
            }
        }
    }
    // The checked property: every token decodes on this backend at this precision.
    Ok(mem.is_some_and(|m| m.decoded == m.tokens))
}
