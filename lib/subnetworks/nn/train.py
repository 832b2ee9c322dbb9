"""Fine-tuning with a fixed mask.

Masked weights are kept at exactly zero by re-applying the mask after every optimiser step: AdamW's moments and
weight decay would otherwise move them. That is one in-place multiply per prunable tensor a step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..core.masks import Mask
from ..core.prune import apply_mask, mask_multipliers
from ..core.schedule import lr_factor, total_steps
from ..spec import TrainConfig
from .collate import Collator
from .models import encoder_parameters
from .progress import progress_bar


@dataclass
class TrainResult:
    steps: int
    seconds: float
    final_loss: float


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


MLM_HEADS = ("cls", "lm_head")  # the one-module MLM heads (BERT, XLM-R, DeBERTa-v2 legacy) that run apart


def mlm_head(model: nn.Module) -> nn.Module:
    for attr in MLM_HEADS:
        if hasattr(model, attr):
            return getattr(model, attr)
    raise TypeError(f"{type(model).__name__} has no MLM head ({' / '.join(MLM_HEADS)})")


def forward_loss(model: nn.Module, kind: str, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits); for MLM the logits of the masked positions only. Where the MLM head is one module, the
    vocabulary projection runs only at masked positions (it dominates the cost); heads spread over several modules
    (DistilBERT's, ModernBERT's) run through the whole model."""
    if kind != "mlm":
        out = model(**batch)
        return out.loss, out.logits
    labels = batch["labels"]
    where = labels != -100
    if not any(hasattr(model, attr) for attr in MLM_HEADS):
        out = model(**batch)
        return out.loss, out.logits[where]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = model.base_model(**inputs).last_hidden_state
    logits = mlm_head(model)(hidden[where])
    return nn.functional.cross_entropy(logits.float(), labels[where]), logits


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW without decay on vectors (biases, LayerNorms); the task head (every parameter outside the encoder) at
    ``head_learning_rate`` when set: a new head on an encoder with small hidden states (e5: per-dimension std 0.13)
    otherwise needs hundreds of steps before it predicts anything but the majority class. The fused kernel (as
    transformers' Trainer uses): on CPU one AdamW step of the demo encoder took half the time of torch's per-tensor
    loop (benchmarks/bench_trainer.py)."""
    head_lr = cfg.head_learning_rate or cfg.learning_rate
    prefix = model.base_model_prefix + "."
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            key = (not name.startswith(prefix), param.ndim < 2)
            groups.setdefault(key, []).append(param)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "lr": head_lr if head else cfg.learning_rate,
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
            }
            for (head, no_decay), params in sorted(groups.items())
        ],
        fused=True,
    )


def warmup_then_decay(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, steps, s))


def set_trainable(model: nn.Module, name: str, trainable: bool) -> None:
    """Train one base-encoder parameter or not (the family's word embeddings: never pruned, most of the work).

    Set on every run, not only to freeze: a rewound model keeps ``requires_grad`` from its previous run."""
    params = encoder_parameters(model)
    if name not in params:
        raise ValueError(
            f"the encoder has no parameter {name!r} to freeze (e.g. {sorted(params)[:2]}): "
            "set model.encoder.word_embeddings to its word-embedding matrix"
        )
    params[name].requires_grad_(trainable)


class LengthGroupedBatches(Sampler[list[int]]):
    """Shuffled batches of examples of similar length: less padding for the same examples and steps.

    Each pass shuffles the examples, sorts chunks of ``group`` batches by length, cuts them into batches and
    shuffles the batches, so a short run (fewer steps than a pass) still sees batches from the whole split.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator, group: int = 50):
        self.lengths, self.batch_size, self.generator, self.chunk = (
            list(lengths),
            batch_size,
            generator,
            batch_size * group,
        )

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        batches = []
        for start in range(0, len(order), self.chunk):
            chunk = sorted(order[start : start + self.chunk], key=lambda i: -self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        yield from (batches[i] for i in torch.randperm(len(batches), generator=self.generator).tolist())


def lengths_of(examples: Sequence[dict]) -> list[int]:
    rows = examples["input_ids"] if hasattr(examples, "column_names") else (e["input_ids"] for e in examples)
    return [len(row) for row in rows]


def batches_by_length(examples: Sequence[dict], batch_size: int) -> list[list[int]]:
    """Index batches in order of length: the least padding, for passes whose order does not matter."""
    lengths = lengths_of(examples)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def finetune(
    model: nn.Module,
    kind: str,
    train_set: Sequence[dict],
    collator: Collator,
    cfg: TrainConfig,
    *,
    mask: Mask | None,
    seed: int,
    device: torch.device,
    word_embeddings: str = "",
    progress: bool = True,
    desc: str = "fine-tune",
) -> TrainResult:
    """Train ``model`` in place on ``train_set`` with ``mask`` held fixed; bit-identical on CPU for a fixed seed.

    ``word_embeddings`` names the encoder's word-embedding matrix, frozen when ``cfg.freeze_word_embeddings``."""
    torch.manual_seed(seed)
    collator.generator = torch.Generator().manual_seed(seed + 1)
    model.to(device).train()
    if word_embeddings or cfg.freeze_word_embeddings:
        set_trainable(model, word_embeddings, not cfg.freeze_word_embeddings)
    params = encoder_parameters(model)
    multipliers = mask_multipliers(params, mask) if mask is not None else None
    if multipliers is not None:
        apply_mask(params, multipliers)
    steps = total_steps(cfg, len(train_set))
    optimizer = _optimizer(model, cfg)
    schedule = warmup_then_decay(optimizer, cfg, steps)
    loader_rng = torch.Generator().manual_seed(seed)
    if cfg.group_by_length:
        batches = LengthGroupedBatches(lengths_of(train_set), cfg.batch_size, loader_rng)
        loader = DataLoader(train_set, batch_sampler=batches, collate_fn=collator)
    else:
        loader = DataLoader(
            train_set, batch_size=cfg.batch_size, shuffle=True, collate_fn=collator, generator=loader_rng
        )
    start, done, loss_value = time.perf_counter(), 0, float("nan")
    bar = progress_bar(total=steps, desc=desc, disable=not progress)
    while done < steps:
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(device):
                loss, _ = forward_loss(model, kind, batch)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            if multipliers is not None:
                apply_mask(params, multipliers)
            done += 1
            loss_value = float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}")
            if done >= steps:
                break
    bar.close()
    model.eval()
    return TrainResult(steps=done, seconds=time.perf_counter() - start, final_loss=loss_value)
