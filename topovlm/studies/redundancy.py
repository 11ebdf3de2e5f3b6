"""Does a layer score measure redundancy? Every score against the damage of removing each layer alone.

Pruning at two sparsities asks a score one coarse question per model. A far
more powerful one: remove each decoder layer *alone*, measure the damage on
held-out items (:func:`layer_damage`), and ask whether the score ranks the
layers the way the damage does (:func:`correlations`): the Spearman
correlation of the score (higher = more redundant) with the negative damage.
+1: the score orders the layers exactly as their harmlessness; 0: it carries
no information about it.

The uncertainty has two sources, and the interval covers both: the
calibration set the score was computed from (each score is recomputed on
``n_draws`` calibration subsets of a larger pool, :func:`calibration_draws`)
and the held-out items the damage was measured on (a bootstrap over items).
Replicate b pairs draw ``b mod n_draws`` with the b-th item bootstrap.

Four families of scores are measured (:class:`Profile`): the readings of the
method (:mod:`topovlm.studies.readings`), the package default at other operating
points (N = 128, other k), the baselines that rank layers
(:mod:`topovlm.baselines`), and simpler statistics of the same topology
(:mod:`topovlm.topology.statistics`: activity, classes born or dying at a
layer, the change of Betti numbers, the distance between neighbouring
layers' diagrams).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import rankdata
from tqdm.auto import tqdm

from .._cache import default_cache_dir
from .._checks import TopoVLMInputError
from .._readback import read_npz, write_npz, writing
from ..baselines import METHODS, run
from ..extract import ExtractConfig
from ..forward import Calibration
from ..intervals import LEVEL, N_BOOT, Interval, draws
from ..outcome_store import outcome_key
from ..topology.search import SearchConfig, degenerate_clouds, empty_clouds, search
from ..topology.selection import jaccard, n_to_remove
from ..topology.standard import standard_persistence
from ..topology.statistics import classes_per_cloud, layer_changes, neighbour_distances
from .readings import BASE, PRESET_READINGS, Benchmark, Reading


def default_reading() -> Reading:
    """The package's defaults (``tv.SearchConfig()``, ``tv.extract``'s token and point) as a
    reading: the changes on the reconstruction preset that the defaults make, named after
    the preset reading it equals, if any."""
    base, ours = SearchConfig.preset("reconstruction", sparsity=0.5), SearchConfig(sparsity=0.5)
    changes = {
        f.name: getattr(ours, f.name) for f in fields(SearchConfig) if getattr(ours, f.name) != getattr(base, f.name)
    }
    clouds = ExtractConfig()
    first = dict(zip(("token", "point"), BASE.clouds_key(0)[:2]))  # the reconstruction's clouds
    changes.update({k: getattr(clouds, k) for k in first if getattr(clouds, k) != first[k]})
    scoring = {k: v for k, v in changes.items() if k not in ("keep", "max_consecutive")}
    twin = next((r.name for r in PRESET_READINGS if _same(r, Reading("scoring", scoring))), None)
    said = f"= {twin}" if twin else ", ".join(f"{k} = {v}" for k, v in scoring.items()) or "the reconstruction"
    if "keep" in changes:
        said += f"; layers {list(ours.keep)} kept"
    if "max_consecutive" in changes:
        said += f"; at most {ours.max_consecutive} in a row"
    return Reading(f"package default ({said})", changes)


def _same(a: Reading, b: Reading) -> bool:
    """Whether two readings score the layers alike: the same clouds and the same
    configuration but for the selection constraints (``keep``, ``max_consecutive``)."""

    def scoring(r):
        return replace(r.config(0.5, 10**6), keep=(), max_consecutive=None)

    return a.clouds_key(512)[:2] == b.clouds_key(512)[:2] and scoring(a) == scoring(b)


#: The package's default reading (``tv.SearchConfig()``).
DEFAULT = default_reading()

#: Baselines that rank single layers by a score of their own (their records name it;
#: LLM-Streamline ranks single layers by ShortGPT's Block Influence, only its block rule differs).
RANKED_BASELINES = tuple(name for name, m in METHODS.items() if m.score)


def calibration_draws(n_pool: int, n: int, n_draws: int = 10, seed: int = 0) -> np.ndarray:
    """Index sets of ``n`` calibration samples out of a pool of ``n_pool``.

    Draw 0 is the first ``n`` samples (the calibration set the chapters use),
    the others seeded subsets without replacement (sorted).

    Returns
    -------
    (n_draws, n) int64
    """
    if not 0 < n <= n_pool:
        raise TopoVLMInputError(f"a draw of {n} samples needs a pool of at least {n}, got {n_pool}")
    if n_draws < 1:
        raise TopoVLMInputError(f"n_draws must be >= 1, got {n_draws}")
    rng = np.random.default_rng(seed)
    out = [np.arange(n)] + [np.sort(rng.choice(n_pool, n, replace=False)) for _ in range(n_draws - 1)]
    return np.stack(out).astype(np.int64)


@dataclass(frozen=True)
class Damage:
    """What removing each decoder layer alone costs, on held-out items.

    Attributes
    ----------
    model : str
    kind : {"relative", "perplexity"}
    values : (L,) float64
        Damage of removing layer i alone: 1 - relative score (vision-language
        models), or log(perplexity pruned / full) (text model). 0 = harmless.
    boot : (B, L) float64
        The same on B bootstrap resamples of the items (the same resample for
        every layer: paired).
    """

    model: str
    kind: str
    values: np.ndarray
    boot: np.ndarray

    @property
    def n_layers(self) -> int:
        return len(self.values)

    def interval(self, layer: int, level: float = LEVEL) -> Interval:
        q = (1 - level) / 2
        b = self.boot[:, layer]
        return Interval(float(self.values[layer]), float(np.quantile(b, q)), float(np.quantile(b, 1 - q)), level)

    def critical(self, n: int = 5) -> list[int]:
        """The ``n`` layers whose removal costs most, most damaging first."""
        return [int(i) for i in np.argsort(-self.values, kind="stable")[:n]]

    def label(self, layer: int) -> str:
        """The damage of one layer as a table shows it: perplexity x or share lost."""
        iv = self.interval(layer)
        if self.kind == "perplexity":
            return f"x{np.exp(iv.value):.3g} [{np.exp(iv.low):.3g}, {np.exp(iv.high):.3g}]"
        return f"{iv.value:.3f} [{iv.low:.3f}, {iv.high:.3f}]"


def layer_damage(
    bench: Benchmark, split: str = "dev", n_boot: int = N_BOOT, seed: int = 0, progress: bool = True
) -> Damage:
    """Remove each decoder layer alone and measure the damage on ``split``.

    L evaluations, each starting at the removed layer from the full model's
    recorded inputs (:class:`topovlm.evaluate.Outcomes`), kept in the
    benchmark's outcome store: a rerun reads them.
    """
    L = bench.adapter.n_layers
    idx, kw = bench.resampling(split, n_boot, seed)
    values, boot = np.zeros(L), np.zeros((n_boot, L))
    for i in tqdm(range(L), desc=f"{bench.label}: each layer removed", disable=not progress):
        out = bench.outcomes(split, (i,))[0]
        values[i] = draws(out, **kw)[0]
        boot[:, i] = draws(out, idx=idx, **kw)
    if bench.kind == "relative":  # share kept -> share lost
        values, boot = 1 - values, 1 - boot
    else:  # log(full / pruned perplexity) -> log(pruned / full)
        values, boot = -values, -boot
    return Damage(bench.label, bench.kind, values, boot)


@dataclass(frozen=True)
class Profile:
    """One score of every decoder layer, on every calibration draw.

    Attributes
    ----------
    name : str
    family : {"reading", "baseline", "statistic", "variant"}
    scores : (D, L) float64
        Redundancy per draw: higher = removed first.
    notes : tuple of str
        What the package warned about while computing it (clouds without a
        class, degenerate clouds), in words for the page.
    classes : (D, L+1) float64, optional
        H1 classes alive at each cloud per draw (topological profiles).
    """

    name: str
    family: str
    scores: np.ndarray
    notes: tuple = ()
    classes: np.ndarray | None = field(default=None, repr=False)
    default: bool = False  # the package's default reading

    @property
    def n_draws(self) -> int:
        return len(self.scores)

    def selections(self, sparsity: float) -> list[tuple]:
        """The layers each draw's score removes at ``sparsity`` (top scores; ties: lower index)."""
        L = self.scores.shape[1]
        m = n_to_remove(sparsity, L)
        return [tuple(sorted(np.lexsort((np.arange(L), -s))[:m].tolist())) for s in self.scores]

    def stability(self, sparsity: float) -> float:
        """Mean Jaccard between the selections of every pair of draws (NaN for one draw)."""
        sel = self.selections(sparsity)
        pairs = [jaccard(a, b) for i, a in enumerate(sel) for b in sel[i + 1 :]]
        return float(np.mean(pairs)) if pairs else float("nan")


def _empty(res) -> list[int]:
    """Clouds of a zigzag result with no class in its scored dimensions (they score 0)."""
    return [] if res.barcode is None else empty_clouds(res.barcode, res.config.dims)


def _note_lines(counts: dict, n_draws: int, what: str) -> list[str]:
    if not counts:
        return []
    every = [c for c, n in sorted(counts.items()) if n == n_draws]
    some = [f"{c} ({n}/{n_draws})" for c, n in sorted(counts.items()) if n < n_draws]
    parts = ([f"in every draw at cloud(s) {', '.join(map(str, every))}"] if every else []) + (
        [f"in some draws at cloud(s) {', '.join(some)}"] if some else []
    )
    return [f"{what} " + "; ".join(parts)]


class _Tally:
    """Per score: its vector on each draw, and how often each cloud was empty or degenerate."""

    def __init__(self):
        self.scores: dict = {}
        self.empty: dict = {}
        self.degenerate: dict = {}
        self.dims: dict = {}

    def add(self, entry: tuple) -> None:
        """One draw's entry from :func:`_one_draw`: (name, family, scores, dims, empty, degenerate)."""
        name, family, vector, dims, empty, degenerate = entry
        self.scores.setdefault(name, (family, []))[1].append(np.asarray(vector, dtype=np.float64))
        self.dims[name] = dims
        for counts, clouds in (
            (self.empty.setdefault(name, {}), empty),
            (self.degenerate.setdefault(name, {}), degenerate),
        ):
            for c in clouds:
                counts[c] = counts.get(c, 0) + 1

    def profiles(self, n_draws: int, classes, default: str = "") -> list:
        out = []
        for name, (family, vs) in self.scores.items():
            dims = "/".join(f"H{p}" for p in self.dims.get(name, ()))
            notes = _note_lines(self.empty[name], n_draws, f"no {dims} class at all (consistency 0)")
            notes += _note_lines(self.degenerate[name], n_draws, "fewer than k + 1 distinct points (degenerate)")
            out.append(Profile(name, family, np.stack(vs), tuple(notes), classes, name == default))
        return out


def _search_all(clouds: np.ndarray, configs: dict) -> dict:
    """Search ``clouds`` under every configuration, computing each zigzag barcode once.

    Configurations that share k, the metric and the engine, and keep
    degenerate clouds, share one barcode (computed in every dimension up to
    the highest any of them scores). Warnings are silenced here: the caller
    records what they say (:func:`_empty`, :func:`degenerate_clouds`).
    """
    results, barcodes = {}, {}
    top = max(max(c.dims) for c in configs.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name, cfg in configs.items():
            key = (cfg.k, cfg.metric, cfg.engine)
            shareable = cfg.homology == "zigzag" and cfg.degenerate == "keep"
            if shareable and key not in barcodes:
                barcodes[key] = search(clouds, replace(cfg, dims=tuple(range(top + 1)))).barcode
            results[name] = search(barcodes[key], cfg) if shareable else search(clouds, cfg)
    return results


def distinct(readings) -> list[Reading]:
    """The readings that score the layers differently, first name kept (e.g. the
    paper's literal preset is the reconstruction with survival "born")."""
    out: list[Reading] = []
    for r in readings:
        if not any(_same(r, kept) for kept in out):
            out.append(r)
    return out


def drawable(reading: Reading) -> bool:
    """Whether a reading can be searched on draws of the [RET] pool: not one that changes
    the token (another extraction) or the calibration size (the draws fix it)."""
    return reading.clouds_key(512)[0] == "ret" and "n_calib" not in reading.changes


def candidates(readings) -> list[Reading]:
    """The distinct readings of a study, the package default among them (named after the
    reading it equals, when one does)."""
    return distinct([*readings, DEFAULT])


def default_of(readings) -> str:
    """The name the package default goes by among :func:`candidates`."""
    return next(r.name for r in candidates(readings) if _same(r, DEFAULT))


def _one_draw(clouds: dict, idx: np.ndarray, readings, sparsity: float, small_n, ks) -> tuple:
    """Every score of one calibration draw: (entries for :class:`_Tally`, H1 classes per cloud)."""
    by_clouds: dict = {}
    for r in readings:
        by_clouds.setdefault(r.clouds_key(len(idx))[:2], []).append(r)
    entries, classes = [], None
    base = DEFAULT.config(sparsity, len(idx))
    home = DEFAULT.clouds_key(len(idx))[:2]  # the default's clouds: its variants and the statistics

    def entry(name, family, vector, res=None, degenerate=()):
        dims = res.config.dims if res is not None else ()
        return (name, family, vector, dims, _empty(res) if res is not None else [], list(degenerate))

    for key, group in by_clouds.items():
        X = np.asarray(clouds[key][:, idx])
        configs = {r.name: (r.config(sparsity, len(idx)), "reading") for r in group}
        if key == home:
            configs.update({f"default, k = {k}": (replace(base, k=k), "variant") for k in ks})
        degenerate = {k: degenerate_clouds(X, k) for k in {c.k for c, _ in configs.values()}}
        results = _search_all(X, {name: c for name, (c, _) in configs.items()})
        for name, res in results.items():
            entries.append(entry(name, configs[name][1], res.selection.scores, res, degenerate[res.config.k]))
        if key == home:
            default = results[default_of(readings)]
            classes = classes_per_cloud(default.barcode, 1)
            entries.append(entry("activity (H1)", "statistic", -np.nan_to_num(_output_map(default, "activity"))))
            for stat, v in layer_changes(default.barcode, 1).items():
                entries.append(entry(f"{stat} (H1)", "statistic", -v))
            dgms = standard_persistence(X, base.k, base.metric, "knn", max_dim=1)
            entries.append(entry("neighbour diagram distance (H1)", "statistic", -neighbour_distances(dgms, 1)))
            if small_n:
                Xs = X[:, :small_n]
                res = _search_all(Xs, {"small": DEFAULT.config(sparsity, small_n)})["small"]
                entries.append(
                    entry(
                        f"default, N = {small_n}",
                        "variant",
                        res.selection.scores,
                        res,
                        degenerate_clouds(Xs, res.config.k),
                    )
                )
    return entries, classes


def _output_map(res, what: str) -> np.ndarray:
    """(L,) a per-cloud score of a result read at each decoder layer's output cloud i + 1,
    as the change statistics are (whatever the result's own layer map)."""
    per_cloud = res.scores.combined_activity if what == "activity" else res.scores.combined_consistency
    return np.asarray(per_cloud)[1:]


def topology_profiles(
    clouds: dict,
    readings,
    draws_idx: np.ndarray,
    sparsity: float = 0.5,
    small_n: int | None = 128,
    ks=(5, 25),
    progress: bool = True,
    label: str = "",
    n_jobs: int = 1,
) -> list[Profile]:
    """Every reading's score, the topology statistics, and the default at other N and k, per draw.

    Parameters
    ----------
    clouds : dict of (token, point) -> (L+1, P, d)
        The pool's clouds (P samples) of each extraction the readings need.
    readings : sequence of Reading
        Their ``n_calib`` field is ignored: every reading searches each draw.
    draws_idx : (D, N) from :func:`calibration_draws`
    sparsity : float
        The sparsity of the selections (only the scores are compared here).
    small_n : int, optional
        Also the default reading on the first ``small_n`` samples of each draw.
    ks : sequence of int
        Also the default reading at these k.
    n_jobs : int
        Draws computed in parallel (joblib worker processes; the clouds are
        shared with them through memory maps). 1: in this process.

    Returns
    -------
    list of Profile
    """
    readings = candidates(readings)
    args = (readings, sparsity, small_n, tuple(ks))
    if n_jobs == 1:
        done = (_one_draw(clouds, idx, *args) for idx in draws_idx)
    else:
        done = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_one_draw)(clouds, idx, *args) for idx in draws_idx
        )
    tally, classes = _Tally(), []
    for entries, cls in tqdm(done, total=len(draws_idx), desc=f"{label} draws".strip(), disable=not progress):
        for e in entries:
            tally.add(e)
        if cls is not None:
            classes.append(cls)
    return tally.profiles(len(draws_idx), np.stack(classes) if classes else None, default_of(readings))


def baseline_profiles(
    bench: Benchmark,
    methods=RANKED_BASELINES,
    n_draws: int = 10,
    n_samples: int = 16,
    sparsity: float = 0.5,
    batch_size: int = 8,
    progress: bool = True,
) -> list[Profile]:
    """The per-layer redundancy (negative importance) of each ranking baseline, per draw.

    Draw d is the d-th disjoint block of ``n_samples`` of the benchmark's
    calibration draw; each run is kept in the benchmark's ``cache_dir``
    (:func:`topovlm.baselines.run`).
    """
    pool = bench.calibration_samples(n_draws * n_samples)
    out = []
    for method in tqdm(methods, desc=f"{bench.label}: baselines", disable=not progress):
        record = METHODS[method]
        draws_ = n_draws if record.calibrated else 1  # without calibration samples one draw is all there is
        scores = []
        for d in range(draws_):
            calib = Calibration.build(bench.adapter, pool[d * n_samples : (d + 1) * n_samples], batch_size)
            res = run(method, bench.adapter, calib, sparsity, cache_dir=bench.cache_dir)
            scores.append(-np.asarray(res.importance, dtype=np.float64))
        out.append(Profile(record.score, "baseline", np.stack(scores)))
    return out


def greedy_truth(order, n_layers: int) -> np.ndarray:
    """(L,) a greedy removal order as a redundancy: the first removed scores highest;
    layers never removed share the lowest score."""
    truth = np.zeros(n_layers)
    for pos, layer in enumerate(order):
        truth[int(layer)] = len(order) - pos
    return truth


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman correlation of (B, L) with (B, L) (ties: mean ranks)."""
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    den = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    return np.where(den > 0, (ra * rb).sum(1) / np.where(den > 0, den, 1), 0.0)


def middle(n_layers: int, edge: int = 2) -> np.ndarray:
    """Decoder layers without the first and last ``edge``."""
    return np.arange(edge, n_layers - edge)


@dataclass(frozen=True)
class Correlation:
    """How well one score ranks the layers of one model by their harmlessness."""

    model: str
    name: str
    family: str
    all_layers: Interval  # Spearman(score, -damage), every decoder layer
    middle: Interval  # the same without the first and last two layers
    greedy: Interval | None  # Spearman(score, SLEB's greedy order), over draws only
    stability: float  # mean Jaccard of the selections across draws
    n_draws: int
    notes: tuple = ()
    default: bool = False  # the package's default reading


def correlate(profile: Profile, damage: Damage, edge: int = 2, seed: int = 0, level: float = LEVEL) -> tuple:
    """Spearman(score, -damage) on every layer and on the middle ones, with intervals
    over calibration draws x item bootstrap (replicate b: draw b mod D, item resample b)."""
    S, D = profile.scores, profile.n_draws
    if S.shape[1] != damage.n_layers:
        raise TopoVLMInputError(f"{profile.name}: {S.shape[1]} layer scores for {damage.n_layers} layers")
    q = (1 - level) / 2
    B = len(damage.boot)
    pick = np.random.default_rng(seed).permutation(np.arange(B) % D)
    out = []
    for cols in (np.arange(damage.n_layers), middle(damage.n_layers, edge)):
        if len(cols) < 3:  # too few layers to rank
            out.append(Interval(float("nan"), float("nan"), float("nan"), level))
            continue
        point = _spearman(S[:, cols], np.repeat(-damage.values[None, cols], D, 0)).mean()
        reps = _spearman(S[pick][:, cols], -damage.boot[:, cols])
        out.append(Interval(float(point), float(np.quantile(reps, q)), float(np.quantile(reps, 1 - q)), level))
    return tuple(out)


def correlations(
    profiles, damage: Damage, greedy_order=None, sparsity: float = 0.5, edge: int = 2, seed: int = 0
) -> list[Correlation]:
    """One :class:`Correlation` per profile, best (middle layers) first within each family."""
    rows = []
    truth = None if greedy_order is None else greedy_truth(greedy_order, damage.n_layers)
    for p in profiles:
        all_, mid = correlate(p, damage, edge, seed)
        g = None
        if truth is not None:
            rho = _spearman(p.scores, np.repeat(truth[None], p.n_draws, 0))
            g = Interval(
                float(rho.mean()), float(np.quantile(rho, (1 - LEVEL) / 2)), float(np.quantile(rho, (1 + LEVEL) / 2))
            )
        rows.append(
            Correlation(
                damage.model, p.name, p.family, all_, mid, g, p.stability(sparsity), p.n_draws, p.notes, p.default
            )
        )
    return rows


FAMILY_ORDER = {"reading": 0, "variant": 1, "statistic": 2, "baseline": 3}


def correlation_frame(rows: list[Correlation]) -> pd.DataFrame:
    """The correlation table as numbers (one row per model and score)."""
    recs = []
    for r in rows:
        rec = dict(model=r.model, score=r.name, family=r.family, draws=r.n_draws, stability=r.stability)
        for col, iv in (("all", r.all_layers), ("middle", r.middle), ("vs SLEB", r.greedy)):
            if iv is not None:
                rec.update({col: iv.value, f"{col} low": iv.low, f"{col} high": iv.high})
        recs.append(rec)
    return pd.DataFrame(recs)


def correlation_table(rows: list[Correlation]) -> str:
    """Markdown: Spearman correlation of every score with the harmlessness of each layer."""
    lines = [
        "| model | score | family | ρ, all layers [95 %] | ρ, middle layers [95 %] | ρ vs SLEB order | "
        "selection Jaccard across draws |",
        "|---|---|---|---|---|---|---|",
    ]
    ordered = sorted(rows, key=lambda r: (r.model, FAMILY_ORDER.get(r.family, 9), -r.middle.value))
    for r in ordered:
        g = "–" if r.greedy is None else f"{r.greedy.value:+.2f} [{r.greedy.low:+.2f}, {r.greedy.high:+.2f}]"
        stab = "–" if np.isnan(r.stability) else f"{r.stability:.2f}"
        cells = [f"{iv.value:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]" for iv in (r.all_layers, r.middle)]
        lines.append(f"| {r.model} | {r.name} | {r.family} | {cells[0]} | {cells[1]} | {g} | {stab} |")
    return "\n".join(lines)


def notes_text(rows: list[Correlation]) -> str:
    """Markdown: what the package warned about while computing the scores, one line per
    (model, warning) naming the scores it concerns (stderr does not reach the page)."""
    grouped: dict = {}
    for r in rows:
        for note in r.notes:
            grouped.setdefault((r.model, note), []).append(r.name)
    if not grouped:
        return "The package warned about nothing while computing these scores."
    items = [f"- **{model}**, {note} — {', '.join(names)}." for (model, note), names in grouped.items()]
    where = "cloud i is read inside decoder layer i with the normed point, after it with the residual point"
    return f"What the package warned about while computing the scores ({where}):\n\n" + "\n".join(items)


def misses(profile: Profile, damage: Damage, sparsity: float = 0.5, n_critical: int = 5) -> pd.DataFrame:
    """The critical layers (largest damage) and how the profile treats them.

    One row per critical layer: its damage with interval, in how many draws
    the profile removes it at ``sparsity``, its mean redundancy rank (1 =
    removed first) and the H1 classes alive at the cloud that scores it under the
    package's default layer map (the classes are those of the default reading).
    """
    shift = 1 if DEFAULT.config(sparsity, 10**6).layer_map == "output" else 0
    sel = profile.selections(sparsity)
    ranks = rankdata(-profile.scores, axis=1).mean(0)
    recs = []
    for layer in damage.critical(n_critical):
        rec = {
            "layer": layer,
            "damage": damage.label(layer),
            "removed in draws": f"{sum(layer in s for s in sel)} of {len(sel)}",
            "mean redundancy rank": round(float(ranks[layer]), 1),
        }
        if profile.classes is not None:
            rec["H1 classes at its cloud (mean)"] = round(float(profile.classes[:, layer + shift].mean()), 1)
        recs.append(rec)
    return pd.DataFrame(recs)


def plot_scores_vs_damage(profiles, damage: Damage, names=None, ncols: int = 4, axes=None):
    """One panel per score: each layer's mean redundancy rank over the draws
    against its damage (log scale), layer indices as labels. A score that sees
    redundancy puts its highest ranks (top) on the least damage (left)."""
    by_name = {p.name: p for p in profiles}
    chosen = list(profiles) if names is None else [by_name[n] for n in dict.fromkeys(names) if n in by_name]
    n = len(chosen)
    nrows = int(np.ceil(n / ncols))
    if axes is None:
        _, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.6 * nrows), layout="constrained", squeeze=False)
    axes = np.asarray(axes).ravel()
    x = np.maximum(damage.values, 1e-4)
    L = damage.n_layers
    for ax, p in zip(axes, chosen):
        y = L + 1 - rankdata(-p.scores, axis=1).mean(0)  # L = most redundant
        ax.scatter(x, y, s=12, c=np.arange(L), cmap="viridis")
        for i in (0, 1, L - 1, *damage.critical(3)):
            ax.annotate(str(i), (x[i], y[i]), fontsize=7, xytext=(2, 2), textcoords="offset points")
        rho = _spearman(p.scores, np.repeat(-damage.values[None], p.n_draws, 0)).mean()
        ax.set_xscale("log")
        ax.set_title(f"{p.name}\nρ = {rho:+.2f}", fontsize=8)
        ax.set_xlabel("damage (at most 1e-4 drawn at 1e-4)", fontsize=7)
        ax.set_ylabel("redundancy rank", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.axis("off")
    what = "log(ppl pruned / full)" if damage.kind == "perplexity" else "share of the score lost"
    axes[0].figure.suptitle(
        f"{damage.model}: redundancy rank (top = removed first) against the damage of removing the layer alone "
        f"({what}); colour = depth",
        fontsize=9,
    )
    return axes


@dataclass
class ModelStudy:
    """One model's study: damage, every profile and their correlations."""

    damage: Damage
    profiles: list
    rows: list
    greedy_order: list

    @property
    def default(self) -> Profile:
        """The profile of the package's default reading."""
        return next(p for p in self.profiles if p.default)

    def profile(self, name: str) -> Profile:
        return next(p for p in self.profiles if p.name == name)


def study(
    bench: Benchmark,
    store,
    readings,
    n_calib: int = 512,
    n_pool: int = 1024,
    n_draws: int = 10,
    small_n: int | None = 128,
    ks=(5, 25),
    baselines=RANKED_BASELINES,
    baseline_samples: int = 8,
    expensive_samples: int = 2,
    sparsity: float = 0.5,
    seed: int = 0,
    progress: bool = True,
    n_jobs: int = 1,
) -> ModelStudy:
    """The whole study on one model: single-layer damage on the dev items, every
    score on ``n_draws`` calibration draws of ``n_calib`` out of a pool of
    ``n_pool`` (one extraction per point: :class:`topovlm.studies.readings.CloudStore`),
    SLEB's greedy order to ``sparsity`` on its first ``expensive_samples`` samples,
    and the correlations. Readings that are not :func:`drawable` are left out. ``n_jobs``: draws searched in parallel
    (:func:`topology_profiles`).

    The result is kept under ``<cache>/redundancy/`` (the benchmark's
    ``cache_dir``; False: not kept), keyed by the model's weights, the dev items,
    the calibration pool and every argument: a second chapter asking the same
    question reads it.
    """
    readings = candidates([r for r in readings if drawable(r)])
    how = dict(
        readings=[(r.name, r.preset, sorted((k, str(v)) for k, v in r.changes.items())) for r in readings],
        n_calib=n_calib,
        n_pool=n_pool,
        n_draws=n_draws,
        small_n=small_n,
        ks=list(ks),
        baselines=list(baselines),
        baseline_samples=baseline_samples,
        expensive_samples=expensive_samples,
        sparsity=sparsity,
        seed=seed,
    )
    path = _study_path(bench, n_pool, how)
    kept = _load_study(path) if path is not None else None
    if kept is None:
        damage = layer_damage(bench, "dev", seed=seed, progress=progress)
        keys = {r.clouds_key(n_pool)[:2] for r in readings}
        clouds = {key: store.get((*key, n_pool)) for key in keys}
        idx = calibration_draws(n_pool, n_calib, n_draws, seed)
        profiles = topology_profiles(clouds, readings, idx, sparsity, small_n, ks, progress, bench.label, n_jobs)
        profiles += baseline_profiles(bench, baselines, n_draws, baseline_samples, sparsity, progress=progress)
        calib = bench.calibration_samples(n_calib)[:expensive_samples]
        order = [int(i) for i in run("sleb", bench.adapter, calib, sparsity, cache_dir=bench.cache_dir).order]
        kept = (damage, profiles, order)
        if path is not None:
            _save_study(path, *kept)
    damage, profiles, order = kept
    return ModelStudy(damage, profiles, correlations(profiles, damage, order, sparsity, seed=seed), order)


def _study_path(bench: Benchmark, n_pool: int, how: dict):
    if bench.cache_dir is False:
        return None
    items = [*bench.items("dev"), *bench.calibration_samples(n_pool)]
    key = outcome_key(bench.adapter, items, study="redundancy", kind=bench.kind, **how)
    root = Path(bench.cache_dir) if bench.cache_dir is not None else default_cache_dir()
    return root / "redundancy" / f"{key}.npz"


def _save_study(path: Path, damage: Damage, profiles: list, order: list) -> None:
    """One ``.npz`` (no pickle: the metadata is a JSON string), written atomically."""
    meta = {
        "model": damage.model,
        "kind": damage.kind,
        "order": order,
        "profiles": [
            {"name": p.name, "family": p.family, "notes": list(p.notes), "default": p.default} for p in profiles
        ],
    }
    arrays = {"meta": np.array(json.dumps(meta)), "values": damage.values, "boot": damage.boot}
    arrays.update({f"scores{i}": p.scores for i, p in enumerate(profiles)})
    classes = next((p.classes for p in profiles if p.classes is not None), None)
    if classes is not None:
        arrays["classes"] = classes
    with writing(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_npz(path, arrays)


def _load_study(path: Path):
    """What :func:`_save_study` wrote, or None (missing; damaged: reported, computed again)."""
    found: list = []

    def parse(z: dict) -> str:
        try:
            meta = json.loads(str(z["meta"]))
            damage = Damage(meta["model"], meta["kind"], z["values"], z["boot"])
            classes = z.get("classes")
            profiles = [
                Profile(
                    p["name"],
                    p["family"],
                    z[f"scores{i}"],
                    tuple(p["notes"]),
                    classes if p["family"] in ("reading", "variant", "statistic") else None,
                    bool(p["default"]),
                )
                for i, p in enumerate(meta["profiles"])
            ]
            found.append((damage, profiles, [int(i) for i in meta["order"]]))
        except (ValueError, KeyError, TypeError) as exc:
            return f"not a study: {exc.__class__.__name__}"
        return ""

    return found[0] if read_npz(path, parse) is not None else None


def choose(rows: list[Correlation], readings) -> Reading:
    """Stage 1 of the book's rule: the reading whose score correlates best with the
    harmlessness of each layer (Spearman on every decoder layer, dev damage), in
    the mean over the models; ties go to fewer changes.

    Parameters
    ----------
    rows : list of Correlation
        Of every model (:attr:`ModelStudy.rows`).
    readings : sequence of Reading
        The candidates (those without a row, e.g. a duplicate, are left out).
    """
    by_name: dict = {}
    for r in rows:
        if r.family == "reading":
            by_name.setdefault(r.name, []).append(r.all_layers.value)
    scored = [r for r in candidates(readings) if r.name in by_name]
    if not scored:
        raise TopoVLMInputError("no reading has a correlation row to choose by")
    return max(scored, key=lambda r: (round(float(np.mean(by_name[r.name])), 10), -r.n_changes))


def mean_correlations(rows: list[Correlation]) -> pd.DataFrame:
    """The readings' ρ (every layer and middle layers) averaged over the models, best first:
    the table the rule chooses by."""
    f = correlation_frame([r for r in rows if r.family == "reading"])
    out = f.groupby("score", sort=False)[["all", "middle", "stability"]].mean()
    return out.sort_values("all", ascending=False).round(3).reset_index()


def findings(rows: list[Correlation], against: str = "ShortGPT (Block Influence)") -> str:
    """Markdown, one paragraph per model, computed from the rows: does the default
    reading see redundancy, against ShortGPT and the best topological score?"""

    def says(iv: Interval) -> str:
        if iv.low > 0:
            return "ranks the layers with their harmlessness"
        if iv.high < 0:
            return "ranks them *against* their harmlessness"
        return "carries no measurable information about which layers are harmless"

    out = []
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        d = next(r for r in mine if r.default)
        base = next((r for r in mine if r.name == against), None)
        topo = [r for r in mine if r.family in ("reading", "statistic", "variant")]
        best = max(topo, key=lambda r: r.middle.value)
        text = (
            f"**{model}.** On the middle layers the package's default reading (*{d.name}*) {says(d.middle)} "
            f"(ρ = {d.middle.format(2)}; all layers {d.all_layers.format(2)})."
        )
        if base is not None:
            text += f" {against}: ρ = {base.middle.format(2)} ({says(base.middle).split(' about')[0]})."
        text += f" The best topological score on the middle layers is *{best.name}*, ρ = {best.middle.format(2)}"
        if base is not None:
            gap = (
                "above"
                if best.middle.low > base.middle.high
                else "below"
                if best.middle.high < base.middle.low
                else "overlapping"
            )
            text += f", its interval {gap} ShortGPT's."
        else:
            text += "."
        out.append(text)
    return "\n\n".join(out)
