"""Encoder families as data: what IMP prunes, how names map to layers and module types, and how params pick,
override or describe a family."""

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import transformers as hf

from subnetworks.core.maskio import load_mask, save_mask
from subnetworks.core.masks import Mask
from subnetworks.core.prune import kept_count, magnitude_prune, select_prunable
from subnetworks.demo.smoke import tiny_bert_config
from subnetworks.nn.collate import Collator
from subnetworks.nn.families import FAMILIES, EncoderFamily, family_named, resolve_family
from subnetworks.nn.models import (
    MT5EncoderForSequenceClassification,
    encoder_parameters,
    encoder_shapes,
    load_model,
    model_type,
)
from subnetworks.nn.train import finetune
from subnetworks.spec import ConfigError, FamilyConfig, ModelConfig, TrainConfig, from_dict

BERT = FAMILIES["bert"]
BERT_MODULES = ("query", "key", "value", "attention_output", "intermediate", "output")
# MPNet: a model type no built-in family knows, described in params
MPNET_ENCODER = {
    "layer": r"^encoder\.layer\.(\d+)\.",
    "modules": {
        "query": r"\.attn\.q\.",
        "key": r"\.attn\.k\.",
        "value": r"\.attn\.v\.",
        "attention_output": r"\.attn\.o\.",
        "intermediate": r"\.intermediate\.dense\.",
        "output": r"\.output\.dense\.",
    },
    "word_embeddings": "embeddings.word_embeddings.weight",
}
MPNET_PRUNABLE = (r"^encoder\.layer\.\d+\.(attention\.attn\.[qkvo]|intermediate\.dense|output\.dense)\.weight$",)


@pytest.fixture
def tiny_bert(tokenizer):
    from transformers import BertModel

    torch.manual_seed(0)
    return BertModel(tiny_bert_config(len(tokenizer), num_hidden_layers=3))


def _prunable(model, family: EncoderFamily) -> list[str]:
    return select_prunable(encoder_parameters(model), family.prunable)


def test_every_prunable_bert_weight_has_a_layer_and_a_module_type(tiny_bert):
    names = _prunable(tiny_bert, BERT)
    assert len(names) == 3 * 6 + 1  # three layers of six matrices, and the pooler
    layers = {name: BERT.layer_of(name) for name in names}
    modules = {name: BERT.module_type(name) for name in names}
    for name in names:
        if name.startswith("pooler."):
            assert layers[name] == "pooler" and modules[name] == "pooler"
        else:
            assert int(layers[name]) == int(re.search(r"layer\.(\d+)\.", name).group(1))
            assert modules[name] in BERT_MODULES
    assert sorted(layers.values()).count("2") == 6 and set(layers.values()) == {"0", "1", "2", "pooler"}
    assert set(modules.values()) == {*BERT_MODULES, "pooler"}
    assert BERT.covers(names) and BERT.module_types == (*BERT_MODULES, "pooler")
    assert [m for m in modules.values()][:6] == list(BERT_MODULES)  # layer 0 in the model's order
    assert modules["encoder.layer.1.output.dense.weight"] == "output"  # not attention output
    assert modules["encoder.layer.1.attention.output.dense.weight"] == "attention_output"


def test_what_bert_does_not_prune_is_other(tiny_bert):
    unpruned = [n for n in encoder_parameters(tiny_bert) if n not in _prunable(tiny_bert, BERT)]
    assert BERT.word_embeddings in unpruned
    assert all(n.endswith(".bias") or "LayerNorm" in n or "embeddings" in n for n in unpruned)
    assert BERT.module_type(BERT.word_embeddings) == "other" and BERT.layer_of(BERT.word_embeddings) == "other"
    assert not BERT.covers([*_prunable(tiny_bert, BERT), BERT.word_embeddings])


def test_a_mask_on_the_tiny_bert_groups_into_layers_and_modules_without_other(tiny_bert):
    params = encoder_parameters(tiny_bert)
    names = _prunable(tiny_bert, BERT)
    mask = magnitude_prune({n: params[n] for n in names}, Mask.full({n: params[n].shape for n in names}), 0.5)
    by_layer, by_module = mask.density_by(BERT.layer_of), mask.density_by(BERT.module_type)
    assert set(by_layer) == {"0", "1", "2", "pooler"} and set(by_module) == {*BERT_MODULES, "pooler"}
    assert "other" not in by_layer and "other" not in by_module
    kept = sum(by_layer[g] * sum(mask.tensors[n].numel() for n in names if BERT.layer_of(n) == g) for g in by_layer)
    assert round(kept) == mask.kept == mask.numel // 2


def test_the_xlm_roberta_family_reads_a_tiny_xlm_roberta():
    from transformers import XLMRobertaConfig, XLMRobertaModel

    config = XLMRobertaConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16
    )
    model = XLMRobertaModel(config)
    family = resolve_family(ModelConfig(name="x"), model_type(model))
    assert family.name == "xlm-roberta" and model_type(model) == "xlm-roberta"
    names = _prunable(model, family)
    assert len(names) == 2 * 6 + 1 and family.covers(names)
    assert family.word_embeddings in encoder_shapes(model)


@pytest.mark.parametrize(
    "checkpoint_type, family",
    [
        ("bert", "bert"),
        ("xlm-roberta", "xlm-roberta"),
        ("roberta", "xlm-roberta"),
        ("distilbert", "distilbert"),
        ("deberta-v2", "deberta-v2"),
        ("modernbert", "modernbert"),
        ("mt5", "mt5"),
        ("t5", "mt5"),
        ("umt5", "mt5"),
    ],
)
def test_resolve_family_picks_the_family_of_the_model_type(checkpoint_type, family):
    assert resolve_family(ModelConfig(name="m"), checkpoint_type) == FAMILIES[family]
    assert family_named(checkpoint_type) is FAMILIES[family]


def test_model_type_of_a_loaded_model(tiny_bert, tiny_mlm):
    assert model_type(tiny_bert) == model_type(tiny_mlm) == "bert"
    assert resolve_family(ModelConfig(name="m"), model_type(tiny_mlm)) == FAMILIES["bert"]


def test_model_family_in_params_wins_over_the_model_type():
    assert resolve_family(ModelConfig(name="m", family="bert"), "xlm-roberta").name == "bert"
    assert resolve_family(ModelConfig(name="m", family="xlm-roberta"), "gpt2").name == "xlm-roberta"
    with pytest.raises(ConfigError, match="encoder family 'nope' is not supported"):
        resolve_family(ModelConfig(name="m", family="nope"), "bert")


def test_an_unknown_model_type_names_the_supported_families_and_the_params_to_describe_one():
    with pytest.raises(ConfigError) as err:
        resolve_family(ModelConfig(name="m"), "gpt2")
    message = str(err.value)
    assert "encoder family 'gpt2' is not supported" in message
    supported = "['bert', 'deberta-v2', 'distilbert', 'modernbert', 'mt5', 'roberta', 't5', 'umt5', 'xlm-roberta']"
    assert supported in message
    for key in ("model.encoder.layer", "model.encoder.modules", "model.encoder.word_embeddings", "prune.patterns"):
        assert key in message, key


@pytest.mark.parametrize("missing", ["layer", "modules", "word_embeddings", "prunable"])
def test_a_partly_described_unknown_family_is_still_an_error(missing):
    encoder = {k: v for k, v in MPNET_ENCODER.items() if k != missing}
    model = from_dict(ModelConfig, {"name": "mpnet", "encoder": encoder})
    with pytest.raises(ConfigError, match="'mpnet' is not supported"):
        resolve_family(model, "mpnet", () if missing == "prunable" else MPNET_PRUNABLE)


def test_a_family_fully_described_in_params_is_accepted_for_an_unknown_model_type():
    model = hf.MPNetModel(
        hf.MPNetConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24)
    )
    spec = from_dict(ModelConfig, {"name": "mpnet", "encoder": MPNET_ENCODER})
    assert isinstance(spec.encoder, FamilyConfig) and list(spec.encoder.modules) == list(BERT_MODULES)
    family = resolve_family(spec, model_type(model), MPNET_PRUNABLE)
    assert (family.name, family.model_types) == ("mpnet", ("mpnet",))
    assert family.prunable == MPNET_PRUNABLE and family.word_embeddings == MPNET_ENCODER["word_embeddings"]
    assert family.module_types == BERT_MODULES
    names = _prunable(model, family)
    assert len(names) == 2 * 6 and family.covers(names)
    assert {family.layer_of(n) for n in names} == {"0", "1"}
    assert family.module_type("encoder.layer.1.output.dense.weight") == "output"
    assert family.word_embeddings in encoder_shapes(model)
    mask = Mask.full({n: encoder_shapes(model)[n] for n in names})
    assert set(mask.density_by(family.module_type)) == set(BERT_MODULES)


def test_an_override_replaces_only_its_field():
    layer = r"^encoder\.layer\.(\d+)\.attention\."  # only attention weights have a layer
    family = resolve_family(from_dict(ModelConfig, {"name": "m", "encoder": {"layer": layer}}), "bert")
    assert family.layer == layer
    assert family.layer_of("encoder.layer.3.attention.self.key.weight") == "3"
    assert family.layer_of("encoder.layer.3.output.dense.weight") == "output"  # no layer: its module type
    assert (family.name, family.modules, family.prunable, family.word_embeddings) == (
        BERT.name,
        BERT.modules,
        BERT.prunable,
        BERT.word_embeddings,
    )

    patterns = (r"^encoder\.layer\.\d+\.attention\.self\.query\.weight$",)
    pruned = resolve_family(ModelConfig(name="m"), "bert", patterns)
    assert pruned.prunable == patterns and pruned.layer == BERT.layer and pruned.modules == BERT.modules

    modules = resolve_family(
        from_dict(ModelConfig, {"name": "m", "encoder": {"modules": {"attn": "attention"}}}), "bert"
    )
    assert modules.modules == (("attn", "attention"),) and modules.layer == BERT.layer
    assert modules.module_type("encoder.layer.0.attention.self.query.weight") == "attn"
    assert modules.module_type("encoder.layer.0.output.dense.weight") == "other"
    assert FAMILIES["bert"] == BERT and BERT.module_type("encoder.layer.0.output.dense.weight") == "output"  # untouched


# Every built-in family on a tiny model saved as its checkpoints ship (an MLM model; mT5's: encoder-decoder), loaded
# by load_model for each task kind it supports, with random token ids (no tokenizer: each family has its own).
VOCAB, LAYERS, PAD, MASK_ID, N_LABELS = 40, 2, 0, 3, 5
SPECIAL_IDS = (0, 1, 2, 3)
LABELS = {"mlm": None, "seqcls": 3, "tokcls": N_LABELS}
SPARSITIES = (0.2, 0.36)  # IMP levels 1 and 2 (20 % of the remaining weights each)
T5_SIZES = dict(vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=24, num_layers=LAYERS, num_heads=2)
T5_BUCKETS = dict(relative_attention_num_buckets=8, decoder_start_token_id=PAD)
T5_MODULES = ("query", "key", "value", "attention_output", "intermediate", "intermediate_linear", "output")
SIZES = dict(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=LAYERS, num_attention_heads=2, intermediate_size=24)


@dataclass(frozen=True)
class Case:
    """One checkpoint of a family: how to build it, and what its task models must show."""

    name: str
    family: str
    checkpoint: Callable[[], torch.nn.Module]
    modules: tuple[str, ...]  # the module types of one layer, in the model's order
    kinds: tuple[str, ...] = ("mlm", "seqcls", "tokcls")
    pooled: tuple[str, ...] = ()  # the task kinds whose base model has a (pruned) pooler

    def groups(self, kind: str) -> tuple[set[str], set[str]]:
        """The layer groups and module-type groups every mask of a ``kind`` model must have."""
        pooler = {"pooler"} if kind in self.pooled else set()
        return {str(i) for i in range(LAYERS)} | pooler, set(self.modules) | pooler


CASES = [
    Case("bert", "bert", lambda: hf.BertForMaskedLM(tiny_bert_config(VOCAB)), BERT_MODULES, pooled=("seqcls",)),
    Case(
        "xlm-roberta",
        "xlm-roberta",
        lambda: hf.XLMRobertaForMaskedLM(hf.XLMRobertaConfig(**SIZES, max_position_embeddings=40, pad_token_id=PAD)),
        BERT_MODULES,
    ),
    Case(
        "distilbert",
        "distilbert",
        lambda: hf.DistilBertForMaskedLM(
            hf.DistilBertConfig(vocab_size=VOCAB, dim=16, n_layers=LAYERS, n_heads=2, hidden_dim=24)
        ),
        BERT_MODULES,
    ),
    Case(  # as mDeBERTa-v3: relative attention with shared keys, position buckets, no absolute positions
        "deberta-v2",
        "deberta-v2",
        lambda: hf.DebertaV2ForMaskedLM(
            hf.DebertaV2Config(
                **SIZES,
                relative_attention=True,
                pos_att_type=["p2c", "c2p"],
                position_buckets=8,
                norm_rel_ebd="layer_norm",
                share_att_key=True,
                position_biased_input=False,
            )
        ),
        BERT_MODULES,
    ),
    Case(
        "modernbert",
        "modernbert",
        lambda: hf.ModernBertForMaskedLM(
            hf.ModernBertConfig(
                **SIZES,
                local_attention=8,
                pad_token_id=PAD,
                bos_token_id=1,
                cls_token_id=1,
                eos_token_id=2,
                sep_token_id=2,
            )
        ),
        ("qkv", "attention_output", "intermediate", "output"),
    ),
    Case(
        "mt5",
        "mt5",
        lambda: hf.MT5ForConditionalGeneration(hf.MT5Config(**T5_SIZES, **T5_BUCKETS, feed_forward_proj="gated-gelu")),
        T5_MODULES,
        kinds=("seqcls", "tokcls"),
    ),
    Case(
        "umt5",
        "mt5",
        lambda: hf.UMT5ForConditionalGeneration(hf.UMT5Config(**T5_SIZES, **T5_BUCKETS)),
        T5_MODULES,
        kinds=("seqcls", "tokcls"),
    ),
    Case(  # T5 v1.0: an ungated ReLU feed-forward (wi, wo)
        "t5",
        "mt5",
        lambda: hf.T5ForConditionalGeneration(hf.T5Config(**T5_SIZES, **T5_BUCKETS, feed_forward_proj="relu")),
        ("query", "key", "value", "attention_output", "intermediate", "output"),
        kinds=("seqcls", "tokcls"),
    ),
]
CASE = {case.name: case for case in CASES}


def _case_kinds():
    for case in CASES:
        for kind in case.kinds:
            yield pytest.param(case, kind, id=f"{case.name}-{kind}")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Callable[[Case], str]:
    """The folder of a case's tiny checkpoint, saved once per module as ``save_pretrained`` writes it."""
    folders: dict[str, str] = {}

    def folder(case: Case) -> str:
        if case.name not in folders:
            torch.manual_seed(0)
            folders[case.name] = str(tmp_path_factory.mktemp(case.name))
            case.checkpoint().save_pretrained(folders[case.name])
        return folders[case.name]

    return folder


def _examples(kind: str, n: int = 16) -> list[dict]:
    """Random token ids of uneven lengths (so batches are padded), with labels as the task kind has them."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n):
        ids = torch.randint(len(SPECIAL_IDS), VOCAB, (6 + i % 5,), generator=g).tolist()
        labels = {
            "mlm": {},
            "seqcls": {"labels": i % LABELS["seqcls"]},
            "tokcls": {"labels": torch.randint(N_LABELS, (len(ids),), generator=g).tolist()},
        }[kind]
        rows.append({"input_ids": ids, **labels})
    return rows


def _train(model, kind: str, family: EncoderFamily, mask: Mask, seed: int) -> None:
    """A few steps of the masked training loop, with weight decay (it would move masked weights) and the
    family's word embeddings frozen (an error if the family names a matrix the model lacks)."""
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, max_steps=3, weight_decay=0.1, freeze_word_embeddings=True)
    collator = Collator(kind, pad_id=PAD, mask_id=MASK_ID, special_ids=SPECIAL_IDS, vocab_size=VOCAB)
    finetune(
        model,
        kind,
        _examples(kind),
        collator,
        cfg,
        mask=mask,
        seed=seed,
        device=torch.device("cpu"),
        word_embeddings=family.word_embeddings,
        progress=False,
    )


@pytest.mark.parametrize("case, kind", list(_case_kinds()))
def test_two_imp_levels_on_a_tiny_checkpoint_of_every_family(case, kind, checkpoint, tmp_path):
    model = load_model(checkpoint(case), kind, num_labels=LABELS[kind])
    family = resolve_family(ModelConfig(name="tiny"), model_type(model))
    assert family == FAMILIES[case.family]
    params = encoder_parameters(model)
    names = select_prunable(params, family.prunable)
    layers, modules = case.groups(kind)
    assert len(names) == LAYERS * len(case.modules) + ("pooler" in modules)
    assert [family.module_type(n) for n in names[: len(case.modules)]] == list(case.modules)  # reporting order
    prefix = model.base_model_prefix + "."
    theta0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    mask = Mask.full({n: params[n].shape for n in names}, model_type=model_type(model))
    for level, sparsity in enumerate(SPARSITIES, 1):  # as study/stages/prune.py: train, prune, rewind
        _train(model, kind, family, mask, seed=level)
        for name, keep in mask.tensors.items():
            assert bool((params[name][~keep] == 0).all()), name  # exactly zero after the optimiser's steps
        assert all(not torch.equal(params[n][mask.tensors[n]], theta0[prefix + n][mask.tensors[n]]) for n in names)
        assert torch.equal(params[family.word_embeddings], theta0[prefix + family.word_embeddings])
        pruned = magnitude_prune({n: params[n] for n in names}, mask, sparsity)
        assert pruned.kept == kept_count(mask.numel, sparsity) and (pruned & mask).kept == pruned.kept
        model.load_state_dict(theta0)
        mask = pruned

    path = save_mask(mask, tmp_path / "mask.safetensors", level="level_02")
    loaded = load_mask(path, encoder_shapes(model))
    assert list(loaded.tensors) == names and all(torch.equal(loaded.tensors[n], mask.tensors[n]) for n in names)
    assert loaded.meta["model_type"] == model_type(model) and loaded.density == mask.density
    by_layer, by_module = loaded.density_by(family.layer_of), loaded.density_by(family.module_type)
    assert set(by_layer) == layers and set(by_module) == modules  # so no "other"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_task_model_of_a_family_has_the_same_encoder(case, checkpoint):
    """One mask fits each task model of an encoder: their base encoders hold the same parameters in the same order
    (except the pooler, which BERT's sequence classifier adds and the study prunes)."""
    shapes = {}
    for kind in case.kinds:
        encoder = encoder_shapes(load_model(checkpoint(case), kind, num_labels=LABELS[kind]))
        shapes[kind] = [(n, s) for n, s in encoder.items() if not (kind in case.pooled and n.startswith("pooler."))]
    assert all(s == shapes[case.kinds[0]] for s in shapes.values())
    assert FAMILIES[case.family].word_embeddings in dict(shapes[case.kinds[0]])


@pytest.mark.parametrize("case", [c for c in CASES if c.family == "mt5"], ids=lambda c: c.name)
def test_t5_style_encoders_classify_sequences_with_the_encoder_alone_and_refuse_mlm(case, checkpoint):
    seqcls = load_model(checkpoint(case), "seqcls", num_labels=3)
    assert type(seqcls.base_model).__name__.endswith("EncoderModel")
    assert not any(n.startswith("decoder.") for n in encoder_parameters(seqcls))
    with pytest.raises(ValueError, match=r"pre-trained by span corruption.*runs seqcls and tokcls"):
        load_model(checkpoint(case), "mlm")


def test_the_mt5_sequence_classifier_pools_over_the_attention_mask_and_saves_as_a_checkpoint(checkpoint, tmp_path):
    model = load_model(checkpoint(CASE["mt5"]), "seqcls", num_labels=3).eval()
    ids = torch.randint(len(SPECIAL_IDS), VOCAB, (1, 6), generator=torch.Generator().manual_seed(0))
    padded = torch.cat([ids, torch.full((1, 3), PAD)], 1)
    short = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    long = model(input_ids=padded, attention_mask=(padded != PAD).long()).logits
    assert torch.allclose(short, long, atol=1e-6)  # padding does not change the mean
    model.save_pretrained(tmp_path)
    again = load_model(str(tmp_path), "seqcls", num_labels=3)
    assert isinstance(again, MT5EncoderForSequenceClassification)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
