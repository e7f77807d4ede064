#!/usr/bin/env python3
"""Read boltzformer model/dataset files with the Python standard library only (no numpy needed).

    python3 scripts/read_boltz.py FILE          # prints metadata and tensor shapes as JSON

Both encodings are supported: safetensors (F32/F64, little-endian) and the exact JSON encoding, whose
values are hexadecimal floats with an integer mantissa (e.g. "-0x1b3p-12"), read exactly as Fractions.

`read` validates what the Rust loader (`boltz_core::format::load_model` / `load_dataset`, in
`crates/core/src/format.rs`) validates: the safetensors container (as the `safetensors` 0.8.0 crate checks
it), the exact JSON document (as `serde_json` 1.0.154 parses it), every value, and the model or dataset
structure the metadata announces. A malformed file raises `ValueError` whose message starts with the
file's path and names the tensor where one is at fault; from the command line that is `error: <message>`
on stderr and exit status 2.
"""
import json
import math
import os
import re
import struct
import sys
from fractions import Fraction

FORMAT = "boltzformer/1"
EXACT_FORMAT = "boltzformer-exact/1"

# Every bound below is one the Rust loader has; each names where.
U64_MAX = 2**64 - 1  # usize (64-bit targets): shapes, offsets, metadata integers
I64_MIN, I64_MAX = -(2**63), 2**63 - 1  # ExactFloat::parse reads the exponent as an i64 (crates/core/src/exact.rs)
# The widest element type the loader reads exact values into is BigReal (crates/bigfloat/src/real.rs, GNU
# MPFR): `from_exact` takes the value's own mantissa length, clamped to MAX_BITS = 1 << 24, and a value
# 0.1xxx * 2^E is finite only for E in MPFR's default exponent range 1-2^30..=2^30-1 (E is the binary
# exponent of the leading bit plus one: `lead` below). Outside these a value cannot be held exactly by any
# loader element type (with Rounding::Forbid the loader refuses it as inexact), so it is refused here —
# before any power of two is computed, which is also what keeps `0x1p999999999999` from hanging.
EXACT_MAX_BITS = 1 << 24
EXACT_EXP_MIN, EXACT_EXP_MAX = 1 - 2**30, 2**30 - 1
MAX_HEADER_SIZE = 100_000_000  # safetensors 0.8.0, tensor.rs MAX_HEADER_SIZE
MAX_JSON_DEPTH = 127  # serde_json 1.0.154 starts remaining_depth at 128 and fails when it reaches 0

# safetensors 0.8.0 `Dtype` variants with their sizes in bits (`Dtype::bitsize`).
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
    "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
_STRUCT = {"F32": "f", "F64": "d"}

_ASCII_WS = b" \t\n\x0c\r"  # Rust's u8::is_ascii_whitespace, used to detect the encoding
_UINT = re.compile(r"[0-9]+")
_USIZE = re.compile(r"\+?[0-9]+")  # Rust's usize::from_str
_I64 = re.compile(r"[+-]?[0-9]+")  # Rust's i64::from_str
_HEX = re.compile(r"[0-9a-fA-F]+")
_P = re.compile(r"[pP]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ATTN_KIND_KEY = re.compile(r"blocks\.(0|[1-9][0-9]*)\.attn\.kind")
_FFN_W1 = re.compile(r"blocks\.(0|[1-9][0-9]*)\.ffn\.w1(?:\.[uv])?")


def _clip(s, n=60):
    """repr of s, shortened for messages (a value may be megabytes long)."""
    return repr(s) if len(s) <= n else repr(s[: n - 12]) + "…" + repr(s[-8:])


def _digits(text):
    """The value of an ASCII decimal literal with an optional '+' (int() alone refuses over 4300 digits)."""
    return int(text.lstrip("+").lstrip("0") or "0")


def _fits_u64(text):
    digits = text.lstrip("+").lstrip("0")
    return len(digits) < 20 or (len(digits) == 20 and int(digits) <= U64_MAX)


# ---------------------------------------------------------------------------------------------------
# Exact hexadecimal floats


def _parse_exact(s):
    """The exact value of `s`, checked as `ExactFloat::parse` checks it, and bounded (see above)."""

    def bad(why):
        return ValueError(f"invalid exact float {_clip(s)}: {why}")

    negative = s[:1] == "-"
    rest = s[1:] if s[:1] in ("-", "+") else s
    if rest[:2] not in ("0x", "0X"):
        raise bad("expected a 0x prefix")
    rest = rest[2:]
    p = _P.search(rest)
    if p is None:
        raise bad("expected a binary exponent 'p<e>'")
    digits, exp = rest[: p.start()], rest[p.end() :]
    if not digits:
        raise bad("no mantissa digits")
    if not _I64.fullmatch(exp):
        raise bad("exponent is not an integer")
    mag = exp.lstrip("+-").lstrip("0") or "0"  # (int() refuses over 4300 digits, leading zeros included)
    exponent = None if len(mag) > 19 else -int(mag) if exp[0] == "-" else int(mag)
    if exponent is None or not I64_MIN <= exponent <= I64_MAX:
        raise bad("exponent is not a 64-bit integer")
    if not _HEX.fullmatch(digits):
        raise bad("mantissa is not hexadecimal")
    mantissa = int(digits, 16)
    if mantissa == 0:
        return Fraction(0)
    zeros = (mantissa & -mantissa).bit_length() - 1  # canonical form: odd mantissa, as ExactFloat keeps it
    mantissa >>= zeros
    exponent += zeros
    bits = mantissa.bit_length()
    if bits > EXACT_MAX_BITS:
        raise bad(f"mantissa has {bits} significant bits; the loader holds at most {EXACT_MAX_BITS} (2^24)")
    lead = exponent + bits
    if not EXACT_EXP_MIN <= lead <= EXACT_EXP_MAX:
        raise bad(f"magnitude 2^{lead} is out of range; the loader holds binary exponents 1-2^30..2^30-1")
    value = Fraction(mantissa << exponent) if exponent >= 0 else Fraction(mantissa, 1 << -exponent)
    return -value if negative else value


def exact(s):
    """Exact value of a boltzformer hex float string: [+-]0x<hex>p<exp> = ±int(hex,16)·2^exp.

    Raises ValueError for anything the Rust loader refuses (bad syntax, an exponent outside i64, or a
    value outside the range the widest loader element type holds)."""
    if not isinstance(s, str):
        raise ValueError(f"invalid exact float {s!r}: not a string")
    return _parse_exact(s)


def _hexfloat(x):
    """A dyadic Fraction in the exact JSON notation (for values too long to print in decimal)."""
    x = Fraction(x)
    if x == 0:
        return "0x0p+0"
    m, e = abs(x.numerator), -(x.denominator.bit_length() - 1)
    zeros = (m & -m).bit_length() - 1
    return "%s0x%xp%+d" % ("-" if x < 0 else "", m >> zeros, e + zeros)


# ---------------------------------------------------------------------------------------------------
# JSON as serde_json reads it


class _Num:
    """A JSON number kept as its literal: serde_json decides from the literal whether it is a u64."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def u64(self):
        """The value if serde_json reads it as a u64 (non-negative integer literal ≤ 2^64-1), else None."""
        t = self.text
        return int(t) if _UINT.fullmatch(t) and _fits_u64(t) else None

    def f64(self):
        v = float(self.text)
        if math.isinf(v):
            raise ValueError(f"number {_clip(self.text)} is out of range")
        return v

    def __repr__(self):
        return self.text


class _Obj(list):
    """A JSON object as its (key, value) pairs in file order, duplicates kept."""

    def last(self):
        """As serde_json's map (and HashMap) keeps it: the last of duplicate keys wins."""
        return dict(self)


def _is_array(v):
    return type(v) is list


def _json(text, what, strict=True):
    """Parses JSON like serde_json: NaN/Infinity are not JSON and (strict) numbers beyond f64 are refused."""

    def number(s):
        n = _Num(s)
        if strict:
            n.f64()
        return n

    def constant(s):
        raise ValueError(f"{s} is not valid JSON")

    try:
        return json.loads(text, object_pairs_hook=_Obj, parse_int=number, parse_float=number, parse_constant=constant)
    except RecursionError:
        raise ValueError(f"{what}: nested too deeply (serde_json allows {MAX_JSON_DEPTH} levels)") from None
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


def _check_tree(doc, what):
    """serde_json's recursion limit, and no lone surrogates (serde_json refuses them in strings)."""
    stack = [(doc, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"{what}: nested too deeply (serde_json allows {MAX_JSON_DEPTH} levels)")
            if isinstance(v, _Obj):
                for k, x in v:
                    if _SURROGATE.search(k):
                        raise ValueError(f"{what}: lone surrogate in the key {_clip(k)}")
                    stack.append((x, depth + 1))
            else:
                stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, str) and _SURROGATE.search(v):
            raise ValueError(f"{what}: lone surrogate in the string {_clip(v)}")


def _text(data, what):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what}: invalid UTF-8 at byte {e.start}") from None


# ---------------------------------------------------------------------------------------------------
# Decoding (format.rs `decode`)


def _count(shape):
    """Elements of `shape`, or None when beyond 2^64-1 (stops early: a shape may have many entries)."""
    if 0 in shape:
        return 0
    total = 1
    for n in shape:
        total *= n
        if total > U64_MAX:
            return None
    return total


def _decode_exact(data):
    doc = _json(_text(data, "exact JSON"), "exact JSON")
    _check_tree(doc, "exact JSON")
    top = doc.last() if isinstance(doc, _Obj) else {}
    if top.get("format") != EXACT_FORMAT:
        raise ValueError(f'not a {EXACT_FORMAT} file (missing or wrong "format")')
    metadata = {}
    m = top.get("metadata")
    if isinstance(m, _Obj):  # format.rs ignores a "metadata" that is not an object
        for k, v in sorted(m.last().items()):
            if not isinstance(v, str):
                raise ValueError(f"metadata {json.dumps(k)} is not a string")
            metadata[k] = v
    t = top.get("tensors")
    if not isinstance(t, _Obj):
        raise ValueError('missing "tensors"')
    tensors = {}
    for name, info in sorted(t.last().items()):  # serde_json's Map is ordered by key
        info = info.last() if isinstance(info, _Obj) else {}
        raw_shape = info.get("shape")
        if not _is_array(raw_shape):
            raise ValueError(f"{name}: missing shape")
        shape = [x.u64() if isinstance(x, _Num) else None for x in raw_shape]
        if None in shape:
            raise ValueError(f"{name}: shape entries must be non-negative integers, got {raw_shape}")
        raw = info.get("values")
        if not _is_array(raw):
            raise ValueError(f"{name}: missing values")
        need = _count(shape)
        if need != len(raw):
            need = "more than 2^64-1" if need is None else need
            raise ValueError(f"{name}: shape {shape} needs {need} values, got {len(raw)}")
        values = []
        for i, s in enumerate(raw):
            if not isinstance(s, str):
                raise ValueError(f"{name}[{i}]: values must be hex-float strings, got {s!r}")
            try:
                values.append(_parse_exact(s))
            except ValueError as e:
                raise ValueError(f"{name}[{i}]: {e}") from None
        tensors[name] = (shape, values)
    return metadata, tensors


def _u64_list(v, name, field, length=None):
    if not _is_array(v) or (length is not None and len(v) != length):
        want = f"an array of {length}" if length is not None else "an array"
        raise ValueError(f"{name}: {field} must be {want} non-negative integers, got {v!r}")
    out = [x.u64() if isinstance(x, _Num) else None for x in v]
    if None in out:
        raise ValueError(f"{name}: {field} entries must be non-negative integers below 2^64, got {v!r}")
    return out


def _dtype(v, name):
    if isinstance(v, _Obj) and len(v) == 1:  # serde's map form of a unit variant: {"F64": null}
        (k, unit), = v
        if k in DTYPE_BITS and unit is not None:
            raise ValueError(f"{name}: dtype {{{json.dumps(k)}: ...}} must map to null")
        v = k
    if not isinstance(v, str):
        raise ValueError(f"{name}: dtype must be a string, got {v!r}")
    if v not in DTYPE_BITS:
        raise ValueError(f"{name}: unknown dtype {json.dumps(v)} (safetensors knows {', '.join(DTYPE_BITS)})")
    return v


_INFO_FIELDS = ("dtype", "shape", "data_offsets")


def _tensor_info(name, v):
    """safetensors' `TensorInfo` as serde derives it: a map (unknown keys ignored) or a 3-element array."""
    convert = {
        "dtype": lambda x: _dtype(x, name),
        "shape": lambda x: _u64_list(x, name, "shape"),
        "data_offsets": lambda x: _u64_list(x, name, "data_offsets", 2),
    }
    got = {}
    if isinstance(v, _Obj):
        for k, x in v:
            if k in convert:
                if k in got:
                    raise ValueError(f"{name}: duplicate field `{k}`")
                got[k] = convert[k](x)
        for k in _INFO_FIELDS:
            if k not in got:
                raise ValueError(f"{name}: missing field `{k}`")
    elif _is_array(v):
        for k, x in zip(_INFO_FIELDS, v):
            got[k] = convert[k](x)
        if len(v) != 3:
            raise ValueError(f"{name}: tensor info has {len(v)} elements, expected 3")
    else:
        raise ValueError(f"{name}: tensor info must be an object, got {v!r}")
    return got["dtype"], got["shape"], tuple(got["data_offsets"])


def _decode_safetensors(data):
    # safetensors 0.8.0 SafeTensors::read_metadata
    if len(data) < 8:
        raise ValueError(f"safetensors: header too small (the file has {len(data)} bytes, the header length alone takes 8)")
    (n,) = struct.unpack_from("<Q", data)
    if n > MAX_HEADER_SIZE:
        raise ValueError(f"safetensors: header too large ({n} bytes; at most {MAX_HEADER_SIZE})")
    if 8 + n > len(data):
        raise ValueError(f"safetensors: invalid header length: {n} bytes declared, {len(data) - 8} present after the length")
    doc = _json(_text(data[8 : 8 + n], "safetensors header"), "safetensors header")
    _check_tree(doc, "safetensors header")
    if not isinstance(doc, _Obj):
        raise ValueError(f"safetensors header: expected a JSON object, got {type(doc).__name__}")
    metadata, seen = None, False
    for k, v in doc:  # "__metadata__" is read while the map is walked, before any tensor info
        if k != "__metadata__":
            continue
        if seen:
            raise ValueError("safetensors header: duplicate field `__metadata__`")
        seen = True
        if v is None:
            metadata = None
        elif isinstance(v, _Obj):
            metadata = {}
            for mk, mv in v:
                if not isinstance(mv, str):
                    raise ValueError(f"safetensors header: __metadata__ {json.dumps(mk)} is not a string")
                metadata[mk] = mv
        else:
            raise ValueError(f"safetensors header: __metadata__ must be an object of strings, got {v!r}")
    infos = {}
    for k, v in doc:  # every entry is checked, also one that a later duplicate name replaces
        if k != "__metadata__":
            infos[k] = _tensor_info(k, v)
    # safetensors Metadata::validate: sorted by data_offsets, contiguous from 0, sizes matching shapes.
    start = 0
    ordered = sorted(infos.items(), key=lambda kv: kv[1][2])
    for name, (dtype, shape, (s, e)) in ordered:
        if s != start or e < s:
            why = "ends before it starts" if e < s else "overlaps the previous tensor" if s < start else "leaves a gap after the previous tensor"
            raise ValueError(f"{name}: invalid data_offsets [{s}, {e}]: {why} (tensors must tile the data from byte 0, expected a start at {start})")
        start = e
        count = 1
        for dim in shape:
            count *= dim
            if count > U64_MAX:
                raise ValueError(f"{name}: shape {shape} overflows the element count")
        nbits = count * DTYPE_BITS[dtype]
        if nbits > U64_MAX:
            raise ValueError(f"{name}: shape {shape} of {dtype} overflows the byte count")
        if nbits % 8:
            raise ValueError(f"{name}: {count} values of {dtype} do not fill whole bytes")
        if e - s != nbits // 8:
            raise ValueError(f"{name}: shape {shape} needs {count} values ({nbits // 8} bytes of {dtype}), data_offsets [{s}, {e}] hold {e - s} bytes")
    have = len(data) - 8 - n
    if start != have:
        if start > have:
            last = ordered[-1][0]
            raise ValueError(f"{last}: data_offsets end at byte {start}, past the end of the data ({have} bytes)")
        raise ValueError(f"safetensors: incomplete metadata: {have - start} bytes after the last tensor's data are not covered by any tensor")
    # format.rs decode: only F32/F64, every value finite.
    tensors = {}
    for name, (dtype, shape, (s, e)) in sorted(infos.items()):
        if dtype not in _STRUCT:
            raise ValueError(f"{name}: dtype {dtype} is not supported (use F32 or F64)")
        count = (e - s) * 8 // DTYPE_BITS[dtype]
        values = list(struct.unpack_from("<%d%s" % (count, _STRUCT[dtype]), data, 8 + n + s))
        if not all(map(math.isfinite, values)):
            i = next(i for i, x in enumerate(values) if not math.isfinite(x))
            raise ValueError(f"{name}[{i}]: non-finite value {values[i]} (NaN or inf)")
        tensors[name] = (shape, values)
    return metadata or {}, tensors


def _is_exact_json(data):
    """format.rs `is_exact_json`: safetensors when byte 8 is `{` and the 8-byte little-endian header length
    fits in the file (whatever the first bytes look like); otherwise exact JSON when the first
    non-whitespace byte is `{`."""
    if len(data) >= 9 and data[8:9] == b"{":
        (n,) = struct.unpack_from("<Q", data, 0)
        if n + 8 <= len(data):
            return False
    return data.lstrip(_ASCII_WS)[:1] == b"{"


def _decode(data):
    if _is_exact_json(data):
        return _decode_exact(data)
    return _decode_safetensors(data)


# ---------------------------------------------------------------------------------------------------
# Structure (format.rs `model_from_dict` + `Model::new`, `dataset_from_dict` + `Dataset::new`)


def _meta(meta, key):
    if key not in meta:
        raise ValueError(f"missing metadata key {json.dumps(key)}")
    return meta[key]


def _meta_usize(meta, key):
    v = _meta(meta, key)
    if not (_USIZE.fullmatch(v) and _fits_u64(v)):
        raise ValueError(f"metadata {json.dumps(key)} = {json.dumps(v)} is not valid (expected a non-negative integer)")
    return _digits(v)


def _meta_bool(meta, key):
    v = _meta(meta, key)
    if v not in ("true", "false"):
        raise ValueError(f"metadata {json.dumps(key)} = {json.dumps(v)} is not valid (expected true or false)")
    return v == "true"


def _check_model(meta, shapes):
    dim = _meta_usize(meta, "dim")
    num_blocks = _meta_usize(meta, "blocks")
    left = dict(shapes)

    def take_matrix(name):
        shape = left.pop(name, None)
        if shape is not None and len(shape) != 2:
            raise ValueError(f"{name}: shape mismatch: expected a 2-D tensor, found {shape}")
        return shape

    def take_vector(name):
        shape = left.pop(name, None)
        if shape is not None and len(shape) != 1:
            raise ValueError(f"{name}: shape mismatch: expected a 1-D tensor, found {shape}")
        return shape

    def take_weight(name):
        dense, u, v = take_matrix(name), take_matrix(name + ".u"), take_matrix(name + ".v")
        if dense is not None and u is None and v is None:
            return (name, dense, None)
        if dense is None and u is not None and v is not None:
            return (name, u, v)
        if dense is None and u is None and v is None:
            return None
        if dense is not None:
            raise ValueError(f"{name} is stored both dense and factored")
        raise ValueError(f"{name}: factored weights need both {name}.u and {name}.v")

    def require(x, name):
        if x is None:
            raise ValueError(f"missing tensor {name}")
        return x

    # Rust walks b = 0..blocks; a block without an attention kind and without ffn.w1 takes nothing and
    # is valid, so only the blocks that metadata or tensor names mention need a visit.
    visit = set()
    for pattern, keys in ((_ATTN_KIND_KEY, meta), (_FFN_W1, shapes)):
        for k in keys:
            m = pattern.fullmatch(k)
            if m and _fits_u64(m[1]) and int(m[1]) < num_blocks:
                visit.add(int(m[1]))
    blocks = []
    for b in sorted(visit):
        attention = None
        if f"blocks.{b}.attn.kind" in meta:
            kind = meta[f"blocks.{b}.attn.kind"]
            if kind not in ("softmax", "hardmax"):
                raise ValueError(f"metadata blocks.{b}.attn.kind: unknown attention kind {json.dumps(kind)}, expected softmax or hardmax")
            _meta_bool(meta, f"blocks.{b}.attn.causal")
            heads = _meta_usize(meta, f"blocks.{b}.attn.heads")
            attention = []
            for h in range(heads):  # ends at the first missing tensor, so at most len(shapes) rounds
                p = f"blocks.{b}.attn.{h}"
                ws = [require(take_weight(f"{p}.{w}"), f"{p}.{w}") for w in ("w_q", "w_k", "w_v", "w_o")]
                attention.append((p, ws, take_vector(f"{p}.b_q")))
        p = f"blocks.{b}.ffn"
        w1 = take_weight(p + ".w1")
        ffn = None
        if w1 is not None:
            b1 = require(take_vector(p + ".b1"), p + ".b1")
            w2 = require(take_weight(p + ".w2"), p + ".w2")
            b2 = require(take_vector(p + ".b2"), p + ".b2")
            ffn = (p, w1, b1, w2, b2)
        blocks.append((b, attention, ffn))
    if left:
        raise ValueError(f"unknown tensor {min(left)} (not part of a {num_blocks}-block model)")

    # Model::new
    def rows(w):
        return w[1][0]

    def validate(w, r, c):
        name, a, v = w
        found = (a[0], a[1]) if v is None else (a[0], v[0])
        if found != (r, c):
            raise ValueError(f"{name}: shape mismatch: expected [{r}, {c}], found [{found[0]}, {found[1]}]")
        if v is not None and (a[1] != v[1] or a[1] == 0):
            raise ValueError(f"{name}.u / {name}.v: shape mismatch: expected equal factor rank r ≥ 1, found r = {a[1]} and {v[1]}")

    if dim == 0:
        raise ValueError('metadata "dim" = "0": zero-sized token dimension d (d ≥ 1 is needed)')
    for b, attention, ffn in blocks:
        if attention is not None:
            if not attention:
                raise ValueError(f"blocks.{b}.attn: shape mismatch: expected at least one head, found none")
            for p, (w_q, w_k, w_v, w_o), b_q in attention:
                s = rows(w_q)
                if s == 0:
                    raise ValueError(f"{p}.w_q: shape mismatch: expected head size s ≥ 1, found s = 0")
                validate(w_q, s, dim)
                validate(w_k, s, dim)
                validate(w_v, s, dim)
                validate(w_o, dim, s)
                if b_q is not None and b_q[0] != s:
                    raise ValueError(f"{p}.b_q: shape mismatch: expected [{s}], found {b_q}")
        if ffn is not None:
            p, w1, b1, w2, b2 = ffn
            q = rows(w1)
            if q == 0:
                raise ValueError(f"{p}.w1: shape mismatch: expected hidden width q ≥ 1, found q = 0")
            validate(w1, q, dim)
            validate(w2, dim, q)
            for name, bias, n in (("b1", b1, q), ("b2", b2, dim)):
                if bias[0] != n:
                    raise ValueError(f"{p}.{name}: shape mismatch: expected [{n}], found {bias}")


# DatasetSpec (crates/core/src/dataset.rs) as serde derives it: field, type.
_SPEC_FIELDS = (
    ("sequences", "u64"), ("length", "u64"), ("dim", "u64"), ("vocab", "u64"), ("r_min", "f64"),
    ("r_max", "f64"), ("eps", "f64"), ("classes", "u32"), ("label_coord", "u64"), ("seed", "u64"),
    ("vocab_kind", "kind"),  # #[serde(default)]
)
_VOCAB_KINDS = ("random", "grid", "pte")


def _spec_field(field, kind, v):
    def bad(want):
        return ValueError(f"metadata spec: `{field}` must be {want}, got {v!r}")

    if kind == "kind":
        if isinstance(v, _Obj) and len(v) == 1 and v[0][1] is None:  # {"grid": null}
            v = v[0][0]
        if not isinstance(v, str) or v not in _VOCAB_KINDS:
            raise bad("one of " + ", ".join(_VOCAB_KINDS))
        return
    if not isinstance(v, _Num):
        raise bad("a number")
    if kind == "f64":
        try:
            v.f64()
        except ValueError as e:
            raise ValueError(f"metadata spec: `{field}`: {e}") from None
        return
    limit = 2**32 - 1 if kind == "u32" else U64_MAX
    x = v.u64()
    if x is None or x > limit:
        raise bad(f"an integer in 0..={limit}")


def _check_spec(text):
    doc = _json(text, "metadata spec", strict=False)  # numbers in ignored fields are not range-checked
    if isinstance(doc, _Obj):
        got = set()
        for k, v in doc:
            if _SURROGATE.search(k):
                raise ValueError(f"metadata spec: lone surrogate in the key {_clip(k)}")
            for field, kind in _SPEC_FIELDS:
                if k == field:
                    if k in got:
                        raise ValueError(f"metadata spec: duplicate field `{k}`")
                    got.add(k)
                    _spec_field(field, kind, v)
        for field, _ in _SPEC_FIELDS[:-1]:
            if field not in got:
                raise ValueError(f"metadata spec: missing field `{field}`")
    elif _is_array(doc):  # serde also reads a struct from an array of its fields in order
        for (field, kind), v in zip(_SPEC_FIELDS, doc):
            _spec_field(field, kind, v)
        if not len(_SPEC_FIELDS) - 1 <= len(doc) <= len(_SPEC_FIELDS):
            raise ValueError(f"metadata spec: {len(doc)} fields, expected {len(_SPEC_FIELDS) - 1} or {len(_SPEC_FIELDS)}")
    else:
        raise ValueError(f"metadata spec: expected a JSON object, got {doc!r}")


def _check_pair(shapes, first, second, file_kind):
    """Exactly two [N, n, d] tensors `first` and `second` of one shape (a dataset's inputs and targets, a
    workload's inputs and reference outputs)."""
    left = dict(shapes)

    def batch(name):
        shape = left.pop(name, None)
        if shape is None:
            raise ValueError(f"missing tensor {name}")
        if len(shape) != 3:
            raise ValueError(f"{name}: shape mismatch: expected [N, n, d], found {shape}")
        for size, what in zip(shape, ("empty batch: at least one sequence (N ≥ 1) is needed", "zero-sized sequence length n", "zero-sized token dimension d")):
            if size == 0:
                raise ValueError(f"{name}: {what} (shape {shape})")
        return shape

    a, b = batch(first), batch(second)
    if left:
        raise ValueError(f"unknown tensor {min(left)} in a {file_kind} file")
    if a != b:
        raise ValueError(f"{second}: shape mismatch: expected {a} (the {first}' shape), found {b}")


def _check_dataset(meta, shapes):
    if "spec" in meta:
        _check_spec(meta["spec"])
    _check_pair(shapes, "inputs", "targets", "dataset")


def _check_structure(meta, shapes):
    if _meta(meta, "format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file (metadata \"format\" = {json.dumps(meta['format'])})")
    kind = _meta(meta, "kind")
    if kind == "model":
        _check_model(meta, shapes)
    elif kind == "dataset":
        _check_dataset(meta, shapes)
    elif kind == "workload-io":  # `boltz export --workload`: a bench batch and its reference outputs
        _check_pair(shapes, "inputs", "outputs", "workload-io")
    else:
        raise ValueError(f'not a {FORMAT} model, dataset or workload-io file (metadata "kind" = {json.dumps(kind)})')


def read(path):
    """Returns (metadata dict, {name: (shape, [values])}); values are floats or exact Fractions.

    Raises OSError if the file cannot be read and ValueError (message: the path, then what is wrong and
    in which tensor) if it is not a valid boltzformer model or dataset."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        meta, tensors = _decode(data)
        _check_structure(meta, {name: shape for name, (shape, _) in tensors.items()})
    except RecursionError:
        raise ValueError(f"{os.fspath(path)}: nested too deeply") from None
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)}: {e}") from None
    return meta, tensors


def _show(x):
    try:
        return str(x)
    except ValueError:  # an exact value with more decimal digits than int→str allows
        return _hexfloat(x)


def _total(values):
    s = sum(values)
    try:
        return float(s)
    except OverflowError:  # an exact sum beyond the f64 range
        return _hexfloat(s)


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python3 scripts/read_boltz.py FILE", file=sys.stderr)
        return 2
    try:
        meta, tensors = read(args[0])
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = {"metadata": meta, "tensors": {k: {"shape": s, "first": _show(v[0]) if v else None, "sum": _total(v)} for k, (s, v) in tensors.items()}}
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
