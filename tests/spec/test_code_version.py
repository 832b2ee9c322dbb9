"""The commit the code runs at, and whether tracked files differ from it: in a checkout made here, and outside one."""

from __future__ import annotations

import subprocess

from subnetworks.spec import code_version


def _git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_a_checkout_names_its_commit_and_its_uncommitted_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(code_version, "repo_root", lambda: tmp_path)
    _git(tmp_path, "init", "-q")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("results\n", encoding="utf-8")
    _git(tmp_path, "add", "lib/a.py", "README.md")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    assert code_version.git_commit() == _git(tmp_path, "rev-parse", "HEAD") and not code_version.uncommitted_changes()
    (tmp_path / "lib" / "untracked.py").write_text("y = 1\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("new results\n", encoding="utf-8")
    assert not code_version.uncommitted_changes()  # untracked files, and the README a run rewrites, are not code
    (tmp_path / "lib" / "a.py").write_text("x = 2\n", encoding="utf-8")
    assert code_version.uncommitted_changes()


def test_outside_a_checkout_the_commit_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(code_version, "repo_root", lambda: tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert code_version.git_commit() == "unknown" and not code_version.uncommitted_changes()
