"""The report's overlap figures, one ``plot_*`` function each, drawn with the helpers of :mod:`.figures`.

Every overlap of IMP masks across languages stands next to both random nulls and both random controls measured,
in one convention: a dash marks a null (the closed-form expectation), a cross the control's masks measured; black
is layer-wise, orange global. The departures from P have nulls of their own (departures drawn at random in the
whole tensor, or in the band around P's threshold): dashes in grey and purple.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures import (
    MIN_COLOUR_SPAN,
    bar_groups,
    by_sparsity,
    data_range,
    figure,
    heatmap,
    heatmap_panel,
    sparsity_colors,
    styled,
    widened,
)
from .load import Results
from .names import NULL_LABELS, NULLS, OVERLAP_MEASURES, control_label
from .overlap_tables import (
    average_overlap_table,
    controls_table,
    correlation_table,
    departures_table,
    overlap_by_group,
    overlap_matrices,
    overlap_vs_transfer_table,
)
from .text import num, sp
from .uncertainty import PAIR_KINDS as PAIR_KIND_LABELS

PAIR_KIND_ORDER = tuple(PAIR_KIND_LABELS)

MODULE_LABELS = {"attention_output": "attention\noutput", "intermediate": "inter-\nmediate"}
NULL_COLORS = {"layerwise": "black", "global": "tab:orange"}
POOL_COLORS = {"": "dimgray", "_band": "tab:purple"}  # the departures' nulls: whole tensor, band around P's threshold
LAYER_STYLES = {"layerwise": ("--", "x"), "global": (":", "+")}  # per layer: a null's line, its control's marker
POOL_LABELS = {"": "departures at random in the whole tensor", "_band": "… in the band around P's threshold"}


def _dash(ax, x, y, color, size: float = 14) -> None:
    ax.plot(x, y, "_", color=color, markersize=size, mew=2, linestyle="")


def _mark_nulls(ax, x, frame: pd.DataFrame, measure: str = "jaccard", prefix: str = "", size: float = 14) -> None:
    """At bar centres ``x``: each null (a dash) and its random control's masks measured (a cross)."""
    for null, color in NULL_COLORS.items():
        _dash(ax, x, frame[f"{prefix}{null}_null_{measure}"], color, size)
        ax.plot(x, frame[f"{prefix}{null}_random_{measure}"], "x", color=color, markersize=5, linestyle="")


def _null_handles(measured: bool = True) -> list[Line2D]:
    """Legend entries of each null (a dash) and, with ``measured``, of its random control's masks (a cross)."""
    handles = []
    for null, color in NULL_COLORS.items():
        handles.append(
            Line2D([], [], color=color, marker="_", markersize=12, mew=2, linestyle="", label=NULL_LABELS[null])
        )
        if measured:
            label = f"{control_label(NULLS[null])}, measured"
            handles.append(Line2D([], [], color=color, marker="x", linestyle="", label=label))
    return handles


def _module_bars(res: Results, ax, module: pd.DataFrame, column: str):
    """Bars of ``column`` per module type, one per sparsity; returns the bar centres and the rows per sparsity."""
    groups = list(dict.fromkeys(module["group"]))
    by = {s: module[module["sparsity"] == s].set_index("group").reindex(groups) for s in res.sparsities}
    labels = [MODULE_LABELS.get(g, g) for g in groups]
    values = {s: f[column].to_numpy(float) for s, f in by.items()}
    return bar_groups(ax, labels, values, sparsity_colors(res), fmt=lambda y: ""), by


@styled
def plot_overlap(res: Results, task: str, measure: str = "jaccard") -> Figure | None:
    """Heatmaps of ``measure`` (jaccard, agreement) between the languages' IMP masks, one panel per sparsity, both
    nulls and both random controls in the panel's title."""
    mats = overlap_matrices(res, task, measure)
    if not mats:
        return None
    avg = average_overlap_table(res).set_index(["task", "sparsity"])
    pairs = {s: m.mask(np.eye(len(m), dtype=bool)) for s, m in mats.items()}  # the diagonal (1) says nothing
    low, high = data_range(list(pairs.values()))
    lo, hi = widened(low, high)
    digits = 3 if hi - lo < 0.05 else 2  # a narrow range needs the third decimal to tell cells apart
    titles = {}
    for sparsity in pairs:
        r = avg.loc[(task, sparsity)]
        titles[sparsity] = f"{sp(sparsity)} sparsity\n" + "\n".join(
            f"{NULL_LABELS[null]} {num(r[f'{null}_null_{measure}'], 2)}, {control_label(NULLS[null])} "
            f"{num(r[f'{null}_random_{measure}'], 2)}"
            for null in NULLS
        )
    width, height = heatmap_panel(next(iter(pairs.values())), max(titles.values(), key=len))
    fig, axes = figure(len(pairs), width=width, height=height + 0.6)
    for ax, (sparsity, m) in zip(axes, pairs.items()):
        heatmap(ax, m, titles[sparsity], lo, hi, "mako", digits)
        ax.title.set_fontsize(8)
    scale = f"{lo:.{digits}f}–{hi:.{digits}f}"
    scale += ": the pairs' range" if high - low >= MIN_COLOUR_SPAN else f" about the pairs' {low:.4f}–{high:.4f}"
    fig.suptitle(f"{task}: {OVERLAP_MEASURES[measure]} of two languages' sub-networks\n(colour scale {scale})")
    return fig


@styled
def plot_average_overlap(res: Results) -> Figure | None:
    """Bars: mean pairwise Jaccard per task and sparsity, with both nulls and both random controls; circles: the
    all-language Jaccard |A₁ ∩ … ∩ Aₙ| / |A₁ ∪ … ∪ Aₙ|, the measure of the paper's printed figure (diamonds)."""
    avg = average_overlap_table(res)
    if avg.empty:
        return None
    tasks = list(dict.fromkeys(avg["task"]))
    fig, (ax,) = figure(1, width=max(4.5, 1.6 * len(tasks) + 3.0))
    by = {s: avg[avg["sparsity"] == s].set_index("task").reindex(tasks) for s in res.sparsities}
    centres = bar_groups(ax, tasks, {s: f["jaccard"].to_numpy(float) for s, f in by.items()}, sparsity_colors(res))
    for x, f in zip(centres, by.values()):
        _mark_nulls(ax, x, f, size=18)
        ax.plot(x, f["shared_jaccard"].to_numpy(float), "o", color="firebrick", markersize=5, fillstyle="none")
    paper = avg.drop_duplicates("task").set_index("task").reindex(tasks)["paper_overlap"]
    ax.plot(np.arange(len(tasks)), paper, "D", color="firebrick", markersize=6, linestyle="")
    handles = ax.get_legend_handles_labels()[0] + _null_handles()
    handles.append(Line2D([], [], color="firebrick", marker="o", fillstyle="none", linestyle="", label="all languages"))
    handles.append(Line2D([], [], color="firebrick", marker="D", linestyle="", label="paper (all languages)"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title="IMP masks at sparsity")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean pairwise Jaccard")
    ax.set_title("Average overlap of the languages' sub-networks")
    return fig


@styled
def plot_overlap_groups(res: Results, task: str) -> Figure | None:
    """Mean pairwise Jaccard per layer (lines) and per module type (bars), each with both nulls and random controls."""
    layer, module = (t[t["task"] == task] for t in (overlap_by_group(res, "layer"), overlap_by_group(res, "module")))
    if layer.empty:
        return None
    colors, groups = sparsity_colors(res), list(dict.fromkeys(layer["group"]))
    fig, (ax1, ax2) = figure(2, width=5.2, height=4.6)
    for i, s in enumerate(res.sparsities):
        sub = layer[layer["sparsity"] == s]
        # each sparsity's points a little to the side, in its own marker: lines that coincide stay visible
        x = np.array([groups.index(g) for g in sub["group"]]) + (i - (len(res.sparsities) - 1) / 2) * 0.15
        marker = "os^Dv"[i % 5]
        ax1.plot(x, sub["jaccard"], "-" + marker, color=colors[s], markersize=4, label=f"IMP, {sp(s)}")
        for null, (line, measured) in LAYER_STYLES.items():
            ax1.plot(x, sub[f"{null}_null_jaccard"], line, color=colors[s])
            ax1.plot(x, sub[f"{null}_random_jaccard"], measured, color=colors[s], linestyle="")
    ax1.set_xticks(range(len(groups)), groups)
    handles = ax1.get_legend_handles_labels()[0]
    for null, (line, marker) in LAYER_STYLES.items():
        handles += [
            Line2D([], [], color="gray", linestyle=line, label=NULL_LABELS[null]),
            Line2D([], [], color="gray", marker=marker, linestyle="", label=f"{control_label(NULLS[null])}, measured"),
        ]
    ax1.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    ax1.set(xlabel="layer", ylabel="mean pairwise Jaccard", ylim=(0, 1.05), title="per layer")
    centres, by = _module_bars(res, ax2, module, "jaccard")
    for x, f in zip(centres, by.values()):
        _mark_nulls(ax2, x, f, size=10)
    ax2.legend(handles=_null_handles(), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax2.set(ylim=(0, 1), title="per module type")
    fig.suptitle(f"{task}: where the languages' sub-networks overlap")
    return fig


DEPARTURE_BARS = {  # column -> bar label; each with its nulls (the masks: what P and the departure counts predict)
    "jaccard": ("masks (the paper's)", "jaccard_p{pool}"),
    "gained_jaccard": ("gained A ∖ P", "expected_gained_jaccard{pool}"),
    "lost_jaccard": ("lost P ∖ A", "expected_lost_jaccard{pool}"),
}


def _pool_handles() -> list[Line2D]:
    return [
        Line2D([], [], color=c, marker="_", markersize=12, mew=2, linestyle="", label=f"null: {POOL_LABELS[p]}")
        for p, c in POOL_COLORS.items()
    ]


@styled
def plot_departures(res: Results, task: str) -> Figure | None:
    """Left: mean pairwise Jaccard across languages of the masks, of their gains and of their losses against P, each
    next to both nulls; right: the excess overlap over what P and the departure counts predict (both nulls)."""
    table = departures_table(res)
    table = table[(table["task"] == task) & (table["by"] == "all")]
    if table.empty:
        return None
    colors = sparsity_colors(res)
    by = {s: table[table["sparsity"] == s] for s in res.sparsities}
    fig, (left, right) = figure(2, width=4.8, height=3.8)
    values = {s: f[list(DEPARTURE_BARS)].to_numpy(float).ravel() for s, f in by.items() if len(f)}
    centres = bar_groups(left, [label for label, _ in DEPARTURE_BARS.values()], values, colors)
    for x, f in zip(centres, (by[s] for s in values)):
        for pool, color in POOL_COLORS.items():
            nulls = [f[null.format(pool=pool)].iloc[0] for _, null in DEPARTURE_BARS.values()]
            _dash(left, x, nulls, color)
    left.legend(handles=left.get_legend_handles_labels()[0] + _pool_handles(), fontsize=7)
    left.set(ylim=(0, 1), ylabel="mean pairwise Jaccard across languages", title="overlap, against P")
    excess = {s: f[["excess", "excess_band"]].to_numpy(float).ravel() for s, f in by.items() if len(f)}
    bar_groups(right, ["whole-tensor null", "band null"], excess, colors, fmt=lambda y: num(y, 2))
    right.axhline(0, color="black", linewidth=0.8)
    right.set(ylim=(min(0.0, *(np.nanmin(v) for v in excess.values())) - 0.05, 1), title="excess overlap")
    right.set_ylabel("(J − J_P) / (1 − J_P): shared beyond P's prediction")
    fig.suptitle(f"{task}: overlap beyond pre-training (departures from the pre-trained-magnitude mask P)")
    return fig


@styled
def plot_departures_groups(res: Results, task: str) -> Figure | None:
    """The excess overlap per layer (lines) and per module type (bars): solid and bars against the whole-tensor null,
    dashed and purple dashes against the band null."""
    table = departures_table(res)
    table = table[table["task"] == task]
    layer, module = (table[table["by"] == by] for by in ("layer", "module"))
    if layer.empty:
        return None
    colors = sparsity_colors(res)
    fig, (ax1, ax2) = figure(2, width=4.8, height=3.6)
    for s in res.sparsities:
        sub = layer[layer["sparsity"] == s]
        ax1.plot(sub["group"], sub["excess"], "-o", color=colors[s], markersize=4, label=f"{sp(s)}, whole tensor")
        ax1.plot(sub["group"], sub["excess_band"], "--", color=colors[s], label=f"{sp(s)}, band")
    ax1.axhline(0, color="black", linewidth=0.8)
    ax1.set(xlabel="layer", ylabel="excess overlap", title="per layer")
    ax1.legend(fontsize=7)
    centres, by = _module_bars(res, ax2, module, "excess")
    for x, f in zip(centres, by.values()):
        _dash(ax2, x, f["excess_band"], POOL_COLORS["_band"], 10)
    ax2.axhline(0, color="black", linewidth=0.8)
    ax2.set(title="per module type (bars: whole-tensor null, purple: band null)")
    fig.suptitle(f"{task}: where the languages share more than P predicts")
    return fig


LABELLED_POINTS = 4  # pairs named in the overlap-vs-transfer scatter, per sparsity: the largest changes


@styled
def plot_overlap_vs_transfer(res: Results, task: str) -> Figure | None:
    """Scatter of Jaccard(s, t) against the transfer change, with Spearman's ρ in the legend and title."""
    ovt = overlap_vs_transfer_table(res)
    ovt = ovt[ovt["task"] == task]
    if ovt.empty:
        return None
    rho = correlation_table(ovt).set_index("sparsity")["spearman"]
    colors = sparsity_colors(res)
    fig, (ax,) = figure(1, width=5.0, height=3.8)
    for sparsity, sub in ovt.groupby("sparsity", sort=True):
        label = f"{sp(sparsity)} (ρ = {num(rho[f'{sparsity:g}'], 2)})"
        ax.scatter(sub["jaccard"], sub["change"] * 100, color=colors[sparsity], label=label)
        extremes = sub.loc[sub["change"].abs().nlargest(LABELLED_POINTS).index]  # all labels would pile up
        for r in extremes.itertuples():
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
    ax.set_title(
        f"{task}: overlap vs transfer, Spearman ρ = {num(rho['all'], 2)}\n(labelled: the {LABELLED_POINTS} largest "
        "changes a sparsity)",
        fontsize=9,
    )
    ax.legend(title="sparsity", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


@styled
def plot_controls(res: Results, task: str) -> Figure | None:
    """Bars: Jaccard of each language's IMP mask with P; dashes: what each null expects of that pair."""
    grouped = by_sparsity(res, controls_table(res), task, "lang", "jaccard_with_pretrained")
    if grouped is None:
        return None
    langs, by, values = grouped
    fig, (ax,) = figure(1, width=max(4.5, 1.2 * len(langs) + 2.5))
    for x, f in zip(bar_groups(ax, langs, values, sparsity_colors(res)), by.values()):
        for null, color in NULL_COLORS.items():
            _dash(ax, x, f[f"{null}_null_jaccard"], color)
    handles = ax.get_legend_handles_labels()[0] + _null_handles(measured=False)
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title="sparsity")
    ax.set(ylim=(0, 1), xlabel="language", ylabel="Jaccard with the pre-trained-magnitude mask P")
    ax.set_title(f"{task}: IMP mask vs P, the magnitude mask of θ0")
    return fig


@styled
def plot_pair_kinds(res: Results, table: pd.DataFrame) -> Figure | None:
    """Jaccard and excess over P of the IMP masks by kind of pair (bars: means over pairs, whiskers: 95 %
    intervals), per task and sparsity: how far other-language pairs sit from the same language's other seeds."""
    if table.empty:
        return None
    kinds = [k for k in PAIR_KIND_ORDER if k in set(table["pair"])]
    groups = list(dict.fromkeys(zip(table["task"], table["sparsity"])))
    fig, axes = figure(2, width=max(4.2, 0.9 * len(groups) + 1.5), height=4.0)
    colors = dict(zip(PAIR_KIND_ORDER, ("#7f7f7f", "#ff7f0e", "#1f77b4", "#2ca02c")))
    width = 0.8 / max(1, len(kinds))
    for ax, measure, label in zip(axes, ("jaccard", "excess"), ("Jaccard", "excess overlap over P")):
        for k, kind in enumerate(kinds):
            rows = table[table["pair"] == kind].set_index(["task", "sparsity"])
            xs, ys, err = [], [], []
            for g, key in enumerate(groups):
                if key in rows.index and np.isfinite(rows.loc[key, measure]):
                    r = rows.loc[key]
                    xs.append(g + (k - (len(kinds) - 1) / 2) * width)
                    ys.append(r[measure])
                    lo, hi = r[f"{measure}_low"], r[f"{measure}_high"]
                    err.append((r[measure] - lo, hi - r[measure]) if np.isfinite(lo) else (0.0, 0.0))
            if xs:
                ax.bar(xs, ys, width, color=colors[kind], label=PAIR_KIND_LABELS[kind])
                ax.errorbar(xs, ys, yerr=np.array(err).T, fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        ax.set_xticks(range(len(groups)), [f"{t}\n{sp(s)}" for t, s in groups])
        ax.set_ylabel(label)
        if measure == "jaccard":
            finite = table[measure].dropna()
            if len(finite):
                ax.set_ylim(max(0.0, finite.min() - 0.05), min(1.0, finite.max() + 0.02))
    axes[1].axhline(0, color="black", linewidth=0.6)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(kinds))
    return fig
