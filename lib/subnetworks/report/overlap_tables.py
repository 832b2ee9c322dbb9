"""The report's overlap tables, derived from :class:`~.load.Results` (once per results, as :mod:`.tables`): the
languages' IMP masks against each other next to both random nulls and the random controls' masks measured, each
IMP mask against P, the languages' departures from P (gained, lost) with their nulls and the excess overlap, per
layer and module type, and overlap against transfer.

Column names say what a number is: ``<null>_null_<measure>`` is a closed-form expectation (``layerwise``: the IMP
masks' counts per tensor at random positions; ``global``: their total count anywhere), ``<null>_random_<measure>``
the measured overlap of that null's random control (``random`` and ``global_random`` masks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..core.stats import spearman
from ..study.layout import IMP
from .cache import memoised
from .load import Results, cross_language
from .names import NULLS, PRETRAINED
from .paper import PAPER
from .tables import mean_over_seeds, transfer_table

BY_ORDER = ("all", "layer", "module")


def _by(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    return frame[frame["by"] == by]


def _join(out: pd.DataFrame, extra: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``out`` with the columns of ``extra`` matched on ``keys`` (NaN where ``extra`` has nothing)."""
    if out.empty or extra.empty:
        return out.assign(**{c: math.nan for c in extra.columns if c not in keys})
    return out.merge(extra, on=keys, how="left")


def _against_nulls(frame: pd.DataFrame, keys: list[str], measures: list[str]) -> pd.DataFrame:
    """The IMP masks' ``measures`` (mean over what ``keys`` leave out) next to each random control's null, computed
    for the IMP masks' counts, and next to that control's masks measured."""
    imp = frame[frame["masks"] == IMP]
    expected = {f"expected_{null}_{m}": f"{null}_null_{m}" for null in NULLS for m in measures}
    out = mean_over_seeds(imp, keys, [*measures, *expected]).rename(columns=expected)
    for null, control in NULLS.items():
        measured = mean_over_seeds(frame[frame["masks"] == control], keys, measures)
        out = _join(out, measured.rename(columns={m: f"{null}_random_{m}" for m in measures}), keys)
    beside = [f"{null}_{kind}" for null in NULLS for kind in ("null", "random")]
    return out[keys + [c for m in measures for c in (m, *(f"{b}_{m}" for b in beside))]]


def group_order(groups: Iterable[str], by: str) -> list[str]:
    """Module types in the order the overlap stage wrote them (the encoder's tensor order); layers numerically,
    groups outside the layers (pooler, other) after them."""
    groups = list(dict.fromkeys(groups))
    if by != "layer":
        return groups
    numeric = sorted((g for g in groups if g.isdigit()), key=int)
    return numeric + sorted(g for g in groups if not g.isdigit())


def _in_group_order(res: Results, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by task (the study's order), sparsity, ``by`` (all, layer, module), group (:func:`group_order`)."""
    rank = {(by, g): i for by in BY_ORDER for i, g in enumerate(group_order(_by(frame, by)["group"], by))}
    tasks = {t: i for i, t in enumerate(res.tasks)}
    key = pd.DataFrame(
        {
            "task": frame["task"].map(tasks),
            "sparsity": frame["sparsity"],
            "by": frame["by"].map({b: i for i, b in enumerate(BY_ORDER)}),
            "group": [rank.get(k, -1) for k in zip(frame["by"], frame["group"])],
        },
        index=frame.index,
    )
    return frame.loc[key.sort_values(list(key.columns), kind="stable").index].reset_index(drop=True)


# --- the IMP masks across languages ---------------------------------------------------------------------------
@memoised
def overlap_pairs_table(res: Results) -> pd.DataFrame:
    """Pairwise Jaccard and agreement of the IMP masks (mean over seeds), next to both nulls and both random
    controls' masks of the same two languages."""
    return _against_nulls(_by(res.pairwise, "all"), ["task", "sparsity", "a", "b"], ["jaccard", "agreement"])


@memoised
def overlap_matrices(res: Results, task: str, measure: str = "jaccard") -> dict[float, pd.DataFrame]:
    """Symmetric language × language matrix of ``measure`` (jaccard, agreement) per transfer sparsity (diagonal 1)."""
    pairs, langs, out = overlap_pairs_table(res), res.languages(task), {}
    for sparsity in res.sparsities:
        sub = pairs[(pairs["task"] == task) & (pairs["sparsity"] == sparsity)]
        if sub.empty:
            continue
        m = pd.DataFrame(np.eye(len(langs)), index=langs, columns=langs)
        for a, b, j in zip(sub["a"], sub["b"], sub[measure]):
            m.at[a, b] = m.at[b, a] = j
        out[sparsity] = m
    return out


@memoised
def average_overlap_table(res: Results) -> pd.DataFrame:
    """The paper's average-overlap table: mean pairwise Jaccard and agreement per task and sparsity, each next to both
    nulls and both random controls; the overlap shared by all languages likewise; the mean Jaccard of each language's
    IMP mask with P; the paper's average."""
    keys = ["task", "sparsity"]
    out = _against_nulls(_by(res.pairwise, "all"), keys, ["jaccard", "agreement"])
    shared = _against_nulls(_by(res.shared, "all"), keys, ["jaccard"])
    shared = shared.rename(columns={c: f"shared_{c}" for c in shared.columns if c not in keys})
    s = _by(res.shared, "all")
    kept = mean_over_seeds(s[s["masks"] == IMP], keys, ["kept_by_all"])
    p = mean_over_seeds(controls_table(res), keys, ["jaccard_with_pretrained"])
    for extra in (shared, kept, p.rename(columns={"jaccard_with_pretrained": "pretrained_jaccard"})):
        out = _join(out, extra, keys)
    out.insert(2, "languages", [len(res.languages(t)) for t in out["task"]])
    out["paper_overlap"] = [PAPER.average_overlap.get(res.study.task(t).kind, math.nan) for t in out["task"]]
    return out


@memoised
def overlap_by_group(res: Results, by: str) -> pd.DataFrame:
    """Mean pairwise Jaccard per layer (``by="layer"``) or module type (``by="module"``), next to both nulls and both
    random controls."""
    out = _against_nulls(_by(res.pairwise, by), ["task", "sparsity", "by", "group"], ["jaccard"])
    return _in_group_order(res, out).drop(columns="by")


@memoised
def random_null_gaps(res: Results) -> pd.DataFrame:
    """Every draw of a random control (whole masks, pair of languages, seed): its measured Jaccard, its own null and
    the gap, with about how much a draw varies (``sd``; NaN where the number of prunable weights is unknown)."""
    pairs = _by(res.pairwise, "all")
    sizes = _by(res.departure_counts, "all").drop_duplicates(["task", "seed", "sparsity"])
    sizes = sizes.set_index(["task", "seed", "sparsity"])["size"]
    frames = []
    for null, control in NULLS.items():
        rows = pairs[pairs["masks"] == control].rename(columns={f"expected_{null}_jaccard": "expected_jaccard"})
        frames.append(rows.assign(control=control))
    out = pd.concat(frames, ignore_index=True)
    out["gap"] = out["jaccard"] - out["expected_jaccard"]
    keys = zip(out["task"], out["seed"], out["sparsity"])
    out["sd"] = [jaccard_sd(sizes.get(k, math.nan), k[2]) for k in keys]
    return out[["control", "task", "seed", "sparsity", "a", "b", "jaccard", "expected_jaccard", "gap", "sd"]]


def largest_null_gaps(gaps: pd.DataFrame) -> dict[str, pd.Series]:
    """Per random control (of :func:`random_null_gaps`), its draw farthest from its null."""
    out = {}
    for control in NULLS.values():
        g = gaps[(gaps["control"] == control) & gaps["gap"].notna()]
        if len(g):
            out[control] = g.loc[g["gap"].abs().idxmax()]
    return out


def jaccard_sd(size: float, sparsity: float) -> float:
    """About how much the Jaccard of two independent uniform draws, each keeping (1 − sparsity) of ``size`` weights,
    varies: the standard deviation of the hypergeometric intersection carried through J = I / (2K − I) (delta
    method). The scale a random control's gap to its null is read on; NaN when the size is unknown."""
    if not size > 1:
        return math.nan
    kept = size * (1 - sparsity)
    share = kept / size
    variance = kept * share * (1 - share) * (size - kept) / (size - 1)
    return 2 * kept / (2 * kept - kept * share) ** 2 * math.sqrt(variance)


# --- against P, and the departures from P ---------------------------------------------------------------------
@memoised
def controls_table(res: Results) -> pd.DataFrame:
    """Jaccard of each language's IMP mask with P, the magnitude mask of the pre-trained weights (mean over seeds),
    next to the Jaccard both nulls expect of that pair, and the ties at the pruning threshold (the most over seeds)."""
    c, keys = res.controls[res.controls["control"] == PRETRAINED], ["task", "sparsity", "lang"]
    names = {
        "jaccard": "jaccard_with_pretrained",
        "expected_layerwise_jaccard": "layerwise_null_jaccard",
        "expected_global_jaccard": "global_null_jaccard",
    }
    out = mean_over_seeds(c, keys, [*names, "threshold"]).rename(columns=names)
    c = c.rename(columns={"control_ties_at_threshold": "pretrained_ties_at_threshold"})
    ties = ["ties_at_threshold", "pretrained_ties_at_threshold"]
    if c.empty:
        return out.assign(**{t: [] for t in ties})
    return out.merge(c.groupby(keys, sort=False, as_index=False)[ties].max(), on=keys, how="left")


DEPARTURE_VALUES = [
    "jaccard",
    "jaccard_p",
    "jaccard_p_band",
    "gained_jaccard",
    "expected_gained_jaccard",
    "expected_gained_jaccard_band",
    "lost_jaccard",
    "expected_lost_jaccard",
    "expected_lost_jaccard_band",
    "excess",
    "excess_band",
]


@memoised
def departures_table(res: Results) -> pd.DataFrame:
    """Mean over pairs of languages (at different seeds where there are several), per task, sparsity and group
    (``by``: all, layer, module): the IMP
    masks' Jaccard and what P and the departure counts alone predict of it (whole pool, band), the Jaccard of their
    gains (A ∖ P) and of their losses (P ∖ A) next to both nulls, and the excess overlap (J − J_P) / (1 − J_P)."""
    out = mean_over_seeds(cross_language(res.departures), ["task", "sparsity", "by", "group"], DEPARTURE_VALUES)
    return _in_group_order(res, out)


@memoised
def departure_counts_table(res: Results) -> pd.DataFrame:
    """Per task, sparsity, language and group (mean over seeds): the weights its IMP mask gained and lost against P,
    the share of those departures in the band around P's threshold, and the group's size, P's count and the band's."""
    counts = res.departure_counts.rename(columns={"mask": "lang"})
    values = ["gained", "lost", "departures_in_band", "size", "p_kept", "band_size"]
    out = _in_group_order(res, mean_over_seeds(counts, ["task", "sparsity", "lang", "by", "group"], values))
    moved = out["gained"] + out["lost"]
    out.insert(out.columns.get_loc("departures_in_band") + 1, "band_share", out["departures_in_band"] / moved)
    out["band_share"] = out["band_share"].where(moved > 0)
    return out


# --- overlap against transfer ---------------------------------------------------------------------------------
@memoised
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
