"""Reference zigzag engines on dionysus 2 (Morozov).

Two routes to the same barcode:

* ``"dionysus"`` — the classic zigzag algorithm
  (``dionysus.zigzag_homology_persistence``, Carlsson, de Silva & Morozov 2009);
* ``"dionysus-fast"`` — FastZigzag (Dey & Hou, ESA 2022) as dionysus implements
  it (``fast_zigzag`` -> ``homology_persistence`` -> ``init_zigzag_diagrams``).

Both take every simplex of the union of the complexes with the zigzag indices
at which it appears and disappears. dionysus reports half-open intervals
``[b, d)`` in those times; we convert to the closed convention of
:mod:`topovlm.topology.barcode` (``[b, d - 1]``, infinity -> ``2L``) and drop
intervals of length zero, which are artefacts of processing a batch of
simplices one at a time.
"""

from __future__ import annotations

import numpy as np

from ..._checks import TopoVLMInputError
from ..barcode import Barcode
from ..complexes import ZigzagComplexes


def _import_dionysus():
    try:
        import dionysus
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise TopoVLMInputError(
            "the dionysus engines need dionysus 2.2.3: pip install 'topovlm[reference]' "
            "(it compiles against Boost >= 1.81 headers: apt-get install libboost1.81-dev)"
        ) from None
    return dionysus


def zigzag_simplices(zz: ZigzagComplexes, max_dim: int = 1) -> tuple[list[list[int]], list[list[int]]]:
    """Every simplex of the zigzag with its toggle times.

    Parameters
    ----------
    zz : ZigzagComplexes
    max_dim : int
        Homology dimensions wanted; simplices up to ``max_dim + 1`` are listed.

    Returns
    -------
    simplices : list of vertex lists, faces before cofaces
    times : list of increasing zigzag indices per simplex: it appears at
        ``times[0]``, disappears at ``times[1]``, reappears at ``times[2]``...
    """
    n, T = zz.n_points, zz.length
    simplices: list[list[int]] = [[v] for v in range(n)]
    times: list[list[int]] = [[0] for _ in range(n)]
    per_t = [zz.edge_keys(t) for t in range(T)]
    levels = [(per_t, 2)]
    for size, cliques in ((3, zz.triangles), (4, zz.tetrahedra))[:max_dim]:
        levels.append(([_clique_keys(cliques(t), n) for t in range(T)], size))
    for keys_t, size in levels:
        union = np.unique(np.concatenate(keys_t)) if any(len(k) for k in keys_t) else np.zeros(0, np.int64)
        present = np.zeros((len(union), T), dtype=bool)
        for t, k in enumerate(keys_t):
            present[np.searchsorted(union, k), t] = True
        padded = np.concatenate([np.zeros((len(union), 1), bool), present], axis=1)
        toggles = padded[:, 1:] != padded[:, :-1]
        for key, row in zip(union.tolist(), toggles):
            verts = []
            for _ in range(size):
                verts.append(key % n)
                key //= n
            simplices.append(verts[::-1])
            times.append(np.flatnonzero(row).tolist())
    return simplices, times


def _clique_keys(cliques: np.ndarray, n: int) -> np.ndarray:
    """One int64 key per clique, ``((v0 * n + v1) * n + v2) ...`` (n**4 < 2**63 for n < 55,000)."""
    keys = np.zeros(len(cliques), dtype=np.int64)
    for col in cliques.T:
        keys = keys * n + col
    return keys


def _to_closed(dim: int, birth: float, death: float, end: int):
    b = int(round(birth))
    d = end if np.isinf(death) else int(round(death)) - 1
    return (dim, b, d) if d >= b else None


def dionysus_zigzag_barcode(zz: ZigzagComplexes, max_dim: int = 1) -> Barcode:
    """Zigzag barcode by dionysus' classic ``zigzag_homology_persistence``."""
    d = _import_dionysus()
    simplices, times = zigzag_simplices(zz, max_dim)
    f = d.Filtration(simplices)
    # dionysus sorts the filtration; re-align the times with its order
    index = {tuple(sorted(s)): i for i, s in enumerate(simplices)}
    ftimes = [[float(x) for x in times[index[tuple(sorted(s))]]] for s in f]
    _, dgms, _ = d.zigzag_homology_persistence(f, ftimes)
    end = zz.length - 1
    out = []
    for dim, dgm in enumerate(dgms):
        if dim > max_dim:
            continue
        out += [iv for p in dgm if (iv := _to_closed(dim, p.birth, p.death, end))]
    return Barcode.from_intervals(out, zz.n_layers)


def dionysus_fast_zigzag_barcode(zz: ZigzagComplexes, max_dim: int = 1) -> Barcode:
    """Zigzag barcode by dionysus' FastZigzag route (Dey & Hou, ESA 2022)."""
    d = _import_dionysus()
    simplices, times = zigzag_simplices(zz, max_dim)
    end = zz.length - 1
    # FastZigzag needs a zigzag that ends empty: remove what is left after `end`
    ftimes = [[float(x) for x in ts] + ([float(end + 1)] if len(ts) % 2 else []) for ts in times]
    cone = d.fast_zigzag(simplices, ftimes)
    r = d.homology_persistence(cone)
    dgms = d.init_zigzag_diagrams(r, cone)
    out = []
    for dim, by_type in enumerate(dgms):
        if dim > max_dim:
            continue
        for dgm in by_type.values():
            out += [iv for p in dgm if (iv := _to_closed(dim, p.birth, min(p.death, end + 1), end))]
    return Barcode.from_intervals(out, zz.n_layers)
