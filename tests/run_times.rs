//! The run times the README and results/README.md state are the committed run's: the seconds its points
//! took, summed over `results/reproduce/*.json` (each file's `seconds`), written between
//! `<!-- suite-seconds -->` markers (and in minutes in `boltz reproduce --help`) and checked here, so a
//! re-run that changes them changes the text.

#![allow(clippy::unwrap_used)]

use serde_json::Value;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every number between `<!-- suite-seconds -->` and `<!-- /suite-seconds -->` in `text`.
fn stated(text: &str) -> Vec<u64> {
    text.split("<!-- suite-seconds -->")
        .skip(1)
        .map(|rest| rest.split("<!-- /suite-seconds -->").next().unwrap().trim().parse().unwrap_or_else(|e| panic!("{rest:.40}: {e}")))
        .collect()
}

#[test]
fn stated_run_times_are_the_committed_runs() {
    let mut total = 0.0;
    for entry in std::fs::read_dir(repo("results/reproduce")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            if let Some(s) = file.get("seconds").and_then(Value::as_f64) {
                total += s;
            }
        }
    }
    let seconds = total.round() as u64;
    for doc in ["README.md", "results/README.md"] {
        let numbers = stated(&std::fs::read_to_string(repo(doc)).unwrap());
        assert!(!numbers.is_empty(), "{doc} states no run time between suite-seconds markers");
        assert!(numbers.iter().all(|&n| n == seconds), "{doc} says {numbers:?} s; the committed run's points took {seconds} s");
    }
    // `boltz reproduce --help` states the same run in minutes.
    let minutes = (total / 60.0).round() as u64;
    let help = std::fs::read_to_string(repo("crates/cli/src/cli.rs")).unwrap();
    assert!(help.contains(&format!("the default takes about {minutes} minutes")), "reproduce --help should say about {minutes} minutes");
}

/// The README's first CLI example states its run time: the stages of the committed record
/// (`results/readme-example/memorize-n1000.json`: build and its verification, the exact forward at the
/// build bits, every probe of the fewest-bits search), summed, in the README's comment and results/README.md.
#[test]
fn the_readme_example_states_its_recorded_time() {
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(repo("results/readme-example/memorize-n1000.json")).unwrap()).unwrap();
    let report = &record["report"];
    let probes: f64 = record["fewest_bits"]["probes"].as_array().unwrap().iter().map(|p| p["seconds"].as_f64().unwrap()).sum();
    let total = report["build_seconds"].as_f64().unwrap()
        + report["verify_seconds"].as_f64().unwrap()
        + record["forward_seconds"].as_f64().unwrap()
        + probes;
    let seconds = total.round() as u64;
    assert_eq!(record["args"]["sequences"], 1000);
    assert_eq!(record["fewest_bits"]["fewest"], 4493, "the fewest bits results/README.md names");
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let line =
        readme.lines().find(|l| l.starts_with("boltz memorize --sequences 1000 --length 8 --dim 4 --vocab 16 --policy measured")).unwrap();
    assert!(line.ends_with(&format!("({seconds} s on 2 cores)")), "README says {line:?}; the record's stages took {seconds} s");
    let results = std::fs::read_to_string(repo("results/README.md")).unwrap();
    let marked = results.split("<!-- example-seconds -->").nth(1).and_then(|r| r.split("<!-- /example-seconds -->").next()).unwrap();
    assert_eq!(marked.trim(), seconds.to_string(), "results/README.md");
}
