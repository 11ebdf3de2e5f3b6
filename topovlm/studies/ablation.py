"""The paper's ablations on one model: variants of the search, scored on held-out questions.

Every variant searches the *same* clouds (one calibration pass) with one
:class:`~topovlm.topology.search.SearchConfig` field changed, removes the layers it
chooses, and is scored on the same held-out questions as the main tables
(:mod:`topovlm.studies.sweep`). The paper's ablation table reports the change of the
relative score against the full method: zigzag -> standard per-layer PH,
EPI -> raw persistence diagram, k in {5, 15, 25}, alpha in {0.5, 1, 2}.

:func:`selection_stability` answers the question the paper leaves open
(its limitations: "the choice of calibration data may affect the results"):
how much the chosen layers move when the calibration set is redrawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._checks import TopoVLMInputError
from ..calibration import calibration_set
from ..evaluate import per_suite, question_outcomes, relative_score
from ..extract import extract
from ..intervals import difference_interval, relative_score_interval
from ..reports import interval_columns, interval_of, layer_ranges, markdown
from ..topology.search import SearchConfig, search
from ..topology.selection import jaccard, random_jaccard

DEFAULT = "TopoVLM (zigzag, H1, EPI, k=15, alpha=1)"

#: name -> SearchConfig fields that differ from the default (the paper's rows, then ours)
VARIANTS = {
    DEFAULT: {},
    "standard PH instead of zigzag": {"homology": "standard"},
    "raw diagram instead of EPI": {"representation": "diagram"},
    "k = 5": {"k": 5},
    "k = 25": {"k": 25},
    "alpha = 0.5": {"alpha": 0.5},
    "alpha = 2": {"alpha": 2.0},
    "first and last layer kept (ours)": {"keep": (0, -1)},
}

#: the paper's ablation table: change of the relative score against the full method
REPORTED = {
    "standard PH instead of zigzag": "-2.1 %",
    "raw diagram instead of EPI": "-1.5 %",
    "k = 5": "below k = 15",
    "k = 25": "below k = 15",
    "alpha = 0.5": "below alpha = 1",
    "alpha = 2": "below alpha = 1",
}


@dataclass(frozen=True)
class AblationRow:
    """One variant of the search and what its pruned model keeps."""

    name: str
    options: dict
    layers: tuple
    accuracy: dict
    relative: float
    seconds: float  # the search alone (the clouds are shared)
    outcomes: tuple = ()  # per-question outcome (for the bootstrap intervals)
    suites: tuple = ()
    full_outcomes: tuple = ()  # the unpruned model's, same questions

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()},
            "layers": list(self.layers),
            "accuracy": self.accuracy,
            "relative": self.relative,
            "search_seconds": self.seconds,
        }


def run_ablation(
    adapter,
    clouds,
    questions,
    sparsity: float = 0.5,
    variants: dict | None = None,
    full: dict | None = None,
    scoring: str = "choice",
    batch_size: int = 32,
    progress: bool = True,
    cache_dir=None,
) -> tuple[dict, list[AblationRow]]:
    """Search the clouds with every variant and score each pruned model.

    Parameters
    ----------
    adapter : Adapter
        The model the clouds came from.
    clouds : (L+1, N, d) array
        [RET] clouds of the calibration set (:func:`topovlm.extract`).
    questions : sequence of topovlm.tasks.QA
        Held-out questions.
    sparsity : float
        Fraction of decoder layers every variant removes.
    variants : dict, optional
        name -> SearchConfig overrides; default :data:`VARIANTS`. ``k`` is
        capped at N - 1.
    full : dict, optional
        The unpruned model's accuracy per suite (its per-question outcomes
        are computed in any case, for the intervals).
    scoring : {"choice", "generate"}
        See :func:`topovlm.evaluate.accuracy`.
    cache_dir : path or False, optional
        Where the per-question outcomes are kept (:func:`topovlm.evaluate.question_outcomes`;
        None: the default cache, False: not kept).

    Returns
    -------
    full : dict
        suite -> accuracy of the unpruned model.
    rows : list of AblationRow
    """

    variants = VARIANTS if variants is None else variants
    if not variants:
        raise TopoVLMInputError("no variants to run")
    questions = list(questions)
    n_points = np.shape(clouds[0])[0]
    suites = tuple(q.suite for q in questions)
    choices = question_outcomes(adapter, questions, batch_size, scoring, cache_dir)
    full_right = tuple(choices(()).tolist())
    full = full or per_suite(questions, full_right)
    rows = []
    for name, options in tqdm(variants.items(), desc="ablation", unit="variant", disable=not progress):
        config = SearchConfig(**{**options, "sparsity": sparsity}).for_points(n_points)
        options = {**options, "k": config.k}  # the row says the k searched (capped at N - 1)
        res = search(clouds, config)
        right = choices(res.layers_to_remove)
        acc = per_suite(questions, right)
        rows.append(
            AblationRow(
                name,
                options,
                tuple(res.layers_to_remove),
                acc,
                relative_score(acc, full),
                res.timings["total"],
                tuple(right.tolist()),
                suites,
                full_right,
            )
        )
    return full, rows


def selection_stability(
    adapter,
    task: str,
    seeds=(0, 1, 2, 3, 4),
    n_calib: int = 64,
    sparsity: float = 0.5,
    batch_size: int = 8,
    cache_dir=None,
    progress: bool = True,
    **search_options,
) -> dict:
    """The layers TopoVLM chooses from calibration sets drawn with different seeds.

    Parameters
    ----------
    adapter : Adapter
    task : str
        Calibration source (:func:`topovlm.calibration.calibration_set`):
        ``"easy-vqa"``, ``"av"``, ``"fortunes"``...
    seeds : sequence of int
    n_calib : int
        Samples per calibration set.
    cache_dir : path or False, optional
        Where the clouds are cached (:func:`topovlm.extract`).
    **search_options
        :class:`~topovlm.topology.search.SearchConfig` fields (``k`` capped at n_calib - 1).

    Returns
    -------
    dict
        seed -> sorted list of removed decoder layers.
    """

    if len(seeds) < 2:
        raise TopoVLMInputError("stability needs at least two calibration seeds")
    config = SearchConfig(**{**search_options, "sparsity": sparsity}).for_points(n_calib)
    out = {}
    for seed in tqdm(list(seeds), desc="calibration seeds", disable=not progress):
        clouds = extract(
            adapter, calibration_set(task, n_calib, seed), batch_size=batch_size, cache_dir=cache_dir, progress=False
        )
        out[seed] = sorted(search(clouds, config).layers_to_remove)
    return out


def ablation_frame(rows, reference: str) -> pd.DataFrame:
    """One record per ablation variant (:class:`topovlm.studies.ablation.AblationRow`).

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
                **interval_columns(rel, "relative"),
                "change": np.nan if ref is None or r is ref else r.relative - ref.relative,
                **interval_columns(d, "change"),
            }
        )
    return pd.DataFrame.from_records(records)


def ablation_table(rows, reported: dict | None = None, reference: str = DEFAULT) -> str:
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
        interval_of(row, "relative").format(3) if ci else f"{row['relative']:.3f}" for _, row in frame.iterrows()
    ]
    changes = []
    for _, row in frame.iterrows():
        d = interval_of(row, "change")
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
