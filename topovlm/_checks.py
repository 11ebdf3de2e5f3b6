"""Input validation shared by the public entry points.

Every check raises :class:`TopoVLMInputError` (a ``ValueError``) with a one-line
message that names the offending argument, so that a user sees what to fix
instead of a traceback from deep inside numpy, scikit-learn or ripser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class TopoVLMInputError(ValueError):
    """Bad input to a topovlm function (wrong shape, value or range)."""


#: Largest coordinate a cloud may hold: float32 (the caches' dtype, and the one ties are
#: compared in) holds it, and squared distances over any width stay far below float64's limit.
MAX_ABS = 1e30


def as_cloud(X, name: str = "cloud") -> np.ndarray:
    """Validate one point cloud and return it as a float64 array.

    Parameters
    ----------
    X : (N, d) array-like
        Points as rows.
    name : str
        Name used in error messages.

    Returns
    -------
    (N, d) float64 ndarray
    """
    if np.iscomplexobj(X):
        raise TopoVLMInputError(f"{name} is complex-valued; hidden states are real (pass the real part explicitly)")
    try:
        A = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TopoVLMInputError(f"{name} is not numeric: {exc}") from None
    if A.ndim != 2:
        raise TopoVLMInputError(f"{name} must be 2-D (N points x d features), got shape {A.shape}")
    if A.shape[0] < 2:
        raise TopoVLMInputError(f"{name} needs at least 2 points, got {A.shape[0]}")
    if A.shape[1] < 1:
        raise TopoVLMInputError(f"{name} has no features (shape {A.shape})")
    bad = ~np.isfinite(A)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise TopoVLMInputError(f"{name} contains {int(bad.sum())} NaN/inf value(s) (first in point {row})")
    largest = float(np.abs(A).max())
    if largest > MAX_ABS:
        raise TopoVLMInputError(
            f"{name} holds a value of size {largest:.3g}; beyond {MAX_ABS:.0e} squared distances overflow "
            "(rescale the cloud: its k-NN graph does not change with the scale)"
        )
    return A


def as_clouds(clouds) -> list[np.ndarray]:
    """Validate a sequence of point clouds (one per layer).

    Parameters
    ----------
    clouds : (L+1, N, d) array-like or sequence of (N, d_l) arrays
        The clouds must share the number of points N (point i is the same
        sample in every layer); the feature dimension may differ.

    Returns
    -------
    list of (N, d_l) float64 arrays
    """
    if isinstance(clouds, np.ndarray) and clouds.ndim == 2:
        raise TopoVLMInputError("clouds must be a sequence of point clouds (L+1, N, d); got a single 2-D cloud")
    try:
        seq: Sequence = list(clouds)
    except TypeError:
        raise TopoVLMInputError("clouds must be a sequence of (N, d) arrays") from None
    if len(seq) < 2:
        raise TopoVLMInputError(f"a zigzag needs at least 2 layers (clouds), got {len(seq)}")
    out = [as_cloud(X, name=f"cloud {i}") for i, X in enumerate(seq)]
    sizes = {X.shape[0] for X in out}
    if len(sizes) > 1:
        counts = [X.shape[0] for X in out]
        raise TopoVLMInputError(
            f"all clouds must have the same number of points (same samples per layer), got {counts}"
        )
    return out


def check_k(k: int, n_points: int) -> int:
    """Validate the number of neighbours against the number of points."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TopoVLMInputError(f"k must be an integer, got {k!r}")
    if k < 1:
        raise TopoVLMInputError(f"k must be >= 1, got {k}")
    if k >= n_points:
        raise TopoVLMInputError(f"k = {k} must be smaller than the number of points N = {n_points}")
    return int(k)


def is_number(value) -> bool:
    """A real number (not a bool, not a string)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_range(value, name: str, low: float, high: float, closed_high: bool = False) -> float:
    """Validate a real number in (low, high) (or (low, high] with ``closed_high``)."""
    inside = is_number(value) and low < value and (value <= high if closed_high else value < high)
    if not inside:
        raise TopoVLMInputError(
            f"{name} must be in ({low}, {high}{']' if closed_high else ')'}, a number; got {value!r}"
        )
    return float(value)


def check_choice(value: str, choices: Sequence[str], name: str) -> str:
    """Validate that ``value`` is one of ``choices``."""
    if value not in choices:
        raise TopoVLMInputError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
