"""Synthetic layer sequences with known structure, for tests, benchmarks and teaching.

These are not model hidden states; they are small constructed inputs whose
topology along depth is known in advance.
"""

from __future__ import annotations

import numpy as np


def drifting_clouds(
    n_layers: int = 33, n_points: int = 512, dim: int = 64, drift: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A residual-stream-like sequence: each layer adds a small random update.

    ``X_0`` is a Gaussian cloud; ``X_{l+1} = X_l + drift * tanh(X_l W_l) + 0.1 drift * noise``
    with a random ``W_l``. Neighbouring layers share most of their k-NN edges,
    as consecutive hidden states of a real decoder do.

    Returns
    -------
    (n_layers, n_points, dim) float32 ndarray
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_points, dim))
    out = [X]
    for _ in range(n_layers - 1):
        W = rng.normal(scale=1.0 / np.sqrt(dim), size=(dim, dim))
        X = X + drift * np.tanh(X @ W) + 0.1 * drift * rng.normal(size=X.shape)
        out.append(X)
    return np.stack(out).astype(np.float32)


def circle_clouds(
    n_layers: int = 8,
    n_points: int = 40,
    circle_from: int = 3,
    circle_until: int | None = None,
    noise: float = 0.02,
    blob: float = 0.35,
    seed: int = 0,
) -> np.ndarray:
    """Clouds in the plane: a Gaussian blob, then a circle on a range of layers.

    Layer ``l`` holds the points on the unit circle (evenly spaced angles,
    jittered) when ``circle_from <= l < circle_until``, and a fixed Gaussian
    blob of scale ``blob`` otherwise; every layer adds fresh noise. The k-NN
    zigzag therefore gains a long H1 class (the circle) at layer
    ``circle_from`` that dies when the blob comes back.

    Returns
    -------
    (n_layers, n_points, 2) float64 ndarray
    """
    rng = np.random.default_rng(seed)
    circle_until = n_layers if circle_until is None else circle_until
    theta = (np.arange(n_points) + rng.uniform(-0.25, 0.25, n_points)) * (2 * np.pi / n_points)
    ring = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    cluster = rng.normal(scale=blob, size=(n_points, 2))
    out = [
        (ring if circle_from <= l < circle_until else cluster) + noise * rng.normal(size=(n_points, 2))
        for l in range(n_layers)
    ]
    return np.stack(out)
