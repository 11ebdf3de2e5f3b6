"""Evaluating many removals on the same items: plain pruned passes against passes
that start at the first removed layer from the full model's recorded inputs
(:class:`topovlm.evaluate.Outcomes`), side by side in one run.

    python benchmarks/replay.py                        # SmolLM2 (24 held-out texts) and mini-LLaVA-NeXT (96 questions)
    python benchmarks/replay.py --models smollm2

Both must give the same per-item outcomes, bit for bit; the saving grows with
the index of the first removed layer (nothing to save when layer 0 goes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import topovlm as tv
from topovlm.studies import readings


def removals(n_layers: int) -> dict:
    half = n_layers // 2
    return {
        "first removed: 1": (1, 5, half),
        "middle block": tuple(range(half - 3, half + 4)),
        "deep block": tuple(range(n_layers - 8, n_layers - 1)),
        "last layer only": (n_layers - 1,),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["smollm2", "mini-llava-next"])
    args = ap.parse_args()
    print("| model | removal | plain s | replay s | speed-up | same outcomes |\n|---|---|---|---|---|---|")
    for model_id in args.models:
        model = tv.models.load_model(model_id)
        n = {"causal-lm": 24, "llava-next": 96}.get(model.family, 16)
        bench = readings.benchmark(model_id, model, n, n, seed=0)
        bench.outcomes("dev", ())  # the recording pass (the full model's own evaluation)
        for name, layers in removals(model.n_layers).items():
            t0 = time.perf_counter()
            replayed = bench.outcomes("dev", layers)
            t_replay = time.perf_counter() - t0
            t0 = time.perf_counter()
            with tv.removed(model, list(layers)):
                reference = plain_outcomes(bench)
            t_plain = time.perf_counter() - t0
            same = all(np.array_equal(a, b) for a, b in zip(replayed, reference))
            print(
                f"| {model_id} | {name} {list(layers)} | {t_plain:.2f} | {t_replay:.2f} | "
                f"{t_plain / t_replay:.2f}x | {same} |",
                flush=True,
            )


def plain_outcomes(bench: readings.Benchmark) -> tuple:
    """The benchmark's dev outcomes on the model as it is, without any recording."""
    from topovlm.evaluate import correct, text_losses

    if bench.kind == "relative":
        return (correct(bench.adapter, bench.dev, 32, scoring="choice"),)
    return text_losses(bench.adapter, bench.dev, bench.batch_size)


if __name__ == "__main__":
    main()
