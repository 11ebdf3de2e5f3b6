"""Forward passes that start at the first removed layer (topovlm.forward)."""

import numpy as np
import pytest
import torch
from conftest import family_samples

import topovlm as tv
from topovlm.evaluate import text_losses
from topovlm.forward import Replay
from topovlm.models import tiny

FAMILIES = {
    "llama": lambda: tiny.tiny_causal_lm("llama", 6, seed=1),
    "qwen2": lambda: tiny.tiny_causal_lm("qwen2", 6, seed=2),
    "llava-next": lambda: tiny.tiny_llava_next(6),
    "videollama2": lambda: tiny.tiny_videollama2(6),
}


def recorded(ad, samples, batch_size=2):
    replay = Replay(ad)
    with replay.recording():
        full = text_losses(ad, samples, batch_size)
    return replay, full


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("layers", [(2, 4), (1,), (3, 4, 5), (0, 5)])
def test_replayed_pruned_losses_equal_the_plain_pruned_ones_bit_for_bit(family, layers):
    ad = FAMILIES[family]()
    samples = family_samples(ad, 5)
    replay, full = recorded(ad, samples)
    with replay.pruned(layers):
        nll, tokens = text_losses(ad, samples, 2)
    ref_nll, ref_tokens = text_losses(ad, samples, 2, skip=layers)
    np.testing.assert_array_equal(nll, ref_nll)
    np.testing.assert_array_equal(tokens, ref_tokens)
    assert not np.array_equal(nll, full[0])  # removing layers did change something
    assert ad.n_layers == 6  # and the model is whole again


def test_layers_before_the_first_removed_one_are_not_computed():
    """Corrupting layers 0-1 after the recording leaves a replay that starts at layer 2
    unchanged: their output is read from the recording, not recomputed."""
    ad = FAMILIES["llama"]()
    samples = family_samples(ad, 4)
    replay, _ = recorded(ad, samples)
    with replay.pruned([2, 5]):
        before = text_losses(ad, samples, 2)[0]
    with torch.no_grad():
        for layer in ad.decoder_layers[:2]:
            for p in layer.parameters():
                p.mul_(3.0)
    with replay.pruned([2, 5]):
        after = text_losses(ad, samples, 2)[0]
    np.testing.assert_array_equal(before, after)
    assert not np.array_equal(after, text_losses(ad, samples, 2, skip=[2, 5])[0])


def test_a_replay_of_other_batches_is_refused_not_wrong():
    ad = FAMILIES["llama"]()
    samples = family_samples(ad, 4)
    replay, _ = recorded(ad, samples, batch_size=2)
    with pytest.raises(tv.TopoVLMInputError, match="recording"):
        with replay.pruned([3]):
            text_losses(ad, samples, 4)  # other batch shapes
    with pytest.raises(tv.TopoVLMInputError, match="recorded"):
        with replay.pruned([3]):
            text_losses(ad, samples + samples, 2)  # more calls than recorded
    assert ad.n_layers == 6  # the model is whole again after the errors
    assert all(not layer._forward_pre_hooks for layer in ad.decoder_layers)


def test_pruned_before_recording_says_what_to_do():
    ad = FAMILIES["llama"]()
    with pytest.raises(tv.TopoVLMInputError, match="recording"):
        with Replay(ad).pruned([1]):
            pass


def test_a_failed_recording_records_nothing():
    ad = FAMILIES["llama"]()
    replay = Replay(ad)
    with pytest.raises(RuntimeError):
        with replay.recording():
            raise RuntimeError("interrupted")
    assert not replay.recorded
    assert all(not layer._forward_pre_hooks for layer in ad.decoder_layers)


def test_a_recording_over_its_memory_budget_falls_back_to_plain_passes():
    ad = FAMILIES["qwen2"]()
    samples = family_samples(ad, 4)
    replay = Replay(ad, max_bytes=1000)
    with replay.recording():
        text_losses(ad, samples, 2)
    assert replay.recorded and not replay.active
    with replay.pruned([1, 4]):
        nll = text_losses(ad, samples, 2)[0]
    np.testing.assert_array_equal(nll, text_losses(ad, samples, 2, skip=[1, 4])[0])


def test_outcomes_are_computed_once_per_removal_and_equal_plain_passes():
    ad = FAMILIES["llava-next"]()
    samples = family_samples(ad, 4)
    calls = []

    def evaluate():
        calls.append(ad.n_layers)
        return text_losses(ad, samples, 2)

    losses = tv.evaluate.Outcomes(ad, evaluate)
    pruned = losses([4, 1])  # the full model's pass is recorded first
    assert calls == [6, 4]
    assert losses((1, 4)) is pruned and calls == [6, 4]  # same set, any order: cached
    np.testing.assert_array_equal(pruned[0], text_losses(ad, samples, 2, skip=[1, 4])[0])
    np.testing.assert_array_equal(losses(())[0], text_losses(ad, samples, 2)[0])
    with pytest.raises(tv.TopoVLMInputError, match="out of range"):
        losses([9])


@pytest.mark.slow
def test_text_quality_matches_perplexity_and_factual_accuracy_per_removal():
    ad = FAMILIES["qwen2"]()
    texts = [f"text number {i} is here" + " and more" * i for i in range(5)]
    q = tv.evaluate.text_quality(ad, [[1, 2], [5]], texts, batch_size=2)
    np.testing.assert_allclose(q["full_perplexity"], tv.evaluate.perplexity(ad, texts, 2), rtol=1e-5)
    assert q["full_factual"] == tv.evaluate.factual_accuracy(ad)[0]
    for layers, (ppl, factual, ratio) in zip([[1, 2], [5]], q["pruned"]):
        np.testing.assert_allclose(ppl, tv.evaluate.perplexity(ad, texts, 2, skip=layers), rtol=1e-5)
        assert factual == tv.evaluate.factual_accuracy(ad, skip=layers)[0]
        assert ratio.low <= ratio.value <= ratio.high
