"""The time-left estimate that ``run`` prints at every start and ``status`` prints below its rows."""

from __future__ import annotations

import re

import pytest

from subnetworks.run.progress import RunClock, duration, group_of
from subnetworks.run.status import time_left_line


def test_a_group_is_the_label_without_its_language():
    assert group_of("prune/mlm/en/seed57") == group_of("prune/mlm/zh/seed57") == "prune/mlm/*/seed57"
    assert group_of("transfer/ner/de/sp0.8/seed57") == "transfer/ner/*/sp0.8/seed57"
    assert group_of("prune/mlm/en/seed58") != group_of("prune/mlm/en/seed57")  # the seed scoring controls costs more
    assert group_of("data/xnli/ur") == "data/xnli/*" and group_of("overlap/xnli") == "overlap/xnli"


def test_estimates_come_from_the_most_alike_measured_runs():
    clock = RunClock([], 1, {"prune/mlm/en/seed57": 300.0, "prune/mlm/de/seed58": 100.0, "data/mlm/en": 10.0})
    assert clock.estimate("prune/mlm/zh/seed57") == 300.0  # same stage, task and seed, another language
    assert clock.estimate("prune/mlm/zh/seed59") == 200.0  # the task's prune runs: no seed-59 run measured yet
    assert clock.estimate("data/ner/de") == 10.0  # another task's data run: the only data run measured
    assert clock.estimate("overlap/ner") is None  # no overlap run measured: a data or IMP run says nothing about it
    clock.finished("prune/mlm/ur/seed57", 500.0)  # measured now: weighs in with the earlier runs of its group
    assert clock.estimate("prune/mlm/zh/seed57") == 400.0
    assert RunClock(["data/mlm/en"], 2).estimate("data/mlm/en") is None  # nothing measured: no estimate


def test_a_run_measured_in_an_earlier_attempt_comes_before_its_task():
    clock = RunClock([], 1, {"transfer/ner/en/sp0.5/seed57": 80.0, "transfer/ner/de/sp0.8/seed57": 20.0})
    assert clock.estimate("transfer/ner/en/sp0.5/seed57") == 80.0
    assert clock.estimate("transfer/ner/ur/sp0.8/seed57") == 20.0


def test_no_time_left_is_promised_while_a_stage_left_to_run_is_unmeasured():
    clock = RunClock(["data/ner/de", "prune/ner/en/seed57", "transfer/ner/en/sp0.5/seed57"], 2)
    assert clock.line(1, 4, "data/ner/en").endswith("s elapsed)")  # nothing measured: nothing to say
    clock.finished("data/ner/de", 12.0)
    assert clock.left_seconds() is None and clock.unmeasured_stages() == ["prune", "transfer"]
    line = clock.line(2, 4, "prune/ner/en/seed57")
    assert line.endswith("elapsed; time left known once a prune run and a transfer run have finished)"), line
    clock.finished("prune/ner/en/seed57", 300.0)
    clock.finished("transfer/ner/en/sp0.5/seed57", 100.0)
    assert clock.left_seconds() is None and clock.line(4, 4, "overlap/ner").endswith("s elapsed)")  # all done


def test_time_left_shrinks_as_runs_finish_and_is_shared_by_the_workers():
    todo = ["prune/ner/en/seed57", "prune/ner/de/seed57", "prune/ner/ur/seed57", "prune/ner/zh/seed57"]
    clock = RunClock(todo, 2)
    assert clock.left_seconds() is None
    assert re.fullmatch(r"\[1/4\] prune/ner/en/seed57  \(\d+ s elapsed\)", clock.line(1, 4, todo[0]))
    clock.finished(todo[0], 120.0)
    assert clock.left_seconds() == 3 * 120.0 / 2
    clock.finished(todo[1], 60.0)
    assert clock.left_seconds() == 2 * 90.0 / 2
    assert clock.line(3, 4, todo[2]).endswith("elapsed, about 2 min left)")  # 90 s


@pytest.mark.parametrize(
    "seconds, text", [(42.4, "42 s"), (89, "89 s"), (90, "2 min"), (59 * 60, "59 min"), (3900, "1 h 05 min")]
)
def test_durations_are_as_precise_as_an_estimate(seconds, text):
    assert duration(seconds) == text


def test_status_says_how_long_what_is_left_should_take():
    rows = [
        {"run": "data/ner/en", "state": "done", "seconds": 30.0},
        {"run": "data/ner/de", "state": "left"},
        {"run": "data/ner/ur", "state": "left"},
    ]
    assert time_left_line(rows, 1) == "about 60 s left on 1 worker(s), from the 1 finished runs' times"
    assert time_left_line([{**r, "state": "done", "seconds": 1.0} for r in rows], 1) == ""  # all done
    assert time_left_line([{**r, "state": "left"} for r in rows], 1) == ""  # nothing measured yet
    rows.append({"run": "prune/ner/en/seed57", "state": "left"})
    assert time_left_line(rows, 1) == "time left known once a prune run has finished"
