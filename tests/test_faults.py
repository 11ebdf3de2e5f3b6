"""Fault injection: every file topovlm writes survives concurrent writers, kills,
truncation, bit flips, swaps and planted pickles, or is refused with a clear error."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import family_samples

import topovlm as tv
from topovlm.models import tiny

HERE = Path(__file__).resolve().parent
N = 24

#: The property/fault suite: `make test-faults` runs its fast part alone (seconds per case).
pytestmark = pytest.mark.faults


def _script(body: str) -> str:
    return textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(HERE)!r})
        import numpy as np
        import topovlm as tv
        from topovlm.models import tiny
        from conftest import family_samples
        ad = tiny.tiny_causal_lm("llama", 4)
        samples = family_samples(ad, {N})
    """) + textwrap.dedent(body)


def _spawn(body: str, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _script(body), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def reference():
    ad = tiny.tiny_causal_lm("llama", 4)
    return tv.extract(ad, family_samples(ad, N), cache_dir=False, progress=False, point="residual")


def _cache_dir(root: Path) -> Path:
    (key,) = [
        p
        for p in (root / "clouds").iterdir()
        if p.is_dir() and any(p.glob("part-*")) and json.loads((p / "meta.json").read_text())["point"] == "residual"
    ]  # not the normed sibling
    return key


def _manifest(root: Path) -> list[dict]:
    return [json.loads(ln) for ln in (_cache_dir(root) / "manifest.jsonl").read_text().splitlines()]


EXTRACT = """
out = tv.extract(ad, samples, batch_size=int(sys.argv[2]), cache_dir=sys.argv[1], progress=False, point="residual")
np.save(sys.argv[3], out)
"""


@pytest.mark.parametrize("sizes", [(4, 6), (5, 5)])
@pytest.mark.slow
def test_concurrent_extractions_into_one_cache_both_return_the_clouds(tmp_path, reference, sizes):
    procs = [_spawn(EXTRACT, tmp_path / "cache", b, tmp_path / f"out{i}.npy") for i, b in enumerate(sizes)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    for i in range(len(sizes)):
        np.testing.assert_allclose(np.load(tmp_path / f"out{i}.npy"), reference, atol=1e-5)
    parts = _manifest(tmp_path / "cache")
    spans = sorted((e["start"], e["stop"]) for e in parts)
    assert spans[0][0] == 0 and spans[-1][1] == N and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    ad = tiny.tiny_causal_lm("llama", 4)
    again = tv.extract(
        ad, family_samples(ad, N), batch_size=7, cache_dir=tmp_path / "cache", progress=False, point="residual"
    )
    assert again.shape == reference.shape
    np.testing.assert_allclose(again, reference, atol=1e-5)


def test_a_manifest_whose_batches_overlap_is_reported_and_recomputed(tmp_path, reference):
    ad = tiny.tiny_causal_lm("llama", 4)
    samples = family_samples(ad, N)
    tv.extract(ad, samples, batch_size=6, cache_dir=tmp_path, progress=False, point="residual")
    key = _cache_dir(tmp_path)
    entries = _manifest(tmp_path)
    extra = dict(entries[0], start=2, stop=8)  # a second writer's batch over the same samples
    (key / "manifest.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries + [extra]))
    with pytest.warns(UserWarning, match="inconsistent.*overlaps"):
        out = tv.extract(ad, samples, batch_size=6, cache_dir=tmp_path, progress=False, point="residual")
    assert out.shape == reference.shape
    np.testing.assert_allclose(out, reference, atol=1e-5)
    spans = sorted((e["start"], e["stop"]) for e in _manifest(tmp_path))
    assert spans == [(0, 6), (6, 12), (12, 18), (18, 24)]


KILL_AT = """
def die(done, total):
    if done >= int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
tv.extract(ad, samples, batch_size=5, cache_dir=sys.argv[1], progress=False, on_batch=die, point="residual")
"""


@pytest.mark.parametrize("kill_after", [5, 15, 24])
@pytest.mark.slow
def test_a_kill_after_any_batch_resumes_to_the_same_clouds(tmp_path, reference, kill_after):
    p = _spawn(KILL_AT, tmp_path, kill_after)
    p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL
    ad = tiny.tiny_causal_lm("llama", 4)
    out = tv.extract(ad, family_samples(ad, N), batch_size=5, cache_dir=tmp_path, progress=False, point="residual")
    np.testing.assert_allclose(out, reference, atol=1e-5)


def test_a_torn_manifest_line_is_repaired_by_the_next_run_not_refused_later(tmp_path, reference):
    ad = tiny.tiny_causal_lm("llama", 4)
    samples = family_samples(ad, N)
    calls = []
    with pytest.raises(RuntimeError):

        def stop(done, total):
            if done >= 12:
                raise RuntimeError

        tv.extract(ad, samples, batch_size=6, cache_dir=tmp_path, progress=False, on_batch=stop, point="residual")
    key = _cache_dir(tmp_path)
    with open(key / "manifest.jsonl", "a") as f:
        f.write('{"file": "part-0000012-00')  # a writer killed mid-line (older versions appended)
    (key / ".part-0000012-0000018.safetensors.123.tmp").write_bytes(b"half a file")
    for _ in range(3):  # every later run works, not just the first
        out = tv.extract(
            ad,
            samples,
            batch_size=6,
            cache_dir=tmp_path,
            progress=False,
            on_batch=lambda d, n: calls.append(d),
            point="residual",
        )
        np.testing.assert_allclose(out, reference, atol=1e-5)
    assert calls == [18, 24]
    assert not list(key.glob(".*.tmp"))


@pytest.mark.parametrize("damage", ["flip", "delete", "meta", "manifest"])
def test_a_damaged_cached_batch_is_reported_and_recomputed(tmp_path, reference, damage):
    from topovlm._readback import DamagedCacheWarning

    ad = tiny.tiny_causal_lm("llama", 4)
    samples = family_samples(ad, N)
    tv.extract(ad, samples, batch_size=8, cache_dir=tmp_path, progress=False, point="residual")
    root = _cache_dir(tmp_path)
    part = sorted(root.glob("part-*"))[1]
    if damage == "flip":
        data = bytearray(part.read_bytes())
        data[-3] ^= 0x10
        part.write_bytes(bytes(data))
    elif damage == "delete":
        part.unlink()
    elif damage == "meta":
        (root / "meta.json").write_text('{"point": "residual", "n_samples": 99}')
    else:
        lines = (root / "manifest.jsonl").read_text().splitlines()
        (root / "manifest.jsonl").write_text("\n".join([lines[0], "{torn", *lines[2:]]) + "\n")
    with pytest.warns(DamagedCacheWarning, match="damaged cache entry"):
        out = tv.extract(ad, samples, batch_size=8, cache_dir=tmp_path, progress=False, point="residual")
    np.testing.assert_allclose(out, reference, atol=1e-5)


# --- saved searches ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    X = tv.drifting_clouds(9, 40, 4, seed=2)
    tv.search(X, k=6, sparsity=0.25).save(root / "a")
    tv.search(X, k=5, sparsity=0.5).save(root / "b")  # other arrays: its json does not fit a's npz
    tv.search(X, k=6, sparsity=0.25, homology="standard").save(root / "std")
    return root


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_a_saved_search_loads_back_identical(saved):
    res = tv.SearchResult.load(saved / "a")
    assert len(res.layers_to_remove) == 2 and res.config.k == 6


@pytest.mark.parametrize(
    "damage,msg",
    [
        ("truncate", "corrupted or truncated"),
        ("flip", "corrupted|content check"),
        ("swap_json", "content check"),
        ("edit_layers", "content check"),
        ("std_arrays", "content check"),
        ("text_npz", "corrupted or truncated"),
        ("json_list", "not a saved search"),
        ("missing_npz", "is missing"),
    ],
)
def test_every_damaged_saved_search_is_refused_with_a_clear_error(saved, tmp_path, damage, msg):
    d = _copy(saved / "a", tmp_path / "d")
    if damage == "truncate":
        data = (d / "search.npz").read_bytes()
        (d / "search.npz").write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data = bytearray((d / "search.npz").read_bytes())
        data[len(data) // 2] ^= 0x01
        (d / "search.npz").write_bytes(bytes(data))
    elif damage == "swap_json":
        (d / "search.json").write_bytes((saved / "b" / "search.json").read_bytes())
    elif damage == "edit_layers":
        meta = json.loads((d / "search.json").read_text())
        meta["selection"]["layers"] = [0, 99]
        (d / "search.json").write_text(json.dumps(meta))
    elif damage == "std_arrays":
        (d / "search.npz").write_bytes((saved / "std" / "search.npz").read_bytes())
    elif damage == "text_npz":
        (d / "search.npz").write_text("not a zip file at all")
    elif damage == "json_list":
        (d / "search.json").write_text("[1, 2, 3]")
    elif damage == "missing_npz":
        (d / "search.npz").unlink()
    with pytest.raises(tv.TopoVLMInputError, match=msg):
        tv.SearchResult.load(d)


def test_a_consistent_edit_with_a_recomputed_hash_is_still_range_checked(saved, tmp_path):
    from topovlm.topology.search import _content_hash

    d = _copy(saved / "a", tmp_path / "d")
    meta = json.loads((d / "search.json").read_text())
    meta.pop("content_sha256")
    meta["selection"]["layers"] = [0, 1, 2, 3, 4, 5, 6, 7]  # every layer
    with np.load(d / "search.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta["content_sha256"] = _content_hash(meta, arrays)
    (d / "search.json").write_text(json.dumps(meta))
    with pytest.raises(tv.TopoVLMInputError, match="inconsistent"):
        tv.SearchResult.load(d)


# --- training checkpoints: no pickle --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_planted_pickle_is_never_unpickled_by_training_resume(tmp_path, monkeypatch):
    import pickle

    from topovlm.training import mini as T

    config = T.TrainConfig(steps=2, batch_size=2, align_steps=1, align_batch_size=2, checkpoint_every=1, log_every=1)
    path = T._state_path("mini-llava-next", config, tmp_path / "ck")
    path.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for target in (path, path.with_suffix(".pt")):
        target.write_bytes(pickle.dumps({"params": Payload()}))
    with pytest.raises(tv.TopoVLMInputError, match="unreadable"):
        T.train(
            "mini-llava-next",
            config,
            out_dir=tmp_path / "w",
            checkpoint_dir=tmp_path / "ck",
            progress=False,
            evaluate=False,
        )
    assert not marker.exists()


def test_checkpoints_follow_cache_dir(tmp_path):
    from topovlm.training import mini as T

    config = T.recipe("mini-llava-next").config
    assert T._state_path("mini-llava-next", config, None, tmp_path).parent == tmp_path / "train"


def test_no_pickle_in_the_package():
    src = Path(tv.__file__).parent
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "weights_only=False" not in text and "import pickle" not in text, path


# --- saved models ---------------------------------------------------------------------------------------------


def test_saving_into_a_foreign_non_empty_directory_is_refused_and_overwrite_replaces_it(tmp_path):
    ad = tiny.tiny_causal_lm("llama", 4)
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors.index.json").write_text("{}")
    (out / "model-00002-of-00002.safetensors").write_bytes(b"an old shard")
    (out / "chat_template.jinja").write_text("{{ other model }}")
    with pytest.raises(tv.TopoVLMInputError, match="not empty"):
        ad.save(out)
    ad.save(out, overwrite=True)
    assert (
        not (out / "model.safetensors.index.json").exists() and not (out / "model-00002-of-00002.safetensors").exists()
    )
    template = out / "chat_template.jinja"
    assert not template.exists() or template.read_text() != "{{ other model }}"
    tv.prune(ad, [1])
    ad.save(out)  # an earlier topovlm save of the same family: replaced whole
    assert json.loads((out / "topovlm.json").read_text())["n_layers"] == 3


def test_saving_onto_the_source_directory_is_refused(tmp_path):
    tiny.tiny_causal_lm("llama", 4).save(tmp_path / "m")
    ad = tv.models.load_model(str(tmp_path / "m"))
    with pytest.raises(tv.TopoVLMInputError, match="being read"):
        ad.save(tmp_path / "m", overwrite=True)


def test_repeated_prunes_keep_every_removal_in_original_indices(tmp_path):
    ad = tiny.tiny_causal_lm("llama", 8)
    tv.prune(ad, [1, 3])  # original 1, 3 -> now 6 layers: originals [0, 2, 4, 5, 6, 7]
    ad.save(tmp_path / "p1")
    again = tv.models.load_model(str(tmp_path / "p1"))
    tv.prune(again, [0, 2])  # current 0, 2 = originals 0, 4
    again.save(tmp_path / "p2")
    info = json.loads((tmp_path / "p2" / "topovlm.json").read_text())
    assert info["pruned"]["removed_original"] == [0, 1, 3, 4]
    assert info["original_layers"] == [2, 5, 6, 7]
    assert [r["removed"] for r in info["removals"]] == [[1, 3], [0, 4]]
    assert info["pruned"]["n_layers_original"] == 8


# --- the command line checks its output before the work ---------------------------------------------------------


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "topovlm.cli", *map(str, args)], capture_output=True, text=True)


def extract_six_prompts(tmp_path, out):
    """`topovlm extract` of the saved tiny model on six prompts, cache under tmp_path."""
    args = ["--model", tmp_path / "m", "--data", tmp_path / "p.txt", "--n", 6]
    return run_cli("extract", *args, "--out", out, "--cache-dir", tmp_path / "cache")


@pytest.mark.slow
def test_extract_with_an_unusable_out_fails_before_any_forward_pass(tmp_path):
    tiny.tiny_causal_lm("llama", 4).save(tmp_path / "m")
    (tmp_path / "p.txt").write_text("\n".join(f"prompt {i}" for i in range(6)))
    (tmp_path / "afile").write_text("x")
    r = extract_six_prompts(tmp_path, tmp_path / "afile" / "c.npz")
    assert r.returncode == 2 and "is a file" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "cache" / "clouds").exists()
    r = extract_six_prompts(tmp_path, tmp_path / "r" / "noext")
    assert r.returncode == 0, r.stderr[-1500:]
    assert f"saved to {tmp_path / 'r' / 'noext.npz'}" in r.stdout and (tmp_path / "r" / "noext.npz").exists()


@pytest.mark.slow
def test_prune_refuses_a_sparsity_that_removes_every_layer_before_extracting(tmp_path):
    tiny.tiny_causal_lm("llama", 6).save(tmp_path / "m")
    r = run_cli(
        "prune",
        "--model",
        tmp_path / "m",
        "--sparsity",
        0.95,
        "--out",
        tmp_path / "p",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert r.returncode == 2 and "at most 5" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p").exists() and not (tmp_path / "cache" / "clouds").exists()


@pytest.mark.slow
def test_prune_refuses_clouds_of_another_model(tmp_path):
    tiny.tiny_causal_lm("llama", 4).save(tmp_path / "m")
    np.savez(tmp_path / "wide.npz", clouds=np.random.default_rng(0).random((5, 20, 48)))
    r = run_cli(
        "prune",
        "--model",
        tmp_path / "m",
        "--sparsity",
        0.5,
        "--clouds",
        tmp_path / "wide.npz",
        "--out",
        tmp_path / "p",
    )
    assert r.returncode == 2 and "width 48" in r.stderr
    np.savez(tmp_path / "named.npz", clouds=np.random.default_rng(0).random((5, 20, 32)), fingerprint=np.str_("0" * 32))
    r = run_cli(
        "prune",
        "--model",
        tmp_path / "m",
        "--sparsity",
        0.5,
        "--clouds",
        tmp_path / "named.npz",
        "--out",
        tmp_path / "p",
    )
    assert r.returncode == 2 and "clouds of another model" in r.stderr


@pytest.mark.parametrize(
    "make,msg",
    [
        (lambda p: np.save(p, np.zeros((3, 4, 2))), "single array"),
        (lambda p: p.write_text("just text"), "cannot read"),
        (lambda p: np.savez(p, clouds=np.zeros((3, 4, 2), complex)), "real numbers"),
    ],
)
@pytest.mark.slow
def test_search_refuses_files_that_are_not_clouds_in_one_line(tmp_path, make, msg):
    path = tmp_path / "c.npz"
    make(path)
    if not path.exists():  # np.save appended .npy
        (tmp_path / "c.npz.npy").rename(path)
    r = run_cli("search", path, "--out", tmp_path / "s")
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "allow_pickle" not in r.stderr


@pytest.mark.slow
def test_search_refuses_a_foreign_non_empty_out_before_searching(tmp_path):
    np.savez(tmp_path / "c.npz", clouds=tv.drifting_clouds(5, 30, 3))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("mine")
    r = run_cli("search", tmp_path / "c.npz", "--k", 5, "--out", tmp_path / "s")
    assert r.returncode == 2 and "not empty" in r.stderr
    r = run_cli("search", tmp_path / "c.npz", "--k", 5, "--out", tmp_path / "s", "--overwrite")
    assert r.returncode == 0, r.stderr


# --- a failed book chapter is executed again ---------------------------------------------------------------------


def test_rerun_failed_touches_exactly_the_chapters_without_an_executed_copy(tmp_path):
    pytest.importorskip("jupyter_cache")
    import jupytext
    from jupyter_cache import get_cache

    sys.path.insert(0, str(HERE.parent / "tools"))
    import rerun_failed as R

    chapters = R.chapter_sources()[:2]
    build = tmp_path / "_build"
    for src in chapters:
        page = build / "html" / src.relative_to(R.ROOT).with_suffix(".html")
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<html></html>")
    cache = get_cache(str(build / ".jupyter_cache"))
    ok = jupytext.read(chapters[0])
    cache.cache_notebook_bundle(
        __import__("jupyter_cache.base", fromlist=["CacheBundleIn"]).CacheBundleIn(ok, "x"), check_validity=False
    )
    assert R.failed_chapters(build) == [chapters[1]]


# --- second round (issue 26): keys that cover the whole model, damaged files recomputed -------------


def test_a_weight_edited_anywhere_gives_another_fingerprint_and_never_the_old_clouds(tmp_path):
    import torch

    ad = tiny.tiny_causal_lm("llama", 4, seed=7)
    samples = family_samples(ad, 6)
    before, fp = tv.extract(ad, samples, cache_dir=tmp_path, progress=False), ad.fingerprint()
    w = ad.decoder_layers[2].mlp.up_proj.weight
    with torch.no_grad():  # the middle of one matrix: not its first or last 64 values
        w[w.shape[0] // 2] *= -1
    assert ad.fingerprint() != fp
    after = tv.extract(ad, samples, cache_dir=tmp_path, progress=False)
    assert not np.allclose(after, before)
    np.testing.assert_array_equal(after, tv.extract(ad, samples, cache_dir=False, progress=False))


def test_the_fingerprint_is_kept_while_the_weights_stay_and_follows_pruning():
    ad = tiny.tiny_causal_lm("llama", 4, seed=7)
    fp = ad.fingerprint()
    kept = ad.__dict__["_fingerprint"]
    assert ad.fingerprint() == fp and ad.__dict__["_fingerprint"] is kept  # not recomputed
    assert tiny.tiny_causal_lm("llama", 4, seed=7).fingerprint() == fp  # the same weights, the same key
    tv.prune(ad, [1])
    assert ad.fingerprint() != fp


@pytest.mark.parametrize("damage", ["empty", "cut", "flip"])
def test_a_damaged_outcome_file_is_reported_and_recomputed_not_raised(tmp_path, damage):
    from topovlm._readback import DamagedCacheWarning
    from topovlm.outcome_store import OutcomeStore

    store = OutcomeStore("k", tmp_path)
    store.put((3,), np.array([True, False, True]))
    path = tmp_path / "outcomes" / "k" / "3.npz"
    data = path.read_bytes()
    if damage == "flip":  # a bit of the stored outcomes, the zip still readable
        with np.load(path) as z:
            arrays = dict(z)
        arrays["a0"] = np.array([True, True, True])
        np.savez(path, **arrays)
    else:
        path.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    with pytest.warns(DamagedCacheWarning, match="3.npz"):
        assert store.get((3,)) is None
    assert not path.exists()  # removed: the next run computes it without a second warning
    store.put((3,), np.array([True, False, True]))
    np.testing.assert_array_equal(store.get((3,)), [True, False, True])


def test_an_out_folder_above_or_inside_the_model_is_refused_even_with_overwrite(tmp_path):
    from topovlm._outputs import check_out_dir

    model = tmp_path / "runs" / "m"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    for out in (tmp_path / "runs", tmp_path / "link", model / "pruned", tmp_path / "link" / "m"):
        with pytest.raises(tv.TopoVLMInputError, match="model being read"):
            check_out_dir(out, "topovlm.json", overwrite=True, source=model)
    assert model.exists() and check_out_dir(tmp_path / "runs" / "other", "topovlm.json", source=model)


@pytest.mark.slow
def test_prune_with_out_above_the_model_keeps_the_model(tmp_path):
    from topovlm.models import tiny

    tiny.tiny_causal_lm("llama", 4).save(tmp_path / "runs" / "m")
    r = run_cli("prune", "--model", tmp_path / "runs" / "m", "--layers", "1", "--out", tmp_path / "runs", "--overwrite")
    assert r.returncode == 2 and "model being read" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "runs" / "m" / "config.json").exists()


def test_prompt_files_are_read_as_utf8_lines_with_one_line_errors(tmp_path):
    from topovlm.calibration import read_samples

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(tv.TopoVLMInputError, match="not UTF-8"):
        read_samples(bad)
    odd = tmp_path / "odd.txt"
    odd.write_bytes("\ufefffirst prompt\nsecond\x0cstill second\u2028too\r\nthird\n".encode())
    assert [s.text for s in read_samples(odd)] == ["first prompt", "second\x0cstill second\u2028too", "third"]
    for rec, msg in (({"text": 5}, "non-empty string"), ({"text": "q", "image": 3}, "must be a path")):
        f = tmp_path / "bad.jsonl"
        f.write_text(json.dumps(rec) + "\n")
        with pytest.raises(tv.TopoVLMInputError, match=msg):
            read_samples(f)


def test_a_sample_is_text_and_clips_are_bounded():
    with pytest.raises(tv.TopoVLMInputError, match="must be a string"):
        tv.models.Sample(None)
    with pytest.raises(tv.TopoVLMInputError, match="a string or a Sample"):
        tv.models.as_samples(["fine", 5])
    with pytest.raises(tv.TopoVLMInputError, match="generated clips"):
        tv.calibration.av_samples(10**8)


def test_a_training_step_with_a_non_finite_loss_stops_before_the_weights(rng):
    import torch

    from topovlm.training.loop import take_step

    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    config = tv.HealConfig(steps=4, warmup=1)
    assert np.isfinite(take_step(opt, [p], (p * 2).sum(), config, 0))
    before = p.detach().clone()
    with pytest.raises(tv.TopoVLMInputError, match="loss is nan at step 1"):
        take_step(opt, [p], (p * float("nan")).sum(), config, 1)
    assert torch.equal(p.detach(), before)


@pytest.mark.parametrize("damage", ["truncate", "flip", "nan", "short", "out_of_range"])
def test_a_damaged_kept_baseline_run_is_run_again(tmp_path, damage):
    from topovlm import baselines
    from topovlm._readback import DamagedCacheWarning, _json_digest

    ad = tiny.tiny_causal_lm("llama", 4, seed=3)
    calib = family_samples(ad, 4)
    first = baselines.run("shortgpt", ad, calib, 0.5, cache_dir=tmp_path)
    (kept,) = (tmp_path / "baselines").glob("shortgpt-*.json")
    env = json.loads(kept.read_text())
    rec = env["data"]
    if damage == "truncate":
        kept.write_text(kept.read_text()[:40])
    elif damage == "flip":  # an edit without its checksum
        rec["importance"][0] += 1.0
        kept.write_text(json.dumps(env))
    else:  # planted with a recomputed checksum: the values are still checked
        if damage == "out_of_range":
            rec["layers_to_remove"] = [1, 9]
        else:
            rec["importance"] = [float("nan")] * 4 if damage == "nan" else rec["importance"][:2]
        kept.write_text(json.dumps({"sha256": _json_digest(rec), "data": rec}))
    with pytest.warns(DamagedCacheWarning, match="shortgpt-"):
        again = baselines.run("shortgpt", ad, calib, 0.5, cache_dir=tmp_path)
    np.testing.assert_allclose(again.importance, first.importance)
    assert again.layers_to_remove == first.layers_to_remove
    assert np.isfinite(json.loads(kept.read_text())["data"]["importance"]).all()  # rewritten


# --- heal checkpoints: checked before a resumed run uses them -----------------------------------------------


def _healed_checkpoint(tmp_path, config):
    from topovlm.training.heal import checkpoint_path

    texts = [f"the cat number {i} sat on the mat." for i in range(8)]
    ad = tiny.tiny_causal_lm("llama", 4, seed=5)
    tv.heal(ad, config, data=texts, cache_dir=tmp_path, progress=False)
    fresh = tiny.tiny_causal_lm("llama", 4, seed=5)
    return fresh, texts, checkpoint_path(fresh, config, [tv.models.Sample(t) for t in texts], tmp_path)


def _rewrite(path, edit, rehash: bool):
    """Load a heal checkpoint's tensors and metadata, ``edit(tensors, meta)``, save back
    (with a recomputed checksum when ``rehash``: a consistent plant, not a flip)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from topovlm._readback import arrays_digest

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path))
    edit(tensors, meta)
    if rehash:
        meta["sha256"] = arrays_digest(tensors, meta["state"] + meta["opt"])
    save_file(tensors, str(path), metadata=meta)


def _first_lora(tensors):
    return next(k for k in sorted(tensors) if k.startswith("param/") and "lora_B" in k)


def _nan(tensors, meta):
    tensors[_first_lora(tensors)][0, 0] = float("nan")


def _flip(tensors, meta):
    k = _first_lora(tensors)
    tensors[k] = tensors[k].clone()
    tensors[k].view(-1).view(__import__("torch").int32)[0] ^= 1 << 20


def _planted_step(tensors, meta):
    state = json.loads(meta["state"])
    state["step"] = 1
    meta["state"] = json.dumps(state)


def _rank4(tensors, meta):
    for k in [k for k in tensors if "lora_A" in k]:
        tensors[k] = tensors[k][:4].clone()


@pytest.mark.parametrize(
    "edit,rehash,msg",
    [
        (_flip, False, "checksum mismatch"),
        (_nan, False, "checksum mismatch"),
        (_nan, True, "NaN or inf"),
        (_planted_step, False, "checksum mismatch"),
        (_planted_step, True, "step 1 with 4 data digests"),
        (_rank4, True, r"lora_A.* is \(4, 32\)"),
    ],
)
def test_a_damaged_heal_checkpoint_is_refused_with_the_command_that_starts_over(tmp_path, edit, rehash, msg):
    import torch

    from topovlm._readback import DamagedCheckpointError

    config = tv.HealConfig(steps=4, batch_size=2, warmup=1, checkpoint_every=2, n_train=8, rank=8)
    fresh, texts, path = _healed_checkpoint(tmp_path, config)
    _rewrite(path, edit, rehash)
    before = {n: p.detach().clone() for n, p in fresh.model.state_dict().items()}
    with pytest.raises(DamagedCheckpointError, match=msg) as err:
        tv.heal(fresh, config, data=texts, cache_dir=tmp_path, progress=False)
    assert "--fresh" in str(err.value) and "\n" not in str(err.value)
    after = fresh.model.state_dict()  # handed back as it was: no LoRA left, no weight changed
    assert set(after) == set(before) and all(torch.equal(after[n], before[n]) for n in before)
    report = tv.heal(fresh, config, data=texts, cache_dir=tmp_path, resume=False, progress=False)
    assert report.resumed_from == 0 and np.isfinite(report.last_loss)


# --- a cache that cannot be written: one line -----------------------------------------------------------------


def test_a_cache_that_cannot_be_created_or_fills_up_is_one_line(tmp_path, monkeypatch):
    import errno

    import safetensors.torch
    from safetensors import SafetensorError

    from topovlm.outcome_store import OutcomeStore

    ad = tiny.tiny_causal_lm("llama", 4)
    samples = family_samples(ad, 6)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(tv.TopoVLMInputError, match="cannot write to .*file.*--cache-dir") as err:
        tv.extract(ad, samples, cache_dir=tmp_path / "file" / "cache", progress=False)
    assert "\n" not in str(err.value)

    def full(*args, **kw):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, message: "No space left on device" })')

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(tv.TopoVLMInputError, match="No space left on device"):
        tv.extract(ad, samples, batch_size=3, cache_dir=tmp_path / "c", progress=False)
    assert not list((tmp_path / "c").rglob("*.tmp"))  # no half-written batch left behind

    def no_space(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", no_space)
    with pytest.raises(tv.TopoVLMInputError, match="cannot write to .*outcomes.*No space left"):
        OutcomeStore("k", tmp_path / "c").put((1,), np.zeros(3))


def cli(*args):
    """`topovlm ...` in this process (typer's runner): exit code and what it printed."""
    from typer.testing import CliRunner

    from topovlm.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def test_values_too_large_for_distances_are_refused_not_scored_as_zero(tmp_path):
    X = [x.astype(np.float64) for x in tv.drifting_clouds(6, 30, 4, seed=1)]
    with pytest.raises(tv.TopoVLMInputError, match=r"cloud 2 holds a value of size 2.7\de\+300"):
        tv.search([x if i != 2 else x * 1e300 for i, x in enumerate(X)], k=5, sparsity=0.2)
    np.savez(tmp_path / "c.npz", clouds=np.asarray(X) * 1e300)
    code, out = cli("search", tmp_path / "c.npz", "--k", 5, "--sparsity", 0.2, "--out", tmp_path / "r")
    assert code == 2 and "squared distances overflow" in out and "Traceback" not in out
    assert len(tv.search(np.asarray(X) * 1e25, k=5, sparsity=0.2).layers_to_remove) == 1  # large but safe
    with pytest.raises(tv.TopoVLMInputError, match=r"alpha must be in \[0, 100\]"):
        tv.SearchConfig(alpha=1e300)


# --- load-time consistency: config vs weights, topovlm.json vs the checkpoint ---------------------------------


@pytest.fixture(scope="module")
def saved_pruned(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved_pruned")
    ad = tiny.tiny_causal_lm("llama", 6)
    ad.save(root / "full")
    tv.prune(ad, [1, 2])
    ad.save(root / "pruned")
    return root


def _edited_copy(src: Path, dst: Path, file: str, edit) -> Path:
    import shutil

    shutil.copytree(src, dst)
    d = json.loads((dst / file).read_text())
    edit(d)
    (dst / file).write_text(json.dumps(d))
    return dst


@pytest.mark.parametrize(
    "edit,msg",
    [
        (
            lambda c: c.update(num_hidden_layers=8),
            r"says 8 decoder layers but the weights hold none for layer\(s\) \[6, 7\]",
        ),
        (lambda c: c.update(num_hidden_layers=4), r"the weights hold layer\(s\) \[4, 5\] that config.json"),
        (lambda c: c.update(hidden_size=48), "disagree on tensor shapes"),
    ],
)
def test_a_config_that_disagrees_with_its_weights_is_refused(saved_pruned, tmp_path, edit, msg):
    from topovlm.models import load_model

    d = _edited_copy(saved_pruned / "full", tmp_path / "m", "config.json", edit)
    with pytest.raises(tv.TopoVLMInputError, match=msg):
        load_model(str(d))
    code, out = cli("prune", "--model", d, "--layers", 1, "--out", tmp_path / "out")
    assert code == 2 and "config" in out and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "original,msg",
    [
        ([0, 3, 3, 5], "not increasing, or repeats"),
        ([0, 3, 4, 9], "reaches beyond the 6 layers"),
        ([0, 3, 4], "lists 3 layers, the checkpoint has 4"),
        ([0, 2, 4, 5], r"are not the 6 layers of the original model, once each"),
    ],
)
def test_a_planted_removal_record_is_refused_not_pruned_on(saved_pruned, tmp_path, original, msg):
    from topovlm.models import load_model

    assert load_model(str(saved_pruned / "pruned")).meta["original_layers"] == [0, 3, 4, 5]
    d = _edited_copy(
        saved_pruned / "pruned", tmp_path / "m", "topovlm.json", lambda t: t.update(original_layers=original)
    )
    with pytest.raises(tv.TopoVLMInputError, match=msg):
        load_model(str(d))


# --- output folders: symlinks followed, leftovers of a killed save cleaned --------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_symlinked_out_is_followed_and_a_killed_saves_leftovers_are_cleaned(tmp_path):
    from topovlm.models import load_model

    ad = tiny.tiny_causal_lm("llama", 4)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    ad.save(tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "config.json").exists()

    pid = _dead_pid()
    for kind in ("tmp", "old"):  # what a SIGKILL during a save leaves: each a loadable model folder
        (tmp_path / f".real.{kind}-{pid}-abc123").mkdir()
        (tmp_path / f".real.{kind}-{pid}-abc123" / "config.json").write_text("{}")
    live = tmp_path / f".real.tmp-{os.getpid()}-000000"  # a writer that is still running: left alone
    live.mkdir()
    tv.prune(ad, [1])
    ad.save(tmp_path / "link")
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".real."))
    assert left == [live.name]
    assert load_model(str(tmp_path / "link")).n_layers == 3


def test_a_save_killed_between_its_renames_gets_the_older_model_back_first(tmp_path):
    from topovlm._outputs import replace_dir

    target = tmp_path / "m"
    pid = _dead_pid()
    old = tmp_path / f".m.old-{pid}-abc123"  # the kill came after `m` was moved aside
    old.mkdir()
    (old / "weights").write_text("older")
    with pytest.raises(RuntimeError):  # the next write is interrupted too: the older model must survive it

        def fails(tmp):
            raise RuntimeError("interrupted")

        replace_dir(target, fails)
    assert (target / "weights").read_text() == "older" and not old.exists()
    replace_dir(target, lambda tmp: (tmp / "weights").write_text("newer"))
    assert (target / "weights").read_text() == "newer"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_prune_matches_clouds_to_the_model_by_its_weights_not_its_path(tmp_path):
    import shutil

    tiny.tiny_causal_lm("llama", 4, seed=1).save(tmp_path / "m")
    (tmp_path / "p.txt").write_text("\n".join(f"prompt number {i} about things" for i in range(20)))
    code, out = cli(
        "extract", "--model", tmp_path / "m", "--data", tmp_path / "p.txt", "--n", 20,
        "--out", tmp_path / "c.npz", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    assert code == 0, out
    shutil.copytree(tmp_path / "m", tmp_path / "moved")  # the same weights elsewhere: accepted
    args = ["--sparsity", 0.5, "--k", 5, "--clouds", tmp_path / "c.npz", "--cache-dir", tmp_path / "cache"]
    code, out = cli("prune", "--model", tmp_path / "moved", *args, "--out", tmp_path / "p1")
    assert code == 0, out
    shutil.rmtree(tmp_path / "m")  # other weights at the same path: refused
    tiny.tiny_causal_lm("llama", 4, seed=2).save(tmp_path / "m")
    code, out = cli("prune", "--model", tmp_path / "m", *args, "--out", tmp_path / "p2")
    assert code == 2 and "clouds of another model" in out and not (tmp_path / "p2").exists()


def test_a_mistyped_local_path_is_reported_at_once_not_tried_on_a_hub(tmp_path, monkeypatch):
    import time

    import transformers

    from topovlm.models import load_model

    tiny.tiny_causal_lm("llama", 4).save(tmp_path / "runs" / "model")
    monkeypatch.chdir(tmp_path)
    assert load_model("runs/model").n_layers == 4  # the folder as written: found

    def no_hub(*args, **kw):
        raise AssertionError("a hub lookup for a local path")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", no_hub)
    t0 = time.perf_counter()
    for name, msg in (("runs/modle", "did you mean model"), (str(tmp_path / "runs" / "modl"), "did you mean model"),
                      ("./nothing", "no such checkpoint directory")):  # fmt: skip
        with pytest.raises(tv.TopoVLMInputError, match=msg):
            load_model(name)
    assert time.perf_counter() - t0 < 5


def test_a_cached_batch_planted_with_its_checksum_but_the_wrong_shape_is_recomputed(tmp_path, reference):
    import torch
    from safetensors.torch import save_file

    from topovlm._readback import DamagedCacheWarning, file_digest

    ad = tiny.tiny_causal_lm("llama", 4)
    samples = family_samples(ad, N)
    tv.extract(ad, samples, batch_size=8, cache_dir=tmp_path, progress=False, point="residual")
    root = _cache_dir(tmp_path)
    part = sorted(root.glob("part-*"))[1]
    save_file({"clouds": torch.zeros(5, 7, 32)}, str(part))  # 7 samples where the batch holds 8
    lines = [json.loads(ln) for ln in (root / "manifest.jsonl").read_text().splitlines()]
    for e in lines:
        if e["file"] == part.name:
            e["sha256"] = file_digest(part)
    (root / "manifest.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    with pytest.warns(DamagedCacheWarning, match=r"holds float32 \[5, 7, 32\]"):
        out = tv.extract(ad, samples, batch_size=8, cache_dir=tmp_path, progress=False, point="residual")
    np.testing.assert_allclose(out, reference, atol=1e-5)
