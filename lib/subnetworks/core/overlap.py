"""Overlap of sub-network masks, computed on packed bits, next to what the random controls give (:mod:`.nulls`).

Only |A∩B| needs a popcount: |A∪B| = |A| + |B| − |A∩B|, and the positions where two masks agree are
n − |A| − |B| + 2|A∩B|. Each tensor is packed into its own run of uint64 words, so per-layer and per-module
overlaps are sums over word ranges.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from . import nulls
from .maskfile import read_packed
from .masks import Grouping, Mask, MaskError


@dataclass
class PackedMasks:
    """Several masks over the same tensors, as a (masks × words) uint64 matrix plus per-tensor word ranges."""

    labels: list[str]
    words: np.ndarray  # (n_masks, n_words) uint64
    segments: dict[str, tuple[int, int, int]]  # tensor name -> (first word, end word, number of weights)
    _per_tensor: dict[str, np.ndarray] | None = field(default=None, repr=False)  # pairwise |A∩B| per tensor

    @classmethod
    def pack(cls, masks: Mapping[str, Mask]) -> PackedMasks:
        labels = list(masks)
        if not labels:
            raise ValueError("no masks to compare")
        first = masks[labels[0]]
        for label in labels[1:]:
            first._check_compatible(masks[label])
        packed = {
            label: {n: np.packbits(t.reshape(-1).numpy()) for n, t in masks[label].tensors.items()} for label in labels
        }
        return cls._from_bytes(labels, first.shapes, packed)

    @classmethod
    def from_files(cls, paths: Mapping[str, str | Path]) -> PackedMasks:
        """Straight from mask files: their bytes already are ``numpy.packbits`` of each tensor, so they are copied
        into the word matrix as they are, with no unpacking to bool and packing again (several times faster)."""
        labels = list(paths)
        if not labels:
            raise ValueError("no masks to compare")
        packed, shapes = {}, None
        for label in labels:
            _, packed[label], these = read_packed(paths[label])
            if shapes is None:
                shapes, first = these, paths[label]
            elif these != shapes:
                raise MaskError(
                    f"{paths[label]} covers other tensors or shapes than {first}: masks of different models"
                )
        return cls._from_bytes(labels, shapes, packed)

    @classmethod
    def _from_bytes(
        cls, labels: list[str], shapes: Mapping[str, tuple[int, ...]], packed: Mapping[str, Mapping[str, np.ndarray]]
    ) -> PackedMasks:
        """Each tensor's packed bytes into its own run of whole words (zero-padded), one row per mask."""
        segments, start = {}, 0
        for name, shape in shapes.items():
            n = int(np.prod(shape))
            segments[name] = (start, start + -(-n // 64), n)
            start += -(-n // 64)
        words = np.zeros((len(labels), start), dtype=np.uint64)
        for row, label in enumerate(labels):
            as_bytes = words[row].view(np.uint8)
            for name, (first, _, _) in segments.items():
                data = packed[label][name]
                as_bytes[first * 8 : first * 8 + data.size] = data
        return cls(labels, words, segments)

    def groups(self, key: Grouping | None = None) -> dict[str, list[str]]:
        """Tensor names per group, groups in order of first appearance; no ``key``: one group ``all``."""
        out: dict[str, list[str]] = {}
        for name in self.segments:
            out.setdefault(key(name) if key else "all", []).append(name)
        return out

    def _columns(self, names: Sequence[str]) -> np.ndarray:
        return np.concatenate([np.arange(*self.segments[n][:2]) for n in names])

    def counts(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
        """Kept counts per mask, pairwise intersection counts, and the number of positions, over ``names``.

        Intersections are counted once per tensor and summed per group, so overall, per-layer and per-module
        tables cost one pass over the bits together."""
        if self._per_tensor is None:
            self._per_tensor = {n: intersections(self.words[:, a:b]) for n, (a, b, _) in self.segments.items()}
        inter = sum(self._per_tensor[name] for name in names)
        n = sum(self.segments[name][2] for name in names)
        return np.diagonal(inter).copy(), inter, n

    @property
    def size(self) -> int:
        """Positions (weights) each mask covers."""
        return sum(n for _, _, n in self.segments.values())

    def tensor_counts(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Kept counts (masks × tensors) and sizes (tensors) of the tensors ``names``."""
        kept = np.stack(
            [
                np.bitwise_count(self.words[:, a:b]).sum(axis=1, dtype=np.int64)
                for a, b, _ in (self.segments[n] for n in names)
            ],
            axis=1,
        )
        return kept, np.array([self.segments[n][2] for n in names], dtype=np.int64)

    def all_counts(self, names: Sequence[str]) -> tuple[int, int, int]:
        """|AND of all masks|, |OR of all masks| and the number of positions over ``names``."""
        sub = self.words[:, self._columns(names)] if len(names) < len(self.segments) else self.words
        both = np.bitwise_and.reduce(sub, axis=0)
        either = np.bitwise_or.reduce(sub, axis=0)
        n = sum(self.segments[name][2] for name in names)
        return int(np.bitwise_count(both).sum()), int(np.bitwise_count(either).sum()), n


def intersections(words: np.ndarray, block: int = 8192, threads: int | None = None) -> np.ndarray:
    """|A∩B| for every pair of rows of a (masks × words) uint64 matrix (the diagonal: each mask's kept count).

    Column blocks keep each AND + popcount in cache instead of streaming the whole matrix through memory once per
    mask; blocks are shared between threads (numpy releases the GIL), one per core by default.
    """
    n_masks, n_words = words.shape
    threads = max(1, min(threads or len(os.sched_getaffinity(0)), -(-n_words // block)))
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
                inter[i, i:] += pop[:m, :w].sum(axis=1, dtype=np.uint32)  # ≤ 64 × block: no overflow
        return inter

    if threads == 1:
        upper = work(starts)
    else:
        with ThreadPoolExecutor(threads) as pool:
            upper = sum(pool.map(work, [starts[i::threads] for i in range(threads)]))
    return upper + np.triu(upper, 1).T


def jaccard_from_counts(kept: np.ndarray, inter: np.ndarray) -> np.ndarray:
    union = kept[:, None] + kept[None, :] - inter
    return np.divide(inter, union, out=np.ones(inter.shape), where=union > 0)


def agreement_from_counts(kept: np.ndarray, inter: np.ndarray, n: int) -> np.ndarray:
    return 1.0 - (kept[:, None] + kept[None, :] - 2 * inter) / n


def _expected(packed: PackedMasks, names: Sequence[str], rows: list[int]) -> dict[str, float]:
    """The nulls of the masks ``rows`` over the tensors ``names``: drawn per tensor with their counts there
    (layer-wise random), and drawn over all prunable weights with their overall densities (global random)."""
    kept, sizes = packed.tensor_counts(names)
    densities = packed.tensor_counts(list(packed.segments))[0].sum(axis=1) / packed.size
    layer_j, layer_a = nulls.layerwise(kept[rows], sizes)
    global_j, global_a = nulls.global_(densities[rows], int(sizes.sum()))
    return {
        "expected_layerwise_jaccard": layer_j,
        "expected_layerwise_agreement": layer_a,
        "expected_global_jaccard": global_j,
        "expected_global_agreement": global_a,
    }


def pairwise(packed: PackedMasks, key: Grouping | None = None) -> list[dict]:
    """One row per (group, mask a, mask b), a ≠ b: Jaccard, agreement and the nulls of both random controls."""
    rows = []
    for group, names in packed.groups(key).items():
        kept, inter, n = packed.counts(names)
        jac, agr = jaccard_from_counts(kept, inter), agreement_from_counts(kept, inter, n)
        for i, j in combinations(range(len(packed.labels)), 2):
            rows.append(
                {
                    "group": group,
                    "a": packed.labels[i],
                    "b": packed.labels[j],
                    "jaccard": float(jac[i, j]),
                    "agreement": float(agr[i, j]),
                    **_expected(packed, names, [i, j]),
                }
            )
    return rows


def shared_by_all(packed: PackedMasks, key: Grouping | None = None) -> list[dict]:
    """One row per group: Jaccard (|AND| / |OR|) and agreement of all masks at once, and both nulls."""
    rows = []
    for group, names in packed.groups(key).items():
        both, either, n = packed.all_counts(names)
        rows.append(
            {
                "group": group,
                "jaccard": both / either if either else 1.0,
                "agreement": (both + n - either) / n,
                "kept_by_all": both / n,
                **_expected(packed, names, list(range(len(packed.labels)))),
            }
        )
    return rows
