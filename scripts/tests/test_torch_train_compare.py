"""scripts/torch_train_compare.py against boltz: PyTorch's autograd and Adam repeat a `boltz train` run's loss
curve (squared error and cross-entropy), and the capacity comparison runs. Needs PyTorch and a built `boltz`
(BOLTZ_BIN, else target/release or target/debug): skipped, with the reason, without either (CI has no torch).
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
REPO = os.path.dirname(os.path.dirname(HERE))

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False


def boltz_bin():
    for p in [os.environ.get("BOLTZ_BIN"), os.path.join(REPO, "target/release/boltz"), os.path.join(REPO, "target/debug/boltz")]:
        if p and os.access(p, os.X_OK):
            return p
    return None


@unittest.skipUnless(HAVE_TORCH, "PyTorch is not installed (optional: pip install torch)")
@unittest.skipUnless(boltz_bin(), "no boltz binary (cargo build --bin boltz, or set BOLTZ_BIN)")
class TorchTrainCompare(unittest.TestCase):
    def run_pair(self, extra):
        import torch_train_compare
        with tempfile.TemporaryDirectory() as tmp:
            run = os.path.join(tmp, "run")
            subprocess.run([boltz_bin(), "train", "--sequences", "5", "--length", "3", "--dim", "4", "--vocab", "9", "--ffn-width", "12",
                            "--steps", "60", "--no-early-stop", "--log-every", "1", "--threads", "2", "--save", run,
                            "--out", os.path.join(run, "run.json")] + extra, check=True, capture_output=True)
            out = os.path.join(tmp, "cmp.json")
            code = torch_train_compare.main(["curve", "--run", run, "--checked-steps", "40", "--out", out])
            with open(out) as f:
                return code, json.load(f)

    def test_the_squared_error_curve_is_repeated(self):
        code, report = self.run_pair(["--rank", "1"])
        self.assertEqual(code, 0, report["worst_relative_difference_checked"])
        self.assertEqual(len(report["steps"]), 61)
        self.assertLess(report["worst_relative_difference_checked"], 1e-10)

    def test_the_cross_entropy_curve_of_two_blocks_is_repeated(self):
        code, report = self.run_pair(["--blocks", "2", "--classes", "3", "--loss", "cross-entropy"])
        self.assertEqual(code, 0, report["worst_relative_difference_checked"])
        # The loss fell: the comparison is of a run that trained, not of a constant.
        self.assertLess(report["steps"][-1]["boltz_loss"], 0.9 * report["steps"][0]["boltz_loss"])

    def test_a_different_learning_rate_is_caught(self):
        import torch_train_compare
        with tempfile.TemporaryDirectory() as tmp:
            run = os.path.join(tmp, "run")
            subprocess.run([boltz_bin(), "train", "--sequences", "5", "--length", "3", "--dim", "4", "--vocab", "9", "--ffn-width", "12",
                            "--steps", "20", "--no-early-stop", "--log-every", "1", "--save", run, "--out", os.path.join(run, "run.json")],
                           check=True, capture_output=True)
            with open(os.path.join(run, "run.json")) as f:
                record = json.load(f)
            record["config"]["lr"] *= 1.01
            with open(os.path.join(run, "run.json"), "w") as f:
                json.dump(record, f)
            self.assertEqual(torch_train_compare.main(["curve", "--run", run, "--checked-steps", "20"]), 1)

    def test_the_capacity_searches_run_and_agree_within_seed_noise(self):
        import torch_train_compare
        code = torch_train_compare.main(["capacity", "--boltz", boltz_bin(), "--capacity-max", "16", "--init-seeds", "1,2",
                                         "--steps", "300"])
        self.assertEqual(code, 0)


if __name__ == "__main__":
    unittest.main()
