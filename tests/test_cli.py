import json
import subprocess
import sys

import numpy as np
import pytest

import topovlm as tv


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "topovlm.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
def test_search_command_writes_a_loadable_result(tmp_path):
    np.savez(tmp_path / "c.npz", clouds=tv.drifting_clouds(9, 60, 4, seed=1))
    r = run_cli("search", str(tmp_path / "c.npz"), "--k", "8", "--sparsity", "0.25", "--out", str(tmp_path / "res"))
    assert r.returncode == 0, r.stderr
    assert "remove 2 of 8 decoder layers" in r.stdout
    res = tv.SearchResult.load(tmp_path / "res")
    assert json.loads((tmp_path / "res" / "search.json").read_text())["config"]["k"] == 8
    assert len(res.layers_to_remove) == 2


@pytest.mark.slow
def test_search_command_bad_input_is_one_line_error(tmp_path):
    r = run_cli("search", str(tmp_path / "missing.npz"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    np.savez(tmp_path / "c.npz", clouds=tv.drifting_clouds(4, 10, 3))
    r = run_cli("search", str(tmp_path / "c.npz"), "--k", "20")
    assert r.returncode == 2 and "smaller than the number of points" in r.stderr
    np.savez(tmp_path / "d.npz", other=np.zeros(3))
    r = run_cli("search", str(tmp_path / "d.npz"))
    assert r.returncode == 2 and "no array named 'clouds'" in r.stderr


@pytest.mark.slow
def test_extract_command_saves_clouds_for_search(tmp_path):
    from topovlm.models import tiny

    tiny.tiny_causal_lm("qwen2", 4).save(tmp_path / "m")
    (tmp_path / "p.txt").write_text("\n".join(f"prompt number {i} about things" for i in range(12)))
    r = run_cli(
        "extract",
        "--model",
        str(tmp_path / "m"),
        "--data",
        str(tmp_path / "p.txt"),
        "--n",
        "12",
        "--batch-size",
        "5",
        "--out",
        str(tmp_path / "c.npz"),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert r.returncode == 0, r.stderr[-1500:]
    assert "(5, 12, 32)" in r.stdout
    with np.load(tmp_path / "c.npz") as z:
        assert z["clouds"].shape == (5, 12, 32) and str(z["token"]) == "ret"
    r = run_cli("search", str(tmp_path / "c.npz"), "--k", "4", "--sparsity", "0.5", "--out", str(tmp_path / "s"))
    assert r.returncode == 0 and "remove 2 of 4" in r.stdout


@pytest.mark.slow
def test_prune_command_with_explicit_layers(tmp_path):
    from topovlm.models import tiny

    tiny.tiny_llava_next(4).save(tmp_path / "m")
    r = run_cli(
        "prune", "--model", str(tmp_path / "m"), "--layers", "1", "--layers", "-1", "--out", str(tmp_path / "p")
    )
    assert r.returncode == 0, r.stderr[-1500:]
    assert "removed 2 of 4 decoder layers [1, 3]" in r.stdout
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    assert cfg["text_config"]["num_hidden_layers"] == 2


@pytest.mark.slow
def test_prune_command_progressive_records_its_rounds(tmp_path):
    from topovlm.models import tiny

    tiny.tiny_causal_lm("llama", 6, seed=2).save(tmp_path / "m")
    (tmp_path / "p.txt").write_text("\n".join(f"prompt number {i} says" + " more" * (i % 4) for i in range(16)))
    r = run_cli(
        "prune",
        "--model",
        str(tmp_path / "m"),
        "--sparsity",
        "0.5",
        "--step",
        "2",
        "--k",
        "5",
        "--data",
        str(tmp_path / "p.txt"),
        "--n",
        "16",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "p"),
    )
    assert r.returncode == 0, r.stderr[-1500:]
    assert "round 1: 6 layers" in r.stdout and "round 2: 4 layers" in r.stdout
    meta = json.loads((tmp_path / "p" / "topovlm.json").read_text())
    rounds = meta["search"]["rounds"]
    assert [len(x) for x in rounds] == [2, 1] and meta["search"]["progressive_step"] == 2
    assert sorted(i for x in rounds for i in x) == meta["pruned"]["removed_original"]
    assert json.loads((tmp_path / "p" / "config.json").read_text())["num_hidden_layers"] == 3


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--sparsity", "1.5"], "sparsity must be in (0, 1)"),
        (["--sparsity", "0"], "sparsity must be in (0, 1)"),
        ([], "give either --sparsity or --layers"),
        (["--layers", "9"], "out of range"),
        (["--layers", "0", "--layers", "1", "--layers", "2", "--layers", "3"], "every decoder layer"),
        (["--layers", "1", "--step", "1"], "--step prunes progressively"),
        (["--sparsity", "0.5", "--step", "0"], "--step must be a positive"),
        (["--sparsity", "0.5", "--n", "8"], "--k 15 needs more than 15 calibration samples; --n is 8"),
    ],
)
@pytest.mark.slow
def test_prune_command_bad_input_is_one_line_error(tmp_path, args, msg):
    from topovlm.models import tiny

    tiny.tiny_causal_lm("llama", 4).save(tmp_path / "m")
    r = run_cli("prune", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "p"), *args)
    assert r.returncode == 2, r.stderr[-1500:]
    assert msg in r.stderr and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and r.stderr.strip().splitlines()[-1] == errors[0]


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--model", "/no/such/model"], "no such checkpoint directory"),
        (["--model", "smollm2", "--data", "nowhere.txt"], "no such prompts file"),
        (["--model", "smollm2", "--data", "imagenet"], "unknown calibration set"),
        (["--model", "smollm2", "--n", "0"], "positive integer"),
        (["--model", "smollm2", "--token", "first"], "token must be one of"),
    ],
)
@pytest.mark.slow
def test_extract_command_bad_input_is_one_line_error(tmp_path, args, msg):
    r = run_cli("extract", *args, "--out", str(tmp_path / "c.npz"))
    assert r.returncode == 2, r.stderr[-1500:]
    assert msg in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_train_and_evaluate_bad_input_are_one_line_errors():
    r = run_cli("train", "mini-gpt")
    assert r.returncode == 2 and "unknown mini model 'mini-gpt'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("evaluate", "--model", "mini-llava-next", "--method", "obs")
    assert r.returncode == 2 and "unknown method 'obs'" in r.stderr
    r = run_cli("evaluate", "--model", "mini-llava-next", "--sparsity", "1.5")
    assert r.returncode == 2 and "sparsity must be in (0, 1)" in r.stderr
    r = run_cli("evaluate", "--model", "mini-llava-next", "--scoring", "logprob")
    assert r.returncode == 2 and "unknown scoring 'logprob'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_search_command_takes_a_preset_and_the_open_choices(tmp_path):
    np.savez(tmp_path / "c.npz", clouds=tv.drifting_clouds(9, 60, 4, seed=1))
    r = run_cli(
        "search",
        str(tmp_path / "c.npz"),
        "--preset",
        "gardinazzi2025",
        "--k",
        "8",
        "--sparsity",
        "0.25",
        "--out",
        str(tmp_path / "g"),
    )
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "g" / "search.json").read_text())["config"]
    assert (cfg["dims"], cfg["survival"], cfg["layer_map"], cfg["alpha"], cfg["eps"]) == (
        [1],
        "other",
        "input",
        0.0,
        None,
    )
    r = run_cli(
        "search", str(tmp_path / "c.npz"), "--k", "8", "--survival", "born", "--dim", "1", "--out", str(tmp_path / "b")
    )
    cfg = json.loads((tmp_path / "b" / "search.json").read_text())["config"]
    assert r.returncode == 0 and cfg["survival"] == "born" and cfg["dims"] == [1] and cfg["alpha"] == 0.0  # the default
    r = run_cli("search", str(tmp_path / "c.npz"), "--preset", "gardinazi")
    assert r.returncode == 2 and "unknown preset" in r.stderr and "Traceback" not in r.stderr
