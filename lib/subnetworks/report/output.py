"""Where the report goes and how it is shown: figures saved as PNG and PDF (the same bytes on every rerun), tables
as CSV, sections of text, tables and figures, and their display in a notebook."""

from __future__ import annotations

import base64
import functools
import inspect
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from ..spec import resolve_path
from ..study.layout import Layout
from .figures import DPI, STYLE
from .load import Results, load_results


@dataclass(frozen=True)
class SavedFigure:
    png: Path
    pdf: Path
    width_px: int  # shown at this width: the PNG is drawn at DPI, shown at 100 dpi
    alt: str = ""  # what the figure shows, for readers who cannot see it (figure_description)


def wrap_suptitle(fig: Figure) -> None:
    """Break a figure's title into lines that fit its width (about 12 characters an inch at the title's size), so a
    long title is never cut at the edges of a narrow figure."""
    title = fig.get_suptitle()
    if title:
        width = max(20, int(fig.get_figwidth() * 12))
        lines = [textwrap.fill(line, width, break_on_hyphens=False) for line in title.split("\n")]
        fig.suptitle("\n".join(lines))


def figure_description(fig: Figure) -> str:
    """Alt text from what the figure itself says: its title, then each panel's title and axes (repeated panels once).

    Written from the figure, so it cannot drift from what is drawn."""
    panels = []
    for ax in fig.axes:
        axes = " against ".join(label for label in (ax.get_ylabel(), ax.get_xlabel()) if label)
        panel = ", ".join(p for p in (ax.get_title(), axes) if p)
        if panel and panel not in panels:
            panels.append(panel)
    title = fig.get_suptitle()
    described = "; ".join(panels[:12]) + ("; …" if len(panels) > 12 else "")
    return ". ".join(p for p in (title, f"Panels: {described}" if described else "") if p) or "A figure"


@dataclass
class Section:
    """A titled list of blocks: markdown text, tables (data frames) and saved figures, in display order."""

    title: str
    blocks: list[str | pd.DataFrame | SavedFigure] = field(default_factory=list)
    level: int = 2  # its heading's level: 3 for a figure that belongs to the section above it

    def text(self) -> str:
        return "\n\n".join(b for b in self.blocks if isinstance(b, str))


@dataclass
class Report:
    """The results of one study and the folder its report goes to."""

    results: Results
    root: Path

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    def save_figure(self, fig: Figure | None, name: str) -> SavedFigure | None:
        """PNG and PDF, without timestamps or version strings, so a rerun writes the same bytes."""
        if fig is None:
            return None
        self.figures.mkdir(parents=True, exist_ok=True)
        png, pdf = self.figures / f"{name}.png", self.figures / f"{name}.pdf"
        wrap_suptitle(fig)
        with matplotlib.rc_context(STYLE):
            fig.savefig(png, dpi=DPI, metadata={"Software": None})
            fig.set_layout_engine("none")  # keep the layout the PNG computed: one layout pass, not two
            fig.savefig(pdf, metadata={"CreationDate": None, "Producer": None, "Creator": None})
        return SavedFigure(png, pdf, int(round(fig.get_figwidth() * 100)), figure_description(fig))

    def save_table(self, table: pd.DataFrame, name: str) -> pd.DataFrame:
        """Write ``table`` as CSV; the returned table knows its file (``attrs["csv"]``), which the page links to."""
        self.tables.mkdir(parents=True, exist_ok=True)
        table.to_csv(self.tables / f"{name}.csv", index=False, float_format="%.6g")
        table.attrs["csv"] = f"tables/{name}.csv"  # relative to the report page, which sits beside tables/
        return table

    def view(self, tasks: Sequence[str] = (), sparsities: Sequence[float] = (), languages: Sequence[str] = ()):
        """The report of some tasks, sparsities and languages only (:meth:`Results.view`); its figures and tables go
        to ``views/<what it shows>/`` under this report's folder, so redrawing a figure never overwrites the
        study's report."""
        results = self.results.view(tasks, sparsities, languages)
        if results is self.results:
            return self
        name = "_".join([*tasks, *(f"sp{s:g}" for s in results.shown.get("sparsities", ())), *languages])
        return Report(results, self.root / "views" / re.sub(r"[^\w.-]+", "-", name))

    def add_figure(self, section: Section, text: str, fig: Figure | None, name: str) -> None:
        """Save ``fig`` and append its sentences and the figure to ``section`` (nothing when there is no figure)."""
        saved = self.save_figure(fig, name)
        if saved is not None:
            section.blocks += [text, saved]


def viewable(make: Callable[..., Section]) -> Callable[..., Section]:
    """A section function that also takes ``tasks``, ``sparsities`` and ``languages`` (empty: all of the study's),
    so a notebook cell can redraw it for some of them (:meth:`Report.view`)."""

    @functools.wraps(make)
    def section(
        rep: Report, *, tasks: Sequence[str] = (), sparsities: Sequence[float] = (), languages: Sequence[str] = (), **kw
    ) -> Section:
        return make(rep.view(tasks, sparsities, languages), **kw)

    shown = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=()) for n in VIEW_ARGUMENTS]
    signature = inspect.signature(make)
    section.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *shown])
    return section


VIEW_ARGUMENTS = ("tasks", "sparsities", "languages")


def open_report(layout: Layout, reports_dir: str | Path = "") -> Report:
    """Read the study's artefacts; the report goes to ``reports_dir`` (default: ``runtime.reports_dir``)."""
    return Report(load_results(layout), resolve_path(reports_dir or layout.study.runtime.reports_dir))


LONG_TABLE = 30  # rows: a longer table is folded away, its CSV linked beside it


def table_html(table: pd.DataFrame, uuid: str) -> str:
    """A table for the page: 3 decimals, no index, scrolling inside its own box when wide, folded (``<details>``)
    when longer than ``LONG_TABLE`` rows, with a link to its CSV when it has one."""
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]  # words: read from the left
    style = table.style.format(precision=3, na_rep="–").hide(axis="index").set_uuid(uuid)
    if text:
        style = style.set_properties(subset=text, **{"text-align": "left"})
        heads = [f"th.col_heading.col{table.columns.get_loc(c)}" for c in text]
        columns = [{"selector": head, "props": "text-align: left"} for head in heads]
        style = style.set_table_styles(columns, overwrite=False)
    body = style.to_html()
    boxed = f'<div style="overflow-x: auto; max-width: 100%">{body}</div>'
    csv = table.attrs.get("csv")
    link = f' (<a href="{escape(csv)}">{escape(csv)}</a>)' if csv else ""
    if len(table) <= LONG_TABLE:
        return boxed + (f"<p><small>CSV{link}</small></p>" if csv else "")
    return f"<details><summary>{len(table)} rows: show the table{link}</summary>{boxed}</details>"


def show(section: Section) -> None:
    """Display a section in a notebook: markdown, tables (3 decimals, no index) and the saved PNGs."""
    from IPython.display import HTML, Markdown, display  # only in a notebook: building the report needs no IPython

    display(Markdown(f"{'#' * section.level} {section.title}"))
    for i, block in enumerate(section.blocks):
        if isinstance(block, str):
            display(Markdown(block))
        elif isinstance(block, pd.DataFrame):
            uuid = f"{section.title[:12].replace(' ', '_')}_{i}"  # stable ids: the same HTML for the same numbers
            display(HTML(table_html(block, uuid)))
        else:  # inline, with its alt text and at most the page's width
            data = base64.b64encode(block.png.read_bytes()).decode("ascii")
            display(
                HTML(
                    f'<img src="data:image/png;base64,{data}" alt="{escape(block.alt)}" '
                    f'style="width: {block.width_px}px; max-width: 100%; height: auto">'
                )
            )
