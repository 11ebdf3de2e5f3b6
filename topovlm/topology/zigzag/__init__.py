"""Zigzag persistent homology of a sequence of point clouds.

One function, :func:`zigzag_persistence`, with interchangeable engines:

========================  =====================================================
``"fast"`` (default)      ours: homology of each complex, then the zigzag of
                          small matrices (:mod:`topovlm.topology.zigzag.fast`)
``"dionysus"``            dionysus' classic zigzag algorithm (reference)
``"dionysus-fast"``       dionysus' FastZigzag route (reference)
========================  =====================================================

All engines return the same :class:`~topovlm.topology.barcode.Barcode` (closed
intervals in zigzag indices; the test suite checks that they agree).
A new engine is one function ``(ZigzagComplexes, max_dim) -> Barcode`` and one
line in :data:`ENGINES`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..._checks import TopoVLMInputError, check_choice
from ..barcode import Barcode
from ..complexes import ZigzagComplexes, zigzag_complexes
from .fast import fast_zigzag_barcode
from .reference import dionysus_fast_zigzag_barcode, dionysus_zigzag_barcode

ENGINES: dict[str, Callable[[ZigzagComplexes, int], Barcode]] = {
    "fast": fast_zigzag_barcode,
    "dionysus": dionysus_zigzag_barcode,
    "dionysus-fast": dionysus_fast_zigzag_barcode,
}


def zigzag_persistence(
    clouds_or_complexes, k: int = 15, metric: str = "euclidean", max_dim: int = 1, engine: str = "fast"
) -> Barcode:
    """H0 (H1, H2) zigzag persistence of the k-NN clique-complex zigzag.

    Parameters
    ----------
    clouds_or_complexes : (L+1, N, d) array-like, sequence of (N, d_l) arrays, or ZigzagComplexes
        The per-layer point clouds, or an already built zigzag.
    k : int
        Neighbours per point (paper: 15). Ignored for a ZigzagComplexes.
    metric : {"euclidean", "cosine"}
        Ignored for a ZigzagComplexes.
    max_dim : {0, 1, 2}
        Highest homology dimension (the paper uses 0 and 1; 2 lists the
        tetrahedra of every complex, see the chapter "What the paper did not try").
    engine : {"fast", "dionysus", "dionysus-fast"}

    Returns
    -------
    Barcode
        Closed intervals ``(dim, birth, death)`` in zigzag indices
        (layer l at 2l, ``K_l ∩ K_{l+1}`` at 2l+1) over Z/2.
    """
    check_choice(engine, list(ENGINES), "engine")
    if max_dim not in (0, 1, 2):
        raise TopoVLMInputError(f"max_dim must be 0, 1 or 2, got {max_dim!r}")
    if isinstance(clouds_or_complexes, ZigzagComplexes):
        zz = clouds_or_complexes
    else:
        zz = zigzag_complexes(clouds_or_complexes, k=k, metric=metric)
    return ENGINES[engine](zz, max_dim)
