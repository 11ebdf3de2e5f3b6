"""Baselines on tiny models built so that the answer is known."""

import numpy as np
import pytest
import torch
from conftest import family_samples, insert_identity_layer

import topovlm as tv
from topovlm import baselines as B
from topovlm import forward as F
from topovlm.models import tiny

IDENTITY = 5


def with_identity_layer(adapter, layer=IDENTITY, boost=4.0):
    """Zero the output projections of one layer (it becomes an exact identity on
    the residual stream) and strengthen the others so every real layer moves
    the hidden state clearly."""
    with torch.no_grad():
        for i, lyr in enumerate(adapter.decoder_layers):
            scale = 0.0 if i == layer else boost
            lyr.self_attn.o_proj.weight.mul_(scale)
            lyr.mlp.down_proj.weight.mul_(scale)
    return adapter


@pytest.fixture(scope="module")
def known():
    ad = with_identity_layer(tiny.tiny_causal_lm("llama", 8, seed=1))
    calib = F.Calibration.build(ad, family_samples(ad, 12), batch_size=4)
    return ad, calib


def test_identity_layer_really_is_an_identity(known):
    ad, calib = known
    hs = tv.forward.all_states(ad, calib.batches[0])
    torch.testing.assert_close(hs[IDENTITY], hs[IDENTITY + 1])


def test_shortgpt_removes_the_identity_layer_first(known):
    ad, calib = known
    for metric in ("cosine", "angular"):
        imp, _ = B.shortgpt(ad, calib, 1, metric=metric)
        assert int(np.argmin(imp)) == IDENTITY and imp[IDENTITY] == pytest.approx(
            0, abs=1e-3
        )  # arccos near 1 amplifies float32 noise
    assert B.run("shortgpt", ad, calib, 1 / 8).layers_to_remove == [IDENTITY]


@pytest.mark.parametrize("sparsity", [1 / 8, 2 / 8, 3 / 8])
def test_streamline_block_contains_the_identity_layer(known, sparsity):
    ad, calib = known
    res = B.run("streamline", ad, calib, sparsity)
    assert IDENTITY in res.layers_to_remove
    assert res.layers_to_remove == list(
        range(res.layers_to_remove[0], res.layers_to_remove[0] + len(res.layers_to_remove))
    )


def test_magnitude_and_taylor_rank_the_identity_layer_lowest(known):
    ad, calib = known
    mag = B.run("magnitude", ad, calib, 0.25)
    assert int(np.argmin(mag.importance)) == IDENTITY and mag.n_forward == 0
    tay = B.run("taylor", ad, calib, 0.25)
    assert int(np.argmin(tay.importance)) == IDENTITY and tay.importance[IDENTITY] == 0
    assert tay.n_backward == len(calib.batches) and tay.n_forward == len(calib.batches)
    assert all(p.grad is None for p in ad.model.parameters())  # nothing left behind


def test_sleb_skipping_a_layer_equals_removing_it(known):
    ad, calib = known
    copy = with_identity_layer(tiny.tiny_causal_lm("llama", 8, seed=1))
    with tv.skipped(ad, [1, 6]):
        skipped_loss = F.calibration_loss(ad, calib)
    full_loss = F.calibration_loss(ad, calib)
    tv.prune(copy, [1, 6])
    assert F.calibration_loss(copy, F.Calibration.build(copy, calib.samples, 4)) == pytest.approx(
        skipped_loss, rel=1e-5
    )
    assert F.calibration_loss(ad, calib) == full_loss  # the context manager cleaned up
    with tv.skipped(ad, [IDENTITY]):
        assert F.calibration_loss(ad, calib) == pytest.approx(full_loss, rel=1e-6)


@pytest.fixture(scope="module")
def trained():
    """A tiny Llama trained for 400 steps on fortune text (about 15 s), so that every
    layer lowers the loss, with an exact identity layer inserted after layer 2."""
    ad = tiny.tiny_causal_lm("llama", 6, seed=0)
    texts = [s.text for s in tv.calibration.fortune_prompts(256, seed=9)]
    opt = torch.optim.AdamW(ad.model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    ad.model.train()
    for _ in range(400):
        idx = torch.randint(0, len(texts), (16,), generator=g)
        enc = ad.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=96)
        loss = ad.model(**enc, labels=enc.input_ids.masked_fill(enc.attention_mask == 0, -100)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    ad.model.eval()
    insert_identity_layer(ad, 2)
    return ad


@pytest.mark.slow
def test_sleb_removes_the_identity_layer_first(trained):
    calib = F.Calibration.build(trained, tv.calibration.fortune_prompts(16, seed=3), 8)
    res = B.run("sleb", trained, calib, 1 / 7)
    assert res.layers_to_remove == [3]
    others = np.delete(res.importance, 3)
    assert (others > res.importance[3] + 0.02).all()  # every real layer costs loss


def test_sleb_counts_its_greedy_passes(known):
    ad, calib = known
    res = B.run("sleb", ad, calib, 2 / 8)
    assert len(res.layers_to_remove) == 2
    # per step: one pass recording every layer's input, then one (resumed) pass per candidate
    assert res.n_forward == (1 + 8 + 1 + 7) * len(calib.batches) and res.passes == 17


@pytest.mark.parametrize("family", ["llama", "qwen2", "llava-next", "videollama2"])
def test_sleb_resumed_passes_equal_full_passes(family):
    """The resumed forward (from the next remaining layer, fed the candidate's input)
    gives exactly the losses of a full forward with the candidate skipped."""
    ad = {"llava-next": lambda: tiny.tiny_llava_next(6), "videollama2": lambda: tiny.tiny_videollama2(6)}.get(
        family, lambda: tiny.tiny_causal_lm(family, 6, seed=1)
    )()
    calib = F.Calibration.build(ad, family_samples(ad, 4), 2)
    importance, order = B.sleb(ad, calib, 4)
    ref_importance, ref_order = B.sleb(ad, calib, 4, resumed=False)
    assert order == ref_order
    np.testing.assert_allclose(importance, ref_importance, rtol=1e-6)


@pytest.mark.parametrize("family", ["causal-lm", "llava-next", "videollama2"])
@pytest.mark.parametrize("sparsity", [0.25, 0.5])
@pytest.mark.slow
def test_every_method_returns_round_sL_distinct_valid_layers(family, sparsity):
    ad = {
        "causal-lm": lambda: tiny.tiny_causal_lm("qwen2", 8),
        "llava-next": lambda: tiny.tiny_llava_next(8),
        "videollama2": lambda: tiny.tiny_videollama2(8),
    }[family]()
    results = B.compare(
        ad, family_samples(ad, 12), sparsity, random_seeds=(0, 1), batch_size=6, progress=False, topovlm={"k": 5}
    )
    assert {r.method for r in results} == set(B.METHODS)
    for r in results:
        assert len(r.layers_to_remove) == round(sparsity * 8) == len(set(r.layers_to_remove)), r.method
        assert all(0 <= i < 8 for i in r.layers_to_remove) and r.importance.shape == (8,)
        assert r.seconds >= 0 and np.isfinite(r.importance).all(), r.method
    table = tv.baselines.results_table(results)
    assert table.count("\n") == len(results) + 1 and "| topovlm |" in table


def test_results_are_deterministic_for_a_fixed_seed(known):
    ad, calib = known
    for name in B.METHODS:
        a, b = B.run(name, ad, calib, 0.25, seed=7), B.run(name, ad, calib, 0.25, seed=7)
        assert a.layers_to_remove == b.layers_to_remove, name
        np.testing.assert_allclose(a.importance, b.importance, rtol=1e-6, err_msg=name)
    assert (
        B.run("random", ad, calib, 0.5, seed=1).layers_to_remove
        != B.run("random", ad, calib, 0.5, seed=2).layers_to_remove
    )


def test_tamp_uses_media_tokens_when_there_are_some():
    ad = tiny.tiny_llava_next(6)
    calib = F.Calibration.build(ad, family_samples(ad, 4), 2)
    assert ad.media_token_mask(calib.batches[0]).any()
    res = B.run("tamp", ad, calib, 0.5)
    assert res.notes == "" and (res.importance > 1).all()  # three terms, each in [0, 2]
    text = B.run("tamp", tiny.tiny_causal_lm("llama", 6), family_samples(ad, 4), 0.5)
    assert "text density only" in text.notes


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"sparsity": 0.0}, "sparsity must be in"),
        ({"sparsity": 1.0}, "sparsity must be in"),
        ({"sparsity": 0.01}, "removes no layer"),
        ({"method": "sparsegpt"}, "unknown method"),
    ],
)
def test_bad_baseline_arguments(known, kwargs, msg):
    ad, calib = known
    args = {"method": "shortgpt", "sparsity": 0.5, **kwargs}
    with pytest.raises(tv.TopoVLMInputError, match=msg):
        B.run(args["method"], ad, calib, args["sparsity"])


def test_layer_ranges_are_compact():
    assert tv.reports.layer_ranges([8, 0, 1, 2, 5, 7]) == "0-2, 5, 7-8"
    assert tv.reports.layer_ranges([]) == "" and tv.reports.layer_ranges([4]) == "4"


@pytest.mark.parametrize("method", ["shortgpt", "random", "magnitude"])
def test_importance_ranked_choice_at_a_smaller_sparsity_is_read_off_a_larger_one(known, method):
    ad, calib = known
    big = B.run(method, ad, calib, 0.5, seed=1)
    assert B.at_sparsity(big, 0.25).layers_to_remove == B.run(method, ad, calib, 0.25, seed=1).layers_to_remove


def test_a_greedy_method_is_not_read_off_another_sparsity(known):
    ad, calib = known
    with pytest.raises(tv.TopoVLMInputError, match="rerun it"):
        B.at_sparsity(B.run("sleb", ad, calib, 0.25), 0.125)


def test_a_new_expensive_greedy_method_registered_in_one_place_is_taken_by_every_study(monkeypatch):
    """What CONTRIBUTING promises: a method is one registered function; compare, the sweep,
    the test of chapter 04b and chapter 09's choices read its record (budget, choice, label,
    note) and never its name."""
    from topovlm.studies import extensions, readings, sweep
    from topovlm.tasks import QA

    seen = []

    def lastfirst(adapter, calib, n_remove, seed=0, start=()):
        seen.append(len(calib.samples))
        order = [int(i) for i in start] + [i for i in reversed(range(adapter.n_layers)) if i not in start]
        return np.zeros(adapter.n_layers), order[:n_remove]

    monkeypatch.setitem(B.METHODS, "lastfirst", B.Method("lastfirst", lastfirst, "Last-first", "greedy", "expensive",
                                                         note=lambda adapter, calib: "a toy"))  # fmt: skip
    ad = tiny.tiny_causal_lm("llama", 6, seed=1)
    samples = family_samples(ad, 8)
    res = B.compare(
        ad, samples, 0.5, ["lastfirst", "shortgpt"], baseline_samples=6, expensive_samples=2, progress=False
    )
    assert seen == [2] and res[0].layers_to_remove == [3, 4, 5] and res[0].notes == "a toy"

    qas = [QA(s, ["red", "blue"][i % 2], "color", choices=("red", "blue")) for i, s in enumerate(samples)]
    full, rows = sweep.pruning_sweep(ad, samples, qas, [0.34, 0.5], ["lastfirst"], exact=False, progress=False,
                                     expensive_samples=3, cache_dir=False)  # fmt: skip
    assert [r.layers for r in rows] == [(4, 5), (3, 4, 5)] and seen[-2:] == [3, 3]

    bench = readings.benchmark("tiny-llama", ad, 4, 4, cache_dir=False)
    store = readings.CloudStore(bench, cache_dir=False)
    test = readings.run_test([bench], [store], [], (0.34, 0.5), n_calib=8, baselines=["lastfirst"],
                             expensive_samples=2, progress=False)  # fmt: skip
    assert [(r.reading, r.layers) for r in test] == [("Last-first", (4, 5)), ("Last-first", (3, 4, 5))]
    assert seen[-1] == 2  # one greedy run to the largest sparsity, read off for the smaller one

    chosen = extensions.method_choices(bench, None, ["lastfirst"], 0.5, n_calib=8, expensive_samples=2)
    assert chosen == {"Last-first": (3, 4, 5)} and seen[-1] == 2
