"""A figure redrawn for some tasks, sparsities and languages (what a reader changes in 05_report's cells): the view
keeps exactly the rows asked for, its numbers are recomputed from them, it is written beside the study's report and
never over it, and names the study does not have are refused with the choices. The smoke study:
tests/report/conftest.py.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import nbformat
import papermill
import pytest

from subnetworks import report
from subnetworks.report.overlap_tables import overlap_matrices
from subnetworks.report.tables import transfer_matrices
from subnetworks.spec import ConfigError

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rep(smoke):
    layout, reports, _ = smoke
    return report.open_report(layout, reports)


def test_a_view_keeps_only_the_rows_asked_for(rep):
    res = rep.results
    task, (low, high) = res.tasks[0], res.sparsities
    view = res.view(tasks=[task], sparsities=[low], languages=["en", "ur"])
    assert view.tasks == [task] and view.sparsities == [low] and view.languages(task) == ["en", "ur"]
    assert set(view.transfer["task"]) == {task} and set(view.transfer["sparsity"]) == {low}
    assert set(view.transfer["source"]) | set(view.transfer["target"]) <= {"en", "ur"}
    pairs = view.pairwise
    assert len(pairs) and set(pairs["a"]) | set(pairs["b"]) <= {"en", "ur"} and set(pairs["sparsity"]) == {low}
    assert set(view.prune["sparsity"]) == set(res.prune["sparsity"]) - {high}  # the dense level stays
    kept = res.transfer[
        (res.transfer["task"] == task)
        & (res.transfer["sparsity"] == low)
        & res.transfer["source"].isin(["en", "ur"])
        & res.transfer["target"].isin(["en", "ur"])
    ]
    assert len(view.transfer) == len(kept) > 0
    assert res.view() is res and len(res.transfer) > len(view.transfer)  # the study's results are untouched


def test_a_view_recomputes_its_matrices_from_its_rows(rep, raw):
    task, low = rep.results.tasks[0], rep.results.sparsities[0]
    view = rep.results.view(sparsities=[low], languages=["en", "zh"])
    (matrix,) = transfer_matrices(view, task).values()
    acc = raw.transfer(task, 1)
    assert list(matrix.index) == list(matrix.columns) == ["en", "zh"]
    for (s, t), score in acc.items():
        if {s, t} <= {"en", "zh"}:
            assert math.isclose(matrix.at[s, t], score)
    (agreement,) = overlap_matrices(view, task, "agreement").values()
    rows = raw.overlap(task, "pairwise")
    rows = rows[(rows["by"] == "all") & (rows["masks"] == "imp") & (rows["sparsity"] == low)]
    pair = rows[rows["a"].isin(["en", "zh"]) & rows["b"].isin(["en", "zh"]) & (rows["a"] != rows["b"])]
    assert len(pair) == len(raw.study.seeds)  # one row a seed
    assert math.isclose(agreement.at["en", "zh"], pair["agreement"].mean())  # mean over seeds


def test_a_redrawn_figure_goes_beside_the_report_not_over_it(rep):
    task = rep.results.tasks[0]
    study_png = rep.figures / f"transfer_{task}.png"
    before = study_png.read_bytes()
    section = report.transfer_section(rep, tasks=[task], languages=["en", "ur"])
    (saved,) = [b for b in section.blocks if isinstance(b, report.output.SavedFigure)]
    assert saved.png == rep.root / "views" / f"{task}_en_ur" / "figures" / f"transfer_{task}.png"
    assert saved.png.exists() and study_png.read_bytes() == before
    assert "en" in section.text() and f"{task}:" in section.text()


def test_the_overlap_heatmap_draws_the_measure_asked_for(rep):
    task = rep.results.tasks[0]
    section = report.overlap_section(rep, measure="agreement", tasks=[task])
    (saved,) = [b for b in section.blocks if isinstance(b, report.output.SavedFigure)]
    assert saved.png.name == f"overlap_{task}_agreement.png" and "agreement" in saved.alt
    assert "mean pairwise agreement" in section.text()
    with pytest.raises(ValueError, match="unknown overlap measure 'dice'.*jaccard"):
        report.overlap_section(rep, measure="dice")


@pytest.mark.parametrize(
    ("view", "message"),
    [
        ({"tasks": ["pos"]}, "unknown task 'pos'"),
        ({"languages": ["xx"]}, r"unknown language\(s\) \['xx'\]: this study has"),
        ({"sparsities": [0.3]}, "not a level of prune.schedule"),
    ],
)
def test_names_the_study_does_not_have_are_refused_with_the_choices(rep, view, message):
    with pytest.raises(ConfigError, match=message):
        report.scores_section(rep, **view)


def test_every_section_shows_what_a_cell_can_change():
    for make in report.SECTIONS:
        names = inspect.signature(make).parameters
        assert list(names)[0] == "rep" and {"tasks", "sparsities", "languages"} <= set(names), make.__name__
    assert inspect.signature(report.overlap_section).parameters["measure"].default == "jaccard"


def test_the_report_notebook_redraws_every_figure_for_a_view(smoke, tmp_path):
    """05_report with -p tasks/languages/sparsities: every cell runs, and everything it writes goes under views/."""
    layout, _, _ = smoke
    task, low = list(layout.study.tasks)[0], layout.study.transfer.sparsities[0]
    out = tmp_path / "05.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "05_report.ipynb"),
        str(out),
        kernel_name="python3",
        parameters={
            "params_file": str(layout.artifacts.parent / "smoke.yaml"),  # conftest's write_smoke_params
            "artifacts": str(layout.artifacts),
            "reports_dir": str(tmp_path / "reports"),
            "tasks": [task],
            "sparsities": [low],
            "languages": ["en", "zh"],
        },
        progress_bar=False,
        cwd=str(ROOT),
    )
    executed = nbformat.read(str(out), as_version=4)
    assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    written = [p.relative_to(tmp_path / "reports") for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    view = f"{task}_sp{low:g}_en_zh"
    assert written and all(p.parts[:2] == ("views", view) for p in written), written[:5]
    assert (tmp_path / "reports" / "views" / view / "figures" / f"transfer_{task}.png").exists()
