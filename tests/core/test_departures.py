"""Departures from P and the excess overlap on hand-built masks whose answers are worked out in the comments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subnetworks.core.departures import Departures, departure_counts, departure_pairs
from subnetworks.core.masks import Mask
from subnetworks.core.overlap import PackedMasks


def _mask(kept: list[int], n: int = 10) -> Mask:
    t = torch.zeros(n, dtype=torch.bool)
    t[kept] = True
    return Mask({"w": t})


def _departures(a: list[int], b: list[int], p: list[int], band: list[int]) -> Departures:
    packed = PackedMasks.pack({"a": _mask(a), "b": _mask(b), "p": _mask(p), "band": _mask(band)})
    return Departures(PackedMasks(["a", "b"], packed.words[:2], packed.segments), packed.words[2], packed.words[3])


# P keeps 0-4; A swaps 0 for 5, B swaps 0 for 6; the band around the threshold is 3-6
CASE = {"a": [1, 2, 3, 4, 5], "b": [1, 2, 3, 4, 6], "p": [0, 1, 2, 3, 4], "band": [3, 4, 5, 6]}


def test_departure_sets_and_their_overlap():
    (row,) = departure_pairs(_departures(**CASE))
    assert row["jaccard"] == pytest.approx(4 / 6)  # {1,2,3,4} of {1,...,6}
    assert row["gained_jaccard"] == 0.0 and row["lost_jaccard"] == 1.0  # gains {5} vs {6}; both lost {0}
    assert row["expected_gained_jaccard"] == pytest.approx(0.2 * 0.2 / (0.2 + 0.2 - 0.04))  # 1 of 5 outside P each
    assert row["expected_lost_jaccard_band"] == pytest.approx(0.5 * 0.5 / (0.5 + 0.5 - 0.25))  # 1 of 2 in band ∩ P


def test_excess_overlap_against_what_p_and_the_counts_predict():
    (row,) = departure_pairs(_departures(**CASE))
    # whole pools: E|A∩B| = 5 − 1 − 1 + 1·1/5 (both lose the same) + 1·1/5 (both gain the same) = 3.4 of |A| = |B| = 5
    assert row["jaccard_p"] == pytest.approx(3.4 / (10 - 3.4))
    assert row["excess"] == pytest.approx((4 / 6 - 3.4 / 6.6) / (1 - 3.4 / 6.6))
    # in the band (2 weights of P, 2 outside): E|A∩B| = 5 − 2 + 1/2 + 1/2 = 4: exactly what they share, excess 0
    assert row["jaccard_p_band"] == pytest.approx(4 / 6)
    assert row["excess_band"] == pytest.approx(0.0)


def test_identical_departures_are_all_excess():
    (row,) = departure_pairs(_departures(a=[1, 2, 3, 4, 5], b=[1, 2, 3, 4, 5], p=[0, 1, 2, 3, 4], band=list(range(10))))
    assert row["jaccard"] == 1.0 and row["gained_jaccard"] == 1.0 and row["excess"] == pytest.approx(1.0)


def test_counts_per_mask():
    rows = {r["mask"]: r for r in departure_counts(_departures(**CASE))}
    assert rows["a"] == {
        "group": "all",
        "mask": "a",
        "gained": 1,
        "lost": 1,
        "departures_in_band": 1,
        "size": 10,
        "p_kept": 5,
        "band_size": 4,
    }


def test_groups_follow_the_grouping():
    n = 8
    masks = {
        "a": Mask({"x": _mask([0, 1], n).tensors["w"], "y": _mask([2, 3], n).tensors["w"]}),
        "b": Mask({"x": _mask([0, 2], n).tensors["w"], "y": _mask([2, 3], n).tensors["w"]}),
        "p": Mask({"x": _mask([0, 1], n).tensors["w"], "y": _mask([2, 4], n).tensors["w"]}),
        "band": Mask({"x": _mask(list(range(n)), n).tensors["w"], "y": _mask(list(range(n)), n).tensors["w"]}),
    }
    packed = PackedMasks.pack(masks)
    d = Departures(PackedMasks(["a", "b"], packed.words[:2], packed.segments), packed.words[2], packed.words[3])
    by_tensor = {r["group"]: r for r in departure_pairs(d, key=lambda name: name)}
    assert by_tensor["x"]["jaccard"] == pytest.approx(1 / 3) and by_tensor["y"]["jaccard"] == 1.0
    assert by_tensor["y"]["gained_jaccard"] == 1.0 and np.isclose(by_tensor["x"]["lost_jaccard"], 0.0)
