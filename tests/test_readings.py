"""The named readings of the method: presets, survival normalisations, layer maps,
degenerate clouds, and searching a barcode directly. Expected values are worked
out by hand in the comments."""

import numpy as np
import pytest

import topovlm as tv
from topovlm import TopoVLMInputError

GARDINAZZI = tv.SearchConfig.preset("gardinazzi2025", eps=0.9)


def five_layer_barcode():
    """H1 bars on clouds 0..4 (zigzag indices 0..8), effective layers in brackets:
    A [0, 4], B [1, 3], C [2, 2]; D lives only in the intersection K_1 ∩ K_2
    (zigzag index 3) and is dropped; the H0 bar must be ignored (H1 only)."""
    return tv.Barcode.from_intervals([(1, 0, 8), (1, 2, 6), (1, 4, 4), (1, 3, 3), (0, 0, 8)], n_layers=5)


# beta(j) = H1 bars alive at j = 1, 2, 3, 2, 1; psim(i, j) = bars alive on every layer between i and j;
# r(i) = (1/5) sum_j psim(i, j) / beta(j):
#   r(0) = (1 + 1/2 + 1/3 + 1/2 + 1) / 5 = 2/3        r(1) = (1 + 1 + 2/3 + 1 + 1) / 5 = 14/15
#   r(2) = (1 + 1 + 1 + 1 + 1) / 5 = 1                r(3) = 14/15, r(4) = 2/3
HAND_R = np.array([2 / 3, 14 / 15, 1.0, 14 / 15, 2 / 3])


def test_gardinazzi_score_is_the_hand_computed_mean_of_psim_over_beta():
    res = tv.search(five_layer_barcode(), config=GARDINAZZI)
    np.testing.assert_allclose(res.scores.combined_consistency, HAND_R)
    # decoder layer i is scored by cloud i: the last cloud scores no layer
    np.testing.assert_allclose(res.selection.scores, HAND_R[:-1])


def test_gardinazzi_threshold_cuts_every_layer_within_eps_of_the_max():
    assert tv.search(five_layer_barcode(), config=GARDINAZZI).layers_to_remove == [1, 2, 3]
    strict = tv.SearchConfig.preset("gardinazzi2025", eps=0.95)
    assert tv.search(five_layer_barcode(), config=strict).layers_to_remove == [2]


def test_gardinazzi_with_sparsity_breaks_ties_by_lower_activity():
    cfg = tv.SearchConfig.preset("gardinazzi2025", sparsity=0.5)
    assert cfg.eps is None
    # r(1) = r(3) = 14/15; B is born at 1, nothing at 3: layer 3 goes with layer 2
    assert tv.search(five_layer_barcode(), config=cfg).layers_to_remove == [2, 3]


def test_threshold_maximum_includes_the_final_cloud():
    # clouds 0..2: C [0, 0], A [1, 2], B [2, 2]; beta = 1, 1, 2
    # r(0) = (1 + 0 + 0) / 3 = 1/3, r(1) = (0 + 1 + 1/2) / 3 = 1/2, r(2) = (0 + 1 + 1) / 3 = 2/3
    bc = tv.Barcode.from_intervals([(1, 0, 0), (1, 2, 4), (1, 4, 4)], n_layers=3)
    res = tv.search(bc, config=tv.SearchConfig.preset("gardinazzi2025", eps=0.8))
    np.testing.assert_allclose(res.scores.combined_consistency, [1 / 3, 1 / 2, 2 / 3])
    # 1/2 < 0.8 * 2/3: nothing is cut, although layer 1 is the best decoder layer
    assert res.layers_to_remove == []


def test_survival_normalisations_on_two_bars_by_hand():
    # counts image of A alive on layers [0, 3] and B on [2, 3], 4 layers
    eff = tv.EffectiveIntervals(np.array([1, 1]), np.array([0, 2]), np.array([3, 3]), 4)
    epi = tv.EffectivePersistenceImage(dims=(1,), smooth=False).fit(eff)
    E, v = epi.image(1), epi.v_
    alive = tv.survival_matrix(E, v, normalise="alive")
    other = tv.survival_matrix(E, v, normalise="other")
    born = tv.survival_matrix(E, v, normalise="born")
    # alive at 2: A, B; at 0: A. Z_alive(2, 0) = 1/2, Z_other(2, 0) = 1/1, Z_other(0, 2) = 1/2
    assert alive[2, 0] == 0.5 and alive[0, 2] == 1.0
    assert other[2, 0] == 1.0 and other[0, 2] == 0.5
    # born at 2: B, alive at 3; before layer 2 undefined; nothing born at 1
    assert born[2, 3] == 1.0 and np.isnan(born[2, 0]) and np.isnan(born[2, 1])
    np.testing.assert_array_equal(np.nan_to_num(born[1]), 0.0)


def test_include_self_with_alpha_zero_is_the_plain_mean_over_every_layer():
    M = np.array([[1.0, 0.2, 0.4], [0.5, 1.0, 0.0], [0.3, 0.3, 1.0]])
    np.testing.assert_allclose(tv.distance_weighted_mean(M, 0.0, include_self=True), M.mean(axis=1))
    np.testing.assert_allclose(tv.distance_weighted_mean(M, 0.0), [(0.2 + 0.4) / 2, 0.25, 0.3])
    # with alpha > 0 the diagonal weighs 0 whether included or not
    np.testing.assert_allclose(tv.distance_weighted_mean(M, 1.0, include_self=True), tv.distance_weighted_mean(M, 1.0))


def test_layer_map_input_scores_decoder_layer_i_by_cloud_i():
    bc = five_layer_barcode()
    out = tv.search(bc, dims=(1,), sparsity=0.25, layer_map="output")
    inp = tv.search(bc, dims=(1,), sparsity=0.25, layer_map="input")
    S = out.scores.combined_consistency
    np.testing.assert_allclose(out.selection.scores, S[1:])
    np.testing.assert_allclose(inp.selection.scores, S[:-1])


def test_degenerate_cloud_warns_when_kept_and_is_never_removed_when_dropped(rng):
    clouds = tv.drifting_clouds(8, 60, 4, seed=2)
    clouds[0] = clouds[0][0]  # every sample the same point, as [RET] at the embeddings
    with pytest.warns(UserWarning, match=r"cloud\(s\) \[0\]"):
        tv.search(clouds, k=6, sparsity=0.25)
    res = tv.search(clouds, k=6, sparsity=0.25, degenerate="drop")
    assert res.dropped == [0]
    assert np.isnan(res.scores.combined_consistency[0])
    assert res.barcode.n_layers == 7
    # with the input map, decoder layer 0 is scored by the dropped cloud: kept whatever the sparsity
    inp = tv.search(clouds, k=6, sparsity=6 / 7, degenerate="drop", layer_map="input", keep=())
    assert 0 not in inp.layers_to_remove and len(inp.layers_to_remove) == 6


def test_dropped_search_saves_and_loads(tmp_path):
    clouds = tv.drifting_clouds(6, 40, 3, seed=1)
    clouds[0] = clouds[0][0]
    res = tv.search(clouds, k=5, sparsity=0.4, degenerate="drop", layer_map="input", survival="born")
    back = tv.SearchResult.load(res.save(tmp_path / "s"))
    assert back.dropped == [0] and back.config == res.config and back.layers_to_remove == res.layers_to_remove
    assert back.barcode == res.barcode


def test_presets_and_readings_reject_unknown_names():
    with pytest.raises(TopoVLMInputError, match="unknown preset"):
        tv.SearchConfig.preset("gardinazzi")
    for field, bad in (
        ("survival", "dead"),
        ("layer_map", "middle"),
        ("degenerate", "ignore"),
        ("dims", (3,)),
        ("include_self", "yes"),
    ):
        with pytest.raises(TopoVLMInputError, match=field):
            tv.SearchConfig(**{field: bad})


def test_a_standard_ph_search_of_a_barcode_is_refused():
    with pytest.raises(TopoVLMInputError, match="standard"):
        tv.search(five_layer_barcode(), homology="standard")


def test_threshold_rule_on_scores_without_any_topology_is_a_clear_error():
    with pytest.raises(TopoVLMInputError, match="every layer scores 0"):
        tv.select_by_threshold(np.zeros(6), 0.9)
