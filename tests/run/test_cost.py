"""The grid's step count, checked by hand on the paper's XNLI and the demo, and measured sizes taking precedence."""

import math

from subnetworks.run.cost import grid_cost
from subnetworks.spec import load_study
from subnetworks.study.layout import Layout


def _by(costs):
    return {(c.stage, c.task): c for c in costs}


def test_paper_grid_steps_follow_the_published_sizes_and_configs():
    costs = _by(grid_cost(Layout(load_study("params/paper.yaml"), "/nonexistent")))
    per_epoch = math.ceil(392_702 / 32)
    # 8 languages × ((dense + 9 levels + 3 controls at 2 transfer levels) × 30 epochs + the controls again with the
    # transfer runs' 3 epochs, which differ from IMP's)
    assert costs["prune", "xnli"].steps == 3 * 8 * ((10 + 3 * 2) * 30 + 3 * 2 * 3) * per_epoch  # 3 seeds
    # transfer: 3 epochs on each of 8 targets (its training is not IMP's: no diagonal reused), 8 sources, 2 levels
    assert costs["transfer", "xnli"].steps == 3 * 8 * 2 * 8 * 3 * per_epoch  # from every seed's masks
    assert costs["transfer", "mlm"].steps == 3 * 9 * 2 * 9 * 20_000
    assert costs["prune", "mlm"].steps is None and set(costs["prune", "mlm"].unknown) == set(
        "ar de en fa fr hi ru ur zh".split()
    )
    ner = costs["prune", "ner"]
    assert ner.steps == 3 * (16 * 30 + 6 * 3) * (8 * math.ceil(20_000 / 32) + math.ceil(5_000 / 32))
    assert ner.examples == ner.steps * 32


def test_the_reused_diagonal_costs_nothing_and_measured_sizes_count(tmp_path):
    costs = _by(grid_cost(Layout(load_study("params/demo.yaml"), tmp_path)))
    # fixed max_steps: known without data; 3 seeds of IMP (dense + 2 levels), the 3 controls at 2 levels at seed 57
    assert costs["prune", "xnli"].steps == 4 * (3 * 3 + 3 * 2) * 40
    assert costs["transfer", "xnli"].steps == 4 * 2 * 3 * 40  # 3 other targets; the diagonal is the IMP level
    study = load_study("params/paper.yaml")
    layout = Layout(study, tmp_path)
    run = layout.data_dir("ner", "hi")
    run.write_json("stats.json", {"sizes": {"train": 64}})
    run.mark_done()
    hi = _by(grid_cost(layout))["prune", "ner"].steps - 3 * (16 * 30 + 6 * 3) * 8 * math.ceil(20_000 / 32)
    assert hi == 3 * (16 * 30 + 6 * 3) * 2  # 64 measured examples at batch 32, 3 seeds


def test_controls_and_transfer_cost_only_at_their_seeds(tmp_path):
    demo = load_study("params/demo.yaml", overrides=["prune.control_seeds=[]", "transfer.seeds=[]"])
    every = _by(grid_cost(Layout(demo, tmp_path)))
    assert every["prune", "xnli"].steps == 4 * 3 * (3 + 3 * 2) * 40
    assert every["transfer", "xnli"].steps == 3 * 4 * 2 * 3 * 40
