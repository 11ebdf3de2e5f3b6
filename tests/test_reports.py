"""Tables (topovlm.reports): the numbers as DataFrames, the Markdown view built from them."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import topovlm as tv
from topovlm import efficiency, evaluate, reports
from topovlm.baselines import get_method
from topovlm.intervals import Interval
from topovlm.studies.sweep import SweepRow

SUITES = tuple(["shape"] * 20 + ["color"] * 20)


def outcomes(p, seed):
    return tuple(bool(x) for x in np.random.default_rng(seed).random(len(SUITES)) < p)


def row(sparsity, method, seed, p, full=None):
    o = outcomes(p, seed)
    acc = {s: float(np.mean([x for x, t in zip(o, SUITES) if t == s])) for s in ("shape", "color")}
    acc["all"] = float(np.mean(o))
    rel = 1.0 if full is None else tv.evaluate.relative_score(acc, full.accuracy)
    return SweepRow(sparsity, method, seed, (1, 2, 5), acc, rel, 0.5, None, o, SUITES)


@pytest.fixture
def sweep():
    full = row(0.0, "full model", 99, 0.95)
    rows = [
        row(s, m, seed, 0.6, full) for s in (0.25, 0.5) for m, seed in (("topovlm", 0), ("random", 0), ("random", 1))
    ]
    return full, rows


def test_sweep_frame_holds_numbers_with_intervals_around_them(sweep):
    full, rows = sweep
    f = tv.studies.sweep.sweep_frame(full, rows, chance={"shape": 1 / 3, "color": 1 / 8, "all": 0.23})
    assert isinstance(f, pd.DataFrame)
    assert list(f.kind) == ["full", "chance"] + ["method", "method", "method", "mean"] * 2
    assert f.loc[0, "relative"] == 1.0 and np.isnan(f.loc[0, "relative_low"])
    body = f[f.kind == "method"]
    assert (body.relative_low <= body.relative_value).all() and (body.relative_value <= body.relative_high).all()
    assert f.loc[2, "shape"] == rows[0].accuracy["shape"]  # fractions, not percent strings
    assert f.loc[4, "method"] == "random (seed 1)"


def test_sweep_table_is_the_frame_rendered(sweep):
    full, rows = sweep
    table = tv.studies.sweep.sweep_table(full, rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(tv.studies.sweep.sweep_frame(full, rows))
    assert lines[0].startswith("| sparsity | method | layers removed | shape | color | all | relative score [95 % CI]")
    iv = rows[0].interval(full)
    assert f"| 25% | topovlm | 1-2, 5 | {100 * rows[0].accuracy['shape']:.1f} |" in table
    assert iv.format(3) in table


def test_markdown_of_an_unnamed_first_column():
    f = pd.DataFrame({"": ["full", "pruned"], "layers": ["30", "15"]})
    assert reports.markdown(f, "a note") == "| | layers |\n|---|---|\n| full | 30 |\n| pruned | 15 |\n\na note"


def test_efficiency_frame_ratio_is_full_over_pruned():
    E = tv.efficiency.Efficiency
    f = efficiency.efficiency_frame(E(30, 135.0, 50.0, 20.0, 300.0), E(15, 80.0, 25.0, 10.0, 150.0))
    assert f.loc["full / pruned", "n_layers"] == 2.0 and f.loc["full / pruned", "decode_ms_per_token"] == 2.0
    assert "ideal speed-up of the decoder stack: L / L_kept = 2.00" in tv.efficiency.efficiency_table(
        E(30, 135.0, 50.0, 20.0, 300.0), E(15, 80.0, 25.0, 10.0, 150.0)
    )


def test_quality_frame_keeps_the_interval_of_each_ratio():
    r = tv.baselines.BaselineResult("random", [1, 2], np.zeros(4), 1.0, 2, 0, 2, seed=3)
    f = evaluate.quality_frame([(r, 40.0, 0.5, Interval(2.0, 1.5, 2.6))], 20.0, 0.75)
    assert f.loc[1, "method"] == "random (seed 3)"
    assert (f.loc[1, "ratio_low"], f.loc[1, "ratio"], f.loc[1, "ratio_high"]) == (1.5, 2.0, 2.6)
    assert "| random (seed 3) | 1-2 | 1.0 s | 1 | 40 | 2 [1.5, 2.6] | 50% |" in tv.evaluate.quality_table(
        [(r, 40.0, 0.5, Interval(2.0, 1.5, 2.6))], 20.0, 0.75
    )


def test_method_label_names_the_seed_of_random_only():
    assert get_method("random").tagged(2) == "random (seed 2)"
    assert get_method("shortgpt").tagged(2) == "shortgpt"
    assert get_method("shortgpt").titled(2) == "ShortGPT" and get_method("random").titled(1) == "random (seed 1)"


def test_mean_row_of_random_seeds_averages_outcomes(sweep):
    full, rows = sweep
    rnd = [r for r in rows if r.method == "random" and r.sparsity == 0.25]
    m = SweepRow.mean_of(rnd)
    assert m.method == "random (mean of 2)"
    assert m.outcomes == tuple(np.mean([r.outcomes for r in rnd], axis=0).tolist())
    assert dataclasses.replace(m, outcomes=()).interval(full) is None


def test_evaluation_of_a_text_model_says_what_to_use_instead():
    from topovlm.models import tiny

    ad = tiny.tiny_causal_lm("llama", n_layers=2)
    with pytest.raises(tv.TopoVLMInputError, match="text model.*topovlm baselines"):
        tv.studies.sweep.evaluation(ad, "tiny-llama", sparsities=(0.5,))
