"""How the report writes numbers in sentences: percentages, decimals and sparsities with true minus signs; and the
sentences the report and results.md share."""

from __future__ import annotations

import math


def pct(x: float | None, signed: bool = False, digits: int = 1) -> str:
    """0.031 -> '3.1 %'; signed: '+3.1 %' / '−3.1 %' (a true minus sign); NaN or None -> 'n/a'."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x * 100:{'+' if signed else ''}.{digits}f} %".replace("-", "−")


def num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}".replace("-", "−")


def sp(sparsity: float) -> str:
    """0.5 -> '50 %'."""
    return f"{sparsity * 100:.0f} %"


def finding(paper: str, run: str) -> str:
    """The two sentences above a figure: what the paper found, what this run found."""
    return f"**Paper:** {paper}  \n**This run:** {run}"


def join_and(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def zeros_sentence(share: float, schedule: tuple[float, ...]) -> str:
    """The share of exactly-zero prunable weights in θ0 (a quantised model has many), and the sparsities of the
    schedule at or below it, where magnitude pruning of θ0 removes nothing but zeros."""
    text = f"**Exactly-zero weights in θ0:** {pct(share, digits=2)} of the prunable weights"
    trivial = [s for s in schedule if s <= share]
    if not trivial:
        return text + f"; every sparsity of the schedule lies above that share (the lowest is {sp(min(schedule))})."
    return (
        text + f"; at {join_and([sp(s) for s in trivial])} sparsity, at or below that share, P removes only weights "
        "that are zero in θ0: **trivial: pruning zeros**."
    )
