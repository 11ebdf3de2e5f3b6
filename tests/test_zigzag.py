import numpy as np
import pytest

import topovlm as tv
from topovlm.topology.zigzag.fast import decompose_zigzag_module

ENGINES = ["fast", "dionysus", "dionysus-fast"]

PATH = [[0, 1], [1, 2], [2, 3]]
SQUARE = PATH + [[0, 3]]


def hand_zigzag(*layers, n=4):
    return tv.ZigzagComplexes(n, [np.array(e) for e in layers])


@pytest.mark.parametrize("engine", ENGINES)
def test_circle_born_and_killed(engine):
    # K0 path, K1 and K2 a square (loop born), K3 square + diagonal (loop filled)
    zz = hand_zigzag(PATH, SQUARE, SQUARE, SQUARE + [[0, 2]])
    bc = tv.zigzag_persistence(zz, engine=engine)
    assert bc.intervals() == [(0, 0, 6), (1, 2, 5)]
    eff = bc.effective().select(1)
    assert (eff.births.tolist(), eff.deaths.tolist(), eff.persistence.tolist()) == ([1], [2], [1])


@pytest.mark.parametrize("engine", ENGINES)
def test_component_splits_and_merges(engine):
    zz = hand_zigzag(PATH, [[0, 1], [2, 3]], PATH)
    bc = tv.zigzag_persistence(zz, engine=engine)
    assert bc.intervals() == [(0, 0, 4), (0, 1, 3)]
    eff = bc.effective()
    assert sorted(zip(eff.births.tolist(), eff.deaths.tolist())) == [(0, 2), (1, 1)]


@pytest.mark.parametrize("engine", ENGINES)
def test_class_living_only_in_an_intersection_has_no_effective_interval(engine):
    zz = hand_zigzag(SQUARE + [[0, 2]], SQUARE + [[1, 3]])
    bc = tv.zigzag_persistence(zz, engine=engine)
    assert bc.intervals(1) == [(1, 1, 1)]
    assert len(bc.effective().select(1)) == 0


def gudhi_betti(zz, t, max_dim=1):
    import gudhi

    st = gudhi.SimplexTree()
    for v in range(zz.n_points):
        st.insert([v])
    for e in zz.edges(t).tolist():
        st.insert(e)
    st.expansion(max_dim + 1)  # the flag complex up to dimension max_dim + 1, built by gudhi itself
    st.compute_persistence(persistence_dim_max=True)
    b = st.betti_numbers() + [0, 0, 0]
    return tuple(b[: max_dim + 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_betti_numbers_of_every_complex_equal_intervals_alive(seed):
    X = tv.drifting_clouds(5, 60, 3, drift=0.4, seed=seed)
    zz = tv.zigzag_complexes(X, 5)
    bc = tv.zigzag_persistence(zz)
    b0, b1 = bc.betti(0), bc.betti(1)
    assert b1.sum() > 0  # the test means something
    for t in range(zz.length):
        assert (b0[t], b1[t]) == gudhi_betti(zz, t)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_h2_betti_numbers_of_every_complex_equal_intervals_alive(seed):
    X = tv.drifting_clouds(5, 50, 8, drift=0.4, seed=seed)
    zz = tv.zigzag_complexes(X, 8)
    bc = tv.zigzag_persistence(zz, max_dim=2)
    betti = np.stack([bc.betti(p) for p in range(3)], axis=1)
    assert betti[:, 2].sum() > 0  # the test means something
    for t in range(zz.length):
        assert tuple(betti[t]) == gudhi_betti(zz, t, max_dim=2)


OCTAHEDRON = [[a, b] for a in range(6) for b in range(a + 1, 6) if (a, b) not in ((0, 5), (1, 4), (2, 3))]


@pytest.mark.parametrize("engine", ENGINES)
def test_sphere_born_and_filled(engine):
    # K0 a path (no sphere), K1 and K2 the octahedron (a 2-sphere), K3 octahedron + an axis (filled)
    path = [[0, 1], [1, 2], [2, 4], [3, 4], [3, 5]]  # a spanning path of the octahedron
    zz = tv.ZigzagComplexes(6, [np.array(e) for e in (path, OCTAHEDRON, OCTAHEDRON, OCTAHEDRON + [[0, 5]])])
    bc = tv.zigzag_persistence(zz, engine=engine, max_dim=2)
    assert bc.intervals(2) == [(2, 2, 5)]
    assert bc.intervals(1) == [] and bc.intervals(0) == [(0, 0, 6)]
    assert tv.zigzag_persistence(zz, engine=engine).intervals() == bc.intervals(0)  # max_dim=1 lists no H2


@pytest.mark.parametrize("seed", range(6))
def test_fast_engine_matches_dionysus_in_h2(seed):
    rng = np.random.default_rng(seed)
    n, layers, k = int(rng.integers(30, 60)), int(rng.integers(2, 6)), int(rng.integers(5, 10))
    X = tv.drifting_clouds(layers, n, 8, drift=float(rng.choice([0.1, 0.4, 1.0])), seed=seed)
    zz = tv.zigzag_complexes(X, k)
    fast = tv.zigzag_persistence(zz, engine="fast", max_dim=2)
    assert fast == tv.zigzag_persistence(zz, engine="dionysus", max_dim=2)
    assert fast.intervals(1) == tv.zigzag_persistence(zz, engine="fast").intervals(1)  # H2 leaves H0/H1 alone


def test_fast_engine_matches_dionysus_fast_in_h2_at_scale():
    X = tv.drifting_clouds(9, 150, 16, seed=3)
    zz = tv.zigzag_complexes(X, 15)
    fast = tv.zigzag_persistence(zz, max_dim=2)
    assert len(fast.intervals(2)) > 200
    assert fast == tv.zigzag_persistence(zz, engine="dionysus-fast", max_dim=2)


@pytest.mark.parametrize("seed", range(8))
def test_fast_engine_matches_dionysus_on_random_clouds(seed):
    rng = np.random.default_rng(seed)
    n, layers, k = int(rng.integers(20, 45)), int(rng.integers(2, 6)), int(rng.integers(3, 7))
    X = tv.drifting_clouds(layers, n, 3, drift=float(rng.choice([0.1, 0.4, 1.0])), seed=seed)
    zz = tv.zigzag_complexes(X, k)
    fast = tv.zigzag_persistence(zz, engine="fast")
    assert fast == tv.zigzag_persistence(zz, engine="dionysus")
    assert fast == tv.zigzag_persistence(zz, engine="dionysus-fast")


def test_fast_engine_matches_dionysus_fast_at_scale():
    X = tv.drifting_clouds(9, 150, 16, seed=3)
    zz = tv.zigzag_complexes(X, 15)
    fast = tv.zigzag_persistence(zz)
    assert len(fast.intervals(1)) > 20
    assert fast == tv.zigzag_persistence(zz, engine="dionysus-fast")


def test_barcode_is_invariant_to_permuting_points(rng):
    X = tv.drifting_clouds(4, 50, 5, seed=7)
    perm = rng.permutation(50)
    assert tv.zigzag_persistence(X, 6) == tv.zigzag_persistence(X[:, perm], 6)


def test_max_dim_zero_gives_only_components():
    X = tv.drifting_clouds(4, 40, 3, seed=2)
    bc0 = tv.zigzag_persistence(X, 5, max_dim=0)
    assert set(bc0.dims.tolist()) == {0}
    assert bc0.intervals() == tv.zigzag_persistence(X, 5).intervals(0)
    with pytest.raises(tv.TopoVLMInputError, match="max_dim"):
        tv.zigzag_persistence(X, 5, max_dim=3)


def test_every_layer_has_one_essential_component_when_connected():
    X = tv.drifting_clouds(6, 80, 4, seed=0)
    bc = tv.zigzag_persistence(X, 15)
    assert (0, 0, bc.length - 1) in bc.intervals(0)


# --- the abstract module decomposition ------------------------------------


@pytest.mark.parametrize(
    "dims, backward, forward, expected",
    [
        ([1, 1, 1], [[1]], [[1]], [(0, 2)]),  # identity both ways
        ([1, 1, 1], [[1]], [[0]], [(0, 1), (2, 2)]),  # forward map zero
        ([1, 1, 1], [[0]], [[1]], [(0, 0), (1, 2)]),  # backward map zero
        ([2, 1, 2], [[0b11]], [[0b01]], [(0, 0), (0, 2), (2, 2)]),
        ([1, 2, 1], [[1, 1]], [[1, 0]], [(0, 1), (1, 2)]),  # W = <w1> + <w0+w1>
        ([0, 0, 1, 1, 1], [[], [1]], [[], [1]], [(2, 4)]),
    ],
)
def test_module_decomposition_on_known_modules(dims, backward, forward, expected):
    assert sorted(decompose_zigzag_module(dims, backward, forward)) == expected


def test_module_decomposition_respects_dimensions(rng):
    # Random modules: the number of bars alive at t must equal dims[t].
    for _ in range(30):
        L = int(rng.integers(1, 5))
        dims = rng.integers(0, 4, size=2 * L + 1).tolist()
        back = [[int(rng.integers(0, 1 << dims[2 * l])) for _ in range(dims[2 * l + 1])] for l in range(L)]
        fwd = [[int(rng.integers(0, 1 << dims[2 * l + 2])) for _ in range(dims[2 * l + 1])] for l in range(L)]
        bars = decompose_zigzag_module(dims, back, fwd)
        alive = [sum(b <= t <= d for b, d in bars) for t in range(2 * L + 1)]
        assert alive == dims
