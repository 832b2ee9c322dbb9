"""Prototypes of lib changes proposed by the benchmarks, measured next to the current code (lib is not edited here).

* :func:`magnitude_prune_lowmem` — the same result as :func:`subnetworks.prune.magnitude_prune` (same threshold,
  same tie-breaking, same metadata) without materialising a global score vector: the threshold is found by a
  two-level radix select over the float bits of |w| (non-negative IEEE floats order like their int32 bit
  patterns), tensor by tensor, so the extra memory is the output mask plus a few temporaries of the largest tensor.
* :func:`pairwise_counts_blocked` — the intersection counts of :meth:`subnetworks.overlap.PackedMasks.counts`
  computed over cache-sized column blocks (optionally split between threads), instead of one (masks × words)
  temporary per mask that streams the whole matrix through memory 54 times.
* :func:`packed_from_files` — :class:`subnetworks.overlap.PackedMasks` built from the mask files' packed bytes.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from subnetworks.masks import Mask
from subnetworks.overlap import PackedMasks
from subnetworks.prune import kept_count

_HIGH_BINS = 1 << 15  # |w| as int32 bits has a 0 sign bit: its top 16 bits are < 2**15
_LOW_BINS = 1 << 16


def _keys(weight: torch.Tensor, keep: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(int32 bit patterns of |w|, which order exactly as |w| does, flat kept flags) of one tensor."""
    values = weight.detach().reshape(-1).float().cpu().numpy()
    return values.view(np.int32) & np.int32(0x7FFFFFFF), keep.reshape(-1).cpu().numpy()


def _bin_of_rank(counts: np.ndarray, rank: int) -> tuple[int, int]:
    """The bin holding the rank-th largest item (rank ≥ 1) and how many items lie in higher bins."""
    higher = np.cumsum(counts[::-1])[::-1] - counts
    b = int(np.flatnonzero((higher < rank) & (higher + counts >= rank)).max())
    return b, int(higher[b])


def magnitude_prune_lowmem(weights: Mapping[str, torch.Tensor], mask: Mask, sparsity: float) -> Mask:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
    names = list(mask.tensors)
    missing = [n for n in names if n not in weights]
    if missing:
        raise ValueError(f"weights lack prunable tensors {missing[:3]}")
    keep = kept_count(mask.numel, sparsity)
    if keep > mask.kept:
        raise ValueError(f"target sparsity {sparsity} keeps {keep} weights but the current mask keeps only {mask.kept}")
    out: dict[str, torch.Tensor] = {}
    if keep == 0:
        threshold, ties = float("inf"), 0
        out = {n: torch.zeros(mask.tensors[n].shape, dtype=torch.bool) for n in names}
    else:
        # Pass 1: histogram of the top 16 bits of the kept weights' keys -> the bin b holding the threshold.
        high = np.zeros(_HIGH_BINS, dtype=np.int64)
        for n in names:
            key, kept = _keys(weights[n], mask.tensors[n])
            high += np.bincount((key >> 16)[kept], minlength=_HIGH_BINS)
        b, above = _bin_of_rank(high, keep)
        # Pass 2: histogram of the low 16 bits of the kept keys inside bin b -> the exact threshold key.
        low = np.zeros(_LOW_BINS, dtype=np.int64)
        for n in names:
            key, kept = _keys(weights[n], mask.tensors[n])
            low += np.bincount(key[((key >> 16) == b) & kept] & 0xFFFF, minlength=_LOW_BINS)
        c, above_in_bin = _bin_of_rank(low, keep - above)
        threshold_key = (b << 16) | c
        threshold = float(np.array([threshold_key], dtype=np.int32).view(np.float32)[0])
        ties = int(low[c])
        need = keep - above - above_in_bin  # ties at the threshold to keep, lowest global index first
        # Pass 3: the new mask, tensor by tensor.
        for n in names:
            key, kept = _keys(weights[n], mask.tensors[n])
            flat = (key > threshold_key) & kept
            if need > 0:
                at = np.flatnonzero((key == threshold_key) & kept)[:need]
                flat[at] = True
                need -= at.size
            out[n] = torch.from_numpy(flat).reshape(mask.tensors[n].shape)
    meta = dict(mask.meta)
    meta.update(sparsity=repr(sparsity), threshold=repr(threshold), ties_at_threshold=str(ties))
    return Mask(out, meta)


def pairwise_counts_blocked(words: np.ndarray, block: int = 8192, threads: int = 1) -> np.ndarray:
    """|A∩B| for every pair of rows of a (masks × words) uint64 matrix; column blocks stay in cache."""
    n_masks, n_words = words.shape
    threads = max(1, min(threads, os.cpu_count() or 1))
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
                inter[i, i:] += pop[:m, :w].sum(axis=1, dtype=np.uint32)  # ≤ 64 × block fits
        return inter

    if threads == 1:
        inter = work(starts)
    else:
        with ThreadPoolExecutor(threads) as pool:
            inter = sum(pool.map(work, [starts[i::threads] for i in range(threads)]))
    upper = np.triu(inter)
    return upper + np.triu(upper, 1).T


def packed_from_files(paths: Mapping[str, str | Path]) -> PackedMasks:
    """:class:`PackedMasks` straight from mask files: their bytes are already ``numpy.packbits`` of each tensor,
    so they are copied into the word matrix as they are, instead of unpacking to bool and packing again."""
    from safetensors.numpy import load_file

    from subnetworks.masks import MaskError, read_metadata

    labels = list(paths)
    if not labels:
        raise ValueError("no masks to compare")
    shapes_json = read_metadata(paths[labels[0]]).get("shapes")
    shapes = json.loads(shapes_json)
    segments, start = {}, 0
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        segments[name] = (start, start + -(-n // 64), n)
        start += -(-n // 64)
    words = np.zeros((len(labels), start), dtype=np.uint64)
    for row, label in enumerate(labels):
        if read_metadata(paths[label]).get("shapes") != shapes_json:
            raise MaskError(f"{paths[label]} covers other tensors than {paths[labels[0]]}")
        arrays = load_file(str(paths[label]))
        as_bytes = words[row].view(np.uint8)
        for name, (first, _, n) in segments.items():
            packed = arrays[name]
            as_bytes[first * 8 : first * 8 + packed.size] = packed
    return PackedMasks(labels, words, segments)


_NUMBA_KERNEL = None


def _numba_kernel():
    """Compile (once) a fused AND + popcount kernel over 4×4 tiles of mask pairs, parallel over column blocks."""
    global _NUMBA_KERNEL
    if _NUMBA_KERNEL is not None:
        return _NUMBA_KERNEL
    from numba import njit, prange, types, uint64
    from numba.extending import intrinsic

    @intrinsic
    def ctpop(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.call(builder.module.declare_intrinsic("llvm.ctpop", [args[0].type]), args)

        return types.uint64(types.uint64), codegen

    @njit(parallel=True, cache=False)
    def kernel(words, block):
        n, w = words.shape
        tiles = (n + 3) // 4
        n_blocks = (w + block - 1) // block
        partial = np.zeros((n_blocks, tiles * 4, tiles * 4), np.int64)
        for b in prange(n_blocks):
            s, e = b * block, min(w, (b + 1) * block)
            for ti in range(tiles):
                i0, i1, i2, i3 = 4 * ti, min(4 * ti + 1, n - 1), min(4 * ti + 2, n - 1), min(4 * ti + 3, n - 1)
                for tj in range(ti, tiles):
                    j0, j1, j2, j3 = 4 * tj, min(4 * tj + 1, n - 1), min(4 * tj + 2, n - 1), min(4 * tj + 3, n - 1)
                    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = uint64(0)
                    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = uint64(0)
                    for k in range(s, e):
                        a0, a1, a2, a3 = words[i0, k], words[i1, k], words[i2, k], words[i3, k]
                        b0, b1, b2, b3 = words[j0, k], words[j1, k], words[j2, k], words[j3, k]
                        c00 += ctpop(a0 & b0); c01 += ctpop(a0 & b1); c02 += ctpop(a0 & b2); c03 += ctpop(a0 & b3)  # noqa: E702
                        c10 += ctpop(a1 & b0); c11 += ctpop(a1 & b1); c12 += ctpop(a1 & b2); c13 += ctpop(a1 & b3)  # noqa: E702
                        c20 += ctpop(a2 & b0); c21 += ctpop(a2 & b1); c22 += ctpop(a2 & b2); c23 += ctpop(a2 & b3)  # noqa: E702
                        c30 += ctpop(a3 & b0); c31 += ctpop(a3 & b1); c32 += ctpop(a3 & b2); c33 += ctpop(a3 & b3)  # noqa: E702
                    t = partial[b]
                    r, q = 4 * ti, 4 * tj
                    t[r, q], t[r, q + 1], t[r, q + 2], t[r, q + 3] = c00, c01, c02, c03
                    t[r + 1, q], t[r + 1, q + 1], t[r + 1, q + 2], t[r + 1, q + 3] = c10, c11, c12, c13
                    t[r + 2, q], t[r + 2, q + 1], t[r + 2, q + 2], t[r + 2, q + 3] = c20, c21, c22, c23
                    t[r + 3, q], t[r + 3, q + 1], t[r + 3, q + 2], t[r + 3, q + 3] = c30, c31, c32, c33
        total = partial.sum(axis=0)
        out = np.empty((n, n), np.int64)
        for i in range(n):
            for j in range(n):
                out[i, j] = total[i, j] if i // 4 <= j // 4 else total[j, i]
        return out

    _NUMBA_KERNEL = kernel
    return kernel


def pairwise_counts_numba(words: np.ndarray, block: int = 1024) -> np.ndarray:
    """The same counts as :func:`pairwise_counts_blocked` with one fused, compiled pass (needs numba, which is
    not a dependency of the project: ImportError without it). Each loaded word serves four pairs."""
    return _numba_kernel()(np.ascontiguousarray(words), block)


def numba_version() -> str | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.__version__
