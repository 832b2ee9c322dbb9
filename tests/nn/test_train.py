import datasets
import pytest
import torch

from subnetworks.core.masks import Mask
from subnetworks.core.prune import magnitude_prune, select_prunable
from subnetworks.core.schedule import total_steps
from subnetworks.demo.smoke import _nli_example, tiny_bert_config
from subnetworks.nn.collate import make_collator
from subnetworks.nn.data import encode
from subnetworks.nn.evaluate import evaluate
from subnetworks.nn.families import FAMILIES
from subnetworks.nn.models import encoder_parameters
from subnetworks.nn.train import (
    LengthGroupedBatches,
    _optimizer,
    batches_by_length,
    finetune,
    forward_loss,
    set_trainable,
    warmup_then_decay,
)
from subnetworks.spec import TrainConfig

CPU = torch.device("cpu")
BERT = FAMILIES["bert"]


def _nli(tokenizer, n=64, seed=0):
    import random

    rng = random.Random(seed)
    rows = [_nli_example(rng, "en") for _ in range(n)]
    ds = datasets.Dataset.from_list(
        [{"text": r["premise"], "text_pair": r["hypothesis"], "label": r["label"]} for r in rows]
    )
    return encode(ds, "seqcls", tokenizer, 32)


def _train_nli(model, tokenizer, cfg: TrainConfig, **kwargs):
    """``finetune`` on the synthetic NLI data, on the CPU, quietly."""
    return finetune(
        model, "seqcls", _nli(tokenizer), make_collator("seqcls", tokenizer), cfg, device=CPU, progress=False, **kwargs
    )


def _half_mask(model):
    params = encoder_parameters(model)
    names = select_prunable(params, BERT.prunable)
    return magnitude_prune({n: params[n] for n in names}, Mask.full({n: params[n].shape for n in names}), 0.5)


def test_masked_weights_stay_exactly_zero_through_adamw_with_weight_decay(tiny_seqcls, tokenizer):
    mask = _half_mask(tiny_seqcls)
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, max_steps=6, weight_decay=0.1)
    _train_nli(tiny_seqcls, tokenizer, cfg, mask=mask, seed=3)
    params = encoder_parameters(tiny_seqcls)
    for name, keep in mask.tensors.items():
        assert bool((params[name][~keep] == 0).all()), name
        assert bool((params[name][keep] != 0).all()), name


@pytest.mark.parametrize("grouped", [False, True])
def test_seeded_training_is_bit_identical_on_cpu(tokenizer, grouped):
    from transformers import BertForSequenceClassification

    states = []
    for seed in (5, 5, 6):
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_bert_config(len(tokenizer), num_labels=3))
        cfg = TrainConfig(learning_rate=1e-3, batch_size=8, max_steps=4, group_by_length=grouped)
        _train_nli(model, tokenizer, cfg, mask=_half_mask(model), seed=seed)
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


def test_frozen_word_embeddings_do_not_move(tiny_seqcls, tokenizer):
    before = {n: p.detach().clone() for n, p in encoder_parameters(tiny_seqcls).items()}
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, max_steps=3, freeze_word_embeddings=True)
    _train_nli(tiny_seqcls, tokenizer, cfg, mask=None, seed=0, word_embeddings=BERT.word_embeddings)
    after = encoder_parameters(tiny_seqcls)
    assert torch.equal(after[BERT.word_embeddings], before[BERT.word_embeddings])
    moved = {n for n in before if not torch.equal(after[n], before[n])}
    assert "embeddings.position_embeddings.weight" in moved and "encoder.layer.0.attention.self.query.weight" in moved


def test_freezing_needs_the_name_of_an_encoder_parameter(tiny_seqcls, tokenizer):
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, max_steps=1, freeze_word_embeddings=True)
    with pytest.raises(ValueError, match=r"no parameter '' to freeze.*model\.encoder\.word_embeddings"):
        _train_nli(tiny_seqcls, tokenizer, cfg, mask=None, seed=0)
    with pytest.raises(ValueError, match="no parameter 'bert.embeddings.word_embeddings.weight'"):
        set_trainable(tiny_seqcls, "bert.embeddings.word_embeddings.weight", False)  # no head prefix in names
    set_trainable(tiny_seqcls, BERT.word_embeddings, False)
    assert not tiny_seqcls.bert.embeddings.word_embeddings.weight.requires_grad
    assert all(p.requires_grad for n, p in tiny_seqcls.named_parameters() if "word_embeddings" not in n)


def test_freezing_lasts_only_for_the_run_that_asks_for_it(tiny_seqcls, tokenizer):
    frozen = TrainConfig(learning_rate=1e-2, batch_size=8, max_steps=2, freeze_word_embeddings=True)
    _train_nli(tiny_seqcls, tokenizer, frozen, mask=None, seed=0, word_embeddings=BERT.word_embeddings)
    before = tiny_seqcls.bert.embeddings.word_embeddings.weight.detach().clone()
    free = TrainConfig(learning_rate=1e-2, batch_size=8, max_steps=2)
    _train_nli(tiny_seqcls, tokenizer, free, mask=None, seed=0, word_embeddings=BERT.word_embeddings)
    assert not torch.equal(tiny_seqcls.bert.embeddings.word_embeddings.weight, before)


def test_classifier_learns_the_synthetic_nli_rule(tiny_seqcls, tokenizer):
    train, test = _nli(tokenizer, 192, 0), _nli(tokenizer, 96, 1)
    collator = make_collator("seqcls", tokenizer)
    cfg = TrainConfig(learning_rate=3e-3, batch_size=16, epochs=8)
    finetune(tiny_seqcls, "seqcls", train, collator, cfg, mask=None, seed=0, device=CPU, progress=False)
    metrics = evaluate(tiny_seqcls, "seqcls", test, collator, device=CPU, progress=False)
    assert metrics["accuracy"] > 0.5  # chance is 1/3


def test_mlm_collator_never_masks_special_tokens(tokenizer):
    ds = encode(datasets.Dataset.from_list([{"text": "en1 en2 en3"}] * 50), "mlm", tokenizer, 16)
    batch = make_collator("mlm", tokenizer, mlm_probability=0.9, seed=0)([ds[i] for i in range(50)])
    labels = batch["labels"]
    assert bool((labels[:, 0] == -100).all()) and bool((labels[:, -1] == -100).all())
    assert int((labels != -100).sum()) > 50


def test_mlm_collator_masks_80_10_10_and_labels_only_masked_positions(tokenizer):
    ds = encode(datasets.Dataset.from_list([{"text": "en1 en2 en3 en4 en5 en6 en7 en8"}] * 400), "mlm", tokenizer, 16)
    original = torch.tensor([ds[i]["input_ids"] for i in range(400)])
    batch = make_collator("mlm", tokenizer, mlm_probability=0.5, seed=1)([ds[i] for i in range(400)])
    chosen = batch["labels"] != -100
    assert torch.equal(batch["labels"][chosen], original[chosen])  # labels: the original pieces where masked
    assert torch.equal(batch["input_ids"][~chosen], original[~chosen])  # elsewhere the input is untouched
    share = float(chosen[:, 1:-1].float().mean())
    assert 0.47 < share < 0.53  # 3200 maskable positions at p = 0.5
    masked = int((batch["input_ids"][chosen] == tokenizer.mask_token_id).sum()) / int(chosen.sum())
    kept = int((batch["input_ids"][chosen] == original[chosen]).sum()) / int(chosen.sum())
    assert 0.77 < masked < 0.83 and 0.08 < kept < 0.14  # 10 % unchanged, plus random draws of the same piece


def test_mlm_forward_loss_equals_the_full_models_loss_on_masked_positions(tiny_mlm, tokenizer):
    ds = encode(datasets.Dataset.from_list([{"text": "en1 en2 en3 en4 en5 en6"}] * 8), "mlm", tokenizer, 16)
    batch = make_collator("mlm", tokenizer, seed=3)([ds[i] for i in range(8)])
    tiny_mlm.eval()
    loss, logits = forward_loss(tiny_mlm, "mlm", batch)
    full = tiny_mlm(**batch)
    assert loss.item() == pytest.approx(full.loss.item(), rel=1e-5)
    where = batch["labels"] != -100
    assert logits.shape == (int(where.sum()), tiny_mlm.config.vocab_size)
    assert torch.allclose(logits, full.logits[where], atol=1e-5)


@pytest.mark.parametrize(
    "cfg, n, steps",
    [
        (TrainConfig(max_steps=7, epochs=3.0), 1000, 7),
        (TrainConfig(batch_size=32, epochs=1.0), 100, 4),
        (TrainConfig(batch_size=32, epochs=2.5), 100, 10),
        (TrainConfig(batch_size=32, epochs=0.1), 10, 1),
    ],
)
def test_total_steps(cfg, n, steps):
    assert total_steps(cfg, n) == steps


def test_warmup_then_linear_decay_to_zero():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    schedule = warmup_then_decay(optimizer, TrainConfig(warmup_ratio=0.2), 10)  # 2 warm-up steps of 10
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.5, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])
    optimizer = torch.optim.SGD([param], lr=1.0)
    warmup_then_decay(optimizer, TrainConfig(), 4)
    assert optimizer.param_groups[0]["lr"] == 1.0  # no warm-up: the first step at the peak rate


def test_optimizer_groups_head_and_no_decay_parameters(tiny_seqcls):
    cfg = TrainConfig(learning_rate=1e-3, head_learning_rate=0.02, weight_decay=0.1)
    groups = _optimizer(tiny_seqcls, cfg).param_groups
    names = {id(p): n for n, p in tiny_seqcls.named_parameters()}
    by_group = {(g["lr"], g["weight_decay"]): {names[id(p)] for p in g["params"]} for g in groups}
    assert set(by_group) == {(1e-3, 0.1), (1e-3, 0.0), (0.02, 0.1), (0.02, 0.0)}
    assert by_group[(0.02, 0.1)] == {"classifier.weight"} and by_group[(0.02, 0.0)] == {"classifier.bias"}
    assert "bert.encoder.layer.0.attention.self.query.weight" in by_group[(1e-3, 0.1)]
    assert "bert.encoder.layer.0.attention.self.query.bias" in by_group[(1e-3, 0.0)]
    assert all(names[id(p)].startswith("bert.") for p in groups[0]["params"] + groups[1]["params"])
    assert sum(len(v) for v in by_group.values()) == len(names)
    plain = _optimizer(tiny_seqcls, TrainConfig(learning_rate=1e-3)).param_groups
    assert {g["lr"] for g in plain} == {1e-3}  # head_learning_rate 0: the encoder's rate


def test_batches_by_length_cover_every_example_in_order_of_length():
    examples = [{"input_ids": [0] * n} for n in (5, 3, 9, 3, 7, 1, 4)]
    batches = batches_by_length(examples, 3)
    assert batches == [[5, 1, 3], [6, 0, 4], [2]]
