"""Slurm's view of a study's jobs: ``squeue`` (live and recently ended jobs), ``sacct`` where the cluster keeps
accounting, and the job record (``slurm.json``) each submitted run directory holds."""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..study.store import LockedError, write_json
from .stage_runs import FAILED

JOB_FILE = "slurm.json"  # in a run directory: the Slurm job that runs (or ran) it

# squeue's long state names: waiting for resources, dependencies or a requeue; holding a node; ended
QUEUED = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}


class SlurmError(RuntimeError):
    """Slurm's commands are missing, or the controller did not answer."""


def slurm_command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    if shutil.which(args[0]) is None:
        raise SlurmError(f"{args[0]} is not on PATH: run on a Slurm login node (or start scripts/local_slurm.sh)")
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def queue_snapshot() -> dict[str, tuple[str, str]]:
    """job id (``123`` or ``123_4``) → (state, reason) of this user's jobs that Slurm still holds, ended ones too."""
    out = slurm_command("squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%T|%r")
    if out.returncode != 0:
        raise SlurmError(f"squeue failed: {out.stderr.strip() or out.stdout.strip()}")
    jobs = {}
    for line in out.stdout.splitlines():
        job_id, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        if job_id:
            jobs[job_id] = (state.split()[0] if state else "UNKNOWN", reason)
    return jobs


def accounting_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Final states from sacct for jobs squeue no longer shows; empty where the cluster keeps no accounting."""
    ids = sorted(set(job_ids))
    if not ids or shutil.which("sacct") is None:
        return {}
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        return {}
    states = {}
    for line in out.stdout.splitlines():
        job_id, _, state = line.partition("|")
        if job_id:
            states[job_id.strip()] = state.split()[0] if state.strip() else "UNKNOWN"
    return states


def read_record(run_dir) -> dict[str, Any] | None:
    path = run_dir.file(JOB_FILE)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_record(run_dir, job, cluster: str, submission: str) -> None:
    old = read_record(run_dir) or {}
    history = list(old.get("history", [])) + ([old["job_id"]] if old.get("job_id") else [])
    write_json(
        run_dir.file(JOB_FILE),
        {
            "cluster": cluster,
            "job_id": str(job.job_id),
            "submission": submission,
            "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr),
            "history": history[-20:],
        },
    )


def _slurm_records(runs: Iterable) -> dict[str, dict[str, Any]]:
    """label → job record, for unfinished runs whose last job went to Slurm."""
    records = {}
    for run in runs:
        if run.label != "report" and run.finished:
            continue
        record = read_record(run.run_dir)
        if record and record.get("cluster") == "slurm" and record.get("job_id"):
            records[run.label] = record
    return records


def live(state: str | None) -> bool:
    return state in QUEUED or state in RUNNING


def job_states(runs: Iterable) -> dict[str, dict[str, str]]:
    """``status`` rows for unfinished runs with a Slurm job on record: queued, running or failed, with details."""
    runs = list(runs)
    records = _slurm_records(runs)
    if not records:
        return {}
    try:
        queue = queue_snapshot()
    except (SlurmError, OSError, subprocess.SubprocessError) as err:
        return {
            label: {"state": "submitted", "detail": f"job {r['job_id']}; Slurm did not answer ({err})"}
            for label, r in records.items()
        }
    gone = [r["job_id"] for r in records.values() if r["job_id"] not in queue]
    final = accounting_states(gone)
    by_label = {run.label: run for run in runs}
    rows = {}
    for label, record in records.items():
        job_id = record["job_id"]
        state, reason = queue.get(job_id, (final.get(job_id, ""), ""))
        if state in QUEUED:
            rows[label] = {"state": "queued", "detail": f"job {job_id} ({reason or state})"}
        elif state in RUNNING:
            rows[label] = {"state": "running", "detail": f"job {job_id}"}
        elif label == "report" and state == "COMPLETED":  # the report has no DONE: its job's state is its state
            rows[label] = {"state": "done", "detail": f"job {job_id}"}
        else:
            failed = by_label[label].run_dir.file(FAILED)
            log = Path(record.get("stderr", ""))
            if failed.exists():
                detail = f"failed notebook: {failed}"
            elif state == "CANCELLED" and reason == "DependencyNeverSatisfied":
                detail = f"job {job_id} never ran: a job it depends on failed"
            elif state:
                detail = f"job {job_id} ended {state}" + (f" ({reason})" if reason and reason != "None" else "")
            else:
                detail = f"job {job_id} is gone from the queue without finishing the run"
            if not failed.exists() and log.is_file():
                detail += f"; log: {log}"
            rows[label] = {"state": "failed", "detail": detail}
    return rows


def in_flight(runs: Iterable) -> dict[str, str]:
    """label → job id of runs whose Slurm job is queued or running now."""
    records = _slurm_records(runs)
    if not records:
        return {}
    queue = queue_snapshot()
    return {label: r["job_id"] for label, r in records.items() if live(queue.get(r["job_id"], ("", ""))[0])}


def refuse_in_flight(runs: Iterable) -> None:
    """A local run must not execute runs that Slurm jobs are executing or about to."""
    try:
        busy = in_flight(runs)
    except SlurmError:
        return  # no Slurm here: the jobs on record cannot be running on this machine's artefacts
    if busy:
        some = ", ".join(f"{label} (job {job})" for label, job in list(busy.items())[:3])
        raise LockedError(
            f"{len(busy)} stage runs are queued or running on Slurm, e.g. {some}: wait for them "
            "(python -m subnetworks status …) or scancel them before running locally"
        )
