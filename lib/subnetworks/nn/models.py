"""Load a pre-trained encoder with the head a task needs, and name its parameters as the base encoder does.

Every model of one encoder (MLM, sequence or token classification) exposes the same base-encoder parameter names
through :func:`encoder_parameters`, which is what masks are keyed by.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)
from transformers.utils import logging as hf_logging

AUTO_CLASSES = {
    "mlm": AutoModelForMaskedLM,
    "seqcls": AutoModelForSequenceClassification,
    "tokcls": AutoModelForTokenClassification,
}


class ModelUnavailable(RuntimeError):
    """A model could not be loaded (most often: a hub model asked for on a machine with no internet)."""


def encoder_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The base encoder's parameters, keyed without the head prefix (``bert.``, ``roberta.``)."""
    base = getattr(model, "base_model", model)
    return dict(base.named_parameters())


def encoder_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in encoder_parameters(model).items()}


def model_type(model: nn.Module) -> str:
    """The checkpoint's ``config.model_type`` (``bert``, ``xlm-roberta``, …): what picks its encoder family."""
    return str(getattr(model.config, "model_type", ""))


def _auto_class(kind: str):
    if kind not in AUTO_CLASSES:
        raise ValueError(f"unknown task kind {kind!r}: use one of {sorted(AUTO_CLASSES)}")
    return AUTO_CLASSES[kind]


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
    """Pre-trained weights θ0 plus a task head initialised from ``head_seed`` (so a rewound head is reproducible)."""
    auto = _auto_class(kind)
    hf_logging.set_verbosity_error()  # the load report lists the new head as "missing": expected, not news
    kwargs: dict = {"revision": revision} if revision else {}
    if kind != "mlm":
        if not num_labels:
            raise ValueError(f"a {kind} model needs num_labels")
        kwargs["num_labels"] = num_labels
    torch.manual_seed(head_seed)
    try:
        model, info = auto.from_pretrained(name, output_loading_info=True, **kwargs)
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
