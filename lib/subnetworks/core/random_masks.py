"""Random masks: the chance baselines of a sub-network, drawn with exactly its kept counts."""

from __future__ import annotations

import torch

from .masks import Mask


def random_per_tensor(mask: Mask, seed: int) -> Mask:
    """A mask with exactly the same kept count per tensor as ``mask`` at uniformly random positions."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, tensor in mask.tensors.items():
        kept = int(tensor.sum())
        flat = torch.zeros(tensor.numel(), dtype=torch.bool)
        flat[torch.randperm(tensor.numel(), generator=generator)[:kept]] = True
        out[name] = flat.reshape(tensor.shape)
    return Mask(out, {**mask.meta, "kind": "random", "random_seed": str(seed)})


def random_global(mask: Mask, seed: int) -> Mask:
    """A mask with the same total kept count as ``mask`` at uniformly random positions over all its tensors."""
    generator = torch.Generator().manual_seed(seed)
    total = mask.numel
    flat = torch.zeros(total, dtype=torch.bool)
    flat[torch.randperm(total, generator=generator)[: mask.kept]] = True
    out, start = {}, 0
    for name, tensor in mask.tensors.items():
        out[name] = flat[start : start + tensor.numel()].reshape(tensor.shape).clone()
        start += tensor.numel()
    return Mask(out, {**mask.meta, "kind": "global_random", "random_seed": str(seed)})
