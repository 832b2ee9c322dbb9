"""Representation similarity, part of the overlap stage when ``similarity.corpus`` names a task: linear CKA, layer by
layer, between the languages' representations of the same parallel sentences.

What is compared is the pre-trained encoder θ0 with a mask applied (the sub-network as transfer starts from it; the
fine-tuned weights are not kept): the dense θ0, each language's IMP mask at every seed, and each control's mask at
the control seeds. Each language's sentences go through that language's own mask, so two languages' IMP
sub-networks are compared on what each computes for its own language. Every pair of languages is paired with the
CKA of the same representations with the sentence pairing broken (the shuffled null), and the IMP masks of one
language at two seeds give the cross-seed reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import datasets
import numpy as np

from ...core.cka import centred_gram, cka_of_grams, shuffled_null
from ...core.maskio import load_mask
from ...core.prune import apply_mask
from ...nn.models import encoder_parameters
from ...nn.representations import mean_pooled_layers
from ..layout import IMP, pair_kind
from ..workspace import Workspace
from .finetune import pretrained_for

DENSE = "dense"
NULL_SEED = 0


def parallel_sentences(ws: Workspace, langs: tuple[str, ...]) -> dict[str, list[list[int]]]:
    """The first ``similarity.max_sentences`` test sentences of the corpus task in each language, tokenised.

    Row i is the same sentence in every language: the corpus task's data source guarantees it (the embedded tasks
    split by message id, the same split in every language; XNLI's test sets are row-aligned translations). Splits of
    unequal length cannot be aligned and are an error."""
    corpus = ws.study.similarity.corpus
    cfg = ws.study.task(corpus)
    texts = {}
    for lang in langs:
        run = ws.layout.data_dir(corpus, lang)
        run.require_done(f"the data of {corpus}/{lang}")
        test = datasets.load_from_disk(str(run.file("raw")))["test"]
        texts[lang] = test["text"] if "text" in test.column_names else [" ".join(t) for t in test["tokens"]]
    sizes = {lang: len(t) for lang, t in texts.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"similarity.corpus {corpus!r}: the test splits differ in length {sizes}, so their rows are not "
            "translations of each other; name a task whose test split is parallel"
        )
    n = min(ws.study.similarity.max_sentences, *sizes.values())
    encode = ws.tokenizer
    return {lang: encode(t[:n], truncation=True, max_length=cfg.max_length)["input_ids"] for lang, t in texts.items()}


def _sub_networks(ws: Workspace, task: str, langs: tuple[str, ...]) -> Iterator[tuple[str, float, int, dict]]:
    """(masks, sparsity, seed, {language: mask path or None}) of every model compared: dense, IMP, controls."""
    study = ws.study
    yield DENSE, 0.0, study.seeds[0], dict.fromkeys(langs)
    control_seeds = study.prune.control_seeds or study.seeds
    for level in study.transfer_levels:
        sparsity = study.sparsity_of(level)
        for seed in study.seeds:
            yield IMP, sparsity, seed, {lang: ws.layout.mask_path(task, lang, seed, level) for lang in langs}
        for control in ws.controls:
            for seed in control_seeds:
                paths = {lang: ws.layout.mask_path(task, lang, seed, level, control.name) for lang in langs}
                yield control.name, sparsity, seed, paths


def similarity_rows(ws: Workspace, task: str) -> list[dict]:
    """Per-layer CKA of every pair of languages under every compared model, with the shuffled null; and, for the
    IMP masks, of one language at two seeds (the cross-seed reference) and of two languages at two seeds."""
    study, shuffles = ws.study, ws.study.similarity.shuffles
    langs = ws.layout.corpus_languages(task)
    sentences = parallel_sentences(ws, langs)
    model, theta0 = pretrained_for(ws, task, langs[0], study.seeds[0])
    params = encoder_parameters(model)
    pad = ws.tokenizer.pad_token_id or 0
    grams: dict[tuple, list] = {}  # (masks, sparsity, seed, lang) -> the centred Gram matrix of every layer
    for masks, sparsity, seed, paths in _sub_networks(ws, task, langs):
        for lang, path in paths.items():
            model.load_state_dict(theta0)
            if path is not None:
                apply_mask(params, load_mask(path))
            layers = mean_pooled_layers(
                model, sentences[lang], pad, device=ws.device, batch_size=study.runtime.eval_batch_size
            )
            grams[(masks, sparsity, seed, lang)] = [centred_gram(h) for h in layers]
    model.load_state_dict(theta0)
    rows = []
    for a, b in combinations(sorted(grams), 2):
        kind = _pair_kind(a, b)
        if kind is None:
            continue
        (masks, sparsity, seed_a, lang_a), (_, _, seed_b, lang_b) = a, b
        for layer, (ka, kb) in enumerate(zip(grams[a], grams[b])):
            null = shuffled_null(ka, kb, shuffles, NULL_SEED)
            rows.append(
                {
                    "task": task,
                    "masks": masks,
                    "sparsity": sparsity,
                    "a": lang_a,
                    "b": lang_b,
                    "seed_a": seed_a,
                    "seed_b": seed_b,
                    "pair": kind,
                    "layer": layer,
                    "cka": cka_of_grams(ka, kb),
                    "null_mean": float(null.mean()),
                    "null_q95": float(np.quantile(null, 0.95)),
                    "sentences": len(sentences[lang_a]),
                }
            )
    return rows


def _pair_kind(a: tuple, b: tuple) -> str | None:
    """Which comparison two representation sets make, or None for pairs not compared (another model, or another
    seed outside IMP)."""
    (masks_a, sparsity_a, seed_a, lang_a), (masks_b, sparsity_b, seed_b, lang_b) = a, b
    if (masks_a, sparsity_a) != (masks_b, sparsity_b) or (seed_a != seed_b and masks_a != IMP):
        return None
    return None if (lang_a, seed_a) == (lang_b, seed_b) else pair_kind(lang_a, seed_a, lang_b, seed_b)
