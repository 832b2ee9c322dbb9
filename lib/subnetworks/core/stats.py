"""Statistics over small samples of study numbers: ranks, intervals over seeds, paired bootstrap over test examples,
and the Mantel permutation test for two matrices over the same languages.

Every score of the study is a ratio of sums over test examples, Σ num / Σ den: accuracy (correct, 1), masked-token
accuracy (hits, masked tokens of a sentence: resampling keeps a sentence's tokens together) and entity F1
(2·true positives, predicted + gold entities of a sentence: micro F1 is exactly that ratio). So one resampling of a
test set rescores every model evaluated on it, and two models scored on the same resample give a paired bootstrap.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    rx = _average_ranks(np.asarray(x, dtype=float))
    ry = _average_ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for v in np.unique(values):
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided interval; NaN bounds where there is nothing to estimate them from."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def excludes_zero(self) -> bool:
        return not (math.isnan(self.low) or self.contains(0.0))


def over_seeds(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean and Student-t interval over seeds (NaN bounds for a single seed: one run says nothing of the spread)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return Interval(math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if len(v) < 2:
        return Interval(mean, math.nan, math.nan)
    half = _t_quantile(len(v) - 1, confidence) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return Interval(mean, mean - half, mean + half)


def _t_quantile(dof: int, confidence: float) -> float:
    """Student t's two-sided quantile, from its CDF by bisection (keeps scipy out of the dependencies)."""

    def cdf(t: float) -> float:
        xs = np.linspace(0.0, t, 4001)
        density = (1 + xs**2 / dof) ** (-(dof + 1) / 2)
        norm = math.gamma((dof + 1) / 2) / (math.sqrt(dof * math.pi) * math.gamma(dof / 2))
        return 0.5 + norm * float(((density[1:] + density[:-1]) / 2 * np.diff(xs)).sum())

    target, lo, hi = 1 - (1 - confidence) / 2, 0.0, 1000.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < target else (lo, mid)
    return (lo + hi) / 2


class Resampler:
    """Bootstrap weights for one test set of ``n`` examples: ``weights[r, i]`` is how often resample r drew example
    i. Made once per test set from its own seed, so every model scored on that set is resampled the same way (the
    pairing), and reruns give the same intervals."""

    def __init__(self, n: int, seed: int, resamples: int = BOOTSTRAP_RESAMPLES):
        if n < 1:
            raise ValueError("a bootstrap needs at least one example")
        rng = np.random.default_rng(seed)
        self.n = n
        self.weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)

    def scores(self, num: Sequence[float], den: Sequence[float]) -> np.ndarray:
        """Σ num / Σ den on every resample (NaN where a resample has no denominator)."""
        num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
        if num.shape != (self.n,) or den.shape != (self.n,):
            raise ValueError(f"per-example records of {num.shape[0]} examples for a test set of {self.n}")
        top, bottom = self.weights @ num, self.weights @ den
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)


def ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """The score itself: Σ num / Σ den (0 when nothing is in the denominator, as seqeval's F1 without entities)."""
    bottom = float(np.sum(den))
    return float(np.sum(num)) / bottom if bottom > 0 else 0.0


def percentile_interval(value: float, draws: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """The percentile bootstrap interval of ``value`` from its resampled ``draws`` (NaN draws left out)."""
    draws = np.asarray(draws, dtype=float)
    draws = draws[~np.isnan(draws)]
    if len(draws) == 0:
        return Interval(value, math.nan, math.nan)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return Interval(value, float(low), float(high))


def mantel(a: np.ndarray, b: np.ndarray, permutations: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Spearman ρ between the upper triangles of two symmetric matrices over the same items, and its two-sided
    p-value from permuting the items of ``b`` (rows and columns together: the Mantel test). Every permutation is
    enumerated when there are no more than ``permutations`` of them (4 languages: 24, so p ≥ 1/24)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = a.shape[0]
    if a.shape != (n, n) or b.shape != (n, n) or n < 3:
        raise ValueError("the Mantel test needs two square matrices over the same 3 or more items")
    upper = np.triu_indices(n, 1)
    observed = spearman(a[upper], b[upper])
    if math.isnan(observed):
        return observed, math.nan
    if math.factorial(n) <= permutations:
        orders = [np.array(p) for p in itertools.permutations(range(n))]
    else:
        rng = np.random.default_rng(seed)
        orders = [np.arange(n)] + [rng.permutation(n) for _ in range(permutations - 1)]
    null = np.array([spearman(a[upper], b[np.ix_(p, p)][upper]) for p in orders])
    extreme = np.sum(np.abs(np.nan_to_num(null)) >= abs(observed) - 1e-12)
    return observed, float(extreme / len(orders))
