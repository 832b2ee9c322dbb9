"""The study's grid as notebook executions: which notebook, with which parameters, into which run directory.

A stage run is finished when its run directory is (``DONE``) and its executed notebook is whole; a failed notebook is
kept beside the run with its traceback. The report is one more stage run, after every transfer and overlap run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import papermill

from ..spec import StudyConfig, repo_root, resolve_path
from ..study.grid import Grid, Run
from ..study.layout import Layout
from ..study.store import RunDir
from .kernel import SharedKernel

NOTEBOOKS = repo_root() / "notebooks"
NOTEBOOK_OF = {
    "data": "01_data",
    "prune": "02_prune",
    "transfer": "03_transfer",
    "overlap": "04_overlap",
    "report": "05_report",
}
EXECUTED = "notebook.ipynb"
FAILED = "notebook.failed.ipynb"
REPORT = "report"


class StageFailed(RuntimeError):
    """A stage notebook raised; the executed notebook with the traceback is kept next to its run."""


@dataclass(frozen=True)
class StageRun:
    """One notebook execution: which stage, with which parameters, into which run directory."""

    stage: str
    params: dict[str, Any]
    run_dir: RunDir
    label: str
    after: tuple[str, ...] = field(default=())  # labels of the runs it needs

    @property
    def notebook(self) -> str:
        return NOTEBOOK_OF[self.stage]

    @property
    def task(self) -> str:
        return str(self.params.get("task", ""))

    @property
    def finished(self) -> bool:
        """DONE and a whole executed notebook; a half-written one means the notebook is run again (the stage
        itself, being DONE, then returns at once)."""
        if not self.run_dir.done:
            return False
        try:
            json.loads(self.run_dir.file(EXECUTED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return True

    @property
    def stage_seconds(self) -> float | None:
        """What the stage itself measured (its ``timing.json``), without the notebook around it; None before."""
        timing = self.run_dir.file("timing.json")
        return float(json.loads(timing.read_text(encoding="utf-8"))["seconds"]) if timing.exists() else None


def _notebook_params(run: Run, study: StudyConfig) -> dict[str, Any]:
    """The parameters cell of a grid run's notebook (sparsities as the schedule gives them)."""
    params: dict[str, Any] = {"task": run.task}
    if run.stage in ("data", "prune"):
        params["lang"] = run.lang
    elif run.stage == "transfer":
        params.update(source=run.lang, sparsity=study.sparsity_of(run.level))
    if run.seed is not None:
        params["seed"] = run.seed
    return params


def stage_runs(layout: Layout, params_file: Path) -> list[StageRun]:
    """Every stage run of the study (the grid), in an order that respects dependencies."""
    base = {"params_file": str(params_file), "artifacts": str(layout.artifacts)}
    return [
        StageRun(run.stage, {**base, **_notebook_params(run, layout.study)}, run.dir, run.label, run.after)
        for run in Grid(layout)
    ]


def reports_dir(study: StudyConfig, override: str | Path = "") -> Path:
    return resolve_path(override or study.runtime.reports_dir)


def report_run(layout: Layout, params_file: Path, runs: list[StageRun], reports: str | Path = "") -> StageRun:
    """The report as one more stage run: after every transfer and overlap run."""
    needs = tuple(r.label for r in runs if r.stage in ("transfer", "overlap"))
    params = {
        "params_file": str(params_file),
        "artifacts": str(layout.artifacts),
        "reports_dir": str(reports_dir(layout.study, reports)),
    }
    return StageRun(REPORT, params, RunDir(layout.artifacts / REPORT), REPORT, needs)


def execute(run: StageRun, kernel: SharedKernel, progress: Path | None = None) -> float:
    """Run one notebook (its progress bars drawn into ``progress``, if given); the executed notebook lands in the
    run directory only once complete."""
    run.run_dir.path.mkdir(parents=True, exist_ok=True)
    tmp = run.run_dir.file(f".{EXECUTED}.tmp.ipynb")
    start = time.perf_counter()
    try:
        kernel.execute(NOTEBOOKS / f"{run.notebook}.ipynb", tmp, run.params, progress)
    except papermill.PapermillExecutionError as err:
        failed = run.run_dir.file(FAILED)
        tmp.replace(failed)
        raise StageFailed(f"{run.label} failed with {err.ename}: {err.evalue}\n  executed notebook: {failed}") from None
    tmp.replace(run.run_dir.file(EXECUTED))
    run.run_dir.file(FAILED).unlink(missing_ok=True)
    return time.perf_counter() - start
