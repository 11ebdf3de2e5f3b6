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
from tqdm.auto import tqdm

from . import tasks
from ._checks import TopoVLMInputError
from .baselines import check_methods, compare
from .calibration import calibration_set
from .efficiency import measure
from .evaluate import accuracy, chance, check_scoring, per_suite, question_outcomes, relative_score
from .intervals import relative_score_interval
from .prune import prune
from .reports import efficiency_table, sweep_table


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
