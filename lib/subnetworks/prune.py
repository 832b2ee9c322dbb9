"""Global magnitude pruning, random-mask baselines, and the IMP level arithmetic.

``magnitude_prune`` is a pure function of (weights, current mask, target sparsity): it never looks at a model,
so it is tested with closed-form answers and reused by the benchmarks and the pipeline alike.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import torch

from .masks import Mask

DEFAULT_PRUNABLE = (
    r"^encoder\.layer\.\d+\.attention\.self\.(query|key|value)\.weight$",
    r"^encoder\.layer\.\d+\.attention\.output\.dense\.weight$",
    r"^encoder\.layer\.\d+\.intermediate\.dense\.weight$",
    r"^encoder\.layer\.\d+\.output\.dense\.weight$",
    r"^pooler\.dense\.weight$",
)


def select_prunable(names: Iterable[str], patterns: Sequence[str] = DEFAULT_PRUNABLE) -> list[str]:
    """Names matching any pattern, in the given order. Patterns that match nothing at all are an error."""
    names = list(names)
    compiled = [re.compile(p) for p in patterns]
    chosen = [n for n in names if any(c.search(n) for c in compiled)]
    if not chosen:
        raise ValueError(
            f"no parameter matches the prunable patterns {list(patterns)} (e.g. {names[:3]}): "
            "names are base-encoder names without a head prefix such as 'bert.'"
        )
    return chosen


def validate_schedule(schedule: Sequence[float]) -> list[float]:
    """A schedule is a strictly increasing list of cumulative sparsities, each in (0, 1)."""
    values = [float(s) for s in schedule]
    if not values:
        raise ValueError("the sparsity schedule is empty: give e.g. [0.5, 0.8]")
    for s in values:
        if not 0.0 < s < 1.0:
            raise ValueError(f"sparsity {s} is outside (0, 1): a sparsity is the share of prunable weights removed")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"the sparsity schedule {values} is not strictly increasing")
    return values


def kept_count(total: int, sparsity: float) -> int:
    """How many of ``total`` weights a mask at ``sparsity`` keeps (rounded to the nearest weight)."""
    return total - int(round(sparsity * total))


def magnitude_prune(weights: Mapping[str, torch.Tensor], mask: Mask, sparsity: float) -> Mask:
    """Keep the largest-magnitude weights globally so that exactly ``kept_count(n, sparsity)`` survive.

    Only weights the current mask keeps compete, so the result is a subset of ``mask``. Ties at the threshold go
    to the lower global index (tensors in ``mask`` order, row-major inside), which makes the result deterministic.
    ``meta`` records the threshold and how many weights tie at it (quantised weights tie a lot).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
    names = list(mask.tensors)
    missing = [n for n in names if n not in weights]
    if missing:
        raise ValueError(f"weights lack prunable tensors {missing[:3]}")
    total = mask.numel
    keep = kept_count(total, sparsity)
    if keep > mask.kept:
        raise ValueError(f"target sparsity {sparsity} keeps {keep} weights but the current mask keeps only {mask.kept}")
    # One flat vector of |w| with pruned positions at -1, so they rank below every kept weight.
    scores = torch.cat(
        [weights[n].detach().abs().float().reshape(-1).cpu().masked_fill(~mask.tensors[n].reshape(-1), -1.0) for n in names]
    )
    if keep == 0:
        threshold = float("inf")
        flat = torch.zeros_like(scores, dtype=torch.bool)
        ties = 0
    else:
        threshold = float(torch.kthvalue(scores, scores.numel() - keep + 1).values)
        above = scores > threshold
        at = scores == threshold
        ties = int(at.sum())
        need = keep - int(above.sum())
        tie_positions = at.nonzero().reshape(-1)[:need]
        flat = above
        flat[tie_positions] = True
    out, offset = {}, 0
    for n in names:
        size = mask.tensors[n].numel()
        out[n] = flat[offset : offset + size].reshape(mask.tensors[n].shape).clone()
        offset += size
    meta = dict(mask.meta)
    meta.update(sparsity=repr(sparsity), threshold=repr(threshold), ties_at_threshold=str(ties))
    return Mask(out, meta)


def random_mask_like(mask: Mask, seed: int) -> Mask:
    """A mask with exactly the same kept count per tensor as ``mask`` at uniformly random positions."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, tensor in mask.tensors.items():
        kept = int(tensor.sum())
        flat = torch.zeros(tensor.numel(), dtype=torch.bool)
        flat[torch.randperm(tensor.numel(), generator=generator)[:kept]] = True
        out[name] = flat.reshape(tensor.shape)
    return Mask(out, {**mask.meta, "kind": "random", "random_seed": str(seed)})


@torch.no_grad()
def apply_mask(params: Mapping[str, torch.nn.Parameter], mask: Mask) -> None:
    """Zero every masked weight in place (the weights of a sub-network outside its mask are exactly zero)."""
    for name, keep in mask.tensors.items():
        param = params[name]
        param.mul_(keep.to(param.device))
