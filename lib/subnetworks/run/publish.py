"""The report as people read it: 05_report executed and converted to one self-contained HTML file (code hidden),
and its headline numbers copied into the README where the study asks for it (the demo)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from ..core.atomic import atomic_write_bytes
from ..spec import StudyConfig, repo_root
from ..study.layout import Layout
from .browser import chromium, screenshot
from .kernel import SharedKernel
from .stage_runs import EXECUTED, NOTEBOOKS, REPORT, StageFailed, reports_dir

README_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
PICTURE = "report-top.png"  # the report's first screens, shown at the top of the README
TITLES = {"05_report": "Language-neutral sub-networks", "06_budget": "Sub-networks and the training budget"}
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)
_NEEDS_NETWORK = re.compile(r"https?://|MathJax")


def render_report(
    layout: Layout, params_file: Path, kernel: SharedKernel, reports: str | Path = "", notebook: str = "05_report"
) -> Path:
    """Execute a report notebook (05_report, or 06_budget for the budget curve) into the artefacts and convert it
    to ``report.html`` in the reports directory."""
    root = reports_dir(layout.study, reports)
    root.mkdir(parents=True, exist_ok=True)
    executed = layout.artifacts / REPORT / (EXECUTED if notebook == "05_report" else f"{notebook}.ipynb")
    executed.parent.mkdir(parents=True, exist_ok=True)
    parameters = {"params_file": str(params_file), "artifacts": str(layout.artifacts), "reports_dir": str(root)}
    try:
        kernel.execute(NOTEBOOKS / f"{notebook}.ipynb", executed, parameters)
    except papermill.PapermillExecutionError as err:
        raise StageFailed(f"report failed with {err.ename}: {err.evalue}\n  executed notebook: {executed}") from None
    exporter = HTMLExporter(  # the page shows what the cells print; the notebook's own notes (markdown) stay in it
        exclude_input=True,
        exclude_markdown=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    title = f"{TITLES.get(notebook, notebook)}: the {layout.study.name} study"
    nb = _with_stable_cell_ids(nbformat.read(str(executed), as_version=4))
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    html = root / "report.html"
    atomic_write_bytes(html, offline_html(body).encode("utf-8"))
    return html


def _with_stable_cell_ids(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Papermill gives the cell it injects a random id, which the HTML carries: name it after its role instead,
    so two renders of the same artefacts are the same page."""
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.id = "injected-parameters"
    return nb


def offline_html(html: str) -> str:
    """``html`` without the scripts nbconvert's page loads from CDNs (require.js, MathJax, mermaid) or configures
    for them: the report uses none, and with no network they fail, silently or with a console error."""
    return _SCRIPT.sub(lambda m: "" if _NEEDS_NETWORK.search(m.group(0)) else m.group(0), html)


def update_readme(results: Path, readme: Path | None = None) -> None:
    """Replace the README's results section by the report's ``results.md``: numbers come from the run, not a person."""
    readme = readme or repo_root() / "README.md"
    start, end = README_MARKERS
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text or not results.exists():
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{results.read_text(encoding='utf-8').strip()}\n{end}{tail}", encoding="utf-8")


def publish_results(study: StudyConfig, html: Path, readme: Path | None = None) -> None:
    """Copy the report's ``results.md`` into the README when the study asks for it (the demo), after ``run`` and
    after ``report`` alike, so the README never shows older numbers than the report; with Chromium at hand, the
    README's picture of the report's first screens too (``report-top.png`` beside the page)."""
    if study.runtime.readme_results:
        update_readme(html.parent / "results.md", readme)
        if chromium() and html.exists():
            screenshot(html, html.with_name(PICTURE), height=1800)
