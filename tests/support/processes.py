"""Commands run as a user runs them, in a child process: offline, one thread, unbuffered, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONUNBUFFERED="1")


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600, cwd: Path = ROOT, **kwargs):
    """``cmd`` to its end, its output captured as text; the exit code is the caller's to check."""
    return subprocess.run(
        cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def run_cli(*args: str, **kwargs):
    """``python -m subnetworks ARGS``."""
    return run([sys.executable, "-m", "subnetworks", *args], **kwargs)


def error_lines(out) -> list[str]:
    """The ``error:`` lines a command printed on stderr (the CLI prints exactly one for a bad input)."""
    return [line for line in out.stderr.splitlines() if line.startswith("error:")]
