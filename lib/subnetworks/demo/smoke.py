"""Tiny assets for tests and ``params/smoke.yaml``: a BERT built from a config in code, a word-level tokenizer,
and datasets in the hub layouts of XNLI, WikiAnn and Wikipedia (parquet files plus a dataset card), so the hub
loaders of ``params/paper.yaml`` run offline on them. The data is synthetic but learnable, with a per-language
vocabulary, so sub-networks, transfer and overlap all have something to find.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import datasets
import torch
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

from ..spec import repo_root

XNLI_LABELS = ["entailment", "neutral", "contradiction"]
WIKIANN_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
N_WORDS = 24


def _words(lang: str) -> list[str]:
    return [f"{lang}{i}" for i in range(N_WORDS)]


def _names(lang: str, kind: str) -> list[str]:
    return [f"{lang}{kind}{i}" for i in range(4)]


def tiny_tokenizer(languages: list[str]):
    """A word-level tokenizer over the synthetic vocabulary, with BERT's special tokens and pair layout."""
    vocab = list(SPECIALS) + ["not", "and"]
    for lang in languages:
        vocab += _words(lang) + [n for k in ("per", "org", "loc") for n in _names(lang, k)]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def tiny_bert_config(vocab_size: int, **overrides):
    """A two-layer BERT whose intermediate size (37) is not a multiple of 8, to exercise bit packing."""
    values = dict(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        pad_token_id=0,
    )
    values.update(overrides)
    return BertConfig(**values)


def make_tiny_model(out: Path, languages: list[str], seed: int = 0) -> Path:
    """Save a randomly initialised tiny BERT (with MLM head) and its tokenizer in the hub layout."""
    tokenizer = tiny_tokenizer(languages)
    torch.manual_seed(seed)
    model = BertForMaskedLM(tiny_bert_config(len(tokenizer)))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def _card(configs: dict[str, list[str]]) -> str:
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {s}\n    path: {name}/{s}-00000-of-00001.parquet" for s in splits]
    return "\n".join(lines + ["---", "", "Synthetic data in a hub dataset's layout, made for tests.", ""])


def _write(root: Path, lang: str, split: str, ds: datasets.Dataset) -> None:
    path = root / lang / f"{split}-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))


def _nli_example(rng: random.Random, lang: str) -> dict:
    words = _words(lang)
    premise = rng.sample(words, 5)
    label = rng.randrange(3)
    if label == 0:
        hypothesis = rng.sample(premise, 3)
    elif label == 1:
        hypothesis = rng.sample([w for w in words if w not in premise], 3)
    else:
        hypothesis = ["not"] + rng.sample(premise, 2)
    return {"premise": " ".join(premise), "hypothesis": " ".join(hypothesis), "label": label}


def _ner_example(rng: random.Random, lang: str) -> dict:
    tokens, tags = [], []
    for _ in range(rng.randint(4, 8)):
        if rng.random() < 0.3:
            kind = rng.choice(["per", "org", "loc"])
            begin = WIKIANN_TAGS.index(f"B-{kind.upper()}")
            for i, name in enumerate(rng.sample(_names(lang, kind), rng.randint(1, 2))):
                tokens.append(name)
                tags.append(begin if i == 0 else begin + 1)
        else:
            tokens.append(rng.choice(_words(lang)))
            tags.append(0)
    return {"tokens": tokens, "ner_tags": tags, "langs": [lang] * len(tokens), "spans": []}


def _doc(rng: random.Random, lang: str) -> str:
    words = _words(lang)
    lines = []
    for _ in range(rng.randint(2, 4)):
        start = rng.randrange(N_WORDS)
        lines.append(" ".join(words[(start + i) % N_WORDS] for i in range(rng.randint(5, 10))))
    return "\n".join(lines)


def make_hub_datasets(
    root: Path, languages: list[str], n_train: int = 96, n_test: int = 48, seed: int = 0
) -> dict[str, Path]:
    """XNLI-, WikiAnn- and Wikipedia-shaped parquet datasets under ``root``; returns their folders."""
    nli_features = datasets.Features(
        premise=datasets.Value("string"),
        hypothesis=datasets.Value("string"),
        label=datasets.ClassLabel(names=XNLI_LABELS),
    )
    ner_features = datasets.Features(
        tokens=datasets.Sequence(datasets.Value("string")),
        ner_tags=datasets.Sequence(datasets.ClassLabel(names=WIKIANN_TAGS)),
        langs=datasets.Sequence(datasets.Value("string")),
        spans=datasets.Sequence(datasets.Value("string")),
    )
    wiki_features = datasets.Features(
        id=datasets.Value("string"),
        url=datasets.Value("string"),
        title=datasets.Value("string"),
        text=datasets.Value("string"),
    )
    folders = {name: root / name for name in ("xnli", "wikiann", "wikipedia")}
    for lang in languages:
        rng = random.Random(f"{seed}-{lang}")
        for split, n in (("train", n_train), ("validation", n_test), ("test", n_test)):
            nli = [_nli_example(rng, lang) for _ in range(n)]
            _write(folders["xnli"], lang, split, datasets.Dataset.from_list(nli, features=nli_features))
            ner = [_ner_example(rng, lang) for _ in range(n)]
            _write(folders["wikiann"], lang, split, datasets.Dataset.from_list(ner, features=ner_features))
        docs = [{"id": str(i), "url": "", "title": f"{lang} {i}", "text": _doc(rng, lang)} for i in range(n_train)]
        _write(
            folders["wikipedia"], f"20231101.{lang}", "train", datasets.Dataset.from_list(docs, features=wiki_features)
        )
    for name in ("xnli", "wikiann"):
        (folders[name] / "README.md").write_text(_card({lang: ["train", "validation", "test"] for lang in languages}))
    (folders["wikipedia"] / "README.md").write_text(_card({f"20231101.{lang}": ["train"] for lang in languages}))
    return folders


def write_smoke_params(root: Path, source: Path | None = None) -> Path:
    """A copy of ``params/smoke.yaml`` whose model, data, artefacts and reports all live under ``root``."""
    data = yaml.safe_load((source or repo_root() / "params" / "smoke.yaml").read_text(encoding="utf-8"))
    assets = make_smoke_assets(root / "assets", data["languages"])
    data["model"]["name"] = str(assets["model"])
    for task in data["tasks"].values():
        task["dataset"] = str(assets[Path(task["dataset"]).name])
    data["runtime"].update(artifacts=str(root / "artifacts"), reports_dir=str(root / "reports"))
    path = root / "smoke.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def keep_tasks(data: dict, tasks: Iterable[str]) -> dict:
    """Params (as read from YAML) cut down to ``tasks``, in place; representation similarity stays only where its
    corpus task stays (a similarity corpus must be a task of the study)."""
    data["tasks"] = {name: t for name, t in data["tasks"].items() if name in set(tasks)}
    if data.get("similarity", {}).get("corpus") not in data["tasks"]:
        data.pop("similarity", None)
    return data


def make_smoke_assets(root: Path, languages: list[str]) -> dict[str, Path]:
    """Everything ``params/smoke.yaml`` needs, under ``root`` (default ``.cache/smoke``)."""
    folders = make_hub_datasets(root, languages)
    folders["model"] = make_tiny_model(root / "tiny-bert", languages)
    return folders
