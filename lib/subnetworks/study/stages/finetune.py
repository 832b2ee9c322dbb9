"""Fine-tune one (mask, language) from θ0 and score it: the unit of work that IMP levels and transfer share."""

from __future__ import annotations

from typing import Any

from torch import nn

from ...core.masks import Mask
from ...nn.collate import make_collator
from ...nn.evaluate import evaluate
from ...nn.models import encoder_shapes
from ...nn.train import finetune
from ...spec import TrainConfig
from ..layout import EXAMPLES
from ..store import RunDir
from ..workspace import Workspace
from .data import load_data


def pretrained_for(ws: Workspace, task: str, lang: str, seed: int) -> tuple[nn.Module, dict]:
    """θ0 with the task's head (as many labels as the task's data has) seeded by ``seed``, freshly rewound."""
    _, stats = load_data(ws, task, lang)
    return ws.pretrained(ws.study.task(task).kind, len(stats["labels"]) or None, seed)


def train_and_score(
    ws: Workspace,
    task: str,
    lang: str,
    seed: int,
    mask: Mask | None,
    train: TrainConfig,
    desc: str,
    model: nn.Module | None = None,
) -> dict[str, Any]:
    """``model`` (default: θ0 with a seeded head) with ``mask`` fine-tuned on ``lang`` and scored on its test split."""
    cfg = ws.study.task(task)
    encoded, stats = load_data(ws, task, lang)
    if model is None:
        model, _ = pretrained_for(ws, task, lang, seed)
    if mask is not None:
        mask.validate_against(encoder_shapes(model), ws.study.model.name)
    collator = make_collator(cfg.kind, ws.tokenizer, cfg.mlm_probability)
    result = finetune(
        model,
        cfg.kind,
        encoded["train"],
        collator,
        train,
        mask=mask,
        seed=seed,
        device=ws.device,
        word_embeddings=ws.family(model).word_embeddings,
        progress=ws.progress,
        desc=desc,
    )
    metrics = evaluate(
        model,
        cfg.kind,
        encoded["test"],
        collator,
        labels=stats["labels"],
        device=ws.device,
        batch_size=ws.study.runtime.eval_batch_size,
        mask_draws=cfg.eval_mask_draws,
        progress=ws.progress,
    )
    metrics.update(steps=result.steps, train_seconds=round(result.seconds, 3), final_loss=result.final_loss)
    metrics["density"] = mask.density if mask is not None else 1.0
    return metrics


def save_scored(run: RunDir, metrics: dict[str, Any]) -> dict[str, Any]:
    """Write a scored run's per-example records and its metrics (without them) and mark it done; the metrics."""
    metrics = dict(metrics)
    run.write_json(EXAMPLES, metrics.pop("examples"))
    run.write_json("metrics.json", metrics)
    run.mark_done()
    return metrics
