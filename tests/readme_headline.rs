//! The README's headline table is the committed results: every number in it is read back from
//! `results/reproduce/capacity.json` (the row of that construction at that N) and must match.

#![allow(clippy::unwrap_used)]

use serde_json::Value;

fn repo(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `"14 338"` → 14338.
fn number(cell: &str) -> u64 {
    cell.chars().filter(|c| !c.is_whitespace() && *c != ' ').collect::<String>().parse().unwrap_or_else(|e| panic!("{cell:?}: {e}"))
}

#[test]
fn the_readme_headline_table_is_the_committed_results() {
    let readme = repo("README.md");
    let start = readme.find("<!-- headline: N = ").expect("the headline table's marker");
    let block = &readme[start..readme[start..].find("<!-- /headline -->").map(|e| start + e).expect("its end marker")];
    let n: u64 = number(block["<!-- headline: N = ".len()..].split(' ').next().unwrap());
    let capacity: Value = serde_json::from_str(&repo("results/reproduce/capacity.json")).unwrap();
    let rows = capacity["rows"].as_array().unwrap();
    let mut checked = 0;
    for line in block.lines().filter(|l| l.starts_with("| ") && !l.contains("---")).skip(1) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        // The construction's name ends with its CLI name in backticks.
        let policy = cells[0].rsplit('`').nth(1).unwrap_or_else(|| panic!("no `policy` in {line:?}"));
        let row = rows
            .iter()
            .find(|r| r["policy"] == policy && r["N"] == n && r.get("family").is_none())
            .unwrap_or_else(|| panic!("no {policy} row at N = {n}"));
        assert_eq!(number(cells[1]), row["layers"].as_u64().unwrap(), "{line}");
        assert_eq!(number(cells[2]), row["params_dense"].as_u64().unwrap(), "{line}");
        assert_eq!(number(cells[3]), row["params_factored"].as_u64().unwrap(), "{line}");
        assert_eq!(number(cells[4]), row["fewest_bits"].as_u64().unwrap(), "{line}");
        checked += 1;
    }
    assert_eq!(checked, 4, "four constructions in the headline");
}
