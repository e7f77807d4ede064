//! The committed result files are machine-friendly: every CSV parses with a real CSV parser, has the
//! header's column count in every record, and holds the same rows and values (with their types) as the
//! JSON file beside it; every field of every committed result is documented in `docs/results.md`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `<experiment>.json` result file under `results/` with its CSV sibling.
fn result_files() -> Vec<(PathBuf, Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&workspace().join("results"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            (v.get("experiment").is_some() && v.get("rows").is_some()).then_some((p, v))
        })
        .collect()
}

/// Whether a CSV cell holds the JSON value (as `write_csv` writes it).
fn cell_matches(cell: &str, value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => cell.is_empty(),
        Some(Value::String(s)) => cell == s,
        Some(Value::Bool(b)) => cell == if *b { "true" } else { "false" },
        Some(Value::Number(n)) => cell.parse::<f64>().ok() == n.as_f64(),
        Some(other) => serde_json::from_str::<Value>(cell).ok().as_ref() == Some(other),
    }
}

#[test]
fn committed_csv_files_parse_and_match_their_json() {
    let files = result_files();
    assert!(files.len() >= 5, "expected the committed reproduce results, found {}", files.len());
    let mut checked = 0;
    for (json_path, json) in &files {
        let csv_path = json_path.with_extension("csv");
        let Ok(text) = std::fs::read_to_string(&csv_path) else { continue };
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let records: Vec<csv::StringRecord> =
            reader.records().map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", csv_path.display()))).collect();
        let rows = json["rows"].as_array().unwrap();
        assert_eq!(records.len(), rows.len(), "{}: rows", csv_path.display());
        // Columns: exactly the union of the rows' keys.
        let keys: BTreeSet<&str> = rows.iter().flat_map(|r| r.as_object().unwrap().keys().map(String::as_str)).collect();
        assert_eq!(header.iter().map(String::as_str).collect::<BTreeSet<_>>(), keys, "{}: columns", csv_path.display());
        for (i, (rec, row)) in records.iter().zip(rows).enumerate() {
            assert_eq!(rec.len(), header.len(), "{} record {i}: column count", csv_path.display());
            for (col, cell) in header.iter().zip(rec.iter()) {
                assert!(
                    cell_matches(cell, row.get(col)),
                    "{} record {i}, column {col}: {cell:?} vs {:?}",
                    csv_path.display(),
                    row.get(col)
                );
            }
        }
        // Types: within a column, numbers are numbers and booleans booleans in every non-empty cell.
        for (c, col) in header.iter().enumerate() {
            let kinds: BTreeSet<&str> = rows
                .iter()
                .filter_map(|r| match r.get(col) {
                    Some(Value::Number(_)) => Some("number"),
                    Some(Value::Bool(_)) => Some("bool"),
                    Some(Value::String(_)) => Some("string"),
                    Some(Value::Array(_) | Value::Object(_)) => Some("json"),
                    _ => None,
                })
                .collect();
            assert!(kinds.len() <= 1, "{}: column {col} mixes {kinds:?}", csv_path.display());
            if kinds.contains("number") {
                assert!(records.iter().all(|r| r[c].is_empty() || r[c].parse::<f64>().is_ok()), "{}: {col}", csv_path.display());
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} CSV files checked");
}

/// `docs/results.md`: the fields of each `## section` table (first column, in backticks).
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(workspace().join("docs/results.md")).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_string();
        } else if let Some(rest) = line.strip_prefix("| `") {
            if let Some((field, _)) = rest.split_once('`') {
                out.entry(section.clone()).or_default().insert(field.to_string());
            }
        }
    }
    out
}

#[test]
fn every_committed_field_is_documented() {
    let docs = documented();
    let section = |name: &str| docs.get(name).cloned().unwrap_or_default();
    let mut missing = Vec::new();
    for (path, file) in result_files() {
        let exp = file["experiment"].as_str().unwrap().to_string();
        for k in file.as_object().unwrap().keys() {
            if !section("Top level").contains(k) {
                missing.push(format!("{}: top-level {k}", path.display()));
            }
        }
        for k in file["meta"].as_object().unwrap().keys() {
            if !section("meta").contains(k) {
                missing.push(format!("{}: meta.{k}", path.display()));
            }
        }
        for d in file["meta"]["devices"].as_array().into_iter().flatten() {
            for k in d.as_object().unwrap().keys() {
                if !section("meta.devices[]").contains(k) {
                    missing.push(format!("{}: meta.devices[].{k}", path.display()));
                }
            }
        }
        let mut allowed = section(&exp);
        if exp == "adversarial" {
            allowed.extend(section("capacity"));
        }
        if file.get("schema_version").and_then(Value::as_u64).unwrap_or(1) < 3 && matches!(exp.as_str(), "capacity" | "adversarial") {
            allowed.extend(section("capacity (schema 1–2)"));
        }
        for row in file["rows"].as_array().unwrap() {
            for k in row.as_object().unwrap().keys() {
                if !allowed.contains(k) {
                    missing.push(format!("{}: {exp} row field {k}", path.display()));
                }
            }
            for run in row.get("runs").and_then(Value::as_array).into_iter().flatten() {
                for k in run.as_object().unwrap().keys() {
                    if !section("runs[]").contains(k) {
                        missing.push(format!("{}: {exp} row field runs[].{k}", path.display()));
                    }
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "undocumented fields in docs/results.md:\n{}", missing.join("\n"));
}

/// Every committed row reads into its experiment's typed row and writes back to the same JSON: no field is
/// dropped or retyped (an integer read into a float would come back as `3.0`), so the charts, which read
/// only typed rows, see every field the files hold.
#[test]
fn every_committed_row_round_trips_through_its_typed_row() {
    use boltz_lab::rows::{migrate_construction_row, ApproximationRow, ConstructionRow, HardmaxRow, PointRow, SeparationRow, TrainedRow};
    fn round_trip<R: serde::Serialize + serde::de::DeserializeOwned>(row: &Value) -> Result<Value, String> {
        let typed: PointRow<R> = serde_json::from_value(row.clone()).map_err(|e| e.to_string())?;
        serde_json::to_value(&typed).map_err(|e| e.to_string())
    }
    let files = result_files();
    let mut checked = 0;
    for (path, file) in &files {
        let experiment = file["experiment"].as_str().unwrap();
        // Files of schema 1 and 2 are read as `load_results` reads them: construction rows migrated.
        let old_schema = file.get("schema_version").and_then(Value::as_u64).unwrap_or(1) < 3;
        for (i, row) in file["rows"].as_array().unwrap().iter().enumerate() {
            let mut row = row.clone();
            if old_schema && matches!(experiment, "capacity" | "adversarial") {
                migrate_construction_row(&mut row);
            }
            let row = &row;
            let back = match experiment {
                "capacity" | "adversarial" => round_trip::<ConstructionRow>(row),
                "separation" => round_trip::<SeparationRow>(row),
                "approximation" => round_trip::<ApproximationRow>(row),
                "hardmax" => round_trip::<HardmaxRow>(row),
                "trained" => round_trip::<TrainedRow>(row),
                other => panic!("{}: unknown experiment {other:?}", path.display()),
            };
            let back = back.unwrap_or_else(|e| panic!("{} row {i}: {e}", path.display()));
            assert_eq!(&back, row, "{} row {i} changed in the round trip", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} committed rows found");
}

/// A file of schema 1 (`results/precision-n1000`) reads as schema 3, as `load_results` and `merge` read every
/// file: its construction rows carry `runs` with the old columns' values, and the typed rows keep `built`.
#[test]
fn old_schema_files_read_as_schema_3() {
    use boltz_lab::rows::{typed, ConstructionRow};
    use boltz_lab::suite::read_result_file;
    let path = workspace().join("results/precision-n1000/capacity.json");
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(raw.get("schema_version").is_none(), "the committed file is schema 1");
    let file = read_result_file(&path).unwrap();
    assert_eq!(file.schema_version, 3);
    let rows: Vec<ConstructionRow> = typed("capacity", &file.rows).unwrap();
    for (row, old) in rows.iter().zip(raw["rows"].as_array().unwrap()) {
        let built = row.built.as_ref().expect("a built row keeps its measurements");
        let reference_f64 = built.runs.iter().find(|r| r.backend == "reference" && r.precision == "f64").unwrap();
        assert_eq!(reference_f64.accuracy, old["f64_accuracy"].as_f64(), "{old}");
        assert_eq!(reference_f64.latency_ms, old["latency_reference_f64_ms"].as_f64(), "{old}");
    }
}
