#!/usr/bin/env python3
"""Kill the smoke study with SIGKILL at random moments, rerun it each time, and check that nothing was lost.

    .venv/bin/python tests/support/kill_harness.py --kills 20 --seed 0 [--artifacts DIR]
    .venv/bin/python tests/support/kill_harness.py --kills 3 --languages en ur --tasks xnli   # what the tests run

1. One uninterrupted reference run of the smoke study (``python -m subnetworks run``) into ``DIR/reference``. Its
   ``timings.json`` (start-up, per stage run, report) calibrates where kills land.
2. Kills are planned over every stage: at least one in start-up, data, prune, transfer, overlap and report when
   ``--kills`` allows, the rest spread in proportion to each stage's share of the reference run. A kill aimed at a
   stage run waits until the runner announces that run (``[i/n] label``), then waits a random delay drawn uniformly
   over that run's reference wall time (if the run ends sooner, the kill lands in the next one); a report kill
   waits for the report to start, then a delay drawn over half the report's reference time (a margin for a machine
   that got faster); a start-up kill fires a random delay after launch.
3. Into ``DIR/killed`` the study is launched (in its own session) and killed with ``os.killpg(SIGKILL)``, once per
   planned kill, then launched a last time and left to finish. Each time the stage notebooks' kernel (its own
   session, started by jupyter_client) must exit by itself within a grace period; one that outlives it is an
   orphan: reported as a defect, then killed by its pid.
4. During the last launch the runner and its kernel are frozen (SIGSTOP) while a second ``run`` on the same
   artefacts directory is started: it must refuse at once (exit 2, one ``error:`` line naming the other run) and
   write nothing.
5. Checks: every launch that was not killed finished; no stage run announced in a launch was already finished
   when it started; no file of a finished run or IMP level (a directory holding ``DONE``) changed after ``DONE``
   appeared (recorded after every launch); every finished directory is complete and readable after every kill;
   and the final masks (unpacked bits and metadata), metrics (without timing fields), data statistics, datasets
   and overlap tables are identical to the reference run's.

Prints a summary (kills, kills per stage, runs finished, differences, total time); exits 1 if a check failed.
``run_harness`` returns the same summary as a dict (the test suite's fast version calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import yaml
from safetensors.numpy import load_file

from subnetworks.core.maskio import load_mask
from subnetworks.core.masks import MaskError
from subnetworks.demo.smoke import keep_tasks, write_smoke_params
from subnetworks.run.stage_runs import stage_runs
from subnetworks.spec import PruneConfig, load_study
from subnetworks.study.layout import IMP, Layout, mask_file

ROOT = Path(__file__).resolve().parents[2]
MASK_FILES = [mask_file(kind) for kind in (IMP, *PruneConfig().controls)]  # in every IMP level after the first
STAGES = ("startup", "data", "prune", "transfer", "overlap", "report")
TIMING_KEYS = {"train_seconds", "seconds", "wall_seconds"}  # differ between runs of the same work
SKIP_FILES = {"env.json", "timing.json", "notebook.ipynb", "notebook.failed.ipynb"}  # machine, clock, notebook
GRACE_SECONDS = 5.0  # an orphaned kernel notices its parent's death within ~1 s (ipykernel's parent poller)
LABEL = re.compile(r"^\[(\d+)/(\d+)\] (\S+)(?:  \(.*\))?$")  # the label, then the time elapsed and left
PLANNED = re.compile(r"^(\d+) stage runs, (\d+) already finished, (\d+) to run$")


def study_params(root: Path, languages: list[str] | None = None, tasks: list[str] | None = None) -> Path:
    """The smoke study's params (as tests/run/test_pipeline.py's), optionally cut to fewer languages and tasks."""
    path = write_smoke_params(root)
    if languages or tasks:
        data = yaml.safe_load(path.read_text())
        if languages:
            data["languages"] = list(languages)
            for task in data["tasks"].values():
                if task.get("languages"):
                    task["languages"] = [lang for lang in task["languages"] if lang in languages]
        if tasks:
            keep_tasks(data, tasks)
        path.write_text(yaml.safe_dump(data))
    return path


def env_for(cache: Path) -> dict[str, str]:
    """What every launched command runs with: one thread, offline, unbuffered, its own datasets cache."""
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        HF_DATASETS_CACHE=str(cache),
        MPLBACKEND="Agg",
    )


def run_command(params: Path, artifacts: Path, reports: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "subnetworks",
        "run",
        str(params),
        "--artifacts",
        str(artifacts),
        "--reports",
        str(reports),
    ]


# --- processes ------------------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def children(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of the direct children of ``pid`` (the runner's kernel), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st and st[1] == pid:
                found.append((int(entry.name), st[2]))
    return found


def alive(pid: int, started: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == started and st[0] not in ("Z", "X")


class Launch:
    """One ``run`` of the study in its own session, its stdout read line by line as it comes."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path):
        self.t0 = time.monotonic()
        self.log = log
        self.stderr = open(log.with_suffix(".stderr"), "w")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.stderr, text=True, start_new_session=True
        )
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with open(self.log, "w") as out:
            for line in self.proc.stdout:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                out.write(line)
                out.flush()

    def labels(self) -> list[tuple[float, str, int, int]]:
        """(time, label, i, n) of every stage run this launch announced."""
        found = []
        for t, line in list(self.lines):
            m = LABEL.match(line)
            if m:
                found.append((t, m.group(3), int(m.group(1)), int(m.group(2))))
        return found

    def planned(self) -> tuple[int, int, int] | None:
        for _, line in list(self.lines):
            m = PLANNED.match(line)
            if m:
                return int(m.group(1)), int(m.group(2)), int(m.group(3))
        return None

    @property
    def exited(self) -> bool:
        return self.proc.poll() is not None

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
            self.lines.append((time.monotonic(), f"harness: timed out after {timeout:.0f} s"))
        self._reader.join(10)
        self.stderr.close()
        return rc

    def kill(self) -> dict[str, Any]:
        """SIGKILL the runner's process group; then watch its kernel, which lives in a session of its own."""
        kernels = children(self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        start, linger, orphans = time.monotonic(), 0.0, []
        pending = [k for k in kernels if alive(*k)]
        while pending and time.monotonic() - start < GRACE_SECONDS:
            time.sleep(0.02)
            pending = [k for k in pending if alive(*k)]
            linger = time.monotonic() - start
        for pid, started in pending:  # outlived the grace period: an orphan that may still write artefacts
            orphans.append(pid)
            try:
                os.killpg(pid, signal.SIGKILL)  # the kernel leads its own session (jupyter_client's start_new_session)
            except ProcessLookupError:
                pass
            while alive(pid, started):
                time.sleep(0.05)
        self._reader.join(10)  # the kernel shares the runner's stdout: EOF once both are gone
        self.stderr.close()
        return {
            "kernels": len(kernels),
            "kernel_linger_seconds": round(linger, 2) if kernels else None,
            "orphans": orphans,
        }


# --- artefacts ------------------------------------------------------------------------------------------------
def done_dirs(artifacts: Path) -> list[Path]:
    return sorted(p.parent for p in artifacts.rglob("DONE"))


def _own_files(directory: Path) -> list[Path]:
    """The files a finished directory owns: its own and its subfolders' (datasets), not those of nested runs."""
    out = []
    for p in sorted(directory.iterdir()):
        if p.name.startswith(".") or p.name in ("notebook.ipynb", "notebook.failed.ipynb"):
            continue  # temporaries; the notebook is written after DONE, by the runner
        if p.is_dir():
            if not (p / "DONE").exists():
                out += [q for q in sorted(p.rglob("*")) if q.is_file() and not q.name.startswith(".")]
        else:
            out.append(p)
    return out


def finished_files(artifacts: Path) -> dict[str, tuple[int, int, int]]:
    """(mtime_ns, inode, size) of every file owned by a finished run or level, DONE included."""
    stats = {}
    for d in done_dirs(artifacts):
        for f in _own_files(d):
            st = f.stat()
            stats[str(f.relative_to(artifacts))] = (st.st_mtime_ns, st.st_ino, st.st_size)
    return stats


EXPECTED = {  # what a finished directory must hold, by the shape of its path
    "data": ("stats.json", "raw/dataset_dict.json", "encoded/dataset_dict.json"),
    "prune": ("metrics.json", "params.json"),
    "level": ("metrics.json",),
    "control": ("metrics.json",),  # a control scored inside an IMP level
    "transfer": ("metrics.json",),
    "target": ("metrics.json",),
    "overlap": ("pairwise.csv", "shared.csv", "controls.csv"),
}


def _kind(rel: Path) -> str:
    name = rel.name
    if name.startswith("level_"):
        return "level"
    if rel.parent.name.startswith("level_"):
        return "control"
    if "_to_" in name:
        return "target"
    return rel.parts[0]


def check_finished(artifacts: Path) -> list[str]:
    """Problems with finished directories: an expected file missing, or one that does not parse or load."""
    problems = []
    for d in done_dirs(artifacts):
        rel = d.relative_to(artifacts)
        for name in EXPECTED.get(_kind(rel), ()):
            if not (d / name).exists():
                problems.append(f"{rel}: finished but {name} is missing")
        if _kind(rel) == "level" and rel.name != "level_00":
            problems += [f"{rel}: finished but {m} is missing" for m in MASK_FILES if not (d / m).exists()]
        for f in [d / "notebook.ipynb", *_own_files(d)]:
            if not f.exists():
                continue
            try:
                if f.suffix in (".json", ".ipynb") and f.parent == d:
                    json.loads(f.read_text(encoding="utf-8"))
                elif f.suffix == ".safetensors":
                    load_mask(f) if f.name in MASK_FILES else _load_tensors(f)
                elif f.suffix == ".csv":
                    pd.read_csv(f)
                elif f.name == "dataset_dict.json":
                    ds = datasets.load_from_disk(str(f.parent))
                    if not all(len(split) for split in ds.values()):
                        raise ValueError("an empty split")
            except (ValueError, OSError, MaskError, RuntimeError) as err:
                problems.append(f"{f.relative_to(artifacts)}: unreadable in a finished directory ({err})")
    return problems


def _load_tensors(path: Path) -> dict:
    return load_file(str(path))


def _strip(obj: Any, root: str) -> Any:
    """A JSON value without timing fields, with the artefacts root of absolute paths replaced by a placeholder."""
    if isinstance(obj, dict):
        return {k: _strip(v, root) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_strip(v, root) for v in obj]
    if isinstance(obj, str):
        return obj.replace(root, "<artifacts>")
    return obj


def _mask_view(path: Path) -> tuple[dict, dict]:
    mask = load_mask(path)
    return {n: t.numpy().tobytes() for n, t in mask.tensors.items()}, dict(mask.meta)


def _dataset_view(folder: Path) -> dict:
    ds = datasets.load_from_disk(str(folder))
    return {split: (ds[split].features.to_dict(), ds[split].to_dict()) for split in ds}


def _comparable(artifacts: Path, subdirs: tuple[str, ...]) -> dict[str, Path]:
    """The result files under ``subdirs`` (the stages' folders), keyed by path relative to ``artifacts``."""
    out = {}
    for stage in subdirs:
        for f in sorted((artifacts / stage).rglob("*")):
            rel = f.relative_to(artifacts)
            if not f.is_file() or any(part.startswith(".") for part in rel.parts) or f.name in SKIP_FILES:
                continue
            dataset = next((p for p in f.parents if (p / "dataset_dict.json").exists()), None)
            if dataset is not None:  # a saved dataset: compared as data, once
                out.setdefault(str(dataset.relative_to(artifacts)), dataset)
                continue
            out[str(rel)] = f
    return out


def compare(
    reference: Path, other: Path, subdirs: tuple[str, ...] = ("data", "prune", "transfer", "overlap")
) -> tuple[list[str], dict[str, int]]:
    """Differences between the results of two artefacts directories (or two run directories, with ``subdirs=("",)``),
    and how many files of each kind were compared."""
    a, b = _comparable(reference, subdirs), _comparable(other, subdirs)
    diffs = [f"only in the reference: {k}" for k in sorted(set(a) - set(b))]
    diffs += [f"only in the other: {k}" for k in sorted(set(b) - set(a))]
    counts: dict[str, int] = {}
    for key in sorted(set(a) & set(b)):
        fa, fb = a[key], b[key]
        if fa.is_dir():
            kind, same = "datasets", _dataset_view(fa) == _dataset_view(fb)
        elif fa.suffix == ".safetensors":
            kind, same = "masks", _mask_view(fa) == _mask_view(fb)
        elif fa.suffix == ".json":
            kind = "metrics" if fa.name == "metrics.json" else "json"
            ja, jb = (json.loads(f.read_text()) for f in (fa, fb))
            same = _strip(ja, str(reference)) == _strip(jb, str(other))
        else:
            kind, same = fa.suffix.lstrip(".") or fa.name, fa.read_bytes() == fb.read_bytes()
        counts[kind] = counts.get(kind, 0) + 1
        if not same:
            diffs.append(f"differs: {key}")
    return diffs, counts


# --- planning kills -------------------------------------------------------------------------------------------
def stage_of(label: str) -> str:
    return label.split("/", 1)[0]


@dataclass
class Calibration:
    """From the reference run: seconds of start-up, of each stage run (in plan order), and of the report."""

    startup: float
    runs: list[tuple[str, float]]
    report: float
    total: float

    @classmethod
    def from_timings(cls, timings: dict[str, Any]) -> Calibration:
        runs = [(r["label"], r["wall_seconds"]) for r in timings["runs"]]
        total = timings["total_seconds"]
        report = timings.get("report_seconds") or 0.2 * total  # None if the run was killed in its report
        startup = max(1.0, total - timings["notebook_wall_seconds"] - report)
        return cls(startup, runs, report, total)

    def stage_seconds(self) -> dict[str, float]:
        seconds = {s: 0.0 for s in STAGES}
        seconds["startup"], seconds["report"] = self.startup, self.report
        for label, wall in self.runs:
            seconds[stage_of(label)] += wall
        return seconds


@dataclass
class Kill:
    stage: str  # where it is aimed
    label: str | None = None  # the stage run it is aimed at
    delay: float = 0.0  # seconds after that run (the report, the launch) starts
    landed: str | None = None  # where it landed
    landed_label: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def plan_kills(cal: Calibration, kills: int, rng: random.Random) -> list[Kill]:
    """``kills`` kills, at least one per stage where possible, the rest in proportion to each stage's time."""
    seconds = cal.stage_seconds()
    priority = ["prune", "transfer", "report", "data", "overlap", "startup"]  # when there are fewer kills than stages
    stages = [s for s in priority if seconds[s] > 0][:kills]
    weights = [seconds[s] for s in STAGES]
    stages += rng.choices(STAGES, weights=weights, k=kills - len(stages))
    plan = []
    for stage in stages:
        if stage == "startup":
            plan.append(Kill(stage, delay=rng.uniform(0.0, cal.startup)))
        elif stage == "report":
            plan.append(Kill(stage, delay=rng.uniform(0.0, 0.5 * cal.report)))  # margin: a faster report escapes
        else:
            label, wall = rng.choice([r for r in cal.runs if stage_of(r[0]) == stage])
            plan.append(Kill(stage, label, rng.uniform(0.0, wall)))
    order = {label: i for i, (label, _) in enumerate(cal.runs)}
    rank = {"startup": -1, "report": len(order)}
    return sorted(plan, key=lambda k: rank.get(k.stage, order.get(k.label, 0)))


# --- the harness ----------------------------------------------------------------------------------------------
class Harness:
    def __init__(self, root: Path, params: Path, seed: int, echo=print):
        self.root, self.params, self.echo = root, params, echo
        self.rng = random.Random(seed)
        self.reference = root / "reference" / "artifacts"
        self.killed = root / "killed" / "artifacts"
        self.launches: list[dict[str, Any]] = []
        self.recomputed: list[str] = []
        self.incomplete: list[str] = []
        self.first_seen: dict[str, tuple[int, int, int]] = {}
        self.run_dirs: dict[str, Path] = {}

    def _cmd(self, which: str) -> list[str]:
        return run_command(self.params, self.root / which / "artifacts", self.root / which / "reports")

    def _env(self, which: str) -> dict[str, str]:
        return env_for(self.root / which / "hf-datasets-cache")

    def run_reference(self, timeout: float) -> Calibration:
        start = time.monotonic()
        launch = Launch(self._cmd("reference"), self._env("reference"), self.root / "reference.log")
        rc = launch.wait(timeout)
        if rc != 0:
            raise RuntimeError(f"the reference run failed (exit {rc}): see {launch.log} and its .stderr")
        self.reference_seconds = time.monotonic() - start
        cal = Calibration.from_timings(json.loads((self.reference / "timings.json").read_text()))
        self.run_dirs = self._run_dirs()
        return cal

    def _run_dirs(self) -> dict[str, Path]:
        """Each stage run's directory relative to the artefacts root (the same in both: same params, same keys)."""
        (effective,) = (self.reference / "params").glob("*.yaml")
        layout = Layout(load_study(effective), self.reference)
        return {r.label: r.run_dir.path.relative_to(self.reference) for r in stage_runs(layout, effective)}

    def finished(self, label: str) -> bool:
        d = self.killed / self.run_dirs[label]
        return (d / "DONE").exists() and (d / "notebook.ipynb").exists()

    def phase(self, launch: Launch) -> tuple[str, str | None]:
        """Where a launch is now: start-up, the stage of the run it announced last, or the report."""
        planned = launch.planned()
        labels = launch.labels()
        if planned and planned[2] == 0:
            return "report", None
        if not labels:
            return "startup", None
        _, label, i, n = labels[-1]
        if i == n and self.finished(label):
            return "report", None
        return stage_of(label), label

    def _report_started(self, launch: Launch) -> float | None:
        planned, labels = launch.planned(), launch.labels()
        if planned and planned[2] == 0:
            return next(t for t, line in launch.lines if PLANNED.match(line))
        if labels and labels[-1][2] == labels[-1][3] and self.finished(labels[-1][1]):
            return time.monotonic()
        return None

    def _wait_for_trigger(self, launch: Launch, kill: Kill, cal: Calibration, order: dict[str, int]) -> float | None:
        """When to kill (a monotonic time), or None if the launch exited first."""
        walls = dict(cal.runs)
        fire = launch.t0 + kill.delay if kill.stage == "startup" else None
        while not launch.exited:
            now = time.monotonic()
            if fire is not None:
                if now >= fire:
                    return fire
            elif kill.stage == "report":
                started = self._report_started(launch)
                if started is not None:
                    fire = started + kill.delay
            else:
                for t, label, _, _ in launch.labels():
                    if order[label] >= order[kill.label]:
                        if stage_of(label) == kill.stage:
                            fire = t + (kill.delay if label == kill.label else self.rng.uniform(0.0, walls[label]))
                        else:  # the aimed stage is already finished: kill in whatever runs now
                            fire = t + self.rng.uniform(0.0, walls[label])
                        break
                else:
                    started = self._report_started(launch)
                    if started is not None:
                        fire = started + self.rng.uniform(0.0, 0.5 * cal.report)
            time.sleep(0.01)
        return None

    def _check_launch(self, launch: Launch, done_before: set[str]) -> None:
        """No announced run was finished when the launch began; no finished file changed; all finished dirs whole."""
        for _, label, _, _ in launch.labels():
            if label in done_before:
                self.recomputed.append(f"launch {len(self.launches)}: {label} was finished but ran again")
        now = finished_files(self.killed)
        for key, st in self.first_seen.items():
            if now.get(key) != st:
                what = "deleted" if key not in now else "rewritten"
                self.recomputed.append(f"launch {len(self.launches)}: {key} {what} after its directory was finished")
        for key, st in now.items():
            self.first_seen.setdefault(key, st)
        self.incomplete += [f"launch {len(self.launches)}: {p}" for p in check_finished(self.killed)]

    def run_killed(self, cal: Calibration, kills: list[Kill], timeout: float) -> None:
        order = {label: i for i, (label, _) in enumerate(cal.runs)}
        for kill in kills:
            done_before = {label for label in self.run_dirs if self.finished(label)}
            launch = Launch(
                self._cmd("killed"), self._env("killed"), self.root / f"killed-{len(self.launches):02d}.log"
            )
            fire = self._wait_for_trigger(launch, kill, cal, order)
            record: dict[str, Any] = {"aimed": kill.stage, "aimed_label": kill.label}
            if fire is None:
                record.update(killed=False, rc=launch.wait(timeout))
                self.launches.append(record)
                self._check_launch(launch, done_before)
                if record["rc"] != 0:
                    record["error"] = launch.log.with_suffix(".stderr").read_text()[-2000:]
                break  # it finished before the kill: the study is done
            while time.monotonic() < fire and not launch.exited:
                time.sleep(0.005)
            kill.landed, kill.landed_label = self.phase(launch)
            if launch.exited:  # finished in the last few milliseconds
                record.update(killed=False, rc=launch.wait(timeout))
                self.launches.append(record)
                self._check_launch(launch, done_before)
                break
            kill.info = launch.kill()
            record.update(
                killed=True,
                landed=kill.landed,
                landed_label=kill.landed_label,
                at_seconds=round(time.monotonic() - launch.t0, 2),
                **kill.info,
            )
            self.launches.append(record)
            self._check_launch(launch, done_before)
            self.echo(
                f"  kill {len(self.launches):2d}: aimed at {kill.stage:<8} landed in {kill.landed:<8} "
                f"{kill.landed_label or '':<32} after {record['at_seconds']:6.1f} s; kernel gone after "
                f"{kill.info['kernel_linger_seconds']} s{'; ORPHAN' if kill.info['orphans'] else ''}"
            )

    def run_final(self, timeout: float) -> dict[str, Any]:
        """The last launch, left to finish; while it holds the artefacts, a second ``run`` must refuse."""
        done_before = {label for label in self.run_dirs if self.finished(label)}
        launch = Launch(self._cmd("killed"), self._env("killed"), self.root / f"killed-{len(self.launches):02d}.log")
        concurrent = self.second_run_refused(launch)
        rc = launch.wait(timeout)
        record = {"aimed": None, "killed": False, "rc": rc, "concurrent": concurrent}
        if rc != 0:
            record["error"] = launch.log.with_suffix(".stderr").read_text()[-2000:]
        self.launches.append(record)
        self._check_launch(launch, done_before)
        return record

    def second_run_refused(self, launch: Launch) -> dict[str, Any]:
        while launch.planned() is None and not launch.exited:  # the lock is held from before this line
            time.sleep(0.01)
        if launch.exited:
            return {"checked": False, "why": "the first run exited before it planned"}
        kernels = children(launch.proc.pid)
        os.killpg(launch.proc.pid, signal.SIGSTOP)
        for pid, _ in kernels:
            os.kill(pid, signal.SIGSTOP)
        try:
            before = finished_files(self.killed)
            t = time.monotonic()
            second = subprocess.run(
                self._cmd("killed"),
                cwd=ROOT,
                env=self._env("killed"),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            seconds = time.monotonic() - t
            after = finished_files(self.killed)
        finally:
            for pid, _ in kernels:
                os.kill(pid, signal.SIGCONT)
            os.killpg(launch.proc.pid, signal.SIGCONT)
        errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        return {
            "checked": True,
            "rc": second.returncode,
            "error_lines": errors,
            "seconds": round(seconds, 1),
            "traceback": "Traceback" in second.stderr,
            "wrote_finished_files": before != after,
            "refused": second.returncode == 2
            and len(errors) == 1
            and "another run" in errors[0]
            and "Traceback" not in second.stderr
            and before == after,
        }


def run_harness(
    kills: int = 20,
    seed: int = 0,
    root: Path | str | None = None,
    languages: list[str] | None = None,
    tasks: list[str] | None = None,
    launch_timeout: float = 900.0,
    echo=print,
) -> dict[str, Any]:
    """The whole harness; returns the summary (see ``summary_ok`` for what must hold)."""
    start = time.monotonic()
    root = Path(root or tempfile.mkdtemp(prefix="kill-harness-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    params = study_params(root / "study", languages, tasks)
    h = Harness(root, params, seed, echo)
    echo(f"reference run into {h.reference} …")
    cal = h.run_reference(launch_timeout)
    echo(
        f"  {len(cal.runs)} stage runs in {h.reference_seconds:.1f} s (start-up {cal.startup:.1f} s, "
        f"report {cal.report:.1f} s); stage seconds: "
        + ", ".join(f"{s} {v:.1f}" for s, v in cal.stage_seconds().items())
    )
    plan = plan_kills(cal, kills, h.rng)
    echo(
        f"killed runs into {h.killed}: {len(plan)} kills aimed at "
        + ", ".join(f"{s} {sum(k.stage == s for k in plan)}" for s in STAGES)
    )
    kill_start = time.monotonic()
    h.run_killed(cal, plan, launch_timeout)
    final = h.run_final(launch_timeout)
    kill_seconds = time.monotonic() - kill_start
    diffs, compared = compare(h.reference, h.killed)
    landed = [r for r in h.launches if r.get("killed")]
    summary = {
        "root": str(root),
        "kills_planned": len(plan),
        "kills": len(landed),
        "kills_per_stage": {s: sum(r["landed"] == s for r in landed) for s in STAGES},
        "launches": len(h.launches),
        "unkilled_launches_failed": [r for r in h.launches if not r.get("killed") and r["rc"] != 0],
        "finished": final["rc"] == 0,
        "stage_runs": len(h.run_dirs),
        "stage_runs_finished": sum(h.finished(label) for label in h.run_dirs),
        "recomputed": h.recomputed,
        "incomplete_finished_dirs": h.incomplete,
        "orphan_kernels": sum(len(r.get("orphans", [])) for r in landed),
        "kernel_linger_max_seconds": max((r["kernel_linger_seconds"] or 0.0 for r in landed), default=0.0),
        "concurrent_run": final["concurrent"],
        "compared": compared,
        "differences": diffs,
        "reference_seconds": round(h.reference_seconds, 1),
        "killed_seconds": round(kill_seconds, 1),
        "total_seconds": round(time.monotonic() - start, 1),
        "launch_records": h.launches,
    }
    summary["ok"] = summary_ok(summary, kills)
    (root / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def summary_ok(s: dict[str, Any], kills: int) -> bool:
    return (
        s["kills"] >= kills
        and s["finished"]
        and not s["unkilled_launches_failed"]
        and s["stage_runs_finished"] == s["stage_runs"]
        and not s["recomputed"]
        and not s["incomplete_finished_dirs"]
        and s["orphan_kernels"] == 0
        and s["concurrent_run"].get("refused", False)
        and not s["differences"]
        and (kills < len(STAGES) or all(s["kills_per_stage"][st] for st in STAGES))
    )


def print_summary(s: dict[str, Any], echo=print) -> None:
    echo("")
    echo(f"kills:               {s['kills']} (planned {s['kills_planned']}) in {s['launches']} launches")
    echo("kills per stage:     " + ", ".join(f"{k} {v}" for k, v in s["kills_per_stage"].items()))
    echo(
        f"runs finished:       {s['stage_runs_finished']}/{s['stage_runs']} stage runs; last launch "
        f"{'finished' if s['finished'] else 'FAILED'}"
    )
    echo(f"recomputed:          {len(s['recomputed'])}" + "".join(f"\n  {r}" for r in s["recomputed"][:20]))
    echo(
        f"incomplete finished: {len(s['incomplete_finished_dirs'])}"
        + "".join(f"\n  {r}" for r in s["incomplete_finished_dirs"][:20])
    )
    echo(
        f"orphan kernels:      {s['orphan_kernels']} (kernels gone at most {s['kernel_linger_max_seconds']} s after "
        "their runner was killed)"
    )
    c = s["concurrent_run"]
    echo(
        f"concurrent run:      {'refused' if c.get('refused') else 'NOT REFUSED CLEANLY'}: exit {c.get('rc')} in "
        f"{c.get('seconds')} s, {c.get('error_lines')}"
    )
    echo("compared:            " + ", ".join(f"{n} {k}" for k, n in sorted(s["compared"].items())))
    echo(f"differences:         {len(s['differences'])}" + "".join(f"\n  {d}" for d in s["differences"][:20]))
    echo(
        f"time:                {s['total_seconds']:.0f} s in all (reference {s['reference_seconds']:.0f} s, killed "
        f"runs {s['killed_seconds']:.0f} s)"
    )
    echo(f"result:              {'OK' if s['ok'] else 'FAILED'}   (details: {s['root']}/summary.json)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="how many kills (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill plan and delays (default 0)")
    parser.add_argument("--artifacts", default="", help="working directory (default: a new temporary one)")
    parser.add_argument("--languages", nargs="+", help="cut the smoke study to these languages (default en ur zh)")
    parser.add_argument("--tasks", nargs="+", help="cut the smoke study to these tasks (default mlm ner xnli)")
    parser.add_argument("--launch-timeout", type=float, default=900.0, help="seconds before a launch counts as hung")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    summary = run_harness(
        args.kills, args.seed, args.artifacts or None, args.languages, args.tasks, args.launch_timeout
    )
    print_summary(summary)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
