"""Task datasets in one schema, whatever their source, and their tokenisation.

Standard schema (what every data source returns, splits ``train`` and ``test``):
  mlm     ``text``
  seqcls  ``text``, optional ``text_pair``, ``label`` (ClassLabel)
  tokcls  ``tokens``, ``ner_tags`` (sequence of ClassLabel, IOB2 as WikiAnn)
Hub datasets (XNLI, WikiAnn, Wikipedia) are mapped onto it here; other sources (the offline demo's) deliver it.
"""

from __future__ import annotations

import tempfile
from typing import Any

import datasets
from datasets.exceptions import DatasetGenerationError

from ..spec import TaskConfig, resolve_path

HUB_COLUMNS = {
    "seqcls": {
        "premise": "text",
        "hypothesis": "text_pair",
        "sentence": "text",
        "sentence1": "text",
        "sentence2": "text_pair",
    },
    "tokcls": {},
    "mlm": {},
}
REQUIRED = {"mlm": ("text",), "seqcls": ("text", "label"), "tokcls": ("tokens", "ner_tags")}
SHUFFLE_SEED = 1234  # fixed: the subsample of a split must not depend on the run's seed


class DataError(ValueError):
    """A dataset is missing, empty, unlabelled, or not in the standard schema."""


def _hub_load(task: TaskConfig, lang: str, split: str) -> datasets.Dataset:
    """One split through ``datasets.load_dataset``: a hub name, or a local folder in the hub's layout.

    datasets caches a local folder by its name, not its files, so a regenerated folder would be served from a stale
    cache (and parallel workers would race on it): a local folder is read through a private, temporary cache."""
    name = task.config.format(lang=lang) or None
    local = resolve_path(task.dataset).exists()
    path = str(resolve_path(task.dataset)) if local else task.dataset
    try:
        if local:
            with tempfile.TemporaryDirectory(prefix="subnetworks-data-") as cache:
                return datasets.load_dataset(path, name, split=split, cache_dir=cache, keep_in_memory=True)
        if task.stream_take:
            stream = datasets.load_dataset(path, name, split=split, streaming=True)
            return datasets.Dataset.from_list(list(stream.take(task.stream_take)))
        return datasets.load_dataset(path, name, split=split)
    except (FileNotFoundError, ConnectionError, OSError, ValueError, DatasetGenerationError) as err:
        hint = (
            "check that folder's files"
            if local
            else "Hub datasets need internet; params/demo.yaml runs fully offline on the embedded data"
        )
        raise DataError(
            f"dataset {task.dataset!r} (config {name!r}, split {split!r}) could not be loaded: {err}. {hint}"
        ) from err


def _text_units(ds: datasets.Dataset, min_chars: int = 20) -> datasets.Dataset:
    """Wikipedia articles to paragraph-sized MLM examples (one per non-trivial line)."""
    lines = [line.strip() for text in ds["text"] for line in text.split("\n")]
    return datasets.Dataset.from_dict({"text": [line for line in lines if len(line) >= min_chars]})


def _to_schema(ds: datasets.Dataset, kind: str) -> datasets.Dataset:
    renames = {k: v for k, v in HUB_COLUMNS[kind].items() if k in ds.column_names and v not in ds.column_names}
    ds = ds.rename_columns(renames)
    if kind == "mlm" and "\n" in "".join(ds["text"][:50]):
        ds = _text_units(ds)
    keep = [c for c in ("text", "text_pair", "label", "tokens", "ner_tags") if c in ds.column_names]
    return ds.select_columns(keep)


def load_hub(task: TaskConfig, lang: str) -> datasets.DatasetDict:
    train = _to_schema(_hub_load(task, lang, task.train_split), task.kind)
    if task.test_split:
        test = _to_schema(_hub_load(task, lang, task.test_split), task.kind)
    else:
        if not task.test_size:
            raise DataError("a task with no test_split needs test_size > 0 to hold out a test set")
        parts = train.train_test_split(test_size=task.test_size, seed=SHUFFLE_SEED, shuffle=True)
        train, test = parts["train"], parts["test"]
    return datasets.DatasetDict(train=train, test=test)


def select_splits(task: TaskConfig, lang: str, splits: datasets.DatasetDict) -> datasets.DatasetDict:
    """A source's train/test splits checked against the schema and subsampled as the params say."""
    out = {}
    for split, limit in (("train", task.max_train), ("test", task.max_test)):
        ds = splits[split]
        check_split(ds, task.kind, f"{task.dataset}/{lang}/{split}")
        if limit and len(ds) > limit:
            ds = ds.shuffle(seed=SHUFFLE_SEED).select(range(limit))
        out[split] = ds
    return datasets.DatasetDict(out)


def check_split(ds: datasets.Dataset, kind: str, where: str) -> None:
    missing = [c for c in REQUIRED[kind] if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{where} lacks column(s) {missing} (has {ds.column_names}): a {kind} task needs {list(REQUIRED[kind])}"
        )
    if len(ds) == 0:
        raise DataError(f"{where} is empty")
    if kind != "mlm":
        labels = ds["label"] if kind == "seqcls" else [t for tags in ds["ner_tags"] for t in tags]
        if len(set(labels)) < 2:
            raise DataError(f"{where} has fewer than two distinct labels: it cannot train or score a classifier")


def label_names(ds: datasets.Dataset, kind: str) -> list[str]:
    """The class names of a split (from its ClassLabel feature, else the sorted label values)."""
    if kind == "mlm":
        return []
    feature = ds.features["label"] if kind == "seqcls" else ds.features["ner_tags"].feature
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    values = ds["label"] if kind == "seqcls" else [t for tags in ds["ner_tags"] for t in tags]
    return [str(v) for v in range(max(values) + 1)]


def encode(ds: datasets.Dataset, kind: str, tokenizer: Any, max_length: int) -> datasets.Dataset:
    """Token ids (and labels) for one split. NER labels the first sub-token of each word; the rest get -100."""
    if kind == "mlm":

        def fn(batch):
            return {"input_ids": tokenizer(batch["text"], truncation=True, max_length=max_length)["input_ids"]}
    elif kind == "seqcls":

        def fn(batch):
            pair = batch.get("text_pair")
            enc = tokenizer(batch["text"], pair, truncation=True, max_length=max_length)
            out = {"input_ids": enc["input_ids"], "labels": batch["label"]}
            if "token_type_ids" in enc:
                out["token_type_ids"] = enc["token_type_ids"]
            return out
    else:

        def fn(batch):
            enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
            labels = []
            for i, tags in enumerate(batch["ner_tags"]):
                previous, row = None, []
                for word in enc.word_ids(i):
                    row.append(-100 if word is None or word == previous else tags[word])
                    previous = word
                labels.append(row)
            return {"input_ids": enc["input_ids"], "labels": labels}

    encoded = ds.map(fn, batched=True, remove_columns=ds.column_names, desc=None)
    return encoded.filter(lambda ids: len(ids) > 2, input_columns="input_ids")
