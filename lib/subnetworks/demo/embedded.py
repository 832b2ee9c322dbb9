"""Offline embedded demo tasks built from ``data/demo/`` (no network, no model in the labelling).

The files under ``data/demo/`` come from Debian packages (Firefox ESR language packs, MPL-2.0; iso-codes, LGPL-2.1+)
and are rebuilt with ``python scripts/build_demo_data.py``. Three tasks, one of each type the paper uses, in the nine
paper languages:

``mlm`` (stands in for Wikipedia MLM)
    column ``text``: the localised Firefox UI sentences of the aligned (parallel) corpus, i.e. the same messages in
    every language; messages whose English string has two or more words. Split by message; train ≤ 2000, test 500.

``xnli`` (stands in for XNLI: sentence classification; single sentence, no ``text_pair``)
    columns ``text``, ``label`` (ClassLabel ``browser``, ``toolkit``, ``security``): the Mozilla source component the
    string belongs to, read from its resource path (``browser/**``: the Firefox front-end incl. preferences and new tab;
    ``toolkit/**`` except errors and locale names, plus ``dom`` and ``crashreporter``: shared platform UI such as
    about: pages, printing, the PDF viewer, downloads; ``security/**`` plus ``toolkit/neterror``: certificates, TLS/NSS
    and network error pages). Balanced classes, the same messages (ids) in every language, split by message.
    Sentence-pair designs were measured first and rejected: (same message / same file / other component) has only
    57 messages with two or more strings in the aligned corpus; (same file / same component / other component) and
    (neighbouring ids / same file / other component) stay at 0.31-0.43 with a character n-gram logistic regression
    (pair and product features) and at 0.39-0.49 with a logistic regression on frozen e5-small embeddings (chance
    0.33), against 0.72-0.79 and 0.69-0.73 for this design.

``ner`` (stands in for WikiAnn)
    columns ``tokens``, ``ner_tags`` (ClassLabel ``O B-PER I-PER B-ORG I-ORG B-LOC I-LOC``). Silver IOB2 tags: real
    localised names placed into the variable and term slots of real Firefox messages (``{ -brand-short-name }``,
    ``{ $engine }``, ``{ $city }``, ``{ $name }`` …): LOC = ISO 3166-1 country names in the language (iso-codes), ORG =
    the localised Firefox/Mozilla brand names (the branding terms), PER = the localisers credited in the language packs'
    manifests (names in the language's script; hi, ru, zh also the Latin-script ones, as their packs credit in Latin).
    Slots by their variable name (``slot_kind``): terms, engines, providers, sites → ORG; ``city``/``region``/
    ``country`` → LOC; user names → PER; free names (``$name``, ``$deviceName``, ``$tabGroupName`` …) → PER or LOC;
    numeric slots get a number (tag O); a message with any other slot is not used. Brand-term templates are the large
    majority, so half of the sentences come from the templates with a PER / LOC slot (filled more often). Train and
    test use disjoint message templates (a hash of the message id decides, so the same message is on the same side in
    every language). Tokens: whitespace words with leading/trailing
    punctuation split off; zh: one token per Han character / CJK punctuation (as WikiAnn zh), runs of Latin letters and
    digits as one token.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets

from ..spec import repo_root
from .templates import fill_template, parse_template

EMBEDDED_LANGUAGES: tuple[str, ...] = ("ar", "de", "en", "fa", "fr", "hi", "ru", "ur", "zh")
EMBEDDED_TASKS: tuple[str, ...] = ("mlm", "xnli", "ner")
NER_LABELS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
XNLI_LABELS: tuple[str, ...] = ("browser", "toolkit", "security")
SEED = 57
BUILD_COMMAND = "python scripts/build_demo_data.py"
DEFAULT_DATA_DIR = repo_root() / "data" / "demo"

MLM_MIN_WORDS = 2  # of the English string of a message
MLM_TRAIN, MLM_TEST = 2000, 500
XNLI_TEST_PER_CLASS = 120  # the rest of the smallest class (security) goes to train; other classes are cut to match
NER_TRAIN, NER_TEST = 1000, 400
NER_TEST_FRACTION = 0.25  # of the usable templates
NER_MAX_FILLS = 16  # sentences per template at most

# ----------------------------------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------------------------------


def _check(task: str, lang: str) -> None:
    if task not in EMBEDDED_TASKS:
        raise ValueError(f"unknown embedded task {task!r}; allowed: {', '.join(EMBEDDED_TASKS)}")
    if lang not in EMBEDDED_LANGUAGES:
        raise ValueError(f"unknown embedded language {lang!r}; allowed: {', '.join(EMBEDDED_LANGUAGES)}")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(
            f"embedded demo data file {path} is missing; rebuild data/demo/ with `{BUILD_COMMAND}` "
            f"(or `{BUILD_COMMAND} --out {path.parent.parent}`)"
        )
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _messages(data_dir: Path, lang: str) -> dict[str, str]:
    return {r["id"]: r["text"] for r in _read_jsonl(data_dir / "messages" / f"{lang}.jsonl")}


def _hash(key: str, salt: str = "") -> str:
    return hashlib.sha1(f"{SEED}:{salt}:{key}".encode()).hexdigest()


def _message_group(key: str) -> str:
    """``path#message.attribute`` -> ``path#message``: the strings of one message stay on one side of a split."""
    path, _, ident = key.partition("#")
    return path + "#" + ident.split(".", 1)[0]


# ----------------------------------------------------------------------------------------------------------------------
# MLM
# ----------------------------------------------------------------------------------------------------------------------


def _mlm(data_dir: Path, lang: str) -> dict[str, list[dict[str, Any]]]:
    english = _messages(data_dir, "en")
    texts = _messages(data_dir, lang)
    seen: set[str] = set()
    keys = []
    for key in sorted(english, key=lambda k: (_hash(_message_group(k), "mlm"), k)):
        if key not in texts or len(english[key].split()) < MLM_MIN_WORDS or english[key] in seen:
            continue
        seen.add(english[key])
        keys.append(key)
    groups = []
    for key in keys:
        g = _message_group(key)
        if not groups or groups[-1][0] != g:
            groups.append((g, []))
        groups[-1][1].append(key)
    test, train = [], []
    for _, members in groups:
        (test if len(test) < MLM_TEST else train).extend(members)
    test, train = test[:MLM_TEST], train[:MLM_TRAIN]
    return {s: [{"id": k, "text": texts[k]} for k in ks] for s, ks in (("train", train), ("test", test))}


# ----------------------------------------------------------------------------------------------------------------------
# sentence classification (XNLI stand-in)
# ----------------------------------------------------------------------------------------------------------------------


def component_label(key: str) -> str | None:
    """The XNLI stand-in label of a message id (``<resource path>#<id>``), or None when it belongs to no class."""
    parts = key.split("#", 1)[0].split("/")
    top, sub = parts[0], (parts[1] if len(parts) > 2 else "")
    if top == "browser":
        return "browser"
    if top == "security" or (top == "toolkit" and sub == "neterror"):
        return "security"
    if top in ("dom", "crashreporter") or (top == "toolkit" and sub and sub != "intl"):
        return "toolkit"
    return None


def _xnli(data_dir: Path, lang: str) -> dict[str, list[dict[str, Any]]]:
    english = _messages(data_dir, "en")
    texts = _messages(data_dir, lang)
    by_class: dict[str, dict[str, list[str]]] = {c: defaultdict(list) for c in XNLI_LABELS}
    seen: set[str] = set()
    for key in sorted(english):  # one string per English text (exact duplicates such as "Port" are ambiguous)
        label = component_label(key)
        if label is None or english[key] in seen:
            continue
        seen.add(english[key])
        by_class[label][_message_group(key)].append(key)
    per_class = min(sum(map(len, groups.values())) for groups in by_class.values())
    n_test = min(XNLI_TEST_PER_CLASS, per_class // 4)
    n_train = per_class - n_test
    splits: dict[str, list[list[str]]] = {"train": [], "test": []}
    for label in XNLI_LABELS:
        groups = by_class[label]
        order = sorted(groups, key=lambda g: (_hash(g, "xnli"), g))
        test: list[str] = []
        used = set()
        for g in order:
            if len(test) >= n_test:
                break
            used.add(g)
            test.extend(groups[g][: n_test - len(test)])
        train: list[str] = []
        for g in order:
            if g in used:
                continue
            if len(train) >= n_train:
                break
            train.extend(groups[g][: n_train - len(train)])
        splits["test"].append(test)
        splits["train"].append(train)
    out = {}
    for split, per_label in splits.items():
        rows = []
        # interleave the classes so that any prefix (max_train / max_test) stays balanced
        for i in range(max(map(len, per_label))):
            for label_id, keys in enumerate(per_label):
                if i < len(keys):
                    rows.append({"id": keys[i], "text": texts[keys[i]], "label": label_id})
        out[split] = rows
    return out


# ----------------------------------------------------------------------------------------------------------------------
# NER (WikiAnn stand-in)
# ----------------------------------------------------------------------------------------------------------------------


def _ner(data_dir: Path, lang: str) -> dict[str, list[dict[str, Any]]]:
    names: dict[str, list[str]] = defaultdict(list)
    for row in _read_jsonl(data_dir / "names" / f"{lang}.jsonl"):
        names[row["type"]].append(row["name"])
    templates = []
    for row in _read_jsonl(data_dir / "templates" / f"{lang}.jsonl"):
        parts = parse_template(row["text"])
        if parts is None:
            continue
        if any(k in ("PER", "ORG", "LOC") and not names.get(k) for k, _ in parts):
            continue
        templates.append((row["id"], parts))
    templates.sort(key=lambda t: (_hash(t[0], "ner"), t[0]))
    n_test = max(1, round(len(templates) * NER_TEST_FRACTION))
    split_templates = {"test": templates[:n_test], "train": templates[n_test:]}
    targets = {"train": NER_TRAIN, "test": NER_TEST}
    out = {}
    for split, temps in split_templates.items():
        rng = random.Random(f"{SEED}:ner:{lang}:{split}")
        seen: set[tuple[str, ...]] = set()
        # Brand-term templates (ORG only) are the large majority; templates with a PER / LOC / ANY slot are filled more
        # often (up to NER_MAX_FILLS times each) so that about half of the sentences come from them.
        mixed = [t for t in temps if any(k in ("PER", "LOC", "ANY") for k, _ in t[1])]
        org_only = [t for t in temps if not any(k in ("PER", "LOC", "ANY") for k, _ in t[1])]
        rows_mixed = _fill_round_robin(mixed, targets[split] // 2, names, lang, rng, seen)
        rows_org = _fill_round_robin(org_only, targets[split] - len(rows_mixed), names, lang, rng, seen)
        rows = []
        for i in range(max(len(rows_mixed), len(rows_org))):  # interleave: any prefix keeps the mix
            rows.extend(r[i] for r in (rows_mixed, rows_org) if i < len(r))
        out[split] = rows
    return out


def _fill_round_robin(
    temps: list[tuple[str, list[tuple[str, str]]]],
    target: int,
    names: dict[str, list[str]],
    lang: str,
    rng: random.Random,
    seen: set[tuple[str, ...]],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for _round in range(NER_MAX_FILLS):  # round-robin over the templates: any prefix covers many templates
        for key, parts in temps:
            if len(rows) >= target:
                return rows
            for _attempt in range(5):
                tokens, tags = fill_template(parts, names, lang, rng)
                if tuple(tokens) not in seen:
                    break
            else:
                continue
            seen.add(tuple(tokens))
            rows.append({"id": key, "tokens": tokens, "ner_tags": [NER_LABELS.index(t) for t in tags]})
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------------------------

_BUILDERS = {"mlm": _mlm, "xnli": _xnli, "ner": _ner}


def embedded_examples(task: str, lang: str, data_dir: Path | str = DEFAULT_DATA_DIR) -> dict[str, list[dict[str, Any]]]:
    """The examples of a task as plain rows, each with the message ``id`` it comes from (for inspection and tests):
    ``{"train": [...], "test": [...]}``; deterministic."""
    _check(task, lang)
    return _BUILDERS[task](Path(data_dir), lang)


def _features(task: str):
    if task == "mlm":
        return datasets.Features({"text": datasets.Value("string")})
    if task == "xnli":
        return datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(XNLI_LABELS))}
        )
    return datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(NER_LABELS))),
        }
    )


def load_embedded(
    task: str,
    lang: str,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    *,
    max_train: int | None = None,
    max_test: int | None = None,
):
    """The embedded demo task ``task`` (one of EMBEDDED_TASKS) in ``lang`` (one of EMBEDDED_LANGUAGES) as a
    ``datasets.DatasetDict`` with splits "train" and "test" (schemas in the module docstring). ``max_train`` /
    ``max_test`` keep a prefix of each split (still balanced for xnli and aligned across languages)."""
    rows = embedded_examples(task, lang, data_dir)
    features = _features(task)
    limits = {"train": max_train, "test": max_test}
    out = {}
    for split in ("train", "test"):
        split_rows = rows[split] if limits[split] is None else rows[split][: max(0, limits[split])]
        columns = {name: [r[name] for r in split_rows] for name in features}
        out[split] = datasets.Dataset.from_dict(columns, features=features)
    return datasets.DatasetDict(out)


def describe(rows: Iterable[dict[str, Any]], task: str) -> dict[str, Any]:
    """Summary counts of a split's rows (class balance / entity counts), for reports."""
    rows = list(rows)
    if task == "xnli":
        counts = defaultdict(int)
        for r in rows:
            counts[XNLI_LABELS[r["label"]]] += 1
        return {"n": len(rows), "labels": dict(counts), "majority": max(counts.values()) / len(rows) if rows else 0.0}
    if task == "ner":
        ents = defaultdict(int)
        for r in rows:
            for t in r["ner_tags"]:
                if NER_LABELS[t].startswith("B-"):
                    ents[NER_LABELS[t][2:]] += 1
        n_tok = sum(len(r["tokens"]) for r in rows)
        return {
            "n": len(rows),
            "entities": dict(ents),
            "tokens_per_sentence": n_tok / len(rows) if rows else 0.0,
            "templates": len({r["id"] for r in rows}),
        }
    return {"n": len(rows), "chars_per_text": sum(len(r["text"]) for r in rows) / len(rows) if rows else 0.0}
