"""Evaluation against hand-computed metrics: models whose predictions are known, scored on hand-made examples."""

import math
from types import SimpleNamespace

import datasets
import pytest
import torch
from torch import nn

from subnetworks.core.stats import ratio
from subnetworks.nn.collate import make_collator
from subnetworks.nn.data import encode
from subnetworks.nn.evaluate import EVAL_MASK_SEED, evaluate

CPU = torch.device("cpu")
TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


class TokenTagger(nn.Module):
    """A token classifier that predicts a fixed tag per vocabulary entry, whatever the context: its logits are a
    one-hot lookup of the input ids. Special tokens ([CLS], [SEP], [PAD]) predict B-PER: if evaluation scored the
    positions labelled -100 they would add spurious PER entities."""

    base_model_prefix = "tagger"

    def __init__(self, tokenizer, tags: dict[str, str]):
        super().__init__()
        table = torch.full((len(tokenizer), len(TAGS)), -10.0)
        table[:, TAGS.index("B-PER")] = 10.0
        for word, tag in tags.items():
            token = tokenizer.convert_tokens_to_ids(word)
            assert token != tokenizer.unk_token_id, word
            table[token] = -10.0
            table[token, TAGS.index(tag)] = 10.0
        self.table = nn.Parameter(table)

    def forward(self, input_ids, attention_mask, labels, **_):
        return SimpleNamespace(loss=torch.tensor(0.0), logits=self.table[input_ids])


# (tokens, gold tags, predicted tags): every token predicts one tag wherever it appears
SENTENCES = [
    # PER right; ORG missed; LOC spurious
    (
        ["en0", "enper0", "enper1", "en1", "enorg0"],
        ["O", "B-PER", "I-PER", "O", "B-ORG"],
        ["O", "B-PER", "I-PER", "O", "B-LOC"],
    ),
    # LOC only partly found (1 of its 2 tokens): no match, both a false positive and a false negative; PER right
    (["enloc0", "enloc1", "en2", "enper2"], ["B-LOC", "I-LOC", "O", "B-PER"], ["B-LOC", "O", "O", "B-PER"]),
    # a two-token ORG exactly right
    (["en3", "enorg1", "enorg2"], ["O", "B-ORG", "I-ORG"], ["O", "B-ORG", "I-ORG"]),
    # one PER split in two: two false positives, one false negative
    (["enper3", "urper0"], ["B-PER", "I-PER"], ["B-PER", "B-PER"]),
    # right span, wrong type
    (["urloc0", "ur5"], ["B-LOC", "O"], ["B-ORG", "O"]),
]


def _spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """(type, first, last) of each entity of an IOB2 sequence (no dangling I- in these examples)."""
    spans, start = set(), None
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == tags[start][2:]):
            spans.add((tags[start][2:], start, i - 1))
            start = None
        if tag.startswith("B-"):
            start = i
    return spans


def _ner_set(tokenizer):
    rows = [{"tokens": t, "ner_tags": [TAGS.index(x) for x in gold]} for t, gold, _ in SENTENCES]
    return encode(datasets.Dataset.from_list(rows), "tokcls", tokenizer, 16)


def test_ner_evaluation_is_entity_f1(tokenizer):
    tags = {}
    for tokens, _, predicted in SENTENCES:
        for token, tag in zip(tokens, predicted):
            assert tags.setdefault(token, tag) == tag  # one prediction per token
    model = TokenTagger(tokenizer, tags)

    gold = [_spans(g) for _, g, _ in SENTENCES]
    pred = [_spans(p) for _, _, p in SENTENCES]
    true_positives = sum(len(g & p) for g, p in zip(gold, pred))
    n_gold, n_pred = sum(map(len, gold)), sum(map(len, pred))
    assert (true_positives, n_gold, n_pred) == (3, 7, 8)  # the counts by hand, as commented in SENTENCES
    precision, recall = true_positives / n_pred, true_positives / n_gold
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 == pytest.approx(0.4)  # 2·3 / (7 + 8)

    ds = _ner_set(tokenizer)
    for batch_size in (2, 128):  # several batches in order of length, and one
        metrics = _tag(model, tokenizer, ds, batch_size=batch_size)
        assert metrics["f1"] == pytest.approx(f1) and metrics["score"] == metrics["f1"]
        assert ratio(metrics["examples"]["num"], metrics["examples"]["den"]) == pytest.approx(f1)
        assert metrics["token_accuracy"] == pytest.approx(12 / 16)  # 4 + 3 + 3 + 1 + 1 of 5 + 4 + 3 + 2 + 2 tokens
        assert metrics["n"] == len(SENTENCES)


def _tag(model, tokenizer, ds, **kwargs) -> dict:
    """Entity F1 and token accuracy of a tagger on ``ds``, as the study evaluates token classification."""
    return evaluate(
        model, "tokcls", ds, make_collator("tokcls", tokenizer), labels=TAGS, device=CPU, progress=False, **kwargs
    )


def test_ner_perfect_and_empty_predictions(tokenizer):
    ds = _ner_set(tokenizer)
    gold_tags = {t: g for tokens, golds, _ in SENTENCES for t, g in zip(tokens, golds)}
    gold_tags["enloc1"] = "I-LOC"
    perfect = _tag(TokenTagger(tokenizer, gold_tags), tokenizer, ds)
    assert perfect["f1"] == 1.0 and perfect["token_accuracy"] == 1.0
    nothing = _tag(TokenTagger(tokenizer, {t: "O" for t in gold_tags}), tokenizer, ds)
    assert nothing["f1"] == 0.0 and nothing["token_accuracy"] == pytest.approx(5 / 16)  # the O tags


def test_a_real_token_classifier_that_always_says_b_per(tiny_tokcls, tokenizer):
    """Zero classifier weights and a one-hot bias: BertForTokenClassification predicts B-PER everywhere, so every
    token is a one-token PER entity; only the gold one-token PERs match."""
    with torch.no_grad():
        tiny_tokcls.classifier.weight.zero_()
        tiny_tokcls.classifier.bias.copy_(torch.eye(len(TAGS))[TAGS.index("B-PER")])
    metrics = evaluate(
        tiny_tokcls,
        "tokcls",
        _ner_set(tokenizer),
        make_collator("tokcls", tokenizer),
        labels=TAGS,
        device=CPU,
        batch_size=2,
        progress=False,
    )
    # 16 predicted entities, 7 gold ones; only enper2's PER (sentence 2) is a one-token PER
    precision, recall = 1 / 16, 1 / 7
    assert metrics["f1"] == pytest.approx(2 * precision * recall / (precision + recall)) == pytest.approx(2 / 23)
    assert ratio(metrics["examples"]["num"], metrics["examples"]["den"]) == pytest.approx(metrics["f1"])
    assert metrics["token_accuracy"] == pytest.approx(3 / 16)  # enper0, enper2, enper3 are B-PER


def test_a_real_sequence_classifier_that_always_says_one_class(tiny_seqcls, tokenizer):
    rows = [{"text": f"en{i}", "text_pair": "en1", "label": label} for i, label in enumerate([0, 1, 1, 2, 1, 0, 2])]
    ds = encode(datasets.Dataset.from_list(rows), "seqcls", tokenizer, 16)
    with torch.no_grad():
        tiny_seqcls.classifier.weight.zero_()
        tiny_seqcls.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    metrics = evaluate(
        tiny_seqcls, "seqcls", ds, make_collator("seqcls", tokenizer), device=CPU, batch_size=3, progress=False
    )
    examples = {"num": [0, 1, 1, 0, 1, 0, 0], "den": [1] * 7, "pred": [1] * 7}
    assert metrics == {"score": 3 / 7, "accuracy": 3 / 7, "n": 7, "examples": examples}


def _mlm_set(tokenizer, text, n=12):
    return encode(datasets.Dataset.from_list([{"text": text}] * n), "mlm", tokenizer, 16)


def _head_predicts(model, probabilities: torch.Tensor) -> None:
    """Zero decoder weights (tied to the word embeddings) and bias = log p: the head's softmax is p at every
    position, whatever the encoder computes."""
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()
        model.get_output_embeddings().bias.copy_(probabilities.log())


def test_mlm_perplexity_of_a_uniform_head_is_the_vocabulary_size(tiny_mlm, tokenizer):
    vocab = tiny_mlm.config.vocab_size
    _head_predicts(tiny_mlm, torch.full((vocab,), 1 / vocab))
    metrics = evaluate(
        tiny_mlm,
        "mlm",
        _mlm_set(tokenizer, "en1 en2 en3 en4 en5"),
        make_collator("mlm", tokenizer),
        device=CPU,
        batch_size=5,
        progress=False,
    )
    assert metrics["perplexity"] == pytest.approx(vocab, rel=1e-5)  # exp(log V)
    assert metrics["accuracy"] == 0.0  # ties go to id 0, [PAD], never a masked piece
    assert metrics["n_tokens"] >= 12  # every sequence predicts at least one token


def test_mlm_perplexity_and_accuracy_of_a_fixed_distribution(tiny_mlm, tokenizer):
    vocab = tiny_mlm.config.vocab_size
    en1, en2 = tokenizer.convert_tokens_to_ids(["en1", "en2"])
    favours_en1 = torch.full((vocab,), 0.5 / (vocab - 1))
    favours_en1[en1] = 0.5
    _head_predicts(tiny_mlm, favours_en1)
    collator = make_collator("mlm", tokenizer)

    only_en1 = evaluate(tiny_mlm, "mlm", _mlm_set(tokenizer, "en1 en1 en1 en1"), collator, device=CPU, progress=False)
    assert only_en1["perplexity"] == pytest.approx(2.0, rel=1e-5) and only_en1["accuracy"] == 1.0

    only_en2 = evaluate(tiny_mlm, "mlm", _mlm_set(tokenizer, "en2 en2 en2"), collator, device=CPU, progress=False)
    assert only_en2["perplexity"] == pytest.approx(2 * (vocab - 1), rel=1e-5) and only_en2["accuracy"] == 0.0

    # a mixed text: the masked pieces decide; draw them again as evaluate does (its fixed seed, example by example)
    mixed = _mlm_set(tokenizer, "en1 en2 en1 en3 en1 en4", n=30)
    metrics = evaluate(tiny_mlm, "mlm", mixed, collator, device=CPU, batch_size=8, progress=False)
    labels = [torch.as_tensor(e["labels"]) for e in collator.premasked(mixed, EVAL_MASK_SEED)]
    targets = torch.cat([row[row != -100] for row in labels])
    hits = int((targets == en1).sum())
    assert 0 < hits < len(targets) and metrics["n_tokens"] == len(targets)
    assert metrics["accuracy"] == hits / len(targets)
    mean_nll = (hits * math.log(2) + (len(targets) - hits) * math.log(2 * (vocab - 1))) / len(targets)
    assert metrics["perplexity"] == pytest.approx(math.exp(mean_nll), rel=1e-5)
    assert metrics["examples"]["num"] == [int((row == en1).sum()) for row in labels]  # hits per sentence, in order


def test_mlm_evaluation_uses_fixed_masks_and_more_draws_mask_more_tokens(tiny_mlm, tokenizer):
    ds = encode(datasets.Dataset.from_list([{"text": "en1 en2 en3 en4 en5 en6"}] * 20), "mlm", tokenizer, 16)
    collator = make_collator("mlm", tokenizer, seed=1)
    a = evaluate(tiny_mlm, "mlm", ds, collator, device=CPU, progress=False)
    collator.generator = torch.Generator().manual_seed(99)  # whatever state training left: the test masks are fixed
    b = evaluate(tiny_mlm, "mlm", ds, collator, device=CPU, progress=False)
    assert a == b
    three = evaluate(tiny_mlm, "mlm", ds, collator, device=CPU, mask_draws=3, progress=False)
    assert three["n"] == a["n"] == 20 and sum(three["examples"]["den"]) == three["n_tokens"]
    assert three["n_tokens"] > 2 * a["n_tokens"]
    assert three["examples"]["den"] != [3 * d for d in a["examples"]["den"]]  # other draws, not the same one thrice


def test_mlm_test_masks_do_not_depend_on_the_batch_size(tiny_mlm, tokenizer):
    rows = [{"text": " ".join(f"en{(i * j) % 24}" for j in range(2 + i % 9))} for i in range(40)]
    ds = encode(datasets.Dataset.from_list(rows), "mlm", tokenizer, 16)
    collator = make_collator("mlm", tokenizer)
    by_3, by_16 = (
        evaluate(tiny_mlm, "mlm", ds, collator, device=CPU, batch_size=b, mask_draws=2, progress=False) for b in (3, 16)
    )
    assert by_3["examples"]["den"] == by_16["examples"]["den"]  # the same masked tokens in every sentence
    assert by_3["examples"]["num"] == by_16["examples"]["num"] and by_3["n_tokens"] == by_16["n_tokens"]
    assert by_3["perplexity"] == pytest.approx(by_16["perplexity"], rel=1e-5)


def test_evaluation_does_not_depend_on_the_order_of_the_test_set(tiny_seqcls, tokenizer):
    rows = [{"text": " ".join(f"en{(i * j) % 24}" for j in range(2 + i % 7)), "label": i % 3} for i in range(48)]
    test = encode(datasets.Dataset.from_list(rows), "seqcls", tokenizer, 32)
    collator = make_collator("seqcls", tokenizer)
    a = evaluate(tiny_seqcls, "seqcls", test, collator, device=CPU, batch_size=16, progress=False)
    backwards = test.select(range(47, -1, -1))
    b = evaluate(tiny_seqcls, "seqcls", backwards, collator, device=CPU, batch_size=16, progress=False)
    assert {k: v for k, v in a.items() if k != "examples"} == {k: v for k, v in b.items() if k != "examples"}
    assert a["examples"] == {k: v[::-1] for k, v in b["examples"].items()}  # each record stays with its example
