"""Calibration forward pass: hidden-state clouds at the [RET] token.

For N calibration samples and a decoder with L layers, cloud 0 is
the input of decoder layer 0 (the embeddings, with image/video/audio features
merged in) and cloud i+1 is the output of decoder layer i. Hooks on the
decoder layers keep only the chosen position of each sample, never the full
(B, T, d) hidden states of every layer, and the LM head is skipped
(``logits_to_keep=1``).

Each batch is written to an on-disk cache as soon as it is computed
(safetensors, atomically renamed, with its SHA-256 in an append-only
manifest), keyed by the model's weights, the calibration data, the token
choice and the storage dtype. Rerunning after an interruption reuses every
finished batch, recomputes the rest with the same batch boundaries, and
returns exactly what an uninterrupted run returns. A cache file whose checksum
does not match is reported, never reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from ._cache import default_cache_dir
from ._checks import TopoVLMInputError, check_choice
from ._readback import discard, file_digest, report, writing
from .forward import LayerTaps, ModuleTaps
from .models.base import RET_MARKER, TOKEN_CHOICES, Adapter
from .samples import Sample, as_samples

CACHE_VERSION = 1
LOCK_NAME = ".lock"
PREFIX_FILE = "prefixes.json"  # fingerprint of every prefix of the calibration set (reuse by shorter sets)
POINTS = ("residual", "normed")


@dataclass(frozen=True)
class ExtractConfig:
    """What defines a set of clouds (everything here is part of the cache key)."""

    token: str = "ret"  # paper: the [RET] token; "last" / "mean" are the alternatives
    point: str = "normed"  # "normed": each layer's post-attention norm + the final norm (predecessor; the
    # book's dev rule chose it with the rest of the predecessor's reading); "residual": the residual stream at
    # each layer boundary (ours, first)
    marker: str = RET_MARKER  # text appended for token="ret" (model's own vocabulary, nothing added)
    storage: str = "float32"  # "float16" halves the cache (clouds are returned as float32 either way)

    def __post_init__(self):
        check_choice(self.token, TOKEN_CHOICES, "token")
        check_choice(self.point, POINTS, "point")
        check_choice(self.storage, ("float32", "float16"), "storage")
        if self.token == "ret" and not self.marker:
            raise TopoVLMInputError("token='ret' needs a non-empty marker")


def prefix_fingerprints(samples: Sequence[Sample]) -> list[str]:
    """Fingerprint of every prefix of the calibration set: ``out[i]`` stands for ``samples[:i + 1]``."""
    data, out = hashlib.sha256(), []
    for s in samples:
        data.update(s.fingerprint().encode())
        out.append(data.hexdigest()[:16])
    return out


def cache_key(
    adapter: Adapter, samples: Sequence[Sample], config: ExtractConfig, prefixes: list[str] | None = None
) -> tuple[str, dict]:
    """Key of the cache directory and the metadata it stands for (``prefixes``:
    :func:`prefix_fingerprints` of the samples, when already computed)."""
    prefixes = prefix_fingerprints(samples) if prefixes is None else prefixes
    meta = {
        "version": CACHE_VERSION,
        "model": adapter.name,
        "family": adapter.family,
        "model_fingerprint": adapter.fingerprint(),
        "data_fingerprint": prefixes[-1] if prefixes else "",
        "n_samples": len(samples),
        "n_layers": adapter.n_layers,
        **asdict(config),
    }
    return _meta_key(meta), meta


def _meta_key(meta: dict) -> str:
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]


class _AtToken:
    """Reduce (B, T, d) to the (B, d) point of each sample for one token choice."""

    def __init__(self, token: str):
        self.token = token
        self.n_pad = None  # (B,) right-padding length of each sample, set per batch

    def __call__(self, h):
        import torch

        B, T, _ = h.shape
        last = T - 1 - self.n_pad.to(h.device)  # counted from the end: robust to models
        if self.token == "mean":  # that insert media features (VideoLLaMA2)
            pos = torch.arange(T, device=h.device)[None, :]
            mask = (pos <= last[:, None]).to(h.dtype)
            out = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        else:
            out = h[torch.arange(B, device=h.device), last]
        return out.float().cpu()


def _n_pad(attention_mask):
    """Right-padding length per sample; refuses left-padded batches."""
    import torch

    am = attention_mask.long()
    lengths = am.sum(1)
    expected = (torch.arange(am.shape[1])[None, :] < lengths[:, None]).long()
    if not torch.equal(am.cpu(), expected):
        raise TopoVLMInputError("the adapter's batch is not right-padded; extraction needs right padding")
    return am.shape[1] - lengths


class CloudCache:
    """The streaming on-disk cache of one extraction (a directory).

    One writer at a time: :meth:`locked` holds an exclusive file lock in the
    directory (a second extraction of the same clouds waits, then reuses
    every batch the first one wrote). Batch files get unique temporary names
    and are renamed into place; the manifest is rewritten whole and renamed,
    so a kill at any point leaves either the old or the new manifest.
    """

    def __init__(self, root: Path, meta: dict):
        self.root = root
        self.meta = meta
        self.manifest = root / "manifest.jsonl"
        self._entries: list[dict] | None = None
        self._verified: dict[str, tuple] = {}  # file -> (sha256, size, mtime) checked by this instance

    def locked(self, timeout: float = -1):
        """The cache's exclusive lock (a context manager); says so when it has to wait."""

        with writing(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / LOCK_NAME))

        @contextlib.contextmanager
        def hold():
            try:
                with writing(self.root):
                    lock.acquire(timeout=0)
            except Timeout:
                print(f"[topovlm] waiting for another extraction into {self.root}", file=sys.stderr, flush=True)
                lock.acquire(timeout=timeout)
            try:
                yield self
            finally:
                lock.release()

        return hold()

    def try_lock(self):
        """The cache's lock if it is free now (the caller releases it), else None."""

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / LOCK_NAME))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock

    def open(self, fresh: bool = False) -> CloudCache:
        with writing(self.root):
            return self._open(fresh)

    def _open(self, fresh: bool) -> CloudCache:
        self.root.mkdir(parents=True, exist_ok=True)
        if fresh:  # everything but the lock, which we hold
            for f in self.root.iterdir():
                if f.name != LOCK_NAME:
                    shutil.rmtree(f) if f.is_dir() else f.unlink()
        for stale in self.root.glob(".*.tmp"):  # a writer killed mid-write (we hold the lock: nobody writes now)
            stale.unlink(missing_ok=True)
        meta_file = self.root / "meta.json"
        if meta_file.exists():
            try:
                stored = json.loads(meta_file.read_text())
                why = "" if stored == self.meta else "it describes other inputs than its key"
            except (json.JSONDecodeError, UnicodeDecodeError):
                why = "unreadable"
            if why:  # nothing in this folder can be trusted: computed again
                report(meta_file, why)
                self.clear()
                (self.root / PREFIX_FILE).unlink(missing_ok=True)
                meta_file.unlink()
        if not meta_file.exists():
            _atomic_write(meta_file, json.dumps(self.meta, indent=2))
        return self

    def _read_manifest(self) -> list[dict]:
        if not self.manifest.exists():
            return []
        lines = self.manifest.read_text().split("\n")
        entries = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                entries.append(
                    {
                        "file": str(e["file"]),
                        "start": int(e["start"]),
                        "stop": int(e["stop"]),
                        "sha256": str(e["sha256"]),
                    }
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                if i == len(lines) - 1:  # a kill while appending (older writers): that batch is simply not done
                    break
                report(self.manifest, f"line {i + 1} unreadable")  # every batch computed again
                for f in self.root.glob("part-*"):
                    discard(f)
                self.manifest.unlink(missing_ok=True)
                return []
        return entries

    def parts(self, n: int | None = None) -> list[dict]:
        """Finished batches as the manifest lists them, sorted (:meth:`read` verifies each).

        With ``n``, the parts must tile a subset of [0, n) with no overlap and no
        repeat (each sample computed once); a manifest that does not is reported
        (a warning) and the cache is emptied, so that everything is recomputed
        rather than returned twice.
        """

        entries = sorted(self._read_manifest(), key=lambda e: (e["start"], e["stop"]))
        if n is not None:
            problem = _tiling_problem(entries, n)
            if problem:
                report(self.manifest, f"the extraction cache is inconsistent: {problem}")
                self.clear()
                return []
        sound = [e for e in entries if self._sound(e)]
        if len(sound) < len(entries):  # the damaged batches are computed again
            _atomic_write(self.manifest, "".join(json.dumps(e) + "\n" for e in sound))
        self._entries = sound
        return sound

    def _sound(self, entry: dict) -> bool:
        """Whether a listed batch file is there and matches its checksum (if not: reported, removed).

        A file this cache already verified, unchanged since (same size and modification
        time), is not hashed again: one extraction asks for the parts several times.
        """
        path = self.root / entry["file"]
        try:
            stat = path.stat()
            seen = (entry["sha256"], stat.st_size, stat.st_mtime_ns)
            if self._verified.get(entry["file"]) == seen:
                return True
            ok = file_digest(path) == entry["sha256"]
            why = "" if ok else "checksum mismatch"
        except OSError as exc:
            ok, why = False, f"unreadable: {exc.strerror or exc}"
        if ok:  # a file planted with its checksum: still the shape and dtype the key says
            why = self._layout_problem(path, entry)
            ok = not why
        if not ok:
            report(path, why)
            discard(path)
        else:
            self._verified[entry["file"]] = seen
        return ok

    def _layout_problem(self, path: Path, entry: dict) -> str:
        """Why a batch file's header does not describe this batch ('' when it does)."""
        from safetensors import safe_open

        want = [self.meta["n_layers"] + 1, entry["stop"] - entry["start"]]
        try:
            with safe_open(str(path), framework="numpy") as f:
                tensor = f.get_slice("clouds")
                shape, dtype = list(tensor.get_shape()), tensor.get_dtype()
        except Exception as exc:  # safetensors raises its own error types
            return f"unreadable: {exc.__class__.__name__}"
        stored = {"F32": "float32", "F16": "float16"}.get(dtype, dtype)
        if len(shape) != 3 or shape[:2] != want or stored != self.meta["storage"]:
            return f"holds {stored} {shape}, not {self.meta['storage']} {want + ['d']}"
        return ""

    def write_prefixes(self, prefixes: list[str]) -> None:
        """Record the fingerprint of every prefix of the calibration set (once)."""
        path = self.root / PREFIX_FILE
        if not path.exists():
            with writing(self.root):
                _atomic_write(path, json.dumps(prefixes))

    def clear(self) -> None:
        """Forget every batch (the metadata stays)."""
        for f in self.root.glob("part-*"):
            f.unlink()
        self.manifest.unlink(missing_ok=True)
        self._entries = []

    def write(self, start: int, stop: int, clouds) -> None:
        """Persist one batch (L+1, B, d) atomically, then record it."""
        from safetensors.torch import save_file

        name = f"part-{start:07d}-{stop:07d}.safetensors"
        tmp = _tmp_name(self.root / name)
        with writing(self.root):
            try:
                save_file({"clouds": clouds.contiguous()}, str(tmp), metadata={"start": str(start), "stop": str(stop)})
            except BaseException:
                tmp.unlink(missing_ok=True)  # a full disk leaves no half file behind
                raise
            os.replace(tmp, self.root / name)
            digest = file_digest(self.root / name)
            entries = self._entries if self._entries is not None else self._read_manifest()
            entries = [e for e in entries if e["file"] != name] + [
                {"file": name, "start": start, "stop": stop, "sha256": digest}
            ]
            _atomic_write(self.manifest, "".join(json.dumps(e) + "\n" for e in entries))
        self._entries = entries

    def adopt(self, other: CloudCache, entries: list[dict]) -> None:
        """Take finished batches of ``other``, a cache of the same clouds of a shorter
        calibration set that starts this one: the files are copied (each through a
        temporary name and a rename) and recorded with their checksums, which
        :meth:`read` verifies as for any batch."""
        for e in entries:
            dst = self.root / e["file"]
            tmp = _tmp_name(dst)
            shutil.copyfile(other.root / e["file"], tmp)
            os.replace(tmp, dst)
        names = {e["file"] for e in entries}
        current = self._entries if self._entries is not None else self._read_manifest()
        merged = [e for e in current if e["file"] not in names] + [dict(e) for e in entries]
        _atomic_write(self.manifest, "".join(json.dumps(e) + "\n" for e in merged))
        self._entries = merged

    def read(self, entry: dict) -> np.ndarray:
        """One finished batch (L+1, B, d), read once and checked against its SHA-256."""
        from safetensors.numpy import load

        path = self.root / entry["file"]
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:  # changed since parts() verified it
            raise TopoVLMInputError(
                f"corrupted cache file {path} (checksum mismatch): delete {self.root} or pass fresh=True"
            )
        try:
            arr = load(data)["clouds"]
        except Exception as exc:  # safetensors raises its own error types
            raise TopoVLMInputError(f"corrupted cache file {path}: {exc}") from None
        want = (self.meta["n_layers"] + 1, entry["stop"] - entry["start"])
        if arr.ndim != 3 or arr.shape[:2] != want or arr.dtype != np.dtype(self.meta["storage"]):
            raise TopoVLMInputError(
                f"cache file {path} holds {arr.dtype} {arr.shape}, not {self.meta['storage']} clouds of "
                f"{want[1]} samples at {want[0]} points: delete {self.root} or pass fresh=True"
            )
        return arr


def _tmp_name(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process uses."""

    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a unique temporary file and a rename (flushed to disk)."""
    tmp = _tmp_name(path)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _tiling_problem(entries: list[dict], n: int) -> str:
    """Why sorted manifest entries do not tile a subset of [0, n) exactly once ('' if they do)."""
    end = 0
    for e in entries:
        if not 0 <= e["start"] < e["stop"] <= n:
            return f"batch [{e['start']}, {e['stop']}) is outside [0, {n})"
        if e["start"] < end:
            return f"batch [{e['start']}, {e['stop']}) overlaps one ending at {end}"
        end = e["stop"]
    return ""


def _todo(parts: list[dict], n: int, batch_size: int):
    """Batch ranges still to compute, around the finished ones."""
    starts = {p["start"]: p["stop"] for p in parts}
    boundaries = sorted(starts)
    start = 0
    while start < n:
        if start in starts:
            start = starts[start]
            continue
        nxt = min([b for b in boundaries if b > start] + [n])
        stop = min(start + batch_size, nxt)
        yield start, stop
        start = stop


def extract(
    adapter: Adapter,
    samples,
    *,
    token: str = "ret",
    point: str = "normed",
    batch_size: int = 16,
    storage: str = "float32",
    cache_dir=None,
    fresh: bool = False,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
    marker: str = RET_MARKER,
) -> np.ndarray:
    """Hidden-state clouds of a calibration set.

    Parameters
    ----------
    adapter : Adapter
        From :func:`topovlm.models.load_model` (or a tiny model).
    samples : sequence of str or Sample
        The calibration set (N samples).
    token : {"ret", "last", "mean"}
        Which position is the sample's point: the appended [RET] marker
        (paper), the last prompt token, or the mean over the prompt.
    point : {"residual", "normed"}
        Which hidden state: the residual stream at each decoder-layer
        boundary (cloud 0 = input of layer 0, cloud i+1 = output of layer i),
        or, as the predecessor's code, the output of each layer's
        post-attention norm (cloud i, inside layer i) plus the final norm
        (cloud L). Search ``"normed"`` clouds with ``layer_map="input"``.
    batch_size : int
        Samples per forward pass (and per cache file).
    storage : {"float32", "float16"}
        dtype of the cache files.
    cache_dir : path, optional
        Root of the cache (default ``$TOPOVLM_CACHE`` or ``~/.cache/topovlm``);
        ``False`` disables caching. The same passes also fill the other
        point's cache (``"normed"`` for ``"residual"`` and back) when it is
        empty and free: asking for it later costs no forward pass, and the
        disk holds both (twice the clouds' size).
    fresh : bool
        Delete this extraction's cache first.
    progress : bool
        Show a progress bar (samples).
    on_batch : callable, optional
        ``on_batch(done, total)`` after each batch is safely on disk.
    marker : str
        Text appended for ``token="ret"``.

    Returns
    -------
    clouds : (L+1, N, d) float32 ndarray
        ``point="residual"``: ``clouds[0]`` = input of decoder layer 0,
        ``clouds[i+1]`` = output of layer i. ``point="normed"``: ``clouds[i]``
        = post-attention norm of layer i, ``clouds[L]`` = final norm.
    """
    config = ExtractConfig(token=token, point=point, marker=marker, storage=storage)
    samples = as_samples(samples)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise TopoVLMInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    prefixes = prefix_fingerprints(samples)  # hashes every sample (media bytes included) once
    key, meta = cache_key(adapter, samples, config, prefixes)
    if cache_dir is False:
        return _extract(adapter, samples, config, batch_size, None, progress, on_batch)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = CloudCache(root / "clouds" / key, meta)
    with cache.locked():
        cache.open(fresh)
        if not fresh and not cache.parts(len(samples)):
            found = _from_larger_cache(root / "clouds", meta, prefixes, exclude=cache.root)
            if found is not None:
                return found
            _from_shorter_cache(cache, root / "clouds", prefixes)
        cache.write_prefixes(prefixes)
        pending = next(_todo(cache.parts(len(samples)), len(samples), batch_size), None) is not None
        with _sibling(adapter, meta, prefixes, root) if pending else contextlib.nullcontext() as sibling:
            return _extract(adapter, samples, config, batch_size, cache, progress, on_batch, sibling)


@contextlib.contextmanager
def _sibling(adapter: Adapter, meta: dict, prefixes: list[str], root: Path):
    """The cache of the other point (residual <-> normed) of the same samples and
    token (``meta``: this extraction's cache metadata), when it is empty and no one
    else writes it: the same forward passes fill it too (the hooks only read), so
    asking for it later costs no forward pass. Yields that :class:`CloudCache`, or None."""
    other = "normed" if meta["point"] == "residual" else "residual"
    try:
        if other == "normed":
            adapter.norm_modules()
    except TopoVLMInputError:  # this model has no normed point: nothing to fill
        yield None
        return
    meta = {**meta, "point": other}
    sibling = CloudCache(root / "clouds" / _meta_key(meta), meta)
    lock = sibling.try_lock()
    if lock is None:
        yield None
        return
    try:
        try:
            sibling.open()
            usable = not sibling.parts(len(prefixes))  # only an empty cache: its own extraction resumes the rest
        except TopoVLMInputError:  # a damaged sibling is its own extraction's business
            usable = False
        if usable:
            _from_shorter_cache(sibling, root / "clouds", prefixes)
            sibling.write_prefixes(prefixes)
        yield sibling if usable else None
    finally:
        lock.release()


def _from_larger_cache(clouds_root: Path, meta: dict, prefixes: list[str], exclude: Path) -> np.ndarray | None:
    """The clouds of ``samples`` read off a finished extraction of a longer calibration set
    that starts with them (same model, token, point and storage), or None.

    A calibration set of 128 samples that is the start of one of 512 costs no
    forward pass once the 512 are extracted.
    """
    n = len(prefixes)
    if n == 0:
        return None
    same = {k: v for k, v in meta.items() if k not in ("data_fingerprint", "n_samples")}
    for meta_file in sorted(clouds_root.glob("*/meta.json")):
        root = meta_file.parent
        if root == exclude:
            continue
        try:
            other = json.loads(meta_file.read_text())
            if other.get("n_samples", 0) <= n or {k: other.get(k) for k in same} != same:
                continue
            stored = json.loads((root / PREFIX_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if len(stored) < n or stored[n - 1] != prefixes[-1]:
            continue
        big = CloudCache(root, other)
        with big.locked():
            try:
                parts = big.parts(other["n_samples"])
            except TopoVLMInputError:
                continue
            covered, chunks = 0, []
            for p in parts:
                if p["start"] != covered or covered >= n:
                    break
                chunks.append(big.read(p))
                covered = p["stop"]
            if covered >= n:
                return np.concatenate(chunks, axis=1)[:, :n].astype(np.float32)
    return None


def _from_shorter_cache(cache: CloudCache, clouds_root: Path, prefixes: list[str]) -> int:
    """Seed an empty ``cache`` with the batches of the longest finished extraction of a
    calibration set that is the start of this one (same model, token, point and
    storage): extracting 1,024 samples after 512 computes only the last 512.

    Returns
    -------
    int
        Samples taken (0: none found).
    """
    n = len(prefixes)
    same = {k: v for k, v in cache.meta.items() if k not in ("data_fingerprint", "n_samples")}
    candidates = []
    for meta_file in clouds_root.glob("*/meta.json"):
        if meta_file.parent == cache.root:
            continue
        try:
            other = json.loads(meta_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        m = other.get("n_samples", 0)
        if isinstance(m, int) and 0 < m < n and {k: other.get(k) for k in same} == same:
            if other.get("data_fingerprint") == prefixes[m - 1]:
                candidates.append((m, meta_file.parent, other))
    for m, root, other in sorted(candidates, key=lambda c: -c[0]):
        small = CloudCache(root, other)
        lock = small.try_lock()
        if lock is None:  # being written: not finished
            continue
        try:
            parts = small.parts(m)
            if sum(p["stop"] - p["start"] for p in parts) != m:  # unfinished
                continue
            cache.adopt(small, parts)
            return m
        except (TopoVLMInputError, OSError):
            continue
        finally:
            lock.release()
    return 0


def _taps(adapter: Adapter, point: str, reduce):
    return (
        LayerTaps(adapter.decoder_layers, reduce) if point == "residual" else ModuleTaps(adapter.norm_modules(), reduce)
    )


def _extract(
    adapter: Adapter,
    samples: list,
    config: ExtractConfig,
    batch_size: int,
    cache: CloudCache | None,
    progress: bool,
    on_batch,
    sibling: CloudCache | None = None,
) -> np.ndarray:
    """The forward passes of :func:`extract` (holding the cache's lock when there is one;
    ``sibling``: the other point's cache, filled by the same passes)."""
    import torch

    n, token, point = len(samples), config.token, config.point
    parts = cache.parts(n) if cache else []
    results: dict[int, tuple[int, np.ndarray]] = {p["start"]: (p["stop"], cache.read(p)) for p in parts}
    done = sum(stop - start for start, (stop, _) in results.items())
    use_marker = config.marker if token == "ret" else None
    st_dtype = getattr(torch, config.storage)

    at_token = _AtToken(token)
    rec = _taps(adapter, point, at_token)
    sib = _taps(adapter, sibling.meta["point"], at_token) if sibling is not None else None
    bar = tqdm(total=n, initial=done, desc=f"extract {token} clouds", unit="sample", disable=not progress)
    try:
        for start, stop in _todo(parts, n, batch_size):
            inputs = adapter.encode(samples[start:stop], use_marker)
            at_token.n_pad = _n_pad(inputs["attention_mask"])
            inputs = adapter.to_device(inputs)
            with torch.no_grad():
                adapter.model(**inputs, use_cache=False, logits_to_keep=1)
            batch = torch.stack(rec.out).to(st_dtype)  # (L+1, B, d)
            rec.out = [None] * len(rec.out)
            if cache:
                cache.write(start, stop, batch)
            if sib is not None:
                sibling.write(start, stop, torch.stack(sib.out).to(st_dtype))
                sib.out = [None] * len(sib.out)
            results[start] = (stop, batch.float().numpy())
            done += stop - start
            bar.update(stop - start)
            if on_batch is not None:
                on_batch(done, n)
    finally:
        rec.remove()
        if sib is not None:
            sib.remove()
        bar.close()
    ordered = [results[s][1] for s in sorted(results)]
    return np.concatenate(ordered, axis=1).astype(np.float32)
