"""The benchmark suite runs end to end on tiny models (--quick) and produces every row; no timing is asserted.
The optional numba kernel it times for information gives exactly the lib's intersection counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import bench_pipeline, bench_step, bench_trainer
from benchmarks import run as bench_run
from benchmarks.bench_overlap import random_masks
from benchmarks.common import prunable_shapes
from benchmarks.prototypes import pairwise_counts_numba
from subnetworks.core.overlap import PackedMasks, intersections

PER_MODEL = (
    "step_vs_dense",
    "step_vs_hooks",
    "prune_time",
    "prune_memory",
    "overlap_speed",
    "overlap_total",
    "mask_file",
)


def test_quick_run_produces_every_row(tmp_path):
    out = tmp_path / "results.md"
    assert bench_run.main(["--quick", "--out", str(out), "--pipeline-timings", str(tmp_path / "absent.json")]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["bench"], r["model"]): r for r in result["rows"]}
    pipeline = {("pipeline_rerun", "demo"), ("pipeline_overhead", "demo")}
    trainer = ("trainer_throughput", "demo")  # the demo shape only
    expected = {(bench, model) for bench in PER_MODEL for model in ("demo", "mbert")} | pipeline | {trainer}
    assert set(rows) == expected
    assert len(result["rows"]) == len(rows)
    for bench in PER_MODEL:
        for model in ("demo", "mbert"):
            row = rows[(bench, model)]
            assert row["ratio"] is not None and row["ratio"] == row["ratio"] and row["ratio"] > 0, (bench, model)
    for key in pipeline:
        assert rows[key]["ours"] == bench_pipeline.NOT_MEASURED
    if bench_trainer.trainer_available():
        assert rows[trainer]["ratio"] > 0
    else:  # transformers' Trainer needs accelerate, which is not a dependency
        assert rows[trainer]["ours"] == bench_trainer.NOT_MEASURED and rows[trainer]["ratio"] is None
    _check_what_was_measured(rows)
    machine = result["machine"]
    assert machine["cpu"] and machine["cores"] and machine["torch"] and machine["date"]
    text = out.read_text()
    assert machine["cpu"] in text and "not measured (run the demo first)" in text
    assert text.count("\n| ") == len(result["rows"]) + 1  # header + one line per row


def _check_what_was_measured(rows: dict) -> None:
    """The rows time the lib's own code paths, not leftovers: finetune's mask multipliers, magnitude_prune against
    torch with the same mask, and the overlap stage's from_files + pairwise for all three groupings."""
    for model in ("demo", "mbert"):
        step = rows[("step_vs_dense", model)]["detail"]
        assert step["phase_median_s"]["masked mask"] > 0
        assert list(step["apply_variants_median_s"])[0] == bench_step.OURS_APPLY
        prune = rows[("prune_time", model)]["detail"]
        assert set(prune) == {"ours", "torch"}
        assert all(r["same_as_ours"] and r["kept"] == r["expected_kept"] > 0 for r in prune.values())
        overlap = rows[("overlap_speed", model)]["detail"]
        assert set(overlap["from_files_s"]) == {"build", "all", "layer", "module"}
        assert all(times and min(times) > 0 for times in overlap["from_files_s"].values())
        assert (overlap["fused_counts_s"] is None) == (overlap["numba"] is None)
    trainer = rows[("trainer_throughput", "demo")]["detail"]
    if trainer:  # measured (accelerate installed): finetune against Trainer's default and torch-AdamW variants
        assert set(trainer["examples_per_second"]) == {
            bench_trainer.OURS,
            bench_trainer.TRAINER,
            bench_trainer.TRAINER_UNFUSED,
        }
        assert trainer["pruned_weights_zero"] and trainer["steps"] == bench_run.QUICK["trainer_steps"]
        assert all(v > 0 for v in trainer["loop_median_s"].values())


def test_trainer_row_says_not_measured_without_accelerate(monkeypatch):
    monkeypatch.setattr(bench_trainer, "trainer_available", lambda: False)
    rows = bench_trainer.run(["demo", "mbert"], True, 1, 1, 2, 16, 3, log=lambda *a: None)
    assert [(r.bench, r.model, r.ours, r.ratio) for r in rows] == [
        ("trainer_throughput", "demo", bench_trainer.NOT_MEASURED, None)
    ]


def test_pipeline_rows_read_the_pipelines_timings(tmp_path):
    history = tmp_path / "timings"
    history.mkdir()
    full = {
        "study": "demo",
        "total_seconds": 100.0,
        "stage_runs": 5,
        "executed": 5,
        "notebook_wall_seconds": 90.0,
        "stage_seconds": 80.0,
        "report_seconds": 5.0,
        "orchestration_share": 0.1,
        "runs": [],
    }
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
    assert rows["pipeline_rerun"].ours == bench_pipeline.NOT_MEASURED and rows[
        "pipeline_overhead"
    ].ratio == pytest.approx(0.1)


def test_fused_numba_counts_match_the_libs_intersections():
    pytest.importorskip("numba")
    packed = PackedMasks.pack(random_masks(prunable_shapes("demo", quick=True), 7))
    for block in (3, 1024):
        assert np.array_equal(pairwise_counts_numba(packed.words, block=block), intersections(packed.words))
