"""Shared fixtures: a tiny BERT built from a config in code (no hub, no downloads) and its tokenizer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from subnetworks.demo.smoke import tiny_bert_config, tiny_tokenizer

sys.path.insert(0, str(Path(__file__).parent / "support"))  # the kill harness: a test tool with a CLI of its own
sys.path.insert(0, str(Path(__file__).parents[1]))  # the benchmarks package, which its test runs

LANGS = ["en", "ur"]
# fixtures that build a whole study (through the CLI, the kill harness, Slurm or the stage functions): every test
# that uses one is marked slow, so `pytest -m "not slow"` runs the fast suite
SLOW_FIXTURES = {"smoke", "killed", "tiny_study", "slurm_study", "assets", "ws"}

torch.set_num_threads(1)  # tiny models: one thread is fastest and avoids OpenMP contention on 2 cores


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer(LANGS)


@pytest.fixture
def tiny_mlm(tokenizer):
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    return BertForMaskedLM(tiny_bert_config(len(tokenizer)))


@pytest.fixture
def tiny_tokcls(tokenizer):
    from transformers import BertForTokenClassification

    torch.manual_seed(1)
    return BertForTokenClassification(tiny_bert_config(len(tokenizer), num_labels=7))


@pytest.fixture
def tiny_seqcls(tokenizer):
    from transformers import BertForSequenceClassification

    torch.manual_seed(2)
    return BertForSequenceClassification(tiny_bert_config(len(tokenizer), num_labels=3))


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
