"""topovlm heal: LoRA recovery of a pruned model (tiny random models, seconds)."""

import json
import sys

import numpy as np
import pytest
import torch
from conftest import family_samples

import topovlm as tv
from topovlm._checks import TopoVLMInputError
from topovlm.models import tiny
from topovlm.tasks import QA

H = sys.modules["topovlm.training.heal"]  # the module (tv.heal is the function)
TEXTS = [f"the {w} sat on the mat number {i}." for i, w in enumerate(["cat", "dog", "bird", "fox"] * 4)]
FAST = tv.HealConfig(steps=6, batch_size=4, lr=5e-3, warmup=1, checkpoint_every=2, n_train=16)


def pruned_lm(seed=0):
    ad = tiny.tiny_causal_lm("llama", n_layers=6, seed=seed)
    tv.prune(ad, [1, 2])
    return ad


def weights(ad):
    return {n: p.detach().clone() for n, p in ad.model.state_dict().items()}


def mean_loss(ad, texts):
    with torch.no_grad():
        return float(H._loss(ad, [tv.models.Sample(t) for t in texts]))


def test_heal_lowers_the_training_loss_and_leaves_a_plain_model(tmp_path):
    ad = pruned_lm()
    before, n_params, names = mean_loss(ad, TEXTS), ad.n_parameters(), set(weights(ad))
    report = tv.heal(ad, FAST, data=TEXTS, cache_dir=tmp_path, progress=False)
    assert mean_loss(ad, TEXTS) < before - 0.1
    assert report.steps == 6 and len(report.log) == 3 and report.trainable > 0
    # LoRA merged: the same parameters and shapes as before, nothing trainable left
    assert set(weights(ad)) == names and ad.n_parameters() == n_params
    assert not any(p.requires_grad for p in ad.model.parameters())
    assert ad.meta["healed"]["steps"] == 6 and ad.meta["pruned"]["removed"] == [1, 2]
    out = ad.save(tmp_path / "healed")
    from transformers import AutoModelForCausalLM

    again = AutoModelForCausalLM.from_pretrained(out)  # plain transformers, no topovlm
    assert again.config.num_hidden_layers == 4
    for n, w in weights(ad).items():
        torch.testing.assert_close(again.state_dict()[n], w)
    assert json.loads((out / "topovlm.json").read_text())["healed"]["config"]["steps"] == 6


def test_heal_is_seeded(tmp_path):
    a, b, c = pruned_lm(), pruned_lm(), pruned_lm()
    tv.heal(a, FAST, data=TEXTS, cache_dir=tmp_path / "a", progress=False)
    tv.heal(b, FAST, data=TEXTS, cache_dir=tmp_path / "b", progress=False)
    tv.heal(c, tv.HealConfig(**{**FAST.__dict__, "seed": 1}), data=TEXTS, cache_dir=tmp_path / "c", progress=False)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[n], wb[n]) for n in wa)
    assert any(not torch.equal(wa[n], wc[n]) for n in wa)


def test_an_interrupted_heal_resumes_to_the_same_weights(tmp_path, monkeypatch):
    whole = pruned_lm()
    full_report = tv.heal(whole, FAST, data=TEXTS, cache_dir=tmp_path / "whole", progress=False)

    ad = pruned_lm()
    untouched = weights(ad)
    real, calls = H._loss, []

    def dies_at_fourth_step(adapter, items):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(adapter, items)

    monkeypatch.setattr(H, "_loss", dies_at_fourth_step)
    with pytest.raises(KeyboardInterrupt):
        tv.heal(ad, FAST, data=TEXTS, cache_dir=tmp_path / "cut", progress=False)
    # the model is handed back as it was (no LoRA left in it), the checkpoint holds 2 steps
    assert set(weights(ad)) == set(untouched) and all(torch.equal(weights(ad)[n], untouched[n]) for n in untouched)
    monkeypatch.setattr(H, "_loss", real)
    report = tv.heal(ad, FAST, data=TEXTS, cache_dir=tmp_path / "cut", progress=False)
    assert report.resumed_from == 2 and report.data_hash == full_report.data_hash
    w, ww = weights(ad), weights(whole)
    for n in ww:
        torch.testing.assert_close(w[n], ww[n], rtol=1e-5, atol=1e-6)
    # a fresh start ignores the checkpoint
    fresh = pruned_lm()
    assert tv.heal(fresh, FAST, data=TEXTS, cache_dir=tmp_path / "cut", resume=False, progress=False).resumed_from == 0


def test_heal_trains_a_vision_model_on_question_answer_pairs(tmp_path):
    ad = tiny.tiny_llava_next(n_layers=4)
    tv.prune(ad, [2])
    samples = family_samples(ad, n=6)
    qas = [QA(s, ["red", "blue"][i % 2], "color", choices=("red", "blue")) for i, s in enumerate(samples)]
    before = float(H._loss(ad, qas).detach())
    tv.heal(
        ad,
        tv.HealConfig(steps=8, batch_size=3, lr=1e-2, warmup=1, n_train=6),
        data=qas,
        cache_dir=tmp_path,
        progress=False,
    )
    with torch.no_grad():
        assert float(H._loss(ad, qas)) < before
    # LoRA went into the decoder's attention only, not the vision tower: rank x (in + out) per projection
    targets = {"q_proj", "k_proj", "v_proj", "o_proj"}
    expected = sum(
        8 * (m.in_features + m.out_features)
        for layer in ad.decoder_layers
        for name, m in layer.named_modules()
        if name.rpartition(".")[2] in targets
    )
    assert ad.meta["healed"]["trainable"] == expected > 0


def test_default_data_is_the_training_split_of_the_task():
    ad = tiny.tiny_llava_next(n_layers=2)
    items = H.heal_data(ad, n=5, seed=0)
    assert len(items) == 5 and all(isinstance(q, QA) and q.sample.image is not None for q in items)
    test_qs = {(q.sample.text, str(q.sample.image)) for q in tv.tasks.load("easy-vqa", split="test", n=200)}
    assert not ({(q.sample.text, str(q.sample.image)) for q in items} & test_qs)


@pytest.mark.parametrize(
    "kwargs, msg",
    [(dict(steps=0), "steps"), (dict(lr=0.0), "lr"), (dict(warmup=10, steps=5), "warmup"), (dict(rank=-1), "rank")],
)
def test_bad_config_is_a_clear_error(kwargs, msg):
    with pytest.raises(TopoVLMInputError, match=msg):
        tv.HealConfig(**kwargs)


def test_bad_data_and_targets_are_clear_errors(tmp_path):
    ad = pruned_lm()
    with pytest.raises(TopoVLMInputError, match="empty"):
        tv.heal(ad, FAST, data=[], cache_dir=tmp_path, progress=False)
    qa = QA(tv.models.Sample("q"), "a", "s")
    with pytest.raises(TopoVLMInputError, match="all QA items"):
        tv.heal(ad, FAST, data=[qa, "text"], cache_dir=tmp_path, progress=False)
    with pytest.raises(TopoVLMInputError, match="no LoRA target"):
        tv.heal(ad, tv.HealConfig(steps=2, warmup=0, targets=("nope",)), data=TEXTS, cache_dir=tmp_path, progress=False)
    assert np.isfinite(mean_loss(ad, TEXTS))  # still usable after the refusals


def cli(*args):
    import subprocess

    return subprocess.run([sys.executable, "-m", "topovlm.cli", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_heal_command_saves_a_plain_healed_checkpoint(tmp_path):
    ad = pruned_lm()
    ad.save(tmp_path / "pruned")
    (tmp_path / "train.txt").write_text("\n".join(TEXTS))
    args = ["--model", str(tmp_path / "pruned"), "--data", str(tmp_path / "train.txt"), "--cache-dir", str(tmp_path)]
    r = cli("heal", *args, "--steps", "3", "--batch-size", "2", "--out", str(tmp_path / "healed"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "healed for 3 steps" in r.stdout and "saved to" in r.stdout
    info = json.loads((tmp_path / "healed" / "topovlm.json").read_text())
    assert info["healed"]["steps"] == 3 and info["pruned"]["removed_original"] == [1, 2]
    back = tv.models.load_model(str(tmp_path / "healed"))
    assert back.n_layers == 4 and back.meta["original_layers"] == [0, 3, 4, 5]
    # bad input: one line, no traceback, nothing written
    r = cli("heal", *args, "--steps", "0", "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and "steps must be a positive integer" in r.stderr and "Traceback" not in r.stderr
    r = cli("heal", *args[:2], "--data", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and "no such prompts file" in r.stderr
    assert not (tmp_path / "bad").exists()
