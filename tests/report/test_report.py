"""The report of a finished smoke study (tests/report/conftest.py): every figure (PNG and PDF), table, summary.json
and results.md exists, figures redraw byte for byte, sentences quote this run's numbers and the paper's, a task
lacking a language and an unfinished study are handled. One fast test needs no study: the report imports without
torch. The numbers are recomputed by hand in test_report_numbers.py, hand-fed tables in test_report_tables.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.text import Text

from subnetworks import report
from subnetworks.report.figures import figure, heatmap, heatmap_panel
from subnetworks.report.provenance import commits_sentence
from subnetworks.report.verdict_figures import plot_verdicts
from subnetworks.spec import git_commit
from subnetworks.study.grid import Grid
from subnetworks.study.layout import Layout

PER_TASK_FIGURES = (
    "scores",
    "transfer",
    "relative_change",
    "departures",
    "departures_groups",
    "overlap",
    "overlap_groups",
    "overlap_vs_transfer",
    "controls",
)
TABLES = (
    "data",
    "scores",
    "transfer",
    "transfer_controls",
    "relative_change",
    "departures",
    "departure_counts",
    "overlap_pairwise",
    "overlap_average",
    "random_null_gaps",
    "overlap_layer",
    "overlap_module",
    "overlap_vs_transfer",
    "correlation",
    "controls",
    "stage_seconds",
)
PAPER_YAML = Path(report.__file__).with_name("paper.yaml")


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


def _summary(reports: Path) -> dict:
    return json.loads((reports / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_every_figure_table_and_summary_exists(smoke):
    layout, reports, _ = smoke
    names = [f"{kind}_{task}" for task in layout.study.tasks for kind in PER_TASK_FIGURES]
    names += ["overlap_average", "verdicts"]
    for name in names:
        png, pdf = reports / "figures" / f"{name}.png", reports / "figures" / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert pdf.read_bytes()[:5] == b"%PDF-", name
        assert b"CreationDate" not in pdf.read_bytes(), name
    for name in TABLES:
        assert (reports / "tables" / f"{name}.csv").stat().st_size > 0, name
    keys = {"dense_score", "scores", "relative_change", "relative_change_vs_pretrained", "overlap", "random_nulls"}
    assert set(_summary(reports)) >= keys | {"correlation", "missing", "theta0_zero_share"}
    assert (reports / "results.md").read_text(encoding="utf-8").startswith("### Results")


@pytest.mark.slow
def test_module_types_keep_the_order_the_overlap_stage_wrote(smoke):
    layout, reports, _ = smoke
    for table in ("overlap_module", "departures"):
        groups = pd.read_csv(reports / "tables" / f"{table}.csv", dtype={"group": str})
        if "by" in groups:
            groups = groups[groups["by"] == "module"]
        for task in layout.study.tasks:
            pairs = pd.read_csv(layout.overlap_dir(task).file("pairwise.csv"), dtype={"group": str})
            written = list(dict.fromkeys(pairs[pairs["by"] == "module"]["group"]))
            assert written[:3] == ["query", "key", "value"]
            assert list(dict.fromkeys(groups[groups["task"] == task]["group"])) == written, table
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
    for m in report.tables.control_matrices(res, "xnli").values():
        assert list(m.index) == ["pretrained", "random", "global_random"] and list(m.columns) == ["en", "ur"]
    assert set(report.overlap_tables.controls_table(res).query("task == 'xnli'")["lang"]) == {"en", "ur"}
    counts = report.overlap_tables.departure_counts_table(res)
    assert set(counts.query("task == 'xnli'")["lang"]) == {"en", "ur"}


@pytest.mark.slow
def test_transfer_heatmap_puts_the_controls_under_the_sources_on_one_scale(smoke):
    layout, _, _ = smoke
    res = report.load_results(layout)
    fig = report.figures.plot_transfer(res, "ner")
    panels = [ax for ax in fig.axes if ax.collections and ax.get_title().endswith("sparsity")]
    assert len(panels) == len(res.sparsities)
    assert [bool(ax.get_ylabel()) for ax in panels] == [True] + [False] * (len(panels) - 1)  # one shared y label
    for ax in panels:
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == ["en", "ur", "zh", "P", "layer-wise random", "global random"]
        (line,) = [line for line in ax.lines if line.get_linewidth() > 2]  # the line between sources and controls
        assert list(line.get_ydata()) == [3, 3]
    assert len({ax.collections[0].norm.vmin for ax in panels}) == 1
    assert len({ax.collections[0].norm.vmax for ax in panels}) == 1


@pytest.mark.slow
def test_sentences_quote_this_runs_numbers(smoke):
    layout, reports, sections = smoke
    head = _summary(reports)
    text = "\n".join(s.text() for s in sections)
    figures = [p for p in (reports / "figures").glob("*.png") if p.name != "verdicts.png"]  # under its own table
    assert text.count("**Paper:**") == text.count("**This run:**") == len(figures)
    for measure, before in (
        ("relative_change", "over off-chance cells"),
        ("relative_change_vs_pretrained", "P on the target"),
    ):
        bounds = head["relative_change_interval"][measure]

        def quoted(s: str, measure=measure, bounds=bounds) -> str:
            low, high = (report.pct(bounds[end]["ner"][s], signed=True) for end in ("low", "high"))
            return f"{report.pct(head[measure]['ner'][s], signed=True)} [{low}, {high}] at {float(s) * 100:.0f} %"

        assert f"{before} {quoted('0.5')} and {quoted('0.8')}" in text
    ner = head["overlap"]["ner"]["0.5"]
    assert f"excess {ner['excess']:.2f} (band {ner['excess_band']:.2f})" in text
    # smoke's transfer runs train for fewer steps than IMP: the transfer controls are the controls trained so too
    rows = layout.prune_dir("ner", "en", 57).read_json("metrics.json")["controls"]
    (as_transfer,) = [r for r in rows if (r["control"], r["level"], r["training"]) == ("pretrained", 1, "transfer")]
    res = report.load_results(layout)
    assert report.tables.control_matrices(res, "ner")[0.5].at["pretrained", "en"] == as_transfer["score"]
    results = (reports / "results.md").read_text(encoding="utf-8")
    assert "CPUs" in results and "| mlm |" in results and "pre-trained magnitude (P)" in results


@pytest.mark.slow
def test_paper_overlap_in_figure_table_and_sentences_is_paper_yaml(smoke):
    layout, reports, sections = smoke
    published = yaml.safe_load(PAPER_YAML.read_text(encoding="utf-8"))
    kinds = [layout.study.task(t).kind for t in layout.study.tasks]
    want = [published["average_overlap"][kind] for kind in kinds]
    fig = report.overlap_figures.plot_average_overlap(report.load_results(layout))
    (diamonds,) = [line for line in fig.axes[0].lines if line.get_marker() == "D"]
    assert list(diamonds.get_ydata()) == want
    table = pd.read_csv(reports / "tables" / "overlap_average.csv").drop_duplicates("task")
    assert dict(zip(table["task"], table["paper_overlap"])) == dict(zip(layout.study.tasks, want))
    text = "\n".join(s.text() for s in sections)
    for kind in kinds:
        overlap = report.pct(published["average_overlap"][kind], digits=0)
        assert f"for {published['task_names'][kind]} the average overlap is {overlap}" in text
    assert text.count("Not in the paper") >= len(kinds)  # the controls' sections say so


@pytest.mark.slow
@pytest.mark.parametrize("plot, name", [("plot_overlap", "overlap_ner"), ("plot_departures", "departures_ner")])
def test_figures_are_byte_identical_when_redrawn(smoke, tmp_path, plot, name):
    layout, reports, _ = smoke
    rep = report.Report(report.load_results(layout), tmp_path)
    saved = rep.save_figure(getattr(report.overlap_figures, plot)(rep.results, "ner"), name)
    assert saved.png.read_bytes() == (reports / "figures" / f"{name}.png").read_bytes()
    assert saved.pdf.read_bytes() == (reports / "figures" / f"{name}.pdf").read_bytes()


@pytest.mark.slow
def test_report_of_an_unfinished_study_lists_what_is_missing(smoke, tmp_path):
    layout, _, _ = smoke
    empty = Layout(layout.study, tmp_path / "nothing-yet")
    rep = report.open_report(empty, tmp_path / "reports")
    sections = [make(rep) for make in report.SECTIONS]  # every section copes with no finished run
    assert all(isinstance(s, report.Section) for s in sections)
    head = _summary(tmp_path / "reports")
    assert len(head["missing"]) == len(rep.results.missing) > 0
    assert head["missing"] == [run.label for run in Grid(empty)]  # every run, named as the grid names it
    assert head["relative_change"] == head["relative_change_vs_pretrained"] == head["overlap"] == {}
    assert head["random_nulls"] == {} and head["theta0_zero_share"] is None
    assert not np.any([p.suffix == ".png" for p in (tmp_path / "reports").rglob("*")])


@pytest.mark.slow
def test_seeds_find_different_masks(smoke):
    """Each seed changes the head's initialisation and the batch order, so IMP finds another mask (the same seed
    finds the same one: tests/run/test_reliability.py reruns killed studies to identical masks)."""
    layout, _, _ = smoke
    for task in layout.study.tasks:
        first, second = (layout.mask_path(task, "en", seed, 1).read_bytes() for seed in layout.study.seeds[:2])
        assert first != second, task


def test_the_report_notebook_shows_every_section_in_the_reports_order():
    notebook = json.loads((Path(__file__).parents[2] / "notebooks" / "05_report.ipynb").read_text(encoding="utf-8"))
    shown = [
        line.split("report.")[2].split("(")[0]
        for cell in notebook["cells"]
        for line in cell["source"]
        if line.startswith("report.show(report.")
    ]
    assert shown == [make.__name__ for make in report.SECTIONS]  # build() and the HTML page say the same


def test_what_was_run_lists_every_training_setting_and_the_code_of_the_runs(smoke):
    layout, reports, sections = smoke
    section = next(s for s in sections if s.title == "What was run")
    settings = pd.read_csv(reports / "tables" / "training_settings.csv")
    assert len(settings) == 2 * len(layout.study.tasks) and set(settings.training) == {"IMP rounds", "transfer"}
    ner = settings[(settings.task == "ner") & (settings.training == "IMP rounds")].iloc[0]
    cfg = layout.study.task("ner").imp_train
    assert (ner.steps, ner.batch, float(ner["learning rate"])) == (cfg.max_steps, cfg.batch_size, cfg.learning_rate)
    assert "**Seeds:** 57, 58 (IMP at every seed; controls scored at 57; transfer at 57)" in section.text()
    assert "**Code:** every one of the" in section.text() and "**Machine:**" in section.text()
    assert f"drawn by the code at commit `{git_commit()[:10]}`" in section.text()


def test_a_report_mixing_code_versions_names_the_runs_of_each():
    seconds = pd.DataFrame(
        {
            "run": ["data/ner/en", "prune/ner/en/seed57", "transfer/xnli/en/sp0.5/seed57"],
            "commit": ["a" * 40] * 2 + ["b" * 40],
        }
    )
    text = commits_sentence(SimpleNamespace(results=SimpleNamespace(stage_seconds=seconds)))
    assert text == (
        "**Code:** the runs come from 2 commits: `aaaaaaaaaa`: 2 runs (data/ner/en, prune/ner/en/seed57); "
        "`bbbbbbbbbb`: 1 runs (transfer/xnli/en/sp0.5/seed57)."
    )


def test_limitations_are_written_from_the_numbers(smoke):
    layout, reports, sections = smoke
    text = next(s for s in sections if s.title == "Limitations").text()
    controls = pd.read_csv(reports / "tables" / "controls.csv")
    ner = controls[(controls.task == "ner") & (controls.sparsity == 0.5)].set_index("lang")["jaccard_with_pretrained"]
    langs = list(ner.index)
    floor = max(0.0, min(ner[a] + ner[b] - 1 for i, a in enumerate(langs) for b in langs[i + 1 :]))
    assert (
        f"ner at 50 %: Jaccard with P {ner.min():.3f}–{ner.max():.3f}, so P alone implies pairwise overlaps of at "
        f"least {floor:.3f}" in text
    )
    assert "**At chance**" in text and "**Test sets:** the smallest per task: mlm 24, ner 32, xnli 32" in text
    assert "transfer at seed(s) 57 and the controls at 57" in text
    assert [s.title for s in sections][-3:] == ["Limitations", "The paper's numbers", "Summary"]


def test_the_verdict_figure_draws_the_verdicts_numbers(smoke, raw):
    """Panel (c): the other-language pairs' Jaccard per task (mean over the pairs, from the overlap stage's rows)
    beside the paper's overlap; panel (e): the same language at two seeds as the noise floor."""
    layout, _, _ = smoke
    fig = plot_verdicts(report.load_results(layout), "other_seed")
    transfer, overlap, excess = fig.axes[:3]
    assert [ax.get_title() for ax in (transfer, overlap, excess)] == [
        "(a, b) transfer",
        "(c) overlap by task",
        "(e) beyond pre-training",
    ]
    tasks = list(layout.study.tasks)
    drawn = {tuple(np.round(np.asarray(line.get_ydata(), float), 9)) for line in overlap.lines}
    for sparsity in (0.5, 0.8):
        means = []
        for task in tasks:
            rows = raw.overlap(task, "departures")
            rows = rows[(rows["by"] == "all") & (rows["pair"] == "other_seed") & (rows["sparsity"] == sparsity)]
            means.append(rows["jaccard"].mean())
        assert tuple(np.round(means, 9)) in drawn, (sparsity, means, drawn)
    paper = [report.PAPER.average_overlap[layout.study.task(t).kind] for t in tasks]
    assert tuple(np.round(paper, 9)) in drawn
    assert any(line.get_marker() == "_" for line in excess.lines)  # the noise floor


def test_the_papers_numbers_name_their_source_measure_and_this_runs_value_in_each_measure(smoke, raw):
    layout, reports, sections = smoke
    text = next(s for s in sections if s.title == "The paper's numbers").text()
    assert "doi:10.18653/v1/2022.emnlp-main.513" in text and "NER 94 % > XNLI 85 % > MLM 68 %" in text
    assert "were not checked here" in text  # what could not be checked offline is said, not guessed
    assert "get_mbert_mask_ones_overlap" in text and "mask_sparsity_overlap" in text
    table = pd.read_csv(reports / "tables" / "paper_numbers.csv").set_index("task")
    for task in layout.study.tasks:
        shared = raw.overlap(task, "shared")
        shared = shared[(shared["masks"] == "imp") & (shared["by"] == "all") & (shared["sparsity"] == 0.8)]
        assert len(shared) == len(raw.study.seeds)  # the CSV keeps 6 significant digits: rel=1e-5 below
        assert table.at[task, "|AND| / |OR| at 80 %"] == pytest.approx(shared["jaccard"].mean(), rel=1e-5)
        assert table.at[task, "agreement at 80 %"] == pytest.approx(shared["agreement"].mean(), rel=1e-5)
    assert table.at["ner", "paper"] == 0.94 and table.at["mlm", "paper's task"] == "MLM"


def test_representation_similarity_section_averages_the_stage_rows(smoke):
    layout, reports, sections = smoke
    section = next(s for s in sections if s.title == "Representation similarity on parallel sentences")
    assert [b.png.name for b in section.blocks if hasattr(b, "png")] == [
        f"similarity_{t}.png" for t in layout.study.tasks
    ]
    table = pd.read_csv(reports / "tables" / "similarity_layer.csv")
    raw = pd.concat(
        pd.read_csv(layout.overlap_dir(task).file("similarity.csv")) for task in layout.study.tasks
    )  # smoke: corpus xnli (en, ur), IMP at seeds 57 and 58, controls at 57
    imp = raw[(raw.task == "ner") & (raw.masks == "imp") & (raw.sparsity == 0.5) & (raw.layer == 1)]
    cross, same = imp[imp.pair == "other_seed"], imp[imp.pair == "same_language"]
    assert len(cross) == 2 and len(same) == 2  # en@57-ur@58, en@58-ur@57; en@57-en@58, ur@57-ur@58
    row = table[(table.task == "ner") & (table.masks == "imp") & (table.sparsity == 0.5) & (table.layer == 1)].iloc[0]
    assert row.cka == pytest.approx(cross.cka.mean()) and row.pairs == 2  # two seeds, other-seed pairs only
    reference = table[(table.task == "ner") & (table.masks == "imp, same language") & (table.sparsity == 0.5)]
    assert reference.set_index("layer").loc[1, "cka"] == pytest.approx(same.cka.mean())
    assert set(table.masks) == {"dense", "imp", "imp, same language", "pretrained", "random", "global_random"}
    text = section.text()
    assert "one language at two seeds" in text and "shuffled null ≤" in text
    assert "IMP is" not in text  # one pair of seeds: no interval, so no verdict against P
    limits = next(s for s in sections if s.title == "Limitations").text()
    assert "**Representation similarity** is measured on θ0 with each mask applied" in limits
    assert "on 16 parallel sentences of `xnli`'s test split" in limits


@pytest.mark.parametrize("languages", [2, 9])
def test_heatmap_labels_stay_on_the_figure_with_long_row_labels(languages):
    """Nine sources over three control rows named in words: the y label once ran off the figure's left edge."""
    langs = [f"l{i}" for i in range(languages)]
    rows = [*langs, "P", "layer-wise random", "global random"]
    matrix = pd.DataFrame(np.linspace(0, 1, len(rows) * languages).reshape(len(rows), languages), rows, langs)
    fig, axes = figure(2, *heatmap_panel(matrix))
    for ax in axes:
        heatmap(ax, matrix, "50 % sparsity", 0.0, 1.0, "viridis")
        ax.set_ylabel("source s (mask found on); under the line: controls")
    fig.canvas.draw()
    renderer, page = fig.canvas.get_renderer(), fig.bbox
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    outside = [
        t.get_text()
        for t in texts
        if (box := t.get_window_extent(renderer)).x0 < page.x0 - 1 or box.x1 > page.x1 + 1 or box.y0 < page.y0 - 1
    ]
    assert not outside, outside
