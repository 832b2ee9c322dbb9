"""Encoder families as data: which weights IMP prunes, how parameter names map to layers and module types, and
which matrix holds the word embeddings. Chosen from the checkpoint's ``model_type`` (or ``model.family``), with
``model.encoder`` in params overriding any field or describing a family this module does not know.

Names are base-encoder names (``encoder.layer.0.attention.self.query.weight``: no ``bert.``/``roberta.`` prefix),
the names masks are keyed by. A new family is one more :class:`EncoderFamily` in :data:`FAMILIES` and a test on a
tiny model of it built from a config in code.
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


_BERT_LIKE = dict(
    prunable=(
        r"^encoder\.layer\.\d+\.attention\.self\.(query|key|value)\.weight$",
        r"^encoder\.layer\.\d+\.attention\.output\.dense\.weight$",
        r"^encoder\.layer\.\d+\.intermediate\.dense\.weight$",
        r"^encoder\.layer\.\d+\.output\.dense\.weight$",
        r"^pooler\.dense\.weight$",
    ),
    layer=r"encoder\.layer\.(\d+)\.",
    modules=(
        ("query", r"attention\.self\.query\."),
        ("key", r"attention\.self\.key\."),
        ("value", r"attention\.self\.value\."),
        ("attention_output", r"attention\.output\.dense\."),
        ("intermediate", r"intermediate\.dense\."),
        ("output", r"(?<!attention\.)output\.dense\."),
        ("pooler", r"^pooler\."),
    ),
    word_embeddings="embeddings.word_embeddings.weight",
)

FAMILIES: dict[str, EncoderFamily] = {
    "bert": EncoderFamily("bert", ("bert",), **_BERT_LIKE),  # mBERT, multilingual-e5 / MiniLM
    "xlm-roberta": EncoderFamily("xlm-roberta", ("xlm-roberta", "roberta"), **_BERT_LIKE),
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
