"""The closed-form nulls against brute force: many draws of random masks with very uneven densities per tensor."""

from __future__ import annotations

import numpy as np
import pytest

from subnetworks.core import nulls

SIZES = np.array([4000, 1500, 30000, 800])
KEPT = np.array([[3900, 20, 15000, 400], [100, 1400, 2000, 790], [2000, 750, 29000, 8]])  # densities 0.01 to 0.99


def _layerwise_draw(rng, kept_row):
    return [np.isin(np.arange(n), rng.choice(n, k, replace=False)) for k, n in zip(kept_row, SIZES)]


def _global_draw(rng, total_kept):
    flat = np.zeros(SIZES.sum(), dtype=bool)
    flat[rng.choice(SIZES.sum(), total_kept, replace=False)] = True
    return np.split(flat, np.cumsum(SIZES)[:-1])


def _measured(masks: list[list[np.ndarray]], tensors: list[int]) -> tuple[float, float]:
    both = sum(int(np.logical_and.reduce([m[i] for m in masks]).sum()) for i in tensors)
    either = sum(int(np.logical_or.reduce([m[i] for m in masks]).sum()) for i in tensors)
    n = int(SIZES[tensors].sum())
    return both / either, (both + n - either) / n


@pytest.mark.parametrize("rows", [[0, 1], [0, 2], [1, 2], [0, 1, 2]], ids=["pair01", "pair02", "pair12", "all3"])
@pytest.mark.parametrize("tensors", [[0, 1, 2, 3], [1, 3]], ids=["all", "group"])
def test_layerwise_null_matches_draws(rows, tensors):
    rng = np.random.default_rng(0)
    draws = [_measured([_layerwise_draw(rng, KEPT[r]) for r in rows], tensors) for _ in range(60)]
    jaccard, agreement = nulls.layerwise(KEPT[rows][:, tensors], SIZES[tensors])
    assert np.mean([d[0] for d in draws]) == pytest.approx(jaccard, abs=0.002)
    assert np.mean([d[1] for d in draws]) == pytest.approx(agreement, abs=0.002)


@pytest.mark.parametrize("rows", [[0, 1], [0, 1, 2]], ids=["pair", "all3"])
@pytest.mark.parametrize("tensors", [[0, 1, 2, 3], [1, 3]], ids=["all", "group"])
def test_global_null_matches_draws(rows, tensors):
    rng = np.random.default_rng(1)
    totals = KEPT[rows].sum(axis=1)
    draws = [_measured([_global_draw(rng, k) for k in totals], tensors) for _ in range(60)]
    jaccard, agreement = nulls.global_(totals / SIZES.sum(), int(SIZES[tensors].sum()))
    assert np.mean([d[0] for d in draws]) == pytest.approx(jaccard, abs=0.003)
    assert np.mean([d[1] for d in draws]) == pytest.approx(agreement, abs=0.003)


def test_masks_dense_in_the_same_tensors_overlap_more_than_one_global_density_says():
    """The error this replaces: IMP masks of two languages are dense in the same tensors, so random masks with their
    per-tensor counts overlap far more than random masks of one global density (0.38 vs 0.33 measured at 50 %)."""
    kept = np.array([[3900, 20, 15000, 400], [3800, 40, 14000, 380]])
    layerwise, _ = nulls.layerwise(kept, SIZES)
    global_, _ = nulls.global_(kept.sum(axis=1) / SIZES.sum(), int(SIZES.sum()))
    assert layerwise > global_ + 0.05


def test_equal_densities_everywhere_make_the_nulls_agree():
    sizes = np.array([1000, 3000])
    kept = np.array([[500, 1500], [200, 600]])
    assert nulls.layerwise(kept, sizes) == pytest.approx(nulls.global_(kept.sum(axis=1) / sizes.sum(), 4000))
    assert nulls.layerwise(kept, sizes)[0] == pytest.approx(0.5 * 0.2 / (0.5 + 0.2 - 0.1))


def test_identical_full_and_empty_cases():
    sizes = np.array([10, 20])
    assert nulls.layerwise(np.array([[10, 20], [10, 20]]), sizes) == (1.0, 1.0)  # everything kept: identical
    assert nulls.layerwise(np.array([[0, 0], [0, 0]]), sizes) == (1.0, 1.0)  # nothing kept: agree everywhere
    assert nulls.global_(np.array([1.0, 0.0]), 5) == (0.0, 0.0)
