//! `boltz reproduce`, `merge`, `plot`: the quick suite's files, sharding and merging, checkpoints and
//! resuming, configured backends, dataset files.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use util::*;

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
        "trained_capacity",
    ] {
        for ext in ["png", "svg"] {
            let p = out.join(format!("{chart}.{ext}"));
            assert!(std::fs::metadata(&p).map(|m| m.len() > 1000).unwrap_or(false), "{} missing or empty", p.display());
        }
        // The contact sheet shows every chart.
        let gallery = std::fs::read_to_string(out.join("gallery.md")).unwrap();
        assert!(gallery.contains(&format!("![{chart}]({chart}.png)")), "{chart} missing from gallery.md");
    }
    // Charts are redrawn from the JSON alone; a directory of results directories is redrawn whole, with
    // one gallery linking into each.
    std::fs::remove_file(out.join("separation.png")).unwrap();
    let o = boltz(&["plot", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("separation.png").exists());
    let tree = tmp("plot-tree");
    let run = tree.join("run");
    std::fs::create_dir_all(&run).unwrap();
    for f in std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")) {
        std::fs::copy(&f, run.join(f.file_name().unwrap())).unwrap();
    }
    let o = boltz(&["plot", tree.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run.join("separation.png").exists());
    let gallery = std::fs::read_to_string(tree.join("gallery.md")).unwrap();
    assert!(gallery.contains("![separation](run/separation.png)"), "{gallery}");
    let o = boltz(&["plot", run.join("nothing-here").to_str().unwrap()]);
    assert!(!o.status.success(), "plotting an empty directory must fail");
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
        "md" => assert!(String::from_utf8_lossy(&bytes).starts_with("# Gallery") && bytes.ends_with(b"\n"), "{name}: not a whole gallery"),
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
        (("\"samples\": 20", "\"samples\": 0"), "approximation.samples"),
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

/// `capacity.datasets`: the suite builds its constructions on dataset files too (here PTE and grid data
/// exported by `memorize`, where mean pooling collides), with paths relative to the configuration file; a
/// missing, malformed or doubly named dataset is refused before any point runs.
#[test]
fn reproduce_runs_the_capacity_constructions_on_dataset_files() {
    let dir = tmp("suite-datasets");
    for (family, dim) in [("pte", "1"), ("grid", "2")] {
        let export = dir.join(family);
        let o = boltz_line(&format!(
            "memorize --vocab-kind {family} --dim {dim} --sequences 8 --length 5 --vocab 12 --policy fewest-bits --no-bisect --export {}",
            export.display()
        ));
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
    // Charts are drawn from the generated sweep (file rows are not on its N axis): at its one N, a table.
    let gallery = std::fs::read_to_string(out.join("gallery.md")).unwrap();
    assert!(gallery.contains("### Table: The constructions at N = 4") && !gallery.contains("N = 8"), "{gallery}");
    assert!(!out.join("precision_vs_n.png").exists(), "one N drawn as a chart");

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

/// A run ends by comparing its exact fields with the committed results; `boltz check` fails for exact
/// differences only, unless `--time-factor` makes timings count.
#[test]
fn runs_compare_with_committed_results_and_only_exact_differences_fail() {
    let dir = tmp("compare");
    let cfg = dir.join("small.json");
    std::fs::write(&cfg, SMALL).unwrap();
    let (committed, rerun) = (dir.join("committed"), dir.join("rerun"));
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec!["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-plot"];
        args.extend(extra);
        boltz(&args)
    };
    let o = run(&committed, &["--no-compare"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&rerun, &["--compare", committed.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    let fields =
        err.split("reproduced ").nth(1).and_then(|t| t.split(" exact fields").next()).unwrap_or_else(|| panic!("{err}")).to_string();
    let (k, m) = fields.split_once(" of ").unwrap();
    assert!(k == m && m.parse::<usize>().unwrap() > 100, "{err}");

    // Timings only: information without --time-factor, a failure with one; `inf` never fails.
    let cap = committed.join("capacity.json");
    let mut file = read_json(&cap);
    let rows = file["rows"].as_array_mut().unwrap();
    rows[0]["seconds"] = json!(rows[0]["seconds"].as_f64().unwrap() * 1000.0 + 1000.0);
    std::fs::write(&cap, serde_json::to_string(&file).unwrap()).unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec!["check", committed.to_str().unwrap(), "--with", rerun.to_str().unwrap()];
        args.extend(extra);
        boltz(&args)
    };
    let o = check(&[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("information only") && out.contains(&format!("reproduced {m} of {m} exact fields")), "{out}");
    assert_eq!(check(&["--time-factor", "5"]).status.code(), Some(1));
    assert_eq!(check(&["--time-factor", "inf"]).status.code(), Some(0));
    assert_eq!(check(&["--time-factor", "0.5"]).status.code(), Some(2));

    // One exact field: the run's comparison and `boltz check` both fail and name it.
    let mut file = read_json(&cap);
    let row = file["rows"].as_array_mut().unwrap().iter_mut().find(|r| r["fewest_bits"].is_u64()).unwrap();
    row["fewest_bits"] = json!(row["fewest_bits"].as_u64().unwrap() + 1);
    std::fs::write(&cap, serde_json::to_string(&file).unwrap()).unwrap();
    let o = check(&["--time-factor", "inf"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("fewest_bits") && out.contains("(1 differences)"), "{out}");
    let o = run(&dir.join("again"), &["--compare", committed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));

    // Another configuration's results, or the run's own directory: not compared, said so.
    let o = boltz(&[
        "reproduce",
        "--quick",
        "--out",
        dir.join("quick").to_str().unwrap(),
        "--no-plot",
        "--compare",
        committed.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success() && err.contains("holds another configuration's results"), "{err}");
    let o = run(&committed, &["--compare", committed.to_str().unwrap(), "--restart"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success() && err.contains("wrote the committed results"), "{err}");
}

/// Configurations people can compose: a partial file merges over the default, `--set` overrides any field,
/// `--plan` lists the points without running; an empty plan, a point twice and `--quick` with `--config`
/// are refused saying so.
#[test]
fn partial_configs_merge_sets_override_and_plans_list_points() {
    let dir = tmp("compose");
    let plan = |args: &[&str]| {
        let mut all = vec!["reproduce", "--plan", "--json", "--no-compare"];
        all.extend(args);
        let o = boltz(&all);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap().as_array().unwrap().clone()
    };
    let default = plan(&[]);
    let seed7 = dir.join("seed7.json");
    // A byte-order mark (as some editors write) is not an error either.
    std::fs::write(&seed7, "\u{feff}{\"seed\": 7}").unwrap();
    assert_eq!(plan(&["--config", seed7.to_str().unwrap()]), default, "the default's points, with another seed");
    let small = plan(&["--set", "capacity.sequences=[10]", "--set", "capacity.policies=[\"measured\"]", "--set", "trained.families=[]"]);
    let capacity: Vec<&Value> = small.iter().filter(|p| p["experiment"] == "capacity").collect();
    assert_eq!(capacity.len(), 1);
    assert_eq!(capacity[0]["spec"]["sequences"], 10);
    assert!(small.iter().all(|p| p["experiment"] != "trained" && p["memory_bytes"].as_u64().is_some()));
    // The committed results hold the default configuration: every point has its recorded seconds.
    let o = boltz(&["reproduce", "--plan", "--json", "--compare", "../../results/reproduce"]);
    let recorded: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(recorded.iter().all(|p| p["recorded_seconds"].as_f64().is_some()), "{recorded:?}");

    let refused = |args: &[&str], says: &str| {
        let mut all = vec!["reproduce", "--plan", "--no-compare"];
        all.extend(args);
        let o = boltz(&all);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(&["--set", "capacity.sequences=[3,3]"], "are the same");
    let nothing = [
        "capacity.policies=[]",
        "separation.grid=[]",
        "approximation.targets=[]",
        "hardmax.dims=[]",
        "adversarial.families=[]",
        "trained.families=[]",
    ];
    let mut args = Vec::new();
    for s in &nothing {
        args.extend(["--set", s]);
    }
    refused(&args, "no points");
    refused(&["--set", "capacity.nope=3"], "unknown field `nope`");
    refused(&["--set", "nope.x=3"], "no field nope");
    refused(&["--set", "seed"], "expected path=value");
    refused(&["--quick", "--config", seed7.to_str().unwrap()], "cannot be used with");
}

/// `reproduce --export-models` writes every construction row's model and dataset as `memorize --export`
/// does (OUT/models/point-NNN, NNN the row's `point`), so a row can be re-checked on its own: `verify
/// --model` decodes every token of the exported data at the row's build bits and bisects to the row's
/// fewest bits; the exported data has the row's N. Points that build no memorizer export nothing.
#[test]
fn export_models_writes_each_rows_model_for_an_independent_check() {
    let out = tmp("export-models");
    let mut args = vec!["reproduce", "--quick", "--no-compare", "--no-plot", "--export-models", "--out", out.to_str().unwrap()];
    let sets = [
        "capacity.sequences=[10]",
        "capacity.policies=[\"measured\",\"yun\",\"bit-extraction\"]",
        "separation.grid=[[2,4,1]]",
        "approximation.targets=[]",
        "hardmax.dims=[]",
        "adversarial.families=[]",
        "trained.families=[]",
    ];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let o = boltz(&args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("exported the models"), "{err}");
    let models = out.join("models");
    let cap = read_json(&out.join("capacity.json"));
    let rows = cap["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let dir = models.join(format!("point-{:03}", row["point"].as_u64().unwrap()));
        let o = boltz(&["verify", "--model", dir.to_str().unwrap(), "--backend", "bigfloat", "--bisect", "--json"]);
        assert!(o.status.success(), "{}: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["precision"], format!("bits={}", row["build_bits"]), "{}", row["policy"]);
        assert_eq!(v["memorization"]["decoded"], v["memorization"]["tokens"], "{}", row["policy"]);
        assert_eq!(v["memorization"]["tokens"].as_u64().unwrap(), row["N"].as_u64().unwrap() * row["n"].as_u64().unwrap());
        assert_eq!(v["fewest_bits"]["fewest"], row["fewest_bits"], "{}: the row's fewest bits, found again", row["policy"]);
    }
    // Only the construction points exported: three model directories, none for the separation point.
    let mut names: Vec<String> =
        std::fs::read_dir(&models).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["point-000", "point-001", "point-002"]);
    // A file where the models directory goes is refused before any point runs.
    let blocked = tmp("export-models-blocked");
    std::fs::write(blocked.join("models"), "not a directory").unwrap();
    let mut args = vec!["reproduce", "--quick", "--no-compare", "--no-plot", "--export-models", "--out", blocked.to_str().unwrap()];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let o = boltz(&args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--export-models"), "{err}");
    assert!(!blocked.join("capacity.json").exists());
}
