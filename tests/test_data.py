"""The hub loaders of params/paper.yaml, exercised offline on local files in the hub datasets' layouts."""

import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from subnetworks.config import TaskConfig, load_study
from subnetworks.data import DataError, check_split, label_names, load_task
from subnetworks.smoke import WIKIANN_TAGS, XNLI_LABELS, make_hub_datasets


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return make_hub_datasets(tmp_path_factory.mktemp("hub"), ["en", "ur"], n_train=40, n_test=20)


def _paper_task(name: str, folder: Path) -> TaskConfig:
    """The paper's task config, pointed at a local folder instead of the hub id."""
    import dataclasses

    task = load_study("params/paper.yaml").task(name)
    return dataclasses.replace(task, dataset=str(folder), stream_take=min(task.stream_take, 30), test_size=min(task.test_size, 10))


def test_xnli_layout_maps_onto_the_pair_schema(hub):
    splits = load_task(_paper_task("xnli", hub["xnli"]), "ur", "unused")
    assert splits["train"].column_names == ["text", "text_pair", "label"]
    assert len(splits["test"]) == 20
    assert label_names(splits["train"], "seqcls") == XNLI_LABELS


def test_wikiann_layout_passes_through(hub):
    splits = load_task(_paper_task("ner", hub["wikiann"]), "en", "unused")
    assert splits["train"].column_names == ["tokens", "ner_tags"]
    assert label_names(splits["train"], "tokcls") == WIKIANN_TAGS


def test_wikipedia_articles_become_paragraphs_with_a_held_out_split(hub):
    splits = load_task(_paper_task("mlm", hub["wikipedia"]), "ur", "unused")
    assert splits["train"].column_names == ["text"]
    assert len(splits["test"]) == 10
    assert all("\n" not in t and len(t) >= 20 for t in splits["train"]["text"])


def test_missing_language_config_names_the_dataset(hub):
    with pytest.raises(DataError, match="could not be loaded"):
        load_task(_paper_task("xnli", hub["xnli"]), "fa", "unused")


def test_empty_and_labelless_splits_are_rejected():
    with pytest.raises(DataError, match="is empty"):
        check_split(datasets.Dataset.from_dict({"text": []}), "mlm", "x/ur/train")
    with pytest.raises(DataError, match="fewer than two distinct labels"):
        check_split(datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 0]}), "seqcls", "x/ur/train")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['label'\]"):
        check_split(datasets.Dataset.from_dict({"text": ["a"]}), "seqcls", "x/ur/train")


def test_hub_names_offline_say_that_the_demo_runs_offline(tmp_path):
    code = (
        "from subnetworks.config import load_study\n"
        "from subnetworks.data import load_task\n"
        "from subnetworks.models import load_model\n"
        "s = load_study('params/paper.yaml')\n"
        "for call in (lambda: load_task(s.task('xnli'), 'ur', ''), lambda: load_model(s.model.name, 'mlm')):\n"
        "    try:\n        call()\n    except Exception as e:\n        print(type(e).__name__, e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120).stdout
    assert "DataError" in out and "ModelUnavailable" in out
    assert out.count("params/demo.yaml runs fully offline") == 2
