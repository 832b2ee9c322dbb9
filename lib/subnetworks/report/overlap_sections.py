"""The report's overlap sections: overlap beyond pre-training (the languages' departures from P), the paper's overlap
of whole sub-networks next to both random nulls, overlap per layer and module type, overlap against transfer, and
the IMP masks against P. Every comparison a sentence makes ("above", "within") is computed from the numbers."""

from __future__ import annotations

import math

import pandas as pd

from .names import NULL_LABELS, NULL_OF, NULL_TOLERANCE, NULLS, OVERLAP_MEASURES, control_label
from .output import Report, Section, viewable
from .overlap_figures import (
    plot_average_overlap,
    plot_controls,
    plot_departures,
    plot_departures_groups,
    plot_overlap,
    plot_overlap_groups,
    plot_overlap_vs_transfer,
)
from .overlap_tables import (
    average_overlap_table,
    controls_table,
    correlation_table,
    departure_counts_table,
    departures_table,
    largest_null_gaps,
    overlap_by_group,
    overlap_pairs_table,
    overlap_vs_transfer_table,
    random_null_gaps,
)
from .paper import PAPER
from .tables import by_task
from .text import finding, join_and, num, pct, sp

DEPARTURES_INTRO = (
    "P is the magnitude mask of the pre-trained weights θ0 at the same sparsity: the same mask in every language, so "
    "whatever overlap it explains comes from pre-training, not from the task or the language. Each IMP mask A "
    "departs from P by the weights it **gained** (A ∖ P) and **lost** (P ∖ A). Their nulls draw the same numbers of "
    "departures per tensor at random, among all weights they could come from (*whole tensor*) or only among those "
    "in the band around P's threshold that training moved far enough to cross it (*band*). J_P is the Jaccard that "
    "P and the departure counts alone predict of two languages' masks; the **excess overlap** (J − J_P) / (1 − J_P) "
    "is the share of what P leaves unexplained that the languages share (0: as P predicts, 1: identical masks)."
)


def _versus(value: float, nulls: list[float]) -> str:
    """Where ``value`` lies against its nulls, in words."""
    if not all(math.isfinite(v) for v in [value, *nulls]):
        return "n/a against its nulls"
    if value > max(nulls):
        return "above both nulls"
    return "at or below both nulls" if value <= min(nulls) else "between its nulls"


def _departures_sentence(sub: pd.DataFrame, task: str) -> str:
    parts = []
    for r in sub.itertuples():
        sets = [
            f"the {name} overlap {num(j, 2)}, {_versus(j, [whole, band])} ({num(whole, 2)} whole tensor, "
            f"{num(band, 2)} band)"
            for name, j, whole, band in (
                ("gains", r.gained_jaccard, r.expected_gained_jaccard, r.expected_gained_jaccard_band),
                ("losses", r.lost_jaccard, r.expected_lost_jaccard, r.expected_lost_jaccard_band),
            )
        ]
        parts.append(
            f"at {sp(r.sparsity)} {join_and(sets)}; the masks' Jaccard {num(r.jaccard, 2)} against "
            f"{num(r.jaccard_p, 2)} (band {num(r.jaccard_p_band, 2)}) that P and the departure counts predict: "
            f"excess {num(r.excess, 2)} (band {num(r.excess_band, 2)})"
        )
    return f"{task} (mean over pairs of languages): " + "; ".join(parts) + "."


def _span(frame: pd.DataFrame, column: str) -> str:
    """'from 0.12 (layer 3) to 0.40 (layer 0)': the lowest and highest ``column`` of ``frame``'s groups (layers are
    numbers, other groups names)."""
    ok = frame[frame[column].notna()]
    if ok.empty:
        return "n/a"
    lo, hi = ok.loc[ok[column].idxmin()], ok.loc[ok[column].idxmax()]

    def name(group: str) -> str:
        return f"layer {group}" if group.isdigit() else group

    return f"from {num(lo[column], 2)} ({name(lo['group'])}) to {num(hi[column], 2)} ({name(hi['group'])})"


@viewable
def departures_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(departures_table(res), "departures")
    counts = rep.save_table(departure_counts_table(res), "departure_counts")
    section = Section("Overlap beyond pre-training: the languages' departures from P")
    if table.empty:
        return section
    section.blocks.append(DEPARTURES_INTRO)
    for task, sub in by_task(res, table):
        paper = PAPER.finding("departures", task=PAPER.task_names[res.study.task(task).kind])
        run = _departures_sentence(sub[sub["by"] == "all"], task)
        rep.add_figure(section, finding(paper, run), plot_departures(res, task), f"departures_{task}")
    shown = counts[counts["by"] != "layer"].drop(columns=["size", "p_kept", "band_size"])
    text = "Departures per language, whole masks and per module type (per layer: `tables/departure_counts.csv`):"
    section.blocks += [text, shown, table[table["by"] == "all"].drop(columns=["by", "group"])]
    return section


@viewable
def departures_groups_section(rep: Report) -> Section:
    res = rep.results
    table = departures_table(res)
    section = Section("Excess overlap per layer and module type", level=3)
    for task, sub in by_task(res, table):
        spans = [
            f"at {sp(s)} from layer to layer {_span(g[g['by'] == 'layer'], 'excess')}, from module type "
            f"to module type {_span(g[g['by'] == 'module'], 'excess')}"
            for s, g in sub.groupby("sparsity", sort=False)
        ]
        run = f"{task}: the excess overlap (whole-tensor null) goes " + "; ".join(spans) + "."
        figure = plot_departures_groups(res, task)
        rep.add_figure(section, finding(PAPER.finding("departures_groups"), run), figure, f"departures_groups_{task}")
    return section


def random_controls_sentence(gaps: pd.DataFrame) -> str:
    """For each random control: the largest |measured − expected| Jaccard over its draws (whole masks, every pair of
    languages, seed and sparsity), whether it is within :data:`NULL_TOLERANCE`, and how much a draw varies."""
    parts = []
    for control, worst in largest_null_gaps(gaps).items():
        null, gap = NULL_OF[control], abs(worst["gap"])
        text = (
            f"the {control_label(control)} masks against the {NULL_LABELS[null]}: largest gap {num(gap, 4)} "
            f"({worst['task']} at {sp(worst['sparsity'])}, {worst['a']}–{worst['b']}: {num(worst['jaccard'], 4)} "
            f"measured, {num(worst['expected_jaccard'], 4)} expected), "
            f"{'within' if gap <= NULL_TOLERANCE else 'not within'} {NULL_TOLERANCE}"
        )
        if math.isfinite(worst["sd"]) and worst["sd"] > 0:
            text += f" (a draw of this model's prunable weights varies by about {num(worst['sd'], 4)}: "
            text += f"{gap / worst['sd']:.1f} times that)"
        parts.append(text)
    if not parts:
        return ""
    return "**Random controls against their nulls** (Jaccard of whole masks): " + "; ".join(parts) + "."


@viewable
def overlap_section(rep: Report, measure: str = "jaccard") -> Section:
    """Pairwise overlap of the languages' IMP masks by ``measure``: ``jaccard`` (the paper's, kept weights) or
    ``agreement`` (the share of weights both masks keep or both prune)."""
    if measure not in OVERLAP_MEASURES:
        raise ValueError(f"unknown overlap measure {measure!r}: use one of {list(OVERLAP_MEASURES)}")
    res = rep.results
    rep.save_table(overlap_pairs_table(res), "overlap_pairwise")
    avg = average_overlap_table(res)  # its CSV is written by average_overlap_section, which shows it
    section = Section("Overlap of the languages' sub-networks: the paper's measure")
    for task, sub in by_task(res, avg):
        parts = [
            f"{pct(r[measure], digits=0)} at {sp(r['sparsity'])} ("
            + "; ".join(
                f"{NULL_LABELS[null]} {pct(r[f'{null}_null_{measure}'], digits=0)}, {control_label(control)} "
                f"masks {pct(r[f'{null}_random_{measure}'], digits=0)}"
                for null, control in NULLS.items()
            )
            + ")"
            for _, r in sub.iterrows()
        ]
        kind = res.study.task(task).kind
        paper = PAPER.finding(
            "overlap", task=PAPER.task_names[kind], overlap=pct(PAPER.average_overlap[kind], digits=0)
        )
        run = f"{task}: mean pairwise {OVERLAP_MEASURES[measure]} {join_and(parts)}."
        suffix = "" if measure == "jaccard" else f"_{measure}"
        rep.add_figure(section, finding(paper, run), plot_overlap(res, task, measure), f"overlap_{task}{suffix}")
    return section


@viewable
def average_overlap_section(rep: Report) -> Section:
    res = rep.results
    avg = rep.save_table(average_overlap_table(res), "overlap_average")
    gaps = rep.save_table(random_null_gaps(res), "random_null_gaps")
    section = Section("Average overlap per task, and all languages at once", level=3)
    if avg.empty:
        return section
    ranks = []
    for s in res.sparsities:
        ranked = avg[avg["sparsity"] == s].sort_values("shared_jaccard", ascending=False)
        order = " > ".join(
            f"{r.task} {pct(r.shared_jaccard, digits=0)} (pairwise {pct(r.jaccard, digits=0)})"
            for r in ranked.itertuples()
        )
        ranks.append(f"all-language Jaccard |A₁ ∩ … ∩ Aₙ| / |A₁ ∪ … ∪ Aₙ| at {sp(s)}: {order}")
    paper = PAPER.finding("average_overlap")
    rep.add_figure(section, finding(paper, "; ".join(ranks) + "."), plot_average_overlap(res), "overlap_average")
    section.blocks += [b for b in (random_controls_sentence(gaps), avg) if len(b)]
    return section


@viewable
def overlap_groups_section(rep: Report) -> Section:
    res = rep.results
    layer = rep.save_table(overlap_by_group(res, "layer"), "overlap_layer")
    module = rep.save_table(overlap_by_group(res, "module"), "overlap_module")
    section = Section("Overlap per layer and per module type")
    paper = PAPER.finding("overlap_groups")
    for task in res.tasks:
        parts = [_groups_sentence(layer, module, task, s) for s in res.sparsities]
        parts = [p for p in parts if p]
        if parts:
            rep.add_figure(
                section,
                finding(paper, f"{task}: " + "; ".join(parts) + "."),
                plot_overlap_groups(res, task),
                f"overlap_groups_{task}",
            )
    return section


def _groups_sentence(layer: pd.DataFrame, module: pd.DataFrame, task: str, sparsity: float) -> str:
    lay = layer[(layer["task"] == task) & (layer["sparsity"] == sparsity)]
    mod = module[(module["task"] == task) & (module["sparsity"] == sparsity)]
    if lay.empty or mod.empty:
        return ""
    both = pd.concat([lay, mod])
    nulls = both[[f"{null}_null_jaccard" for null in NULLS]].max(axis=1)
    below = int((both["jaccard"] <= nulls).sum())
    return (
        f"at {sp(sparsity)} layers range {_span(lay, 'jaccard')}, module types {_span(mod, 'jaccard')}; "
        f"{below} group(s) at or below a random null"
    )


@viewable
def overlap_transfer_section(rep: Report) -> Section:
    res = rep.results
    ovt = rep.save_table(overlap_vs_transfer_table(res), "overlap_vs_transfer")
    corr = rep.save_table(correlation_table(ovt), "correlation")
    section = Section("Does overlap predict transfer?")
    paper = PAPER.finding("overlap_transfer")
    for task in res.tasks:
        c = corr[corr["task"] == task].set_index("sparsity")
        if c.empty:
            continue
        per = [f"{num(c.at[f'{s:g}', 'spearman'], 2)} at {sp(s)}" for s in res.sparsities if f"{s:g}" in c.index]
        run = (
            f"{task}: Spearman ρ between Jaccard(s, t) and (acc(s,t) − acc(t,t)) / acc(t,t) is "
            f"{num(c.at['all', 'spearman'], 2)} over {c.at['all', 'n']} language pairs ({join_and(per)})."
        )
        rep.add_figure(section, finding(paper, run), plot_overlap_vs_transfer(res, task), f"overlap_vs_transfer_{task}")
    section.blocks.append(corr)
    return section


@viewable
def controls_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(controls_table(res), "controls")
    section = Section("The IMP masks against P, and ties at the threshold")
    paper = PAPER.finding("controls")
    for task, sub in by_task(res, table):
        parts = [
            f"{num(g['jaccard_with_pretrained'].mean(), 2)} at {sp(s)} "
            f"({NULL_LABELS['layerwise']} {num(g['layerwise_null_jaccard'].mean(), 2)}, "
            f"{NULL_LABELS['global']} {num(g['global_null_jaccard'].mean(), 2)})"
            for s, g in sub.groupby("sparsity")
        ]
        run = (
            f"{task}: the IMP masks share a Jaccard of {join_and(parts)} with P, the magnitude mask of the pre-trained "
            f"weights; at most {int(sub['ties_at_threshold'].max())} weight(s) tie at the IMP threshold and "
            f"{int(sub['pretrained_ties_at_threshold'].max())} at P's."
        )
        rep.add_figure(section, finding(paper, run), plot_controls(res, task), f"controls_{task}")
    section.blocks.append(table)
    return section
