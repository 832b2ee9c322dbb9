"""Fast: the report's tables and sentences fed by hand (no study runs): the relative change (the paper's and against
P), the random controls' gaps to their nulls and the sentence that states them, θ0's zeros, the paper's numbers,
and the labels the report gives the study's controls."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from subnetworks import report
from subnetworks.report.names import CONTROL_LABELS
from subnetworks.report.output import LONG_TABLE, Report, table_html
from subnetworks.report.overlap_sections import random_controls_sentence
from subnetworks.report.overlap_tables import jaccard_sd, random_null_gaps
from subnetworks.report.sections import budget_sentence
from subnetworks.report.text import zeros_sentence
from subnetworks.report.uncertainty import score_intervals
from subnetworks.spec import ModelConfig, PruneConfig, StudyConfig, TaskConfig, TransferConfig, load_study
from subnetworks.study.controls import CONTROLS
from subnetworks.study.layout import Layout

LANGS = ["en", "ur", "zh"]
PAPER_YAML = Path(report.__file__).with_name("paper.yaml")
ACC = {  # acc[s][t]: the source's mask fine-tuned and scored on t
    "en": {"en": 0.8, "ur": 0.6, "zh": 0.4},
    "ur": {"en": 0.7, "ur": 0.9, "zh": 0.45},
    "zh": {"en": 0.4, "ur": 0.3, "zh": 0.5},
}


def _three_language_results(tmp_path: Path) -> report.Results:
    """Results of a study with nothing finished, for tables fed by hand."""
    task = TaskConfig(kind="tokcls", source="hub", dataset="unused")
    study = StudyConfig(
        name="hand",
        model=ModelConfig(name="unused"),
        languages=tuple(LANGS),
        tasks={"ner": task},
        transfer=TransferConfig(sparsities=(0.5, 0.8)),
    )
    return report.load_results(Layout(study, tmp_path / "artifacts"))


def _transfer_rows(acc: dict, sparsity: float = 0.5) -> list[dict]:
    return [
        {"task": "ner", "source": s, "target": t, "mask": "imp", "sparsity": sparsity, "seed": 57, "score": v}
        for s, row in acc.items()
        for t, v in row.items()
    ]


def test_relative_change_table_matches_a_matrix_computed_by_hand(tmp_path):
    res = _three_language_results(tmp_path)
    assert res.sparsities == [0.5, 0.8] and len(res.missing) > 0
    rows = _transfer_rows(ACC)
    rows += [{**r, "sparsity": 0.8} for r in rows if r["source"] != "zh"]  # zh's run at 80 % has not finished
    rows += [{**r, "mask": "random", "score": 0.0} for r in rows if r["source"] == r["target"]]  # not IMP: ignored
    res.transfer = pd.DataFrame(rows)
    table = report.tables.relative_change_table(res)
    at = {(r.sparsity, r.source): r.relative_change for r in table.itertuples()}
    # (acc(s,t) − acc(t,t)) / acc(t,t), mean over the two targets t ≠ s
    assert at[0.5, "en"] == pytest.approx(((0.6 - 0.9) / 0.9 + (0.4 - 0.5) / 0.5) / 2)
    assert at[0.5, "ur"] == pytest.approx(((0.7 - 0.8) / 0.8 + (0.45 - 0.5) / 0.5) / 2)
    assert at[0.5, "zh"] == pytest.approx(((0.4 - 0.8) / 0.8 + (0.3 - 0.9) / 0.9) / 2)
    # at 80 % acc(zh, zh) is unknown: no source has a cell on zh, and zh itself is absent
    assert list(table[table["sparsity"] == 0.8]["source"]) == ["en", "ur"]
    assert at[0.8, "en"] == pytest.approx((0.6 - 0.9) / 0.9) and at[0.8, "ur"] == pytest.approx((0.7 - 0.8) / 0.8)
    assert table["relative_change_vs_pretrained"].isna().all()  # no control was scored


def test_relative_change_against_p_uses_p_scored_on_each_target(tmp_path):
    res = _three_language_results(tmp_path)
    res.transfer = pd.DataFrame(_transfer_rows(ACC))
    p = {"en": 0.5, "ur": 0.6, "zh": 0.0}  # acc(P, t); P on zh scores 0: no change against it
    res.control_scores = pd.DataFrame(
        [
            {
                "task": "ner",
                "lang": t,
                "seed": 57,
                "control": c,
                "training": "imp",
                "level": 1,
                "sparsity": 0.5,
                "score": v,
            }
            for t, v in p.items()
            for c in ("pretrained", "random")
        ]
    )
    table = report.tables.relative_change_table(res).set_index("source")["relative_change_vs_pretrained"]
    assert table["zh"] == pytest.approx(((0.4 - 0.5) / 0.5 + (0.3 - 0.6) / 0.6) / 2)
    assert table["en"] == pytest.approx((0.6 - 0.6) / 0.6) and table["ur"] == pytest.approx((0.7 - 0.5) / 0.5)
    transfer = report.tables.transfer_table(res).set_index(["source", "target"])
    assert transfer.at[("en", "ur"), "change_vs_pretrained"] == pytest.approx((0.6 - 0.6) / 0.6)
    assert transfer.at[("ur", "en"), "pretrained_score"] == 0.5
    assert list(report.tables.control_matrices(res, "ner")[0.5].index) == ["pretrained", "random"]


def test_relative_change_leaves_out_and_counts_cells_whose_target_is_at_chance(tmp_path):
    res = _three_language_results(tmp_path)
    scores = {"en": ACC["en"], "ur": {**ACC["ur"], "ur": 0.0}, "zh": ACC["zh"]}  # acc(ur, ur) = 0: NER's chance
    res.transfer = pd.DataFrame(_transfer_rows(scores))
    table = report.tables.relative_change_table(res).set_index("source")
    assert table.at["en", "relative_change"] == pytest.approx((0.4 - 0.5) / 0.5)  # only en → zh
    assert table.at["zh", "relative_change"] == pytest.approx((0.4 - 0.8) / 0.8)  # only zh → en
    assert table.at["ur", "relative_change"] == pytest.approx(((0.7 - 0.8) / 0.8 + (0.45 - 0.5) / 0.5) / 2)
    assert dict(table["at_chance"]) == {"en": 1, "ur": 0, "zh": 1} and dict(table["cells"]) == {
        "en": 1,
        "ur": 2,
        "zh": 1,
    }


def _pairs(rows: list[tuple[str, str, str, float, float, float]]) -> pd.DataFrame:
    """Pairwise rows (masks, a, b, jaccard, expected layer-wise, expected global) of one task at 80 %."""
    base = {"task": "ner", "seed": 57, "sparsity": 0.8, "by": "all", "group": "all", "agreement": 0.5}
    return pd.DataFrame(
        [
            {**base, "masks": m, "a": a, "b": b, "jaccard": j, "expected_layerwise_jaccard": lw}
            | {"expected_global_jaccard": g, "expected_layerwise_agreement": 0.5, "expected_global_agreement": 0.5}
            for m, a, b, j, lw, g in rows
        ]
    )


def test_random_control_sentence_states_the_largest_gap_and_whether_it_is_within_tolerance(tmp_path):
    res = _three_language_results(tmp_path)
    res.pairwise = _pairs(
        [
            ("imp", "en", "ur", 0.9, 0.112, 0.111),  # not a random control: no gap of its own
            ("random", "en", "ur", 0.1130, 0.1120, 0.1110),
            ("random", "en", "zh", 0.1050, 0.1120, 0.1110),  # the largest gap of the layer-wise control: 0.0070
            ("global_random", "en", "ur", 0.1140, 0.1200, 0.1110),  # global: measured against the global null
        ]
    )
    gaps = random_null_gaps(res)
    assert list(gaps["gap"].round(6)) == [0.001, -0.007, 0.003]
    assert gaps["sd"].isna().all()  # the number of prunable weights is unknown without departure counts
    text = random_controls_sentence(gaps)
    assert "layer-wise random masks against the layer-wise null: largest gap 0.0070 (ner at 80 %, en–zh" in text
    assert "0.1050 measured, 0.1120 expected), not within 0.005" in text
    assert "global random masks against the global null: largest gap 0.0030" in text
    assert "0.1140 measured, 0.1110 expected), within 0.005" in text
    res.pairwise, res.cache = res.pairwise.iloc[:1], {}
    assert random_controls_sentence(random_null_gaps(res)) == ""  # no random control drawn: no sentence


def test_jaccard_sd_matches_the_spread_of_random_draws():
    rng, size, kept = np.random.default_rng(0), 4416, 883
    draws = []
    for _ in range(3000):
        a, b = np.zeros(size, bool), np.zeros(size, bool)
        a[rng.choice(size, kept, replace=False)] = b[rng.choice(size, kept, replace=False)] = True
        draws.append((a & b).sum() / (a | b).sum())
    assert jaccard_sd(size, 1 - kept / size) == pytest.approx(np.std(draws), rel=0.1)
    assert math.isnan(jaccard_sd(math.nan, 0.8))


def test_zero_share_flags_the_sparsities_that_prune_only_zeros():
    flagged = zeros_sentence(0.25, (0.1, 0.2, 0.3))
    assert "25.00 %" in flagged and "at 10 % and 20 % sparsity" in flagged and "trivial: pruning zeros" in flagged
    clear = zeros_sentence(0.0, (0.5, 0.8))
    assert "trivial" not in clear and "lowest is 50 %" in clear


def test_paper_numbers_come_from_paper_yaml():
    published = yaml.safe_load(PAPER_YAML.read_text(encoding="utf-8"))
    assert report.PAPER.average_overlap == published["average_overlap"]
    assert report.PAPER.task_names == published["task_names"]
    assert report.PAPER.ranking == "NER 94 % > XNLI 85 % > MLM 68 %"
    for section in ("scores", "transfer", "relative_change", "departures", "departures_groups", "controls"):
        assert "not in the paper" in published["findings"][section].lower(), section


def test_report_labels_the_controls_as_the_study_registers_them():
    """The report names controls from its own mapping (it may not import the study's controls); this keeps the two
    in step, for every control a study draws by default (other tests may register more)."""
    assert set(PruneConfig().controls) <= set(CONTROL_LABELS)
    assert CONTROL_LABELS == {name: CONTROLS[name].label for name in CONTROL_LABELS}


def test_the_report_states_its_training_budget_and_cites_the_budget_curve(tmp_path):
    curve = tmp_path / "curve"
    curve.mkdir()
    (curve / "summary.json").write_text(json.dumps({"sentences": {"ner": "ner: the curve says so."}}))
    study = load_study("params/smoke.yaml", [f"runtime.budget_report={curve}"])
    res = report.load_results(Layout(study, tmp_path / "no-runs-yet"))
    text = budget_sentence(res)
    ner = study.task("ner").imp_train  # 6 steps at 3e-3, no warm-up: 3e-3 × (6 + 5 + … + 1) / 6
    assert f"ner {ner.learning_rate * 3.5:.2g}" in text and text.endswith("ner: the curve says so.")
    assert "curve" not in budget_sentence(report.load_results(Layout(load_study("params/smoke.yaml"), tmp_path)))


def _records(path: Path, num: list[int], den: list[int]) -> str:
    path.write_text(json.dumps({"num": num, "den": den}), encoding="utf-8")
    return str(path)


def test_a_score_whose_interval_reaches_chance_is_flagged_and_one_clear_of_it_is_not(tmp_path):
    """NER's chance is F1 0: a tagger that finds an entity in 3 of 200 sentences has an interval reaching 0; one that
    finds most has not. The interval is the bootstrap of the mean over seeds, beside the t-interval over seeds."""
    res = _three_language_results(tmp_path)
    weak = _records(tmp_path / "weak.json", [2, 2, 2] + [0] * 197, [2] * 200)
    strong = [_records(tmp_path / f"strong{i}.json", [2] * (150 + i) + [0] * (50 - i), [2] * 200) for i in (0, 10)]
    base = {"task": "ner", "lang": "en", "level": 1, "sparsity": 0.5, "density": 0.5}
    res.prune = pd.DataFrame(
        [
            {**base, "seed": 57, "score": 3 / 200, "records": weak},
            {**base, "lang": "ur", "seed": 57, "score": 0.75, "records": strong[0]},
            {**base, "lang": "ur", "seed": 58, "score": 0.8, "records": strong[1]},
        ]
    )
    table = score_intervals(res).set_index("lang")
    assert bool(table.at["en", "at_chance"]) and table.at["en", "low"] == 0.0 < table.at["en", "high"]
    assert not table.at["ur", "at_chance"] and table.at["ur", "low"] > 0.7 and table.at["ur", "seeds"] == 2
    assert table.at["ur", "seed_low"] < 0.775 < table.at["ur", "seed_high"]  # mean of 0.75 and 0.8, t-interval
    assert math.isnan(table.at["en", "seed_low"])  # one seed: no spread to estimate


def test_long_tables_are_folded_and_every_saved_table_links_its_csv(tmp_path):
    rep = Report(results=None, root=tmp_path)
    long = rep.save_table(pd.DataFrame({"lang": ["en"] * (LONG_TABLE + 1), "score": 0.5}), "long")
    short = rep.save_table(pd.DataFrame({"lang": ["en"], "score": [0.123456]}), "short")
    assert (tmp_path / "tables" / "long.csv").exists()
    folded, shown = table_html(long, "a"), table_html(short, "b")
    assert folded.startswith(f"<details><summary>{LONG_TABLE + 1} rows") and 'href="tables/long.csv"' in folded
    assert "<details>" not in shown and 'href="tables/short.csv"' in shown and "0.123" in shown
    assert "overflow-x: auto" in shown  # a wide table scrolls inside its box, not the page
