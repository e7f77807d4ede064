"""The boltzformer Python package: NumPy round trips, agreement with the `boltz` CLI on the same data, exact
values beyond f64, typed results and errors, the GIL, and (where torch is installed) `Model.to_torch()` and a
model written by `safetensors.torch.save_file`.

Run through `bash scripts/test-python.sh` (part of the README's test command), which installs the wheel into
a throwaway venv, checks the package and the README example with `mypy --strict`, and points BOLTZ_BIN at
the CLI built by the Rust tests.
"""

import importlib
import json
import os
import signal
import subprocess
import sys
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


def need(module):
    """An optional dependency (torch, safetensors, nbclient, ...): skipped without it, or a failure under
    BOLTZ_REQUIRE_EXTRAS=1 (scripts/test-python.sh installs them all, so CI never skips these tests)."""
    if os.environ.get("BOLTZ_REQUIRE_EXTRAS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)


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


def test_candidates_default_as_the_cli_and_are_recorded(built):
    x, labels, model = built
    assert model.build.candidates == 1000
    few = bf.memorize(x, labels=labels, policy="tuned", candidates=3)
    assert few.build.candidates == 3
    assert bf.memorize(x, labels=labels, construction="yun").build.candidates is None
    with pytest.raises(bf.BoltzError, match="candidates must be at least 1"):
        bf.memorize(x, labels=labels, candidates=0)


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


def test_a_loaded_model_runs_and_searches_from_its_recorded_build_bits(tmp_path, measured):
    x, labels, model = measured
    model.save(tmp_path / "m.exact.json")
    back = bf.load(tmp_path / "m.exact.json")
    assert back.build is None and back.build_bits == model.build_bits > 53
    assert back.metadata["construction.build_bits"] == str(model.build_bits)
    # bigfloat without a precision: the build bits, where the Measured model memorizes exactly.
    r = bf.verify(back, x, labels=labels, backend="bigfloat")
    assert r.precision == f"bits={model.build_bits}" and r.memorization.decoded == labels.size
    # The search tops out at the build bits (no 4096 cap, no silent None).
    search = bf.fewest_bits(back, x, labels=labels)
    assert search.hi == model.build_bits and search.fewest is not None
    # A file that records no build bits: bigfloat needs a precision, said so.
    path = tmp_path / "bare.exact.json"
    model.save(path)
    doc = json.loads(path.read_text())
    doc["metadata"].pop("construction.build_bits")
    path.write_text(json.dumps(doc))
    bare = bf.load(path)
    assert bare.build_bits is None
    with pytest.raises(bf.BoltzError, match="records no build precision"):
        bf.verify(bare, x, labels=labels, backend="bigfloat")


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
    mpmath = need("mpmath")
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
    need("mpmath")
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
    # Sizes whose verification cannot end within max_time are refused before any work (d = 200 000).
    wide = np.random.default_rng(1).normal(size=(4, 4, 200_000))
    with pytest.raises(bf.BoltzError, match=r"d = 200000.*arbitrary-precision operations.*max-time"):
        bf.memorize(wide, labels=np.zeros((4, 4), dtype=np.int64), max_time=0.01)
    with pytest.raises(bf.BoltzError, match="positive number of seconds"):
        bf.memorize(x, labels=labels, max_time=-1.0)
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
# Ctrl-C and progress


def slow_forward_args():
    """A bigfloat forward of 240 sequences at 100 000 bits on one thread: seconds in all, one sequence in
    tens of milliseconds (a safe point each)."""
    x, labels = dataset()
    model = bf.memorize(x, labels=labels)
    return model, np.concatenate([x] * 20), dict(backend="bigfloat", precision="bits=100000", threads=1)


def test_ctrl_c_stops_a_long_call_within_a_second_and_the_next_call_runs():
    model, xx, run = slow_forward_args()
    seen, sent = [], []

    def press_ctrl_c(p):
        seen.append(p)
        if p.done >= 1 and not sent:
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        model.forward(xx, progress=press_ctrl_c, **run)
    stopped_after = time.perf_counter() - sent[0]
    # A call that ignored the signal would run all 240 sequences (seconds) and raise only then.
    assert stopped_after < 1.0, f"KeyboardInterrupt {stopped_after:.2f} s after Ctrl-C"
    assert seen[-1].done < seen[-1].total == len(xx), seen[-1]
    # Nothing of the stopped call is left over: the next call runs to the end, with the same outputs.
    few = xx[:3]
    assert np.array_equal(model.forward(few, backend="bigfloat", precision="bits=100000"),
                          model.forward(few, backend="bigfloat", precision="bits=100000", threads=2))


def test_ctrl_c_from_the_terminal_stops_verify_and_fewest_bits():
    model, xx, run = slow_forward_args()
    labels = np.rint(model.forward(xx, backend="bigfloat", precision=f"bits={model.build_bits}")[..., 0]).astype(np.int64)
    for call in (lambda: bf.verify(model, xx, labels=labels, **run),
                 lambda: bf.fewest_bits(model, xx, labels=labels, min_bits=90000, max_bits=100000, threads=1)):
        # The signal comes from another thread, as a terminal's does: Python runs its handler in the main
        # thread, which waits in the library.
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        start = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            call()
        timer.join()
        assert time.perf_counter() - start < 0.3 + 1.0


def test_progress_reports_each_stage_up_to_its_total(built):
    x, labels, model = built
    seen = []
    search = bf.fewest_bits(model, x, labels=labels, max_bits=model.build_bits, progress=seen.append)
    assert seen and all(isinstance(p, bf.Progress) for p in seen)
    # Sampled ten times a second, so a short probe may not show; each stage shown is one the search ran
    # (a probe's decoding check, or the audit's faithful forward at the answer and at the highest failing
    # probe), counted up to its total.
    probes = {p.bits for p in search.probes}
    audited = {search.audit.bits, search.audit.failing_bits}
    for p in seen:
        kind, bits = p.stage.rsplit(" at ", 1)
        assert (kind == "decoding check" and int(bits.split()[0]) in probes) or \
            (kind == "faithful forward" and int(bits.split()[0]) in audited), p
        assert 0 <= p.done <= p.total
    assert seen[-1].done == seen[-1].total, "the last report is the finished call's"
    ref = []
    bf.verify(model, x, labels=labels, progress=ref.append)
    assert ref[-1] == bf.Progress("reference forward", len(x), len(x))


def test_progress_draws_a_terminal_line_and_refuses_what_it_cannot_call(built, capsys, monkeypatch):
    x, labels, model = built
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "tqdm", None)  # without tqdm: one plain line, cleared at the end
        bf.verify(model, x, labels=labels, progress=True)
        err = capsys.readouterr().err
        assert f"reference forward: {len(x)}/{len(x)}" in err and err.endswith("\r\x1b[K"), repr(err)
    bf.verify(model, x, labels=labels, progress=False)
    bf.verify(model, x, labels=labels)  # stderr is not a terminal here: nothing drawn
    assert capsys.readouterr().err == ""
    with pytest.raises(bf.BoltzError, match="progress: expected a callable"):
        bf.verify(model, x, labels=labels, progress="yes")

    def broken(p):
        raise RuntimeError("the callback failed")

    with pytest.raises(RuntimeError, match="the callback failed"):
        bf.verify(model, x, labels=labels, progress=broken)
    need("tqdm")
    bf.verify(model, x, labels=labels, progress=True)  # tqdm's bar
    assert "reference forward" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------
# PyTorch (optional: skipped without torch)


def test_to_torch_computes_the_same_forward(built):
    torch = need("torch")
    x, labels, model = built
    module = model.to_torch()
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    ref = model.forward(x, backend="reference", precision="f64")
    assert np.abs(got - ref).max() <= 1e-9 * max(1.0, np.abs(ref).max())
    assert np.array_equal(np.rint(got[..., 0]), labels)
    # Yun et al.'s model (hardmax attention, many blocks) on data where it fits f64 (fewest bits ≤ 53):
    # there both forwards decode every token and agree. Below its fewest bits a forward's outcome is the
    # rounding of one summation order (MKL's on an AVX-512 CPU gave 10³⁸ where the reference gave 0 on a
    # model needing 137 bits), which no two implementations share.
    yx, ylab = dataset(seed=0, sequences=3, length=2, dim=2, vocab=4)
    yun = bf.memorize(yx, labels=ylab, construction="yun")
    assert yun.layers.attention > 2 and bf.fewest_bits(yun, yx, labels=ylab).fewest <= 53
    with torch.no_grad():
        got = yun.to_torch()(torch.from_numpy(yx)).numpy()
    ref = yun.forward(yx)
    assert np.abs(got - ref).max() <= 1e-9 * max(1.0, np.abs(ref).max())
    assert np.array_equal(np.rint(got[..., 0]), ylab)


def token_targets(labels, dim):
    """Targets of integer labels: the label in coordinate 0, zeros elsewhere (docs/format.md)."""
    t = np.zeros(labels.shape + (dim,))
    t[..., 0] = labels
    return t


def test_to_torch_has_named_trainable_parameters_and_a_readable_repr(built):
    torch = need("torch")
    _, _, model = built
    module = model.to_torch()
    params = dict(module.named_parameters())
    assert set(params) == set(model.tensors())
    assert all(p.requires_grad and p.dtype == torch.float64 for p in params.values())
    assert set(module.state_dict()) == set(model.tensors()) | {"_extra_state"}
    assert sum(p.numel() for p in params.values()) == model.params.factored
    text = repr(module)
    for part in ("BoltzModule", "construction='one-layer'", "softmax", "AttentionHead", "(w_q): Factored", "FeedForward"):
        assert part in text, text
    assert model.to_torch(torch.float32).blocks[0].ffn.b1.dtype == torch.float32


def test_torch_round_trip_is_bit_identical_and_training_shows_in_verify(built):
    torch = need("torch")
    x, labels, model = built
    f64 = bf.verify(model, x, labels=labels, precision="f64").memorization
    for source in (model.to_torch(), model.to_torch().state_dict()):
        back = bf.from_torch(source)
        assert back.metadata == model.metadata
        exact = back.tensors(exact=True, as_mpf=False)
        for name, values in model.tensors().items():  # the f64-rounded weights, every bit
            assert [exact_fraction(s) for s in exact[name].ravel()] == [Fraction(v) for v in values.ravel()], name
        assert bf.verify(back, x, labels=labels).memorization == f64
    # f32: the module's values, widened exactly.
    back32 = bf.from_torch(model.to_torch(torch.float32))
    for name, values in model.tensors().items():
        assert np.array_equal(back32.tensors()[name], values.astype(np.float32).astype(np.float64)), name

    # A few optimizer steps in torch change the weights; verify reports what torch's own forward decodes.
    trained = model.to_torch().train()
    opt = torch.optim.Adam(trained.parameters(), lr=0.05)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(token_targets(labels, x.shape[-1]))
    for _ in range(5):
        opt.zero_grad()
        loss = ((trained(inputs) - targets) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        decoded = int((trained(inputs) - targets).abs().lt(0.5).all(dim=-1).sum())
    got = bf.verify(bf.from_torch(trained), x, labels=labels).memorization
    assert got.decoded == decoded
    assert got.decoded < f64.decoded, "five steps at lr 0.05 leave the construction's exact weights"
    assert got.max_abs_error != f64.max_abs_error


def test_from_torch_refuses_other_modules_naming_each_difference(built):
    torch = need("torch")
    _, _, model = built
    with pytest.raises(bf.BoltzError) as e:
        bf.from_torch(torch.nn.TransformerEncoderLayer(d_model=4, nhead=2))
    for difference in ("LayerNorm (norm1)", "√(d/heads)", "dropout p=0.1", "2 heads", "biases on K, V"):
        assert difference in str(e.value), str(e.value)
    with pytest.raises(bf.BoltzError, match="not named as the file format"):
        bf.from_torch(torch.nn.Linear(3, 3))
    state = model.to_torch().state_dict()
    del state["_extra_state"]
    with pytest.raises(bf.BoltzError, match="no boltzformer metadata"):
        bf.from_torch(state)
    assert bf.from_torch(state, metadata=model.metadata).metadata == model.metadata
    state["blocks.0.ffn.extra"] = torch.zeros(3)
    with pytest.raises(bf.BoltzError, match="blocks.0.ffn.extra"):
        bf.from_torch(state, metadata=model.metadata)
    state.pop("blocks.0.ffn.extra")
    state["blocks.0.ffn.b1"] = state["blocks.0.ffn.b1"].clone()
    state["blocks.0.ffn.b1"][0] = float("nan")
    with pytest.raises(bf.PrecisionError, match=r"blocks.0.ffn.b1\[0\]"):
        bf.from_torch(state, metadata=model.metadata)


def test_a_model_saved_by_safetensors_torch_verifies_through_the_cli(tmp_path, built):
    torch = need("torch")
    st = need("safetensors.torch")
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


def test_the_tutorial_notebook_runs_and_is_its_source():
    for module in ("jupytext", "nbclient", "nbformat", "ipykernel", "matplotlib", "torch"):
        need(module)
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "tutorial.py"), "check"], capture_output=True,
                       text=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert p.returncode == 0, p.stderr[-3000:]


def test_the_readme_example_runs():
    need("torch")
    text = (REPO / "README.md").read_text()
    section = text[text.index("## From Python"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    exec(compile(code, "README.md (From Python)", "exec"), {})
