"""k-NN clique complexes of point clouds and the zigzag of their intersections.

The zigzag (the book's chapter "What the paper leaves open")::

    K_0 ⊇ K_{0,1} ⊆ K_1 ⊇ K_{1,2} ⊆ ... ⊆ K_L

Zigzag index ``t = 0 .. 2L``: layer ``l`` sits at ``t = 2l`` and the
intersection ``K_{l,l+1} = K_l ∩ K_{l+1}`` at ``t = 2l + 1``.

Every complex here is a *flag* (clique) complex of a graph, truncated at
dimension 2 (dimension 3 when H2 is wanted), so it is fully described by its edges: the intersection of two
flag complexes is the flag complex of the intersection of their graphs (a
triangle lies in both complexes iff its three edges lie in both graphs).
That is why :class:`ZigzagComplexes` stores edges only and lists triangles on
demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.neighbors import NearestNeighbors

from .._checks import TopoVLMInputError, as_cloud, as_clouds, check_choice, check_k

METRICS = ("euclidean", "cosine")


def knn_graph(X, k: int = 15, metric: str = "euclidean") -> np.ndarray:
    """Symmetric k-nearest-neighbour graph of a point cloud.

    Parameters
    ----------
    X : (N, d) array-like
        The point cloud.
    k : int
        Neighbours per point, ``1 <= k < N`` (paper: 15).
    metric : {"euclidean", "cosine"}
        Distance used to rank neighbours. ``"cosine"`` ranks by cosine
        distance (Euclidean distance of the L2-normalised points).

    Returns
    -------
    edges : (E, 2) int64 ndarray
        Edge ``(i, j)`` with ``i < j`` whenever ``j`` is among the ``k``
        nearest neighbours of ``i`` or ``i`` among those of ``j``; rows sorted
        lexicographically, no duplicates.

    Notes
    -----
    The neighbour search is scikit-learn's exact brute-force search. A point
    is never its own neighbour, even when duplicates of it exist; ties between
    equidistant neighbours are broken by scikit-learn's search order, which is
    deterministic for a given input.
    """
    A = as_cloud(X)
    n = A.shape[0]
    k = check_k(k, n)
    check_choice(metric, METRICS, "metric")
    if metric == "cosine":
        norms = np.linalg.norm(A, axis=1, keepdims=True)
        if (norms == 0).any():
            raise TopoVLMInputError(
                f"metric='cosine' is undefined for a zero vector (point {int(np.argmax(norms[:, 0] == 0))})"
            )
        A = A / norms
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="euclidean")
    idx = nn.fit(A).kneighbors(A, return_distance=False)  # (N, k+1)
    own = idx == np.arange(n)[:, None]
    # Rows where the point itself was crowded out by duplicates: drop the last.
    own[~own.any(axis=1), -1] = True
    # A row can hold the point once at most, so exactly one entry per row goes.
    nbrs = idx[~own].reshape(n, k)
    rows = np.repeat(np.arange(n), k)
    cols = nbrs.ravel()
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    keys = np.unique(lo.astype(np.int64) * n + hi)
    return np.stack([keys // n, keys % n], axis=1)


def flag_triangles(edges: np.ndarray, n_vertices: int) -> np.ndarray:
    """Triangles (3-cliques) of the flag complex of a graph.

    Parameters
    ----------
    edges : (E, 2) int array
        Edges ``(i, j)``, ``i < j``.
    n_vertices : int
        Number of vertices N.

    Returns
    -------
    (T, 3) int64 ndarray
        Triangles ``(i, j, w)`` with ``i < j < w``, sorted lexicographically.
    """
    return flag_cliques(edges, n_vertices, 3)


def flag_cliques(edges: np.ndarray, n_vertices: int, size: int) -> np.ndarray:
    """Cliques of ``size`` vertices (simplices of dimension ``size - 1``) of a graph.

    Parameters
    ----------
    edges : (E, 2) int array
        Edges ``(i, j)``, ``i < j``.
    n_vertices : int
        Number of vertices N.
    size : int, >= 2
        3 for triangles, 4 for tetrahedra (what H2 needs), ...

    Returns
    -------
    (C, size) int64 ndarray
        Cliques with increasing vertices, sorted lexicographically.

    Notes
    -----
    Each clique of ``size - 1`` vertices is extended by every common
    neighbour larger than its last vertex; the (chunk, N) boolean blocks are
    bounded to ~16 MB.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if size < 2:
        raise TopoVLMInputError(f"a clique needs at least 2 vertices, got size={size}")
    cliques = edges
    if len(edges) == 0:
        return np.zeros((0, size), dtype=np.int64)
    adj = np.zeros((n_vertices, n_vertices), dtype=bool)
    adj[edges[:, 0], edges[:, 1]] = True
    adj[edges[:, 1], edges[:, 0]] = True
    upper = np.arange(n_vertices)
    step = max(1, (1 << 24) // n_vertices)
    for width in range(2, size):
        out = [np.zeros((0, width + 1), dtype=np.int64)]
        for s in range(0, len(cliques), step):
            c = cliques[s : s + step]
            common = upper[None, :] > c[:, -1:]
            for v in range(width):
                common &= adj[c[:, v]]
            rows, w = np.nonzero(common)
            out.append(np.concatenate([c[rows], w[:, None]], axis=1))
        cliques = np.concatenate(out)
    order = np.lexsort(cliques.T[::-1])
    return cliques[order]


def _keys(edges: np.ndarray, n: int) -> np.ndarray:
    return edges[:, 0] * n + edges[:, 1]


def _edges(keys: np.ndarray, n: int) -> np.ndarray:
    return np.stack([keys // n, keys % n], axis=1)


@dataclass
class ZigzagComplexes:
    """The zigzag ``K_0 ⊇ K_{0,1} ⊆ K_1 ⊇ ... ⊆ K_L`` of flag complexes.

    Parameters
    ----------
    n_points : int
        Number of vertices N (the same samples in every layer).
    layer_edges : list of (E_l, 2) int64 arrays
        Graph of each layer complex ``K_l``, ``l = 0 .. L``.
    layer_weights : list of (E_l,) float arrays, optional
        Edge lengths, used only to order edges inside an engine (short edges
        first makes standard-persistence backends fast); the zigzag itself
        does not depend on them.

    Attributes
    ----------
    n_layers : int
        Number of layer complexes, L + 1.
    length : int
        Number of complexes in the zigzag, 2L + 1.
    """

    n_points: int
    layer_edges: list
    layer_weights: list | None = None
    _tri_cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if len(self.layer_edges) < 2:
            raise TopoVLMInputError(f"a zigzag needs at least 2 layers, got {len(self.layer_edges)}")
        n = self.n_points
        if self.layer_weights is not None and len(self.layer_weights) != len(self.layer_edges):
            raise TopoVLMInputError("layer_weights needs one array per layer")
        self._layer_keys, weights = [], []
        for l, e in enumerate(self.layer_edges):
            e = np.asarray(e, dtype=np.int64).reshape(-1, 2)
            if len(e) and (e.min() < 0 or e.max() >= n or (e[:, 0] == e[:, 1]).any()):
                raise TopoVLMInputError(f"layer {l}: edges must join two distinct vertices in 0..{n - 1}")
            keys, first = np.unique(_keys(np.sort(e, axis=1), n), return_index=True)
            self._layer_keys.append(keys)
            if self.layer_weights is not None:
                weights.append(np.asarray(self.layer_weights[l], dtype=np.float64)[first])
        self.layer_edges = [_edges(k, n) for k in self._layer_keys]
        if self.layer_weights is not None:
            self.layer_weights = weights
        self._inter_keys = [
            np.intersect1d(a, b, assume_unique=True) for a, b in zip(self._layer_keys[:-1], self._layer_keys[1:])
        ]

    @property
    def n_layers(self) -> int:
        return len(self.layer_edges)

    @property
    def length(self) -> int:
        return 2 * self.n_layers - 1

    def edge_keys(self, t: int) -> np.ndarray:
        """Sorted edge keys ``i * N + j`` of the complex at zigzag index ``t``."""
        self._check_t(t)
        return self._layer_keys[t // 2] if t % 2 == 0 else self._inter_keys[t // 2]

    def edges(self, t: int) -> np.ndarray:
        """Edges ``(E_t, 2)`` of the complex at zigzag index ``t``."""
        return _edges(self.edge_keys(t), self.n_points)

    def weights(self, t: int) -> np.ndarray:
        """Edge weights ``(E_t,)`` of complex ``t``: lengths in layer ``t // 2``.

        Without ``layer_weights`` the edge order itself (0, 1, 2, ...).
        """
        keys = self.edge_keys(t)
        if self.layer_weights is None:
            return np.arange(len(keys), dtype=np.float64)
        layer = t // 2
        pos = np.searchsorted(self._layer_keys[layer], keys)
        return np.asarray(self.layer_weights[layer], dtype=np.float64)[pos]

    def triangles(self, t: int) -> np.ndarray:
        """Triangles ``(T_t, 3)`` of the complex at zigzag index ``t`` (cached)."""
        if t not in self._tri_cache:
            self._tri_cache[t] = flag_triangles(self.edges(t), self.n_points)
        return self._tri_cache[t]

    def tetrahedra(self, t: int) -> np.ndarray:
        """Tetrahedra ``(Q_t, 4)`` of the complex at zigzag index ``t`` (H2 needs them; cached)."""
        key = ("tetrahedra", t)
        if key not in self._tri_cache:
            self._tri_cache[key] = flag_cliques(self.edges(t), self.n_points, 4)
        return self._tri_cache[key]

    def simplex_counts(self) -> np.ndarray:
        """Vertices, edges and triangles of every complex.

        Returns
        -------
        (2L+1, 3) int64 ndarray
        """
        return np.array(
            [[self.n_points, len(self.edge_keys(t)), len(self.triangles(t))] for t in range(self.length)],
            dtype=np.int64,
        )

    def _check_t(self, t: int) -> None:
        if not 0 <= t < self.length:
            raise TopoVLMInputError(f"zigzag index t = {t} outside 0..{self.length - 1}")


def zigzag_complexes(clouds, k: int = 15, metric: str = "euclidean") -> ZigzagComplexes:
    """Build the k-NN clique-complex zigzag of a sequence of clouds.

    Parameters
    ----------
    clouds : (L+1, N, d) array-like or sequence of (N, d_l) arrays
        One cloud per layer; point i is the same sample in every layer.
    k : int
        Neighbours per point (paper: 15).
    metric : {"euclidean", "cosine"}

    Returns
    -------
    ZigzagComplexes
    """
    seq = as_clouds(clouds)
    n = seq[0].shape[0]
    check_k(k, n)
    edges = [knn_graph(X, k, metric) for X in seq]
    return ZigzagComplexes(n, edges, [edge_lengths(X, e, metric) for X, e in zip(seq, edges)])


def edge_lengths(X, edges: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Length of each edge under ``metric``.

    Parameters
    ----------
    X : (N, d) array
    edges : (E, 2) int array

    Returns
    -------
    (E,) float64 ndarray
    """
    A = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        A = A / np.linalg.norm(A, axis=1, keepdims=True)
    return np.linalg.norm(A[edges[:, 0]] - A[edges[:, 1]], axis=1)
