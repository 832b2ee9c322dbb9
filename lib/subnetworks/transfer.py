"""The transfer matrix acc(s, t) and the study's relative change per source language."""

from __future__ import annotations

from typing import Iterable

import pandas as pd


def transfer_matrix(rows: Iterable[dict], value: str = "score") -> pd.DataFrame:
    """Pivot rows with ``source``, ``target`` and ``value`` into a source × target matrix."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame()
    matrix = frame.pivot_table(index="source", columns="target", values=value, aggfunc="mean")
    langs = [lang for lang in dict.fromkeys(list(frame["source"]) + list(frame["target"]))]
    return matrix.reindex(index=[l for l in langs if l in matrix.index], columns=[l for l in langs if l in matrix.columns])


def relative_change(matrix: pd.DataFrame) -> pd.Series:
    """For each source s: 1/(|L|−1) · Σ_{t≠s} (acc(s,t) − acc(t,t)) / acc(t,t), as in Foroutan et al. (2022).

    acc(t,t) is the target's own sub-network fine-tuned on t. Sources lacking their diagonal or any target are NaN.
    """
    out = {}
    for s in matrix.index:
        terms = []
        for t in matrix.columns:
            if t == s:
                continue
            own = matrix.at[t, t] if t in matrix.index else float("nan")
            terms.append((matrix.at[s, t] - own) / own)
        out[s] = sum(terms) / len(terms) if terms else float("nan")
    return pd.Series(out, name="relative_change")
