"""Per-item outcomes kept on disk, so that no evaluation runs twice.

A study scores many sets of removed layers on the same held-out items; chapters
share models and items (the book's fidelity study and chapter 09 score the same
test split), and an interrupted study should not start over. An
:class:`OutcomeStore` keeps the per-item outcomes of one evaluation (one model,
one list of items, one way of scoring them) for every set of removed layers it
has seen, one small ``.npz`` file each, written atomically.

The key (:func:`outcome_key`) hashes the model's weights
(:meth:`~topovlm.models.base.Adapter.fingerprint`), every item (text, media
bytes, choices and answer) and the scoring, with the package version: a
changed model, item, scoring or package never reads an older number.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ._cache import default_cache_dir
from ._readback import read_npz, write_npz, writing
from ._version import __version__

#: Bump when the meaning of a stored outcome changes (2: each file carries its checksum).
STORE_VERSION = 2


def _item_digest(item) -> str:
    sample = getattr(item, "sample", item)  # a QA item holds its Sample
    extra = [getattr(item, name, None) for name in ("choices", "answer", "suite")]
    return sample.fingerprint() + json.dumps(extra, default=str)


def outcome_key(adapter, items, **how) -> str:
    """Hash of (model weights, items, scoring options, package version).

    Parameters
    ----------
    adapter : Adapter
    items : sequence of Sample or QA
    **how
        Everything else that decides the numbers (scoring, batch size; a baseline's
        method, seed and options: :func:`topovlm.baselines.run` keys its kept runs so).
    """
    h = hashlib.sha256(adapter.fingerprint().encode())
    for item in items:
        h.update(_item_digest(item).encode())
    h.update(json.dumps({**how, "version": __version__, "store": STORE_VERSION}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


class OutcomeStore:
    """The outcomes of one evaluation, by set of removed layers.

    Parameters
    ----------
    key : str
        :func:`outcome_key` of the evaluation.
    cache_dir : path, optional
        Default :func:`topovlm._cache.default_cache_dir`; files go to
        ``<cache_dir>/outcomes/<key>/``.
    """

    def __init__(self, key: str, cache_dir=None):
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.root = root / "outcomes" / key

    def _path(self, layers: tuple) -> Path:
        return self.root / (("-".join(map(str, layers)) or "full") + ".npz")

    def get(self, layers: tuple):
        """The stored outcomes (an array, or a tuple of arrays), or None."""
        data = read_npz(self._path(layers), _check_outcomes)  # damaged: reported, computed again
        if data is None:
            return None
        arrays = [data[f"a{i}"] for i in range(int(data["n"]))]
        return tuple(arrays) if bool(data["tuple"]) else arrays[0]

    def put(self, layers: tuple, outcomes) -> None:
        """Store ``outcomes`` (an array or a tuple of arrays) atomically."""
        arrays = list(outcomes) if isinstance(outcomes, tuple) else [outcomes]
        with writing(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            write_npz(
                self._path(layers),
                {
                    "n": np.asarray(len(arrays)),
                    "tuple": np.asarray(isinstance(outcomes, tuple)),
                    **{f"a{i}": np.asarray(a) for i, a in enumerate(arrays)},
                },
            )


def _check_outcomes(data: dict) -> str:
    """Why a stored outcome file cannot be what :meth:`OutcomeStore.put` wrote ('' if it can)."""
    try:
        n = int(data["n"])
        arrays = [data[f"a{i}"] for i in range(n)]
        bool(data["tuple"])
    except (KeyError, TypeError, ValueError):
        return "not an outcome file"
    return "" if n >= 1 and len(arrays) == n else "no arrays"


def outcome_store(adapter, items, cache_dir=None, **how) -> OutcomeStore | None:
    """The store of one evaluation; None when ``cache_dir`` is False (nothing kept)."""
    if cache_dir is False:
        return None
    return OutcomeStore(outcome_key(adapter, items, **how), cache_dir)
