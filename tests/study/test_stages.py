"""IMP, transfer and overlap stage functions on a tiny study, in-process (no notebooks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

from subnetworks.core.maskio import load_mask
from subnetworks.core.prune import kept_count
from subnetworks.demo.smoke import write_smoke_params
from subnetworks.nn.models import encoder_parameters
from subnetworks.spec import load_study
from subnetworks.study.stages import run_overlap, run_prune, run_transfer
from subnetworks.study.stages.finetune import pretrained_for, train_and_score
from subnetworks.study.workspace import Workspace

pytestmark = pytest.mark.slow


def _ner_study(root, **prune) -> Workspace:
    """The smoke study on two languages and the NER task, with transfer trained exactly as IMP."""
    path = write_smoke_params(root)
    data = yaml.safe_load(path.read_text())
    data["languages"] = ["en", "ur"]
    data["tasks"] = {"ner": {**data["tasks"]["ner"], "transfer_train": data["tasks"]["ner"]["imp_train"]}}
    data["similarity"] = {"corpus": "ner", "max_sentences": 16, "shuffles": 5}  # same-length test splits
    data["seeds"] = [57]  # one seed: the overlap stage compares the masks of every seed
    data["prune"].update(prune)
    path.write_text(yaml.safe_dump(data))
    return Workspace.create(load_study(path))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = _ner_study(tmp_path_factory.mktemp("stages"))
    for lang in ("en", "ur"):
        run_prune(ws, "ner", lang, 57)
    return ws


def test_imp_levels_have_exact_counts_and_nest(ws):
    previous = None
    for level in ws.study.levels[1:]:
        mask = load_mask(ws.layout.mask_path("ner", "en", 57, level))
        assert mask.kept == kept_count(mask.numel, ws.study.sparsity_of(level))
        assert mask.meta["lang"] == "en" and mask.meta["task"] == "ner" and mask.meta["model_type"] == "bert"
        for control in ("random", "global_random", "pretrained"):
            assert load_mask(ws.layout.mask_path("ner", "en", 57, level, control)).kept == mask.kept
        random = load_mask(ws.layout.mask_path("ner", "en", 57, level, "random"))
        assert random.density_by() == mask.density_by()  # layer-wise: the IMP mask's count in every tensor
        assert float(mask.meta["movement_q999"]) > float(mask.meta["movement_q50"]) > 0
        if previous is not None:
            assert mask.issubset(previous)
        previous = mask
    levels = ws.layout.prune_dir("ner", "en", 57).read_json("metrics.json")["levels"]
    assert [lvl["level"] for lvl in levels] == [0, 1, 2]
    assert [lvl["density"] for lvl in levels] == pytest.approx([1.0, 0.5, 0.2], abs=1e-3)


def test_rewinding_restores_pretrained_weights(ws):
    model, theta0 = ws.pretrained("tokcls", 7, 57)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model, _ = ws.pretrained("tokcls", 7, 57)
    assert all(torch.equal(v, theta0[k]) for k, v in model.state_dict().items())


def test_resuming_a_level_gives_the_same_result(ws):
    run = ws.layout.prune_dir("ner", "ur", 57)
    last = run.sub("level_02")
    before = last.read_json("metrics.json")
    mask_before = load_mask(last.file("mask.safetensors"))
    last.file("DONE").unlink()
    run.file("DONE").unlink()
    untouched = run.sub("level_01").file("DONE").stat().st_mtime_ns
    run_prune(Workspace.create(ws.study, ws.artifacts), "ner", "ur", 57)
    after = last.read_json("metrics.json")
    assert run.sub("level_01").file("DONE").stat().st_mtime_ns == untouched
    assert {k: v for k, v in after.items() if k != "train_seconds"} == {
        k: v for k, v in before.items() if k != "train_seconds"
    }
    assert load_mask(last.file("mask.safetensors")) == mask_before


def _lose_level_2_masks(ws, lang: str, kinds: tuple[str, ...], read: Callable[[Path], Any]) -> dict[str, Any]:
    """Delete level 2's mask files of ``kinds`` (ner, seed 57) and the DONE markers that would skip it; what ``read``
    read from each mask file before."""
    run = ws.layout.prune_dir("ner", lang, 57)
    paths = {kind: ws.layout.mask_path("ner", lang, 57, 2, kind) for kind in kinds}
    before = {kind: read(path) for kind, path in paths.items()}
    for path in [*paths.values(), run.sub("level_02").file("DONE"), run.file("DONE")]:
        path.unlink()
    return before


def test_a_lost_mask_of_a_finished_level_is_drawn_again_identically(ws):
    """Level 1 finished, level 2's masks gone: level 1 is trained again in memory (its weights are not kept) and
    gives the same level-2 masks; level 1's finished files are not touched."""
    run = ws.layout.prune_dir("ner", "en", 57)
    before = _lose_level_2_masks(ws, "en", ("imp", "random", "global_random", "pretrained"), load_mask)
    untouched = run.sub("level_01").file("metrics.json").stat().st_mtime_ns
    run_prune(Workspace.create(ws.study, ws.artifacts), "ner", "en", 57)
    assert run.sub("level_01").file("metrics.json").stat().st_mtime_ns == untouched
    for kind, mask in before.items():
        assert load_mask(ws.layout.mask_path("ner", "en", 57, 2, kind)) == mask, kind


def test_a_control_lost_after_its_imp_mask_was_written_is_drawn_again_into_the_same_file(ws):
    """A kill between an IMP mask's file and its controls' (the kill harness found it): the controls drawn from the
    IMP mask read back are byte for byte those drawn from the mask in memory, metadata included."""
    before = _lose_level_2_masks(ws, "ur", ("random", "global_random"), Path.read_bytes)
    run_prune(Workspace.create(ws.study, ws.artifacts), "ner", "ur", 57)
    for kind, content in before.items():
        assert ws.layout.mask_path("ner", "ur", 57, 2, kind).read_bytes() == content, kind


def test_transfer_diagonal_reuses_the_identical_imp_training(ws):
    run = run_transfer(ws, "ner", "en", 2, 57)
    rows = {(r["mask"], r["target"]): r for r in run.read_json("metrics.json")}
    assert set(rows) == {("imp", "en"), ("imp", "ur")}  # the controls on each target are scored in its IMP run
    assert "reused_from" in rows[("imp", "en")]
    assert rows[("imp", "ur")]["sparsity"] == ws.study.sparsity_of(2) == 0.8
    fresh = train_and_score(
        Workspace.create(ws.study, ws.artifacts),
        "ner",
        "en",
        57,
        load_mask(ws.layout.mask_path("ner", "en", 57, 2)),
        ws.study.task("ner").transfer_train,
        desc="check",
    )
    assert fresh["score"] == rows[("imp", "en")]["score"] and fresh["final_loss"] == rows[("imp", "en")]["final_loss"]


def test_masked_model_really_is_sparse_after_transfer_training(ws):
    mask = load_mask(ws.layout.mask_path("ner", "ur", 57, 2))
    model, _ = pretrained_for(ws, "ner", "en", 57)
    train_and_score(ws, "ner", "en", 57, mask, ws.study.task("ner").transfer_train, desc="check", model=model)
    params = encoder_parameters(model)
    assert all(bool((params[n][~keep] == 0).all()) for n, keep in mask.tensors.items())


def test_overlap_tables(ws):
    run = run_overlap(ws, "ner")
    pairs = pd.read_csv(run.file("pairwise.csv"), dtype={"group": str})
    overall = pairs[(pairs.by == "all") & (pairs.masks == "imp")]
    assert set(overall.sparsity) == {0.5, 0.8} and len(overall) == 2
    assert list(dict.fromkeys(pairs[pairs.by == "module"].group)) == [  # token classifiers have no pooler
        "query",
        "key",
        "value",
        "attention_output",
        "intermediate",
        "output",
    ]
    assert set(pairs[pairs.by == "layer"].group) == {"0", "1"}
    assert set(pairs.masks) == {"imp", "random", "global_random"}  # P is the same mask in every language
    controls = pd.read_csv(run.file("controls.csv"))
    assert set(controls.lang) == {"en", "ur"} and set(controls.control) == {"random", "global_random", "pretrained"}
    assert controls.jaccard.between(0, 1).all()
    counts = pd.read_csv(run.file("departure_counts.csv"), dtype={"group": str})
    overall = counts[counts.by == "all"]
    assert (overall.gained == overall.lost).all()  # an IMP mask keeps as many weights as P: every gain is a loss
    assert (overall.departures_in_band <= 2 * overall.gained).all() and (overall.band_size > 0).all()
    departures = pd.read_csv(run.file("departures.csv"), dtype={"group": str})
    assert set(departures.by) == {"all", "layer", "module"}
    assert (departures.jaccard_p <= 1).all() and (departures.excess <= 1).all()


def test_representation_similarity_compares_every_model_on_parallel_rows(ws):
    run = run_overlap(ws, "ner")
    sim = pd.read_csv(run.file("similarity.csv"))
    layers = {0, 1}  # the tiny BERT's two layers, not the embeddings
    per_model = sim.groupby(["masks", "sparsity"]).size().to_dict()
    assert per_model[("dense", 0.0)] == 1 * len(layers)  # one pair of languages
    for sparsity in (0.5, 0.8):
        for masks in ("imp", "random", "global_random", "pretrained"):
            assert per_model[(masks, sparsity)] == len(layers)  # one seed: en-ur at that seed
    assert set(sim.layer) == layers and set(sim.pair) == {"same_seed"} and (sim.sentences == 16).all()
    assert sim.cka.between(0, 1).all() and (sim.null_mean <= sim.null_q95).all()
    assert float(run.read_json("timing.json")["similarity"]) > 0


def test_representation_similarity_needs_parallel_rows(ws, monkeypatch):
    import datasets

    from subnetworks.study.stages.similarity import parallel_sentences

    real = datasets.load_from_disk

    def ur_one_row_short(path):
        splits = real(path)
        if "/ur/" not in path:
            return splits
        return datasets.DatasetDict(train=splits["train"], test=splits["test"].select(range(len(splits["test"]) - 1)))

    monkeypatch.setattr(datasets, "load_from_disk", ur_one_row_short)
    with pytest.raises(ValueError, match="not translations of each other"):
        parallel_sentences(ws, ("en", "ur"))


def test_controls_are_scored_in_their_own_language_at_the_transfer_levels(ws):
    metrics = ws.layout.prune_dir("ner", "ur", 57).read_json("metrics.json")
    scored = {(r["control"], r["level"]): r for r in metrics["controls"]}
    assert set(scored) == {(c, lv) for c in ("random", "global_random", "pretrained") for lv in (1, 2)}
    for (control, level), row in scored.items():
        assert row["density"] == pytest.approx(1 - ws.study.sparsity_of(level), abs=1e-3) and 0 <= row["score"] <= 1
        assert ws.layout.level_dir("ner", "ur", 57, level).sub(control).done
    assert 0 <= metrics["theta0_zero_share"] < 0.01  # a random tiny BERT has no exact zeros to speak of


def test_head_trained_at_rewind_carries_the_head_between_levels(tmp_path):
    ws = _ner_study(tmp_path, head_at_rewind="trained")
    run = run_prune(ws, "ner", "en", 57)
    for level in (0, 1):
        assert run.sub(f"level_{level:02d}").file("head.safetensors").exists()
    init = _ner_study(tmp_path / "init")
    losses = [lvl["final_loss"] for lvl in run.read_json("metrics.json")["levels"]]
    init_losses = [lvl["final_loss"] for lvl in run_prune(init, "ner", "en", 57).read_json("metrics.json")["levels"]]
    assert losses[0] == init_losses[0]  # level 0 starts from the same seeded head either way
    assert losses[1] != init_losses[1] and losses[2] != init_losses[2]  # later ones from the trained head
