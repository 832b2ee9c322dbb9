"""Stage ``prune``: iterative magnitude pruning with rewinding to θ0, one resumable level at a time (open_lth's
lottery runner): ``_prune_level(k)`` writes level k's masks, ``_train_level(k)`` fine-tunes and scores level k's
sub-network; each checks for its finished files first.

Level k's IMP mask prunes the weights that training level k−1 ended with. They are not kept on disk (a model per
level would be gigabytes): if level k−1 finished in an earlier process and level k's mask is missing, level k−1 is
trained again in memory, which gives the same weights (training is deterministic). How far training moved the
weights (|θ_T − θ0| over the weights level k−1 kept) goes into level k's mask metadata: it bounds which weights
training could carry across the pruning threshold.

At the transfer levels every scored control is then fine-tuned and scored like the IMP mask (``_score_control``),
each in its own resumable sub-run: P, and the random masks, on this language; where the transfer runs train
otherwise than IMP, a second time as they do, so that a control on t compares with acc(s, t).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from ...core.atomic import atomic_write_bytes
from ...core.maskio import load_mask, save_mask
from ...core.masks import Mask
from ...core.prune import magnitude_prune, select_prunable
from ...nn.families import EncoderFamily
from ...nn.models import encoder_parameters, encoder_shapes, model_type
from ...nn.progress import progress_bar
from ..controls import ControlInputs
from ..environment import environment
from ..layout import IMP, level_name, mask_file
from ..store import DONE, ArtifactError, RunDir
from ..workspace import Workspace
from .finetune import pretrained_for, save_scored, train_and_score


@dataclass
class _Imp:
    """One IMP run: its workspace and identity, the model with θ0 to rewind to, and its prunable tensors."""

    ws: Workspace
    task: str
    lang: str
    seed: int
    model: nn.Module
    theta0: dict

    @classmethod
    def open(cls, ws: Workspace, task: str, lang: str, seed: int) -> _Imp:
        model, theta0 = pretrained_for(ws, task, lang, seed)
        return cls(ws, task, lang, seed, model, theta0)

    @property
    def run(self) -> RunDir:
        return self.ws.layout.prune_dir(self.task, self.lang, self.seed)

    def level(self, level: int) -> RunDir:
        return self.run.sub(level_name(level))

    @cached_property
    def family(self) -> EncoderFamily:
        return self.ws.family(self.model)

    @cached_property
    def full(self) -> Mask:
        """Level 0's mask: every prunable weight kept; its metadata is every mask's."""
        shapes = encoder_shapes(self.model)
        names = select_prunable(shapes, self.family.prunable)
        meta = {**self.ws.mask_meta(self.task, self.lang, self.seed), "model_type": model_type(self.model)}
        return Mask.full({n: shapes[n] for n in names}, **meta)

    def mask(self, level: int, kind: str = IMP) -> Mask:
        if level == 0:
            return self.full
        return load_mask(self.level(level).file(mask_file(kind)), encoder_shapes(self.model), self.ws.study.model.name)

    @property
    def head(self) -> list[str]:
        """The task head's parameters: everything outside the base encoder."""
        return [k for k in self.theta0 if not k.startswith(self.model.base_model_prefix + ".")]

    def prunable(self, state: str = "trained") -> dict:
        """The prunable tensors as the model holds them now (``trained``) or as pre-trained (``theta0``)."""
        if state == "theta0":
            prefix = self.model.base_model_prefix + "."
            return {n: self.theta0[prefix + n] for n in self.full.tensors}
        params = encoder_parameters(self.model)
        return {n: params[n] for n in self.full.tensors}


def run_prune(ws: Workspace, task: str, lang: str, seed: int) -> RunDir:
    """IMP for one task × language × seed; every level is its own resumable unit."""
    run = ws.layout.prune_dir(task, lang, seed)
    if run.done:
        return run
    start = time.perf_counter()
    imp = _Imp.open(ws, task, lang, seed)
    trained = False  # whether the model holds the trained weights of the previous level
    for level in progress_bar(ws.study.levels, desc="IMP levels", disable=not ws.progress):
        _prune_level(imp, level, trained)
        trained = _train_level(imp, level)
    scored = [c.name for c in ws.controls if c.scored and ws.study.scores_controls(seed)]
    controls = [
        _score_control(imp, level, name, training)
        for level in ws.study.transfer_levels
        for name in scored
        for training in _trainings(ws, task)
    ]
    levels = [imp.level(level).read_json("metrics.json") for level in ws.study.levels]
    theta0 = imp.prunable("theta0").values()
    zeros = sum(int((w == 0).sum()) for w in theta0) / sum(w.numel() for w in theta0)
    run.write_json(
        "metrics.json",
        {
            "levels": levels,
            "controls": controls,
            "theta0_zero_share": zeros,
            "head_at_rewind": ws.study.prune.head_at_rewind,
        },
    )
    run.write_json("params.json", {"task": task, "lang": lang, "seed": seed, "key": ws.layout.prune_key(task, lang)})
    run.write_json("env.json", environment(str(ws.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start})
    run.mark_done()
    return run


def _prune_level(imp: _Imp, level: int, trained: bool) -> None:
    """Level k's masks: the IMP mask (level k−1's trained weights, magnitude-pruned) and each control's."""
    if level == 0:
        return
    ldir, controls = imp.level(level), imp.ws.controls
    missing = [c for c in controls if not ldir.file(mask_file(c.name)).exists()]
    sparsity = imp.ws.study.sparsity_of(level)
    if ldir.file(mask_file(IMP)).exists():
        if not missing:
            return
        mask = imp.mask(level)
    else:
        if not trained:  # level k−1 finished in an earlier process: train it again (the same weights)
            _train(imp, level - 1)
        before = imp.mask(level - 1)
        mask = magnitude_prune(imp.prunable(), before, sparsity)
        movement = _movement(imp.prunable(), imp.prunable("theta0"), before)
        save_mask(mask, ldir.file(mask_file(IMP)), kind=IMP, level=ldir.path.name, **movement)
        missing = controls
    # controls carry the run's metadata, not that of wherever the IMP mask came from (the file a resumed level
    # reads, level k−1's mask): a control drawn again after a kill is then the same file
    drawn_from = Mask(mask.tensors, dict(imp.full.meta))
    inputs = ControlInputs(drawn_from, imp.prunable("theta0"), imp.full, sparsity, imp.seed, imp.task, imp.lang)
    for control in missing:
        save_mask(control.draw(inputs), ldir.file(mask_file(control.name)), kind=control.name, level=ldir.path.name)


def _train_level(imp: _Imp, level: int) -> bool:
    """Level k's sub-network fine-tuned from θ0 and scored; False when it had finished before (nothing trained)."""
    ldir = imp.level(level)
    if ldir.done:
        return False
    metrics = _train(imp, level)
    if imp.ws.study.prune.head_at_rewind == "trained":
        _save_head(imp.model, imp.head, ldir.file("head.safetensors"))
    save_scored(ldir, metrics)
    return True


def _score_control(imp: _Imp, level: int, name: str, training: str) -> dict:
    """A control's mask at a transfer level fine-tuned and scored on this language as the IMP mask is (``imp``), or
    as the transfer runs fine-tune a source's mask on it (``transfer``, where that training differs)."""
    sub = imp.level(level).sub(name if training == "imp" else f"{name}_{training}")
    if not sub.done:
        save_scored(sub, {**_train(imp, level, name, training), "control": name, "training": training})
    return sub.read_json("metrics.json")


def _trainings(ws: Workspace, task: str) -> list[str]:
    """The trainings a control is scored with: IMP's, and the transfer runs' where those differ."""
    cfg = ws.study.task(task)
    return ["imp"] + (["transfer"] if ws.study.transfer.enabled and cfg.transfer_train != cfg.imp_train else [])


def _movement(trained: dict, theta0: dict, kept: Mask) -> dict[str, float]:
    """Quantiles of |θ_T − θ0| over the weights the mask kept while training (pruned ones were held at zero)."""
    moved = (
        torch.cat(
            [(trained[n] - theta0[n]).detach().abs().reshape(-1)[kept.tensors[n].reshape(-1)] for n in kept.tensors]
        )
        .float()
        .cpu()
        .numpy()
    )
    return {
        f"movement_{name}": float(np.quantile(moved, q))
        for name, q in (("q50", 0.5), ("q99", 0.99), ("q999", 0.999), ("max", 1.0))
    }


def _train(imp: _Imp, level: int, kind: str = IMP, training: str = "imp") -> dict:
    """Rewind to θ0, fine-tune, score. With IMP's training (``imp``) the head restarts as IMP's does (from level
    k−1's trained head with ``head_at_rewind: trained``); with ``transfer``'s it starts from its seeded
    initialisation, as in the transfer runs."""
    mask = imp.mask(level, kind)
    imp.model.load_state_dict(imp.theta0)
    if training == "imp" and level > 0 and imp.ws.study.prune.head_at_rewind == "trained":
        _load_head(imp.model, imp.level(level - 1).file("head.safetensors"))
    sparsity = imp.ws.study.sparsity_of(level)
    metrics = train_and_score(
        imp.ws,
        imp.task,
        imp.lang,
        imp.seed,
        None if level == 0 else mask,
        getattr(imp.ws.study.task(imp.task), f"{training}_train"),
        desc=f"{'IMP' if kind == IMP else kind} {imp.task}/{imp.lang} level {level} ({sparsity:.0%})",
        model=imp.model,
    )
    return {**metrics, "level": level, "sparsity": sparsity}


def _save_head(model: nn.Module, names: list[str], path: Path) -> None:
    state = model.state_dict()
    atomic_write_bytes(path, save({n: state[n].contiguous() for n in names}))


def _load_head(model: nn.Module, path: Path) -> None:
    try:
        state = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise ArtifactError(f"{path} is damaged ({err}): delete {path.parent / DONE} and rerun") from err
    model.load_state_dict(state, strict=False)
