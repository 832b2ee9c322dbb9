"""Controls plug in: a new control is one registered class, listed in ``prune.controls``."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import yaml

from subnetworks.core.maskio import load_mask
from subnetworks.core.masks import Mask
from subnetworks.demo.smoke import keep_tasks, write_smoke_params
from subnetworks.spec import ConfigError, load_study
from subnetworks.study import controls as registry
from subnetworks.study.controls import Control, ControlInputs, register
from subnetworks.study.layout import Layout
from subnetworks.study.stages import run_overlap, run_prune
from subnetworks.study.workspace import Workspace


class FirstWeights(Control):
    """A trivial control: in every tensor, the first weights in row-major order, as many as the IMP mask keeps."""

    name = "first"
    label = "first weights"
    scored = True
    across_languages = True

    def draw(self, inputs: ControlInputs) -> Mask:
        out = {}
        for name, keep in inputs.imp.tensors.items():
            flat = torch.zeros(keep.numel(), dtype=torch.bool)
            flat[: int(keep.sum())] = True
            out[name] = flat.reshape(keep.shape)
        return Mask(out, dict(inputs.imp.meta))


@pytest.fixture
def first(monkeypatch):
    monkeypatch.setattr(registry, "CONTROLS", dict(registry.CONTROLS))  # registered for this test only
    register(FirstWeights)


def _params(root, controls: list[str]):
    path = write_smoke_params(root)
    data = yaml.safe_load(path.read_text())
    data["languages"] = ["en", "ur"]
    keep_tasks(data, ["ner"])
    data["seeds"] = [57]  # one seed: the overlap stage compares the masks of every seed
    data["prune"]["controls"] = controls
    path.write_text(yaml.safe_dump(data))
    return load_study(path)


@pytest.mark.slow
def test_a_registered_control_is_drawn_scored_and_overlapped(first, tmp_path):
    study = _params(tmp_path, ["random", "pretrained", "first"])
    ws = Workspace.create(study)
    for lang in ("en", "ur"):
        run_prune(ws, "ner", lang, 57)
    for level in study.levels[1:]:
        imp = load_mask(ws.layout.mask_path("ner", "en", 57, level))
        mine = load_mask(ws.layout.mask_path("ner", "en", 57, level, "first"))
        assert mine.density_by() == imp.density_by() and mine.meta["kind"] == "first"
        assert all(bool(t.reshape(-1)[: int(t.sum())].all()) for t in mine.tensors.values())
    scored = ws.layout.prune_dir("ner", "en", 57).read_json("metrics.json")["controls"]
    # smoke's transfer runs train otherwise than IMP (4 steps, not 6): every control is scored both ways
    assert {(r["control"], r["level"], r["training"]) for r in scored} == {
        (c, lv, training)
        for c in ("random", "pretrained", "first")
        for lv in study.transfer_levels
        for training in ("imp", "transfer")
    }
    steps = {r["training"]: r["steps"] for r in scored}
    assert steps == {
        "imp": study.task("ner").imp_train.max_steps,
        "transfer": study.task("ner").transfer_train.max_steps,
    }
    assert all(r["density"] == pytest.approx(1 - r["sparsity"], abs=1e-3) for r in scored)
    overlap = run_overlap(ws, "ner")
    assert "first" in set(pd.read_csv(overlap.file("pairwise.csv")).masks)
    assert "first" in set(pd.read_csv(overlap.file("controls.csv")).control)


def test_the_list_of_controls_is_part_of_the_prune_key(tmp_path):
    """Another list of controls is another prune run (its levels hold other files); the default list is left out
    of the key, so studies that never name controls keep their keys."""
    default = Layout(_params(tmp_path, ["random", "pretrained"]))
    more = Layout(_params(tmp_path, ["random", "pretrained", "first"]))
    assert default.data_key("ner", "en") == more.data_key("ner", "en")
    assert default.prune_key("ner", "en") != more.prune_key("ner", "en")


def test_an_unregistered_control_is_one_clear_error(tmp_path):
    study = _params(tmp_path, ["random", "bogus"])
    with pytest.raises(ConfigError, match=r"prune.controls \['bogus'\].*'pretrained', 'random'"):
        Workspace.create(study)
