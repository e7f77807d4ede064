//! The trained-capacity results (issue #19), checked by code that did not produce them:
//!
//! * every committed `trained` row (`results/reproduce/`, `results/trained-widths/`) against its own recorded
//!   runs and against an independent parameter count of its shape;
//! * one committed answer re-trained here, decoded by the reference backend (a forward training never
//!   runs), and its fewest bits re-probed directly in bigfloat at that precision and one bit below;
//! * the table of `results/README.md` read back from the rows.

#![allow(clippy::unwrap_used)]

use boltz_bigfloat::BigReal;
use boltz_core::{Backend, Dataset, DatasetSpec, Memorization, Model, ReferenceBackend, VocabKind};
use boltz_train::{init_model, train, ModelShape, TrainConfig};
use serde_json::Value;

fn repo(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn file(path: &str) -> Value {
    serde_json::from_str(&repo(path)).unwrap()
}

const FILES: [&str; 2] = ["results/reproduce/trained.json", "results/trained-widths/trained.json"];

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn every_trained_row_agrees_with_its_runs_and_its_shape() {
    let mut checked = 0;
    for path in FILES {
        let f = file(path);
        for r in f["rows"].as_array().unwrap() {
            let (d, q, blocks, n) = (u(&r["d"]), u(&r["ffn_width"]), u(&r["blocks"]), u(&r["n"]));
            // One head of size s = d: W_Q, W_K, W_V (s×d), W_O (d×s); FFN W₁ (q×d), b₁, W₂ (d×q), b₂.
            assert_eq!(u(&r["params"]), blocks * (4 * d * d + 2 * q * d + q + d), "{path}: {r}");
            let attention_stored = r["rank"].as_u64().map_or(4 * d * d, |k| 4 * k * (d + d));
            assert_eq!(u(&r["params_stored"]), blocks * (attention_stored + 2 * q * d + q + d), "{path}: {r}");
            assert_eq!(u(&r["construction_sequences_at_width"]), q / n);
            let big_n = u(&r["largest_memorized"]);
            let bits = (big_n * n) as f64 * f64::from(u32::try_from(u(&r["classes"])).unwrap()).log2();
            assert!((r["bits_per_param"].as_f64().unwrap() - bits / u(&r["params"]) as f64).abs() < 1e-12, "{path}: {r}");
            let probes = r["probes"].as_array().unwrap();
            assert_eq!(u(&r["runs"]), probes.len() as u64);
            if big_n == 0 {
                assert!(r["reference_accuracy"].is_null() && r["fewest_bits"].is_null(), "{path}: {r}");
            } else {
                assert_eq!(r["reference_accuracy"], 1.0, "{path}: {r}");
                assert!(probes.iter().any(|p| u(&p["sequences"]) == big_n && p["memorized"] == true), "{path}: {r}");
            }
            // Adjacent to a failure of every run at N + 1 (each seed, and the warm start where there was one),
            // or the largest N searched.
            match r["smallest_failed"].as_u64() {
                Some(failed) => {
                    assert_eq!(failed, big_n + 1, "{path}: {r}");
                    let at: Vec<&Value> = probes.iter().filter(|p| u(&p["sequences"]) == failed).collect();
                    let expected = r["seeds"].as_array().unwrap().len() + usize::from(r["warm_start"] == true && big_n > 0);
                    assert_eq!(at.len(), expected, "{path}: {r}");
                    assert!(at.iter().all(|p| p["memorized"] == false), "{path}: {r}");
                }
                None => assert_eq!(big_n, u(&r["max_sequences"]), "{path}: {r}"),
            }
            assert_eq!(r["property_held"], true);
            checked += 1;
        }
    }
    assert!(checked >= 14 + 21, "{checked} rows");
}

/// The default suite's one-layer rank-1 answer at H = 16: its memorizing run repeated (same seed, data,
/// budget and thread count), decoded by the reference backend; its fewest bits hold and one bit fewer
/// does not (direct bigfloat probes, not the bisection).
#[test]
fn a_committed_answer_retrains_decodes_and_needs_its_fewest_bits() {
    let f = file("results/reproduce/trained.json");
    let r =
        f["rows"].as_array().unwrap().iter().find(|r| r["model"] == "rank1" && r["family"] == "random" && r["ffn_width"] == 16).unwrap();
    let big_n = u(&r["largest_memorized"]) as usize;
    let probe = r["probes"].as_array().unwrap().iter().find(|p| u(&p["sequences"]) as usize == big_n && p["memorized"] == true).unwrap();
    let cfg = &f["config"]["trained"];
    let spec = DatasetSpec {
        sequences: big_n,
        length: u(&cfg["length"]) as usize,
        dim: u(&r["d"]) as usize,
        vocab: u(&cfg["vocab"]) as usize,
        seed: u(&f["config"]["seed"]),
        classes: 2,
        vocab_kind: VocabKind::Random,
        ..Default::default()
    };
    let ds = Dataset::<f64>::generate(&spec).unwrap();
    let shape = ModelShape { dim: spec.dim, blocks: 1, heads: 1, head_size: spec.dim, rank: Some(1), ffn_width: 16 };
    let threads = u(&f["meta"]["threads"]) as usize;
    let steps = u(&cfg["steps"]) as usize;
    let mut model: Model<f64> = init_model(&shape, u(&probe["seed"])).unwrap();
    let tc = TrainConfig { steps, lr: cfg["lr"].as_f64().unwrap(), threads, log_every: steps, ..Default::default() };
    let report = train(&mut model, &ds, &tc, |_, _, _| {}).unwrap();
    assert_eq!((report.memorized, report.steps as u64), (true, u(&probe["steps"])), "the recorded run, repeated");
    let out = ReferenceBackend.forward(&ReferenceBackend.prepare(&model).unwrap(), &ds.inputs).unwrap();
    assert!(Memorization::measure(&out, &ds.targets).unwrap().is_perfect());
    let bits = u(&r["fewest_bits"]);
    let exact: Model<BigReal> = model.convert().unwrap();
    let holds = |p: u64| {
        boltz_construct::verify::fewest_bits_to_memorize(
            &exact,
            &ds,
            &boltz_construct::verify::BitsSearchParams::default().bits(p, p).threads(1),
            |_, _| {},
        )
        .unwrap()
        .fewest
            == Some(p)
    };
    assert!(holds(bits), "memorizes at its fewest bits, {bits}");
    if bits > 8 {
        assert!(!holds(bits - 1), "and not at {}", bits - 1);
    }
}

fn number(cell: &str) -> f64 {
    cell.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect::<String>().parse().unwrap_or_else(|e| panic!("{cell:?}: {e}"))
}

/// `results/README.md`'s per-width table: every N and parameter count is the widths run's row.
#[test]
fn the_results_readme_table_is_the_committed_rows() {
    let readme = repo("results/README.md");
    let start = readme.find("<!-- trained-table -->").expect("the table's marker");
    let block = &readme[start..readme[start..].find("<!-- /trained-table -->").map(|e| start + e).expect("its end marker")];
    let f = file("results/trained-widths/trained.json");
    let rows = f["rows"].as_array().unwrap();
    let find = |model: &str, width: u64| rows.iter().find(|r| r["model"] == model && u(&r["ffn_width"]) == width);
    let mut checked = 0;
    for line in block.lines().filter(|l| l.starts_with("| ") && !l.contains("---")).skip(1) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let width = number(cells[0]) as u64;
        // Columns: H, then N for rank-1, curriculum, full rank, 2 blocks, 4 blocks ("—" where not run), then
        // the construction's ⌊H/n⌋, rank-1 params and bits per parameter.
        for (i, model) in ["rank1", "rank1-warm", "dense", "rank1-2blocks", "rank1-4blocks"].into_iter().enumerate() {
            match find(model, width) {
                Some(r) => assert_eq!(number(cells[1 + i]) as u64, u(&r["largest_memorized"]), "{line}: {model}"),
                None => assert_eq!(cells[1 + i], "—", "{line}: {model}"),
            }
        }
        let r = find("rank1", width).unwrap();
        assert_eq!(number(cells[6]) as u64, u(&r["construction_sequences_at_width"]), "{line}");
        assert_eq!(number(cells[7]) as u64, u(&r["params"]), "{line}");
        assert!((number(cells[8]) - r["bits_per_param"].as_f64().unwrap()).abs() < 5e-4, "{line}");
        checked += 1;
    }
    assert_eq!(checked, 5, "widths 32 … 512");
}
