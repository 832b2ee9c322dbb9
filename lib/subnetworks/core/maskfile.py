"""Reading mask files without torch: their metadata and packed bits (the report reads finished masks with these;
:mod:`.maskio` writes them and reads them into :class:`~.masks.Mask`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file

FORMAT_VERSION = "1"


class MaskError(ValueError):
    """A mask does not fit what it is applied to, or its file is damaged."""


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
