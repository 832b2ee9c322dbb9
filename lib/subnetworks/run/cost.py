"""What a study's grid costs in optimiser steps, before it runs: the basis of the cluster estimate in the README.

Steps follow the training configs exactly as :func:`subnetworks.nn.train.total_steps` counts them, from the training
split sizes: those a finished data stage measured (its ``stats.json``), else the published sizes below. Evaluation
is left out (one pass over the test split per fine-tuning run: small next to training).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..nn.train import total_steps
from ..spec import TrainConfig
from ..study.controls import controls_of
from ..study.layout import Layout

# Training split sizes as published on the datasets' hub cards (facebook/xnli: 392,702 machine-translated MNLI pairs
# in every language; unimelb-nlp/wikiann: the Rahimi et al. partition, 20,000 sentences, Hindi 5,000).
PUBLISHED_TRAIN_SIZES = {
    "facebook/xnli": {lang: 392_702 for lang in ("ar", "de", "en", "fr", "hi", "ru", "ur", "zh")},
    "unimelb-nlp/wikiann": {**{lang: 20_000 for lang in ("ar", "de", "en", "fa", "fr", "ru", "ur", "zh")}, "hi": 5_000},
}


@dataclass(frozen=True)
class StageCost:
    """Optimiser steps of one stage of one task; ``steps`` is None where a training split size is unknown."""

    stage: str
    task: str
    runs: int
    steps: int | None
    examples: int | None  # steps × batch size: the work, for scaling a per-example time
    unknown: tuple[str, ...] = ()  # languages whose training split size is not known before the data stage


def train_size(layout: Layout, task: str, lang: str) -> int | None:
    """The training examples a run of ``task`` in ``lang`` sees: measured by its data stage, else published."""
    cfg = layout.study.task(task)
    run = layout.data_dir(task, lang)
    if run.done:
        return int(run.read_json("stats.json")["sizes"]["train"])
    published = PUBLISHED_TRAIN_SIZES.get(cfg.dataset, {}).get(lang)
    if published is None:
        return None
    return min(published, cfg.max_train) if cfg.max_train else published


def _steps(cfg: TrainConfig, n_examples: int | None) -> int | None:
    if cfg.max_steps:
        return cfg.max_steps
    return None if n_examples is None else total_steps(cfg, n_examples)


def grid_cost(layout: Layout) -> list[StageCost]:
    """IMP (dense level plus one level per sparsity) and transfer (every target, plus each transfer control on the
    source) per task; the transfer diagonal costs nothing when it reuses the IMP level (same training config)."""
    study, out = layout.study, []
    transfer_controls = sum(control.transfer for control in controls_of(study))
    seeds = len(study.seeds)
    for task, cfg in study.tasks.items():
        langs = study.task_languages(task)
        sizes = {lang: train_size(layout, task, lang) for lang in langs}
        unknown = tuple(lang for lang, n in sizes.items() if n is None)
        levels = len(study.levels)
        imp = [_steps(cfg.imp_train, sizes[lang]) for lang in langs]
        out.append(_stage("prune", task, len(langs) * seeds, imp, levels * seeds, cfg.imp_train, unknown))
        reuse = cfg.transfer_train == cfg.imp_train
        per_source = []
        for source in langs:
            targets = [t for t in langs if not (reuse and t == source)]
            if study.transfer.random_control:
                targets += [source] * transfer_controls
            per_source += [_steps(cfg.transfer_train, sizes[t]) for t in targets]
        repeats = len(study.transfer_levels) * seeds
        out.append(_stage("transfer", task, len(langs) * repeats, per_source, repeats, cfg.transfer_train, unknown))
    return out


def _stage(
    stage: str, task: str, runs: int, steps: list[int | None], repeats: int, cfg: TrainConfig, unknown: tuple[str, ...]
) -> StageCost:
    """``steps`` of one pass, each done ``repeats`` times (IMP levels × seeds; sparsities × seeds)."""
    total = None if any(s is None for s in steps) else sum(steps) * repeats
    return StageCost(stage, task, runs, total, None if total is None else total * cfg.batch_size, unknown)
