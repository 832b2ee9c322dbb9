"""A training's schedule as arithmetic: how many optimiser steps it takes, its learning rate at each step, and the
sum of that rate over the steps (the budget of the training-budget curve). The trainer and the reports share it."""

from __future__ import annotations

import math

from ..spec import TrainConfig


def total_steps(cfg: TrainConfig, n_examples: int) -> int:
    if cfg.max_steps:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * math.ceil(n_examples / cfg.batch_size)))


def lr_factor(cfg: TrainConfig, steps: int, step: int) -> float:
    """The learning rate at ``step`` as a share of the peak: linear warm-up over ``warmup_ratio`` of the steps,
    then linear decay to zero."""
    warmup = int(cfg.warmup_ratio * steps)
    return (step + 1) / max(1, warmup) if step < warmup else max(0.0, (steps - step) / max(1, steps - warmup))


def learning_rate_sum(cfg: TrainConfig, n_examples: int) -> float:
    """The sum of the encoder's learning rate over a training: how far, at most, it can move a weight (before
    Adam's normalisation), the budget of the training-budget curve."""
    steps = total_steps(cfg, n_examples)
    return cfg.learning_rate * sum(lr_factor(cfg, steps, s) for s in range(steps))
