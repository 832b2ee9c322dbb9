"""``python -m subnetworks budget PARAMS``: the training-budget curve.

Each point of ``budget.points`` multiplies every curve task's IMP training (its steps and its encoder learning rate)
and is run as a study of its own (data, prune and overlap; no transfer, controls drawn but not scored), all in one
artefacts directory and one scheduler pass. The curve reads, per budget, how far the IMP masks moved from the
pre-trained-magnitude mask P and how much more the languages' masks share than P explains; the budget of a training
is the sum of its learning rate over its steps. ``budget.json`` beside the artefacts lists the points, their budgets
and the budget of the paper's own settings (``params/paper.yaml``), for the report (``notebooks/06_budget.ipynb``).
"""

from __future__ import annotations

import copy
import hashlib
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_bytes
from ..core.schedule import learning_rate_sum
from ..spec import BudgetPoint, ConfigError, StudyConfig, dump_params, load_params, load_study, repo_root
from ..study.environment import environment
from ..study.layout import Layout
from ..study.store import exclusive, read_json, write_json
from .cost import train_size
from .kernel import SharedKernel
from .local import execute_runs, worker_threads
from .publish import render_report
from .stage_runs import StageRun, stage_runs
from .study_params import effective_params

BUDGET_FILE = "budget.json"


@dataclass(frozen=True)
class Point:
    """One budget of the curve as a study of its own."""

    label: str
    multipliers: BudgetPoint
    params_file: Path
    layout: Layout


def _derived(data: dict, study: StudyConfig, point: BudgetPoint, label: str) -> dict:
    """The raw params of one point: the curve's tasks with their IMP training scaled; no transfer, no scoring, no
    representation similarity."""
    derived = copy.deepcopy(data)
    tasks = study.budget.tasks or tuple(study.tasks)
    derived["tasks"] = {name: derived["tasks"][name] for name in tasks}
    derived.pop("similarity", None)  # the curve compares masks; what the masked encoders compute is the study's
    for name in tasks:
        base = study.task(name).imp_train
        train = {
            **derived["tasks"][name].get("imp_train", {}),
            "learning_rate": base.learning_rate * point.learning_rate,
        }
        if base.max_steps:
            train["max_steps"] = max(1, round(base.max_steps * point.steps))
        else:
            train["epochs"] = base.epochs * point.steps
        derived["tasks"][name].update(imp_train=train, transfer_train=train)
    derived["transfer"] = {**derived.get("transfer", {}), "enabled": False}
    derived["prune"] = {**derived.get("prune", {}), "score_controls": False}
    derived.pop("budget", None)
    derived["name"] = f"{study.name}-{label}"
    return derived


def budget_points(effective: Path, artifacts: str | Path = "") -> tuple[StudyConfig, list[Point]]:
    """The curve's study and its points, each point's params written once under the artefacts."""
    data, study = load_params(effective)
    if not study.budget.points:
        raise ConfigError(f"{effective.name}: budget.points is empty: list the budgets, e.g. [{{steps: 3}}]")
    if "pretrained" not in study.prune.controls:
        raise ConfigError("the budget curve compares masks with P: keep 'pretrained' in prune.controls")
    root = Layout(study, artifacts).artifacts
    points = []
    for multipliers in study.budget.points:
        label = f"x{multipliers.steps:g}-lr{multipliers.learning_rate:g}"
        text = dump_params(_derived(data, study, multipliers, label))
        path = root / "params" / f"{study.name}-{label}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
        if not path.exists():
            atomic_write_bytes(path, text.encode("utf-8"))
        points.append(Point(label, multipliers, path, Layout(load_study(path), root)))
    return study, points


def _runs(points: list[Point]) -> list[StageRun]:
    """Every point's stage runs in one list: data runs are shared (the same data), the others carry the point."""
    runs: dict[str, StageRun] = {}
    for point in points:
        for run in stage_runs(point.layout, point.params_file):
            if run.stage != "data":
                after = tuple(a if a.startswith("data/") else f"{point.label}/{a}" for a in run.after)
                run = StageRun(run.stage, run.params, run.run_dir, f"{point.label}/{run.label}", after)
            runs.setdefault(run.label, run)
    return list(runs.values())


def _budgets(point: Point) -> dict[str, float]:
    """The learning-rate sum of one IMP round of each task of a point (its training sizes as measured)."""
    study = point.layout.study
    return {
        task: learning_rate_sum(study.task(task).imp_train, train_size(point.layout, task, study.languages[0]) or 0)
        for task in study.tasks
    }


def paper_budgets(tasks: tuple[str, ...]) -> dict[str, float | None]:
    """The same sum for the paper's settings (params/paper.yaml, published training sizes); None where unknown."""
    paper = Layout(load_study(repo_root() / "params" / "paper.yaml"), "/nonexistent")
    out = {}
    for task in tasks:
        size = train_size(paper, task, "en") if task in paper.study.tasks else None
        out[task] = None if size is None else learning_rate_sum(paper.study.task(task).imp_train, size)
    return out


def _last_run(root: Path) -> dict[str, Any]:
    path = root / BUDGET_FILE
    return read_json(path).get("last_run", {}) if path.exists() else {}


def run_budget(
    params_file: str | Path, artifacts: str | Path = "", overrides=(), *, reports_dir: str | Path = "", echo=print
) -> dict[str, Any]:
    """Every unfinished run of every point, then the curve's report. Returns what ``budget.json`` holds."""
    effective = effective_params(params_file, artifacts, overrides)
    study, points = budget_points(effective, artifacts)
    root = points[0].layout.artifacts
    start = time.perf_counter()
    with exclusive(root), ExitStack() as stack:
        runs = _runs(points)
        todo = [r for r in runs if not r.finished]
        workers = study.runtime.workers
        echo(
            f"{len(points)} budgets, {len(runs)} stage runs, {len(runs) - len(todo)} already finished, "
            f"{len(todo)} to run"
        )
        kernel = stack.enter_context(SharedKernel()) if workers == 1 or not todo else None
        timings = execute_runs(runs, todo, worker_threads(study), echo, kernel, workers)
        record = {
            "study": study.name,
            "points": [
                {
                    "label": p.label,
                    "steps": p.multipliers.steps,
                    "learning_rate": p.multipliers.learning_rate,
                    "params_file": str(p.params_file),
                    "budget": _budgets(p),
                }
                for p in points
            ],
            "paper_budget": paper_budgets(tuple(points[0].layout.study.tasks)),
            "stage_runs": len(runs),
            "machine": environment(study.runtime.device),
            # the times of the last run that did work: a rerun that only renders the report keeps them
            "last_run": _last_run(root)
            if not todo
            else {"executed": len(todo), "runs_seconds": time.perf_counter() - start, "timings": timings},
        }
        write_json(root / BUDGET_FILE, record)
        kernel = kernel or stack.enter_context(SharedKernel())
        html = render_report(Layout(study, root), effective, kernel, reports_dir, notebook="06_budget")
    record["report"] = str(html)
    if todo:
        record["last_run"]["total_seconds"] = time.perf_counter() - start
    write_json(root / BUDGET_FILE, record)
    echo(f"done in {time.perf_counter() - start:.1f} s; report: {html}")
    return record
