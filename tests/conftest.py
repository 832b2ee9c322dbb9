"""Shared fixtures: a tiny BERT built from a config in code (no hub, no downloads) and its tokenizer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from subnetworks.demo.smoke import tiny_bert_config, tiny_tokenizer

sys.path.insert(0, str(Path(__file__).parent))  # tests/support/: the kill harness and other test tools

LANGS = ["en", "ur"]

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
