//! The house's dependency rules, read from `cargo metadata` (the resolved graph, normal dependencies only):
//!
//! * `boltz-lab` (the library the CLI and Python share) and `boltzformer-py` (the wheel) reach no CLI or
//!   chart crate: no clap, indicatif, plotters, svg2pdf or csv, and neither `boltz-cli` nor `boltz-charts`;
//! * `boltz-charts` is a leaf above the lab: it reaches no CLI crate;
//! * constructions are backend-free: `boltz-construct` does not depend on a backend crate directly;
//! * no crate depends on the binary crate `boltz-cli`;
//! * no source file imports itself back through a circle of `crate::`/`super::` paths, and none is over 800
//!   lines (test modules excepted).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The host's target triple (`rustc -vV`'s `host:`).
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc -vV runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc -vV names the host").trim().to_string()
}

/// Package name → names of its normal (non-dev, non-build) dependencies in the resolved graph, for this
/// host (`--filter-platform`: a fresh machine's package cache holds only the crates its platform builds,
/// and `--offline` must not need the others, e.g. Windows-only ones).
fn normal_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &host_triple(), "--manifest-path"])
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

/// Every `.rs` file under `dir`.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file under `src` (`lib.rs`/`main.rs` the root, `a/mod.rs` = `a`).
fn module_of(src: &std::path::Path, file: &std::path::Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("lib" | "main" | "mod")) {
        parts.pop();
    }
    parts
}

/// The source of a file without its comments and without its trailing `#[cfg(test)] mod tests` (tests may
/// use what they test from anywhere).
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The modules a file refers to by `crate::…` or `super::…` paths (the longest prefix that is a module).
fn references(code: &str, me: &[String], modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    // `super` of module `a::b` (file `a/b.rs` or `a/b/mod.rs`) is `a`.
    let parent = me[..me.len().saturating_sub(1)].to_vec();
    for (anchor, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut from = 0;
        while let Some(i) = code[from..].find(anchor) {
            let start = from + i;
            from = start + anchor.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_' || bytes[start - 1] == b'$') {
                continue;
            }
            let path: Vec<String> = code[from..]
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let full: Vec<String> = base.iter().cloned().chain(path).collect();
            if let Some(k) = (1..=full.len()).rev().find(|&k| modules.contains(&full[..k].to_vec())) {
                if full[..k] != *me {
                    out.insert(full[..k].to_vec());
                }
            }
        }
    }
    out
}

#[test]
fn no_file_imports_in_a_circle_and_no_source_file_over_800_lines() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut circles = Vec::new();
    let mut long = Vec::new();
    let mut crates: Vec<_> = std::fs::read_dir(root.join("crates")).unwrap().flatten().map(|e| e.path().join("src")).collect();
    crates.push(root.join("python/src"));
    for src in crates.into_iter().filter(|s| s.is_dir()) {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let lines = text.lines().count();
            if lines > 800 && !f.ends_with("tests.rs") {
                long.push(format!("{} ({lines} lines)", f.display()));
            }
            let me = module_of(&src, f);
            let refs = references(&code_of(&text), &me, &modules);
            edges.insert(me, refs);
        }
        // A circle: a module that reaches itself through its references.
        for start in edges.keys() {
            let mut todo: Vec<Vec<Vec<String>>> = vec![vec![start.clone()]];
            while let Some(path) = todo.pop() {
                let last = path.last().unwrap();
                for next in edges.get(last).into_iter().flatten() {
                    if next == start {
                        let names: Vec<String> =
                            path.iter().chain([next]).map(|m| if m.is_empty() { "lib".into() } else { m.join("/") }).collect();
                        circles.push(format!("{}: {}", src.display(), names.join(" -> ")));
                    } else if !path.contains(next) && path.len() < 8 {
                        let mut p = path.clone();
                        p.push(next.clone());
                        todo.push(p);
                    }
                }
            }
        }
    }
    assert!(circles.is_empty(), "file-import circles (a module reaching itself through crate::/super:: paths):\n{}", circles.join("\n"));
    assert!(long.is_empty(), "source files over 800 lines (split them by what they do):\n{}", long.join("\n"));
}
