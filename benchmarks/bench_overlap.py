"""All pairwise overlaps (Jaccard and agreement) among 54 masks (9 languages × 6 levels, say) of a model shape:
packed bits (:class:`subnetworks.overlap.PackedMasks` + :func:`subnetworks.overlap.pairwise`) vs bool tensors.

The bool-tensor way is timed on a few pairs and extrapolated to all pairs (it would take most of an hour
otherwise). It is given its best chance: one ``torch.count_nonzero(a & b)`` per tensor, union and agreement
from kept counts as the packed way does; ``(a & b).sum()`` (how ``Mask.kept`` counts) is timed on one pair too.

Also timed, for the lib changes proposed in the results: blocked pairwise counts, and building the packed
matrix straight from mask files instead of ``load_mask`` (unpack to bool) followed by ``PackedMasks.pack``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from subnetworks.masks import Mask, load_mask, save_mask
from subnetworks.overlap import PackedMasks, jaccard_from_counts, pairwise

from .common import MODEL_LABELS, Row, median, prunable_shapes, seconds, timed
from .prototypes import numba_version, packed_from_files, pairwise_counts_blocked, pairwise_counts_numba

N_MASKS = 54


def random_masks(shapes: dict[str, tuple[int, ...]], n: int, seed: int = 0) -> dict[str, Mask]:
    """``n`` random masks over ``shapes``, densities 0.5, 0.25 and 0.75 in turn (each mask's tensors are views
    of one buffer, made from random bytes: quick to build)."""
    rng = np.random.default_rng(seed)
    sizes = [int(np.prod(s)) for s in shapes.values()]
    total = sum(sizes)
    masks = {}
    for i in range(n):
        raw = rng.integers(0, 256, -(-total // 8), dtype=np.uint8)
        if i % 3 == 1:
            raw &= rng.integers(0, 256, raw.size, dtype=np.uint8)
        elif i % 3 == 2:
            raw |= rng.integers(0, 256, raw.size, dtype=np.uint8)
        flat = torch.from_numpy(np.unpackbits(raw, count=total).view(bool))
        tensors, offset = {}, 0
        for (name, shape), size in zip(shapes.items(), sizes):
            tensors[name] = flat[offset : offset + size].view(shape)
            offset += size
        masks[f"m{i:02d}"] = Mask(tensors)
    return masks


def kept_count(mask: Mask) -> int:
    return sum(int(torch.count_nonzero(t)) for t in mask.tensors.values())


def bool_pair(a: Mask, b: Mask, kept_a: int, kept_b: int, n: int) -> tuple[float, float]:
    """Jaccard and agreement of two bool-tensor masks, the best plain torch way: |a∩b| by count_nonzero."""
    inter = sum(int(torch.count_nonzero(x & b.tensors[name])) for name, x in a.tensors.items())
    return inter / (kept_a + kept_b - inter), 1 - (kept_a + kept_b - 2 * inter) / n


def bool_pair_sum(a: Mask, b: Mask, kept_a: int, kept_b: int, n: int) -> tuple[float, float]:
    """The same with ``(a & b).sum()``, as Mask.kept counts: torch sums bools through int64, ~20× slower."""
    inter = sum(int((x & b.tensors[name]).sum()) for name, x in a.tensors.items())
    return inter / (kept_a + kept_b - inter), 1 - (kept_a + kept_b - 2 * inter) / n


def run(models: list[str], quick: bool, repeats: int, warmup: int, bool_pairs: int, log=print) -> list[Row]:
    rows = []
    for key in models:
        shapes = prunable_shapes(key, quick)
        masks = random_masks(shapes, N_MASKS)
        labels = list(masks)
        n_pairs = N_MASKS * (N_MASKS - 1) // 2
        n = masks[labels[0]].numel

        # the current way: pack, then pairwise (Jaccard, agreement and their random expectations for all pairs)
        t_pack, t_pairwise = [], []
        for r in range(warmup + repeats):
            start = time.perf_counter()
            packed = PackedMasks.pack(masks)
            middle = time.perf_counter()
            overlap_rows = pairwise(packed)
            end = time.perf_counter()
            if r >= warmup:
                t_pack.append(middle - start)
                t_pairwise.append(end - middle)
        t_total = [a + b for a, b in zip(t_pack, t_pairwise)]
        # proposed: blocked counts (1 and 2 threads); checked: they give pairwise's Jaccard values exactly
        kept_words = np.bitwise_count(packed.words).sum(axis=1, dtype=np.int64)
        t_blocked, blocked = {}, None
        for threads in (1, 2):
            t_blocked[threads] = timed(lambda: pairwise_counts_blocked(packed.words, threads=threads), repeats, warmup)
        blocked = pairwise_counts_blocked(packed.words)
        jac = jaccard_from_counts(kept_words, blocked)
        index = {lab: i for i, lab in enumerate(packed.labels)}
        assert all(jac[index[r["a"]], index[r["b"]]] == r["jaccard"] for r in overlap_rows), "blocked counts differ"
        # proposed, if numba is importable (not a project dependency): one fused compiled pass; warm-up = compile
        t_fused = None
        if numba_version():
            t_fused = timed(lambda: pairwise_counts_numba(packed.words), repeats, warmup)
            assert np.array_equal(pairwise_counts_numba(packed.words), blocked), "fused counts differ"
        # from files: load_mask ×54 (then pack + pairwise as above) vs packed_from_files (then blocked counts).
        # Six distinct files, copied to 54 (saving is not what is timed here, and content does not change timing).
        with tempfile.TemporaryDirectory() as tmp:
            distinct = [save_mask(masks[lab], Path(tmp) / f"{lab}.safetensors", model=key) for lab in labels[:6]]
            paths = {}
            for i, lab in enumerate(labels):
                paths[lab] = Path(tmp) / f"{lab}.safetensors"
                if i >= len(distinct):
                    shutil.copyfile(distinct[i % len(distinct)], paths[lab])
            start = time.perf_counter()
            loaded = {lab: load_mask(p) for lab, p in paths.items()}
            t_load = time.perf_counter() - start
            del loaded
            t_from_files = timed(lambda: packed_from_files(paths), 1, 1)[0]
            direct = packed_from_files({lab: paths[lab] for lab in labels[:3]})
            reference = PackedMasks.pack({lab: load_mask(paths[lab]) for lab in labels[:3]})
            assert np.array_equal(direct.words, reference.words) and direct.segments == reference.segments

        # the bool-tensor way on a few pairs; the first pair is a warm-up
        kept = {lab: kept_count(masks[lab]) for lab in labels}
        pairs = [(labels[i], labels[(i * 7 + 3) % N_MASKS]) for i in range(bool_pairs + 1)]
        strong = [timed(lambda p=p: bool_pair(masks[p[0]], masks[p[1]], kept[p[0]], kept[p[1]], n), 1, 0)[0] for p in pairs][1:]
        with_sum = timed(lambda: bool_pair_sum(masks[pairs[1][0]], masks[pairs[1][1]], kept[pairs[1][0]], kept[pairs[1][1]], n), 1, 0)
        a, b = sorted(pairs[1])
        row = next(r for r in overlap_rows if (r["a"], r["b"]) == (a, b))
        jac_ab, agr_ab = bool_pair(masks[a], masks[b], kept[a], kept[b], n)
        assert abs(row["jaccard"] - jac_ab) < 1e-12 and abs(row["agreement"] - agr_ab) < 1e-12, "packed and bool ways disagree"

        ours = median(t_total)
        per_pair = median(strong)
        bool_total = per_pair * n_pairs
        best_blocked = min(median(v) for v in t_blocked.values())
        log(f"  overlap [{key}] {N_MASKS} masks × {n / 1e6:.1f}M: pack {seconds(median(t_pack))} + pairwise "
            f"{seconds(median(t_pairwise))}; bool {seconds(per_pair)}/pair → {seconds(bool_total)}; blocked counts "
            + ", ".join(f"{k} thread(s) {seconds(median(v))}" for k, v in t_blocked.items())
            + f"; load_mask×{N_MASKS} {seconds(t_load)}, packed_from_files {seconds(t_from_files)}")
        speedup = bool_total / ours
        rows.append(Row(
            "overlap_speed", f"all {n_pairs} pairwise overlaps of {N_MASKS} masks: packed bits / bool tensors (torch)", key,
            seconds(ours), f"{seconds(bool_total)} (extrapolated)", ours / bool_total, "≥ 100× faster (ratio ≤ 0.01)",
            speedup >= 100,
            note=(f"{MODEL_LABELS[key]}: {speedup:,.0f}× faster. Packed = PackedMasks.pack + pairwise from in-memory masks. "
                  f"Bool tensors timed on {bool_pairs} pair(s) and extrapolated to {n_pairs}: {seconds(per_pair)}/pair "
                  f"(torch.count_nonzero(a & b) per tensor; ∪ and agreement from kept counts, as the packed way). "
                  f"With (a & b).sum() instead, as Mask.kept counts, {seconds(median(with_sum))}/pair: "
                  f"{median(with_sum) * n_pairs / ours:,.0f}× slower than packed"),
            detail={"pack_s": t_pack, "pairwise_s": t_pairwise, "bool_pair_s": strong, "bool_pair_sum_s": with_sum,
                    "n_pairs": n_pairs, "weights_per_mask": n},
        ))
        rows.append(Row(
            "overlap_total", f"all {n_pairs} pairwise overlaps of {N_MASKS} masks: total time (pack + pairwise) / 2 s", key,
            seconds(ours), "2 s", ours / 2.0, "≤ 2 s", ours <= 2.0,
            note=(f"pack {seconds(median(t_pack))} + pairwise {seconds(median(t_pairwise))}. Proposed: blocked counts "
                  + ", ".join(f"{k} thread(s) {seconds(median(v))}" for k, v in t_blocked.items())
                  + f" instead of pairwise's counts → total {seconds(median(t_pack) + best_blocked)}. From files: "
                  f"load_mask×{N_MASKS} {seconds(t_load)} + pack + pairwise = {seconds(t_load + ours)} now; proposed "
                  f"packed_from_files {seconds(t_from_files)} + blocked counts = {seconds(t_from_files + best_blocked)}"
                  + (f"; fused numba counts {seconds(median(t_fused))} → packed_from_files + fused = "
                     f"{seconds(t_from_files + median(t_fused))}, pack + fused = {seconds(median(t_pack) + median(t_fused))}"
                     if t_fused else "; fused numba counts: not measured (numba not installed)")),
            detail={"blocked_counts_s": {str(k): v for k, v in t_blocked.items()}, "load_mask_all_s": t_load,
                    "packed_from_files_s": t_from_files, "fused_numba_counts_s": t_fused, "numba": numba_version()},
        ))
        del masks, packed, overlap_rows
    return rows
