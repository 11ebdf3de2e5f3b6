"""What the paper did not try: its four stated limitations, each answered by a measurement.

The paper closes with what it left out: only H0 and H1; calibration data whose
choice "may affect" the result; one-shot pruning with no fine-tuning after it;
zigzag filtrations whose cost grows with the point clouds. Each function here
runs one of those experiments on a :class:`topovlm.studies.readings.Benchmark` (a model
with held-out dev/test items and its calibration set) and returns rows with
intervals; each ``*_finding`` turns the rows into the one sentence the book
states, computed from the numbers (nothing in it is typed by hand).

- :func:`homology_dims`: H2 beside H0 and H1 (``dims`` of the search);
- :func:`topovlm.studies.robustness.calibration_robustness`: the calibration set;
- :func:`progressive_vs_one_shot`: re-extracting between rounds;
- :func:`recovery`: :func:`topovlm.training.heal.heal` after each method's pruning;
- :func:`search_scale`: the whole search at growing N, time and peak memory.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._checks import TopoVLMInputError
from ..baselines import check_methods, get_method
from ..baselines import run as run_baseline
from ..extract import extract
from ..intervals import Interval
from ..progressive import prune_progressive
from ..prune import prune
from ..reports import layer_ranges, markdown
from ..topology.search import SearchConfig, search
from ..topology.selection import jaccard
from ..topology.synthetic import drifting_clouds
from ..training.heal import HealConfig, heal
from .readings import Benchmark
from .robustness import calibration_robustness

#: homology dimensions compared (name -> dims); the first is the package default
DIMS = {"H1 (default)": (1,), "H0+H1 (paper)": (0, 1), "H1+H2": (1, 2), "H0+H1+H2": (0, 1, 2)}


@dataclass(frozen=True)
class Row:
    """One pruned model of one experiment: which layers, how good, what it cost.

    Attributes
    ----------
    model, name : str
        The benchmark's label and the variant (a dims set, "one shot", a method...).
    layers : tuple of int
        Removed decoder layers (original indices).
    score : Interval
        Share of the full model kept on the split (relative score, or full / pruned perplexity).
    seconds : float
        What choosing the layers (or healing) cost.
    jaccard : float
        Overlap of ``layers`` with the experiment's first row.
    extra : dict
        Per experiment: bars counted, forward passes, healed score and gain...
    """

    model: str
    name: str
    layers: tuple
    score: Interval
    seconds: float
    jaccard: float = 1.0
    extra: dict | None = None


@contextmanager
def _quiet():
    """Degenerate clouds (cloud 0 at [RET] is one point repeated) and clouds without H1 are
    known and reported in earlier chapters; here they would only repeat that warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _search(clouds, config: SearchConfig):
    with _quiet():
        return search(clouds, config)


def _config(config: SearchConfig | None, sparsity: float, n: int) -> SearchConfig:
    config = SearchConfig() if config is None else config
    return config.at_sparsity(sparsity, n)


def homology_dims(
    bench: Benchmark, clouds, sparsity: float = 0.5, dims: dict = DIMS, config=None, split: str = "test"
) -> list[Row]:
    """The search with each set of homology dimensions, scored on ``split``.

    Parameters
    ----------
    bench : Benchmark
    clouds : (L+1, N, d) array
        The benchmark's calibration clouds.
    dims : dict
        name -> homology dimensions; the first row is the reference of the Jaccard index.

    Returns
    -------
    list of Row
        ``extra``: ``{"dims", "bars"}`` (intervals per dimension in the zigzag).
    """
    cfg0 = _config(config, sparsity, np.shape(clouds)[1])
    rows = []
    for name, d in dims.items():
        t0 = time.perf_counter()
        res = _search(clouds, replace(cfg0, dims=tuple(d)))
        seconds = time.perf_counter() - t0
        layers = tuple(res.layers_to_remove)
        bars = {p: len(res.barcode.intervals(p)) for p in d} if res.barcode is not None else {}
        rows.append(
            Row(
                bench.label,
                name,
                layers,
                bench.score(split, layers),
                seconds,
                jaccard(layers, rows[0].layers if rows else layers),
                {"dims": tuple(d), "bars": bars},
            )
        )
    return rows


def progressive_vs_one_shot(
    bench: Benchmark,
    samples,
    sparsity: float = 0.5,
    steps=(5,),
    config=None,
    split: str = "test",
    batch_size: int = 16,
    cache_dir=None,
    progress: bool = False,
) -> list[Row]:
    """One-shot search against progressive pruning (``step`` layers per round,
    clouds re-extracted from the pruned model before each round).

    Each progressive run prunes a copy of ``bench.adapter``; the pruned model
    is scored by skipping the same original layers of the full model, which
    gives its outcomes exactly.

    Returns
    -------
    list of Row
        First the one-shot search; ``extra``: ``{"passes", "order"}`` (calibration
        passes over the model, the order the layers went in).
    """
    samples = list(samples)
    cfg = _config(config, sparsity, len(samples))
    t0 = time.perf_counter()
    clouds = extract(bench.adapter, samples, batch_size=batch_size, cache_dir=cache_dir, progress=False)
    one = tuple(_search(clouds, cfg).layers_to_remove)
    rows = [Row(bench.label, "one shot", one, bench.score(split, one), time.perf_counter() - t0, 1.0, {"passes": 1})]
    for step in steps:
        copy = bench.adapter.copy()
        with _quiet():
            res = prune_progressive(
                copy,
                samples,
                sparsity,
                step=step,
                config=cfg,
                batch_size=batch_size,
                cache_dir=cache_dir,
                progress=progress,
            )
        layers = tuple(res.layers_to_remove)
        extra = {"passes": res.n_passes, "order": res.order()}
        rows.append(
            Row(
                bench.label,
                f"{step} per round",
                layers,
                bench.score(split, layers),
                res.seconds,
                jaccard(layers, one),
                extra,
            )
        )
        del copy
    return rows


def method_choices(
    bench: Benchmark,
    clouds,
    methods,
    sparsity: float = 0.5,
    n_calib: int = 128,
    expensive_samples: int = 2,
    seed: int = 0,
) -> dict:
    """Each method's layers at ``sparsity``: TopoVLM's default search on ``clouds``, the
    baselines (:func:`topovlm.baselines.run`) on the benchmark's first ``n_calib`` calibration
    samples (SLEB on ``expensive_samples`` of them: it reruns the model ~L^2/2 times), kept in
    the benchmark's ``cache_dir`` (the fidelity study's test stage makes the same runs).

    Returns
    -------
    dict
        method label (as tables name it) -> sorted tuple of removed layers
    """
    calib = bench.calibration_samples(n_calib, seed)
    out = {}
    for name in check_methods(methods):
        record = get_method(name)
        if record.budget == "whole":  # TopoVLM: the default search on the clouds given
            layers = _search(clouds, _config(None, sparsity, np.shape(clouds)[1])).layers_to_remove
        else:
            seen = record.samples(calib, None, expensive_samples)
            layers = run_baseline(
                name, bench.adapter, seen, sparsity, seed=seed, cache_dir=bench.cache_dir
            ).layers_to_remove
        out[record.titled(seed)] = tuple(layers)
    return out


def calibration(bench: Benchmark, variants, sparsity: float = 0.5, split: str = "test", cache_dir=None):
    """:func:`topovlm.studies.robustness.calibration_robustness` on the benchmark's model, each
    choice scored on ``split``.

    Returns
    -------
    list of topovlm.studies.robustness.RobustnessRow
    """
    with _quiet():
        return calibration_robustness(
            bench.adapter,
            list(variants),
            sparsity,
            scorer=lambda layers: bench.score(split, layers),
            cache_dir=cache_dir,
            progress=False,
        )


def recovery(
    bench: Benchmark,
    choices: dict,
    config: HealConfig | None = None,
    split: str = "test",
    cache_dir=None,
    progress: bool = False,
) -> list[Row]:
    """Heal each method's pruned model and score it again.

    Parameters
    ----------
    bench : Benchmark
    choices : dict
        method name -> removed layers (e.g. TopoVLM's, ShortGPT's, SLEB's, a random choice).
    config : HealConfig, optional

    Returns
    -------
    list of Row
        ``score`` is the pruned model's; ``extra``: ``{"healed"`` (Interval), ``"gain"`` (paired
        difference healed - pruned, Interval), ``"recovered"`` (share of the lost score won back),
        ``"loss"`` (first and last training loss)}.
    """
    config = config or HealConfig()
    rows = []
    for name, layers in tqdm(list(choices.items()), desc="heal", disable=not progress):
        layers = tuple(sorted(int(i) for i in layers))
        copy = bench.adapter.copy()
        prune(copy, list(layers))
        report = heal(copy, config, cache_dir=cache_dir, progress=False)
        healed = bench.measure(split, copy)
        del copy
        pruned = bench.outcomes(split, layers)
        before, after = bench.score(split, layers), bench.score_outcomes(split, healed)
        lost = 1.0 - before.value
        extra = {
            "healed": after,
            "gain": bench.difference(split, healed, pruned),
            "recovered": (after.value - before.value) / lost if lost > 1e-9 else float("nan"),
            "loss": (report.first_loss, report.last_loss),
        }
        first = rows[0].layers if rows else layers
        rows.append(Row(bench.label, name, layers, before, report.seconds, jaccard(layers, first), extra))
    return rows


# -- scale -------------------------------------------------------------------


def peak_memory_gb() -> float:
    """This process's peak resident memory in GB: ``VmHWM`` (Linux; starts afresh in a
    new process, unlike ``ru_maxrss``, which a spawned child inherits from its parent),
    else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1e6  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _search_child(queue, n_points: int, n_layers: int, k: int, dim: int, dims: tuple, seed: int):
    X = drifting_clouds(n_layers, n_points, dim, seed=seed)
    with _quiet():
        res = search(X, k=k, sparsity=0.5, dims=dims)
    queue.put({"timings": dict(res.timings), "peak_gb": peak_memory_gb()})


def search_scale(
    sizes=(256, 512, 1024),
    n_layers: int = 33,
    k: int = 15,
    dim: int = 64,
    dims=(1,),
    seed: int = 0,
    timeout: float = 900.0,
    progress: bool = False,
) -> pd.DataFrame:
    """The whole search (:func:`topovlm.search`) at growing numbers of points.

    Each size runs in a fresh process (so its peak memory is its own) on
    ``drifting_clouds(n_layers, N, dim)``.

    Returns
    -------
    DataFrame
        One row per N: seconds per stage (complexes, homology, images,
        scoring, selection), total seconds, peak resident memory in GB
        (``NaN`` where the run passed ``timeout``).
    """
    ctx = mp.get_context("spawn")
    records = []
    for n in tqdm(list(sizes), desc="search scale", disable=not progress):
        if n <= k:
            raise TopoVLMInputError(f"N = {n} points needs to exceed k = {k}")
        q = ctx.Queue()
        p = ctx.Process(target=_search_child, args=(q, int(n), n_layers, k, dim, tuple(dims), seed))
        p.start()
        p.join(timeout)
        if p.is_alive():
            p.terminate()
            p.join()
            records.append({"N": n, "total": np.nan, "peak_gb": np.nan})
            continue
        out = q.get() if not q.empty() else {"timings": {}, "peak_gb": np.nan}
        records.append({"N": n, **out["timings"], "peak_gb": out["peak_gb"]})
    return pd.DataFrame.from_records(records)


def scale_exponent(frame: pd.DataFrame, column: str = "total") -> float:
    """Slope of log(column) against log(N) over the finished runs (how the cost grows)."""
    f = frame.dropna(subset=[column])
    if len(f) < 2:
        return float("nan")
    return float(np.polyfit(np.log(f["N"]), np.log(f[column]), 1)[0])


# -- tables and findings -------------------------------------------------------


def frame(rows: list[Row]) -> pd.DataFrame:
    """One record per row, intervals as value / low / high columns."""
    records = []
    for r in rows:
        rec = {
            "model": r.model,
            "variant": r.name,
            "layers": r.layers,
            "score": r.score.value,
            "score_low": r.score.low,
            "score_high": r.score.high,
            "jaccard": r.jaccard,
            "seconds": r.seconds,
        }
        for key, value in (r.extra or {}).items():
            if isinstance(value, Interval):
                rec.update({key: value.value, f"{key}_low": value.low, f"{key}_high": value.high})
            else:
                rec[key] = value
        records.append(rec)
    return pd.DataFrame.from_records(records)


def table(rows: list[Row], columns=()) -> str:
    """Markdown: model, variant, layers removed, score [interval], Jaccard with the first, seconds,
    and the ``extra`` entries named in ``columns`` (intervals formatted)."""
    view = {
        "model": [r.model for r in rows],
        "variant": [r.name for r in rows],
        "layers removed": [layer_ranges(list(r.layers)) for r in rows],
        "share kept [95 % CI]": [_share(r.score) for r in rows],
        "Jaccard with the first": [f"{r.jaccard:.2f}" for r in rows],
        "seconds": [f"{r.seconds:.1f}" for r in rows],
    }
    for c in columns:
        view[c] = [_fmt((r.extra or {}).get(c)) for r in rows]
    return markdown(pd.DataFrame(view))


def _share(iv: Interval) -> str:
    """Three significant digits: a share kept can be 0.47 or 0.0008 (a perplexity 1,000x the full model's)."""
    return f"{iv.value:.3g} [{iv.low:.3g}, {iv.high:.3g}]"


def _fmt(value) -> str:
    if isinstance(value, Interval):
        return _share(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, tuple) and all(isinstance(x, float) for x in value):
        return " -> ".join(f"{x:.2f}" for x in value)
    if isinstance(value, dict):
        return ", ".join(f"H{k}: {v}" for k, v in value.items())
    return "-" if value is None else str(value)


def _verdict(iv: Interval) -> str:
    return "better" if iv.low > 0 else "worse" if iv.high < 0 else "no different (the interval holds 0)"


def paired_finding(bench: Benchmark, rows: list[Row], a: str, b: str, what: str, split: str = "test") -> str:
    """One sentence: variant ``a`` against ``b`` on the same items, paired difference with interval."""
    ra = next(r for r in rows if r.name == a and r.model == bench.label)
    rb = next(r for r in rows if r.name == b and r.model == bench.label)
    iv = bench.difference(split, bench.outcomes(split, ra.layers), bench.outcomes(split, rb.layers))
    unit = "relative-score difference" if bench.kind == "relative" else "log perplexity ratio"
    return (
        f"{bench.label}: {what} ({a} vs {b}) is {_verdict(iv)}: {unit} {iv.format(3)}, "
        f"layer choices overlap by Jaccard {jaccard(ra.layers, rb.layers):.2f}."
    )


def recovery_finding(rows: list[Row]) -> str:
    """One sentence over the methods: the gain healing gives each, with its interval."""
    parts = [f"{r.name} {r.extra['gain'].format(3)}" for r in rows]
    best = max(rows, key=lambda r: r.extra["healed"].value)
    return (
        f"{rows[0].model}: healing changes the share kept by "
        + "; ".join(parts)
        + f" (paired, 95 % CI); after healing {best.name} keeps the most, {best.extra['healed'].format(3)}."
    )


def scale_finding(frame: pd.DataFrame) -> str:
    """One sentence: the largest N searched, its time and memory, and the growth exponent."""
    done = frame.dropna(subset=["total"])
    if done.empty:
        return "no size finished within the time limit."
    last = done.iloc[-1]
    share = last.get("homology", np.nan) / last["total"]
    return (
        f"the search at N = {int(last['N'])} takes {last['total']:.3g} s and {last['peak_gb']:.2g} GB; its time grows "
        f"as N^{scale_exponent(frame):.2f} over N = {int(done['N'].min())}..{int(done['N'].max())}, "
        f"{100 * share:.0f} % of it in the homology."
    )


SCALE_STAGES = ("complexes", "homology", "images", "scoring", "selection")


def plot_scale(frame, axes=None):
    """Seconds per stage of the search (stacked) and peak memory against
    the number of points N (:func:`topovlm.studies.extensions.search_scale`)."""
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
