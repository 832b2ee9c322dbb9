"""``run --executor slurm``: every unfinished stage run of a study as a Slurm job through submitit.

One job per stage run, one array job per stage and task, chained by ``afterok`` dependencies in the order
data → prune → transfer, overlap → report, with partition, time, GPUs, CPUs and memory per stage from the params
file's ``runtime.slurm`` section. Every job executes the same stage notebook with papermill (in a fresh kernel)
into the same key-named run directory as a local run, so local and Slurm runs share their artefacts and a study can
move between them at any point. What a job leaves behind is the checkpoint: a job that Slurm times out or preempts
is requeued by submitit with the same call, and the stage resumes from its last finished IMP level (or transfer
target). A job records its id in ``slurm.json`` in its run directory; ``status`` reads those ids back and asks
``squeue`` (and ``sacct`` where the cluster keeps accounting). Finished runs (``DONE``) are never submitted, runs
whose job is still queued or running are not submitted again, and a failed job never writes ``DONE``: rerunning
``run`` submits exactly what is missing.

The same submitter drives submitit's ``local`` executor (processes on this machine, no dependency support: it
waits for each job's upstream jobs before submitting it); the tests use it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..spec import ConfigError
from ..study.layout import Layout
from ..study.store import DONE, ArtifactError, exclusive, read_json, write_json
from .kernel import SharedKernel
from .publish import publish_results, render_report
from .slurm_jobs import StageJob, result_json
from .slurm_queue import QUEUED, RUNNING, in_flight, job_states, queue_snapshot, refuse_in_flight, slurm_command
from .slurm_submit import JobGroup, Submitter, first_line, job_groups
from .stage_runs import REPORT, StageFailed, StageRun, report_run, reports_dir, stage_runs

EXECUTORS = ("local", "slurm")
__all__ = ["EXECUTORS", "check_executor", "refuse_in_flight", "run_on_cluster"]


def check_executor(name: str) -> str:
    if name not in EXECUTORS:
        raise ConfigError(
            f"executor {name!r} is unknown: use one of {list(EXECUTORS)} (--executor or runtime.executor)"
        )
    return name


def run_on_cluster(
    layout: Layout,
    params_file: Path,
    *,
    cluster: str = "slurm",
    reports_dir: str | Path = "",
    wait: bool = False,
    echo: Callable[[str], None] = print,
    job_factory: Callable[[Any], Callable[[], Any]] = StageJob,
    poll_seconds: float | None = None,
) -> dict[str, Any]:
    """Submit every unfinished stage run of the study (and the report) as jobs; with ``wait``, wait for them.

    Returns what it submitted; with ``wait`` also the final state of every run. Raises StageFailed when a job
    failed (after ``wait``), with each failed run and the path of its failed notebook.
    """
    start = time.perf_counter()
    sub = Submitter(layout, cluster=cluster, echo=echo, job_factory=job_factory)
    with exclusive(layout.artifacts):
        runs = stage_runs(layout, params_file)
        report = report_run(layout, params_file, runs, reports_dir)
        busy = in_flight([*runs, report]) if cluster == "slurm" else {}
        report_busy = busy.pop(REPORT, None)
        todo = [r for r in runs if not r.finished and r.label not in busy]
        finished = sum(r.finished for r in runs)
        echo(
            f"{len(runs)} stage runs, {finished} already finished, {len(busy)} queued or running on Slurm, "
            f"{len(todo)} to submit"
        )
        summary: dict[str, Any] = {
            "study": layout.study.name,
            "executor": "slurm",
            "cluster": cluster,
            "stage_runs": len(runs),
            "finished_before": finished,
            "in_flight_before": len(busy),
            "submitted_runs": len(todo),
            "submission": sub.submission,
            "folder": str(sub.folder),
        }
        if not todo and not busy and not report_busy:
            html = _report_here(layout, params_file, runs, reports_dir, echo)
            summary.update(
                jobs_submitted=0, sbatch_submissions=0, report=str(html), total_seconds=time.perf_counter() - start
            )
            write_json(sub.record, summary)
            echo(f"done in {summary['total_seconds']:.1f} s; report: {html}")
            return summary
        known = _submit(sub, todo, report, busy, report_busy)
        summary.update(
            jobs_submitted=len(sub.jobs),
            sbatch_submissions=len(sub.log),
            submissions=sub.log,
            report_job=known[REPORT],
            submit_seconds=time.perf_counter() - start,
        )
    write_json(sub.record, summary)
    if not wait and cluster == "slurm":
        echo("follow them with: python -m subnetworks status <params>  (or squeue)")
        return summary
    return _wait(sub, runs, report, known, summary, start, poll_seconds or layout.study.runtime.slurm.poll_seconds)


def _submit(
    sub: Submitter, todo: list[StageRun], report: StageRun, busy: dict[str, str], report_busy: str | None
) -> dict[str, str]:
    """Submit ``todo`` by groups, then the report (again, if runs were submitted after a queued one); returns
    label → job id of every job the study waits for."""
    known = dict(busy)
    if todo:
        sub.echo(f"submitting to {sub.cluster} (job files and logs: {sub.folder}):")
    for group in job_groups(todo):
        sub.submit_group(group, known)
    if todo or not report_busy:
        if report_busy and sub.cluster == "slurm":  # it would render before the runs submitted now finish
            slurm_command("scancel", report_busy)
        sub.submit_group(JobGroup(REPORT, "", [report]), known)
        report_busy = known[REPORT]
    known[REPORT] = report_busy
    if sub.log:
        sub.echo(f"{len(sub.jobs)} jobs in {len(sub.log)} submissions")
    return known


def _wait(
    sub: Submitter,
    runs: list[StageRun],
    report: StageRun,
    known: dict[str, str],
    summary: dict[str, Any],
    start: float,
    poll: float,
) -> dict[str, Any]:
    """Wait for the jobs, then record and check how every run ended."""
    if sub.cluster == "slurm":
        _wait_slurm(known, poll, sub.echo)
        rows = job_states([*runs, report])
        failed = {label: row["detail"] for label, row in rows.items() if row["state"] == "failed"}
    else:
        rows, failed = {}, _local_failures(sub.jobs)
    summary["total_seconds"] = time.perf_counter() - start
    summary["jobs"] = _job_results(sub)
    summary["states"] = dict(
        Counter(("done" if r.finished else rows.get(r.label, {}).get("state", "left")) for r in runs)
    )
    summary["failed"] = failed
    write_json(sub.record, summary)
    states = ", ".join(f"{n} {state}" for state, n in summary["states"].items())
    sub.echo(f"finished in {summary['total_seconds']:.1f} s: {states}")
    if failed:
        lines = "\n".join(f"  {label}: {detail}" for label, detail in sorted(failed.items()))
        raise StageFailed(f"{len(failed)} job(s) failed; rerun to resubmit what is missing:\n{lines}")
    return summary


def _report_here(layout: Layout, params_file: Path, runs: list[StageRun], reports: str | Path, echo) -> Path:
    """Everything finished and no job in flight: render the report here, unless it is newer than every run."""
    html = reports_dir(layout.study, reports) / "report.html"
    newest = max((r.run_dir.file(DONE).stat().st_mtime for r in runs), default=0.0)
    if html.exists() and html.stat().st_mtime >= newest:
        echo(f"nothing to submit; the report is up to date: {html}")
        return html
    echo("nothing to submit: rendering the report here")
    with SharedKernel() as kernel:
        html = render_report(layout, params_file, kernel, reports)
    publish_results(layout.study, html)
    return html


def _wait_slurm(jobs: dict[str, str], poll: float, echo) -> None:
    """Until none of ``jobs`` is queued or running; a line whenever the counts change."""
    last = None
    while True:
        queue = queue_snapshot()
        counts = Counter()
        for job_id in jobs.values():
            state = queue.get(job_id, ("", ""))[0]
            counts["queued" if state in QUEUED else "running" if state in RUNNING else "ended"] += 1
        line = ", ".join(f"{counts[k]} {k}" for k in ("queued", "running", "ended"))
        if line != last:
            echo(f"  [{time.strftime('%H:%M:%S')}] {line}")
            last = line
        if counts["queued"] + counts["running"] == 0:
            return
        time.sleep(poll)


def _local_failures(jobs: dict[str, Any]) -> dict[str, str]:
    """Wait for every local job; label → the last line of the error of those that failed."""
    failed = {}
    for label, job in jobs.items():
        try:
            job.result()
        except Exception as err:  # noqa: BLE001
            failed[label] = first_line(err)
    return failed


def _job_results(sub: Submitter) -> dict[str, dict[str, Any]]:
    """What each job returned (host, wall seconds, …), read from the JSON each job writes beside its result."""
    out = {}
    for label, job in sub.jobs.items():
        try:
            value = read_json(result_json(job.paths.result_pickle))
        except ArtifactError:  # the job failed or never ran
            continue
        if isinstance(value, dict):
            out[label] = {k: v for k, v in value.items() if k != "label"}
    return out
