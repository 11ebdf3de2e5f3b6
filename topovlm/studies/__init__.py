"""The studies the book's chapters run; each owns its tables and figures.

- :mod:`.sweep`: held-out accuracy of each method's pruned model per sparsity
  (chapters 05-07), its table and figures;
- :mod:`.ablation`: variants of the search on one model, and the stability of
  its choice across calibration sets (chapter 07);
- :mod:`.readings`: the readings of the method the paper leaves open, the
  benchmarks they are scored on, and the rule that chooses among them (04b);
- :mod:`.redundancy`: whether a layer score sees which layers matter, layer by
  layer, against the damage of removing each alone (04b, 04c);
- :mod:`.robustness`: how much a choice moves with the calibration set (09);
- :mod:`.extensions`: what the paper did not try (homology dimensions,
  progressive pruning, healing, scale; chapter 09).

They sit above the pipeline (extract, topology, prune, evaluate, baselines) and
below the chapters: a study imports the pipeline, never the other way round.
"""

from __future__ import annotations

from . import ablation, extensions, readings, redundancy, robustness, sweep

__all__ = ["ablation", "extensions", "readings", "redundancy", "robustness", "sweep"]
