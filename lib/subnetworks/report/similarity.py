"""Representation similarity in the report: per-layer CKA of the languages' representations of parallel sentences
under the dense model, the IMP sub-networks and the controls, beside the masks' per-layer overlap.

How to read it: CKA near the shuffled null means the two languages' representations of the same sentences are no
more alike than representations of different sentences; the dense model's CKA is what the sub-networks start from;
the same language's IMP sub-networks at two seeds give the cross-seed reference (how alike two equally good
sub-networks of one language compute). IMP close to P (the pre-trained-magnitude mask) means the task's training
did not change what the masked encoder computes across languages beyond what θ0's magnitudes imply.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..core.stats import over_seeds
from ..study.layout import IMP
from .figures import figure, sparsity_colors, styled
from .load import Results
from .names import PRETRAINED, control_label
from .output import Report, Section, viewable
from .overlap_tables import overlap_by_group
from .paper import PAPER
from .text import finding, num, sp

DENSE = "dense"
CROSS_SEED = "imp, same language"  # the reference row: one language's IMP masks at two seeds
MODEL_STYLES = {  # masks -> (line style, marker); IMP in the sparsity's colour, the rest in grey
    IMP: ("-", "o"),
    PRETRAINED: ("--", "^"),
    "random": (":", "x"),
    "global_random": ("-.", "+"),
}


def cross_language_pairs(sim: pd.DataFrame) -> pd.DataFrame:
    """Pairs of two languages: at two seeds for IMP where there are several (free of the shared seed), else at one."""
    other = sim[sim["pair"] != "same_language"]
    imp_kinds = set(other.loc[other["masks"] == IMP, "pair"])
    wanted = "other_seed" if "other_seed" in imp_kinds else "same_seed"
    return other[(other["masks"] != IMP) | (other["pair"] == wanted)]


def similarity_by_layer(res: Results) -> pd.DataFrame:
    """Mean CKA over language pairs per (task, model, sparsity, layer), with its interval over the pairs of seeds the
    language pairs are drawn at (IMP at several seeds: 57-58, 57-59, 58-59 as three estimates; NaN for one), the
    shuffled null's 95th percentile, and the cross-seed reference as the model ``imp, same language``."""
    sim = res.similarity
    if sim.empty:
        return pd.DataFrame(columns=["task", "masks", "sparsity", "layer", "cka", "low", "high", "null_q95", "pairs"])
    reference = sim[(sim["masks"] == IMP) & (sim["pair"] == "same_language")].assign(masks=CROSS_SEED)
    rows = []
    for (task, masks, sparsity, layer), g in pd.concat([cross_language_pairs(sim), reference]).groupby(
        ["task", "masks", "sparsity", "layer"], sort=False
    ):
        interval = over_seeds(g.groupby(["seed_a", "seed_b"])["cka"].mean().tolist())
        rows.append(
            {
                "task": task,
                "masks": masks,
                "sparsity": sparsity,
                "layer": int(layer),
                "cka": float(g["cka"].mean()),
                "low": interval.low,
                "high": interval.high,
                "null_q95": float(g["null_q95"].mean()),
                "pairs": len(g),
            }
        )
    return pd.DataFrame(rows)


def _label(masks: str) -> str:
    return {IMP: "IMP", DENSE: "dense", CROSS_SEED: "IMP, one language at two seeds"}.get(masks) or control_label(
        masks, short=True
    )


@styled
def plot_similarity(res: Results, task: str) -> Figure | None:
    """One panel per sparsity: per-layer CKA across languages of the dense model, IMP (band: interval over seed
    pairs), the controls, the cross-seed reference and the shuffled null; last panel: the IMP masks' per-layer
    Jaccard."""
    table = similarity_by_layer(res)
    table = table[table["task"] == task]
    if table.empty:
        return None
    colors = sparsity_colors(res)
    fig, axes = figure(len(res.sparsities) + 1, width=3.6, height=3.6)
    dense = table[table["masks"] == DENSE].sort_values("layer")
    for ax, s in zip(axes, res.sparsities):
        ax.plot(dense["layer"], dense["cka"], "-", color="black", linewidth=2, label="dense")
        at = table[table["sparsity"] == s]
        for masks, (line, marker) in MODEL_STYLES.items():
            g = at[at["masks"] == masks].sort_values("layer")
            color = colors[s] if masks == IMP else "dimgray"
            label = f"IMP, {sp(s)}" if masks == IMP else _label(masks)
            ax.plot(g["layer"], g["cka"], line, marker=marker, markersize=4, color=color, label=label)
            if masks == IMP and g["low"].notna().any():
                ax.fill_between(g["layer"], g["low"], g["high"], color=color, alpha=0.25, linewidth=0)
        ref = at[at["masks"] == CROSS_SEED].sort_values("layer")
        label = f"{_label(CROSS_SEED)}, {sp(s)}"
        ax.plot(ref["layer"], ref["cka"], "-", color=colors[s], alpha=0.5, linewidth=3, label=label)
        null = at[at["masks"] == IMP].sort_values("layer")
        ax.fill_between(
            null["layer"], 0, null["null_q95"], color="tab:red", alpha=0.12, label="shuffled null (95th pct)"
        )
        ax.set(xlabel="layer", ylabel="CKA across languages", ylim=(0, 1.02), title=f"CKA at {sp(s)}")
    _plot_layer_overlap(res, task, axes[-1], colors)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    labelled = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labelled.setdefault(label, handle)
    labelled["layer-wise null (Jaccard)"] = Line2D([], [], color="gray", linestyle="--")
    fig.legend(labelled.values(), labelled.keys(), loc="outside lower center", ncol=4, fontsize=7)
    fig.suptitle(f"{task}: how alike the languages' sub-networks represent parallel sentences, layer by layer")
    return fig


def _plot_layer_overlap(res: Results, task: str, ax, colors: dict) -> None:
    """The IMP masks' mean pairwise Jaccard per layer (each sparsity dodged a little and in its own marker, so lines
    that coincide stay visible) and the layer-wise null."""
    layer = overlap_by_group(res, "layer")
    layer = layer[(layer["task"] == task) & layer["group"].str.isdigit()]
    for i, s in enumerate(res.sparsities):
        g = layer[layer["sparsity"] == s]
        x = g["group"].astype(int) + (i - (len(res.sparsities) - 1) / 2) * 0.15
        ax.plot(x, g["jaccard"], "-" + "os^Dv"[i % 5], markersize=4, color=colors[s], label=f"IMP, {sp(s)}")
        ax.plot(x, g["layerwise_null_jaccard"], "--", color=colors[s])
    ax.set(xlabel="layer", ylabel="mean pairwise Jaccard", ylim=(0, 1.02), title="mask overlap, per layer")


def _imp_interval(res: Results, task: str, sparsity: float):
    """The IMP masks' CKA across languages averaged over layers and language pairs, with its interval over the seed
    pairs those language pairs are drawn at."""
    sim = cross_language_pairs(res.similarity)
    imp = sim[(sim["task"] == task) & (sim["masks"] == IMP) & (sim["sparsity"] == sparsity)]
    return over_seeds(imp.groupby(["seed_a", "seed_b"])["cka"].mean().tolist())


def similarity_sentence(res: Results, table: pd.DataFrame, task: str, sparsity: float) -> str:
    """The layer-averaged CKA across languages of IMP against dense, P, the random masks, the cross-seed reference
    and the null, and whether IMP and P are distinguishable over seed pairs."""
    at = table[(table["task"] == task) & ((table["sparsity"] == sparsity) | (table["masks"] == DENSE))]
    mean = at.groupby("masks")["cka"].mean()
    if IMP not in mean:
        return ""
    imp = _imp_interval(res, task, sparsity)
    shown = f" (interval over seed pairs {num(imp.low, 2)}–{num(imp.high, 2)})" if np.isfinite(imp.low) else ""
    parts = [f"IMP {num(imp.value, 2)}{shown}"]
    parts += [f"{_label(m)} {num(mean[m], 2)}" for m in (DENSE, PRETRAINED, "random", "global_random") if m in mean]
    if CROSS_SEED in mean:
        parts.append(f"one language at two seeds {num(mean[CROSS_SEED], 2)}")
    parts.append(f"shuffled null ≤ {num(at.loc[at['masks'] == IMP, 'null_q95'].max(), 2)}")
    verdict = ""
    if PRETRAINED in mean and np.isfinite(imp.low):
        if imp.contains(mean[PRETRAINED]):
            verdict = "; IMP is not distinguishable from P"
        else:
            verdict = f"; IMP is {'above' if imp.value > mean[PRETRAINED] else 'below'} P"
    return f"at {sp(sparsity)}, mean over layers: " + ", ".join(parts) + verdict


@viewable
def similarity_section(rep: Report) -> Section:
    res = rep.results
    section = Section("Representation similarity on parallel sentences")
    table = similarity_by_layer(res)
    if table.empty:
        section.blocks.append(
            "Not computed: set `similarity.corpus` in the params to a task whose test split is parallel "
            "(the demo's MLM text) to compare what the sub-networks compute, not only which weights they keep."
        )
        return section
    table = rep.save_table(table, "similarity_layer")
    corpus = res.study.similarity.corpus
    n = int(res.similarity["sentences"].iloc[0])
    section.blocks.append(
        f"Linear CKA between two languages' mean-pooled hidden states of the same {n} parallel sentences (the test "
        f"split of `{corpus}`), at every encoder layer, for θ0 with each mask applied (before fine-tuning). Each "
        "language's sentences go through its own sub-network. Red band: CKA of the same representations with the "
        "sentences shuffled (not parallel), the null; thick pale line: one language's IMP sub-networks at two seeds."
    )
    for task in res.tasks:
        parts = [p for p in (similarity_sentence(res, table, task, s) for s in res.sparsities) if p]
        text = finding(PAPER.finding("similarity"), f"{task}: " + "; ".join(parts) + ".")
        rep.add_figure(section, text, plot_similarity(res, task), f"similarity_{task}")
    return section
