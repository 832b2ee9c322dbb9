"""Intervals for the report's numbers, from the per-example records every scored run keeps (``examples.json``).

* Scores: a paired percentile bootstrap over each test set's examples (:class:`~..core.stats.Resampler`, seeded
  by task and language, so every model scored on one test set is resampled alike: differences and relative changes
  between them are paired), of the mean over seeds; beside it the Student-t interval over seeds.
* *At chance*: a score whose bootstrap interval reaches down to the chance rate of its test set (the majority-class
  rate; for MLM always predicting the commonest piece; entity F1 0 for NER), or below it. Such cells are left out
  of the mean relative change and counted on their own.
* Overlap by kind of pair (same language at another seed: the noise floor; other language, same seed; other
  language, other seed; same language and seed, other task), each a mean over its pairs with a Student-t interval
  over them (pairs sharing a mask are not independent: the interval is a guide, not a test).
* Overlap against transfer per task and sparsity, on unordered pairs of languages, with the Mantel test.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.maskfile import read_packed
from ..core.stats import Resampler, mantel, over_seeds, percentile_interval
from ..study.store import read_json
from .cache import memoised
from .load import Results
from .names import PRETRAINED

PAIR_KINDS = {  # kind -> how the report names it
    "same_language": "same language, other seed (noise floor)",
    "same_seed": "other language, same seed",
    "other_seed": "other language, other seed",
    "other_task": "same language, other task",
}
MANTEL_PERMUTATIONS = 1000
MANTEL_SEED = 0


def chance_rate(res: Results, task: str, lang: str) -> float:
    """What a model that learnt nothing scores on ``lang``'s test set (NaN where the data does not say)."""
    if res.study.task(task).kind == "tokcls":
        return 0.0  # tagging everything O finds no entity
    rates = res.data[(res.data["task"] == task) & (res.data["lang"] == lang)]["test_majority_rate"]
    rates = pd.to_numeric(rates, errors="coerce").dropna()
    return float(rates.iloc[0]) if len(rates) else math.nan


def _records(res: Results, path: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not path:
        return None
    key = ("records", path)
    if key not in res.cache:
        rec = read_json(path)
        res.cache[key] = (np.asarray(rec["num"], dtype=float), np.asarray(rec["den"], dtype=float))
    return res.cache[key]


def _resampler(res: Results, task: str, lang: str, n: int) -> Resampler:
    """One resampling per test set, seeded by its task and language: the pairing of every comparison on it."""
    key = ("resampler", task, lang, n)
    if key not in res.cache:
        res.cache[key] = Resampler(n, seed=zlib.crc32(f"{task}/{lang}".encode()))
    return res.cache[key]


def score_draws(res: Results, task: str, lang: str, paths: Sequence[str]) -> np.ndarray | None:
    """The bootstrap draws of the mean over seeds of the runs whose records are at ``paths`` (all on ``lang``'s test
    set); None when a run kept no records."""
    records = [_records(res, p) for p in paths]
    if not records or any(r is None for r in records):
        return None
    boot = _resampler(res, task, lang, len(records[0][0]))
    return np.mean([boot.scores(num, den) for num, den in records], axis=0)


def _interval_columns(value: float, draws: np.ndarray | None, prefix: str = "") -> dict[str, float]:
    if draws is None:
        return {f"{prefix}low": math.nan, f"{prefix}high": math.nan}
    iv = percentile_interval(value, draws)
    return {f"{prefix}low": iv.low, f"{prefix}high": iv.high}


def _at_chance(low: float, chance: float, score: float) -> bool:
    """The interval reaches the chance rate; without an interval (no records), the score itself does."""
    if not math.isfinite(chance):
        return False
    return bool(low <= chance) if math.isfinite(low) else bool(score <= chance)


@memoised
def score_intervals(res: Results) -> pd.DataFrame:
    """Every score of IMP (each level) and of each scored control: mean over seeds, its interval over seeds, its
    bootstrap interval over test examples, the chance rate and whether the score is at chance."""
    rows = []
    imp = res.prune.assign(mask="imp", training="imp")
    controls = res.control_scores.rename(columns={"control": "mask"})
    for frame in (imp, controls):
        for (task, lang, mask, training, level), g in frame.groupby(
            ["task", "lang", "mask", "training", "level"], sort=False
        ):
            score = float(g["score"].mean())
            seeds = over_seeds(list(g["score"]))
            draws = score_draws(res, task, lang, record_paths(g))
            chance = chance_rate(res, task, lang)
            row = {
                "task": task,
                "lang": lang,
                "mask": mask,
                "training": training,
                "level": int(level),
                "sparsity": float(g["sparsity"].iloc[0]),
                "score": score,
                "seeds": len(g),
                "seed_low": seeds.low,
                "seed_high": seeds.high,
                **_interval_columns(score, draws),
                "chance": chance,
            }
            row["at_chance"] = _at_chance(row["low"], chance, score)
            rows.append(row)
    return pd.DataFrame(rows)


def _transfer_paths(res: Results, task: str, sparsity: float, source: str, target: str) -> list[str]:
    t = res.transfer
    rows = t[(t["task"] == task) & (t["sparsity"] == sparsity) & (t["source"] == source) & (t["target"] == target)]
    return record_paths(rows[rows["mask"] == "imp"])


def _pretrained_rows(res: Results, task: str, sparsity: float, target: str) -> pd.DataFrame:
    """P fine-tuned on ``target`` as the transfer runs train (where they train otherwise than IMP)."""
    c = res.control_scores
    c = c[(c["task"] == task) & (c["control"] == PRETRAINED) & (c["sparsity"] == sparsity) & (c["lang"] == target)]
    return c[c["training"] == ("transfer" if (c["training"] == "transfer").any() else "imp")]


def record_paths(rows: pd.DataFrame) -> list[str]:
    """Where each row's run keeps its per-example records ("" where it kept none)."""
    return list(rows["records"].fillna("")) if "records" in rows else [""] * len(rows)


def _change(value: float, base: float) -> float:
    return (value - base) / base if base else math.nan


@memoised
def transfer_intervals(res: Results) -> pd.DataFrame:
    """Every acc(s, t) with its bootstrap interval, beside acc(t, t) and acc(P, t) on the same resampled test set:
    the paired difference and relative change against each, with intervals, and which of them is at chance."""
    rows = []
    t = res.transfer[res.transfer["mask"] == "imp"]
    for (task, sparsity, source, target), g in t.groupby(["task", "sparsity", "source", "target"], sort=False):
        cell = _cell(res, task, float(sparsity), source, target, g)
        if cell is not None:
            rows.append(cell)
    return pd.DataFrame(rows)


def _cell(res: Results, task: str, sparsity: float, source: str, target: str, g: pd.DataFrame) -> dict | None:
    diag = res.transfer[
        (res.transfer["task"] == task)
        & (res.transfer["sparsity"] == sparsity)
        & (res.transfer["source"] == target)
        & (res.transfer["target"] == target)
        & (res.transfer["mask"] == "imp")
    ]
    if diag.empty:
        return None
    chance = chance_rate(res, task, target)
    st, tt = float(g["score"].mean()), float(diag["score"].mean())
    st_draws = score_draws(res, task, target, record_paths(g))
    tt_draws = score_draws(res, task, target, _transfer_paths(res, task, sparsity, target, target))
    p_rows = _pretrained_rows(res, task, sparsity, target)
    p = float(p_rows["score"].mean()) if len(p_rows) else math.nan
    p_draws = score_draws(res, task, target, record_paths(p_rows)) if len(p_rows) else None
    row = {"task": task, "sparsity": sparsity, "source": source, "target": target, "score": st}
    row.update(_interval_columns(st, st_draws))
    row.update({"diagonal": tt, **_interval_columns(tt, tt_draws, "diagonal_"), "pretrained": p, "chance": chance})
    row["at_chance"] = _at_chance(row["low"], chance, st)
    row["diagonal_at_chance"] = _at_chance(row["diagonal_low"], chance, tt)
    row["difference"] = st - tt
    both = st_draws is not None and tt_draws is not None
    row.update(_interval_columns(row["difference"], st_draws - tt_draws if both else None, "difference_"))
    pairs = {"relative_change": (tt, tt_draws), "relative_change_vs_pretrained": (p, p_draws)}
    for name, (base, base_draws) in pairs.items():
        row[name] = _change(st, base)
        draws = None
        if st_draws is not None and base_draws is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                draws = (st_draws - base_draws) / base_draws
        row.update(_interval_columns(row[name], draws, f"{name}_"))
        res.cache[("change_draws", name, task, sparsity, source, target)] = draws
    return row


@memoised
def mean_change_intervals(res: Results) -> pd.DataFrame:
    """The mean relative change over targets t ≠ s, per task, sparsity and source and over all sources (``all``):
    only cells where neither acc(s, t) nor acc(t, t) is at chance (counted in ``at_chance``), with the bootstrap
    interval of the mean (each target resampled on its own test set)."""
    cells = transfer_intervals(res)
    rows = []
    if cells.empty:
        return pd.DataFrame(rows)
    off = cells[cells["source"] != cells["target"]]
    for (task, sparsity), g in off.groupby(["task", "sparsity"], sort=False):
        groups = [(s, gs) for s, gs in g.groupby("source", sort=False)] + [("all", g)]
        for source, gs in groups:
            usable = gs[~(gs["at_chance"] | gs["diagonal_at_chance"])]
            for name in ("relative_change", "relative_change_vs_pretrained"):
                values = usable[name].dropna()
                draws = [
                    res.cache.get(("change_draws", name, task, sparsity, r.source, r.target))
                    for r in usable.itertuples()
                    if math.isfinite(getattr(r, name))
                ]
                value = float(values.mean()) if len(values) else math.nan
                mean_draws = np.mean(draws, axis=0) if draws and all(d is not None for d in draws) else None
                rows.append(
                    {
                        "task": task,
                        "sparsity": float(sparsity),
                        "source": source,
                        "measure": name,
                        "value": value,
                        **_interval_columns(value, mean_draws),
                        "cells": len(values),
                        "at_chance": int(len(gs) - len(usable)),
                    }
                )
    return pd.DataFrame(rows)


@memoised
def pair_kind_table(res: Results) -> pd.DataFrame:
    """Overlap of the IMP masks (whole masks) per task, sparsity and kind of pair: mean Jaccard and excess over P
    with a Student-t interval over the pairs, and the number of pairs."""
    d, columns = res.departures, ["task", "sparsity", "pair", "jaccard", "excess"]
    frames = []
    if len(d):
        frames.append(d[d["by"] == "all"][columns])
    other = other_task_pairs(res)
    for task in res.tasks if len(other) else ():  # a pair of two tasks' masks counts for each of the two
        mine = other[other["tasks"].str.split("–").apply(lambda pair, t=task: t in pair)]
        frames.append(mine.assign(task=task, pair="other_task", excess=math.nan)[columns])
    if not frames:
        return pd.DataFrame(columns=["task", "sparsity", "pair", "pairs", "jaccard", "jaccard_low", "jaccard_high"])
    rows = []
    for (task, sparsity, pair), g in pd.concat(frames).groupby(["task", "sparsity", "pair"], sort=False):
        row = {"task": task, "sparsity": float(sparsity), "pair": pair, "kind": PAIR_KINDS[pair], "pairs": len(g)}
        for name in ("jaccard", "excess"):
            iv = over_seeds(list(g[name].dropna()))
            row.update({name: iv.value, f"{name}_low": iv.low, f"{name}_high": iv.high})
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate(PAIR_KINDS)}
    tasks = {t: i for i, t in enumerate(res.tasks)}
    return out.sort_values(
        ["task", "sparsity", "pair"], key=lambda c: c.map({**order, **tasks}) if c.name != "sparsity" else c
    )


@memoised
def other_task_pairs(res: Results) -> pd.DataFrame:
    """Jaccard of one language's IMP masks of two tasks (same seed and sparsity) over the tensors both prune, from
    the mask files."""
    rows = []
    layout, study = res.layout, res.study
    for sparsity in res.sparsities:
        level = study.level_of(sparsity)
        for lang in res.every_language:
            for seed in study.seeds:
                paths = {
                    task: layout.mask_path(task, lang, seed, level)
                    for task in res.tasks
                    if lang in res.languages(task) and layout.prune_dir(task, lang, seed).done
                }
                if len(paths) < 2:
                    continue
                for r in _shared_jaccard(paths):
                    rows.append(
                        {
                            "tasks": f"{r['a']}–{r['b']}",
                            "sparsity": sparsity,
                            "lang": lang,
                            "seed": seed,
                        }
                        | {"jaccard": r["jaccard"]}
                    )
    return pd.DataFrame(rows)


def _shared_jaccard(paths: dict[str, Path]) -> list[dict]:
    """Pairwise Jaccard of masks of different tasks' models over the tensors all of them prune (a pooler only some
    have), from their packed bits."""
    packed = {name: read_packed(path)[1] for name, path in paths.items()}
    shared = sorted(set.intersection(*(set(p) for p in packed.values())))
    bits = {name: np.concatenate([p[n] for n in shared]) for name, p in packed.items()}  # pad bits are 0
    rows = []
    for a, b in combinations(bits, 2):
        both = int(np.unpackbits(bits[a] & bits[b]).sum())
        union = int(np.unpackbits(bits[a] | bits[b]).sum())
        rows.append({"a": a, "b": b, "jaccard": both / union if union else math.nan})
    return rows


def _symmetric(values: dict[tuple[str, str], float], langs: Sequence[str]) -> np.ndarray:
    m = np.full((len(langs), len(langs)), np.nan)
    for i, j in combinations(range(len(langs)), 2):
        v = values.get(frozenset((langs[i], langs[j])), math.nan)
        m[i, j] = m[j, i] = v
    return m


@memoised
def correlation_intervals(res: Results) -> pd.DataFrame:
    """Per task and sparsity (never pooled): Spearman ρ over unordered pairs of languages between the symmetrised
    relative change ((s→t) and (t→s) averaged) and the masks' overlap (Jaccard; excess over P) of other-language
    pairs, with the Mantel test's p-value (languages permuted; every order when there are few)."""
    cells, d = transfer_intervals(res), res.departures
    rows = []
    if cells.empty or d.empty:
        return pd.DataFrame(rows)
    d = d[d["by"] == "all"]
    cross = d[d["pair"] == ("other_seed" if (d["pair"] == "other_seed").any() else "same_seed")]
    for (task, sparsity), g in cells[cells["source"] != cells["target"]].groupby(["task", "sparsity"], sort=False):
        langs = [lang for lang in res.languages(task) if lang in set(g["source"]) | set(g["target"])]
        if len(langs) < 3:
            continue
        change: dict = {}
        for r in g.itertuples():
            change.setdefault(frozenset((r.source, r.target)), []).append(r.relative_change)
        transfer = _symmetric({k: float(np.nanmean(v)) for k, v in change.items()}, langs)
        at = cross[(cross["task"] == task) & (cross["sparsity"] == sparsity)]
        for predictor in ("jaccard", "excess"):
            overlap = at.groupby([at["a"], at["b"]])[predictor].mean()
            values = {frozenset(k): v for k, v in overlap.items()}
            rho, p = mantel(_symmetric(values, langs), transfer, MANTEL_PERMUTATIONS, MANTEL_SEED)
            rows.append(
                {
                    "task": task,
                    "sparsity": float(sparsity),
                    "predictor": predictor,
                    "languages": len(langs),
                    "pairs": len(langs) * (len(langs) - 1) // 2,
                    "spearman": rho,
                    "p_value": p,
                    "smallest_p": 1 / min(math.factorial(len(langs)), MANTEL_PERMUTATIONS),
                }
            )
    return pd.DataFrame(rows)
