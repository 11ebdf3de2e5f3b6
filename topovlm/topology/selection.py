"""Choosing the decoder layers to remove from per-layer scores.

Two rules:

* threshold (the paper's): remove every layer with ``S(l) >= eps * max S``;
* target sparsity (ours, for comparisons at fixed sparsity): remove the
  ``m = round(s * L)`` layers of highest ``S``, ties broken by lower activity.

Both honour layers that must be kept and an optional cap on how many adjacent
layers may be removed in a row; candidates are taken greedily in score order
and skipped when they break a constraint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import TopoVLMInputError


@dataclass
class Selection:
    """Decoder layers to remove and the scores that led there.

    Attributes
    ----------
    layers : list of int — decoder layers to remove, sorted
    scores : (L,) float — the score of every decoder layer (higher = more redundant)
    rule : str — "sparsity" or "threshold"
    value : float — the sparsity s or the threshold eps
    keep : tuple of int — layers that were never candidates
    max_consecutive : int or None
    """

    layers: list
    scores: np.ndarray
    rule: str
    value: float
    keep: tuple = ()
    max_consecutive: int | None = None

    @property
    def n_layers(self) -> int:
        """L, the number of decoder layers."""
        return len(self.scores)

    @property
    def sparsity(self) -> float:
        """Fraction of decoder layers removed."""
        return len(self.layers) / self.n_layers

    @property
    def kept(self) -> list:
        return [i for i in range(self.n_layers) if i not in set(self.layers)]

    def to_dict(self) -> dict:
        return {
            "layers": [int(i) for i in self.layers],
            "scores": [float(x) for x in self.scores],
            "rule": self.rule,
            "value": float(self.value),
            "keep": [int(i) for i in self.keep],
            "max_consecutive": self.max_consecutive,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Selection:
        return cls(
            list(d["layers"]),
            np.asarray(d["scores"], float),
            d["rule"],
            d["value"],
            tuple(d.get("keep", ())),
            d.get("max_consecutive"),
        )


def _check_common(scores, keep, max_consecutive):
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(s) == 0:
        raise TopoVLMInputError("no layer scores given")
    if not np.isfinite(s).all():
        raise TopoVLMInputError("layer scores contain NaN/inf")
    L = len(s)
    keep = tuple(sorted({int(i) if i >= 0 else int(L + i) for i in keep}))
    bad = [i for i in keep if not 0 <= i < L]
    if bad:
        raise TopoVLMInputError(f"keep lists layers outside 0..{L - 1}: {bad}")
    if max_consecutive is not None and (int(max_consecutive) != max_consecutive or max_consecutive < 1):
        raise TopoVLMInputError(f"max_consecutive must be a positive integer or None, got {max_consecutive!r}")
    return s, keep


def _greedy(order, m, L, keep, max_consecutive) -> list:
    removed = np.zeros(L, dtype=bool)
    chosen = []
    blocked = set(keep)
    for i in order:
        if len(chosen) == m:
            break
        if i in blocked:
            continue
        if max_consecutive is not None:
            left = 0
            while i - left - 1 >= 0 and removed[i - left - 1]:
                left += 1
            right = 0
            while i + right + 1 < L and removed[i + right + 1]:
                right += 1
            if left + right + 1 > max_consecutive:
                continue
        removed[i] = True
        chosen.append(int(i))
    return sorted(chosen)


def select_by_sparsity(
    scores, sparsity: float, activity=None, keep=(), max_consecutive: int | None = None
) -> Selection:
    """Remove the ``round(sparsity * L)`` decoder layers of highest score.

    Parameters
    ----------
    scores : (L,) float — per decoder layer, higher = more redundant
    sparsity : float in (0, 1) — fraction of decoder layers to remove
    activity : (L,) float, optional — ties in score go to lower activity first
    keep : iterable of int — layers never removed (negative indices count from the end)
    max_consecutive : int, optional — at most this many adjacent layers removed in a row

    Returns
    -------
    Selection
    """
    s, keep = _check_common(scores, keep, max_consecutive)
    L = len(s)
    m = n_to_remove(sparsity, L)
    act = np.zeros(L) if activity is None else np.asarray(activity, dtype=np.float64).ravel()
    order = np.lexsort((np.arange(L), act, -s))  # score desc, then activity asc, then index
    layers = _greedy(order, m, L, keep, max_consecutive)
    if len(layers) < m:
        raise TopoVLMInputError(
            f"cannot remove {m} of {L} layers with keep={list(keep)} and max_consecutive={max_consecutive}; "
            f"at most {len(layers)} fit"
        )
    return Selection(layers, s, "sparsity", float(sparsity), keep, max_consecutive)


def select_by_threshold(
    scores, eps: float, keep=(), max_consecutive: int | None = None, reference: float | None = None
) -> Selection:
    """The paper's rule: remove every layer with ``S >= eps * max S``.

    Parameters
    ----------
    scores : (L,) float
    eps : float in (0, 1] — eps = 1 removes only the best-scoring layer(s)
    keep, max_consecutive : as in :func:`select_by_sparsity`
    reference : float, optional
        The ``max S`` to compare with, when it is taken over more than the
        candidates (the predecessor's rule takes it over every cloud, the
        last one included); default ``max(scores)``.
    """
    s, keep = _check_common(scores, keep, max_consecutive)
    if not (isinstance(eps, (int, float, np.floating)) and 0 < eps <= 1):
        raise TopoVLMInputError(f"eps must be in (0, 1], got {eps!r}")
    L = len(s)
    top = s.max() if reference is None else max(float(reference), float(s.max()))
    if top <= 0:
        raise TopoVLMInputError(
            "every layer scores 0 (no topology in the scored dimensions), so the threshold "
            "rule has nothing to compare with; use a target sparsity, more points or a smaller k"
        )
    cand = np.flatnonzero(s >= eps * top)
    order = cand[np.lexsort((cand, -s[cand]))]
    layers = _greedy(order, len(order), L, keep, max_consecutive)
    if len(layers) >= L:
        raise TopoVLMInputError(f"eps = {eps} would remove all {L} layers; raise eps")
    return Selection(layers, s, "threshold", float(eps), keep, max_consecutive)


def n_to_remove(sparsity: float, n_layers: int) -> int:
    """round(s * L), validated: at least one layer removed, at least one kept."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.floating)) or not 0 < sparsity < 1:
        raise TopoVLMInputError(f"sparsity must be in (0, 1) (fraction of layers removed), got {sparsity!r}")
    m = int(round(sparsity * n_layers))
    if m == 0:
        raise TopoVLMInputError(
            f"sparsity {sparsity} of {n_layers} layers removes no layer (round({sparsity} * {n_layers}) = 0)"
        )
    if m >= n_layers:
        raise TopoVLMInputError(
            f"sparsity {sparsity} of {n_layers} layers would remove all of them "
            f"(round({sparsity} * {n_layers}) = {m}); at most {n_layers - 1} can go "
            f"(sparsity {largest_sparsity(n_layers):.4g})"
        )
    return m


def largest_sparsity(n_layers: int) -> float:
    """The sparsity that removes all but one of ``n_layers`` layers, (L - 1) / L."""
    return (n_layers - 1) / n_layers


def jaccard(a, b) -> float:
    """``|a & b| / |a | b|`` of two sets of layers (1 for two empty sets)."""
    a, b = set(a), set(b)
    return 1.0 if not a | b else len(a & b) / len(a | b)


def random_jaccard(n_layers: int, n_remove: int, draws: int = 2000, seed: int = 0) -> float:
    """Mean Jaccard index of two independent random choices of ``n_remove``
    of ``n_layers`` layers: what agreement means nothing."""
    rng = np.random.default_rng(seed)
    return float(
        np.mean(
            [
                jaccard(rng.choice(n_layers, n_remove, replace=False), rng.choice(n_layers, n_remove, replace=False))
                for _ in range(draws)
            ]
        )
    )
