"""Closed-form overlap of random masks: the null of each random control, computed for the control actually drawn.

Two draws, both with the IMP mask's kept count:

* **layer-wise** (per tensor): in tensor i, k_i of its n_i weights at uniformly random positions. Independent
  draws A, B give E|A∩B| = Σ_i k_iᴬ k_iᴮ / n_i exactly (the hypergeometric mean); for m masks, a weight of tensor i
  is kept by all with probability Π_j k_iʲ / n_i and by none with Π_j (1 − k_iʲ / n_i).
* **global**: K of all N prunable weights at uniformly random positions, whatever the tensor: every weight is kept
  with probability p = K / N, so a group of n_g weights holds n_g p of a mask in expectation.

Jaccard is the ratio of the expected counts (|∩| / |∪|): for masks of millions of weights it equals the expected
ratio to far below the precision reported (tests check it against draws). Agreement is the expected share of
positions where all masks agree.
"""

from __future__ import annotations

import numpy as np


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 1.0


def all_from_probabilities(kept_all: np.ndarray, kept_none: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    """(Jaccard, agreement) of masks whose weights are kept by all with probability ``kept_all`` and by none with
    ``kept_none``, per block of ``sizes`` weights."""
    both = float(np.sum(sizes * kept_all))
    none = float(np.sum(sizes * kept_none))
    total = float(np.sum(sizes))
    return _ratio(both, total - none), (both + none) / total if total else 1.0


def _shares(kept: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """kept / size per tensor; 0 where a tensor offers no position, at most 1 (a draw cannot exceed its pool)."""
    kept, sizes = np.asarray(kept, dtype=float), np.asarray(sizes, dtype=float)
    return np.clip(np.divide(kept, sizes, out=np.zeros_like(kept), where=sizes > 0), 0.0, 1.0)


def layerwise(kept: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    """(Jaccard, agreement) expected of masks drawn per tensor: ``kept`` is (masks × tensors), ``sizes`` (tensors).

    Two masks give the pairwise figure, more the shared-by-all one (|AND all| / |OR all|)."""
    p = _shares(kept, sizes)
    return all_from_probabilities(np.prod(p, axis=0), np.prod(1 - p, axis=0), np.asarray(sizes, dtype=float))


def jaccard_given_p(
    p_kept: np.ndarray, lost: np.ndarray, gained: np.ndarray, lost_pool: np.ndarray, gained_pool: np.ndarray
) -> float:
    """Jaccard expected of two masks that are P with their own departures drawn at random: per tensor, each loses
    ``lost[j]`` of the ``lost_pool`` weights of P it could lose and gains ``gained[j]`` of the ``gained_pool``
    weights outside P it could gain (two masks: rows 0 and 1). What P and the departure counts alone predict."""
    lost_both = np.prod(_shares(lost, lost_pool), axis=0) * np.asarray(lost_pool, dtype=float)
    gained_both = np.prod(_shares(gained, gained_pool), axis=0) * np.asarray(gained_pool, dtype=float)
    both = np.sum(p_kept - lost[0] - lost[1] + lost_both + gained_both)
    sizes = np.sum(p_kept - lost + gained, axis=1)
    return _ratio(float(both), float(sizes[0] + sizes[1] - both))


def excess(jaccard: float, predicted: float) -> float:
    """How much of what ``predicted`` leaves unexplained the masks share: 0 as predicted, 1 identical masks."""
    return (jaccard - predicted) / (1 - predicted) if predicted < 1 else float("nan")


def global_(densities: np.ndarray, size: int) -> tuple[float, float]:
    """(Jaccard, agreement) expected in any group of ``size`` weights of masks drawn globally with ``densities``
    (each mask's kept count over all its prunable weights)."""
    p = np.asarray(densities, dtype=float)
    return all_from_probabilities(np.array([np.prod(p)]), np.array([np.prod(1 - p)]), np.array([float(size)]))
