"""Overlap of sub-network masks, computed on packed bits, next to what random masks of the same density give.

Only |A∩B| needs a popcount: |A∪B| = |A| + |B| − |A∩B|, and the positions where two masks agree are
n − |A| − |B| + 2|A∩B|. Each tensor is packed into its own run of uint64 words, so per-layer and per-module
overlaps are sums over word ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable, Mapping, Sequence

import numpy as np

from .masks import Mask, layer_of, module_type


@dataclass
class PackedMasks:
    """Several masks over the same tensors, as a (masks × words) uint64 matrix plus per-tensor word ranges."""

    labels: list[str]
    words: np.ndarray  # (n_masks, n_words) uint64
    segments: dict[str, tuple[int, int, int]]  # tensor name -> (first word, end word, number of weights)

    @classmethod
    def pack(cls, masks: Mapping[str, Mask]) -> "PackedMasks":
        labels = list(masks)
        if not labels:
            raise ValueError("no masks to compare")
        first = masks[labels[0]]
        for label in labels[1:]:
            first._check_compatible(masks[label])
        rows, segments, start = [[] for _ in labels], {}, 0
        for name, tensor in first.tensors.items():
            n = tensor.numel()
            n_words = -(-n // 64)
            segments[name] = (start, start + n_words, n)
            start += n_words
            for row, label in zip(rows, labels):
                bits = np.packbits(masks[label].tensors[name].reshape(-1).numpy())
                padded = np.zeros(n_words * 8, dtype=np.uint8)
                padded[: bits.size] = bits
                row.append(padded.view(np.uint64))
        return cls(labels, np.stack([np.concatenate(r) for r in rows]), segments)

    def groups(self, by: str) -> dict[str, list[str]]:
        key: Callable[[str], str] = {"all": lambda n: "all", "layer": layer_of, "module": module_type, "tensor": lambda n: n}[by]
        out: dict[str, list[str]] = {}
        for name in self.segments:
            out.setdefault(key(name), []).append(name)
        return out

    def _columns(self, names: Sequence[str]) -> np.ndarray:
        return np.concatenate([np.arange(*self.segments[n][:2]) for n in names])

    def counts(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
        """Kept counts per mask, pairwise intersection counts, and the number of positions, over ``names``."""
        sub = self.words[:, self._columns(names)] if len(names) < len(self.segments) else self.words
        kept = np.bitwise_count(sub).sum(axis=1, dtype=np.int64)
        inter = np.zeros((len(self.labels), len(self.labels)), dtype=np.int64)
        for i in range(len(self.labels)):
            inter[i, i:] = np.bitwise_count(sub[i] & sub[i:]).sum(axis=1, dtype=np.int64)
            inter[i:, i] = inter[i, i:]
        n = sum(self.segments[name][2] for name in names)
        return kept, inter, n

    def all_counts(self, names: Sequence[str]) -> tuple[int, int, int]:
        """|AND of all masks|, |OR of all masks| and the number of positions over ``names``."""
        sub = self.words[:, self._columns(names)] if len(names) < len(self.segments) else self.words
        both = np.bitwise_and.reduce(sub, axis=0)
        either = np.bitwise_or.reduce(sub, axis=0)
        n = sum(self.segments[name][2] for name in names)
        return int(np.bitwise_count(both).sum()), int(np.bitwise_count(either).sum()), n


def jaccard_from_counts(kept: np.ndarray, inter: np.ndarray) -> np.ndarray:
    union = kept[:, None] + kept[None, :] - inter
    return np.divide(inter, union, out=np.ones(inter.shape), where=union > 0)


def agreement_from_counts(kept: np.ndarray, inter: np.ndarray, n: int) -> np.ndarray:
    return 1.0 - (kept[:, None] + kept[None, :] - 2 * inter) / n


def expected_random_pair(d1: float, d2: float) -> tuple[float, float]:
    """(Jaccard, agreement) expected of two independent uniformly random masks of densities d1 and d2."""
    both = d1 * d2
    union = d1 + d2 - both
    return (both / union if union else 1.0), both + (1 - d1) * (1 - d2)


def expected_random_all(densities: Sequence[float]) -> tuple[float, float]:
    """(Jaccard, agreement) expected of several independent random masks: |AND|/|OR| and share all-equal."""
    all_kept = float(np.prod(densities))
    none_kept = float(np.prod([1 - d for d in densities]))
    any_kept = 1 - none_kept
    return (all_kept / any_kept if any_kept else 1.0), all_kept + none_kept


def pairwise(packed: PackedMasks, by: str = "all") -> list[dict]:
    """One row per (group, mask a, mask b), a ≠ b: Jaccard, agreement and their random expectations."""
    rows = []
    for group, names in packed.groups(by).items():
        kept, inter, n = packed.counts(names)
        jac, agr = jaccard_from_counts(kept, inter), agreement_from_counts(kept, inter, n)
        for i, j in combinations(range(len(packed.labels)), 2):
            exp_j, exp_a = expected_random_pair(kept[i] / n, kept[j] / n)
            rows.append(
                {
                    "group": group,
                    "a": packed.labels[i],
                    "b": packed.labels[j],
                    "jaccard": float(jac[i, j]),
                    "agreement": float(agr[i, j]),
                    "random_jaccard": exp_j,
                    "random_agreement": exp_a,
                }
            )
    return rows


def shared_by_all(packed: PackedMasks, by: str = "all") -> list[dict]:
    """One row per group: Jaccard and agreement of all masks at once, and the random expectation."""
    rows = []
    for group, names in packed.groups(by).items():
        both, either, n = packed.all_counts(names)
        kept, _, _ = packed.counts(names)
        exp_j, exp_a = expected_random_all([k / n for k in kept])
        rows.append(
            {
                "group": group,
                "jaccard": both / either if either else 1.0,
                "agreement": (both + n - either) / n,
                "kept_by_all": both / n,
                "random_jaccard": exp_j,
                "random_agreement": exp_a,
            }
        )
    return rows


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    rx = _average_ranks(np.asarray(x, dtype=float))
    ry = _average_ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for v in np.unique(values):
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks
