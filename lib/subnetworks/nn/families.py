"""Encoder families as data: which weights IMP prunes, how parameter names map to layers and module types, and
which matrix holds the word embeddings. Chosen from the checkpoint's ``model_type`` (or ``model.family``), with
``model.encoder`` in params overriding any field or describing a family this module does not know.

Names are base-encoder names (``encoder.layer.0.attention.self.query.weight``: no ``bert.``/``roberta.`` prefix),
the names masks are keyed by. A new family is one more :class:`EncoderFamily` in :data:`FAMILIES` and a test on a
tiny model of it built from a config in code.

Module maps (module type: parameter, ``N`` the layer, each ``….weight``; word embeddings in brackets):

- bert, xlm-roberta [embeddings.word_embeddings]: query/key/value: encoder.layer.N.attention.self.{query,key,value};
  attention_output: …attention.output.dense; intermediate: …intermediate.dense; output: …output.dense;
  pooler: pooler.dense (where the base model has one)
- distilbert [embeddings.word_embeddings]: query/key/value/attention_output:
  transformer.layer.N.attention.{q,k,v,out}_lin; intermediate: …ffn.lin1; output: …ffn.lin2
- deberta-v2 [embeddings.word_embeddings]: bert's, with …attention.self.{query,key,value}_proj; no pooler
- modernbert [embeddings.tok_embeddings]: qkv: layers.N.attn.Wqkv (fused); attention_output: …attn.Wo;
  intermediate: …mlp.Wi (both GLU halves, fused); output: …mlp.Wo
- mt5, t5, umt5 [shared]: query/key/value/attention_output: encoder.block.N.layer.0.SelfAttention.{q,k,v,o};
  intermediate: …layer.1.DenseReluDense.wi_0 (T5 v1.0: wi); intermediate_linear: …wi_1; output: …wo
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property

from ..spec import ConfigError, ModelConfig


@dataclass(frozen=True)
class EncoderFamily:
    """How to read the parameters of one family of encoders."""

    name: str
    model_types: tuple[str, ...]  # the config.model_type values of its checkpoints
    prunable: tuple[str, ...]  # regexes (searched) of the weights IMP prunes, as in the study
    layer: str  # regex whose first group is the layer index of a parameter
    modules: tuple[tuple[str, str], ...]  # (module type, regex) in reporting order; first match wins
    word_embeddings: str  # the word-embedding matrix (never pruned; frozen with freeze_word_embeddings)

    @cached_property
    def _layer(self) -> re.Pattern:
        return re.compile(self.layer)

    @cached_property
    def _modules(self) -> tuple[tuple[str, re.Pattern], ...]:
        return tuple((kind, re.compile(pattern)) for kind, pattern in self.modules)

    @property
    def module_types(self) -> tuple[str, ...]:
        return tuple(kind for kind, _ in self.modules)

    def module_type(self, name: str) -> str:
        """The module type of a parameter (query, key, …), or ``other``."""
        return next((kind for kind, pattern in self._modules if pattern.search(name)), "other")

    def layer_of(self, name: str) -> str:
        """The layer index of a parameter as a string; outside the layers its module type (``pooler``) or ``other``."""
        found = self._layer.search(name)
        return found.group(1) if found else self.module_type(name)

    def covers(self, names: Iterable[str]) -> bool:
        """Whether every name falls into a module type of this family (none left in ``other``)."""
        return all(self.module_type(n) != "other" for n in names)


def _bert_like(projection: str = "", pooler: bool = True) -> dict:
    """BERT's layout, shared by the families that kept it: ``projection`` follows query/key/value in their names
    (``_proj`` in DeBERTa-v2); the pooler is pruned where the base model has one (BERT's sequence classifier)."""
    prunable = (
        rf"^encoder\.layer\.\d+\.attention\.self\.(query|key|value){projection}\.weight$",
        r"^encoder\.layer\.\d+\.attention\.output\.dense\.weight$",
        r"^encoder\.layer\.\d+\.intermediate\.dense\.weight$",
        r"^encoder\.layer\.\d+\.output\.dense\.weight$",
    )
    modules = (
        ("query", rf"attention\.self\.query{projection}\."),
        ("key", rf"attention\.self\.key{projection}\."),
        ("value", rf"attention\.self\.value{projection}\."),
        ("attention_output", r"attention\.output\.dense\."),
        ("intermediate", r"intermediate\.dense\."),
        ("output", r"(?<!attention\.)output\.dense\."),
    )
    if pooler:
        prunable += (r"^pooler\.dense\.weight$",)
        modules += (("pooler", r"^pooler\."),)
    return dict(
        prunable=prunable,
        layer=r"encoder\.layer\.(\d+)\.",
        modules=modules,
        word_embeddings="embeddings.word_embeddings.weight",
    )


# DistilBERT (distilbert-base-multilingual-cased): BERT's six matrices under other names, no pooler (its sequence
# classifier's pre_classifier sits outside the base model).
_DISTILBERT = EncoderFamily(
    "distilbert",
    ("distilbert",),
    prunable=(
        r"^transformer\.layer\.\d+\.attention\.(q|k|v|out)_lin\.weight$",
        r"^transformer\.layer\.\d+\.ffn\.lin[12]\.weight$",
    ),
    layer=r"^transformer\.layer\.(\d+)\.",
    modules=(
        ("query", r"\.attention\.q_lin\."),
        ("key", r"\.attention\.k_lin\."),
        ("value", r"\.attention\.v_lin\."),
        ("attention_output", r"\.attention\.out_lin\."),
        ("intermediate", r"\.ffn\.lin1\."),
        ("output", r"\.ffn\.lin2\."),
    ),
    word_embeddings="embeddings.word_embeddings.weight",
)

# DeBERTa-v2 and -v3 (mDeBERTa-v3): BERT's layout with query/key/value_proj. Not pruned, like BERT's embeddings:
# the shared relative-position embeddings (encoder.rel_embeddings, encoder.LayerNorm), and pos_key/query_proj where
# share_att_key is off. No pooler in the base model: the sequence classifier's ContextPooler (pooler.dense) is part
# of the task head, outside the base encoder, so it is neither in the mask nor pruned.
_DEBERTA_V2 = EncoderFamily("deberta-v2", ("deberta-v2",), **_bert_like(projection="_proj", pooler=False))

# ModernBERT (mmBERT): attention's query, key and value are one fused matrix (attn.Wqkv, rows q|k|v) and the GLU's
# two input projections are one (mlp.Wi, rows: the activated half, then the linear half that multiplies it). Each
# fused matrix is reported as one module type, qkv and intermediate, as it is one tensor of the mask: splitting it by
# rows would make module types that no tensor holds, and overlap tables group whole tensors.
_MODERNBERT = EncoderFamily(
    "modernbert",
    ("modernbert",),
    prunable=(r"^layers\.\d+\.attn\.(Wqkv|Wo)\.weight$", r"^layers\.\d+\.mlp\.(Wi|Wo)\.weight$"),
    layer=r"^layers\.(\d+)\.",
    modules=(
        ("qkv", r"\.attn\.Wqkv\."),
        ("attention_output", r"\.attn\.Wo\."),
        ("intermediate", r"\.mlp\.Wi\."),  # both GLU halves
        ("output", r"\.mlp\.Wo\."),
    ),
    word_embeddings="embeddings.tok_embeddings.weight",
)

# The encoder of T5-style models: mT5, T5 and umT5 (the same names; umT5 has relative_attention_bias in every
# block, T5 v1.0 an ungated wi). mT5's feed-forward is gated GELU: wo(gelu(wi_0 x) * wi_1 x). wi_0 (wi in T5 v1.0),
# the activated projection as BERT's intermediate, is reported as intermediate, wi_1 as intermediate_linear.
# Not pruned: relative_attention_bias (position buckets, as embeddings) and the decoder, which the study never runs.
_MT5 = EncoderFamily(
    "mt5",
    ("mt5", "t5", "umt5"),
    prunable=(
        r"^encoder\.block\.\d+\.layer\.0\.SelfAttention\.[qkvo]\.weight$",
        r"^encoder\.block\.\d+\.layer\.1\.DenseReluDense\.(wi|wi_0|wi_1|wo)\.weight$",
    ),
    layer=r"^encoder\.block\.(\d+)\.",
    modules=(
        ("query", r"\.SelfAttention\.q\."),
        ("key", r"\.SelfAttention\.k\."),
        ("value", r"\.SelfAttention\.v\."),
        ("attention_output", r"\.SelfAttention\.o\."),
        ("intermediate", r"\.DenseReluDense\.wi(_0)?\."),
        ("intermediate_linear", r"\.DenseReluDense\.wi_1\."),
        ("output", r"\.DenseReluDense\.wo\."),
    ),
    word_embeddings="shared.weight",  # encoder.embed_tokens is tied to it: one tensor, listed under this name
)

FAMILIES: dict[str, EncoderFamily] = {
    "bert": EncoderFamily("bert", ("bert",), **_bert_like()),  # mBERT, multilingual-e5 / MiniLM
    "xlm-roberta": EncoderFamily("xlm-roberta", ("xlm-roberta", "roberta"), **_bert_like()),
    "distilbert": _DISTILBERT,
    "deberta-v2": _DEBERTA_V2,
    "modernbert": _MODERNBERT,
    "mt5": _MT5,
}

DESCRIBE_A_FAMILY = (
    "model.encoder.layer, model.encoder.modules and model.encoder.word_embeddings, with "
    "prune.patterns for the weights to prune"
)


def family_named(name: str) -> EncoderFamily:
    for family in FAMILIES.values():
        if name == family.name or name in family.model_types:
            return family
    supported = sorted({t for f in FAMILIES.values() for t in (f.name, *f.model_types)})
    raise ConfigError(
        f"encoder family {name!r} is not supported: supported are {supported}; describe a new one "
        f"in params with {DESCRIBE_A_FAMILY}"
    )


def resolve_family(model: ModelConfig, model_type: str, prunable: tuple[str, ...] = ()) -> EncoderFamily:
    """The family of a checkpoint of ``model_type`` (``model.family`` first), with ``model.encoder``'s overrides.

    A ``model_type`` no family knows is accepted only when params describe it completely."""
    enc = model.encoder
    described = bool(enc.layer and enc.modules and enc.word_embeddings and prunable)
    try:
        family = family_named(model.family or model_type)
    except ConfigError:
        if not described:
            raise
        family = EncoderFamily(model.family or model_type, (model_type,), prunable, enc.layer, (), enc.word_embeddings)
    overrides = {
        "layer": enc.layer,
        "word_embeddings": enc.word_embeddings,
        "modules": tuple(enc.modules.items()),
        "prunable": prunable,
    }
    return replace(family, **{k: v for k, v in overrides.items() if v})
