"""Where the topology changes: simple per-layer statistics of barcodes and diagrams.

The consistency score asks whether what a layer carries lives on in other
layers. These statistics ask something simpler: how much does the topology
*change* across decoder layer i, from its input cloud i to its output cloud
i + 1? If a layer that changes the topology little is one that can go, each
of them is a redundancy score (its negative: less change, more redundant),
and the book measures every one against the damage of removing each layer.

All of them follow the package's ``"output"`` layer map: decoder layer i sits
between cloud i and cloud i + 1.
"""

from __future__ import annotations

import numpy as np

from .._checks import TopoVLMInputError
from .barcode import Barcode

#: The change statistics of :func:`layer_changes`, each (L,) per decoder layer.
CHANGES = ("born", "dying", "turnover", "betti change")


def classes_per_cloud(bc: Barcode, dim: int = 1) -> np.ndarray:
    """(L+1,) number of ``dim``-classes alive at each cloud (the Betti number of its complex)."""
    return bc.betti(dim)[::2]


def layer_changes(bc: Barcode, dim: int = 1) -> dict[str, np.ndarray]:
    """How much each decoder layer changes the topology of the zigzag.

    Parameters
    ----------
    bc : Barcode
        Zigzag barcode over L + 1 clouds.
    dim : int
        Homology dimension.

    Returns
    -------
    dict of str -> (L,) float64
        ``born``: effective intervals born at cloud i + 1 (classes the layer
        creates); ``dying``: effective intervals whose last cloud is i (classes
        the layer ends); ``turnover``: their sum; ``betti change``:
        ``|beta(i + 1) - beta(i)|``.
    """
    L = bc.n_layers - 1
    if L < 1:
        raise TopoVLMInputError(f"a barcode over {bc.n_layers} cloud(s) has no decoder layer")
    eff = bc.effective().select(dim)
    born = np.bincount(eff.births, minlength=L + 1)[1:].astype(np.float64)
    ends = eff.deaths[eff.deaths < L]  # classes alive up to the last cloud end at no layer
    dying = np.bincount(ends, minlength=L + 1)[:L].astype(np.float64)
    betti = classes_per_cloud(bc, dim).astype(np.float64)
    return {"born": born, "dying": dying, "turnover": born + dying, "betti change": np.abs(np.diff(betti))}


def neighbour_distances(diagrams, dim: int = 1, metric: str = "wasserstein") -> np.ndarray:
    """Distance between the diagrams of neighbouring clouds (standard, per-layer PH).

    Parameters
    ----------
    diagrams : list (length L+1) of lists of (m, 2) arrays
        As :func:`topovlm.topology.standard.standard_persistence` returns them.
    dim : int
    metric : {"wasserstein", "bottleneck"}
        persim's distances, on the finite points of each diagram (essential
        classes are left out: their death is infinite).

    Returns
    -------
    (L,) float64
        Distance between the diagrams of cloud i and cloud i + 1.
    """
    import persim

    if metric not in ("wasserstein", "bottleneck"):
        raise TopoVLMInputError(f"metric must be 'wasserstein' or 'bottleneck', got {metric!r}")
    if len(diagrams) < 2:
        raise TopoVLMInputError("neighbour distances need at least two diagrams")
    dist = persim.wasserstein if metric == "wasserstein" else persim.bottleneck

    def finite(d):
        d = np.asarray(d[dim] if dim < len(d) else np.zeros((0, 2)), dtype=np.float64).reshape(-1, 2)
        return d[np.isfinite(d[:, 1])]

    dgms = [finite(d) for d in diagrams]
    return np.array([float(dist(a, b)) if len(a) or len(b) else 0.0 for a, b in zip(dgms[:-1], dgms[1:])])
