"""Evaluation: accuracy, entity F1, masked-token accuracy and perplexity, on a test split in order of length.

Each evaluation also returns what every test example contributed (``examples``): the score is Σ num / Σ den over
them (:mod:`..core.stats`), so intervals and paired comparisons are recomputed from these records without running
a model again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from seqeval.metrics import accuracy_score, f1_score
from seqeval.metrics.sequence_labeling import get_entities
from torch import nn
from torch.utils.data import DataLoader

from .collate import Collator
from .progress import progress_bar
from .train import autocast, batches_by_length, forward_loss

EVAL_MASK_SEED = 0  # MLM's test masks: the same masked tokens for every model scored on a language (paired scores)


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
    mask_draws: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Task metrics on ``test_set``. ``score`` is the study's headline number (accuracy, F1, masked accuracy).

    Examples go in order of length, so a batch pads little; no metric depends on the order. For MLM the test set is
    masked ``mask_draws`` times (independent draws from a fixed seed, one example at a time, so the batch size does
    not change them), so short test sets still give many masked tokens; a sentence's tokens stay one record.
    """
    model.to(device).eval()
    n = len(test_set)
    num, den = [0] * n, [0] * n
    predicted_label = [-1] * n
    loss_sum = 0.0
    gold_tags: list[list[str]] = [[] for _ in range(n)]
    pred_tags: list[list[str]] = [[] for _ in range(n)]
    batches = batches_by_length(test_set, batch_size)
    for draw in range(mask_draws if kind == "mlm" else 1):
        examples = collator.premasked(test_set, EVAL_MASK_SEED + draw) if kind == "mlm" else test_set
        loader = DataLoader(examples, batch_sampler=batches, collate_fn=collator)
        for ids, batch in zip(batches, progress_bar(loader, desc="evaluate", disable=not progress)):
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(device):
                loss, logits = forward_loss(model, kind, batch)
            gold = batch["labels"]
            if kind == "mlm":
                masked = gold != -100  # the logits are the masked positions' only, row by row
                rows = masked.nonzero()[:, 0]
                hit = logits.argmax(-1) == gold[masked]
                loss_sum += float(loss) * int(masked.sum())
                hits = torch.bincount(rows[hit], minlength=len(gold)).tolist()
                counts = masked.sum(-1).tolist()
                for i, h, c in zip(ids, hits, counts):
                    num[i] += h
                    den[i] += c
            elif kind == "seqcls":
                for i, p, g in zip(ids, logits.argmax(-1).tolist(), gold.tolist()):
                    predicted_label[i], num[i], den[i] = p, int(p == g), 1
            else:
                for i, g_row, p_row in zip(ids, gold.tolist(), logits.argmax(-1).tolist()):
                    keep = [(g, p) for g, p in zip(g_row, p_row) if g != -100]
                    gold_tags[i] = [labels[g] for g, _ in keep]
                    pred_tags[i] = [labels[p] for _, p in keep]
    if kind == "tokcls":
        for i in range(n):
            gold_set, pred_set = set(get_entities(gold_tags[i])), set(get_entities(pred_tags[i]))
            num[i], den[i] = 2 * len(gold_set & pred_set), len(gold_set) + len(pred_set)
    examples: dict[str, Any] = {"num": num, "den": den}
    total = sum(den)
    if kind == "mlm":
        return {
            "score": sum(num) / total,
            "accuracy": sum(num) / total,
            "perplexity": math.exp(loss_sum / total),
            "n_tokens": int(total),
            "n": n,
            "examples": examples,
        }
    if kind == "seqcls":
        accuracy = sum(num) / n
        return {"score": accuracy, "accuracy": accuracy, "n": n, "examples": {**examples, "pred": predicted_label}}
    f1 = float(f1_score(gold_tags, pred_tags, zero_division=0))
    token_accuracy = float(accuracy_score(gold_tags, pred_tags))
    return {"score": f1, "f1": f1, "token_accuracy": token_accuracy, "n": n, "examples": examples}
