"""Masked fine-tuning throughput of the project's ``finetune`` vs transformers' ``Trainer`` with a mask callback.

What a user would otherwise write: ``Trainer`` on the same model, batch, data and collator, with a
``TrainerCallback`` that multiplies every pruned weight by its mask after each optimiser step (``on_step_end``,
which ``Trainer`` calls after ``optimizer.step`` → ``lr_scheduler.step`` → ``zero_grad``), and once before the first
step (``on_train_begin``), as ``finetune`` does. Both train the same number of steps from copies of one model with
the same update rule: AdamW, learning rate 2e-5, weight decay 0.01 except on biases and LayerNorms, linear warm-up
then linear decay, no gradient clipping (``finetune`` does not clip, so ``max_grad_norm=0``; ``Trainer`` still
computes the gradient norm for its logs, as it always does). ``Trainer`` keeps its own defaults otherwise, its fused
AdamW (``optim="adamw_torch_fused"``, the kernel ``finetune`` builds too) among them; a third variant, ``Trainer``
with ``optim="adamw_torch"`` (torch's default per-tensor AdamW), shows what the optimiser's implementation alone
weighs (in the notes and the JSON; the row's ratio is against the default). No evaluation, checkpoint, log file,
report or progress bar: ``report_to="none"``, ``save_strategy="no"``, ``logging_strategy="no"``,
``disable_tqdm=True`` (its ``PrinterCallback`` removed, which would print the final metrics),
``dataloader_num_workers=0``, ``use_cpu=True``. The variants share the data (``steps × batch`` examples of one
length: one shuffled pass each, ours by its seeded ``DataLoader``, Trainer by its ``RandomSampler``), the collator
(``subnetworks.nn.collate``) and the seed.

Timed, as a user pays it, model construction excluded: ours = ``TrainConfig`` + ``finetune(...)`` (mask multipliers,
optimiser, loader and the steps); Trainer = ``TrainingArguments`` + ``Trainer(...)`` + ``train()`` (the
accelerator, optimiser, scheduler and loader set up inside ``train()``, the steps, the final metrics). The variants
train their own model again every round (timing does not depend on the weights), interleaved A B / B A, the warm-up
round dropped. Examples a second = steps × batch / seconds. After the runs every pruned weight must be exactly zero
in every model, and each variant must have taken exactly the steps asked.
"""

from __future__ import annotations

import copy
import gc
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

from subnetworks.core.masks import Mask
from subnetworks.core.prune import mask_multipliers
from subnetworks.nn.collate import Collator
from subnetworks.nn.models import encoder_parameters
from subnetworks.nn.train import _optimizer, finetune
from subnetworks.spec import TrainConfig

from .bench_step import KIND, SPARSITY, make_batch, masked_classifier
from .common import MODEL_LABELS, Row, interleaved, median, seconds

MODELS = ("demo",)  # the demo's e5-small shape (a tiny stand-in with --quick)
LEARNING_RATE, WEIGHT_DECAY, WARMUP_RATIO = 2e-5, 0.01, 0.1
OURS, TRAINER, TRAINER_UNFUSED = "ours (finetune)", "Trainer (default fused AdamW)", "Trainer (optim=adamw_torch)"
NOT_MEASURED = "not measured (transformers' Trainer needs accelerate>=1.1.0: pip install accelerate)"


def trainer_available() -> bool:
    try:
        from transformers.utils import is_accelerate_available

        return bool(is_accelerate_available("1.1.0"))
    except ImportError:
        return False


def train_set(vocab_size: int, n: int, seq: int) -> list[dict[str, Any]]:
    """``n`` sentence-pair classification examples of ``seq`` random token ids (bench_step's batch, as rows)."""
    batch = make_batch(vocab_size, n, seq)
    return [
        {
            "input_ids": batch["input_ids"][i].tolist(),
            "token_type_ids": batch["token_type_ids"][i].tolist(),
            "labels": int(batch["labels"][i]),
        }
        for i in range(n)
    ]


def pruned_still_zero(model: torch.nn.Module, mask: Mask) -> bool:
    params = encoder_parameters(model)
    return all(bool((params[n].detach()[~keep] == 0).all()) for n, keep in mask.tensors.items())


def _mask_callback(mask: Mask, stamps: dict[str, list[float]]):
    from transformers import TrainerCallback

    class MaskCallback(TrainerCallback):
        """Zero the pruned weights before the first step and after every optimiser step (multipliers made once)."""

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            params = encoder_parameters(model)
            self.params = [params[n] for n in mask.tensors]
            self.multipliers = list(mask_multipliers(params, mask).values())
            self._apply()
            stamps.setdefault("loop_start", []).append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            self._apply()

        def on_train_end(self, args, state, control, **kwargs):
            stamps.setdefault("loop_end", []).append(time.perf_counter())

        @torch.no_grad()
        def _apply(self) -> None:
            for param, keep in zip(self.params, self.multipliers):
                param.mul_(keep)

    return MaskCallback()


def _stamp(runs: list[list[float]], module, args) -> None:
    runs[-1].append(time.perf_counter())


def _new_run(runs: list[list[float]], train) -> None:
    runs.append([])
    train()


def optimizer_steps(model: torch.nn.Module, repeats: int) -> dict[str, float]:
    """Median seconds of one AdamW ``step`` alone on ``model``'s parameters (fixed random gradients), interleaved,
    warm-up (the moments' allocation) dropped: ``finetune``'s own optimiser (``_optimizer``: the fused kernel, as
    Trainer's default ``adamw_torch_fused``) against the same parameter groups with torch's defaults (a per-tensor
    loop on CPU) and with ``foreach=True``."""
    cfg = TrainConfig(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    ours = _optimizer(model, cfg)
    groups = [{"params": g["params"], "lr": g["lr"], "weight_decay": g["weight_decay"]} for g in ours.param_groups]
    optimizers = {
        "finetune's AdamW (fused=True, as Trainer's default)": ours,
        "torch defaults (per-tensor loop)": torch.optim.AdamW(groups),
        "foreach=True": torch.optim.AdamW(groups, foreach=True),
    }
    g = torch.Generator().manual_seed(0)
    for param in model.parameters():
        param.grad = torch.randn(param.shape, generator=g) * 1e-3
    try:
        times = interleaved({k: opt.step for k, opt in optimizers.items()}, repeats, 1)
    finally:
        model.zero_grad(set_to_none=True)
        del optimizers, ours
        gc.collect()
    return {k: median(v) for k, v in times.items()}


class TrainerRun:
    """One masked training of ``model`` by transformers' Trainer, timed in its parts on every call."""

    def __init__(self, model, data, collator, mask: Mask, steps: int, batch: int, optim: str, out: Path):
        self.model, self.data, self.collator, self.mask = model, data, collator, mask
        self.steps, self.batch, self.optim, self.out = steps, batch, optim, out
        self.stamps: dict[str, list[float]] = {}
        self.steps_done: list[int] = []
        self.reported_runtime: list[float] = []

    def __call__(self) -> None:
        from transformers import PrinterCallback, Trainer, TrainingArguments

        start = time.perf_counter()
        args = TrainingArguments(
            output_dir=str(self.out),
            per_device_train_batch_size=self.batch,
            max_steps=self.steps,
            learning_rate=LEARNING_RATE,
            weight_decay=WEIGHT_DECAY,
            lr_scheduler_type="linear",
            warmup_steps=int(WARMUP_RATIO * self.steps),  # finetune's int(warmup_ratio × steps)
            max_grad_norm=0.0,
            optim=self.optim,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            use_cpu=True,
            seed=0,
        )
        trainer = Trainer(
            model=self.model,
            args=args,
            train_dataset=self.data,
            data_collator=self.collator,
            callbacks=[_mask_callback(self.mask, self.stamps)],
        )
        trainer.remove_callback(PrinterCallback)
        self.stamps.setdefault("constructed", []).append(time.perf_counter() - start)
        output = trainer.train()
        self.steps_done.append(output.global_step)
        self.reported_runtime.append(output.metrics["train_runtime"])
        self.stamps.setdefault("start", []).append(start)
        del trainer, output


class OursRun:
    def __init__(self, model, data, collator, mask: Mask, steps: int, batch: int):
        self.model, self.data, self.collator, self.mask, self.steps, self.batch = (
            model,
            data,
            collator,
            mask,
            steps,
            batch,
        )
        self.loop_s: list[float] = []
        self.steps_done: list[int] = []

    def __call__(self) -> None:
        cfg = TrainConfig(
            learning_rate=LEARNING_RATE,
            batch_size=self.batch,
            max_steps=self.steps,
            weight_decay=WEIGHT_DECAY,
            warmup_ratio=WARMUP_RATIO,
        )
        result = finetune(
            self.model,
            KIND,
            self.data,
            self.collator,
            cfg,
            mask=self.mask,
            seed=0,
            device=torch.device("cpu"),
            progress=False,
        )
        self.loop_s.append(result.seconds)
        self.steps_done.append(result.steps)


def run(
    models: list[str], quick: bool, repeats: int, warmup: int, batch: int, seq: int, steps: int, log=print
) -> list[Row]:

    rows: list[Row] = []
    for key in [m for m in models if m in MODELS]:
        label = MODEL_LABELS[key]
        title = "masked fine-tuning throughput (examples/s): ours (finetune) / transformers Trainer + mask callback"
        if not trainer_available():
            log(f"  trainer [{key}]: {NOT_MEASURED}")
            rows.append(Row("trainer_throughput", title, key, NOT_MEASURED, "", None, "≥ 1.0", None, note=label))
            continue
        config, model, params, mask = masked_classifier(key, quick)
        data = train_set(config.vocab_size, steps * batch, seq)  # one pass = exactly `steps` batches
        collator = Collator(kind=KIND, pad_id=config.pad_token_id)
        optims = {TRAINER: "adamw_torch_fused", TRAINER_UNFUSED: "adamw_torch"}
        threads = torch.get_num_threads()
        log(
            f"  trainer [{key}] batch {batch}×{seq}, {steps} steps a run, {len(mask.tensors)} prunable tensors, "
            f"{mask.numel / 1e6:.1f}M weights, {threads} threads"
        )
        with tempfile.TemporaryDirectory() as tmp:
            ours = OursRun(model, data, collator, mask, steps, batch)
            theirs = {
                name: TrainerRun(copy.deepcopy(model), data, collator, mask, steps, batch, optim, Path(tmp) / str(i))
                for i, (name, optim) in enumerate(optims.items())
            }
            variants = {OURS: ours, **theirs}
            # Every forward's time, a list per run: consecutive forwards bound one whole step of either framework
            # (collate, forward, backward, optimiser, schedule, mask), set-up and the last step left out.
            forwards: dict[str, list[list[float]]] = {name: [] for name in variants}
            hooks = [v.model.register_forward_pre_hook(partial(_stamp, forwards[name])) for name, v in variants.items()]
            runs = {name: partial(_new_run, forwards[name], v) for name, v in variants.items()}
            times = interleaved(runs, repeats, warmup)
            for hook in hooks:
                hook.remove()
            written = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file())
        assert not written, f"Trainer wrote files although told not to: {written}"
        assert torch.get_num_threads() == threads, "Trainer changed torch's thread count"
        for name, variant in {OURS: ours, **theirs}.items():
            assert variant.steps_done == [steps] * (warmup + repeats), (name, variant.steps_done)
            assert pruned_still_zero(variant.model, mask), f"{name}: pruned weights are not exactly zero"
        med = {k: median(v) for k, v in times.items()}
        per_second = {k: steps * batch / v for k, v in med.items()}
        ratio = per_second[OURS] / per_second[TRAINER]
        loops = {OURS: median(ours.loop_s[warmup:])}
        setup = {OURS: med[OURS] - loops[OURS]}
        constructed = {}
        for name, variant in theirs.items():
            s = variant.stamps
            loop = [end - begin for begin, end in zip(s["loop_start"], s["loop_end"])][warmup:]
            loops[name] = median(loop)
            setup[name] = med[name] - loops[name]
            constructed[name] = median(s["constructed"][warmup:])
        loop_ratio = loops[TRAINER] / loops[OURS]
        step_s = {k: [b - a for run in v[warmup:] for a, b in zip(run, run[1:])] for k, v in forwards.items()}
        assert all(len(v) == repeats * (steps - 1) for v in step_s.values()), {k: len(v) for k, v in step_s.items()}
        step_med = {k: median(v) for k, v in step_s.items()}
        step_ratio = step_med[TRAINER] / step_med[OURS]  # ours / Trainer in examples a second, step by step
        adamw = optimizer_steps(ours.model, max(3, repeats))
        log("    AdamW step alone: " + ", ".join(f"{k} {seconds(v)}" for k, v in adamw.items()))
        log("    " + ", ".join(f"{k} {seconds(v)} ({per_second[k]:.2f} ex/s)" for k, v in med.items()))
        unfused = (
            f"; Trainer with optim=adamw_torch (torch's per-tensor AdamW) {per_second[TRAINER_UNFUSED]:.2f} "
            f"ex/s ({seconds(med[TRAINER_UNFUSED])}, loop {seconds(loops[TRAINER_UNFUSED])}): ours / it = "
            f"{per_second[OURS] / per_second[TRAINER_UNFUSED]:.3f}"
        )
        rows.append(
            Row(
                "trainer_throughput",
                title,
                key,
                f"{per_second[OURS]:.2f} ex/s ({seconds(med[OURS])})",
                f"{per_second[TRAINER]:.2f} ex/s ({seconds(med[TRAINER])})",
                ratio,
                "≥ 1.0",
                ratio >= 1.0,
                note=(
                    f"{label}, batch {batch}×{seq}, {KIND}, {SPARSITY:.0%} magnitude mask, {steps} steps a run, "
                    f"{threads} torch thread(s); medians of {repeats} interleaved runs a variant after {warmup} "
                    "warm-up. Timed: ours = TrainConfig + finetune() (mask multipliers, optimiser, loader, steps); "
                    "Trainer = TrainingArguments + Trainer() + train() with a TrainerCallback that multiplies the "
                    "pruned weights by the mask at on_train_begin and on_step_end; model construction excluded. "
                    f"Same update rule (AdamW lr {LEARNING_RATE:g}, decay {WEIGHT_DECAY:g} off biases/LayerNorms, "
                    f"linear schedule, warm-up {int(WARMUP_RATIO * steps)} step(s), no clipping); Trainer keeps its "
                    "default fused AdamW. Set-up (time outside the step loop): ours "
                    f"{seconds(setup[OURS])}, Trainer {seconds(setup[TRAINER])} (of which TrainingArguments + "
                    f"Trainer() {seconds(constructed[TRAINER])}). Step loops alone: ours {seconds(loops[OURS])}, "
                    f"Trainer {seconds(loops[TRAINER])}, Trainer/ours = {loop_ratio:.3f}{unfused}. Step by step "
                    f"(median of the {repeats * (steps - 1)} intervals between consecutive forwards of the measured "
                    f"runs, robust to bursts of load): ours {seconds(step_med[OURS])}, Trainer "
                    f"{seconds(step_med[TRAINER])}, Trainer with adamw_torch {seconds(step_med[TRAINER_UNFUSED])}: "
                    f"ours / Trainer throughput = {step_ratio:.3f}, ours / Trainer with adamw_torch = "
                    f"{step_med[TRAINER_UNFUSED] / step_med[OURS]:.3f}. Pruned weights "
                    "exactly zero in every model after every run (asserted); no file written by Trainer. "
                    "One AdamW step alone on this model (same parameter groups, interleaved, "
                    f"{max(3, repeats)} repeats): " + ", ".join(f"{k} {seconds(v)}" for k, v in adamw.items())
                ),
                detail={
                    "batch": batch,
                    "seq_len": seq,
                    "steps": steps,
                    "task": KIND,
                    "sparsity": SPARSITY,
                    "repeats": repeats,
                    "warmup": warmup,
                    "torch_threads": threads,
                    "prunable_weights": mask.numel,
                    "optim": optims,
                    "median_s": med,
                    "times_s": times,
                    "examples_per_second": per_second,
                    "loop_median_s": loops,
                    "setup_median_s": setup,
                    "trainer_constructed_median_s": constructed,
                    "trainer_reported_train_runtime_s": {k: v.reported_runtime for k, v in theirs.items()},
                    "loop_ratio_trainer_over_ours": loop_ratio,
                    "step_median_s": step_med,
                    "step_times_s": step_s,
                    "step_ratio_ours_over_trainer_throughput": step_ratio,
                    "pruned_weights_zero": True,
                    "adamw_step_median_s": adamw,
                },
            )
        )
        del model, ours, theirs, params, mask, data
        gc.collect()
    return rows
