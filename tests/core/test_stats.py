import numpy as np
import pytest

from subnetworks.core.stats import spearman


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1])
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_spearman_is_pearson_of_ranks_and_ignores_monotone_transforms():
    x = [0.3, 5.0, -1.0, 2.0, 2.5]
    y = [1.0, 3.0, 2.0, 5.0, 4.0]
    # ranks 2,5,1,3,4 and 1,3,2,5,4: d = 1,2,-1,-2,0, Σd² = 10, ρ = 1 - 6·10/(5·24) = 0.5
    assert spearman(x, y) == pytest.approx(0.5)
    assert spearman(np.exp(x), np.log(y)) == pytest.approx(0.5)
