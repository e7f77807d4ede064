//! `boltz train`: a small dataset memorized, its loss curve recorded.

#![allow(clippy::unwrap_used)]

mod util;

use serde_json::{json, Value};
use util::*;

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
