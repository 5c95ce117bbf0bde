"""The set comparison (distances, KDE, overlap, KL) against values known in closed form."""

import math

import numpy as np
import pytest

from jam.evaluation import mgeval


def test_intra_and_inter_set_distances():
    assert sorted(mgeval.intra_set_distances(np.array([0.0, 3.0, 4.0]))) == [1, 3, 4]
    assert mgeval.intra_set_distances(np.array([[0, 0], [3, 4]])).tolist() == [5]
    inter = mgeval.inter_set_distances(np.array([[0.0]]), np.array([[1.0], [2.0]]))
    assert inter.tolist() == [1, 2]
    x = np.random.default_rng(0).normal(size=(5, 3))
    y = np.random.default_rng(1).normal(size=(4, 3))
    brute = [np.linalg.norm(a - b) for a in x for b in y]
    assert np.allclose(mgeval.inter_set_distances(x, y), brute)


def test_kde_integrates_to_one_and_matches_a_single_gaussian():
    grid = np.linspace(-10, 10, 4001)
    density = mgeval.kde(np.array([1.0]), grid, width=2.0)
    assert np.sum(density) * (grid[1] - grid[0]) == pytest.approx(1.0, abs=1e-3)
    assert density[np.argmin(abs(grid - 1))] == pytest.approx(1 / (2 * math.sqrt(2 * math.pi)))


def test_identical_samples_overlap_fully():
    a = np.random.default_rng(0).normal(size=500)
    assert mgeval.overlap_area(a, a) == pytest.approx(1.0, abs=1e-3)
    assert mgeval.kl_divergence(a, a) == pytest.approx(0.0, abs=1e-9)


def test_overlap_and_kl_of_two_unit_gaussians():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)
    # N(0,1) and N(1,1) overlap by 2 * Phi(-1/2) = 0.617; KL = 1/2 nat
    assert mgeval.overlap_area(a, b) == pytest.approx(0.617, abs=0.03)
    assert mgeval.kl_divergence(a, b) == pytest.approx(0.5, abs=0.08)


def test_far_apart_samples_do_not_overlap():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(50, 1, 300)
    assert mgeval.overlap_area(a, b) < 1e-3
    assert mgeval.kl_divergence(a, b) > 10


def test_compare_sets_prefers_a_set_like_the_reference():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, (150, 4))
    similar = rng.normal(0, 1, (150, 4))
    shifted = rng.normal(3, 1, (150, 4))
    near, far = mgeval.compare_sets(similar, reference), mgeval.compare_sets(shifted, reference)
    assert near.overlap > 0.8 > 0.2 > far.overlap
    assert near.kl < far.kl
    assert near.inter.size == 150 * 150 and near.intra_reference.size == 150 * 149 // 2


def test_compare_sets_drops_undefined_rows_and_needs_two():
    reference = np.array([1.0, 2.0, np.nan, 3.0])
    result = mgeval.compare_sets(np.array([1.0, 2.5]), reference)
    assert result.intra_reference.size == 3
    with pytest.raises(ValueError):
        mgeval.compare_sets(np.array([1.0, np.nan]), reference)
