//! The trained-capacity table in `results/README.md` is the committed search results: every number is read
//! back from `results/trained-capacity/width-H.json`, each search's answer is checked against its own
//! recorded runs, and the H = 32 answer is re-trained here and decoded by the reference backend (code the
//! training never runs).

#![allow(clippy::unwrap_used)]

use boltz_core::{Backend, Dataset, DatasetSpec, Memorization, Model, ReferenceBackend};
use boltz_train::{init_model, train, CapacitySearch};
use serde_json::Value;

fn repo(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn number(cell: &str) -> f64 {
    cell.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect::<String>().parse().unwrap_or_else(|e| panic!("{cell:?}: {e}"))
}

#[test]
fn the_trained_capacity_table_is_the_committed_searches() {
    let readme = repo("results/README.md");
    let start = readme.find("<!-- trained-table -->").expect("the table's marker");
    let block = &readme[start..readme[start..].find("<!-- /trained-table -->").map(|e| start + e).expect("its end marker")];
    let mut checked = 0;
    for line in block.lines().filter(|l| l.starts_with("| ") && !l.contains("---")).skip(1) {
        let cells: Vec<f64> = line.trim_matches('|').split('|').map(|c| number(c.trim())).collect();
        let width = cells[0] as usize;
        let rec: Value = serde_json::from_str(&repo(&format!("results/trained-capacity/width-{width}.json"))).unwrap();
        let search: CapacitySearch = serde_json::from_value(rec["search"].clone()).unwrap();
        assert_eq!(search.shape.ffn_width, width);
        let c = &rec["capacity"];
        let (n, failed) = (c["largest_memorized"].as_u64().unwrap(), c["smallest_failed"].as_u64().unwrap());
        assert_eq!(cells[1] as u64, n, "{line}");
        assert_eq!(cells[2] as u64, failed, "{line}");
        assert_eq!(cells[3] as u64, c["params"].as_u64().unwrap(), "{line}");
        assert!((cells[4] - c["bits_per_param"].as_f64().unwrap()).abs() < 5e-4, "{line}");
        assert_eq!(cells[5] as usize, width / search.data.length, "{line}: the construction's N = H/n");
        // The answer against the recorded runs: memorized at N by some seed, by no seed at N + 1.
        let probes = c["probes"].as_array().unwrap();
        assert!(probes.iter().any(|p| p["sequences"] == n && p["memorized"] == true), "{line}");
        assert_eq!(failed, n + 1);
        let at_failed: Vec<&Value> = probes.iter().filter(|p| p["sequences"] == failed).collect();
        assert_eq!(at_failed.len(), search.seeds.len());
        assert!(at_failed.iter().all(|p| p["memorized"] == false), "{line}");
        // Bits per parameter: N·n·log₂(classes) / params.
        let bits = n as f64 * search.data.length as f64 * f64::from(search.data.classes).log2();
        assert!((bits / c["params"].as_f64().unwrap() - c["bits_per_param"].as_f64().unwrap()).abs() < 1e-12);
        checked += 1;
    }
    assert_eq!(checked, 5, "widths 32 … 512");

    // Re-train the H = 32 answer (the recorded seed that memorized it) and decode it on the reference backend.
    let rec: Value = serde_json::from_str(&repo("results/trained-capacity/width-32.json")).unwrap();
    let search: CapacitySearch = serde_json::from_value(rec["search"].clone()).unwrap();
    let n = rec["capacity"]["largest_memorized"].as_u64().unwrap() as usize;
    let probe = rec["capacity"]["probes"].as_array().unwrap().iter().find(|p| p["sequences"] == n && p["memorized"] == true).unwrap();
    let ds = Dataset::<f64>::generate(&DatasetSpec { sequences: n, ..search.data.clone() }).unwrap();
    let mut model: Model<f64> = init_model(&search.shape, probe["seed"].as_u64().unwrap()).unwrap();
    let report = train(&mut model, &ds, &search.train, |_, _, _| {}).unwrap();
    assert!(report.memorized);
    let out = ReferenceBackend.forward(&ReferenceBackend.prepare(&model).unwrap(), &ds.inputs).unwrap();
    assert!(Memorization::measure(&out, &ds.targets).unwrap().is_perfect());
}
