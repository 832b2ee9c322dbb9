"""IMP, transfer and overlap stage functions on a tiny study, in-process (no notebooks)."""

from __future__ import annotations

import torch
import pytest
import yaml

from subnetworks import masks as M
from subnetworks.config import load_study
from subnetworks.models import encoder_parameters
from subnetworks.prune import kept_count
from subnetworks.stages import Context, run_overlap, run_prune, run_transfer, train_and_score
from subnetworks.smoke import write_smoke_params


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    """The smoke study on two languages and the NER task, with transfer trained exactly as IMP."""
    root = tmp_path_factory.mktemp("stages")
    path = write_smoke_params(root)
    data = yaml.safe_load(path.read_text())
    data["languages"] = ["en", "ur"]
    data["tasks"] = {"ner": {**data["tasks"]["ner"], "transfer_train": data["tasks"]["ner"]["imp_train"]}}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def ctx(study_file):
    ctx = Context.create(load_study(study_file))
    for lang in ("en", "ur"):
        run_prune(ctx, "ner", lang, 57)
    return ctx


def test_imp_levels_have_exact_counts_and_nest(ctx):
    previous = None
    for sparsity in ctx.study.prune.schedule:
        mask = M.load_mask(ctx.mask_path("ner", "en", 57, sparsity))
        assert mask.kept == kept_count(mask.numel, sparsity)
        assert mask.meta["lang"] == "en" and mask.meta["task"] == "ner"
        for control in ("random", "pretrained"):
            other = M.load_mask(ctx.mask_path("ner", "en", 57, sparsity, control))
            assert other.kept == mask.kept
        random = M.load_mask(ctx.mask_path("ner", "en", 57, sparsity, "random"))
        assert random.density_by("tensor") == mask.density_by("tensor")
        if previous is not None:
            assert mask.issubset(previous)
        previous = mask
    levels = ctx.prune_dir("ner", "en", 57).read_json("metrics.json")["levels"]
    assert [lvl["density"] for lvl in levels] == pytest.approx([1.0, 0.5, 0.2], abs=1e-3)


def test_rewinding_restores_pretrained_weights(ctx):
    model, theta0 = ctx.pretrained("tokcls", 7, 57)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model, _ = ctx.pretrained("tokcls", 7, 57)
    assert all(torch.equal(v, theta0[k]) for k, v in model.state_dict().items())


def test_resuming_a_level_gives_the_same_result(ctx):
    run = ctx.prune_dir("ner", "ur", 57)
    last = run.sub("level_02")
    before = last.read_json("metrics.json")
    mask_before = M.load_mask(last.file("mask.safetensors"))
    (last.file("DONE")).unlink()
    (run.file("DONE")).unlink()
    untouched = run.sub("level_01").file("DONE").stat().st_mtime_ns
    run_prune(Context.create(ctx.study, ctx.artifacts), "ner", "ur", 57)
    after = last.read_json("metrics.json")
    assert run.sub("level_01").file("DONE").stat().st_mtime_ns == untouched
    assert {k: v for k, v in after.items() if k != "train_seconds"} == {k: v for k, v in before.items() if k != "train_seconds"}
    assert M.load_mask(last.file("mask.safetensors")) == mask_before


def test_transfer_diagonal_reuses_the_identical_imp_training(ctx):
    run = run_transfer(ctx, "ner", "en", 0.8, 57)
    rows = {(r["mask"], r["target"]): r for r in run.read_json("metrics.json")}
    assert set(rows) == {("imp", "en"), ("imp", "ur"), ("random", "en")}
    assert "reused_from" in rows[("imp", "en")]
    fresh = train_and_score(
        Context.create(ctx.study, ctx.artifacts), "ner", "en", 57, M.load_mask(ctx.mask_path("ner", "en", 57, 0.8)),
        ctx.study.task("ner").transfer_train, desc="check",
    )
    assert fresh["score"] == rows[("imp", "en")]["score"] and fresh["final_loss"] == rows[("imp", "en")]["final_loss"]


def test_masked_model_really_is_sparse_after_transfer_training(ctx):
    mask = M.load_mask(ctx.mask_path("ner", "ur", 57, 0.8))
    model, _ = ctx.pretrained("tokcls", 7, 57)
    train_and_score(ctx, "ner", "en", 57, mask, ctx.study.task("ner").transfer_train, desc="check", model=model)
    params = encoder_parameters(model)
    assert all(bool((params[n][~keep] == 0).all()) for n, keep in mask.tensors.items())


def test_overlap_tables(ctx):
    import pandas as pd

    run = run_overlap(ctx, "ner")
    pairs = pd.read_csv(run.file("pairwise.csv"))
    overall = pairs[(pairs.by == "all") & (pairs.masks == "imp")]
    assert set(overall.sparsity) == {0.5, 0.8} and len(overall) == 2
    assert set(pairs[pairs.by == "module"].group) == {"query", "key", "value", "attention_output", "intermediate", "output"}
    controls = pd.read_csv(run.file("controls.csv"))
    assert set(controls.lang) == {"en", "ur"} and controls.jaccard_with_pretrained.between(0, 1).all()
