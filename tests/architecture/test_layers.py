"""The package's layers: each imports only from itself and the layers below it, nothing imports in a loop, and
what a layer may import from outside the package is what it is for (read from the source, not by importing)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lib" / "subnetworks"
LAYERS = ("spec", "core", "nn", "study", "report", "demo", "run")
# the report reads finished artefacts: of the study layer only the torch-free naming of runs
REPORT_MAY_USE = {"subnetworks.study.layout", "subnetworks.study.grid", "subnetworks.study.store"}
THIRD_PARTY = {"spec": {"yaml"}, "core": {"torch", "numpy", "safetensors"}}  # beyond the standard library
# the one import inside a function: IPython, needed only to show a report in a notebook, not to build one
LOCAL_IMPORTS = {("subnetworks.report.output", "IPython.display")}


def modules_of(package: Path) -> dict[str, Path]:
    def name(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    return {name(p): p for p in package.rglob("*.py")}


def imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(module imported, line) of every import in a file: relative ones resolved, ``from pkg import sub`` as
    ``pkg.sub`` when ``sub`` is a module of the package."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            found.append((target, node.lineno))
            found += [(f"{target}.{a.name}", node.lineno) for a in node.names if f"{target}.{a.name}" in modules]
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def layer_violations(modules: dict[str, Path]) -> list[str]:
    found = []
    for module, path in modules.items():
        if not layer(module):
            continue
        for target, line in imports(module, path, modules):
            if target not in modules or not layer(target):
                continue
            if LAYERS.index(layer(target)) > LAYERS.index(layer(module)):
                found.append(f"{module}:{line} imports {target}, a layer above")
            elif layer(module) == "report" and layer(target) == "study" and target not in REPORT_MAY_USE:
                found.append(f"{module}:{line} imports {target}: the report reads artefacts only")
    return found


def import_loop(modules: dict[str, Path]) -> list[str]:
    """One import cycle between the package's modules, or nothing."""
    graph = {m: {t for t, _ in imports(m, p, modules) if t in modules and t != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return []


MODULES = modules_of(PACKAGE)


def test_a_layer_imports_only_from_itself_and_below():
    assert layer_violations(MODULES) == []


def test_no_module_imports_in_a_loop():
    assert import_loop(MODULES) == []


@pytest.mark.parametrize("low", sorted(THIRD_PARTY))
def test_low_layers_use_only_their_own_libraries(low):
    for module, path in MODULES.items():
        if layer(module) == low:
            for target, line in imports(module, path, MODULES):
                top = target.split(".")[0]
                if top not in ("subnetworks", "__future__") and top not in sys.stdlib_module_names:
                    assert top in THIRD_PARTY[low], f"{module}:{line} imports {target}"


def test_imports_sit_at_the_top_of_modules():
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):
                        name = inner.module if isinstance(inner, ast.ImportFrom) else inner.names[0].name
                        assert (module, name) in LOCAL_IMPORTS, f"{module}:{inner.lineno} imports {name} in {node.name}"


def test_the_checks_catch_a_loop_an_upward_import_and_a_report_reading_stages(tmp_path):
    fake = tmp_path / "subnetworks"
    for folder in ("core", "study/stages", "report"):
        (fake / folder).mkdir(parents=True, exist_ok=True)
    (fake / "core" / "a.py").write_text("from . import b\nfrom ..study import layout\n")
    (fake / "core" / "b.py").write_text("from .a import x\n")
    (fake / "study" / "layout.py").write_text("")
    (fake / "study" / "stages" / "__init__.py").write_text("")
    (fake / "report" / "r.py").write_text("from ..study.layout import Layout\nfrom ..study.stages import run_prune\n")
    modules = modules_of(fake)
    assert import_loop(modules) == ["subnetworks.core.a", "subnetworks.core.b", "subnetworks.core.a"]
    assert set(layer_violations(modules)) == {
        "subnetworks.core.a:2 imports subnetworks.study.layout, a layer above",
        "subnetworks.report.r:2 imports subnetworks.study.stages: the report reads artefacts only",
    }
