//! `boltz verify`: a model file on a dataset file, on any backend and precision.

use anyhow::{Context, Result};
use boltz_bigfloat::BigReal;
use boltz_core::format::{self, Rounding};
use boltz_lab::construction::read_dataset_file;
use boltz_lab::records::{RecordHead, VerifyRecord};
use boltz_lab::request::VerifyParams;
use serde_json::json;

use crate::cli::VerifyArgs;

pub(crate) fn verify(a: &VerifyArgs) -> Result<bool> {
    let req = VerifyParams { backend: a.backend, precision: a.precision, threads: a.threads, bisect: a.bisect.then_some((8, a.max_bits)) }
        .check()?;
    // Read exactly (no rounding): a safetensors model in f32/f64 becomes exact big floats, an exact JSON
    // model keeps every digit; the backend rounds to its own precision.
    let model: boltz_core::Model<BigReal> =
        format::load_model(&a.model, Rounding::Forbid).with_context(|| format!("reading --model {}", a.model.display()))?;
    let data = read_dataset_file("--dataset", &a.dataset, a.labels.as_deref(), a.targets.as_deref())?;
    let [big_n, n, d] = data.inputs.shape();
    req.check_dims(&model, &data, (&format!("--model {}", a.model.display()), &format!("--dataset {}", a.dataset.display())))?;
    errln!("running {} on {} {} (N = {big_n}, n = {n}, d = {d})", a.model.display(), a.backend.name(), a.precision);
    if a.bisect {
        errln!("then searching the fewest bits (8..={}; each probe is a forward)", a.max_bits);
    }
    let probes = std::cell::Cell::new(0usize);
    let run = req.run(&model, &data, |bits, check| {
        probes.set(probes.get() + 1);
        errln!("  probe {}: {bits} bits {check}", probes.get());
    })?;
    let layers = model.layer_count();
    let params = model.param_count();
    let record = VerifyRecord {
        head: RecordHead::new("verify", req.threads, serde_json::to_value(a)?),
        model: json!({ "file": a.model, "construction": model.info().construction, "params": params, "layers": layers }),
        dataset: json!({ "file": a.dataset, "N": big_n, "n": n, "d": d }),
        run: run.clone(),
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
        match (&run.memorization, &run.run_error) {
            (Some(m), _) => outln!(
                "  {} at {}: {}/{} tokens decoded ({:.1}%), max |error| 1e{:.2}, forward {:.3}s",
                a.backend.name(),
                a.precision,
                m.decoded,
                m.tokens,
                100.0 * m.accuracy,
                m.log10_max_abs_error,
                run.forward_seconds.unwrap_or(0.0)
            ),
            (None, Some(e)) => outln!("  {} at {}: could not run: {e}", a.backend.name(), a.precision),
            _ => {}
        }
        if let Some(b) = &run.fewest_bits {
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
    Ok(run.memorization.is_some_and(|m| m.decoded == m.tokens))
}
