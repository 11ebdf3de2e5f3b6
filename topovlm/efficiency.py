"""What pruning saves: parameters, memory, prefill time and per-token decode latency.

:func:`measure` times one model on one prompt (medians of repeated runs);
:func:`topovlm.reports.efficiency_table` sets a full and a pruned model side by side
with the ideal ratio L / L_kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .models.base import Adapter
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
