"""Tests of scripts/torch_compare.py without PyTorch: the output check's verdict, and the chunked FFN against the
whole one (on a small pure-Python matrix type)."""
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch_compare  # noqa: E402


class WithinTolerance(unittest.TestCase):
    def test_inside_and_at_the_tolerance_match(self):
        self.assertTrue(torch_compare.within_tolerance(0.0, 1e-9))
        self.assertTrue(torch_compare.within_tolerance(1e-9, 1e-9))

    def test_beyond_the_tolerance_is_a_mismatch(self):
        self.assertFalse(torch_compare.within_tolerance(2e-9, 1e-9))

    def test_nan_and_infinite_differences_are_mismatches(self):
        # `diff > tol` is False for NaN: the check must not let a NaN output through.
        self.assertFalse(torch_compare.within_tolerance(math.nan, 1e-9))
        self.assertFalse(torch_compare.within_tolerance(math.inf, 1e-9))


class Mat:
    """A tiny row-major matrix (or vector) with the operations torch_compare's FFN uses: @, .T, +, slicing."""

    def __init__(self, rows):
        self.rows = [list(r) for r in rows] if rows and isinstance(rows[0], (list, tuple)) else None
        self.vec = None if self.rows is not None else list(rows)

    @property
    def shape(self):
        return (len(self.vec),) if self.vec is not None else (len(self.rows), len(self.rows[0]))

    @property
    def T(self):
        return Mat([list(c) for c in zip(*self.rows)])

    def __matmul__(self, other):
        cols = list(zip(*other.rows))
        return Mat([[sum(a * b for a, b in zip(r, c)) for c in cols] for r in self.rows])

    def __add__(self, other):
        if other.vec is not None:
            return Mat([[a + b for a, b in zip(r, other.vec)] for r in self.rows])
        return Mat([[a + b for a, b in zip(r, q)] for r, q in zip(self.rows, other.rows)])

    def __getitem__(self, key):
        if self.vec is not None:
            return Mat(self.vec[key])
        if isinstance(key, tuple):
            return Mat([r[key[1]] for r in self.rows])
        return Mat(self.rows[key])


class FakeTorch:
    @staticmethod
    def relu(m):
        return Mat([[max(a, 0.0) for a in r] for r in m.rows])


class ChunkedFfn(unittest.TestCase):
    """The chunked FFN (hidden tiles, as boltz's engine runs it) is the same function as the whole one."""

    def ffn(self, factored):
        d, q = 3, 7
        w1 = Mat([[((i * 5 + j * 3) % 7 - 3) / 4 for j in range(d)] for i in range(q)])
        w2 = Mat([[((i * 2 + j * 5) % 9 - 4) / 8 for j in range(q)] for i in range(d)])
        ffn = {"w1": ("dense", w1), "w2": ("dense", w2), "b1": Mat([(i % 3 - 1) / 2 for i in range(q)]), "b2": Mat([0.5, -0.25, 1.0])}
        if factored:
            # W1 = u vᵀ (rank 1: the memorizer's) and W2 = U Vᵀ with V over the hidden units.
            ffn["w1"] = ("factored", Mat([[1.0] for _ in range(q)]), Mat([[0.5], [-1.0], [0.25]]))
            ffn["w2"] = ("factored", Mat([[1.0, 0.5], [0.0, -1.0], [2.0, 0.25]]), Mat([[(i % 4 - 1.5) / 2, i / 8] for i in range(q)]))
        return ffn

    def test_every_chunk_size_gives_the_whole_ffn(self):
        z = Mat([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
        for factored in [False, True]:
            f = self.ffn(factored)
            whole = torch_compare.ffn(FakeTorch, f, z, None).rows
            for chunk in [1, 2, 3, 6, 7, 100]:
                got = torch_compare.ffn(FakeTorch, f, z, chunk).rows
                for r, e in zip(got, whole):
                    for a, b in zip(r, e):
                        self.assertAlmostEqual(a, b, places=12, msg=f"factored={factored} chunk={chunk}")


if __name__ == "__main__":
    unittest.main()
