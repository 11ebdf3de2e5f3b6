"""What the paper leaves open: every unstated choice of the method, measured.

The paper gives the pipeline but not every formula; where it is silent the
package first followed its own reconstruction (:meth:`SearchConfig.preset`
``"reconstruction"``), and its predecessor's published code (Gardinazzi et al.,
ICML 2025) makes other choices. A :class:`Reading` is one way of reading the
method: how the clouds are made (token, point, calibration size) and how they
are searched (:class:`~topovlm.topology.search.SearchConfig` fields).

The study follows a rule fixed *before* the test split is looked at:

1. **Dev, the reading** (:func:`topovlm.studies.redundancy.choose`): every reading in
   :func:`one_at_a_time` and the presets (:data:`PRESET_READINGS`) scores the
   decoder layers on ten calibration draws of 512 samples; the reading whose
   score correlates best with the damage of removing each layer alone on the
   *dev* items (Spearman, every layer, mean over the models) is chosen; ties go
   to the reading with fewer changes.
2. **Dev, the selection** (:func:`run_selection`): the chosen reading's plain
   top-k, with the first and last layer kept, with at most
   :data:`MAX_IN_A_ROW` layers removed in a row, and with both, prune every
   model at every dev sparsity; the best mean dev rank wins, ties to fewer
   constraints. (The paper's threshold rule ``S >= eps max S`` removes the top
   scores too: at the eps that removes as many layers it *is* top-k.)
3. **Test** (:func:`run_test`): the chosen reading with its selection, the
   paper's literal reading and the predecessor's preset are scored on the
   disjoint *test* items beside ShortGPT, SLEB and random choices, with
   paired bootstrap intervals (:mod:`topovlm.intervals`); :func:`verdicts`
   prints each difference with the smallest difference the test split can
   detect.

Quality is measured as "share of the full model kept": the relative score
(mean over suites of pruned / full accuracy) for the vision-language models,
``ppl_full / ppl_pruned`` for the text model; higher is better in both.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import rankdata
from tqdm.auto import tqdm

from .. import tasks
from .._checks import TopoVLMInputError
from ..baselines import at_sparsity, get_method, run
from ..calibration import calibration_set, fortune_prompts
from ..evaluate import Outcomes, question_outcomes, text_outcomes
from ..extract import extract
from ..forward import Calibration
from ..intervals import (
    LEVEL,
    N_BOOT,
    Interval,
    _interval,
    difference_interval,
    draws,
    perplexity_ratio_interval,
    relative_score_interval,
    resample,
)
from ..models import load_model
from ..plots import panel
from ..reports import layer_ranges, markdown
from ..topology.search import PRESETS, SearchConfig, search
from ..topology.selection import n_to_remove

#: Calibration samples a study may draw from (the redundancy study draws its calibration
#: sets of 512 out of this pool); held-out texts are never among them.
CALIBRATION_POOL = 1024

#: Fields of a reading that change the clouds rather than the search.
EXTRACTION_FIELDS = ("token", "point", "n_calib")


@dataclass(frozen=True)
class Reading:
    """One reading of the method.

    Parameters
    ----------
    name : str
    changes : dict
        Fields that differ from ``preset``: :class:`SearchConfig` fields, and
        ``token`` / ``point`` / ``n_calib`` for the clouds.
    preset : str
        The :data:`topovlm.topology.search.PRESETS` entry the changes apply to.
    """

    name: str
    changes: dict = field(default_factory=dict)
    preset: str = "reconstruction"

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise TopoVLMInputError(f"unknown preset {self.preset!r}; known: {sorted(PRESETS)}")
        self.config(0.5, 10)  # validates the search fields now, not in the middle of a study

    def clouds_key(self, n_calib: int) -> tuple:
        """(token, point, n_calib) of the clouds this reading searches."""
        return (
            self.changes.get("token", "ret"),
            self.changes.get("point", "residual"),
            int(self.changes.get("n_calib", n_calib)),
        )

    def config(self, sparsity: float, n_points: int) -> SearchConfig:
        """The search configuration at one sparsity, for clouds of ``n_points`` points."""
        search_fields = {k: v for k, v in self.changes.items() if k not in EXTRACTION_FIELDS}
        return SearchConfig.preset(self.preset, sparsity=sparsity, **search_fields).for_points(n_points)

    @property
    def n_changes(self) -> int:
        return len(self.changes) + (self.preset != "reconstruction")


BASE = Reading("reconstruction (package 0.1)")


def one_at_a_time(n_calib_other: int = 128) -> tuple:
    """One choice of the reconstruction changed at a time (the fidelity issue's list);
    the calibration-size reading uses ``n_calib_other`` samples (the others: the
    study's ``n_calib``, the paper's 512)."""
    return (
        Reading("point: normed (predecessor)", {"point": "normed"}),
        Reading("token: last prompt token", {"token": "last"}),
        Reading("homology: H1 only (predecessor)", {"dims": (1,)}),
        Reading("homology: H0 only", {"dims": (0,)}),
        Reading("image: raw counts (predecessor)", {"representation": "diagram"}),
        Reading("survival: born at l (paper's words)", {"survival": "born"}),
        Reading("survival: over alive at l' (predecessor)", {"survival": "other"}),
        Reading("distance weight: none (predecessor)", {"alpha": 0.0, "include_self": True}),
        Reading("layer map: input cloud (predecessor)", {"layer_map": "input"}),
        Reading("degenerate cloud: dropped", {"degenerate": "drop"}),
        Reading(
            f"calibration: {n_calib_other} samples" + (" (paper)" if n_calib_other == 512 else ""),
            {"n_calib": n_calib_other},
        ),
    )


ONE_AT_A_TIME = one_at_a_time()

#: Whole readings: the paper's words taken literally, and the predecessor's code.
PRESET_READINGS = (
    Reading("paper, literal", preset="paper"),
    Reading("Gardinazzi et al. 2025 (normed point)", {"point": "normed"}, preset="gardinazzi2025"),
)


@dataclass
class Benchmark:
    """A model, its calibration source and its held-out dev / test items.

    Attributes
    ----------
    label : str
    adapter : Adapter
    calibration : str — calibration source (:func:`topovlm.calibration.calibration_set`)
    kind : {"relative", "perplexity"}
    dev, test : list — QA items, or texts (Sample) for perplexity
    """

    label: str
    adapter: object
    calibration: str
    kind: str
    dev: list
    test: list
    batch_size: int = 8
    cache_dir: object = None  # where per-item outcomes are kept (None: the default cache; False: not kept)
    _outcomes: dict = field(default_factory=dict, repr=False)
    _calib: dict = field(default_factory=dict, repr=False)

    def calibration_samples(self, n: int, seed: int = 0) -> list:
        """The first ``n`` of one seeded draw of max(n, 512) calibration samples:
        smaller sets are prefixes of larger ones (and chapter 01's clouds are reused)."""

        big = max(n, 512)
        if (big, seed) not in self._calib:
            self._calib[(big, seed)] = calibration_set(self.calibration, big, seed)
        return self._calib[(big, seed)][:n]

    def outcomes(self, split: str, layers) -> tuple:
        """Per-item outcomes with ``layers`` removed, cached: (correct,) or (nll, tokens).

        Each pruned pass starts at its first removed layer from the full
        model's recorded layer inputs (:class:`topovlm.evaluate.Outcomes`):
        the same outcomes, bit for bit, for a fraction of the forward cost.
        Outcomes are kept on disk under ``cache_dir``: another study of the
        same model and items (or a rerun) reads them.
        """
        if split not in self._outcomes:
            self._outcomes[split] = self._evaluation(split, self.adapter, self.cache_dir)
        return _as_tuple(self._outcomes[split](layers))

    def _evaluation(self, split: str, adapter, cache_dir) -> Outcomes:
        """How ``split`` is scored: constrained choice (relative) or text losses (perplexity)."""
        items = self.items(split)
        if self.kind == "relative":
            return question_outcomes(adapter, items, 32, "choice", cache_dir)
        return text_outcomes(adapter, items, self.batch_size, cache_dir)

    def items(self, split: str) -> list:
        """The dev or test items."""
        return self.dev if split == "dev" else self.test

    def score(self, split: str, layers, seed: int = 0) -> Interval:
        """Share of the full model kept, with its paired bootstrap interval (higher is better)."""
        return self.score_outcomes(split, self.outcomes(split, layers), seed)

    def measure(self, split: str, adapter) -> tuple:
        """Per-item outcomes of another model (e.g. a pruned and fine-tuned copy) on ``split``,
        as :meth:`outcomes` gives them: (correct,) or (nll, tokens)."""
        return _as_tuple(self._evaluation(split, adapter, False).evaluate())

    def resampling(self, split: str, n_boot: int = N_BOOT, seed: int = 0) -> tuple[np.ndarray, dict]:
        """Paired bootstrap draws of ``split``'s items (within suites) and the keyword
        arguments of :func:`topovlm.intervals.draws` for its statistic.

        Returns
        -------
        idx : (n_boot, Q) item indices
        kw : dict — ``full``, ``groups``, ``kind``, ``tokens``
        """
        items = self.items(split)
        groups = np.asarray([q.suite for q in items]) if self.kind == "relative" else np.zeros(len(items), int)
        full = self.outcomes(split, ())
        kw = dict(full=full[0], groups=groups, kind=self.kind, tokens=full[1] if self.kind == "perplexity" else None)
        return resample(groups, n_boot=n_boot, seed=seed), kw

    def score_outcomes(self, split: str, pruned: tuple, seed: int = 0) -> Interval:
        """:meth:`score` of given outcomes (from :meth:`outcomes` or :meth:`measure`)."""
        full = self.outcomes(split, ())
        if self.kind == "relative":
            suites = [q.suite for q in self.items(split)]
            return relative_score_interval(pruned[0], full[0], suites, seed=seed)
        ratio = perplexity_ratio_interval(pruned[0], full[0], full[1], seed=seed)
        return Interval(1 / ratio.value, 1 / ratio.high, 1 / ratio.low, ratio.level)

    def difference(self, split: str, a: tuple, b: tuple, seed: int = 0) -> Interval:
        """Paired difference between two models' outcomes on the same items, with its
        bootstrap interval; > 0 means ``a`` is better. Relative score: ``score(a) -
        score(b)``; perplexity: ``log(ppl_b / ppl_a)``."""
        full = self.outcomes(split, ())
        if self.kind == "relative":
            suites = [q.suite for q in self.items(split)]
            return difference_interval(a[0], b[0], full[0], groups=suites, seed=seed)
        iv = difference_interval(a[0], b[0], full[0], kind="perplexity", tokens=full[1], seed=seed)
        return Interval(-iv.value, -iv.high, -iv.low, iv.level)


def _as_tuple(outcomes) -> tuple:
    return outcomes if isinstance(outcomes, tuple) else (outcomes,)


def benchmark(
    model_id: str, adapter, n_dev: int, n_test: int, seed: int = 0, batch_size: int = 8, cache_dir=None
) -> Benchmark:
    """The study's items for one model: held-out fortunes (perplexity) for a text
    model, the held-out questions of its task for a mini vision-language model.

    Dev and test are disjoint: one seeded draw of ``n_dev + n_test`` items
    (per suite for the audio-visual task), the first ``n_dev`` for dev.
    Calibration texts (the first :data:`CALIBRATION_POOL` of the calibration draw) are never among them.
    ``cache_dir`` is where the per-item outcomes are kept (:meth:`Benchmark.outcomes`).
    """
    task = adapter.task
    if task is None:
        items = fortune_prompts(n_dev + n_test, seed + 1, exclude=fortune_prompts(CALIBRATION_POOL, seed))
        return Benchmark(
            model_id, adapter, "fortunes", "perplexity", items[:n_dev], items[n_dev:], batch_size, cache_dir
        )
    qs = tasks.load(task, split="test", n=n_dev + n_test, seed=seed)
    if tasks.PER_SUITE[task]:
        qs = tasks.by_suite(qs)
        dev = [q for suite in qs.values() for q in suite[:n_dev]]
        test = [q for suite in qs.values() for q in suite[n_dev:]]
    else:
        dev, test = qs[:n_dev], qs[n_dev:]
    return Benchmark(model_id, adapter, task, "relative", dev, test, batch_size, cache_dir)


def benchmarks(
    model_ids, dev: dict, test: dict, seed: int = 0, cache_dir=None, pool: int | None = None, device: str = "cpu"
) -> tuple[list[Benchmark], list[CloudStore]]:
    """Load each model and draw its dev and test items: the chapters' common start.

    Parameters
    ----------
    model_ids : sequence of str
        For :func:`topovlm.models.load_model`.
    dev, test : dict of family -> int
        Items per split by model family: texts (``"causal-lm"``), questions
        (``"llava-next"``), clips per suite (``"videollama2"``).
    pool : int, optional
        The calibration pool of each :class:`CloudStore`.

    Returns
    -------
    benches : list of Benchmark
    stores : list of CloudStore
    """
    benches, stores = [], []
    for model_id in model_ids:
        adapter = load_model(model_id, device=device, cache_dir=cache_dir)
        if adapter.family not in dev or adapter.family not in test:
            raise TopoVLMInputError(f"no dev / test size for the family {adapter.family!r} of {model_id}")
        bench = benchmark(model_id, adapter, dev[adapter.family], test[adapter.family], seed, cache_dir=cache_dir)
        benches.append(bench)
        stores.append(CloudStore(bench, cache_dir=cache_dir, pool=pool))
    return benches, stores


@dataclass(frozen=True)
class Row:
    """One reading (or baseline) on one model at one sparsity, on one split."""

    model: str
    reading: str
    sparsity: float
    split: str
    layers: tuple
    score: Interval
    scores: tuple = ()  # (L,) per-decoder-layer score the layers were chosen by (higher = removed first)
    activity: tuple = ()  # (L,) per-decoder-layer activity, for the paper's layer finding
    seconds: float = 0.0
    kind: str = "relative"  # "perplexity": score is full / pruned perplexity, shown as its inverse

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "reading": self.reading,
            "sparsity": self.sparsity,
            "split": self.split,
            "layers": list(self.layers),
            "score": self.score.to_dict(),
            "seconds": self.seconds,
            "kind": self.kind,
        }

    def cell(self, digits: int = 3) -> str:
        """The score as a table shows it: relative score [CI], or perplexity x full [CI]."""
        iv = self.score
        if self.kind == "perplexity":
            inv = [1 / x if x > 0 else float("inf") for x in (iv.value, iv.high, iv.low)]
            return f"x{inv[0]:.{digits}g} [{inv[1]:.{digits}g}, {inv[2]:.{digits}g}]"
        return iv.format(digits)


class CloudStore:
    """The clouds of each (token, point, n_calib) of one benchmark, extracted once.

    With ``pool``, the [RET] clouds are extracted for ``max(n, pool)`` samples
    and the first ``n`` returned: every calibration size and draw of a build
    then comes from one extraction per model (both points in one pass).
    """

    def __init__(self, bench: Benchmark, cache_dir=None, batch_size: int = 16, pool: int | None = None):
        self.bench, self.cache_dir, self.batch_size, self.pool = bench, cache_dir, batch_size, pool
        self._clouds: dict = {}

    def get(self, key: tuple) -> np.ndarray:
        token, point, n = key
        big = max(n, self.pool or 0) if token == "ret" else n
        if (token, point, big) not in self._clouds:
            self._clouds[(token, point, big)] = extract(
                self.bench.adapter,
                self.bench.calibration_samples(big),
                token=token,
                point=point,
                batch_size=self.batch_size,
                cache_dir=self.cache_dir,
                progress=False,
            )
        return self._clouds[(token, point, big)][:, :n]


def evaluate_reading(
    bench: Benchmark, store: CloudStore, reading: Reading, sparsities, split: str, n_calib: int
) -> list[Row]:
    """Search the reading's clouds at every sparsity and score the pruned models on ``split``."""

    clouds = store.get(reading.clouds_key(n_calib))
    rows = []
    for s in sparsities:
        t0 = time.perf_counter()
        res = search(clouds, reading.config(s, clouds.shape[1]))  # warnings reach the page: topovlm.notes
        seconds = time.perf_counter() - t0
        rows.append(
            Row(
                bench.label,
                reading.name,
                s,
                split,
                tuple(res.layers_to_remove),
                bench.score(split, res.layers_to_remove),
                tuple(res.selection.scores.tolist()),
                tuple(np.nan_to_num(res.scores.decoder_activity).tolist()),
                seconds,
                bench.kind,
            )
        )
    return rows


def mean_ranks(rows: list[Row]) -> dict:
    """Mean over (model, sparsity) cells of each reading's rank (1 = best score;
    ties share the mean rank)."""

    cells: dict = {}
    for r in rows:
        cells.setdefault((r.model, r.sparsity), []).append(r)
    ranks: dict = {}
    for members in cells.values():
        rk = rankdata([-r.score.value for r in members])
        for r, x in zip(members, rk):
            ranks.setdefault(r.reading, []).append(float(x))
    return {name: float(np.mean(v)) for name, v in ranks.items()}


#: The cap on adjacent layers removed in a row of the capped selection (ours).
MAX_IN_A_ROW = 3

#: Selection rules compared on dev for the chosen reading (stage 2): SearchConfig fields.
SELECTIONS = {
    "top-k": {},
    "top-k, first and last layer kept": {"keep": (0, -1)},
    f"top-k, at most {MAX_IN_A_ROW} in a row": {"max_consecutive": MAX_IN_A_ROW},
    f"top-k, first and last kept, at most {MAX_IN_A_ROW} in a row": {"keep": (0, -1), "max_consecutive": MAX_IN_A_ROW},
}


def with_selection(reading: Reading, selection: str) -> Reading:
    """The reading with one of :data:`SELECTIONS` (plain top-k: the reading itself)."""
    extra = SELECTIONS[selection]
    scoring = {k: v for k, v in reading.changes.items() if k not in ("keep", "max_consecutive")}
    if not extra and scoring == reading.changes:
        return reading
    name = reading.name if not extra else f"{reading.name}; {selection}"
    return Reading(name, {**scoring, **extra}, reading.preset)


def run_selection(
    benches: list[Benchmark],
    stores: list[CloudStore],
    reading: Reading,
    sparsities=(0.25, 0.5),
    n_calib: int = 512,
    progress: bool = True,
) -> tuple[list[Row], list[Reading]]:
    """Stage 2 of the rule: the chosen reading under every selection of
    :data:`SELECTIONS`, every model and sparsity, on the dev items.

    Returns
    -------
    rows : list of Row
    readings : list of Reading
        One per selection, plain top-k first (pass both to :func:`choose`).
    """
    readings = [with_selection(reading, name) for name in SELECTIONS]
    rows = []
    jobs = [(b, st, r) for b, st in zip(benches, stores) for r in readings]
    for bench, store, r in tqdm(jobs, desc="dev selections", disable=not progress):
        rows += evaluate_reading(bench, store, r, sparsities, "dev", n_calib)
    return rows, readings


def choose(rows: list[Row], readings: list[Reading]) -> Reading:
    """Stage 3 of the rule: best mean dev rank, ties to fewer changes."""
    ranks = mean_ranks([r for r in rows if r.split == "dev"])
    scored = [r for r in readings if r.name in ranks]
    return min(scored, key=lambda r: (ranks[r.name], r.n_changes))


def run_test(
    benches: list[Benchmark],
    stores: list[CloudStore],
    readings: list[Reading],
    sparsities=(0.25, 0.5),
    n_calib: int = 128,
    baselines=("shortgpt", "sleb", "random"),
    random_seeds=(0, 1, 2, 3, 4),
    expensive_samples: int = 4,
    progress: bool = True,
) -> list[Row]:
    """Stage 4: the finalists and the baselines on the test items.

    Each baseline runs as its record says (:class:`topovlm.baselines.Method`): a
    greedy one (SLEB) once, to the largest sparsity, on the first
    ``expensive_samples`` calibration samples (its choice at a smaller sparsity is
    the start of its choice at a larger one); a ranked one (ShortGPT, random) once
    per seed, its choice at every sparsity read off
    (:func:`topovlm.baselines.at_sparsity`); a block method once per sparsity.
    Their results, like the per-item outcomes, are kept in each benchmark's
    ``cache_dir``.
    """

    rows = []
    for bench, store in tqdm(list(zip(benches, stores)), desc="test", disable=not progress):
        for reading in readings:
            rows += evaluate_reading(bench, store, reading, sparsities, "test", n_calib)
        adapter = bench.adapter
        calib = bench.calibration_samples(n_calib)
        top = max(sparsities, key=lambda s: n_to_remove(s, adapter.n_layers))
        for name in baselines:
            record = get_method(name)
            built = Calibration.build(adapter, record.samples(calib, None, expensive_samples), 8)
            for seed in record.seeds(random_seeds):
                keep = {"seed": seed, "cache_dir": bench.cache_dir}
                # ranked: one run serves every sparsity; greedy: the run to the largest one
                # starts with the choice at each smaller one
                once = run(name, adapter, built, top, **keep) if record.choice != "block" else None
                for s in sparsities:
                    m = n_to_remove(s, adapter.n_layers)
                    if record.choice == "greedy":
                        layers, importance = tuple(sorted(once.order[:m])), ()
                    else:
                        r = at_sparsity(once, s) if once is not None else run(name, adapter, built, s, **keep)
                        layers, importance = tuple(r.layers_to_remove), tuple((-r.importance).tolist())
                    seconds = (once or r).seconds
                    rows.append(
                        Row(
                            bench.label,
                            record.titled(seed),
                            s,
                            "test",
                            layers,
                            bench.score("test", layers),
                            importance,
                            (),
                            seconds,
                            bench.kind,
                        )
                    )
    return rows


def matches_defaults(reading: Reading, n_calib: int | None = None) -> bool:
    """Whether the package's defaults (``SearchConfig()``, ``tv.extract``'s token
    and point) are this reading, so that the other chapters use it."""

    params = inspect.signature(extract).parameters
    token, point, n = reading.clouds_key(n_calib or 0)
    same_clouds = token == params["token"].default and point == params["point"].default
    same_n = n_calib is None or n == n_calib
    return same_clouds and same_n and reading.config(0.5, 10**6) == SearchConfig(sparsity=0.5)


def verdicts(
    benches: list[Benchmark], rows: list[Row], reading: str, against=("ShortGPT", "SLEB", "random"), seed: int = 0
) -> list[str]:
    """Does ``reading`` beat each comparison on the test items? One Markdown list
    line per (model, sparsity, comparison): the paired difference with its 95 %
    interval, "beats" / "loses to" / "cannot be told apart from", and the
    *detectable difference* (half the interval's width: the smallest difference
    this test split resolves) beside the gap between ShortGPT and random choices
    at the same cell — a verdict is decisive when the detectable difference is
    below that gap. Relative scores are compared by their difference,
    perplexities by their ratio (log scale); ``"random"`` is the mean of every
    random seed (geometric for perplexity)."""

    lines = []
    for bench in benches:
        idx, kw = bench.resampling("test", seed=seed)
        mine = {r.sparsity: r for r in rows if r.model == bench.label and r.reading == reading and r.split == "test"}
        for s, r in mine.items():
            ours0, ours = _mean_stat(bench, [r.layers], idx, kw)
            sg, rnd = _peers(rows, bench.label, "ShortGPT", s), _peers(rows, bench.label, "random", s)
            gap = abs(_mean_stat(bench, sg, idx, kw)[0] - _mean_stat(bench, rnd, idx, kw)[0]) if sg and rnd else None
            for other in against:
                layer_sets = _peers(rows, bench.label, other, s)
                if not layer_sets:
                    continue
                theirs0, theirs = _mean_stat(bench, layer_sets, idx, kw)
                iv = _interval(ours0 - theirs0, ours - theirs, LEVEL)
                half = (iv.high - iv.low) / 2
                word = "beats" if iv.low > 0 else "loses to" if iv.high < 0 else "cannot be told apart from"
                if bench.kind == "perplexity":  # differences of log(full / pruned perplexity)
                    what = (
                        f"perplexity ratio {np.exp(-iv.value):.3g} [{np.exp(-iv.high):.3g}, "
                        f"{np.exp(-iv.low):.3g}] (ours / theirs{', geometric mean' if len(layer_sets) > 1 else ''}); "
                        f"detectable: a factor {np.exp(half):.3g}"
                    )
                    gap_text = "" if gap is None else f", ShortGPT vs random: a factor {np.exp(gap):.3g}"
                else:
                    what = f"relative score difference {iv.format(3)}; detectable: ±{half:.3f}"
                    gap_text = "" if gap is None else f", ShortGPT − random: {gap:.3f}"
                decisive = "" if gap is None else (" — decisive" if half < gap else " — not decisive at this size")
                seeds = f" (mean of {len(layer_sets)} seeds)" if len(layer_sets) > 1 else ""
                lines.append(
                    f"- **{bench.label}, {s:.0%}**: {reading} {word} {other}{seeds}: {what}{gap_text}{decisive}"
                )
    return lines


def _mean_stat(bench: Benchmark, layer_sets, idx, kw: dict) -> tuple:
    """(point, (B,) bootstrap draws) of the test statistic, averaged over several pruned models."""
    point = np.mean([draws(bench.outcomes("test", ls)[0], **kw)[0] for ls in layer_sets])
    boot = np.mean([draws(bench.outcomes("test", ls)[0], idx=idx, **kw) for ls in layer_sets], axis=0)
    return point, boot


def _peers(rows: list[Row], model: str, name: str, sparsity: float) -> list[tuple]:
    """The removed layers of every test row of ``name`` (or its seeds) on one model and sparsity."""
    return [
        p.layers
        for p in rows
        if p.model == model
        and p.sparsity == sparsity
        and p.split == "test"
        and (p.reading == name or p.reading.startswith(name + " (seed"))
    ]


def thirds(n_layers: int) -> tuple[range, range]:
    """Decoder layers of the shallow third and of the middle/deep two thirds."""
    cut = int(np.ceil(n_layers / 3))
    return range(0, cut), range(cut, n_layers)


def layer_finding(activity, scores) -> dict:
    """The paper's finding on one model's per-layer numbers: activity highest in
    the shallow third, consistency highest in the middle/deep two thirds.

    Parameters
    ----------
    activity, scores : (L,) per decoder layer

    Returns
    -------
    dict with booleans ``activity_shallow`` and ``consistency_deep`` and the argmax layers.
    """
    a, s = np.asarray(activity, float), np.asarray(scores, float)
    shallow, deep = thirds(len(s))
    return {
        "activity_peak": int(np.argmax(a)),
        "activity_shallow": int(np.argmax(a)) in shallow,
        "consistency_peak": int(np.argmax(s)),
        "consistency_deep": int(np.argmax(s)) in deep,
    }


def finding_lines(rows: list[Row], readings) -> list[str]:
    """One line per (model, reading): does the paper's layer finding hold?"""
    lines = []
    names = [r.name if isinstance(r, Reading) else str(r) for r in readings]
    for r in rows:
        if r.reading not in names or not r.activity or r.sparsity != rows[0].sparsity:
            continue
        f = layer_finding(r.activity, r.scores)
        verdict = lambda ok: "holds" if ok else "does not hold"  # noqa: E731
        lines.append(
            f"{r.model} / {r.reading}: activity peaks at decoder layer {f['activity_peak']} "
            f"(shallow third: {verdict(f['activity_shallow'])}); consistency peaks at layer "
            f"{f['consistency_peak']} (middle/deep: {verdict(f['consistency_deep'])})"
        )
    return lines


def dev_table(rows: list[Row], readings: list[Reading]) -> str:
    """Markdown: every reading by model and sparsity on dev, with its mean rank
    (:func:`topovlm.studies.readings.dev_table`)."""
    return _dev_table(rows, readings, mean_ranks(rows))


def plot_layer_scores(rows, model: str, readings=None, ax=None):
    """Per-decoder-layer scores of every reading beside ShortGPT's, on one model.

    One row per reading: its score rescaled to [0, 1] (darker = removed first),
    a dot on each layer it removes. The dashed line closes the shallow third of
    the stack, where the paper finds topological activity; it finds consistency
    (redundancy) to the right.

    Parameters
    ----------
    rows : list of topovlm.studies.readings.Row
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
    ax = panel(ax, figsize=(8, 0.26 * len(chosen) + 1.3))
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
    with its 95 % interval (:class:`topovlm.studies.extensions.Row`); with ``after`` (an
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


def study_frame(rows) -> pd.DataFrame:
    """One record per :class:`topovlm.studies.readings.Row`: model, sparsity, reading, split,
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


def _dev_table(rows, readings, ranks: dict) -> str:
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
