"""The training-budget curve's points: what each multiplies, runs shared between points, and the paper's budget."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml
from processes import run_cli

from subnetworks.core.schedule import learning_rate_sum
from subnetworks.demo.smoke import write_smoke_params
from subnetworks.run.budget import _runs, budget_points, paper_budgets
from subnetworks.run.study_params import effective_params
from subnetworks.spec import ConfigError, TrainConfig, repo_root


@pytest.fixture
def points(tmp_path):
    effective = effective_params("params/budget.yaml", tmp_path)
    return budget_points(effective, tmp_path)


def test_each_point_scales_the_imp_training_and_drops_transfer_and_scoring(points):
    study, pts = points
    assert [p.label for p in pts] == ["x1-lr1", "x1-lr3", "x3-lr3.33333", "x6-lr5", "x12-lr8.33333"]
    for point in pts:
        derived = point.layout.study
        assert set(derived.tasks) == {"xnli", "ner"} and not derived.transfer.enabled
        assert not derived.prune.score_controls and not derived.budget.points
        for task in derived.tasks:
            base, scaled = study.task(task).imp_train, derived.task(task).imp_train
            assert scaled.max_steps == round(base.max_steps * point.multipliers.steps)
            assert scaled.learning_rate == pytest.approx(base.learning_rate * point.multipliers.learning_rate)
            assert scaled.head_learning_rate == base.head_learning_rate  # the new head learns as in the demo
    assert len({p.layout.prune_key("ner", "en") for p in pts}) == len(pts)  # another training, another run


def test_points_share_their_data_runs_and_keep_their_own_labels(points):
    _, pts = points
    runs = _runs(pts)
    labels = [r.label for r in runs]
    assert len(labels) == len(set(labels))
    assert sum(r.stage == "data" for r in runs) == 4  # 2 tasks × 2 languages, once for every point
    assert sum(r.stage == "prune" for r in runs) == 4 * len(pts) and not any(r.stage == "transfer" for r in runs)
    for run in runs:
        assert all(a in labels for a in run.after), run.label


def test_the_paper_budget_is_its_learning_rate_summed_over_its_steps():
    steps = 30 * math.ceil(392_702 / 32)  # 30 epochs of XNLI at batch 32, no warm-up, linear decay
    assert paper_budgets(("xnli",))["xnli"] == pytest.approx(5e-5 * (steps + 1) / 2)
    assert paper_budgets(("mlm",))["mlm"] is None  # streamed Wikipedia: its size is known only after the data stage


def test_a_learning_rate_sum_by_hand():
    cfg = TrainConfig(learning_rate=1.0, max_steps=10, warmup_ratio=0.2)  # warm-up 1/2, 2/2, then 8/8 … 1/8
    assert learning_rate_sum(cfg, 0) == pytest.approx(0.5 + 1.0 + sum(range(1, 9)) / 8)


def test_a_study_without_points_is_one_clear_error(tmp_path):
    params = tmp_path / "nobudget.yaml"
    params.write_text(f"base: {repo_root() / 'params' / 'demo.yaml'}\nname: nobudget\n")
    with pytest.raises(ConfigError, match="budget.points is empty"):
        budget_points(effective_params(params, tmp_path / "art"), tmp_path / "art")


@pytest.mark.slow
def test_the_curve_of_the_smoke_study_end_to_end(tmp_path):
    """Two budgets of the smoke study through the CLI: every point's prune and overlap runs, one report."""
    params = write_smoke_params(tmp_path)
    data = yaml.safe_load(params.read_text())
    data["languages"] = ["en", "ur"]
    data["budget"] = {"tasks": ["ner"], "points": [{"steps": 1}, {"steps": 2, "learning_rate": 3}]}
    params.write_text(yaml.safe_dump(data))
    out = run_cli("budget", str(params), "--reports", str(tmp_path / "curve"))
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads((tmp_path / "artifacts" / "budget.json").read_text())
    assert [p["label"] for p in record["points"]] == ["x1-lr1", "x2-lr3"]
    demo, more = (p["budget"]["ner"] for p in record["points"])
    assert more == pytest.approx(demo * 6, rel=0.1)  # twice the steps at three times the rate (warm-up aside)
    table = pd.read_csv(tmp_path / "curve" / "tables" / "budget.csv")
    assert set(table["point"]) == {"x1-lr1", "x2-lr3"} and table["jaccard_with_p"].between(0, 1).all()
    assert (tmp_path / "curve" / "report.html").stat().st_size > 0
    assert run_cli("budget", str(params), "--reports", str(tmp_path / "curve")).stdout.count("0 to run") == 1
