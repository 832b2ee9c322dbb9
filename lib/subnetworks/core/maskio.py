"""The mask file format: bit-packed ``.safetensors`` (no pickle), ~1 bit per weight instead of 8 (bool) or 32.

Metadata records the format version, the tensor shapes in the model's order, the density and whatever the writer
adds (model, task, language, level, seed, family, …). Equal masks give byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save

from .atomic import atomic_write_bytes
from .maskfile import FORMAT_VERSION, read_packed
from .masks import Mask


def save_mask(mask: Mask, path: str | Path, **meta: object) -> Path:
    """Write ``mask`` bit-packed to ``path`` (.safetensors) atomically, with metadata merged from ``mask.meta``.

    ``shapes`` keeps the mask's tensor order (the model's), which :func:`load_mask` restores: pruning breaks ties
    and draws random controls in that order. Equal masks give byte-identical files (see :func:`_canonical`)."""
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


def load_mask(
    path: str | Path, shapes: Mapping[str, tuple[int, ...]] | None = None, model_name: str | None = None
) -> Mask:
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
