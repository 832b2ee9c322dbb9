"""Global magnitude pruning and applying a mask to weights.

``magnitude_prune`` is a pure function of (weights, current mask, target sparsity): it never looks at a model,
so it is tested with closed-form answers and reused by the benchmarks and the pipeline alike. One IMP step is
``magnitude_prune(trained weights, mask of level k, sparsity of level k+1)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from .masks import Mask


def select_prunable(names: Iterable[str], patterns: Sequence[str]) -> list[str]:
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


def kept_count(total: int, sparsity: float) -> int:
    """How many of ``total`` weights a mask at ``sparsity`` keeps (rounded to the nearest weight)."""
    return total - int(round(sparsity * total))


_HIGH_BINS = 1 << 15  # |w| as int32 bits has a 0 sign bit: its top 16 bits are < 2**15
_LOW_BINS = 1 << 16


def _magnitude_keys(weight: torch.Tensor, keep: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(int32 bit patterns of |w| as float32, flat kept flags) of one tensor: non-negative IEEE floats order exactly
    as their bit patterns do, so ranks can be found by histograms of the bits instead of a sort."""
    values = np.ascontiguousarray(weight.detach().reshape(-1).float().cpu().numpy())
    return values.view(np.int32) & np.int32(0x7FFFFFFF), keep.reshape(-1).cpu().numpy()


def _bin_of_rank(counts: np.ndarray, rank: int) -> tuple[int, int]:
    """The bin holding the rank-th largest item (rank ≥ 1), and how many items lie in higher bins."""
    higher = np.cumsum(counts[::-1])[::-1] - counts
    b = int(np.flatnonzero((higher < rank) & (higher + counts >= rank)).max())
    return b, int(higher[b])


def magnitude_prune(weights: Mapping[str, torch.Tensor], mask: Mask, sparsity: float) -> Mask:
    """Keep the largest-magnitude weights globally so that exactly ``kept_count(n, sparsity)`` survive.

    Only weights the current mask keeps compete, so the result is a subset of ``mask``. Ties at the threshold go
    to the lower global index (tensors in ``mask`` order, which is the model's, row-major inside): deterministic.
    ``meta`` records the threshold and how many weights tie at it (quantised weights tie a lot).

    The threshold is found by a two-pass radix select over the bits of |w| (top 16 bits, then the low 16 bits
    inside the threshold's bin), tensor by tensor: no global score vector, so the extra memory is the new mask and
    temporaries of the largest tensor, not a copy of every prunable weight (see benchmarks/).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
    names = list(mask.tensors)
    missing = [n for n in names if n not in weights]
    if missing:
        raise ValueError(f"weights lack prunable tensors {missing[:3]}")
    keep = kept_count(mask.numel, sparsity)
    if keep > mask.kept:
        raise ValueError(f"target sparsity {sparsity} keeps {keep} weights but the current mask keeps only {mask.kept}")
    if keep == 0:
        threshold, ties = float("inf"), 0
        out = {n: torch.zeros(mask.tensors[n].shape, dtype=torch.bool) for n in names}
    else:
        high = np.zeros(_HIGH_BINS, dtype=np.int64)
        for n in names:
            key, kept = _magnitude_keys(weights[n], mask.tensors[n])
            high += np.bincount((key >> 16)[kept], minlength=_HIGH_BINS)
        b, above = _bin_of_rank(high, keep)
        low = np.zeros(_LOW_BINS, dtype=np.int64)
        for n in names:
            key, kept = _magnitude_keys(weights[n], mask.tensors[n])
            low += np.bincount(key[((key >> 16) == b) & kept] & 0xFFFF, minlength=_LOW_BINS)
        c, above_in_bin = _bin_of_rank(low, keep - above)
        threshold_key = (b << 16) | c
        threshold = float(np.array([threshold_key], dtype=np.int32).view(np.float32)[0])
        ties = int(low[c])
        need = keep - above - above_in_bin  # weights at the threshold to keep, lowest global index first
        out = {}
        for n in names:
            key, kept = _magnitude_keys(weights[n], mask.tensors[n])
            flat = (key > threshold_key) & kept
            if need > 0:
                at = np.flatnonzero((key == threshold_key) & kept)[:need]
                flat[at] = True
                need -= at.size
            out[n] = torch.from_numpy(flat).reshape(mask.tensors[n].shape)
    meta = dict(mask.meta)
    meta.update(sparsity=repr(sparsity), threshold=repr(threshold), ties_at_threshold=str(ties))
    return Mask(out, meta)


def mask_multipliers(params: Mapping[str, torch.nn.Parameter], mask: Mask) -> dict[str, torch.Tensor]:
    """The mask as 0/1 tensors in each parameter's dtype and on its device, made once per fine-tuning run:
    multiplying by them costs about half of multiplying by a bool mask, which is converted on every call."""
    return {n: keep.to(device=params[n].device, dtype=params[n].dtype) for n, keep in mask.tensors.items()}


@torch.no_grad()
def apply_mask(params: Mapping[str, torch.nn.Parameter], mask: Mask | Mapping[str, torch.Tensor]) -> None:
    """Zero every masked weight in place (the weights of a sub-network outside its mask are exactly zero).
    ``mask`` is a :class:`Mask` or the :func:`mask_multipliers` of one."""
    for name, keep in (mask.tensors if isinstance(mask, Mask) else mask).items():
        param = params[name]
        param.mul_(keep.to(param.device))
