"""The report's tables, derived from :class:`~.load.Results`: means over seeds, matrices per sparsity, the paper's
relative change and average overlap, overlap per layer and module type, overlap against transfer, the controls.

Each table is derived once per :class:`~.load.Results` (figures and sentences reuse them) and handed out as a copy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..core.stats import spearman
from ..core.transfer import relative_change
from .load import Results
from .paper import PAPER

PRETRAINED = "pretrained"  # the control the controls table is about: the magnitude mask of the pre-trained weights


def _memo(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Derive a table once per :class:`Results`; hand out copies, so a caller may change what it gets."""

    @functools.wraps(fn)
    def wrapper(res: Results, *args):
        key = (fn.__name__, *args)
        if key not in res.cache:
            res.cache[key] = fn(res, *args)
        value = res.cache[key]
        return {k: v.copy() for k, v in value.items()} if isinstance(value, dict) else value.copy()

    return wrapper


def _mean(frame: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Mean over seeds (and anything else not in ``keys``), keeping the first-seen order of ``keys``."""
    if frame.empty:
        return pd.DataFrame(columns=keys + values)
    return frame.groupby(keys, sort=False, as_index=False)[values].mean()


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


@_memo
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


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den and math.isfinite(den) and math.isfinite(num) else math.nan


@_memo
def transfer_table(res: Results) -> pd.DataFrame:
    """One row per (task, sparsity, source, target): acc(s,t), acc(t,t), change (acc(s,t) − acc(t,t)) / acc(t,t)."""
    rows = []
    for task in res.tasks:
        for sparsity, m in transfer_matrices(res, task).items():
            for s in m.index:
                for t in m.columns:
                    own = m.at[t, t] if t in m.index else math.nan
                    change = _ratio(m.at[s, t] - own, own) if s != t else 0.0
                    rows.append(
                        {
                            "task": task,
                            "sparsity": sparsity,
                            "source": s,
                            "target": t,
                            "score": m.at[s, t],
                            "own_score": own,
                            "change": change,
                        }
                    )
    return pd.DataFrame(rows, columns=["task", "sparsity", "source", "target", "score", "own_score", "change"])


@_memo
def relative_change_table(res: Results) -> pd.DataFrame:
    """The paper's relative change per source and sparsity (:func:`subnetworks.core.transfer.relative_change` on
    acc(s, t) squared over the task's languages); sources without a finished run are left out, and a source is NaN
    where a term is not finite (a target's own score acc(t,t) is 0 or unknown)."""
    rows = []
    for task in res.tasks:
        langs = res.languages(task)
        for sparsity, m in transfer_matrices(res, task).items():
            change = dict(zip(langs, relative_change(m.reindex(index=langs, columns=langs).to_numpy(float))))
            rows += [
                {"task": task, "sparsity": sparsity, "source": source, "relative_change": float(change[source])}
                for source in m.index
            ]
    return pd.DataFrame(rows, columns=["task", "sparsity", "source", "relative_change"])


@_memo
def score_table(res: Results) -> pd.DataFrame:
    """Score per task, language and IMP level, next to the dense model (level 0) and, at the transfer sparsities,
    the IMP mask and the random mask of the same per-tensor density fine-tuned like the transfer runs."""
    levels = _mean(res.prune, ["task", "lang", "level"], ["sparsity", "density", "score"])
    dense = levels[levels["level"] == 0].set_index(["task", "lang"])["score"]
    t = res.transfer
    own = _mean(t[(t["mask"] == "imp") & (t["source"] == t["target"])], ["task", "source", "sparsity"], ["score"])
    rnd = _mean(t[t["mask"] == "random"], ["task", "source", "sparsity"], ["score"])
    own, rnd = (f.set_index(["task", "source", "sparsity"])["score"] for f in (own, rnd))
    keys = list(zip(levels["task"], levels["lang"]))
    levels["dense_score"] = [dense.get(k, math.nan) for k in keys]
    levels["imp_transfer_score"] = [own.get((*k, s), math.nan) for k, s in zip(keys, levels["sparsity"])]
    levels["random_score"] = [rnd.get((*k, s), math.nan) for k, s in zip(keys, levels["sparsity"])]
    return levels.rename(columns={"score": "imp_score"})


# --- overlap --------------------------------------------------------------------------------------------------
def _pairs(res: Results, by: str = "all", masks: str = "imp") -> pd.DataFrame:
    p = res.pairwise
    return p[(p["by"] == by) & (p["masks"] == masks)]


@_memo
def overlap_pairs_table(res: Results) -> pd.DataFrame:
    """Pairwise Jaccard and agreement of the IMP masks (mean over seeds) with their closed-form random expectation."""
    values = ["jaccard", "random_jaccard", "agreement", "random_agreement"]
    return _mean(_pairs(res), ["task", "sparsity", "a", "b"], values)


@_memo
def overlap_matrices(res: Results, task: str) -> dict[float, pd.DataFrame]:
    """Symmetric language × language Jaccard matrix per transfer sparsity (diagonal 1)."""
    pairs, langs, out = overlap_pairs_table(res), res.languages(task), {}
    for sparsity in res.sparsities:
        sub = pairs[(pairs["task"] == task) & (pairs["sparsity"] == sparsity)]
        if sub.empty:
            continue
        m = pd.DataFrame(np.eye(len(langs)), index=langs, columns=langs)
        for a, b, j in zip(sub["a"], sub["b"], sub["jaccard"]):
            m.at[a, b] = m.at[b, a] = j
        out[sparsity] = m
    return out


@_memo
def average_overlap_table(res: Results) -> pd.DataFrame:
    """The paper's average-overlap table: mean pairwise Jaccard per task and sparsity, next to random masks of
    the same density (closed-form expectation and the measured random masks), and the overlap shared by all."""
    keys = ["task", "sparsity"]
    imp = _mean(_pairs(res), keys, ["jaccard", "random_jaccard", "agreement", "random_agreement"])
    out = imp.rename(
        columns={"random_jaccard": "random_expected_jaccard", "random_agreement": "random_expected_agreement"}
    )
    rnd = _mean(_pairs(res, masks="random"), keys, ["jaccard"]).rename(columns={"jaccard": "random_masks_jaccard"})
    s = res.shared
    shared = _mean(s[(s["by"] == "all") & (s["masks"] == "imp")], keys, ["jaccard", "kept_by_all", "random_jaccard"])
    shared = shared.rename(columns={"jaccard": "shared_jaccard", "random_jaccard": "shared_random_jaccard"})
    out = out.merge(rnd, on=keys, how="left").merge(shared, on=keys, how="left")
    out.insert(2, "languages", [len(res.languages(t)) for t in out["task"]])
    out["paper_overlap"] = [PAPER.average_overlap.get(res.study.task(t).kind, math.nan) for t in out["task"]]
    return out


@_memo
def overlap_by_group(res: Results, by: str) -> pd.DataFrame:
    """Mean pairwise Jaccard per layer (``by="layer"``) or module type (``by="module"``), with both random baselines."""
    keys = ["task", "sparsity", "group"]
    imp = _mean(_pairs(res, by), keys, ["jaccard", "random_jaccard"])
    imp = imp.rename(columns={"random_jaccard": "random_expected_jaccard"})
    rnd = _mean(_pairs(res, by, "random"), keys, ["jaccard"]).rename(columns={"jaccard": "random_masks_jaccard"})
    out = imp.merge(rnd, on=keys, how="left")
    order = {
        "task": {t: i for i, t in enumerate(res.tasks)},
        "group": {g: i for i, g in enumerate(group_order(out["group"], by))},
    }
    out = out.sort_values(keys, key=lambda c: c.map(order[c.name]) if c.name in order else c, kind="stable")
    return out.reset_index(drop=True)


def group_order(groups: Iterable[str], by: str) -> list[str]:
    """Module types in the order the overlap stage wrote them (the encoder's tensor order); layers numerically,
    groups outside the layers (pooler, other) after them."""
    groups = list(dict.fromkeys(groups))
    if by == "module":
        return groups
    numeric = sorted((g for g in groups if g.isdigit()), key=int)
    return numeric + sorted(g for g in groups if not g.isdigit())


@_memo
def overlap_vs_transfer_table(res: Results) -> pd.DataFrame:
    """One row per (task, sparsity, s ≠ t): Jaccard(s, t) and the transfer change (acc(s,t) − acc(t,t)) / acc(t,t)."""
    pairs = overlap_pairs_table(res)
    jac = {(r.task, r.sparsity, frozenset((r.a, r.b))): r.jaccard for r in pairs.itertuples()}
    tr = transfer_table(res)
    tr = tr[tr["source"] != tr["target"]].copy()
    tr["jaccard"] = [jac.get((r.task, r.sparsity, frozenset((r.source, r.target))), math.nan) for r in tr.itertuples()]
    columns = ["task", "sparsity", "source", "target", "jaccard", "change", "score", "own_score"]
    return tr[columns].reset_index(drop=True)


def correlation_table(ovt: pd.DataFrame) -> pd.DataFrame:
    """Spearman's ρ between pairwise Jaccard and transfer change, per task over all sparsities and per sparsity.

    Fewer than three finite points give NaN (two points always correlate ±1)."""
    rows = []
    for task, sub in ovt.groupby("task", sort=False):
        parts = [("all", sub)] + [(f"{s:g}", g) for s, g in sub.groupby("sparsity", sort=True)]
        for label, part in parts:
            ok = part[np.isfinite(part["jaccard"]) & np.isfinite(part["change"])]
            rho = spearman(ok["jaccard"], ok["change"]) if len(ok) >= 3 else math.nan
            rows.append({"task": task, "sparsity": label, "n": len(ok), "spearman": rho})
    return pd.DataFrame(rows, columns=["task", "sparsity", "n", "spearman"])


# --- controls and compute -------------------------------------------------------------------------------------
def pretrained_control(controls: pd.DataFrame) -> pd.DataFrame:
    """The long controls.csv narrowed to the pre-trained-magnitude control, in the report's columns."""
    rows = controls[controls["control"] == PRETRAINED]
    rows = rows.rename(
        columns={"jaccard": "jaccard_with_pretrained", "control_ties_at_threshold": "pretrained_ties_at_threshold"}
    )
    return rows[
        [
            "task",
            "seed",
            "sparsity",
            "lang",
            "jaccard_with_pretrained",
            "random_jaccard",
            "threshold",
            "ties_at_threshold",
            "pretrained_ties_at_threshold",
        ]
    ]


@_memo
def controls_table(res: Results) -> pd.DataFrame:
    """Jaccard of each language's IMP mask with the magnitude mask of the pre-trained weights (no fine-tuning),
    its random expectation, and the ties at the pruning threshold (the most over seeds)."""
    c, keys = pretrained_control(res.controls), ["task", "sparsity", "lang"]
    out = _mean(c, keys, ["jaccard_with_pretrained", "random_jaccard", "threshold"])
    ties = ["ties_at_threshold", "pretrained_ties_at_threshold"]
    if c.empty:
        return out.assign(**{t: [] for t in ties})
    return out.merge(c.groupby(keys, sort=False, as_index=False)[ties].max(), on=keys, how="left")


def stage_seconds_table(res: Results) -> pd.DataFrame:
    """Compute seconds per stage, summed over its finished runs (from each run's timing.json)."""
    s = res.stage_seconds
    return s.groupby("stage", sort=False, as_index=False).agg(runs=("run", "count"), seconds=("seconds", "sum"))
