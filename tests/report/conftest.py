"""The report tests' study: a finished smoke study made in a temp dir by calling the stage functions directly, its
report built once per session, and its raw run files read straight (what the report's numbers are checked
against, never through the report's own code)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from subnetworks import report
from subnetworks.demo.smoke import write_smoke_params
from subnetworks.spec import load_study
from subnetworks.study.grid import Grid
from subnetworks.study.layout import Layout
from subnetworks.study.stages import run_grid_run
from subnetworks.study.workspace import Workspace

LANGS = ["en", "ur", "zh"]
SEED = 57  # the smoke study's first seed: it scores the controls and transfers
SEEDS = [57, 58]


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """A finished smoke study (IMP, transfer, overlap for every task) and its report, built once per session."""
    root = tmp_path_factory.mktemp("report")
    study = load_study(write_smoke_params(root))  # params/smoke.yaml with its assets (en, ur, zh) made under root
    assert list(study.languages) == LANGS and list(study.seeds) == SEEDS
    ws = Workspace.create(study, root / "artifacts")
    for run in Grid(ws.layout):
        run_grid_run(ws, run)
    sections = report.build(ws.layout, root / "reports")
    return ws.layout, root / "reports", sections


class Raw:
    """The smoke study's run files as the stages wrote them, and the report's summary.json."""

    def __init__(self, layout: Layout, reports: Path):
        self.layout, self.reports, self.study = layout, reports, layout.study

    def summary(self) -> dict:
        return json.loads((self.reports / "summary.json").read_text(encoding="utf-8"))

    def prune(self, task: str, lang: str, seed: int = SEED) -> dict:
        return self.layout.prune_dir(task, lang, seed).read_json("metrics.json")

    def level_score(self, task: str, lang: str, level: int) -> float:
        """The IMP level's score, mean over the seeds."""
        return sum(self.prune(task, lang, seed)["levels"][level]["score"] for seed in SEEDS) / len(SEEDS)

    def control_score(self, task: str, lang: str, level: int, control: str, training: str = "imp") -> float:
        """A control's score on ``lang``, fine-tuned as IMP (``imp``) or as the transfer runs (``transfer``)."""
        rows = self.prune(task, lang)["controls"]
        (row,) = [r for r in rows if (r["level"], r["control"], r["training"]) == (level, control, training)]
        return row["score"]

    def transfer(self, task: str, level: int) -> dict[tuple[str, str], float]:
        """acc(s, t) read straight from the transfer runs' metrics.json."""
        acc = {}
        for source in self.study.task_languages(task):
            for row in self.layout.transfer_dir(task, source, level, SEED).read_json("metrics.json"):
                if row["mask"] == "imp":
                    acc[row["source"], row["target"]] = row["score"]
        return acc

    def overlap(self, task: str, name: str) -> pd.DataFrame:
        """One table of the overlap stage (pairwise, shared, controls, departures, departure_counts)."""
        text = {c: str for c in ("group", "a", "b", "lang", "mask")}
        return pd.read_csv(self.layout.overlap_dir(task).file(f"{name}.csv"), dtype=text)

    @staticmethod
    def mean_of_finite(values) -> float | None:
        finite = [v for v in values if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else None

    @staticmethod
    def close(got, want) -> bool:
        """summary.json's number equals the one recomputed by hand (NaN or None written as null)."""
        if want is None or (isinstance(want, float) and not math.isfinite(want)):
            return got is None
        return got is not None and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


@pytest.fixture(scope="session")
def raw(smoke) -> Raw:
    layout, reports, _ = smoke
    return Raw(layout, reports)
