"""Tests of scripts/torch_compare.py's output check (no PyTorch needed: only the verdict is tested here)."""
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


if __name__ == "__main__":
    unittest.main()
