"""All pairwise overlaps (Jaccard and agreement) among 54 masks (9 languages × 6 levels, say) of a model shape:
packed bits (:class:`subnetworks.overlap.PackedMasks` + :func:`subnetworks.overlap.pairwise`) vs bool tensors.

The bool-tensor way is timed on a few pairs and extrapolated to all pairs (it would take minutes to hours
otherwise); it is given its best chance: one ``(a & b).sum()`` per tensor, union and agreement from the kept
counts as the packed way does. The naive way (∩, ∪ and = each reduced) is timed too and kept in the detail.
"""

from __future__ import annotations

import numpy as np
import torch

from subnetworks.masks import Mask
from subnetworks.overlap import PackedMasks, pairwise

from .common import MODEL_LABELS, Row, interleaved, median, prunable_shapes, seconds, timed
from .prototypes import pairwise_counts_blocked

N_MASKS = 54


def random_masks(shapes: dict[str, tuple[int, ...]], n: int, seed: int = 0) -> dict[str, Mask]:
    """``n`` masks over ``shapes`` with densities between 0.1 and 0.9 (random bits, built fast from random bytes)."""
    rng = np.random.default_rng(seed)
    masks = {}
    for i in range(n):
        tensors = {}
        for name, shape in shapes.items():
            count = int(np.prod(shape))
            bits = np.unpackbits(rng.integers(0, 256, -(-count // 8), dtype=np.uint8), count=count).astype(bool)
            if i % 3 == 1:  # density 0.25
                bits &= np.unpackbits(rng.integers(0, 256, -(-count // 8), dtype=np.uint8), count=count).astype(bool)
            elif i % 3 == 2:  # density 0.75
                bits |= np.unpackbits(rng.integers(0, 256, -(-count // 8), dtype=np.uint8), count=count).astype(bool)
            tensors[name] = torch.from_numpy(bits.reshape(shape))
        masks[f"m{i:02d}"] = Mask(tensors)
    return masks


def bool_pair_strong(a: Mask, b: Mask, kept_a: int, kept_b: int, n: int) -> tuple[float, float]:
    inter = sum(int((x & b.tensors[name]).sum()) for name, x in a.tensors.items())
    return inter / (kept_a + kept_b - inter), 1 - (kept_a + kept_b - 2 * inter) / n


def bool_pair_naive(a: Mask, b: Mask) -> tuple[float, float]:
    inter = union = agree = n = 0
    for name, x in a.tensors.items():
        y = b.tensors[name]
        inter += int((x & y).sum())
        union += int((x | y).sum())
        agree += int((x == y).sum())
        n += x.numel()
    return inter / union, agree / n


def run(models: list[str], quick: bool, repeats: int, warmup: int, bool_pairs: int, log=print) -> list[Row]:
    rows = []
    for key in models:
        shapes = prunable_shapes(key, quick)
        masks = random_masks(shapes, N_MASKS)
        labels = list(masks)
        n_pairs = N_MASKS * (N_MASKS - 1) // 2
        n = masks[labels[0]].numel

        holder: dict = {}

        def packed_all() -> None:
            holder["packed"] = PackedMasks.pack(masks)
            holder["rows"] = pairwise(holder["packed"])

        def pack_only() -> None:
            PackedMasks.pack(masks)

        t = interleaved({"pack+pairwise": packed_all, "pack": pack_only}, repeats, warmup)
        packed = holder["packed"]
        t_pairwise = [a - b for a, b in zip(t["pack+pairwise"], t["pack"])]
        t_blocked = timed(lambda: pairwise_counts_blocked(packed.words), repeats, warmup)
        kept, inter, _ = packed.counts(list(packed.segments))
        assert np.array_equal(pairwise_counts_blocked(packed.words), inter), "blocked counts differ from PackedMasks.counts"

        kept_counts = {lab: masks[lab].kept for lab in labels}
        pairs = [(labels[i], labels[(i * 7 + 3) % N_MASKS]) for i in range(bool_pairs)]
        strong = [timed(lambda p=p: bool_pair_strong(masks[p[0]], masks[p[1]], kept_counts[p[0]], kept_counts[p[1]], n), 1, 1)[0] for p in pairs]
        naive = [timed(lambda p=p: bool_pair_naive(masks[p[0]], masks[p[1]]), 1, 1)[0] for p in pairs]
        # both ways agree on the figures
        first = holder["rows"][[(r["a"], r["b"]) for r in holder["rows"]].index(tuple(sorted(pairs[0])))]
        jac, agr = bool_pair_strong(masks[pairs[0][0]], masks[pairs[0][1]], kept_counts[pairs[0][0]], kept_counts[pairs[0][1]], n)
        assert abs(first["jaccard"] - jac) < 1e-12 and abs(first["agreement"] - agr) < 1e-12

        ours = median(t["pack+pairwise"])
        bool_total = median(strong) * n_pairs
        log(f"  overlap [{key}] {N_MASKS} masks × {n / 1e6:.1f}M: pack+pairwise {seconds(ours)} "
            f"(pack {seconds(median(t['pack']))}), bool est. {seconds(bool_total)}, blocked counts {seconds(median(t_blocked))}")
        speedup = bool_total / ours
        rows.append(Row(
            "overlap_speed", f"all {n_pairs} pairwise overlaps of {N_MASKS} masks: packed bits / bool tensors (torch)", key,
            seconds(ours), f"{seconds(bool_total)} (extrapolated)", ours / bool_total, "≥ 100× faster (ratio ≤ 0.01)",
            speedup >= 100,
            note=(f"{speedup:,.0f}× faster; bool tensors timed on {bool_pairs} pairs ({seconds(median(strong))}/pair, only a&b "
                  f"reduced; naive ∩,∪,= {seconds(median(naive))}/pair) × {n_pairs} pairs"),
            detail={"pack_pairwise_s": t["pack+pairwise"], "pack_s": t["pack"], "bool_pair_s": strong, "naive_pair_s": naive,
                    "n_pairs": n_pairs, "weights_per_mask": n},
        ))
        rows.append(Row(
            "overlap_total", f"all {n_pairs} pairwise overlaps of {N_MASKS} masks: total seconds (pack + pairwise)", key,
            seconds(ours), "2 s budget", ours / 2.0, "≤ 2 s", ours <= 2.0,
            note=(f"pack {seconds(median(t['pack']))} + pairwise {seconds(median(t_pairwise))}; proposed blocked, "
                  f"threaded counts: {seconds(median(t_blocked))} instead of the pairwise part "
                  f"(total {seconds(median(t['pack']) + median(t_blocked))})"),
            detail={"pairwise_s": t_pairwise, "blocked_counts_s": t_blocked},
        ))
        del masks, holder, packed
    return rows
