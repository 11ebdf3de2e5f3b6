"""Forward passes: calibration batches, token losses, layer taps, and passes that
start in the middle of the decoder.

Shared by extraction (:class:`LayerTaps`, :class:`ModuleTaps`), the baselines
(:class:`Calibration`, :func:`token_nll`, :func:`all_states`,
:func:`layer_inputs`) and evaluation (:func:`calibration_loss`, :class:`Replay`).

Removing decoder layers changes nothing *before* the first removed layer: its
input is the full model's. Studies that evaluate many removals on the same
items (the fidelity study, SLEB) record the full model's layer inputs once and
start every pruned forward at the first removed layer (:class:`Replay`), or
feed a recorded input to a later layer (:class:`resumed`). Both are exact: the
pruned model computes the same numbers as without them, bit for bit, and
skips the layers whose output it already has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from ._checks import TopoVLMInputError
from .models.base import Adapter
from .prune import check_layers, removed, skipped
from .samples import as_samples


@dataclass
class Calibration:
    """The calibration set, as samples and as encoded batches (right-padded)."""

    samples: list
    batches: list
    batch_size: int
    n_backward: int = 0  # methods that backpropagate count their backward passes here

    @classmethod
    def build(cls, adapter: Adapter, samples, batch_size: int = 8) -> Calibration:
        samples = as_samples(samples)
        batches = [adapter.encode(samples[i : i + batch_size], None) for i in range(0, len(samples), batch_size)]
        return cls(samples, batches, batch_size)


def valid_tokens(batch):
    """(B, T) bool of real (non-padding) tokens."""
    return batch["attention_mask"].bool()


def token_nll(adapter: Adapter, batch, per_sample: bool = False):
    """Summed next-token cross-entropy of one batch and its number of targets
    (real text tokens only: no padding, no image/video/audio positions);
    ``per_sample=True``: (B,) sums and (B,) counts, one per sample.

    The 49k-word head runs only at the positions that predict a target (those
    of any sample in the batch): media and padding positions cost no logits.
    """
    import torch

    keep = valid_tokens(batch)
    media = adapter.media_token_mask(batch)
    if media is not None:
        keep = keep & ~media.to(keep.device)
    target = keep[:, 1:]  # position t predicts token t + 1
    cols = torch.nonzero(target.any(0)).squeeze(1)  # (C,) positions that predict some target
    logits = adapter.model(
        **adapter.to_device(batch), use_cache=False, logits_to_keep=cols.to(adapter.device)
    ).logits.float()  # (B, C, V)
    ids = batch["input_ids"][:, 1:][:, cols].to(logits.device)
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), reduction="none")
    mask = target[:, cols].reshape(-1).to(logits.device)
    if per_sample:
        B = ids.shape[0]
        return (nll * mask).reshape(B, -1).sum(1), mask.reshape(B, -1).sum(1)
    return (nll * mask).sum(), int(mask.sum())


def calibration_loss(adapter: Adapter, calib: Calibration) -> float:
    """Mean next-token cross-entropy over the real text tokens of the calibration set."""
    import torch

    total, count = 0.0, 0
    for batch in calib.batches:
        with torch.no_grad():
            s, n = token_nll(adapter, batch)
        total += float(s)
        count += n
    return total / max(1, count)


class LayerTaps:
    """Forward hooks keeping ``reduce(h)`` at every decoder-layer boundary.

    ``out[0]`` comes from the input of layer 0 (the embeddings, media merged in),
    ``out[i+1]`` from the output of layer i; ``h`` is (B, T, d). Use as a context
    manager, or call :meth:`remove`.
    """

    def __init__(self, layers, reduce: Callable):
        self.reduce = reduce
        self.out: list = [None] * (len(layers) + 1)
        self.handles = [layers[0].register_forward_pre_hook(self._pre, with_kwargs=True)]
        for i, layer in enumerate(layers):
            self.handles.append(layer.register_forward_hook(self._post(i + 1)))

    def _pre(self, module, args, kwargs):
        self.out[0] = self.reduce((args[0] if args else kwargs["hidden_states"]).detach())

    def _post(self, index):
        def hook(module, args, output):
            h = output[0] if isinstance(output, (tuple, list)) else output
            self.out[index] = self.reduce(h.detach())

        return hook

    def remove(self):
        for h in self.handles:
            h.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


class ModuleTaps:
    """Forward hooks keeping ``reduce(output)`` of each module: ``out[i]`` from
    ``modules[i]`` (the ``point="normed"`` clouds: :meth:`Adapter.norm_modules`)."""

    def __init__(self, modules, reduce: Callable):
        self.reduce = reduce
        self.out: list = [None] * len(modules)
        self.handles = [m.register_forward_hook(self._post(i)) for i, m in enumerate(modules)]

    def _post(self, index):
        def hook(module, args, output):
            h = output[0] if isinstance(output, (tuple, list)) else output
            self.out[index] = self.reduce(h.detach())

        return hook

    remove = LayerTaps.remove
    __enter__ = LayerTaps.__enter__
    __exit__ = LayerTaps.__exit__


def all_states(adapter: Adapter, batch) -> list:
    """Hidden states at every layer boundary: L+1 tensors (B, T, d), float32 on CPU."""
    import torch

    with LayerTaps(adapter.decoder_layers, lambda h: h.float().cpu()) as taps, torch.no_grad():
        adapter.model(**adapter.to_device(batch), use_cache=False, logits_to_keep=1)
    out = taps.out
    if any(h.shape[1] != batch["attention_mask"].shape[1] for h in out):
        raise TopoVLMInputError(
            "this method needs the model's sequence to match input_ids (batch_size=1 "
            "models that insert media features are not supported)"
        )
    return out


def layer_inputs(adapter: Adapter, batch, removed) -> list:
    """The input of every decoder layer (L tensors (B, T, d)) with ``removed`` skipped (one forward)."""
    import torch

    with skipped(adapter, removed), LayerTaps(adapter.decoder_layers, lambda h: h) as taps, torch.no_grad():
        adapter.model(**adapter.to_device(batch), use_cache=False, logits_to_keep=1)
    return taps.out[:-1]


class resumed:
    """Context manager: the forward pass starts at decoder layer ``start``.

    Layers before ``start`` (and those in ``also``) act as the identity; layer
    ``start`` receives ``hidden`` in place of its input. ``hidden`` is one
    tensor (B, T, d) used at every call, or a sequence of them consumed one per
    forward call, in order (a recorded sequence of batches).

    Parameters
    ----------
    adapter : Adapter
    start : int
        Index in ``adapter.decoder_layers`` (as the model is when entered).
    hidden : (B, T, d) tensor, or sequence of them
    also : sequence of int
        Further layers to skip (identity).
    """

    def __init__(self, adapter: Adapter, start: int, hidden, also: Sequence[int] = ()):
        self.adapter, self.start = adapter, int(start)
        self.queue = list(hidden) if isinstance(hidden, (list, tuple)) else None
        self.hidden = hidden
        self.calls = 0
        self.skip_list = sorted(set(range(self.start)) | {int(i) for i in also if int(i) != self.start})

    def _next(self, incoming):
        if self.queue is None:
            return self.hidden
        if self.calls >= len(self.queue):
            raise TopoVLMInputError(
                f"replay: forward call {self.calls + 1} but only {len(self.queue)} were recorded "
                "(the items or the batch size differ from the recording)"
            )
        h = self.queue[self.calls]
        self.calls += 1
        if tuple(h.shape) != tuple(incoming.shape):
            raise TopoVLMInputError(
                f"replay: forward call {self.calls} has input {tuple(incoming.shape)} but the "
                f"recording has {tuple(h.shape)} (the items or the batch size differ)"
            )
        return h.to(device=incoming.device, dtype=incoming.dtype)

    def _pre(self, module, args, kwargs):
        if args:
            return (self._next(args[0]),) + tuple(args[1:]), kwargs
        return args, {**kwargs, "hidden_states": self._next(kwargs["hidden_states"])}

    def __enter__(self):
        self.skip = skipped(self.adapter, self.skip_list).__enter__()
        self.handle = self.adapter.decoder_layers[self.start].register_forward_pre_hook(self._pre, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
        self.skip.__exit__(*exc)
        return False


class _Recorder:
    """Forward pre-hooks appending every decoder layer's input (copied to the CPU),
    one entry per call; past ``max_bytes`` in all, it keeps nothing (``inputs`` None)."""

    def __init__(self, layers, keep: Sequence[int], max_bytes: int):
        self.inputs: dict[int, list] | None = {i: [] for i in keep}
        self.left = max_bytes
        self.handles = [layers[i].register_forward_pre_hook(self._hook(i), with_kwargs=True) for i in keep]

    def _hook(self, i):
        def hook(module, args, kwargs):
            if self.inputs is None:
                return
            h = (args[0] if args else kwargs["hidden_states"]).detach()
            self.left -= h.numel() * h.element_size()
            if self.left < 0:
                self.inputs = None  # too large to keep: the replay falls back to plain passes
                return
            self.inputs[i].append(h.to("cpu", copy=True))

        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


class Replay:
    """The full model's decoder-layer inputs over one sequence of forward calls,
    replayed so that the same calls with layers removed start at the first
    removed layer.

    Record with :meth:`recording` around the full model's pass (e.g. an
    evaluation of some items); then run *the same* calls (same items, same
    batches, same order) inside :meth:`pruned` to get the pruned model's
    numbers at the cost of the layers after the first removed one. A call that
    does not match the recording (another shape, one call too many) raises
    :class:`~topovlm.TopoVLMInputError`, never a wrong number.

    Parameters
    ----------
    adapter : Adapter
    layers : sequence of int, optional
        The layers whose inputs are kept (default every one). Memory: for each
        kept layer and call, one (B, T, d) tensor, kept on the CPU.
    max_bytes : int
        A recording larger than this keeps nothing, and :meth:`pruned` runs
        plain pruned passes (the same numbers, no saving). The default holds the
        book's studies (under 0.4 GiB per split); a 7-8B model's inputs at every
        layer would not fit (:attr:`active` tells).

    Examples
    --------
    >>> replay = Replay(adapter)                                   # doctest: +SKIP
    >>> with replay.recording():
    ...     full = text_losses(adapter, texts)
    >>> with replay.pruned([12, 13, 20]):
    ...     pruned = text_losses(adapter, texts)                 # starts at layer 12
    """

    def __init__(self, adapter: Adapter, layers: Sequence[int] | None = None, max_bytes: int = 2 << 30):
        self.adapter, self.max_bytes = adapter, int(max_bytes)
        self.keep = list(range(adapter.n_layers)) if layers is None else check_layers(layers, adapter.n_layers)
        self.recorded = False
        self.inputs: dict[int, list] | None = None

    @property
    def active(self) -> bool:
        """Whether pruned passes start at their first removed layer (a recording that fitted)."""
        return self.inputs is not None

    @contextmanager
    def recording(self):
        """Context manager: keep the inputs of the forward calls made inside
        (the full model's); a body that raises records nothing."""
        rec = _Recorder(self.adapter.decoder_layers, self.keep, self.max_bytes)
        try:
            yield self
        finally:
            rec.remove()
        self.inputs, self.recorded = rec.inputs, True

    @contextmanager
    def pruned(self, layers: Sequence[int]):
        """Context manager: the model with ``layers`` removed (as :class:`topovlm.removed`),
        whose forward calls start at the first removed layer when its input was recorded."""
        if not self.recorded:
            raise TopoVLMInputError("Replay.pruned: nothing recorded yet (run the full model inside recording())")
        ad = self.adapter
        layers = check_layers(layers, ad.n_layers) if len(layers) else []
        first = min(layers) if layers else None
        with ExitStack() as stack:
            stack.enter_context(removed(ad, layers))
            # after removal the layer at index `first` is the next kept one: its input is the
            # full model's input to the original layer `first` (nothing before it changed)
            if self.active and first is not None and first in self.inputs and first < ad.n_layers:
                stack.enter_context(resumed(ad, first, self.inputs[first]))
            yield ad
