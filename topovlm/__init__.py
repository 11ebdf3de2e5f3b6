"""topovlm: topology-aware layer pruning for vision-language models.

Reproducible companion to *Topology-Aware Layer Pruning for Large
Vision-Language Models* (TopoVLM, ACL 2026). One import gives the pipeline::

    import topovlm as tv
    bc = tv.zigzag_persistence(clouds, k=15)      # (L+1, N, d) -> Barcode
    eff = bc.effective()                          # layer intervals
"""

from . import (
    baselines,
    calibration,
    efficiency,
    evaluate,
    intervals,
    models,
    notes,
    plots,
    reports,
    status,
    studies,
    tasks,
    training,
)
from ._checks import TopoVLMInputError
from ._version import __version__  # noqa: F401  (tv.__version__)
from .extract import ExtractConfig, extract
from .progressive import ProgressiveResult, prune_progressive
from .prune import PruneReport, prune, removed, skipped
from .topology.barcode import Barcode, EffectiveIntervals
from .topology.complexes import ZigzagComplexes, edge_lengths, flag_cliques, flag_triangles, knn_graph, zigzag_complexes
from .topology.images import WEIGHTS, EffectivePersistenceImage, standard_persistence_images
from .topology.scoring import LayerScores, distance_weighted_mean, standard_scores, survival_matrix, topological_scores
from .topology.search import PRESETS, SearchConfig, SearchResult, search
from .topology.selection import Selection, select_by_sparsity, select_by_threshold
from .topology.standard import standard_persistence
from .topology.synthetic import circle_clouds, drifting_clouds
from .topology.zigzag import ENGINES, zigzag_persistence
from .training.heal import HealConfig, HealReport, heal

__all__ = [
    "ExtractConfig",
    "baselines",
    "calibration",
    "efficiency",
    "evaluate",
    "intervals",
    "notes",
    "reports",
    "status",
    "studies",
    "tasks",
    "training",
    "PruneReport",
    "extract",
    "models",
    "prune",
    "prune_progressive",
    "heal",
    "HealConfig",
    "HealReport",
    "ProgressiveResult",
    "removed",
    "skipped",
    "EffectivePersistenceImage",
    "LayerScores",
    "PRESETS",
    "SearchConfig",
    "SearchResult",
    "Selection",
    "WEIGHTS",
    "distance_weighted_mean",
    "search",
    "select_by_sparsity",
    "select_by_threshold",
    "standard_persistence_images",
    "standard_scores",
    "survival_matrix",
    "topological_scores",
    "Barcode",
    "ENGINES",
    "EffectiveIntervals",
    "TopoVLMInputError",
    "ZigzagComplexes",
    "circle_clouds",
    "drifting_clouds",
    "edge_lengths",
    "flag_cliques",
    "flag_triangles",
    "knn_graph",
    "plots",
    "standard_persistence",
    "zigzag_complexes",
    "zigzag_persistence",
]
