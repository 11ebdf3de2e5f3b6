"""Ablations: variants of the search on shared clouds, the table, selection stability."""

import pytest

from topovlm import TopoVLMInputError
from topovlm.studies import ablation
from topovlm.topology import selection


def test_jaccard_and_its_random_baseline():
    assert selection.jaccard([1, 2, 3], [2, 3, 4]) == pytest.approx(0.5)
    assert selection.jaccard([], []) == 1.0 and selection.jaccard([1], [2]) == 0.0
    # two random halves of 30 layers: E|A & B| = 7.5, so the index is about 7.5 / 22.5
    assert selection.random_jaccard(30, 15) == pytest.approx(1 / 3, abs=0.03)
    assert selection.random_jaccard(30, 29) > 0.9


def test_ablation_table_reports_the_change_against_the_default():
    rows = [
        ablation.AblationRow(ablation.DEFAULT, {}, (0, 1, 2), {"a": 0.5, "all": 0.5}, 0.6, 0.1),
        ablation.AblationRow("k = 5", {"k": 5}, (3, 4, 5), {"a": 0.4, "all": 0.4}, 0.45, 0.1),
    ]
    table = ablation.ablation_table(rows, reported=ablation.REPORTED)
    assert (
        table.splitlines()[0] == "| variant | layers removed | a | relative score | change | paper (reported change) |"
    )
    assert f"| {ablation.DEFAULT} | 0-2 | 50.0 | 0.600 | - |  |" in table
    assert "| k = 5 | 3-5 | 40.0 | 0.450 | -15.0 | below k = 15 |" in table


def test_stability_table_compares_every_pair():
    text = ablation.stability_table({0: [1, 2, 3, 4], 1: [1, 2, 3, 5], 2: [6, 7, 8, 9]}, 10)
    assert "| 0 | 1.00 | 0.60 | 0.00 |" in text
    assert "mean pairwise Jaccard index 0.20" in text and "4 of 10 layers" in text


def test_stability_needs_two_seeds():
    with pytest.raises(TopoVLMInputError, match="two calibration seeds"):
        ablation.selection_stability(None, "fortunes", seeds=[0])


@pytest.fixture(scope="module")
def llava():
    pytest.importorskip("peft")
    from topovlm.models import mini

    return mini.load("mini-llava-next")


@pytest.mark.slow
def test_every_variant_searches_the_same_clouds_and_removes_the_same_number_of_layers(llava):
    import topovlm as tv

    calib, qs = tv.studies.sweep.study_data("easy-vqa", n_calib=12, n=24, seed=2)
    clouds = tv.extract(llava, calib, batch_size=6, cache_dir=False, progress=False)
    variants = {
        ablation.DEFAULT: {},
        "standard PH instead of zigzag": {"homology": "standard"},
        "k = 25": {"k": 25},
        "first and last layer kept (ours)": {"keep": (0, -1)},
    }
    full, rows = ablation.run_ablation(llava, clouds, qs, sparsity=0.5, variants=variants, progress=False)
    assert [r.name for r in rows] == list(variants)
    assert all(len(r.layers) == 15 for r in rows)
    assert list(rows[0].layers) == tv.search(clouds, k=11, sparsity=0.5).layers_to_remove
    assert rows[2].options["k"] == 11  # capped at N - 1
    assert 0 not in rows[3].layers and 29 not in rows[3].layers
    assert full["all"] >= 0.9 and all(0 <= r.relative <= 1.2 for r in rows)


@pytest.mark.slow
def test_selection_stability_returns_one_choice_per_seed(llava):
    chosen = ablation.selection_stability(
        llava, "easy-vqa", seeds=(0, 1), n_calib=10, sparsity=0.2, batch_size=5, cache_dir=False, progress=False
    )
    assert list(chosen) == [0, 1] and all(len(v) == 6 and v == sorted(v) for v in chosen.values())
