"""The hub loaders of params/paper.yaml, exercised offline on local files in the hub datasets' layouts; the checks
and subsampling of a source's splits; tokenisation."""

import dataclasses
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pytest

from subnetworks.demo.smoke import WIKIANN_TAGS, XNLI_LABELS, make_hub_datasets
from subnetworks.nn.data import SHUFFLE_SEED, DataError, check_split, encode, label_names, load_hub, select_splits
from subnetworks.spec import TaskConfig, load_study


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return make_hub_datasets(tmp_path_factory.mktemp("hub"), ["en", "ur"], n_train=40, n_test=20)


def _paper_task(name: str, folder: Path, **changes) -> TaskConfig:
    """The paper's task config, pointed at a local folder instead of the hub id."""
    task = load_study("params/paper.yaml").task(name)
    small = {"dataset": str(folder), "stream_take": min(task.stream_take, 30), "test_size": min(task.test_size, 10)}
    return dataclasses.replace(task, **{**small, **changes})


def test_xnli_layout_maps_onto_the_pair_schema(hub):
    splits = load_hub(_paper_task("xnli", hub["xnli"]), "ur")
    assert splits["train"].column_names == ["text", "text_pair", "label"]
    assert (len(splits["train"]), len(splits["test"])) == (40, 20)
    assert label_names(splits["train"], "seqcls") == XNLI_LABELS
    assert all(t.startswith("ur") for t in splits["train"]["text"][:5])  # the language's config, not another


def test_wikiann_layout_passes_through(hub):
    splits = load_hub(_paper_task("ner", hub["wikiann"]), "en")
    assert splits["train"].column_names == ["tokens", "ner_tags"]
    assert label_names(splits["train"], "tokcls") == WIKIANN_TAGS


def test_wikipedia_articles_become_paragraphs_with_a_held_out_split(hub):
    splits = load_hub(_paper_task("mlm", hub["wikipedia"]), "ur")
    assert splits["train"].column_names == ["text"]
    assert len(splits["test"]) == 10
    assert all("\n" not in t and len(t) >= 20 for t in splits["train"]["text"])


def test_a_task_without_a_test_split_needs_a_test_size(hub):
    with pytest.raises(DataError, match="needs test_size > 0"):
        load_hub(_paper_task("mlm", hub["wikipedia"], test_size=0), "ur")


def test_missing_language_config_names_the_dataset(hub):
    with pytest.raises(DataError, match="could not be loaded"):
        load_hub(_paper_task("xnli", hub["xnli"]), "fa")


def test_select_splits_subsamples_with_a_fixed_seed_and_checks_the_schema(hub):
    task = _paper_task("xnli", hub["xnli"], max_train=12, max_test=0)
    raw = load_hub(task, "en")
    chosen = select_splits(task, "en", raw)
    assert (len(chosen["train"]), len(chosen["test"])) == (12, 20)  # max_test 0: all
    assert chosen["train"]["text"] == raw["train"].shuffle(seed=SHUFFLE_SEED).select(range(12))["text"]
    assert select_splits(task, "en", raw)["train"]["text"] == chosen["train"]["text"]  # never the run's seed
    small = select_splits(dataclasses.replace(task, max_train=100), "en", raw)
    assert small["train"]["text"] == raw["train"]["text"]  # fewer examples than the limit: all, in order
    with pytest.raises(DataError, match=r"lacks column\(s\) \['label'\]"):
        select_splits(task, "en", datasets.DatasetDict(train=raw["train"].remove_columns("label"), test=raw["test"]))


def test_empty_and_labelless_splits_are_rejected():
    with pytest.raises(DataError, match="is empty"):
        check_split(datasets.Dataset.from_dict({"text": []}), "mlm", "x/ur/train")
    with pytest.raises(DataError, match="fewer than two distinct labels"):
        check_split(datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 0]}), "seqcls", "x/ur/train")
    with pytest.raises(DataError, match="fewer than two distinct labels"):
        check_split(datasets.Dataset.from_dict({"tokens": [["a"], ["b"]], "ner_tags": [[0], [0]]}), "tokcls", "x")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['label'\]"):
        check_split(datasets.Dataset.from_dict({"text": ["a"]}), "seqcls", "x/ur/train")
    check_split(datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}), "seqcls", "x/ur/train")


def test_label_names_without_a_class_label_feature():
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 2, 1]})
    assert label_names(ds, "seqcls") == ["0", "1", "2"]
    assert label_names(ds, "mlm") == []


def test_ner_labels_only_the_first_subtoken(tokenizer):
    ds = datasets.Dataset.from_list([{"tokens": ["en1", "enper0", "zz"], "ner_tags": [0, 1, 0]}])
    row = encode(ds, "tokcls", tokenizer, 16)[0]
    assert row["labels"] == [-100, 0, 1, 0, -100]  # [CLS] en1 enper0 [UNK] [SEP]


def test_encode_truncates_and_drops_examples_without_content(tokenizer):
    ds = datasets.Dataset.from_list([{"text": "en1 en2 en3 en4 en5 en6"}, {"text": ""}, {"text": "en1"}])
    rows = encode(ds, "mlm", tokenizer, 5)
    assert [len(r) for r in rows["input_ids"]] == [5, 3]  # the empty text ([CLS] [SEP]) is dropped
    pairs = encode(
        datasets.Dataset.from_list([{"text": "en1 en2", "text_pair": "en3", "label": 2}]), "seqcls", tokenizer, 16
    )[0]
    assert pairs["labels"] == 2 and len(pairs["input_ids"]) == 6  # [CLS] en1 en2 [SEP] en3 [SEP]


@pytest.mark.slow  # ~11 s: a fresh interpreter imports datasets and transformers
def test_hub_names_offline_say_that_the_demo_runs_offline():
    code = (
        "from subnetworks.spec import load_study\n"
        "from subnetworks.nn.data import load_hub\n"
        "from subnetworks.nn.models import load_model\n"
        "s = load_study('params/paper.yaml')\n"
        "for call in (lambda: load_hub(s.task('xnli'), 'ur'), lambda: load_model(s.model.name, 'mlm')):\n"
        "    try:\n        call()\n    except Exception as e:\n        print(type(e).__name__, e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    ).stdout
    assert "DataError" in out and "ModelUnavailable" in out
    assert out.count("params/demo.yaml runs fully offline") == 2


def test_a_workspace_loads_a_task_by_its_registered_source(hub):
    """``tasks.*.source`` picks the loader: hub here, on the local folder in the hub's layout."""
    from subnetworks.study.workspace import Workspace

    study = load_study("params/smoke.yaml")
    study = dataclasses.replace(
        study, tasks={**study.tasks, "ner": dataclasses.replace(study.task("ner"), dataset=str(hub["wikiann"]))}
    )
    raw = Workspace.create(study, "/nonexistent").raw_splits("ner", "ur")
    assert raw["train"].column_names == ["tokens", "ner_tags"] and len(raw["train"]) == 40  # not yet subsampled
    assert Counter(t[:2] for row in raw["train"]["tokens"] for t in row) == {
        "ur": sum(map(len, raw["train"]["tokens"]))
    }
