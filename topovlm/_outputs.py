"""Where results go: output paths are checked before any work starts, and
directories are replaced whole.

A bad ``--out`` (an existing file where a directory goes, a folder that cannot
be created, somebody else's non-empty directory) is reported in one line before
an extraction, a search or a pruning runs, never after, so no work is lost to it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from ._checks import TopoVLMInputError


def _probe_parent(path: Path) -> None:
    """Check that ``path`` can be created: its nearest existing folder is a folder
    and takes a new file (probed with an empty file, removed at once; nothing else
    is created before the work)."""
    for up in path.parents:
        if up.exists():
            if not up.is_dir():
                raise TopoVLMInputError(f"cannot write {path}: {up} is a file, not a folder")
            break
    else:
        raise TopoVLMInputError(f"cannot write {path}: no existing folder above it")
    try:
        probe = up / f".topovlm-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise TopoVLMInputError(f"cannot write into {up}: {exc.strerror or exc}") from None


def check_out_file(path, suffix: str = ".npz") -> Path:
    """The file an output will really be written to (``suffix`` appended when
    missing, as numpy does), checked to be writable.

    Raises
    ------
    TopoVLMInputError
        When the path is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if not path.name.endswith(suffix):
        path = path.with_name(path.name + suffix)
    if path.is_dir():
        raise TopoVLMInputError(f"{path} is a folder; give a file name ending in {suffix}")
    _probe_parent(path)
    return path


def check_out_dir(path, marker: str, overwrite: bool = False, source=None, kind: str = "") -> Path:
    """Check a directory that a result will replace, before the work.

    Parameters
    ----------
    path : path
    marker : str
        File that a previous result of the same kind holds (``topovlm.json``
        for a saved model, ``search.json`` for a search).
    overwrite : bool
        Allow replacing a non-empty directory that is not such a result.
    source : path, optional
        The directory the input comes from; never overwritten.
    kind : str
        For a previous saved model: the family it must have been saved with.

    Raises
    ------
    TopoVLMInputError
        The path is a file, the source, or a non-empty directory that is not a
        previous result of this kind (without ``overwrite``), or its folder
        cannot be written.
    """

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TopoVLMInputError(f"{path} is a file; the output is a directory")
    if source is not None and Path(source).exists():
        out, src = path.resolve(), Path(source).resolve()  # symlinks resolved first
        if out == src:
            raise TopoVLMInputError(f"{path} is the model being read; save to another directory")
        if out in src.parents:  # replacing it would delete the model (with or without overwrite)
            raise TopoVLMInputError(f"{path} holds the model being read ({source}); save to another directory")
        if src in out.parents:
            raise TopoVLMInputError(f"{path} is inside the model being read ({source}); save to another directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        mine = path / marker
        same = mine.exists()
        if same and kind:
            try:
                same = json.loads(mine.read_text()).get("family") == kind
            except (OSError, ValueError, AttributeError):
                same = False
        if not same:
            raise TopoVLMInputError(
                f"{path} is not empty and holds no earlier topovlm result of this kind; "
                "choose an empty directory or pass overwrite (--overwrite) to replace it"
            )
    _probe_parent(path / "x")
    return path


def replace_dir(path, write) -> Path:
    """Write a directory whole: ``write(tmp)`` fills a fresh folder beside
    ``path``, which then replaces ``path`` (nothing of an older content survives;
    an interrupted write leaves the older content as it was).

    A symlinked ``path`` is followed: the folder it points to is replaced and the
    link stays. Leftovers of an earlier write into the same target that was
    killed (``.<name>.tmp-<pid>-*`` / ``.<name>.old-<pid>-*`` of a process that
    is gone) are removed first.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    tmp.mkdir()
    try:
        write(tmp)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


def _remove_leftovers(path: Path) -> None:
    """Remove what a killed :func:`replace_dir` into ``path`` left beside it. When the
    kill came between its two renames, ``path`` is missing and the older content
    waits in an ``.old`` folder: it is put back first."""
    for left in sorted(path.parent.glob(f".{path.name}.*-*-*")):
        kind, _, rest = left.name[len(path.name) + 2 :].partition("-")
        pid = rest.partition("-")[0]
        if kind not in ("tmp", "old") or not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if kind == "old" and not path.exists():
            os.replace(left, path)
        else:
            shutil.rmtree(left, ignore_errors=True)
