"""How the report writes numbers in sentences: percentages, decimals and sparsities with true minus signs."""

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
