"""Stage ``transfer``: the source language's IMP sub-network at one level fine-tuned and scored on every target
language, one resumable sub-run per target. The controls' scores on each target come from that target's own IMP
run (they are drawn there), so they are not repeated here."""

from __future__ import annotations

import time

from ...core.maskio import load_mask
from ...nn.progress import progress_bar
from ..environment import environment
from ..layout import EXAMPLES, IMP, level_name
from ..store import RunDir
from ..workspace import Workspace
from .finetune import save_scored, train_and_score


def run_transfer(ws: Workspace, task: str, source: str, level: int, seed: int) -> RunDir:
    """One row of acc(s, t) at ``level``; a finished run returns at once."""
    run = ws.layout.transfer_dir(task, source, level, seed)
    if run.done:
        return run
    start = time.perf_counter()
    ws.layout.prune_dir(task, source, seed).require_done(f"IMP for {task}/{source} (seed {seed})")
    targets = progress_bar(ws.study.task_languages(task), desc="targets", disable=not ws.progress)
    rows = [_transfer_target(ws, run, task, source, level, seed, t) for t in targets]
    run.write_json("metrics.json", rows)
    run.write_json("env.json", environment(str(ws.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start})
    run.mark_done()
    return run


def _transfer_target(ws: Workspace, run: RunDir, task: str, source: str, level: int, seed: int, target: str) -> dict:
    """The source's IMP mask fine-tuned and scored on one target, unless that sub-run finished before."""
    sub = run.sub(f"{IMP}_to_{target}")
    if not sub.done:
        cfg = ws.study.task(task)
        sparsity = ws.study.sparsity_of(level)
        if target == source and cfg.transfer_train == cfg.imp_train:
            # The same mask, data, seed and training as the IMP level itself: its result, not a rerun.
            imp_level = ws.layout.prune_dir(task, source, seed).sub(level_name(level))
            examples = imp_level.read_json(EXAMPLES)
            metrics = {**imp_level.read_json("metrics.json"), "examples": examples, "reused_from": str(imp_level.path)}
        else:
            mask = load_mask(ws.layout.mask_path(task, source, seed, level))
            metrics = train_and_score(
                ws, task, target, seed, mask, cfg.transfer_train, desc=f"{task} {source}→{target} {sparsity:.0%}"
            )
        metrics.update(source=source, target=target, mask=IMP, sparsity=sparsity, seed=seed)
        save_scored(sub, metrics)
    return sub.read_json("metrics.json")
