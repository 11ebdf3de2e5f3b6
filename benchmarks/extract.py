"""Time and peak memory of the calibration pass on SmolLM2-135M (real weights).

    python benchmarks/extract.py              # 512 fortune prompts, batch 16
    python benchmarks/extract.py --n 128

Each variant runs in its own process (fresh cache directory, peak RSS of that
process), side by side in one run:

- ``topovlm``: ``tv.extract`` (hooks keep one (B, d) row per layer, LM head
  skipped, every batch streamed to the on-disk cache);
- ``naive``: ``model(..., output_hidden_states=True)`` with the full logits,
  the usual way, keeping the same rows.

The issue's targets: 512 prompts in at most 3 min and at most 3 GB peak RAM on
this 2-core machine. The SmolLM2 conversion (once per machine) is not timed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
import topovlm as tv
variant, n, bs, cache = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
ad = tv.models.load_model("smollm2")
samples = tv.calibration.fortune_prompts(n)
t1 = time.perf_counter()
if variant == "topovlm":
    clouds = tv.extract(ad, samples, batch_size=bs, cache_dir=cache, progress=False)
else:
    rows = []
    for i in range(0, n, bs):
        enc = ad.encode(samples[i:i + bs], tv.models.RET_MARKER)
        last = enc["attention_mask"].sum(1) - 1
        with torch.no_grad():
            hs = ad.model(**enc, output_hidden_states=True, use_cache=False).hidden_states
        rows.append(torch.stack([h[torch.arange(len(last)), last] for h in hs]).numpy())
    clouds = np.concatenate(rows, axis=1)
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "extract_s": t2 - t1, "shape": list(clouds.shape),
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def run(variant: str, n: int, batch_size: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        r = subprocess.run(
            [sys.executable, "-c", CHILD, variant, str(n), str(batch_size), cache], capture_output=True, text=True
        )
    if r.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    import topovlm as tv

    tv.models.smollm2.checkpoint()  # convert once, outside the timings
    res = {v: run(v, args.n, args.batch_size) for v in ("topovlm", "naive")}
    ours, naive = res["topovlm"], res["naive"]
    print(f"SmolLM2-135M-Instruct, {args.n} fortune prompts, batch {args.batch_size}, clouds {tuple(ours['shape'])}")
    print("| variant | load s | extract s | peak RAM GB |")
    print("|---|---|---|---|")
    for v, r in res.items():
        print(f"| {v} | {r['load_s']:.1f} | {r['extract_s']:.1f} | {r['peak_gb']:.2f} |")
    total = ours["load_s"] + ours["extract_s"]
    print(
        f"topovlm vs target: {total:.1f} s / 180 s = {total / 180:.2f}; {ours['peak_gb']:.2f} GB / 3 GB = "
        f"{ours['peak_gb'] / 3:.2f}"
    )
    print(
        f"naive / topovlm: time {naive['extract_s'] / ours['extract_s']:.2f}x, "
        f"peak RAM {naive['peak_gb'] / ours['peak_gb']:.2f}x"
    )


if __name__ == "__main__":
    main()
