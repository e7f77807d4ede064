"""Tests of scripts/read_boltz.py (standard library only: `python3 -m unittest discover -s scripts/tests`).

The files are written here by hand — a small safetensors writer and an exact-JSON writer that share no
code with the reader — as one valid model and dataset, then as malformed variants, one per rule the Rust
loader (crates/core/src/format.rs and what it calls) enforces. Every variant must raise ValueError whose
message starts with the file's path and names the tensor at fault where there is one.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
ROOT = os.path.dirname(SCRIPTS)
SCRIPT = os.path.join(SCRIPTS, "read_boltz.py")
sys.path.insert(0, SCRIPTS)

import read_boltz  # noqa: E402

# ---------------------------------------------------------------------------------------------------
# Writers (independent of read_boltz)


def hexfloat(x):
    """The exact JSON text of a dyadic rational, as the Rust writer prints it ("0x1b3p-12", "0x1p+0")."""
    x = Fraction(x)
    if x == 0:
        return "0x0p+0"
    num, den = x.numerator, x.denominator
    k = den.bit_length() - 1
    if den != 1 << k:
        raise TypeError(f"{x} is not dyadic")
    zeros = (num & -num).bit_length() - 1
    num >>= zeros
    k -= zeros
    return "%s0x%xp%+d" % ("-" if num < 0 else "", abs(num), -k)


def st_layout(tensors, dtype="F64"):
    """{name: (shape, values)} → (header dict, data bytes), tensors contiguous in name order."""
    header, body = {}, b""
    for name, (shape, values) in sorted(tensors.items()):
        data = struct.pack("<%d%s" % (len(values), {"F64": "d", "F32": "f"}[dtype]), *[float(v) for v in values])
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    return header, body


def st_pack(header, body, tail=b"", text=None):
    raw = (json.dumps(header) if text is None else text).encode("utf-8")
    if text is None:  # pad with spaces to a multiple of 8, as the safetensors crate writes it
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body + tail


def safetensors(meta, tensors, dtype="F64"):
    header, body = st_layout(tensors, dtype)
    header["__metadata__"] = dict(meta)
    return st_pack(header, body)


def exact_doc(meta, tensors):
    return {
        "format": "boltzformer-exact/1",
        "metadata": dict(meta),
        "tensors": {n: {"shape": list(s), "values": [hexfloat(v) for v in vs]} for n, (s, vs) in tensors.items()},
    }


def exact_json(meta, tensors):
    return json.dumps(exact_doc(meta, tensors)).encode()


MODEL_META = {
    "format": "boltzformer/1",
    "kind": "model",
    "dim": "2",
    "blocks": "1",
    "blocks.0.attn.kind": "softmax",
    "blocks.0.attn.causal": "false",
    "blocks.0.attn.heads": "1",
    "construction": "test",
    "construction.note": "hand-written",
}


def model_tensors():
    """d = 2, one head of size s = 1 (w_k factored, rank 1), hidden width q = 3."""
    f = Fraction
    return {
        "blocks.0.attn.0.w_q": ([1, 2], [f(1, 2), f(-1)]),
        "blocks.0.attn.0.w_k.u": ([1, 1], [f(2)]),
        "blocks.0.attn.0.w_k.v": ([2, 1], [f(1, 4), f(3)]),
        "blocks.0.attn.0.w_v": ([1, 2], [f(1), f(0)]),
        "blocks.0.attn.0.w_o": ([2, 1], [f(-1, 2), f(3, 2)]),
        "blocks.0.attn.0.b_q": ([1], [f(1, 8)]),
        "blocks.0.ffn.w1": ([3, 2], [f(v) for v in (1, 2, 3, 4, 5, 6)]),
        "blocks.0.ffn.b1": ([3], [f(0), f(-1), f(1)]),
        "blocks.0.ffn.w2": ([2, 3], [f(v) for v in (1, 0, 0, 0, 1, 0)]),
        "blocks.0.ffn.b2": ([2], [f(1, 2), f(3, 4)]),
    }


SPEC = {"sequences": 2, "length": 2, "dim": 2, "vocab": 4, "r_min": 1.0, "r_max": 2.0, "eps": 0.3, "classes": 2, "label_coord": 0, "seed": 7}
DATASET_META = {"format": "boltzformer/1", "kind": "dataset", "spec": json.dumps(SPEC), "seed": "7"}


def dataset_tensors():
    f = Fraction
    return {
        "inputs": ([2, 2, 2], [f(v, 4) for v in (1, -2, 3, 4, 5, 6, -7, 8)]),
        "targets": ([2, 2, 2], [f(v) for v in (1, 0, 0, 0, 1, 0, 1, 0)]),
    }


def nested(depth):
    v = 0
    for _ in range(depth):
        v = [v]
    return v


# ---------------------------------------------------------------------------------------------------


class Files(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def assertRefused(self, label, data, expected, suffix=".safetensors"):
        """`read` raises ValueError naming the file and containing each expected piece."""
        path = self.write(label.replace(" ", "_").replace("/", "_") + suffix, data)
        with self.subTest(label):
            with self.assertRaises(ValueError) as cm:
                read_boltz.read(path)
            message = str(cm.exception)
            self.assertTrue(message.startswith(path + ": "), message)
            for piece in expected:
                self.assertIn(piece, message)
        return 1


class ValidFiles(Files):
    def check_model(self, meta, tensors, exact):
        want = model_tensors()
        self.assertEqual(meta, MODEL_META)
        self.assertEqual(sorted(tensors), sorted(want))
        for name, (shape, values) in want.items():
            self.assertEqual(tensors[name][0], shape, name)
            self.assertEqual([Fraction(v) for v in tensors[name][1]], values, name)
            if exact:
                self.assertTrue(all(isinstance(v, Fraction) for v in tensors[name][1]))

    def test_model_in_every_encoding(self):
        for dtype in ("F64", "F32"):
            path = self.write(f"m-{dtype}.safetensors", safetensors(MODEL_META, model_tensors(), dtype))
            self.check_model(*read_boltz.read(path), exact=False)
        path = self.write("m.exact.json", exact_json(MODEL_META, model_tensors()))
        self.check_model(*read_boltz.read(path), exact=True)

    def test_exact_values_beyond_f64(self):
        tensors = model_tensors()
        long = Fraction(1) + Fraction(1, 2**200)
        tiny = Fraction(3, 2**5000)
        tensors["blocks.0.ffn.b2"] = ([2], [long, -tiny])
        _, got = read_boltz.read(self.write("m.exact.json", exact_json(MODEL_META, tensors)))
        self.assertEqual(got["blocks.0.ffn.b2"][1], [long, -tiny])

    def test_dataset_in_both_encodings(self):
        for name, data in (("d.safetensors", safetensors(DATASET_META, dataset_tensors())), ("d.exact.json", exact_json(DATASET_META, dataset_tensors()))):
            meta, tensors = read_boltz.read(self.write(name, data))
            self.assertEqual(meta, DATASET_META)
            for k, (shape, values) in dataset_tensors().items():
                self.assertEqual(tensors[k][0], shape)
                self.assertEqual([Fraction(v) for v in tensors[k][1]], values)

    def test_accepts_what_the_rust_loader_accepts(self):
        """Spellings that are unusual but valid for the Rust loader are not refused."""
        header, body = st_layout(model_tensors())
        header["__metadata__"] = dict(MODEL_META, dim="+02", blocks="01")  # usize::from_str takes '+' and leading zeros
        header["blocks.0.ffn.w1"]["note"] = {"any": [1, 2.5, None]}  # TensorInfo ignores unknown fields
        text = json.dumps(header)
        text += " " * (-len(text) % 8)  # the Rust writer pads the header with spaces
        read_boltz.read(self.write("padded.safetensors", st_pack(header, body, text=text)))
        # serde's other spellings of the same header: a tensor info as an array, a dtype as {"F64": null}.
        header, body = st_layout(model_tensors())
        header["__metadata__"] = MODEL_META
        info = header["blocks.0.ffn.b1"]
        header["blocks.0.ffn.b1"] = [{"F64": None}, info["shape"], info["data_offsets"]]
        read_boltz.read(self.write("serde-forms.safetensors", st_pack(header, body)))
        # Exact floats: sign, 0X / P, explicit '+', leading zeros, zero with any exponent (fast).
        doc = exact_doc(MODEL_META, model_tensors())
        doc["tensors"]["blocks.0.ffn.b1"]["values"] = ["+0X0P+999999999999", "-0x1P-0000", "0x00010p-4"]
        doc["unknown"] = {"ignored": True}
        _, got = read_boltz.read(self.write("spellings.exact.json", json.dumps(doc).encode()))
        self.assertEqual(got["blocks.0.ffn.b1"][1], [0, -1, 1])
        # A dataset spec with a non-default kind and an unknown field (serde_json skips an ignored
        # field's number without a range check; a known field's is checked).
        meta = dict(DATASET_META, spec=json.dumps(dict(SPEC, vocab_kind="grid", future="@")).replace('"@"', "[1e400]"))
        read_boltz.read(self.write("spec.safetensors", safetensors(meta, dataset_tensors())))

    def test_zero_size_tensors_share_an_offset(self):
        """Two empty tensors at the same offset tile the data (safetensors allows it): a model whose
        attention head has size 0 is refused only by the model check, naming w_q."""
        tensors = model_tensors()
        tensors["blocks.0.attn.0.w_q"] = ([0, 2], [])
        tensors["blocks.0.attn.0.w_k.u"] = ([0, 1], [])
        tensors["blocks.0.attn.0.w_v"] = ([0, 2], [])
        tensors["blocks.0.attn.0.w_o"] = ([2, 0], [])
        del tensors["blocks.0.attn.0.b_q"]
        path = self.write("s0.safetensors", safetensors(MODEL_META, tensors))
        with self.assertRaisesRegex(ValueError, r"blocks\.0\.attn\.0\.w_q: .*head size"):
            read_boltz.read(path)


class Detection(Files):
    def test_length_bytes_that_look_like_json_stay_safetensors(self):
        # Header lengths 0x7b and 0x7b20 make a file start with "{" or " {"; it is still safetensors
        # (format.rs `is_exact_json`, tested the same way in crates/core/tests/format.rs).
        for length, first in ((0x7B, b"{"), (0x7B20, b" {")):
            text = json.dumps({"t": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})
            data = st_pack(None, struct.pack("<2d", 1.5, -2.0), text=text.ljust(length))
            self.assertTrue(data.startswith(first))
            self.assertFalse(read_boltz._is_exact_json(data))
            _, tensors = read_boltz._decode(data)
            self.assertEqual(tensors["t"], ([2], [1.5, -2.0]))


class SafetensorsContainer(Files):
    """safetensors 0.8.0 read_metadata / Metadata::validate, and format.rs decode."""

    def variant(self, mutate, tensors=None, dtype="F64"):
        header, body = st_layout(model_tensors() if tensors is None else tensors, dtype)
        header["__metadata__"] = dict(MODEL_META)
        tail, text = b"", None
        out = mutate(header, body)
        if out is not None:
            header, body, tail, text = out
        return st_pack(header, body, tail, text)

    def test_malformed(self):
        W1, B1, B2 = "blocks.0.ffn.w1", "blocks.0.ffn.b1", "blocks.0.ffn.b2"
        last = max(model_tensors())  # the last tensor by offset (offsets follow name order)

        def set_(name, key, value):
            def m(h, b):
                h[name][key] = value
            return m

        def text_with(name, placeholder_value):
            def m(h, b):
                h[name]["extra"] = "@@"
                return h, b, b"", json.dumps(h).replace('"@@"', placeholder_value)
            return m

        def shift_start(h, b):
            h["blocks.0.ffn.w2"]["data_offsets"][0] -= 8
        def gap(h, b):
            h[last]["data_offsets"] = [x + 8 for x in h[last]["data_offsets"]]
            return h, b + bytes(8), b"", None
        def reverse(h, b):
            h[last]["data_offsets"].reverse()
        def short(h, b):
            return h, b[:-8], b"", None
        def trailing(h, b):
            return h, b, bytes(8), None
        def dup_meta(h, b):
            return h, b, b"", '{"__metadata__": {}, ' + json.dumps(h)[1:]
        def dup_field(h, b):
            return h, b, b"", json.dumps(h).replace(f'"{W1}": {{', f'"{W1}": {{"dtype": "F64", ', 1)
        def meta_number(h, b):
            h["__metadata__"]["dim"] = 2
        def drop_offsets(h, b):
            del h[W1]["data_offsets"]
        def as_i64(h, b):  # same byte size as F64, so only the dtype is wrong
            h[W1]["dtype"] = "I64"

        nan = model_tensors()
        nan[W1] = ([3, 2], [1, 2, math.nan, 4, 5, 6])
        inf = model_tensors()
        inf[B2] = ([2], [0.5, math.inf])
        n = 0
        cases = [
            ("too short", b"\x01\x02", ["header too small"]),
            ("header past the end", struct.pack("<Q", 1000) + b"{}", ["invalid header length"]),
            ("header too large", struct.pack("<Q", 200_000_000) + b"{}", ["header too large"]),
            ("header not utf8", struct.pack("<Q", 3) + b"{\xff}", ["invalid UTF-8"]),
            ("header not json", struct.pack("<Q", 5) + b"{oops", ["safetensors header"]),
            ("header an array", struct.pack("<Q", 2) + b"[]", ["expected a JSON object"]),
            ("unknown dtype", self.variant(set_(W1, "dtype", "F128")), [W1, "unknown dtype"]),
            ("lowercase dtype", self.variant(set_(W1, "dtype", "f64")), [W1, "unknown dtype"]),
            ("unsupported dtype", self.variant(as_i64), [W1, "not supported"]),
            ("shape vs data length", self.variant(set_(W1, "shape", [3, 3])), [W1, "needs 9 values", "hold 48 bytes"]),
            ("overlapping offsets", self.variant(shift_start), ["blocks.0.ffn.w2", "overlaps"]),
            ("gap between tensors", self.variant(gap), [last, "gap"]),
            ("reversed offsets", self.variant(reverse), [last, "ends before it starts"]),
            ("offsets past the file", self.variant(short), [last, "past the end"]),
            ("trailing bytes", self.variant(trailing), ["not covered"]),
            ("NaN value", self.variant(lambda h, b: None, nan), [W1 + "[2]", "non-finite"]),
            ("inf value f32", self.variant(lambda h, b: None, inf, "F32"), [B2 + "[1]", "non-finite"]),
            ("negative shape", self.variant(set_(W1, "shape", [-3, 2])), [W1, "shape"]),
            ("float shape", self.variant(set_(W1, "shape", [3.0, 2])), [W1, "shape"]),
            ("shape not a list", self.variant(set_(W1, "shape", 6)), [W1, "shape"]),
            ("three offsets", self.variant(set_(W1, "data_offsets", [0, 8, 16])), [W1, "data_offsets"]),
            ("missing offsets", self.variant(drop_offsets), [W1, "missing field `data_offsets`"]),
            ("dtype null", self.variant(set_(W1, "dtype", None)), [W1, "dtype"]),
            ("info not an object", self.variant(lambda h, b: h.update({W1: 5})), [W1, "tensor info"]),
            ("duplicate info field", self.variant(dup_field), [W1, "duplicate field `dtype`"]),
            ("duplicate __metadata__", self.variant(dup_meta), ["duplicate field `__metadata__`"]),
            ("metadata not a string", self.variant(meta_number), ['"dim"', "not a string"]),
            ("element count overflow", self.variant(set_(W1, "shape", [2**40, 2**40, 0])), [W1, "overflows"]),
            ("misaligned F4", self.variant(set_(B1, "dtype", "F4")), [B1, "whole bytes"]),
            ("nested too deeply", self.variant(set_(W1, "extra", nested(200))), ["nested too deeply"]),
            ("number out of range", self.variant(text_with(W1, "1e400")), ["out of range"]),
            ("NaN literal", self.variant(text_with(W1, "NaN")), ["NaN"]),
            ("lone surrogate", self.variant(set_(W1, "extra", "\ud800")), ["surrogate"]),
        ]
        for label, data, expected in cases:
            n += self.assertRefused(label, data, expected)
        self.assertGreaterEqual(n, 30)


class ExactJson(Files):
    """format.rs decode (exact branch) and ExactFloat::parse, with the loader's exponent bounds."""

    def variant(self, mutate):
        doc = exact_doc(MODEL_META, model_tensors())
        out = mutate(doc)
        return out if isinstance(out, bytes) else json.dumps(doc).encode()

    def test_malformed(self):
        W1 = "blocks.0.ffn.w1"

        def value(v):
            def m(doc):
                doc["tensors"][W1]["values"][1] = v
            return m

        def tensor(key, v):
            def m(doc):
                if v is None:
                    del doc["tensors"][W1][key]
                else:
                    doc["tensors"][W1][key] = v
            return m

        def raw(old, new):
            return lambda doc: json.dumps(doc).replace(old, new, 1).encode()

        cases = [
            ("wrong format", lambda d: d.update(format="boltzformer-exact/2"), ['"format"']),
            ("missing tensors", lambda d: d.pop("tensors"), ['missing "tensors"']),
            ("metadata not a string", lambda d: d["metadata"].update(dim=2), ['"dim"', "not a string"]),
            ("metadata not an object", lambda d: d.update(metadata=[]), ['missing metadata key "format"']),
            ("missing shape", tensor("shape", None), [W1, "missing shape"]),
            ("negative shape", tensor("shape", [-3, 2]), [W1, "non-negative"]),
            ("minus zero shape", raw('"shape": [3, 2]', '"shape": [3, -0]'), ["non-negative"]),
            ("float shape", tensor("shape", [3, 2.0]), [W1, "non-negative"]),
            ("missing values", tensor("values", None), [W1, "missing values"]),
            ("values count", lambda d: d["tensors"][W1]["values"].pop(), [W1 + ": shape [3, 2] needs 6 values, got 5"]),
            ("value not a string", value(1), [W1 + "[1]", "hex-float strings"]),
            ("exponent beyond i64", value("0x1p9223372036854775808"), [W1 + "[1]", "64-bit"]),
            ("exponent beyond the loader", value("0x1p999999999999"), [W1 + "[1]", "out of range"]),
            ("tiny beyond the loader", value("0x3p-2147483651"), [W1 + "[1]", "out of range"]),
            ("NaN literal", raw('"format"', '"x": NaN, "format"'), ["NaN"]),
            ("number out of range", raw('"format"', '"x": -1e400, "format"'), ["out of range"]),
            ("invalid UTF-8", lambda d: json.dumps(d).encode().replace(b'"test"', b'"te\xffst"'), ["invalid UTF-8"]),
            ("lone surrogate", lambda d: d["metadata"].update(x="\udc00"), ["surrogate"]),
            ("nested too deeply", lambda d: d.update(x=nested(128)), ["nested too deeply"]),
            ("trailing data", lambda d: json.dumps(d).encode() + b" {}", ["exact JSON"]),
        ]
        # ExactFloat::parse's syntax, one variant per way to get it wrong (mantissa digits, prefix,
        # exponent, signs, separators Python's int() would take).
        for s in ["1.5", "", "0x", "0xp3", "0x1gp1", "0x12", "0x12pz", "0x1p", "0x1p+", "--0x1p1", "+-0x1p1", "0x0x1p1",
                  "0x1p1_0", "0x1_0p1", "0x1p 1", " 0x1p1", "0x1p1 ", "0x1.8p1", "0x1p1p1", "0x1p\u0663", "0x\u0661p1", "inf"]:
            cases.append((f"exact float {s!r}", value(s), [W1 + "[1]", "invalid exact float"]))
        n = 0
        for label, mutate, expected in cases:
            n += self.assertRefused(label, self.variant(mutate), expected, ".exact.json")
        self.assertGreaterEqual(n, 40)

    def test_absurd_exponent_is_refused_fast(self):
        for s in ("0x1p999999999999", "-0x1p-999999999999", "0x1p9223372036854775807", "0x1p" + "9" * 100_000):
            start = time.perf_counter()
            with self.assertRaises(ValueError):
                read_boltz.exact(s)
            self.assertLess(time.perf_counter() - start, 0.2, s[:30])
        doc = exact_doc(MODEL_META, model_tensors())
        doc["tensors"]["blocks.0.ffn.b1"]["values"] = ["0x1p999999999999"] * 3
        path = self.write("huge.exact.json", json.dumps(doc).encode())
        start = time.perf_counter()
        with self.assertRaisesRegex(ValueError, r"blocks\.0\.ffn\.b1\[0\]"):
            read_boltz.read(path)
        self.assertLess(time.perf_counter() - start, 0.5)

    def test_exact_bounds(self):
        """The bounds are the widest Rust element type's (BigReal, MPFR): exponent in 1-2^30..=2^30-1, at most
        2^24 significant mantissa bits; trailing zero digits do not count."""
        self.assertEqual(read_boltz.exact("0x1p-1074"), Fraction(1, 2**1074))
        self.assertEqual(read_boltz.exact("0x8p-3"), 1)
        for s in ("0x1p2147483647", "0x1p-2147483650"):  # leading bit at 2^2147483647 / 2^-2147483650
            with self.assertRaisesRegex(ValueError, "out of range"):
                read_boltz.exact(s)
        # MPFR's default exponent range: 0.1 * 2^E for E in 1-2^30..=2^30-1.
        self.assertEqual(read_boltz.exact("0x1p1073741822"), 2**1073741822)
        self.assertEqual(read_boltz.exact("0x1p-1073741824"), Fraction(1, 2**1073741824))
        for s in ("0x1p1073741823", "0x1p-1073741825"):
            with self.assertRaisesRegex(ValueError, "out of range"):
                read_boltz.exact(s)
        self.assertEqual(read_boltz.exact("0x" + "f" * (1 << 22) + "p-16777216"), 1 - Fraction(1, 2 ** (1 << 24)))
        self.assertEqual(read_boltz.exact("0x1" + "0" * 5_000_000 + "p0"), 2**20_000_000)
        with self.assertRaisesRegex(ValueError, "significant bits"):
            read_boltz.exact("0x" + "f" * (1 << 22) + "1p0")
        with self.assertRaises(ValueError):
            read_boltz.exact(5)


class ModelAndDatasetStructure(Files):
    """format.rs model_from_dict + Model::new, dataset_from_dict + Dataset::new and Batch::new. Each
    variant is written in both encodings: the structure checks do not depend on the encoding."""

    def refuse_both(self, label, meta, tensors, expected):
        n = self.assertRefused(label + " st", safetensors(meta, tensors), expected)
        return n + self.assertRefused(label + " exact", exact_json(meta, tensors), expected, ".exact.json")

    def test_model(self):
        P, F = "blocks.0.attn.0", "blocks.0.ffn"
        z = Fraction(0)

        def meta(**kw):
            m = dict(MODEL_META, **{k.replace("__", "."): v for k, v in kw.items()})
            return {k: v for k, v in m.items() if v is not None}

        def tensors(drop=(), **put):
            t = model_tensors()
            for k in drop:
                del t[k]
            for k, shape in put.items():
                k = k.replace("__", ".")
                t[k] = (shape, [z] * math.prod(shape))
            return t

        no_heads = tensors(drop=[k for k in model_tensors() if k.startswith(P)])
        zero_hidden = tensors(**{F + ".w1": [0, 2], F + ".b1": [0], F + ".w2": [2, 0]})
        cases = [
            ("missing format", meta(format=None), tensors(), ['missing metadata key "format"']),
            ("wrong format", meta(format="boltzformer/2"), tensors(), ["not a boltzformer/1 file"]),
            ("missing kind", meta(kind=None), tensors(), ['missing metadata key "kind"']),
            ("unknown kind", meta(kind="weights"), tensors(), ['"kind" = "weights"']),
            ("dim not an integer", meta(dim="2.0"), tensors(), ['"dim" = "2.0"']),
            ("dim negative", meta(dim="-2"), tensors(), ['"dim"']),
            ("dim with space", meta(dim=" 2"), tensors(), ['"dim"']),
            ("dim beyond usize", meta(dim="18446744073709551616"), tensors(), ['"dim"']),
            ("blocks not an integer", meta(blocks="one"), tensors(), ['"blocks"']),
            ("unknown attention kind", meta(blocks__0__attn__kind="relu"), tensors(), ["blocks.0.attn.kind", '"relu"']),
            ("causal not a bool", meta(blocks__0__attn__causal="True"), tensors(), ["blocks.0.attn.causal"]),
            ("heads missing", meta(blocks__0__attn__heads=None), tensors(), ["blocks.0.attn.heads"]),
            ("zero heads", meta(blocks__0__attn__heads="0"), no_heads, ["blocks.0.attn", "at least one head"]),
            ("more heads than tensors", meta(blocks__0__attn__heads="2"), tensors(), ["missing tensor blocks.0.attn.1.w_q"]),
            ("missing weight", meta(), tensors(drop=[P + ".w_v"]), ["missing tensor " + P + ".w_v"]),
            ("dense and factored", meta(), tensors(**{P + ".w_k": [1, 2]}), [P + ".w_k is stored both dense and factored"]),
            ("half a factored weight", meta(), tensors(drop=[P + ".w_k.v"]), [P + ".w_k", "need both"]),
            ("3-D weight", meta(), tensors(**{P + ".w_q": [1, 2, 1]}), [P + ".w_q", "2-D"]),
            ("2-D bias", meta(), tensors(**{F + ".b1": [3, 1]}), [F + ".b1", "1-D"]),
            ("unknown tensor", meta(), tensors(**{"extra": [1]}), ["unknown tensor extra"]),
            ("block beyond blocks", meta(), tensors(**{"blocks.1.ffn.w1": [3, 2]}), ["unknown tensor blocks.1.ffn.w1", "1-block"]),
            ("ffn without b1", meta(), tensors(drop=[F + ".b1"]), ["missing tensor " + F + ".b1"]),
            ("dim zero", meta(dim="0"), tensors(), ["zero-sized token dimension"]),
            ("w_o transposed", meta(), tensors(**{P + ".w_o": [1, 2]}), [P + ".w_o: shape mismatch: expected [2, 1], found [1, 2]"]),
            ("w_k width", meta(), tensors(**{P + ".w_k.v": [3, 1]}), [P + ".w_k: shape mismatch: expected [1, 2]"]),
            ("factor ranks differ", meta(), tensors(**{P + ".w_k.v": [2, 2]}), [P + ".w_k.u / " + P + ".w_k.v", "factor rank"]),
            ("b_q length", meta(), tensors(**{P + ".b_q": [2]}), [P + ".b_q", "expected [1]"]),
            ("w1 width", meta(), tensors(**{F + ".w1": [3, 3]}), [F + ".w1", "expected [3, 2]"]),
            ("w2 shape", meta(), tensors(**{F + ".w2": [3, 2]}), [F + ".w2", "expected [2, 3]"]),
            ("b1 length", meta(), tensors(**{F + ".b1": [2]}), [F + ".b1", "expected [3]"]),
            ("b2 length", meta(), tensors(**{F + ".b2": [3]}), [F + ".b2", "expected [2]"]),
            ("hidden width zero", meta(), zero_hidden, [F + ".w1", "hidden width"]),
        ]
        n = sum(self.refuse_both(*case) for case in cases)
        self.assertGreaterEqual(n, 60)

    def test_dataset(self):
        def spec(**kw):
            return dict(DATASET_META, spec=json.dumps(dict(SPEC, **kw)))

        def raw_spec(text):
            return dict(DATASET_META, spec=text)

        def tensors(**put):
            t = dataset_tensors()
            for k, shape in put.items():
                t[k] = (shape, [Fraction(1)] * math.prod(shape))
            return t

        missing = dict(SPEC)
        del missing["seed"]
        cases = [
            ("inputs 2-D", DATASET_META, tensors(inputs=[4, 2]), ["inputs", "[N, n, d]"]),
            ("targets missing", DATASET_META, {"inputs": dataset_tensors()["inputs"]}, ["missing tensor targets"]),
            ("shapes differ", DATASET_META, tensors(targets=[2, 2, 1]), ["targets: shape mismatch"]),
            ("empty batch", DATASET_META, tensors(inputs=[0, 2, 2], targets=[0, 2, 2]), ["inputs", "empty batch"]),
            ("zero length", DATASET_META, tensors(inputs=[2, 0, 2]), ["inputs", "sequence length"]),
            ("zero dim", DATASET_META, tensors(targets=[2, 2, 0]), ["targets", "token dimension"]),
            ("unknown tensor", DATASET_META, tensors(labels=[2]), ["unknown tensor labels"]),
            ("wrong kind", dict(DATASET_META, kind="data"), dataset_tensors(), ['"kind" = "data"']),
            ("spec not json", raw_spec("{sequences: 2}"), dataset_tensors(), ["metadata spec"]),
            ("spec missing field", raw_spec(json.dumps(missing)), dataset_tensors(), ["metadata spec", "missing field `seed`"]),
            ("spec negative", spec(sequences=-1), dataset_tensors(), ["`sequences`"]),
            ("spec float count", spec(length=2.0), dataset_tensors(), ["`length`"]),
            ("spec classes beyond u32", spec(classes=2**32), dataset_tensors(), ["`classes`"]),
            ("spec r_min out of range", raw_spec(json.dumps(SPEC).replace('"r_min": 1.0', '"r_min": 1e400')), dataset_tensors(), ["`r_min`", "out of range"]),
            ("spec r_max a string", spec(r_max="2"), dataset_tensors(), ["`r_max`"]),
            ("spec duplicate field", raw_spec(json.dumps(SPEC)[:-1] + ', "seed": 8}'), dataset_tensors(), ["duplicate field `seed`"]),
            ("spec unknown vocab kind", spec(vocab_kind="lattice"), dataset_tensors(), ["`vocab_kind`"]),
            ("spec NaN", raw_spec(json.dumps(SPEC).replace("0.3", "NaN")), dataset_tensors(), ["metadata spec", "NaN"]),
            ("spec not an object", raw_spec("7"), dataset_tensors(), ["metadata spec"]),
        ]
        n = sum(self.refuse_both(*case) for case in cases)
        self.assertGreaterEqual(n, 30)


class CommandLine(Files):
    def run_script(self, *args, optimize=False):
        cmd = [sys.executable] + (["-O"] if optimize else []) + [SCRIPT] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def test_malformed_file_under_python_O(self):
        header, body = st_layout(model_tensors())
        header["__metadata__"] = MODEL_META
        header["blocks.0.ffn.w1"]["shape"] = [3, 4]
        path = self.write("bad.safetensors", st_pack(header, body))
        for optimize in (True, False):
            r = self.run_script(path, optimize=optimize)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertTrue(r.stderr.startswith("error: " + path + ": blocks.0.ffn.w1: "), r.stderr)
            self.assertNotIn("Traceback", r.stderr)
            self.assertEqual(r.stdout, "")

    def test_missing_file_and_usage(self):
        r = self.run_script(os.path.join(self.dir, "absent.safetensors"), optimize=True)
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith("error: "), r.stderr)
        self.assertIn("absent.safetensors", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        r = self.run_script()
        self.assertEqual(r.returncode, 2)
        self.assertNotIn("Traceback", r.stderr)

    def test_valid_file_prints_json(self):
        path = self.write("m.exact.json", exact_json(MODEL_META, model_tensors()))
        r = self.run_script(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["metadata"], MODEL_META)
        w1 = out["tensors"]["blocks.0.ffn.w1"]
        self.assertEqual(w1, {"shape": [3, 2], "first": "1", "sum": 21.0})
        self.assertEqual(out["tensors"]["blocks.0.attn.0.b_q"]["first"], "1/8")

    def test_values_beyond_f64_print(self):
        tensors = model_tensors()
        tensors["blocks.0.ffn.b2"] = ([2], [Fraction(2**100_000), Fraction(1, 2**100_000)])
        r = self.run_script(self.write("big.exact.json", exact_json(MODEL_META, tensors)))
        self.assertEqual(r.returncode, 0, r.stderr)
        b2 = json.loads(r.stdout)["tensors"]["blocks.0.ffn.b2"]
        self.assertEqual(b2["first"], "0x1p+100000")
        self.assertTrue(b2["sum"].startswith("0x1"), b2["sum"])


def boltz_binary():
    for path in (os.environ.get("BOLTZ_BIN"), os.path.join(ROOT, "target", "release", "boltz"), os.path.join(ROOT, "target", "debug", "boltz")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


class RoundTrip(unittest.TestCase):
    @unittest.skipIf(boltz_binary() is None, "no boltz binary: build it (cargo build --release) or set BOLTZ_BIN")
    def test_boltz_export_reads_back(self):
        with tempfile.TemporaryDirectory() as out:
            cmd = [boltz_binary(), "memorize", "--sequences", "3", "--length", "2", "--dim", "2", "--vocab", "4", "--no-bisect", "--export", out]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=out)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            meta, exact = read_boltz.read(os.path.join(out, "model.exact.json"))
            self.assertEqual((meta["format"], meta["kind"]), ("boltzformer/1", "model"))
            dim = int(meta["dim"])
            for name, (shape, values) in exact.items():
                self.assertEqual(len(values), math.prod(shape), name)
                self.assertTrue(all(isinstance(v, Fraction) for v in values), name)
                if name.endswith((".w_q", ".w_k", ".w_v", ".w1")):
                    self.assertEqual(shape[1], dim, name)
                if name.endswith((".w_o", ".w2")) or name.endswith(".b2"):
                    self.assertEqual(shape[0], dim, name)
            st_path = os.path.join(out, "model.safetensors")
            if os.path.exists(st_path):  # written only when the model fits f64 exactly
                meta64, st = read_boltz.read(st_path)
                self.assertEqual(meta64, meta)
                self.assertEqual({k: s for k, (s, _) in st.items()}, {k: s for k, (s, _) in exact.items()})
                for k, (_, values) in st.items():  # the f64 copy is the exact model rounded to nearest
                    self.assertEqual(values, [float(x) for x in exact[k][1]], k)
            dmeta, data = read_boltz.read(os.path.join(out, "dataset.safetensors"))
            self.assertEqual(dmeta["kind"], "dataset")
            spec = json.loads(dmeta["spec"])
            self.assertEqual((spec["sequences"], spec["length"], spec["dim"]), (3, 2, 2))
            for name in ("inputs", "targets"):
                self.assertEqual(data[name][0], [spec["sequences"], spec["length"], spec["dim"]], name)
            self.assertEqual(dim, spec["dim"])


if __name__ == "__main__":
    unittest.main()
