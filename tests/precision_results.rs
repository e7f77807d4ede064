//! The committed fewest-bits results at N = 1 000 (issue #18), checked against runs made independently of
//! them: `results/precision-n1000/` was searched with the previous arithmetic core (astro-float 0.9.6) and a
//! plain bisection with a 16-bit scan below; `results/reproduce/` and `results/precision-n1000-deep/` with
//! GNU MPFR and the search from the analytic estimate. Where both measured the same construction on the
//! same data, the fewest bits must be equal; every committed search must be internally consistent (the
//! top run of holding probes starts at its answer and reaches the build precision, and the answer is not
//! below the bisection's).

#![allow(clippy::unwrap_used)]

use serde_json::Value;

fn rows(path: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["rows"].as_array().unwrap().clone()
}

fn find<'a>(rows: &'a [Value], policy: &str, n: u64) -> &'a Value {
    rows.iter()
        .find(|r| r["policy"] == policy && r["N"] == n && r.get("family").is_none())
        .unwrap_or_else(|| panic!("no {policy} row at N = {n}"))
}

#[test]
fn both_cores_find_the_same_fewest_bits_at_n_1000() {
    let old = rows("results/precision-n1000/capacity.json");
    let new = rows("results/reproduce/capacity.json");
    for policy in ["fewest-bits", "mean-pool"] {
        let (a, b) = (find(&old, policy, 1000), find(&new, policy, 1000));
        assert!(a["fewest_bits"].is_u64(), "{policy}: {a}");
        assert_eq!(a["fewest_bits"], b["fewest_bits"], "{policy} at N = 1000: astro-float vs MPFR");
    }
}

#[test]
fn every_committed_search_is_consistent() {
    let mut checked = 0;
    for path in ["results/reproduce/capacity.json", "results/precision-n1000-deep/capacity.json", "results/precision-n10000/capacity.json"]
    {
        for r in rows(path).iter().filter(|r| r["fewest_bits"].is_u64()) {
            let fewest = r["fewest_bits"].as_u64().unwrap();
            let runs = r["fewest_bits_holds_at"].as_array().unwrap();
            let top = runs.last().unwrap();
            assert_eq!(top[0].as_u64(), Some(fewest), "{path}: {r}");
            assert_eq!(top[1], r["build_bits"], "{path}: the top run reaches the build precision: {r}");
            assert!(r["fewest_bits_probes"].as_u64().unwrap() >= 2, "{path}: {r}");
            assert!(fewest >= r["fewest_bits_bisection"].as_u64().unwrap(), "{path}: {r}");
            checked += 1;
        }
    }
    assert!(checked >= 23, "{checked} searches");
}

/// The default suite searches N = 1 000 for every construction but Yun's (thousands of layers per probe;
/// `precision-n1000-deep/` has it).
#[test]
fn the_default_run_reaches_n_1000() {
    let new = rows("results/reproduce/capacity.json");
    for policy in ["measured", "fewest-bits", "mean-pool", "bit-extraction"] {
        assert!(find(&new, policy, 1000)["fewest_bits"].is_u64(), "{policy} at N = 1000");
    }
    let deep = rows("results/precision-n1000-deep/capacity.json");
    for policy in ["measured", "yun"] {
        assert!(find(&deep, policy, 1000)["fewest_bits"].is_u64(), "{policy} at N = 1000");
    }
    // Two runs of the same data and build (the deep run's first point is the default run's): same answer.
    assert_eq!(find(&new, "measured", 1000)["fewest_bits"], find(&deep, "measured", 1000)["fewest_bits"]);
}

/// `precision-n10000/` searched the Measured memorizer to N = 10⁴ with certified probes (issue #18). Its
/// N = 1 000 point is the same data and construction as `precision-n1000-deep/`, whose every probe was a
/// full faithful forward: the answers must be equal. Every search carries the faithful forward's audit of
/// its answer, consistent with its probes.
#[test]
fn the_certified_search_reaches_n_10000_and_agrees_with_the_faithful_one() {
    let big = rows("results/precision-n10000/capacity.json");
    let deep = rows("results/precision-n1000-deep/capacity.json");
    assert_eq!(find(&big, "measured", 1000)["fewest_bits"], find(&deep, "measured", 1000)["fewest_bits"]);
    for n in [1000, 3000, 10_000] {
        let r = find(&big, "measured", n);
        let fewest = r["fewest_bits"].as_u64().unwrap_or_else(|| panic!("N = {n}: {r}"));
        let audit = &r["fewest_bits_audit"];
        assert_eq!(audit["bits"].as_u64(), Some(fewest), "N = {n}: {audit}");
        assert_eq!(audit["sequences"].as_array().map(Vec::len), Some(8), "N = {n}: {audit}");
        let failing = audit["failing_bits"].as_u64().unwrap_or_else(|| panic!("N = {n}: {audit}"));
        assert!(failing < fewest, "N = {n}: {audit}");
        // The failing precision is not inside any run of holding probes, and a failing token was confirmed.
        let runs = r["fewest_bits_holds_at"].as_array().unwrap();
        assert!(runs.iter().all(|run| !(run[0].as_u64().unwrap()..=run[1].as_u64().unwrap()).contains(&failing)), "N = {n}: {r}");
        let token = audit["failing_token"].as_array().unwrap();
        assert!(token[0].as_u64().unwrap() < n && token[1].as_u64().unwrap() < 8, "N = {n}: {audit}");
    }
}
