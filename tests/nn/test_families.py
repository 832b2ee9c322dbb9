"""Encoder families as data: what IMP prunes, how names map to layers and module types, and how params pick,
override or describe a family."""

import re

import pytest
import torch

from subnetworks.core.masks import Mask
from subnetworks.core.prune import magnitude_prune, select_prunable
from subnetworks.demo.smoke import tiny_bert_config
from subnetworks.nn.families import FAMILIES, EncoderFamily, family_named, resolve_family
from subnetworks.nn.models import encoder_parameters, encoder_shapes, model_type
from subnetworks.spec import ConfigError, FamilyConfig, ModelConfig, from_dict

BERT = FAMILIES["bert"]
BERT_MODULES = ("query", "key", "value", "attention_output", "intermediate", "output")
DISTIL_ENCODER = {
    "layer": r"^transformer\.layer\.(\d+)\.",
    "modules": {
        "query": r"\.q_lin\.",
        "key": r"\.k_lin\.",
        "value": r"\.v_lin\.",
        "attention_output": r"\.out_lin\.",
        "intermediate": r"\.ffn\.lin1\.",
        "output": r"\.ffn\.lin2\.",
    },
    "word_embeddings": "embeddings.word_embeddings.weight",
}
DISTIL_PRUNABLE = (r"^transformer\.layer\.\d+\.(attention\.(q|k|v|out)_lin|ffn\.lin[12])\.weight$",)


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
    "checkpoint_type, family", [("bert", "bert"), ("xlm-roberta", "xlm-roberta"), ("roberta", "xlm-roberta")]
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
    assert "['bert', 'roberta', 'xlm-roberta']" in message
    for key in ("model.encoder.layer", "model.encoder.modules", "model.encoder.word_embeddings", "prune.patterns"):
        assert key in message, key


@pytest.mark.parametrize("missing", ["layer", "modules", "word_embeddings", "prunable"])
def test_a_partly_described_unknown_family_is_still_an_error(missing):
    encoder = {k: v for k, v in DISTIL_ENCODER.items() if k != missing}
    model = from_dict(ModelConfig, {"name": "distil", "encoder": encoder})
    with pytest.raises(ConfigError, match="'distilbert' is not supported"):
        resolve_family(model, "distilbert", () if missing == "prunable" else DISTIL_PRUNABLE)


def test_a_family_fully_described_in_params_is_accepted_for_an_unknown_model_type():
    from transformers import DistilBertConfig, DistilBertModel

    model = DistilBertModel(
        DistilBertConfig(vocab_size=30, dim=16, n_layers=2, n_heads=2, hidden_dim=24, max_position_embeddings=16)
    )
    spec = from_dict(ModelConfig, {"name": "distil", "encoder": DISTIL_ENCODER})
    assert isinstance(spec.encoder, FamilyConfig) and list(spec.encoder.modules) == list(BERT_MODULES)
    family = resolve_family(spec, model_type(model), DISTIL_PRUNABLE)
    assert (family.name, family.model_types) == ("distilbert", ("distilbert",))
    assert family.prunable == DISTIL_PRUNABLE and family.word_embeddings == DISTIL_ENCODER["word_embeddings"]
    assert family.module_types == BERT_MODULES
    names = _prunable(model, family)
    assert len(names) == 2 * 6 and family.covers(names)
    assert {family.layer_of(n) for n in names} == {"0", "1"}
    assert family.module_type("transformer.layer.1.ffn.lin2.weight") == "output"
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
