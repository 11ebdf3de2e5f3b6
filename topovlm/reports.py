"""Every results table: a pandas DataFrame a reader can reuse, and its Markdown view.

Each table comes in two forms. ``*_frame`` returns the numbers as a
:class:`pandas.DataFrame` (accuracies as fractions, intervals as ``*_low`` /
``*_high`` columns, layers as tuples), for a reader who wants to plot, filter or
export them. ``*_table`` renders that frame as the Markdown table a chapter or
the CLI shows, with the rounding and the interval notation of the book.

=====================  ==========================================================
table                  rows
=====================  ==========================================================
``sweep``              full model, chance, (sparsity, method): accuracy per suite,
                       relative score [95 % CI] (chapters 05-07, ``topovlm evaluate``)
``ablation``           ablation variants with their change against the default
``stability``          pairwise Jaccard of selections across calibration seeds
``baselines``          layers removed, search time and passes of each method
``quality``            text model: perplexity x full [95 % CI], factual accuracy
``efficiency``         full vs pruned: parameters, memory, prefill, decode
``dev`` / ``test``     the fidelity study's readings (chapter 04b)
``robustness``         the choice under other calibration sets
``versions``           package versions of a build
=====================  ==========================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .baselines import get_method
from .intervals import Interval, difference_interval, relative_score_interval
from .topology.selection import jaccard, random_jaccard


def markdown(frame: pd.DataFrame, note: str = "") -> str:
    """A frame of display strings as a Markdown table (``note`` as a paragraph after it)."""

    def line(cells) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    head = line(frame.columns).replace("|  |", "| |")  # an unnamed first column: "| | a |"
    out = [head, "|" + "---|" * len(frame.columns)]
    out += [line(row) for row in frame.itertuples(index=False)]
    return "\n".join(out) + (f"\n\n{note}" if note else "")


def method_label(method: str, seed: int) -> str:
    """A method's name in tables: the seed is part of it for a seeded method (random)."""
    return get_method(method).tagged(seed)


def layer_ranges(layers) -> str:
    """Compact layer list: [0, 1, 2, 5, 7, 8] -> "0-2, 5, 7-8"."""
    out, run = [], []
    for x in sorted(layers):
        if run and x != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(x)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def _interval(row, prefix: str) -> Interval | None:
    low = row[f"{prefix}_low"]
    if low is None or (isinstance(low, float) and np.isnan(low)):
        return None
    return Interval(row[f"{prefix}_value"], low, row[f"{prefix}_high"])


def _ci_columns(iv: Interval | None, prefix: str) -> dict:
    if iv is None:
        return {f"{prefix}_value": np.nan, f"{prefix}_low": np.nan, f"{prefix}_high": np.nan}
    return {f"{prefix}_value": iv.value, f"{prefix}_low": iv.low, f"{prefix}_high": iv.high}


# --- pruning sweeps (chapters 05-07, topovlm evaluate) ---------------------------------------


def sweep_frame(full, rows, chance: dict | None = None) -> pd.DataFrame:
    """One record per line of :func:`sweep_table`, in its order.

    Parameters
    ----------
    full : SweepRow
        The unpruned model (:func:`topovlm.sweep.pruning_sweep`).
    rows : list of SweepRow
    chance : dict, optional
        Accuracy of uniform guessing per suite (:func:`topovlm.evaluate.chance`).

    Returns
    -------
    DataFrame
        ``kind`` (full / chance / method / mean), ``sparsity``, ``method``, ``seed``,
        ``layers``, one accuracy column per suite and ``all`` (fractions),
        ``relative`` and its paired bootstrap interval ``relative_value`` /
        ``relative_low`` / ``relative_high`` (NaN without per-question outcomes),
        ``exact`` (exact-match accuracy over all questions, when recorded).
    """
    suites = [s for s in full.accuracy if s != "all"]
    ci = bool(full.outcomes)
    records = []

    def add(r, kind, method):
        iv = r.interval(full) if ci and r is not full and r.outcomes else None
        records.append(
            {
                "kind": kind,
                "sparsity": np.nan if kind in ("full", "chance") else r.sparsity,
                "method": method,
                "seed": r.seed,
                "layers": tuple(r.layers),
                **{s: r.accuracy[s] for s in suites},
                "all": r.accuracy["all"],
                "relative": r.relative,
                **_ci_columns(iv, "relative"),
                "exact": None if r.exact is None else r.exact["all"],
            }
        )

    add(full, "full", "full model")
    if chance is not None:
        add(type(full).chance_row(full, chance), "chance", "chance (uniform guess)")
    for s in sorted({r.sparsity for r in rows}):
        at = [r for r in rows if r.sparsity == s]
        for r in at:
            add(r, "method", method_label(r.method, r.seed))
        for name in dict.fromkeys(r.method for r in at if get_method(r.method).seeded):  # the mean over seeds
            seeded = [r for r in at if r.method == name]
            if len(seeded) > 1:
                m = type(seeded[0]).mean_of(seeded)
                add(m, "mean", m.method)
    return pd.DataFrame.from_records(records)


def sweep_table(full, rows, reported: dict | None = None, chance: dict | None = None, reported_on: str = "") -> str:
    """Markdown: one row per (sparsity, method), accuracy per suite in %, relative score.

    Random seeds get their own rows and a mean row (its interval resamples
    the questions of the seeds' mean outcome). Rows that carry per-question
    outcomes show the relative score with its paired bootstrap 95 % interval
    (:mod:`topovlm.intervals`). When the sweep recorded
    exact match, its overall value is a column of its own. ``chance`` (from
    :func:`topovlm.evaluate.chance`) adds the row of uniform guessing;
    ``reported`` maps a method to the paper's relative score, shown in its
    own column, headed with the model it was measured on (``reported_on``).
    """
    frame = sweep_frame(full, rows, chance)
    suites = [s for s in full.accuracy if s != "all"]
    ci = bool(full.outcomes)
    view = pd.DataFrame(
        {
            "sparsity": ["-" if k in ("full", "chance") else f"{s:.0%}" for k, s in zip(frame.kind, frame.sparsity)],
            "method": frame.method,
            "layers removed": [
                layer_ranges(layers) if k == "method" else {"full": "-", "chance": "-", "mean": ""}[k]
                for k, layers in zip(frame.kind, frame.layers)
            ],
            **{s: [f"{100 * a:.1f}" for a in frame[s]] for s in suites},
            "all": [f"{100 * a:.1f}" for a in frame["all"]],
        }
    )
    view["relative score" + (" [95 % CI]" if ci else "")] = [
        iv.format(3) if (iv := _interval(row, "relative")) is not None else f"{row['relative']:.3f}"
        for _, row in frame.iterrows()
    ]
    if full.exact is not None:
        view["exact match, all"] = ["-" if e is None or np.isnan(e) else f"{100 * e:.1f}" for e in frame.exact]
    if reported:
        head = f"paper, reported ({reported_on})" if reported_on else "paper (reported)"
        view[head] = [str(reported.get(m, "")) for m in frame.method]
    return markdown(view)


# --- ablations and selection stability (chapter 07) ------------------------------------------


def ablation_frame(rows, reference: str) -> pd.DataFrame:
    """One record per ablation variant (:class:`topovlm.ablation.AblationRow`).

    Columns: ``variant``, ``layers``, accuracy per suite (fractions), ``relative``
    with its interval (``relative_value/low/high``), and the change against the
    ``reference`` variant (``change``, and ``change_value/low/high``: the paired
    interval of the difference), NaN where not computable.
    """
    ref = next((r for r in rows if r.name == reference), None)
    suites = [s for s in rows[0].accuracy if s != "all"]
    ci = all(r.outcomes and r.full_outcomes for r in rows)
    records = []
    for r in rows:
        d = None
        if ref is not None and r is not ref and ci:
            d = difference_interval(r.outcomes, ref.outcomes, r.full_outcomes, r.suites)
        rel = relative_score_interval(r.outcomes, r.full_outcomes, r.suites) if ci else None
        records.append(
            {
                "variant": r.name,
                "layers": tuple(r.layers),
                **{s: r.accuracy[s] for s in suites},
                "relative": r.relative,
                **_ci_columns(rel, "relative"),
                "change": np.nan if ref is None or r is ref else r.relative - ref.relative,
                **_ci_columns(d, "change"),
            }
        )
    return pd.DataFrame.from_records(records)


def ablation_table(rows, reported: dict | None = None, reference: str = "") -> str:
    """Markdown: one row per variant, accuracy per suite (%), relative score
    [95 % interval], its change against ``reference`` in points [paired 95 %
    interval], and the paper's reported change."""
    frame = ablation_frame(rows, reference)
    suites = [s for s in rows[0].accuracy if s != "all"]
    ci = all(r.outcomes and r.full_outcomes for r in rows)
    view = pd.DataFrame(
        {
            "variant": frame.variant,
            "layers removed": [layer_ranges(x) for x in frame.layers],
            **{s: [f"{100 * a:.1f}" for a in frame[s]] for s in suites},
        }
    )
    view["relative score" + (" [95 % CI]" if ci else "")] = [
        _interval(row, "relative").format(3) if ci else f"{row['relative']:.3f}" for _, row in frame.iterrows()
    ]
    changes = []
    for _, row in frame.iterrows():
        d = _interval(row, "change")
        if np.isnan(row["change"]):
            changes.append("-")
        elif d is not None:
            changes.append(f"{100 * d.value:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}]")
        else:
            changes.append(f"{100 * row['change']:+.1f}")
    view["change"] = changes
    if reported:
        view["paper (reported change)"] = [reported.get(v, "") for v in frame.variant]
    return markdown(view)


def stability_frame(selections: dict) -> pd.DataFrame:
    """Pairwise Jaccard indices of the selections (seed x seed)."""
    keys = list(selections)
    return pd.DataFrame([[jaccard(selections[a], selections[b]) for b in keys] for a in keys], index=keys, columns=keys)


def stability_table(selections: dict, n_layers: int) -> str:
    """Markdown: pairwise Jaccard indices of the selections, their mean, and
    the mean of two random choices of the same size."""
    frame = stability_frame(selections)
    keys = list(selections)
    view = pd.DataFrame({"seed": [str(a) for a in keys]})
    for b in keys:
        view[str(b)] = [f"{x:.2f}" for x in frame[b]]
    pairs = [frame.loc[a, b] for i, a in enumerate(keys) for b in keys[i + 1 :]]
    m = len(next(iter(selections.values())))
    note = (
        f"mean pairwise Jaccard index {np.mean(pairs):.2f}; two random choices of {m} of "
        f"{n_layers} layers: {random_jaccard(n_layers, m):.2f}"
    )
    return markdown(view, note)


# --- baselines, text quality, efficiency (chapter 08, topovlm baselines) ----------------------


def baselines_frame(results) -> pd.DataFrame:
    """One record per :class:`~topovlm.baselines.BaselineResult`."""
    return pd.DataFrame.from_records(
        [
            {
                "method": r.method,
                "seed": r.seed,
                "layers": tuple(r.layers_to_remove),
                "seconds": r.seconds,
                "n_forward": r.n_forward,
                "n_backward": r.n_backward,
                "passes": r.passes,
                "notes": r.notes,
            }
            for r in results
        ]
    )


def results_table(results) -> str:
    """Markdown table: layers removed, search time, forward/backward passes."""
    f = baselines_frame(results)
    view = pd.DataFrame(
        {
            "method": f.method,
            "seed": f.seed,
            "layers removed": [str(list(x)) for x in f.layers],
            "search s": [f"{x:.2f}" for x in f.seconds],
            "forward batches": f.n_forward,
            "backward batches": f.n_backward,
            "passes over calib.": [f"{x:.0f}" for x in f.passes],
            "notes": f.notes,
        }
    )
    return markdown(view)


def quality_frame(rows, full_ppl: float, full_acc: float) -> pd.DataFrame:
    """The full model, then one record per method: layers, search cost, held-out
    perplexity, its ratio to the full model's (with ``ratio_low`` / ``ratio_high``
    when the rows carry an interval), factual accuracy."""
    records = [
        {
            "method": "full model",
            "seed": -1,
            "layers": (),
            "seconds": np.nan,
            "passes": np.nan,
            "perplexity": full_ppl,
            "ratio": 1.0,
            "ratio_low": np.nan,
            "ratio_high": np.nan,
            "factual": full_acc,
        }
    ]
    for row in rows:
        r, ppl, acc = row[:3]
        iv = row[3] if len(row) > 3 else None
        records.append(
            {
                "method": method_label(r.method, r.seed),
                "seed": r.seed,
                "layers": tuple(r.layers_to_remove),
                "seconds": r.seconds,
                "passes": r.passes,
                "perplexity": ppl,
                "ratio": ppl / full_ppl if iv is None else iv.value,
                "ratio_low": np.nan if iv is None else iv.low,
                "ratio_high": np.nan if iv is None else iv.high,
                "factual": acc,
            }
        )
    return pd.DataFrame.from_records(records)


def quality_table(rows, full_ppl: float, full_acc: float) -> str:
    """Markdown table of methods: layers, search cost, held-out perplexity, factual accuracy.

    Parameters
    ----------
    rows : list of (BaselineResult, perplexity, accuracy) or (..., Interval)
        With a fourth item, the perplexity ratio's bootstrap interval over texts
        (:func:`topovlm.intervals.perplexity_ratio_interval`) is shown beside it.
    full_ppl, full_acc : float
        The unpruned model's numbers (the reference row).
    """
    ci = all(len(row) > 3 for row in rows)
    f = quality_frame(rows, full_ppl, full_acc)
    body = f.iloc[1:]
    view = pd.DataFrame(
        {
            "method": ["full model", *body.method],
            "layers removed": ["-", *(layer_ranges(x) for x in body.layers)],
            "search time": ["-", *(f"{x:.1f} s" for x in body.seconds)],
            "passes": ["-", *(f"{x:.0f}" for x in body.passes)],
            "perplexity": [f"{full_ppl:.1f}", *(f"{x:.4g}" for x in body.perplexity)],
            f"x full{' [95 % CI]' if ci else ''}": [
                "1.00",
                *(
                    f"{r.ratio:.3g} [{r.ratio_low:.3g}, {r.ratio_high:.3g}]" if ci else f"{r.ratio:.3g}"
                    for r in body.itertuples()
                ),
            ],
            "factual": [f"{x:.0%}" for x in f.factual],
        }
    )
    return markdown(view)


def efficiency_frame(full, pruned) -> pd.DataFrame:
    """Full and pruned :class:`~topovlm.efficiency.Efficiency`, and their ratio (full / pruned)."""
    keys = ("n_layers", "params_m", "memory_mb", "prefill_ms", "decode_ms_per_token")
    rows = {name: {k: getattr(e, k) for k in keys} for name, e in (("full", full), ("pruned", pruned))}
    rows["full / pruned"] = {k: getattr(full, k) / getattr(pruned, k) for k in keys}
    return pd.DataFrame.from_dict(rows, orient="index")


def efficiency_table(full, pruned) -> str:
    """Markdown table full vs pruned, with the ideal ratio L / L_kept."""
    f = efficiency_frame(full, pruned)
    ratio = f.loc["full / pruned"]
    view = pd.DataFrame(
        {
            "": ["full", "pruned", "full / pruned"],
            "decoder layers": [*(str(int(x)) for x in f.n_layers[:2]), f"{ratio.n_layers:.2f}"],
            "parameters (M)": [*(f"{x:.1f}" for x in f.params_m[:2]), f"{ratio.params_m:.2f}"],
            "memory (MB)": [*(f"{x:.0f}" for x in f.memory_mb[:2]), f"{ratio.memory_mb:.2f}"],
            "prefill (ms)": [*(f"{x:.1f}" for x in f.prefill_ms[:2]), f"{ratio.prefill_ms:.2f}"],
            "decode (ms/token)": [*(f"{x:.1f}" for x in f.decode_ms_per_token[:2]), f"{ratio.decode_ms_per_token:.2f}"],
        }
    )
    return markdown(view, f"ideal speed-up of the decoder stack: L / L_kept = {ratio.n_layers:.2f}")


# --- the fidelity study (chapter 04b) ---------------------------------------------------------


def study_frame(rows) -> pd.DataFrame:
    """One record per :class:`topovlm.fidelity.Row`: model, sparsity, reading, split,
    layers, the score with its interval (relative score, or perplexity ratio pruned / full
    as ``1 / score``), seconds."""
    return pd.DataFrame.from_records(
        [
            {
                "model": r.model,
                "sparsity": r.sparsity,
                "reading": r.reading,
                "split": r.split,
                "kind": r.kind,
                "layers": tuple(r.layers),
                "score": r.score.value,
                "score_low": r.score.low,
                "score_high": r.score.high,
                "seconds": r.seconds,
            }
            for r in rows
        ]
    )


def dev_table(rows, readings, ranks: dict) -> str:
    """Markdown: every reading (rows) by model and sparsity (columns) on dev:
    relative score [95 % CI] (vision-language models) or perplexity x full
    [95 % CI] (text model), and the mean rank (``ranks``) over the columns."""
    models = [r.model for r in rows]
    cells = sorted({(r.model, r.sparsity) for r in rows}, key=lambda c: (models.index(c[0]), c[1]))
    at = {(r.reading, r.model, r.sparsity): r for r in rows}
    shown = [reading.name for reading in readings if reading.name in ranks]
    view = pd.DataFrame({"reading": shown})
    for m, s in cells:
        view[f"{m}, {s:.0%}"] = [at[(name, m, s)].cell(2) if (name, m, s) in at else "" for name in shown]
    view["mean rank"] = [f"{ranks[name]:.2f}" for name in shown]
    return markdown(view)


def test_table(rows) -> str:
    """Markdown: the finalists and the baselines on test, per model and sparsity,
    with the layers removed and the share of the full model kept [95 % interval]."""
    view = pd.DataFrame(
        {
            "model": [r.model for r in rows],
            "sparsity": [f"{r.sparsity:.0%}" for r in rows],
            "method": [r.reading for r in rows],
            "layers removed": [layer_ranges(r.layers) for r in rows],
            "relative score or perplexity x full [95 % CI]": [r.cell(3) for r in rows],
        }
    )
    return markdown(view)


# --- calibration robustness, versions ---------------------------------------------------------


def robustness_frame(rows) -> pd.DataFrame:
    """One record per :class:`topovlm.robustness.RobustnessRow`."""
    records = []
    for r in rows:
        v, score = r.variant, r.score
        records.append(
            {
                "calibration": v.name,
                "source": v.source,
                "n": v.n,
                "seed": v.seed,
                "perturbation": v.perturb,
                "layers": tuple(r.layers),
                "jaccard": r.jaccard,
                "score": getattr(score, "value", score),
                "score_low": getattr(score, "low", np.nan),
                "score_high": getattr(score, "high", np.nan),
            }
        )
    return pd.DataFrame.from_records(records)


def robustness_table(rows, n_layers: int) -> str:
    """Markdown: each variant's layers, Jaccard with the reference, score; and
    the Jaccard of two random choices of the same size (agreement by chance)."""
    f = robustness_frame(rows)
    view = pd.DataFrame(
        {
            "calibration": f.calibration,
            "source": f.source,
            "n": f.n,
            "seed": f.seed,
            "perturbation": f.perturbation,
            "layers removed": [layer_ranges(list(x)) for x in f.layers],
            "Jaccard with the first": [f"{x:.2f}" for x in f.jaccard],
            "score": [
                r.score.format(3) if hasattr(r.score, "format") else ("-" if r.score is None else str(r.score))
                for r in rows
            ],
        }
    )
    m = len(rows[0].layers)
    note = (
        f"two random choices of {m} of {n_layers} layers agree by a Jaccard index of "
        f"{random_jaccard(n_layers, m):.2f} on average"
    )
    return markdown(view, note)


def versions_frame(versions: dict) -> pd.DataFrame:
    """package -> version (None: not installed)."""
    return pd.DataFrame({"package": list(versions), "version": list(versions.values())})


def versions_table(versions: dict) -> str:
    f = versions_frame(versions)
    return markdown(
        pd.DataFrame({"package": f.package, "version": ["not installed" if pd.isna(v) else v for v in f.version]})
    )
