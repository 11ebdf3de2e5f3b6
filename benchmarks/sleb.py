"""SLEB's greedy search: one full forward per candidate (its paper's way) against
topovlm's resumed forward (the input of every layer recorded once per step; each
candidate's forward starts at the next remaining layer), side by side in one run.

    python benchmarks/sleb.py                          # SmolLM2, 2 calibration texts, 8 layers removed
    python benchmarks/sleb.py --model mini-llava-next --samples 2 --remove 6

Both must choose the same layers in the same order with the same importance;
the table prints the time of each and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import topovlm as tv
from topovlm import baselines as B
from topovlm import forward as F


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--remove", type=int, default=8)
    args = ap.parse_args()
    model = tv.models.load_model(args.model)
    source = "fortunes" if model.family == "causal-lm" else ("easy-vqa" if model.family == "llava-next" else "av")
    calib = F.Calibration.build(model, tv.calibration.calibration_set(source, args.samples, 0), 8)
    t0 = time.perf_counter()
    ref_importance, ref_order = B.sleb(model, calib, args.remove, resumed=False)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    importance, order = B.sleb(model, calib, args.remove)
    t_new = time.perf_counter() - t0
    same = order == ref_order and np.allclose(importance, ref_importance, rtol=1e-6)
    print(f"{args.model}: {model.n_layers} layers, {args.samples} calibration samples, {args.remove} removed greedily")
    print("| SLEB search | seconds | layers (removal order) |\n|---|---|---|")
    print(f"| full forward per candidate (reference) | {t_ref:.1f} | {ref_order} |")
    print(f"| resumed forward (topovlm) | {t_new:.1f} | {order} |")
    print(f"speed-up {t_ref / t_new:.2f}x; same choice and importance: {same}")


if __name__ == "__main__":
    main()
