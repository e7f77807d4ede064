#!/usr/bin/env python3
"""PyTorch trains again what `boltz train` trained (issue #19, item 4): the same model class, data, initial
weights and optimiser, differentiated by autograd instead of boltz's hand-written backward pass.

  # 1. The loss curve: boltz writes its initial model, data and per-step losses; PyTorch repeats the run.
  boltz train --sequences 8 --rank 1 --ffn-width 16 --steps 200 --no-early-stop --log-every 1 \\
      --save DIR --out DIR/run.json
  python3 scripts/torch_train_compare.py curve --run DIR [--checked-steps 50] [--out curve.json]

  # 2. The trained capacity on one shape: boltz's search per seed, and the same search in PyTorch (its own
  #    random initialisation, same ranges) on the same datasets (written by `boltz train --steps 0 --save`).
  python3 scripts/torch_train_compare.py capacity --boltz target/release/boltz --capacity-max 64 \\
      --init-seeds 1,2,3 --length 3 --dim 4 --vocab 9 --rank 1 --ffn-width 6 --steps 600 --lr 0.02

The forward is scripts/torch_compare.py's (boltz's reference semantics: scores k_i·q_j without scaling,
max-shifted softmax, residuals; factored weights as two products). The loss is boltz's: the mean over tokens
of the squared distance to the target, or cross-entropy over the first `classes` output coordinates; Adam
is torch.optim.Adam with boltz's β₁, β₂, ε and learning rate, full batch. Curve mode passes when the losses
of the first --checked-steps steps agree within --tolerance (relative); capacity mode passes when the two
searches' per-seed answers overlap within one sequence (the seeds' spread is the noise). Exit 1 otherwise.
PyTorch is an optional development dependency (pip install torch), never needed by the tests or CI.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_boltz  # noqa: E402
import torch_compare  # noqa: E402


def load_dataset(path, torch):
    meta, t = read_boltz.read(path)

    def tensor(name):
        shape, values = t[name]
        return torch.tensor([float(v) for v in values], dtype=torch.float64).reshape(shape)

    return tensor("inputs"), tensor("targets"), json.loads(meta["spec"]) if "spec" in meta else None


def loss_and_decoded(torch, out, y, loss):
    """boltz_train::Loss: the mean per-token loss and the number of tokens that decode."""
    tokens = out.shape[0] * out.shape[1]
    if loss.get("kind", "squared-error") == "squared-error":
        value = ((out - y) ** 2).sum() / tokens
        decoded = int(((out - y).abs() < 0.5).all(dim=-1).sum())
        return value, decoded
    classes, coord = loss["classes"], loss["label_coord"]
    logits = out[..., :classes].reshape(tokens, classes)
    labels = y[..., coord].reshape(tokens).long()
    value = torch.nn.functional.cross_entropy(logits, labels, reduction="mean")
    top = logits.gather(1, labels[:, None])
    others = logits.masked_fill(torch.nn.functional.one_hot(labels, classes).bool(), -math.inf)
    decoded = int((others.max(dim=1, keepdim=True).values < top).sum())
    return value, decoded


def train(torch, blocks, x, y, cfg, steps, early_stop):
    """Full-batch Adam as boltz_train::train: the loss before each update, stopping after `steps` updates or
    (early_stop) at the first evaluation where every token decodes. Returns [(step, loss, accuracy)]."""
    params = torch_compare.leaves(blocks)
    opt = torch.optim.Adam(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"])
    tokens = x.shape[0] * x.shape[1]
    curve = []
    for step in range(steps + 1):
        opt.zero_grad()
        value, decoded = loss_and_decoded(torch, torch_compare.forward(torch, blocks, x), y, cfg.get("loss", {}))
        curve.append((step, value.item(), decoded / tokens))
        if step == steps or (early_stop and decoded == tokens):
            break
        value.backward()
        opt.step()
    return curve


def curve_mode(args, torch):
    with open(os.path.join(args.run, "run.json")) as f:
        run = json.load(f)
    cfg = run["config"]
    blocks = torch_compare.load_blocks(os.path.join(args.run, "init.safetensors"), torch, torch.float64, "cpu", True)
    x, y, _ = load_dataset(os.path.join(args.run, "dataset.safetensors"), torch)
    boltz = [tuple(c) for c in run["report"]["curve"]]
    steps = boltz[-1][0]
    ours = train(torch, blocks, x, y, cfg, steps, cfg.get("early_stop", True))
    by_step = {s: (l, a) for s, l, a in ours}
    rows = []
    for s, l, a in boltz:
        if s in by_step:
            tl, ta = by_step[s]
            rows.append({"step": s, "boltz_loss": l, "torch_loss": tl, "relative_difference": abs(tl - l) / max(abs(l), 1e-300),
                         "boltz_accuracy": a, "torch_accuracy": ta})
    checked = [r for r in rows if r["step"] < args.checked_steps]
    worst = max((r["relative_difference"] for r in checked), default=math.inf)
    worst_all = max((r["relative_difference"] for r in rows), default=math.inf)
    ok = bool(checked) and worst <= args.tolerance
    print(f"{len(checked)} steps checked: largest relative loss difference {worst:.3e} (tolerance {args.tolerance:.0e}); "
          f"over all {len(rows)} logged steps {worst_all:.3e}; final loss boltz {boltz[-1][1]:.6e}, torch {ours[-1][1]:.6e}")
    report = {"mode": "curve", "torch": torch.__version__, "run": os.path.abspath(args.run), "checked_steps": args.checked_steps,
              "tolerance": args.tolerance, "worst_relative_difference_checked": worst, "worst_relative_difference_all": worst_all,
              "passed": ok, "steps": rows}
    return report, ok


def init_torch(torch, shape, seed):
    """A model of the shape with PyTorch's own random numbers and boltz_train::init_model's ranges: weights
    uniform in ±√(3/fan_in), rank-r factors U ~ 1/r and V ~ 1/cols, zero biases."""
    gen = torch.Generator().manual_seed(seed)
    d, s, q, r = shape["dim"], shape["head_size"], shape["ffn_width"], shape["rank"]

    def uniform(rows, cols, fan_in):
        a = math.sqrt(3.0 / fan_in)
        return ((torch.rand(rows, cols, generator=gen, dtype=torch.float64) * 2 - 1) * a).requires_grad_(True)

    def weight(rows, cols):
        if r is None:
            return ("dense", uniform(rows, cols, cols))
        return ("factored", uniform(rows, r, r), uniform(cols, r, cols))

    zeros = lambda k: torch.zeros(k, dtype=torch.float64, requires_grad=True)  # noqa: E731
    blocks = []
    for _ in range(shape["blocks"]):
        heads = [{"w_q": weight(s, d), "w_k": weight(s, d), "w_v": weight(s, d), "w_o": weight(d, s), "b_q": None}
                 for _ in range(shape["heads"])]
        ffn = {"w1": ("dense", uniform(q, d, d)), "b1": zeros(q), "w2": ("dense", uniform(d, q, q)), "b2": zeros(d)}
        blocks.append({"attn": {"heads": heads, "hardmax": False, "causal": False}, "ffn": ffn})
    return blocks


def capacity_mode(args, torch):
    seeds = [int(s) for s in args.init_seeds.split(",")]
    common = ["--length", str(args.length), "--dim", str(args.dim), "--vocab", str(args.vocab), "--seed", str(args.data_seed)]
    shape_args = ["--ffn-width", str(args.ffn_width), "--blocks", str(args.blocks)] + (["--rank", str(args.rank)] if args.rank else [])
    train_args = ["--steps", str(args.steps), "--lr", str(args.lr), "--threads", "1"]
    boltz = {}
    for seed in seeds:
        out = subprocess.run([args.boltz, "train", "--capacity-max", str(args.capacity_max), "--init-seeds", str(seed), "--json"]
                             + common + shape_args + train_args, check=True, capture_output=True, text=True).stdout
        boltz[seed] = json.loads(out)["capacity"]["largest_memorized"]
    shape = {"dim": args.dim, "head_size": args.dim, "ffn_width": args.ffn_width, "rank": args.rank, "blocks": args.blocks, "heads": 1}
    cfg = {"lr": args.lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    data = {}
    with tempfile.TemporaryDirectory() as tmp:
        def dataset(n):
            if n not in data:
                d = os.path.join(tmp, f"n{n}")
                subprocess.run([args.boltz, "train", "--sequences", str(n), "--steps", "0", "--save", d] + common + shape_args,
                               check=True, capture_output=True)
                data[n] = load_dataset(os.path.join(d, "dataset.safetensors"), torch)[:2]
            return data[n]

        def memorizes(n, seed):
            x, y = dataset(n)
            curve = train(torch, init_torch(torch, shape, seed), x, y, cfg, args.steps, True)
            return curve[-1][2] == 1.0

        ours = {}
        for seed in seeds:
            good, bad, n = 0, None, 1
            while True:  # doubling, then bisection, as boltz_train::trained_capacity
                if memorizes(n, seed):
                    good = n
                    if n == args.capacity_max:
                        break
                    n = min(2 * n, args.capacity_max)
                else:
                    bad = n
                    break
            while bad is not None and bad - good > 1:
                mid = good + (bad - good) // 2
                if memorizes(mid, seed):
                    good = mid
                else:
                    bad = mid
            ours[seed] = good
    b, t = sorted(boltz.values()), sorted(ours.values())
    ok = t[-1] >= b[0] - 1 and t[0] <= b[-1] + 1
    print(f"trained capacity per seed: boltz {boltz}, torch {ours}: {'overlap' if ok else 'no overlap'} within one sequence")
    report = {"mode": "capacity", "torch": torch.__version__, "args": vars(args), "boltz": boltz, "torch_capacity": ours, "passed": ok}
    return report, ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("curve", help="repeat one `boltz train --save DIR --out DIR/run.json` run")
    c.add_argument("--run", required=True, help="the --save directory, holding run.json (the --out record)")
    c.add_argument("--checked-steps", type=int, default=50)
    c.add_argument("--tolerance", type=float, default=1e-8)
    k = sub.add_parser("capacity", help="the trained capacity of one shape, boltz's search against PyTorch's")
    k.add_argument("--boltz", required=True, help="the boltz binary")
    k.add_argument("--capacity-max", type=int, default=64)
    k.add_argument("--init-seeds", default="1,2,3")
    k.add_argument("--data-seed", type=int, default=0)
    for name, default in [("length", 3), ("dim", 4), ("vocab", 9), ("ffn-width", 6), ("blocks", 1), ("steps", 600)]:
        k.add_argument(f"--{name}", type=int, default=default)
    k.add_argument("--rank", type=int, default=1, help="0: dense attention")
    k.add_argument("--lr", type=float, default=0.02)
    for p in (c, k):
        p.add_argument("--out", help="write the comparison as JSON")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.mode == "capacity" and args.rank == 0:
        args.rank = None
    report, ok = curve_mode(args, torch) if args.mode == "curve" else capacity_mode(args, torch)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
