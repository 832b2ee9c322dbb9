"""The embedded model's MLM head fit (frozen encoder, softmax over the fitting text's pieces) and its run key."""

import dataclasses
import math

import datasets
import pytest
import torch

from subnetworks.demo.mlm_head import fit_mlm_head, masked_features
from subnetworks.nn.collate import make_collator
from subnetworks.nn.data import encode
from subnetworks.nn.evaluate import evaluate
from subnetworks.nn.train import batches_by_length
from subnetworks.spec import TrainConfig, load_study, repo_root
from subnetworks.study.layout import Layout

CPU = torch.device("cpu")
ROOT = repo_root()


def _text(tokenizer, n=40):
    rows = [{"text": " ".join(f"en{(i * 7 + j) % 9}" for j in range(3 + i % 4))} for i in range(n)]
    return encode(datasets.Dataset.from_list(rows), "mlm", tokenizer, 16)


def test_masked_features_are_the_hidden_states_at_every_masked_position(tiny_mlm, tokenizer):
    examples = _text(tokenizer)
    collator = make_collator("mlm", tokenizer, seed=0)
    features, targets = masked_features(tiny_mlm, examples, collator, 2, CPU, 16, progress=False)
    expected = []
    for draw in range(2):  # the same draws again (draw d from seed d), batch by batch
        masked = collator.premasked(examples, draw)
        for rows in batches_by_length(examples, 16):
            labels = collator([masked[i] for i in rows])["labels"]
            expected.append(labels[labels != -100])
    assert torch.equal(targets, torch.cat(expected))
    assert features.shape == (len(targets), tiny_mlm.config.hidden_size)
    # the features are the encoder's last hidden states at the masked positions of the masked input
    first = collator([collator.premasked(examples, 0)[i] for i in batches_by_length(examples, 16)[0]])
    labels = first.pop("labels")
    with torch.no_grad():
        hidden = tiny_mlm.base_model(**first).last_hidden_state[labels != -100]
    assert torch.allclose(features[: len(hidden)], hidden, atol=1e-6)


def test_fitting_the_head_lowers_the_loss_and_keeps_the_decoder_tied(tiny_mlm, tokenizer):
    examples = _text(tokenizer)
    collator = make_collator("mlm", tokenizer, seed=0)
    tiny_mlm.base_model.requires_grad_(False)
    encoder = {k: v.clone() for k, v in tiny_mlm.base_model.state_dict().items()}
    before = evaluate(tiny_mlm, "mlm", examples, collator, device=CPU, progress=False)
    features, targets = masked_features(tiny_mlm, examples, collator, 4, CPU, 16, progress=False)
    cfg = TrainConfig(learning_rate=1e-2, batch_size=64, max_steps=60)
    fit = fit_mlm_head(tiny_mlm, features, targets, cfg, seed=0, device=CPU, progress=False)
    after = evaluate(tiny_mlm, "mlm", examples, collator, device=CPU, progress=False)
    assert after["perplexity"] < before["perplexity"] / 2 and math.isfinite(after["perplexity"])
    assert fit["pieces"] == len(torch.unique(targets)) < tiny_mlm.config.vocab_size
    output = tiny_mlm.get_output_embeddings()
    assert output.weight is tiny_mlm.base_model.embeddings.word_embeddings.weight  # still tied
    assert all(torch.equal(v, encoder[k]) for k, v in tiny_mlm.base_model.state_dict().items())  # encoder frozen
    seen = torch.zeros(output.bias.numel(), dtype=torch.bool)
    seen[torch.unique(targets)] = True
    bias = output.bias.detach()
    unseen_bias = bias[~seen]
    assert bool((unseen_bias == unseen_bias[0]).all()) and float(unseen_bias[0]) < float(bias[seen].min())
    # the unseen pieces together weigh as much as the rarest fitted one: Σ exp(unseen bias) = exp(min fitted bias)
    assert float(torch.logsumexp(unseen_bias.double(), 0)) == pytest.approx(float(bias[seen].min()), abs=1e-5)


def test_the_mlm_head_is_keyed_by_its_training_and_text_never_by_the_study_languages():
    demo = load_study(ROOT / "params" / "demo.yaml")
    nine = load_study(ROOT / "params" / "offline-full.yaml")
    other_head = dataclasses.replace(
        demo,
        model=dataclasses.replace(demo.model, mlm_head=dataclasses.replace(demo.model.mlm_head, learning_rate=1e-3)),
    )
    other_text = dataclasses.replace(
        demo, tasks={**demo.tasks, "mlm": dataclasses.replace(demo.tasks["mlm"], max_train=500)}
    )
    fewer = dataclasses.replace(
        demo, tasks={**demo.tasks, "mlm": dataclasses.replace(demo.tasks["mlm"], languages=("en", "de"))}
    )
    a, b, c, d, e = (Layout(s, "/nonexistent") for s in (demo, nine, other_head, other_text, fewer))
    assert a.mlm_head_key == b.mlm_head_key
    assert len({a.mlm_head_key, c.mlm_head_key, d.mlm_head_key, e.mlm_head_key}) == 4  # fitted on its languages
    assert a.prune_key("mlm", "ur") == b.prune_key("mlm", "ur")
    assert a.prune_key("mlm", "ur") != c.prune_key("mlm", "ur")  # MLM runs start from the fitted head


def test_a_transfer_run_is_keyed_by_its_targets():
    demo = load_study(ROOT / "params" / "demo.yaml")
    nine = load_study(ROOT / "params" / "offline-full.yaml")
    a, b = Layout(demo, "/nonexistent"), Layout(nine, "/nonexistent")
    assert a.prune_key("xnli", "ur") == b.prune_key("xnli", "ur")
    assert a.transfer_key("xnli", "ur", 1) != b.transfer_key("xnli", "ur", 1)  # level 1: sparsity 0.5


def test_mlm_majority_rate_is_the_share_of_test_pieces_that_are_the_commonest_training_piece(tokenizer):
    from subnetworks.study.stages.data import commonest_piece_rate

    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    encoded = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"input_ids": [[cls, 7, 7, 8, sep], [cls, 7, 9, sep]]}),
            "test": datasets.Dataset.from_dict({"input_ids": [[cls, 7, 8, sep], [cls, 9, 9, sep]]}),
        }
    )
    assert commonest_piece_rate(encoded, tokenizer) == 0.25  # 7 is the commonest; 1 of the 4 test pieces
