//! What the CLI tests share: running the binary, temporary directories, JSON files, a small suite config.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the `boltz` binary built for these tests.
pub fn boltz(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boltz")).args(args).output().unwrap()
}

/// A fresh, empty temporary directory for one test.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("boltz-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A JSON file, parsed (the panic names the file).
pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// A small suite configuration: every experiment, seconds to run.
pub const SMALL: &str = r#"{
  "seed": 7, "threads": 2,
  "capacity": { "sequences": [8, 20], "length": 4, "dim": 3, "vocab": 10, "policies": ["measured", "fewest-bits", "mean-pool", "yun"], "softmax_max_sequences": 8, "yun_max_sequences": 8, "bisect": true, "bisect_max_sequences": 20 },
  "adversarial": { "families": [{ "kind": "grid", "dim": 2 }, { "kind": "pte", "dim": 1 }], "sequences": [8], "length": 4, "vocab": 10, "policies": ["fewest-bits", "mean-pool", "yun-minimal"] },
  "separation": { "grid": [[2, 4, 1], [3, 6, 2]], "sequences": 10 },
  "approximation": { "targets": ["product-mean"], "length": 2, "cells": [2, 4], "samples": 50 },
  "hardmax": { "dims": [2], "draws": 20, "family": 3 }
}"#;

/// Runs `boltz` with `line` split at whitespace (no argument may contain a space).
pub fn boltz_line(line: &str) -> Output {
    boltz(&line.split_whitespace().collect::<Vec<_>>())
}
