"""Expand a params file into stage runs and execute each stage notebook with papermill into its run directory.

Finished runs are skipped before a kernel is started, so rerunning a finished study trains nothing and takes
seconds. The order is the dependency order data → prune → transfer, overlap → report.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .config import StudyConfig, load_study, read_params, repo_root, resolve_path
from .stages import Context
from .store import RunDir, exclusive, write_json

NOTEBOOKS = repo_root() / "notebooks"
EXECUTED = "notebook.ipynb"
FAILED = "notebook.failed.ipynb"


class StageFailed(RuntimeError):
    """A stage notebook raised; the executed notebook with the traceback is kept next to its run."""


@dataclass(frozen=True)
class StageRun:
    """One notebook execution: which notebook, with which parameters, into which run directory."""

    notebook: str
    params: dict[str, Any]
    run_dir: RunDir
    label: str
    after: tuple[str, ...] = field(default=())  # labels of the runs it needs

    @property
    def finished(self) -> bool:
        return self.run_dir.done and self.run_dir.file(EXECUTED).exists()


def effective_params(params_file: str | Path, artifacts: str | Path = "", overrides: Iterable[str] = ()) -> Path:
    """The params file with ``--set key.sub=value`` overrides applied, written once under the artefacts.

    Notebooks receive this file, so every stage of one run sees exactly the same parameters.
    """
    study = load_study(params_file)  # validates the file itself first, with its own name in errors
    data = read_params(params_file)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r} must look like key.sub=value")
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(raw)
    text = yaml.safe_dump(data, sort_keys=True, allow_unicode=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    target = resolve_path(artifacts or study.runtime.artifacts) / "params" / f"{study.name}-{digest}.yaml"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    load_study(target)
    return target


def plan(ctx: Context, params_file: Path) -> list[StageRun]:
    """Every stage run of the study, in an order that respects dependencies."""
    study = ctx.study
    base = {"params_file": str(params_file), "artifacts": str(ctx.artifacts)}
    runs: list[StageRun] = []
    for task in study.tasks:
        for lang in study.task_languages(task):
            runs.append(StageRun("01_data", {**base, "task": task, "lang": lang}, ctx.data_dir(task, lang), f"data/{task}/{lang}"))
    for task in study.tasks:
        for lang in study.task_languages(task):
            for seed in study.seeds:
                runs.append(
                    StageRun("02_prune", {**base, "task": task, "lang": lang, "seed": seed}, ctx.prune_dir(task, lang, seed),
                             f"prune/{task}/{lang}/seed{seed}", (f"data/{task}/{lang}",))
                )
    for task in study.tasks:
        langs = study.task_languages(task)
        for sparsity in study.transfer.sparsities:
            for source in langs:
                for seed in study.seeds:
                    needs = (f"prune/{task}/{source}/seed{seed}",) + tuple(f"data/{task}/{t}" for t in langs)
                    runs.append(
                        StageRun("03_transfer", {**base, "task": task, "source": source, "sparsity": sparsity, "seed": seed},
                                 ctx.transfer_dir(task, source, sparsity, seed), f"transfer/{task}/{source}/sp{sparsity:g}/seed{seed}", needs)
                    )
        prunes = tuple(f"prune/{task}/{lang}/seed{seed}" for lang in langs for seed in study.seeds)
        runs.append(StageRun("04_overlap", {**base, "task": task}, ctx.overlap_dir(task), f"overlap/{task}", prunes))
    return runs


class SharedKernel:
    """One Python kernel reused by every notebook of a study run, reset (``%reset -f``) before each.

    A fresh kernel per notebook costs seconds of start-up and imports (torch, transformers) each time; with
    dozens of stage notebooks that would dominate a short study. Modules stay imported; variables do not.
    """

    def __enter__(self) -> "SharedKernel":
        from jupyter_client.manager import AsyncKernelManager
        from nbclient.util import run_sync

        self.km = AsyncKernelManager(kernel_name="python3")
        run_sync(self.km.start_kernel)(cwd=str(repo_root()))
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=120)
        return self

    def __exit__(self, *exc) -> None:
        from nbclient.util import run_sync

        self.kc.stop_channels()
        run_sync(self.km.shutdown_kernel)(now=True)

    def execute(self, source: Path, output: Path | None, parameters: dict[str, Any]) -> None:
        import nbformat
        import papermill

        reset = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%reset -f")])
        reset.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
        common = {"kernel_name": "python3", "km": self.km, "kc": self.kc, "progress_bar": False}
        papermill.execute_notebook(reset, None, **common)
        papermill.execute_notebook(str(source), str(output) if output else None, parameters=parameters, cwd=str(repo_root()), **common)


def execute(run: StageRun, kernel: SharedKernel) -> float:
    """Run one notebook; the executed notebook lands in the run directory only once complete."""
    import papermill

    run.run_dir.path.mkdir(parents=True, exist_ok=True)
    tmp = run.run_dir.file(f".{EXECUTED}.tmp.ipynb")
    start = time.perf_counter()
    try:
        kernel.execute(NOTEBOOKS / f"{run.notebook}.ipynb", tmp, run.params)
    except papermill.PapermillExecutionError as err:
        failed = run.run_dir.file(FAILED)
        tmp.replace(failed)
        raise StageFailed(f"{run.label} failed with {err.ename}: {err.evalue}\n  executed notebook: {failed}") from None
    tmp.replace(run.run_dir.file(EXECUTED))
    run.run_dir.file(FAILED).unlink(missing_ok=True)
    return time.perf_counter() - start


def report_paths(study: StudyConfig, reports_dir: str | Path = "") -> dict[str, Path]:
    root = resolve_path(reports_dir or study.runtime.reports_dir)
    return {"root": root, "html": root / "report.html"}


def render_report(ctx: Context, params_file: Path, kernel: SharedKernel, reports_dir: str | Path = "") -> Path:
    """Execute 05_report into the artefacts and convert it to one self-contained HTML file (code hidden)."""
    import nbformat
    from nbconvert import HTMLExporter

    paths = report_paths(ctx.study, reports_dir)
    paths["root"].mkdir(parents=True, exist_ok=True)
    executed = ctx.artifacts / "report" / EXECUTED
    executed.parent.mkdir(parents=True, exist_ok=True)
    parameters = {"params_file": str(params_file), "artifacts": str(ctx.artifacts), "reports_dir": str(paths["root"])}
    kernel.execute(NOTEBOOKS / "05_report.ipynb", executed, parameters)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nbformat.read(str(executed), as_version=4))
    tmp = paths["html"].with_suffix(".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(paths["html"])
    return paths["html"]


README_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")


def update_readme(results: Path, readme: Path = repo_root() / "README.md") -> None:
    """Replace the README's results section by the report's ``results.md``: numbers come from the run, not a person."""
    start, end = README_MARKERS
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text or not results.exists():
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{results.read_text(encoding='utf-8').strip()}\n{end}{tail}", encoding="utf-8")


def run_study(params_file: str | Path, artifacts: str | Path = "", overrides: Iterable[str] = (), *,
              reports_dir: str | Path = "", echo=print, executor: str = "", wait: bool = False) -> dict[str, Any]:
    """The whole study: every unfinished stage run, then the report. Returns the timings it measured.

    ``executor`` (default ``runtime.executor``): ``local`` runs here; ``slurm`` submits jobs (see executors.py)
    and, with ``wait``, waits for them.
    """
    from .executors import check_executor, refuse_in_flight, run_on_cluster

    effective = effective_params(params_file, artifacts, overrides)
    ctx = Context.create(load_study(effective), artifacts)
    if check_executor(executor or ctx.study.runtime.executor) == "slurm":
        return run_on_cluster(ctx, effective, reports_dir=reports_dir, wait=wait, echo=echo)
    start = time.perf_counter()
    timings: list[dict[str, Any]] = []
    with exclusive(ctx.artifacts), SharedKernel() as kernel:
        runs = plan(ctx, effective)
        todo = [r for r in runs if not r.finished]
        refuse_in_flight(todo)
        echo(f"{len(runs)} stage runs, {len(runs) - len(todo)} already finished, {len(todo)} to run")
        for i, run in enumerate(todo, 1):
            echo(f"[{i}/{len(todo)}] {run.label}")
            wall = execute(run, kernel)
            timing = run.run_dir.read_json("timing.json") if run.run_dir.file("timing.json").exists() else {}
            timings.append({"label": run.label, "wall_seconds": wall, "stage_seconds": timing.get("seconds", 0.0)})
        summary = _timing_summary(ctx, start, runs, todo, timings)
        if todo:  # the report shows the times of the last run that did work; a rerun's go to timings-latest.json
            write_json(ctx.artifacts / "timings.json", summary)
        report_start = time.perf_counter()
        html = render_report(ctx, effective, kernel, reports_dir)
        summary.update(report_seconds=time.perf_counter() - report_start, report=str(html))
    summary["total_seconds"] = total = time.perf_counter() - start
    if todo:
        summary["orchestration_share"] = (summary["notebook_wall_seconds"] - summary["stage_seconds"]) / total
    write_json(ctx.artifacts / "timings" / f"{time.strftime('%Y%m%d-%H%M%S')}.json", summary)
    write_json(ctx.artifacts / "timings-latest.json", summary)
    if todo:
        write_json(ctx.artifacts / "timings.json", summary)
        from .report import open_report, summary_section

        summary_section(open_report(ctx, reports_dir))  # results.md with the final times, report included
    if ctx.study.runtime.readme_results:
        update_readme(html.parent / "results.md")
    echo(f"done in {total:.1f} s; report: {html}")
    return summary


def _timing_summary(ctx: Context, start: float, runs: list, todo: list, timings: list[dict]) -> dict[str, Any]:
    total = time.perf_counter() - start
    summary = {
        "study": ctx.study.name,
        "total_seconds": total,
        "stage_runs": len(runs),
        "executed": len(todo),
        "notebook_wall_seconds": sum(t["wall_seconds"] for t in timings),
        "stage_seconds": sum(t["stage_seconds"] for t in timings),
        "report_seconds": None,
        "runs": timings,
    }
    if todo:
        summary["orchestration_share"] = (summary["notebook_wall_seconds"] - summary["stage_seconds"]) / total
    return summary


def status(params_file: str | Path, artifacts: str | Path = "", overrides: Iterable[str] = ()) -> list[dict[str, str]]:
    """One row per stage run: done, running (another process holds the artefacts), partial, failed, or left;
    runs submitted to Slurm: done, queued, running or failed, from their run directories and Slurm's job states.
    Failed rows carry a ``detail``: the path of the failed notebook, or why the job ended."""
    from filelock import FileLock, Timeout

    from .executors import job_states

    effective = effective_params(params_file, artifacts, overrides)
    ctx = Context.create(load_study(effective), artifacts)
    busy = False
    lock = FileLock(str(ctx.artifacts / ".lock"))
    try:
        lock.acquire(timeout=0)
        lock.release()
    except Timeout:
        busy = True
    rows = []
    runs = plan(ctx, effective)
    jobs = job_states(runs)
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
        rows.append({**row, "detail": detail} if detail else row)
    return rows
