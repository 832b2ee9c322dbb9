"""Size on disk of one mask: ours (bit-packed safetensors, :func:`subnetworks.core.maskio.save_mask`) vs a safetensors
file of bool tensors vs the float32 state dict the authors store (``torch.save`` of float masks)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from subnetworks.core.maskio import load_mask, save_mask

from .bench_overlap import random_masks
from .common import MODEL_LABELS, Row, mbytes, prunable_shapes


def run(models: list[str], quick: bool, log=print) -> list[Row]:
    rows = []
    for key in models:
        shapes = prunable_shapes(key, quick)
        mask = random_masks(shapes, 2, seed=1)["m01"]  # density ~0.25; sizes do not depend on it
        with tempfile.TemporaryDirectory() as tmp:
            ours = save_mask(
                mask, Path(tmp) / "mask.safetensors", model=key, task="xnli", language="en", level="3", seed="0"
            )
            bools = Path(tmp) / "bool.safetensors"
            save_file({n: t.contiguous() for n, t in mask.tensors.items()}, str(bools))
            floats = Path(tmp) / "mask.pt"
            torch.save({n: t.float() for n, t in mask.tensors.items()}, floats)
            assert load_mask(ours, shapes=shapes) == mask
            size = {"ours": ours.stat().st_size, "bool": bools.stat().st_size, "float32": floats.stat().st_size}
        log(f"  files [{key}] " + ", ".join(f"{k} {mbytes(v)}" for k, v in size.items()))
        rows.append(
            Row(
                "mask_file",
                "mask file size: ours / bool safetensors (/ float32 torch.save)",
                key,
                mbytes(size["ours"]),
                f"{mbytes(size['bool'])} bool, {mbytes(size['float32'])} float32",
                size["ours"] / size["bool"],
                "≤ 0.13 of bool",
                size["ours"] / size["bool"] <= 0.13,
                note=(
                    f"{MODEL_LABELS[key]}: {mask.numel / 1e6:.1f}M weights; ours/float32 = "
                    f"{size['ours'] / size['float32']:.4f}; "
                    "round trip checked"
                ),
                detail={"bytes": size, "weights": mask.numel},
            )
        )
    return rows
