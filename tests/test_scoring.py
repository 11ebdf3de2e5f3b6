import numpy as np
import pytest

import topovlm as tv
from topovlm import TopoVLMInputError

# the EPI reading (the paper's image, alive-at-l survival, distance weight, output clouds; H1 as the
# default) with a narrow kernel that pins the definitions layer by layer
EPI = dict(representation="epi", survival="alive", alpha=1.0, include_self=False, layer_map="output")
SHARP = dict(sigma=0.25, **EPI)


def block_clouds(seed=0, n_layers=12, block=(5, 9), n=60):
    """Independent random clouds, except a run of identical copies."""
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(n_layers, n, 2))
    Y[block[0] : block[1]] = Y[block[0]]
    return Y


def disc_then_circle(seed=0, n=60, n_disc=8, n_circle=4):
    rng = np.random.default_rng(seed)
    r, th = np.sqrt(rng.uniform(0, 1, n)), rng.uniform(0, 2 * np.pi, n)
    disc = np.stack([r * np.cos(th), r * np.sin(th)], 1)
    th = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n
    circle = np.stack([np.cos(th), np.sin(th)], 1) + 0.03 * rng.normal(size=(n, 2))
    return np.stack([disc] * n_disc + [circle] * n_circle)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_block_of_identical_layers_is_most_consistent_and_selected_first(seed):
    res = tv.search(block_clouds(seed), k=5, sparsity=3 / 11, **SHARP)
    S = res.scores.combined_consistency
    assert set(np.argsort(-S)[:4].tolist()) == {5, 6, 7, 8}
    # decoder layer i is scored by cloud i+1: the chosen ones output block clouds
    assert set(res.layers_to_remove) <= {4, 5, 6, 7}


@pytest.mark.parametrize("seed", [0, 1])
def test_layer_where_a_circle_appears_has_high_activity_and_is_kept(seed):
    clouds = disc_then_circle(seed)  # circle appears at cloud 8 = output of decoder layer 7
    res = tv.search(clouds, k=6, sparsity=0.25, **SHARP)
    A = res.scores.combined_activity
    assert A[8] == A[1:].max() and A[8] > 0
    assert 7 not in res.layers_to_remove
    bars = res.barcode.effective().select(1)
    assert (8, 11) in set(zip(bars.births.tolist(), bars.deaths.tolist()))


def test_scores_are_invariant_to_permutation_and_rotation(rng):
    X = tv.drifting_clouds(8, 60, 4, drift=0.6, seed=3)
    base = tv.search(X, k=6, sparsity=0.25)
    perm = rng.permutation(60)
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    for Y in (X[:, perm], X @ Q):
        other = tv.search(Y, k=6, sparsity=0.25)
        np.testing.assert_allclose(other.scores.consistency, base.scores.consistency, atol=1e-12)
        np.testing.assert_allclose(other.scores.activity, base.scores.activity, atol=1e-12)
        assert other.layers_to_remove == base.layers_to_remove


def test_survival_lies_in_unit_interval_and_is_one_on_the_diagonal():
    res = tv.search(tv.drifting_clouds(10, 80, 4, seed=1), k=8)
    Z = res.scores.survival
    assert Z.min() >= 0 and Z.max() <= 1
    for z in Z:
        alive = z.sum(axis=1) > 0
        np.testing.assert_allclose(np.diag(z)[alive], 1.0)


def test_survival_of_a_single_bar_is_known():
    # one class alive on layers [2, 5] of 0..7, unsmoothed
    eff = tv.EffectiveIntervals(np.array([1]), np.array([2]), np.array([5]), 8)
    epi = tv.EffectivePersistenceImage(dims=(1,), smooth=False).fit(eff)
    Z = tv.survival_matrix(epi.image(1), epi.v_)
    expected = np.zeros((8, 8))
    expected[2:6, 2:6] = 1
    np.testing.assert_array_equal(Z, expected)


def test_epi_peaks_at_birth_and_persistence_with_linear_weight():
    eff = tv.EffectiveIntervals(np.array([0, 1, 1]), np.array([0, 3, 1]), np.array([7, 6, 1]), 8)
    epi = tv.EffectivePersistenceImage(sigma=0.5).fit(eff)
    assert np.unravel_index(epi.image(1).argmax(), epi.image(1).shape) == (3, 3)
    assert np.unravel_index(epi.image(0).argmax(), epi.image(0).shape) == (0, 7)
    # tau = 0 weighs nothing: image 1 has the mass of one bar only
    single = tv.EffectivePersistenceImage(sigma=0.5, dims=(1,)).fit(
        tv.EffectiveIntervals(np.array([1]), np.array([3]), np.array([6]), 8)
    )
    np.testing.assert_allclose(epi.image(1), single.image(1))


def test_weight_functions_are_pluggable():
    eff = tv.EffectiveIntervals(np.array([1, 1]), np.array([0, 2]), np.array([1, 6]), 8)
    a = tv.EffectivePersistenceImage(weight="uniform", dims=(1,)).fit(eff).images_
    b = tv.EffectivePersistenceImage(weight=lambda tau, L: np.ones_like(tau), dims=(1,)).fit(eff).images_
    np.testing.assert_allclose(a, b)
    with pytest.raises(TopoVLMInputError, match="weight"):
        tv.EffectivePersistenceImage(weight="cubic")


def test_sparsity_removes_exactly_round_s_L_distinct_layers(rng):
    scores = rng.normal(size=32)
    for s in (0.1, 0.25, 0.5, 0.6, 0.9):
        sel = tv.select_by_sparsity(scores, s)
        assert len(sel.layers) == len(set(sel.layers)) == round(s * 32)
        assert all(0 <= i < 32 for i in sel.layers)
        assert sel.layers == sorted(sel.layers)


def test_sparsity_ties_go_to_lower_activity_first():
    sel = tv.select_by_sparsity([1.0, 1.0, 1.0, 0.0], 0.25, activity=[3.0, 1.0, 2.0, 0.0])
    assert sel.layers == [1]


def test_eps_one_removes_only_the_argmax(rng):
    scores = rng.normal(size=20)
    assert tv.select_by_threshold(scores, 1.0).layers == [int(np.argmax(scores))]
    assert len(tv.select_by_threshold(np.abs(scores), 0.5).layers) == int(
        (np.abs(scores) >= 0.5 * np.abs(scores).max()).sum()
    )


def test_keep_and_max_consecutive_are_honoured():
    scores = np.arange(10, dtype=float)  # layer 9 most redundant
    sel = tv.select_by_sparsity(scores, 0.4, keep=(0, -1), max_consecutive=2)
    assert 9 not in sel.layers and 0 not in sel.layers
    runs, run = [], 0
    for i in range(10):
        run = run + 1 if i in sel.layers else 0
        runs.append(run)
    assert max(runs) <= 2 and len(sel.layers) == 4
    with pytest.raises(TopoVLMInputError, match="cannot remove"):
        tv.select_by_sparsity(scores, 0.9, max_consecutive=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=-1.0), "alpha"),
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=-2.0), "sigma"),
        (dict(sparsity=0.0), "sparsity"),
        (dict(sparsity=1.0), "sparsity"),
        (dict(sparsity=1.5), "sparsity"),
        (dict(eps=0.0), "eps"),
        (dict(eps=1.5), "eps"),
        (dict(representation="barcode"), "representation"),
        (dict(homology="cech"), "homology"),
    ],
)
def test_bad_parameters_give_clear_errors(kwargs, message):
    with pytest.raises(TopoVLMInputError, match=message):
        tv.search(tv.drifting_clouds(4, 20, 3), k=4, **kwargs)


def test_selection_functions_validate_their_own_arguments():
    with pytest.raises(TopoVLMInputError, match="sparsity"):
        tv.select_by_sparsity([1.0, 2.0], 1.0)
    with pytest.raises(TopoVLMInputError, match="eps"):
        tv.select_by_threshold([1.0, 2.0], 0.0)
    with pytest.raises(TopoVLMInputError, match="keep"):
        tv.select_by_sparsity([1.0, 2.0, 3.0], 0.3, keep=(5,))
    with pytest.raises(TopoVLMInputError, match="alpha"):
        tv.distance_weighted_mean(np.eye(3), -0.5)


@pytest.mark.parametrize(
    "variant",
    [
        dict(representation="diagram"),
        dict(homology="standard"),
        dict(k=5),
        dict(k=25),
        dict(alpha=0.5),
        dict(alpha=2.0),
        dict(weight="uniform"),
        dict(eps=0.99),
    ],
)
def test_ablation_variants_run_end_to_end(variant):
    res = tv.search(tv.drifting_clouds(9, 64, 4, seed=5), **{"k": 8, **variant})
    assert res.scores.consistency.shape[1] == 9
    assert 0 < len(res.layers_to_remove) < 8
    if variant.get("homology") == "standard":
        assert res.barcode is None


@pytest.mark.parametrize("homology", ["zigzag", "standard"])
def test_search_scores_h2_beside_h0_and_h1(homology, tmp_path):
    X = tv.drifting_clouds(7, 60, 8, drift=0.1, seed=2)  # slow drift: H2 classes that last several layers
    res = tv.search(X, k=10, sparsity=0.5, dims=(0, 1, 2), homology=homology)
    assert res.images.shape[0] == 3 and res.scores.activity.shape == (3, 7)
    assert res.scores.activity[2].sum() > 0  # H2 is present in these clouds and scored
    if homology == "zigzag":
        assert len(res.barcode.intervals(2)) > 0
    res.save(tmp_path / "h2")
    assert tv.SearchResult.load(tmp_path / "h2").layers_to_remove == res.layers_to_remove
    with pytest.raises(TopoVLMInputError, match=r"subset of \(0, 1, 2\)"):
        tv.search(X, k=10, dims=(3,))


def test_search_result_roundtrips_through_disk(tmp_path):
    res = tv.search(tv.drifting_clouds(9, 64, 4, seed=6), k=8, sparsity=0.5, keep=(0,))
    res.save(tmp_path / "run")
    back = tv.SearchResult.load(tmp_path / "run")
    assert back.config == res.config
    assert back.layers_to_remove == res.layers_to_remove
    assert back.barcode == res.barcode
    np.testing.assert_array_equal(back.images, res.images)
    np.testing.assert_array_equal(back.scores.survival, res.scores.survival)
    assert set(res.timings) >= {"complexes", "homology", "images", "scoring", "selection", "total"}
    assert not any(p.suffix in (".pkl", ".pickle") for p in (tmp_path / "run").iterdir())


def test_loading_a_missing_or_corrupted_search_is_a_clear_error(tmp_path):
    with pytest.raises(TopoVLMInputError, match="no saved search"):
        tv.SearchResult.load(tmp_path)
    res = tv.search(tv.drifting_clouds(5, 30, 3), k=5)
    res.save(tmp_path)
    (tmp_path / "search.npz").write_bytes(b"not a zip file")
    with pytest.raises(TopoVLMInputError, match="corrupted"):
        tv.SearchResult.load(tmp_path)
