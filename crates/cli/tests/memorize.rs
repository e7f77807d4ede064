//! `boltz memorize` and `boltz verify`: JSON records, exported models, exit codes, data families, NumPy
//! datasets, refusals before building.

#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use util::*;

#[test]
fn memorize_reports_json_and_exports_the_model() {
    let dir = tmp("memorize");
    let o = boltz_line(&format!(
        "memorize --sequences 12 --length 4 --dim 2 --vocab 8 --policy fewest-bits --backend reference --precision f64 --json --export {}",
        dir.display()
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memorization"]["tokens"], 48);
    assert!(v["fewest_bits"]["fewest"].as_u64().is_some());
    // The record is the typed MemorizeRecord, and reads back into it unchanged.
    let record: boltz_lab::records::MemorizeRecord = serde_json::from_value(v.clone()).unwrap();
    assert_eq!((record.head.schema_version, record.head.command.as_str()), (boltz_lab::records::RECORD_SCHEMA_VERSION, "memorize"));
    assert_eq!(serde_json::to_value(&record).unwrap(), v, "the record round-trips through its type");
    assert!(v["meta"]["git_rev"].is_string());
    assert!(dir.join("model.exact.json").exists() && dir.join("dataset.safetensors").exists());
    let o = boltz(&["memorize", "--construction", "yun", "--sequences", "6", "--length", "3", "--dim", "2", "--vocab", "6", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memorization"]["decoded"], 18);
    assert!(v["fewest_bits"]["fewest"].as_u64().unwrap() > 53);
    let help = boltz(&["memorize", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--precision"));
}

#[test]
fn memorize_on_blas_reports_rank_one_attention() {
    let o = boltz_line(
        "memorize --sequences 10 --length 4 --dim 3 --vocab 8 --policy measured --backend blas --precision f64 --no-bisect --json",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memorization"]["tokens"], 40);
    let ranks = v["attention_rank"].as_array().unwrap();
    assert_eq!(ranks.len(), 1);
    // Theorem 2's construction: both attention products have rank exactly one.
    assert_eq!((ranks[0]["key_query"]["numerical_rank"].as_u64(), ranks[0]["value_output"]["numerical_rank"].as_u64()), (Some(1), Some(1)));
    // Mean pooling (λ = 0): W_Kᵀ W_Q vanishes and the report says rank 0; the fewest-bits policy keeps
    // a rank-1 softmax (λ > 0).
    for (policy, rank) in [("mean-pool", 0u64), ("fewest-bits", 1)] {
        let o = boltz_line(&format!("memorize --sequences 10 --length 4 --dim 3 --vocab 8 --policy {policy} --no-bisect --json"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let kq = v["attention_rank"][0]["key_query"]["numerical_rank"].as_u64().unwrap();
        let lambda = v["report"]["contextual"]["lambda"].as_f64().unwrap();
        assert_eq!(kq, rank, "{policy}: λ = {lambda}");
        assert_eq!(lambda > 0.0, rank == 1);
    }
}

#[test]
fn data_families_and_yun_delta_from_the_cli() {
    // PTE data: mean pooling collides (exit 2, a clear message); fewest-bits memorizes with λ > 0.
    let pte = ["memorize", "--vocab-kind", "pte", "--dim", "1", "--sequences", "8", "--length", "6", "--vocab", "12"];
    let o = boltz(&[&pte[..], &["--policy", "mean-pool", "--no-bisect"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("mean pooling"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = boltz(&[&pte[..], &["--policy", "fewest-bits", "--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exact_at_build_bits"]["decoded"], 48);
    assert!(v["report"]["contextual"]["lambda"].as_f64().unwrap() > 0.0);
    assert_eq!(v["dataset"]["vocab_kind"], "pte");
    let f = v["fewest_bits"]["fewest"].as_u64().unwrap();
    assert!(f < 64, "fewest-bits policy needs {f} bits");
    // Bad values are usage errors naming the valid ones.
    let o = boltz(&["memorize", "--vocab-kind", "spiral"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("random, grid, pte"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = boltz(&["memorize", "--construction", "yun", "--delta", "tiny"]);
    assert_eq!(o.status.code(), Some(2));
    // Yun et al. with the minimal δ: fewer cells, still exact.
    let yun =
        ["memorize", "--construction", "yun", "--sequences", "6", "--length", "3", "--dim", "2", "--vocab", "6", "--no-bisect", "--json"];
    let run = |delta: &str| -> Value {
        let o = boltz(&[&yun[..], &["--delta", delta]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (minimal, dyadic) = (run("minimal"), run("dyadic"));
    assert_eq!(minimal["exact_at_build_bits"]["decoded"], 18);
    assert_eq!(minimal["report"]["delta_kind"], "minimal");
    assert!(minimal["report"]["cells"].as_u64().unwrap() <= dyadic["report"]["cells"].as_u64().unwrap());
}

#[test]
fn memorize_exit_codes_are_honest() {
    // The Measured weights overflow f64 (slopes ~10^1000 at n = 8, d = 4): the requested run did not happen,
    // so exit 2 (the record says why).
    let dir = tmp("honest");
    let out = dir.join("record.json");
    let o = boltz_line(&format!(
        "memorize --sequences 10 --policy measured --backend reference --precision f64 --no-bisect --out {}",
        out.display()
    ));
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did not run"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(read_json(&out)["run_error"].is_string());
    // N = n = 1: one token, one label — memorized exactly.
    let o = boltz(&["memorize", "--sequences", "1", "--length", "1", "--dim", "1", "--vocab", "1", "--policy", "mean-pool", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exact_at_build_bits"]["decoded"], 1);
}

#[test]
fn memorize_refuses_before_building() {
    for (args, expected) in [
        (vec!["--backend", "cpu", "--precision", "bits=64"], "runs f32 or f64"),
        (vec!["--backend", "cpu"], "needs --precision"),
        (vec!["--out", "/proc/boltz-no/record.json"], "--out"),
        (vec!["--construction", "kim"], "kim"),
    ] {
        // N = 1000 takes seconds to build: a refusal must come first, and fast.
        let t = std::time::Instant::now();
        let o = boltz(&[&["memorize", "--sequences", "1000"][..], &args[..]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("building the"), "{args:?} was refused after the build started: {err}");
        assert!(t.elapsed().as_secs() < 20, "{args:?}");
    }
}

/// NumPy files written by an independent writer (Python's standard library: `zipfile` and a hand-made
/// `.npy` header, as numpy 1.x lays it out), for the dataset tests.
fn write_numpy_files(dir: &Path) {
    let script = r#"
import struct, sys, zipfile, random
def npy(descr, shape, values, fmt):
    tup = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, tup)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<%d%s" % (len(values), fmt), *values)
def npz(name, members, method):
    with zipfile.ZipFile(name, "w", compression=method) as z:
        for k, v in members.items():
            z.writestr(k + ".npy", v)
d = sys.argv[1]
random.seed(7)
N, n = 12, 4
vocab = [(x, y, z) for x in range(-2, 3) for y in range(-2, 3) for z in (1, 2)]   # integer grid
inputs, labels = [], []
for s in range(N):
    for t in random.sample(vocab, n):
        inputs.extend(float(v) for v in t)
    labels.extend(random.randrange(3) for _ in range(n))
x, y = npy("<f8", (N, n, 3), inputs, "d"), npy("<i8", (N, n), labels, "q")
npz(d + "/grid.npz", {"inputs": x, "labels": y}, zipfile.ZIP_STORED)
npz(d + "/grid-compressed.npz", {"inputs": x, "labels": y}, zipfile.ZIP_DEFLATED)
open(d + "/inputs.npy", "wb").write(npy("<f4", (N, n, 3), inputs, "f"))
open(d + "/labels.npy", "wb").write(npy("<i4", (N, n), labels, "i"))
open(d + "/labels-float.npy", "wb").write(npy("<f8", (N, n), [float(l) for l in labels], "d"))
open(d + "/labels-short.npy", "wb").write(npy("<i4", (N - 1, n), labels[: (N - 1) * n], "i"))
bad = list(inputs); bad[3:6] = bad[0:3]                      # sequence 0: token 1 = token 0
npz(d + "/duplicate.npz", {"inputs": npy("<f8", (N, n, 3), bad, "d"), "labels": y}, zipfile.ZIP_STORED)
bad = list(inputs); bad[2 * n * 3 + 5] = float("nan")       # sequence 2, position 1, coordinate 2
npz(d + "/nan.npz", {"inputs": npy("<f8", (N, n, 3), bad, "d"), "labels": y}, zipfile.ZIP_STORED)
perm = list(inputs); perm[n * 3:2 * n * 3] = inputs[3:n * 3] + inputs[0:3]   # sequence 1 = sequence 0 rotated
lab = list(labels); lab[n:2 * n] = [(v + 1) % 3 for v in labels[1:n] + labels[0:1]]
npz(d + "/permuted.npz", {"inputs": npy("<f8", (N, n, 3), perm, "d"), "labels": npy("<i8", (N, n), lab, "q")}, zipfile.ZIP_STORED)
npz(d + "/empty.npz", {"inputs": npy("<f8", (0, n, 3), [], "d"), "labels": npy("<i8", (0, n), [], "q")}, zipfile.ZIP_STORED)
npz(d + "/extra.npz", {"inputs": x, "labels": y, "weights": y}, zipfile.ZIP_STORED)
raw = open(d + "/grid.npz", "rb").read(); i = raw.index(b"NUMPY") + 200
open(d + "/corrupt.npz", "wb").write(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .expect("python3 (installed by scripts/setup.sh) writes the NumPy files");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `memorize --dataset` reads NumPy data (stored and deflated .npz, a pair of .npy) and memorizes it; every
/// malformed input is refused with exit 2 naming the problem, before anything is built. `verify` runs the
/// exported model on the same data and finds the same fewest bits.
#[test]
fn numpy_datasets_memorize_and_verify() {
    let dir = tmp("numpy");
    write_numpy_files(&dir);
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let memorize = |args: &[&str]| {
        let mut all = vec!["memorize", "--policy", "fewest-bits", "--json"];
        all.extend_from_slice(args);
        boltz(&all)
    };
    let mut fewest = Vec::new();
    let (grid, compressed, inputs, labels) = (p("grid.npz"), p("grid-compressed.npz"), p("inputs.npy"), p("labels.npy"));
    for args in [
        vec!["--dataset", grid.as_str()],
        vec!["--dataset", compressed.as_str()],
        vec!["--dataset", inputs.as_str(), "--labels", labels.as_str()],
    ] {
        let o = memorize(&args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!((v["dataset"]["N"].as_u64(), v["dataset"]["n"].as_u64(), v["dataset"]["d"].as_u64()), (Some(12), Some(4), Some(3)));
        assert_eq!(v["exact_at_build_bits"]["accuracy"], 1.0, "{args:?}");
        fewest.push(v["fewest_bits"]["fewest"].as_u64().unwrap());
    }
    // The same data three ways (the .npy inputs are f32, exact for these small integers): the same answer.
    assert!(fewest.iter().all(|&f| f == fewest[0]), "{fewest:?}");

    // An exported model verifies on the same data, and the bisection agrees with memorize's.
    let export = dir.join("export");
    let o = memorize(&["--dataset", &p("grid.npz"), "--export", export.to_str().unwrap(), "--no-bisect"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for model in ["model.exact.json", "model.safetensors"] {
        let model = export.join(model);
        let o =
            boltz(&["verify", "--model", model.to_str().unwrap(), "--dataset", &p("grid.npz"), "--bisect", "--max-bits", "400", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["memorization"]["accuracy"], 1.0, "{v}");
        assert_eq!(v["fewest_bits"]["fewest"].as_u64(), Some(fewest[0]), "{}", model.display());
        let record: boltz_lab::records::VerifyRecord = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&record).unwrap(), v, "the verify record round-trips through its type");
    }
    // A model file from another safetensors writer (as `safetensors.torch.save_file(tensors, path, metadata)`
    // lays one out: tensors in its own order, its own header padding, the documented names and metadata)
    // loads unchanged: Python's stdlib re-writes the exported f64 model, and verify reports the same run.
    let foreign = dir.join("foreign.safetensors");
    let rewrite = r#"
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n]); body = raw[8 + n:]
meta = header.pop("__metadata__")
out, blobs, offset = {"__metadata__": meta}, [], 0
for name in sorted(header, reverse=True):                       # another order than the original
    t = header[name]; a, b = t["data_offsets"]
    out[name] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [offset, offset + b - a]}
    blobs.append(body[a:b]); offset += b - a
text = json.dumps(out).encode(); text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
"#;
    let o = Command::new("python3").arg("-c").arg(rewrite).arg(export.join("model.safetensors")).arg(&foreign).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = |model: &Path| {
        let o = boltz(&["verify", "--model", model.to_str().unwrap(), "--dataset", &p("grid.npz"), "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["memorization"].clone()
    };
    assert_eq!(report(&foreign), report(&export.join("model.safetensors")));

    // Below the fewest bits a token fails to decode: exit 1, the report still written.
    let below = format!("bits={}", fewest[0] - 4);
    let o = boltz(&[
        "verify",
        "--model",
        export.join("model.exact.json").to_str().unwrap(),
        "--dataset",
        &p("grid.npz"),
        "--backend",
        "bigfloat",
        "--precision",
        &below,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("tokens decoded"));

    let refused = |args: &[&str], expected: &[&str]| {
        let o = boltz(args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for e in expected {
            assert!(err.contains(e), "{args:?}: expected {e:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    let memorize_refused = |file: &str, extra: &[&str], expected: &[&str]| {
        let path = p(file);
        let mut args = vec!["memorize", "--dataset", path.as_str()];
        args.extend_from_slice(extra);
        refused(&args, expected);
    };
    memorize_refused("duplicate.npz", &[], &["duplicate token in sequence 0", "positions 0 and 1"]);
    memorize_refused("nan.npz", &[], &["inputs[2, 1, 2]", "non-finite"]);
    memorize_refused("permuted.npz", &[], &["sequences 0 and 1", "permutations"]);
    memorize_refused("empty.npz", &[], &["at least 1"]);
    memorize_refused("extra.npz", &[], &["unknown array `weights`"]);
    memorize_refused("corrupt.npz", &[], &["CRC-32"]);
    memorize_refused("inputs.npy", &[], &["labels or targets"]);
    memorize_refused("inputs.npy", &["--labels", &p("labels-float.npy")], &["labels-float.npy", "integers"]);
    memorize_refused("inputs.npy", &["--labels", &p("labels-short.npy")], &["labels-short.npy", "[12, 4]"]);
    memorize_refused("grid.npz", &["--sequences", "5"], &["--sequences"]);
    memorize_refused("missing.npz", &[], &["missing.npz"]);
    // verify: a model whose token dimension is not the data's.
    let other = dir.join("other");
    let o = boltz_line(&format!("memorize --sequences 4 --length 3 --dim 2 --vocab 8 --no-bisect --export {}", other.display()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    refused(
        &["verify", "--model", other.join("model.exact.json").to_str().unwrap(), "--dataset", &p("grid.npz")],
        &["token dimension 2", "d = 3"],
    );
    refused(&["verify", "--model", &p("grid.npz"), "--dataset", &p("grid.npz")], &["--model"]);
}

/// One model from one recipe: `boltz memorize` with a committed suite row's recorded arguments (its
/// configuration's data parameters and seed, the row's N and policy, the shared default of candidate
/// directions) rebuilds the row's model: the same λ, build bits, fewest bits and parameter counts.
#[test]
fn memorize_with_a_suite_rows_arguments_rebuilds_its_model() {
    let capacity = read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/reproduce/capacity.json"));
    let (cfg, rows) = (&capacity["config"], capacity["rows"].as_array().unwrap());
    let c = &cfg["capacity"];
    let mut checked = 0;
    for n in [10u64, 30] {
        for policy in ["measured", "fewest-bits", "mean-pool"] {
            let row = rows.iter().find(|r| r["policy"] == policy && r["N"] == n && r.get("family").is_none()).unwrap();
            let line = format!(
                "memorize --sequences {n} --length {} --dim {} --vocab {} --seed {} --policy {policy} --json",
                c["length"], c["dim"], c["vocab"], cfg["seed"]
            );
            let o = boltz_line(&line);
            assert!(o.status.success(), "{line}: {}", String::from_utf8_lossy(&o.stderr));
            let m: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(m["args"]["candidates"], 1000, "the recorded candidates");
            let got = [
                ("lambda", m["report"]["contextual"]["lambda"].clone()),
                ("build_bits", m["build_bits"].clone()),
                ("fewest_bits", m["fewest_bits"]["fewest"].clone()),
                ("params_dense", m["params"]["dense"].clone()),
                ("params_factored", m["params"]["factored"].clone()),
            ];
            for (field, value) in got {
                assert_eq!(value, row[field], "{line}: {field}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

/// `verify --model DIR` reads what `memorize --export DIR` wrote (its dataset too), runs bigfloat at the
/// model's recorded build bits by default (a Measured model memorizes exactly there, not at 53 bits), and
/// bisects up to where the model memorizes.
#[test]
fn verify_reads_an_export_directory_at_its_build_precision() {
    let dir = tmp("verify-export");
    let export = dir.join("out");
    let o =
        boltz_line(&format!("memorize --sequences 12 --length 4 --dim 3 --vocab 9 --policy measured --json --export {}", export.display()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let built: Value = serde_json::from_slice(&o.stdout).unwrap();
    let bits = built["build_bits"].as_u64().unwrap();
    assert!(bits > 53, "a Measured model needs more than f64's bits: {bits}");
    let o = boltz_line(&format!("verify --model {} --backend bigfloat --bisect --json", export.display()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["precision"], format!("bits={bits}"), "{v}");
    assert_eq!(v["memorization"]["decoded"], v["memorization"]["tokens"]);
    assert_eq!(v["fewest_bits"]["hi"], bits);
    assert_eq!(v["fewest_bits"]["fewest"], built["fewest_bits"]["fewest"]);
    assert!(v["dataset"]["file"].as_str().unwrap().ends_with("dataset.safetensors"));
    // At f64's 53 bits the same model does not memorize: the default matters.
    let o = boltz_line(&format!("verify --model {} --backend bigfloat --precision bits=53 --json", export.display()));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["memorization"]["decoded"].as_u64().unwrap() < v["memorization"]["tokens"].as_u64().unwrap(), "{v}");
    // A directory without an export, and no --dataset for a plain file: refused, saying what to give.
    let o = boltz_line(&format!("verify --model {}", dir.display()));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a directory without model.exact.json"));
    let o = boltz_line(&format!("verify --model {}", export.join("model.safetensors").display()));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--dataset is required"));
}

/// No silent minutes: a stage that runs longer than 2 s reports its progress with a rate and an ETA
/// (a line every 10 s without a terminal, as here), and a short run stays quiet.
#[test]
fn long_stages_report_progress_with_a_rate() {
    let dir = tmp("verify-progress");
    let export = dir.join("out");
    let o = boltz_line(&format!("memorize --sequences 24 --length 4 --dim 3 --vocab 12 --policy tuned --export {}", export.display()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let quiet = boltz_line(&format!("verify --model {} --backend bigfloat --precision bits=200", export.display()));
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("/s"), "{}", String::from_utf8_lossy(&quiet.stderr));
    let o = boltz_line(&format!("verify --model {} --backend bigfloat --precision bits=400000 --threads 1", export.display()));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    let line = err.lines().find(|l| l.contains("bigfloat forward at 400000 bits: ")).unwrap_or_else(|| panic!("no progress line:\n{err}"));
    assert!(line.contains("/24 in ") && line.contains("/s") && line.contains("left)"), "{line}");
}

/// Hard edges of files: `--out /dev/null` writes through (the device stays a device, even for root), a
/// FIFO as `--dataset` is refused before it is opened (no hang), and a directory's OS error is said once.
#[cfg(unix)]
#[test]
fn special_files_are_written_through_or_refused_without_hanging() {
    use std::os::unix::fs::FileTypeExt as _;
    let o = boltz_line("memorize --sequences 8 --length 3 --dim 2 --vocab 6 --out /dev/null");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    let dir = tmp("fifo");
    let fifo = dir.join("data.npz");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let o = boltz_line(&format!("memorize --dataset {}", fifo.display()));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is a FIFO (named pipe), not a regular file"));
    let o = boltz_line(&format!("memorize --sequences 8 --length 3 --dim 2 --vocab 6 --out {}", fifo.display()));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing to replace it"));
    let o = boltz_line(&format!("memorize --dataset {}", dir.display()));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(err.matches("directory").count(), 1, "{err}");
    // A parent that is a file is named (the OS says only "File exists" or "Not a directory").
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = boltz_line(&format!("memorize --sequences 8 --length 3 --dim 2 --vocab 6 --out {}", file.join("sub/out.json").display()));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("{} is a file, not a directory", file.display())));
    // A negative size is a bad value, said by its parser, not an unknown flag.
    let o = boltz_line("memorize --sequences -5");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid value '-5' for '--sequences"), "{}", String::from_utf8_lossy(&o.stderr));
}
