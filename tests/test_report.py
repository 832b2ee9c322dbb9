"""The report, built from a smoke study made in a temp dir by calling the stage functions directly.

Every figure (PNG and PDF), table, summary.json and results.md must exist, and the headline numbers in
summary.json must equal what the raw metrics files give when recomputed here by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from subnetworks import report
from subnetworks.config import load_study
from subnetworks.overlap import spearman
from subnetworks.smoke import write_smoke_params
from subnetworks.stages import Context, run_overlap, run_prune, run_transfer

LANGS = ["en", "ur", "zh"]
PER_TASK_FIGURES = ("scores", "transfer", "relative_change", "overlap", "overlap_groups", "overlap_vs_transfer",
                    "controls")
TABLES = ("data", "scores", "transfer", "relative_change", "overlap_pairwise", "overlap_average", "overlap_layer",
          "overlap_module", "overlap_vs_transfer", "correlation", "controls", "stage_seconds")


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """A finished smoke study (IMP, transfer, overlap for every task) and its report, built once per session."""
    root = tmp_path_factory.mktemp("report")
    study = load_study(write_smoke_params(root))  # params/smoke.yaml with its assets (en, ur, zh) made under root
    assert list(study.languages) == LANGS
    ctx = Context.create(study, root / "artifacts")
    for task in study.tasks:
        langs = study.task_languages(task)
        for lang in langs:
            for seed in study.seeds:
                run_prune(ctx, task, lang, seed)
        for sparsity in study.transfer.sparsities:
            for source in langs:
                for seed in study.seeds:
                    run_transfer(ctx, task, source, sparsity, seed)
        run_overlap(ctx, task)
    sections = report.build(ctx, root / "reports")
    return ctx, root / "reports", sections


def _summary(reports: Path) -> dict:
    return json.loads((reports / "summary.json").read_text(encoding="utf-8"))


def _close(got, want) -> bool:
    if want is None or (isinstance(want, float) and not math.isfinite(want)):
        return got is None
    return got is not None and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def _transfer_scores(ctx: Context, task: str, sparsity: float) -> dict[tuple[str, str], float]:
    """acc(s, t) read straight from the transfer runs' metrics.json (one seed in the smoke study)."""
    acc = {}
    for source in ctx.study.task_languages(task):
        for row in ctx.transfer_dir(task, source, sparsity, ctx.study.seeds[0]).read_json("metrics.json"):
            if row["mask"] == "imp":
                acc[row["source"], row["target"]] = row["score"]
    return acc


def test_every_figure_table_and_summary_exists(smoke):
    ctx, reports, _ = smoke
    names = [f"{kind}_{task}" for task in ctx.study.tasks for kind in PER_TASK_FIGURES] + ["overlap_average"]
    for name in names:
        png, pdf = reports / "figures" / f"{name}.png", reports / "figures" / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert pdf.read_bytes()[:5] == b"%PDF-", name
        assert b"CreationDate" not in pdf.read_bytes(), name
    for name in TABLES:
        assert (reports / "tables" / f"{name}.csv").stat().st_size > 0, name
    assert set(_summary(reports)) >= {"dense_score", "relative_change", "overlap", "correlation", "missing"}
    assert (reports / "results.md").read_text(encoding="utf-8").startswith("### Results")


def test_dense_scores_equal_level_zero_of_each_prune_run(smoke):
    ctx, reports, _ = smoke
    dense = _summary(reports)["dense_score"]
    for task in ctx.study.tasks:
        assert set(dense[task]) == set(ctx.study.task_languages(task))  # xnli: en and ur only
        for lang in ctx.study.task_languages(task):
            level0 = ctx.prune_dir(task, lang, 57).read_json("metrics.json")["levels"][0]
            assert level0["level"] == 0 and _close(dense[task][lang], level0["score"])


def test_relative_change_recomputed_from_transfer_metrics(smoke):
    ctx, reports, _ = smoke
    got = _summary(reports)["relative_change"]
    for task in ctx.study.tasks:
        langs = ctx.study.task_languages(task)
        for sparsity in ctx.study.transfer.sparsities:
            acc = _transfer_scores(ctx, task, sparsity)
            per_source = []
            for s in langs:
                terms = [(acc[s, t] - acc[t, t]) / acc[t, t] if acc[t, t] else math.nan for t in langs if t != s]
                per_source.append(sum(terms) / len(terms))
            finite = [v for v in per_source if math.isfinite(v)]
            want = sum(finite) / len(finite) if finite else None
            assert _close(got[task][f"{sparsity:g}"], want), (task, sparsity)


def test_overlap_and_correlation_recomputed_from_overlap_tables(smoke):
    ctx, reports, _ = smoke
    head = _summary(reports)
    for task in ctx.study.tasks:
        pairs = pd.read_csv(ctx.overlap_dir(task).file("pairwise.csv"), dtype={"a": str, "b": str, "group": str})
        shared = pd.read_csv(ctx.overlap_dir(task).file("shared.csv"), dtype={"group": str})
        points = []
        for sparsity in ctx.study.transfer.sparsities:
            imp = pairs[(pairs["by"] == "all") & (pairs["masks"] == "imp") & (pairs["sparsity"] == sparsity)]
            rnd = pairs[(pairs["by"] == "all") & (pairs["masks"] == "random") & (pairs["sparsity"] == sparsity)]
            all_ = shared[(shared["by"] == "all") & (shared["masks"] == "imp") & (shared["sparsity"] == sparsity)]
            got = head["overlap"][task][f"{sparsity:g}"]
            assert _close(got["jaccard"], imp["jaccard"].mean())
            assert _close(got["random_expected"], imp["random_jaccard"].mean())
            assert _close(got["random_masks"], rnd["jaccard"].mean())
            assert _close(got["shared_by_all"], all_["jaccard"].mean())
            acc = _transfer_scores(ctx, task, sparsity)
            jac = {frozenset((r.a, r.b)): r.jaccard for r in imp.itertuples()}
            for (s, t), score in acc.items():
                change = (score - acc[t, t]) / acc[t, t] if acc[t, t] else math.nan
                if s != t and math.isfinite(change):
                    points.append((jac[frozenset((s, t))], change))
        want = spearman(*zip(*points)) if len(points) >= 3 else math.nan
        assert _close(head["correlation"][task]["all"]["spearman"], want), task
        assert head["correlation"][task]["all"]["n"] == len(points)


def test_tables_handle_a_task_lacking_a_language(smoke):
    ctx, _, _ = smoke
    res = report.load_results(ctx)
    assert res.missing == []
    for m in report.transfer_matrices(res, "xnli").values():
        assert list(m.index) == ["en", "ur"] and list(m.columns) == ["en", "ur"]
    assert set(report.controls_table(res).query("task == 'xnli'")["lang"]) == {"en", "ur"}


def test_sentences_quote_this_runs_numbers(smoke):
    ctx, reports, sections = smoke
    head = _summary(reports)
    text = "\n".join(s.text() for s in sections)
    assert text.count("**Paper:**") == text.count("**This run:**") == len(list((reports / "figures").glob("*.png")))
    mlm = head["relative_change"]["mlm"]
    assert f"{report.pct(mlm['0.5'], signed=True)} at 50 % and {report.pct(mlm['0.8'], signed=True)} at 80 %" in text
    results = (reports / "results.md").read_text(encoding="utf-8")
    assert "CPUs" in results and "| mlm |" in results


def test_figures_are_byte_identical_when_redrawn(smoke, tmp_path):
    ctx, reports, _ = smoke
    rep = report.Report(report.load_results(ctx), tmp_path)
    saved = rep.save_figure(report.plot_overlap(rep.results, "ner"), "overlap_ner")
    assert saved.png.read_bytes() == (reports / "figures" / "overlap_ner.png").read_bytes()
    assert saved.pdf.read_bytes() == (reports / "figures" / "overlap_ner.pdf").read_bytes()


def test_report_of_an_unfinished_study_lists_what_is_missing(smoke, tmp_path):
    ctx, _, _ = smoke
    empty = Context.create(ctx.study, tmp_path / "nothing-yet")
    rep = report.open_report(empty, tmp_path / "reports")
    report.summary_section(rep)
    head = _summary(tmp_path / "reports")
    assert len(head["missing"]) == len(rep.results.missing) > 0
    assert head["relative_change"] == {} and head["overlap"] == {}
