"""What a study's grid costs in optimiser steps, before it runs: the basis of the cluster estimate in the README.

Steps follow the training configs exactly as :func:`subnetworks.core.schedule.total_steps` counts them, from the
training split sizes: those a finished data stage measured (its ``stats.json``), else the published sizes below.
Evaluation is left out (one pass over the test split per fine-tuning run: small next to training).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.schedule import total_steps
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
    """IMP (dense level plus one level per sparsity, plus each scored control at the transfer levels, a second time
    with the transfer runs' training where it differs) and transfer (every target) per task; the transfer diagonal
    costs nothing when it reuses the IMP level (same training)."""
    study, out = layout.study, []
    controls = sum(c.scored for c in controls_of(study)) * len(study.transfer_levels)
    for task, cfg in study.tasks.items():
        langs = study.task_languages(task)
        sizes = {lang: train_size(layout, task, lang) for lang in langs}
        unknown = tuple(lang for lang, n in sizes.items() if n is None)
        differs = cfg.transfer_train != cfg.imp_train and study.transfer.enabled
        prune = []
        for lang in langs:  # every seed's prune run of a language: its fine-tunings
            for seed in study.seeds:
                scored = controls if study.scores_controls(seed) else 0
                prune += [(_steps(cfg.imp_train, sizes[lang]), cfg.imp_train)] * (len(study.levels) + scored)
                prune += [(_steps(cfg.transfer_train, sizes[lang]), cfg.transfer_train)] * (scored if differs else 0)
        out.append(_stage("prune", task, len(langs) * len(study.seeds), prune, 1, unknown))
        if study.transfer.enabled:
            transfer = [
                (_steps(cfg.transfer_train, sizes[t]), cfg.transfer_train)
                for s in langs
                for t in langs
                if differs or t != s
            ]
            repeats = len(study.transfer_levels) * len(study.transfer_seeds)
            out.append(_stage("transfer", task, len(langs) * repeats, transfer, repeats, unknown))
    return out


def _stage(
    stage: str,
    task: str,
    runs: int,
    trainings: list[tuple[int | None, TrainConfig]],
    repeats: int,
    unknown: tuple[str, ...],
) -> StageCost:
    """``trainings`` (steps, config) of one pass, each done ``repeats`` times (transfer: levels × seeds)."""
    if any(steps is None for steps, _ in trainings):
        return StageCost(stage, task, runs, None, None, unknown)
    steps = sum(s for s, _ in trainings) * repeats
    return StageCost(stage, task, runs, steps, sum(s * cfg.batch_size for s, cfg in trainings) * repeats, unknown)
