//! End-to-end tests of the `boltz` binary: the quick suite's files, sharding and merging, plotting, exit
//! codes and error messages.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn boltz(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boltz")).args(args).output().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("boltz-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

const SMALL: &str = r#"{
  "seed": 7, "threads": 2,
  "capacity": { "sequences": [8, 20], "length": 4, "dim": 3, "vocab": 10, "policies": ["measured", "fewest-bits", "mean-pool", "yun"], "softmax_max_sequences": 8, "yun_max_sequences": 8, "bisect": true, "bisect_max_sequences": 20 },
  "adversarial": { "families": [{ "kind": "grid", "dim": 2 }, { "kind": "pte", "dim": 1 }], "sequences": [8], "length": 4, "vocab": 10, "policies": ["fewest-bits", "mean-pool", "yun-minimal"] },
  "separation": { "grid": [[2, 4, 1], [3, 6, 2]], "sequences": 10 },
  "approximation": { "targets": ["product-mean"], "length": 2, "cells": [2, 4], "samples": 50 },
  "hardmax": { "dims": [2], "draws": 20, "family": 3 }
}"#;

#[test]
fn quick_reproduce_writes_results_and_charts() {
    let out = tmp("quick");
    let o = boltz(&["reproduce", "--quick", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for exp in ["capacity", "adversarial", "separation", "approximation", "hardmax", "trained"] {
        let file = read_json(&out.join(format!("{exp}.json")));
        assert_eq!(file["experiment"], exp);
        let backends: Vec<&str> = file["meta"]["devices"].as_array().unwrap().iter().map(|d| d["backend"].as_str().unwrap()).collect();
        assert_eq!(backends, ["reference", "cpu", "blas", "bigfloat"], "{exp}: devices");
        for key in ["git_rev", "git_dirty", "machine", "cpu", "threads", "rustc", "started_at"] {
            assert!(file["meta"].get(key).is_some(), "{exp}: meta.{key} missing");
        }
        assert!(file["config"]["seed"].is_u64());
        let rows = file["rows"].as_array().unwrap();
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r["property_held"] == true), "{exp}: a checked property failed");
        assert!(out.join(format!("{exp}.csv")).exists());
    }
    let cap = read_json(&out.join("capacity.json"));
    assert_eq!(cap["schema_version"], 3);
    // The parameter-optimal construction runs at every N: one averaging head (W_Q = W_K = 0, rank 0),
    // fewer non-zero than dense parameters, ids for every token.
    let bx: Vec<&Value> = cap["rows"].as_array().unwrap().iter().filter(|r| r["policy"] == "bit-extraction").collect();
    assert_eq!(bx.len(), 3);
    for r in bx {
        assert_eq!((&r["task"], &r["rank_key_query_max"], &r["rank_value_output_max"]), (&json!("seq2seq"), &json!(0), &json!(1)), "{r}");
        assert!(r["params_nonzero"].as_u64().unwrap() < r["params_dense"].as_u64().unwrap(), "{r}");
        assert_eq!(r["bx_ids"].as_u64().unwrap(), r["N"].as_u64().unwrap() * 6, "{r}");
    }
    let configured: Vec<(Value, Value)> =
        cap["config"]["backends"].as_array().unwrap().iter().map(|b| (b["backend"].clone(), b["precision"].clone())).collect();
    assert_eq!(configured.len(), 4);
    for r in cap["rows"].as_array().unwrap() {
        // One run per configured backend, in order; each decoded tokens and was timed, or says why not.
        let runs: Vec<(Value, Value)> =
            r["runs"].as_array().unwrap().iter().map(|x| (x["backend"].clone(), x["precision"].clone())).collect();
        assert_eq!(runs, configured, "{r}");
        for x in r["runs"].as_array().unwrap() {
            match x["accuracy"].as_f64() {
                Some(a) => assert!((0.0..=1.0).contains(&a) && x["latency_ms"].as_f64().unwrap() >= 0.0 && x.get("error").is_none(), "{x}"),
                None => assert!(x["latency_ms"].is_null() && x["error"].is_string(), "{x}"),
            }
        }
        assert_eq!(r["exact_in_bigfloat"], true, "{r}");
        assert!(r["fewest_bits"].as_u64().unwrap() <= r["build_bits"].as_u64().unwrap());
        // The fewest bits open the top run of holding probes, which ends at the build precision.
        let runs = r["fewest_bits_holds_at"].as_array().unwrap();
        assert_eq!(runs.last().unwrap()[0], r["fewest_bits"], "{r}");
        assert_eq!(runs.last().unwrap()[1], r["build_bits"], "{r}");
        assert!(r["fewest_bits_monotone"].is_boolean());
        match r["policy"].as_str().unwrap() {
            "mean-pool" => assert_eq!(r["lambda"], 0.0),
            "fewest-bits" | "measured" => assert!(r["lambda"].as_f64().unwrap() > 0.0, "{r}"),
            _ => {}
        }
        match r["policy"].as_str().unwrap() {
            // Yun et al.'s depth: its formula plus the input affine layer.
            "yun" => assert_eq!(r["layers"].as_f64().unwrap(), r["formula_layers"].as_f64().unwrap() + 1.0),
            // Bit extraction: its stages' FFN blocks plus the one attention layer.
            "bit-extraction" => {
                let stages: u64 = r["bx_layers_by_stage"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).sum();
                assert_eq!(r["layers"].as_u64().unwrap(), stages + 1, "{r}");
            }
            _ => assert_eq!(r["layers"], 2),
        }
    }
    // Trained capacity: one row per (family, model, width) of the quick configuration; the answer is a
    // memorized N whose model the reference backend decodes, adjacent to a failure (or the maximum).
    let trained = read_json(&out.join("trained.json"));
    let tr = trained["rows"].as_array().unwrap();
    let keys: Vec<(String, String)> =
        tr.iter().map(|r| (r["model"].as_str().unwrap().into(), r["family"].as_str().unwrap().into())).collect();
    assert_eq!(keys, [("rank1".into(), "random".into()), ("dense".into(), "random".into()), ("rank1".into(), "grid".into())]);
    for r in tr {
        let n = r["largest_memorized"].as_u64().unwrap();
        assert!(n >= 1, "{r}");
        assert_eq!(r["reference_accuracy"], 1.0, "{r}");
        let failed = r["smallest_failed"].as_u64();
        assert!(failed == Some(n + 1) || (failed.is_none() && n == r["max_sequences"].as_u64().unwrap()), "{r}");
        let bpp = (n * r["n"].as_u64().unwrap()) as f64 / r["params"].as_f64().unwrap();
        assert!((r["bits_per_param"].as_f64().unwrap() - bpp).abs() < 1e-12, "{r}");
        assert!((8..=64).contains(&r["fewest_bits"].as_u64().unwrap()), "{r}");
        assert_eq!(r["runs"].as_u64().unwrap() as usize, r["probes"].as_array().unwrap().len());
    }
    // A rank-1 model stores fewer parameters than its dense count; a dense one stores exactly that.
    assert!(tr[0]["params_stored"].as_u64() < tr[0]["params"].as_u64());
    assert_eq!(tr[1]["params_stored"], tr[1]["params"]);
    // Adversarial data: Prouhet–Tarry–Escott pairs make mean pooling collide (a result row, not an error);
    // the softmax with λ > 0 still memorizes exactly.
    let adv = read_json(&out.join("adversarial.json"));
    let adv_rows = adv["rows"].as_array().unwrap();
    let find = |family: &str, policy: &str| adv_rows.iter().find(|r| r["family"] == family && r["policy"] == policy).unwrap().clone();
    let pte_mean = find("pte", "mean-pool");
    assert_eq!(pte_mean["exact_in_bigfloat"], false, "{pte_mean}");
    assert!(pte_mean["build_error"].as_str().unwrap().contains("mean pooling"));
    for family in ["grid", "pte"] {
        let r = find(family, "fewest-bits");
        assert_eq!(r["exact_in_bigfloat"], true, "{r}");
        assert!(r["lambda"].as_f64().unwrap() > 0.0 && r["fewest_bits"].as_u64().is_some(), "{r}");
        let y = find(family, "yun-minimal");
        assert_eq!((y["exact_in_bigfloat"].clone(), y["yun_delta"].clone()), (Value::Bool(true), Value::from("minimal")), "{y}");
    }
    for chart in [
        "adversarial_bits",
        "depth_vs_n",
        "params_vs_n",
        "precision_vs_n",
        "accuracy_vs_n",
        "latency_vs_n",
        "separation",
        "approximation_vs_delta",
        "approximation_vs_params",
        "trained_capacity",
    ] {
        for ext in ["png", "svg"] {
            let p = out.join(format!("{chart}.{ext}"));
            assert!(std::fs::metadata(&p).map(|m| m.len() > 1000).unwrap_or(false), "{} missing or empty", p.display());
        }
    }
    // Charts are redrawn from the JSON alone.
    std::fs::remove_file(out.join("separation.png")).unwrap();
    let o = boltz(&["plot", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("separation.png").exists());
}

#[test]
fn shards_merge_into_the_whole_run() {
    let dir = tmp("shards");
    let cfg = dir.join("small.json");
    std::fs::write(&cfg, SMALL).unwrap();
    let (whole, parts) = (dir.join("whole"), dir.join("parts"));
    let run = |out: &Path, shard: Option<&str>| {
        let mut args = vec!["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-plot"];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        let o = boltz(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&whole, None);
    run(&parts, Some("0/3"));
    run(&parts, Some("1/3"));
    run(&parts, Some("2/3"));
    assert!(parts.join("capacity.shard-1-of-3.json").exists());
    let o = boltz(&["merge", parts.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Timings removed, also inside a row's `runs`.
    fn untimed(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter().filter(|(k, _)| !k.contains("seconds") && !k.contains("latency")).map(|(k, x)| (k.clone(), untimed(x))).collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(untimed).collect()),
            other => other.clone(),
        }
    }
    let strip = |v: &Value| -> Vec<Value> { v["rows"].as_array().unwrap().iter().map(untimed).collect() };
    // Rows agree exactly except in the last digits of reported error magnitudes (far below any decision:
    // the bits, accuracies and verdicts are identical).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
            }
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
            (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
            _ => a == b,
        }
    }
    for exp in ["capacity", "separation", "approximation", "hardmax"] {
        let (a, b) = (read_json(&whole.join(format!("{exp}.json"))), read_json(&parts.join(format!("{exp}.json"))));
        let (sa, sb) = (Value::Array(strip(&a)), Value::Array(strip(&b)));
        assert!(same(&sa, &sb), "{exp}: merged shards differ from the whole run:\n{sa}\n{sb}");
        // Every shard that ran points of this experiment contributed (capacity has 4 points over 3 shards).
        let from = b["merged_from"].as_array().unwrap().len();
        assert!(from >= 1 && (exp != "capacity" || from == 3), "{exp}: merged from {from} shards");
    }
}

#[test]
fn errors_have_exit_code_2_and_name_the_problem() {
    let dir = tmp("errors");
    let cfg = dir.join("bad.json");
    std::fs::write(&cfg, SMALL.replace("\"mean-pool\"", "\"fastest\"")).unwrap();
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("capacity.policies"), "{}", String::from_utf8_lossy(&o.stderr));
    for args in [
        vec!["memorize", "--construction", "kim"],
        vec!["memorize", "--threads", "0"],
        vec!["memorize", "--sequences", "0"],
        vec!["memorize", "--precision", "f16"],
        vec!["reproduce", "--shard", "3/2"],
        vec!["plot", dir.to_str().unwrap()],
    ] {
        let o = boltz(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!o.stderr.is_empty());
    }
    let o = boltz(&["memorize", "--sequences", "0"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("sequences"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn memorize_reports_json_and_exports_the_model() {
    let dir = tmp("memorize");
    let o = boltz(&[
        "memorize",
        "--sequences",
        "12",
        "--length",
        "4",
        "--dim",
        "2",
        "--vocab",
        "8",
        "--policy",
        "fewest-bits",
        "--backend",
        "reference",
        "--precision",
        "f64",
        "--json",
        "--export",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memorization"]["tokens"], 48);
    assert!(v["fewest_bits"]["fewest"].as_u64().is_some());
    assert!(v["meta"]["git_rev"].is_string());
    assert!(dir.join("model.exact.json").exists() && dir.join("dataset.safetensors").exists());
    let o = boltz(&["memorize", "--construction", "yun", "--sequences", "6", "--length", "3", "--dim", "2", "--vocab", "6", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memorization"]["decoded"], 18);
    assert!(v["fewest_bits"]["fewest"].as_u64().unwrap() > 53);
    let help = boltz(&["memorize", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--precision"));
}

#[test]
fn bench_times_a_workload() {
    let o = boltz(&[
        "bench",
        "--workload",
        "deep-narrow",
        "--backend",
        "cpu",
        "--precision",
        "f64",
        "--batch",
        "2",
        "--repeats",
        "2",
        "--json",
    ]);
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
    let o = boltz(&[
        "bench",
        "--all",
        "--backend",
        "cpu,reference",
        "--precision",
        "f64,f32",
        "--batch",
        "1",
        "--repeats",
        "1",
        "--threads",
        "1",
        "--json",
    ]);
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
    // Unset: the binary re-executes itself with the core the CPU supports (never Prescott on AVX2/AVX-512).
    let o = Command::new(env!("CARGO_BIN_EXE_boltz"))
        .args(args)
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("BOLTZ_OPENBLAS_CHOSEN")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
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
    let o = Command::new(env!("CARGO_BIN_EXE_boltz"))
        .args(args)
        .env("OPENBLAS_CORETYPE", "Prescott")
        .env_remove("BOLTZ_OPENBLAS_CHOSEN")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let details = &blas_device(&v)["details"];
    assert_eq!((details["openblas_coretype_env"].as_str(), details["openblas_core_source"].as_str()), (Some("Prescott"), Some("Preset")));
    assert_eq!(details["openblas_corename"], "Prescott");
    if isa != "Older" {
        // A generic kernel on a modern CPU is reported loudly, on stderr and in the result.
        assert!(details["warning"].as_str().unwrap().contains("Prescott"), "{details}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("WARNING: OpenBLAS"), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn memorize_on_blas_reports_rank_one_attention() {
    let o = boltz(&[
        "memorize",
        "--sequences",
        "10",
        "--length",
        "4",
        "--dim",
        "3",
        "--vocab",
        "8",
        "--policy",
        "measured",
        "--backend",
        "blas",
        "--precision",
        "f64",
        "--no-bisect",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memorization"]["tokens"], 40);
    let ranks = v["attention_rank"].as_array().unwrap();
    assert_eq!(ranks.len(), 1);
    // Theorem 2's construction: both attention products have rank exactly one.
    assert_eq!((ranks[0]["key_query"]["numerical_rank"].as_u64(), ranks[0]["value_output"]["numerical_rank"].as_u64()), (Some(1), Some(1)));
    // Mean pooling (λ = 0): W_Kᵀ W_Q vanishes and the report says rank 0; the fewest-bits policy keeps
    // a rank-1 softmax (λ > 0).
    for (policy, rank) in [("mean-pool", 0u64), ("fewest-bits", 1)] {
        let o = boltz(&[
            "memorize",
            "--sequences",
            "10",
            "--length",
            "4",
            "--dim",
            "3",
            "--vocab",
            "8",
            "--policy",
            policy,
            "--no-bisect",
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let kq = v["attention_rank"][0]["key_query"]["numerical_rank"].as_u64().unwrap();
        let lambda = v["report"]["contextual"]["lambda"].as_f64().unwrap();
        assert_eq!(kq, rank, "{policy}: λ = {lambda}");
        assert_eq!(lambda > 0.0, rank == 1);
    }
}

#[test]
fn data_families_and_yun_delta_from_the_cli() {
    // PTE data: mean pooling collides (exit 2, a clear message); fewest-bits memorizes with λ > 0.
    let pte = ["memorize", "--vocab-kind", "pte", "--dim", "1", "--sequences", "8", "--length", "6", "--vocab", "12"];
    let o = boltz(&[&pte[..], &["--policy", "mean-pool", "--no-bisect"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("mean pooling"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = boltz(&[&pte[..], &["--policy", "fewest-bits", "--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exact_at_build_bits"]["decoded"], 48);
    assert!(v["report"]["contextual"]["lambda"].as_f64().unwrap() > 0.0);
    assert_eq!(v["dataset"]["vocab_kind"], "pte");
    let f = v["fewest_bits"]["fewest"].as_u64().unwrap();
    assert!(f < 64, "fewest-bits policy needs {f} bits");
    // Bad values are usage errors naming the valid ones.
    let o = boltz(&["memorize", "--vocab-kind", "spiral"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("random, grid, pte"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = boltz(&["memorize", "--construction", "yun", "--delta", "tiny"]);
    assert_eq!(o.status.code(), Some(2));
    // Yun et al. with the minimal δ: fewer cells, still exact.
    let yun =
        ["memorize", "--construction", "yun", "--sequences", "6", "--length", "3", "--dim", "2", "--vocab", "6", "--no-bisect", "--json"];
    let run = |delta: &str| -> Value {
        let o = boltz(&[&yun[..], &["--delta", delta]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (minimal, dyadic) = (run("minimal"), run("dyadic"));
    assert_eq!(minimal["exact_at_build_bits"]["decoded"], 18);
    assert_eq!(minimal["report"]["delta_kind"], "minimal");
    assert!(minimal["report"]["cells"].as_u64().unwrap() <= dyadic["report"]["cells"].as_u64().unwrap());
}

#[test]
fn memorize_exit_codes_are_honest() {
    // The Measured weights overflow f64 (slopes ~10^1000 at n = 8, d = 4): the requested run did not happen,
    // so exit 2 (the record says why).
    let dir = tmp("honest");
    let out = dir.join("record.json");
    let o = boltz(&[
        "memorize",
        "--sequences",
        "10",
        "--policy",
        "measured",
        "--backend",
        "reference",
        "--precision",
        "f64",
        "--no-bisect",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did not run"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(read_json(&out)["run_error"].is_string());
    // N = n = 1: one token, one label — memorized exactly.
    let o = boltz(&["memorize", "--sequences", "1", "--length", "1", "--dim", "1", "--vocab", "1", "--policy", "mean-pool", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exact_at_build_bits"]["decoded"], 1);
}

/// The suite's `backends` decide where every built model runs: each configured (backend, precision) is one
/// entry of a row's `runs`; a backend that cannot run here is refused before any point runs.
#[test]
fn configured_backends_give_each_row_its_runs() {
    let dir = tmp("suite-backends");
    let config = |backends: &str| {
        format!(
            r#"{{ "seed": 3, "threads": 1, "backends": {backends},
  "capacity": {{ "sequences": [4], "length": 3, "dim": 2, "vocab": 6, "policies": ["mean-pool", "yun"], "softmax_max_sequences": 0, "yun_max_sequences": 4, "bisect": false, "bisect_max_sequences": 0 }},
  "separation": {{ "grid": [], "sequences": 1 }},
  "approximation": {{ "targets": [], "length": 2, "cells": [], "samples": 1 }},
  "hardmax": {{ "dims": [], "draws": 1, "family": 3 }} }}"#
        )
    };
    let cfg = dir.join("b.json");
    std::fs::write(&cfg, config(r#"[{"backend": "bigfloat", "precision": "bits=400"}, {"backend": "blas", "precision": "f32"}, {"backend": "reference", "precision": "f64"}]"#)).unwrap();
    let out = dir.join("out");
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-plot"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cap = read_json(&out.join("capacity.json"));
    let rows = cap["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        let runs = r["runs"].as_array().unwrap();
        let names: Vec<String> =
            runs.iter().map(|x| format!("{} {}", x["backend"].as_str().unwrap(), x["precision"].as_str().unwrap())).collect();
        assert_eq!(names, ["bigfloat bits=400", "blas f32", "reference f64"], "{r}");
        // Both constructions were verified exact at their build precision, below 400 bits here: at 400 bits
        // the faithful evaluation decodes every token. (Yun's model needs more than f64's 53 bits on this
        // data — log2 of its largest id is ~49 — so the hardware runs may decode fewer.)
        assert!(r["exact_in_bigfloat"] == true && r["build_bits"].as_u64().unwrap() < 400, "{r}");
        assert_eq!(runs[0]["accuracy"], 1.0, "{r}");
        assert!(runs.iter().all(|x| x["latency_ms"].as_f64().is_some_and(|t| t >= 0.0)), "{r}");
    }
    // A backend this machine cannot run: refused before any point runs, naming the field.
    let cfg = dir.join("cuda.json");
    std::fs::write(&cfg, config(r#"[{"backend": "cuda", "precision": "f32"}]"#)).unwrap();
    let out = dir.join("cuda-out");
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-plot"]);
    if boltz_cuda_available() {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("backends[0]") && err.contains("cuda"), "{err}");
        assert!(!out.join("capacity.json").exists() && !out.join("checkpoint.jsonl").exists(), "a point ran: {err}");
    }
}

/// Whether this machine can run the cuda backend (a GPU and the CUDA libraries).
fn boltz_cuda_available() -> bool {
    boltz(&["bench", "--workload", "practical", "--backend", "cuda", "--repeats", "1"]).status.success()
}

/// `merge` is complete or nothing: a missing shard, another experiment under a shard's name, shards of
/// another build or another shard count are refused (exit 2, naming files and points) before anything is
/// written; the complete set merges.
#[test]
fn merge_refuses_incomplete_or_mixed_shards() {
    const TINY: &str = r#"{
  "seed": 3, "threads": 1,
  "capacity": { "sequences": [4], "length": 3, "dim": 2, "vocab": 6, "policies": ["mean-pool"], "softmax_max_sequences": 0, "yun_max_sequences": 0, "bisect": false, "bisect_max_sequences": 0 },
  "separation": { "grid": [[2, 4, 1], [3, 4, 1]], "sequences": 6 },
  "approximation": { "targets": ["product-mean"], "length": 2, "cells": [2], "samples": 20 },
  "hardmax": { "dims": [1, 2], "draws": 5, "family": 3 }
}"#;
    let dir = tmp("merge-refuses");
    let cfg = dir.join("tiny.json");
    std::fs::write(&cfg, TINY).unwrap();
    let parts = dir.join("parts");
    for s in ["0/3", "1/3", "2/3"] {
        let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", parts.to_str().unwrap(), "--no-plot", "--shard", s]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let merge = || boltz(&["merge", parts.to_str().unwrap()]);
    let refused = |why: &str| {
        let o = merge();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{why}: {err}");
        assert!(!parts.join("capacity.json").exists() && !parts.join("separation.json").exists(), "{why}: wrote a result");
        err
    };
    // Points: capacity 0, separation 1–2, approximation 3, hardmax 4–5; shard 1/3 holds 1 and 4.
    let sep1 = parts.join("separation.shard-1-of-3.json");
    let saved = std::fs::read_to_string(&sep1).unwrap();
    std::fs::remove_file(&sep1).unwrap();
    let err = refused("missing shard");
    assert!(err.contains("separation") && err.contains("shard files missing") && err.contains("separation.shard-1-of-3.json"), "{err}");
    // Its rows missing from a file that is present: named by point and shard.
    let mut emptied: Value = serde_json::from_str(&saved).unwrap();
    emptied["rows"] = Value::Array(vec![]);
    std::fs::write(&sep1, emptied.to_string()).unwrap();
    let err = refused("missing point");
    assert!(err.contains("missing points 1 (shard 1/3)"), "{err}");
    // Another experiment's file under this name.
    std::fs::copy(parts.join("hardmax.shard-1-of-3.json"), &sep1).unwrap();
    assert!(refused("wrong experiment").contains("holds experiment \"hardmax\""));
    // Another build.
    let mut other: Value = serde_json::from_str(&saved).unwrap();
    other["meta"]["git_rev"] = Value::from("0000000");
    std::fs::write(&sep1, other.to_string()).unwrap();
    assert!(refused("another build").contains("from build"));
    // A stray copy from a two-way split.
    std::fs::write(&sep1, &saved).unwrap();
    let stray = parts.join("separation.shard-0-of-2.json");
    std::fs::write(&stray, saved.replace("\"1/3\"", "\"0/2\"")).unwrap();
    assert!(refused("mixed shard counts").contains("numbers of shards"));
    std::fs::remove_file(&stray).unwrap();
    // Complete: merges.
    let o = merge();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sep = read_json(&parts.join("separation.json"));
    let points: Vec<u64> = sep["rows"].as_array().unwrap().iter().map(|r| r["point"].as_u64().unwrap()).collect();
    assert_eq!(points, [1, 2]);
}

/// A suite of ~a dozen cheap points (a few seconds), for kills, resumes and locks.
const KILLABLE: &str = r#"{
  "seed": 5, "threads": 1,
  "capacity": { "sequences": [4, 6], "length": 3, "dim": 2, "vocab": 6, "policies": ["mean-pool", "measured"], "softmax_max_sequences": 0, "yun_max_sequences": 0, "bisect": true, "bisect_max_sequences": 6 },
  "separation": { "grid": [[2, 4, 1], [3, 4, 1], [3, 5, 2]], "sequences": 6 },
  "approximation": { "targets": ["product-mean"], "length": 2, "cells": [2, 3], "samples": 20 },
  "hardmax": { "dims": [1, 2], "draws": 5, "family": 3 }
}"#;

/// Whether a file of the output directory is complete: JSON parses, CSV rows have the header's column
/// count (read with the `csv` crate), PNG ends with its IEND chunk, SVG with `</svg>`, the checkpoint's
/// lines parse (its last line may be cut by a kill: that one is dropped by design on resume).
fn assert_complete(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let bytes = std::fs::read(path).unwrap();
    let ext = path.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default();
    match ext.as_str() {
        "json" => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: truncated JSON: {e}"));
            assert!(v["rows"].is_array(), "{name}");
        }
        "csv" => {
            let mut r = csv::Reader::from_reader(bytes.as_slice());
            let columns = r.headers().unwrap_or_else(|e| panic!("{name}: {e}")).len();
            for rec in r.records() {
                assert_eq!(rec.unwrap_or_else(|e| panic!("{name}: {e}")).len(), columns, "{name}");
            }
        }
        "png" => assert!(bytes.len() > 12 && bytes[bytes.len() - 8..bytes.len() - 4] == *b"IEND", "{name}: truncated PNG"),
        "svg" => assert!(String::from_utf8_lossy(&bytes).trim_end().ends_with("</svg>"), "{name}: truncated SVG"),
        "pdf" => {
            assert!(bytes.starts_with(b"%PDF") && String::from_utf8_lossy(&bytes).trim_end().ends_with("%%EOF"), "{name}: truncated PDF")
        }
        "jsonl" => {
            let text = String::from_utf8_lossy(&bytes);
            let whole = text.rsplit_once('\n').map_or("", |(w, _)| w);
            for line in whole.lines() {
                let _: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: corrupt line {line:?}: {e}"));
            }
        }
        "lock" => {}
        _ => panic!("{name}: unexpected file in the output directory"),
    }
}

/// A fresh test directory holding the [`KILLABLE`] configuration as `killable.json`.
fn killable_config(name: &str) -> (PathBuf, PathBuf) {
    let dir = tmp(name);
    let cfg = dir.join("killable.json");
    std::fs::write(&cfg, KILLABLE).unwrap();
    (dir, cfg)
}

/// Files of `dir` that are not temporary files of an interrupted write.
fn visible_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    out.retain(|p| !p.file_name().unwrap().to_string_lossy().contains(boltz_core::format::TEMP_MARKER));
    out.sort();
    out
}

#[test]
fn killed_runs_leave_complete_files_and_resume_finishes_them() {
    let (dir, cfg) = killable_config("kill");
    // More capacity points than KILLABLE's: with the MPFR core its four points take ~10% of the run (the
    // charts the rest), too short for a kill to land in them reliably; with these, about a quarter.
    let heavier = KILLABLE
        .replace("\"sequences\": [4, 6]", "\"sequences\": [4, 6, 12, 16]")
        .replace("\"bisect_max_sequences\": 6", "\"bisect_max_sequences\": 16");
    assert_ne!(heavier, KILLABLE);
    std::fs::write(&cfg, heavier).unwrap();
    let clean = dir.join("clean");
    let t = std::time::Instant::now();
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", clean.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = t.elapsed().as_secs_f64();
    assert!(!clean.join("checkpoint.jsonl").exists(), "a finished run removes its checkpoint");
    // Kill at moments spread over the run (points, result files, charts), each into a directory that
    // already holds an earlier complete run (whose files must never be destroyed or truncated).
    let trials = 8;
    let mut resumed_any = false;
    for k in 0..trials {
        let out = dir.join(format!("killed-{k}"));
        std::fs::create_dir_all(&out).unwrap();
        for f in visible_files(&clean) {
            std::fs::copy(&f, out.join(f.file_name().unwrap())).unwrap();
        }
        let delay = full * (0.02 + 0.98 * (k as f64 + 0.5) / trials as f64);
        let mut child = Command::new(env!("CARGO_BIN_EXE_boltz"))
            .args(["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs_f64(delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for f in visible_files(&out) {
            assert_complete(&f);
        }
        for exp in ["capacity", "separation", "approximation", "hardmax"] {
            assert!(out.join(format!("{exp}.json")).exists(), "trial {k}: the earlier {exp}.json was destroyed");
        }
        // Resume (or find a finished run and start fresh: both must end complete).
        let resumable = out.join("checkpoint.jsonl").exists();
        let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--resume"]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "trial {k}: {err}");
        resumed_any |= resumable && err.contains("resuming:");
        let names: Vec<String> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
        assert!(names.iter().all(|n| !n.contains(boltz_core::format::TEMP_MARKER)), "trial {k}: temporary files left: {names:?}");
        assert!(!out.join("checkpoint.jsonl").exists());
        for f in visible_files(&out) {
            assert_complete(&f);
        }
        // The resumed results equal the clean run's in every exact field (timings within a wide factor).
        let o = boltz(&["check", clean.to_str().unwrap(), "--with", out.to_str().unwrap(), "--time-factor", "1000"]);
        assert!(o.status.success(), "trial {k}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }
    assert!(resumed_any, "no kill landed while points were running; the test did not exercise --resume");
}

#[test]
fn unfinished_checkpoints_are_not_overwritten_or_mixed() {
    let (dir, cfg) = killable_config("checkpoint");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A checkpoint of an unfinished run: header and no points, as a run killed early leaves it.
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-plot"]);
    assert!(o.status.success());
    let version = String::from_utf8_lossy(&boltz(&["--version"]).stdout).to_string();
    let rev = version.split("(git ").nth(1).unwrap().split(',').next().unwrap().to_string();
    let file = read_json(&out.join("capacity.json"));
    let header = serde_json::json!({
        "checkpoint": 1, "config": file["config"], "shard": null, "points": 11,
        "build": { "git_rev": rev, "git_dirty": file["meta"]["git_dirty"], "version": file["meta"]["version"], "rustc": file["meta"]["rustc"] },
    });
    std::fs::write(out.join("checkpoint.jsonl"), format!("{header}\n")).unwrap();
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-plot"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unfinished run (0 of 11 points done); pass --resume"));
    // Another configuration cannot resume it.
    let other = dir.join("other.json");
    std::fs::write(&other, KILLABLE.replace("\"seed\": 5", "\"seed\": 6")).unwrap();
    let o = boltz(&["reproduce", "--config", other.to_str().unwrap(), "--out", out.to_str().unwrap(), "--resume", "--no-plot"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("configuration differs"), "{}", String::from_utf8_lossy(&o.stderr));
    // Another build cannot either.
    let mut h2 = header.clone();
    h2["build"]["git_rev"] = Value::from("0000000");
    std::fs::write(out.join("checkpoint.jsonl"), format!("{h2}\n")).unwrap();
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--resume", "--no-plot"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("finished points come from build"), "{}", String::from_utf8_lossy(&o.stderr));
    // --restart discards it.
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--restart", "--no-plot"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_second_writer_is_refused() {
    let (dir, cfg) = killable_config("lock");
    let out = dir.join("out");
    let mut first = Command::new(env!("CARGO_BIN_EXE_boltz"))
        .args(["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first run holds the lock (its checkpoint exists).
    let t = std::time::Instant::now();
    while !out.join("checkpoint.jsonl").exists() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for args in [vec!["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()], vec!["plot", out.to_str().unwrap()]]
    {
        let o = boltz(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("another boltz process is writing"), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(first.wait().unwrap().success());
}

#[test]
fn bad_config_values_fail_before_any_point_runs() {
    let dir = tmp("late-config");
    for (edit, field) in [
        (("\"dims\": [1, 2]", "\"dims\": [1, 2, 0]"), "hardmax.dims[2]"),
        (("\"sequences\": 6 }", "\"sequences\": 0 }"), "separation.sequences"),
        (("\"samples\": 20", "\"samples\": 0"), "approximation.cells[0]"),
        (("\"sequences\": [4, 6]", "\"sequences\": [4, \"six\"]"), "capacity.sequences[1]"),
    ] {
        let cfg = dir.join("bad.json");
        std::fs::write(&cfg, KILLABLE.replace(edit.0, edit.1)).unwrap();
        let out = dir.join("never");
        let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{field}: {err}");
        assert!(err.contains(field), "{field}: {err}");
        assert!(!out.exists(), "{field}: the output directory was touched before the config was checked");
    }
    // An output directory that cannot be created: refused before computing.
    let o = boltz(&["reproduce", "--quick", "--out", "/proc/boltz-cannot"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("output directory"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn huge_arguments_are_refused_not_crashed() {
    let cases: [(&[&str], &str); 9] = [
        (&["memorize", "--sequences", "18446744073709551615"], "do not fit in memory"),
        (&["memorize", "--sequences", "1000000000000"], "memory"),
        (&["memorize", "--sequences", "10000000", "--max-memory", "1G"], "--max-memory"),
        (&["memorize", "--dim", "1000000", "--max-memory", "1G"], "--dim 1000000"),
        (&["memorize", "--threads", "1000000"], "--threads = 1000000"),
        (&["approximate", "--samples", "1000000000000"], "samples"),
        (&["approximate", "--cells", "4096", "--length", "3"], "too many to enumerate"),
        (&["bench", "--workload", "practical", "--batch", "10000000"], "--batch 10000000"),
        (&["memorize", "--precision", "bits=99999999999"], "bits=N"),
    ];
    for (args, expected) in cases {
        let t = std::time::Instant::now();
        let o = boltz(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(t.elapsed().as_secs() < 30, "{args:?} was refused only after {:?}", t.elapsed());
    }
}

#[test]
fn closed_or_full_stdout_never_panics() {
    // A reader that goes away: quiet exit 0, no panic message.
    let mut child = Command::new(env!("CARGO_BIN_EXE_boltz"))
        .args(["config"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", o.status);
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    // A full disk: an error (exit 2) that says so.
    if Path::new("/dev/full").exists() {
        let full = std::fs::File::create("/dev/full").unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_boltz")).args(["config"]).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("writing to stdout") && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn provenance_is_the_builds_not_the_working_directorys() {
    let version = String::from_utf8_lossy(&boltz(&["--version"]).stdout).to_string();
    let head = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok();
    let Some(head) = head.filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()) else {
        eprintln!("skipped: not a git checkout, the build records \"unknown\"");
        assert!(version.contains("(git unknown"), "{version}");
        return;
    };
    assert!(version.contains(&format!("(git {head}, dirty: ")), "{version}");
    // Run from a directory outside any repository: the record still names the build's revision.
    let elsewhere = tmp("provenance");
    let out = elsewhere.join("m.json");
    let o = Command::new(env!("CARGO_BIN_EXE_boltz"))
        .args([
            "memorize",
            "--sequences",
            "3",
            "--length",
            "2",
            "--dim",
            "2",
            "--vocab",
            "4",
            "--no-bisect",
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = read_json(&out);
    assert_eq!(rec["meta"]["git_rev"], Value::from(head));
    // Structured arguments and CLI spellings, not Rust Debug text.
    assert_eq!(rec["args"]["sequences"], 3);
    assert_eq!(rec["construction"], "one-layer");
    assert!(rec["precision"].as_str().unwrap().starts_with("bits="), "{}", rec["precision"]);
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

#[test]
fn memorize_refuses_before_building() {
    for (args, expected) in [
        (vec!["--backend", "cpu", "--precision", "bits=64"], "runs f32 or f64"),
        (vec!["--backend", "cpu"], "needs --precision"),
        (vec!["--out", "/proc/boltz-no/record.json"], "--out"),
        (vec!["--construction", "kim"], "kim"),
    ] {
        // N = 1000 takes seconds to build: a refusal must come first, and fast.
        let t = std::time::Instant::now();
        let o = boltz(&[&["memorize", "--sequences", "1000"][..], &args[..]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("building the"), "{args:?} was refused after the build started: {err}");
        assert!(t.elapsed().as_secs() < 20, "{args:?}");
    }
}

/// A sweep of bad inputs across every subcommand, as a new user would type them: each must end with exit
/// code 2, say what is wrong on stderr, and never panic or succeed. The counts are printed (issue #13's
/// note quotes them); a silent success or a panic fails the test and names the input.
#[test]
fn bad_input_sweep_gives_clear_errors_only() {
    let dir = tmp("sweep");
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let not_json = file("not.json", "{ seed: 1");
    let empty = file("empty.json", "");
    let wrong_type = file("wrong-type.json", r#"{"seed": "x"}"#);
    let unknown_field = file("unknown.json", r#"{"sed": 1}"#);
    let bad_points = file("bad-points.json", r#"{"capacity": {"sequences": [-1]}}"#);
    let a_dir = dir.to_str().unwrap().to_string();
    let missing = dir.join("absent").to_str().unwrap().to_string();
    let small = ["--length", "2", "--dim", "2", "--vocab", "4", "--no-bisect"];
    let mut cases: Vec<Vec<String>> = Vec::new();
    let mut add = |args: &[&str]| cases.push(args.iter().map(|s| s.to_string()).collect());
    // memorize: every numeric flag with values that are not sizes, zero where zero means nothing to build,
    // enum flags with unknown values, precisions that do not exist.
    for flag in ["--sequences", "--length", "--dim", "--vocab", "--seed", "--threads", "--max-memory"] {
        for value in ["-1", "abc", "1.5", "", "18446744073709551616", "NaN"] {
            add(&["memorize", flag, value]);
        }
    }
    for flag in ["--sequences", "--length", "--dim", "--vocab"] {
        let mut args = vec!["memorize", flag, "0"];
        args.extend(small.iter().filter(|s| **s != flag));
        add(&args);
    }
    for (flag, value) in [
        ("--construction", "two-layer"),
        ("--policy", "best"),
        ("--delta", "tiny"),
        ("--backend", "gpu"),
        ("--vocab-kind", "primes"),
        ("--precision", "f16"),
        ("--precision", "bits=0"),
        ("--precision", "bits=1"),
        ("--precision", "bits=-3"),
        ("--precision", "bits=99999999999999999999"),
        ("--precision", "BITS=24x"),
        ("--max-memory", "12Q"),
        ("--max-memory", "1"),
        ("--threads", "100000"),
        ("--sequences", "1000000000000"),
        ("--vocab", "1"),
        ("--export", "/proc/boltz"),
        ("--out", "/proc/boltz/m.json"),
    ] {
        let mut args = vec!["memorize", "--sequences", "3", flag, value];
        args.extend(small.iter().filter(|s| **s != flag));
        add(&args);
    }
    // approximate
    for (flag, value) in [
        ("--target", "sine"),
        ("--cells", "0"),
        ("--cells", "1"),
        ("--cells", "x"),
        ("--samples", "0"),
        ("--length", "0"),
        ("--dim", "0"),
        ("--cells", "100000"),
        ("--out", "/proc/boltz/a.json"),
    ] {
        add(&["approximate", "--target", "product-mean", "--length", "2", "--cells", "2", "--samples", "20", flag, value]);
    }
    // bench
    for (flag, value) in [
        ("--workload", "huge"),
        ("--batch", "0"),
        ("--batch", "-2"),
        ("--repeats", "0"),
        ("--precision", "f16"),
        ("--precision", "bits=64"),
        ("--backend", "tpu"),
        ("--batch", "100000000000"),
    ] {
        add(&["bench", "--workload", "practical", "--batch", "1", "--repeats", "1", flag, value]);
    }
    add(&["bench"]);
    add(&["bench", "--all", "--workload", "practical"]);
    add(&["bench", "--all", "--backend", "cpu,tpu"]);
    add(&["bench", "--all", "--batch", "0"]);
    add(&["bench", "--all", "--repeats", "0"]);
    add(&["bench", "--workload", "practical", "--precision", "f32,f64"]);
    // reproduce, merge, plot, check, config
    for config in [&not_json, &empty, &wrong_type, &unknown_field, &bad_points, &missing, &a_dir] {
        add(&["reproduce", "--config", config, "--out", dir.join("r").to_str().unwrap(), "--no-plot"]);
    }
    add(&["reproduce", "--quick", "--shard", "3/2", "--out", dir.join("r").to_str().unwrap()]);
    add(&["reproduce", "--quick", "--shard", "0/0", "--out", dir.join("r").to_str().unwrap()]);
    add(&["reproduce", "--quick", "--shard", "x", "--out", dir.join("r").to_str().unwrap()]);
    add(&["reproduce", "--quick", "--resume", "--restart", "--out", dir.join("r").to_str().unwrap()]);
    add(&["reproduce", "--quick", "--out", "/proc/boltz"]);
    add(&["merge", &missing]);
    add(&["merge", &a_dir]);
    add(&["plot", &missing]);
    add(&["plot", &a_dir]);
    add(&["plot-history", &missing]);
    add(&["check", &missing]);
    add(&["check", &a_dir]);
    add(&["config", "--name", "nope"]);
    add(&["nonsense"]);
    add(&["memorize", "--sequences"]);
    // verify and datasets in: missing files, wrong kinds of file, flags that need others.
    let text = file("not-numpy.npz", "hello");
    add(&["verify", "--model", &missing, "--dataset", &missing]);
    add(&["verify", "--model", &text, "--dataset", &text]);
    add(&["verify", "--dataset", &text]);
    add(&["verify", "--model", &text, "--dataset", &text, "--backend", "cpu", "--precision", "bits=80"]);
    add(&["verify", "--model", &text, "--dataset", &text, "--max-bits", "1"]);
    add(&["memorize", "--dataset", &text]);
    add(&["memorize", "--dataset", &missing]);
    add(&["memorize", "--labels", &text]);
    add(&["memorize", "--dataset", &text, "--labels", &text, "--targets", &text]);

    let (mut clear, mut panics, mut silent) = (0, Vec::new(), Vec::new());
    for args in &cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = boltz(&argv);
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("panicked") || o.status.code() == Some(101) {
            panics.push(format!("{argv:?}: {err}"));
        } else if o.status.code() == Some(2) && !err.trim().is_empty() {
            clear += 1;
        } else {
            silent.push(format!("{argv:?}: exit {:?}, stderr {err:?}", o.status.code()));
        }
    }
    eprintln!(
        "bad-input sweep: {} inputs, {clear} clear errors (exit 2), {} panics, {} other outcomes",
        cases.len(),
        panics.len(),
        silent.len()
    );
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n"));
    assert!(silent.is_empty(), "not a clear error:\n{}", silent.join("\n"));
    assert!(cases.len() >= 100, "{} cases", cases.len());
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

/// NumPy files written by an independent writer (Python's standard library: `zipfile` and a hand-made
/// `.npy` header, as numpy 1.x lays it out), for the dataset tests.
fn write_numpy_files(dir: &Path) {
    let script = r#"
import struct, sys, zipfile, random
def npy(descr, shape, values, fmt):
    tup = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, tup)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<%d%s" % (len(values), fmt), *values)
def npz(name, members, method):
    with zipfile.ZipFile(name, "w", compression=method) as z:
        for k, v in members.items():
            z.writestr(k + ".npy", v)
d = sys.argv[1]
random.seed(7)
N, n = 12, 4
vocab = [(x, y, z) for x in range(-2, 3) for y in range(-2, 3) for z in (1, 2)]   # integer grid
inputs, labels = [], []
for s in range(N):
    for t in random.sample(vocab, n):
        inputs.extend(float(v) for v in t)
    labels.extend(random.randrange(3) for _ in range(n))
x, y = npy("<f8", (N, n, 3), inputs, "d"), npy("<i8", (N, n), labels, "q")
npz(d + "/grid.npz", {"inputs": x, "labels": y}, zipfile.ZIP_STORED)
npz(d + "/grid-compressed.npz", {"inputs": x, "labels": y}, zipfile.ZIP_DEFLATED)
open(d + "/inputs.npy", "wb").write(npy("<f4", (N, n, 3), inputs, "f"))
open(d + "/labels.npy", "wb").write(npy("<i4", (N, n), labels, "i"))
open(d + "/labels-float.npy", "wb").write(npy("<f8", (N, n), [float(l) for l in labels], "d"))
open(d + "/labels-short.npy", "wb").write(npy("<i4", (N - 1, n), labels[: (N - 1) * n], "i"))
bad = list(inputs); bad[3:6] = bad[0:3]                      # sequence 0: token 1 = token 0
npz(d + "/duplicate.npz", {"inputs": npy("<f8", (N, n, 3), bad, "d"), "labels": y}, zipfile.ZIP_STORED)
bad = list(inputs); bad[2 * n * 3 + 5] = float("nan")       # sequence 2, position 1, coordinate 2
npz(d + "/nan.npz", {"inputs": npy("<f8", (N, n, 3), bad, "d"), "labels": y}, zipfile.ZIP_STORED)
perm = list(inputs); perm[n * 3:2 * n * 3] = inputs[3:n * 3] + inputs[0:3]   # sequence 1 = sequence 0 rotated
lab = list(labels); lab[n:2 * n] = [(v + 1) % 3 for v in labels[1:n] + labels[0:1]]
npz(d + "/permuted.npz", {"inputs": npy("<f8", (N, n, 3), perm, "d"), "labels": npy("<i8", (N, n), lab, "q")}, zipfile.ZIP_STORED)
npz(d + "/empty.npz", {"inputs": npy("<f8", (0, n, 3), [], "d"), "labels": npy("<i8", (0, n), [], "q")}, zipfile.ZIP_STORED)
npz(d + "/extra.npz", {"inputs": x, "labels": y, "weights": y}, zipfile.ZIP_STORED)
raw = open(d + "/grid.npz", "rb").read(); i = raw.index(b"NUMPY") + 200
open(d + "/corrupt.npz", "wb").write(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .expect("python3 (installed by scripts/setup.sh) writes the NumPy files");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `memorize --dataset` reads NumPy data (stored and deflated .npz, a pair of .npy) and memorizes it; every
/// malformed input is refused with exit 2 naming the problem, before anything is built. `verify` runs the
/// exported model on the same data and finds the same fewest bits.
#[test]
fn numpy_datasets_memorize_and_verify() {
    let dir = tmp("numpy");
    write_numpy_files(&dir);
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let memorize = |args: &[&str]| {
        let mut all = vec!["memorize", "--policy", "fewest-bits", "--json"];
        all.extend_from_slice(args);
        boltz(&all)
    };
    let mut fewest = Vec::new();
    let (grid, compressed, inputs, labels) = (p("grid.npz"), p("grid-compressed.npz"), p("inputs.npy"), p("labels.npy"));
    for args in [
        vec!["--dataset", grid.as_str()],
        vec!["--dataset", compressed.as_str()],
        vec!["--dataset", inputs.as_str(), "--labels", labels.as_str()],
    ] {
        let o = memorize(&args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!((v["dataset"]["N"].as_u64(), v["dataset"]["n"].as_u64(), v["dataset"]["d"].as_u64()), (Some(12), Some(4), Some(3)));
        assert_eq!(v["exact_at_build_bits"]["accuracy"], 1.0, "{args:?}");
        fewest.push(v["fewest_bits"]["fewest"].as_u64().unwrap());
    }
    // The same data three ways (the .npy inputs are f32, exact for these small integers): the same answer.
    assert!(fewest.iter().all(|&f| f == fewest[0]), "{fewest:?}");

    // An exported model verifies on the same data, and the bisection agrees with memorize's.
    let export = dir.join("export");
    let o = memorize(&["--dataset", &p("grid.npz"), "--export", export.to_str().unwrap(), "--no-bisect"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for model in ["model.exact.json", "model.safetensors"] {
        let model = export.join(model);
        let o =
            boltz(&["verify", "--model", model.to_str().unwrap(), "--dataset", &p("grid.npz"), "--bisect", "--max-bits", "400", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["memorization"]["accuracy"], 1.0, "{v}");
        assert_eq!(v["fewest_bits"]["fewest"].as_u64(), Some(fewest[0]), "{}", model.display());
    }
    // A model file from another safetensors writer (as `safetensors.torch.save_file(tensors, path, metadata)`
    // lays one out: tensors in its own order, its own header padding, the documented names and metadata)
    // loads unchanged: Python's stdlib re-writes the exported f64 model, and verify reports the same run.
    let foreign = dir.join("foreign.safetensors");
    let rewrite = r#"
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n]); body = raw[8 + n:]
meta = header.pop("__metadata__")
out, blobs, offset = {"__metadata__": meta}, [], 0
for name in sorted(header, reverse=True):                       # another order than the original
    t = header[name]; a, b = t["data_offsets"]
    out[name] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [offset, offset + b - a]}
    blobs.append(body[a:b]); offset += b - a
text = json.dumps(out).encode(); text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
"#;
    let o = Command::new("python3").arg("-c").arg(rewrite).arg(export.join("model.safetensors")).arg(&foreign).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = |model: &Path| {
        let o = boltz(&["verify", "--model", model.to_str().unwrap(), "--dataset", &p("grid.npz"), "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["memorization"].clone()
    };
    assert_eq!(report(&foreign), report(&export.join("model.safetensors")));

    // Below the fewest bits a token fails to decode: exit 1, the report still written.
    let below = format!("bits={}", fewest[0] - 4);
    let o = boltz(&[
        "verify",
        "--model",
        export.join("model.exact.json").to_str().unwrap(),
        "--dataset",
        &p("grid.npz"),
        "--backend",
        "bigfloat",
        "--precision",
        &below,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("tokens decoded"));

    let refused = |args: &[&str], expected: &[&str]| {
        let o = boltz(args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for e in expected {
            assert!(err.contains(e), "{args:?}: expected {e:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    let memorize_refused = |file: &str, extra: &[&str], expected: &[&str]| {
        let path = p(file);
        let mut args = vec!["memorize", "--dataset", path.as_str()];
        args.extend_from_slice(extra);
        refused(&args, expected);
    };
    memorize_refused("duplicate.npz", &[], &["duplicate token in sequence 0", "positions 0 and 1"]);
    memorize_refused("nan.npz", &[], &["inputs[2, 1, 2]", "non-finite"]);
    memorize_refused("permuted.npz", &[], &["sequences 0 and 1", "permutations"]);
    memorize_refused("empty.npz", &[], &["at least 1"]);
    memorize_refused("extra.npz", &[], &["unknown array `weights`"]);
    memorize_refused("corrupt.npz", &[], &["CRC-32"]);
    memorize_refused("inputs.npy", &[], &["labels or targets"]);
    memorize_refused("inputs.npy", &["--labels", &p("labels-float.npy")], &["labels-float.npy", "integers"]);
    memorize_refused("inputs.npy", &["--labels", &p("labels-short.npy")], &["labels-short.npy", "[12, 4]"]);
    memorize_refused("grid.npz", &["--sequences", "5"], &["--sequences"]);
    memorize_refused("missing.npz", &[], &["missing.npz"]);
    // verify: a model whose token dimension is not the data's.
    let other = dir.join("other");
    let o = boltz(&[
        "memorize",
        "--sequences",
        "4",
        "--length",
        "3",
        "--dim",
        "2",
        "--vocab",
        "8",
        "--no-bisect",
        "--export",
        other.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    refused(
        &["verify", "--model", other.join("model.exact.json").to_str().unwrap(), "--dataset", &p("grid.npz")],
        &["token dimension 2", "d = 3"],
    );
    refused(&["verify", "--model", &p("grid.npz"), "--dataset", &p("grid.npz")], &["--model"]);
}

/// `capacity.datasets`: the suite builds its constructions on dataset files too (here PTE and grid data
/// exported by `memorize`, where mean pooling collides), with paths relative to the configuration file; a
/// missing, malformed or doubly named dataset is refused before any point runs.
#[test]
fn reproduce_runs_the_capacity_constructions_on_dataset_files() {
    let dir = tmp("suite-datasets");
    for (family, dim) in [("pte", "1"), ("grid", "2")] {
        let export = dir.join(family);
        let o = boltz(&[
            "memorize",
            "--vocab-kind",
            family,
            "--dim",
            dim,
            "--sequences",
            "8",
            "--length",
            "5",
            "--vocab",
            "12",
            "--policy",
            "fewest-bits",
            "--no-bisect",
            "--export",
            export.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{family}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let config = |datasets: &str| {
        format!(
            r#"{{ "seed": 3, "threads": 1,
  "capacity": {{ "sequences": [4], "length": 3, "dim": 2, "vocab": 6, "policies": ["fewest-bits", "mean-pool"], "softmax_max_sequences": 0, "yun_max_sequences": 0, "bisect": true, "bisect_max_sequences": 10, "datasets": {datasets} }},
  "separation": {{ "grid": [], "sequences": 1 }},
  "approximation": {{ "targets": [], "length": 2, "cells": [], "samples": 1 }},
  "hardmax": {{ "dims": [], "draws": 1, "family": 3 }} }}"#
        )
    };
    let cfg = dir.join("suite.json");
    std::fs::write(&cfg, config(r#"[{"path": "pte/dataset.safetensors", "name": "pte"}, {"path": "grid/dataset.safetensors", "name": "grid", "policies": ["fewest-bits"]}]"#)).unwrap();
    let out = dir.join("out");
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cap = read_json(&out.join("capacity.json"));
    let rows = cap["rows"].as_array().unwrap();
    let find = |family: Option<&str>, policy: &str| {
        rows.iter().find(|r| r["family"].as_str() == family && r["policy"] == policy).unwrap_or_else(|| panic!("{family:?} {policy}"))
    };
    assert_eq!(rows.len(), 2 + 2 + 1, "two generated points, two on pte, one on grid");
    for family in ["file:pte", "file:grid"] {
        let r = find(Some(family), "fewest-bits");
        // The one-layer construction memorizes the file's data exactly, verified in arbitrary precision,
        // and the bisection found its fewest bits.
        assert_eq!(r["N"], 8, "{r}");
        assert!(r["exact_in_bigfloat"] == true && r["property_held"] == true, "{r}");
        assert!(r["fewest_bits"].as_u64().is_some_and(|b| b >= 8 && b <= r["build_bits"].as_u64().unwrap()), "{r}");
    }
    // PTE sets have equal token sums: mean pooling (λ = 0) cannot separate them, and the row says so.
    let mean = find(Some("file:pte"), "mean-pool");
    assert!(mean["build_error"].as_str().is_some_and(|e| e.contains("mean pooling")), "{mean}");
    assert!(find(None, "fewest-bits")["N"] == 4);
    // The configuration records the resolved dataset paths.
    let path = cap["config"]["capacity"]["datasets"][0]["path"].as_str().unwrap();
    assert!(Path::new(path).is_absolute() && path.ends_with("pte/dataset.safetensors"), "{path}");
    // Charts are drawn from the generated sweep (file rows are not on its N axis).
    assert!(std::fs::read_dir(&out).unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "png")));

    // Refused before any point runs, naming the field.
    std::fs::write(dir.join("dup.json"), r#"{"format":"boltzformer-exact/1","metadata":{"format":"boltzformer/1","kind":"dataset"},"tensors":{"inputs":{"shape":[1,2,1],"values":["0x1p0","0x1p0"]},"targets":{"shape":[1,2,1],"values":["0x0p0","0x1p0"]}}}"#).unwrap();
    for (datasets, expected) in [
        (r#"[{"path": "missing.npz"}]"#, "capacity.datasets[0]"),
        (r#"[{"path": "dup.json"}]"#, "duplicate token in sequence 0"),
        (r#"[{"path": "pte/dataset.safetensors"}, {"path": "grid/dataset.safetensors"}]"#, "used twice"),
        (r#"[{"path": "pte/dataset.safetensors", "policies": ["best"]}]"#, "capacity.datasets[0].policies"),
    ] {
        std::fs::write(&cfg, config(datasets)).unwrap();
        let bad_out = dir.join("bad-out");
        let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", bad_out.to_str().unwrap(), "--no-plot"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{datasets}: {err}");
        assert!(err.contains(expected), "{datasets}: {err}");
        assert!(!bad_out.join("checkpoint.jsonl").exists(), "{datasets}: a point ran");
    }
}

/// `boltz train`: Adam on a small generated dataset memorizes it (early stop), the record carries the loss
/// curve and the reference backend's independent check; bad arguments exit 2 by name.
#[test]
fn train_memorizes_a_small_dataset_and_records_its_curve() {
    let dir = tmp("train");
    let out = dir.join("train.json");
    let args = "train --sequences 6 --length 3 --dim 4 --vocab 9 --ffn-width 48 --steps 3000 --threads 2 --seed 5 --out";
    let o = boltz(&[&args.split(' ').collect::<Vec<_>>()[..], &[out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = read_json(&out);
    assert_eq!(rec["report"]["memorized"], true, "{}", rec["report"]);
    assert_eq!(rec["reference_check"]["accuracy"], 1.0);
    let curve = rec["report"]["curve"].as_array().unwrap();
    assert!(curve.len() >= 2 && curve[0][1].as_f64().unwrap() > curve.last().unwrap()[1].as_f64().unwrap());
    assert!(rec["report"]["steps"].as_u64().unwrap() < 3000, "early stop");
    assert!(rec["meta"]["git_rev"].is_string());
    // The trained-capacity search: the largest N memorized, the next N failing from every seed.
    let args = "train --capacity-max 8 --init-seeds 1,2 --length 3 --dim 4 --vocab 9 --rank 1 --ffn-width 6 --steps 600 --lr 0.02 --threads 2 --seed 3 --json";
    let o = boltz(&args.split(' ').collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec: Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = rec["capacity"]["largest_memorized"].as_u64().unwrap();
    assert!((1..=8).contains(&n), "{}", rec["capacity"]);
    let probes = rec["capacity"]["probes"].as_array().unwrap();
    assert!(probes.iter().any(|p| p["sequences"] == n && p["memorized"] == true));
    if let Some(f) = rec["capacity"]["smallest_failed"].as_u64() {
        assert!(probes.iter().filter(|p| p["sequences"] == f).all(|p| p["memorized"] == false));
    }
    // --save writes the initial and trained models and the data; `boltz verify` re-runs the trained model
    // from its file (on the cpu backend, another forward than training's) and finds it exact.
    let saved = dir.join("saved");
    let args = "train --sequences 6 --length 3 --dim 4 --vocab 9 --ffn-width 48 --steps 3000 --threads 2 --seed 5 --save";
    let o = boltz(&[&args.split(' ').collect::<Vec<_>>()[..], &[saved.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["init.safetensors", "trained.safetensors", "dataset.safetensors"] {
        assert!(saved.join(f).exists(), "{f}");
    }
    let o = boltz(&[
        "verify",
        "--model",
        saved.join("trained.safetensors").to_str().unwrap(),
        "--dataset",
        saved.join("dataset.safetensors").to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memorization"]["accuracy"], 1.0, "{v}");
    // Cross-entropy over 3 classes: recorded in the config, decoded by argmax on the reference backend.
    let args =
        "train --sequences 4 --length 3 --dim 4 --vocab 9 --classes 3 --loss cross-entropy --ffn-width 32 --steps 2000 --seed 2 --json";
    let o = boltz(&args.split(' ').collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rec["config"]["loss"], json!({"kind": "cross-entropy", "classes": 3, "label_coord": 0}));
    assert_eq!((&rec["report"]["memorized"], &rec["reference_check"]["accuracy"]), (&json!(true), &json!(1.0)), "{rec}");
    // Fine-tuning from the construction: the fewest-bits memorizer of 6 sequences, rounded to f32, already
    // memorizes (the curve starts at 100 % and training stops at step 0); the measured policy's weights do
    // not fit an f64 and are refused by name.
    let args = "train --init-construction fewest-bits --sequences 6 --length 3 --dim 4 --vocab 9 --precision f32 --steps 50 --json";
    let o = boltz(&args.split(' ').collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&rec["report"]["steps"], &rec["report"]["curve"][0][2], &rec["reference_check"]["accuracy"]),
        (&json!(0), &json!(1.0), &json!(1.0)),
        "{rec}"
    );
    let o = boltz(&["train", "--init-construction", "measured", "--sequences", "30", "--length", "8", "--vocab", "16", "--steps", "5"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("rounded to f64") && err.contains("non-finite"), "{err}");
    // A warm-started (curriculum) search records where each run started.
    let args = "train --capacity-max 8 --init-seeds 1 --warm-start --length 3 --dim 4 --vocab 9 --rank 1 --ffn-width 6 --steps 400 --lr 0.02 --seed 3 --json";
    let o = boltz(&args.split(' ').collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(rec["capacity"]["probes"].as_array().unwrap().iter().any(|p| p["warm_from"].is_u64()), "{}", rec["capacity"]);
    for (args, expected) in [
        (vec!["train", "--precision", "f16"], "f16"),
        (vec!["train", "--capacity-max", "4", "--precision", "f32"], "f64"),
        (vec!["train", "--warm-start"], "--capacity-max"),
        (vec!["train", "--capacity-max", "4", "--save", "x"], "--save"),
        (vec!["train", "--loss", "cross-entropy", "--classes", "5", "--dim", "4"], "classes"),
        (vec!["train", "--heads", "0"], "heads"),
        (vec!["train", "--lr=-1"], "lr"),
        (vec!["train", "--threads", "0"], "--threads"),
    ] {
        let o = boltz(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
