import numpy as np
import pytest

import topovlm as tv
from topovlm import TopoVLMInputError
from topovlm.intervals import Interval
from topovlm.studies.readings import SELECTIONS, Reading, Row, choose, layer_finding, mean_ranks, with_selection


def test_relative_score_interval_contains_the_point_and_matches_the_formula(rng):
    suites = np.array(["a"] * 60 + ["b"] * 40)
    full = rng.random(100) < 0.9
    pruned = full & (rng.random(100) < 0.6)
    iv = tv.intervals.relative_score_interval(pruned, full, suites)
    expected = np.mean([pruned[suites == s].mean() / full[suites == s].mean() for s in ("a", "b")])
    assert iv.value == pytest.approx(expected)
    assert iv.low < iv.value < iv.high


def test_identical_models_have_a_degenerate_difference_interval(rng):
    suites = np.array(["a"] * 50)
    full = rng.random(50) < 0.8
    x = full & (rng.random(50) < 0.5)
    d = tv.intervals.difference_interval(x, x, full, suites)
    assert d.value == d.low == d.high == 0.0


def test_a_large_difference_is_seen_and_a_null_one_is_not(rng):
    suites = np.array(["a"] * 200 + ["b"] * 200)
    full = np.ones(400, bool)
    good = rng.random(400) < 0.8
    bad = rng.random(400) < 0.4
    same = rng.random(400) < 0.8
    assert tv.intervals.difference_interval(good, bad, full, suites).excludes(0)
    null = [
        tv.intervals.difference_interval(rng.random(400) < 0.6, rng.random(400) < 0.6, full, suites, seed=i)
        for i in range(20)
    ]
    assert sum(iv.excludes(0) for iv in null) <= 4  # ~5 % expected at the 95 % level
    assert not tv.intervals.difference_interval(good, same, full, suites).low > 0.05


def test_perplexity_ratio_interval_is_exp_of_mean_loss_difference(rng):
    tokens = rng.integers(10, 50, size=30)
    full = rng.random(30) * tokens * 2
    pruned = full + tokens * 0.5
    iv = tv.intervals.perplexity_ratio_interval(pruned, full, tokens)
    assert iv.value == pytest.approx(np.exp(0.5))
    assert iv.low == pytest.approx(np.exp(0.5)) and iv.high == pytest.approx(np.exp(0.5))  # same shift on every text


def test_bootstrap_rejects_empty_and_mismatched_inputs():
    with pytest.raises(TopoVLMInputError, match="at least one item"):
        tv.intervals.resample([])
    with pytest.raises(TopoVLMInputError, match="different lengths"):
        tv.intervals.relative_score_interval([1, 0], [1, 1, 1], ["a", "a"])
    with pytest.raises(TopoVLMInputError, match="kind"):
        tv.intervals.difference_interval([1], [1], [1], ["a"], kind="accuracy")


def _row(model, reading, s, value):
    return Row(model, reading, s, "dev", (), Interval(value, value, value))


def test_mean_ranks_over_cells_and_choice_of_fewest_changes_on_ties():
    rows = [
        _row("m1", "A", 0.5, 0.9),
        _row("m1", "B", 0.5, 0.5),
        _row("m1", "C", 0.5, 0.9),
        _row("m2", "A", 0.5, 0.9),
        _row("m2", "B", 0.5, 0.2),
        _row("m2", "C", 0.5, 0.9),
        _row("m3", "A", 0.5, 0.1),
        _row("m3", "B", 0.5, 0.9),
        _row("m3", "C", 0.5, 0.1),
    ]
    # ranks per cell: m1 A 1.5 B 3 C 1.5; m2 the same; m3 A 2.5 B 1 C 2.5
    assert mean_ranks(rows) == {"A": 11 / 6, "B": 7 / 3, "C": 11 / 6}
    a = Reading("A", {"dims": (1,), "alpha": 0.0})
    c = Reading("C", {"dims": (1,)})
    assert choose(rows, [a, Reading("B"), c]) is c


def test_selections_add_only_their_constraints_and_plain_top_k_wins_ties():
    base = Reading("survival: other", {"survival": "other"})
    variants = [with_selection(base, name) for name in SELECTIONS]
    assert variants[0] is base
    assert variants[1].changes == {"survival": "other", "keep": (0, -1)} and variants[1].name.startswith(base.name)
    assert variants[3].config(0.5, 100).keep == (0, -1) and variants[3].config(0.5, 100).max_consecutive == 3
    rows = [_row(m, v.name, 0.5, 0.7) for m in ("m1", "m2") for v in variants]  # all tied
    assert choose(rows, variants) is base


def test_layer_finding_reads_peaks_against_thirds():
    f = layer_finding([5, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 0])
    assert f["activity_shallow"] and f["consistency_deep"]
    g = layer_finding([0, 0, 0, 0, 0, 5], [1, 0, 0, 0, 0, 0])
    assert not g["activity_shallow"] and not g["consistency_deep"]


def test_a_reading_with_a_bad_field_fails_when_made():
    with pytest.raises(TopoVLMInputError, match="survival"):
        Reading("bad", {"survival": "dead"})
