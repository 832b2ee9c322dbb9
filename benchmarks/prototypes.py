"""Prototypes of lib changes proposed by the benchmarks, measured next to the current code (lib is not edited here).

* :func:`magnitude_prune_lowmem` — the same result as :func:`subnetworks.prune.magnitude_prune` (same threshold,
  same tie-breaking, same metadata) without materialising a global score vector: the threshold is found by a
  two-level radix select over the float bits of |w| (non-negative IEEE floats order like their int32 bit
  patterns), tensor by tensor, so the extra memory is the output mask plus a few temporaries of the largest tensor.
* :func:`pairwise_counts_blocked` — the intersection counts of :meth:`subnetworks.overlap.PackedMasks.counts`
  computed over cache-sized column blocks, split between threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

import numpy as np
import torch

from subnetworks.masks import Mask
from subnetworks.prune import kept_count

_HIGH_BINS = 1 << 15  # bit patterns of non-negative floats: the sign bit is 0, so the top 16 bits are < 2**15
_LOW_BINS = 1 << 16


def _keys(weight: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """int32 bit patterns of |w| (monotone in |w|) for kept positions, -1 for pruned ones."""
    scores = weight.detach().reshape(-1).abs().float().cpu()
    return scores.view(torch.int32).masked_fill_(~keep.reshape(-1).cpu(), -1)


def magnitude_prune_lowmem(weights: Mapping[str, torch.Tensor], mask: Mask, sparsity: float) -> Mask:
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
    out: dict[str, torch.Tensor] = {}
    if keep == 0:
        threshold, ties = float("inf"), 0
        out = {n: torch.zeros_like(mask.tensors[n], device="cpu") for n in names}
    else:
        # Level 1: histogram of the top 16 bits of every kept weight's key (pruned ones, -1, fall in bin 0).
        high = torch.zeros(_HIGH_BINS + 1, dtype=torch.int64)
        for n in names:
            high += torch.bincount((_keys(weights[n], mask.tensors[n]) >> 16) + 1, minlength=_HIGH_BINS + 1)
        high = high[1:]
        above = torch.flip(torch.cumsum(torch.flip(high, [0]), 0), [0]) - high  # kept weights in higher bins
        b = int(torch.nonzero((above < keep) & (above + high >= keep)).max())
        rank = keep - int(above[b])  # the threshold is the rank-th largest key inside bin b
        # Level 2: histogram of the low 16 bits inside bin b.
        low = torch.zeros(_LOW_BINS + 1, dtype=torch.int64)
        for n in names:
            k = _keys(weights[n], mask.tensors[n])
            low += torch.bincount(torch.where((k >> 16) == b, (k & 0xFFFF) + 1, 0), minlength=_LOW_BINS + 1)
        low = low[1:]
        above_low = torch.flip(torch.cumsum(torch.flip(low, [0]), 0), [0]) - low
        c = int(torch.nonzero((above_low < rank) & (above_low + low >= rank)).max())
        key = (b << 16) | c
        threshold = float(torch.tensor([key], dtype=torch.int32).view(torch.float32))
        ties = int(low[c])
        need = rank - int(above_low[c])  # ties at the threshold still to keep, lowest global index first
        for n in names:
            k = _keys(weights[n], mask.tensors[n])
            flat = k > key
            if need > 0:
                at = (k == key).nonzero().reshape(-1)[:need]
                flat[at] = True
                need -= at.numel()
            out[n] = flat.reshape(mask.tensors[n].shape)
    meta = dict(mask.meta)
    meta.update(sparsity=repr(sparsity), threshold=repr(threshold), ties_at_threshold=str(ties))
    return Mask(out, meta)


def pairwise_counts_blocked(words: np.ndarray, block: int = 4096, threads: int | None = None) -> np.ndarray:
    """|A∩B| for every pair of rows of a (masks × words) uint64 matrix; column blocks fit in cache."""
    n_masks, n_words = words.shape
    threads = threads or os.cpu_count() or 1
    starts = list(range(0, n_words, block))

    def work(chunk: list[int]) -> np.ndarray:
        inter = np.zeros((n_masks, n_masks), dtype=np.int64)
        tmp = np.empty((n_masks, block), dtype=np.uint64)
        pop = np.empty((n_masks, block), dtype=np.uint8)
        for s in chunk:
            sub = words[:, s : s + block]
            w = sub.shape[1]
            for i in range(n_masks):
                m = n_masks - i
                np.bitwise_and(sub[i], sub[i:], out=tmp[:m, :w])
                np.bitwise_count(tmp[:m, :w], out=pop[:m, :w])
                inter[i, i:] += pop[:m, :w].sum(axis=1, dtype=np.int64)
        return inter

    chunks = [starts[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        inter = sum(pool.map(work, chunks))
    upper = np.triu(inter)
    return upper + np.triu(upper, 1).T
