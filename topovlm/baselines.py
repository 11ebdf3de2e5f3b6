"""Layer-pruning baselines and TopoVLM behind one signature.

Every method is a plain function registered by name::

    method(adapter, calib, n_remove, seed) -> (importance, layers)

``importance`` is an (L,) array, lower = removed first; ``layers`` is the list
of decoder layers to remove, or ``None`` to take the ``n_remove`` lowest
(ties: lower index first). :func:`run` adds the bookkeeping the paper compares:
wall time and the number of forward and backward passes (batches) each
method needs. A new baseline is one function plus ``@register("name")``.

The scores:

==============  ================================================================
shortgpt        Block Influence BI_i = 1 - mean_tokens cos(h_i, h_{i+1})
                (``metric="angular"``: mean arccos / pi instead)
streamline      the contiguous block of n layers whose input and output are most
                cosine-similar (mean over tokens); without LLM-Streamline's trained
                replacement layer
sleb            greedy: remove the layer whose removal raises the calibration
                loss least, repeat
taylor          first-order ``|grad * weight|`` of the calibration loss, summed per layer
magnitude       Frobenius norm of a layer's weights
wanda           sum over a layer's linear maps of ``|W_jk| * ||X_k||_2`` (Wanda's score)
tamp            TAMP's multimodal density importance: (1 - vision density) +
                (1 - text density) + (1 - cos(mean vision, mean text)) of a layer's
                output tokens; text-only models: (1 - text density)
random          seeded uniform choice
topovlm         this package: [RET] clouds -> zigzag -> EPI -> consistency
==============  ================================================================
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import forward
from ._cache import default_cache_dir
from ._checks import TopoVLMInputError
from ._readback import read_json, write_json, writing
from .extract import extract
from .forward import Calibration, all_states, layer_inputs, token_nll, valid_tokens
from .models.base import Adapter
from .outcome_store import outcome_key
from .prune import skipped
from .reports import markdown
from .topology.search import SearchConfig, search
from .topology.selection import n_to_remove


@dataclass(frozen=True)
class Method:
    """What every study, table and figure needs to know about a method, registered
    beside its function (:func:`register`): nothing elsewhere compares method names.

    Attributes
    ----------
    name : str
        Its key in :data:`METHODS` (and in the sweep tables).
    fn : callable
        ``fn(adapter, calib, n_remove, seed=..., **options) -> (importance, layers)``.
    label : str
        How the chapters' verdicts and figures name it (``"ShortGPT"``).
    choice : {"ranked", "greedy", "block"}
        ``"ranked"``: removes the m layers of lowest importance, an importance that
        does not depend on m, so one run serves every sparsity (:func:`at_sparsity`);
        ``"greedy"``: removes one layer at a time, so a run to m layers continues a kept
        run to fewer; ``"block"``: chooses the whole set for each m.
    budget : {"whole", "baseline", "expensive"}
        Which calibration samples it sees in a comparison: the whole set (TopoVLM,
        the paper's 512), the baselines' budget (``baseline_samples``), or the small
        budget of a method that reruns the model many times (``expensive_samples``).
    seeded : bool
        Its choice depends on the seed: comparisons run it once per seed.
    score : str
        The name of its layer importance where a study ranks layers by it ('' : none).
    calibrated : bool
        Its choice depends on the calibration samples (magnitude's does not).
    note : callable or None
        ``note(adapter, calib) -> str``: what a table should say beside its result
        (e.g. a simplification made here), or ''.
    """

    name: str
    fn: Callable
    label: str
    choice: str = "ranked"
    budget: str = "baseline"
    seeded: bool = False
    score: str = ""
    calibrated: bool = True
    note: Callable | None = None

    def __call__(self, *args, **kw):
        return self.fn(*args, **kw)

    def tagged(self, seed: int = 0) -> str:
        """Its key, with the seed when the seed decides its choice: ``"random (seed 1)"`` (tables)."""
        return self.name + (f" (seed {seed})" if self.seeded else "")

    def titled(self, seed: int = 0) -> str:
        """Its label, with the seed when the seed decides its choice: ``"random (seed 1)"``."""
        return self.label + (f" (seed {seed})" if self.seeded else "")

    def seeds(self, seeds) -> tuple:
        """The seeds a comparison runs it with: all of ``seeds`` if seeded, else (0,)."""
        return tuple(seeds) if self.seeded else (0,)

    def samples(self, samples: list, baseline_samples: int | None, expensive_samples: int | None) -> list:
        """The calibration samples it sees in a comparison (None: no cut)."""
        cut = {"whole": None, "baseline": baseline_samples, "expensive": expensive_samples}[self.budget]
        return samples[:cut] if cut else samples


METHODS: dict[str, Method] = {}


def register(name: str, label: str = "", **facts):
    """Decorator adding a method to :data:`METHODS`, with the facts of :class:`Method`."""

    def deco(fn):
        METHODS[name] = Method(name, fn, label or name, **facts)
        return fn

    return deco


def get_method(name: str) -> Method:
    """The record of a registered method; a one-line error for an unknown name."""
    return METHODS[check_methods([name])[0]]


@dataclass
class BaselineResult:
    """One method's choice and its search cost."""

    method: str
    layers_to_remove: list
    importance: np.ndarray
    seconds: float
    n_forward: int
    n_backward: int
    n_batches: int
    seed: int = 0
    notes: str = ""
    order: list = field(default_factory=list)  # the layers as the method returned them (SLEB: its greedy order)

    @property
    def passes(self) -> float:
        """Forward passes over the whole calibration set."""
        return self.n_forward / max(1, self.n_batches)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "layers_to_remove": self.layers_to_remove,
            "importance": [float(x) for x in self.importance],
            "seconds": self.seconds,
            "n_forward": self.n_forward,
            "n_backward": self.n_backward,
            "n_batches": self.n_batches,
            "passes": self.passes,
            "seed": self.seed,
            "notes": self.notes,
            "order": self.order,
        }

    @classmethod
    def from_dict(cls, d: dict) -> BaselineResult:
        """The result :meth:`to_dict` wrote."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "importance": np.asarray(d["importance"], dtype=np.float64)})


@dataclass
class _Counter:
    """Counts forward calls of the model (one per batch)."""

    forward: int = 0
    handles: list = field(default_factory=list)

    def attach(self, model):
        def pre(module, args, kwargs):
            self.forward += 1

        self.handles.append(model.register_forward_pre_hook(pre, with_kwargs=True))
        return self

    def detach(self):
        for h in self.handles:
            h.remove()


def token_similarity(adapter: Adapter, calib: Calibration, metric: str = "cosine") -> np.ndarray:
    """Mean over real tokens of the similarity between layer boundaries.

    Returns
    -------
    (L+1, L+1) float64
        ``cosine``: mean cos(h_i, h_j); ``angular``: 1 - mean arccos(cos)/pi.
    """
    import torch

    total, count = None, 0
    for batch in calib.batches:
        hs = all_states(adapter, batch)
        mask = valid_tokens(batch).reshape(-1)
        H = torch.stack([h.reshape(-1, h.shape[-1])[mask] for h in hs])  # (L+1, tokens, d)
        U = H / H.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        C = torch.einsum("ltd,mtd->lmt", U, U).clamp(-1, 1)  # (L+1, L+1, tokens)
        if metric == "angular":
            C = 1 - torch.arccos(C) / np.pi
        s = C.sum(-1).double().numpy()
        total = s if total is None else total + s
        count += int(mask.sum())
    return total / count


def _block_influence(C) -> np.ndarray:
    """(L,) 1 - similarity between each layer's input and output, from (L+1, L+1)."""
    return 1 - np.diagonal(C, offset=1)


@register("shortgpt", "ShortGPT", score="ShortGPT (Block Influence)")
def shortgpt(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0, metric: str = "cosine"):
    """ShortGPT's Block Influence (Men et al., 2024): low BI = the layer barely changes its input."""
    return _block_influence(token_similarity(adapter, calib, metric)), None


@register(
    "streamline",
    "LLM-Streamline",
    choice="block",
    note=lambda adapter, calib: "block removed without the trained replacement layer",
)
def streamline(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0):
    """LLM-Streamline's layer selection (Chen et al., 2024): the most input/output-similar
    contiguous block of ``n_remove`` layers. The trained lightweight replacement layer
    of the paper is not built here: the block is simply removed."""
    C = token_similarity(adapter, calib)
    L = adapter.n_layers
    sims = [C[i, i + n_remove] for i in range(L - n_remove + 1)]
    start = int(np.argmax(sims))
    return _block_influence(C), list(range(start, start + n_remove))


def _losses_without_each(adapter: Adapter, calib: Calibration, removed: list, resumed: bool = True) -> dict:
    """Calibration loss with ``removed`` plus each other layer j skipped, for every j.

    ``resumed=True`` (exact, and about 1.5-2x faster than one full forward per
    candidate): the input of every layer (with ``removed`` skipped) is recorded
    once per batch; without j, the next remaining layer receives j's input, so
    the forward resumes there. ``resumed=False``: one full forward per candidate.
    """
    import torch

    L = adapter.n_layers
    candidates = [j for j in range(L) if j not in removed]
    total = {j: 0.0 for j in candidates}
    count = 0
    for batch in calib.batches:
        inputs = layer_inputs(adapter, batch, removed) if resumed else None
        for j in candidates:
            nxt = next((i for i in range(j + 1, L) if i not in removed), None) if resumed else None
            with torch.no_grad():
                if nxt is None:  # the plain pruned forward
                    with skipped(adapter, removed + [j]):
                        s, n = token_nll(adapter, batch)
                else:
                    with forward.resumed(adapter, nxt, inputs[j], also=removed):
                        s, n = token_nll(adapter, batch)
            total[j] += float(s)
        count += n
    return {j: t / max(1, count) for j, t in total.items()}


@register("sleb", "SLEB", choice="greedy", budget="expensive")
def sleb(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0, resumed: bool = True, start=()):
    """SLEB (Song et al., 2024): greedily remove the layer whose removal raises the
    calibration loss least; ``importance`` is each layer's loss when removed alone.
    The layers are returned in removal order (the greedy choice at a smaller
    sparsity is the start of this one). ``resumed=False`` scores every candidate
    with a full forward, as SLEB's paper does (same result, slower;
    ``benchmarks/sleb.py`` compares them). ``start``: the first greedy steps'
    layers, in order, of an earlier run on the same model and calibration (its
    choice at a smaller sparsity): the search continues from there, and
    ``importance`` is left at zero (it is the earlier run's)."""
    removed: list[int] = [int(i) for i in start]
    importance = np.zeros(adapter.n_layers)
    for step in range(len(removed), n_remove):
        losses = _losses_without_each(adapter, calib, removed, resumed)
        if step == 0:
            for j, loss in losses.items():
                importance[j] = loss
        removed.append(min(losses, key=lambda j: (losses[j], j)))
    return importance, removed


@register("taylor", score="Taylor")
def taylor(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0):
    """First-order Taylor importance (LLM-Pruner, Ma et al., 2023), per layer:
    sum over its weights of ``|dLoss/dw * w|`` for the calibration loss."""
    model = adapter.model
    layers = adapter.decoder_layers
    model.zero_grad(set_to_none=True)
    flags = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in layers.parameters():
        p.requires_grad_(True)
    try:
        for batch in calib.batches:
            s, n = token_nll(adapter, batch)
            loss = s / max(1, n)
            loss.backward()
            calib.n_backward += 1
        importance = np.array(
            [
                sum(float((p.grad * p.detach()).abs().sum()) for p in layer.parameters() if p.grad is not None)
                for layer in layers
            ]
        )
    finally:
        model.zero_grad(set_to_none=True)
        for p, flag in flags.items():
            p.requires_grad_(flag)
    return importance, None


@register("magnitude", score="magnitude", calibrated=False)
def magnitude(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0):
    """Frobenius norm of all of a layer's weights (no data needed)."""
    import torch

    with torch.no_grad():
        return np.array(
            [
                float(torch.sqrt(sum((p.float() ** 2).sum() for p in layer.parameters())))
                for layer in adapter.decoder_layers
            ]
        ), None


@register("wanda", score="Wanda")
def wanda(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0):
    """Wanda's score (Sun et al., 2024) summed per layer: ``sum_jk |W_jk| * ||X_k||_2`` over
    every linear map, X_k the k-th input feature over the calibration tokens."""
    import torch

    linears = [
        (li, mod)
        for li, layer in enumerate(adapter.decoder_layers)
        for mod in layer.modules()
        if isinstance(mod, torch.nn.Linear)
    ]
    sumsq = {id(mod): torch.zeros(mod.in_features, dtype=torch.float64) for _, mod in linears}
    state = {}

    def hook(module, args):
        x = args[0].detach().float()
        m = state["mask"].to(x.device, x.dtype)[..., None]
        sumsq[id(module)] += ((x * m) ** 2).sum(dim=(0, 1)).double().cpu()

    handles = [mod.register_forward_pre_hook(hook) for _, mod in linears]
    try:
        for batch in calib.batches:
            state["mask"] = valid_tokens(batch)
            with torch.no_grad():
                adapter.model(**adapter.to_device(batch), use_cache=False, logits_to_keep=1)
    finally:
        for h in handles:
            h.remove()
    importance = np.zeros(adapter.n_layers)
    with torch.no_grad():
        for li, mod in linears:
            norm = sumsq[id(mod)].sqrt().to(mod.weight.device)
            importance[li] += float((mod.weight.abs().double() * norm[None, :]).sum())
    return importance, None


def _tamp_note(adapter: Adapter, calib: Calibration) -> str:
    return "text density only (no media tokens)" if adapter.media_token_mask(calib.batches[0]) is None else ""


def _density(U):
    """Mean pairwise cosine of n unit vectors (n, d); nan when n < 2."""
    n = U.shape[0]
    if n < 2:
        return float("nan")
    s = U.sum(0)
    return float(((s @ s) - n) / (n * (n - 1)))


@register("tamp", "TAMP", score="TAMP", note=_tamp_note)
def tamp(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0):
    """TAMP's multimodal density importance (Lee et al., 2025) as a layer score, on each
    layer's output tokens; lowest removed. Text-only families: (1 - text density)."""
    L = adapter.n_layers
    acc, n = np.zeros(L), 0
    for batch in calib.batches:
        hs = all_states(adapter, batch)[1:]
        valid = valid_tokens(batch)
        media = adapter.media_token_mask(batch)
        for b in range(valid.shape[0]):
            text = valid[b] & (~media[b] if media is not None else True)
            vis = valid[b] & media[b] if media is not None else None
            for l, h in enumerate(hs):
                U = h[b] / h[b].norm(dim=-1, keepdim=True).clamp_min(1e-12)
                score = 1 - _density(U[text])
                if vis is not None and int(vis.sum()) >= 2:
                    mv, mt = h[b][vis].mean(0), h[b][text].mean(0)
                    cross = float(mv @ mt / (mv.norm() * mt.norm()).clamp_min(1e-12))
                    score += (1 - _density(U[vis])) + (1 - cross)
                acc[l] += score
            n += 1
    return acc / n, None


@register("random", seeded=True)
def random_layers(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0):
    """A seeded uniform choice (report several seeds)."""
    return np.random.default_rng(seed).random(adapter.n_layers), None


@register("topovlm", "TopoVLM", choice="block", budget="whole")
def topovlm(adapter: Adapter, calib: Calibration, n_remove: int, seed: int = 0, k: int = 15, alpha=None):
    """TopoVLM with the package's defaults (``tv.extract``, ``tv.SearchConfig()``): [RET] clouds
    (one calibration pass), zigzag persistence, consistency. ``alpha``: None keeps the default."""

    clouds = extract(adapter, calib.samples, batch_size=calib.batch_size, cache_dir=False, progress=False)
    given = {"k": k} if alpha is None else {"k": k, "alpha": alpha}
    cfg = SearchConfig(**given).at_sparsity(n_remove / adapter.n_layers, len(calib.samples))
    res = search(clouds, cfg)
    return -np.asarray(res.scores.decoder_consistency), res.layers_to_remove


def check_methods(names) -> list:
    """The names as a list; a one-line error for one not in :data:`METHODS`."""
    names = list(names)
    for name in names:
        if name not in METHODS:
            raise TopoVLMInputError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    return names


def lowest(importance, m: int) -> list:
    """The ``m`` layers of lowest importance (ties to the lower index), sorted."""
    importance = np.asarray(importance, dtype=np.float64)
    return sorted(int(i) for i in np.lexsort((np.arange(len(importance)), importance))[:m])


def at_sparsity(result: BaselineResult, sparsity: float) -> BaselineResult:
    """An importance-ranked method's choice at another sparsity, without rerunning it
    (exactly what :func:`run` returns there; the search cost is the run's)."""

    if get_method(result.method).choice != "ranked":
        raise TopoVLMInputError(f"{result.method!r} does not rank layers by one importance; rerun it at {sparsity}")
    layers = lowest(result.importance, n_to_remove(sparsity, len(result.importance)))
    return replace(result, layers_to_remove=layers, order=layers)


def _stored(method: str, adapter: Adapter, calib: Calibration, m: int, seed: int, kw: dict, cache_dir) -> Path | None:
    """Where a run's result is kept: keyed by the method, its options, the model's
    weights, the calibration samples (and batching), the seed, and the number removed
    (``-m<m>`` in the name; none for an importance-ranked method, whose one run serves
    every sparsity)."""
    if cache_dir is False:
        return None
    key = outcome_key(adapter, calib.samples, method=method, seed=seed, batch_size=calib.batch_size, options=kw)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = f"{method}-{key}" + ("" if METHODS[method].choice == "ranked" else f"-m{m}")
    return root / "baselines" / f"{name}.json"


def _kept(path: Path, n_layers: int) -> BaselineResult | None:
    """A kept run, or None when there is none or it cannot be trusted (unreadable,
    truncated, failing its checksum, or its importance and layers do not fit a model
    of ``n_layers``: reported in one line, and it is run again)."""

    def why(d) -> str:
        try:
            kept = BaselineResult.from_dict(d)
            imp = np.asarray(kept.importance, dtype=np.float64)
            layers = [int(i) for i in kept.layers_to_remove]
        except (ValueError, KeyError, TypeError, AttributeError):
            return "not a baseline run"
        if imp.shape != (n_layers,) or not np.isfinite(imp).all():
            return f"importance of shape {imp.shape} or not finite, for {n_layers} layers"
        if len(set(layers)) != len(layers) or not all(0 <= i < n_layers for i in layers):
            return f"layers {layers} repeated or outside 0..{n_layers - 1}"
        return ""

    d = read_json(path, why)
    return BaselineResult.from_dict(d) if d is not None else None


def _shorter_run(path: Path, m: int, n_layers: int) -> BaselineResult | None:
    """The kept run of the same greedy search (same key) that removed the most layers
    short of ``m``, or None."""
    stem = path.stem.rsplit("-m", 1)[0]
    sizes = [int(p.stem.rsplit("-m", 1)[1]) for p in path.parent.glob(f"{stem}-m*.json")]
    below = [k for k in sizes if k < m]
    return _kept(path.with_name(f"{stem}-m{max(below)}.json"), n_layers) if below else None


def run(method: str, adapter: Adapter, calib, sparsity: float, seed: int = 0, cache_dir=False, **kw) -> BaselineResult:
    """Run one registered method and record its cost.

    Parameters
    ----------
    method : str
        A key of :data:`METHODS`.
    adapter : Adapter
    calib : Calibration or sequence of samples
    sparsity : float in (0, 1)
        Fraction of decoder layers to remove; exactly round(s * L) are.
    seed : int
    cache_dir : path, None or False
        Keep the result (layers, order, importance and the cost measured when it
        ran) under ``<cache_dir>/baselines/`` and read it back when the same
        method, options, model, calibration, sparsity and seed come again (for
        an importance-ranked method, any sparsity: :func:`at_sparsity`; a greedy
        method continues its kept run to fewer layers, and reports the cost of
        the whole search). None: the default cache; False (default): always run.
    **kw
        Method options (e.g. ``metric="angular"`` for shortgpt, ``k`` for topovlm).
    """
    record = get_method(method)
    m = n_to_remove(sparsity, adapter.n_layers)
    if not isinstance(calib, Calibration):
        calib = Calibration.build(adapter, calib)
    path = _stored(method, adapter, calib, m, seed, kw, cache_dir)
    kept = _kept(path, adapter.n_layers) if path is not None else None
    if kept is not None:
        return at_sparsity(kept, sparsity) if record.choice == "ranked" else kept
    before = _shorter_run(path, m, adapter.n_layers) if path is not None and record.choice == "greedy" else None
    options = {**kw, "start": before.order} if before is not None else kw
    counter = _Counter().attach(adapter.model)
    backward0 = calib.n_backward
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:  # kept as notes: a book page drops stderr
            warnings.simplefilter("always", UserWarning)
            importance, layers = record(adapter, calib, m, seed=seed, **options)
    finally:
        counter.detach()
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    seconds = time.perf_counter() - t0
    importance = np.asarray(importance, dtype=np.float64)
    if before is not None:  # the cost and importance of the whole greedy search, its kept start included
        importance, seconds = before.importance, seconds + before.seconds
        counter.forward += before.n_forward
    if layers is None:
        layers = lowest(importance, m)
    order = [int(i) for i in layers]
    layers = sorted(order)
    assert len(set(layers)) == m and all(0 <= i < adapter.n_layers for i in layers), (method, layers)
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    said = [record.note(adapter, calib) if record.note else "", *said]
    notes = "; ".join(dict.fromkeys(n for n in said if n))
    result = BaselineResult(
        method,
        layers,
        importance,
        seconds,
        counter.forward,
        calib.n_backward - backward0,
        len(calib.batches),
        seed,
        notes,
        order,
    )
    if path is not None:
        with writing(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, result.to_dict())
    return result


def compare(
    adapter: Adapter,
    samples,
    sparsity: float,
    methods=None,
    random_seeds=(0, 1, 2),
    batch_size: int = 8,
    progress: bool = True,
    cache_dir=False,
    baseline_samples: int | None = None,
    expensive_samples: int | None = None,
    **kw,
) -> list[BaselineResult]:
    """Run several methods on the same model, calibration set and sparsity.

    Each method sees the samples its record says (:meth:`Method.samples`): TopoVLM the
    whole set (the paper's 512), the other methods the first ``baseline_samples``, a
    method that reruns the model many times (SLEB) the first ``expensive_samples``
    (None: no cut). A seeded method (random) runs once per seed in ``random_seeds``.
    ``kw`` maps a method name to its options, e.g. ``topovlm={"k": 10}``.
    ``cache_dir``: as in :func:`run`.

    Returns
    -------
    list of BaselineResult
        In the order of ``methods``, a seeded method's seeds in turn.
    """

    methods = list(METHODS) if methods is None else check_methods(methods)
    n_to_remove(sparsity, adapter.n_layers)
    samples = list(samples)
    built: dict[int, Calibration] = {}  # one encoding per cut of the samples

    def calibration(record: Method) -> Calibration:
        seen = record.samples(samples, baseline_samples, expensive_samples)
        if len(seen) not in built:
            built[len(seen)] = Calibration.build(adapter, seen, batch_size)
        return built[len(seen)]

    jobs = [(METHODS[name], s) for name in methods for s in METHODS[name].seeds(random_seeds)]
    results = []
    for record, seed in tqdm(jobs, desc="baselines", disable=not progress):
        calib = calibration(record)
        results.append(
            run(record.name, adapter, calib, sparsity, seed=seed, cache_dir=cache_dir, **kw.get(record.name, {}))
        )
    return results


def baselines_frame(results) -> pd.DataFrame:
    """One record per :class:`~topovlm.baselines.BaselineResult`."""
    return pd.DataFrame.from_records(
        [
            {
                "method": r.method,
                "seed": r.seed,
                "layers": tuple(r.layers_to_remove),
                "seconds": r.seconds,
                "n_forward": r.n_forward,
                "n_backward": r.n_backward,
                "passes": r.passes,
                "notes": r.notes,
            }
            for r in results
        ]
    )


def results_table(results) -> str:
    """Markdown table: layers removed, search time, forward/backward passes."""
    f = baselines_frame(results)
    view = pd.DataFrame(
        {
            "method": f.method,
            "seed": f.seed,
            "layers removed": [str(list(x)) for x in f.layers],
            "search s": [f"{x:.2f}" for x in f.seconds],
            "forward batches": f.n_forward,
            "backward batches": f.n_backward,
            "passes over calib.": [f"{x:.0f}" for x in f.passes],
            "notes": f.notes,
        }
    )
    return markdown(view)
