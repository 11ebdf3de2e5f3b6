"""Adapters on tiny random-init models of every family: extraction shapes,
pruning, generate() with and without KV cache, reload without topovlm."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import family_samples

import topovlm as tv
from topovlm.models import tiny
from topovlm.samples import as_samples

FAMILIES = [("causal-lm", arch) for arch in tiny.ARCHITECTURES] + [("llava-next", None), ("videollama2", None)]


def make(family, arch, n_layers=6, seed=0):
    if family == "llava-next":
        return tiny.tiny_llava_next(n_layers, seed=seed)
    if family == "videollama2":
        return tiny.tiny_videollama2(n_layers, seed=seed)
    return tiny.tiny_causal_lm(arch, n_layers, seed=seed)


IDS = [f"{f}-{a}" if a else f for f, a in FAMILIES]


@pytest.mark.parametrize("family,arch", FAMILIES, ids=IDS)
@pytest.mark.parametrize("token", ["ret", "last", "mean"])
def test_extraction_gives_L_plus_1_clouds_of_N_points(family, arch, token):
    ad = make(family, arch)
    clouds = tv.extract(ad, family_samples(ad, 7), token=token, batch_size=3, cache_dir=False, progress=False)
    assert clouds.shape == (7, 7, 32) and clouds.dtype == np.float32
    assert np.isfinite(clouds).all()
    assert not np.allclose(clouds[0], clouds[-1])


@pytest.mark.parametrize("family,arch", FAMILIES, ids=IDS)
def test_batching_and_padding_do_not_change_a_sample_point(family, arch):
    ad = make(family, arch)
    samples = family_samples(ad, 5)
    batched = tv.extract(ad, samples, batch_size=5, cache_dir=False, progress=False)
    alone = tv.extract(ad, samples[2:3], batch_size=1, cache_dir=False, progress=False)
    np.testing.assert_allclose(batched[:, 2], alone[:, 0], atol=1e-5)


def test_extraction_matches_hidden_states_of_the_model():
    """Cloud 0 is the embedding output, cloud i+1 the output of decoder layer i
    (transformers' hidden_states[i+1] except the last, which it normalises)."""
    ad = make("causal-lm", "llama")
    s = as_samples(["what is the capital of France?"])
    clouds = tv.extract(ad, s, token="last", cache_dir=False, progress=False, point="residual")
    with torch.no_grad():
        hs = ad.model(**ad.encode(s, None), output_hidden_states=True).hidden_states
    for i in range(ad.n_layers):
        np.testing.assert_allclose(clouds[i, 0], hs[i][0, -1].numpy(), atol=1e-6)
    assert np.abs(clouds[-1, 0] - hs[-1][0, -1].numpy()).max() > 1e-3  # ours is before the final norm


def test_ret_marker_is_read_where_it_is_appended():
    ad = make("causal-lm", "llama")
    s = as_samples(["hello"])
    ret = tv.extract(ad, s, token="ret", cache_dir=False, progress=False)
    last = tv.extract(ad, s, token="last", cache_dir=False, progress=False)
    enc = ad.encode(s, tv.models.RET_MARKER)
    assert ad.tokenizer.decode(enc["input_ids"][0, -5:]).endswith("[RET]")
    assert not np.allclose(ret[1:], last[1:])


@pytest.mark.parametrize("family,arch", FAMILIES, ids=IDS)
def test_pruned_model_generates_the_same_with_and_without_kv_cache(family, arch):
    ad = make(family, arch)
    report = tv.prune(ad, [0, 2, 5])
    assert report.kept == [1, 3, 4] and ad.n_layers == 3 and ad.text_config.num_hidden_layers == 3
    assert [l.self_attn.layer_idx for l in ad.decoder_layers] == [0, 1, 2]
    assert report.params_after < report.params_before
    inputs = ad.encode(as_samples(family_samples(ad, 1)), None)
    with torch.no_grad():
        a = ad.model.generate(
            **inputs, max_new_tokens=12, min_new_tokens=12, do_sample=False, use_cache=True, pad_token_id=0
        )
        b = ad.model.generate(
            **inputs, max_new_tokens=12, min_new_tokens=12, do_sample=False, use_cache=False, pad_token_id=0
        )
    assert a.shape[1] == inputs["input_ids"].shape[1] + 12
    assert torch.equal(a, b)


def test_pruning_equals_skipping_the_layers_in_the_full_model():
    """Mixed sliding/full attention (Qwen2 layer_types): the pruned model must
    keep each surviving layer's own attention type."""
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = tiny.byte_tokenizer()
    cfg = AutoConfig.for_model(
        "qwen2", **tiny._decoder_kwargs(tok, 6, 32), use_sliding_window=True, sliding_window=8, max_window_layers=3
    )
    torch.manual_seed(0)
    full = AutoModelForCausalLM.from_config(cfg).eval()
    assert cfg.layer_types == ["full_attention"] * 3 + ["sliding_attention"] * 3
    ad = tv.models.CausalLMAdapter(full, tok, "qwen2-mixed")
    ids = tok("a prompt long enough for the sliding window to matter", return_tensors="pt").input_ids
    removed = [1, 2]
    handles = [
        full.model.layers[i].register_forward_hook(
            lambda m, args, out: args[0] if not isinstance(out, tuple) else (args[0],) + out[1:]
        )
        for i in removed
    ]
    with torch.no_grad():
        expected = full(ids).logits
    for h in handles:
        h.remove()
    tv.prune(ad, removed)
    assert ad.text_config.layer_types == ["full_attention"] + ["sliding_attention"] * 3
    with torch.no_grad():
        got = ad.model(ids).logits
    torch.testing.assert_close(got, expected)


RELOAD = r"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "topovlm" or name.startswith("topovlm."):
            raise ImportError("topovlm must not be needed to load a pruned checkpoint")
sys.meta_path.insert(0, Block())
import torch, transformers
from safetensors.torch import load_file
out, family = sys.argv[1], sys.argv[2]
cfg = json.load(open(out + "/config.json"))
if family == "llava-next":
    model = transformers.AutoModelForImageTextToText.from_pretrained(out)
    proc = transformers.AutoProcessor.from_pretrained(out)
else:
    model = transformers.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=family == "videollama2")
    proc = transformers.AutoTokenizer.from_pretrained(out)
model.eval()
inputs = load_file(out + "/inputs.safetensors")
tok = getattr(proc, "tokenizer", proc)
text = open(out + "/prompt.txt").read()
if family != "llava-next":
    assert tok(text, return_tensors="pt").input_ids.tolist() == inputs["input_ids"].tolist(), "tokenizer differs"
with torch.no_grad():
    logits = model(**inputs).logits
from safetensors.torch import save_file
save_file({"logits": logits.contiguous()}, out + "/reloaded.safetensors")
print(type(model).__name__, model.config.get_text_config().num_hidden_layers)
"""


@pytest.mark.parametrize("family,arch", FAMILIES, ids=IDS)
@pytest.mark.slow
def test_pruned_checkpoint_reloads_without_topovlm(family, arch, tmp_path):
    from safetensors.torch import load_file, save_file

    ad = make(family, arch)
    tv.prune(ad, [1, 3, 4])  # half of the 6 layers
    out = ad.save(tmp_path / "pruned")
    sample = as_samples(family_samples(ad, 1))
    inputs = ad.encode(sample, None)
    (out / "prompt.txt").write_text(ad.prompt_text(sample[0].text, None) if family != "llava-next" else "")
    save_file({k: v.contiguous() for k, v in inputs.items() if torch.is_tensor(v)}, str(out / "inputs.safetensors"))
    with torch.no_grad():
        expected = ad.model(**inputs).logits
    (tmp_path / "reload.py").write_text(RELOAD)
    r = subprocess.run([sys.executable, str(tmp_path / "reload.py"), str(out), family], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-1] == "3"
    torch.testing.assert_close(load_file(str(out / "reloaded.safetensors"))["logits"], expected)
    info = json.loads((out / "topovlm.json").read_text())
    assert info["pruned"]["removed"] == [1, 3, 4] and info["family"] == family


def test_ret_marker_does_not_leak_into_the_pruned_checkpoint(tmp_path):
    from transformers import AutoTokenizer

    ad = make("causal-lm", "llama")
    n_vocab, emb = len(ad.tokenizer), ad.model.get_input_embeddings().weight.shape
    tv.extract(ad, family_samples(ad, 4), token="ret", cache_dir=False, progress=False)
    tv.prune(ad, [0])
    out = ad.save(tmp_path / "p")
    tok = AutoTokenizer.from_pretrained(out)
    assert len(tok) == n_vocab and "[RET]" not in tok.get_vocab()
    assert ad.model.get_input_embeddings().weight.shape == emb
    assert not any("[RET]" in t for t in tok.all_special_tokens)


@pytest.mark.parametrize(
    "layers,msg",
    [
        ([6], "out of range"),
        ([-7], "out of range"),
        ([0, 1, 2, 3, 4, 5], "every decoder layer"),
        ([1.5], "integers"),
        ([0, -6, 1, 2, 3, 4, 5], "every decoder layer"),
    ],
)
def test_bad_layer_lists_are_one_line_errors(layers, msg):
    ad = make("causal-lm", "llama")
    with pytest.raises(tv.TopoVLMInputError, match=msg):
        tv.prune(ad, layers)
    assert ad.n_layers == 6  # nothing half-done


def test_negative_indices_count_from_the_end():
    ad = make("causal-lm", "llama")
    assert tv.prune(ad, [-1, 0]).removed == [0, 5]


def test_unreadable_image_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    ad = make("llava-next", None)
    with pytest.raises(tv.TopoVLMInputError, match="cannot read image .*broken.png"):
        tv.extract(ad, [tv.models.Sample("what?", image=str(bad))], cache_dir=False, progress=False)
    with pytest.raises(tv.TopoVLMInputError, match="cannot read image"):
        tv.extract(
            ad, [tv.models.Sample("what?", image=str(tmp_path / "missing.png"))], cache_dir=tmp_path, progress=False
        )


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(tv.TopoVLMInputError, match="no such checkpoint directory"):
        tv.models.load_model(str(tmp_path / "no-such-dir"))
    with pytest.raises(tv.TopoVLMInputError, match="unknown model 'nobody/no-such-model'"):
        tv.models.load_model("nobody/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(tv.TopoVLMInputError, match="without config.json"):
        tv.models.load_model(str(tmp_path / "empty"))


def test_saved_tiny_models_load_back_through_load_model(tmp_path):
    for family, arch in [("causal-lm", "qwen2"), ("llava-next", None), ("videollama2", None)]:
        ad = make(family, arch)
        ad.save(tmp_path / family)
        back = tv.models.load_model(str(tmp_path / family))
        assert back.family == family and back.n_layers == 6
        a = tv.extract(ad, family_samples(ad, 2), cache_dir=False, progress=False)
        b = tv.extract(back, family_samples(ad, 2), cache_dir=False, progress=False)
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_saved_llava_next_gets_the_lmms_eval_command(tmp_path):
    import subprocess

    from topovlm.models.llava_next import lmms_eval_command

    ad = tv.models.tiny.tiny_llava_next()
    tv.prune(ad, [1, 2])
    ad.save(tmp_path / "pruned")
    script = (tmp_path / "pruned" / "lmms_eval.sh").read_text()
    cmd = (
        f"python -m lmms_eval --model llava_hf --model_args pretrained={(tmp_path / 'pruned').resolve()} "
        "--tasks mme,mmmu_val,mathvista_testmini,mmbench_en_dev"
    )
    assert cmd in script and lmms_eval_command((tmp_path / "pruned").resolve()) == cmd
    assert cmd in (tmp_path / "pruned" / "EVALUATE.md").read_text()
    assert subprocess.run(["sh", "-n", tmp_path / "pruned" / "lmms_eval.sh"]).returncode == 0


def test_saved_videollama2_says_how_to_evaluate_it(tmp_path):
    ad = tv.models.tiny.tiny_videollama2()
    ad.save(tmp_path / "v")
    note = (tmp_path / "v" / "EVALUATE.md").read_text()
    assert str((tmp_path / "v").resolve()) in note and "model_init" in note
    assert not (tmp_path / "v" / "lmms_eval.sh").exists()


def test_profile_picks_the_device_unless_one_is_given():
    assert tv.models.profile_device("mini") == "cpu"
    assert tv.models.profile_device("paper") == "auto"
    assert tv.models.profile_device("paper", "cuda:1") == "cuda:1"
    with pytest.raises(tv.TopoVLMInputError, match="profile must be one of"):
        tv.models.profile_device("Paper")


@pytest.mark.parametrize("family,arch", FAMILIES, ids=IDS)
def test_skipping_layers_gives_the_pruned_models_logits_and_greedy_answers(family, arch):
    ad = make(family, arch)
    removed = [0, 2, 3]  # layer 0 too: generation reads the cache length from it
    samples = as_samples(family_samples(ad, 3))
    inputs = ad.encode(samples, None, side="left")
    with tv.skipped(ad, removed), torch.no_grad():
        logits = ad.model(**inputs, use_cache=False).logits
        answers = ad.generate(samples, max_new_tokens=6, batch_size=3)
    assert not ad.decoder_layers[0].__dict__.get("forward")  # the layers are restored on exit
    pruned = ad.copy()
    tv.prune(pruned, removed)
    with torch.no_grad():
        torch.testing.assert_close(logits, pruned.model(**inputs, use_cache=False).logits)
    assert answers == pruned.generate(samples, max_new_tokens=6, batch_size=3)


def test_a_skipped_layer_does_not_compute_without_a_kv_cache():
    ad = make("causal-lm", "llama")
    calls = []
    hooks = [
        layer.mlp.register_forward_hook(lambda m, a, o, i=i: calls.append(i))
        for i, layer in enumerate(ad.decoder_layers)
    ]
    inputs = ad.encode(as_samples(family_samples(ad, 2)), None)
    with torch.no_grad():
        with tv.skipped(ad, [1, 4]):  # the first call learns the layer class's output form
            ad.model(**inputs, use_cache=False)
        calls.clear()
        with tv.skipped(ad, [1, 4]):
            ad.model(**inputs, use_cache=False)
            ad.model(**inputs, use_cache=False)
    for h in hooks:
        h.remove()
    assert sorted(set(calls)) == [0, 2, 3, 5]


@pytest.mark.parametrize("family,arch", FAMILIES, ids=IDS)
def test_removed_layers_generate_as_the_pruned_model_and_come_back(family, arch):
    ad = make(family, arch)
    samples = as_samples(family_samples(ad, 3))
    inputs = ad.encode(samples, None, side="left")
    with torch.no_grad():
        before = ad.model(**inputs).logits
    n_layers, layer_types = ad.n_layers, getattr(ad.text_config, "layer_types", None)
    with tv.removed(ad, [0, 2, 3]):
        assert ad.n_layers == 3 and ad.text_config.num_hidden_layers == 3
        answers = ad.generate(samples, max_new_tokens=6, batch_size=3)
    pruned = ad.copy()
    tv.prune(pruned, [0, 2, 3])
    assert answers == pruned.generate(samples, max_new_tokens=6, batch_size=3)
    assert ad.n_layers == n_layers and ad.text_config.num_hidden_layers == n_layers
    assert getattr(ad.text_config, "layer_types", None) == layer_types and "pruned" not in ad.meta
    assert [layer.self_attn.layer_idx for layer in ad.decoder_layers] == list(range(n_layers))
    with pytest.raises(RuntimeError), tv.removed(ad, [1]):
        raise RuntimeError("the body fails")
    assert ad.n_layers == n_layers
    with torch.no_grad():
        torch.testing.assert_close(ad.model(**inputs).logits, before)
