//! `boltz verify`: a model file on a dataset file, on any backend and precision.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use boltz_bigfloat::BigReal;
use boltz_core::format::{self, Rounding};
use boltz_lab::construction::read_dataset_file;
use boltz_lab::records::{RecordHead, VerifyRecord};
use boltz_lab::request::VerifyParams;
use serde_json::json;

use crate::cli::VerifyArgs;
use boltz_lab::export::EXPORT_FILES;

/// The model and dataset files of `--model` and `--dataset`: a directory that `memorize --export` wrote
/// stands for its exact model, and (without --dataset) for its dataset.
fn model_and_dataset(a: &VerifyArgs) -> Result<(PathBuf, PathBuf)> {
    let [exact, _, dataset] = EXPORT_FILES;
    let (model, from_export) = match a.model.is_dir() {
        true if a.model.join(exact).is_file() => (a.model.join(exact), true),
        true => bail!("--model {}: a directory without {exact} (what memorize --export writes)", a.model.display()),
        false => (a.model.clone(), false),
    };
    let data = match (&a.dataset, from_export) {
        (Some(d), _) => d.clone(),
        (None, true) if a.model.join(dataset).is_file() => a.model.join(dataset),
        (None, true) => bail!("--model {} has no {dataset}: give --dataset", a.model.display()),
        (None, false) => bail!("--dataset is required unless --model is a directory memorize --export wrote"),
    };
    Ok((model, data))
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

pub(crate) fn verify(a: &VerifyArgs) -> Result<bool> {
    let (model_file, dataset_file) = model_and_dataset(a)?;
    // Read exactly (no rounding): a safetensors model in f32/f64 becomes exact big floats, an exact JSON
    // model keeps every digit; the backend rounds to its own precision.
    let model: boltz_core::Model<BigReal> =
        format::load_model(&model_file, Rounding::Forbid).with_context(|| format!("reading --model {}", model_file.display()))?;
    let req = VerifyParams { backend: a.backend, precision: a.precision, threads: a.threads, bisect: a.bisect.then_some((8, a.max_bits)) }
        .check(&model)?;
    let precision = req.target.precision;
    let data = read_dataset_file("--dataset", &dataset_file, a.labels.as_deref(), a.targets.as_deref())?;
    let [big_n, n, d] = data.inputs.shape();
    req.check_dims(&model, &data, (&format!("--model {}", shown(&model_file)), &format!("--dataset {}", shown(&dataset_file))))?;
    errln!("running {} on {} {precision} (N = {big_n}, n = {n}, d = {d})", model_file.display(), a.backend.name());
    if a.bisect {
        match a.max_bits {
            Some(max) => errln!("then searching the fewest bits (8..={max}; each probe is a forward)"),
            None => errln!("then searching the fewest bits (8 up to where the model memorizes; each probe is a forward)"),
        }
    }
    let probes = std::sync::atomic::AtomicUsize::new(0);
    let run = crate::progress::watched(|| {
        req.run(&model, &data, |bits, check| {
            let k = probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            errln!("  probe {k}: {bits} bits {check}");
        })
    })?;
    let layers = model.layer_count();
    let params = model.param_count();
    let record = VerifyRecord {
        head: RecordHead::new("verify", req.threads, serde_json::to_value(a)?),
        model: json!({ "file": model_file, "construction": model.info().construction, "params": params, "layers": layers }),
        dataset: json!({ "file": dataset_file, "N": big_n, "n": n, "d": d }),
        run: run.clone(),
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        outln!(
            "{} ({} layers) on {}: N = {big_n}, n = {n}, d = {d}",
            model_file.display(),
            layers.attention + layers.ffn,
            dataset_file.display()
        );
        match (&run.memorization, &run.run_error) {
            (Some(m), _) => outln!(
                "  {} at {}: {}/{} tokens decoded ({:.1}%), max |error| 1e{:.2}, forward {:.3}s",
                a.backend.name(),
                precision,
                m.decoded,
                m.tokens,
                100.0 * m.accuracy,
                m.log10_max_abs_error,
                run.forward_seconds.unwrap_or(0.0)
            ),
            (None, Some(e)) => outln!("  {} at {precision}: could not run: {e}", a.backend.name()),
            _ => {}
        }
        if let Some(b) = &run.fewest_bits {
            match b.fewest {
                Some(f) => {
                    outln!("  fewest bits for exact memorization: {f} (searched 8..={}, {} probes)", b.hi, b.probes.len());
                    if let Some(audit) = &b.audit {
                        outln!("  checked by the {audit}");
                    }
                }
                None => outln!("  no precision up to {} bits memorizes", b.hi),
            }
        }
    }
    // The checked property: every token decodes on this backend at this precision.
    Ok(run.memorization.is_some_and(|m| m.decoded == m.tokens))
}
