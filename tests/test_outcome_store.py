"""Per-item outcomes and baseline choices kept on disk: read back, never recomputed,
never read for another model, other items or another scoring."""

from dataclasses import replace

import numpy as np
import pytest
from conftest import family_samples

import topovlm as tv
from topovlm import baselines
from topovlm.evaluate import text_losses
from topovlm.models import tiny
from topovlm.outcome_store import OutcomeStore, outcome_key, outcome_store
from topovlm.studies import readings


def test_a_store_gives_back_arrays_and_tuples_as_written(tmp_path):
    store = OutcomeStore("k", tmp_path)
    assert store.get(()) is None
    store.put((), (np.array([1.5, 2.0]), np.array([3, 4])))
    store.put((1, 4), np.array([True, False]))
    nll, tokens = store.get(())
    np.testing.assert_array_equal(nll, [1.5, 2.0])
    np.testing.assert_array_equal(tokens, [3, 4])
    got = store.get((1, 4))
    assert not isinstance(got, tuple) and got.dtype == bool and got.tolist() == [True, False]
    (tmp_path / "outcomes" / "k" / "1-4.npz").write_bytes(b"cut short")  # an interrupted write elsewhere
    assert store.get((1, 4)) is None  # computed again, not a crash
    assert outcome_store(None, [], False) is None  # False: nothing kept


def test_the_key_follows_the_weights_the_items_and_the_scoring():
    a, b = tiny.tiny_causal_lm("llama", 4, seed=1), tiny.tiny_causal_lm("llama", 4, seed=2)
    texts = tv.models.as_samples(["one text", "another text"])
    key = outcome_key(a, texts, outcome="text_losses", batch_size=2)
    assert key == outcome_key(a, texts, outcome="text_losses", batch_size=2)
    assert key != outcome_key(b, texts, outcome="text_losses", batch_size=2)
    assert key != outcome_key(a, texts[::-1], outcome="text_losses", batch_size=2)
    assert key != outcome_key(a, texts, outcome="text_losses", batch_size=1)


def test_outcomes_from_the_store_are_not_recomputed_and_replay_still_records(tmp_path):
    ad = tiny.tiny_llava_next(6)
    samples = family_samples(ad, 4)
    calls = []

    def evaluate():
        calls.append(ad.n_layers)
        return text_losses(ad, samples, 2)

    def fresh():
        store = outcome_store(ad, samples, tmp_path, outcome="text_losses", batch_size=2)
        return tv.evaluate.Outcomes(ad, evaluate, store=store)

    first = fresh()
    full, pruned = first(()), first([1, 4])
    assert calls == [6, 4]
    again = fresh()  # another study (or a rerun): both read back
    np.testing.assert_array_equal(again(())[0], full[0])
    np.testing.assert_array_equal(again([4, 1])[0], pruned[0])
    assert calls == [6, 4]
    # a removal not yet stored: the full pass runs once more to record the inputs it replays
    deep = again([3, 5])
    assert calls == [6, 4, 6, 4]
    np.testing.assert_array_equal(deep[0], text_losses(ad, samples, 2, skip=[3, 5])[0])


def test_a_benchmark_keeps_its_outcomes_and_measures_other_models_the_same_way(tmp_path):
    ad = tiny.tiny_causal_lm("llama", 6, seed=3)
    texts = tv.models.as_samples([f"held-out text {i}" + " and more" * i for i in range(4)])
    make = lambda: readings.Benchmark("tiny", ad, "fortunes", "perplexity", texts[:2], texts[2:], 2, tmp_path)  # noqa: E731
    bench = make()
    pruned = bench.outcomes("test", [2, 3])
    assert any((tmp_path / "outcomes").rglob("2-3.npz"))
    np.testing.assert_array_equal(make().outcomes("test", [2, 3])[0], pruned[0])
    with tv.removed(ad, [2, 3]):
        np.testing.assert_array_equal(bench.measure("test", ad)[0], pruned[0])
    assert bench.score("test", [2, 3]).value == make().score("test", [2, 3]).value


def test_a_kept_baseline_run_is_read_back_with_its_order_and_cost(tmp_path, monkeypatch):
    ad = tiny.tiny_causal_lm("llama", 6, seed=4)
    calib = family_samples(ad, 2)
    first = baselines.run("sleb", ad, calib, 0.5, cache_dir=tmp_path)
    assert sorted(first.order) == first.layers_to_remove and len(first.order) == 3

    def again_(*args, **kwargs):
        raise RuntimeError("ran again")

    monkeypatch.setitem(baselines.METHODS, "sleb", replace(baselines.METHODS["sleb"], fn=again_))
    again = baselines.run("sleb", ad, calib, 0.5, cache_dir=tmp_path)
    assert (again.layers_to_remove, again.order, again.seconds) == (first.layers_to_remove, first.order, first.seconds)
    np.testing.assert_array_equal(again.importance, first.importance)
    with pytest.raises(RuntimeError, match="ran again"):  # another sparsity is another run
        baselines.run("sleb", ad, calib, 0.34, cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match="ran again"):  # and without cache_dir nothing is read
        baselines.run("sleb", ad, calib, 0.5)


def test_an_importance_ranked_run_kept_once_serves_every_sparsity(tmp_path, monkeypatch):
    ad = tiny.tiny_causal_lm("llama", 6, seed=5)
    calib = family_samples(ad, 3)
    half = baselines.run("shortgpt", ad, calib, 0.5, cache_dir=tmp_path)
    plain = baselines.run("shortgpt", ad, calib, 0.34)

    def again_(*args, **kwargs):
        raise RuntimeError("ran again")

    monkeypatch.setitem(baselines.METHODS, "shortgpt", replace(baselines.METHODS["shortgpt"], fn=again_))
    third = baselines.run("shortgpt", ad, calib, 0.34, cache_dir=tmp_path)
    assert third.layers_to_remove == plain.layers_to_remove and third.seconds == half.seconds
    rows = baselines.compare(ad, calib, 0.34, ["shortgpt"], cache_dir=tmp_path, progress=False)
    assert rows[0].layers_to_remove == plain.layers_to_remove


def test_a_greedy_run_continues_the_kept_run_to_fewer_layers(tmp_path, monkeypatch):
    ad = tiny.tiny_causal_lm("llama", 6, seed=6)
    calib = family_samples(ad, 2)
    plain = baselines.run("sleb", ad, calib, 0.5)  # 3 layers, nothing kept
    two = baselines.run("sleb", ad, calib, 0.34, cache_dir=tmp_path)  # 2 layers, kept
    assert two.order == plain.order[:2]
    starts = []
    sleb = baselines.METHODS["sleb"]

    def spy(*args, **kwargs):
        starts.append(list(kwargs.get("start", ())))
        return sleb(*args, **kwargs)

    monkeypatch.setitem(baselines.METHODS, "sleb", replace(sleb, fn=spy))
    three = baselines.run("sleb", ad, calib, 0.5, cache_dir=tmp_path)
    assert starts == [two.order]  # one more greedy step, not three
    assert (three.order, three.layers_to_remove) == (plain.order, plain.layers_to_remove)
    np.testing.assert_array_equal(three.importance, plain.importance)
    assert three.seconds > two.seconds and three.n_forward == plain.n_forward  # the whole search, counted once
    assert baselines.run("sleb", ad, calib, 0.5, cache_dir=tmp_path).order == plain.order and len(starts) == 1
