"""Elapsed time and an estimate of the time left, for ``run``'s line per started stage run and for ``status``.

A stage run is estimated from the measured seconds of finished runs like it: the same stage, task, sparsity and
seed in another language first (a seed that scores the controls costs more than one that does not), then this run's
own time in an earlier attempt, then any run of its stage and task, then any run of its stage. Until every stage
left to run has a measured run there is no estimate (a data run says nothing about an IMP run): the line names the
stages still unmeasured instead.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from statistics import mean


def group_of(label: str) -> str:
    """A run's label without its language: ``prune/mlm/en/seed57`` → ``prune/mlm/*/seed57`` (data, prune and
    transfer labels name the language third; overlap labels name none)."""
    parts = label.split("/")
    if parts[0] in ("data", "prune", "transfer") and len(parts) > 2:
        parts[2] = "*"
    return "/".join(parts)


def unmeasured_phrase(stages: list[str]) -> str:
    """``time left known once a prune run and an overlap run have finished``."""
    runs = " and ".join(f"{'an' if s[0] in 'aeiou' else 'a'} {s} run" for s in stages)
    return f"time left known once {runs} {'has' if len(stages) == 1 else 'have'} finished"


def _task_of(label: str) -> str:
    return "/".join(label.split("/")[:2])


def _stage_of(label: str) -> str:
    return label.split("/")[0]


def duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``1 h 05 min``: as precise as a estimate deserves."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class RunClock:
    """Times the runs of one ``run`` call; ``known`` holds the seconds of runs measured before (a resumed study)."""

    def __init__(self, todo: Iterable[str], workers: int, known: Mapping[str, float] = ()):
        self.start = time.perf_counter()
        self.workers = max(1, workers)
        self.left = list(todo)
        self.known = dict(known)
        self.measured: dict[str, float] = {}

    def finished(self, label: str, seconds: float) -> None:
        self.measured[label] = seconds
        if label in self.left:
            self.left.remove(label)

    def estimate(self, label: str) -> float | None:
        """Seconds ``label`` should take, by the order in the module's docstring; None when no run of its stage has
        been measured."""
        by_group, by_task, by_stage = defaultdict(list), defaultdict(list), defaultdict(list)
        for other, seconds in {**self.known, **self.measured}.items():
            by_group[group_of(other)].append(seconds)
            by_task[_task_of(other)].append(seconds)
            by_stage[_stage_of(other)].append(seconds)
        for candidates in (
            by_group.get(group_of(label)),
            [self.known[label]] if label in self.known else None,
            by_task.get(_task_of(label)),
            by_stage.get(_stage_of(label)),
        ):
            if candidates:
                return mean(candidates)
        return None

    def unmeasured_stages(self) -> list[str]:
        """The stages of the runs left that no finished run has measured yet, in the order they come."""
        return list(dict.fromkeys(_stage_of(label) for label in self.left if self.estimate(label) is None))

    def left_seconds(self) -> float | None:
        """Wall seconds the runs not yet finished should take on the workers; None while a stage is unmeasured."""
        if not self.left or self.unmeasured_stages():
            return None
        return sum(self.estimate(label) for label in self.left) / self.workers

    def line(self, index: int, total: int, label: str) -> str:
        """``[12/75] prune/mlm/de/seed58  (14 min elapsed, about 31 min left)``."""
        when = f"{duration(time.perf_counter() - self.start)} elapsed"
        left, unmeasured = self.left_seconds(), self.unmeasured_stages()
        if left is not None:
            when += f", about {duration(left)} left"
        elif unmeasured and (self.measured or self.known):
            when += f"; {unmeasured_phrase(unmeasured)}"
        return f"[{index}/{total}] {label}  ({when})"
