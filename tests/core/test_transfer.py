"""The relative change of Foroutan et al. (2022) on hand-made acc(s, t) matrices."""

import numpy as np
import pytest

from subnetworks.core.transfer import relative_change

# rows: sources en, ur, zh; columns: targets in the same order
MATRIX = np.array([[0.80, 0.60, 0.45], [0.70, 0.50, 0.40], [0.72, 0.55, 0.50]])


def test_relative_change_on_a_hand_made_matrix():
    change = relative_change(MATRIX)
    assert change.shape == (3,)
    assert change[0] == pytest.approx(((0.60 - 0.50) / 0.50 + (0.45 - 0.50) / 0.50) / 2)  # en: +0.2, -0.1 → 0.05
    assert change[1] == pytest.approx(((0.70 - 0.80) / 0.80 + (0.40 - 0.50) / 0.50) / 2)  # ur: -0.125, -0.2
    assert change[2] == pytest.approx(((0.72 - 0.80) / 0.80 + (0.55 - 0.50) / 0.50) / 2)  # zh: -0.1, +0.1 → 0
    assert change.tolist() == pytest.approx([0.05, -0.1625, 0.0])


def test_the_diagonal_itself_never_counts():
    other = MATRIX.copy()
    other[0, 0] = other[1, 1] = other[2, 2] = 0.9  # changes every acc(t, t): every term changes
    assert not np.allclose(relative_change(other), relative_change(MATRIX))
    off = MATRIX.copy()
    off[1, 2] = 0.5  # acc(ur, zh) = acc(zh, zh): only ur's zh term changes, to 0
    change = relative_change(off)
    assert change[1] == pytest.approx(((0.70 - 0.80) / 0.80 + 0.0) / 2)
    assert change[0] == pytest.approx(0.05) and change[2] == pytest.approx(0.0)


def test_sources_are_rows_and_targets_columns():
    assert relative_change(MATRIX.T).tolist() != pytest.approx(relative_change(MATRIX).tolist())
    two = np.array([[0.5, 0.3], [0.2, 0.6]])
    assert relative_change(two).tolist() == pytest.approx([(0.3 - 0.6) / 0.6, (0.2 - 0.5) / 0.5])


def test_a_zero_diagonal_makes_every_other_source_nan():
    zero = MATRIX.copy()
    zero[1, 1] = 0.0  # acc(ur, ur) = 0: no relative change towards ur
    change = relative_change(zero)
    assert np.isnan(change[0]) and np.isnan(change[2])
    assert change[1] == pytest.approx(
        ((0.70 - 0.80) / 0.80 + (0.40 - 0.50) / 0.50) / 2
    )  # ur's own row divides by others


def test_a_missing_score_makes_its_source_nan_and_every_source_that_divides_by_it():
    missing = MATRIX.copy()
    missing[2, 0] = np.nan  # zh → en never ran
    change = relative_change(missing)
    assert np.isnan(change[2]) and change[0] == pytest.approx(0.05) and change[1] == pytest.approx(-0.1625)
    missing[0, 0] = np.nan  # en's own score is missing: every source transferring to en is NaN
    change = relative_change(missing)
    assert np.isnan(change[1]) and np.isnan(change[2])


def test_shapes():
    assert relative_change(np.array([[0.7]])).shape == (1,) and np.isnan(relative_change(np.array([[0.7]]))[0])
    with pytest.raises(ValueError, match="square"):
        relative_change(np.ones((2, 3)))
    with pytest.raises(ValueError, match="square"):
        relative_change(np.ones(3))
    assert relative_change([[0.5, 0.25], [0.5, 0.5]]).tolist() == pytest.approx([-0.5, 0.0])  # lists too
