import json
import subprocess
import sys

import numpy as np

import topovlm as tv


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "topovlm.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_search_command_writes_a_loadable_result(tmp_path):
    np.savez(tmp_path / "c.npz", clouds=tv.drifting_clouds(9, 60, 4, seed=1))
    r = run_cli("search", str(tmp_path / "c.npz"), "--k", "8", "--sparsity", "0.25", "--out", str(tmp_path / "res"))
    assert r.returncode == 0, r.stderr
    assert "remove 2 of 8 decoder layers" in r.stdout
    res = tv.SearchResult.load(tmp_path / "res")
    assert json.loads((tmp_path / "res" / "search.json").read_text())["config"]["k"] == 8
    assert len(res.layers_to_remove) == 2


def test_search_command_bad_input_is_one_line_error(tmp_path):
    r = run_cli("search", str(tmp_path / "missing.npz"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    np.savez(tmp_path / "c.npz", clouds=tv.drifting_clouds(4, 10, 3))
    r = run_cli("search", str(tmp_path / "c.npz"), "--k", "20")
    assert r.returncode == 2 and "smaller than the number of points" in r.stderr
    np.savez(tmp_path / "d.npz", other=np.zeros(3))
    r = run_cli("search", str(tmp_path / "d.npz"))
    assert r.returncode == 2 and "no array named 'clouds'" in r.stderr
