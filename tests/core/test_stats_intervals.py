"""Intervals and tests of significance: bootstrap coverage on a known answer, paired differences, the Mantel test."""

import math

import numpy as np
import pytest

from subnetworks.core.stats import Resampler, mantel, over_seeds, percentile_interval, ratio


def test_bootstrap_interval_covers_the_true_accuracy_at_its_nominal_rate():
    """Test sets of 300 drawn from a classifier of true accuracy 0.7: the 95 % interval holds 0.7 in 95 % ± 4 %
    of 300 draws (a binomial 95 % band for 300 trials: about ±2.5 %; the percentile bootstrap runs a little short)."""
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(300):
        correct = (rng.random(300) < 0.7).astype(int)
        ones = np.ones(300)
        boot = Resampler(300, seed=trial, resamples=400)
        covered += percentile_interval(ratio(correct, ones), boot.scores(correct, ones)).contains(0.7)
    assert 0.91 <= covered / 300 <= 0.99


def test_paired_bootstrap_finds_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    n = 400
    a = (rng.random(n) < 0.6).astype(int)
    better = np.where(rng.random(n) < 0.15, 1, a)  # b is a with 15 % of its errors fixed: about +6 points
    same = a.copy()
    same[:40] = 1 - same[:40]  # as many fixed as broken at random places: no difference on average
    rng.shuffle(same[:80])
    boot, ones = Resampler(n, seed=3), np.ones(n)
    diff = boot.scores(better, ones) - boot.scores(a, ones)
    assert percentile_interval(ratio(better, ones) - ratio(a, ones), diff).excludes_zero()
    null = boot.scores(a, ones) - boot.scores(a, ones)
    assert not percentile_interval(0.0, null + 1e-12 * rng.standard_normal(len(null))).excludes_zero()


def test_paired_intervals_are_narrower_than_unpaired_ones():
    """Two models right and wrong on mostly the same examples: pairing cancels the shared part of the noise."""
    rng = np.random.default_rng(2)
    n = 300
    a = (rng.random(n) < 0.7).astype(int)
    b = np.where(rng.random(n) < 0.1, 1 - a, a)
    ones = np.ones(n)
    paired = Resampler(n, 5).scores(b, ones) - Resampler(n, 5).scores(a, ones)
    unpaired = Resampler(n, 5).scores(b, ones) - Resampler(n, 6).scores(a, ones)
    assert np.std(paired) < 0.6 * np.std(unpaired)


def test_ratio_scores_resample_whole_sentences():
    """Micro scores (masked tokens, entities) resample sentences: one resample that draws sentence 0 twice counts
    its tokens twice."""
    boot = Resampler(3, seed=0, resamples=1)
    boot.weights = np.array([[2.0, 0.0, 1.0]])
    assert boot.scores([1, 5, 2], [4, 5, 2]).tolist() == [pytest.approx((2 * 1 + 2) / (2 * 4 + 2))]
    with pytest.raises(ValueError, match="3"):
        boot.scores([1, 2], [1, 2])
    assert ratio([0, 0], [0, 0]) == 0.0


def test_resampling_is_seeded():
    assert np.array_equal(Resampler(50, 7).weights, Resampler(50, 7).weights)
    assert not np.array_equal(Resampler(50, 7).weights, Resampler(50, 8).weights)


def test_interval_over_seeds_is_the_student_t_interval():
    iv = over_seeds([0.5, 0.6, 0.7])
    half = 4.302653 * 0.1 / math.sqrt(3)  # t(0.975, 2) · s / √n
    assert iv.value == pytest.approx(0.6)
    assert (iv.low, iv.high) == (pytest.approx(0.6 - half, abs=1e-5), pytest.approx(0.6 + half, abs=1e-5))
    one = over_seeds([0.5])
    assert one.value == 0.5 and math.isnan(one.low) and not one.excludes_zero()


def _symmetric(values: np.ndarray) -> np.ndarray:
    out = np.triu(values, 1)
    return out + out.T


def test_mantel_p_is_small_for_related_matrices_and_spread_for_independent_ones():
    rng = np.random.default_rng(4)
    base = _symmetric(rng.random((8, 8)))
    rho, p = mantel(base, base + 0.05 * _symmetric(rng.random((8, 8))), permutations=999, seed=1)
    assert rho > 0.9 and p < 0.01
    ps = [mantel(_symmetric(rng.random((6, 6))), _symmetric(rng.random((6, 6))), 199, seed=i)[1] for i in range(60)]
    assert 0.3 < np.mean(ps) < 0.7 and np.mean(np.array(ps) < 0.05) < 0.15  # about uniform under the null


def test_mantel_enumerates_every_permutation_of_few_languages():
    rng = np.random.default_rng(5)
    a = _symmetric(rng.random((4, 4)))
    rho, p = mantel(a, a, permutations=1000)
    assert rho == pytest.approx(1.0)
    assert p * 24 == pytest.approx(round(p * 24))  # a multiple of 1/4!: all 24 orders, no random draws
    with pytest.raises(ValueError, match="square"):
        mantel(a, a[:3, :3])
