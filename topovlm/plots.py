"""Figures of the book. Every function draws on a given Axes (or a new one) and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .barcode import Barcode

DIM_COLORS = {0: "tab:blue", 1: "tab:orange"}


def _axes(ax, figsize=(7, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _layer_axis(ax, n_layers: int, zigzag: bool) -> None:
    if zigzag:
        ax.set_xticks(np.arange(0, 2 * n_layers - 1, 2 * max(1, (n_layers - 1) // 8)))
        ax.set_xticklabels([str(t // 2) for t in ax.get_xticks()])
        ax.set_xlabel("layer (zigzag index / 2; odd indices are intersections)")
    else:
        ax.set_xlabel("layer")


def plot_barcode(bc: Barcode, dims=(0, 1), effective: bool = False, ax=None, max_bars: int = 400):
    """Bars drawn along the layer axis, longest first within each dimension.

    Parameters
    ----------
    bc : Barcode
    dims : iterable of int
        Homology dimensions to draw.
    effective : bool
        Draw effective layer intervals ``[b~, d~]`` instead of zigzag indices.
    max_bars : int
        At most this many bars per dimension (the longest), so that a barcode
        with thousands of one-step bars stays readable; the title says how
        many were left out.
    """
    ax = _axes(ax)
    src = bc.effective() if effective else bc
    y, hidden = 0, 0
    for p in dims:
        keep = src.dims == p
        b, d = src.births[keep], src.deaths[keep]
        order = np.lexsort((b, -(d - b)))
        hidden += max(0, len(order) - max_bars)
        order = order[:max_bars]
        for i, j in enumerate(order):
            ax.plot([b[j], d[j] + (1 if effective else 0)], [y + i, y + i], color=DIM_COLORS.get(p, "k"), lw=1.2,
                    solid_capstyle="butt", label=f"H{p}" if i == 0 else None)
        y += len(order) + 2
    _layer_axis(ax, bc.n_layers, zigzag=not effective)
    ax.set_yticks([])
    ax.set_ylabel("bars")
    title = "effective intervals" if effective else "zigzag barcode"
    if hidden:
        title += f" ({hidden} shortest bars not drawn)"
    ax.set_title(title)
    if y:
        ax.legend(loc="upper right", fontsize="small")
    return ax


def plot_betti(bc: Barcode, dims=(0, 1), ax=None):
    """Betti numbers of every complex of the zigzag (layers and intersections)."""
    ax = _axes(ax)
    t = np.arange(bc.length)
    for p in dims:
        betti = bc.betti(p)
        ax.plot(t, betti, color=DIM_COLORS.get(p, "k"), lw=1, alpha=0.5)
        ax.plot(t[::2], betti[::2], "o", ms=3, color=DIM_COLORS.get(p, "k"), label=f"β{p} (layers)")
        ax.plot(t[1::2], betti[1::2], "x", ms=3, color=DIM_COLORS.get(p, "k"), label=f"β{p} (intersections)")
    _layer_axis(ax, bc.n_layers, zigzag=True)
    ax.set_ylabel("Betti number")
    ax.set_title("Betti curves along the zigzag")
    ax.legend(fontsize="small", ncol=2)
    return ax


def plot_complex(X, edges, triangles=None, ax=None, title: str | None = None):
    """A flag complex of a 2-D cloud: points, edges and (shaded) triangles."""
    ax = _axes(ax, figsize=(3, 3))
    X = np.asarray(X)
    if triangles is not None and len(triangles):
        for tri in triangles:
            ax.fill(X[tri, 0], X[tri, 1], color="tab:orange", alpha=0.15, lw=0)
    for i, j in np.asarray(edges):
        ax.plot(X[[i, j], 0], X[[i, j], 1], color="0.4", lw=0.6)
    ax.plot(X[:, 0], X[:, 1], ".", color="tab:blue", ms=4)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="small")
    return ax


def plot_diagram(dgm, ax=None, label: str | None = None, color=None):
    """A persistence diagram (birth, death); essential classes drawn at the top edge."""
    ax = _axes(ax, figsize=(3.5, 3.5))
    dgm = np.asarray(dgm, dtype=float).reshape(-1, 2)
    finite = np.isfinite(dgm[:, 1])
    top = dgm[finite, 1].max() * 1.1 if finite.any() else (dgm[:, 0].max() + 1 if len(dgm) else 1)
    ax.scatter(dgm[finite, 0], dgm[finite, 1], s=8, color=color, label=label)
    if (~finite).any():
        ax.scatter(dgm[~finite, 0], np.full((~finite).sum(), top), s=14, marker="^", color=color)
    ax.plot([0, top], [0, top], "k--", lw=0.6)
    ax.set_xlabel("birth")
    ax.set_ylabel("death (▲ = never dies)")
    return ax
