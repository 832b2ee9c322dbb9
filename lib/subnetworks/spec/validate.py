"""Checks that span several fields (single fields check themselves when read, see :mod:`.fields`)."""

from __future__ import annotations

from collections import Counter

from .errors import ConfigError
from .schema import StudyConfig, TrainConfig

MODEL_DEVICES = ("auto", "cpu", "cuda")


def validate_schedule(schedule: tuple[float, ...]) -> None:
    """A schedule is a non-empty, strictly increasing list of cumulative sparsities, each in (0, 1)."""
    if not schedule:
        raise ConfigError("prune.schedule is empty: give e.g. [0.5, 0.8]")
    for s in schedule:
        if not 0.0 < s < 1.0:
            raise ConfigError(f"prune.schedule: sparsity {s} is outside (0, 1): it is the share of weights removed")
    if any(b <= a for a, b in zip(schedule, schedule[1:])):
        raise ConfigError(f"prune.schedule {list(schedule)} is not strictly increasing")


def _unique(values: tuple, what: str) -> None:
    repeated = sorted(str(v) for v, n in Counter(values).items() if n > 1)
    if repeated:
        raise ConfigError(f"{what} lists {repeated} more than once")


def _check_training(cfg: TrainConfig, where: str) -> None:
    if not cfg.max_steps and not cfg.epochs:
        raise ConfigError(f"{where}: give max_steps > 0 or epochs > 0")


def validate_study(study: StudyConfig) -> StudyConfig:
    """Cross-field checks of a whole study; returns it unchanged."""
    if not study.languages or any(not lang for lang in study.languages):
        raise ConfigError("languages is empty or has an empty code: give language codes, e.g. [en, de]")
    _unique(study.languages, "languages")
    if not study.tasks:
        raise ConfigError("the study has no tasks")
    for name, task in study.tasks.items():
        _unique(task.languages, f"tasks.{name}.languages")
        if not study.task_languages(name):
            raise ConfigError(f"task {name!r} has none of the study languages {list(study.languages)}")
        for section in ("imp_train", "transfer_train"):
            _check_training(getattr(task, section), f"tasks.{name}.{section}")
    if study.model.mlm_head.max_steps and any(task.kind == "mlm" for task in study.tasks.values()):
        study.task(study.model.mlm_head_task)  # the head an MLM task needs is fitted on a task's text
    for name in study.budget.tasks:
        study.task(name)
    if study.similarity.corpus and study.similarity.corpus not in study.tasks:
        raise ConfigError(
            f"similarity.corpus {study.similarity.corpus!r} is not a task of this study: name one of "
            f"{sorted(study.tasks)} (its test split gives the parallel sentences), or leave it empty"
        )
    validate_schedule(study.prune.schedule)
    _unique(study.prune.controls, "prune.controls")
    for s in study.transfer.sparsities:
        try:
            study.level_of(s)
        except ConfigError as err:
            raise ConfigError(f"transfer.sparsities: {err}") from None
    if not study.seeds:
        raise ConfigError("seeds is empty: give at least one seed, e.g. [57]")
    _unique(study.seeds, "seeds")
    for where, chosen in (("prune.control_seeds", study.prune.control_seeds), ("transfer.seeds", study.transfer.seeds)):
        _unique(chosen, where)
        if set(chosen) - set(study.seeds):
            unknown = sorted(set(chosen) - set(study.seeds))
            raise ConfigError(f"{where} names {unknown}, not among the study's seeds {list(study.seeds)}")
    device = study.runtime.device
    if device.split(":")[0] not in MODEL_DEVICES or (device.startswith("cuda:") and not device[5:].isdigit()):
        raise ConfigError(f"runtime.device {device!r} is unknown: use auto, cpu, cuda or cuda:N")
    return study
