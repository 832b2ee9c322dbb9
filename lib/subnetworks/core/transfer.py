"""Transfer arithmetic: the study's relative change per source language, from a matrix acc(s, t)."""

from __future__ import annotations

import numpy as np


def relative_change(matrix: np.ndarray) -> np.ndarray:
    """For each source s: 1/(|L|−1) · Σ_{t≠s} (acc(s,t) − acc(t,t)) / acc(t,t), as in Foroutan et al. (2022).

    ``matrix`` is square, rows sources and columns targets in the same language order; acc(t,t) is the target's
    own sub-network fine-tuned on t. A missing score, or a target whose acc(t,t) is 0 or missing, makes NaN of
    every source that transfers to it.
    """
    acc = np.asarray(matrix, dtype=float)
    if acc.ndim != 2 or acc.shape[0] != acc.shape[1]:
        raise ValueError(f"acc(s, t) must be a square matrix, got shape {acc.shape}")
    n = acc.shape[0]
    if n < 2:
        return np.full(n, np.nan)
    own = np.diagonal(acc)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (acc - own[None, :]) / own[None, :]
    change[np.arange(n), np.arange(n)] = 0.0
    change[~np.isfinite(change)] = np.nan
    return change.sum(axis=1) / (n - 1)
