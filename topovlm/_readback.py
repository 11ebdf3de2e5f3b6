"""One reader for everything topovlm reads back from its caches and checkpoints.

Two kinds of file come back:

- **cache entries** (extracted clouds, per-item outcomes, kept baseline runs): a
  damaged entry (unreadable, cut short, failing its checksum, of the wrong shape,
  holding values that cannot be) is reported in one line, a
  :class:`DamagedCacheWarning` (which :func:`topovlm.notes.collect` puts on the
  page), removed, and computed again: a cache never changes a result, only its cost;
- **checkpoints** (``topovlm heal``, the mini models' training): a damaged one is
  refused with the one command that starts over, because resuming from it would
  silently train something else.

Every file carries a SHA-256 of what it holds (:func:`arrays_digest`), written
beside the data when the file is saved and checked when it is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ._checks import TopoVLMInputError


class DamagedCacheWarning(UserWarning):
    """A cache entry could not be used as it was; it is computed again."""


class DamagedCheckpointError(TopoVLMInputError):
    """A resumable checkpoint failed its checks; resuming from it is refused."""


def report(path, why: str) -> None:
    """Say in one line that the cache entry ``path`` is damaged and will be recomputed."""
    warnings.warn(f"damaged cache entry {path} ({why}); computing it again", DamagedCacheWarning, stacklevel=3)


def discard(path) -> None:
    """Remove a damaged entry so that the next run does not meet it again (best effort)."""
    with contextlib.suppress(OSError):
        Path(path).unlink()


def file_digest(path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def arrays_digest(arrays: Mapping[str, object], text: str = "") -> str:
    """SHA-256 of named arrays (name, dtype, shape and bytes, in name order) and a text.

    Parameters
    ----------
    arrays : mapping of str to ndarray or torch tensor
        Tensors are hashed through their CPU bytes (bfloat16 as its raw 16 bits).
    text : str
        Whatever else the file holds (JSON metadata), so that editing it is caught too.
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        if hasattr(a, "detach"):  # torch: its raw bytes (numpy has no bfloat16)
            import torch

            t = a.detach().cpu().contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            a = np.ascontiguousarray(a)
            h.update(f"{name}|{a.dtype}|{a.shape}|".encode())
            h.update(a.tobytes())
    h.update(text.encode())
    return h.hexdigest()


def read_npz(path, check: Callable[[dict], str] | None = None) -> dict | None:
    """The arrays of a cache ``.npz`` written with a ``digest`` entry, or None.

    None when the file does not exist, and also (after :func:`report` and
    :func:`discard`) when it is unreadable, its digest does not match, or
    ``check(arrays)`` returns a reason (a non-empty string) to refuse it.

    Returns
    -------
    dict of str to ndarray
        Every array but the digest.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        why = f"unreadable: {exc.__class__.__name__}"
    else:
        stored = str(arrays.pop("digest", ""))
        why = "checksum mismatch" if stored != arrays_digest(arrays) else ""
    return _accepted(path, arrays if not why else None, why, check)


def _accepted(path: Path, value, why: str, check):
    """``value`` when it was read whole (``why`` empty) and ``check`` finds nothing wrong
    with it; otherwise the entry is reported, discarded, and None returned."""
    why = why or (check(value) if check else "")
    if not why:
        return value
    report(path, why)
    discard(path)
    return None


def write_npz(path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` and their digest to ``path`` atomically (a temporary name, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:6]}.npz")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    np.savez(tmp, digest=np.str_(arrays_digest(arrays)), **arrays)
    os.replace(tmp, path)


def _json_digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def read_json(path, check: Callable[[object], str] | None = None):
    """The value a cache JSON file written by :func:`write_json` holds, or None
    (missing; or damaged: reported, discarded).

    ``check(value)`` returns a reason to refuse what was read ('' to accept).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
        value, stored = envelope["data"], envelope["sha256"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        why = f"unreadable: {exc.__class__.__name__}"
    else:
        why = "checksum mismatch" if stored != _json_digest(value) else ""
    return _accepted(path, value if not why else None, why, check)


def write_json(path, value) -> None:
    """Write ``value`` with its SHA-256 (``{"sha256": ..., "data": value}``) atomically."""
    path = Path(path)
    value = json.loads(json.dumps(value))  # what reading it back gives (tuples become lists)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(json.dumps({"sha256": _json_digest(value), "data": value}), encoding="utf-8")
    os.replace(tmp, path)


def refuse_checkpoint(path, why: str, start_over: str) -> DamagedCheckpointError:
    """The error for a checkpoint that cannot be resumed: what is wrong, and the command that starts over."""
    return DamagedCheckpointError(f"checkpoint {path} is damaged ({why}): {start_over}")


@contextlib.contextmanager
def writing(where):
    """Turn a failed write under ``where`` (read-only folder, full disk) into one line.

    Raises
    ------
    TopoVLMInputError
        Naming the folder and the reason, and what to do.
    """
    try:
        yield
    except TimeoutError:  # a lock that is busy (filelock's Timeout is one): not a failed write
        raise
    except OSError as exc:
        raise TopoVLMInputError(
            f"cannot write to {where} ({exc.strerror or exc}): free some space or choose another "
            "--cache-dir / TOPOVLM_CACHE"
        ) from None
    except Exception as exc:  # safetensors raises its own error type for a failed write
        if type(exc).__name__ != "SafetensorError":
            raise
        raise TopoVLMInputError(
            f"cannot write to {where} ({exc}): free some space or choose another --cache-dir / TOPOVLM_CACHE"
        ) from None
