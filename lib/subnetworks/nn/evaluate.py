"""Evaluation: accuracy, entity F1, masked-token accuracy and perplexity, on a test split in order of length."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from seqeval.metrics import accuracy_score, f1_score
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .collate import Collator
from .train import autocast, batches_by_length, forward_loss


@torch.no_grad()
def evaluate(
    model: nn.Module,
    kind: str,
    test_set: Sequence[dict],
    collator: Collator,
    *,
    labels: Sequence[str] = (),
    device: torch.device,
    batch_size: int = 128,
    mask_seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Task metrics on ``test_set``. ``score`` is the study's headline number (accuracy, F1, masked accuracy).

    Examples go in order of length, so a batch pads little; no metric depends on the order.
    """
    model.to(device).eval()
    collator.generator = torch.Generator().manual_seed(mask_seed)
    loader = DataLoader(test_set, batch_sampler=batches_by_length(test_set, batch_size), collate_fn=collator)
    correct = total = 0
    loss_sum = 0.0
    gold_tags: list[list[str]] = []
    pred_tags: list[list[str]] = []
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device):
            loss, logits = forward_loss(model, kind, batch)
        gold = batch["labels"]
        if kind == "mlm":
            target = gold[gold != -100]
            loss_sum += float(loss) * target.numel()
            correct += int((logits.argmax(-1) == target).sum())
            total += target.numel()
        elif kind == "seqcls":
            correct += int((logits.argmax(-1) == gold).sum())
            total += gold.numel()
        else:
            predicted = logits.argmax(-1)
            for g_row, p_row in zip(gold.tolist(), predicted.tolist()):
                keep = [(g, p) for g, p in zip(g_row, p_row) if g != -100]
                gold_tags.append([labels[g] for g, _ in keep])
                pred_tags.append([labels[p] for _, p in keep])
    if kind == "mlm":
        return {
            "score": correct / total,
            "accuracy": correct / total,
            "perplexity": math.exp(loss_sum / total),
            "n_tokens": total,
        }
    if kind == "seqcls":
        return {"score": correct / total, "accuracy": correct / total, "n": total}
    f1 = float(f1_score(gold_tags, pred_tags, zero_division=0))
    return {"score": f1, "f1": f1, "token_accuracy": float(accuracy_score(gold_tags, pred_tags)), "n": len(gold_tags)}
