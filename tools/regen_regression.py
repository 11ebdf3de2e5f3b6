"""Re-execute every chapter in its smoke setting and store it for nbval.

    python tools/regen_regression.py            # all chapters
    python tools/regen_regression.py 02 04      # chapters whose name starts with these

The text sources in notebooks/*.py are the truth; notebooks/regression/*.ipynb
are build products (papermill runs of those sources with the SMOKE parameters
below) whose outputs nbval compares against in `make test`. Run this after
changing a chapter or a number a chapter prints, and commit the result.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import jupytext
import papermill

ROOT = Path(__file__).resolve().parents[1]
# Small inputs so that the whole notebook regression stays within minutes on CI.
# 04b and 04c share one redundancy study (the same arguments): 04c reads what 04b kept.
STUDY_SMOKE = dict(
    models=["smollm2"],
    n_calib=32,
    n_calib_other=24,
    n_pool=40,
    n_draws=2,
    small_n=None,
    ks=[],
    baseline_samples=2,
    n_texts=8,
    n_texts_test=8,
    expensive_samples=2,
)
SMOKE = {
    "01_calibration_and_extraction": dict(n_samples=48, k=8, compare_tokens=False),
    "02_zigzag_vs_standard": dict(n_points=96, n_layers=9),
    "03_effective_persistence_image": dict(n_points=96, n_layers=9),
    "04_scoring_and_selection": dict(n_points=96, n_layers=9, k=8),  # k = 15 on 96 points: no H1 class at all
    "04b_what_the_paper_leaves_open": dict(STUDY_SMOKE, dev_sparsities=[0.2], test_sparsities=[0.2], random_seeds=2),
    "04c_does_the_score_see_redundancy": {k: v for k, v in STUDY_SMOKE.items() if k != "n_calib_other"}
    | {"sparsity": 0.2},
    "05_pruning_llava_next": dict(
        n_calib=16, n_questions=48, k=8, random_seeds=1, methods=["topovlm", "shortgpt", "random"]
    ),
    "06_pruning_videollama2": dict(
        n_calib=16, n_questions=12, k=8, random_seeds=1, methods=["topovlm", "shortgpt", "random"]
    ),
    "07_ablations": dict(
        n_calib=16, n_questions=48, sweep_sparsities=[0.25, 0.5], random_seeds=1, stability_seeds=[0, 1]
    ),
    "08_efficiency_and_pure_llm": dict(
        n_calib=16, n_heldout=16, k=8, random_seeds=1, methods=["topovlm", "shortgpt", "magnitude", "random"]
    ),
    "09_what_the_paper_did_not_try": dict(
        models=["mini-llava-next"],
        n_calib=24,
        n_pool=32,
        n_questions=24,
        n_questions_test=24,
        robustness=["seed 1"],
        progressive_steps=[8],
        heal_steps=2,
        heal_batch=2,
        heal_methods=["topovlm", "random"],
        scale_sizes=[64, 96],
    ),
}


def regenerate(name: str) -> Path:
    src = ROOT / "notebooks" / f"{name}.py"
    out = ROOT / "notebooks" / "regression" / f"{name}.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / f"{name}.ipynb"
        nb = jupytext.read(src)
        # a regression run is a build product, not one side of the chapter's pairing
        nb.metadata.get("jupytext", {}).pop("formats", None)
        jupytext.write(nb, raw)
        papermill.execute_notebook(
            str(raw), str(out), parameters=SMOKE.get(name, {}), kernel_name="python3", cwd=str(ROOT), progress_bar=False
        )
    return out


if __name__ == "__main__":
    wanted = sys.argv[1:]
    for src in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        if not wanted or any(src.stem.startswith(w) for w in wanted):
            print("executing", src.stem, "->", regenerate(src.stem).relative_to(ROOT))
