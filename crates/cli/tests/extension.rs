//! A construction added by its own file and one registry entry reaches every door: the test tree's
//! construction (`crates/construct/tests/support/first_direction.rs`, registered in test builds) is named
//! by `boltz memorize --construction`, builds and memorizes exactly, runs on a backend, is bisected, and a
//! suite configuration runs it into typed rows and draws it in the charts with its own label and colour.

#![allow(clippy::unwrap_used)]

mod util;

use serde_json::Value;
use util::*;

const NAME: &str = "test-first-direction";

#[test]
fn memorize_builds_the_test_construction() {
    let help = String::from_utf8_lossy(&boltz(&["memorize", "--help"]).stdout).into_owned();
    assert!(help.contains(NAME), "--construction lists it: {help}");
    let o = boltz_line(&format!("memorize --construction {NAME} --sequences 12 --length 4 --dim 3 --vocab 10 --threads 1 --json"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["construction"], NAME);
    assert_eq!(v["report"]["construction"], NAME);
    // Exact at its build bits (the bigfloat run reuses nothing from a family: it runs the model), and its
    // fewest bits found, at most the build bits. Without the direction search the gaps are small and λ large:
    // it needs far more bits than the measured policy's best of 2000 directions on the same data.
    assert_eq!((&v["exact_at_build_bits"]["decoded"], &v["exact_at_build_bits"]["tokens"]), (&Value::from(48), &Value::from(48)), "{v}");
    assert_eq!((&v["backend"], &v["memorization"]["decoded"]), (&Value::from("bigfloat"), &Value::from(48)), "{v}");
    let fewest = v["fewest_bits"]["fewest"].as_u64().unwrap();
    assert!(fewest <= v["build_bits"].as_u64().unwrap(), "{v}");
    let o =
        boltz_line("memorize --construction one-layer --policy measured --sequences 12 --length 4 --dim 3 --vocab 10 --threads 1 --json");
    let measured: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(measured["fewest_bits"]["fewest"].as_u64().unwrap() < fewest, "{measured}");
    // Its one layer of attention has rank-1 products, like the one-layer construction it varies.
    let ranks = v["attention_rank"].as_array().unwrap();
    assert_eq!(ranks[0]["key_query"]["numerical_rank"], 1, "{v}");
    // A family's parameters do not apply to it: a next-token task is refused as for every non-bit-extraction construction.
    let o = boltz_line(&format!("memorize --construction {NAME} --task next-token --sequences 4"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--task next-token is for --construction bit-extraction"));
}

#[test]
fn the_suite_runs_and_draws_the_test_construction() {
    let dir = tmp("extension-suite");
    let cfg = dir.join("ext.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{ "seed": 5, "threads": 1, "backends": [{{"backend": "bigfloat", "precision": "bits=12000"}}, {{"backend": "reference", "precision": "f64"}}],
  "capacity": {{ "sequences": [6, 12], "length": 4, "dim": 3, "vocab": 10, "policies": ["measured", "{NAME}"], "softmax_max_sequences": 12, "yun_max_sequences": 0, "bisect": true, "bisect_max_sequences": 12 }},
  "separation": {{ "grid": [], "sequences": 1 }},
  "approximation": {{ "targets": [], "length": 2, "cells": [], "samples": 1 }},
  "hardmax": {{ "dims": [], "draws": 1, "family": 3 }} }}"#
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cap = read_json(&out.join("capacity.json"));
    let rows: Vec<&Value> = cap["rows"].as_array().unwrap().iter().filter(|r| r["policy"] == NAME).collect();
    assert_eq!(rows.len(), 2, "one row per N");
    for r in rows {
        assert_eq!((&r["exact_in_bigfloat"], &r["property_held"]), (&Value::from(true), &Value::from(true)), "{r}");
        let fewest = r["fewest_bits"].as_u64().unwrap();
        assert!(fewest <= r["build_bits"].as_u64().unwrap(), "{r}");
        // Every configured run is in the row, in order; at 12 000 bits, above its fewest bits on a monotone
        // search, every token decodes; f64 either decodes or the row says why it could not run.
        let runs = r["runs"].as_array().unwrap();
        assert_eq!(runs.iter().map(|x| x["backend"].as_str().unwrap()).collect::<Vec<_>>(), ["bigfloat", "reference"], "{r}");
        if r["fewest_bits_monotone"] == true && fewest <= 12_000 {
            assert_eq!(runs[0]["accuracy"], 1.0, "{r}");
        }
        assert!(runs[1]["accuracy"].is_f64() != runs[1]["error"].is_string(), "{r}");
    }
    // The charts carry its legend label (from its registry entry; the legend wraps it over lines, drawn
    // one after the other, so the texts are joined) in its own colour, the registry's first extension's.
    for chart in ["precision_vs_n", "latency_vs_n", "accuracy_vs_n"] {
        let svg = std::fs::read_to_string(out.join(format!("{chart}.svg"))).unwrap();
        let texts: Vec<&str> = svg.split("</text>").filter_map(|t| t.rsplit_once('>').map(|(_, text)| text.trim())).collect();
        assert!(
            texts.join(" ").contains("test construction: one layer, rank-1 softmax, the first random direction"),
            "{chart}.svg has no series for {NAME}"
        );
        assert!(svg.contains("#332288"), "{chart}.svg does not draw it in its colour");
    }
    // Its attention ranks, the same at both N, are a row of the gallery's rank table (not a chart).
    let gallery = std::fs::read_to_string(out.join("gallery.md")).unwrap();
    assert!(gallery.contains("| test construction: one layer, rank-1 softmax, the first random direction | 1 | 1 |"), "{gallery}");
    assert!(!out.join("attention_rank.svg").exists());
    // `boltz check` reads the rows back (typed by the registry) and finds the re-run equal.
    let again = dir.join("again");
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", again.to_str().unwrap(), "--no-plot"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = boltz(&["check", out.to_str().unwrap(), "--with", again.to_str().unwrap(), "--time-factor", "1000000"]);
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}
