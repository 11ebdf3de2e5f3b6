"""The streaming cache: resumable, keyed, verified."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import family_samples

import topovlm as tv
from topovlm.models import tiny


class Stop(Exception):
    pass


def stop_after(k):
    def on_batch(done, total):
        if done >= k:
            raise Stop

    return on_batch


def cache_dirs(root, point="residual"):
    """The extraction caches under ``root`` of one point (a pass also fills the other point's)."""
    return [
        d
        for d in sorted((root / "clouds").iterdir())
        if (d / "meta.json").exists() and json.loads((d / "meta.json").read_text())["point"] == point
    ]


@pytest.fixture
def ad():
    return tiny.tiny_causal_lm("llama", 4)


def test_interrupted_extraction_resumes_to_identical_clouds(ad, tmp_path):
    samples = family_samples(ad, 10)
    reference = tv.extract(ad, samples, batch_size=3, cache_dir=tmp_path / "a", progress=False, point="residual")
    with pytest.raises(Stop):
        tv.extract(
            ad,
            samples,
            batch_size=3,
            cache_dir=tmp_path / "b",
            progress=False,
            on_batch=stop_after(6),
            point="residual",
        )
    (key,) = cache_dirs(tmp_path / "b")
    assert len((key / "manifest.jsonl").read_text().splitlines()) == 2
    seen = []
    resumed = tv.extract(
        ad,
        samples,
        batch_size=3,
        cache_dir=tmp_path / "b",
        progress=False,
        on_batch=lambda d, n: seen.append(d),
        point="residual",
    )
    assert seen == [9, 10]  # only the missing batches were computed
    np.testing.assert_array_equal(resumed, reference)


def test_finished_extraction_is_read_back_not_recomputed(ad, tmp_path):
    samples = family_samples(ad, 5)
    first = tv.extract(ad, samples, batch_size=2, cache_dir=tmp_path, progress=False, point="residual")
    calls = []
    again = tv.extract(
        ad,
        samples,
        batch_size=2,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: calls.append(d),
        point="residual",
    )
    assert calls == [] and np.array_equal(first, again)


def test_a_different_batch_size_reuses_the_finished_batches(ad, tmp_path):
    samples = family_samples(ad, 9)
    with pytest.raises(Stop):
        tv.extract(
            ad, samples, batch_size=2, cache_dir=tmp_path, progress=False, on_batch=stop_after(4), point="residual"
        )
    seen = []
    out = tv.extract(
        ad,
        samples,
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: seen.append(d),
        point="residual",
    )
    assert seen == [8, 9] and out.shape == (5, 9, 32)
    np.testing.assert_allclose(
        out, tv.extract(ad, samples, cache_dir=False, progress=False, point="residual"), atol=1e-5
    )


KILL = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from topovlm.models import tiny
import topovlm as tv
from conftest import family_samples
ad = tiny.tiny_causal_lm("llama", 4)
def die(done, total):
    if done >= 6:
        os.kill(os.getpid(), signal.SIGKILL)   # no cleanup, no exception handler
tv.extract(ad, family_samples(ad, 10), batch_size=3, cache_dir=sys.argv[1], progress=False, on_batch=die, point="residual")
"""


@pytest.mark.slow
def test_killed_process_resumes_to_identical_clouds(ad, tmp_path):
    import os

    script = tmp_path / "kill.py"
    script.write_text(KILL)
    tests_dir = os.path.dirname(__file__)
    r = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "c"), tests_dir],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": tests_dir},
    )
    assert r.returncode == -9, r.stderr[-1500:]
    samples = family_samples(ad, 10)
    seen = []
    resumed = tv.extract(
        ad,
        samples,
        batch_size=3,
        cache_dir=tmp_path / "c",
        progress=False,
        on_batch=lambda d, n: seen.append(d),
        point="residual",
    )
    assert seen == [9, 10]
    np.testing.assert_array_equal(
        resumed, tv.extract(ad, samples, batch_size=3, cache_dir=tmp_path / "ref", progress=False, point="residual")
    )


def test_corrupted_cache_file_is_detected_reported_and_recomputed(ad, tmp_path):
    from topovlm._readback import DamagedCacheWarning

    samples = family_samples(ad, 4)
    ref = tv.extract(ad, samples, batch_size=2, cache_dir=tmp_path, progress=False, point="residual")
    (key,) = cache_dirs(tmp_path)
    part = sorted(key.glob("part-*.safetensors"))[0]
    data = bytearray(part.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the tensor data
    part.write_bytes(bytes(data))
    with pytest.warns(DamagedCacheWarning, match="checksum mismatch"):
        again = tv.extract(ad, samples, batch_size=2, cache_dir=tmp_path, progress=False, point="residual")
    np.testing.assert_array_equal(again, ref)  # the damaged batch computed again, not returned
    assert part.read_bytes() != bytes(data)


def test_torn_manifest_line_means_batch_not_done(ad, tmp_path):
    samples = family_samples(ad, 4)
    ref = tv.extract(ad, samples, batch_size=2, cache_dir=tmp_path, progress=False, point="residual")
    (key,) = cache_dirs(tmp_path)
    m = key / "manifest.jsonl"
    m.write_text(m.read_text()[:-20])  # killed while appending the last line
    seen = []
    again = tv.extract(
        ad,
        samples,
        batch_size=2,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: seen.append(d),
        point="residual",
    )
    assert seen == [4] and np.array_equal(again, ref)


def test_cache_key_depends_on_model_data_and_token(tmp_path):
    a, b = tiny.tiny_causal_lm("llama", 4, seed=0), tiny.tiny_causal_lm("llama", 4, seed=1)
    s = family_samples(a, 4)
    tv.extract(a, s, cache_dir=tmp_path, progress=False, point="residual")
    tv.extract(b, s, cache_dir=tmp_path, progress=False, point="residual")
    tv.extract(a, s[:3], cache_dir=tmp_path, progress=False, point="residual")
    tv.extract(a, s, token="mean", cache_dir=tmp_path, progress=False, point="residual")
    tv.extract(a, s, cache_dir=tmp_path, progress=False, point="residual")  # same as the first: no new entry
    assert len(cache_dirs(tmp_path)) == 4
    metas = [json.loads((d / "meta.json").read_text()) for d in cache_dirs(tmp_path)]
    assert {m["token"] for m in metas} == {"ret", "mean"}


def test_float16_storage_halves_the_cache(ad, tmp_path):
    s = family_samples(ad, 4)
    c32 = tv.extract(ad, s, cache_dir=tmp_path / "a", progress=False, point="residual")
    c16 = tv.extract(ad, s, storage="float16", cache_dir=tmp_path / "b", progress=False, point="residual")
    again = tv.extract(ad, s, storage="float16", cache_dir=tmp_path / "b", progress=False, point="residual")
    assert c16.dtype == np.float32 and np.array_equal(c16, again)
    np.testing.assert_allclose(c16, c32, rtol=2e-3, atol=2e-3)
    size = lambda d: sum(p.stat().st_size for p in d.rglob("part-*"))
    assert size(tmp_path / "b") < 0.6 * size(tmp_path / "a")


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"token": "first"}, "token must be one of"),
        ({"storage": "int8"}, "storage must be one of"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_bad_extraction_arguments(ad, kwargs, msg):
    with pytest.raises(tv.TopoVLMInputError, match=msg):
        tv.extract(ad, ["a prompt"], cache_dir=False, progress=False, **kwargs)


def test_empty_calibration_set_is_a_clear_error(ad, tmp_path):
    with pytest.raises(tv.TopoVLMInputError, match="calibration set is empty"):
        tv.extract(ad, [], cache_dir=False, point="residual")
    with pytest.raises(tv.TopoVLMInputError, match="empty instruction"):
        tv.extract(ad, ["fine", "   "], cache_dir=False, point="residual")
    (tmp_path / "p.txt").write_text("\n\n")
    with pytest.raises(tv.TopoVLMInputError, match="is empty"):
        tv.calibration.read_samples(tmp_path / "p.txt")


@pytest.mark.parametrize("family", ["causal-lm", "llava-next", "videollama2"])
def test_normed_point_reads_each_layer_norm_and_the_final_norm(family):
    ad = {
        "causal-lm": lambda: tiny.tiny_causal_lm("llama", 4),
        "llava-next": lambda: tiny.tiny_llava_next(4),
        "videollama2": lambda: tiny.tiny_videollama2(4),
    }[family]()
    samples = family_samples(ad, 5)
    normed = tv.extract(ad, samples, point="normed", batch_size=5, cache_dir=False, progress=False)
    residual = tv.extract(ad, samples, batch_size=5, cache_dir=False, progress=False, point="residual")
    assert normed.shape == residual.shape == (ad.n_layers + 1, 5, normed.shape[2])
    # RMSNorm with its initial unit gain: every point has root-mean-square 1
    rms = np.sqrt((normed.astype(np.float64) ** 2).mean(axis=2))
    np.testing.assert_allclose(rms, 1.0, atol=1e-2)  # up to the norm's epsilon
    assert not np.allclose(normed[1:-1], residual[1:-1])


def test_normed_point_without_the_norm_is_a_clear_error():
    ad = tiny.tiny_causal_lm("llama", 2)
    for layer in ad.decoder_layers:
        del layer.post_attention_layernorm
    with pytest.raises(tv.TopoVLMInputError, match="post_attention_layernorm"):
        tv.extract(ad, family_samples(ad, 3), point="normed", cache_dir=False, progress=False)


def test_point_is_part_of_the_cache_key(ad, tmp_path):
    samples = family_samples(ad, 4)
    a = tv.extract(ad, samples, cache_dir=tmp_path, progress=False, point="residual")
    b = tv.extract(ad, samples, point="normed", cache_dir=tmp_path, progress=False)
    assert len(cache_dirs(tmp_path)) == len(cache_dirs(tmp_path, "normed")) == 1 and not np.allclose(a, b)


def test_a_shorter_calibration_set_is_read_off_a_longer_extraction(ad, tmp_path):
    samples = family_samples(ad, 12)
    full = tv.extract(ad, samples, batch_size=4, cache_dir=tmp_path, progress=False, point="residual")
    calls = []
    head = tv.extract(
        ad,
        samples[:8],
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: calls.append(d),
        point="residual",
    )
    assert calls == [] and np.array_equal(head, full[:, :8])
    other = family_samples(ad, 13)[1:9]  # not a prefix: computed
    tv.extract(
        ad,
        other,
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: calls.append(d),
        point="residual",
    )
    assert calls == [4, 8]
    lasts = []  # another token: computed
    tv.extract(
        ad,
        samples[:8],
        token="last",
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: lasts.append(d),
        point="residual",
    )
    assert lasts == [4, 8]


def test_a_longer_calibration_set_computes_only_what_a_shorter_extraction_lacks(ad, tmp_path):
    samples = family_samples(ad, 12)
    tv.extract(ad, samples[:8], batch_size=4, cache_dir=tmp_path, progress=False, point="residual")
    calls = []
    longer = tv.extract(
        ad,
        samples,
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: calls.append(d),
        point="residual",
    )
    assert calls == [12]  # only the last batch ran
    np.testing.assert_array_equal(
        longer, tv.extract(ad, samples, batch_size=4, cache_dir=False, progress=False, point="residual")
    )
    normed = []  # the same pass filled the other point, seeded from the shorter set's normed cache too
    tv.extract(
        ad,
        samples,
        point="normed",
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: normed.append(d),
    )
    assert normed == []
    unrelated = []  # a set that does not start with the extracted one: computed whole
    tv.extract(
        ad,
        family_samples(ad, 13)[1:],
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: unrelated.append(d),
        point="residual",
    )
    assert unrelated == [4, 8, 12]


def test_an_unfinished_shorter_extraction_seeds_nothing(ad, tmp_path):
    samples = family_samples(ad, 12)
    with pytest.raises(Stop):
        tv.extract(
            ad, samples[:8], batch_size=4, cache_dir=tmp_path, progress=False, on_batch=stop_after(4), point="residual"
        )
    calls = []
    longer = tv.extract(
        ad,
        samples,
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: calls.append(d),
        point="residual",
    )
    assert calls == [4, 8, 12]
    np.testing.assert_array_equal(
        longer, tv.extract(ad, samples, batch_size=4, cache_dir=False, progress=False, point="residual")
    )


def test_one_pass_fills_the_other_points_cache_too(ad, tmp_path):
    samples = family_samples(ad, 8)
    residual = tv.extract(ad, samples, batch_size=4, cache_dir=tmp_path, progress=False, point="residual")
    calls = []
    normed = tv.extract(
        ad,
        samples,
        point="normed",
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: calls.append(d),
    )
    assert calls == []  # no forward pass: the residual pass filled it
    np.testing.assert_array_equal(normed, tv.extract(ad, samples, point="normed", cache_dir=False, progress=False))
    np.testing.assert_array_equal(residual, tv.extract(ad, samples, cache_dir=False, progress=False, point="residual"))


def test_an_interrupted_pass_leaves_both_points_resumable(ad, tmp_path):
    samples = family_samples(ad, 12)
    with pytest.raises(Stop):
        tv.extract(
            ad, samples, batch_size=4, cache_dir=tmp_path, progress=False, on_batch=stop_after(4), point="residual"
        )
    calls = []
    normed = tv.extract(
        ad,
        samples,
        point="normed",
        batch_size=4,
        cache_dir=tmp_path,
        progress=False,
        on_batch=lambda d, n: calls.append(d),
    )
    assert calls == [8, 12]  # the first batch came from the interrupted pass
    np.testing.assert_array_equal(normed, tv.extract(ad, samples, point="normed", cache_dir=False, progress=False))


def test_a_busy_other_point_cache_is_left_alone(ad, tmp_path):
    from filelock import FileLock

    from topovlm.extract import ExtractConfig, cache_key, prefix_fingerprints

    samples = family_samples(ad, 4)
    key, _ = cache_key(ad, samples, ExtractConfig(point="normed"), prefix_fingerprints(samples))
    (tmp_path / "clouds" / key).mkdir(parents=True)
    with FileLock(str(tmp_path / "clouds" / key / ".lock")):
        tv.extract(ad, samples, batch_size=4, cache_dir=tmp_path, progress=False, point="residual")
    assert not (tmp_path / "clouds" / key / "manifest.jsonl").exists()


def test_a_model_without_the_normed_point_still_caches_its_residual_clouds(tmp_path):
    ad = tiny.tiny_causal_lm("llama", 2)
    ad.layer_norm_attr = "no_such_norm"
    tv.extract(ad, family_samples(ad, 3), cache_dir=tmp_path, progress=False, point="residual")
    assert len(list((tmp_path / "clouds").iterdir())) == 1 == len(cache_dirs(tmp_path))


def test_reading_a_finished_cache_touches_no_other_point_cache(ad, tmp_path):
    import shutil

    samples = family_samples(ad, 4)
    tv.extract(ad, samples, batch_size=4, cache_dir=tmp_path, progress=False, point="residual")
    (normed,) = cache_dirs(tmp_path, "normed")
    shutil.rmtree(normed)
    tv.extract(ad, samples, batch_size=4, cache_dir=tmp_path, progress=False, point="residual")  # nothing to compute
    assert not normed.exists() and len(cache_dirs(tmp_path)) == 1
