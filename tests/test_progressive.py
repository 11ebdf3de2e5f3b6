"""Progressive pruning (topovlm.progressive)."""

import math

import pytest
from conftest import family_samples

import topovlm as tv
from topovlm.models import tiny
from topovlm.progressive import prune_progressive

CFG = tv.SearchConfig(k=5)


def model(n_layers=8, family="causal-lm"):
    return {
        "causal-lm": lambda: tiny.tiny_causal_lm("llama", n_layers, seed=3),
        "llava-next": lambda: tiny.tiny_llava_next(n_layers),
    }[family]()


@pytest.mark.parametrize("family", ["causal-lm", "llava-next"])
@pytest.mark.parametrize("step", [1, 2, 3])
def test_rounds_remove_round_sL_distinct_original_layers(family, step):
    ad = model(8, family)
    samples = family_samples(ad, 16)
    res = prune_progressive(ad, samples, 0.5, step=step, config=CFG, cache_dir=False, progress=False)
    assert len(res.layers_to_remove) == len(set(res.layers_to_remove)) == 4
    assert all(0 <= i < 8 for i in res.layers_to_remove)
    assert ad.n_layers == 4 and res.n_passes == math.ceil(4 / step)
    assert [r.n_layers for r in res.rounds] == [
        8 - sum(len(r.removed) for r in res.rounds[:j]) for j in range(len(res.rounds))
    ]
    assert ad.meta["pruned"]["removed_original"] == res.layers_to_remove
    assert sorted(res.order()) == res.layers_to_remove


def test_one_round_is_the_one_shot_search():
    ad = model(8)
    samples = family_samples(ad, 16)
    clouds = tv.extract(ad, samples, cache_dir=False, progress=False)
    one_shot = tv.search(clouds, CFG, sparsity=0.5).layers_to_remove
    res = prune_progressive(ad, samples, 0.5, step=10, config=CFG, cache_dir=False, progress=False)
    assert res.n_passes == 1 and res.layers_to_remove == sorted(one_shot)


def test_later_rounds_search_the_pruned_model():
    """Round 2 sees the clouds of the model without round 1's layers: the same
    clouds as extracting from a model pruned by hand."""
    ad = model(8)
    samples = family_samples(ad, 16)
    res = prune_progressive(ad, samples, 0.25, step=1, config=CFG, cache_dir=False, progress=False)
    first, second = res.rounds
    ref = model(8)
    tv.prune(ref, list(first.removed))
    clouds = tv.extract(ref, samples, cache_dir=False, progress=False)
    assert list(second.removed) == tv.search(clouds, CFG, sparsity=1 / 7).layers_to_remove
    assert second.n_layers == 7


def test_kept_layers_are_in_original_indices_across_rounds():
    ad = model(8)
    res = prune_progressive(
        ad,
        family_samples(ad, 16),
        0.75,
        step=2,
        progress=False,
        cache_dir=False,
        config=tv.SearchConfig(k=5, keep=(0, -1)),
    )
    assert 0 not in res.layers_to_remove and 7 not in res.layers_to_remove
    assert len(res.layers_to_remove) == 6


@pytest.mark.parametrize("step", [0, -1, 1.5, True, "2"])
def test_bad_step_is_a_clear_error(step):
    ad = model(4)
    with pytest.raises(tv.TopoVLMInputError, match="step"):
        prune_progressive(ad, family_samples(ad, 8), 0.5, step=step, cache_dir=False, progress=False)
    assert ad.n_layers == 4


def test_empty_calibration_and_too_high_sparsity_are_refused_before_any_pass():
    ad = model(4)
    with pytest.raises(tv.TopoVLMInputError, match="empty"):
        prune_progressive(ad, [], 0.5, progress=False)
    with pytest.raises(tv.TopoVLMInputError, match="at most 3"):
        prune_progressive(ad, family_samples(ad, 8), 0.95, progress=False, cache_dir=False)
    assert ad.n_layers == 4
