"""Physical removal of decoder layers.

The layers are taken out of the ``nn.ModuleList``; the survivors are renumbered
(``self_attn.layer_idx`` and every other ``layer_idx``: the KV cache indexes by
it), and the decoder config is shortened: ``num_hidden_layers`` and every
per-layer list such as ``layer_types`` (without this, transformers builds a
cache for the old depth and ``generate()`` fails with an IndexError or uses
the wrong attention type). The result saves with ``save_pretrained`` and
loads anywhere with plain transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ._checks import TopoVLMInputError
from .models.base import Adapter


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune` did.

    Attributes
    ----------
    removed, kept : list of int
        Original decoder-layer indices.
    n_layers_before, n_layers_after : int
    params_before, params_after : int
    config_fields : list of str
        Per-layer config lists that were shortened besides ``num_hidden_layers``.
    """

    removed: list
    kept: list
    n_layers_before: int
    n_layers_after: int
    params_before: int
    params_after: int
    config_fields: list

    @property
    def sparsity(self) -> float:
        return len(self.removed) / self.n_layers_before

    @property
    def params_ratio(self) -> float:
        return self.params_after / self.params_before

    def to_dict(self) -> dict:
        return {**asdict(self), "sparsity": self.sparsity, "params_ratio": self.params_ratio}

    def __str__(self) -> str:
        return (
            f"removed {len(self.removed)} of {self.n_layers_before} decoder layers {self.removed}; "
            f"parameters {self.params_before / 1e6:.2f} M -> {self.params_after / 1e6:.2f} M "
            f"({100 * self.params_ratio:.1f} %)"
        )


def check_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    """Validate decoder-layer indices (negative counts from the end) -> sorted unique."""
    if isinstance(layers, (int, np.integer, str, bytes)) or not hasattr(layers, "__iter__"):
        raise TopoVLMInputError(
            f"layers must be a sequence of decoder-layer indices, e.g. [{layers!r}], got {layers!r}"
        )
    out = set()
    for x in layers:
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
            raise TopoVLMInputError(f"layer indices must be integers, got {x!r}")
        if not -n_layers <= x < n_layers:
            raise TopoVLMInputError(f"layer index {x} is out of range for a decoder with {n_layers} layers")
        out.add(int(x) % n_layers)
    if len(out) >= n_layers:
        raise TopoVLMInputError(f"cannot remove every decoder layer ({n_layers} of {n_layers})")
    return sorted(out)


#: Config fields that hold one entry per decoder layer (Qwen2/Gemma/Mistral/
#: Llama-4 style); index lists such as Qwen-MoE's ``mlp_only_layers`` are not
#: per-layer lists and are left alone.
PER_LAYER_FIELDS = ("layer_types", "no_rope_layers")


def _per_layer_fields(config, n_layers: int) -> list[str]:
    """The :data:`PER_LAYER_FIELDS` this config has, with one entry per layer."""
    fields = []
    for name in PER_LAYER_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)):
            if len(value) != n_layers:
                raise TopoVLMInputError(f"config.{name} has {len(value)} entries for {n_layers} layers")
            fields.append(name)
    return fields


def prune(adapter: Adapter, layers: Sequence[int]) -> PruneReport:
    """Remove decoder layers from the adapter's model, in place.

    Parameters
    ----------
    adapter : Adapter
    layers : sequence of int
        Decoder-layer indices to remove (0-based; negative from the end).

    Returns
    -------
    PruneReport
    """
    import torch

    L = adapter.n_layers
    removed = check_layers(layers, L)
    kept = [i for i in range(L) if i not in removed]
    before = adapter.n_parameters()
    old = adapter.decoder_layers
    new = torch.nn.ModuleList([old[i] for i in kept])
    for new_idx, layer in enumerate(new):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx
    adapter.set_decoder_layers(new)
    cfg = adapter.text_config
    fields = _per_layer_fields(cfg, L)
    for name in fields:
        value = getattr(cfg, name)
        setattr(cfg, name, type(value)(value[i] for i in kept))
    cfg.num_hidden_layers = len(kept)
    report = PruneReport(removed, kept, L, len(kept), before, adapter.n_parameters(), fields)
    _record(adapter.meta, report)
    return report


def _record(meta: dict, report: PruneReport) -> None:
    """Add one removal to the adapter's record, in the original model's indices.

    ``meta["original_layers"]`` maps each current decoder layer to its index in
    the unpruned model; ``meta["removals"]`` lists every prune in order;
    ``meta["pruned"]`` sums them up (what ``topovlm.json`` shows first).
    """
    L = report.n_layers_before
    original = list(meta.get("original_layers") or range(L))
    if len(original) != L:  # a record that does not describe this model: start afresh
        original, meta["removals"] = list(range(L)), []
    removals = list(meta.get("removals", [])) + [
        {
            "removed": [original[i] for i in report.removed],  # original indices
            "removed_as_numbered": list(report.removed),  # indices of the model this prune saw
            "n_layers_before": L,
        }
    ]
    meta["original_layers"] = [original[i] for i in report.kept]
    meta["removals"] = removals
    n_original = removals[0]["n_layers_before"]
    gone = sorted(i for r in removals for i in r["removed"])
    meta["pruned"] = {
        **report.to_dict(),
        "removed_original": gone,
        "n_layers_original": n_original,
        "sparsity_original": len(gone) / n_original,
    }


# the decoder-layer keyword that carries a KV cache, across transformers versions
_CACHE_KWARGS = ("cache", "past_key_values", "past_key_value")


class skipped:
    """Context manager: the given decoder layers act as the identity (output =
    input) without changing the model's structure.

    For searches and evaluations that try many removals (SLEB, pruning sweeps):
    exact, reversible, and the same for every family. A skipped layer does not
    compute: its call returns its input. Two cases still run the real layer and
    discard its output, so that the numbers stay those of the pruned model: a
    call that carries a KV cache (the cache indexes layers, and generation reads
    the sequence length from the cache of layer 0) or asks for attention
    weights, and the first call of a layer class, which tells whether that
    class returns a tensor or a tuple (transformers < 4.54).

    Examples
    --------
    >>> with skipped(adapter, [3, 7]):          # doctest: +SKIP
    ...     loss = calibration_loss(adapter, batches)
    """

    returns_tuple: dict = {}  # layer class -> bool, learnt from one real call (shared)

    def __init__(self, adapter: Adapter, layers: Sequence[int]):
        self.layers = [adapter.decoder_layers[i] for i in check_layers(layers, adapter.n_layers)] if layers else []
        self.saved = []

    def _identity(self, layer, real):
        def forward(*args, **kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            kind = type(layer)
            must_run = (
                kind not in self.returns_tuple
                or kwargs.get("output_attentions")
                or any(kwargs.get(name) is not None for name in _CACHE_KWARGS)
            )
            if must_run:
                out = real(*args, **kwargs)
                self.returns_tuple[kind] = isinstance(out, tuple)
                return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
            return (h,) if self.returns_tuple[kind] else h

        return forward

    def __enter__(self):
        for layer in self.layers:
            # keep an instance-level forward (accelerate's device hooks put one there)
            self.saved.append((layer, layer.__dict__.get("forward")))
            layer.forward = self._identity(layer, layer.forward)
        return self

    def __exit__(self, *exc):
        for layer, own in reversed(self.saved):
            if own is None:
                del layer.forward
            else:
                layer.forward = own
        self.saved = []
        return False


class removed:
    """Context manager: the given decoder layers are taken out of the model as
    :func:`prune` does, and put back on exit.

    Inside, the model *is* the pruned model (renumbered layers, shortened
    config), so generation with a KV cache runs at the pruned model's cost, and
    nothing is copied: the same memory as the full model. On exit the original
    layer list, every ``layer_idx`` and the config fields come back, also when
    the body raises.

    Examples
    --------
    >>> with removed(adapter, [3, 7]):          # doctest: +SKIP
    ...     answers = adapter.generate(samples)
    """

    def __init__(self, adapter: Adapter, layers: Sequence[int]):
        self.adapter = adapter
        self.layers = check_layers(layers, adapter.n_layers) if len(layers) else []

    def __enter__(self):
        if self.layers:
            ad = self.adapter
            self.saved_layers = ad.decoder_layers
            self.saved_idx = [
                (m, m.layer_idx) for layer in self.saved_layers for m in layer.modules() if hasattr(m, "layer_idx")
            ]
            cfg = ad.text_config
            self.saved_config = {
                name: getattr(cfg, name) for name in ("num_hidden_layers",) + PER_LAYER_FIELDS if hasattr(cfg, name)
            }
            self.saved_meta = dict(ad.meta)
            prune(ad, self.layers)
        return self

    def __exit__(self, *exc):
        if self.layers:
            ad = self.adapter
            ad.set_decoder_layers(self.saved_layers)
            for module, idx in self.saved_idx:
                module.layer_idx = idx
            for name, value in self.saved_config.items():
                setattr(ad.text_config, name, value)
            ad.meta.clear()
            ad.meta.update(self.saved_meta)
        return False
