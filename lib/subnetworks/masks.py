"""Sub-network masks: one boolean tensor per prunable parameter of the *base encoder*.

Names carry no head prefix (``bert.``, ``roberta.``), so a mask found with an MLM head applies unchanged to
sequence- and token-classification models of the same encoder. On disk a mask is a bit-packed ``.safetensors``
file (no pickle): ~1 bit per weight instead of 8 (bool) or 32 (float).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

FORMAT_VERSION = "1"
MODULE_TYPES = ("query", "key", "value", "attention_output", "intermediate", "output", "pooler")

_MODULE_PATTERNS = (
    (re.compile(r"attention\.self\.query\."), "query"),
    (re.compile(r"attention\.self\.key\."), "key"),
    (re.compile(r"attention\.self\.value\."), "value"),
    (re.compile(r"attention\.output\.dense\."), "attention_output"),
    (re.compile(r"intermediate\.dense\."), "intermediate"),
    (re.compile(r"(?<!attention\.)output\.dense\."), "output"),
    (re.compile(r"^pooler\."), "pooler"),
)
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.")


class MaskError(ValueError):
    """A mask does not fit what it is applied to, or its file is damaged."""


def module_type(name: str) -> str:
    """The study's module type of a parameter name (query, key, …, pooler), or ``other``."""
    for pattern, kind in _MODULE_PATTERNS:
        if pattern.search(name):
            return kind
    return "other"


def layer_of(name: str) -> str:
    """The encoder layer of a parameter name as a string (``"0"``…), or ``"pooler"``/``"other"``."""
    found = _LAYER.search(name)
    if found:
        return found.group(1)
    return "pooler" if name.startswith("pooler.") else "other"


@dataclass
class Mask:
    """A validated mapping from base-encoder parameter name to a bool tensor of that parameter's shape."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, tensor in self.tensors.items():
            if tensor.dtype != torch.bool:
                raise MaskError(f"mask tensor {name!r} has dtype {tensor.dtype}, expected torch.bool")

    @classmethod
    def full(cls, shapes: Mapping[str, Iterable[int]], **meta: str) -> "Mask":
        """The dense mask (everything kept) for the given parameter shapes."""
        return cls({n: torch.ones(tuple(s), dtype=torch.bool) for n, s in shapes.items()}, dict(meta))

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: tuple(t.shape) for n, t in self.tensors.items()}

    @property
    def numel(self) -> int:
        return sum(t.numel() for t in self.tensors.values())

    @property
    def kept(self) -> int:
        return sum(int(torch.count_nonzero(t)) for t in self.tensors.values())  # bool sum() goes through int64

    @property
    def density(self) -> float:
        return self.kept / self.numel if self.numel else 1.0

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def density_by(self, group: str = "tensor") -> dict[str, float]:
        """Density per ``tensor``, ``layer`` or ``module`` (module type, see :data:`MODULE_TYPES`)."""
        key = {"tensor": lambda n: n, "layer": layer_of, "module": module_type}.get(group)
        if key is None:
            raise ValueError(f"unknown grouping {group!r}: use 'tensor', 'layer' or 'module'")
        kept: dict[str, int] = {}
        total: dict[str, int] = {}
        for name, tensor in self.tensors.items():
            k = key(name)
            kept[k] = kept.get(k, 0) + int(torch.count_nonzero(tensor))
            total[k] = total.get(k, 0) + tensor.numel()
        return {k: kept[k] / total[k] for k in total}

    def _check_compatible(self, other: "Mask") -> None:
        if self.shapes != other.shapes:
            missing = sorted(set(self.shapes) ^ set(other.shapes))
            wrong = sorted(n for n in set(self.shapes) & set(other.shapes) if self.shapes[n] != other.shapes[n])
            raise MaskError(f"masks cover different parameters: names only in one {missing[:3]}, shapes differ {wrong[:3]}")

    def __and__(self, other: "Mask") -> "Mask":
        self._check_compatible(other)
        return Mask({n: t & other.tensors[n] for n, t in self.tensors.items()})

    def __or__(self, other: "Mask") -> "Mask":
        self._check_compatible(other)
        return Mask({n: t | other.tensors[n] for n, t in self.tensors.items()})

    def __invert__(self) -> "Mask":
        return Mask({n: ~t for n, t in self.tensors.items()})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask) or self.shapes != other.shapes:
            return False
        return all(torch.equal(t, other.tensors[n]) for n, t in self.tensors.items())

    def issubset(self, other: "Mask") -> bool:
        self._check_compatible(other)
        return all(not bool((t & ~other.tensors[n]).any()) for n, t in self.tensors.items())

    def validate_against(self, shapes: Mapping[str, tuple[int, ...]], model_name: str | None = None) -> None:
        """Raise :class:`MaskError` naming the first mismatch between this mask and a model's parameters."""
        if model_name and self.meta.get("model") and self.meta["model"] != model_name:
            raise MaskError(
                f"mask was found on model {self.meta['model']!r} but is applied to {model_name!r}: "
                "use a mask of the same pre-trained model"
            )
        for name, shape in self.shapes.items():
            if name not in shapes:
                raise MaskError(
                    f"mask parameter {name!r} does not exist in the model "
                    f"(model has e.g. {sorted(shapes)[:2]}): the mask comes from another architecture"
                )
            if tuple(shapes[name]) != shape:
                raise MaskError(f"mask parameter {name!r} has shape {shape} but the model's has {tuple(shapes[name])}")


def save_mask(mask: Mask, path: str | Path, **meta: object) -> Path:
    """Write ``mask`` bit-packed to ``path`` (.safetensors) atomically, with metadata merged from ``mask.meta``.

    ``shapes`` keeps the mask's tensor order (the model's), which :func:`load_mask` restores: pruning breaks ties
    and draws random controls in that order. Equal masks give byte-identical files (see :func:`_canonical`)."""
    from .store import atomic_write_bytes

    path = Path(path)
    arrays = {n: np.packbits(t.detach().cpu().numpy().reshape(-1)) for n, t in mask.tensors.items()}
    metadata = {k: str(v) for k, v in {**mask.meta, **meta}.items()}
    metadata.update(
        format="subnetworks-mask",
        format_version=FORMAT_VERSION,
        shapes=json.dumps(mask.shapes),
        density=repr(mask.density),
    )
    atomic_write_bytes(path, _canonical(save(arrays, metadata=metadata)))
    return path


def _canonical(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header in sorted key order.

    safetensors writes the metadata in a per-process hash order, so equal masks would differ as files (and break
    checksums). The tensor bytes and their offsets, relative to the end of the header, do not change."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + size :]


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a mask file, without reading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise MaskError(f"{path} is not a readable mask file ({err}): delete it and rerun the stage that wrote it") from err


def read_packed(path: str | Path) -> tuple[dict[str, str], dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    """A mask file's metadata, its packed bytes per tensor (``numpy.packbits``, in the mask's tensor order) and
    their shapes, checked to be a whole mask file of this format. The overlap code uses the bytes as they are."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mask file {path} does not exist: run the pruning stage that writes it first")
    meta = read_metadata(path)
    if meta.get("format") != "subnetworks-mask":
        raise MaskError(f"{path} is a .safetensors file but not a subnetworks mask (no 'format' metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise MaskError(f"{path} has mask format version {meta.get('format_version')}, this code reads {FORMAT_VERSION}")
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise MaskError(f"{path} is damaged ({err}): delete it and rerun the stage that wrote it") from err
    shapes = {n: tuple(s) for n, s in json.loads(meta["shapes"]).items()}
    for name, shape in shapes.items():
        need = -(-int(np.prod(shape)) // 8)
        if name not in arrays or arrays[name].size != need:
            raise MaskError(f"{path}: tensor {name!r} should hold {need} packed bytes for its shape {shape}")
    return meta, {n: arrays[n] for n in shapes}, shapes


def load_mask(path: str | Path, shapes: Mapping[str, tuple[int, ...]] | None = None, model_name: str | None = None) -> Mask:
    """Read a mask written by :func:`save_mask`; with ``shapes`` (and ``model_name``) validate it against a model."""
    meta, arrays, stored_shapes = read_packed(path)
    tensors = {
        name: torch.from_numpy(np.unpackbits(arrays[name], count=int(np.prod(shape))).astype(bool).reshape(shape))
        for name, shape in stored_shapes.items()
    }
    keep = ("format", "format_version", "shapes")
    mask = Mask(tensors, {k: v for k, v in meta.items() if k not in keep})
    if shapes is not None:
        mask.validate_against(shapes, model_name)
    return mask
