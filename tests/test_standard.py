import numpy as np
import pytest

import topovlm as tv


def test_circle_has_one_long_h1_class_in_rips():
    theta = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    circle = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    dgms = tv.standard_persistence([circle, 0.5 * circle], filtration="rips")
    for layer, scale in zip(dgms, [1.0, 0.5]):
        h1 = layer[1]
        life = h1[:, 1] - h1[:, 0]
        assert (life > 1.0 * scale).sum() == 1


def test_knn_filtration_essential_classes_match_zigzag_betti():
    X = tv.drifting_clouds(3, 60, 3, seed=4)
    dgms = tv.standard_persistence(X, k=5)
    bc = tv.zigzag_persistence(X, 5)
    for l, layer in enumerate(dgms):
        assert np.isinf(layer[0][:, 1]).sum() == bc.betti(0)[2 * l]
        assert np.isinf(layer[1][:, 1]).sum() == bc.betti(1)[2 * l]


def test_unknown_filtration_is_named():
    with pytest.raises(tv.TopoVLMInputError, match="filtration"):
        tv.standard_persistence(np.zeros((2, 5, 2)), filtration="cech")
