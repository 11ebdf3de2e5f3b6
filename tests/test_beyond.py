"""What the paper did not try (topovlm.beyond): the chapter's experiments on tiny models."""

import numpy as np
import pytest

import topovlm as tv
from topovlm.intervals import Interval
from topovlm.models import tiny
from topovlm.studies import extensions, readings
from topovlm.studies.robustness import CalibrationVariant, RobustnessRow, robustness_finding


@pytest.fixture(scope="module")
def text_bench():
    ad = tiny.tiny_causal_lm("llama", 8, seed=3)
    return readings.benchmark("tiny-llama", ad, 8, 8)


@pytest.fixture(scope="module")
def vision_bench():
    ad = tiny.tiny_llava_next(6, seed=1)
    return readings.benchmark("tiny-llava", ad, 12, 12)


def clouds_of(bench, n=24):
    return tv.extract(bench.adapter, bench.calibration_samples(n), batch_size=8, progress=False)


def test_homology_dims_searches_each_set_and_scores_it(text_bench):
    rows = extensions.homology_dims(text_bench, clouds_of(text_bench), 0.25)
    assert [r.name for r in rows] == list(extensions.DIMS)
    assert rows[0].jaccard == 1.0 and all(len(r.layers) == 2 for r in rows)
    for r in rows:
        assert set(r.extra["bars"]) == set(r.extra["dims"])
        assert r.score.low <= r.score.value <= r.score.high and np.isfinite(r.score.value)
        assert r.score == text_bench.score("test", r.layers)
    sentence = extensions.paired_finding(text_bench, rows, "H0+H1+H2", "H1 (default)", "adding H0 and H2")
    assert sentence.startswith("tiny-llama: adding H0 and H2") and "log perplexity ratio" in sentence
    assert "Jaccard" in extensions.table(rows, columns=["bars"])


def test_a_progressive_run_of_one_round_is_the_one_shot_search(text_bench):
    samples = text_bench.calibration_samples(24)
    n_layers = text_bench.adapter.n_layers
    rows = extensions.progressive_vs_one_shot(text_bench, samples, 0.25, steps=(2, 1))
    assert [r.name for r in rows] == ["one shot", "2 per round", "1 per round"]
    assert rows[1].layers == rows[0].layers and rows[1].jaccard == 1.0  # 2 layers in one round: the same search
    assert [r.extra["passes"] for r in rows] == [1, 1, 2]
    assert text_bench.adapter.n_layers == n_layers  # the benchmark's model is never pruned


def test_recovery_heals_a_copy_and_reports_paired_gains(vision_bench, tmp_path):
    n_layers = vision_bench.adapter.n_layers
    config = tv.HealConfig(steps=3, batch_size=2, warmup=1, n_train=8, lr=1e-2)
    rows = extensions.recovery(vision_bench, {"first two": [0, 1], "last two": [4, 5]}, config, cache_dir=tmp_path)
    assert vision_bench.adapter.n_layers == n_layers
    for r in rows:
        healed, gain = r.extra["healed"], r.extra["gain"]
        assert r.score == vision_bench.score("test", r.layers)
        assert gain.value == pytest.approx(healed.value - r.score.value)  # paired difference of relative scores
        assert gain.low <= gain.value <= gain.high
        assert len(r.extra["loss"]) == 2
    sentence = extensions.recovery_finding(rows)
    assert "first two" in sentence and "last two" in sentence and "after healing" in sentence


def test_benchmark_difference_is_zero_against_itself_and_signed(vision_bench):
    a = vision_bench.outcomes("test", [0, 1])
    assert vision_bench.difference("test", a, a) == Interval(0.0, 0.0, 0.0)
    full = vision_bench.outcomes("test", ())
    d = vision_bench.difference("test", full, a)
    assert d.value == pytest.approx(1.0 - vision_bench.score("test", [0, 1]).value)


def test_search_scale_measures_each_size_in_its_own_process():
    frame = extensions.search_scale([40, 60], n_layers=5, k=5, dim=8)
    assert list(frame["N"]) == [40, 60]
    assert (frame["total"] > 0).all() and (frame["peak_gb"] > 0).all()
    assert {"complexes", "homology", "images", "scoring", "selection"} <= set(frame.columns)
    assert np.isfinite(extensions.scale_exponent(frame))
    assert extensions.scale_finding(frame).startswith("the search at N = 60 takes")
    with pytest.raises(tv.TopoVLMInputError, match="exceed k"):
        extensions.search_scale([5], k=5)


def test_robustness_finding_names_the_extremes():
    iv = Interval(0.5, 0.4, 0.6)
    rows = [
        RobustnessRow(CalibrationVariant("reference", "fortunes"), (1, 2, 3), 1.0, iv),
        RobustnessRow(CalibrationVariant("noise", "fortunes"), (1, 2, 7), 0.5, Interval(0.3, 0.2, 0.4)),
        RobustnessRow(CalibrationVariant("seed 1", "fortunes"), (1, 2, 3), 1.0, Interval(0.7, 0.6, 0.8)),
    ]
    text = robustness_finding(rows, 10)
    assert "Jaccard 0.50 (noise) to 1.00 (seed 1)" in text
    assert "0.300 [0.200, 0.400] (noise)" in text and "0.700 [0.600, 0.800] (seed 1)" in text
