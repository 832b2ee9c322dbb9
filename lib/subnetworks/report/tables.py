"""The report's score and transfer tables, derived from :class:`~.load.Results`: means over seeds, acc(s, t) per
sparsity with the controls' rows acc(control, t), the paper's relative change and the change against P.

Each table is derived once per :class:`~.load.Results` (figures and sentences reuse them) and handed out as a copy;
:mod:`.overlap_tables` derives the overlap tables the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import pandas as pd

from .cache import memoised
from .load import Results
from .names import CONTROL_LABELS, PRETRAINED
from .uncertainty import mean_change_intervals

RELATIVE_MEASURES = ("relative_change", "relative_change_vs_pretrained")


def mean_over_seeds(frame: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Mean over seeds (and anything else not in ``keys``), keeping the first-seen order of ``keys``."""
    if frame.empty:
        return pd.DataFrame(columns=keys + values)
    return frame.groupby(keys, sort=False, as_index=False)[values].mean()


def ratio(num: float, den: float) -> float:
    """num / den; NaN where either is not finite or den is 0."""
    return float(num / den) if den and math.isfinite(den) and math.isfinite(num) else math.nan


def by_task(res: Results, table: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(task, its rows) for every task of the study that has rows in ``table``, in the study's order."""
    for task in res.tasks:
        rows = table[table["task"] == task]
        if not rows.empty:
            yield task, rows


def scored_controls(res: Results) -> list[str]:
    """The controls that have scores: those the report names in its order (P first), then any other in the order of
    ``prune.controls``."""
    present = set(res.control_scores["control"])
    ordered = [*CONTROL_LABELS, *(c for c in res.study.prune.controls if c not in CONTROL_LABELS)]
    return [name for name in ordered if name in present]


# --- transfer -------------------------------------------------------------------------------------------------
def transfer_matrix(rows: Iterable[dict], value: str = "score") -> pd.DataFrame:
    """Pivot rows with ``source``, ``target`` and ``value`` into a source × target matrix (mean over seeds),
    languages in order of first appearance."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame()
    matrix = frame.pivot_table(index="source", columns="target", values=value, aggfunc="mean")
    langs = list(dict.fromkeys(list(frame["source"]) + list(frame["target"])))
    return matrix.reindex(
        index=[lang for lang in langs if lang in matrix.index],
        columns=[lang for lang in langs if lang in matrix.columns],
    )


@memoised
def transfer_matrices(res: Results, task: str) -> dict[float, pd.DataFrame]:
    """acc(s, t) per transfer sparsity: the source's IMP mask fine-tuned and scored on t (mean over seeds); rows
    only for sources with a finished run, columns every language of the task."""
    langs = res.languages(task)
    rows = res.transfer[(res.transfer["task"] == task) & (res.transfer["mask"] == "imp")]
    out = {}
    for sparsity in res.sparsities:
        matrix = transfer_matrix(rows[rows["sparsity"] == sparsity].to_dict("records"))
        if not matrix.empty:
            out[sparsity] = matrix.reindex(index=[lang for lang in langs if lang in matrix.index], columns=langs)
    return out


@memoised
def control_matrices(res: Results, task: str) -> dict[float, pd.DataFrame]:
    """acc(control, t) per transfer sparsity: each control drawn in target t's own IMP run, fine-tuned and scored on t
    like the IMP level (so it is the transfer control of every source's sub-network on t); rows the scored controls,
    columns every language of the task."""
    c = res.control_scores
    c = c[c["task"] == task]
    # trained as the transfer runs train, where they train otherwise than IMP (the prune stage then scores both)
    c = c[c["training"] == ("transfer" if (c["training"] == "transfer").any() else "imp")]
    rows = mean_over_seeds(c, ["sparsity", "control", "lang"], ["score"])
    out = {}
    for sparsity in res.sparsities:
        sub = rows[rows["sparsity"] == sparsity]
        if not sub.empty:
            matrix = sub.pivot(index="control", columns="lang", values="score")
            out[sparsity] = matrix.reindex(index=scored_controls(res), columns=res.languages(task)).astype(float)
    return out


def _pretrained_scores(res: Results, task: str, sparsity: float, targets: Iterable[str]) -> pd.Series:
    """acc(P, t) for each target (NaN where P was not scored)."""
    m = control_matrices(res, task).get(sparsity)
    row = m.loc[PRETRAINED] if m is not None and PRETRAINED in m.index else pd.Series(dtype=float)
    return row.reindex(list(targets)).astype(float)


@memoised
def transfer_table(res: Results) -> pd.DataFrame:
    """One row per (task, sparsity, source, target): acc(s,t), acc(t,t), the paper's change (acc(s,t) − acc(t,t)) /
    acc(t,t), acc(P,t) and the change against P (acc(s,t) − acc(P,t)) / acc(P,t)."""
    rows = []
    for task in res.tasks:
        for sparsity, m in transfer_matrices(res, task).items():
            p = _pretrained_scores(res, task, sparsity, m.columns)
            for s in m.index:
                for t in m.columns:
                    own = m.at[t, t] if t in m.index else math.nan
                    rows.append(
                        {
                            "task": task,
                            "sparsity": sparsity,
                            "source": s,
                            "target": t,
                            "score": m.at[s, t],
                            "own_score": own,
                            "change": ratio(m.at[s, t] - own, own) if s != t else 0.0,
                            "pretrained_score": p[t],
                            "change_vs_pretrained": ratio(m.at[s, t] - p[t], p[t]),
                        }
                    )
    columns = ["task", "sparsity", "source", "target", "score", "own_score", "change", "pretrained_score"]
    return pd.DataFrame(rows, columns=[*columns, "change_vs_pretrained"])


@memoised
def transfer_controls_table(res: Results) -> pd.DataFrame:
    """One row per (task, sparsity, control, target): acc(control, t), the controls' rows of the transfer heatmaps."""
    rows = [
        {"task": task, "sparsity": sparsity, "control": control, "target": t, "score": m.at[control, t]}
        for task in res.tasks
        for sparsity, m in control_matrices(res, task).items()
        for control in m.index
        for t in m.columns
    ]
    return pd.DataFrame(rows, columns=["task", "sparsity", "control", "target", "score"])


@memoised
def relative_change_table(res: Results) -> pd.DataFrame:
    """Per task, sparsity and source: the paper's relative change, mean over targets t ≠ s of
    (acc(s,t) − acc(t,t)) / acc(t,t), and the change against P on the target, (acc(s,t) − acc(P,t)) / acc(P,t), each
    with its paired-bootstrap interval, over the cells where neither score is at chance (``cells``; left out:
    ``at_chance``), from :func:`~.uncertainty.mean_change_intervals`."""
    m = mean_change_intervals(res)
    columns = ["task", "sparsity", "source"]
    if m.empty:
        return pd.DataFrame(columns=[*columns, *RELATIVE_MEASURES, "cells", "at_chance"])
    m = m[m["source"] != "all"]
    out = None
    for measure in RELATIVE_MEASURES:
        part = m[m["measure"] == measure].rename(
            columns={"value": measure, "low": f"{measure}_low", "high": f"{measure}_high"}
        )
        keep = [*columns, measure, f"{measure}_low", f"{measure}_high"]
        if out is None:
            out = part[[*keep, "cells", "at_chance"]]
        else:
            out = out.merge(part[keep], on=columns, how="left")
    return out.reset_index(drop=True)


# --- scores and compute ---------------------------------------------------------------------------------------
@memoised
def score_table(res: Results) -> pd.DataFrame:
    """Score per task, language and IMP level, next to the dense model (level 0), the majority-class rate of the test
    split, and at the transfer sparsities each scored control (``<control>_score``), all fine-tuned alike."""
    levels = mean_over_seeds(res.prune, ["task", "lang", "level"], ["sparsity", "density", "score"])
    dense = levels[levels["level"] == 0].set_index(["task", "lang"])["score"]
    data = res.data.assign(rate=pd.to_numeric(res.data["test_majority_rate"], errors="coerce"))
    majority = data.set_index(["task", "lang"])["rate"]
    imp_trained = res.control_scores[res.control_scores["training"] == "imp"]  # beside the IMP levels: as they train
    controls = mean_over_seeds(imp_trained, ["task", "lang", "level", "control"], ["score"])
    controls = controls.set_index(["task", "lang", "level", "control"])["score"]
    keys = list(zip(levels["task"], levels["lang"]))
    levels["dense_score"] = [dense.get(k, math.nan) for k in keys]
    levels["majority_rate"] = [majority.get(k, math.nan) for k in keys]
    for control in scored_controls(res):
        levels[f"{control}_score"] = [
            controls.get((*k, lvl, control), math.nan) for k, lvl in zip(keys, levels["level"])
        ]
    return levels.rename(columns={"score": "imp_score"})


def stage_seconds_table(res: Results) -> pd.DataFrame:
    """Compute seconds per stage, summed over its finished runs (from each run's timing.json)."""
    s = res.stage_seconds
    return s.groupby("stage", sort=False, as_index=False).agg(runs=("run", "count"), seconds=("seconds", "sum"))


@memoised
def training_seconds_table(res: Results) -> pd.DataFrame:
    """Where the fine-tuning time goes: optimiser seconds (``train_seconds``) summed per kind of training (the IMP
    levels per seed, the scored controls, the transfer runs that are not the reused diagonal); what a stage's time
    has beyond them is evaluation, data loading and the rest."""
    frames = {
        "IMP levels": res.prune,
        "controls": res.control_scores,
        "transfer": res.transfer[~res.transfer["reused_from"].notna()]
        if "reused_from" in res.transfer
        else res.transfer,
    }
    rows = []
    for kind, frame in frames.items():
        if "train_seconds" not in frame or frame.empty:
            continue
        for seed, g in frame.groupby("seed", sort=True):
            rows.append(
                {"kind": kind, "seed": int(seed), "trainings": len(g), "seconds": float(g["train_seconds"].sum())}
            )
    return pd.DataFrame(rows, columns=["kind", "seed", "trainings", "seconds"])
