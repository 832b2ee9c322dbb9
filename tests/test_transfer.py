import math

import pandas as pd
import pytest

from subnetworks.transfer import relative_change, transfer_matrix


def test_relative_change_on_a_hand_made_matrix():
    matrix = pd.DataFrame(
        [[0.80, 0.60, 0.45], [0.70, 0.50, 0.40], [0.72, 0.55, 0.50]],
        index=["en", "ur", "zh"],
        columns=["en", "ur", "zh"],
    )
    change = relative_change(matrix)
    assert change["en"] == pytest.approx(((0.60 - 0.50) / 0.50 + (0.45 - 0.50) / 0.50) / 2)
    assert change["ur"] == pytest.approx(((0.70 - 0.80) / 0.80 + (0.40 - 0.50) / 0.50) / 2)
    assert change["zh"] == pytest.approx(((0.72 - 0.80) / 0.80 + (0.55 - 0.50) / 0.50) / 2)


def test_transfer_matrix_pivots_and_averages_seeds():
    rows = [
        {"source": "en", "target": "en", "score": 0.8},
        {"source": "en", "target": "ur", "score": 0.4},
        {"source": "en", "target": "ur", "score": 0.6},
        {"source": "ur", "target": "ur", "score": 0.5},
        {"source": "ur", "target": "en", "score": 0.7},
    ]
    m = transfer_matrix(rows)
    assert list(m.index) == ["en", "ur"] and list(m.columns) == ["en", "ur"]
    assert m.at["en", "ur"] == pytest.approx(0.5)
    assert math.isclose(relative_change(m)["ur"], (0.7 - 0.8) / 0.8)
