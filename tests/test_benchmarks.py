"""The benchmark suite runs end to end on tiny models (--quick) and produces every row; no timing is asserted.
The prototypes of proposed lib changes it measures give exactly the lib's results."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import bench_pipeline, run as bench_run  # noqa: E402
from benchmarks.bench_overlap import random_masks  # noqa: E402
from benchmarks.common import prunable_shapes  # noqa: E402
from benchmarks.prototypes import magnitude_prune_lowmem, packed_from_files, pairwise_counts_blocked  # noqa: E402
from subnetworks.masks import Mask, load_mask, save_mask  # noqa: E402
from subnetworks.overlap import PackedMasks  # noqa: E402
from subnetworks.prune import magnitude_prune  # noqa: E402

PER_MODEL = ("step_vs_dense", "step_vs_hooks", "prune_time", "prune_memory", "overlap_speed", "overlap_total", "mask_file", "mask_kept")


def test_quick_run_produces_every_row(tmp_path):
    out = tmp_path / "results.md"
    assert bench_run.main(["--quick", "--out", str(out), "--pipeline-timings", str(tmp_path / "absent.json")]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["bench"], r["model"]): r for r in result["rows"]}
    for bench in PER_MODEL:
        for model in ("demo", "mbert"):
            row = rows[(bench, model)]
            assert row["ratio"] is not None and row["ratio"] == row["ratio"] and row["ratio"] > 0, (bench, model)
    for bench in ("pipeline_rerun", "pipeline_overhead"):
        assert rows[(bench, "demo")]["ours"] == bench_pipeline.NOT_MEASURED
    machine = result["machine"]
    assert machine["cpu"] and machine["cores"] and machine["torch"] and machine["date"]
    text = out.read_text()
    assert machine["cpu"] in text and "not measured (run the demo first)" in text
    assert text.count("\n| ") == len(result["rows"]) + 1  # header + one line per row


def test_pipeline_rows_read_the_pipelines_timings(tmp_path):
    history = tmp_path / "timings"
    history.mkdir()
    full = {"study": "demo", "total_seconds": 100.0, "stage_runs": 5, "executed": 5, "notebook_wall_seconds": 90.0,
            "stage_seconds": 80.0, "report_seconds": 5.0, "orchestration_share": 0.1, "runs": []}
    rerun = {**full, "total_seconds": 4.0, "executed": 0, "notebook_wall_seconds": 0.0, "stage_seconds": 0.0}
    del rerun["orchestration_share"]
    (history / "20250101-000000.json").write_text(json.dumps(full))
    (history / "20250101-000100.json").write_text(json.dumps(rerun))
    (tmp_path / "timings.json").write_text(json.dumps(rerun))
    rows = {r.bench: r for r in bench_pipeline.run(tmp_path / "timings.json", log=lambda *a: None)}
    assert rows["pipeline_rerun"].ratio == pytest.approx(0.04)
    assert rows["pipeline_overhead"].ratio == pytest.approx(0.1)
    only_full = tmp_path / "other" / "timings.json"
    only_full.parent.mkdir()
    only_full.write_text(json.dumps(full))
    rows = {r.bench: r for r in bench_pipeline.run(only_full, log=lambda *a: None)}
    assert rows["pipeline_rerun"].ours == bench_pipeline.NOT_MEASURED and rows["pipeline_overhead"].ratio == pytest.approx(0.1)


@pytest.mark.parametrize("kind", ["normal", "ties", "bf16"])
def test_low_memory_magnitude_prune_matches_the_lib_exactly(kind):
    shapes = prunable_shapes("mbert", quick=True)
    g = torch.Generator().manual_seed(0)
    if kind == "ties":  # quantised weights: thresholds fall inside large groups of equal magnitudes, and zeros
        weights = {n: torch.randint(-3, 4, s, generator=g) * 0.5 for n, s in shapes.items()}
    else:
        weights = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    if kind == "bf16":
        weights = {n: w.bfloat16() for n, w in weights.items()}
    full = Mask.full(shapes, model="x")
    for start in (0.0, 0.3):
        before = magnitude_prune(weights, full, start) if start else full
        for sparsity in (start, 0.31, 0.5, 0.9, 0.999, 0.99999):
            ours, lib = magnitude_prune_lowmem(weights, before, sparsity), magnitude_prune(weights, before, sparsity)
            assert ours == lib and ours.meta == lib.meta, (start, sparsity)


def test_blocked_counts_and_packing_from_files_match_the_lib():
    shapes = prunable_shapes("demo", quick=True)
    masks = random_masks(shapes, 7)
    packed = PackedMasks.pack(masks)
    _, inter, _ = packed.counts(list(packed.segments))
    for threads in (1, 2):
        assert np.array_equal(pairwise_counts_blocked(packed.words, block=3, threads=threads), inter)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {label: save_mask(m, Path(tmp) / f"{label}.safetensors") for label, m in masks.items()}
        direct = packed_from_files(paths)
        via_bool = PackedMasks.pack({label: load_mask(p) for label, p in paths.items()})
    assert np.array_equal(direct.words, via_bool.words) and direct.segments == via_bool.segments
