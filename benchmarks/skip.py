"""What treating layers as removed costs: hooks that discard a layer's output,
topovlm's skip (the layer does not compute), topovlm's removed (taken out and put
back) and the physically pruned model.

    python benchmarks/skip.py                        # mini-LLaVA-NeXT, 4 calibration samples, half the layers
    python benchmarks/skip.py --model smollm2 --samples 8 --repeat 5

Every pruning sweep and SLEB evaluate models with layers "removed" without
copying the model (:class:`topovlm.skipped`). The reference here is the earlier
way of doing it, hooks that let the layer run and replace its output by its
input; both must give the pruned model's loss, and the table prints how long
one calibration loss takes with each, side by side in one run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import topovlm as tv
from topovlm import forward as F


class discarded:
    """The reference: the layer runs, a forward hook returns its input instead."""

    def __init__(self, adapter, layers):
        self.layers, self.handles = [adapter.decoder_layers[i] for i in layers], []

    def __enter__(self):
        for layer in self.layers:
            store = {}
            self.handles.append(
                layer.register_forward_pre_hook(
                    lambda m, args, kwargs, s=store: s.update(h=args[0] if args else kwargs["hidden_states"]),
                    with_kwargs=True,
                )
            )
            self.handles.append(
                layer.register_forward_hook(
                    lambda m, args, out, s=store: (s["h"],) + out[1:] if isinstance(out, tuple) else s["h"]
                )
            )
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm-up
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), value


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mini-llava-next")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    model = tv.models.load_model(args.model)
    samples = (
        tv.calibration.fortune_prompts(args.samples)
        if model.family == "causal-lm"
        else tv.studies.sweep.study_data(tv.studies.sweep.task_of(model), n_calib=args.samples, n=1)[0]
    )
    calib = F.Calibration.build(model, samples, args.samples)
    layers = sorted(
        np.random.default_rng(0).choice(model.n_layers, round(args.sparsity * model.n_layers), replace=False).tolist()
    )

    def loss_with(context):
        with context(model, layers):
            return F.calibration_loss(model, calib)

    t_full, loss_full = timed(lambda: F.calibration_loss(model, calib), args.repeat)
    t_hook, loss_hook = timed(lambda: loss_with(discarded), args.repeat)
    t_skip, loss_skip = timed(lambda: loss_with(tv.skipped), args.repeat)
    t_removed, loss_removed = timed(lambda: loss_with(tv.removed), args.repeat)
    pruned = model.copy()
    tv.prune(pruned, layers)
    t_pruned, loss_pruned = timed(lambda: F.calibration_loss(pruned, calib), args.repeat)

    print(
        f"{args.model}: {len(layers)} of {model.n_layers} layers removed, {args.samples} calibration samples, "
        f"median of {args.repeat}"
    )
    print("| how | seconds per calibration loss | vs hooks | loss |")
    print("|---|---|---|---|")
    for name, t, loss in [
        ("full model", t_full, loss_full),
        ("hooks, layer runs (reference)", t_hook, loss_hook),
        ("topovlm.skipped", t_skip, loss_skip),
        ("topovlm.removed", t_removed, loss_removed),
        ("physically pruned", t_pruned, loss_pruned),
    ]:
        print(f"| {name} | {t:.3f} | {t_hook / t:.2f}x | {loss:.5f} |")
    assert max(abs(x - loss_pruned) for x in (loss_hook, loss_skip, loss_removed)) < 1e-4, "differs from pruning"


if __name__ == "__main__":
    main()
