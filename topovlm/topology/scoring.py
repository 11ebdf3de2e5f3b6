"""Topological activity, survival and inter-layer consistency of each layer.

Definitions (the book's chapter "What the paper leaves open" has them all). For an image ``E(u, v)`` over birth
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
is scored by the cloud of its output, i + 1, or (``layer_map="input"``) by cloud i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import TopoVLMInputError, is_number

COMBINE = ("mean", "max", "sum")


def _alive_here(born_at, both, alive, need):
    """Of what is alive at l, the share still alive at l' (this package's first reading)."""
    return np.where(alive[:, None] > 0, both / alive[:, None], 0.0)


def _alive_there(born_at, both, alive, need):
    """Of what is alive at l', the share also alive at l (the predecessor's code)."""
    return np.where(alive[None, :] > 0, both / alive[None, :], 0.0)


def _born_here(born_at, both, alive, need):
    """Of what is born at l, the share still alive at l' >= l (the paper's words); NaN for l' < l."""
    born = np.diag(born_at).copy()
    Z = np.where(born[:, None] > 0, born_at / born[:, None], 0.0)
    Z[need < 0] = np.nan
    return Z


#: The survival normalisations, by name: ``f(born_at, both, alive, need) -> Z`` with
#: ``born_at[u, l']`` the mass born at u alive at l', ``both[l, l']`` the mass alive at both,
#: ``alive[l]`` the mass alive at l and ``need[l, l'] = l' - l`` (:func:`survival_matrix`).
SURVIVALS = {"alive": _alive_here, "born": _born_here, "other": _alive_there}


def survival_matrix(image: np.ndarray, v_grid: np.ndarray, return_alive: bool = False, normalise: str = "alive"):
    """Survival ``Z(l, l')`` of an image over (birth layer, persistence).

    Parameters
    ----------
    image : (L+1, V) float array, non-negative
    v_grid : (V,) increasing persistences (layers) of the image's columns
    normalise : {"alive", "born", "other"}
        What the share is taken of (see Notes). Default ``"alive"``.

    Returns
    -------
    Z : (L+1, L+1) float64 ndarray in [0, 1], NaN where undefined
        Row l: where the topology of layer l is still alive.
    alive : (L+1,) float64 ndarray, only with ``return_alive=True``
        The mass alive at each layer.

    Notes
    -----
    With ``both(l, l')`` the mass alive at both layers (a point ``(u, v)`` of
    the image is alive on layers ``[u, u + v]``):

    * ``"alive"`` (ours): ``both(l, l') / both(l, l)``, the share of the mass
      alive at l still alive at l'; a layer with nothing alive has a zero row.
    * ``"other"`` (the predecessor's code, Gardinazzi et al., ICML 2025):
      ``both(l, l') / both(l', l')``, normalised by what is alive at the
      *other* layer l'; with the raw counts image, ``both`` is their
      ``psim(i, j)`` and ``both(j, j)`` their ``beta(j)``. 0 where nothing is
      alive at l'.
    * ``"born"`` (the paper's wording, "features generated at layer l"):
      for ``l' >= l``, the share of the mass *born* at l still alive at l';
      undefined (NaN) for ``l' < l``, where nothing born at l can be. A layer
      where nothing is born has a zero row.
    """
    if normalise not in SURVIVALS:
        raise TopoVLMInputError(f"survival normalisation must be one of {list(SURVIVALS)}, got {normalise!r}")
    E = np.asarray(image, dtype=np.float64)
    n = E.shape[0]
    # tail[u, j] = sum of E[u, j:], with a zero column for "nothing lives that long"
    tail = np.concatenate([np.cumsum(E[:, ::-1], axis=1)[:, ::-1], np.zeros((n, 1))], axis=1)
    u = np.arange(n)
    need = u[None, :] - u[:, None]  # need[u, l'] = l' - u layers of life
    j = np.searchsorted(v_grid, need - 1e-9)  # first column with v >= l' - u
    G = np.where(need >= 0, tail[u[:, None], np.clip(j, 0, tail.shape[1] - 1)], 0.0)  # born at u, alive at l'
    H = np.cumsum(G, axis=0)  # H[l, l'] = sum_{u <= l} G[u, l'], valid for l <= l'
    both = np.triu(H) + np.triu(H, 1).T  # mass alive at both l and l'
    alive = np.diag(both).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = SURVIVALS[normalise](G, both, alive, need)
    Z = np.clip(Z, 0.0, 1.0)
    return (Z, alive) if return_alive else Z


def distance_weighted_mean(M: np.ndarray, alpha: float, include_self: bool = False) -> np.ndarray:
    """``S(l) = sum_{l'} |l-l'|^alpha M[l, l'] / sum_{l'} |l-l'|^alpha``.

    Parameters
    ----------
    M : (L+1, L+1) array — survival (zigzag) or similarity (standard PH);
        NaN entries are undefined pairs and take no part.
    alpha : float >= 0
    include_self : bool
        Whether ``l' = l`` is part of the mean (its weight is ``0^alpha``: 1
        for ``alpha = 0``, as the predecessor's code averages over every j,
        and 0 otherwise). Default: ``l' != l`` only.

    Returns
    -------
    (L+1,) float64 ndarray; 0 for a row with no defined pair.

    Notes
    -----
    The weight ``|l - l'|^alpha`` is the paper's (TopoVLM §3.3, alpha = 1 best
    in its ablation); normalising by the sum of weights is ours, so that S
    lies in [0, 1] whatever L and alpha. The predecessor's code has no weight
    (``alpha = 0``) and includes ``l' = l``: then S is their plain mean.
    """
    check_alpha(alpha)
    M = np.asarray(M, dtype=np.float64)
    n = M.shape[0]
    dist = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]).astype(np.float64)
    W = np.where(dist > 0, dist**alpha, (1.0 if alpha == 0 else 0.0) if include_self else 0.0)
    W = np.where(np.isnan(M), 0.0, W)
    total = W.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (W * np.nan_to_num(M)).sum(axis=1) / total, 0.0)


#: The largest distance-weight exponent: the weight ``abs(l - l') ** alpha`` stays finite in float64 for models of
#: up to 1,000 layers (1000^100 = 1e300); the paper's values are 0 to 1.
MAX_ALPHA = 100.0


def check_alpha(alpha: float) -> float:
    if not is_number(alpha) or not np.isfinite(alpha) or not 0 <= alpha <= MAX_ALPHA:
        raise TopoVLMInputError(f"alpha must be in [0, {MAX_ALPHA:g}] (distance weight |l - l'|^alpha), got {alpha!r}")
    return float(alpha)


def combine(per_dim: np.ndarray, how: str = "mean") -> np.ndarray:
    """Combine (P, n) per-dimension scores into (n,)."""
    if how not in COMBINE:
        raise TopoVLMInputError(f"combine must be one of {list(COMBINE)}, got {how!r}")
    return getattr(np, how)(np.asarray(per_dim, dtype=np.float64), axis=0)


LAYER_MAPS = ("output", "input")


@dataclass
class LayerScores:
    """Scores of every cloud per homology dimension, and which cloud scores which layer.

    Attributes
    ----------
    dims : tuple of int
    activity : (P, L+1) — mass born at each cloud
    survival : (P, L+1, L+1) — Z(l, l') (or similarity, for standard PH)
    consistency : (P, L+1) — S(l); NaN for a cloud that could not be scored
        (a degenerate cloud left out of the zigzag)
    how : str — how dimensions are combined
    layer_map : {"output", "input"}
        ``"output"`` (ours): decoder layer i is scored by cloud i + 1, the
        output of the layer. ``"input"`` (the predecessor's): by cloud i, so
        the last cloud (after the final norm) scores no layer.
    """

    dims: tuple
    activity: np.ndarray
    survival: np.ndarray
    consistency: np.ndarray
    how: str = "mean"
    layer_map: str = "output"

    def __post_init__(self):
        if self.layer_map not in LAYER_MAPS:
            raise TopoVLMInputError(f"layer_map must be one of {list(LAYER_MAPS)}, got {self.layer_map!r}")

    @property
    def combined_consistency(self) -> np.ndarray:
        """(L+1,) consistency of each cloud, dimensions combined."""
        return combine(self.consistency, self.how)

    @property
    def combined_activity(self) -> np.ndarray:
        """(L+1,) activity of each cloud, dimensions combined."""
        return combine(self.activity, self.how)

    def _decoder(self, per_cloud: np.ndarray) -> np.ndarray:
        return per_cloud[1:] if self.layer_map == "output" else per_cloud[:-1]

    @property
    def decoder_consistency(self) -> np.ndarray:
        """(L,) score of decoder layer i: consistency of cloud i + 1 (``"output"``) or i (``"input"``)."""
        return self._decoder(self.combined_consistency)

    @property
    def decoder_activity(self) -> np.ndarray:
        """(L,) activity of decoder layer i, mapped as :attr:`decoder_consistency`."""
        return self._decoder(self.combined_activity)


def topological_scores(
    images: np.ndarray,
    v_grid: np.ndarray,
    *,
    dims=(0, 1),
    alpha: float = 1.0,
    how: str = "mean",
    survival: str = "alive",
    include_self: bool = False,
    layer_map: str = "output",
) -> LayerScores:
    """Activity, survival and consistency from (effective) persistence images.

    Parameters
    ----------
    images : (P, L+1, V) — e.g. ``EffectivePersistenceImage(...).fit(bc).images_``
    v_grid : (V,) persistence grid of the images
    dims : tuple of int, length P
    alpha : float >= 0 — distance weight exponent (paper: 1.0)
    how : {"mean", "max", "sum"} — combination over dimensions
    survival : {"alive", "born", "other"} — see :func:`survival_matrix`
    include_self : bool — see :func:`distance_weighted_mean`
    layer_map : {"output", "input"} — see :class:`LayerScores`

    Notes
    -----
    Activity is the paper's ("aggregate the EPI along the persistence
    dimension", TopoVLM §3.3); survival and consistency as in
    :func:`survival_matrix` and :func:`distance_weighted_mean`; the mean over
    dimensions is ours (the paper does not say).
    """
    check_alpha(alpha)
    images = np.asarray(images, dtype=np.float64)
    Z = np.stack([survival_matrix(img, v_grid, normalise=survival) for img in images])
    S = np.stack([distance_weighted_mean(z, alpha, include_self) for z in Z])
    combine(S, how)  # validates `how`
    return LayerScores(tuple(dims), images.sum(axis=2), Z, S, how, layer_map)


def standard_scores(
    images: np.ndarray,
    *,
    dims=(0, 1),
    alpha: float = 1.0,
    how: str = "mean",
    include_self: bool = False,
    layer_map: str = "output",
) -> LayerScores:
    """Scores for the standard-PH ablation: similarity of per-layer images.

    Parameters
    ----------
    images : (P, L+1, R, R) — :func:`topovlm.topology.images.standard_persistence_images`

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
    S = np.stack([distance_weighted_mean(s, alpha, include_self) for s in sim])
    combine(S, how)
    return LayerScores(tuple(dims), flat.sum(axis=2), sim, S, how, layer_map)


def expand(scores: LayerScores, kept: np.ndarray, n_clouds: int) -> LayerScores:
    """Scores of a zigzag over the clouds ``kept`` (indices into ``n_clouds``),
    put back at their cloud indices; the clouds left out get NaN consistency,
    zero activity and NaN survival."""
    P = len(scores.dims)
    act = np.zeros((P, n_clouds))
    cons = np.full((P, n_clouds), np.nan)
    surv = np.full((P, n_clouds, n_clouds), np.nan)
    act[:, kept], cons[:, kept] = scores.activity, scores.consistency
    surv[np.ix_(np.arange(P), kept, kept)] = scores.survival
    return LayerScores(scores.dims, act, surv, cons, scores.how, scores.layer_map)
