"""What a Slurm job runs: one stage run's notebook (or the report) in a fresh kernel, checkpointable the submitit
way, and its result as JSON beside submitit's files (the submitter reads JSON, never a pickle)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import submitit
from filelock import FileLock
from submitit.helpers import DelayedSubmission

from ..spec import load_study
from ..study.layout import Layout
from ..study.store import ArtifactError, write_json
from .kernel import SharedKernel
from .publish import publish_results, render_report
from .slurm_queue import JOB_FILE, read_record
from .stage_runs import REPORT, StageRun, execute, stage_runs

JOB_LOCK = ".job.lock"  # in a run directory: held by the job executing it


class StageJob:
    """One stage run as a submitit job: the stage notebook executed with papermill into its run directory.

    Checkpointable the submitit way: on a time-out or preemption signal submitit calls :meth:`checkpoint` and
    requeues the same call. The state worth keeping is already on disk (finished IMP levels and transfer targets
    have their own ``DONE``), so the requeued job resumes the stage where it stopped.
    """

    def __init__(self, run: StageRun, lock_timeout: float = 600.0):
        self.run = run
        self.lock_timeout = lock_timeout

    def __call__(self) -> dict[str, Any]:
        value = execute_job(self.run, self.lock_timeout)
        _write_result(value)
        return value

    def checkpoint(self, *args: Any, **kwargs: Any):
        return DelayedSubmission(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"StageJob({self.run.label})"


def execute_job(run: StageRun, lock_timeout: float = 600.0) -> dict[str, Any]:
    """Execute one stage run (or render the report) in a fresh kernel; what a Slurm job does."""
    started = time.time()
    info = {"label": run.label, "host": socket.gethostname(), "job_id": _job_id_here(), "started": started}
    if run.label == REPORT:
        params = Path(run.params["params_file"])
        study = load_study(params)
        with SharedKernel() as kernel:
            html = render_report(Layout(study, run.params["artifacts"]), params, kernel, run.params["reports_dir"])
        publish_results(study, html)
        return {**info, "report": str(html), "wall_seconds": time.time() - started, "ended": time.time()}
    run = _as_planned_now(run)
    if run.finished:
        return {**info, "skipped": "already finished", "wall_seconds": 0.0, "ended": time.time()}
    run.run_dir.path.mkdir(parents=True, exist_ok=True)
    # a requeued job may start while its first instance winds down on another node: one writer per run
    with FileLock(str(run.run_dir.file(JOB_LOCK)), timeout=lock_timeout):
        if run.finished:
            return {**info, "skipped": "already finished", "wall_seconds": 0.0, "ended": time.time()}
        with SharedKernel() as kernel:
            wall = execute(run, kernel)
    if not run.finished:  # never report success for a run that is not finished: dependents would start
        raise ArtifactError(f"{run.label}: its notebook ran, but {run.run_dir.path} has no DONE")
    return {**info, "wall_seconds": wall, "stage_seconds": run.stage_seconds or 0.0, "ended": time.time()}


def _as_planned_now(run: StageRun) -> StageRun:
    """The run as the code on the node plans it: the notebook computes its run directory with this code, so the
    job's view must agree even if the code changed (a new stage version) between submission and start."""
    params = Path(run.params["params_file"])
    layout = Layout(load_study(params), run.params["artifacts"])
    for now in stage_runs(layout, params):
        if now.label == run.label:
            record = read_record(run.run_dir)
            if now.run_dir != run.run_dir and record and not now.run_dir.file(JOB_FILE).exists():
                write_json(now.run_dir.file(JOB_FILE), record)  # so that status finds the job
            return now
    raise ArtifactError(f"{run.label} is no longer a stage run of {params}: its job has nothing to do")


def _job_id_here() -> str:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID", "")


def result_json(result_pickle: Path | str) -> Path:
    """Beside submitit's pickled result, the same value as JSON: what the submitter reads (never a pickle)."""
    return Path(result_pickle).with_suffix(".json")


def _write_result(value: dict[str, Any]) -> None:
    try:
        paths = submitit.JobEnvironment().paths
    except RuntimeError:  # called outside a submitit job: nobody reads a result file
        return
    write_json(result_json(paths.result_pickle), value)
