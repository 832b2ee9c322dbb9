"""Stage ``data``: one task × language loaded in the standard schema, tokenised, and kept (Arrow, no pickle)."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import datasets

from ...nn.data import encode, label_names, select_splits
from ..environment import environment
from ..store import RunDir
from ..workspace import Workspace


def run_data(ws: Workspace, task: str, lang: str) -> RunDir:
    """Load, tokenise and save one task × language with its stats; a finished run returns at once."""
    run = ws.layout.data_dir(task, lang)
    if run.done:
        return run
    start = time.perf_counter()
    cfg = ws.study.task(task)
    raw = select_splits(cfg, lang, ws.raw_splits(task, lang))
    encoded = datasets.DatasetDict({s: encode(raw[s], cfg.kind, ws.tokenizer, cfg.max_length) for s in raw})
    for name, ds in (("raw", raw), ("encoded", encoded)):
        _save_dataset(ds, run.file(name))
    run.write_json("stats.json", _stats(task, lang, cfg.kind, raw, encoded, ws.tokenizer))
    run.write_json("env.json", environment(str(ws.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start})
    run.mark_done()
    return run


def load_data(ws: Workspace, task: str, lang: str) -> tuple[datasets.DatasetDict, dict[str, Any]]:
    """The encoded splits and stats of a task × language (running its data stage first if needed)."""
    run_data(ws, task, lang)
    return ws.encoded(task, lang)


def _stats(
    task: str, lang: str, kind: str, raw: datasets.DatasetDict, encoded: datasets.DatasetDict, tokenizer
) -> dict[str, Any]:
    lengths = {s: [len(x) for x in encoded[s]["input_ids"]] for s in encoded}
    stats = {
        "task": task,
        "lang": lang,
        "kind": kind,
        "labels": label_names(raw["train"], kind),
        "sizes": {s: len(raw[s]) for s in raw},
        "encoded_sizes": {s: len(encoded[s]) for s in encoded},
        "mean_tokens": {s: sum(v) / len(v) for s, v in lengths.items()},
        "max_tokens": {s: max(v) for s, v in lengths.items()},
        "unknown_token_rate": _unknown_rate(encoded["train"], tokenizer),
    }
    if kind == "seqcls":
        counts = raw["test"].to_pandas()["label"].value_counts()
        stats["test_majority_rate"] = float(counts.max() / counts.sum())
    elif kind == "mlm":
        stats["test_majority_rate"] = commonest_piece_rate(encoded, tokenizer)
    return stats


def _save_dataset(ds: datasets.DatasetDict, dest: Path) -> None:
    """Save beside ``dest``, then swap it in: a killed save never leaves a half-written dataset under ``dest``."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)


def commonest_piece_rate(encoded: datasets.DatasetDict, tokenizer) -> float:
    """MLM's majority class: the share of test pieces that are the commonest training piece (special ones aside);
    masked positions are drawn uniformly, so it is the masked-token accuracy of always predicting that piece."""
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
