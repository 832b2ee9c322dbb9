"""Executors: where the stage runs of a study execute.

``local`` is :func:`subnetworks.pipeline.run_study`'s own loop: one stage run after another in this process's shared
kernel. ``slurm`` submits the same stage runs as Slurm jobs through submitit: one job per stage run, one array job
per stage and task, chained by ``afterok`` dependencies in the order data → prune → transfer, overlap → report,
with partition, time, GPUs, CPUs and memory per stage from the params file's ``runtime.slurm`` section.

Every job executes the same stage notebook with papermill (:func:`subnetworks.pipeline.execute`, in a fresh kernel)
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

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

EXECUTORS = ("local", "slurm")
JOB_FILE = "slurm.json"  # in a run directory: the Slurm job that runs (or ran) it
JOB_LOCK = ".job.lock"  # in a run directory: held by the job executing it
STAGES = {"01_data": "data", "02_prune": "prune", "03_transfer": "transfer", "04_overlap": "overlap",
          "05_report": "report"}
WAVES = {"data": 0, "prune": 1, "transfer": 2, "overlap": 2, "report": 3}

# squeue's long state names: waiting for resources, dependencies or a requeue; holding a node; ended
QUEUED = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}


class SlurmError(RuntimeError):
    """Slurm's commands are missing, or the controller did not answer."""


def check_executor(name: str) -> str:
    from .config import ConfigError

    if name not in EXECUTORS:
        raise ConfigError(f"executor {name!r} is unknown: use one of {list(EXECUTORS)} "
                          "(--executor or runtime.executor)")
    return name


# --- the grid: which jobs, grouped into which array jobs -----------------------------------------------------
def stage_of(run) -> str:
    return STAGES[run.notebook]


@dataclass
class JobGroup:
    """Stage runs of one stage and task: one array job (a plain job when it has one member)."""

    stage: str
    task: str
    runs: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.stage}/{self.task}" if self.task else self.stage

    @property
    def needs(self) -> set[str]:
        """Labels of the stage runs this group waits for (its members' upstream runs)."""
        return {label for run in self.runs for label in run.after}


def report_run(ctx, params_file: Path, reports_dir: str | Path = ""):
    """The report as one more stage run: after every transfer and overlap run."""
    from .pipeline import StageRun, plan, report_paths
    from .store import RunDir

    needs = tuple(r.label for r in plan(ctx, params_file) if stage_of(r) in ("transfer", "overlap"))
    params = {"params_file": str(params_file), "artifacts": str(ctx.artifacts),
              "reports_dir": str(report_paths(ctx.study, reports_dir)["root"])}
    return StageRun("05_report", params, RunDir(ctx.artifacts / "report"), "report", needs)


def job_groups(runs: Iterable) -> list[JobGroup]:
    """Stage runs grouped by stage and task, in an order where every group comes after the groups it needs."""
    groups: dict[tuple[str, str], JobGroup] = {}
    for run in runs:
        stage = stage_of(run)
        task = str(run.params.get("task", ""))
        groups.setdefault((stage, task), JobGroup(stage, task)).runs.append(run)
    order = sorted(groups.values(), key=lambda g: WAVES[g.stage])  # stable: plan order within a wave
    submitted = {r.label for g in order for r in g.runs}
    before: set[str] = set()
    for group in order:  # the waves are the dependency order: check it rather than trust it
        late = (group.needs & submitted) - before
        if late:
            raise AssertionError(f"{group.name} needs {sorted(late)}, which come in its own or a later wave")
        before |= {r.label for r in group.runs}
    return order


def grid_summary(runs: Iterable, report: bool = True) -> dict[str, Any]:
    """Job and array-job counts of submitting ``runs`` (plus the report job)."""
    groups = job_groups(runs)
    per_stage = Counter()
    for g in groups:
        per_stage[g.stage] += len(g.runs)
    return {
        "jobs": sum(per_stage.values()) + int(report),
        "sbatch_submissions": len(groups) + int(report),
        "array_jobs": sum(len(g.runs) > 1 for g in groups),
        "per_stage": {**per_stage, **({"report": 1} if report else {})},
        "groups": {g.name: len(g.runs) for g in groups},
    }


# --- what a job runs -----------------------------------------------------------------------------------------
class StageJob:
    """One stage run as a submitit job: the stage notebook executed with papermill into its run directory.

    Checkpointable the submitit way: on a time-out or preemption signal submitit calls :meth:`checkpoint` and
    requeues the same call. The state worth keeping is already on disk (finished IMP levels and transfer targets
    have their own ``DONE``), so the requeued job resumes the stage where it stopped.
    """

    def __init__(self, run, lock_timeout: float = 600.0):
        self.run = run
        self.lock_timeout = lock_timeout

    def __call__(self) -> dict[str, Any]:
        value = execute_job(self.run, self.lock_timeout)
        _write_result(value)
        return value

    def checkpoint(self, *args: Any, **kwargs: Any):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"StageJob({self.run.label})"


def execute_job(run, lock_timeout: float = 600.0) -> dict[str, Any]:
    """Execute one stage run (or render the report) in a fresh kernel; what a Slurm job does."""
    from filelock import FileLock

    from . import pipeline
    from .store import ArtifactError

    started = time.time()
    info = {"label": run.label, "host": socket.gethostname(), "job_id": _job_id_here(), "started": started}
    if run.label == "report":
        from .config import load_study
        from .stages import Context

        params = Path(run.params["params_file"])
        ctx = Context.create(load_study(params), run.params["artifacts"])
        with pipeline.SharedKernel() as kernel:
            html = pipeline.render_report(ctx, params, kernel, run.params["reports_dir"])
        if ctx.study.runtime.readme_results:
            pipeline.update_readme(html.parent / "results.md")
        return {**info, "report": str(html), "wall_seconds": time.time() - started, "ended": time.time()}
    run = _as_planned_now(run)
    if run.finished:
        return {**info, "skipped": "already finished", "wall_seconds": 0.0, "ended": time.time()}
    run.run_dir.path.mkdir(parents=True, exist_ok=True)
    # a requeued job may start while its first instance winds down on another node: one writer per run
    with FileLock(str(run.run_dir.file(JOB_LOCK)), timeout=lock_timeout):
        if run.finished:
            return {**info, "skipped": "already finished", "wall_seconds": 0.0, "ended": time.time()}
        with pipeline.SharedKernel() as kernel:
            wall = pipeline.execute(run, kernel)
    if not run.finished:  # never report success for a run that is not finished: dependents would start
        raise ArtifactError(f"{run.label}: its notebook ran, but {run.run_dir.path} has no DONE")
    timing = run.run_dir.read_json("timing.json") if run.run_dir.file("timing.json").exists() else {}
    return {**info, "wall_seconds": wall, "stage_seconds": timing.get("seconds", 0.0), "ended": time.time()}


def _as_planned_now(run):
    """The run as the code on the node plans it: the notebook computes its run directory with this code, so the
    job's view must agree even if the code changed (a new stage version) between submission and start."""
    from .config import load_study
    from .pipeline import plan
    from .stages import Context
    from .store import ArtifactError, write_json

    params = Path(run.params["params_file"])
    ctx = Context.create(load_study(params), run.params["artifacts"])
    for now in plan(ctx, params):
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


# --- Slurm's view: squeue (live and recently ended jobs), sacct where accounting exists ----------------------
def _slurm_command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    if shutil.which(args[0]) is None:
        raise SlurmError(f"{args[0]} is not on PATH: run on a Slurm login node (or start scripts/local_slurm.sh)")
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def queue_snapshot() -> dict[str, tuple[str, str]]:
    """job id (``123`` or ``123_4``) → (state, reason) of this user's jobs that Slurm still holds, ended ones too."""
    out = _slurm_command("squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%T|%r")
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
    out = subprocess.run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids)],
                         capture_output=True, text=True, timeout=120)
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
    from .store import write_json

    old = read_record(run_dir) or {}
    history = list(old.get("history", [])) + ([old["job_id"]] if old.get("job_id") else [])
    write_json(run_dir.file(JOB_FILE), {
        "cluster": cluster,
        "job_id": str(job.job_id),
        "submission": submission,
        "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "stdout": str(job.paths.stdout),
        "stderr": str(job.paths.stderr),
        "history": history[-20:],
    })


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
    from .pipeline import FAILED

    runs = list(runs)
    records = _slurm_records(runs)
    if not records:
        return {}
    try:
        queue = queue_snapshot()
    except (SlurmError, OSError, subprocess.SubprocessError) as err:
        return {label: {"state": "submitted", "detail": f"job {r['job_id']}; Slurm did not answer ({err})"}
                for label, r in records.items()}
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
    from .store import LockedError

    try:
        busy = in_flight(runs)
    except SlurmError:
        return  # no Slurm here: the jobs on record cannot be running on this machine's artefacts
    if busy:
        some = ", ".join(f"{label} (job {job})" for label, job in list(busy.items())[:3])
        raise LockedError(f"{len(busy)} stage runs are queued or running on Slurm, e.g. {some}: wait for them "
                          "(python -m subnetworks status …) or scancel them before running locally")


# --- submitting -----------------------------------------------------------------------------------------------
def compact_dependency(job_ids: Iterable[str], arrays: dict[str, set[str]]) -> str:
    """``afterok:…`` over ``job_ids``; a whole array job of this submission is named by its array id."""
    ids = set(job_ids)
    for master, members in arrays.items():
        if members and members <= ids:
            ids = (ids - members) | {master}
    return "afterok:" + ":".join(sorted(ids, key=lambda j: [int(p) for p in j.split("_")])) if ids else ""


class Submitter:
    """Submits stage runs through a submitit executor: ``slurm`` (dependencies in Slurm) or ``local``."""

    def __init__(self, ctx, *, cluster: str = "slurm", folder: str | Path = "", echo: Callable[[str], None] = print,
                 job_factory: Callable[[Any], Callable[[], Any]] = StageJob):
        from .config import resolve_path

        self.ctx = ctx
        self.cluster = cluster
        self.cfg = ctx.study.runtime.slurm
        self.folder = resolve_path(folder or self.cfg.folder or ctx.artifacts / "slurm") / "jobs"
        self.echo = echo
        self.job_factory = job_factory
        self.submission = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() // 1000 % 1000000:06d}"
        self.jobs: dict[str, Any] = {}  # label → submitit job of this submission
        self.arrays: dict[str, set[str]] = {}  # array job id → its task ids (this submission)
        self.log: list[dict[str, Any]] = []

    def executor(self, stage: str, name: str, dependency: str = ""):
        import submitit

        res = getattr(self.cfg, stage)
        kwargs = {"slurm_max_num_timeout": self.cfg.max_requeues}
        if self.cfg.python:
            kwargs["slurm_python"] = self.cfg.python
        ex = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster, **kwargs)
        params: dict[str, Any] = {"name": name, "timeout_min": res.time_min, "cpus_per_task": res.cpus}
        if res.gpus:
            params["gpus_per_node"] = res.gpus
        if res.mem_gb:
            params["mem_gb"] = res.mem_gb
        extra = {"requeue": True, "kill-on-invalid-dep": "yes", **res.extra}
        slurm = {
            "slurm_partition": res.partition or self.cfg.partition or None,
            "slurm_account": self.cfg.account or None,
            "slurm_qos": self.cfg.qos or None,
            "slurm_array_parallelism": self.cfg.array_parallelism,
            "slurm_setup": [f"export OMP_NUM_THREADS={res.cpus}", *self.cfg.setup],
            "slurm_additional_parameters": extra,
            "slurm_dependency": dependency or None,
        }
        ex.update_parameters(**params, **slurm)
        return ex

    def submit_group(self, group: JobGroup, known: dict[str, str]) -> list:
        """One array job for ``group``, after the jobs (of ``known`` and this submission) its runs need."""
        from .store import write_json

        needed = {known[label] for label in group.needs if label in known}
        dependency = compact_dependency(needed, self.arrays) if self.cluster == "slurm" else ""
        if self.cluster != "slurm":
            self._wait_local(group)
        name = f"{self.ctx.study.name}:{group.name}"
        ex = self.executor(group.stage, name, dependency)
        with ex.batch():
            jobs = [ex.submit(self.job_factory(run)) for run in group.runs]
        ids = [str(j.job_id) for j in jobs]
        master = ids[0].split("_")[0]
        if len(ids) > 1:
            self.arrays[master] = set(ids)
        for run, job in zip(group.runs, jobs):
            run.run_dir.path.mkdir(parents=True, exist_ok=True)
            write_record(run.run_dir, job, self.cluster, self.submission)
            self.jobs[run.label] = job
            known[run.label] = str(job.job_id)
        entry = {"group": group.name, "job_id": master, "jobs": len(ids), "dependency": dependency}
        self.log.append(entry)
        what = f"array job {master} of {len(ids)}" if len(ids) > 1 else f"job {master}"
        self.echo(f"  {group.name}: {what}" + (f", {dependency}" if dependency else ""))
        write_json(self.folder.parent / "submissions" / f"{self.submission}.json", {"submissions": self.log})
        return jobs

    def _wait_local(self, group: JobGroup) -> None:
        """submitit's local executor has no dependencies: wait for the upstream jobs; stop if one failed."""
        from .pipeline import StageFailed

        for label in sorted(group.needs):
            job = self.jobs.get(label)
            if job is None:
                continue
            try:
                job.result()
            except Exception as err:  # noqa: BLE001 - submitit re-raises the job's error with its traceback
                raise StageFailed(f"{label} failed, so {group.name} was not started: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return next((line for line in reversed(text) if line.strip()), type(err).__name__)


def run_on_cluster(ctx, params_file: Path, *, cluster: str = "slurm", reports_dir: str | Path = "",
                   wait: bool = False, echo: Callable[[str], None] = print,
                   job_factory: Callable[[Any], Callable[[], Any]] = StageJob,
                   poll_seconds: float | None = None) -> dict[str, Any]:
    """Submit every unfinished stage run of the study (and the report) as jobs; with ``wait``, wait for them.

    Returns what it submitted; with ``wait`` also the final state of every run. Raises StageFailed when a job
    failed (after ``wait``), with each failed run and the path of its failed notebook.
    """
    from . import pipeline
    from .store import exclusive, write_json

    start = time.perf_counter()
    sub = Submitter(ctx, cluster=cluster, echo=echo, job_factory=job_factory)
    report = report_run(ctx, params_file, reports_dir)
    with exclusive(ctx.artifacts):
        runs = pipeline.plan(ctx, params_file)
        busy = in_flight([*runs, report]) if cluster == "slurm" else {}
        report_busy = busy.pop("report", None)
        todo = [r for r in runs if not r.finished and r.label not in busy]
        finished = sum(r.finished for r in runs)
        echo(f"{len(runs)} stage runs, {finished} already finished, {len(busy)} queued or running on Slurm, "
             f"{len(todo)} to submit")
        summary: dict[str, Any] = {
            "study": ctx.study.name, "executor": "slurm", "cluster": cluster, "stage_runs": len(runs),
            "finished_before": finished, "in_flight_before": len(busy), "submitted_runs": len(todo),
            "submission": sub.submission, "folder": str(sub.folder),
        }
        if not todo and not busy and not report_busy:
            html = _report_here(ctx, params_file, runs, reports_dir, echo)
            summary.update(jobs_submitted=0, sbatch_submissions=0, report=str(html),
                           total_seconds=time.perf_counter() - start)
            write_json(sub.folder.parent / "submissions" / f"{sub.submission}.json", summary)
            echo(f"done in {summary['total_seconds']:.1f} s; report: {html}")
            return summary
        known = dict(busy)
        if todo:
            echo(f"submitting to {cluster} (job files and logs: {sub.folder}):")
        for group in job_groups(todo):
            sub.submit_group(group, known)
        if todo or not report_busy:
            if report_busy and cluster == "slurm":  # it would render before the runs submitted now finish
                _slurm_command("scancel", report_busy)
            sub.submit_group(JobGroup("report", "", [report]), known)
            report_busy = known["report"]
        known["report"] = report_busy
        summary.update(
            jobs_submitted=len(sub.jobs), sbatch_submissions=len(sub.log), submissions=sub.log,
            report_job=report_busy, submit_seconds=time.perf_counter() - start,
        )
        if sub.log:
            echo(f"{len(sub.jobs)} jobs in {len(sub.log)} submissions")
    write_json(sub.folder.parent / "submissions" / f"{sub.submission}.json", summary)
    if not wait and cluster == "slurm":
        echo("follow them with: python -m subnetworks status <params>  (or squeue)")
        return summary
    if cluster == "slurm":
        _wait_slurm(known, poll_seconds or ctx.study.runtime.slurm.poll_seconds, echo)
        rows = job_states([*runs, report])
        failed = {label: row["detail"] for label, row in rows.items() if row["state"] == "failed"}
    else:
        rows, failed = {}, _local_failures(sub.jobs)
    summary["total_seconds"] = time.perf_counter() - start
    summary["jobs"] = _job_results(sub)
    summary["states"] = dict(Counter(("done" if r.finished else rows.get(r.label, {}).get("state", "left"))
                                     for r in runs))
    summary["failed"] = failed
    write_json(sub.folder.parent / "submissions" / f"{sub.submission}.json", summary)
    states = ", ".join(f"{n} {state}" for state, n in summary["states"].items())
    echo(f"finished in {summary['total_seconds']:.1f} s: {states}")
    if failed:
        lines = "\n".join(f"  {label}: {detail}" for label, detail in sorted(failed.items()))
        raise pipeline.StageFailed(f"{len(failed)} job(s) failed; rerun to resubmit what is missing:\n{lines}")
    return summary


def _report_here(ctx, params_file: Path, runs: list, reports_dir: str | Path, echo) -> Path:
    """Everything finished and no job in flight: render the report here, unless it is newer than every run."""
    from . import pipeline
    from .store import DONE

    html = pipeline.report_paths(ctx.study, reports_dir)["html"]
    newest = max((r.run_dir.file(DONE).stat().st_mtime for r in runs), default=0.0)
    if html.exists() and html.stat().st_mtime >= newest:
        echo(f"nothing to submit; the report is up to date: {html}")
        return html
    echo("nothing to submit: rendering the report here")
    with pipeline.SharedKernel() as kernel:
        html = pipeline.render_report(ctx, params_file, kernel, reports_dir)
    if ctx.study.runtime.readme_results:
        pipeline.update_readme(html.parent / "results.md")
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
            failed[label] = _first_line(err)
    return failed


def _result_json(result_pickle: Path | str) -> Path:
    """Beside submitit's pickled result, the same value as JSON: what the submitter reads (never a pickle)."""
    return Path(result_pickle).with_suffix(".json")


def _write_result(value: dict[str, Any]) -> None:
    import submitit

    from .store import write_json

    try:
        paths = submitit.JobEnvironment().paths
    except RuntimeError:  # called outside a submitit job: nobody reads a result file
        return
    write_json(_result_json(paths.result_pickle), value)


def _job_results(sub: Submitter) -> dict[str, dict[str, Any]]:
    """What each job returned (host, wall seconds, …), read from the JSON each job writes beside its result."""
    from .store import ArtifactError, read_json

    out = {}
    for label, job in sub.jobs.items():
        try:
            value = read_json(_result_json(job.paths.result_pickle))
        except ArtifactError:  # the job failed or never ran
            continue
        if isinstance(value, dict):
            out[label] = {k: v for k, v in value.items() if k != "label"}
    return out
