"""report: the study report, built from finished artefacts only (nothing here trains or loads a model).

:func:`load_results` reads every finished run of a study through its grid into long data frames (one row per seed),
``tables`` and ``overlap_tables`` derive the report's tables (means over seeds), ``figures`` and ``overlap_figures``
draw one figure per ``plot_*`` function, and the ``*_section`` functions put them together: they save each figure
(PNG and PDF, no timestamps) under ``<reports_dir>/figures`` and each table (CSV) under ``<reports_dir>/tables``,
and return a :class:`Section` that the report notebook shows with :func:`show`. Above every figure sits one sentence
on what Foroutan et al. (EMNLP 2022) found (``paper.yaml``) and one on what this run found. ``summary_section``
writes ``summary.json`` and ``results.md``; :func:`build` does all of it. Torch-free: reads only the study's layout,
grid and run files.
"""

from . import figures, overlap_figures, overlap_tables, tables
from .limitations import limitations_section
from .load import Results, load_results
from .output import Report, Section, open_report, show
from .overlap_sections import (
    average_overlap_section,
    controls_section,
    departures_groups_section,
    departures_section,
    overlap_groups_section,
    overlap_section,
    overlap_transfer_section,
)
from .paper import PAPER
from .paper_numbers import paper_numbers_section
from .provenance import what_was_run_section
from .sections import (
    SECTIONS,
    build,
    data_section,
    intro_section,
    relative_change_section,
    scores_section,
    transfer_section,
)
from .similarity import similarity_section
from .summary import summary_section
from .text import pct
from .verdict_sections import intervals_section, verdict_section

__all__ = [  # what the report notebook and the run layer use; tables and figures are their modules
    "PAPER",
    "Report",
    "Results",
    "SECTIONS",
    "Section",
    "average_overlap_section",
    "build",
    "controls_section",
    "data_section",
    "departures_groups_section",
    "departures_section",
    "figures",
    "intervals_section",
    "intro_section",
    "limitations_section",
    "load_results",
    "open_report",
    "overlap_figures",
    "overlap_groups_section",
    "overlap_section",
    "overlap_tables",
    "overlap_transfer_section",
    "paper_numbers_section",
    "similarity_section",
    "pct",
    "relative_change_section",
    "scores_section",
    "show",
    "summary_section",
    "tables",
    "verdict_section",
    "what_was_run_section",
    "transfer_section",
]
