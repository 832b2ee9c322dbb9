"""The training-budget curve's report (``python -m subnetworks budget``): per budget, how far the IMP masks moved from
the pre-trained-magnitude mask P (their Jaccard with it), how much more the languages' masks share than P and their
departures explain (the excess overlap), and what the sub-networks score; the demo's and the paper's budgets marked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..spec import load_study, resolve_path
from ..study.layout import Layout
from ..study.store import read_json, write_json
from .figures import figure, styled
from .load import cross_language
from .output import Report, Section
from .text import join_and, num, sp

BUDGET_FILE = "budget.json"
LEAVES_P = 0.9  # a mask whose Jaccard with P is below this has left P
CHANCE_MARGIN = 0.01  # a dense model within this of the majority-class rate (or of F1 0) learnt nothing


@dataclass
class BudgetResults:
    """What ``budget.json`` lists, and one row per (point, task, sparsity) read from each point's runs."""

    record: dict
    rows: pd.DataFrame
    missing: list[str]

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(self.rows["task"])) if len(self.rows) else []


def _point_rows(point: dict, layout: Layout) -> tuple[list[dict], list[str]]:
    rows, missing = [], []
    study = layout.study
    for task in study.tasks:
        overlap = layout.overlap_dir(task)
        if not overlap.done:
            missing.append(f"{point['label']}/overlap/{task}")
            continue
        controls = pd.read_csv(overlap.file("controls.csv"))
        controls = controls[controls["control"] == "pretrained"]
        departures = pd.read_csv(overlap.file("departures.csv"), dtype={"group": str})
        departures = cross_language(departures[departures["by"] == "all"])
        counts = pd.read_csv(overlap.file("departure_counts.csv"), dtype={"group": str})
        counts = counts[counts["by"] == "all"]
        levels = [
            lv
            for lang in study.task_languages(task)
            for seed in study.seeds
            for lv in layout.prune_dir(task, lang, seed).read_json("metrics.json")["levels"]
        ]
        scores = pd.DataFrame(levels)
        majority = np.mean(
            [
                layout.data_dir(task, lang).read_json("stats.json").get("test_majority_rate", 0.0)
                for lang in study.task_languages(task)
            ]
        )  # entity F1's chance level is 0
        for level in study.transfer_levels:
            s = study.sparsity_of(level)
            at = {
                name: frame[np.isclose(frame["sparsity"], s)]
                for name, frame in (
                    ("controls", controls),
                    ("departures", departures),
                    ("counts", counts),
                    ("scores", scores),
                )
            }
            rows.append(
                {
                    "point": point["label"],
                    "task": task,
                    "sparsity": s,
                    "budget": point["budget"][task],
                    "steps_multiplier": point["steps"],
                    "learning_rate_multiplier": point["learning_rate"],
                    "jaccard_with_p": at["controls"]["jaccard"].mean(),
                    "departed_share": (at["counts"]["gained"] / at["counts"]["p_kept"]).mean(),
                    "excess": at["departures"]["excess"].mean(),
                    "excess_band": at["departures"]["excess_band"].mean(),
                    "dense_score": scores[scores["level"] == 0]["score"].mean(),
                    "dense_at_chance": bool(scores[scores["level"] == 0]["score"].mean() <= majority + CHANCE_MARGIN),
                    "imp_score": at["scores"]["score"].mean(),
                }
            )
    return rows, missing


def load_budget(layout: Layout) -> BudgetResults:
    """The curve's points (``budget.json`` under the artefacts) and what their finished runs measured."""
    path = layout.artifacts / BUDGET_FILE
    record = read_json(path) if path.exists() else {"points": [], "paper_budget": {}}
    rows, missing = [], []
    for point in record["points"]:
        found, lost = _point_rows(point, Layout(load_study(point["params_file"]), layout.artifacts))
        rows += found
        missing += lost
    return BudgetResults(record, pd.DataFrame(rows), missing)


@styled
def plot_budget(res: BudgetResults, task: str) -> Figure | None:
    """Jaccard with P and the excess overlap against the budget (log scale), the demo's and the paper's marked."""
    rows = res.rows[res.rows["task"] == task]
    if rows.empty:
        return None
    fig, (left, right) = figure(2, width=4.8, height=3.6)
    for sparsity, sub in rows.groupby("sparsity"):
        left.plot(sub["budget"], sub["jaccard_with_p"], "-o", label=sp(sparsity))
        right.plot(sub["budget"], sub["excess_band"], "-o", label=f"{sp(sparsity)}, band null")
        right.plot(sub["budget"], sub["excess"], "--", marker="x", label=f"{sp(sparsity)}, whole-tensor null")
        collapsed = sub[sub["dense_at_chance"]]
        left.plot(collapsed["budget"], collapsed["jaccard_with_p"], "o", mfc="none", mec="firebrick", ms=12, mew=1.5)
    left.plot([], [], "o", mfc="none", mec="firebrick", ms=8, label="dense model at chance")
    left.axhline(LEAVES_P, color="grey", linestyle=":", linewidth=1)
    paper = res.record.get("paper_budget", {}).get(task)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.axvline(rows["budget"].min(), color="black", linewidth=0.8)
        if paper:
            ax.axvline(paper, color="firebrick", linewidth=0.8, linestyle="--")
        ax.set_xlabel("budget: sum of the learning rate over an IMP round's steps")
    left.set(ylabel="Jaccard of the IMP mask with P", title="black line: the demo's budget")
    right.set(ylabel="excess overlap across languages", title="red dashed: the paper's budget")
    left.legend(title="sparsity")
    right.legend(fontsize=7)
    fig.suptitle(f"{task}: the sub-networks against the training budget")
    return fig


def _sentence(res: BudgetResults, task: str) -> str:
    rows = res.rows[res.rows["task"] == task]
    parts = []
    for sparsity, sub in rows.groupby("sparsity"):
        sub = sub.sort_values("budget")
        left_p = sub[sub["jaccard_with_p"] < LEAVES_P]
        first = (
            f"falls below {LEAVES_P} from a budget of {num(left_p['budget'].iloc[0], 4)} ({left_p['point'].iloc[0]})"
            if len(left_p)
            else f"stays above {LEAVES_P} up to the largest budget, {num(sub['budget'].max(), 4)}"
        )
        parts.append(
            f"at {sp(sparsity)} the Jaccard with P goes from {num(sub['jaccard_with_p'].iloc[0])} to "
            f"{num(sub['jaccard_with_p'].iloc[-1])} and {first}; the excess overlap (band null) from "
            f"{num(sub['excess_band'].iloc[0])} to {num(sub['excess_band'].iloc[-1])}"
        )
    paper = res.record.get("paper_budget", {}).get(task)
    demo = rows["budget"].min()
    where = "" if not paper else f" The paper's settings give {num(paper, 4)}, {paper / demo:,.0f} times the demo's."
    collapsed = list(dict.fromkeys(rows[rows["dense_at_chance"]]["point"]))
    if collapsed:  # a collapsed training moves the weights without learning: its masks leave P for no good reason
        where += (
            f" The dense model is at chance at {join_and(collapsed)} (a learning rate too high for it): there the "
            "masks leave P through a training that learnt nothing, so only the other points speak for the task."
        )
    return f"{task}: {join_and(parts)}.{where}"


def _times(record: dict) -> str:
    """The last run that did work: how many stage runs, its wall time with the report (from ``budget.json``)."""
    last = record.get("last_run") or {}
    if not last:
        return "nothing yet."
    wall = last.get("total_seconds", last.get("runs_seconds", math.nan))
    m = record.get("machine", {})
    where = f"{m.get('processor', '?')}, {m.get('cpu_count', '?')} CPUs, torch {m.get('torch', '?')}" if m else "?"
    return (
        f"{last.get('executed', '?')} of {record.get('stage_runs', '?')} stage runs in the last run that did "
        f"work: {wall:.0f} s wall, report included, on {where}."
    )


def budget_sections(rep: Report) -> list[Section]:
    """The curve's report: what was run, one figure per task with its sentence, the table; summary.json, results.md."""
    res: BudgetResults = rep.results
    table = rep.save_table(res.rows, "budget")
    intro = Section(
        "The training-budget curve",
        [
            f"Budgets: {', '.join(p['label'] for p in res.record['points'])} (multipliers of the demo's IMP steps and "
            "encoder learning rate); each point is the demo's data, IMP and overlap for the curve's tasks, its "
            "controls drawn but not fine-tuned. Ran " + _times(res.record)
        ],
    )
    if res.missing:
        intro.blocks.append(f"Unfinished, left out: {', '.join(res.missing)}.")
    figures = Section("Where the sub-networks leave P")
    for task in res.tasks:
        rep.add_figure(figures, _sentence(res, task), plot_budget(res, task), f"budget_{task}")
    figures.blocks.append(table)
    summary = {
        "points": res.record["points"],
        "paper_budget": res.record.get("paper_budget", {}),
        "rows": res.rows.to_dict("records"),
        "sentences": {t: _sentence(res, t) for t in res.tasks},
    }
    rep.root.mkdir(parents=True, exist_ok=True)
    write_json(rep.root / "summary.json", summary)
    (rep.root / "results.md").write_text("\n\n".join(summary["sentences"].values()) + "\n", encoding="utf-8")
    return [intro, figures]


def open_budget(layout: Layout, reports_dir: str | Path = "") -> Report:
    return Report(load_budget(layout), resolve_path(reports_dir or layout.study.runtime.reports_dir))
