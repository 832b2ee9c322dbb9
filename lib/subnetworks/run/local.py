"""``run`` on this machine: every unfinished stage run (in one kernel, or on several workers), then the report,
with the times it measured kept beside the artefacts."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ..report import open_report, summary_section
from ..spec import StudyConfig
from ..study.layout import Layout
from ..study.store import exclusive, write_json
from .kernel import SharedKernel
from .live import LiveProgress
from .progress import RunClock
from .publish import publish_results, render_report
from .scheduler import execute_all
from .slurm import check_executor, refuse_in_flight, run_on_cluster
from .stage_runs import StageRun, stage_runs
from .study_params import open_study


def run_study(
    params_file: str | Path,
    artifacts: str | Path = "",
    overrides: Iterable[str] = (),
    *,
    reports_dir: str | Path = "",
    echo=print,
    executor: str = "",
    wait: bool = False,
) -> dict[str, Any]:
    """The whole study: every unfinished stage run, then the report. Returns the timings it measured.

    ``executor`` (default ``runtime.executor``): ``local`` runs here; ``slurm`` submits jobs (see slurm.py) and,
    with ``wait``, waits for them.
    """
    effective, study, layout = open_study(params_file, artifacts, overrides)
    if check_executor(executor or study.runtime.executor) == "slurm":
        return run_on_cluster(layout, effective, reports_dir=reports_dir, wait=wait, echo=echo)
    start = time.perf_counter()
    workers = study.runtime.workers
    with exclusive(layout.artifacts), ExitStack() as stack:
        runs = stage_runs(layout, effective)
        todo = [r for r in runs if not r.finished]
        refuse_in_flight(todo)
        echo(
            f"{len(runs)} stage runs, {len(runs) - len(todo)} already finished, {len(todo)} to run"
            + (f" on {workers} workers" if workers > 1 and todo else "")
        )
        kernel = stack.enter_context(SharedKernel()) if workers == 1 or not todo else None
        timings = execute_runs(runs, todo, worker_threads(study), echo, kernel, workers)
        kernel = kernel or stack.enter_context(SharedKernel())
        summary = _timing_summary(layout, start, runs, todo, timings)
        if todo:  # the report shows the times of the last run that did work; a rerun's go to timings-latest.json
            write_json(layout.artifacts / "timings.json", summary)
        report_start = time.perf_counter()
        html = render_report(layout, effective, kernel, reports_dir)
        summary.update(report_seconds=time.perf_counter() - report_start, report=str(html))
    summary["total_seconds"] = total = time.perf_counter() - start
    if todo:
        summary["orchestration_share"] = _orchestration_share(summary, total, workers)
    write_json(layout.artifacts / "timings" / f"{time.strftime('%Y%m%d-%H%M%S')}.json", summary)
    write_json(layout.artifacts / "timings-latest.json", summary)
    if todo:
        write_json(layout.artifacts / "timings.json", summary)
        summary_section(open_report(layout, reports_dir))  # results.md with the final times, report included
    publish_results(study, html)
    echo(f"done in {total:.1f} s; report: {html}")
    return summary


def worker_threads(study: StudyConfig) -> int:
    """Torch threads per worker kernel: as params say, else the cores shared out among the workers."""
    workers = study.runtime.workers
    if study.runtime.num_threads or workers == 1:
        return study.runtime.num_threads
    return max(1, len(os.sched_getaffinity(0)) // workers)


def execute_runs(
    runs: list[StageRun], todo: list[StageRun], threads: int, echo, kernel: SharedKernel | None, workers: int
) -> list[dict[str, Any]]:
    """Run ``todo`` (of ``runs``), saying for each start how long the study has run and how long it should still take
    (from the finished runs' measured times: :mod:`.progress`), and on a terminal what the runs going now do
    (:mod:`.live`)."""
    known = {r.label: r.stage_seconds for r in runs if r.finished and r.stage_seconds is not None}
    clock = RunClock([r.label for r in todo], workers, known)
    timings = []
    finished = [r.label for r in runs if r.finished]
    # live lines on stderr below echoed lines on stdout: only where both are the terminal (not under ``| tee``)
    with LiveProgress(sys.stderr if sys.stdout.isatty() else None, echo) as live:
        for run, wall in execute_all(
            todo, finished, workers if todo else 1, threads, live.echo, kernel, clock.line, live
        ):
            clock.finished(run.label, wall)
            timings.append({"label": run.label, "wall_seconds": wall, "stage_seconds": run.stage_seconds or 0.0})
    return timings


def _timing_summary(layout: Layout, start: float, runs: list, todo: list, timings: list[dict]) -> dict[str, Any]:
    total = time.perf_counter() - start
    workers = layout.study.runtime.workers
    summary = {
        "study": layout.study.name,
        "total_seconds": total,
        "stage_runs": len(runs),
        "executed": len(todo),
        "workers": workers,
        "notebook_wall_seconds": sum(t["wall_seconds"] for t in timings),
        "stage_seconds": sum(t["stage_seconds"] for t in timings),
        "report_seconds": None,
        "runs": timings,
    }
    if todo:
        summary["orchestration_share"] = _orchestration_share(summary, total, workers)
    return summary


def _orchestration_share(summary: dict[str, Any], total: float, workers: int) -> float:
    """Worker time spent outside the stages themselves (kernel reset, papermill, notebook IO) over all workers' time.

    A stage that had finished before its notebook ran (run by hand, or as another's dependency) did its work then:
    its recorded time counts only up to its notebook's."""
    outside = sum(r["wall_seconds"] - min(r["stage_seconds"], r["wall_seconds"]) for r in summary["runs"])
    return outside / (workers * total)
