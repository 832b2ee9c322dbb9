"""One study being computed: its spec and layout, the device, its model source, and what is loaded (cached).

Stages receive a :class:`Workspace`; it loads the pre-trained model once per (task kind, labels, seed) and rewinds
it in place afterwards, tokenises with one tokenizer, and reads each language's encoded data once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import datasets
import torch
from torch import nn

from ..nn.families import EncoderFamily, resolve_family
from ..nn.models import load_model, load_tokenizer, model_type, pick_device
from ..spec import ConfigError, StudyConfig, resolve_path
from .controls import Control, controls_of
from .layout import Layout
from .sources import data_source, model_source
from .store import ArtifactError


@dataclass
class Workspace:
    study: StudyConfig
    layout: Layout
    device: torch.device
    controls: list[Control]
    _pretrained: dict = field(default_factory=dict, repr=False)
    _data: dict = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, study: StudyConfig, artifacts: str | Path = "") -> Workspace:
        """Check that the study's sources and controls are registered, and pick the device."""
        source = model_source(study.model.source)
        if study.model.mlm_head.max_steps and not source.fits_mlm_head:
            raise ConfigError(
                f"model.mlm_head: model.source {study.model.source!r} does not fit MLM heads; "
                "set model.mlm_head.max_steps to 0"
            )
        for name, task in study.tasks.items():
            has = data_source(name, task.source).languages
            missing = [lang for lang in study.task_languages(name) if has and lang not in has]
            if missing:
                raise ConfigError(
                    f"tasks.{name}: the {task.source} data has no {missing}: its languages are "
                    f"{list(has)}; list only those in languages (or in tasks.{name}.languages)"
                )
        return cls(study, Layout(study, artifacts), pick_device(study.runtime.device), controls_of(study))

    @property
    def artifacts(self) -> Path:
        return self.layout.artifacts

    @property
    def progress(self) -> bool:
        return self.study.runtime.progress

    def model_folder(self, kind: str = "") -> str:
        """What ``from_pretrained`` loads for a task kind (the source prepares it: converts, fits a head)."""
        return model_source(self.study.model.source).folder(self, kind)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.model_folder(), self.study.model.revision or None)

    def raw_splits(self, task: str, lang: str) -> datasets.DatasetDict:
        """A task's splits in ``lang`` as its data source delivers them (standard schema, not yet subsampled)."""
        cfg = self.study.task(task)
        return data_source(task, cfg.source).load(cfg, lang, resolve_path(self.study.runtime.data_dir))

    def encoded(self, task: str, lang: str) -> tuple[datasets.DatasetDict, dict[str, Any]]:
        """The encoded splits and stats of a finished data run, read from disk once per workspace."""
        key = (task, lang)
        if key not in self._data:
            run = self.layout.data_dir(task, lang)
            run.require_done(f"the data of {task}/{lang}")
            try:
                self._data[key] = datasets.load_from_disk(str(run.file("encoded"))), run.read_json("stats.json")
            except (OSError, ValueError) as err:  # a truncated Arrow file is pyarrow's OSError
                raise ArtifactError(f"{run.path} is damaged ({err}): delete it and rerun") from err
        return self._data[key]

    def pretrained(self, kind: str, num_labels: int | None, seed: int) -> tuple[nn.Module, dict]:
        """θ0 with a task head initialised from ``seed``, rewound in place, and a copy of that state to rewind to.

        Loaded from disk once per (kind, labels, seed): a rewind gives the same weights as a fresh load for a
        fraction of the cost. One model is kept in memory at a time.
        """
        key = (kind, num_labels, seed)
        if key not in self._pretrained:
            self._pretrained.clear()
            model = load_model(
                self.model_folder(kind),
                kind,
                num_labels=num_labels,
                revision=self.study.model.revision or None,
                head_seed=seed,
            )
            self._pretrained[key] = (model, {k: v.detach().clone() for k, v in model.state_dict().items()})
        model, theta0 = self._pretrained[key]
        model.load_state_dict(theta0)
        return model, theta0

    def family(self, model: nn.Module) -> EncoderFamily:
        """The encoder family of a loaded model, with the params' overrides and prunable patterns."""
        return resolve_family(self.study.model, model_type(model), self.study.prune.patterns)

    def mask_meta(self, task: str, lang: str, seed: int) -> dict[str, str]:
        model = self.study.model
        return {"model": model.name, "revision": model.revision, "task": task, "lang": lang, "seed": str(seed)}
