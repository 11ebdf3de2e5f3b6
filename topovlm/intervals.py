"""Paired bootstrap intervals for the numbers the book compares.

Every pruned model is scored on the *same* held-out items as the full model and
as every other method, so the natural uncertainty is a paired bootstrap over
items: draw the items with replacement (within each suite, so that every suite
keeps its size), recompute the statistic for every model on the same draw, and
read the percentiles. A difference between two methods whose interval excludes
0 is one the held-out set can see; one whose interval straddles 0 is not.

- :func:`relative_score_interval`: the paper's relative score (mean over suites
  of pruned / full accuracy) from per-question outcomes;
- :func:`perplexity_ratio_interval`: held-out perplexity of the pruned model
  over the full model's, from per-text summed losses and token counts;
- :func:`difference_interval`: the paired difference of either statistic
  between two pruned models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import TopoVLMInputError

N_BOOT = 2000  # enough for stable 95 % percentiles (their Monte Carlo error is ~0.005 here)
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval."""

    value: float
    low: float
    high: float
    level: float = LEVEL

    def excludes(self, x: float = 0.0) -> bool:
        """Whether ``x`` lies outside the interval."""
        return not self.low <= x <= self.high

    def format(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "level": self.level}


def resample(groups, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Bootstrap draws of item indices, stratified by group.

    Parameters
    ----------
    groups : (Q,) array-like
        The suite (or any label) of each item; each draw keeps every group's size.

    Returns
    -------
    (n_boot, Q) int64 ndarray of item indices, grouped as in ``groups``.
    """
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) == 0:
        raise TopoVLMInputError("the bootstrap needs at least one item")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise TopoVLMInputError(f"n_boot must be a positive integer, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    parts = []
    for label in dict.fromkeys(g.tolist()):
        members = np.flatnonzero(g == label)
        parts.append(members[rng.integers(0, len(members), size=(n_boot, len(members)))])
    return np.concatenate(parts, axis=1)


def _interval(value: float, draws: np.ndarray, level: float) -> Interval:
    lo, hi = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return Interval(float(value), float(lo), float(hi), level)


def _relative(correct: np.ndarray, full: np.ndarray, groups: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Relative score of each draw: mean over groups of pruned / full accuracy. (B,)"""
    out = np.zeros(idx.shape[0])
    labels = list(dict.fromkeys(groups.tolist()))
    for label in labels:
        cols = groups[idx[0]] == label  # stratified: the same columns hold this group in every draw
        sub = idx[:, cols]
        f = full[sub].mean(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out += np.where(f > 0, correct[sub].mean(axis=1) / f, 0.0)
    return out / len(labels)


def _check_outcomes(*arrays):
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    if len({len(a) for a in arrays}) != 1:
        raise TopoVLMInputError(f"per-item outcomes of different lengths: {[len(a) for a in arrays]}")
    return arrays


def relative_score_interval(
    correct, full_correct, suites, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL
) -> Interval:
    """The relative score of a pruned model with its paired bootstrap interval.

    Parameters
    ----------
    correct, full_correct : (Q,) bool or float
        Per-question outcome of the pruned and of the full model, same questions.
    suites : (Q,) str
        Each question's suite.
    """
    c, f = _check_outcomes(correct, full_correct)
    g = np.asarray(suites)
    everyone = np.arange(len(c))[None, :]
    value = float(_relative(c, f, g, everyone)[0])
    return _interval(value, _relative(c, f, g, resample(g, n_boot, seed)), level)


def perplexity_ratio_interval(
    nll, full_nll, tokens, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL
) -> Interval:
    """Perplexity of a pruned model over the full model's, with a bootstrap over texts.

    Parameters
    ----------
    nll, full_nll : (T,) float
        Summed next-token cross-entropy of each text, pruned and full.
    tokens : (T,) int
        Predicted tokens of each text (the same for both models).
    """
    a, b, n = _check_outcomes(nll, full_nll, tokens)

    def ratio(idx):
        return np.exp((a[idx].sum(axis=1) - b[idx].sum(axis=1)) / n[idx].sum(axis=1))

    everyone = np.arange(len(a))[None, :]
    return _interval(float(ratio(everyone)[0]), ratio(resample(np.zeros(len(a), int), n_boot, seed)), level)


def draws(outcomes, full, groups=None, kind: str = "relative", tokens=None, idx=None) -> np.ndarray:
    """The statistic on given bootstrap draws (for differences against a mean of several models).

    Parameters
    ----------
    outcomes, full : (Q,) per-item outcomes (correct, or summed losses)
    groups : (Q,) suites, for ``kind="relative"``
    kind : {"relative", "perplexity"}
        Relative score, or ``log(full / pruned perplexity)`` (higher is better in both).
    tokens : (Q,) predicted tokens per text, for ``kind="perplexity"``
    idx : (B, Q) draws from :func:`resample`; None: the items themselves (B = 1)

    Returns
    -------
    (B,) float64
    """
    x, f = _check_outcomes(outcomes, full)
    idx = np.arange(len(x))[None, :] if idx is None else np.asarray(idx)
    if kind == "relative":
        return _relative(x, f, np.asarray(groups), idx)
    if kind == "perplexity":
        n = _check_outcomes(tokens, x)[0]
        return -(x[idx].sum(axis=1) - f[idx].sum(axis=1)) / n[idx].sum(axis=1)
    raise TopoVLMInputError(f"kind must be 'relative' or 'perplexity', got {kind!r}")


def difference_interval(
    a,
    b,
    full,
    groups=None,
    kind: str = "relative",
    tokens=None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
) -> Interval:
    """Paired difference ``stat(a) - stat(b)`` between two pruned models on the same items.

    Parameters
    ----------
    a, b, full : (Q,) per-item outcomes (``kind="relative"``: correct; ``"perplexity"``: summed losses)
    groups : (Q,) suites, for ``kind="relative"``
    kind : {"relative", "perplexity"}
        Relative score, or log perplexity ratio (``log(ppl_a / ppl_b)``; negative: a is better).
    tokens : (Q,) for ``kind="perplexity"``
    """
    if kind not in ("relative", "perplexity"):
        raise TopoVLMInputError(f"kind must be 'relative' or 'perplexity', got {kind!r}")
    n_items = len(_check_outcomes(a, b, full)[0])
    groups = np.zeros(n_items, int) if kind == "perplexity" else np.asarray(groups)
    idx = resample(groups, n_boot, seed)
    sign = -1.0 if kind == "perplexity" else 1.0  # draws() gives log(full / pruned); report log(ppl_a / ppl_b)
    kw = dict(full=full, groups=groups, kind=kind, tokens=tokens)
    value = sign * float(draws(a, **kw)[0] - draws(b, **kw)[0])
    return _interval(value, sign * (draws(a, idx=idx, **kw) - draws(b, idx=idx, **kw)), level)
