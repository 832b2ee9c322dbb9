"""*The paper's numbers*: every number and finding the report quotes from Foroutan et al. (EMNLP 2022), each with
where it comes from, the measure and the sparsity it is at, what was not checked, and this run's value in each
measure the paper's code knows (so a reader can see how much the choice of measure matters)."""

from __future__ import annotations

import pandas as pd

from ..study.layout import IMP
from .output import Report, Section, viewable
from .paper import PAPER
from .tables import mean_over_seeds
from .text import pct, sp


def all_language_overlap(rep: Report) -> pd.DataFrame:
    """Per task: the paper's average overlap beside this run's overlap of all languages' IMP masks at once (mean
    over seeds), by |A₁ ∩ … ∩ Aₙ| / |A₁ ∪ … ∪ Aₙ| and by agreement, at each transfer sparsity."""
    res = rep.results
    shared = res.shared[(res.shared["masks"] == IMP) & (res.shared["by"] == "all")]
    means = mean_over_seeds(shared, ["task", "sparsity"], ["jaccard", "agreement"]).set_index(["task", "sparsity"])
    rows = []
    for task in res.tasks:
        kind = res.study.task(task).kind
        row = {"task": task, "paper's task": PAPER.task_names[kind], "paper": PAPER.average_overlap.get(kind)}
        for s in res.sparsities:
            found = (task, s) in means.index
            row[f"|AND| / |OR| at {sp(s)}"] = means.at[(task, s), "jaccard"] if found else float("nan")
            row[f"agreement at {sp(s)}"] = means.at[(task, s), "agreement"] if found else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


@viewable
def paper_numbers_section(rep: Report) -> Section:
    table = rep.save_table(all_language_overlap(rep), "paper_numbers")
    sources = PAPER.sources
    text = [
        f"**Reference:** {sources['reference']}.",
        f"**Average overlap per task** ({PAPER.ranking}). *Source:* {sources['average_overlap']}. "
        f"*Measure:* {sources['measure']}. The table gives this run's overlap of all languages' IMP masks in both "
        "measures (mean over seeds):",
        table,
        "**Findings** (the sentence after *Paper:* above each figure, the verdict table's claims). *Source:* "
        f"{sources['findings']}.",
    ]
    jaccard = table.filter(like="|AND|")
    spans = [
        f"{task} {'–'.join(dict.fromkeys(pct(v, digits=0) for v in (row.min(), row.max())))} vs {pct(paper, digits=0)}"
        for task, paper, (_, row) in zip(table["task"], table["paper"], jaccard.iterrows())
        if row.notna().any()
    ]
    if spans:
        text.append(f"**This run against the paper** (|AND| / |OR| over the sparsities): {'; '.join(spans)}.")
    return Section("The paper's numbers", text)
