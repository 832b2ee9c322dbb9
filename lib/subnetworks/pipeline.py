"""Expand a params file into stage runs and execute each stage notebook with papermill into its run directory.

Finished runs are skipped before a kernel is started, so rerunning a finished study trains nothing and takes
seconds. The order is the dependency order data → prune → transfer, overlap → report.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from .config import ConfigError, StudyConfig, load_study, read_params, repo_root, resolve_path
from .stages import Context
from .store import ArtifactError, RunDir, atomic_write_bytes, exclusive, write_json

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
        """DONE and a whole executed notebook; a half-written one means the notebook is run again (the stage
        itself, being DONE, then returns at once)."""
        if not self.run_dir.done:
            return False
        try:
            json.loads(self.run_dir.file(EXECUTED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return True


def effective_params(params_file: str | Path, artifacts: str | Path = "", overrides: Iterable[str] = ()) -> Path:
    """The params file with ``--set key.sub=value`` overrides applied, written once under the artefacts.

    Notebooks receive this file, so every stage of one run sees exactly the same parameters.
    """
    study = load_study(params_file)  # validates the file itself first, with its own name in errors
    data = read_params(params_file)
    for item in overrides:
        _apply_override(data, item)
    text = yaml.safe_dump(data, sort_keys=True, allow_unicode=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    target = resolve_path(artifacts or study.runtime.artifacts) / "params" / f"{study.name}-{digest}.yaml"
    if not target.exists():
        try:
            atomic_write_bytes(target, text.encode("utf-8"))
        except OSError as err:
            raise ArtifactError(f"cannot write the artefacts directory {target.parent}: {err.strerror}: "
                                "choose another with --artifacts") from err
    load_study(target)
    return target


def _apply_override(data: dict, item: str) -> None:
    """One ``--set key.sub=value`` into the raw params; the value is read as YAML (``[0.5, 0.8]``, ``true``)."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise ConfigError(f"--set {item!r} must look like key.sub=value")
    node = data
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section of the params file")
    try:
        node[last] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: {raw!r} is not a YAML value ({str(err).splitlines()[0]})") from None


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

    def __init__(self, threads: int = 0):
        self.threads = threads  # torch/OpenMP threads in the kernel; 0 = its default

    def __enter__(self) -> "SharedKernel":
        from jupyter_client.manager import AsyncKernelManager
        from nbclient.util import run_sync

        env = dict(os.environ, **({"OMP_NUM_THREADS": str(self.threads)} if self.threads else {}))
        # Unix sockets in a directory of this kernel's own (where the OS has them), not TCP ports: jupyter_client
        # picks free ports that the kernel binds a moment later, so kernels starting together on one node (workers,
        # Slurm jobs) could pick the same one and one died with "Address already in use". Socket files in a private
        # directory cannot collide; a short name keeps their paths under the OS limit of about 100 characters.
        self._sockets = None if os.name == "nt" else tempfile.TemporaryDirectory(prefix="subnetworks-kernel-")
        sockets = {"transport": "ipc", "ip": os.path.join(self._sockets.name, "k")} if self._sockets else {}
        self.km = AsyncKernelManager(kernel_name="python3", **sockets)
        # no IPython history: a shared sqlite file that parallel kernels would lock, and one more write that can fail
        run_sync(self.km.start_kernel)(cwd=str(repo_root()), env=env, extra_arguments=["--HistoryManager.enabled=False"])
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=120)
        return self

    def __exit__(self, *exc) -> None:
        from nbclient.util import run_sync

        self.kc.stop_channels()
        run_sync(self.km.shutdown_kernel)(now=True)
        if self._sockets is not None:
            self._sockets.cleanup()

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


def execute_all(todo: list[StageRun], finished: Iterable[str], workers: int, threads: int, echo=print,
                kernel: SharedKernel | None = None) -> Iterator[tuple[StageRun, float]]:
    """Run ``todo``, each run once the runs it needs are finished; yields (run, wall seconds) as they finish.

    One worker runs the plan's order in ``kernel``. Several workers are threads that each own a kernel (with
    ``threads`` torch threads) for their whole life; they take the next ready run when free. A failed run stops new
    starts; runs already going finish (they are independent), then the first failure is raised."""
    if workers == 1:
        for i, run in enumerate(todo, 1):
            echo(f"[{i}/{len(todo)}] {run.label}")
            yield run, execute(run, kernel)
        return
    done, pending, outbox = set(finished), list(todo), queue.Queue()
    pool = [_Worker(threads, outbox) for _ in range(workers)]
    idle, busy, failure, started, running = [], 0, None, 0, Counter()
    for worker in pool:
        worker.start()
    try:
        while True:
            worker, run, result = outbox.get()  # a worker is ready, finished a run, or could not start its kernel
            if run is None and isinstance(result, BaseException):
                failure = failure or result
            else:
                idle.append(worker)
            if run is not None:
                busy -= 1
                running[_group(run)] -= 1
                if isinstance(result, BaseException):
                    failure = failure or result
                else:
                    done.add(run.label)
                    yield run, result
            ready = [r for r in pending if all(label in done for label in r.after)] if failure is None else []
            while idle and ready:
                run = _next(ready, running)
                pending.remove(run)
                started += 1
                echo(f"[{started}/{len(todo)}] {run.label}")
                busy += 1
                running[_group(run)] += 1
                idle.pop().inbox.put(run)
            if busy == 0:  # nothing running, so nothing more can become ready
                break
    finally:  # on an interrupt the workers are not waited for: their kernels exit with this process
        for worker in pool:
            worker.inbox.put(None)
    for worker in pool:
        worker.join()
    if failure is not None:
        raise failure
    if pending:
        raise StageFailed(f"runs wait for runs that are neither planned nor finished: {[r.label for r in pending]}")


def _group(run: StageRun) -> tuple[str, str]:
    return run.notebook, run.params.get("task", "")


def _next(ready: list[StageRun], running: Counter) -> StageRun:
    """The first ready run of a stage and task that no worker runs now, else the first ready run: runs of one stage
    and task would wait for the same one-off setup (the demo's MLM head is fitted by the first MLM run) and stall."""
    run = next((r for r in ready if running[_group(r)] <= 0), ready[0])
    ready.remove(run)
    return run


class _Worker(threading.Thread):
    """A thread with its own kernel: takes runs from its inbox, puts (itself, run, wall seconds or error) out."""

    def __init__(self, threads: int, outbox: queue.Queue):
        super().__init__(daemon=True)
        self.threads, self.outbox, self.inbox = threads, outbox, queue.Queue()

    def run(self) -> None:
        try:
            with SharedKernel(self.threads) as kernel:
                self.outbox.put((self, None, None))
                while (run := self.inbox.get()) is not None:
                    try:
                        self.outbox.put((self, run, execute(run, kernel)))
                    except Exception as err:  # noqa: BLE001 - handed to the scheduler, raised there
                        self.outbox.put((self, run, err))
        except Exception as err:  # noqa: BLE001
            self.outbox.put((self, None, err))


def report_paths(study: StudyConfig, reports_dir: str | Path = "") -> dict[str, Path]:
    root = resolve_path(reports_dir or study.runtime.reports_dir)
    return {"root": root, "html": root / "report.html"}


def render_report(ctx: Context, params_file: Path, kernel: SharedKernel, reports_dir: str | Path = "") -> Path:
    """Execute 05_report into the artefacts and convert it to one self-contained HTML file (code hidden)."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    paths = report_paths(ctx.study, reports_dir)
    paths["root"].mkdir(parents=True, exist_ok=True)
    executed = ctx.artifacts / "report" / EXECUTED
    executed.parent.mkdir(parents=True, exist_ok=True)
    parameters = {"params_file": str(params_file), "artifacts": str(ctx.artifacts), "reports_dir": str(paths["root"])}
    try:
        kernel.execute(NOTEBOOKS / "05_report.ipynb", executed, parameters)
    except papermill.PapermillExecutionError as err:
        raise StageFailed(f"report failed with {err.ename}: {err.evalue}\n  executed notebook: {executed}") from None
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nbformat.read(str(executed), as_version=4))
    atomic_write_bytes(paths["html"], body.encode("utf-8"))
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


def publish_results(ctx: Context, html: Path, readme: Path = repo_root() / "README.md") -> None:
    """Copy the report's ``results.md`` into the README when the study asks for it (the demo), after ``run`` and
    after ``report`` alike, so the README never shows older numbers than the report."""
    if ctx.study.runtime.readme_results:
        update_readme(html.parent / "results.md", readme)


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
    workers = ctx.study.runtime.workers
    with exclusive(ctx.artifacts), ExitStack() as stack:
        runs = plan(ctx, effective)
        todo = [r for r in runs if not r.finished]
        refuse_in_flight(todo)
        echo(f"{len(runs)} stage runs, {len(runs) - len(todo)} already finished, {len(todo)} to run"
             + (f" on {workers} workers" if workers > 1 and todo else ""))
        threads = ctx.study.runtime.num_threads or (max(1, len(os.sched_getaffinity(0)) // workers) if workers > 1 else 0)
        kernel = stack.enter_context(SharedKernel()) if workers == 1 or not todo else None
        finished = [r.label for r in runs if r.finished]
        for run, wall in execute_all(todo, finished, workers if todo else 1, threads, echo, kernel):
            timing = run.run_dir.read_json("timing.json") if run.run_dir.file("timing.json").exists() else {}
            timings.append({"label": run.label, "wall_seconds": wall, "stage_seconds": timing.get("seconds", 0.0)})
        kernel = kernel or stack.enter_context(SharedKernel())
        summary = _timing_summary(ctx, start, runs, todo, timings)
        if todo:  # the report shows the times of the last run that did work; a rerun's go to timings-latest.json
            write_json(ctx.artifacts / "timings.json", summary)
        report_start = time.perf_counter()
        html = render_report(ctx, effective, kernel, reports_dir)
        summary.update(report_seconds=time.perf_counter() - report_start, report=str(html))
    summary["total_seconds"] = total = time.perf_counter() - start
    if todo:
        summary["orchestration_share"] = _orchestration_share(summary, total, workers)
    write_json(ctx.artifacts / "timings" / f"{time.strftime('%Y%m%d-%H%M%S')}.json", summary)
    write_json(ctx.artifacts / "timings-latest.json", summary)
    if todo:
        write_json(ctx.artifacts / "timings.json", summary)
        from .report import open_report, summary_section

        summary_section(open_report(ctx, reports_dir))  # results.md with the final times, report included
    publish_results(ctx, html)
    echo(f"done in {total:.1f} s; report: {html}")
    return summary


def _timing_summary(ctx: Context, start: float, runs: list, todo: list, timings: list[dict]) -> dict[str, Any]:
    total = time.perf_counter() - start
    summary = {
        "study": ctx.study.name,
        "total_seconds": total,
        "stage_runs": len(runs),
        "executed": len(todo),
        "workers": ctx.study.runtime.workers,
        "notebook_wall_seconds": sum(t["wall_seconds"] for t in timings),
        "stage_seconds": sum(t["stage_seconds"] for t in timings),
        "report_seconds": None,
        "runs": timings,
    }
    if todo:
        summary["orchestration_share"] = _orchestration_share(summary, total, ctx.study.runtime.workers)
    return summary


def _orchestration_share(summary: dict[str, Any], total: float, workers: int) -> float:
    """Worker time spent outside the stages themselves (kernel reset, papermill, notebook IO) over all workers' time."""
    return (summary["notebook_wall_seconds"] - summary["stage_seconds"]) / (workers * total)


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
