"""Zigzag barcodes and their effective (layer) intervals.

Conventions
-----------
A zigzag over L+1 layer complexes has 2L+1 complexes, zigzag index
``t = 0 .. 2L`` (layer ``l`` at ``t = 2l``, intersection ``K_{l,l+1}`` at
``t = 2l+1``). An interval ``(dim, birth, death)`` is **closed** on both ends:
the class exists in every complex with index ``birth <= t <= death``. A class
alive in the last complex has ``death = 2L``; there is no infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import TopoVLMInputError


@dataclass(frozen=True)
class Barcode:
    """Zigzag persistence intervals in zigzag indices.

    Parameters
    ----------
    dims, births, deaths : (M,) int64 arrays
        Homology dimension and closed interval ``[birth, death]`` of each class.
    n_layers : int
        Number of layer complexes (clouds), L + 1.
    """

    dims: np.ndarray
    births: np.ndarray
    deaths: np.ndarray
    n_layers: int

    def __post_init__(self):
        for name in ("dims", "births", "deaths"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64).ravel())
        if not (len(self.dims) == len(self.births) == len(self.deaths)):
            raise TopoVLMInputError("dims, births and deaths must have the same length")
        if len(self.births) and (
            (self.births < 0).any() or (self.deaths > self.length - 1).any() or (self.births > self.deaths).any()
        ):
            raise TopoVLMInputError(f"intervals must satisfy 0 <= birth <= death <= {self.length - 1}")

    @classmethod
    def from_intervals(cls, intervals, n_layers: int) -> Barcode:
        """Build from an iterable of ``(dim, birth, death)`` triples, sorted canonically."""
        arr = np.array(sorted(tuple(int(x) for x in iv) for iv in intervals), dtype=np.int64).reshape(-1, 3)
        return cls(arr[:, 0], arr[:, 1], arr[:, 2], n_layers)

    @property
    def length(self) -> int:
        """Number of complexes in the zigzag, 2L + 1."""
        return 2 * self.n_layers - 1

    def intervals(self, dim: int | None = None) -> list[tuple[int, int, int]]:
        """Sorted list of ``(dim, birth, death)``, optionally of one dimension."""
        keep = np.ones(len(self.dims), bool) if dim is None else self.dims == dim
        return sorted(zip(self.dims[keep].tolist(), self.births[keep].tolist(), self.deaths[keep].tolist()))

    def betti(self, dim: int) -> np.ndarray:
        """Number of intervals of dimension ``dim`` alive at each zigzag index.

        Returns
        -------
        (2L+1,) int64 ndarray
        """
        t = np.arange(self.length)
        keep = self.dims == dim
        b, d = self.births[keep], self.deaths[keep]
        return ((b[:, None] <= t[None, :]) & (t[None, :] <= d[:, None])).sum(axis=0).astype(np.int64)

    def effective(self) -> EffectiveIntervals:
        """Project onto layers: ``b~ = ceil(b/2)``, ``d~ = floor(d/2)``.

        Intervals with ``d~ < b~`` (alive only in one intersection complex)
        are dropped. See :class:`EffectiveIntervals`.
        """
        b = (self.births + 1) // 2
        d = self.deaths // 2
        keep = d >= b
        return EffectiveIntervals(self.dims[keep], b[keep], d[keep], self.n_layers)

    def __len__(self) -> int:
        return len(self.dims)

    def __eq__(self, other) -> bool:
        return isinstance(other, Barcode) and self.n_layers == other.n_layers and self.intervals() == other.intervals()

    def __repr__(self) -> str:
        counts = {int(p): int((self.dims == p).sum()) for p in np.unique(self.dims)}
        return f"Barcode(n_layers={self.n_layers}, intervals per dim={counts})"


@dataclass(frozen=True)
class EffectiveIntervals:
    """Intervals in layer indices: the layers ``[birth, death]`` a class lives at.

    Parameters
    ----------
    dims, births, deaths : (M,) int64 arrays
        ``births``/``deaths`` are layer indices ``0 .. L``.
    n_layers : int
        L + 1.

    Notes
    -----
    Following Gardinazzi et al. (ICML 2025, and their published code): a zigzag interval ``[b, d]`` is projected onto the layers
    it really contains, ``[ceil(b/2), floor(d/2)]``. The paper (TopoVLM)
    says "projected onto the nearest model layer indices" without a formula.
    """

    dims: np.ndarray
    births: np.ndarray
    deaths: np.ndarray
    n_layers: int

    @property
    def persistence(self) -> np.ndarray:
        """``tau = d~ - b~`` in layers, (M,) int64."""
        return self.deaths - self.births

    def select(self, dim: int) -> EffectiveIntervals:
        keep = self.dims == dim
        return EffectiveIntervals(self.dims[keep], self.births[keep], self.deaths[keep], self.n_layers)

    def __len__(self) -> int:
        return len(self.dims)
