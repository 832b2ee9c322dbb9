"""A verdict on each of the paper's findings, by rules written here from this run's numbers and intervals.

The rules take small plain inputs (:class:`Estimate`s), so each verdict is tested on constructed cases. The wording
of the verdicts is fixed: *supported*, *contradicted*, *not distinguishable from pre-training*, *not
distinguishable from noise*, *not testable here* (with the reason).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
PRETRAINING = "not distinguishable from pre-training"
NOISE = "not distinguishable from noise"
UNTESTABLE = "not testable here"
VERDICTS = (SUPPORTED, CONTRADICTED, PRETRAINING, NOISE, UNTESTABLE)

GOOD_TRANSFER = -0.05  # "transfers well": the mean relative change stays above −5 % (its whole interval)
ALPHA = 0.05
MIN_USABLE_SHARE = 0.5  # a transfer claim needs at least half its cells off chance


@dataclass(frozen=True)
class Estimate:
    """A number with its 95 % interval (NaN bounds: no interval)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def known(self) -> bool:
        return math.isfinite(self.value)

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def above(self, x: float) -> bool:
        return self.has_interval and self.low > x

    def below(self, x: float) -> bool:
        return self.has_interval and self.high < x


@dataclass(frozen=True)
class Verdict:
    claim: str
    verdict: str
    figure: str  # this run's number(s) behind it, with intervals
    reason: str


def transfer_well(change: Estimate, vs_pretrained: Estimate, usable: int, at_chance: int) -> tuple[str, str]:
    """(a) Sub-networks transfer well at 50 %: the mean relative change over off-chance cells stays above −5 %
    (its interval), and a source's sub-network beats P on the target (else the transfer is P's)."""
    if usable == 0 or usable < MIN_USABLE_SHARE * (usable + at_chance) or not change.known:
        return UNTESTABLE, f"{at_chance} of {usable + at_chance} cells at chance"
    if not change.has_interval:
        return NOISE, "no interval (no per-example records)"
    if change.below(GOOD_TRANSFER):
        return CONTRADICTED, "the interval of the mean change lies below −5 %"
    if not change.above(GOOD_TRANSFER):
        return NOISE, "the interval of the mean change reaches below −5 %"
    if not vs_pretrained.above(0.0):
        return PRETRAINING, "no better than P fine-tuned on the target"
    return SUPPORTED, "within 5 % of the target's own sub-network and better than P on the target"


def degrades(low: Estimate, high: Estimate, usable_high: int, at_chance_high: int) -> tuple[str, str]:
    """(b) Transfer degrades from 50 % to 80 %: the 80 % mean relative change below the 50 % one (their intervals
    apart). Collapsed 80 % models leave nothing to transfer: not testable."""
    total = usable_high + at_chance_high
    if not low.known:
        return UNTESTABLE, "no transfer off chance at the lower sparsity to compare with"
    if total == 0 or usable_high < MIN_USABLE_SHARE * total:
        return UNTESTABLE, f"{at_chance_high} of {total} cells at the higher sparsity at chance (collapsed)"
    if not (low.has_interval and high.has_interval):
        return NOISE, "no interval"
    if high.high < low.low:
        return SUPPORTED, "the higher sparsity's interval lies below the lower one's"
    if high.low > low.high:
        return CONTRADICTED, "the higher sparsity's interval lies above the lower one's"
    return NOISE, "the intervals overlap"


def _ordered(values: Sequence[Estimate]) -> str:
    """'up' when each interval lies above the previous one, 'down' when below, else ''."""
    if not all(v.has_interval for v in values):
        return ""
    if all(b.low > a.high for a, b in zip(values, values[1:])):
        return "up"
    if all(b.high < a.low for a, b in zip(values, values[1:])):
        return "down"
    return ""


def overlap_order(raw: Mapping[str, Estimate], excess: Mapping[str, Estimate], order: Sequence[str]) -> tuple[str, str]:
    """(c) Overlap MLM < XNLI < NER: the raw Jaccard of other-language pairs in that order with separated intervals;
    if the excess over P does not keep the order, the order is P's."""
    if any(task not in raw or not raw[task].known for task in order):
        missing = [task for task in order if task not in raw or not raw[task].known]
        return UNTESTABLE, f"no overlap for {', '.join(missing)}"
    direction = _ordered([raw[t] for t in order])
    if direction == "down":
        return CONTRADICTED, "the reverse order, intervals apart"
    if direction == "":
        return NOISE, "intervals overlap or are missing"
    if _ordered([excess.get(t, Estimate(math.nan)) for t in order]) != "up":
        return PRETRAINING, "the order holds in raw Jaccard but not in the excess over P"
    return SUPPORTED, "the order holds in raw Jaccard and in the excess over P"


def not_correlated(p_values: Sequence[float], smallest_p: float) -> tuple[str, str]:
    """(d) Overlap and transfer are not correlated across pairs of languages: contradicted by a Mantel p below
    α / m (Bonferroni over the m tests); not testable when even a perfect correlation could not get there."""
    ps = [p for p in p_values if math.isfinite(p)]
    if not ps:
        return UNTESTABLE, "fewer than 3 languages with transfer"
    threshold = ALPHA / len(ps)
    if smallest_p > threshold:
        return UNTESTABLE, f"the smallest attainable p ({smallest_p:.3f}) exceeds α/m = {threshold:.3f}"
    if min(ps) <= threshold:
        return CONTRADICTED, f"a Mantel p of {min(ps):.3f} ≤ α/m = {threshold:.3f}"
    return SUPPORTED, f"no Mantel p below α/m = {threshold:.3f} (a null result: it cannot show absence)"


def beyond_pretraining(excess: Estimate, noise_floor: Estimate) -> tuple[str, str]:
    """(e) The sub-networks share more than the pre-trained magnitudes imply: the excess overlap of other-language
    pairs above 0 (its interval)."""
    if not excess.known:
        return UNTESTABLE, "no departures from P to compare (no P control)"
    if not excess.has_interval:
        return NOISE, "a single pair: no interval"
    if excess.above(0.0):
        floor = f"; same language, other seed: {noise_floor.value:.2f}" if noise_floor.known else ""
        return SUPPORTED, f"excess over P above 0{floor}"
    if excess.below(0.0):
        return CONTRADICTED, "they share less than P implies"
    return PRETRAINING, "the excess over P is within noise of 0"
