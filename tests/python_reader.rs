//! `docs/format.md` promises that the files are readable with a few lines of Python. This runs the
//! standard-library reader `scripts/read_boltz.py` on a model written in both encodings and checks, in
//! Python, that every value of the safetensors file equals the exact JSON value.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use boltzformer::core::conformance::{random_model, RandomModelSpec};
use boltzformer::core::format::{self, Encoding};
use boltzformer::core::rng::SeededRng;
use boltzformer::core::Normalizer;

#[test]
fn python_reads_both_encodings_exactly() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED python reader: python3 not found");
        return;
    }
    let spec = RandomModelSpec {
        normalizer: Normalizer::Hardmax,
        causal: true,
        query_bias: true,
        factor_rank: Some(1),
        ..RandomModelSpec::sized(3, 2, 2, 2, 4)
    };
    let model = random_model(&mut SeededRng::new(11), &spec);
    let dir = std::env::temp_dir().join(format!("boltz-py-{}", std::process::id()));
    let (st, js) = (dir.join("m.safetensors"), dir.join("m.exact.json"));
    format::save_model(&model, &st, Encoding::F64).unwrap();
    format::save_model(&model, &js, Encoding::Exact).unwrap();
    let script = format!(
        "import sys; sys.path.insert(0, {scripts:?}); from read_boltz import read; from fractions import Fraction\n\
         m1, t1 = read({st:?}); m2, t2 = read({js:?})\n\
         assert m1 == m2, (m1, m2)\n\
         assert sorted(t1) == sorted(t2)\n\
         for k in t1:\n    assert t1[k][0] == t2[k][0], k\n    assert [Fraction(x) for x in t1[k][1]] == t2[k][1], k\n\
         print(len(t1), 'tensors equal')",
        scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts"),
        st = st.display().to_string(),
        js = js.display().to_string(),
    );
    let out = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "python reader failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("tensors equal"));
}
