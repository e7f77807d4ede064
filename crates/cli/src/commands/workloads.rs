//! `boltz workloads` and `boltz export`: the shared workload table as data, and its exact numbers as files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use boltz_core::format::{self, Encoding, TensorDict};
use boltz_core::{workloads, Backend, ReferenceBackend};
use serde_json::json;

/// One workload of the table as JSON: shapes, batches, parameters and FLOPs per forward at both batches.
fn describe(w: &workloads::Workload) -> Result<serde_json::Value> {
    let (model, _) = w.build(Some(1))?;
    let params = model.param_count();
    Ok(json!({
        "name": w.name,
        "description": w.description,
        "batch": w.batch,
        "bench_batch": w.bench_batch,
        "n": w.n,
        "d": w.d,
        "blocks": model.blocks().len(),
        "params_dense": params.dense,
        "params_factored": params.factored,
        "flops_per_forward": workloads::flops(&model, w.batch, w.n),
        "flops_per_forward_bench_batch": workloads::flops(&model, w.bench_batch, w.n),
    }))
}

/// `boltz workloads [--json]`.
pub(crate) fn workloads(json: bool) -> Result<bool> {
    let table = workloads::WORKLOADS.iter().map(describe).collect::<Result<Vec<_>>>()?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&json!({ "workloads": table }))?);
    } else {
        outln!(
            "{:<12} {:>7} {:>7} {:>4} {:>4} {:>7} {:>12} {:>16}",
            "workload",
            "batch",
            "bench",
            "n",
            "d",
            "blocks",
            "params",
            "GFLOP/forward"
        );
        for (w, t) in workloads::WORKLOADS.iter().zip(&table) {
            outln!(
                "{:<12} {:>7} {:>7} {:>4} {:>4} {:>7} {:>12} {:>16.3}",
                w.name,
                w.batch,
                w.bench_batch,
                w.n,
                w.d,
                t["blocks"].as_u64().unwrap_or(0),
                t["params_dense"].as_u64().unwrap_or(0),
                t["flops_per_forward"].as_f64().unwrap_or(f64::NAN) / 1e9
            );
        }
    }
    Ok(true)
}

/// Writes one workload's model, bench batch and reference outputs into `dir/<name>/`.
fn export_one(w: &workloads::Workload, batch: Option<usize>, dir: &Path) -> Result<Vec<PathBuf>> {
    let batch = batch.unwrap_or(w.bench_batch);
    crate::commands::bench::check_batch_memory(w, batch, None)?;
    let (model, x) = w.build(Some(batch))?;
    let out = dir.join(w.name);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let model_path = out.join("model.safetensors");
    format::save_model(&model, &model_path, Encoding::F64)?;
    let prepared = Backend::<f64>::prepare(&ReferenceBackend, &model)?;
    let y = ReferenceBackend.forward(&prepared, &x)?;
    let mut io = TensorDict::<f64>::default();
    io.metadata.insert("format".into(), format::FORMAT.into());
    io.metadata.insert("kind".into(), "workload-io".into());
    io.metadata.insert("workload".into(), w.name.into());
    io.metadata.insert("outputs".into(), "reference backend, f64".into());
    io.metadata.insert("flops_per_forward".into(), workloads::flops(&model, x.batch(), x.len()).to_string());
    io.tensors.insert("inputs".into(), (x.shape().to_vec(), x.as_slice().to_vec()));
    io.tensors.insert("outputs".into(), (y.shape().to_vec(), y.as_slice().to_vec()));
    let io_path = out.join("io.safetensors");
    format::write_atomic(&io_path, &format::encode(&io, Encoding::F64)?)?;
    Ok(vec![model_path, io_path])
}

/// `boltz export --workload NAME|all DIR [--batch B]`.
pub(crate) fn export(name: &str, batch: Option<usize>, dir: &Path) -> Result<bool> {
    if batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    let chosen: Vec<workloads::Workload> = if name == "all" { workloads::WORKLOADS.to_vec() } else { vec![workloads::find(name)?] };
    for w in &chosen {
        for f in export_one(w, batch, dir)? {
            errln!("wrote {}", f.display());
        }
    }
    Ok(true)
}
