"""``status``: the state of every stage run of a study, from its run directories and, for runs submitted to Slurm,
Slurm's job states."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock, Timeout

from ..spec import StudyConfig
from ..study.controls import CONTROLS
from .progress import RunClock, duration, unmeasured_phrase
from .slurm import job_states
from .stage_runs import FAILED, stage_runs
from .study_params import open_study


def controls_lines(study: StudyConfig) -> list[str]:
    """The registered controls, which of them the study draws, and where each is used."""
    lines = ["controls (registered; * drawn by this study):"]
    for name, control in CONTROLS.items():
        uses = [
            u
            for u, on in (
                ("scored at the transfer levels", control.scored and study.prune.score_controls),
                ("overlapped across languages", control.across_languages),
            )
            if on
        ]
        mark = "*" if name in study.prune.controls else " "
        lines.append(f"  {mark} {name}: {control.label}" + (f" ({', '.join(uses)})" if uses else ""))
    return lines


def status(params_file: str | Path, artifacts: str | Path = "", overrides: Iterable[str] = ()) -> list[dict[str, str]]:
    """One row per stage run: done, running (another process holds the artefacts), partial, failed, or left;
    runs submitted to Slurm: done, queued, running or failed. Failed rows carry a ``detail``: the path of the failed
    notebook, or why the job ended; finished rows the ``seconds`` their stage measured."""
    effective, _, layout = open_study(params_file, artifacts, overrides)
    busy = False
    lock = FileLock(str(layout.artifacts / ".lock"))
    try:
        lock.acquire(timeout=0)
        lock.release()
    except Timeout:
        busy = True
    runs = stage_runs(layout, effective)
    jobs = job_states(runs)
    rows = []
    for run in runs:
        detail = ""
        if run.finished:
            state = "done"
        elif run.label in jobs:
            state, detail = jobs[run.label]["state"], jobs[run.label]["detail"]
        elif run.run_dir.path.exists() and busy:
            state = "running"
        elif run.run_dir.file(FAILED).exists():
            state, detail = "failed", f"failed notebook: {run.run_dir.file(FAILED)}"
        elif run.run_dir.path.exists():
            state = "partial"
        else:
            state = "left"
        row = {"run": run.label, "state": state, "dir": str(run.run_dir.path)}
        if state == "done" and run.stage_seconds is not None:
            row["seconds"] = run.stage_seconds
        rows.append({**row, "detail": detail} if detail else row)
    return rows


def time_left_line(rows: list[dict[str, str]], workers: int) -> str:
    """How long the runs not yet done should take on ``workers``, estimated from the finished ones; "" when all are
    done or none has a measured time yet."""
    known = {r["run"]: float(r["seconds"]) for r in rows if r["state"] == "done" and "seconds" in r}
    clock = RunClock([r["run"] for r in rows if r["state"] != "done"], workers, known)
    left = clock.left_seconds()
    if left is not None:
        return f"about {duration(left)} left on {workers} worker(s), from the {len(known)} finished runs' times"
    unmeasured = clock.unmeasured_stages()
    if known and unmeasured:
        return unmeasured_phrase(unmeasured)
    return ""
