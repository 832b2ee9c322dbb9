"""Local execution of stage runs: in plan order in one kernel, or on several workers that each own a kernel and
take the next run whose upstream runs are finished."""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from .kernel import SharedKernel
from .live import OFF, LiveProgress
from .stage_runs import StageFailed, StageRun, execute


def execute_all(
    todo: list[StageRun],
    finished: Iterable[str],
    workers: int,
    threads: int,
    echo=print,
    kernel: SharedKernel | None = None,
    describe: Callable[[int, int, str], str] = lambda i, n, label: f"[{i}/{n}] {label}",
    live: LiveProgress = OFF,
) -> Iterator[tuple[StageRun, float]]:
    """Run ``todo``, each run once the runs it needs are finished; yields (run, wall seconds) as they finish.

    One worker runs the plan's order in ``kernel``. Several workers are threads that each own a kernel (with
    ``threads`` torch threads) for their whole life; they take the next ready run when free. A failed run stops new
    starts; runs already going finish (they are independent), then the first failure is raised. ``describe`` words the
    line echoed when a run starts (its number, how many, its label); ``live`` shows what the runs going now do."""
    if workers == 1:
        for i, run in enumerate(todo, 1):
            echo(describe(i, len(todo), run.label))
            yield run, _execute(run, kernel, live)
        return
    done, pending, outbox = set(finished), list(todo), queue.Queue()
    pool = [_Worker(threads, outbox, live) for _ in range(workers)]
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
                echo(describe(started, len(todo), run.label))
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


def _execute(run: StageRun, kernel: SharedKernel, live: LiveProgress) -> float:
    with live.showing(run.label) as progress:
        return execute(run, kernel, progress)


def _group(run: StageRun) -> tuple[str, str]:
    return run.stage, run.task


def _next(ready: list[StageRun], running: Counter) -> StageRun:
    """The first ready run of a stage and task that no worker runs now, else the first ready run: runs of one stage
    and task would wait for the same one-off setup (the demo's MLM head is fitted by the first MLM run) and stall."""
    run = next((r for r in ready if running[_group(r)] <= 0), ready[0])
    ready.remove(run)
    return run


class _Worker(threading.Thread):
    """A thread with its own kernel: takes runs from its inbox, puts (itself, run, wall seconds or error) out."""

    def __init__(self, threads: int, outbox: queue.Queue, live: LiveProgress):
        super().__init__(daemon=True)
        self.threads, self.outbox, self.live, self.inbox = threads, outbox, live, queue.Queue()

    def run(self) -> None:
        try:
            with SharedKernel(self.threads) as kernel:
                self.outbox.put((self, None, None))
                while (run := self.inbox.get()) is not None:
                    try:
                        self.outbox.put((self, run, _execute(run, kernel, self.live)))
                    except Exception as err:  # noqa: BLE001 - handed to the scheduler, raised there
                        self.outbox.put((self, run, err))
        except Exception as err:  # noqa: BLE001
            self.outbox.put((self, None, err))
