"""The layout and the grid: torch-free, keys computed once, integer levels, every run named once."""

from __future__ import annotations

import subprocess
import sys

from subnetworks.spec import load_study
from subnetworks.study.grid import Grid
from subnetworks.study.layout import Layout


def test_the_layout_and_grid_import_without_torch():
    code = (
        "import sys, subnetworks.study.layout, subnetworks.study.grid; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_grid_holds_every_run_once_in_dependency_order():
    study = load_study("params/paper.yaml")
    grid = Grid(Layout(study, "/nowhere"))
    labels = [run.label for run in grid]
    assert len(labels) == len(set(labels))
    seen = set()
    for run in grid:
        assert set(run.after) <= seen, run.label
        seen.add(run.label)
    transfers = grid.stage("transfer")
    assert {run.level for run in transfers} == {5, 8}  # 50 % and 80 % of the paper's 10 %-a-round schedule
    xnli, langs = [r for r in transfers if r.task == "xnli"], study.task_languages("xnli")
    assert len(xnli) == len(langs) * 2 * len(study.seeds) and "fa" not in langs
    assert grid["transfer/xnli/en/sp0.5/seed57"].dir.path.parent.parent.name == "en-sp50"


def test_transfer_directories_are_named_by_sparsity_and_keyed_by_level():
    layout = Layout(load_study("params/smoke.yaml"), "/nowhere")
    assert layout.transfer_dir("ner", "en", 1, 57).path.parts[-3] == "en-sp50"
    assert layout.transfer_key("ner", "en", 1) != layout.transfer_key("ner", "en", 2)
    assert layout.mask_path("ner", "en", 57, 2, "random").name == "random_mask.safetensors"
    assert layout.mask_path("ner", "en", 57, 2).name == "mask.safetensors"
