"""The fidelity study's plumbing on tiny models: one pool per model, the test stage and
its verdicts, what the package warned about reaching the page."""

import warnings

import numpy as np
import pytest

import topovlm as tv
from topovlm import baselines
from topovlm.models import tiny
from topovlm.studies import readings


@pytest.fixture(scope="module")
def bench():
    ad = tiny.tiny_causal_lm("llama", 6, seed=5)
    return readings.benchmark("tiny-llama", ad, 4, 6, cache_dir=False)


def test_a_pooled_store_extracts_once_and_serves_every_size_as_its_prefix(bench, tmp_path):
    store = readings.CloudStore(bench, cache_dir=tmp_path, pool=40)
    calls = []
    small = store.get(("ret", "residual", 24))
    again = store.get(("ret", "residual", 32))
    assert small.shape[1] == 24 and again.shape[1] == 32
    np.testing.assert_array_equal(again[:, :24], small)
    direct = tv.extract(
        bench.adapter,
        bench.calibration_samples(32),
        point="residual",
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: calls.append(d),
    )
    assert calls == []  # read off the pool's extraction
    np.testing.assert_array_equal(direct, again)
    assert store.get(("last", "residual", 8)).shape[1] == 8  # another token: only what is asked


def test_verdicts_name_the_detectable_difference_and_the_shortgpt_random_gap(bench):
    rows = []
    for name, layers in [
        ("ours", (1, 2)),
        ("ShortGPT", (3, 4)),
        ("random (seed 0)", (0, 5)),
        ("random (seed 1)", (2, 5)),
    ]:
        rows.append(readings.Row(bench.label, name, 0.33, "test", layers, bench.score("test", layers), kind=bench.kind))
    lines = readings.verdicts([bench], rows, "ours", against=("ShortGPT", "SLEB", "random"))
    assert len(lines) == 2  # no SLEB row: no SLEB verdict
    assert lines[0].startswith("- **tiny-llama, 33%**: ours ") and "ShortGPT" in lines[0]
    assert "detectable: a factor" in lines[0] and "ShortGPT vs random: a factor" in lines[0]
    assert "(mean of 2 seeds)" in lines[1] and ("decisive" in lines[1])


def test_the_warnings_of_a_block_reach_the_page():
    with tv.notes.collect() as said:
        warnings.warn("cloud(s) [3] have no H1 class at all", stacklevel=1)
        warnings.warn("cloud(s) [3] have no H1 class at all", stacklevel=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.warn("silenced by the code that raised it", stacklevel=1)
    text = said.markdown("the study")
    assert text.startswith("What the package warned about during the study") and "(×2)" in text
    assert "silenced" not in text and len(said) == 1
    with tv.notes.collect() as quiet:
        pass
    assert quiet.markdown("x") == "The package warned about nothing during x."


def test_a_search_warning_becomes_a_note_of_the_baseline_result(bench):
    calib = bench.calibration_samples(8)  # 8 points, k = 7: clouds without H1
    with tv.notes.collect() as said:
        r = baselines.run("topovlm", bench.adapter, calib, 0.5, k=7)
    assert "no H1 class" in r.notes and len(said) >= 1
    assert "topovlm" in tv.studies.sweep.notes_text([r])


def test_compare_gives_topovlm_the_whole_set_and_the_others_their_budget(bench, monkeypatch):
    seen = {}
    real = baselines.run

    def spy(name, adapter, calib, sparsity, **kw):
        seen[name] = len(calib.samples)
        return real(name, adapter, calib, sparsity, **kw)

    monkeypatch.setattr(baselines, "run", spy)
    baselines.compare(
        bench.adapter,
        bench.calibration_samples(24),
        0.5,
        ["topovlm", "shortgpt", "magnitude"],
        progress=False,
        baseline_samples=8,
        topovlm={"k": 15},
    )
    assert seen == {"topovlm": 24, "shortgpt": 8, "magnitude": 8}
