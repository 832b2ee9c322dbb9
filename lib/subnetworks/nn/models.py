"""Load a pre-trained encoder with the head a task needs, and name its parameters as the base encoder does.

Every model of one encoder (MLM, sequence or token classification) exposes the same base-encoder parameter names
through :func:`encoder_parameters`, which is what masks are keyed by. T5-style encoders (mT5) have no MLM model,
and a sequence classifier of ours that runs the encoder alone (:class:`MT5EncoderForSequenceClassification`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    MT5ForTokenClassification,
    T5ForTokenClassification,
    UMT5ForTokenClassification,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import logging as hf_logging

AUTO_CLASSES = {
    "mlm": AutoModelForMaskedLM,
    "seqcls": AutoModelForSequenceClassification,
    "tokcls": AutoModelForTokenClassification,
}


class ModelUnavailable(RuntimeError):
    """A model could not be loaded (most often: a hub model asked for on a machine with no internet)."""


class _MeanPooledClassifier:
    """A sequence classifier on the encoder alone, made from transformers' encoder-only token classifier of a
    T5-style model: the same parameters (``transformer``, the encoder; ``dropout``; ``classifier``), so the sequence
    and token classifiers share base-encoder names and one mask fits both; the classifier reads the mean of the
    tokens' final states over the attention mask (T5 has no [CLS] token). transformers' own sequence classifier of
    these models runs the decoder too (an encoder-decoder model), which the study does not prune."""

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        hidden = self.transformer(
            input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs
        ).last_hidden_state
        weights = (torch.ones(hidden.shape[:2]) if attention_mask is None else attention_mask).to(hidden)
        pooled = (hidden * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp(min=1)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class MT5EncoderForSequenceClassification(_MeanPooledClassifier, MT5ForTokenClassification):
    """mT5's encoder, mean-pooled, and a linear classifier."""


class T5EncoderForSequenceClassification(_MeanPooledClassifier, T5ForTokenClassification):
    """T5's encoder, mean-pooled, and a linear classifier."""


class UMT5EncoderForSequenceClassification(_MeanPooledClassifier, UMT5ForTokenClassification):
    """umT5's encoder, mean-pooled, and a linear classifier."""


# Where the auto class's choice for a checkpoint's model_type does not fit the study: by (model_type, task kind)
TASK_MODELS = {
    ("mt5", "seqcls"): MT5EncoderForSequenceClassification,
    ("t5", "seqcls"): T5EncoderForSequenceClassification,
    ("umt5", "seqcls"): UMT5EncoderForSequenceClassification,
}
SPAN_CORRUPTION = ("mt5", "t5", "umt5")  # pre-trained by span corruption (seq2seq): no masked-LM head to fine-tune


def encoder_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The base encoder's parameters, keyed without the head prefix (``bert.``, ``roberta.``)."""
    base = getattr(model, "base_model", model)
    return dict(base.named_parameters())


def encoder_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in encoder_parameters(model).items()}


def model_type(model: nn.Module) -> str:
    """The checkpoint's ``config.model_type`` (``bert``, ``xlm-roberta``, …): what picks its encoder family."""
    return str(getattr(model.config, "model_type", ""))


def _check_kind(kind: str) -> None:
    if kind not in AUTO_CLASSES:
        raise ValueError(f"unknown task kind {kind!r}: use one of {sorted(AUTO_CLASSES)}")


def task_model_class(model_type: str, kind: str):
    """The class that loads a checkpoint of ``model_type`` for a task kind: the auto class's, unless
    :data:`TASK_MODELS` replaces it; a clear error where the encoder cannot do the task."""
    _check_kind(kind)
    if kind == "mlm" and model_type in SPAN_CORRUPTION:
        raise ValueError(
            f"{model_type} checkpoints have no masked-LM model: {model_type} is pre-trained by span corruption "
            "(an encoder-decoder objective), not masked LM. Its encoder runs seqcls and tokcls tasks; an mlm task "
            "needs an encoder pre-trained by masked LM (bert, xlm-roberta, distilbert, deberta-v2, modernbert)"
        )
    return TASK_MODELS.get((model_type, kind), AUTO_CLASSES[kind])


def _offline_hint(name: str) -> str:
    local = Path(name).exists()
    return (
        f"model {name!r} could not be loaded"
        + ("" if local else " (not a local folder, and the hub is unreachable or the name is wrong)")
        + ": params/demo.yaml runs fully offline on the embedded model; params/paper.yaml needs internet"
    )


def load_model(
    name: str,
    kind: str,
    *,
    num_labels: int | None = None,
    revision: str | None = None,
    head_seed: int = 0,
) -> nn.Module:
    """Pre-trained weights θ0 plus a task head initialised from ``head_seed`` (so a rewound head is reproducible).

    The checkpoint's config is read first: its ``model_type`` picks the class (:func:`task_model_class`)."""
    _check_kind(kind)
    hf_logging.set_verbosity_error()  # the load report lists the new head as "missing": expected, not news
    kwargs: dict = {"revision": revision} if revision else {}
    labels: dict = {}
    if kind != "mlm":
        if not num_labels:
            raise ValueError(f"a {kind} model needs num_labels")
        labels["num_labels"] = num_labels
    try:
        config = AutoConfig.from_pretrained(name, **kwargs, **labels)
        task_class = task_model_class(config.model_type, kind)
        torch.manual_seed(head_seed)
        model, info = task_class.from_pretrained(name, config=config, output_loading_info=True, **kwargs)
    except SafetensorError as err:
        raise ModelUnavailable(
            f"{name}: its weights could not be read ({err}): the model folder is damaged; delete it and make it again"
        ) from err
    except OSError as err:
        raise ModelUnavailable(_offline_hint(name)) from err
    _check_encoder_loaded(name, model, info["missing_keys"])
    return model


def _check_encoder_loaded(name: str, model: nn.Module, missing: list[str]) -> None:
    """transformers initialises missing weights at random and only logs it: a checkpoint of another model would
    silently give a random encoder. The pooler and the task head may legitimately be new (an MLM checkpoint)."""
    prefix = model.base_model_prefix + "."
    lost = sorted(k for k in missing if k.startswith(prefix) and not k.startswith(prefix + "pooler."))
    if lost:
        raise ModelUnavailable(
            f"{name}: its weights lack {len(lost)} encoder tensors, e.g. {lost[:2]}: not a checkpoint of this model"
        )


def load_tokenizer(name: str, revision: str | None = None):
    try:
        return AutoTokenizer.from_pretrained(name, **({"revision": revision} if revision else {}))
    except OSError as err:
        raise ModelUnavailable(_offline_hint(name)) from err


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an explicit ``cuda`` on a machine without one is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            "runtime.device is 'cuda' but no CUDA device is visible: set runtime.device to 'auto' or 'cpu'"
        )
    return torch.device(requested)
