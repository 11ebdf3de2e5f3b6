"""What pruning saves: parameters, memory, prefill time and per-token decode latency.

:func:`measure` times one model on one prompt (medians of repeated runs);
:func:`topovlm.efficiency.efficiency_table` sets a full and a pruned model side by side
with the ideal ratio L / L_kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .models.base import Adapter
from .reports import markdown
from .samples import as_samples


@dataclass(frozen=True)
class Efficiency:
    """Cost of one model on one prompt (medians of repeated runs).

    ``memory_mb`` is the peak GPU memory allocated on CUDA; on the CPU, the
    bytes of the weights plus the KV cache the generation held (what scales
    with the number of layers; the process's own overhead does not).
    """

    n_layers: int
    params_m: float
    prefill_ms: float
    decode_ms_per_token: float
    memory_mb: float = float("nan")


def _cache_bytes(cache) -> int:
    layers = getattr(cache, "layers", None)
    pairs = [(layer.keys, layer.values) for layer in layers] if layers is not None else list(cache or ())
    return sum(t.numel() * t.element_size() for pair in pairs for t in pair if hasattr(t, "numel"))


def measure(
    adapter: Adapter, prompt="Tell me about the history of mathematics.", new_tokens: int = 32, repeat: int = 3
) -> Efficiency:
    """Prefill time, per-token decode latency (greedy, KV cache on) and memory.

    Parameters
    ----------
    adapter : Adapter
    prompt : str or Sample
        A sample with an image/video/audio times the multimodal prompt.
    """
    import torch

    inputs = adapter.to_device(adapter.encode(as_samples([prompt]), None))
    pad = adapter.tokenizer.pad_token_id
    cuda = adapter.device.type == "cuda"
    prefill, decode = [], []
    with torch.no_grad():
        adapter.model(**inputs, use_cache=True)  # warm-up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(repeat):
            t0 = time.perf_counter()
            adapter.model(**inputs, use_cache=True, logits_to_keep=1)
            t1 = time.perf_counter()
            out = adapter.model.generate(
                **inputs,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=pad,
                return_dict_in_generate=True,
            )
            if cuda:
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            prefill.append(t1 - t0)
            decode.append(((t2 - t1) - (t1 - t0)) / (new_tokens - 1))
    if cuda:
        memory = torch.cuda.max_memory_allocated()
    else:
        weights = sum(
            t.numel() * t.element_size() for t in list(adapter.model.parameters()) + list(adapter.model.buffers())
        )
        memory = weights + _cache_bytes(out.past_key_values)
    return Efficiency(
        adapter.n_layers,
        adapter.n_parameters() / 1e6,
        1e3 * float(np.median(prefill)),
        1e3 * float(np.median(decode)),
        memory / 2**20,
    )


def efficiency_frame(full, pruned) -> pd.DataFrame:
    """Full and pruned :class:`~topovlm.efficiency.Efficiency`, and their ratio (full / pruned)."""
    keys = ("n_layers", "params_m", "memory_mb", "prefill_ms", "decode_ms_per_token")
    rows = {name: {k: getattr(e, k) for k in keys} for name, e in (("full", full), ("pruned", pruned))}
    rows["full / pruned"] = {k: getattr(full, k) / getattr(pruned, k) for k in keys}
    return pd.DataFrame.from_dict(rows, orient="index")


def efficiency_table(full, pruned) -> str:
    """Markdown table full vs pruned, with the ideal ratio L / L_kept."""
    f = efficiency_frame(full, pruned)
    ratio = f.loc["full / pruned"]
    view = pd.DataFrame(
        {
            "": ["full", "pruned", "full / pruned"],
            "decoder layers": [*(str(int(x)) for x in f.n_layers[:2]), f"{ratio.n_layers:.2f}"],
            "parameters (M)": [*(f"{x:.1f}" for x in f.params_m[:2]), f"{ratio.params_m:.2f}"],
            "memory (MB)": [*(f"{x:.0f}" for x in f.memory_mb[:2]), f"{ratio.memory_mb:.2f}"],
            "prefill (ms)": [*(f"{x:.1f}" for x in f.prefill_ms[:2]), f"{ratio.prefill_ms:.2f}"],
            "decode (ms/token)": [*(f"{x:.1f}" for x in f.decode_ms_per_token[:2]), f"{ratio.decode_ms_per_token:.2f}"],
        }
    )
    return markdown(view, f"ideal speed-up of the decoder stack: L / L_kept = {ratio.n_layers:.2f}")
