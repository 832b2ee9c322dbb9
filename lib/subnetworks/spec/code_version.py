"""Which code is running: the checkout's commit, and whether tracked files differ from it (torch-free, so that the
report can say which code rendered it, as every run says which code produced it)."""

from __future__ import annotations

import subprocess

from .load import repo_root


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str:
    """The checkout's commit, or "unknown" outside a git checkout."""
    return _git("rev-parse", "HEAD") or "unknown"


CODE = ("lib", "notebooks", "params", "pyproject.toml", "requirements.lock")  # what makes a run or a report


def uncommitted_changes() -> bool:
    """Whether a tracked file of the code (:data:`CODE`) differs from the commit: the reports and the README, which
    a run rewrites, and untracked files do not count."""
    return bool(_git("status", "--porcelain", "--untracked-files=no", "--", *CODE))
