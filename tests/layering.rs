//! The house's dependency rules, read from `cargo metadata` (the resolved graph, normal dependencies only):
//!
//! * `boltz-lab` (the library the CLI and Python share) and `boltzformer-py` (the wheel) reach no CLI or
//!   chart crate: no clap, indicatif, plotters, svg2pdf or csv, and neither `boltz-cli` nor `boltz-charts`;
//! * `boltz-charts` is a leaf above the lab: it reaches no CLI crate;
//! * constructions are backend-free: `boltz-construct` does not depend on a backend crate directly;
//! * no crate depends on the binary crate `boltz-cli`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Package name → names of its normal (non-dev, non-build) dependencies in the resolved graph.
fn normal_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<&str, &str> =
        meta["packages"].as_array().unwrap().iter().map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap())).collect();
    let mut graph = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null()))
            .map(|d| name_of[d["pkg"].as_str().unwrap()].to_string())
            .collect();
        graph.insert(name_of[node["id"].as_str().unwrap()].to_string(), deps);
    }
    graph
}

/// Every package `root` reaches through normal dependencies (itself excluded).
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        for d in graph.get(&p).unwrap_or_else(|| panic!("{p} is not in the workspace's resolved graph")) {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

const CLI_AND_CHARTS: [&str; 7] = ["clap", "indicatif", "plotters", "svg2pdf", "csv", "boltz-cli", "boltz-charts"];

#[test]
fn the_lab_and_the_wheel_reach_no_cli_or_chart_crate() {
    let graph = normal_dependencies();
    for root in ["boltz-lab", "boltzformer-py"] {
        let reached = reachable(&graph, root);
        assert!(reached.contains("boltz-core") && reached.contains("boltz-construct"), "{root} reaches the library crates");
        let bad: Vec<&str> = CLI_AND_CHARTS.into_iter().filter(|c| reached.contains(*c)).collect();
        assert!(bad.is_empty(), "{root} depends on {bad:?}: move what needs them into crates/cli or crates/charts");
    }
}

#[test]
fn charts_sit_above_the_lab_and_below_the_cli() {
    let graph = normal_dependencies();
    let reached = reachable(&graph, "boltz-charts");
    assert!(reached.contains("boltz-lab") && reached.contains("plotters"), "charts draw typed rows with plotters");
    for c in ["clap", "indicatif", "boltz-cli"] {
        assert!(!reached.contains(c), "boltz-charts depends on {c}");
    }
    for (package, deps) in &graph {
        assert!(!deps.contains("boltz-cli"), "{package} depends on the binary crate boltz-cli");
    }
}

#[test]
fn constructions_do_not_depend_on_a_backend_crate() {
    let graph = normal_dependencies();
    let direct = &graph["boltz-construct"];
    for backend in ["boltz-cpu", "boltz-blas", "boltz-cuda"] {
        assert!(!direct.contains(backend), "boltz-construct depends on {backend} directly (the thread rule is boltz_core::threads)");
    }
}
