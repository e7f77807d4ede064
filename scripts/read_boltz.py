#!/usr/bin/env python3
"""Read boltzformer model/dataset files with the Python standard library only (no numpy needed).

    python3 scripts/read_boltz.py FILE          # prints metadata and tensor shapes as JSON

Both encodings are supported: safetensors (F32/F64, little-endian) and the exact JSON encoding, whose
values are hexadecimal floats with an integer mantissa (e.g. "-0x1b3p-12"), read exactly as Fractions.
"""
import json
import struct
import sys
from fractions import Fraction


def exact(s):
    """Exact value of a boltzformer hex float string: [+-]0x<hex>p<exp> = ±int(hex,16)·2^exp."""
    sign = -1 if s[0] == "-" else 1
    mantissa, exponent = s.lstrip("+-")[2:].split("p")
    return sign * int(mantissa, 16) * Fraction(2) ** int(exponent)


def read(path):
    """Returns (metadata dict, {name: (shape, [values])}); values are floats or exact Fractions."""
    with open(path, "rb") as f:
        data = f.read()
    if data.lstrip()[:1] == b"{":
        doc = json.loads(data)
        assert doc["format"] == "boltzformer-exact/1", doc.get("format")
        tensors = {k: (t["shape"], [exact(v) for v in t["values"]]) for k, t in doc["tensors"].items()}
        return doc.get("metadata", {}), tensors
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n :]
    tensors = {}
    for name, info in header.items():
        fmt = {"F64": "d", "F32": "f"}[info["dtype"]]
        start, end = info["data_offsets"]
        count = (end - start) // struct.calcsize(fmt)
        tensors[name] = (info["shape"], list(struct.unpack("<%d%s" % (count, fmt), body[start:end])))
    return meta, tensors


if __name__ == "__main__":
    meta, tensors = read(sys.argv[1])
    out = {"metadata": meta, "tensors": {k: {"shape": s, "first": str(v[0]) if v else None, "sum": float(sum(v))} for k, (s, v) in tensors.items()}}
    print(json.dumps(out, indent=1, sort_keys=True))
