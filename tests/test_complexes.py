import itertools

import numpy as np
import pytest

import topovlm as tv
from topovlm import TopoVLMInputError


def brute_knn_edges(X, k):
    D = np.linalg.norm(X[:, None] - X[None], axis=-1)
    np.fill_diagonal(D, np.inf)
    edges = set()
    for i in range(len(X)):
        for j in np.argsort(D[i], kind="stable")[:k]:
            edges.add((min(i, j), max(i, j)))
    return sorted(edges)


def test_knn_graph_is_symmetric_union_of_neighbour_lists(rng):
    X = rng.normal(size=(40, 5))
    E = tv.knn_graph(X, k=4)
    assert [tuple(e) for e in E.tolist()] == brute_knn_edges(X, 4)
    assert (E[:, 0] < E[:, 1]).all()


def test_every_point_has_at_least_k_neighbours(rng):
    X = rng.normal(size=(50, 3))
    E = tv.knn_graph(X, k=6)
    deg = np.bincount(E.ravel(), minlength=50)
    assert deg.min() >= 6


def test_cosine_metric_ignores_scale(rng):
    X = rng.normal(size=(30, 4))
    scaled = X * rng.uniform(0.5, 3.0, size=(30, 1))
    assert np.array_equal(tv.knn_graph(X, 5, "cosine"), tv.knn_graph(scaled, 5, "cosine"))
    assert not np.array_equal(tv.knn_graph(X, 5), tv.knn_graph(scaled, 5))


def test_duplicate_points_do_not_crash_and_are_deterministic():
    X = np.zeros((20, 3))
    a, b = tv.knn_graph(X, 4), tv.knn_graph(X, 4)
    assert np.array_equal(a, b)
    assert (a[:, 0] != a[:, 1]).all()  # never a self-loop
    assert np.bincount(a.ravel(), minlength=20).min() >= 4
    bc = tv.zigzag_persistence([X, X, X], k=4)
    assert (bc.betti(0) >= 1).all()


@pytest.mark.parametrize(
    "clouds, k, message",
    [
        (np.zeros((3, 5, 2)), 5, "smaller than the number of points"),
        (np.zeros((3, 5, 2)), 0, "k must be >= 1"),
        (np.zeros((1, 5, 2)), 2, "at least 2 layers"),
        ([np.zeros((5, 2)), np.zeros((6, 2))], 2, "same number of points"),
        ([np.zeros((5, 2)), np.full((5, 2), np.nan)], 2, "NaN/inf"),
        ([np.zeros((5, 2)), np.full((5, 2), np.inf)], 2, "NaN/inf"),
        (np.zeros((5, 2)), 2, "single 2-D cloud"),
        ([np.zeros((5,)), np.zeros((5,))], 2, "must be 2-D"),
    ],
)
def test_bad_input_gives_clear_error(clouds, k, message):
    with pytest.raises(TopoVLMInputError, match=message):
        tv.zigzag_persistence(clouds, k=k)


def test_unknown_metric_and_engine_are_named(rng):
    X = rng.normal(size=(3, 10, 2))
    with pytest.raises(TopoVLMInputError, match="metric"):
        tv.zigzag_complexes(X, 3, metric="manhattan")
    with pytest.raises(TopoVLMInputError, match="engine"):
        tv.zigzag_persistence(X, 3, engine="gpu")
    with pytest.raises(TopoVLMInputError, match="zero vector"):
        tv.knn_graph(np.zeros((5, 2)), 2, metric="cosine")


def test_flag_triangles_match_brute_force(rng):
    X = rng.normal(size=(30, 3))
    E = tv.knn_graph(X, 5)
    es = {tuple(e) for e in E.tolist()}
    brute = [t for t in itertools.combinations(range(30), 3) if {(t[0], t[1]), (t[0], t[2]), (t[1], t[2])} <= es]
    assert [tuple(t) for t in tv.flag_triangles(E, 30).tolist()] == brute


def test_flag_tetrahedra_match_brute_force(rng):
    X = rng.normal(size=(30, 6))
    E = tv.knn_graph(X, 8)
    es = {tuple(e) for e in E.tolist()}
    brute = [q for q in itertools.combinations(range(30), 4) if set(itertools.combinations(q, 2)) <= es]
    assert len(brute) > 10  # the test means something
    assert [tuple(q) for q in tv.flag_cliques(E, 30, 4).tolist()] == brute
    assert (tv.flag_cliques(E, 30, 2) == E).all()
    with pytest.raises(TopoVLMInputError, match="at least 2"):
        tv.flag_cliques(E, 30, 1)


def test_intersection_complex_is_flag_complex_of_common_edges(rng):
    X = tv.drifting_clouds(3, 40, 4, drift=0.5, seed=1)
    zz = tv.zigzag_complexes(X, 5)
    common = {tuple(e) for e in zz.edges(0).tolist()} & {tuple(e) for e in zz.edges(2).tolist()}
    assert {tuple(e) for e in zz.edges(1).tolist()} == common
    tri0 = {tuple(t) for t in zz.triangles(0).tolist()}
    tri2 = {tuple(t) for t in zz.triangles(2).tolist()}
    assert {tuple(t) for t in zz.triangles(1).tolist()} == tri0 & tri2
    counts = zz.simplex_counts()
    assert counts.shape == (5, 3) and (counts[:, 0] == 40).all()


def test_hand_built_edges_are_normalised():
    zz = tv.ZigzagComplexes(4, [np.array([[1, 0], [3, 2], [0, 1]]), np.array([[0, 1]])])
    assert zz.edges(0).tolist() == [[0, 1], [2, 3]]
    with pytest.raises(TopoVLMInputError, match="distinct vertices"):
        tv.ZigzagComplexes(3, [np.array([[0, 3]]), np.array([[0, 1]])])
