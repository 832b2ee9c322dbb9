"""Controls: masks drawn beside every IMP mask, so that each figure can show what chance or pre-training alone give.

A control is one registered class: its name (its mask file is ``<name>_mask.safetensors`` in every IMP level), how
it is drawn from the level's IMP mask and the pre-trained weights, and where it is used: ``scored`` controls are
fine-tuned and scored on their run's own language at the transfer levels, exactly as the IMP mask is (so a control
scored on t is the transfer control of every source's sub-network on t); ``across_languages`` ones are overlapped
between languages. ``prune.controls`` in params lists the ones a study draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..core.masks import Mask
from ..core.prune import magnitude_prune
from ..core.random_masks import random_global, random_per_tensor
from ..spec import ConfigError, StudyConfig


@dataclass(frozen=True)
class ControlInputs:
    """What a control may be drawn from, at one IMP level of one run."""

    imp: Mask  # the level's IMP mask
    theta0: Mapping[str, torch.Tensor]  # the pre-trained weights of the prunable tensors
    full: Mask  # every prunable weight kept (carries the run's metadata)
    sparsity: float
    seed: int
    task: str
    lang: str


class Control:
    """Base of every control: override ``name`` and ``draw``; set the flags for where it is used."""

    name: ClassVar[str]
    label: ClassVar[str]  # how tables and figures name it
    scored: ClassVar[bool] = False  # fine-tuned and scored on its run's language at the transfer levels
    across_languages: ClassVar[bool] = False  # its masks of different languages are overlapped pairwise

    def draw(self, inputs: ControlInputs) -> Mask:
        raise NotImplementedError


CONTROLS: dict[str, Control] = {}


def register(cls: type[Control]) -> type[Control]:
    """Class decorator: make a control available to ``prune.controls`` under its ``name``."""
    CONTROLS[cls.name] = cls()
    return cls


def controls_of(study: StudyConfig) -> list[Control]:
    """The controls a study draws, in the order of ``prune.controls``."""
    unknown = [name for name in study.prune.controls if name not in CONTROLS]
    if unknown:
        raise ConfigError(f"prune.controls {unknown} are not registered controls: use some of {sorted(CONTROLS)}")
    return [CONTROLS[name] for name in study.prune.controls]


def language_seed(seed: int, task: str, lang: str) -> int:
    """A seed distinct per task and language: one shared seed would give every language the same random
    positions and make random masks look as if they overlapped."""
    return int(hashlib.sha256(f"{seed}/{task}/{lang}".encode()).hexdigest()[:8], 16)


@register
class RandomPerTensor(Control):
    """The IMP mask's kept count in every tensor, at uniformly random positions (a layer-wise random mask)."""

    name = "random"
    label = "layer-wise random"
    scored = True
    across_languages = True

    def draw(self, inputs: ControlInputs) -> Mask:
        return random_per_tensor(inputs.imp, language_seed(inputs.seed, inputs.task, inputs.lang))


@register
class RandomGlobal(Control):
    """The IMP mask's total kept count, at uniformly random positions over all prunable weights (the authors'
    baseline): tensors keep about the mask's overall density each, whatever IMP kept in them."""

    name = "global_random"
    label = "global random"
    scored = True
    across_languages = True

    def draw(self, inputs: ControlInputs) -> Mask:
        return random_global(inputs.imp, language_seed(inputs.seed, inputs.task, inputs.lang) + 1)


@register
class PretrainedMagnitude(Control):
    """Magnitude pruning of the pre-trained weights alone (no fine-tuning): what pre-training implies."""

    name = "pretrained"
    label = "pre-trained magnitude (P)"
    scored = True

    def draw(self, inputs: ControlInputs) -> Mask:
        return magnitude_prune(inputs.theta0, inputs.full, inputs.sparsity)
