//! `boltz bench`, `workloads` and `export`: timing records, the whole table, the BLAS backend's report,
//! exported workloads.

#![allow(clippy::unwrap_used)]

mod util;

use std::process::Command;

use serde_json::Value;
use util::*;

#[test]
fn bench_times_a_workload() {
    let o = boltz_line("bench --workload deep-narrow --backend cpu --precision f64 --batch 2 --repeats 2 --json");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["batch"], 2);
    assert!(v["median_ms"].as_f64().unwrap() > 0.0 && v["gflops"].as_f64().unwrap() > 0.0);
    assert_eq!(v["seconds"].as_array().unwrap().len(), 2);
    // The machine's ceilings at the bench's thread count, and the bench against its type's peak.
    let c = &v["ceiling"];
    assert_eq!(c["threads"], v["threads"]);
    assert!(["avx512f", "avx2+fma", "neon", "portable"].contains(&c["isa"].as_str().unwrap()), "{c}");
    let (p32, p64, bw) =
        (c["fma_peak_gflops_f32"].as_f64().unwrap(), c["fma_peak_gflops_f64"].as_f64().unwrap(), c["triad_gb_per_s"].as_f64().unwrap());
    assert!(p32 > 0.0 && p64 > 0.0 && bw > 0.0, "{c}");
    let pct = v["percent_of_peak"].as_f64().unwrap();
    assert!((pct - 100.0 * v["gflops"].as_f64().unwrap() / p64).abs() < 1e-9 * pct.max(1.0), "f64 bench against the f64 peak: {v}");
    // `boltz ceiling` measures the same record on its own, per thread count.
    let o = boltz(&["ceiling", "--threads", "1", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!((&list[0]["threads"], &list[0]["isa"]), (&Value::from(1), &c["isa"]));
    assert!(list[0]["fma_peak_gflops_f32"].as_f64().unwrap() > 0.0);
    let o = boltz(&["ceiling", "--threads", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 1"));
    let o = boltz(&["bench", "--workload", "huge"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("workload"));
    // A list of backends needs --all.
    let o = boltz(&["bench", "--workload", "practical", "--backend", "cpu,reference", "--batch", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--all"));
}

/// `bench --all --json`: one document, one row per workload × backend × precision in table order, each
/// from its own process (its own peak RSS), with the whole run's metadata once.
#[test]
fn bench_all_is_the_whole_table_in_one_document() {
    let o = boltz_line("bench --all --backend cpu,reference --precision f64,f32 --batch 1 --repeats 1 --threads 1 --json");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["command"], "bench --all");
    assert!(v["meta"]["git_rev"].is_string() && v["meta"]["devices"].is_array());
    let rows = v["rows"].as_array().unwrap();
    let got: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {} {}", r["workload"].as_str().unwrap(), r["backend"].as_str().unwrap(), r["precision"].as_str().unwrap()))
        .collect();
    let mut expected = Vec::new();
    for w in boltz_core::workloads::WORKLOADS {
        for b in ["cpu", "reference"] {
            for p in ["f64", "f32"] {
                expected.push(format!("{} {b} {p}", w.name));
            }
        }
    }
    assert_eq!(got, expected);
    for r in rows {
        assert_eq!(r["batch"], 1, "{r}");
        assert!(r.get("meta").is_none(), "the row repeats the metadata: {r}");
        assert!(r["median_ms"].as_f64().unwrap() > 0.0 && r["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{r}");
        // The FLOP count is the workload's formula, independent of the backend.
        let twin = rows.iter().find(|x| x["workload"] == r["workload"] && x["backend"] == "cpu" && x["precision"] == "f64").unwrap();
        assert_eq!(r["flops_per_forward"], twin["flops_per_forward"]);
        // One ceiling measured by the parent for the thread count, the same object in every row.
        assert_eq!(r["ceiling"], rows[0]["ceiling"], "{r}");
        assert_eq!(r["ceiling"]["threads"], 1);
        let peak = r["ceiling"][if r["precision"] == "f32" { "fma_peak_gflops_f32" } else { "fma_peak_gflops_f64" }].as_f64().unwrap();
        let pct = r["percent_of_peak"].as_f64().unwrap();
        assert!((pct - 100.0 * r["gflops"].as_f64().unwrap() / peak).abs() < 1e-9 * pct.max(1.0), "{r}");
    }
    // A backend that cannot take a precision is refused before any bench runs.
    let o = boltz(&["bench", "--all", "--backend", "cpu", "--precision", "bits=80", "--batch", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("runs f32 or f64") && o.stdout.is_empty());
}

/// `bench --all` compares backends, types and thread counts in one table (median, spread, GFLOP/s; the
/// fastest cell starred) and writes the same rows as CSV; min ≤ median ≤ max in every row.
#[test]
fn bench_all_prints_a_comparison_table_and_writes_csv() {
    let dir = tmp("bench-table");
    let csv = dir.join("table.csv");
    let args = ["bench", "--all", "--backend", "cpu", "--precision", "f32,f64", "--batch", "1", "--repeats", "3", "--threads", "1,2"];
    let o = boltz(&[&args[..], &["--csv", csv.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    for w in boltz_core::workloads::WORKLOADS {
        assert!(table.contains(&format!("[{}, batch 1]", w.name)), "{table}");
    }
    assert!(
        table.contains("threads=1") && table.contains("threads=2") && table.contains("cpu f32") && table.contains("cpu f64"),
        "{table}"
    );
    assert_eq!(table.matches("machine ceiling, ").count(), 2, "one ceiling line per thread count: {table}");
    assert!(table.contains("%pk"), "cells carry the % of the peak: {table}");
    assert_eq!(
        table.matches('*').count(),
        boltz_core::workloads::WORKLOADS.len() + 1,
        "one fastest cell per workload (and the header's *): {table}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "workload,backend,precision,threads,batch,median_ms,min_ms,max_ms,spread_pct,gflops,peak_rss_bytes");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), boltz_core::workloads::WORKLOADS.len() * 2 * 2);
    for r in &rows {
        let num = |i: usize| r[i].parse::<f64>().unwrap();
        assert!(num(6) <= num(5) && num(5) <= num(7), "min ≤ median ≤ max: {r:?}");
        assert!((num(8) - 100.0 * (num(7) - num(6)) / num(5)).abs() < 1e-2, "{r:?}");
    }
    assert_eq!(rows.iter().filter(|r| r[3] == "2").count(), rows.len() / 2);
    // --csv needs --all; one --threads value without --all.
    assert_eq!(boltz(&["bench", "--workload", "practical", "--csv", csv.to_str().unwrap()]).status.code(), Some(2));
    let o = boltz(&["bench", "--workload", "practical", "--threads", "1,2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--threads takes one value"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The `blas` device entry of a bench record.
fn blas_device(v: &Value) -> Value {
    v["meta"]["devices"].as_array().unwrap().iter().find(|d| d["backend"] == "blas").cloned().expect("a blas device entry")
}

#[test]
fn blas_backend_runs_and_reports_its_openblas_core() {
    let args = ["bench", "--workload", "practical", "--backend", "blas", "--precision", "f32", "--batch", "1", "--repeats", "1", "--json"];
    // The bench record with OPENBLAS_CORETYPE set to `core` (or unset), in a process that has not chosen one.
    let run = |core: Option<&str>| -> (Value, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boltz"));
        cmd.args(args).env_remove("BOLTZ_OPENBLAS_CHOSEN");
        match core {
            Some(c) => cmd.env("OPENBLAS_CORETYPE", c),
            None => cmd.env_remove("OPENBLAS_CORETYPE"),
        };
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (serde_json::from_slice(&o.stdout).unwrap(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    // Unset: the binary re-executes itself with the core the CPU supports (never Prescott on AVX2/AVX-512).
    let (v, _) = run(None);
    let details = &blas_device(&v)["details"];
    let isa = details["cpu_isa"].as_str().unwrap();
    let core = details["openblas_corename"].as_str().unwrap();
    match isa {
        "Avx512" => assert_eq!((core, details["openblas_core_source"].as_str().unwrap()), ("SkylakeX", "Chosen"), "{details}"),
        "Avx2" => assert_eq!(core, "Haswell", "{details}"),
        _ => {}
    }
    assert!(details.get("warning").is_none(), "{details}");
    // Preset: kept as it is, even when it is not what the CPU could run.
    let (v, stderr) = run(Some("Prescott"));
    let details = &blas_device(&v)["details"];
    assert_eq!((details["openblas_coretype_env"].as_str(), details["openblas_core_source"].as_str()), (Some("Prescott"), Some("Preset")));
    assert_eq!(details["openblas_corename"], "Prescott");
    if isa != "Older" {
        // A generic kernel on a modern CPU is reported loudly, on stderr and in the result.
        assert!(details["warning"].as_str().unwrap().contains("Prescott"), "{details}");
        assert!(stderr.contains("WARNING: OpenBLAS"), "{stderr}");
    }
}

/// `boltz workloads --json` is the table the benches use, and `boltz export` writes exactly the weights and
/// batch of a workload with outputs that boltz's own reference forward reproduces bit for bit after
/// reading the files back (what scripts/torch_compare.py checks PyTorch against).
#[test]
fn workloads_table_and_export_are_the_benches_numbers() {
    use boltz_core::{format, workloads, Backend, Batch, ReferenceBackend};
    let o = boltz(&["workloads", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = table["workloads"].as_array().unwrap();
    assert_eq!(rows.len(), workloads::WORKLOADS.len());
    for (row, w) in rows.iter().zip(workloads::WORKLOADS) {
        assert_eq!(row["name"], w.name);
        assert_eq!(row["bench_batch"], w.bench_batch);
        let (model, x) = w.build(Some(w.batch)).unwrap();
        assert_eq!(row["flops_per_forward"].as_f64().unwrap(), workloads::flops(&model, x.batch(), x.len()));
        assert_eq!(row["params_dense"], model.param_count().dense);
    }
    let dir = tmp("export-workload");
    let o = boltz(&["export", "--workload", "deep-narrow", "--batch", "3", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model: boltz_core::Model<f64> = format::load_model(&dir.join("deep-narrow/model.safetensors"), format::Rounding::Forbid).unwrap();
    let io = format::decode::<f64>(&std::fs::read(dir.join("deep-narrow/io.safetensors")).unwrap(), format::Rounding::Forbid).unwrap();
    let batch = |name: &str| {
        let (shape, values) = io.tensors[name].clone();
        Batch::new(shape[0], shape[1], shape[2], values).unwrap()
    };
    let (x, y) = (batch("inputs"), batch("outputs"));
    let (built, bx) = workloads::find("deep-narrow").unwrap().build(Some(3)).unwrap();
    assert_eq!(x.as_slice(), bx.as_slice(), "the exported batch is the benches' batch");
    let again = ReferenceBackend.forward(&Backend::<f64>::prepare(&ReferenceBackend, &model).unwrap(), &x).unwrap();
    assert_eq!(again.as_slice(), y.as_slice(), "reloaded weights reproduce the exported outputs exactly");
    let direct = ReferenceBackend.forward(&Backend::<f64>::prepare(&ReferenceBackend, &built).unwrap(), &x).unwrap();
    assert_eq!(direct.as_slice(), y.as_slice(), "the exported weights are the benches' weights");
    // Bad requests: unknown workload, zero batch.
    for args in [vec!["export", "--workload", "nope", "x"], vec!["export", "--workload", "practical", "--batch", "0", "x"]] {
        let o = boltz(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn export_replaces_a_whole_earlier_export_and_refuses_foreign_directories() {
    let dir = tmp("export");
    let exp = dir.join("exp");
    std::fs::create_dir_all(&exp).unwrap();
    for f in ["model.exact.json", "model.safetensors", "dataset.safetensors"] {
        std::fs::write(exp.join(f), "stale").unwrap();
    }
    let args = ["memorize", "--sequences", "3", "--length", "2", "--dim", "2", "--vocab", "4", "--no-bisect", "--export"];
    let o = boltz(&[&args[..], &[exp.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("exported") && stdout.contains("model.exact.json"), "{stdout}");
    for f in std::fs::read_dir(&exp).unwrap().flatten() {
        assert_ne!(std::fs::read(f.path()).unwrap(), b"stale", "{}: a stale file survived", f.path().display());
    }
    let siblings: Vec<String> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    assert_eq!(siblings, ["exp"], "staging directories left behind");
    // A directory with other files is refused before anything is built.
    std::fs::write(exp.join("notes.txt"), "mine").unwrap();
    let o = boltz(&[&args[..], &[exp.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("notes.txt"));
    assert_eq!(std::fs::read_to_string(exp.join("notes.txt")).unwrap(), "mine");
}
