"""Topological activity, survival and inter-layer consistency of each layer.

Definitions (``../shared/METHOD.md`` §4). For an image ``E(u, v)`` over birth
layer ``u`` and persistence ``v`` (a point is alive on layers ``[u, u + v]``):

* activity ``A(l) = sum_v E(l, v)`` — how much topology is born at layer l
  (the paper: "aggregating the EPI along the persistence dimension");
* survival ``Z(l, l') = sum_{u <= min(l,l'), u+v >= max(l,l')} E / sum_{u <= l <= u+v} E``
  — the share of the mass alive at l that is still alive at l'
  (our reconstruction of the paper's "probability that topological features
  generated at layer l persist in other layers", after Gardinazzi et al.,
  ICML 2025);
* consistency ``S(l) = sum_{l' != l} |l-l'|^alpha Z(l, l') / sum_{l' != l} |l-l'|^alpha``
  — the paper's distance weight ``|l - l'|^alpha`` (paper: alpha = 1).

Scores of the homology dimensions are combined (default: mean). A layer
with no mass alive in a dimension has survival 0 there (nothing of it
persists). Decoder layer i
is scored by the cloud of its output, i + 1 (METHOD.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import TopoVLMInputError

COMBINE = ("mean", "max", "sum")


def survival_matrix(image: np.ndarray, v_grid: np.ndarray, return_alive: bool = False):
    """Survival ``Z(l, l')`` of an image over (birth layer, persistence).

    Parameters
    ----------
    image : (L+1, V) float array, non-negative
    v_grid : (V,) increasing persistences (layers) of the image's columns

    Returns
    -------
    Z : (L+1, L+1) float64 ndarray in [0, 1]
        Row l: where the mass alive at layer l is still alive. ``Z(l, l) = 1``
        where any mass is alive at l; a row with nothing alive is all zero.
    alive : (L+1,) float64 ndarray, only with ``return_alive=True``
        The mass alive at each layer (the denominators).

    Notes
    -----
    Reconstruction (METHOD.md §4): the paper describes survival only as "the
    probability that topological features generated at layer l persist in
    other layers"; this mass-ratio form follows Gardinazzi et al. (ICML 2025).
    """
    E = np.asarray(image, dtype=np.float64)
    n = E.shape[0]
    # tail[u, j] = sum of E[u, j:], with a zero column for "nothing lives that long"
    tail = np.concatenate([np.cumsum(E[:, ::-1], axis=1)[:, ::-1], np.zeros((n, 1))], axis=1)
    u = np.arange(n)
    need = u[None, :] - u[:, None]  # need[u, l'] = l' - u layers of life
    j = np.searchsorted(v_grid, need - 1e-9)  # first column with v >= l' - u
    G = np.where(need >= 0, tail[u[:, None], np.clip(j, 0, tail.shape[1] - 1)], 0.0)
    H = np.cumsum(G, axis=0)  # H[l, l'] = sum_{u <= l} G[u, l'], valid for l <= l'
    both = np.triu(H) + np.triu(H, 1).T  # mass alive at both l and l'
    alive = np.diag(both).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = np.where(alive[:, None] > 0, both / alive[:, None], 0.0)
    Z = np.clip(Z, 0.0, 1.0)
    return (Z, alive) if return_alive else Z


def distance_weighted_mean(M: np.ndarray, alpha: float) -> np.ndarray:
    """``S(l) = sum_{l' != l} |l-l'|^alpha M[l, l'] / sum_{l' != l} |l-l'|^alpha``.

    Parameters
    ----------
    M : (L+1, L+1) array — survival (zigzag) or similarity (standard PH)
    alpha : float >= 0

    Returns
    -------
    (L+1,) float64 ndarray

    Notes
    -----
    The weight ``|l - l'|^alpha`` is the paper's (TopoVLM §3.3, alpha = 1 best
    in its ablation); normalising by the sum of weights is ours, so that S
    lies in [0, 1] whatever L and alpha.
    """
    check_alpha(alpha)
    n = M.shape[0]
    dist = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]).astype(np.float64)
    W = np.where(dist > 0, dist**alpha, 0.0)
    return (W * M).sum(axis=1) / W.sum(axis=1)


def check_alpha(alpha: float) -> float:
    if not np.isfinite(alpha) or alpha < 0:
        raise TopoVLMInputError(f"alpha must be >= 0 (distance weight |l - l'|^alpha), got {alpha!r}")
    return float(alpha)


def combine(per_dim: np.ndarray, how: str = "mean") -> np.ndarray:
    """Combine (P, n) per-dimension scores into (n,)."""
    if how not in COMBINE:
        raise TopoVLMInputError(f"combine must be one of {list(COMBINE)}, got {how!r}")
    return getattr(np, how)(np.asarray(per_dim, dtype=np.float64), axis=0)


@dataclass
class LayerScores:
    """Scores of every cloud (layer 0 = embeddings) per homology dimension.

    Attributes
    ----------
    dims : tuple of int
    activity : (P, L+1) — mass born at each layer
    survival : (P, L+1, L+1) — Z(l, l') (or similarity, for standard PH)
    consistency : (P, L+1) — S(l)
    how : str — how dimensions are combined
    """

    dims: tuple
    activity: np.ndarray
    survival: np.ndarray
    consistency: np.ndarray
    how: str = "mean"

    @property
    def combined_consistency(self) -> np.ndarray:
        """(L+1,) consistency of each cloud, dimensions combined."""
        return combine(self.consistency, self.how)

    @property
    def combined_activity(self) -> np.ndarray:
        """(L+1,) activity of each cloud, dimensions combined."""
        return combine(self.activity, self.how)

    @property
    def decoder_consistency(self) -> np.ndarray:
        """(L,) score of decoder layer i = consistency of cloud i + 1."""
        return self.combined_consistency[1:]

    @property
    def decoder_activity(self) -> np.ndarray:
        """(L,) activity of decoder layer i = activity of cloud i + 1."""
        return self.combined_activity[1:]


def topological_scores(images: np.ndarray, v_grid: np.ndarray, dims=(0, 1), alpha: float = 1.0, how: str = "mean") -> LayerScores:
    """Activity, survival and consistency from (effective) persistence images.

    Parameters
    ----------
    images : (P, L+1, V) — e.g. ``EffectivePersistenceImage(...).fit(bc).images_``
    v_grid : (V,) persistence grid of the images
    dims : tuple of int, length P
    alpha : float >= 0 — distance weight exponent (paper: 1.0)
    how : {"mean", "max", "sum"} — combination over dimensions

    Notes
    -----
    Activity is the paper's ("aggregate the EPI along the persistence
    dimension", TopoVLM §3.3); survival and consistency as in
    :func:`survival_matrix` and :func:`distance_weighted_mean`; the mean over
    dimensions is METHOD.md's default (the paper does not say).
    """
    check_alpha(alpha)
    images = np.asarray(images, dtype=np.float64)
    Z = np.stack([survival_matrix(img, v_grid) for img in images])
    S = np.stack([distance_weighted_mean(z, alpha) for z in Z])
    combine(S, how)  # validates `how`
    return LayerScores(tuple(dims), images.sum(axis=2), Z, S, how)


def standard_scores(images: np.ndarray, dims=(0, 1), alpha: float = 1.0, how: str = "mean") -> LayerScores:
    """Scores for the standard-PH ablation: similarity of per-layer images.

    Parameters
    ----------
    images : (P, L+1, R, R) — :func:`topovlm.images.standard_persistence_images`

    Notes
    -----
    Without a zigzag no class can be followed from one layer to another, so
    survival is replaced by the cosine similarity of the two layers'
    persistence images (our reconstruction; the paper gives no formula for
    its "standard PH only" ablation). Activity is the image's total mass.
    """
    check_alpha(alpha)
    flat = np.asarray(images, dtype=np.float64).reshape(images.shape[0], images.shape[1], -1)
    norm = np.linalg.norm(flat, axis=2, keepdims=True)
    unit = np.divide(flat, norm, out=np.zeros_like(flat), where=norm > 0)
    sim = np.einsum("pld,pmd->plm", unit, unit)
    S = np.stack([distance_weighted_mean(s, alpha) for s in sim])
    combine(S, how)
    return LayerScores(tuple(dims), flat.sum(axis=2), sim, S, how)
