"""Accuracy of pruned models: every method at every sparsity, on held-out suites.

The paper's main tables (per-benchmark accuracy + relative score at one
sparsity) and its sparsity sweep are both this loop: choose layers with a
method on a calibration set, score the held-out questions with those layers
skipped (:func:`topovlm.prune.skipped`, the same numbers as pruning them), and
compare with the full model.

Questions are scored by constrained greedy decoding among their possible
answers (:func:`topovlm.evaluate.choose`) and, beside it, by exact match of
the free greedy answer: a 135 M decoder that loses half its layers stops
producing answer words at all (exact match 0 for every method, measured),
while the ranking of the possible answers still tells a sensible choice of
layers from a random one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import tasks
from .._checks import TopoVLMInputError
from ..baselines import check_methods, compare, get_method
from ..calibration import calibration_set
from ..efficiency import efficiency_table, measure
from ..evaluate import accuracy, chance, check_scoring, per_suite, question_outcomes, relative_score
from ..intervals import relative_score_interval
from ..plots import panel
from ..prune import prune
from ..reports import interval_columns, interval_of, layer_ranges, markdown


def task_of(adapter) -> str | None:
    """The task a vision-language model answers (easy-VQA for LLaVA-NeXT, av for
    VideoLLaMA2: its adapter's ``task``); None for a text model."""
    return adapter.task


def study_data(task: str, n_calib: int = 64, n: int | None = None, seed: int = 0):
    """Calibration samples (train split) and held-out questions (test split).

    Parameters
    ----------
    task : {"easy-vqa", "av"}
    n_calib : int
    n : int, optional
        Held-out questions: easy-VQA in all (default 500, a seeded choice of
        the test split), av per suite (default 100).

    Returns
    -------
    calibration : list of Sample
    questions : list of QA
    """
    calibration = calibration_set(task, n_calib, seed)
    questions = tasks.load(task, split="test", n=n or tasks.STUDY_N[task], seed=seed)
    return calibration, questions


@dataclass(frozen=True)
class SweepRow:
    """One method's pruned model at one sparsity (or the full model: sparsity 0).

    Attributes
    ----------
    accuracy : dict
        suite -> accuracy under the sweep's ``scoring`` (+ ``"all"``).
    relative : float
        The paper's relative score of ``accuracy`` against the full model's.
    exact : dict or None
        Exact-match accuracy of the free greedy answers, when the sweep also
        generated them.
    outcomes : tuple of bool
        Per-question outcome under ``scoring`` (for the bootstrap intervals).
    suites : tuple of str
        Each question's suite.
    """

    sparsity: float
    method: str
    seed: int
    layers: tuple
    accuracy: dict
    relative: float
    seconds: float
    exact: dict | None = None
    outcomes: tuple = ()
    suites: tuple = ()
    notes: str = ""  # what the method's search warned about (e.g. clouds without H1)

    def to_dict(self) -> dict:
        return {
            "sparsity": self.sparsity,
            "method": self.method,
            "seed": self.seed,
            "layers": list(self.layers),
            "accuracy": self.accuracy,
            "relative": self.relative,
            "search_seconds": self.seconds,
            "exact": self.exact,
            "outcomes": [bool(x) for x in self.outcomes],
            "suites": list(self.suites),
            "notes": self.notes,
        }

    def interval(self, full: SweepRow, seed: int = 0):
        """The relative score with its paired bootstrap interval against ``full``
        (:func:`topovlm.intervals.relative_score_interval`); None without outcomes."""

        if not self.outcomes or not full.outcomes:
            return None
        return relative_score_interval(self.outcomes, full.outcomes, full.suites, seed=seed)

    @classmethod
    def mean_of(cls, rows: list[SweepRow]) -> SweepRow:
        """The mean of several seeds' rows (random baseline): mean accuracies and
        per-question outcomes, named ``random (mean of n)``."""
        outcomes = tuple(np.mean([r.outcomes for r in rows], axis=0).tolist()) if all(r.outcomes for r in rows) else ()
        return cls(
            rows[0].sparsity,
            f"random (mean of {len(rows)})",
            -1,
            (),
            _mean([r.accuracy for r in rows]),
            float(np.mean([r.relative for r in rows])),
            float(np.mean([r.seconds for r in rows])),
            _mean([r.exact for r in rows]),
            outcomes,
            rows[0].suites,
        )

    @classmethod
    def chance_row(cls, full: SweepRow, chance: dict) -> SweepRow:
        """Uniform guessing (:func:`topovlm.evaluate.chance`) as a row against ``full``."""
        return cls(0.0, "chance", -1, (), chance, relative_score(chance, full.accuracy), 0.0)


def pruning_sweep(
    adapter,
    calibration,
    questions,
    sparsities=(0.25, 0.5, 0.6),
    methods=("topovlm", "shortgpt", "random"),
    random_seeds=(0, 1, 2),
    batch_size: int = 8,
    eval_batch_size: int = 32,
    progress: bool = True,
    baseline_samples: int | None = None,
    expensive_samples: int | None = 8,
    scoring: str = "choice",
    exact: bool = True,
    cache_dir=None,
    **method_options,
) -> tuple[SweepRow, list[SweepRow]]:
    """Score the full model and each method's pruned model on the questions.

    Parameters
    ----------
    adapter : Adapter
    calibration : sequence of Sample
        What the methods see (never the held-out questions).
    questions : sequence of topovlm.tasks.QA
        Held-out questions, scored per suite.
    sparsities : sequence of float
        Fractions of decoder layers removed.
    methods : sequence of str
        Names in :data:`topovlm.baselines.METHODS`; ``random`` runs once per seed.
    baseline_samples, expensive_samples : int, optional
        The calibration budgets of the baselines and of the methods that rerun the
        model many times (SLEB, about L^2 / 2 passes): each sees the first so many
        samples, TopoVLM all of them (None: no cut; :func:`topovlm.baselines.compare`).
    scoring : {"choice", "generate"}
        How ``accuracy`` is scored (:func:`topovlm.evaluate.accuracy`).
    exact : bool
        With ``scoring="choice"``, also generate and record exact match.
    cache_dir : path or False, optional
        Where the per-question outcomes (:func:`topovlm.evaluate.question_outcomes`) and
        each method's choice (:func:`topovlm.baselines.run`, with the cost measured when it
        ran) are kept; None: the default cache, False: not kept.
    **method_options
        Per-method options, e.g. ``topovlm={"k": 10}``.

    Returns
    -------
    full : SweepRow
        The unpruned model (sparsity 0, method ``"full model"``).
    rows : list of SweepRow
    """

    questions, calibration = list(questions), list(calibration)
    exact = exact and scoring != "generate"
    suites = tuple(q.suite for q in questions)

    # choosing is one plain forward per question batch: pruned passes start at their first
    # removed layer from the full model's recorded inputs (the same outcomes, less compute)
    choices = question_outcomes(adapter, questions, eval_batch_size, scoring, cache_dir, progress)

    def score(skip=()):
        right = choices(skip)
        return (
            per_suite(questions, right),
            (accuracy(adapter, questions, batch_size=eval_batch_size, skip=skip, progress=progress) if exact else None),
            tuple(right.tolist()),
        )

    acc, ex, out = score()
    full = SweepRow(0.0, "full model", -1, (), acc, 1.0, 0.0, ex, out, suites)
    rows = []
    for s in tqdm(sparsities, desc="sparsities", disable=not progress):
        results = compare(
            adapter,
            calibration,
            s,
            methods,
            tuple(random_seeds),
            batch_size,
            progress=False,
            cache_dir=cache_dir,
            baseline_samples=baseline_samples,
            expensive_samples=expensive_samples,
            **method_options,
        )
        for r in results:
            acc, ex, out = score(r.layers_to_remove)
            rows.append(
                SweepRow(
                    s,
                    r.method,
                    r.seed,
                    tuple(r.layers_to_remove),
                    acc,
                    relative_score(acc, full.accuracy),
                    r.seconds,
                    ex,
                    out,
                    suites,
                    r.notes,
                )
            )
    return full, rows


def notes_text(rows) -> str:
    """Markdown: what each method's search said (warnings, caveats), one line per
    method and sparsity; the book drops stderr, so this is how a warning reaches the page.

    ``rows``: :class:`SweepRow` or :class:`topovlm.baselines.BaselineResult` objects.
    """
    lines = []
    for r in rows:
        if not r.notes:
            continue
        name = getattr(r, "method", "")
        where = f" at {r.sparsity:.0%}" if getattr(r, "sparsity", None) else ""
        lines.append(f"- **{name}**{where}: {r.notes}")
    if not lines:
        return "No method's search warned about anything."
    return "What the searches said (each line once per method and sparsity):\n\n" + "\n".join(dict.fromkeys(lines))


def _mean(dicts: list) -> dict | None:
    return None if dicts[0] is None else {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}


@dataclass
class Evaluation:
    """What ``topovlm evaluate`` reports: the sweep of one model, and its efficiency.

    Attributes
    ----------
    model : str
    task : str
    n_calib : int
    scoring : {"choice", "generate"}
    n_questions : int
    full : SweepRow
    rows : list of SweepRow
    chance : dict or None
        Uniform guessing per suite (constrained scoring only).
    efficiency : (Efficiency, Efficiency) or None
        The full model and the 50 %-pruned one, timed on the first question.
    """

    model: str
    task: str
    n_calib: int
    scoring: str
    n_questions: int
    full: SweepRow
    rows: list
    chance: dict | None = None
    efficiency: tuple | None = None

    def text(self) -> str:
        """The report as Markdown: the sweep table, then the efficiency table."""
        how = (
            "constrained greedy decoding among each question's possible answers (exact match of the free answer "
            "in the last column)"
            if self.scoring == "choice"
            else "exact match of the greedy answer"
        )
        text = (
            f"{self.model}: {self.n_questions} held-out {self.task} questions, {self.n_calib} calibration samples; "
            f"scored by {how}\n\n" + sweep_table(self.full, self.rows, chance=self.chance)
        )
        if self.efficiency is not None:
            text += "\n\nefficiency, full vs 50 % pruned\n\n" + efficiency_table(*self.efficiency)
        return text

    def to_dict(self) -> dict:
        return {"scoring": self.scoring, "full": self.full.to_dict(), "rows": [r.to_dict() for r in self.rows]}


def evaluation(
    adapter,
    model: str,
    sparsities=(0.25, 0.5, 0.6),
    methods=("topovlm", "shortgpt", "random"),
    random_seeds: int = 3,
    n: int | None = None,
    n_calib: int = 64,
    scoring: str = "choice",
    efficiency: bool = True,
) -> Evaluation:
    """Held-out accuracy of a vision-language model, full and pruned by each method at
    each sparsity (:func:`pruning_sweep`), and its efficiency full vs 50 % pruned.

    Parameters
    ----------
    adapter : Adapter
        A vision-language model whose family has a task (``adapter.task``).
    model : str
        Its name in the report.
    n : int, optional
        Held-out questions (in all, or per suite for the audio-visual task).
    """
    check_methods(methods)
    check_scoring(scoring)
    for s in sparsities:
        if not 0 < s < 1:
            raise TopoVLMInputError(f"sparsity must be in (0, 1), got {s!r}")
    task = task_of(adapter)
    if task is None:
        raise TopoVLMInputError(
            f"{model} is a text model: evaluate scores vision-language models on their question suites "
            "(use `topovlm baselines` and perplexity for a text model)"
        )
    calibration, questions = study_data(task, n_calib=n_calib, n=n)
    full, rows = pruning_sweep(
        adapter, calibration, questions, tuple(sparsities), tuple(methods), tuple(range(random_seeds)), scoring=scoring
    )
    times = None
    if efficiency:
        half = next((r for r in rows if r.sparsity == 0.5 and r.method == "topovlm"), None)
        layers = list(half.layers) if half else list(range(0, adapter.n_layers, 2))
        before = measure(adapter, questions[0].sample)
        pruned = adapter.copy()
        prune(pruned, layers)
        times = (before, measure(pruned, questions[0].sample))
    return Evaluation(
        model,
        task,
        n_calib,
        scoring,
        len(questions),
        full,
        rows,
        chance(questions) if scoring == "choice" else None,
        times,
    )


def method_label(r) -> str:
    """A result's name in legends: the method, and the seed for a seeded method (random)."""
    return get_method(r.method).tagged(r.seed)


def plot_suite_accuracy(full, rows, sparsity: float, chance: dict | None = None, ax=None):
    """Grouped bars: accuracy per suite for the full model and each method at one sparsity.

    Parameters
    ----------
    full : topovlm.studies.sweep.SweepRow
        The unpruned model.
    rows : list of topovlm.studies.sweep.SweepRow
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
    ax = panel(ax, (8, 1.2 + 0.16 * len(suites) * len(bars)))
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
    ax = panel(ax, (7, 3.8))
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


def sweep_frame(full, rows, chance: dict | None = None) -> pd.DataFrame:
    """One record per line of :func:`sweep_table`, in its order.

    Parameters
    ----------
    full : SweepRow
        The unpruned model (:func:`topovlm.studies.sweep.pruning_sweep`).
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
                **interval_columns(iv, "relative"),
                "exact": None if r.exact is None else r.exact["all"],
            }
        )

    add(full, "full", "full model")
    if chance is not None:
        add(type(full).chance_row(full, chance), "chance", "chance (uniform guess)")
    for s in sorted({r.sparsity for r in rows}):
        at = [r for r in rows if r.sparsity == s]
        for r in at:
            add(r, "method", get_method(r.method).tagged(r.seed))
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
        iv.format(3) if (iv := interval_of(row, "relative")) is not None else f"{row['relative']:.3f}"
        for _, row in frame.iterrows()
    ]
    if full.exact is not None:
        view["exact match, all"] = ["-" if e is None or np.isnan(e) else f"{100 * e:.1f}" for e in frame.exact]
    if reported:
        head = f"paper, reported ({reported_on})" if reported_on else "paper (reported)"
        view[head] = [str(reported.get(m, "")) for m in frame.method]
    return markdown(view)
