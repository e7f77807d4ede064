//! What every command shares: exit codes and error messages, huge or malformed arguments, closed stdout,
//! build provenance.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use util::*;

#[test]
fn errors_have_exit_code_2_and_name_the_problem() {
    let dir = tmp("errors");
    let cfg = dir.join("bad.json");
    std::fs::write(&cfg, SMALL.replace("\"mean-pool\"", "\"fastest\"")).unwrap();
    let o = boltz(&["reproduce", "--config", cfg.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("capacity.policies"), "{}", String::from_utf8_lossy(&o.stderr));
    for args in [
        vec!["memorize", "--construction", "kim"],
        vec!["memorize", "--threads", "0"],
        vec!["memorize", "--sequences", "0"],
        vec!["memorize", "--precision", "f16"],
        vec!["reproduce", "--shard", "3/2"],
        vec!["plot", dir.to_str().unwrap()],
    ] {
        let o = boltz(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!o.stderr.is_empty());
    }
    let o = boltz(&["memorize", "--sequences", "0"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("sequences"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn huge_arguments_are_refused_not_crashed() {
    let cases: [(&[&str], &str); 13] = [
        (&["memorize", "--sequences", "18446744073709551615"], "do not fit in memory"),
        (&["memorize", "--sequences", "1000000000000"], "memory"),
        (&["memorize", "--sequences", "10000000", "--max-memory", "1G"], "--max-memory"),
        (&["memorize", "--dim", "1000000", "--max-memory", "1G"], "--dim 1000000"),
        (&["memorize", "--threads", "1000000"], "--threads = 1000000"),
        (&["approximate", "--samples", "1000000000000"], "samples"),
        (&["approximate", "--cells", "4096", "--length", "3"], "too many to enumerate"),
        (&["bench", "--workload", "practical", "--batch", "10000000"], "--batch 10000000"),
        (&["memorize", "--precision", "bits=99999999999"], "bits=N"),
        // Sizes that fit in memory but whose verification could not end in a day: refused at once.
        // (--max-memory 1T: past the memory estimate, whatever this machine has.)
        (&["memorize", "--length", "1000000", "--vocab", "2000000", "--sequences", "10", "--max-memory", "1T"], "--length 1000000"),
        (&["memorize", "--dim", "1000000", "--sequences", "10", "--threads", "1", "--max-time", "10", "--max-memory", "1T"], "--max-time"),
        (&["memorize", "--max-time", "0"], "positive duration"),
        (
            &["reproduce", "--set", "capacity.dim=1000000", "--set", "threads=1", "--max-memory", "1T", "--out", "/nonexistent/never"],
            "arbitrary-precision operations",
        ),
    ];
    for (args, expected) in cases {
        let t = std::time::Instant::now();
        let o = boltz(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(t.elapsed().as_secs() < 30, "{args:?} was refused only after {:?}", t.elapsed());
    }
}

#[test]
fn closed_or_full_stdout_never_panics() {
    // A reader that goes away: quiet exit 0, no panic message.
    let mut child = Command::new(env!("CARGO_BIN_EXE_boltz"))
        .args(["config"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", o.status);
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    // A full disk: an error (exit 2) that says so.
    if Path::new("/dev/full").exists() {
        let full = std::fs::File::create("/dev/full").unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_boltz")).args(["config"]).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("writing to stdout") && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn provenance_is_the_builds_not_the_working_directorys() {
    let version = String::from_utf8_lossy(&boltz(&["--version"]).stdout).to_string();
    let head = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok();
    let Some(head) = head.filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()) else {
        eprintln!("skipped: not a git checkout, the build records \"unknown\"");
        assert!(version.contains("(git unknown"), "{version}");
        return;
    };
    assert!(version.contains(&format!("(git {head}, dirty: ")), "{version}");
    // Run from a directory outside any repository: the record still names the build's revision.
    let elsewhere = tmp("provenance");
    let out = elsewhere.join("m.json");
    let o = Command::new(env!("CARGO_BIN_EXE_boltz"))
        .args([
            "memorize",
            "--sequences",
            "3",
            "--length",
            "2",
            "--dim",
            "2",
            "--vocab",
            "4",
            "--no-bisect",
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = read_json(&out);
    assert_eq!(rec["meta"]["git_rev"], Value::from(head));
    // Structured arguments and CLI spellings, not Rust Debug text.
    assert_eq!(rec["args"]["sequences"], 3);
    assert_eq!(rec["construction"], "one-layer");
    assert!(rec["precision"].as_str().unwrap().starts_with("bits="), "{}", rec["precision"]);
}

/// A sweep of bad inputs across every subcommand, as a new user would type them: each must end with exit
/// code 2, say what is wrong on stderr, and never panic or succeed. The counts are printed (issue #13's
/// note quotes them); a silent success or a panic fails the test and names the input.
#[test]
fn bad_input_sweep_gives_clear_errors_only() {
    let dir = tmp("sweep");
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let not_json = file("not.json", "{ seed: 1");
    let empty = file("empty.json", "");
    let wrong_type = file("wrong-type.json", r#"{"seed": "x"}"#);
    let unknown_field = file("unknown.json", r#"{"sed": 1}"#);
    let bad_points = file("bad-points.json", r#"{"capacity": {"sequences": [-1]}}"#);
    let a_dir = dir.to_str().unwrap().to_string();
    let missing = dir.join("absent").to_str().unwrap().to_string();
    let small = ["--length", "2", "--dim", "2", "--vocab", "4", "--no-bisect"];
    let mut cases: Vec<Vec<String>> = Vec::new();
    let mut add = |args: &[&str]| cases.push(args.iter().map(|s| s.to_string()).collect());
    // memorize: every numeric flag with values that are not sizes, zero where zero means nothing to build,
    // enum flags with unknown values, precisions that do not exist.
    for flag in ["--sequences", "--length", "--dim", "--vocab", "--seed", "--threads", "--max-memory"] {
        for value in ["-1", "abc", "1.5", "", "18446744073709551616", "NaN"] {
            add(&["memorize", flag, value]);
        }
    }
    for flag in ["--sequences", "--length", "--dim", "--vocab"] {
        let mut args = vec!["memorize", flag, "0"];
        args.extend(small.iter().filter(|s| **s != flag));
        add(&args);
    }
    for (flag, value) in [
        ("--construction", "two-layer"),
        ("--policy", "best"),
        ("--delta", "tiny"),
        ("--backend", "gpu"),
        ("--vocab-kind", "primes"),
        ("--precision", "f16"),
        ("--precision", "bits=0"),
        ("--precision", "bits=1"),
        ("--precision", "bits=-3"),
        ("--precision", "bits=99999999999999999999"),
        ("--precision", "BITS=24x"),
        ("--max-memory", "12Q"),
        ("--max-memory", "1"),
        ("--max-time", "abc"),
        ("--max-time", "-5m"),
        ("--max-time", "NaN"),
        ("--max-time", "0s"),
        ("--threads", "100000"),
        ("--sequences", "1000000000000"),
        ("--vocab", "1"),
        ("--export", "/proc/boltz"),
        ("--out", "/proc/boltz/m.json"),
    ] {
        let mut args = vec!["memorize", "--sequences", "3", flag, value];
        args.extend(small.iter().filter(|s| **s != flag));
        add(&args);
    }
    // approximate
    for (flag, value) in [
        ("--target", "sine"),
        ("--cells", "0"),
        ("--cells", "1"),
        ("--cells", "x"),
        ("--samples", "0"),
        ("--length", "0"),
        ("--dim", "0"),
        ("--cells", "100000"),
        ("--out", "/proc/boltz/a.json"),
    ] {
        add(&["approximate", "--target", "product-mean", "--length", "2", "--cells", "2", "--samples", "20", flag, value]);
    }
    // bench
    for (flag, value) in [
        ("--workload", "huge"),
        ("--batch", "0"),
        ("--batch", "-2"),
        ("--repeats", "0"),
        ("--precision", "f16"),
        ("--precision", "bits=64"),
        ("--backend", "tpu"),
        ("--batch", "100000000000"),
    ] {
        add(&["bench", "--workload", "practical", "--batch", "1", "--repeats", "1", flag, value]);
    }
    add(&["bench"]);
    add(&["bench", "--all", "--workload", "practical"]);
    add(&["bench", "--all", "--backend", "cpu,tpu"]);
    add(&["bench", "--all", "--batch", "0"]);
    add(&["bench", "--all", "--repeats", "0"]);
    add(&["bench", "--workload", "practical", "--precision", "f32,f64"]);
    // reproduce, merge, plot, check, config
    for config in [&not_json, &empty, &wrong_type, &unknown_field, &bad_points, &missing, &a_dir] {
        add(&["reproduce", "--config", config, "--out", dir.join("r").to_str().unwrap(), "--no-plot"]);
    }
    add(&["reproduce", "--quick", "--shard", "3/2", "--out", dir.join("r").to_str().unwrap()]);
    add(&["reproduce", "--quick", "--shard", "0/0", "--out", dir.join("r").to_str().unwrap()]);
    add(&["reproduce", "--quick", "--shard", "x", "--out", dir.join("r").to_str().unwrap()]);
    add(&["reproduce", "--quick", "--resume", "--restart", "--out", dir.join("r").to_str().unwrap()]);
    add(&["reproduce", "--quick", "--out", "/proc/boltz"]);
    add(&["merge", &missing]);
    add(&["merge", &a_dir]);
    add(&["plot", &missing]);
    add(&["plot", &a_dir]);
    add(&["plot-history", &missing]);
    add(&["check", &missing]);
    add(&["check", &a_dir]);
    add(&["config", "--name", "nope"]);
    add(&["nonsense"]);
    add(&["memorize", "--sequences"]);
    // Sizes beyond the memory estimate are refused before any allocation (they aborted with exit 134).
    add(&["memorize", "--vocab", "1000000000000", "--sequences", "10"]);
    for size in [
        ["--dim", "1000000"],
        ["--ffn-width", "1000000000000"],
        ["--blocks", "1000000000"],
        ["--heads", "1000000000"],
        ["--vocab", "1000000000000"],
    ] {
        add(&["train", size[0], size[1]]);
    }
    add(&["train", "--steps", "0"]);
    // verify and datasets in: missing files, wrong kinds of file, flags that need others.
    let text = file("not-numpy.npz", "hello");
    add(&["verify", "--model", &missing, "--dataset", &missing]);
    add(&["verify", "--model", &text, "--dataset", &text]);
    add(&["verify", "--dataset", &text]);
    add(&["verify", "--model", &text, "--dataset", &text, "--backend", "cpu", "--precision", "bits=80"]);
    add(&["verify", "--model", &text, "--dataset", &text, "--max-bits", "1"]);
    add(&["memorize", "--dataset", &text]);
    add(&["memorize", "--dataset", &missing]);
    add(&["memorize", "--labels", &text]);
    add(&["memorize", "--dataset", &text, "--labels", &text, "--targets", &text]);

    let (mut clear, mut panics, mut silent) = (0, Vec::new(), Vec::new());
    for args in &cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = boltz(&argv);
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("panicked") || o.status.code() == Some(101) {
            panics.push(format!("{argv:?}: {err}"));
        } else if o.status.code() == Some(2) && !err.trim().is_empty() {
            clear += 1;
        } else {
            silent.push(format!("{argv:?}: exit {:?}, stderr {err:?}", o.status.code()));
        }
    }
    eprintln!(
        "bad-input sweep: {} inputs, {clear} clear errors (exit 2), {} panics, {} other outcomes",
        cases.len(),
        panics.len(),
        silent.len()
    );
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n"));
    assert!(silent.is_empty(), "not a clear error:\n{}", silent.join("\n"));
    assert!(cases.len() >= 100, "{} cases", cases.len());
}

/// `plot` and `plot-history` validate what they draw: a result file under another experiment's name or a
/// shard under a whole run's name is refused, and so is a history whose ratio is a string or not positive.
#[test]
fn plots_refuse_files_they_would_draw_wrongly() {
    let dir = tmp("plot-validates");
    let committed = read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/reproduce/hardmax.json"));
    for (field, value, says) in
        [("experiment", json!("separation"), "experiment's results, not hardmax's"), ("shard", json!("1/2"), "is shard 1/2")]
    {
        let mut file = committed.clone();
        file[field] = value;
        let d = dir.join(field);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("hardmax.json"), serde_json::to_string(&file).unwrap()).unwrap();
        let o = boltz(&["plot", d.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{field}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{field}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (ratio, says) in [
        ("\"fast\"", "is \"fast\", not a positive number"),
        ("-2.0", "is -2.0, not a positive number"),
        ("0", "is 0, not a positive number"),
    ] {
        let history = dir.join("history.jsonl");
        std::fs::write(&history, format!("{{\"git_rev\": \"abc\", \"ratios\": {{\"cpu/practical/f32/threads=2\": {ratio}}}}}\n")).unwrap();
        let o = boltz(&[
            "plot-history",
            history.to_str().unwrap(),
            "--out",
            dir.join("charts").to_str().unwrap(),
            "--baseline",
            repo.join("results/bench-baselines/ratios.json").to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{ratio}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{ratio}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// A bad sample count is blamed on the samples, not on the first grid width.
#[test]
fn zero_samples_are_named_as_samples() {
    let o = boltz(&["approximate", "--samples", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("error: --samples: "), "{}", String::from_utf8_lossy(&o.stderr));
    let o = boltz(&["reproduce", "--plan", "--set", "approximation.samples=0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("field approximation.samples: "), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A disk that fills while a chart is drawn (emulated by a file-size limit, RLIMIT_FSIZE, with SIGXFSZ
/// ignored so the write fails with EFBIG as a full disk fails with ENOSPC): exit 2, one readable line
/// naming the chart file (not a Debug dump of plotters' error), and no partial or temporary file left.
#[test]
fn a_write_failure_while_drawing_names_the_chart_file() {
    let dir = tmp("plot-full");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/reproduce/separation.json");
    std::fs::copy(&committed, dir.join("separation.json")).unwrap();
    let script = "trap '' XFSZ; ulimit -f 8; exec \"$0\" plot \"$1\"";
    let o = Command::new("sh").args(["-c", script, env!("CARGO_BIN_EXE_boltz"), dir.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("separation.png") && err.contains("File too large"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("Os {") && !err.contains("Error {"), "{err}");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".boltz.lock")
        .collect();
    assert_eq!(left, ["separation.json"], "nothing but the input (and the directory's lock file) remains");
}
