"""Where every run of a study lives: run keys and directories, computed once, with IMP levels as integers.

Torch-free, so the report, ``status`` and ``cost`` name runs without loading a model. A run's key hashes the
fields that change its result plus the keys of the runs it reads (:func:`subnetworks.spec.run_key`); sparsities
appear only in names made for people (``en-sp50``, ``sp0.5``) and in keys, as the schedule's own numbers.
"""

from __future__ import annotations

from functools import cached_property, wraps
from pathlib import Path
from typing import Any

from ..spec import StudyConfig, non_default, resolve_path, run_key
from .store import RunDir

# prune 2: per-language random seeds; 3: masks keep the model's tensor order on disk (ties, random draws);
# prune 4 / transfer 2: evaluation in order of length (MLM's test masks are drawn per batch, so they changed);
# overlap 2: controls.csv has one row per (language, control) with its Jaccard to the IMP mask;
# prune 5 / transfer 3 / overlap 3: controls scored in their own language's IMP run at the transfer levels (no more
# on the source in transfer runs), the global random control, the training's movement in the mask metadata, the
# nulls of the controls drawn, departures from the pre-trained-magnitude mask
# mlm_head 2, prune 7: MLM's masks drawn one example at a time (independent of the batch size), fused AdamW; transfer
# runs follow through their prune key
STAGE_VERSIONS = {"model": 1, "mlm_head": 2, "data": 1, "prune": 7, "transfer": 4, "overlap": 4}
IMP = "imp"  # the IMP mask, beside the registered controls' masks
EXAMPLES = "examples.json"  # a scored run's per-example records (see nn.evaluate), beside its metrics.json


def _once(method):
    """Compute a key once per layout (a grid asks for the same keys many times) and keep it with the layout."""

    @wraps(method)
    def keep(self, *args):
        known = self.__dict__.setdefault("_keys", {})
        if (method.__name__, *args) not in known:
            known[(method.__name__, *args)] = method(self, *args)
        return known[(method.__name__, *args)]

    return keep


def mask_file(kind: str = IMP) -> str:
    """The file name of a level's IMP mask (``kind`` imp) or of a control's mask (``random_mask.safetensors``)."""
    return "mask.safetensors" if kind == IMP else f"{kind}_mask.safetensors"


def level_name(level: int) -> str:
    return f"level_{level:02d}"


def pair_kind(lang_a: str, seed_a: int, lang_b: str, seed_b: int) -> str:
    """Which comparison a pair of one task's masks makes: ``same_language`` (another seed: the noise floor),
    ``same_seed`` (another language trained from the same head and batch order) or ``other_seed`` (another
    language and another seed: free of the shared-seed confound)."""
    if lang_a == lang_b:
        return "same_language"
    return "same_seed" if seed_a == seed_b else "other_seed"


class Layout:
    """Keys and directories of every run of one study, under one artefacts directory."""

    def __init__(self, study: StudyConfig, artifacts: str | Path = ""):
        self.study = study
        self.artifacts = resolve_path(artifacts or study.runtime.artifacts)

    # --- keys ------------------------------------------------------------------------------------------------
    @cached_property
    def model_key(self) -> str:
        return run_key("model", STAGE_VERSIONS["model"], self.study.model)

    def _text_fields(self, task: str) -> dict[str, Any]:
        """The task's non-default fields that decide its examples (not its training, how it is scored, nor how reports
        name it)."""
        fields = non_default(self.study.task(task))
        return {k: v for k, v in fields.items() if k not in ("imp_train", "transfer_train", "label", "eval_mask_draws")}

    @_once
    def data_key(self, task: str, lang: str) -> str:
        fields = {k: v for k, v in self._text_fields(task).items() if k != "languages"}  # one language's run
        return run_key(
            "data", STAGE_VERSIONS["data"], {"task": task, "lang": lang, **fields}, {"model": self.model_key}
        )

    @property
    def fits_mlm_head(self) -> bool:
        """Whether the model's MLM head is fitted here (an encoder that ships without one) before MLM runs."""
        return bool(self.study.model.mlm_head.max_steps)

    @cached_property
    def mlm_head_key(self) -> str:
        """The fitted MLM head: the model, the head's training and the text it is fitted on (all its languages)."""
        text = self._text_fields(self.study.model.mlm_head_task)
        return run_key("mlm_head", STAGE_VERSIONS["mlm_head"], {"text": text}, {"model": self.model_key})

    def _scoring_fields(self, task: str) -> dict[str, Any]:
        """The task's non-default fields that decide how its models are scored: in the prune key (and, through it,
        the transfer key), so that scoring differently is another run."""
        fields = non_default(self.study.task(task))
        return {k: v for k, v in fields.items() if k == "eval_mask_draws"}

    @_once
    def prune_key(self, task: str, lang: str) -> str:
        fields = {"task": task, "lang": lang, "train": self.study.task(task).imp_train, "prune": self.study.prune}
        fields.update(self._scoring_fields(task))
        upstream = {"data": self.data_key(task, lang)}
        if self.study.task(task).kind == "mlm" and self.fits_mlm_head:
            upstream["mlm_head"] = self.mlm_head_key  # θ0 of an MLM run includes the fitted head
        return run_key("prune", STAGE_VERSIONS["prune"], fields, upstream)

    @_once
    def transfer_key(self, task: str, source: str, level: int) -> str:
        cfg = self.study.task(task)
        fields = {
            "task": task,
            "source": source,
            "sparsity": self.study.sparsity_of(level),
            "train": cfg.transfer_train,
            "targets": sorted(self.study.task_languages(task)),
        }  # another language list is another run
        return run_key("transfer", STAGE_VERSIONS["transfer"], fields, {"prune": self.prune_key(task, source)})

    @_once
    def overlap_key(self, task: str) -> str:
        upstream = {f"prune/{lang}": self.prune_key(task, lang) for lang in self.study.task_languages(task)}
        fields = {"task": task, "sparsities": self.study.transfer.sparsities, "seeds": self.study.seeds}
        similarity = self.study.similarity
        if similarity.corpus:  # left out when off, so that overlap runs without it keep their keys
            fields["similarity"] = similarity
            upstream.update(
                {f"corpus/{lang}": self.data_key(similarity.corpus, lang) for lang in self.corpus_languages(task)}
            )
        return run_key("overlap", STAGE_VERSIONS["overlap"], fields, upstream)

    def corpus_languages(self, task: str) -> tuple[str, ...]:
        """The languages whose representations are compared for ``task``: those it shares with the similarity
        corpus task."""
        corpus = self.study.task_languages(self.study.similarity.corpus)
        return tuple(lang for lang in self.study.task_languages(task) if lang in corpus)

    # --- directories -----------------------------------------------------------------------------------------
    def data_dir(self, task: str, lang: str) -> RunDir:
        return RunDir.at(self.artifacts, "data", task, lang, self.data_key(task, lang))

    def prune_dir(self, task: str, lang: str, seed: int) -> RunDir:
        return RunDir.at(self.artifacts, "prune", task, lang, self.prune_key(task, lang), seed)

    def level_dir(self, task: str, lang: str, seed: int, level: int) -> RunDir:
        return self.prune_dir(task, lang, seed).sub(level_name(level))

    def mask_path(self, task: str, lang: str, seed: int, level: int, kind: str = IMP) -> Path:
        return self.level_dir(task, lang, seed, level).file(mask_file(kind))

    def transfer_dir(self, task: str, source: str, level: int, seed: int) -> RunDir:
        unit = f"{source}-sp{round(self.study.sparsity_of(level) * 100):02d}"
        return RunDir.at(self.artifacts, "transfer", task, unit, self.transfer_key(task, source, level), seed)

    def overlap_dir(self, task: str) -> RunDir:
        return RunDir.at(self.artifacts, "overlap", task, "all", self.overlap_key(task))

    @property
    def models_dir(self) -> Path:
        """Where converted models and fitted MLM heads are cached (outside the artefacts: studies share them)."""
        return resolve_path(self.study.runtime.cache_dir) / "models"

    @property
    def mlm_head_dir(self) -> RunDir:
        return RunDir(self.models_dir / f"{self.study.model.name}-mlm-{self.mlm_head_key}")
