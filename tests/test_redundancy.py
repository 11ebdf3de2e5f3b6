"""Does a score measure redundancy? (topovlm.redundancy, topovlm.topology.statistics)"""

import numpy as np
import pytest
from scipy.stats import spearmanr

import topovlm as tv
from topovlm.models import tiny
from topovlm.studies import readings as readings_study
from topovlm.studies import redundancy as rd
from topovlm.topology.statistics import classes_per_cloud, layer_changes, neighbour_distances


def hand_barcode():
    # A on layers 0-4, B on 1-3, C on 2 only; a fourth class lives only in K_1 ∩ K_2
    return tv.Barcode.from_intervals([(1, 0, 8), (1, 2, 6), (1, 4, 4), (1, 3, 3)], n_layers=5)


def test_layer_changes_count_classes_born_and_ended_by_each_layer():
    ch = layer_changes(hand_barcode(), 1)
    assert ch["born"].tolist() == [1, 1, 0, 0]  # B appears at layer 0's output, C at layer 1's
    assert ch["dying"].tolist() == [0, 0, 1, 1]  # C's last cloud is 2, B's is 3
    assert ch["turnover"].tolist() == [1, 1, 1, 1]
    assert classes_per_cloud(hand_barcode(), 1).tolist() == [1, 2, 3, 2, 1]
    assert ch["betti change"].tolist() == [1, 1, 1, 1]


def test_a_class_alive_to_the_last_cloud_ends_at_no_layer():
    ch = layer_changes(tv.Barcode.from_intervals([(1, 2, 4)], n_layers=3), 1)
    assert ch["born"].tolist() == [1, 0] and ch["dying"].tolist() == [0, 0]


def test_neighbour_distances_vanish_between_equal_diagrams_only():
    d = [np.array([[0.0, np.inf]]), np.array([[0.1, 0.5], [0.2, 0.3]])]
    dgms = [d, d, [d[0], np.array([[0.1, 0.9]])]]
    dist = neighbour_distances(dgms, 1)
    assert dist[0] == 0.0 and dist[1] > 0
    assert neighbour_distances(dgms, 1, "bottleneck")[1] > 0
    with pytest.raises(tv.TopoVLMInputError):
        neighbour_distances(dgms, 1, "manhattan")


def test_calibration_draws_start_with_the_chapters_set_and_stay_in_the_pool():
    idx = rd.calibration_draws(100, 40, 5, seed=3)
    assert idx.shape == (5, 40) and idx[0].tolist() == list(range(40))
    for row in idx:
        assert len(set(row.tolist())) == 40 and row.max() < 100 and (np.diff(row) > 0).all()
    assert not np.array_equal(idx[1], idx[2])
    with pytest.raises(tv.TopoVLMInputError):
        rd.calibration_draws(30, 40)


def test_row_wise_spearman_matches_scipy_with_ties(rng):
    a = rng.integers(0, 4, size=(6, 12)).astype(float)
    b = rng.normal(size=(6, 12))
    ours = rd._spearman(a, b)
    for i in range(6):
        assert ours[i] == pytest.approx(spearmanr(a[i], b[i]).statistic)


def damage_of(values, rng, n_boot=400, noise=0.01):
    values = np.asarray(values, float)
    boot = values[None] + rng.normal(scale=noise, size=(n_boot, len(values)))
    return rd.Damage("m", "relative", values, boot)


def test_a_score_that_is_the_negative_damage_correlates_perfectly(rng):
    dmg = damage_of(np.linspace(0, 1, 12) ** 2, rng, noise=1e-4)
    perfect = rd.Profile("perfect", "statistic", np.repeat(-dmg.values[None], 3, 0))
    backwards = rd.Profile("backwards", "statistic", np.repeat(dmg.values[None], 3, 0))
    noise = rd.Profile("noise", "statistic", rng.normal(size=(10, 12)))
    all_, mid = rd.correlate(perfect, dmg)
    assert all_.value == pytest.approx(1.0) and mid.low > 0.99
    assert rd.correlate(backwards, dmg)[0].value == pytest.approx(-1.0)
    iv = rd.correlate(noise, dmg)[0]
    assert iv.low < 0 < iv.high and abs(iv.value) < 0.3  # no information: the interval straddles 0


def test_the_interval_widens_with_the_calibration_draws(rng):
    dmg = damage_of(np.linspace(0, 1, 16), rng, noise=1e-4)
    steady = rd.Profile(
        "steady", "reading", np.repeat(-dmg.values[None], 10, 0) + rng.normal(scale=0.01, size=(10, 16))
    )
    shaky = rd.Profile("shaky", "reading", -dmg.values[None] + rng.normal(scale=0.5, size=(10, 16)))
    w = lambda p: np.diff([rd.correlate(p, dmg)[0].low, rd.correlate(p, dmg)[0].high])[0]  # noqa: E731
    assert w(shaky) > 5 * w(steady)


def test_greedy_truth_ranks_the_first_removed_highest():
    t = rd.greedy_truth([3, 0, 5], 6)
    assert t.tolist() == [2, 0, 0, 3, 0, 1]


def test_selections_and_their_stability_across_draws():
    same = rd.Profile("s", "reading", np.array([[0.0, 3, 1, 2], [0.1, 3, 1, 2]]))
    assert same.selections(0.5) == [(1, 3), (1, 3)] and same.stability(0.5) == 1.0
    moved = rd.Profile("m", "reading", np.array([[0.0, 3, 1, 2], [3.0, 0, 2, 1]]))
    assert moved.stability(0.5) == 0.0
    assert np.isnan(rd.Profile("one", "baseline", np.array([[0.0, 1, 2, 3]])).stability(0.5))


def test_readings_are_deduplicated_by_what_they_compute():
    readings = [*readings_study.one_at_a_time(), *readings_study.PRESET_READINGS]
    names = [r.name for r in rd.candidates(readings)]
    assert rd.DEFAULT.name == "package default (= Gardinazzi et al. 2025 (normed point); layers [0, -1] kept)"
    assert rd.DEFAULT.name not in names  # it scores the layers as the predecessor's preset: one row, that name
    assert rd.default_of(readings) == "Gardinazzi et al. 2025 (normed point)"
    assert "paper, literal" not in names  # the reconstruction with survival "born"
    assert "survival: born at l (paper's words)" in names
    assert rd.default_of([]) == rd.DEFAULT.name  # no twin among the readings: the default under its own name


@pytest.fixture(scope="module")
def profiles():
    clouds = tv.drifting_clouds(n_layers=9, n_points=220, seed=2)
    readings = [
        r
        for r in readings_study.one_at_a_time()
        if r.clouds_key(0)[:2] == ("ret", "residual") and "n_calib" not in r.changes
    ]
    idx = rd.calibration_draws(220, 180, 3)
    return (
        clouds,
        readings,
        idx,
        rd.topology_profiles(
            {("ret", "residual"): clouds, ("ret", "normed"): clouds}, readings, idx, 0.5, 24, (5,), False
        ),
    )


def test_a_shared_barcode_scores_every_reading_as_its_own_search_does(profiles):
    clouds, readings, idx, profs = profiles
    assert classes_per_cloud(tv.search(clouds[:, idx[0]]).barcode, 1)[1:].min() > 0  # every cloud has H1 here
    by_name = {p.name: p for p in profs}
    for r in rd.candidates(readings):
        for d in (0, 2):
            direct = tv.search(clouds[:, idx[d]], r.config(0.5, 180))
            np.testing.assert_allclose(by_name[r.name].scores[d], direct.selection.scores, err_msg=r.name)


def test_draws_searched_in_parallel_give_the_serial_profiles(profiles):
    clouds, readings, idx, profs = profiles
    par = rd.topology_profiles(
        {("ret", "residual"): clouds, ("ret", "normed"): clouds}, readings, idx, 0.5, 24, (5,), False, n_jobs=2
    )
    assert [p.name for p in par] == [p.name for p in profs]
    for a, b in zip(par, profs):
        np.testing.assert_array_equal(a.scores, b.scores)
        assert a.notes == b.notes
    np.testing.assert_array_equal(par[0].classes, profs[0].classes)


def test_topology_profiles_hold_readings_variants_and_statistics(profiles):
    _, _, idx, profs = profiles
    families = {p.name: p.family for p in profs}
    assert families[rd.DEFAULT.name] == "reading" and families["default, k = 5"] == "variant"
    assert [p.name for p in profs if p.default] == [rd.DEFAULT.name]
    assert families["default, N = 24"] == "variant" and families["turnover (H1)"] == "statistic"
    assert families["neighbour diagram distance (H1)"] == "statistic"
    for p in profs:
        assert p.scores.shape == (3, 8) and np.isfinite(p.scores).all(), p.name
    assert profs[0].classes.shape == (3, 9)


def test_empty_clouds_reach_the_notes_not_only_stderr():
    clouds = tv.drifting_clouds(n_layers=5, n_points=40, seed=0).copy()
    clouds[2] = 0.0  # one cloud collapsed to a point: degenerate, and no H1 class
    profs = rd.topology_profiles(
        {("ret", "residual"): clouds, ("ret", "normed"): clouds},
        [],
        rd.calibration_draws(40, 40, 2),
        0.5,
        None,
        (),
        False,
    )
    default = next(p for p in profs if p.name == rd.DEFAULT.name)
    text = " ".join(default.notes)
    assert "no H1 class at all" in text and "in every draw at cloud(s)" in text and " 2" in text
    assert "fewer than k + 1 distinct points" in text
    rows = rd.correlations([default], rd.Damage("m", "relative", np.arange(4.0), np.tile(np.arange(4.0), (20, 1))))
    assert "no H1 class at all" in rd.notes_text(rows)


@pytest.mark.slow
def test_layer_damage_is_each_layer_removed_alone_on_a_tiny_model():
    ad = tiny.tiny_causal_lm("llama", 6, seed=3)
    bench = readings_study.benchmark("tiny-llama", ad, 6, 6, cache_dir=False)
    dmg = rd.layer_damage(bench, "dev", n_boot=200, progress=False)
    assert dmg.kind == "perplexity" and dmg.values.shape == (6,) and dmg.boot.shape == (200, 6)
    for i in (0, 3):  # log of the perplexity ratio pruned / full
        assert np.exp(dmg.values[i]) == pytest.approx(1 / bench.score("dev", (i,)).value)
        iv = dmg.interval(i)
        assert iv.low <= iv.high
    assert sorted(dmg.critical(6)) == list(range(6))


@pytest.mark.slow
def test_the_whole_study_on_a_tiny_text_model_gives_a_table_and_findings():
    ad = tiny.tiny_causal_lm("llama", 6, seed=3)
    bench = readings_study.benchmark("tiny-llama", ad, 6, 6, cache_dir=False)
    store = readings_study.CloudStore(bench, cache_dir=False)
    readings = [readings_study.Reading("survival: other", {"survival": "other"})]
    st = rd.study(
        bench,
        store,
        readings,
        n_calib=40,
        n_pool=48,
        n_draws=3,
        small_n=24,
        ks=(5,),
        baselines=("shortgpt", "magnitude"),
        baseline_samples=2,
        expensive_samples=2,
        progress=False,
    )
    assert st.damage.kind == "perplexity" and len(st.greedy_order) == 3
    names = {r.name for r in st.rows}
    assert {rd.DEFAULT.name, "survival: other", "ShortGPT (Block Influence)", "magnitude"} <= names
    assert st.default.name == rd.DEFAULT.name and [r.name for r in st.rows if r.default] == [rd.DEFAULT.name]
    table = rd.correlation_table(st.rows)
    assert table.count("\n") == len(st.rows) + 1 and "tiny-llama" in table
    text = rd.findings(st.rows)
    assert text.startswith("**tiny-llama.**") and "ShortGPT" in text and rd.DEFAULT.name in text
    frame = rd.correlation_frame(st.rows)
    assert set(frame["family"]) == {"reading", "variant", "statistic", "baseline"}
    assert (frame["all low"] <= frame["all high"]).all()
    assert len(rd.misses(st.profile(rd.DEFAULT.name), st.damage)) == 5
    axes = rd.plot_scores_vs_damage(st.profiles, st.damage, names=[rd.DEFAULT.name, "magnitude"])
    assert axes[0].get_title().startswith(rd.DEFAULT.name)


@pytest.mark.slow
def test_a_kept_study_is_read_back_whole_and_a_damaged_one_recomputed(tmp_path, monkeypatch):
    ad = tiny.tiny_causal_lm("llama", 6, seed=4)
    bench = readings_study.benchmark("tiny-llama", ad, 4, 4, cache_dir=tmp_path)
    store = readings_study.CloudStore(bench, cache_dir=tmp_path)
    kw = dict(n_calib=32, n_pool=40, n_draws=2, small_n=None, ks=(), baselines=("magnitude",), progress=False)
    first = rd.study(bench, store, [], **kw)
    (kept,) = (tmp_path / "redundancy").glob("*.npz")

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(rd, "layer_damage", boom)
    again = rd.study(bench, store, [], **kw)
    assert [r.name for r in again.rows] == [r.name for r in first.rows] and again.greedy_order == first.greedy_order
    for a, b in zip(first.profiles, again.profiles):
        np.testing.assert_array_equal(a.scores, b.scores)
        assert a.notes == b.notes and a.family == b.family and a.default == b.default
    np.testing.assert_array_equal(again.damage.boot, first.damage.boot)
    kept.write_bytes(b"cut short")  # an interrupted write: computed again, not a crash
    with pytest.raises(AssertionError, match="recomputed"):
        rd.study(bench, store, [], **kw)
    monkeypatch.undo()
    other = rd.study(bench, store, [], **{**kw, "n_draws": 3})  # another question: its own entry
    assert other.profile(rd.DEFAULT.name).n_draws == 3


def _corr(model, name, family, value):
    from topovlm.intervals import Interval

    iv = Interval(value, value - 0.1, value + 0.1)
    return rd.Correlation(model, name, family, iv, iv, None, 1.0, 10)


def test_the_rule_chooses_the_best_mean_correlation_over_models_ties_to_fewer_changes():
    other = readings_study.Reading("survival: other", {"survival": "other"})
    two = readings_study.Reading("two changes", {"survival": "other", "alpha": 0.5})
    rows = [
        _corr("m1", rd.DEFAULT.name, "reading", 0.1),
        _corr("m2", rd.DEFAULT.name, "reading", 0.1),
        _corr("m1", other.name, "reading", 0.5),
        _corr("m2", other.name, "reading", -0.1),
        _corr("m1", two.name, "reading", 0.2),
        _corr("m2", two.name, "reading", 0.2),
        _corr("m1", "ShortGPT (Block Influence)", "baseline", 0.9),  # not a reading: never chosen
        _corr("m2", "ShortGPT (Block Influence)", "baseline", 0.9),
    ]
    assert rd.choose(rows, [other, two]).name == other.name  # both 0.2 on average: fewer changes wins
    better = [r for r in rows if r.name != two.name] + [_corr("m1", two.name, "reading", 0.3)]
    better.append(_corr("m2", two.name, "reading", 0.2))
    assert rd.choose(better, [other, two]).name == two.name  # 0.25: more changes, but better
    frame = rd.mean_correlations(rows)
    assert list(frame["score"])[-1] == rd.DEFAULT.name and "ShortGPT (Block Influence)" not in set(frame["score"])
    with pytest.raises(tv.TopoVLMInputError):
        rd.choose([r for r in rows if r.family == "baseline"], [other])


def test_the_default_reading_is_what_search_config_defaults_to():
    cfg = rd.DEFAULT.config(0.5, 10**6)
    assert cfg == tv.SearchConfig(sparsity=0.5)
    assert readings_study.matches_defaults(rd.DEFAULT)


def test_only_readings_of_the_ret_pool_are_drawn():
    drawn = [r.name for r in readings_study.one_at_a_time(128) if rd.drawable(r)]
    assert "token: last prompt token" not in drawn and "calibration: 128 samples" not in drawn
    assert "point: normed (predecessor)" in drawn and "survival: born at l (paper's words)" in drawn
