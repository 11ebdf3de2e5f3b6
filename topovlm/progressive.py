"""Progressive pruning: remove a few layers, look again, repeat.

The paper prunes in one shot: one calibration pass, one search, every layer
removed at once. Its limitations name progressive pruning as untried. Here each
round extracts the clouds of the model *as pruned so far*, searches them for
``step`` more layers, and removes them, until the target sparsity is reached.
One-shot pruning is the special case ``step >= n_remove``.

The cost is one calibration pass per round (over a model that shrinks); the
result records it beside the layers, in the original model's indices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from ._checks import TopoVLMInputError
from .extract import extract
from .models.base import Adapter
from .prune import prune
from .samples import as_samples
from .topology.search import SearchConfig, search
from .topology.selection import n_to_remove


@dataclass(frozen=True)
class Round:
    """One round of progressive pruning.

    Attributes
    ----------
    n_layers : int
        Decoder layers of the model the round searched.
    removed : tuple of int
        The round's choice, in that model's indices.
    removed_original : tuple of int
        The same layers in the original model's indices.
    seconds : float
        Extraction + search of the round.
    n_samples : int
        Calibration samples forwarded (one pass over the pruned-so-far model).
    """

    n_layers: int
    removed: tuple
    removed_original: tuple
    seconds: float
    n_samples: int


@dataclass
class ProgressiveResult:
    """What :func:`prune_progressive` removed and what it cost.

    Attributes
    ----------
    layers_to_remove : list of int
        Every removed layer, sorted, in the indices of the model as it was
        passed in ("original"; ``adapter.meta`` also keeps them relative to
        an earlier, unpruned model).
    rounds : list of Round
    n_layers : int
        Decoder layers of the original model.
    """

    layers_to_remove: list
    rounds: list = field(default_factory=list)
    n_layers: int = 0

    @property
    def seconds(self) -> float:
        return float(sum(r.seconds for r in self.rounds))

    @property
    def n_passes(self) -> int:
        """Calibration passes (one per round; a one-shot search is 1)."""
        return len(self.rounds)

    def order(self) -> list[int]:
        """Original indices in the order the rounds removed them."""
        return [i for r in self.rounds for i in r.removed_original]


def check_step(step) -> int:
    """The number of layers per round, or a one-line error."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise TopoVLMInputError(f"step must be a positive number of layers per round, got {step!r}")
    return step


def prune_progressive(
    adapter: Adapter,
    samples,
    sparsity: float,
    step: int = 3,
    config: SearchConfig | None = None,
    token: str = "ret",
    point: str = "normed",
    batch_size: int = 16,
    cache_dir=None,
    progress: bool = True,
) -> ProgressiveResult:
    """Prune ``adapter`` in place to ``sparsity``, ``step`` layers per round,
    re-extracting the clouds from the pruned model before every round.

    Parameters
    ----------
    adapter : Adapter
        Pruned in place (as :func:`topovlm.prune`; ``adapter.meta`` keeps
        every round in original indices).
    samples : sequence of str or Sample
        The calibration set, forwarded once per round.
    sparsity : float
        Fraction of the *original* decoder layers removed in all
        (:func:`topovlm.topology.selection.n_to_remove`).
    step : int
        Layers removed per round (the last round takes what is left).
    config : SearchConfig, optional
        The search of every round (its ``sparsity`` / ``eps`` are replaced by
        the round's count); default ``SearchConfig()``. ``keep`` is in the
        original model's indices; ``max_consecutive`` applies within a round.
    token, point, batch_size, cache_dir
        As :func:`topovlm.extract` (the cache is keyed by the pruned model's
        weights, so rounds never share an entry by mistake).
    progress : bool
        One progress bar over the rounds.

    Returns
    -------
    ProgressiveResult
    """

    samples = as_samples(samples)
    if not samples:
        raise TopoVLMInputError("the calibration set is empty")
    config = SearchConfig() if config is None else config
    L = adapter.n_layers
    total = n_to_remove(sparsity, L)
    step = check_step(step)
    kept = list(range(L))  # original index of each current layer
    never = {int(i) % L for i in config.keep}  # config.keep is in original indices
    result = ProgressiveResult([], [], L)
    left = total
    bar = tqdm(total=total, desc="progressive pruning", unit="layer", disable=not progress)
    try:
        while left > 0:
            t0 = time.perf_counter()
            n_cur, m = adapter.n_layers, min(step, left)
            clouds = extract(
                adapter, samples, token=token, point=point, batch_size=batch_size, cache_dir=cache_dir, progress=False
            )
            cfg = config.at_sparsity(m / n_cur, len(samples), keep=tuple(j for j, x in enumerate(kept) if x in never))
            chosen = search(clouds, cfg).layers_to_remove
            if len(chosen) != m:  # the rule's rounding: never happens with m / n_cur
                raise TopoVLMInputError(f"round at {n_cur} layers chose {len(chosen)} layers, not {m}")
            original = tuple(kept[i] for i in chosen)
            prune(adapter, chosen)
            gone = set(chosen)
            kept = [x for j, x in enumerate(kept) if j not in gone]
            result.rounds.append(Round(n_cur, tuple(chosen), original, time.perf_counter() - t0, len(samples)))
            left -= m
            bar.update(m)
    finally:
        bar.close()
    result.layers_to_remove = sorted(i for r in result.rounds for i in r.removed_original)
    return result
