"""Figures of the book. Every function draws on a given Axes (or a new one) and returns it."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from .samples import load_image
from .tasks import is_correct
from .topology.barcode import Barcode
from .topology.selection import jaccard

DIM_COLORS = {0: "tab:blue", 1: "tab:orange"}


def panel(ax, figsize=(7, 3.5)):
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
    ax = panel(ax)
    src = bc.effective() if effective else bc
    y, hidden = 0, 0
    for p in dims:
        keep = src.dims == p
        b, d = src.births[keep], src.deaths[keep]
        order = np.lexsort((b, -(d - b)))
        hidden += max(0, len(order) - max_bars)
        order = order[:max_bars]
        for i, j in enumerate(order):
            ax.plot(
                [b[j], d[j] + (1 if effective else 0)],
                [y + i, y + i],
                color=DIM_COLORS.get(p, "k"),
                lw=1.2,
                solid_capstyle="butt",
                label=f"H{p}" if i == 0 else None,
            )
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
    ax = panel(ax)
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
    ax = panel(ax, figsize=(3, 3))
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
    ax = panel(ax, figsize=(3.5, 3.5))
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


def plot_epi(images, v_grid, dims=(0, 1), axes=None):
    """EPI heat maps, one per homology dimension: birth layer (x) by persistence (y).

    Parameters
    ----------
    images : (P, L+1, V) — ``EffectivePersistenceImage.images_`` or ``SearchResult.images``
    v_grid : (V,) persistence grid
    """
    images = np.asarray(images)
    if axes is None:
        _, axes = plt.subplots(1, len(images), figsize=(5 * len(images), 3.6), layout="constrained", squeeze=False)
        axes = axes[0]
    L = images.shape[1] - 1
    for ax, img, p in zip(axes, images, dims):
        im = ax.imshow(
            img.T,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(-0.5, L + 0.5, v_grid[0] - 0.5, v_grid[-1] + 0.5),
        )
        ax.set_xlabel("birth layer u")
        ax.set_ylabel("persistence v (layers)")
        ax.set_title(f"EPI, H{p}")
        plt.colorbar(im, ax=ax, shrink=0.85, label="weighted mass")
    return axes


def plot_scores(result, axes=None, title: str | None = None):
    """Activity and consistency per decoder layer, removed layers marked.

    Parameters
    ----------
    result : SearchResult
    """
    sc, sel = result.scores, result.selection
    L = sel.n_layers
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(9, 4.8), sharex=True, layout="constrained")
    x = np.arange(L)
    removed = np.isin(x, sel.layers)
    for ax, values, name in (
        (axes[0], sc.decoder_activity, "activity A"),
        (axes[1], sc.decoder_consistency, "consistency S"),
    ):
        ax.bar(x[~removed], values[~removed], color="tab:blue", label="kept")
        ax.bar(x[removed], values[removed], color="tab:red", label="removed")
        ax.set_ylabel(name)
    lo, hi = np.nanmin(sc.decoder_consistency), np.nanmax(sc.decoder_consistency)
    axes[1].set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9))
    if sel.rule == "threshold":
        axes[1].axhline(sel.value * hi, color="k", ls="--", lw=0.8, label=f"eps · max S (eps={sel.value})")
    axes[1].set_xlabel(
        "decoder layer i (scored by the cloud of its output, i+1)"
        if sc.layer_map == "output"
        else "decoder layer i (scored by cloud i)"
    )
    axes[0].legend(fontsize="small", ncol=2)
    axes[0].set_title(title or f"{len(sel.layers)} of {L} layers removed ({sel.rule} = {sel.value:g})")
    return axes


def plot_selection_comparison(selections: dict, n_layers: int, ax=None):
    """Which decoder layers each method removes: one row per method.

    Parameters
    ----------
    selections : dict name -> list of removed decoder layers
    n_layers : int — L
    """
    ax = panel(ax, figsize=(9, 0.45 * len(selections) + 1.2))
    names = list(selections)
    grid = np.zeros((len(names), n_layers))
    for r, name in enumerate(names):
        grid[r, list(selections[name])] = 1
    ax.imshow(grid, cmap="Reds", vmin=0, vmax=1.4, aspect="auto")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.set_xticks(range(0, n_layers, max(1, n_layers // 16)))
    ax.set_xlabel("decoder layer (red = removed)")
    for r in range(len(names) + 1):
        ax.axhline(r - 0.5, color="white", lw=1)
    if len(names) == 2:
        a, b = (set(selections[n]) for n in names)
        ax.set_title(f"{len(a & b)} layers in common, Jaccard {jaccard(a, b):.2f}")
    return ax


def plot_clouds(clouds, layers=None, axes=None, title: str | None = None):
    """How the calibration clouds change along the stack.

    Left: mean point norm per layer and mean cosine similarity of each point
    with itself in the next layer. Right: the clouds of a few layers projected
    on their own first two principal components.

    Parameters
    ----------
    clouds : (L+1, N, d) array
    layers : list of int, optional
        Clouds to project (default: first, a quarter, middle, three quarters, last).
    """
    X = np.asarray(clouds, dtype=np.float64)
    n = X.shape[0]
    layers = layers if layers is not None else sorted({0, n // 4, n // 2, 3 * n // 4, n - 1})
    if axes is None:
        fig = plt.figure(figsize=(10, 6), layout="constrained")
        grid = fig.add_gridspec(2, len(layers), height_ratios=[1.3, 1])
        axes = [fig.add_subplot(grid[0, :])] + [fig.add_subplot(grid[1, i]) for i in range(len(layers))]
    ax = axes[0]
    norms = np.linalg.norm(X, axis=2)
    unit = X / np.maximum(norms[..., None], 1e-12)
    cos_next = (unit[:-1] * unit[1:]).sum(axis=2).mean(axis=1)
    ax.plot(range(n), norms.mean(axis=1), color="tab:blue", marker=".")
    ax.set_xlabel("cloud (0 = embeddings, i+1 = output of decoder layer i)")
    ax.set_ylabel("mean norm", color="tab:blue")
    twin = ax.twinx()
    twin.plot(np.arange(n - 1) + 0.5, cos_next, color="tab:orange", marker=".")
    twin.set_ylabel("cos(point, same point next layer)", color="tab:orange")
    twin.set_ylim(min(0.0, cos_next.min()), 1.02)
    for a, l in zip(axes[1:], layers):
        Y = X[l] - X[l].mean(axis=0)
        _, _, vt = np.linalg.svd(Y, full_matrices=False)
        P = Y @ vt[:2].T
        a.scatter(P[:, 0], P[:, 1], s=4, c=np.arange(len(P)), cmap="viridis")
        a.set_title(f"cloud {l}", fontsize=9)
        a.set_xticks([])
        a.set_yticks([])
    if title:
        axes[0].set_title(title)
    return axes


def plot_qa_examples(qas, answers, ncols: int = 4, axes=None):
    """The media of a few questions with the question, the model's answer and
    the reference (images as they are; videos as first | last frame).

    Parameters
    ----------
    qas : sequence of topovlm.tasks.QA
    answers : sequence of str
    """

    n = len(qas)
    nrows = int(np.ceil(n / ncols))
    if axes is None:
        _, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 3.0 * nrows), layout="constrained", squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    for ax, q, a in zip(axes, qas, answers):
        s = q.sample
        if s.image is not None:
            ax.imshow(np.asarray(load_image(s.image)))
        elif s.video is not None:
            v = np.asarray(s.video)
            gap = np.full((v.shape[1], 2, 3), 255, np.uint8)
            ax.imshow(np.concatenate([v[0], gap, v[-1]], axis=1))

        ok = is_correct(q, a)
        ax.set_title("\n".join(textwrap.wrap(s.text, 30)[:3]), fontsize=10)
        ax.set_xlabel(f"model: {a!r}\nreference: {q.answer!r}", fontsize=10, color="tab:green" if ok else "tab:red")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.axis("off")
    return axes
