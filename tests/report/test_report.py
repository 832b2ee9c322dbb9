"""The report, built from a smoke study made in a temp dir by calling the stage functions directly.

Every figure (PNG and PDF), table, summary.json and results.md must exist, and the headline numbers in
summary.json must equal what the raw metrics files give when recomputed here by hand. Two fast tests need no
study: the report imports without torch, and its relative-change table matches a matrix computed by hand.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from subnetworks import report
from subnetworks.core.stats import spearman
from subnetworks.demo.smoke import write_smoke_params
from subnetworks.spec import ModelConfig, StudyConfig, TaskConfig, TransferConfig, load_study
from subnetworks.study.grid import Grid
from subnetworks.study.layout import Layout
from subnetworks.study.stages import run_overlap, run_prune, run_transfer
from subnetworks.study.workspace import Workspace

LANGS = ["en", "ur", "zh"]
PER_TASK_FIGURES = (
    "scores",
    "transfer",
    "relative_change",
    "overlap",
    "overlap_groups",
    "overlap_vs_transfer",
    "controls",
)
TABLES = (
    "data",
    "scores",
    "transfer",
    "relative_change",
    "overlap_pairwise",
    "overlap_average",
    "overlap_layer",
    "overlap_module",
    "overlap_vs_transfer",
    "correlation",
    "controls",
    "stage_seconds",
)
# as before controls.csv listed every control: the table a reader had, kept
CONTROLS_COLUMNS = "task sparsity lang jaccard_with_pretrained random_jaccard threshold ties_at_threshold".split()
CONTROLS_COLUMNS.append("pretrained_ties_at_threshold")
PAPER_YAML = Path(report.__file__).with_name("paper.yaml")


# --- without a study --------------------------------------------------------------------------------------------
def test_report_imports_without_torch_or_the_model_layers():
    """The report reads finished artefacts only: importing it must not load torch, transformers or the stages."""
    code = (
        "import sys, subnetworks.report; "
        "heavy = [m for m in ('torch', 'transformers', 'subnetworks.nn', 'subnetworks.study.workspace', "
        "'subnetworks.study.stages', 'subnetworks.study.controls', 'subnetworks.study.sources') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


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


def test_relative_change_table_matches_a_matrix_computed_by_hand(tmp_path):
    res = _three_language_results(tmp_path)
    assert res.sparsities == [0.5, 0.8] and len(res.missing) > 0
    acc = {
        "en": {"en": 0.8, "ur": 0.6, "zh": 0.4},  # acc[s][t]: the source's mask fine-tuned and scored on t
        "ur": {"en": 0.7, "ur": 0.9, "zh": 0.45},
        "zh": {"en": 0.4, "ur": 0.3, "zh": 0.5},
    }
    rows = [
        {"task": "ner", "source": s, "target": t, "mask": "imp", "sparsity": 0.5, "seed": 57, "score": v}
        for s, row in acc.items()
        for t, v in row.items()
    ]
    rows += [{**r, "sparsity": 0.8} for r in rows if r["source"] != "zh"]  # zh's run at 80 % has not finished
    rows += [{**r, "mask": "random", "score": 0.0} for r in rows if r["source"] == r["target"]]  # not IMP: ignored
    res.transfer = pd.DataFrame(rows)
    table = report.tables.relative_change_table(res)
    at = {(r.sparsity, r.source): r.relative_change for r in table.itertuples()}
    # (acc(s,t) − acc(t,t)) / acc(t,t), mean over the two targets t ≠ s
    assert at[0.5, "en"] == pytest.approx(((0.6 - 0.9) / 0.9 + (0.4 - 0.5) / 0.5) / 2)
    assert at[0.5, "ur"] == pytest.approx(((0.7 - 0.8) / 0.8 + (0.45 - 0.5) / 0.5) / 2)
    assert at[0.5, "zh"] == pytest.approx(((0.4 - 0.8) / 0.8 + (0.3 - 0.9) / 0.9) / 2)
    # at 80 % acc(zh, zh) is unknown, so every source that transfers to zh is NaN, and zh itself is absent
    assert list(table[table["sparsity"] == 0.8]["source"]) == ["en", "ur"]
    assert math.isnan(at[0.8, "en"]) and math.isnan(at[0.8, "ur"])


def test_relative_change_table_is_nan_where_a_targets_own_score_is_zero(tmp_path):
    res = _three_language_results(tmp_path)
    scores = np.array([[0.8, 0.6, 0.4], [0.7, 0.0, 0.45], [0.4, 0.3, 0.5]])  # acc(ur, ur) = 0
    res.transfer = pd.DataFrame(
        [
            {"task": "ner", "source": s, "target": t, "mask": "imp", "sparsity": 0.5, "seed": 57, "score": scores[i, j]}
            for i, s in enumerate(LANGS)
            for j, t in enumerate(LANGS)
        ]
    )
    at = dict(zip(*report.tables.relative_change_table(res)[["source", "relative_change"]].to_numpy().T))
    assert math.isnan(at["en"]) and math.isnan(at["zh"])
    assert at["ur"] == pytest.approx(((0.7 - 0.8) / 0.8 + (0.45 - 0.5) / 0.5) / 2)


def test_paper_numbers_come_from_paper_yaml():
    published = yaml.safe_load(PAPER_YAML.read_text(encoding="utf-8"))
    assert report.PAPER.average_overlap == published["average_overlap"]
    assert report.PAPER.task_names == published["task_names"]
    assert report.PAPER.ranking == "NER 94 % > XNLI 85 % > MLM 68 %"


# --- a finished smoke study ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """A finished smoke study (IMP, transfer, overlap for every task) and its report, built once per session."""
    root = tmp_path_factory.mktemp("report")
    study = load_study(write_smoke_params(root))  # params/smoke.yaml with its assets (en, ur, zh) made under root
    assert list(study.languages) == LANGS
    ws = Workspace.create(study, root / "artifacts")
    for task in study.tasks:
        langs = study.task_languages(task)
        for lang in langs:
            for seed in study.seeds:
                run_prune(ws, task, lang, seed)
        for level in study.transfer_levels:
            for source in langs:
                for seed in study.seeds:
                    run_transfer(ws, task, source, level, seed)
        run_overlap(ws, task)
    sections = report.build(ws.layout, root / "reports")
    return ws.layout, root / "reports", sections


def _summary(reports: Path) -> dict:
    return json.loads((reports / "summary.json").read_text(encoding="utf-8"))


def _close(got, want) -> bool:
    if want is None or (isinstance(want, float) and not math.isfinite(want)):
        return got is None
    return got is not None and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def _transfer_scores(layout: Layout, task: str, level: int) -> dict[tuple[str, str], float]:
    """acc(s, t) read straight from the transfer runs' metrics.json (one seed in the smoke study)."""
    acc = {}
    for source in layout.study.task_languages(task):
        for row in layout.transfer_dir(task, source, level, layout.study.seeds[0]).read_json("metrics.json"):
            if row["mask"] == "imp":
                acc[row["source"], row["target"]] = row["score"]
    return acc


@pytest.mark.slow
def test_every_figure_table_and_summary_exists(smoke):
    layout, reports, _ = smoke
    names = [f"{kind}_{task}" for task in layout.study.tasks for kind in PER_TASK_FIGURES] + ["overlap_average"]
    for name in names:
        png, pdf = reports / "figures" / f"{name}.png", reports / "figures" / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert pdf.read_bytes()[:5] == b"%PDF-", name
        assert b"CreationDate" not in pdf.read_bytes(), name
    for name in TABLES:
        assert (reports / "tables" / f"{name}.csv").stat().st_size > 0, name
    assert set(_summary(reports)) >= {"dense_score", "relative_change", "overlap", "correlation", "missing"}
    assert (reports / "results.md").read_text(encoding="utf-8").startswith("### Results")


@pytest.mark.slow
def test_dense_scores_equal_level_zero_of_each_prune_run(smoke):
    layout, reports, _ = smoke
    dense = _summary(reports)["dense_score"]
    for task in layout.study.tasks:
        assert set(dense[task]) == set(layout.study.task_languages(task))  # xnli: en and ur only
        for lang in layout.study.task_languages(task):
            level0 = layout.prune_dir(task, lang, 57).read_json("metrics.json")["levels"][0]
            assert level0["level"] == 0 and _close(dense[task][lang], level0["score"])


@pytest.mark.slow
def test_relative_change_recomputed_from_transfer_metrics(smoke):
    layout, reports, _ = smoke
    got = _summary(reports)["relative_change"]
    for task in layout.study.tasks:
        langs = layout.study.task_languages(task)
        for level in layout.study.transfer_levels:
            acc = _transfer_scores(layout, task, level)
            per_source = []
            for s in langs:
                terms = [(acc[s, t] - acc[t, t]) / acc[t, t] if acc[t, t] else math.nan for t in langs if t != s]
                per_source.append(sum(terms) / len(terms))
            finite = [v for v in per_source if math.isfinite(v)]
            want = sum(finite) / len(finite) if finite else None
            assert _close(got[task][f"{layout.study.sparsity_of(level):g}"], want), (task, level)


@pytest.mark.slow
def test_overlap_and_correlation_recomputed_from_overlap_tables(smoke):
    layout, reports, _ = smoke
    head = _summary(reports)
    for task in layout.study.tasks:
        pairs = pd.read_csv(layout.overlap_dir(task).file("pairwise.csv"), dtype={"a": str, "b": str, "group": str})
        shared = pd.read_csv(layout.overlap_dir(task).file("shared.csv"), dtype={"group": str})
        points = []
        for level in layout.study.transfer_levels:
            sparsity = layout.study.sparsity_of(level)
            imp = pairs[(pairs["by"] == "all") & (pairs["masks"] == "imp") & (pairs["sparsity"] == sparsity)]
            rnd = pairs[(pairs["by"] == "all") & (pairs["masks"] == "random") & (pairs["sparsity"] == sparsity)]
            all_ = shared[(shared["by"] == "all") & (shared["masks"] == "imp") & (shared["sparsity"] == sparsity)]
            got = head["overlap"][task][f"{sparsity:g}"]
            assert len(imp) and len(rnd) and len(all_)
            assert _close(got["jaccard"], imp["jaccard"].mean())
            assert _close(got["random_expected"], imp["random_jaccard"].mean())
            assert _close(got["random_masks"], rnd["jaccard"].mean())
            assert _close(got["shared_by_all"], all_["jaccard"].mean())
            acc = _transfer_scores(layout, task, level)
            jac = {frozenset((r.a, r.b)): r.jaccard for r in imp.itertuples()}
            for (s, t), score in acc.items():
                change = (score - acc[t, t]) / acc[t, t] if acc[t, t] else math.nan
                if s != t and math.isfinite(change):
                    points.append((jac[frozenset((s, t))], change))
        want = spearman(*zip(*points)) if len(points) >= 3 else math.nan
        assert _close(head["correlation"][task]["all"]["spearman"], want), task
        assert head["correlation"][task]["all"]["n"] == len(points)


@pytest.mark.slow
def test_controls_table_is_the_pretrained_control_of_the_long_controls_csv(smoke):
    layout, reports, _ = smoke
    table = pd.read_csv(reports / "tables" / "controls.csv")
    assert list(table.columns) == CONTROLS_COLUMNS
    for task in layout.study.tasks:
        long = pd.read_csv(layout.overlap_dir(task).file("controls.csv"))
        assert set(long["control"]) == {"random", "pretrained"}
        pretrained = long[long["control"] == "pretrained"]
        mine = table[table["task"] == task]
        assert len(mine) == len(pretrained)  # one seed: one row per (sparsity, language)
        for r in pretrained.itertuples():
            row = mine[(mine["sparsity"] == r.sparsity) & (mine["lang"] == r.lang)].iloc[0]
            assert math.isclose(row["jaccard_with_pretrained"], r.jaccard, rel_tol=1e-5)
            assert row["pretrained_ties_at_threshold"] == r.control_ties_at_threshold
            assert row["ties_at_threshold"] == r.ties_at_threshold


@pytest.mark.slow
def test_module_types_keep_the_order_the_overlap_stage_wrote(smoke):
    layout, reports, _ = smoke
    module = pd.read_csv(reports / "tables" / "overlap_module.csv", dtype={"group": str})
    for task in layout.study.tasks:
        pairs = pd.read_csv(layout.overlap_dir(task).file("pairwise.csv"), dtype={"group": str})
        written = list(dict.fromkeys(pairs[pairs["by"] == "module"]["group"]))
        assert written[:3] == ["query", "key", "value"]
        assert list(dict.fromkeys(module[module["task"] == task]["group"])) == written
    layer = pd.read_csv(reports / "tables" / "overlap_layer.csv", dtype={"group": str})
    groups = list(dict.fromkeys(layer["group"]))
    numeric = [g for g in groups if g.isdigit()]
    assert numeric == sorted(numeric, key=int) and groups[: len(numeric)] == numeric


@pytest.mark.slow
def test_tables_handle_a_task_lacking_a_language(smoke):
    layout, _, _ = smoke
    res = report.load_results(layout)
    assert res.missing == []
    for m in report.tables.transfer_matrices(res, "xnli").values():
        assert list(m.index) == ["en", "ur"] and list(m.columns) == ["en", "ur"]
    assert set(report.tables.controls_table(res).query("task == 'xnli'")["lang"]) == {"en", "ur"}


@pytest.mark.slow
def test_sentences_quote_this_runs_numbers(smoke):
    layout, reports, sections = smoke
    head = _summary(reports)
    text = "\n".join(s.text() for s in sections)
    assert text.count("**Paper:**") == text.count("**This run:**") == len(list((reports / "figures").glob("*.png")))
    mlm = head["relative_change"]["mlm"]
    assert f"{report.pct(mlm['0.5'], signed=True)} at 50 % and {report.pct(mlm['0.8'], signed=True)} at 80 %" in text
    results = (reports / "results.md").read_text(encoding="utf-8")
    assert "CPUs" in results and "| mlm |" in results


@pytest.mark.slow
def test_paper_overlap_in_figure_table_and_sentences_is_paper_yaml(smoke):
    layout, reports, sections = smoke
    published = yaml.safe_load(PAPER_YAML.read_text(encoding="utf-8"))
    kinds = [layout.study.task(t).kind for t in layout.study.tasks]
    want = [published["average_overlap"][kind] for kind in kinds]
    fig = report.figures.plot_average_overlap(report.load_results(layout))
    (diamonds,) = [line for line in fig.axes[0].lines if line.get_marker() == "D"]
    assert list(diamonds.get_ydata()) == want
    table = pd.read_csv(reports / "tables" / "overlap_average.csv").drop_duplicates("task")
    assert dict(zip(table["task"], table["paper_overlap"])) == dict(zip(layout.study.tasks, want))
    text = "\n".join(s.text() for s in sections)
    for kind in kinds:
        overlap = report.pct(published["average_overlap"][kind], digits=0)
        assert f"for {published['task_names'][kind]} the average overlap is {overlap}" in text


@pytest.mark.slow
def test_figures_are_byte_identical_when_redrawn(smoke, tmp_path):
    layout, reports, _ = smoke
    rep = report.Report(report.load_results(layout), tmp_path)
    saved = rep.save_figure(report.figures.plot_overlap(rep.results, "ner"), "overlap_ner")
    assert saved.png.read_bytes() == (reports / "figures" / "overlap_ner.png").read_bytes()
    assert saved.pdf.read_bytes() == (reports / "figures" / "overlap_ner.pdf").read_bytes()


@pytest.mark.slow
def test_report_of_an_unfinished_study_lists_what_is_missing(smoke, tmp_path):
    layout, _, _ = smoke
    empty = Layout(layout.study, tmp_path / "nothing-yet")
    rep = report.open_report(empty, tmp_path / "reports")
    report.summary_section(rep)
    head = _summary(tmp_path / "reports")
    assert len(head["missing"]) == len(rep.results.missing) > 0
    assert head["missing"] == [run.label for run in Grid(empty)]  # every run, named as the grid names it
    assert head["relative_change"] == {} and head["overlap"] == {}
