"""The whole TopoVLM search, from clouds to the list of layers to remove.

``search(clouds, k=15, alpha=1.0, sparsity=0.5)`` runs: k-NN complexes ->
zigzag persistence -> effective intervals -> EPI -> activity / consistency ->
selection, and returns a :class:`SearchResult` that keeps every intermediate,
the timings, and saves to / loads from disk (JSON + npz; never pickle).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ._checks import TopoVLMInputError, as_clouds, check_choice
from .barcode import Barcode
from .complexes import zigzag_complexes
from .images import WEIGHTS, EffectivePersistenceImage, standard_persistence_images
from .scoring import COMBINE, LayerScores, check_alpha, standard_scores, topological_scores
from .selection import Selection, select_by_sparsity, select_by_threshold
from .standard import standard_persistence
from .zigzag import ENGINES, zigzag_persistence

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SearchConfig:
    """Every knob of the search; defaults are the paper's where it gives one."""

    k: int = 15                      # paper's ablation optimum (5 / 15 / 25)
    metric: str = "euclidean"        # METHOD.md §2; "cosine" is the alternative
    alpha: float = 1.0               # paper's ablation optimum (0.5 / 1 / 2)
    sigma: float = 1.0               # EPI Gaussian width in layers (ours; paper silent)
    weight: str = "linear"           # w(tau) = tau / L (ours; paper: "emphasise long-lived")
    dims: tuple = (0, 1)             # paper: H0 and H1
    combine: str = "mean"            # how H0 and H1 scores combine (ours)
    representation: str = "epi"      # "epi" | "diagram" (ablation: raw persistence diagram)
    homology: str = "zigzag"         # "zigzag" | "standard" (ablation: per-layer PH)
    engine: str = "fast"             # zigzag engine; "dionysus" / "dionysus-fast" are references
    sparsity: float | None = 0.5     # target-sparsity rule (paper reports 50 % and 60 %)
    eps: float | None = None         # paper's threshold rule S >= eps * max S (used when set)
    keep: tuple = ()                 # decoder layers never removed (e.g. (0, -1))
    max_consecutive: int | None = None  # cap on adjacent layers removed in a row

    def __post_init__(self):
        check_alpha(self.alpha)
        check_choice(self.metric, ("euclidean", "cosine"), "metric")
        check_choice(self.representation, ("epi", "diagram"), "representation")
        check_choice(self.homology, ("zigzag", "standard"), "homology")
        check_choice(self.engine, list(ENGINES), "engine")
        check_choice(self.combine, COMBINE, "combine")
        check_choice(self.weight, list(WEIGHTS), "weight")
        if not np.isfinite(self.sigma) or self.sigma <= 0:
            raise TopoVLMInputError(f"sigma must be > 0 (in layers), got {self.sigma!r}")
        if self.eps is None and self.sparsity is None:
            raise TopoVLMInputError("give a target sparsity or a threshold eps")
        if self.sparsity is not None and self.eps is None and not 0 < self.sparsity < 1:
            raise TopoVLMInputError(f"sparsity must be in (0, 1), got {self.sparsity!r}")
        if self.eps is not None and not 0 < self.eps <= 1:
            raise TopoVLMInputError(f"eps must be in (0, 1], got {self.eps!r}")
        object.__setattr__(self, "dims", tuple(int(p) for p in self.dims))
        object.__setattr__(self, "keep", tuple(int(i) for i in self.keep))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dims"], d["keep"] = list(self.dims), list(self.keep)
        return d


@dataclass
class SearchResult:
    """Everything the search computed.

    Attributes
    ----------
    config : SearchConfig
    barcode : Barcode or None — the zigzag barcode (None for homology="standard")
    images : (P, L+1, V) or (P, L+1, R, R) — EPI (or per-layer images for standard PH)
    v_grid : (V,) — persistence grid of the EPI (empty for standard PH)
    scores : LayerScores — per cloud (cloud 0 = embeddings)
    selection : Selection — decoder layers to remove
    timings : dict of str -> seconds
    """

    config: SearchConfig
    barcode: Barcode | None
    images: np.ndarray
    v_grid: np.ndarray
    scores: LayerScores
    selection: Selection
    timings: dict = field(default_factory=dict)

    @property
    def layers_to_remove(self) -> list:
        return list(self.selection.layers)

    @property
    def n_decoder_layers(self) -> int:
        return self.selection.n_layers

    def save(self, path) -> Path:
        """Write ``search.json`` and ``search.npz`` into directory ``path``."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "selection": self.selection.to_dict(),
            "timings": self.timings,
            "n_layers": int(self.scores.activity.shape[1]),
        }
        arrays = {
            "images": self.images, "v_grid": self.v_grid,
            "activity": self.scores.activity, "survival": self.scores.survival,
            "consistency": self.scores.consistency,
        }
        if self.barcode is not None:
            arrays.update(bc_dims=self.barcode.dims, bc_births=self.barcode.births, bc_deaths=self.barcode.deaths)
        np.savez_compressed(out / "search.npz", **arrays)
        (out / "search.json").write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, path) -> "SearchResult":
        """Read a result written by :meth:`save`."""
        p = Path(path)
        try:
            meta = json.loads((p / "search.json").read_text())
            with np.load(p / "search.npz", allow_pickle=False) as z:
                arr = {k: z[k] for k in z.files}
        except FileNotFoundError as exc:
            raise TopoVLMInputError(f"no saved search in {p}: {exc.filename} is missing") from None
        except (ValueError, OSError, json.JSONDecodeError) as exc:
            raise TopoVLMInputError(f"saved search in {p} is corrupted: {exc}") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise TopoVLMInputError(f"saved search in {p} has format {meta.get('format_version')}, expected {FORMAT_VERSION}")
        cfg_d = meta["config"]
        cfg = SearchConfig(**{f.name: cfg_d[f.name] for f in fields(SearchConfig) if f.name in cfg_d})
        bc = None
        if "bc_dims" in arr:
            bc = Barcode(arr["bc_dims"], arr["bc_births"], arr["bc_deaths"], meta["n_layers"])
        scores = LayerScores(cfg.dims, arr["activity"], arr["survival"], arr["consistency"], cfg.combine)
        return cls(cfg, bc, arr["images"], arr["v_grid"], scores, Selection.from_dict(meta["selection"]), meta["timings"])


def select(scores: LayerScores, config: SearchConfig) -> Selection:
    """Apply the configured rule to the decoder-layer scores."""
    if config.eps is not None:
        return select_by_threshold(scores.decoder_consistency, config.eps, config.keep, config.max_consecutive)
    return select_by_sparsity(scores.decoder_consistency, config.sparsity, scores.decoder_activity,
                              config.keep, config.max_consecutive)


def search(clouds, config: SearchConfig | None = None, **overrides) -> SearchResult:
    """Run the TopoVLM layer search.

    Parameters
    ----------
    clouds : (L+1, N, d) array-like or sequence of (N, d_l) arrays
        Hidden states at the [RET] token (or another token choice): cloud 0
        is the embedding output, cloud i+1 the output of decoder layer i.
    config : SearchConfig, optional
    **overrides
        Any :class:`SearchConfig` field, e.g. ``k=15, alpha=1.0, sparsity=0.5``.

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> res = search(tv.drifting_clouds(33, 256), k=15, sparsity=0.5)   # doctest: +SKIP
    >>> res.layers_to_remove                                            # doctest: +SKIP
    """
    cfg = replace(config or SearchConfig(), **overrides) if overrides else (config or SearchConfig())
    seq = as_clouds(clouds)
    timings = {}
    t0 = time.perf_counter()
    bc = None
    if cfg.homology == "zigzag":
        zz = zigzag_complexes(seq, cfg.k, cfg.metric)
        timings["complexes"] = time.perf_counter() - t0
        t = time.perf_counter()
        bc = zigzag_persistence(zz, engine=cfg.engine, max_dim=max(cfg.dims))
        timings["homology"] = time.perf_counter() - t
        t = time.perf_counter()
        epi = EffectivePersistenceImage(cfg.sigma, cfg.weight, cfg.dims, smooth=cfg.representation == "epi").fit(bc)
        images, v_grid = epi.images_, epi.v_
        timings["images"] = time.perf_counter() - t
        t = time.perf_counter()
        scores = topological_scores(images, v_grid, cfg.dims, cfg.alpha, cfg.combine)
    else:
        dgms = standard_persistence(seq, cfg.k, cfg.metric, "knn", max_dim=max(cfg.dims))
        timings["homology"] = time.perf_counter() - t0
        t = time.perf_counter()
        images, v_grid = standard_persistence_images(dgms, cfg.dims), np.zeros(0)
        timings["images"] = time.perf_counter() - t
        t = time.perf_counter()
        scores = standard_scores(images, cfg.dims, cfg.alpha, cfg.combine)
    timings["scoring"] = time.perf_counter() - t
    t = time.perf_counter()
    selection = select(scores, cfg)
    timings["selection"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return SearchResult(cfg, bc, images, v_grid, scores, selection, timings)
