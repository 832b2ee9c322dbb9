"""The report's figures of scores and transfer, one ``plot_*`` function each, and the drawing helpers every figure
module shares (:mod:`.overlap_figures`, :mod:`.budget`): Agg figures outside pyplot, in one style, drawn from the
derived tables (a figure returns None when its table is empty)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .load import Results
from .names import control_label
from .tables import control_matrices, relative_change_table, score_table, scored_controls, transfer_matrices
from .text import sp
from .uncertainty import score_intervals, transfer_intervals

DPI = 130
STYLE = {
    "axes.grid": True,
    "grid.color": "#e0e0e0",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "font.size": 9,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
CONTROL_MARKERS = {"pretrained": "^", "random": "x", "global_random": "+"}  # a control the report lacks: "d"


def figure(ncols: int, width: float = 4.2, height: float = 3.4):
    """An Agg figure outside pyplot (nothing global to close, nothing shown twice) and its ``ncols`` axes."""
    fig = Figure(figsize=(max(1, ncols) * width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, max(1, ncols), squeeze=False)[0])


def styled(fn: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    """Draw in the report's style."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def language_colors(res: Results) -> dict[str, Any]:
    langs = list(res.study.languages)
    return dict(zip(langs, sns.color_palette("tab10", max(3, len(langs)))))


def sparsity_colors(res: Results) -> dict[float, Any]:
    """Sequential colours, light to dark with sparsity, far apart even for two sparsities."""
    cmap, n = matplotlib.colormaps["crest"], len(res.sparsities)
    return {s: cmap(0.2 + 0.7 * i / max(1, n - 1)) for i, s in enumerate(res.sparsities)}


def bar_groups(
    ax,
    labels: list[str],
    values: dict[float, np.ndarray],
    colors: dict[float, Any],
    fmt: Callable[[float], str] | None = None,
) -> list[np.ndarray]:
    """Grouped bars: one group per label, one bar per sparsity; NaN bars read "n/a". Returns the bar centres."""
    width = 0.8 / max(1, len(values))
    centres = []
    for i, (sparsity, v) in enumerate(values.items()):
        x = np.arange(len(labels)) + (i - (len(values) - 1) / 2) * width
        bars = ax.bar(x, np.nan_to_num(v, nan=0.0), width, color=colors[sparsity], label=sp(sparsity))
        text = [fmt(y) if fmt else ("" if np.isfinite(y) else "n/a") for y in v]
        ax.bar_label(bars, text, fontsize=7, padding=2)
        centres.append(x)
    ax.set_xticks(np.arange(len(labels)), labels)
    return centres


def by_sparsity(res: Results, table: pd.DataFrame, task: str, key: str, column: str):
    """One task's rows as (keys in order, rows per sparsity reindexed by key, ``column`` per sparsity) for bars."""
    table = table[table["task"] == task]
    if table.empty:
        return None
    keys = list(dict.fromkeys(table[key]))
    by = {s: table[table["sparsity"] == s].set_index(key).reindex(keys) for s in res.sparsities}
    return keys, by, {s: f[column].to_numpy(float) for s, f in by.items()}


HEATMAP_CELL = 0.5  # inches a heatmap cell: a 9 × 9 panel keeps its 2-decimal labels apart, two panels fit the page


def heatmap_panel(matrix: pd.DataFrame, title: str = "") -> tuple[float, float]:
    """(width, height) in inches of a heatmap panel of ``matrix``: the cell size is fixed, room added for the row
    labels (the longest one), the colour bar and the panel's title (its longest line, at the 8-point title size), so
    a 9-language panel grows instead of crowding its numbers and a 2-language one keeps its labels on the page."""
    rows, cols = matrix.shape
    labels = max((len(str(label)) for label in matrix.index), default=2)
    title_width = 0.065 * max((len(line) for line in title.split("\n")), default=0) + 0.9  # + the colour bar
    return max(HEATMAP_CELL * cols + 1.6 + 0.075 * labels, title_width), HEATMAP_CELL * rows + 1.8


def heatmap(ax, matrix: pd.DataFrame, title: str, vmin: float, vmax: float, cmap: str, digits: int = 2) -> None:
    sns.heatmap(
        matrix.astype(float),
        ax=ax,
        annot=True,
        fmt=f".{digits}f",
        annot_kws={"fontsize": 7 if digits <= 2 else 6},
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        square=True,
        cbar_kws={"shrink": 0.8},
        linewidths=0.5,
        linecolor="white",
        xticklabels=list(matrix.columns),
        yticklabels=list(matrix.index),
    )
    ax.set_title(title)
    ax.tick_params(axis="y", rotation=0)
    ax.grid(False)
    # Square cells leave the panel's box wider than the heatmap; seaborn's colour bar anchors the heatmap to the box's
    # right edge, where the constrained layout does not see it, and long row labels ("layer-wise random") at nine
    # languages then ran off the figure's left edge. Anchored left, the labels sit where the layout made room.
    ax.set_anchor("W")


MIN_COLOUR_SPAN = 0.01  # a colour scale at least this wide: differences below it are not worth a colour


def data_range(frames: list[pd.DataFrame]) -> tuple[float, float]:
    """The smallest and largest finite value of ``frames`` (0 and 1 when there is none)."""
    values = np.concatenate([f.to_numpy(float).ravel() for f in frames])
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)


def widened(lo: float, hi: float) -> tuple[float, float]:
    """``lo``–``hi`` widened about its centre to :data:`MIN_COLOUR_SPAN` where it is narrower than that."""
    pad = max(0.0, MIN_COLOUR_SPAN - (hi - lo)) / 2
    return lo - pad, hi + pad


def colour_range(frames: list[pd.DataFrame]) -> tuple[float, float]:
    """One colour scale over every finite value of ``frames``: their range, :func:`widened`."""
    return widened(*data_range(frames))


def _chance_cells(res: Results, task: str) -> set[tuple[float, str, str]]:
    """(sparsity, row label, target) of the transfer heatmaps' cells whose score is at chance: acc(s, t) and the
    controls' rows (as the heatmap labels them)."""
    cells = transfer_intervals(res)
    out = set()
    if len(cells):
        c = cells[(cells["task"] == task) & cells["at_chance"]]
        out |= {(float(r.sparsity), r.source, r.target) for r in c.itertuples()}
    scores = score_intervals(res)
    if len(scores):
        s = scores[(scores["task"] == task) & (scores["mask"] != "imp") & scores["at_chance"]]
        training = "transfer" if (s["training"] == "transfer").any() else "imp"
        s = s[s["training"] == training]
        out |= {(float(r.sparsity), control_label(r.mask, short=True), r.lang) for r in s.itertuples()}
    return out


@styled
def plot_transfer(res: Results, task: str) -> Figure | None:
    """Heatmaps of acc(s, t), one panel per transfer sparsity; under a line, the controls' rows acc(control, t) (each
    control of target t fine-tuned and scored on t as the transfer runs train); all on one colour scale; cells at
    chance hatched."""
    mats = transfer_matrices(res, task)
    if not mats:
        return None
    controls = control_matrices(res, task)
    panels = {}
    for sparsity, m in mats.items():
        rows = controls.get(sparsity, pd.DataFrame(columns=m.columns))
        panels[sparsity] = pd.concat([m, rows.rename(index=lambda c: control_label(c, short=True))])
    lo, hi = colour_range(list(panels.values()))
    width, height = heatmap_panel(max(panels.values(), key=len))
    fig, axes = figure(len(panels), width=width, height=height)
    chance = _chance_cells(res, task)
    for ax, (sparsity, panel) in zip(axes, panels.items()):
        heatmap(ax, panel, f"{sp(sparsity)} sparsity", lo, hi, "viridis")
        for i, row in enumerate(panel.index):
            for j, target in enumerate(panel.columns):
                if (sparsity, row, target) in chance:
                    ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="white", linewidth=0))
        if len(panel) > len(mats[sparsity]):
            ax.axhline(len(mats[sparsity]), color="black", linewidth=2.5)
        ax.set_xlabel("target t (fine-tuned and scored on)")
        ax.set_ylabel("source s (mask found on); under the line: controls" if ax is axes[0] else "")
    fig.suptitle(
        f"{task}: {res.metric(task)} of the source's sub-network and of the controls on each target"
        " (hatched: at chance)"
    )
    return fig


RELATIVE_CHANGES = {  # column of relative_change_table -> what it measures, in the figure's panel title
    "relative_change": "vs acc(t,t), the paper's",
    "relative_change_vs_pretrained": "vs acc(P,t), P on the target",
}


@styled
def plot_relative_change(res: Results, task: str) -> Figure | None:
    """Grouped bars per source language, one bar per transfer sparsity: the paper's relative change and, where P was
    scored, the relative change against P on the target; whiskers: 95 % paired-bootstrap intervals (cells at chance
    left out)."""
    table = relative_change_table(res)
    table = table[table["task"] == task]
    if table.empty:
        return None
    shown = [c for c in RELATIVE_CHANGES if table[c].notna().any()] or ["relative_change"]
    sources = list(dict.fromkeys(table["source"]))
    fig, axes = figure(len(shown), width=max(4.0, 1.2 * len(sources) + 1.5))
    for ax, column in zip(axes, shown):
        _, rows, values = by_sparsity(res, table, task, "source", column)
        centres = bar_groups(
            ax,
            sources,
            {s: v * 100 for s, v in values.items()},
            sparsity_colors(res),
            fmt=lambda y: f"{y:+.1f}".replace("-", "−") if np.isfinite(y) else "n/a",
        )
        for x, (s, v) in zip(centres, values.items()):  # the paired-bootstrap interval of each mean
            low, high = (rows[s][f"{column}_{end}"].to_numpy(float) * 100 for end in ("low", "high"))
            ok = np.isfinite(low) & np.isfinite(high) & np.isfinite(v)
            error = np.array([v[ok] * 100 - low[ok], high[ok] - v[ok] * 100])
            ax.errorbar(x[ok], v[ok] * 100, yerr=error, fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.margins(y=0.15)
        ax.set(xlabel="source language", ylabel="relative change (%)", title=RELATIVE_CHANGES[column])
        ax.legend(title="sparsity")
    fig.suptitle(f"{task}: mean over targets t ≠ s of the change of acc(s,t) against a reference on t")
    return fig


@styled
def plot_scores(res: Results, task: str) -> Figure | None:
    """Score versus sparsity per language: the IMP levels, the dense model, the majority-class rate, and at the
    transfer sparsities each control, all fine-tuned alike (controls a little apart so that they stay visible)."""
    table = score_table(res)
    table = table[table["task"] == task]
    if table.empty:
        return None
    colors, controls = language_colors(res), scored_controls(res)
    offsets = {c: 0.012 * (i - (len(controls) - 1) / 2) for i, c in enumerate(controls)}
    fig, (ax,) = figure(1, width=6.0, height=3.8)
    intervals = score_intervals(res)
    imp = intervals[(intervals["task"] == task) & (intervals["mask"] == "imp")] if len(intervals) else intervals
    for lang, sub in table.groupby("lang", sort=False):
        c = colors[lang]
        ax.plot(sub["sparsity"], sub["imp_score"], "-o", color=c, markersize=4)
        iv = imp[imp["lang"] == lang] if len(imp) else imp
        if len(iv) and iv["low"].notna().any():
            error = np.array([iv["score"] - iv["low"], iv["high"] - iv["score"]])
            ax.errorbar(iv["sparsity"], iv["score"], yerr=error, fmt="none", ecolor=c, elinewidth=0.8, capsize=2)
            at = iv[iv["at_chance"]]
            ax.plot(at["sparsity"], at["score"], "o", color="white", markeredgecolor=c, markersize=6)
        ax.axhline(sub["dense_score"].iloc[0], color=c, linestyle=":", linewidth=1)
        if np.isfinite(sub["majority_rate"].iloc[0]):
            ax.axhline(sub["majority_rate"].iloc[0], color=c, linestyle="-.", linewidth=0.8, alpha=0.7)
        for control in controls:
            marker = CONTROL_MARKERS.get(control, "d")
            ax.plot(sub["sparsity"] + offsets[control], sub[f"{control}_score"], marker, color=c, markersize=7)
    handles = [Line2D([], [], color=colors[lang], label=lang) for lang in res.languages(task)] + [
        Line2D([], [], color="gray", marker="o", markersize=4, label="IMP level (95 % bootstrap interval)"),
        Line2D([], [], color="gray", marker="o", markerfacecolor="white", linestyle="", label="IMP at chance"),
        Line2D([], [], color="gray", linestyle=":", label="dense model"),
    ]
    if table["majority_rate"].notna().any():
        handles.append(Line2D([], [], color="gray", linestyle="-.", label="majority-class rate"))
    handles += [
        Line2D([], [], color="gray", marker=CONTROL_MARKERS.get(c, "d"), linestyle="", label=control_label(c))
        for c in controls
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel("sparsity")
    ax.set_ylabel(res.metric(task))
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title(f"{task}: every mask fine-tuned alike")
    return fig
