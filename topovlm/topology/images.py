"""The Effective Persistence Image (EPI) and the images of the ablations.

EPI (the book's chapter "What the paper leaves open")::

    EPI_p(u, v) = sum_j w(tau_j) exp(-((u - b~_j)^2 + (v - tau_j)^2) / (2 sigma^2))

over the effective intervals ``[b~_j, d~_j]`` of dimension p, ``tau_j = d~_j - b~_j``,
``u = 0 .. L`` (layer where a class is born) and ``v`` on a grid over ``[0, L]``
(how many layers it lives). The formula is the paper's (TopoVLM, §3.2);
``w(tau) = tau / L`` and ``sigma = 1`` layer are our defaults (the paper gives
neither; w only has to "emphasise long-lived features").

A weight function is a plain callable ``w(tau, L) -> weights`` with ``tau`` a
float array of persistences in layers and ``L`` the number of decoder layers
(persim's weight-function convention); register a new one in :data:`WEIGHTS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._checks import TopoVLMInputError
from .barcode import Barcode, EffectiveIntervals


def linear_weight(tau: np.ndarray, L: int) -> np.ndarray:
    """``w(tau) = tau / L``: one-layer classes weigh nothing (our default)."""
    return np.asarray(tau, dtype=np.float64) / max(L, 1)


def uniform_weight(tau: np.ndarray, L: int) -> np.ndarray:
    """``w(tau) = 1``: every class counts the same."""
    return np.ones_like(np.asarray(tau, dtype=np.float64))


def squared_weight(tau: np.ndarray, L: int) -> np.ndarray:
    """``w(tau) = (tau / L)^2``: stronger emphasis on long-lived classes."""
    return (np.asarray(tau, dtype=np.float64) / max(L, 1)) ** 2


WEIGHTS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "linear": linear_weight,
    "uniform": uniform_weight,
    "squared": squared_weight,
}


def _weight_fn(weight) -> Callable:
    if callable(weight):
        return weight
    if weight not in WEIGHTS:
        raise TopoVLMInputError(f"weight must be a callable or one of {list(WEIGHTS)}, got {weight!r}")
    return WEIGHTS[weight]


def _gaussian(delta: np.ndarray, sigma: float, truncate: float = np.inf) -> np.ndarray:
    """``exp(-delta^2 / (2 sigma^2))``, zero where ``|delta| > truncate * sigma``."""
    g = np.exp(-(delta**2) / (2 * sigma**2))
    return np.where(np.abs(delta) <= truncate * sigma, g, 0.0)


class EffectivePersistenceImage:
    """Effective Persistence Image of a zigzag barcode, one image per dimension.

    Parameters
    ----------
    sigma : float
        Gaussian width in layers (> 0). Default 1.0 (ours; the paper does not say).
    weight : str or callable
        ``w(tau, L)``; a name from :data:`WEIGHTS` or a callable.
    dims : tuple of int
        Homology dimensions to image (paper: H0 and H1).
    v_step : float
        Spacing of the persistence grid over ``[0, L]``; 1.0 puts one row per
        whole number of layers, which is what survival needs.
    truncate : float
        The Gaussian is cut to zero beyond ``truncate * sigma`` (default 3).
        Ours: survival is a ratio of masses, so without a cut a layer far from
        every class would carry an infinitesimal leaked mass (1e-50) whose
        survival counts as much as a real class's.
    smooth : bool
        ``False`` replaces the Gaussian by a point mass of 1 per interval
        (weight ignored): the "raw persistence diagram" ablation.

    Attributes (after ``fit``)
    --------------------------
    images_ : (P, L+1, V) float64 ndarray
        ``images_[i]`` is ``EPI_{dims[i]}``; rows are birth layers ``u``,
        columns persistences ``v``.
    u_ : (L+1,) float64 ndarray
        Birth-layer grid 0 .. L.
    v_ : (V,) float64 ndarray
        Persistence grid over [0, L].
    n_layers_ : int
        L + 1.
    """

    def __init__(
        self,
        sigma: float = 1.0,
        weight="linear",
        dims=(0, 1),
        v_step: float = 1.0,
        truncate: float = 3.0,
        smooth: bool = True,
    ):
        if not np.isfinite(sigma) or sigma <= 0:
            raise TopoVLMInputError(f"sigma must be > 0 (in layers), got {sigma!r}")
        if not np.isfinite(v_step) or v_step <= 0:
            raise TopoVLMInputError(f"v_step must be > 0, got {v_step!r}")
        if not truncate > 0:
            raise TopoVLMInputError(f"truncate must be > 0 (in units of sigma), got {truncate!r}")
        dims = tuple(int(p) for p in dims)
        if not dims or any(p not in (0, 1, 2) for p in dims):
            raise TopoVLMInputError(f"dims must be a non-empty subset of (0, 1, 2), got {dims!r}")
        self.sigma = float(sigma)
        self.weight = weight
        self._w = _weight_fn(weight)
        self.dims = dims
        self.v_step = float(v_step)
        self.truncate = float(truncate)
        self.smooth = bool(smooth)

    def fit(self, intervals) -> EffectivePersistenceImage:
        """Compute the images.

        Parameters
        ----------
        intervals : Barcode or EffectiveIntervals
            A zigzag barcode is projected to effective intervals first.
        """
        if isinstance(intervals, Barcode):
            intervals = intervals.effective()
        if not isinstance(intervals, EffectiveIntervals):
            raise TopoVLMInputError("EPI.fit needs a Barcode or EffectiveIntervals")
        L = intervals.n_layers - 1
        self.n_layers_ = intervals.n_layers
        self.u_ = np.arange(L + 1, dtype=np.float64)
        self.v_ = np.arange(0.0, L + 0.5 * self.v_step, self.v_step)
        images = np.zeros((len(self.dims), L + 1, len(self.v_)))
        for i, p in enumerate(self.dims):
            sel = intervals.select(p)
            b = sel.births.astype(np.float64)
            tau = sel.persistence.astype(np.float64)
            if not self.smooth:
                vi = np.clip(np.rint(tau / self.v_step).astype(int), 0, len(self.v_) - 1)
                np.add.at(images[i], (sel.births, vi), 1.0)
                continue
            w = np.asarray(self._w(tau, L), dtype=np.float64)
            keep = w != 0
            b, tau, w = b[keep], tau[keep], w[keep]
            gu = _gaussian(self.u_[None, :] - b[:, None], self.sigma, self.truncate)  # (M, L+1)
            gv = _gaussian(self.v_[None, :] - tau[:, None], self.sigma, self.truncate)  # (M, V)
            images[i] = np.einsum("m,mu,mv->uv", w, gu, gv)
        self.images_ = images
        return self

    def image(self, dim: int) -> np.ndarray:
        """The image of one homology dimension, (L+1, V)."""
        self._check_fitted()
        if dim not in self.dims:
            raise TopoVLMInputError(f"dimension {dim} was not imaged (dims={self.dims})")
        return self.images_[self.dims.index(dim)]

    def _check_fitted(self):
        if not hasattr(self, "images_"):
            raise TopoVLMInputError("call fit() first")


def standard_persistence_images(diagrams, dims=(0, 1), resolution: int = 20, sigma: float | None = None) -> np.ndarray:
    """Birth–persistence images of per-layer diagrams on one shared grid.

    For the "standard PH instead of zigzag" ablation: each layer's ordinary
    diagram (:func:`topovlm.standard_persistence`) becomes an image; essential
    classes (death inf) are cut at the largest finite death over all layers.

    Parameters
    ----------
    diagrams : list (L+1) of lists of (m, 2) arrays
    dims : tuple of int
    resolution : int
        Pixels per axis.
    sigma : float, optional
        Gaussian width in distance units; default 1/20 of the grid's range.

    Returns
    -------
    (P, L+1, resolution, resolution) float64 ndarray

    Notes
    -----
    Persistence images follow Adams et al., "Persistence images" (JMLR 2017),
    evaluated at pixel centres with weight = persistence; a reconstruction, the
    paper gives no detail of its standard-PH ablation.
    """
    finite = [d[p][np.isfinite(d[p][:, 1]), 1] for d in diagrams for p in dims if len(d[p])]
    cap = max((f.max() for f in finite if len(f)), default=1.0)
    pts = []
    for d in diagrams:
        row = []
        for p in dims:
            dg = np.asarray(d[p], dtype=np.float64).reshape(-1, 2).copy()
            dg[~np.isfinite(dg[:, 1]), 1] = cap
            row.append(np.stack([dg[:, 0], dg[:, 1] - dg[:, 0]], axis=1))
        pts.append(row)
    allp = np.concatenate([x for row in pts for x in row]) if pts else np.zeros((0, 2))
    bmax = max(allp[:, 0].max() if len(allp) else 1.0, 1e-9)
    pmax = max(allp[:, 1].max() if len(allp) else 1.0, 1e-9)
    gb = (np.arange(resolution) + 0.5) * bmax / resolution
    gp = (np.arange(resolution) + 0.5) * pmax / resolution
    s = sigma if sigma is not None else max(bmax, pmax) / 20
    out = np.zeros((len(dims), len(diagrams), resolution, resolution))
    for l, row in enumerate(pts):
        for i, bp in enumerate(row):
            if not len(bp):
                continue
            gx = _gaussian(gb[None, :] - bp[:, :1], s)
            gy = _gaussian(gp[None, :] - bp[:, 1:], s)
            out[i, l] = np.einsum("m,mx,my->xy", bp[:, 1], gx, gy)
    return out
