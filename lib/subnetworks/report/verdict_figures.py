"""The figure under the verdict table: the three numbers the verdicts rest on, per task and sparsity, each with its
95 % interval and the line it is judged against (the −5 % of "transfers well", the paper's overlap, the same
language's masks at another seed)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures import figure, sparsity_colors, styled
from .load import Results
from .paper import PAPER
from .text import pct, sp
from .uncertainty import mean_change_intervals, pair_kind_table
from .verdicts import GOOD_TRANSFER

SPREAD = 0.18  # how far apart a task's sparsities are drawn


def _points(ax, res: Results, rows, column: str, scale: float = 1.0, hollow: bool = False) -> None:
    """``column`` with its interval (``<column>_low``/``_high`` or ``low``/``high``) per task (x) and sparsity."""
    colors, tasks = sparsity_colors(res), res.tasks
    for i, s in enumerate(res.sparsities):
        sub = rows[rows["sparsity"] == s].set_index("task").reindex(tasks)
        x = np.arange(len(tasks)) + (i - (len(res.sparsities) - 1) / 2) * SPREAD + (0.06 if hollow else 0)
        y = sub[column].to_numpy(float) * scale
        low_col, high_col = (f"{column}_low", f"{column}_high") if f"{column}_low" in sub else ("low", "high")
        low, high = sub[low_col].to_numpy(float) * scale, sub[high_col].to_numpy(float) * scale
        ok = np.isfinite(y) & np.isfinite(low) & np.isfinite(high)
        face = "white" if hollow else colors[s]
        ax.errorbar(x[ok], y[ok], yerr=[y[ok] - low[ok], high[ok] - y[ok]], fmt="none", ecolor=colors[s], capsize=2)
        ax.plot(x, y, "o", color=colors[s], markerfacecolor=face, markersize=6, linestyle="")
        for xi in x[~np.isfinite(y)] if not hollow else ():  # once per missing mean, not for both references
            ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=7, color=colors[s])
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_xlim(-0.6, len(tasks) - 0.4)


@styled
def plot_verdicts(res: Results, pair: str) -> Figure | None:
    """Three panels: (a, b) the mean relative change over targets against acc(t,t) (filled) and against P on the
    target (hollow); (c) the Jaccard of other-language masks beside the paper's overlap; (e) their excess over P
    beside the same language's masks at another seed (``pair``: the kind of other-language pair the verdicts use)."""
    changes, pairs = mean_change_intervals(res), pair_kind_table(res)
    if changes.empty and pairs.empty:
        return None
    colors = sparsity_colors(res)
    fig, (transfer, overlap, excess) = figure(3, width=max(3.4, 0.9 * len(res.tasks) + 1.6), height=3.6)
    if len(changes):
        changes = changes[changes["source"] == "all"]
        _points(transfer, res, changes[changes["measure"] == "relative_change"], "value", 100)
        _points(transfer, res, changes[changes["measure"] == "relative_change_vs_pretrained"], "value", 100, True)
    transfer.axhline(0, color="black", linewidth=0.8)
    transfer.axhline(GOOD_TRANSFER * 100, color="firebrick", linestyle="--", linewidth=1)
    transfer.set(ylabel="mean relative change over t ≠ s (%)", title="(a, b) transfer")
    cross = pairs[pairs["pair"] == pair] if len(pairs) else pairs
    if len(cross):
        _points(overlap, res, cross, "jaccard")
        _points(excess, res, cross, "excess")
        same = pairs[pairs["pair"] == "same_language"]
        for i, s in enumerate(res.sparsities):  # the noise floor: one language's masks at two seeds
            row = same[same["sparsity"] == s].set_index("task").reindex(res.tasks)["excess"].to_numpy(float)
            x = np.arange(len(res.tasks)) + (i - (len(res.sparsities) - 1) / 2) * SPREAD
            excess.plot(x, row, "_", color=colors[s], markersize=14, markeredgewidth=2)
    paper = [PAPER.average_overlap.get(res.study.task(t).kind, np.nan) for t in res.tasks]
    overlap.plot(range(len(res.tasks)), paper, "D", color="firebrick", markersize=6, linestyle="")
    overlap.set(ylabel="Jaccard, other-language pairs", ylim=(0, 1.05), title="(c) overlap by task")
    excess.axhline(0, color="black", linewidth=0.8)
    excess.set(ylabel="excess overlap over P", title="(e) beyond pre-training")
    handles = [Line2D([], [], color=c, marker="o", linestyle="", label=f"{sp(s)} sparsity") for s, c in colors.items()]
    handles += [
        Line2D([], [], color="gray", marker="o", markerfacecolor="white", linestyle="", label="against P on t"),
        Line2D(
            [],
            [],
            color="firebrick",
            linestyle="--",
            label=f"{pct(GOOD_TRANSFER, signed=True, digits=0)}: transfers well above it",
        ),
        Line2D([], [], color="firebrick", marker="D", linestyle="", label="the paper's overlap"),
        Line2D(
            [],
            [],
            color="gray",
            marker="_",
            markersize=12,
            markeredgewidth=2,
            linestyle="",
            label="same language, other seed",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4))
    fig.suptitle("The verdicts' numbers: means with 95 % intervals, per task and sparsity")
    return fig
