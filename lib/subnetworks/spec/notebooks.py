"""The ``parameters`` cell of every stage notebook, as a dataclass per notebook, and its validation.

papermill's ``-p`` guesses types and merely warns about names a notebook does not declare: both are rejected here,
and the study-level values (task, language, sparsity, seed) are checked against the params file they name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .fields import from_dict
from .load import load_study
from .schema import StudyConfig


@dataclass(frozen=True)
class NotebookParams:
    """Base of every notebook's ``parameters`` cell: which study, where its artefacts go."""

    params_file: str = "params/demo.yaml"
    artifacts: str = ""  # empty: runtime.artifacts of the params file


@dataclass(frozen=True)
class DataParams(NotebookParams):
    task: str = "xnli"
    lang: str = "en"


@dataclass(frozen=True)
class PruneParams(NotebookParams):
    task: str = "xnli"
    lang: str = "en"
    seed: int = 57


@dataclass(frozen=True)
class TransferParams(NotebookParams):
    task: str = "xnli"
    source: str = "en"
    sparsity: float = 0.5
    seed: int = 57


@dataclass(frozen=True)
class OverlapParams(NotebookParams):
    task: str = "xnli"


@dataclass(frozen=True)
class BudgetParams(NotebookParams):
    reports_dir: str = ""  # empty: runtime.reports_dir of the params file


@dataclass(frozen=True)
class ReportParams(BudgetParams):
    tasks: tuple[str, ...] = ()  # what the report's figures show (empty: all of the study's)
    sparsities: tuple[float, ...] = ()
    languages: tuple[str, ...] = ()


NOTEBOOK_PARAMS = {
    "01_data": DataParams,
    "02_prune": PruneParams,
    "03_transfer": TransferParams,
    "04_overlap": OverlapParams,
    "05_report": ReportParams,
    "06_budget": BudgetParams,
}

_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython"}
_SCALARS = (str, int, float, bool, list, tuple, dict, type(None))


def _parameter_like(values: Mapping[str, Any]) -> set[str]:
    """Names in a notebook's namespace that look like parameters (public plain values, not IPython's own)."""
    return {
        n for n, v in values.items() if not n.startswith("_") and n not in _IPYTHON_NAMES and isinstance(v, _SCALARS)
    }


def validate_notebook_params(notebook: str, values: Mapping[str, Any]) -> tuple[Any, StudyConfig]:
    """Check a notebook's parameters (the ``parameters`` cell plus papermill's injections) against its stage.

    ``values`` is the notebook's ``globals()`` right after the parameters: a plain value under a name the stage
    does not declare can only come from papermill's ``-p`` (which merely warns about unknown names): reject it.
    """
    cls = NOTEBOOK_PARAMS[notebook]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(_parameter_like(values) - names)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} for {notebook}.ipynb: allowed are {sorted(names)}")
    params = from_dict(cls, {n: values[n] for n in names if n in values}, where=f"{notebook}.ipynb")
    study = load_study(params.params_file)
    if hasattr(params, "task"):
        study.task(params.task)
    if hasattr(params, "lang"):
        study.check_language(params.task, params.lang)
    if hasattr(params, "source"):
        study.check_language(params.task, params.source, "source language")
    if hasattr(params, "sparsity"):
        study.level_of(params.sparsity)
    if hasattr(params, "seed"):
        study.check_seed(params.seed)
    return params, study
