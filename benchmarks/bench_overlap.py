"""All pairwise overlaps (Jaccard and agreement) among 54 masks (9 languages × 6 levels, say) of a model shape:
packed bits the way the pipeline's overlap stage does it (mask files written by
:func:`subnetworks.core.maskio.save_mask` → :meth:`subnetworks.core.overlap.PackedMasks.from_files` →
:func:`subnetworks.core.overlap.pairwise`) vs bool tensors.

The bool-tensor way is timed on a few pairs and extrapolated to all pairs (it would take most of an hour
otherwise). It is given its best chance: one ``torch.count_nonzero(a & b)`` per tensor, union and agreement
from kept counts as the packed way does; starting from the same files, it first needs ``load_mask`` for each.

Also timed: the packed way from masks already in memory (``PackedMasks.pack``), the per-layer and per-module
tables the stage computes next (``PackedMasks`` counts intersections once, so they cost little more), and, where
numba is installed, the optional fused kernel of :mod:`benchmarks.prototypes` next to the lib's ``intersections``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from subnetworks.core.maskio import load_mask, save_mask
from subnetworks.core.masks import Mask
from subnetworks.core.overlap import PackedMasks, intersections, pairwise
from subnetworks.nn.families import FAMILIES

from .common import MODEL_LABELS, Row, median, prunable_shapes, seconds, timed
from .prototypes import numba_version, pairwise_counts_numba

N_MASKS = 54
N_DISTINCT_FILES = 6  # files saved; the rest are copies (content does not change timing, saving is not timed)
BERT = FAMILIES["bert"]
GROUPINGS = {"all": None, "layer": BERT.layer_of, "module": BERT.module_type}  # the overlap stage's, in order


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


def mask_files(masks: dict[str, Mask], folder: Path, model: str) -> dict[str, Path]:
    """One mask file per label, as the pruning stage writes them: the i-th holds mask ``i % N_DISTINCT_FILES``."""
    labels = list(masks)
    distinct = [save_mask(masks[lab], folder / f"{lab}.safetensors", model=model) for lab in labels[:N_DISTINCT_FILES]]
    paths = {lab: folder / f"{lab}.safetensors" for lab in labels}
    for i, lab in enumerate(labels[N_DISTINCT_FILES:], N_DISTINCT_FILES):
        shutil.copyfile(distinct[i % N_DISTINCT_FILES], paths[lab])
    return paths


def packed_phases(
    build: Callable[[], PackedMasks], groupings: tuple[str, ...], repeats: int, warmup: int
) -> tuple[dict[str, list[float]], PackedMasks]:
    """Seconds of building the packed matrix, then of ``pairwise`` for each grouping in turn, per round; and the
    last round's ``PackedMasks``. Every round builds a fresh one: it caches its intersection counts, so the first
    grouping pays for the counting and the others reuse it, as in the overlap stage."""
    phases: dict[str, list[float]] = {name: [] for name in ("build", *groupings)}
    for r in range(warmup + repeats):
        start = time.perf_counter()
        packed = build()
        elapsed = {"build": time.perf_counter() - start}
        for by in groupings:
            start = time.perf_counter()
            pairwise(packed, GROUPINGS[by])
            elapsed[by] = time.perf_counter() - start
        if r >= warmup:
            for name, value in elapsed.items():
                phases[name].append(value)
    return phases, packed


def bool_pair(a: Mask, b: Mask, kept_a: int, kept_b: int, n: int) -> tuple[float, float]:
    """Jaccard and agreement of two bool-tensor masks, the best plain torch way: |a∩b| by count_nonzero."""
    inter = sum(int(torch.count_nonzero(x & b.tensors[name])) for name, x in a.tensors.items())
    return inter / (kept_a + kept_b - inter), 1 - (kept_a + kept_b - 2 * inter) / n


def fused_counts(words: np.ndarray, repeats: int, warmup: int) -> dict[str, list[float]] | None:
    """Seconds of the lib's ``intersections`` over all tensors at once and, for information, of the optional fused
    numba kernel, after checking (and so compiling the kernel) that both give the same counts; None without numba."""
    if not numba_version():
        return None
    assert np.array_equal(pairwise_counts_numba(words), intersections(words)), (
        "fused numba counts differ from the lib's"
    )
    return {
        "intersections": timed(lambda: intersections(words), repeats, warmup),
        "fused numba": timed(lambda: pairwise_counts_numba(words), repeats, warmup),
    }


def run(models: list[str], quick: bool, repeats: int, warmup: int, bool_pairs: int, log=print) -> list[Row]:
    rows = []
    for key in models:
        shapes = prunable_shapes(key, quick)
        masks = random_masks(shapes, N_MASKS)
        labels = list(masks)
        n = masks[labels[0]].numel

        # in memory: PackedMasks.pack + pairwise over all prunable tensors
        mem, packed = packed_phases(lambda masks=masks: PackedMasks.pack(masks), ("all",), repeats, warmup)
        # ours, the overlap stage's way: from the mask files, then its three groupings on one PackedMasks
        with tempfile.TemporaryDirectory() as tmp:
            paths = mask_files(masks, Path(tmp), key)
            files, from_files = packed_phases(
                lambda paths=paths: PackedMasks.from_files(paths), GROUPINGS, repeats, warmup
            )
            start = time.perf_counter()
            loaded = {lab: load_mask(p) for lab, p in paths.items()}
            t_load = time.perf_counter() - start  # the bool-tensor way's first step from the same files
            del loaded
        file_of = [i % N_DISTINCT_FILES for i in range(N_MASKS)]
        assert np.array_equal(from_files.words, packed.words[file_of]) and from_files.segments == packed.segments, (
            "PackedMasks.from_files differs from PackedMasks.pack of the same masks"
        )
        fused = fused_counts(packed.words, repeats, warmup)

        # the bool-tensor way on a few pairs; the first pair is a warm-up
        kept = {lab: masks[lab].kept for lab in labels}
        pairs = [(labels[i], labels[(i * 7 + 3) % N_MASKS]) for i in range(bool_pairs + 1)]

        def pair(p, masks=masks, kept=kept, n=n):
            return bool_pair(masks[p[0]], masks[p[1]], kept[p[0]], kept[p[1]], n)

        strong = [timed(partial(pair, p), 1, 0)[0] for p in pairs][1:]
        a, b = sorted(pairs[1])
        row = next(r for r in pairwise(packed) if (r["a"], r["b"]) == (a, b))
        jac_ab, agr_ab = bool_pair(masks[a], masks[b], kept[a], kept[b], n)
        assert abs(row["jaccard"] - jac_ab) < 1e-12 and abs(row["agreement"] - agr_ab) < 1e-12, (
            "packed and bool ways disagree"
        )

        speed, total = _rows(key, n, mem, files, t_load, strong, fused)
        log(
            f"  overlap [{key}] {N_MASKS} masks × {n / 1e6:.1f}M: ours {speed.ours}, bool tensors "
            f"{speed.baseline}; {total.note}"
        )
        rows += [speed, total]
        del masks, packed, from_files
    return rows


def _rows(
    key: str,
    n: int,
    mem: dict[str, list[float]],
    files: dict[str, list[float]],
    t_load: float,
    bool_pair_s: list[float],
    fused: dict[str, list[float]] | None,
) -> tuple[Row, Row]:
    """The speed row (ours vs bool tensors, both from the same files) and the total-time row (ours vs 2 s)."""
    n_pairs = N_MASKS * (N_MASKS - 1) // 2
    file_med, mem_med = {k: median(v) for k, v in files.items()}, {k: median(v) for k, v in mem.items()}
    ours, in_memory = file_med["build"] + file_med["all"], mem_med["build"] + mem_med["all"]
    per_pair = median(bool_pair_s)
    bool_total = per_pair * n_pairs
    baseline = t_load + bool_total
    speedup = baseline / ours
    fused_note = (
        "fused numba counts: not measured (numba not installed)"
        if fused is None
        else f"intersections of all tensors at once {seconds(median(fused['intersections']))}, the optional fused "
        f"numba kernel {seconds(median(fused['fused numba']))} (same counts; numba is not a dependency)"
    )
    detail = {
        "n_pairs": n_pairs,
        "weights_per_mask": n,
        "from_files_s": files,
        "in_memory_s": mem,
        "load_mask_all_s": t_load,
        "bool_pair_s": bool_pair_s,
        "fused_counts_s": fused,
        "numba": numba_version(),
    }
    speed = Row(
        "overlap_speed",
        f"all {n_pairs} pairwise overlaps of {N_MASKS} mask files: packed bits / bool tensors (torch)",
        key,
        seconds(ours),
        f"{seconds(baseline)} (extrapolated)",
        ours / baseline,
        "≥ 100× faster (ratio ≤ 0.01)",
        speedup >= 100,
        note=(
            f"{MODEL_LABELS[key]}: {speedup:,.0f}× faster. Ours = PackedMasks.from_files + pairwise, as the "
            f"overlap stage. Bool tensors = load_mask×{N_MASKS} {seconds(t_load)} + pairs timed on "
            f"{len(bool_pair_s)} pair(s) and extrapolated to {n_pairs}: {seconds(per_pair)}/pair "
            f"(torch.count_nonzero(a & b) per tensor; ∪ and agreement from kept counts, as the packed way). Masks "
            f"already in memory: PackedMasks.pack + pairwise {seconds(in_memory)} vs {seconds(bool_total)}, "
            f"{bool_total / in_memory:,.0f}× faster"
        ),
        detail=detail,
    )
    total = Row(
        "overlap_total",
        f"all {n_pairs} pairwise overlaps of {N_MASKS} mask files: total time (from_files + pairwise) / 2 s",
        key,
        seconds(ours),
        "2 s",
        ours / 2.0,
        "≤ 2 s",
        ours <= 2.0,
        note=(
            f"from_files {seconds(file_med['build'])} + pairwise {seconds(file_med['all'])}. With pairwise by "
            f"{', '.join(GROUPINGS)} in turn, as the overlap stage does: {seconds(sum(file_med.values()))} in all "
            f"(intersections are counted once per PackedMasks). In memory: pack {seconds(mem_med['build'])} + "
            f"pairwise {seconds(mem_med['all'])}. {fused_note}"
        ),
        detail={"median_s": {"from_files": file_med, "in_memory": mem_med}},
    )
    return speed, total
