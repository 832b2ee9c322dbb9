"""The verdict table that opens the report, and the section of intervals behind it: scores, transfer and overlap with
their intervals, at-chance cells, the cross-seed noise floor and the per-sparsity correlations."""

from __future__ import annotations

import math

import pandas as pd

from .cache import memoised
from .load import Results
from .output import Report, Section, viewable
from .overlap_figures import plot_pair_kinds
from .paper import PAPER
from .text import finding, num, pct, sp
from .uncertainty import (
    correlation_intervals,
    mean_change_intervals,
    pair_kind_table,
    score_intervals,
    transfer_intervals,
)
from .verdict_figures import plot_verdicts
from .verdicts import (
    GOOD_TRANSFER,
    UNTESTABLE,
    Estimate,
    Verdict,
    beyond_pretraining,
    degrades,
    not_correlated,
    overlap_order,
    transfer_well,
)

CLAIMS = {
    "a": "(a) sub-networks transfer well at {low}",
    "b": "(b) transfer degrades from {low} to {high}",
    "c": "(c) overlap MLM < XNLI < NER",
    "d": "(d) overlap and transfer not correlated across language pairs",
    "e": "(e) sub-networks share more than the pre-trained magnitudes imply",
}
KIND_ORDER = ("mlm", "seqcls", "tokcls")  # the paper's MLM < XNLI < NER, by task kind


def _estimate(row: pd.Series | None, value: str = "value", low: str = "low", high: str = "high") -> Estimate:
    if row is None:
        return Estimate(math.nan)
    return Estimate(float(row[value]), float(row[low]), float(row[high]))


def _interval(e: Estimate, as_pct: bool = True) -> str:
    fmt = (lambda x: pct(x, signed=True)) if as_pct else (lambda x: num(x, 3))
    if not e.known:
        return "n/a"
    return f"{fmt(e.value)} [{fmt(e.low)}, {fmt(e.high)}]" if e.has_interval else fmt(e.value)


def _mean_change(res: Results, task: str, sparsity: float, measure: str) -> pd.Series | None:
    m = mean_change_intervals(res)
    if m.empty:
        return None
    rows = m[(m["task"] == task) & (m["sparsity"] == sparsity) & (m["source"] == "all") & (m["measure"] == measure)]
    return rows.iloc[0] if len(rows) else None


def _pair(res: Results, task: str, sparsity: float, pair: str) -> pd.Series | None:
    t = pair_kind_table(res)
    rows = t[(t["task"] == task) & (t["sparsity"] == sparsity) & (t["pair"] == pair)] if len(t) else t
    return rows.iloc[0] if len(rows) else None


def cross_pair(res: Results) -> str:
    """Other-language pairs at different seeds where there are several seeds (free of the shared-seed confound)."""
    return "other_seed" if len(res.study.seeds) > 1 else "same_seed"


def _cells(row: pd.Series) -> str:
    return f"{int(row['cells'])} cells, {int(row['at_chance'])} at chance"


def _transfer_verdicts(res: Results, task: str) -> list[Verdict]:
    """(a) at the lowest transfer sparsity; (b) from there to the highest."""
    low, high = res.sparsities[0], res.sparsities[-1]
    change = _mean_change(res, task, low, "relative_change")
    if change is None:
        return []
    vs_p = _mean_change(res, task, low, "relative_change_vs_pretrained")
    now, against_p = _estimate(change), _estimate(vs_p)
    verdict, reason = transfer_well(now, against_p, int(change["cells"]), int(change["at_chance"]))
    figure = f"{_interval(now)} vs acc(t,t); {_interval(against_p)} vs P→t ({_cells(change)})"
    out = [Verdict(f"{CLAIMS['a'].format(low=sp(low))}: {task}", verdict, figure, reason)]
    later = _mean_change(res, task, high, "relative_change")
    if later is not None and high != low:
        verdict, reason = degrades(now, _estimate(later), int(later["cells"]), int(later["at_chance"]))
        figure = f"{_interval(now)} at {sp(low)} → {_interval(_estimate(later))} at {sp(high)} ({_cells(later)})"
        claim = CLAIMS["b"].format(low=sp(low), high=sp(high))
        out.append(Verdict(f"{claim}: {task}", verdict, figure, reason))
    return out


def _order_verdicts(res: Results) -> list[Verdict]:
    """(c) per transfer sparsity, over the tasks of the paper's three kinds."""
    order = [next((t for t in res.tasks if res.study.task(t).kind == kind), "") for kind in KIND_ORDER]
    names = [t or kind for t, kind in zip(order, KIND_ORDER)]
    out = []
    for s in res.sparsities:
        raw = {t: _pair_estimate(res, t, s, cross_pair(res), "jaccard") for t in order if t}
        excess = {t: _pair_estimate(res, t, s, cross_pair(res), "excess") for t in order if t}
        verdict, reason = overlap_order(raw, excess, names)
        figure = "; ".join(f"{t} J {_interval(raw[t], False)}, excess {_interval(excess[t], False)}" for t in raw)
        out.append(Verdict(f"{CLAIMS['c']} at {sp(s)}", verdict, figure or "n/a", reason))
    return out


def _correlation_verdict(res: Results) -> Verdict:
    """(d) over every task and sparsity, with the raw Jaccard as the paper's predictor."""
    corr = correlation_intervals(res)
    if corr.empty:
        reason = "fewer than 3 languages with transfer, or no overlap"
        return Verdict(CLAIMS["d"], UNTESTABLE, "n/a", reason)
    used = corr[corr["predictor"] == "jaccard"]
    verdict, reason = not_correlated(list(used["p_value"]), float(used["smallest_p"].max()))
    parts = [f"{r.task} {sp(r.sparsity)} ρ {num(r.spearman, 2)} (p {num(r.p_value, 3)})" for r in used.itertuples()]
    return Verdict(CLAIMS["d"], verdict, "; ".join(parts), reason)


def _excess_verdicts(res: Results, task: str) -> list[Verdict]:
    """(e) per transfer sparsity: the excess over P of other-language pairs, beside the same language's."""
    out = []
    for s in res.sparsities:
        excess = _pair_estimate(res, task, s, cross_pair(res), "excess")
        floor = _pair_estimate(res, task, s, "same_language", "excess")
        verdict, reason = beyond_pretraining(excess, floor)
        figure = f"excess {_interval(excess, False)}; same language, other seed {_interval(floor, False)}"
        out.append(Verdict(f"{CLAIMS['e']}: {task} at {sp(s)}", verdict, figure, reason))
    return out


def _pair_estimate(res: Results, task: str, sparsity: float, pair: str, measure: str) -> Estimate:
    return _estimate(_pair(res, task, sparsity, pair), measure, f"{measure}_low", f"{measure}_high")


@memoised
def verdict_table(res: Results) -> pd.DataFrame:
    """One row per claim (and task or sparsity where the claim is per task): this run's figure, verdict, reason."""
    rows = [v for task in res.tasks for v in _transfer_verdicts(res, task)]
    rows += _order_verdicts(res)
    rows.append(_correlation_verdict(res))
    rows += [v for task in res.tasks for v in _excess_verdicts(res, task)]
    return pd.DataFrame([vars(v) for v in rows], columns=["claim", "verdict", "figure", "reason"])


@viewable
def verdict_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(verdict_table(res), "verdicts")
    seeds = res.study.seeds
    over = f"means over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else "one seed"
    text = (
        "Each of the paper's findings against this run, by rules in `report/verdicts.py`: intervals are 95 %, from "
        f"a paired bootstrap over test examples ({over}) or over pairs of masks; cells at chance are left out of "
        f"means. Overlap compares other-language pairs{' at different seeds' if len(seeds) > 1 else ''}; the "
        "excess is over what the pre-trained-magnitude mask P and the departure counts predict."
    )
    section = Section("Verdicts on the paper's findings", [text, table])
    caption = (
        "The numbers behind verdicts (a), (b), (c) and (e), with their 95 % intervals: the mean relative change "
        "against the target's own sub-network (filled) and against P on the target (hollow), the dashed line at "
        f"{pct(GOOD_TRANSFER, digits=0)}; the overlap of other-language pairs beside the paper's (diamonds); their "
        "excess over what P predicts beside one language's masks at two seeds (bars: the noise floor)."
    )
    rep.add_figure(section, caption, plot_verdicts(res, cross_pair(res)), "verdicts")
    return section


def _at_chance_sentence(scores: pd.DataFrame) -> str:
    at = scores[scores["at_chance"]] if len(scores) else scores
    names = [f"{r.task}/{r.lang} {r.mask} at {sp(r.sparsity)}" for r in at.itertuples()]
    return (
        f"**At chance** (the bootstrap interval reaches the test set's majority-class rate, or entity F1 0): "
        f"{len(at)} of {len(scores)} scores ({', '.join(names) or 'none'}). Cells at chance are left out of the "
        "mean relative change and counted in its at_chance column (tables/relative_change_intervals.csv)."
    )


def _pair_sentence(pairs: pd.DataFrame) -> str:
    """Per task at its first sparsity: the noise floor beside the other-language figure (raw Jaccard)."""
    parts = []
    for (task, s), g in pairs.groupby(["task", "sparsity"], sort=False):
        by = g.set_index("pair")["jaccard"]
        if "same_language" in by and ("other_seed" in by or "same_seed" in by):
            cross = by.get("other_seed", by.get("same_seed"))
            parts.append(
                f"{task} at {sp(s)}: same language {num(by['same_language'], 3)}, other language {num(cross, 3)}"
            )
    return ("Jaccard, " + "; ".join(parts) + ".") if parts else ""


@viewable
def intervals_section(rep: Report) -> Section:
    """Scores, transfer cells and mean changes with their intervals; overlap by kind of pair; correlations."""
    res = rep.results
    section = Section("Intervals, chance and the noise floor")
    scores = rep.save_table(score_intervals(res), "score_intervals")
    cells = rep.save_table(transfer_intervals(res), "transfer_intervals")
    means = rep.save_table(mean_change_intervals(res), "relative_change_intervals")
    pairs = rep.save_table(pair_kind_table(res), "overlap_pair_kinds")
    corr = rep.save_table(correlation_intervals(res), "overlap_transfer_mantel")
    section.blocks.append(_at_chance_sentence(scores))
    run = (
        "overlap of the IMP masks (whole masks) by kind of pair, mean and 95 % interval over the pairs: the same "
        "language at another seed is the noise floor; other-language pairs at different seeds answer the question "
        "free of the shared-seed confound (the demo's data are parallel). " + _pair_sentence(pairs)
    )
    rep.add_figure(
        section, finding(PAPER.finding("pair_kinds"), run), plot_pair_kinds(res, pairs), "overlap_pair_kinds"
    )
    section.blocks += [pairs, corr, means.round(4) if len(means) else means]
    if len(cells):
        section.blocks.append(cells.round(4))
    return section
