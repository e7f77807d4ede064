"""The boltzformer Python package: NumPy round trips, agreement with the `boltz` CLI on the same data, exact
values beyond f64, typed results and errors, the GIL, and (where torch is installed) `Model.to_torch()` and a
model written by `safetensors.torch.save_file`.

Run through `bash scripts/test-python.sh` (part of the README's test command), which installs the wheel into
a throwaway venv, checks the package and the README example with `mypy --strict`, and points BOLTZ_BIN at
the CLI built by the Rust tests.
"""

import json
import os
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import boltzformer as bf

REPO = Path(__file__).resolve().parents[2]


def cli():
    """The `boltz` binary: $BOLTZ_BIN, else target/debug/boltz. Missing: skip, or fail under
    BOLTZ_REQUIRE_CLI=1 (scripts/test-python.sh sets it, so CI never skips the agreement tests)."""
    path = Path(os.environ.get("BOLTZ_BIN", REPO / "target" / "debug" / "boltz"))
    if not path.is_file():
        msg = f"the boltz CLI is not built ({path}); run `cargo build -p boltz-cli` or set BOLTZ_BIN"
        if os.environ.get("BOLTZ_REQUIRE_CLI") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return str(path)


def run_cli(*args, expect=0):
    """Runs the CLI; `expect`: the exit status it must have, or a tuple of allowed ones."""
    p = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True)
    allowed = expect if isinstance(expect, tuple) else (expect,)
    assert p.returncode in allowed, f"boltz {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
    return p


def dataset(seed=0, sequences=12, length=5, dim=3, vocab=10, classes=4):
    """Sequences of distinct tokens from a vocabulary of `vocab` random vectors (no two sequences permutations
    of each other, so any labels are consistent), integer labels."""
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(vocab, dim))
    ids, seen = [], set()
    while len(ids) < sequences:
        s = rng.choice(vocab, length, replace=False)
        if frozenset(s.tolist()) not in seen:
            seen.add(frozenset(s.tolist()))
            ids.append(s)
    ids = np.array(ids)
    labels = rng.integers(0, classes, size=(sequences, length))
    return tokens[ids], labels


def exact_fraction(s):
    sign = -1 if s[0] == "-" else 1
    m, e = s.lstrip("+-")[2:].split("p")
    return sign * int(m, 16) * Fraction(2) ** int(e)


def without_timings(v):
    """A report without its `*_seconds` fields (wall-clock times differ between any two runs)."""
    if isinstance(v, dict):
        return {k: without_timings(x) for k, x in v.items() if not k.endswith("_seconds")}
    if isinstance(v, list):
        return [without_timings(x) for x in v]
    return v


@pytest.fixture(scope="module")
def built():
    """A one-layer memorizer whose weights fit f64 (the Tuned policy: the smallest λ that separates)."""
    x, labels = dataset()
    return x, labels, bf.memorize(x, labels=labels, policy="tuned")


@pytest.fixture(scope="module")
def measured():
    """The Measured policy on the same data: its FFN weights are beyond f64's range."""
    x, labels = dataset()
    return x, labels, bf.memorize(x, labels=labels)


# ------------------------------------------------------------------------------------------------------
# Memorization and backends


def test_memorize_decodes_every_label_exactly_at_its_build_bits(built):
    x, labels, model = built
    assert model.construction == "one-layer"
    assert (model.layers.attention, model.layers.ffn) == (1, 1)
    assert model.build is not None and model.build.exact_at_build_bits.decoded == labels.size
    r = bf.verify(model, x, labels=labels, backend="bigfloat", precision=f"bits={model.build_bits}")
    assert isinstance(r, bf.VerifyResult) and r.memorization.all_decoded
    assert r.memorization.decoded == r.memorization.tokens == labels.size
    assert (r.backend, r.precision, r.dataset.sequences) == ("bigfloat", f"bits={model.build_bits}", len(x))
    y = model.forward(x, backend="bigfloat", precision=f"bits={model.build_bits}")
    assert y.shape == x.shape
    assert np.array_equal(np.rint(y[..., 0]), labels)
    assert np.all(np.abs(y[..., 1:]) < 0.5)


def test_backends_agree_within_the_stated_tolerances(built):
    x, _, model = built
    ref = model.forward(x, backend="reference", precision="f64")
    cpu = model.forward(x, backend="cpu", precision="f64", threads=2)
    exact = model.forward(x, backend="bigfloat", precision=f"bits={model.build_bits}")
    # The memorizer's FFN cancels large terms, so f64 rounding shows at about 1e-11 here (not the 1e-12 of
    # the conformance suite's random models): each f64 backend is within 1e-8 of the exact outputs, far
    # inside the decoding margin of 1/2, and both decode every label.
    for y in (ref, cpu):
        assert np.abs(y - exact).max() <= 1e-8
        assert np.array_equal(np.rint(y), np.rint(exact))
    f32 = model.forward(x, backend="cpu", precision="f32")
    assert f32.dtype == np.float64 and f32.shape == x.shape
    # One sequence [n, d] in, one sequence out.
    one = model.forward(x[3], backend="reference", precision="f64")
    assert np.array_equal(one, ref[3])


def test_fewest_bits_is_where_memorization_starts(built):
    x, labels, model = built
    search = bf.fewest_bits(model, x, labels=labels, max_bits=model.build_bits)
    assert isinstance(search, bf.BitsSearch)
    p = search.fewest
    assert p is not None and 8 <= p <= model.build_bits
    assert search.probes and all(isinstance(q.bits, int) and isinstance(q.holds, bool) for q in search.probes)
    at = bf.verify(model, x, labels=labels, backend="bigfloat", precision=f"bits={p}").memorization
    assert at.decoded == at.tokens
    if search.monotone and p > 8:
        below = bf.verify(model, x, labels=labels, backend="bigfloat", precision=f"bits={p - 1}").memorization
        assert below.decoded < below.tokens
    # The record as the library wrote it, every field, for saving.
    assert search.to_dict()["fewest"] == p and json.loads(json.dumps(search.to_dict()))["lo"] == search.lo


def test_labels_and_targets_are_keywords_in_every_function(built):
    x, labels, model = built
    for call in (lambda: bf.memorize(x, labels, policy="tuned"), lambda: bf.verify(model, x, labels),
                 lambda: bf.fewest_bits(model, x, labels)):
        with pytest.raises(TypeError):
            call()
    again = bf.memorize(x, labels=labels, policy="tuned")
    assert again.tensors(exact=True, as_mpf=False).keys() == model.tensors().keys()
    assert again.build is not None and model.build is not None
    assert again.build.exact_at_build_bits == model.build.exact_at_build_bits
    # Frozen results: a field cannot be overwritten by mistake.
    with pytest.raises(Exception):
        again.build.build_bits = 1  # type: ignore[misc]


def test_yun_construction_runs_and_memorizes():
    x, labels = dataset(seed=3, sequences=4, length=3, dim=2, vocab=5)
    model = bf.memorize(x, labels=labels, construction="yun")
    assert model.construction == "yun"
    assert model.layers.attention > 1
    assert model.build is not None and model.build.exact_at_build_bits.decoded == labels.size


def test_bit_extraction_memorizes_both_tasks_exactly():
    x, labels = dataset(seed=5, sequences=12, length=4, dim=4, vocab=9)
    model = bf.memorize(x, labels=labels, construction="optimal")
    assert model.construction == "bit-extraction"
    assert model.layers.attention == 1
    exact = model.build.exact_at_build_bits
    assert exact.exact == exact.tokens == labels.size
    assert model.build.report["ids"] == labels.size
    # Next-token: one id per sequence, the last position's label everywhere.
    nt = bf.memorize(x, labels=labels, construction="bit-extraction", task="next-token")
    assert nt.build.report["ids"] == 12
    last = np.repeat(labels[:, -1:], 4, axis=1)
    assert bf.verify(nt, x, labels=last, backend="bigfloat", precision=f"bits={nt.build.build_bits}").memorization.exact == 48
    # Seq2seq only for the other constructions: refused, not dropped.
    with pytest.raises(bf.BoltzError, match="next-token is for"):
        bf.memorize(x, labels=labels, construction="one-layer", task="next-token")
    with pytest.raises(bf.BoltzError, match="unknown task"):
        bf.memorize(x, labels=labels, construction="optimal", task="lm")


# ------------------------------------------------------------------------------------------------------
# Round trips


def test_dataset_round_trip_through_the_boltz_format(tmp_path, built):
    x, labels, _ = built
    for enc in ["f64", "exact"]:
        path = tmp_path / ("d.safetensors" if enc == "f64" else "d.exact.json")
        bf.save_dataset(path, x, labels=labels, encoding=enc)
        xi, t = bf.load_dataset(path)
        assert np.array_equal(xi, x)
        assert np.array_equal(t[..., 0], labels) and not t[..., 1:].any()


def test_numpy_files_load_as_the_cli_reads_them(tmp_path, built):
    x, labels, _ = built
    np.savez(tmp_path / "d.npz", inputs=x, labels=labels)
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    np.save(tmp_path / "l.npy", labels.astype(np.int16))
    xi, t = bf.load_dataset(tmp_path / "d.npz")
    assert np.array_equal(xi, x) and np.array_equal(t[..., 0], labels)
    xi, t = bf.load_dataset(tmp_path / "x.npy", labels=tmp_path / "l.npy")
    assert np.array_equal(xi, x.astype(np.float32).astype(np.float64)) and np.array_equal(t[..., 0], labels)


def test_model_round_trips_exactly(tmp_path, built):
    _, _, model = built
    model.save(tmp_path / "m.exact.json")
    back = bf.load(tmp_path / "m.exact.json")
    assert back.build is None
    assert back.tensors(exact=True, as_mpf=False).keys() == model.tensors().keys()
    for name, values in model.tensors(exact=True, as_mpf=False).items():
        assert np.array_equal(values, back.tensors(exact=True, as_mpf=False)[name]), name
    assert back.metadata == model.metadata


def test_a_value_an_encoding_cannot_hold_is_refused(tmp_path, built):
    _, _, model = built
    # The measured memorizer's weights carry more than 24 mantissa bits.
    with pytest.raises(bf.BoltzError, match="(?i)exact|inexact|represent"):
        model.save(tmp_path / "m.safetensors", encoding="f32")
    assert not (tmp_path / "m.safetensors").exists()


# ------------------------------------------------------------------------------------------------------
# Exact values beyond f64


def test_exact_values_carry_every_bit(tmp_path, built):
    x, _, model = built
    mpmath = pytest.importorskip("mpmath")
    bits = model.build_bits
    hexes = model.forward(x[:2], backend="bigfloat", precision=f"bits={bits}", exact=True, as_mpf=False)
    mpfs = model.forward(x[:2], backend="bigfloat", precision=f"bits={bits}", exact=True)
    assert isinstance(mpfs.flat[0], mpmath.mpf)
    longest = 0
    for s, v in zip(hexes.flat, mpfs.flat):
        f = exact_fraction(s)
        man, exp = v.man_exp  # |v| = man · 2^exp (mpmath keeps the sign apart)
        assert int(mpmath.sign(v)) * Fraction(int(man)) * Fraction(2) ** int(exp) == f, s
        longest = max(longest, f.numerator.bit_length())
    assert longest > 53, "these outputs need more than f64's bits (else the test shows nothing)"
    # float64 outputs are the nearest doubles of the exact ones.
    f64 = model.forward(x[:2], backend="bigfloat", precision=f"bits={bits}")
    assert all(float(exact_fraction(s)) == y for s, y in zip(hexes.flat, f64.flat))


def test_a_model_beyond_f64_runs_exactly_and_is_refused_in_f64(measured):
    x, labels, model = measured
    with pytest.raises(bf.PrecisionError, match="beyond the range of f64"):
        model.tensors()
    with pytest.raises(bf.PrecisionError, match="non-finite value"):
        model.forward(x, backend="reference", precision="f64")
    with pytest.raises(bf.PrecisionError, match="non-finite value"):
        bf.verify(model, x, labels=labels, backend="cpu", precision="f32")
    r = bf.verify(model, x, labels=labels, backend="bigfloat", precision=f"bits={model.build_bits}")
    assert r.memorization.decoded == labels.size
    big = max(abs(exact_fraction(s)) for t in model.tensors(exact=True, as_mpf=False).values() for s in t.flat)
    assert big > Fraction(2) ** 1024


def test_values_beyond_f64_range_are_exact_or_an_error(tmp_path, built):
    _, _, model = built
    model.save(tmp_path / "m.exact.json")
    doc = json.loads((tmp_path / "m.exact.json").read_text())
    name = sorted(doc["tensors"])[0]
    doc["tensors"][name]["values"][0] = "0x3p5000"  # 3 · 2^5000: finite, far beyond f64
    (tmp_path / "big.exact.json").write_text(json.dumps(doc))
    big = bf.load(tmp_path / "big.exact.json")
    with pytest.raises(bf.BoltzError, match="beyond the range of f64"):
        big.tensors()
    exact = big.tensors(exact=True, as_mpf=False)[name].flat[0]
    assert exact_fraction(exact) == 3 * Fraction(2) ** 5000
    pytest.importorskip("mpmath")
    v = big.tensors(exact=True)[name].flat[0]
    assert v.man_exp == (3, 5000)
    assert bf.exact_value("-0x1b3p-12", as_mpf=False) == "-0x1b3p-12"


# ------------------------------------------------------------------------------------------------------
# Agreement with the CLI on the same data


def test_python_and_cli_memorize_identically(tmp_path, built):
    x, labels, model = built
    np.savez(tmp_path / "d.npz", inputs=x, labels=labels)
    out = tmp_path / "cli.json"
    run_cli("memorize", "--dataset", tmp_path / "d.npz", "--policy", "tuned", "--no-bisect", "--threads", "2",
            "--out", out, "--export", tmp_path / "export")
    rec = json.loads(out.read_text())
    assert without_timings(rec["report"]) == without_timings(model.report)
    assert rec["build_bits"] == model.build_bits
    assert model.build is not None
    assert rec["exact_at_build_bits"] == model.build.exact_at_build_bits.to_dict()
    assert rec["layers"] == model.layers.to_dict() and rec["params"] == model.params.to_dict()
    assert rec["construction"] == model.build.construction == "one-layer"
    # The very same weights, bit for bit.
    cli_model = bf.load(tmp_path / "export" / "model.exact.json")
    for name, values in model.tensors(exact=True, as_mpf=False).items():
        assert np.array_equal(values, cli_model.tensors(exact=True, as_mpf=False)[name]), name


def test_python_and_cli_verify_identically(tmp_path, built):
    x, labels, model = built
    np.savez(tmp_path / "d.npz", inputs=x, labels=labels)
    model.save(tmp_path / "m.exact.json")
    for backend, precision in [("reference", "f64"), ("cpu", "f32"), ("bigfloat", "bits=40")]:
        # Exit 1: not every token decodes at this precision.
        p = run_cli("verify", "--model", tmp_path / "m.exact.json", "--dataset", tmp_path / "d.npz",
                    "--backend", backend, "--precision", precision, "--json", expect=(0, 1))
        cli_mem = json.loads(p.stdout)["memorization"]
        py_mem = bf.verify(model, x, labels=labels, backend=backend, precision=precision).memorization
        assert py_mem.to_dict() == cli_mem, (backend, precision)
        assert (p.returncode == 0) == py_mem.all_decoded


# ------------------------------------------------------------------------------------------------------
# Errors: every one a BoltzError with the Rust message


def test_bad_datasets_are_refused_naming_what_is_wrong(built):
    x, labels, model = built
    dup = x.copy()
    dup[4, 2] = dup[4, 0]
    with pytest.raises(bf.DataError, match=r"sequence 4.*position|position.*sequence 4|\[4"):
        bf.memorize(dup, labels=labels)
    nan = x.copy()
    nan[1, 2, 0] = np.nan
    with pytest.raises(bf.DataError, match=r"inputs\[1, 2, 0\]"):
        bf.memorize(nan, labels=labels)
    with pytest.raises(bf.BoltzError, match="labels"):
        bf.memorize(x, labels=labels[:, :3])
    with pytest.raises(bf.DataError, match="labels must be integers"):
        bf.memorize(x, labels=labels.astype(float))
    with pytest.raises(bf.BoltzError, match="dimensions"):
        bf.memorize(x[0], labels=labels)
    with pytest.raises(bf.BoltzError, match="N, n and d must be at least 1"):
        bf.memorize(np.zeros((0, 5, 3)), labels=np.zeros((0, 5), dtype=int))
    with pytest.raises(bf.BoltzError, match="not both"):
        bf.memorize(x, targets=x, labels=labels)
    with pytest.raises(bf.BoltzError, match="targets .*or integer labels"):
        bf.memorize(x)
    with pytest.raises(bf.BoltzError, match="numeric"):
        bf.memorize(np.array([[["a"]]]), labels=labels)
    # Permuted sequences with different targets: no permutation-equivariant model fits them.
    perm = x.copy()
    perm[1] = x[0][::-1]
    bad = labels.copy()
    bad[1] = labels[0]  # not reversed: token k of sequence 1 gets another token's label
    if not np.array_equal(bad[1], labels[0][::-1]):
        with pytest.raises(bf.DataError, match="(?i)permut"):
            bf.memorize(perm, labels=bad)


def test_bad_arguments_are_refused(built):
    x, labels, model = built
    with pytest.raises(bf.BoltzError, match='unknown backend "gpu"'):
        model.forward(x, backend="gpu")
    with pytest.raises(bf.BoltzError, match="precision"):
        model.forward(x, precision="f16")
    with pytest.raises(bf.BackendError, match="runs f32 or f64"):
        model.forward(x, backend="cpu", precision="bits=80")
    # choices() lists the backends this build has; one it lacks is refused saying how to build it in.
    assert {"reference", "cpu", "bigfloat"} <= set(bf.choices()["backend"])
    if "blas" not in bf.choices()["backend"]:
        with pytest.raises(bf.BackendError, match="not in this build.*BOLTZ_WHEEL_FEATURES=blas"):
            bf.verify(model, x, labels=labels, backend="blas", precision="f64")
    with pytest.raises(bf.BoltzError, match="unknown policy"):
        bf.memorize(x, labels=labels, policy="best")
    with pytest.raises(bf.BoltzError, match="unknown construction"):
        bf.memorize(x, labels=labels, construction="deep")
    with pytest.raises(bf.BoltzError, match="unknown construction"):
        bf.memorize(x, labels=labels, construction="kim")
    with pytest.raises(bf.BoltzError, match="token dimension"):
        model.forward(x[..., :2])
    with pytest.raises(bf.DataError, match="token dimension"):
        bf.verify(model, x[..., :2], labels=labels)
    with pytest.raises(bf.BoltzError, match=r"inputs\[0, 1, 2\] is not finite"):
        bad = x.copy()
        bad[0, 1, 2] = np.inf
        model.forward(bad)
    with pytest.raises(bf.BoltzError, match="threads must be at least 1"):
        model.forward(x, threads=0)
    with pytest.raises(bf.BoltzError, match="min_bits"):
        bf.fewest_bits(model, x, labels=labels, min_bits=64, max_bits=32)
    with pytest.raises(bf.BoltzError, match="expected a boltzformer.Model"):
        bf.verify("model.json", x, labels=labels)
    with pytest.raises(bf.BoltzError, match="encoding"):
        model.save("/tmp/never-written.json", encoding="f16")
    with pytest.raises(bf.BoltzError, match="reading"):
        bf.load("/nonexistent/model.safetensors")
    assert issubclass(bf.BoltzError, ValueError)
    assert all(issubclass(e, bf.BoltzError) for e in (bf.DataError, bf.PrecisionError, bf.BackendError))


def test_cli_and_python_refuse_the_same_bad_file_with_the_same_reason(tmp_path, built):
    x, labels, _ = built
    dup = x.copy()
    dup[2, 1] = dup[2, 3]
    np.savez(tmp_path / "dup.npz", inputs=dup, labels=labels)
    p = run_cli("memorize", "--dataset", tmp_path / "dup.npz", expect=2)
    with pytest.raises(bf.BoltzError) as e:
        bf.load_dataset(tmp_path / "dup.npz")
    reason = str(e.value).split("the constructions need: ")[-1]
    assert reason and reason in p.stderr, (reason, p.stderr)


# ------------------------------------------------------------------------------------------------------
# The GIL


def test_long_computations_release_the_gil():
    x, labels = dataset(seed=5, sequences=30, length=6, dim=3, vocab=12)
    done = threading.Event()
    result = {}

    def work():
        result["model"] = bf.memorize(x, labels=labels, policy="fewest-bits", threads=1)
        done.set()

    t = threading.Thread(target=work)
    ticks = 0
    start = time.perf_counter()
    t.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    t.join()
    elapsed = time.perf_counter() - start
    assert "model" in result
    # Held GIL: this thread could not run at all while memorize runs. Released: it ticks throughout.
    assert elapsed < 0.05 or ticks >= 10, (elapsed, ticks)
    assert elapsed >= 0.05, f"memorize took {elapsed:.3f}s: too short to show anything; use a larger dataset"


# ------------------------------------------------------------------------------------------------------
# PyTorch (optional: skipped without torch)


def test_to_torch_computes_the_same_forward(built):
    torch = pytest.importorskip("torch")
    x, labels, model = built
    module = model.to_torch()
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    ref = model.forward(x, backend="reference", precision="f64")
    assert np.abs(got - ref).max() <= 1e-9 * max(1.0, np.abs(ref).max())
    assert np.array_equal(np.rint(got[..., 0]), labels)
    yx, ylab = dataset(seed=3, sequences=4, length=3, dim=2, vocab=5)
    yun = bf.memorize(yx, labels=ylab, construction="yun")  # hardmax attention, many blocks
    with torch.no_grad():
        got = yun.to_torch()(torch.from_numpy(yx)).numpy()
    ref = yun.forward(yx)
    assert np.abs(got - ref).max() <= 1e-9 * max(1.0, np.abs(ref).max())


def test_a_model_saved_by_safetensors_torch_verifies_through_the_cli(tmp_path, built):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    x, labels, model = built
    # A PyTorch user's file: the documented names and metadata, f64 tensors, written by save_file.
    tensors = {k: torch.from_numpy(v.copy()) for k, v in model.tensors().items()}
    st.save_file(tensors, str(tmp_path / "torch.safetensors"), metadata=model.metadata)
    np.savez(tmp_path / "d.npz", inputs=x, labels=labels)
    p = run_cli("verify", "--model", tmp_path / "torch.safetensors", "--dataset", tmp_path / "d.npz", "--json",
                expect=(0, 1))
    cli_mem = json.loads(p.stdout)["memorization"]
    loaded = bf.load(tmp_path / "torch.safetensors")
    py_mem = bf.verify(loaded, x, labels=labels).memorization
    assert cli_mem == py_mem.to_dict()
    f64_model = bf.verify(model, x, labels=labels).memorization
    # The f64-rounded weights are what torch stored: the same run as the exact model rounded to f64.
    assert py_mem == f64_model


def test_the_readme_example_runs():
    pytest.importorskip("torch")
    text = (REPO / "README.md").read_text()
    section = text[text.index("## From Python"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    exec(compile(code, "README.md (From Python)", "exec"), {})
