"""Submitting stage runs through submitit: one array job per stage and task, chained by ``afterok`` in the order
data → prune → transfer, overlap → report, with each stage's resources from ``runtime.slurm``."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit

from ..spec import resolve_path
from ..study.layout import Layout
from ..study.store import write_json
from .slurm_jobs import StageJob
from .slurm_queue import write_record
from .stage_runs import StageFailed, StageRun

WAVES = {"data": 0, "prune": 1, "transfer": 2, "overlap": 2, "report": 3}


@dataclass
class JobGroup:
    """Stage runs of one stage and task: one array job (a plain job when it has one member)."""

    stage: str
    task: str
    runs: list[StageRun] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.stage}/{self.task}" if self.task else self.stage

    @property
    def needs(self) -> set[str]:
        """Labels of the stage runs this group waits for (its members' upstream runs)."""
        return {label for run in self.runs for label in run.after}


def job_groups(runs: Iterable[StageRun]) -> list[JobGroup]:
    """Stage runs grouped by stage and task, in an order where every group comes after the groups it needs."""
    groups: dict[tuple[str, str], JobGroup] = {}
    for run in runs:
        groups.setdefault((run.stage, run.task), JobGroup(run.stage, run.task)).runs.append(run)
    order = sorted(groups.values(), key=lambda g: WAVES[g.stage])  # stable: plan order within a wave
    submitted = {r.label for g in order for r in g.runs}
    before: set[str] = set()
    for group in order:  # the waves are the dependency order: check it rather than trust it
        late = (group.needs & submitted) - before
        if late:
            raise AssertionError(f"{group.name} needs {sorted(late)}, which come in its own or a later wave")
        before |= {r.label for r in group.runs}
    return order


def grid_summary(runs: Iterable[StageRun], report: bool = True) -> dict[str, Any]:
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


def compact_dependency(job_ids: Iterable[str], arrays: dict[str, set[str]]) -> str:
    """``afterok:…`` over ``job_ids``; a whole array job of this submission is named by its array id."""
    ids = set(job_ids)
    for master, members in arrays.items():
        if members and members <= ids:
            ids = (ids - members) | {master}
    return "afterok:" + ":".join(sorted(ids, key=lambda j: [int(p) for p in j.split("_")])) if ids else ""


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return next((line for line in reversed(text) if line.strip()), type(err).__name__)


class Submitter:
    """Submits stage runs through a submitit executor: ``slurm`` (dependencies in Slurm) or ``local``."""

    def __init__(
        self,
        layout: Layout,
        *,
        cluster: str = "slurm",
        folder: str | Path = "",
        echo: Callable[[str], None] = print,
        job_factory: Callable[[Any], Callable[[], Any]] = StageJob,
    ):
        self.layout = layout
        self.cluster = cluster
        self.cfg = layout.study.runtime.slurm
        self.folder = resolve_path(folder or self.cfg.folder or layout.artifacts / "slurm") / "jobs"
        self.echo = echo
        self.job_factory = job_factory
        self.submission = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() // 1000 % 1000000:06d}"
        self.jobs: dict[str, Any] = {}  # label → submitit job of this submission
        self.arrays: dict[str, set[str]] = {}  # array job id → its task ids (this submission)
        self.log: list[dict[str, Any]] = []

    @property
    def record(self) -> Path:
        """This submission's JSON record (its array jobs, later what they returned)."""
        return self.folder.parent / "submissions" / f"{self.submission}.json"

    def executor(self, stage: str, name: str, dependency: str = "") -> submitit.AutoExecutor:
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
        needed = {known[label] for label in group.needs if label in known}
        dependency = compact_dependency(needed, self.arrays) if self.cluster == "slurm" else ""
        if self.cluster != "slurm":
            self._wait_local(group)
        ex = self.executor(group.stage, f"{self.layout.study.name}:{group.name}", dependency)
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
        self.log.append({"group": group.name, "job_id": master, "jobs": len(ids), "dependency": dependency})
        what = f"array job {master} of {len(ids)}" if len(ids) > 1 else f"job {master}"
        self.echo(f"  {group.name}: {what}" + (f", {dependency}" if dependency else ""))
        write_json(self.record, {"submissions": self.log})
        return jobs

    def _wait_local(self, group: JobGroup) -> None:
        """submitit's local executor has no dependencies: wait for the upstream jobs; stop if one failed."""
        for label in sorted(group.needs):
            job = self.jobs.get(label)
            if job is None:
                continue
            try:
                job.result()
            except Exception as err:  # noqa: BLE001 - submitit re-raises the job's error with its traceback
                raise StageFailed(f"{label} failed, so {group.name} was not started: {first_line(err)}") from None
