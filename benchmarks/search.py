"""Time the whole TopoVLM search, clouds -> layer list, stage by stage.

    python benchmarks/search.py                  # 33 clouds x 512 points, k = 15 (the paper's setting)
    python benchmarks/search.py --clouds F.npz   # your own clouds (array "clouds")

Prints the median of --repeat runs per stage; the issue's target is at most 10 s
in all on a 2-core machine.
"""

from __future__ import annotations

import argparse

import numpy as np

import topovlm as tv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=33)
    ap.add_argument("--points", type=int, default=512)
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clouds", default=None)
    args = ap.parse_args()
    clouds = np.load(args.clouds)["clouds"] if args.clouds else tv.drifting_clouds(args.layers, args.points, 64)
    runs = [tv.search(clouds, k=args.k, sparsity=0.5).timings for _ in range(args.repeat)]
    print(f"search on {len(clouds)} clouds x {clouds[0].shape[0]} points, k = {args.k} (median of {args.repeat})")
    print("| stage | seconds |")
    print("|---|---|")
    for stage in runs[0]:
        print(f"| {stage} | {np.median([r[stage] for r in runs]):.3f} |")


if __name__ == "__main__":
    main()
