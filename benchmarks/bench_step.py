"""Masked fine-tuning step vs a dense step, and vs ``torch.nn.utils.prune``'s forward-pre-hook reparametrisation.

Each step is exactly one step of :func:`subnetworks.nn.train.finetune`: ``forward_loss`` → ``backward`` → AdamW
``step`` (the trainer's own optimiser, weight decay and LR schedule) → ``zero_grad`` → ``apply_mask`` (masked
step only) with the :func:`~subnetworks.core.prune.mask_multipliers` that ``finetune`` makes once before training. The
hook step replaces ``apply_mask`` by ``prune.custom_from_mask`` on the same prunable tensors: a forward pre-hook
recomputes ``weight = weight_orig * weight_mask`` every forward, and autograd multiplies the gradient by the mask
on the way back. The variants are interleaved round by round on the same batch.
"""

from __future__ import annotations

import copy
import gc
import time
from functools import partial

import torch

from subnetworks.core.masks import Mask
from subnetworks.core.prune import apply_mask, magnitude_prune, mask_multipliers, select_prunable
from subnetworks.nn.families import FAMILIES
from subnetworks.nn.models import encoder_parameters
from subnetworks.nn.train import _optimizer, forward_loss
from subnetworks.spec import TrainConfig

from .common import MODEL_LABELS, Row, bert_config, interleaved, median, seconds

KIND = "seqcls"  # XNLI-style sentence-pair classification, the study's main fine-tuning task
SPARSITY = 0.5
OURS_APPLY = "apply_mask with mask_multipliers (ours, as finetune)"


def masked_classifier(key: str, quick: bool):
    """A seeded 3-class sequence classifier of the model shape ``key`` and the 50 % magnitude mask of its prunable
    weights: (config, model, its encoder parameters, mask)."""
    from transformers import BertForSequenceClassification  # transformers loads slowly: only where a row needs it

    config = bert_config(key, quick, num_labels=3)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    params = encoder_parameters(model)
    names = select_prunable(params, FAMILIES["bert"].prunable)
    mask = magnitude_prune({n: params[n] for n in names}, Mask.full({n: params[n].shape for n in names}), SPARSITY)
    return config, model, params, mask


def make_batch(vocab_size: int, batch: int, seq: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(5, vocab_size, (batch, seq), generator=g),
        "token_type_ids": torch.cat(
            [torch.zeros(batch, seq // 2, dtype=torch.long), torch.ones(batch, seq - seq // 2, dtype=torch.long)], 1
        ),
        "attention_mask": torch.ones(batch, seq, dtype=torch.long),
        "labels": torch.randint(0, 3, (batch,), generator=g),
    }


def apply_variants(
    params: dict[str, torch.nn.Parameter], mask: Mask, multipliers: dict[str, torch.Tensor], repeats: int
) -> dict[str, float]:
    """Median seconds of ways to zero the masked weights of all prunable tensors (interleaved, warm-up dropped):
    ours, the bool-mask multiply ``finetune`` did before it made multipliers, and two alternatives for reference."""
    inverted = {n: ~keep for n, keep in mask.tensors.items()}
    names = list(mask.tensors)
    plist, klist = [params[n] for n in names], [multipliers[n] for n in names]

    @torch.no_grad()
    def fill() -> None:
        for n in names:
            params[n].masked_fill_(inverted[n], 0.0)

    @torch.no_grad()
    def foreach() -> None:
        torch._foreach_mul_(plist, klist)

    times = interleaved(
        {
            OURS_APPLY: lambda: apply_mask(params, multipliers),
            "bool mask mul_ (before)": lambda: apply_mask(params, mask),
            "_foreach_mul_ by mask_multipliers": foreach,
            "masked_fill_ with inverted bool mask": fill,
        },
        repeats,
        1,
    )
    return {k: median(v) for k, v in times.items()}


class Trainer:
    """One model, its AdamW (built by the trainer's own ``_optimizer``) and LR schedule; ``step()`` = one "
    "finetune step."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, batch: dict[str, torch.Tensor]):
        self.model = model.train()
        self.batch = batch
        self.optimizer = _optimizer(model, cfg)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 1.0)
        self.phases: dict[str, list[float]] = {}

    def _phase(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.phases.setdefault(name, []).append(now - start)
        return now

    def step(self, after=None, tag: str = "") -> None:
        t = time.perf_counter()
        loss, _ = forward_loss(self.model, KIND, self.batch)
        loss.backward()
        t = self._phase(f"{tag}forward+backward", t)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        t = self._phase(f"{tag}optimizer", t)
        if after is not None:
            after()
            self._phase(f"{tag}mask", t)
        float(loss.detach())


def hook_model(model: torch.nn.Module, mask: Mask) -> torch.nn.Module:
    """A copy of ``model`` pruned the ``torch.nn.utils.prune`` way with the same mask (forward pre-hooks)."""
    from torch.nn.utils import prune

    twin = copy.deepcopy(model)
    base = twin.base_model
    for name, keep in mask.tensors.items():
        module = base.get_submodule(name.rsplit(".", 1)[0])
        prune.custom_from_mask(module, "weight", keep)
    return twin


def hook_extra(model: torch.nn.Module, names: list[str], repeats: int) -> dict[str, float]:
    """Median seconds of the work the hooks add to a step, done alone: the forward pre-hooks' ``weight_orig *
    weight_mask`` for every pruned module (with autograd recording, as in training), and the backward's
    multiplication of each weight gradient by its mask."""
    from torch.nn.utils import prune

    base = model.base_model
    modules = [base.get_submodule(n.rsplit(".", 1)[0]) for n in names]
    hooks = [(m, h) for m in modules for h in m._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
    grads = [torch.ones_like(m.weight_orig) for m in modules]
    masks = [m.weight_mask for m in modules]

    def forward_hooks() -> None:
        for module, hook in hooks:
            hook(module, None)

    def backward_products() -> None:
        for g, k in zip(grads, masks):
            g * k

    times = interleaved({"pre-hooks": forward_hooks, "backward products": backward_products}, repeats, 1)
    return {k: median(v) for k, v in times.items()}


def run(models: list[str], quick: bool, repeats: int, warmup: int, batch: int, seq: int, log=print) -> list[Row]:

    rows: list[Row] = []
    cfg = TrainConfig(learning_rate=2e-5, weight_decay=0.01)
    for key in models:
        config, model, params, mask = masked_classifier(key, quick)
        twin = Trainer(hook_model(model, mask), cfg, make_batch(config.vocab_size, batch, seq))
        multipliers = mask_multipliers(params, mask)  # once, before training, as finetune does
        apply_mask(params, multipliers)
        plain = Trainer(model, cfg, twin.batch)
        log(
            f"  step [{key}] batch {batch}×{seq}, {len(mask.tensors)} prunable tensors, {mask.numel / 1e6:.1f}M weights"
        )
        reapply = partial(apply_mask, params, multipliers)
        times = interleaved(
            {
                "dense": partial(plain.step, tag="dense "),
                "masked": partial(plain.step, reapply, tag="masked "),
                "hooks": partial(twin.step, tag="hooks "),
            },
            repeats,
            warmup,
        )
        med = {k: median(v) for k, v in times.items()}
        variants = apply_variants(params, mask, multipliers, max(3, repeats))
        phases = {k: median(v[warmup:]) for k, v in {**plain.phases, **twin.phases}.items()}
        t_mask = phases["masked mask"]
        paired = 1 + t_mask / med["dense"]  # masked step = dense step + apply_mask, nothing else differs
        direct = med["masked"] / med["dense"]
        detail = {
            "batch": batch,
            "seq_len": seq,
            "task": KIND,
            "sparsity": SPARSITY,
            "repeats": repeats,
            "warmup": warmup,
            "prunable_weights": mask.numel,
            "median_s": med,
            "times_s": times,
            "phase_median_s": phases,
            "phase_times_s": {**plain.phases, **twin.phases},
            "apply_variants_median_s": variants,
            "ratio_direct": direct,
            "ratio_paired": paired,
        }
        log("    " + ", ".join(f"{k} {seconds(v)}" for k, v in med.items()) + f"; apply_mask {seconds(t_mask)}")
        label = MODEL_LABELS[key]
        rows.append(
            Row(
                "step_vs_dense",
                "masked fine-tuning step / dense step",
                key,
                f"{seconds(med['dense'])} + apply_mask {seconds(t_mask)}",
                seconds(med["dense"]),
                paired,
                "≤ 1.03",
                paired <= 1.03,
                note=(
                    f"{label}, batch {batch}×{seq}, {KIND}, {SPARSITY:.0%} mask. Ratio = (dense step + "
                    "apply_mask) / dense step, "
                    "both timed in the same interleaved steps (the only difference between the two steps); the "
                    "ratio of "
                    f"whole-step medians is {direct:.3f} ({seconds(med['masked'])} / {seconds(med['dense'])}), "
                    "noisier. "
                    f"apply_mask multiplies each weight by its mask_multipliers (the mask in the weight's dtype, made "
                    f"once per run, as finetune does). Alone, interleaved: "
                    + ", ".join(f"{k} {seconds(v)}" for k, v in variants.items())
                ),
                detail=detail,
            )
        )
        extra = hook_extra(twin.model, list(mask.tensors), max(3, repeats))
        hooks_paired = med["dense"] + sum(extra.values())
        best = med["dense"] / med["hooks"]
        rows.append(
            Row(
                "step_vs_hooks",
                "our masked step / torch.nn.utils.prune hook step",
                key,
                seconds(med["masked"]),
                seconds(med["hooks"]),
                med["masked"] / med["hooks"],
                "≤ 0.70" if key == "mbert" else "(≤ 0.70 on mBERT)",
                (med["masked"] / med["hooks"] <= 0.70) if key == "mbert" else None,
                note=(
                    f"{label}, batch {batch}×{seq}; hook step: forward+backward "
                    f"{seconds(phases['hooks forward+backward'])}, optimizer "
                    f"{seconds(phases['hooks optimizer'])}; ours: "
                    f"forward+backward {seconds(phases['masked forward+backward'])}, optimizer "
                    f"{seconds(phases['masked optimizer'])}, apply_mask {seconds(t_mask)}. Even a free mask "
                    "gives at best "
                    f"dense/hooks = {best:.3f}. "
                    f"Paired: the hooks' own work, timed alone, is {seconds(extra['pre-hooks'])} of pre-hook "
                    "products + "
                    f"{seconds(extra['backward products'])} of gradient×mask a step, so hook step ≈ dense + "
                    f"{sum(extra.values()) / med['dense']:.1%} and ours/hooks ≈ "
                    f"{(med['dense'] + t_mask) / hooks_paired:.3f}"
                ),
                detail={
                    "median_s": med,
                    "dense_over_hooks": best,
                    "hook_extra_median_s": extra,
                    "ratio_paired": (med["dense"] + t_mask) / hooks_paired,
                },
            )
        )
        del model, twin, plain, params, multipliers, mask
        gc.collect()
    return rows
