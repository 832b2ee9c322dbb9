"""Run directories: atomic writes, DONE markers, environment records, and the lock on an artefacts directory.

A run is finished exactly when its ``DONE`` file exists; ``DONE`` is written last, after everything else was
renamed into place, so a run killed at any moment is either finished or redone, never half-taken. Torch-free, as
the layout that names runs is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..core.atomic import atomic_write_bytes

DONE = "DONE"


class ArtifactError(RuntimeError):
    """An artefact is missing or damaged, or the artefacts directory cannot be written."""


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


def _load_json(path: Path) -> tuple[Any, str | None]:
    """The parsed file, or None and what is wrong with it (missing, or damaged: half-written, not UTF-8 JSON)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, "is missing"
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return None, f"is damaged ({err})"


def read_json(path: Path) -> Any:
    path = Path(path)
    value, problem = _load_json(path)
    if problem is not None:
        fix = "delete it and rerun the stage that writes it" if path.exists() else "rerun the stage that writes it"
        raise ArtifactError(f"{path} {problem}: {fix}")
    return value


@dataclass(frozen=True)
class RunDir:
    """``artifacts/<stage>/<task>/<unit>/<stage>_<key>/seed_<s>/`` (no seed level for seedless stages)."""

    path: Path

    @classmethod
    def at(cls, artifacts: Path | str, stage: str, task: str, unit: str, key: str, seed: int | None = None) -> RunDir:
        path = Path(artifacts) / stage / task / unit / f"{stage}_{key}"
        return cls(path / f"seed_{seed}" if seed is not None else path)

    def sub(self, name: str) -> RunDir:
        return RunDir(self.path / name)

    @property
    def done(self) -> bool:
        return (self.path / DONE).exists()

    def mark_done(self) -> None:
        atomic_write_bytes(self.path / DONE, b"")

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, obj: Any) -> None:
        write_json(self.path / name, obj)

    def read_json(self, name: str) -> Any:
        """A JSON file of this run; if it is missing or damaged, the message names it and a fix that works.

        A finished run is never redone while its ``DONE`` exists, so for a file of a finished run (or level) the fix
        is to delete that ``DONE`` (and those of the finished runs it sits in); the next ``run`` then redoes it.
        """
        value, problem = _load_json(self.path / name)
        if problem is None:
            return value
        finished = [d / DONE for d in (self.path, *self.path.parents) if (d / DONE).exists()]
        if not finished:
            raise ArtifactError(f"{self.path / name} {problem}: rerun the stage that writes it")
        delete = " and ".join(str(p) for p in finished)
        raise ArtifactError(f"{self.path / name} {problem}, in a finished run: delete {delete}, then rerun to redo it")

    def require_done(self, what: str) -> None:
        if not self.done:
            raise ArtifactError(f"{what} has not finished ({self.path} has no DONE): run that stage first")


class LockedError(RuntimeError):
    """Another study run holds the artefacts directory."""


@contextmanager
def exclusive(artifacts: Path | str) -> Iterator[None]:
    """Hold the artefacts directory for one ``run`` at a time; a second one refuses at once with the holder's pid."""
    artifacts = Path(artifacts)
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ArtifactError(f"cannot create the artefacts directory {artifacts}: {err}") from err
    if not os.access(artifacts, os.W_OK):
        raise ArtifactError(f"the artefacts directory {artifacts} is not writable: choose another with --artifacts")
    owner = artifacts / ".lock.owner"
    lock = FileLock(str(artifacts / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = owner.read_text().strip() if owner.exists() else "unknown"
        raise LockedError(
            f"another run (pid {holder}) is using {artifacts}: wait for it to finish, or use another --artifacts"
        ) from None
    try:
        owner.write_text(str(os.getpid()))
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
