"""Figures of the book. Every function draws on a given Axes (or a new one) and returns it."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from .baselines import get_method
from .fidelity import thirds
from .models.base import load_image
from .tasks import is_correct
from .topology.barcode import Barcode
from .topology.selection import jaccard, random_jaccard

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
    ax = _axes(ax, figsize=(9, 0.45 * len(selections) + 1.2))
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


def plot_method_quality(rows, full_ppl: float, ax=None):
    """Held-out perplexity of each method's pruned model (log scale), full model as a line.

    Parameters
    ----------
    rows : list of (BaselineResult, perplexity, accuracy[, Interval of the ratio to the full model])
    full_ppl : float
    """
    ax = _axes(ax, figsize=(8, 3.2))
    names = [method_label(row[0]) for row in rows]
    ppl = [row[1] for row in rows]
    colors = [
        "tab:red" if row[0].method == "topovlm" else "tab:gray" if get_method(row[0].method).seeded else "tab:blue"
        for row in rows
    ]
    err = None
    if all(len(row) > 3 for row in rows):
        err = np.array([[p - full_ppl * row[3].low, full_ppl * row[3].high - p] for row, p in zip(rows, ppl)]).T
    ax.bar(range(len(rows)), ppl, color=colors, yerr=err, capsize=2, ecolor="0.3")
    ax.axhline(full_ppl, color="black", lw=1, ls="--", label=f"full model {full_ppl:.1f}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("held-out perplexity (log)")
    ax.legend(loc="upper left")
    return ax


def method_label(r) -> str:
    """A result's name in legends: the method, and the seed for a seeded method (random)."""
    return r.method + (f" {r.seed}" if get_method(r.method).seeded else "")


def plot_suite_accuracy(full, rows, sparsity: float, chance: dict | None = None, ax=None):
    """Grouped bars: accuracy per suite for the full model and each method at one sparsity.

    Parameters
    ----------
    full : topovlm.sweep.SweepRow
        The unpruned model.
    rows : list of topovlm.sweep.SweepRow
    sparsity : float
        Which rows to draw.
    chance : dict, optional
        suite -> accuracy of uniform guessing (:func:`topovlm.evaluate.chance`),
        drawn as a dotted line across each suite's bars.
    """
    at = [r for r in rows if r.sparsity == sparsity]
    suites = [s for s in full.accuracy if s != "all"]
    bars = [("full model", full.accuracy)] + [(method_label(r), r.accuracy) for r in at]
    # methods down the page, suites as a group of horizontal bars: readable at the width
    # of a book column however many methods there are
    ax = _axes(ax, (8, 1.2 + 0.16 * len(suites) * len(bars)))
    height = 0.8 / len(suites)
    y = np.arange(len(bars))
    for i, s in enumerate(suites):
        ys = y + (i - (len(suites) - 1) / 2) * height
        ax.barh(ys, [100 * acc[s] for _, acc in bars], height, label=s)
        if chance is not None:
            ax.vlines(
                np.full(len(ys), 100 * chance[s]),
                ys - height / 2,
                ys + height / 2,
                colors="k",
                linestyles=":",
                lw=1.2,
                label="chance" if i == 0 else None,
            )
    ax.set_yticks(y)
    ax.set_yticklabels([name for name, _ in bars])
    ax.invert_yaxis()  # full model on top, in the table's order
    ax.set_xlabel("held-out accuracy (%)")
    ax.set_xlim(0, 100)
    ax.set_xticks(range(0, 101, 20))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"accuracy per suite, {sparsity:.0%} of decoder layers removed")
    ax.legend(
        fontsize="small",
        ncols=len(suites) + (chance is not None),
        loc="lower center",
        bbox_to_anchor=(0.5, 1.06),
        frameon=False,
    )
    return ax


def plot_sparsity_sweep(rows, chance: float | None = None, ax=None):
    """Relative score (mean over suites of pruned / full) against sparsity, one line per
    method; the random baseline as the mean over seeds with its range shaded;
    ``chance`` (the relative score of uniform guessing) as a dotted line."""
    ax = _axes(ax, (7, 3.8))
    if chance is not None:
        ax.axhline(chance, color="k", lw=1, ls=":", label="chance")
    methods = list(dict.fromkeys(r.method for r in rows))
    for m in methods:
        mine = [r for r in rows if r.method == m]
        xs = sorted({r.sparsity for r in mine})
        vals = [[r.relative for r in mine if r.sparsity == x] for x in xs]
        mean = [float(np.mean(v)) for v in vals]
        (line,) = ax.plot(
            [100 * x for x in xs], mean, "o-", label=m + (f" (mean of {len(vals[0])})" if len(vals[0]) > 1 else "")
        )
        if len(vals[0]) > 1:
            ax.fill_between(
                [100 * x for x in xs],
                [min(v) for v in vals],
                [max(v) for v in vals],
                color=line.get_color(),
                alpha=0.15,
            )
    ax.set_xlabel("decoder layers removed (%)")
    ax.set_ylabel("relative score")
    ax.set_ylim(0, 1.05)
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize="small")
    return ax


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


def plot_layer_scores(rows, model: str, readings=None, ax=None):
    """Per-decoder-layer scores of every reading beside ShortGPT's, on one model.

    One row per reading: its score rescaled to [0, 1] (darker = removed first),
    a dot on each layer it removes. The dashed line closes the shallow third of
    the stack, where the paper finds topological activity; it finds consistency
    (redundancy) to the right.

    Parameters
    ----------
    rows : list of topovlm.fidelity.Row
        Rows with per-layer ``scores`` (the first row of each reading is used).
    model : str
    readings : sequence of str, optional
        Row names to draw, top to bottom; default every reading with scores.
    """

    names = readings or list(dict.fromkeys(r.reading for r in rows if r.model == model and r.scores))
    chosen = []
    for name in names:
        r = next((r for r in rows if r.model == model and r.reading == name and r.scores), None)
        if r is not None:
            chosen.append(r)
    n_layers = len(chosen[0].scores)
    ax = _axes(ax, figsize=(8, 0.26 * len(chosen) + 1.3))
    grid = np.zeros((len(chosen), n_layers))
    for i, r in enumerate(chosen):
        sc = np.asarray(r.scores, float)
        span = np.ptp(sc)
        grid[i] = (sc - sc.min()) / span if span > 0 else 0.0
        ax.plot(list(r.layers), [i] * len(r.layers), "o", ms=2.5, color="tab:red")
    ax.imshow(grid, aspect="auto", cmap="Greys", vmin=0, vmax=1.6, interpolation="nearest")
    ax.axvline(thirds(n_layers)[0].stop - 0.5, color="tab:blue", ls="--", lw=1)
    ax.set_yticks(range(len(chosen)))
    ax.set_yticklabels([r.reading for r in chosen], fontsize=7)
    ax.set_xlabel("decoder layer")
    ax.set_title(
        f"{model}: rescaled score (dark = removed first), red = removed at {chosen[0].sparsity:.0%}, "
        "dashed = shallow third",
        fontsize=8,
    )
    return ax


def plot_study(rows, axes=None, title: str | None = None):
    """One panel per model, one row per method, one marker per sparsity, with
    95 % intervals: relative score (vision-language models, higher is better)
    or perplexity x full (text model, log scale, lower is better)."""
    models = list(dict.fromkeys(r.model for r in rows))
    sparsities = sorted({r.sparsity for r in rows})
    methods = list(dict.fromkeys(r.reading for r in rows))
    if axes is None:
        _, axes = plt.subplots(
            1,
            len(models),
            figsize=(3.6 * len(models) + 2.4, 0.3 * len(methods) + 1.3),
            sharey=True,
            layout="constrained",
            squeeze=False,
        )
        axes = axes[0]
    markers = "os^Dv"
    offsets = np.linspace(-0.15, 0.15, len(sparsities))
    for ax, m in zip(axes, models):
        for k, s in enumerate(sparsities):
            for i, name in enumerate(methods):
                r = next((r for r in rows if r.model == m and r.sparsity == s and r.reading == name), None)
                if r is None:
                    continue
                iv = r.score
                if r.kind == "perplexity":
                    x, lo, hi = 1 / iv.value, 1 / iv.high, 1 / iv.low
                else:
                    x, lo, hi = iv.value, iv.low, iv.high
                ax.errorbar(
                    x,
                    i + offsets[k],
                    xerr=[[x - lo], [hi - x]],
                    fmt=markers[k % len(markers)],
                    color=f"C{k}",
                    ms=4,
                    lw=1,
                    label=f"{s:.0%}" if i == 0 or name == methods[0] else None,
                )
        kind = next(r.kind for r in rows if r.model == m)
        if kind == "perplexity":
            ax.set_xscale("log")
            ax.set_xlabel("perplexity x full (log)")
        else:
            ax.set_xlabel("relative score")
        ax.set_title(m, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(methods)))
    axes[0].set_yticklabels(methods, fontsize=8)
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    by_label = dict(zip(labels, handles))
    axes[-1].legend(by_label.values(), by_label.keys(), title="sparsity", fontsize=7, loc="best")
    if title:
        axes[0].figure.suptitle(title, fontsize=10)
    return axes


def plot_variants(rows, after: str | None = None, axes=None, title: str | None = None):
    """One panel per model, one line per variant: the share of the full model kept
    with its 95 % interval (:class:`topovlm.beyond.Row`); with ``after`` (an
    ``extra`` key holding an Interval, e.g. ``"healed"``) a second marker and an
    arrow from the first score to it."""
    models = list(dict.fromkeys(r.model for r in rows))
    if axes is None:
        n = max(len([r for r in rows if r.model == m]) for m in models)
        _, axes = plt.subplots(
            1, len(models), figsize=(3.8 * len(models) + 1.6, 0.32 * n + 1.3), layout="constrained", squeeze=False
        )
        axes = axes[0]
    for ax, m in zip(axes, models):
        mine = [r for r in rows if r.model == m]
        for i, r in enumerate(mine):
            iv = r.score
            ax.errorbar(
                iv.value,
                i,
                xerr=[[iv.value - iv.low], [iv.high - iv.value]],
                fmt="o",
                color="C0",
                ms=4,
                lw=1,
                label="pruned" if i == 0 else None,
            )
            if after is not None:
                h = r.extra[after]
                ax.errorbar(
                    h.value,
                    i + 0.2,
                    xerr=[[h.value - h.low], [h.high - h.value]],
                    fmt="s",
                    color="C2",
                    ms=4,
                    lw=1,
                    label=after if i == 0 else None,
                )
                ax.annotate(
                    "", (h.value, i + 0.2), (iv.value, i), arrowprops=dict(arrowstyle="->", color="0.5", lw=0.8)
                )
        ax.set_yticks(range(len(mine)))
        ax.set_yticklabels([r.name for r in mine], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("share of the full model kept (1 = full model)")
        ax.set_title(m, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        if after is not None:
            ax.legend(fontsize=7, loc="best")
    if title:
        axes[0].figure.suptitle(title, fontsize=10)
    return axes


SCALE_STAGES = ("complexes", "homology", "images", "scoring", "selection")


def plot_scale(frame, axes=None):
    """Seconds per stage of the search (stacked) and peak memory against
    the number of points N (:func:`topovlm.beyond.search_scale`)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    done = frame.dropna(subset=["total"])
    x = np.arange(len(done))
    bottom = np.zeros(len(done))
    for k, stage in enumerate(s for s in SCALE_STAGES if s in done):
        values = done[stage].to_numpy(dtype=float)
        axes[0].bar(x, values, bottom=bottom, color=f"C{k}", label=stage, width=0.6)
        bottom += values
    axes[0].set_xticks(x)
    axes[0].set_xticklabels([str(int(n)) for n in done["N"]])
    axes[0].set_xlabel("points per cloud N")
    axes[0].set_ylabel("seconds")
    axes[0].legend(fontsize=7)
    axes[0].set_title("where the search's time goes", fontsize=9)
    axes[1].plot(done["N"], done["peak_gb"], "o-")
    axes[1].set_xscale("log", base=2)
    axes[1].set_xlabel("points per cloud N")
    axes[1].set_ylabel("peak memory (GB)")
    axes[1].set_title("peak resident memory", fontsize=9)
    axes[1].grid(alpha=0.3)
    return axes


def plot_robustness(rows, n_layers: int, axes=None, title: str | None = None):
    """Calibration variants (:func:`topovlm.robustness.calibration_robustness`): the
    Jaccard index of each choice with the reference's (dotted: two random choices) and
    the pruned model's score with its interval."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 0.3 * len(rows) + 1.4), sharey=True, layout="constrained")
    y = np.arange(len(rows))
    axes[0].barh(y, [r.jaccard for r in rows], color="C0")
    axes[0].axvline(random_jaccard(n_layers, len(rows[0].layers)), color="0.4", ls=":", label="two random choices")
    axes[0].set_xlim(0, 1)
    axes[0].set_xlabel("Jaccard with the reference's layers")
    axes[0].legend(fontsize=7)
    for i, r in enumerate(rows):
        if hasattr(r.score, "low"):
            iv = r.score
            axes[1].errorbar(iv.value, i, xerr=[[iv.value - iv.low], [iv.high - iv.value]], fmt="o", color="C1", ms=4)
    axes[1].set_xlabel("share of the full model kept")
    axes[1].grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([r.variant.name for r in rows], fontsize=8)
    axes[0].invert_yaxis()
    if title:
        axes[0].figure.suptitle(title, fontsize=10)
    return axes
