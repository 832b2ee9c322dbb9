"""spec: the study's parameters (typed dataclasses, YAML with ``base:`` and ``--set``, validation) and run keys.

A leaf: imports nothing else of the package, so every other layer can depend on it.
"""

from .code_version import git_commit, uncommitted_changes
from .errors import ConfigError
from .fields import from_dict, non_default, to_jsonable
from .keys import run_key
from .load import apply_override, dump_params, load_params, load_study, read_params, repo_root, resolve_path
from .notebooks import NOTEBOOK_PARAMS, validate_notebook_params
from .schema import (
    TASK_KINDS,
    BudgetConfig,
    BudgetPoint,
    FamilyConfig,
    ModelConfig,
    PruneConfig,
    RuntimeConfig,
    SimilarityConfig,
    SlurmConfig,
    StudyConfig,
    TaskConfig,
    TrainConfig,
    TransferConfig,
)

__all__ = [
    "BudgetConfig",
    "SimilarityConfig",
    "BudgetPoint",
    "ConfigError",
    "FamilyConfig",
    "ModelConfig",
    "NOTEBOOK_PARAMS",
    "PruneConfig",
    "RuntimeConfig",
    "SlurmConfig",
    "StudyConfig",
    "TASK_KINDS",
    "TaskConfig",
    "TrainConfig",
    "TransferConfig",
    "apply_override",
    "dump_params",
    "from_dict",
    "load_params",
    "load_study",
    "non_default",
    "read_params",
    "repo_root",
    "git_commit",
    "uncommitted_changes",
    "resolve_path",
    "run_key",
    "to_jsonable",
    "validate_notebook_params",
]
