"""Training: everything that changes weights, in one place.

- :mod:`.loop`: what every LoRA training here shares (the answer loss, the
  learning-rate schedule, one checked step, resumable checkpoints);
- :mod:`.heal`: ``topovlm heal``, a short LoRA recovery of a pruned model;
- :mod:`.mini`: ``topovlm train``, the mini vision-language models trained from
  their recipes (alignment, then question answering).

Training sits above the pipeline: it imports models, tasks and evaluation, and
nothing of the pipeline imports it.
"""

from __future__ import annotations

from . import heal, loop, mini
from .heal import HealConfig, HealReport
from .mini import recipe, train

__all__ = ["HealConfig", "HealReport", "heal", "loop", "mini", "recipe", "train"]
