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
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save

from .atomic import atomic_write_bytes
from .masks import Mask, MaskError

FORMAT_VERSION = "1"


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


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a mask file, without reading its tensors."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise MaskError(
            f"{path} is not a readable mask file ({err}): delete it and rerun the stage that wrote it"
        ) from err


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
        raise MaskError(
            f"{path} has mask format version {meta.get('format_version')}, this code reads {FORMAT_VERSION}"
        )
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
