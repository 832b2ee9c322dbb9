"""The report's figures, one ``plot_*`` function each: drawn on Agg figures outside pyplot, in one style, from the
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

from .load import Results
from .tables import (
    average_overlap_table,
    controls_table,
    correlation_table,
    overlap_by_group,
    overlap_matrices,
    overlap_vs_transfer_table,
    relative_change_table,
    score_table,
    transfer_matrices,
)
from .text import num, sp

MODULE_LABELS = {"attention_output": "attention\noutput", "intermediate": "inter-\nmediate"}
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


def _figure(ncols: int, width: float = 4.2, height: float = 3.4):
    """An Agg figure outside pyplot (nothing global to close, nothing shown twice) and its ``ncols`` axes."""
    fig = Figure(figsize=(max(1, ncols) * width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, max(1, ncols), squeeze=False)[0])


def _styled(fn: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _language_colors(res: Results) -> dict[str, Any]:
    langs = list(res.study.languages)
    return dict(zip(langs, sns.color_palette("tab10", max(3, len(langs)))))


def _sparsity_colors(res: Results) -> dict[float, Any]:
    """Sequential colours, light to dark with sparsity, far apart even for two sparsities."""
    cmap, n = matplotlib.colormaps["crest"], len(res.sparsities)
    return {s: cmap(0.2 + 0.7 * i / max(1, n - 1)) for i, s in enumerate(res.sparsities)}


def _bar_groups(
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


def _heatmap(ax, matrix: pd.DataFrame, title: str, vmin: float, vmax: float, cmap: str) -> None:
    sns.heatmap(
        matrix.astype(float),
        ax=ax,
        annot=True,
        fmt=".2f",
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


@_styled
def plot_transfer(res: Results, task: str) -> Figure | None:
    """Heatmaps of acc(s, t), one panel per transfer sparsity, on one colour scale."""
    mats = transfer_matrices(res, task)
    if not mats:
        return None
    values = np.concatenate([m.to_numpy(float).ravel() for m in mats.values()])
    lo, hi = np.nanmin(values), np.nanmax(values)
    fig, axes = _figure(len(mats), width=3.8)
    for ax, (sparsity, m) in zip(axes, mats.items()):
        _heatmap(ax, m, f"{sp(sparsity)} sparsity", lo, hi if hi > lo else lo + 1e-9, "viridis")
        ax.set_xlabel("target t (fine-tuned and scored on)")
        ax.set_ylabel("source s (mask found on)")
    fig.suptitle(f"{task}: {res.metric(task)} of the source's sub-network on each target")
    return fig


def _by_sparsity(res: Results, table: pd.DataFrame, task: str, key: str, column: str):
    """One task's rows as (keys in order, rows per sparsity reindexed by key, ``column`` per sparsity) for bars."""
    table = table[table["task"] == task]
    if table.empty:
        return None
    keys = list(dict.fromkeys(table[key]))
    by = {s: table[table["sparsity"] == s].set_index(key).reindex(keys) for s in res.sparsities}
    return keys, by, {s: f[column].to_numpy(float) for s, f in by.items()}


@_styled
def plot_relative_change(res: Results, task: str) -> Figure | None:
    """Grouped bars: the relative change per source language, one bar per transfer sparsity."""
    grouped = _by_sparsity(res, relative_change_table(res), task, "source", "relative_change")
    if grouped is None:
        return None
    sources, by, values = grouped
    fig, (ax,) = _figure(1, width=max(4.0, 1.2 * len(sources) + 1.5))
    _bar_groups(
        ax,
        sources,
        {s: v * 100 for s, v in values.items()},
        _sparsity_colors(res),
        fmt=lambda y: f"{y:+.1f}".replace("-", "−") if np.isfinite(y) else "n/a",
    )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.margins(y=0.15)
    ax.set_xlabel("source language")
    ax.set_ylabel("relative change (%)")
    ax.set_title(f"{task}: mean over targets of (acc(s,t) − acc(t,t)) / acc(t,t)")
    ax.legend(title="sparsity")
    return fig


@_styled
def plot_scores(res: Results, task: str) -> Figure | None:
    """Score versus sparsity per language: IMP levels, the dense model, and IMP vs random masks at the transfer
    sparsities (both fine-tuned like the transfer runs)."""
    table = score_table(res)
    table = table[table["task"] == task]
    if table.empty:
        return None
    colors = _language_colors(res)
    fig, (ax,) = _figure(1, width=5.6, height=3.8)
    for lang, sub in table.groupby("lang", sort=False):
        c = colors[lang]
        ax.plot(sub["sparsity"], sub["imp_score"], "-o", color=c, markersize=4)
        ax.axhline(sub["dense_score"].iloc[0], color=c, linestyle=":", linewidth=1)
        ax.plot(sub["sparsity"], sub["imp_transfer_score"], "s", mfc="none", color=c, markersize=7)
        ax.plot(sub["sparsity"], sub["random_score"], "x", color=c, markersize=7, mew=1.5)
    handles = [Line2D([], [], color=colors[lang], label=lang) for lang in res.languages(task)] + [
        Line2D([], [], color="gray", marker="o", markersize=4, label="IMP level"),
        Line2D([], [], color="gray", linestyle=":", label="dense model"),
        Line2D([], [], color="gray", marker="s", mfc="none", linestyle="", label="IMP mask, transfer fine-tuning"),
        Line2D([], [], color="gray", marker="x", linestyle="", label="random mask, transfer fine-tuning"),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel("sparsity")
    ax.set_ylabel(res.metric(task))
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title(f"{task}: {res.metric(task)} of the sub-networks")
    return fig


@_styled
def plot_overlap(res: Results, task: str) -> Figure | None:
    """Heatmaps of pairwise Jaccard between the languages' IMP masks, one panel per sparsity."""
    mats = overlap_matrices(res, task)
    if not mats:
        return None
    avg = average_overlap_table(res).set_index(["task", "sparsity"])
    fig, axes = _figure(len(mats), width=3.8)
    for ax, (sparsity, m) in zip(axes, mats.items()):
        expected = avg.at[(task, sparsity), "random_expected_jaccard"]
        _heatmap(ax, m, f"{sp(sparsity)} sparsity (random: {expected:.2f})", 0.0, 1.0, "mako")
    fig.suptitle(f"{task}: Jaccard of the kept weights of two languages' sub-networks")
    return fig


@_styled
def plot_average_overlap(res: Results) -> Figure | None:
    """Bars: mean pairwise Jaccard per task and sparsity, with both random baselines and the paper's average."""
    avg = average_overlap_table(res)
    if avg.empty:
        return None
    tasks = list(dict.fromkeys(avg["task"]))
    fig, (ax,) = _figure(1, width=max(4.5, 1.6 * len(tasks) + 2.5))
    by = {s: avg[avg["sparsity"] == s].set_index("task").reindex(tasks) for s in res.sparsities}
    centres = _bar_groups(ax, tasks, {s: f["jaccard"].to_numpy(float) for s, f in by.items()}, _sparsity_colors(res))
    for x, f in zip(centres, by.values()):
        ax.plot(x, f["random_expected_jaccard"], "_", color="black", markersize=18, mew=2)
        ax.plot(x, f["random_masks_jaccard"], "x", color="black", markersize=6)
    paper = avg.drop_duplicates("task").set_index("task").reindex(tasks)["paper_overlap"]
    ax.plot(np.arange(len(tasks)), paper, "D", color="firebrick", markersize=6, linestyle="")
    handles = ax.get_legend_handles_labels()[0] + [
        Line2D([], [], color="black", marker="_", markersize=12, mew=2, linestyle="", label="random, expected"),
        Line2D([], [], color="black", marker="x", linestyle="", label="random masks, measured"),
        Line2D([], [], color="firebrick", marker="D", linestyle="", label="paper, average"),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title="IMP masks at sparsity")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean pairwise Jaccard")
    ax.set_title("Average overlap of the languages' sub-networks")
    return fig


@_styled
def plot_overlap_groups(res: Results, task: str) -> Figure | None:
    """Mean pairwise Jaccard per layer (lines) and per module type (bars); dashed or black: random expectation."""
    layer, module = (t[t["task"] == task] for t in (overlap_by_group(res, "layer"), overlap_by_group(res, "module")))
    if layer.empty:
        return None
    colors = _sparsity_colors(res)
    fig, (ax1, ax2) = _figure(2, width=4.6)
    for s in res.sparsities:
        sub = layer[layer["sparsity"] == s]
        ax1.plot(sub["group"], sub["jaccard"], "-o", color=colors[s], markersize=4, label=f"IMP, {sp(s)}")
        ax1.plot(sub["group"], sub["random_expected_jaccard"], "--", color=colors[s], label=f"random, {sp(s)}")
    ax1.set(xlabel="layer", ylabel="mean pairwise Jaccard", ylim=(0, 1), title="per layer")
    ax1.legend()
    groups = list(dict.fromkeys(module["group"]))
    by = {s: module[module["sparsity"] == s].set_index("group").reindex(groups) for s in res.sparsities}
    labels = [MODULE_LABELS.get(g, g) for g in groups]
    centres = _bar_groups(ax2, labels, {s: f["jaccard"].to_numpy(float) for s, f in by.items()}, colors)
    for x, f in zip(centres, by.values()):
        ax2.plot(x, f["random_expected_jaccard"], "_", color="black", markersize=10, mew=2)
    ax2.set(ylim=(0, 1), title="per module type (black: random)")
    fig.suptitle(f"{task}: where the languages' sub-networks overlap")
    return fig


@_styled
def plot_overlap_vs_transfer(res: Results, task: str) -> Figure | None:
    """Scatter of Jaccard(s, t) against the transfer change, with Spearman's ρ in the legend and title."""
    ovt = overlap_vs_transfer_table(res)
    ovt = ovt[ovt["task"] == task]
    if ovt.empty:
        return None
    rho = correlation_table(ovt).set_index("sparsity")["spearman"]
    colors = _sparsity_colors(res)
    fig, (ax,) = _figure(1, width=5.0, height=3.8)
    for sparsity, sub in ovt.groupby("sparsity", sort=True):
        label = f"{sp(sparsity)} (ρ = {num(rho[f'{sparsity:g}'], 2)})"
        ax.scatter(sub["jaccard"], sub["change"] * 100, color=colors[sparsity], label=label)
        for r in sub.itertuples():
            ax.annotate(
                f"{r.source}→{r.target}",
                (r.jaccard, r.change * 100),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Jaccard(s, t) of the IMP masks")
    ax.set_ylabel("transfer change (acc(s,t) − acc(t,t)) / acc(t,t) (%)")
    ax.set_title(f"{task}: overlap vs transfer, Spearman ρ = {num(rho['all'], 2)}")
    ax.legend(title="sparsity")
    return fig


@_styled
def plot_controls(res: Results, task: str) -> Figure | None:
    """Bars: Jaccard of each language's IMP mask with the pre-trained-magnitude mask; black: random expectation."""
    grouped = _by_sparsity(res, controls_table(res), task, "lang", "jaccard_with_pretrained")
    if grouped is None:
        return None
    langs, by, values = grouped
    fig, (ax,) = _figure(1, width=max(4.0, 1.2 * len(langs) + 1.5))
    for x, f in zip(_bar_groups(ax, langs, values, _sparsity_colors(res)), by.values()):
        ax.plot(x, f["random_jaccard"], "_", color="black", markersize=14, mew=2)
    ax.set(ylim=(0, 1), xlabel="language", ylabel="Jaccard with the pre-trained-magnitude mask")
    ax.set_title(f"{task}: IMP mask vs magnitude mask of θ0 (black: random)")
    ax.legend(title="sparsity")
    return fig
