"""Each verdict of each of the paper's findings, from constructed numbers (the rules in report/verdicts.py)."""

import math

import pytest

from subnetworks.report.verdicts import (
    CONTRADICTED,
    NOISE,
    PRETRAINING,
    SUPPORTED,
    UNTESTABLE,
    Estimate,
    beyond_pretraining,
    degrades,
    not_correlated,
    overlap_order,
    transfer_well,
)

E = Estimate
NONE = E(math.nan)


@pytest.mark.parametrize(
    ("change", "vs_p", "usable", "at_chance", "verdict"),
    [
        (E(-0.01, -0.03, 0.01), E(0.10, 0.05, 0.15), 12, 0, SUPPORTED),
        (E(-0.01, -0.03, 0.01), E(0.01, -0.02, 0.04), 12, 0, PRETRAINING),  # no better than P on the target
        (E(-0.20, -0.25, -0.15), E(0.1, 0.05, 0.15), 12, 0, CONTRADICTED),
        (E(-0.04, -0.09, 0.01), E(0.1, 0.05, 0.15), 12, 0, NOISE),  # the interval reaches below −5 %
        (E(-0.01, -0.03, 0.01), E(0.1, 0.05, 0.15), 2, 10, UNTESTABLE),  # most cells at chance
        (E(-0.01), E(0.1), 12, 0, NOISE),  # no interval
    ],
)
def test_transfer_well(change, vs_p, usable, at_chance, verdict):
    assert transfer_well(change, vs_p, usable, at_chance)[0] == verdict


@pytest.mark.parametrize(
    ("low", "high", "usable", "at_chance", "verdict"),
    [
        (E(0.0, -0.02, 0.02), E(-0.10, -0.14, -0.06), 12, 0, SUPPORTED),
        (E(-0.10, -0.14, -0.06), E(0.0, -0.02, 0.02), 12, 0, CONTRADICTED),
        (E(0.0, -0.05, 0.05), E(-0.03, -0.08, 0.02), 12, 0, NOISE),
        (E(0.0, -0.02, 0.02), E(-0.1, -0.2, 0.0), 3, 9, UNTESTABLE),  # the 80 % sub-networks collapsed
        (NONE, E(-0.1, -0.2, 0.0), 12, 0, UNTESTABLE),  # nothing off chance at 50 %
    ],
)
def test_degrades(low, high, usable, at_chance, verdict):
    assert degrades(low, high, usable, at_chance)[0] == verdict


ORDER = ["mlm", "xnli", "ner"]


def _three(values, width=0.01):
    return {t: E(v, v - width, v + width) for t, v in zip(ORDER, values)}


@pytest.mark.parametrize(
    ("raw", "excess", "verdict"),
    [
        (_three([0.6, 0.8, 0.9]), _three([0.1, 0.2, 0.3]), SUPPORTED),
        (_three([0.6, 0.8, 0.9]), _three([0.3, 0.2, 0.1]), PRETRAINING),  # the order is P's, not beyond it
        (_three([0.9, 0.8, 0.6]), _three([0.1, 0.2, 0.3]), CONTRADICTED),
        (_three([0.80, 0.81, 0.82], width=0.05), _three([0.1, 0.2, 0.3]), NOISE),
        ({"mlm": E(0.6, 0.5, 0.7), "ner": E(0.9, 0.8, 1.0)}, {}, UNTESTABLE),  # no XNLI-like task
    ],
)
def test_overlap_order(raw, excess, verdict):
    assert overlap_order(raw, excess, ORDER)[0] == verdict


def test_not_correlated():
    assert not_correlated([0.4, 0.9, 0.3], smallest_p=0.001)[0] == SUPPORTED
    assert not_correlated([0.4, 0.001, 0.3], smallest_p=0.001)[0] == CONTRADICTED
    verdict, reason = not_correlated([0.04, 0.5], smallest_p=1 / 24)  # 4 languages: p ≥ 1/24 > 0.05 / 2
    assert verdict == UNTESTABLE and "0.042" in reason
    assert not_correlated([math.nan], smallest_p=0.001)[0] == UNTESTABLE


@pytest.mark.parametrize(
    ("excess", "verdict"),
    [
        (E(0.3, 0.2, 0.4), SUPPORTED),
        (E(0.02, -0.05, 0.09), PRETRAINING),
        (E(-0.2, -0.3, -0.1), CONTRADICTED),
        (E(0.3), NOISE),
        (NONE, UNTESTABLE),
    ],
)
def test_beyond_pretraining(excess, verdict):
    assert beyond_pretraining(excess, E(0.5, 0.4, 0.6))[0] == verdict
