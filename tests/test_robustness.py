"""Calibration robustness (topovlm.robustness)."""

import numpy as np
import pytest
from conftest import family_samples

import topovlm as tv
from topovlm.models import Sample, tiny
from topovlm.studies.robustness import CalibrationVariant, calibration_robustness, perturbed, robustness_table


def test_shuffle_keeps_each_texts_words_and_changes_their_order():
    samples = [Sample("one two three four five six seven eight"), Sample("")]
    out = perturbed(samples, "shuffle", seed=1)
    assert sorted(out[0].text.split()) == sorted(samples[0].text.split()) and out[0].text != samples[0].text
    assert out[1].text == "" and perturbed(samples, "shuffle", seed=1) == out  # seeded


def test_noise_keeps_every_media_shape_and_replaces_its_content():
    ad = tiny.tiny_videollama2(2)
    samples = family_samples(ad, 2) + family_samples(tiny.tiny_llava_next(2), 1)
    out = perturbed(samples, "noise", seed=0)
    for s, o in zip(samples, out):
        assert o.text == s.text
        for name in ("image", "video", "audio"):
            a, b = getattr(s, name), getattr(o, name)
            assert (a is None) == (b is None)
            if a is not None:
                assert np.shape(a) == np.shape(b) and not np.array_equal(a, b)
    assert np.abs(out[0].audio).max() <= 1


def test_unknown_perturbation_is_a_clear_error():
    with pytest.raises(tv.TopoVLMInputError, match="perturb"):
        CalibrationVariant("x", "fortunes", perturb="blur")


def test_choices_are_compared_with_the_first_variant_and_scored():
    ad = tiny.tiny_causal_lm("llama", 8, seed=4)
    variants = [
        CalibrationVariant("ref", "fortunes", 24, 0),
        CalibrationVariant("same", "fortunes", 24, 0),
        CalibrationVariant("other seed", "fortunes", 24, 1),
        CalibrationVariant("shuffled", "fortunes", 24, 0, "shuffle"),
    ]
    seen = []
    rows = calibration_robustness(
        ad,
        variants,
        0.5,
        tv.SearchConfig(k=5),
        scorer=lambda layers: seen.append(layers) or len(layers),
        cache_dir=False,
        progress=False,
    )
    assert [r.jaccard for r in rows[:2]] == [1.0, 1.0] and rows[0].layers == rows[1].layers
    assert all(len(r.layers) == 4 and r.score == 4 for r in rows) and seen == [r.layers for r in rows]
    assert all(0 <= r.jaccard <= 1 for r in rows)
    table = robustness_table(rows, 8)
    assert table.count("\n| ") == 4 and "two random choices of 4 of 8 layers" in table


def test_an_empty_variant_list_is_refused():
    with pytest.raises(tv.TopoVLMInputError, match="no calibration variants"):
        calibration_robustness(tiny.tiny_causal_lm("llama", 4), [], progress=False)
