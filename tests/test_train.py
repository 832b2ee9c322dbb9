import math

import datasets
import pytest
import torch

from subnetworks.config import TrainConfig
from subnetworks.data import encode, make_collator
from subnetworks.masks import Mask
from subnetworks.models import encoder_parameters
from subnetworks.prune import magnitude_prune, select_prunable
from subnetworks.smoke import _ner_example, _nli_example
from subnetworks.train import LengthGroupedBatches, evaluate, finetune

CPU = torch.device("cpu")


def _nli(tokenizer, n=64, seed=0):
    import random

    rng = random.Random(seed)
    rows = [_nli_example(rng, "en") for _ in range(n)]
    ds = datasets.Dataset.from_list([{"text": r["premise"], "text_pair": r["hypothesis"], "label": r["label"]} for r in rows])
    return encode(ds, "seqcls", tokenizer, 32)


def _half_mask(model):
    params = encoder_parameters(model)
    names = select_prunable(params)
    return magnitude_prune({n: params[n] for n in names}, Mask.full({n: params[n].shape for n in names}), 0.5)


def test_masked_weights_stay_exactly_zero_through_adamw_with_weight_decay(tiny_seqcls, tokenizer):
    mask = _half_mask(tiny_seqcls)
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, max_steps=6, weight_decay=0.1)
    finetune(tiny_seqcls, "seqcls", _nli(tokenizer), make_collator("seqcls", tokenizer), cfg, mask=mask, seed=3, device=CPU, progress=False)
    params = encoder_parameters(tiny_seqcls)
    for name, keep in mask.tensors.items():
        assert bool((params[name][~keep] == 0).all()), name
        assert bool((params[name][keep] != 0).all()), name


@pytest.mark.parametrize("grouped", [False, True])
def test_seeded_training_is_bit_identical_on_cpu(tokenizer, grouped):
    from transformers import BertForSequenceClassification

    from subnetworks.smoke import tiny_bert_config

    states = []
    for seed in (5, 5, 6):
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_bert_config(len(tokenizer), num_labels=3))
        cfg = TrainConfig(learning_rate=1e-3, batch_size=8, max_steps=4, group_by_length=grouped)
        finetune(model, "seqcls", _nli(tokenizer), make_collator("seqcls", tokenizer), cfg, mask=_half_mask(model), seed=seed, device=CPU, progress=False)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_length_grouped_batches_cover_each_example_once_with_little_padding():
    lengths = [int(x) for x in torch.randint(3, 48, (1000,), generator=torch.Generator().manual_seed(0))]
    sampler = LengthGroupedBatches(lengths, 8, torch.Generator().manual_seed(1), group=10)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 125
    assert sorted(i for b in batches for i in b) == list(range(1000))
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    shuffled = torch.randperm(1000, generator=torch.Generator().manual_seed(2)).tolist()
    random_padded = sum(max(lengths[i] for i in shuffled[k : k + 8]) * 8 for k in range(0, 1000, 8))
    assert sum(lengths) / padded > 0.9 > 0.7 > sum(lengths) / random_padded
    longest = [max(lengths[i] for i in b) for b in batches[:40]]
    assert longest != sorted(longest, reverse=True) and longest != sorted(longest)  # batch order is shuffled
    assert list(sampler) != batches  # each pass draws anew
    again = list(LengthGroupedBatches(lengths, 8, torch.Generator().manual_seed(1), group=10))
    assert again == batches


def test_evaluation_does_not_depend_on_the_order_of_the_test_set(tiny_seqcls, tokenizer):
    test = _nli(tokenizer, 48, 1)
    collator = make_collator("seqcls", tokenizer)
    a = evaluate(tiny_seqcls, "seqcls", test, collator, device=CPU, batch_size=16, progress=False)
    b = evaluate(tiny_seqcls, "seqcls", test.shuffle(seed=0), collator, device=CPU, batch_size=16, progress=False)
    assert a == b


def test_frozen_word_embeddings_do_not_move(tiny_seqcls, tokenizer):
    before = tiny_seqcls.bert.embeddings.word_embeddings.weight.detach().clone()
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, max_steps=3, freeze_word_embeddings=True)
    finetune(tiny_seqcls, "seqcls", _nli(tokenizer), make_collator("seqcls", tokenizer), cfg, mask=None, seed=0, device=CPU, progress=False)
    assert torch.equal(tiny_seqcls.bert.embeddings.word_embeddings.weight, before)


def test_classifier_learns_the_synthetic_nli_rule(tiny_seqcls, tokenizer):
    train, test = _nli(tokenizer, 192, 0), _nli(tokenizer, 96, 1)
    collator = make_collator("seqcls", tokenizer)
    cfg = TrainConfig(learning_rate=3e-3, batch_size=16, epochs=8)
    finetune(tiny_seqcls, "seqcls", train, collator, cfg, mask=None, seed=0, device=CPU, progress=False)
    metrics = evaluate(tiny_seqcls, "seqcls", test, collator, device=CPU, progress=False)
    assert metrics["accuracy"] > 0.5  # chance is 1/3


def test_ner_labels_only_the_first_subtoken(tokenizer):
    ds = datasets.Dataset.from_list([{"tokens": ["en1", "enper0", "zz"], "ner_tags": [0, 1, 0]}])
    row = encode(ds, "tokcls", tokenizer, 16)[0]
    assert row["labels"] == [-100, 0, 1, 0, -100]  # [CLS] en1 enper0 [UNK] [SEP]


def test_ner_evaluation_is_entity_f1(tiny_tokcls, tokenizer):
    import random

    rng = random.Random(0)
    rows = [_ner_example(rng, "en") for _ in range(32)]
    ds = encode(datasets.Dataset.from_list([{"tokens": r["tokens"], "ner_tags": r["ner_tags"]} for r in rows]), "tokcls", tokenizer, 32)
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    metrics = evaluate(tiny_tokcls, "tokcls", ds, make_collator("tokcls", tokenizer), labels=labels, device=CPU, progress=False)
    assert 0.0 <= metrics["f1"] <= 1.0 and metrics["score"] == metrics["f1"] and metrics["n"] == 32


def test_mlm_evaluation_uses_fixed_masks_and_scores_only_masked_positions(tiny_mlm, tokenizer):
    ds = encode(datasets.Dataset.from_list([{"text": "en1 en2 en3 en4 en5 en6"}] * 20), "mlm", tokenizer, 16)
    collator = make_collator("mlm", tokenizer)
    a = evaluate(tiny_mlm, "mlm", ds, collator, device=CPU, mask_seed=1, progress=False)
    b = evaluate(tiny_mlm, "mlm", ds, collator, device=CPU, mask_seed=1, progress=False)
    assert a == b
    assert a["n_tokens"] >= 20  # at least one masked token per sequence
    assert math.isfinite(a["perplexity"]) and a["perplexity"] > 1


def test_mlm_collator_never_masks_special_tokens(tokenizer):
    ds = encode(datasets.Dataset.from_list([{"text": "en1 en2 en3"}] * 50), "mlm", tokenizer, 16)
    batch = make_collator("mlm", tokenizer, mlm_probability=0.9, seed=0)([ds[i] for i in range(50)])
    labels = batch["labels"]
    assert bool((labels[:, 0] == -100).all()) and bool((labels[:, -1] == -100).all())
    assert int((labels != -100).sum()) > 50
