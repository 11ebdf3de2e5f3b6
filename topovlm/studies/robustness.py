"""How the chosen layers move with the calibration set.

The paper's limitations: "the choice of calibration data may affect
topological analysis results, and robustness to out-of-distribution data
remains to be validated". A :class:`CalibrationVariant` is one calibration set:
a source (:func:`topovlm.calibration.calibration_set`), its size and seed,
and an optional perturbation that keeps the shapes but destroys the content
(``"shuffle"``: the words of every text in random order; ``"noise"``: every
image, video and audio replaced by noise of the same shape; ``"both"``) — a
floor for what the topology can still find. :func:`calibration_robustness`
searches each variant's clouds and compares the choices with the reference
variant's (Jaccard index, beside two random choices of the same size), and
scores each pruned model when given a scorer (e.g. held-out outcomes through
:class:`topovlm.evaluate.Outcomes` and :mod:`topovlm.intervals`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._checks import TopoVLMInputError, check_choice
from ..calibration import calibration_set
from ..extract import extract
from ..reports import layer_ranges, markdown
from ..samples import Sample
from ..topology.search import SearchConfig, search
from ..topology.selection import jaccard, random_jaccard

PERTURBATIONS = ("none", "shuffle", "noise", "both")


@dataclass(frozen=True)
class CalibrationVariant:
    """One calibration set.

    Drawn by :func:`topovlm.calibration.calibration_set`, then :func:`perturbed`.

    Attributes
    ----------
    name : str
    source : str
        ``"fortunes"``, ``"easy-vqa"``, ``"av"`` or a .txt / .jsonl file.
    n : int
        Samples (the paper: 512).
    seed : int
        Of the draw, and of the perturbation.
    perturb : {"none", "shuffle", "noise", "both"}
    """

    name: str
    source: str
    n: int = 128
    seed: int = 0
    perturb: str = "none"

    def __post_init__(self):
        check_choice(self.perturb, PERTURBATIONS, "perturb")

    def samples(self) -> list[Sample]:

        return perturbed(calibration_set(self.source, self.n, self.seed), self.perturb, self.seed)


def perturbed(samples: list[Sample], how: str, seed: int = 0) -> list[Sample]:
    """The samples with their content destroyed and their shapes kept.

    ``"shuffle"``: each text's words in a seeded random order; ``"noise"``:
    each image / video uniform uint8 noise and each audio Gaussian noise of
    the same shape and scale; ``"both"``: the two.
    """
    check_choice(how, PERTURBATIONS, "perturb")
    if how == "none":
        return list(samples)
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        changes = {}
        if how in ("shuffle", "both"):
            words = s.text.split()
            changes["text"] = " ".join(words[i] for i in rng.permutation(len(words))) if words else s.text
        if how in ("noise", "both"):
            for name in ("image", "video"):
                value = getattr(s, name)
                if value is not None:
                    shape = _pixels(value).shape
                    changes[name] = rng.integers(0, 256, size=shape, dtype=np.uint8)
            if s.audio is not None:
                a = np.asarray(s.audio, dtype=np.float32)
                changes["audio"] = np.clip(rng.normal(0, float(a.std()) or 0.1, a.shape), -1, 1).astype(np.float32)
        out.append(replace(s, **changes))
    return out


def _pixels(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    from PIL import Image

    image = value if hasattr(value, "convert") else Image.open(value)
    return np.asarray(image.convert("RGB"))


@dataclass(frozen=True)
class RobustnessRow:
    """One variant's choice, its agreement with the reference and its score."""

    variant: CalibrationVariant
    layers: tuple
    jaccard: float  # with the reference variant's layers (1 for the reference itself)
    score: object = None  # whatever the scorer returned (e.g. an Interval), or None


def calibration_robustness(
    adapter,
    variants: list[CalibrationVariant],
    sparsity: float = 0.5,
    config: SearchConfig | None = None,
    scorer: Callable | None = None,
    batch_size: int = 16,
    cache_dir=None,
    progress: bool = True,
) -> list[RobustnessRow]:
    """Search every variant's clouds and compare the choices with the first variant's.

    Parameters
    ----------
    adapter : Adapter
    variants : list of CalibrationVariant
        The first is the reference.
    sparsity : float
    config : SearchConfig, optional
        Default ``SearchConfig()``; ``k`` is capped at each variant's n - 1.
    scorer : callable, optional
        ``scorer(layers) -> score`` of the model without ``layers``.
    batch_size, cache_dir
        As :func:`topovlm.extract`.

    Returns
    -------
    list of RobustnessRow
    """

    if not variants:
        raise TopoVLMInputError("no calibration variants to compare")
    config = SearchConfig() if config is None else config
    rows, reference = [], None
    for v in tqdm(variants, desc="calibration variants", disable=not progress):
        clouds = extract(adapter, v.samples(), batch_size=batch_size, cache_dir=cache_dir, progress=False)
        cfg = config.at_sparsity(sparsity, v.n)
        layers = tuple(sorted(search(clouds, cfg).layers_to_remove))
        reference = layers if reference is None else reference
        rows.append(RobustnessRow(v, layers, jaccard(layers, reference), scorer(layers) if scorer else None))
    return rows


def robustness_finding(rows: list[RobustnessRow], n_layers: int) -> str:
    """One sentence: how far the choice moves (Jaccard range against chance) and the
    scores' range with intervals (rows scored with an :class:`~topovlm.intervals.Interval`)."""
    others = rows[1:]
    if not others:
        return "only the reference was searched."
    chance = random_jaccard(n_layers, len(rows[0].layers))
    lo = min(others, key=lambda r: r.jaccard)
    hi = max(others, key=lambda r: r.jaccard)
    text = (
        f"the layers chosen overlap the reference's by Jaccard {lo.jaccard:.2f} ({lo.variant.name}) "
        f"to {hi.jaccard:.2f} ({hi.variant.name}), against {chance:.2f} for two random choices"
    )
    scored = [r for r in rows if hasattr(r.score, "format")]
    if scored:
        worst = min(scored, key=lambda r: r.score.value)
        best = max(scored, key=lambda r: r.score.value)
        text += (
            f"; the pruned model keeps {worst.score.format(3)} ({worst.variant.name}) "
            f"to {best.score.format(3)} ({best.variant.name}) of the full model"
        )
    return text + "."


def plot_robustness(rows, n_layers: int, axes=None, title: str | None = None):
    """Calibration variants (:func:`topovlm.studies.robustness.calibration_robustness`): the
    Jaccard index of each choice with the reference's (dotted: two random choices) and
    the pruned model's score with its interval."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 0.3 * len(rows) + 1.4), sharey=True, layout="constrained")
    y = np.arange(len(rows))
    axes[0].barh(y, [r.jaccard for r in rows], color="C0")
    axes[0].axvline(random_jaccard(n_layers, len(rows[0].layers)), color="0.4", ls=":", label="two random choices")
    axes[0].set_xlim(0, 1)
    axes[0].set_xlabel("Jaccard with the reference's layers")
    axes[0].legend(fontsize=7)
    for i, r in enumerate(rows):
        if hasattr(r.score, "low"):
            iv = r.score
            axes[1].errorbar(iv.value, i, xerr=[[iv.value - iv.low], [iv.high - iv.value]], fmt="o", color="C1", ms=4)
    axes[1].set_xlabel("share of the full model kept")
    axes[1].grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([r.variant.name for r in rows], fontsize=8)
    axes[0].invert_yaxis()
    if title:
        axes[0].figure.suptitle(title, fontsize=10)
    return axes


def robustness_frame(rows) -> pd.DataFrame:
    """One record per :class:`topovlm.studies.robustness.RobustnessRow`."""
    records = []
    for r in rows:
        v, score = r.variant, r.score
        records.append(
            {
                "calibration": v.name,
                "source": v.source,
                "n": v.n,
                "seed": v.seed,
                "perturbation": v.perturb,
                "layers": tuple(r.layers),
                "jaccard": r.jaccard,
                "score": getattr(score, "value", score),
                "score_low": getattr(score, "low", np.nan),
                "score_high": getattr(score, "high", np.nan),
            }
        )
    return pd.DataFrame.from_records(records)


def robustness_table(rows, n_layers: int) -> str:
    """Markdown: each variant's layers, Jaccard with the reference, score; and
    the Jaccard of two random choices of the same size (agreement by chance)."""
    f = robustness_frame(rows)
    view = pd.DataFrame(
        {
            "calibration": f.calibration,
            "source": f.source,
            "n": f.n,
            "seed": f.seed,
            "perturbation": f.perturbation,
            "layers removed": [layer_ranges(list(x)) for x in f.layers],
            "Jaccard with the first": [f"{x:.2f}" for x in f.jaccard],
            "score": [
                r.score.format(3) if hasattr(r.score, "format") else ("-" if r.score is None else str(r.score))
                for r in rows
            ],
        }
    )
    m = len(rows[0].layers)
    note = (
        f"two random choices of {m} of {n_layers} layers agree by a Jaccard index of "
        f"{random_jaccard(n_layers, m):.2f} on average"
    )
    return markdown(view, note)
