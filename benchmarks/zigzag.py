"""Zigzag engines side by side: time, peak memory and speed ratio in one run.

    python benchmarks/zigzag.py                 # the full table (tens of minutes: dionysus is slow)
    python benchmarks/zigzag.py --quick         # N in {128, 256}, k = 15 only
    python benchmarks/zigzag.py --clouds F.npz  # your own clouds (array "clouds", (L+1, N, d))

An engine name with ``+H2`` (``fast+H2``) computes H0, H1 and H2 (max_dim=2);
without it H0 and H1. The speed ratio is against ``fast`` (H0/H1) on the same input.

Every engine runs in its own fresh process on the same input (the k-NN zigzag
of ``topovlm.drifting_clouds(33, N, 64)`` unless ``--clouds`` is given), with
a time limit; peak memory is the growth of the process's maximum resident set
while the engine runs. Once a reference engine hits its limit, larger inputs
are not tried with it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np

import topovlm as tv


def _load(n_points: int, n_layers: int, clouds_path: str | None) -> np.ndarray:
    if clouds_path:
        X = np.load(clouds_path)["clouds"]
        rng = np.random.default_rng(0)
        if n_points < X.shape[1]:
            X = X[:, np.sort(rng.choice(X.shape[1], n_points, replace=False))]
        return X
    return tv.drifting_clouds(n_layers, n_points, 64, seed=0)


def _child(queue, engine, n_points, k, n_layers, clouds_path):
    X = _load(n_points, n_layers, clouds_path)
    zz = tv.zigzag_complexes(X, k)
    name, _, h2 = engine.partition("+")
    max_dim = 2 if h2 == "H2" else 1
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    bc = tv.zigzag_persistence(zz, engine=name, max_dim=max_dim)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bars = "/".join(str(len(bc.intervals(p))) for p in range(max_dim + 1))
    queue.put((seconds, (peak - before) / 1024.0, bars))


def run_one(engine, n_points, k, n_layers, clouds_path, timeout):
    """Run one engine in a fresh process; None on time-out."""
    ctx = mp.get_context("spawn")  # fork after BLAS threads start can deadlock
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, engine, n_points, k, n_layers, clouds_path))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.terminate()
        p.join()
        return None
    return q.get() if not q.empty() else None


def counts(n_points, k, n_layers, clouds_path):
    zz = tv.zigzag_complexes(_load(n_points, n_layers, clouds_path), k)
    c = zz.simplex_counts()
    tetra = sum(len(zz.tetrahedra(t)) for t in range(zz.length))
    return int(c[:, 1].sum()), int(c[:, 2].sum()), tetra


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 15, 25], help="k values tried at N = 512")
    ap.add_argument("--layers", type=int, default=33, help="number of clouds L+1 (LLaVA-NeXT 8B: 33)")
    ap.add_argument("--engines", nargs="+", default=["fast", "fast+H2", "dionysus-fast"], help="a +H2 suffix adds H2")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per engine run")
    ap.add_argument("--clouds", default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.ks = [128, 256], [15]
    configs = [(n, 15) for n in args.sizes] + [(512, k) for k in args.ks if k != 15]
    timed_out: dict[str, tuple[int, int]] = {}
    print(
        f"zigzag of {args.layers} clouds; input: {args.clouds or 'drifting_clouds(d=64)'}; limit {args.timeout:.0f} s per run"
    )
    header = "| N | k | edges | triangles | tetrahedra | engine | bars (H0/H1[/H2]) | time (s) | peak mem (MB) | time vs fast |"
    print(header)
    print("|---" * 10 + "|")
    for n, k in configs:
        e, t, q = counts(n, k, args.layers, args.clouds)
        t = f"{t} | {q}"
        base = None
        for engine in args.engines:
            prev = timed_out.get(engine)
            if prev and n >= prev[0] and k >= prev[1]:
                print(
                    f"| {n} | {k} | {e} | {t} | {engine} | - | skipped (timed out on a smaller input) | - | - |",
                    flush=True,
                )
                continue
            res = run_one(engine, n, k, args.layers, args.clouds, args.timeout)
            if res is None:
                timed_out[engine] = (n, k)
                ratio = f">{args.timeout / base:.0f}x" if base else "-"
                print(
                    f"| {n} | {k} | {e} | {t} | {engine} | - | >{args.timeout:.0f} (limit) | - | {ratio} |", flush=True
                )
                continue
            sec, mem, bars = res
            if engine == "fast":
                base = sec
            ratio = f"{sec / base:.1f}x" if base else "-"
            print(f"| {n} | {k} | {e} | {t} | {engine} | {bars} | {sec:.2f} | {mem:.0f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
